// SPDX-License-Identifier: MPL-2.0
use super::*;
use crate::core::scheduler::PublishedCrumb;

use crate::core::time::SEC;

fn hash(seq: u64, index: u16) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&seq.to_be_bytes());
    h[8..10].copy_from_slice(&index.to_be_bytes());
    h
}

/// Segments of 2 s with 3 crumbs; window 5, start offset 3, feedback grace 1 s.
fn engine() -> ChannelEngine {
    let mut e = ChannelEngine::new(ChannelEngineConfig {
        name: "live".into(),
        scheduler: SchedulerConfig {
            window: 5,
            start_offset: 3,
            archive: false,
            feedback_grace: SEC,
        },
        tracker: TrackerConfig {
            peer_ttl_ns: 40 * SEC,
            ..Default::default()
        },
        ..Default::default()
    });
    e.set_tracker_url("http://127.0.0.1:8080/live/announce".into());
    e.set_super_seed("127.0.0.1:4000".parse().unwrap(), [0xee; 20]);
    e
}

fn segment(seq: u64) -> (PublishedSegment, Vec<TorrentFile>) {
    let crumbs: Vec<PublishedCrumb> = (1..=3)
        .map(|index| PublishedCrumb {
            index,
            info_hash: hash(seq, index),
            size: 1000,
            layer: (0, 0, 0),
            piece_length: 16384,
        })
        .collect();
    let torrents = crumbs
        .iter()
        .map(|c| TorrentFile {
            index: c.index,
            bytes: format!("torrent {seq}/{}", c.index).into_bytes(),
        })
        .collect();
    let seg = PublishedSegment {
        seq,
        duration: 2 * SEC,
        crumbs,
        pts: Some(seq * 2 * SEC),
    };
    (seg, torrents)
}

/// Publishes Segment `seq` at 2·seq s, as a live channel does.
fn publish(e: &mut ChannelEngine, seq: u64) -> Published {
    let (seg, torrents) = segment(seq);
    let hashes: Vec<_> = seg.crumbs.iter().map(|c| c.info_hash).collect();
    e.prepare(&hashes);
    e.publish(
        seq * 2 * SEC,
        seg,
        torrents,
        Some("video/x-test".into()),
        None,
    )
    .unwrap()
}

fn enc(b: &[u8]) -> String {
    b.iter().map(|b| format!("%{b:02X}")).collect()
}

/// A client's announce of crumb 1 of `seq` with `peer_id` from `source`.
fn announce(e: &mut ChannelEngine, now: u64, seq: u64, peer_id: [u8; 20], source: &str) {
    let q = format!(
        "info_hash={}&peer_id={}&port=6881&left=1000",
        enc(&hash(seq, 1)),
        enc(&peer_id)
    );
    let body = e.on_announce(now, &q, source.parse().unwrap());
    assert!(
        !body.windows(7).any(|w| w == b"failure"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

fn report(client: &str, seq: u64, successful: bool, peer_id: Option<[u8; 20]>) -> ReportDoc {
    ReportDoc {
        client_id: client.into(),
        seq,
        successful,
        complete: false,
        d: u16::from(successful),
        rate: 50_000.0,
        peer_id: peer_id.map(|id| api::hex(&id)),
        sole_source: false,
    }
}

/// A peer `id` at address `from` announces crumb 1 of the report's Segment, then
/// posts the report, which counts.
fn peer_reports(e: &mut ChannelEngine, now: u64, from: &str, r: ReportDoc) {
    let id = r.peer_id.as_deref().and_then(api::parse_info_hash).unwrap();
    announce(e, now, r.seq, id, &format!("{from}:6000"));
    e.on_report(now, ip(from), r).unwrap();
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn publish_fills_the_window_and_expiry_forgets_torrents() {
    let mut e = engine();
    assert_eq!(e.window_doc(0, None).latest, None);
    for seq in 0..5 {
        assert!(publish(&mut e, seq).expired.is_empty());
    }
    let w = e.window_doc(9 * SEC, None);
    assert_eq!(w.channel, "live");
    assert_eq!(w.caps.as_deref(), Some("video/x-test"));
    assert_eq!(
        (w.latest, w.start_index, w.oldest),
        (Some(4), Some(1), Some(0))
    );
    assert_eq!(w.tracker, "http://127.0.0.1:8080/live/announce");
    assert_eq!(w.super_seed.as_deref(), Some("127.0.0.1:4000"));
    assert_eq!(w.segments.len(), 5);
    assert_eq!(w.segments[4].age_ms, 1000, "published at 8 s, asked at 9 s");
    // Nobody said how long a Segment can be: the longest in the window.
    assert_eq!(w.max_duration, Some(2 * SEC));
    // The segmenter's word (|Gmax| GOPs) when it said, unless a Segment is longer.
    e.set_max_duration(Some(4 * SEC));
    assert_eq!(e.window_doc(9 * SEC, None).max_duration, Some(4 * SEC));
    e.set_max_duration(Some(SEC));
    assert_eq!(e.window_doc(9 * SEC, None).max_duration, Some(2 * SEC));
    assert_eq!(
        w.segments[0].crumbs[1].torrent,
        "/live/torrents/0/2.torrent"
    );
    let after: Vec<u64> = e
        .window_doc(9 * SEC, Some(2))
        .segments
        .iter()
        .map(|s| s.seq)
        .collect();
    assert_eq!(after, [3, 4]);
    assert_eq!(e.torrent(0, 2), Some(&b"torrent 0/2"[..]));
    assert!(e.tracker().is_registered(&hash(0, 1)));

    let p = publish(&mut e, 5);
    assert_eq!(p.window, (1, 5));
    assert_eq!(p.expired.len(), 1);
    assert!(p.expired[0].seq == 0 && p.expired[0].delete_data());
    assert_eq!(e.torrent(0, 2), None, "an expired crumb's torrent is gone");
    assert!(!e.tracker().is_registered(&hash(0, 1)));
    assert_eq!(e.segment_doc(10 * SEC, 0), None);
    assert_eq!(e.segment_doc(10 * SEC, 5).map(|s| s.seq), Some(5));
    let st = e.stats(10 * SEC);
    assert_eq!(
        (
            st.segments_published,
            st.segments_expired,
            st.crumbs_published,
            st.bytes_published
        ),
        (6, 1, 18, 18_000)
    );
    // A Segment out of order changes nothing.
    let (old, torrents) = segment(3);
    assert!(e.publish(11 * SEC, old, torrents, None, None).is_err());
    assert_eq!(e.stats(11 * SEC).segments_published, 6);
}

#[test]
fn archived_segments_stay_served_and_tracked() {
    let mut e = ChannelEngine::new(ChannelEngineConfig {
        scheduler: SchedulerConfig {
            window: 2,
            start_offset: 1,
            archive: true,
            feedback_grace: SEC,
        },
        ..Default::default()
    });
    for seq in 0..3 {
        publish(&mut e, seq);
    }
    assert_eq!(e.stats(0).segments_expired, 1);
    assert!(e.torrent(0, 1).is_some());
    assert!(e.tracker().is_registered(&hash(0, 1)));
    assert_eq!(e.segment_doc(0, 0).map(|s| s.seq), Some(0), "on demand");
    assert_eq!(e.window_doc(0, None).oldest, Some(1));
}

#[test]
fn prepared_crumbs_answer_the_super_seed_and_abandon_forgets_them() {
    let mut e = engine();
    let hashes = [hash(7, 1), hash(7, 2)];
    e.prepare(&hashes);
    assert!(e.tracker().is_registered(&hash(7, 1)));
    e.abandon(&hashes);
    assert!(!e.tracker().is_registered(&hash(7, 1)));
    assert!(e.tracker().torrents().is_empty());
}

#[test]
fn rho_comes_once_per_segment_after_its_deadline() {
    let mut e = engine();
    let peer = [1; 20];
    for seq in 0..3 {
        publish(&mut e, seq);
    }
    announce(&mut e, 4 * SEC, 2, peer, "127.0.0.1:50000");
    e.on_report(5 * SEC, ip("127.0.0.1"), report("a", 2, true, Some(peer)))
        .unwrap();
    // Segment 2: published at 4 s, deadline 4 + 2 + 1 = 7 s.
    assert_eq!(e.next_wakeup(), Some(7 * SEC));
    assert_eq!(e.poll_rho(6 * SEC), None);
    assert_eq!(e.poll_rho(7 * SEC), Some((2, 1.0)));
    assert_eq!(e.poll_rho(8 * SEC), None, "once");
    assert_eq!(e.next_wakeup(), None);
    let st = e.stats(8 * SEC);
    assert_eq!((st.last_rho, st.last_rho_seq), (Some(1.0), Some(2)));
    assert_eq!((st.reports_accepted, st.clients_reporting), (1, 1));
    publish(&mut e, 3);
    assert_eq!(e.next_wakeup(), Some(9 * SEC));
}

#[test]
fn reports_count_only_from_peers_the_channel_knows() {
    let mut e = engine();
    for seq in 0..3 {
        publish(&mut e, seq);
    }
    let peer = [1; 20];
    let not_a_peer = |r: Result<(), ReportError>| matches!(r, Err(ReportError::NotAPeer(_)));
    // No peer id, or one never announced: refused.
    assert!(not_a_peer(e.on_report(
        SEC,
        ip("127.0.0.1"),
        report("a", 2, true, None)
    )));
    assert!(not_a_peer(e.on_report(
        SEC,
        ip("127.0.0.1"),
        report("a", 2, true, Some(peer))
    )));
    // An announce of a torrent the channel does not track teaches nothing.
    let q = format!(
        "info_hash={}&peer_id={}&port=6881",
        enc(&[9; 20]),
        enc(&peer)
    );
    e.on_announce(SEC, &q, "127.0.0.1:5000".parse().unwrap());
    assert!(not_a_peer(e.on_report(
        SEC,
        ip("127.0.0.1"),
        report("a", 2, true, Some(peer))
    )));
    // Announced from 127.0.0.1 (its `ip=` does not matter): its reports from there
    // count, from elsewhere they do not.
    let q = format!(
        "info_hash={}&peer_id={}&port=6881&ip=127.0.0.7",
        enc(&hash(2, 1)),
        enc(&peer)
    );
    e.on_announce(2 * SEC, &q, "127.0.0.1:5000".parse().unwrap());
    assert!(not_a_peer(e.on_report(
        2 * SEC,
        ip("127.0.0.7"),
        report("a", 2, true, Some(peer))
    )));
    e.on_report(2 * SEC, ip("127.0.0.1"), report("a", 2, true, Some(peer)))
        .unwrap();
    // IPv4-mapped IPv6 is the same address.
    e.on_report(
        2 * SEC,
        ip("::ffff:127.0.0.1"),
        report("a", 2, true, Some(peer)),
    )
    .unwrap();
    // A malformed report is still refused for what it is.
    assert_eq!(
        e.on_report(2 * SEC, ip("127.0.0.1"), report("a", 99, true, Some(peer))),
        Err(ReportError::Invalid(FeedbackError::UnknownSegment(99)))
    );
    // Silent for the peer TTL (40 s): no longer the audience.
    assert!(not_a_peer(e.on_report(
        42 * SEC,
        ip("127.0.0.1"),
        report("a", 2, true, Some(peer))
    )));
    // `stopped` ends it at once.
    announce(&mut e, 43 * SEC, 2, peer, "127.0.0.1:5000");
    e.on_report(43 * SEC, ip("127.0.0.1"), report("a", 2, true, Some(peer)))
        .unwrap();
    let q = format!(
        "info_hash={}&peer_id={}&port=6881&event=stopped",
        enc(&hash(2, 1)),
        enc(&peer)
    );
    e.on_announce(43 * SEC, &q, "127.0.0.1:5000".parse().unwrap());
    assert!(not_a_peer(e.on_report(
        43 * SEC,
        ip("127.0.0.1"),
        report("a", 2, true, Some(peer))
    )));
    let st = e.stats(43 * SEC);
    assert_eq!((st.reports_accepted, st.reports_rejected), (3, 7));
}

/// Issue 10: twenty made-up client ids post failures (never in the swarm; some from
/// one address, some from many) while one real client succeeds: rho is the real
/// client's. Made-up peer ids announced from one address weigh one vote.
#[test]
fn forged_feedback_does_not_steer_rho() {
    let mut e = engine();
    let real = [1; 20];
    for seq in 0..3 {
        publish(&mut e, seq);
    }
    announce(&mut e, 4 * SEC, 2, real, "127.0.0.1:50000");
    for i in 0..20u8 {
        let from = if i < 10 {
            ip("127.0.0.2")
        } else {
            ip(&format!("127.0.0.{}", 10 + i))
        };
        // With no peer id, a made-up one, or the real client's from elsewhere.
        let peer_id = match i % 3 {
            0 => None,
            1 => Some([100 + i; 20]),
            _ => Some(real),
        };
        let r = e.on_report(
            5 * SEC,
            from,
            report(&format!("fake{i}"), 2, false, peer_id),
        );
        assert!(matches!(r, Err(ReportError::NotAPeer(_))), "{r:?}");
    }
    e.on_report(
        5 * SEC,
        ip("127.0.0.1"),
        report("real", 2, true, Some(real)),
    )
    .unwrap();
    assert_eq!(e.poll_rho(7 * SEC), Some((2, 1.0)));

    // Ten made-up ids that do announce, all from one address, fail Segment 3: one
    // vote against the real client's one.
    publish(&mut e, 3);
    for i in 0..10u8 {
        let r = report(&format!("sybil{i}"), 3, false, Some([200 + i; 20]));
        peer_reports(&mut e, 7 * SEC, "127.0.0.2", r);
    }
    e.on_report(
        7 * SEC,
        ip("127.0.0.1"),
        report("real", 3, true, Some(real)),
    )
    .unwrap();
    assert_eq!(e.poll_rho(9 * SEC), Some((3, 0.5)));
}

#[test]
fn the_audience_is_bounded() {
    let mut e = ChannelEngine::new(ChannelEngineConfig {
        max_audience: 2,
        tracker: TrackerConfig {
            peer_ttl_ns: 40 * SEC,
            ..Default::default()
        },
        ..Default::default()
    });
    publish(&mut e, 0);
    for id in 1..=3u8 {
        announce(&mut e, 0, 0, [id; 20], &format!("127.0.0.{id}:6881"));
    }
    let counted = |e: &mut ChannelEngine, id: u8, now: u64| {
        e.on_report(
            now,
            ip(&format!("127.0.0.{id}")),
            report("c", 0, true, Some([id; 20])),
        )
        .is_ok()
    };
    assert!(counted(&mut e, 1, SEC) && counted(&mut e, 2, SEC));
    assert!(!counted(&mut e, 3, SEC), "beyond max-audience");
    // Once the first two expire, a newcomer is remembered again.
    announce(&mut e, 50 * SEC, 0, [3; 20], "127.0.0.3:6881");
    assert!(counted(&mut e, 3, 50 * SEC));
}

#[test]
fn status_history_has_upload_delivery_d_and_rho_per_segment() {
    let mut e = engine();
    let (a, b) = ([1u8; 20], [2u8; 20]);
    publish(&mut e, 0);
    e.note_segment(0, Some(1), Some(0));
    announce(&mut e, SEC, 0, a, "127.0.0.2:6881");
    announce(&mut e, SEC, 0, b, "127.0.0.3:6881");
    // The super seed only announces: it is no viewer.
    announce(&mut e, SEC, 0, [0xee; 20], "127.0.0.1:4000");
    assert_eq!(
        e.viewers(SEC),
        2,
        "peers count as viewers before any report"
    );
    publish(&mut e, 1);
    // 6,000 bytes uploaded in the 2 s between the publishes.
    e.note_segment(1, Some(2), Some(6000));
    let complete = |client: &str, d: u16, id| ReportDoc {
        complete: true,
        d,
        ..report(client, 1, true, Some(id))
    };
    e.on_report(3 * SEC, ip("127.0.0.2"), complete("a", 3, a))
        .unwrap();
    e.on_report(3 * SEC, ip("127.0.0.3"), complete("b", 2, b))
        .unwrap();
    // Refused reports draw nothing.
    assert!(
        e.on_report(3 * SEC, ip("127.0.0.9"), complete("x", 3, [9; 20]))
            .is_err()
    );
    let rho = e.poll_rho(6 * SEC);
    assert_eq!(rho, Some((1, 1.0)));
    let doc = e.status_doc(6 * SEC);
    assert_eq!(doc.channel, "live");
    assert_eq!(doc.latest, Some(1));
    assert_eq!(doc.now_ms, 6000);
    assert_eq!(doc.samples.len(), 2);
    let (s0, s1) = (&doc.samples[0], &doc.samples[1]);
    assert_eq!(
        (s0.seq, s0.published_ms, s0.bytes, s0.crumbs),
        (0, 0, 3000, 3)
    );
    assert_eq!(s0.upload_rate, None, "no previous Segment to count from");
    assert_eq!(s1.upload_rate, Some(3000.0));
    assert_eq!((s0.gops, s1.gops), (Some(1), Some(2)));
    assert_eq!(s1.reports, 2);
    // a got 3 crumbs, b 2, of 1,000 bytes each, over |s| = 2 s.
    assert_eq!(s1.delivered_rate, 2500.0);
    assert_eq!(s1.reported_rate, 100_000.0);
    assert_eq!(s1.rho, Some(1.0));
    assert_eq!(doc.d_seq, Some(1));
    let dist: Vec<(u16, u32)> = doc
        .d_distribution
        .iter()
        .map(|c| (c.d, c.clients))
        .collect();
    assert_eq!(dist, [(2, 1), (3, 1)]);
    let clients: Vec<(&str, &str, u16)> = doc
        .clients
        .iter()
        .map(|c| (c.client_id.as_str(), c.address.as_str(), c.d))
        .collect();
    assert_eq!(clients, [("a", "127.0.0.2", 3), ("b", "127.0.0.3", 2)]);
    assert_eq!(doc.clients[0].age_ms, 3000);
    assert_eq!(e.viewers(6 * SEC), 2);
    // Clients that stopped reporting leave the list after the peer TTL.
    assert!(e.status_doc(50 * SEC).clients.is_empty());
}

#[test]
fn status_history_is_a_bounded_ring() {
    let mut e = engine();
    let n = STATUS_HISTORY as u64 + 7;
    for seq in 0..n {
        publish(&mut e, seq);
    }
    let doc = e.status_doc(2 * n * SEC);
    assert_eq!(doc.samples.len(), STATUS_HISTORY);
    assert_eq!(
        doc.samples.first().unwrap().seq,
        7,
        "the oldest dropped first"
    );
    assert_eq!(doc.samples.last().unwrap().seq, n - 1);
    assert_eq!(doc.d_seq, None);
    assert!(doc.d_distribution.is_empty());
}

/// A blocking window reload is held while the poll would bring nothing new: nothing
/// published yet, or the poller knows the newest Segment. A newer Segment, or a
/// numbering that went back (a restart), is news at once.
#[test]
fn window_news_is_a_segment_the_poller_lacks() {
    let mut e = engine();
    assert!(!e.window_news(None), "nothing published");
    assert!(!e.window_news(Some(7)), "nothing published");
    publish(&mut e, 1);
    assert!(e.window_news(None));
    assert!(e.window_news(Some(0)));
    assert!(!e.window_news(Some(1)), "knows the newest");
    publish(&mut e, 2);
    assert!(e.window_news(Some(1)));
    assert!(e.window_news(Some(40)), "numbers went back: a restart");
}

/// A published Segment's crumb 1 is registered with the tracker's first-crumb fanout
/// (crumbsink's `first-crumb-fanout`), its other crumbs with the super seed fanout.
#[test]
fn crumb_1_is_seeded_by_its_own_fanout() {
    let mut e = ChannelEngine::new(ChannelEngineConfig {
        tracker: TrackerConfig {
            super_seed_fanout: 1,
            first_crumb_fanout: Some(2),
            ..Default::default()
        },
        ..Default::default()
    });
    let seed: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
    e.set_super_seed(seed, [0xee; 20]);
    publish(&mut e, 0);
    let got_seed = |e: &mut ChannelEngine, index: u16, peer: u8| {
        let q = format!(
            "info_hash={}&peer_id={}&port=6881&left=1000&compact=1",
            enc(&hash(0, index)),
            enc(&[peer; 20])
        );
        let body = e.on_announce(0, &q, format!("127.0.0.{peer}:6881").parse().unwrap());
        // Compact IPv4: the super seed is 127.0.0.1 port 4000.
        body.windows(6).any(|w| w == [127, 0, 0, 1, 0x0f, 0xa0])
    };
    let crumb1: Vec<bool> = (2..=4).map(|p| got_seed(&mut e, 1, p)).collect();
    let crumb2: Vec<bool> = (2..=4).map(|p| got_seed(&mut e, 2, p)).collect();
    assert_eq!(crumb1, [true, true, false]);
    assert_eq!(crumb2, [true, false, false]);
}

/// A peer whose last counted report downloads at least at the stream's rate is strong
/// for initial seeding: after a weak peer took a crumb's grant, it gets the super seed
/// too; slower or unreported peers do not.
#[test]
fn a_peer_faster_than_the_stream_gets_the_super_seed_after_a_weak_one() {
    let mut e = ChannelEngine::new(ChannelEngineConfig {
        tracker: TrackerConfig {
            super_seed_fanout: 1,
            ..Default::default()
        },
        ..Default::default()
    });
    let seed: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
    e.set_super_seed(seed, [0xee; 20]);
    assert_eq!(e.stream_rate(), None);
    publish(&mut e, 0);
    publish(&mut e, 1);
    // Three crumbs of 1000 bytes every 2 s.
    assert_eq!(e.stream_rate(), Some(1500.0));
    let got_seed = |e: &mut ChannelEngine, seq: u64, index: u16, peer: u8| {
        let q = format!(
            "info_hash={}&peer_id={}&port=6881&left=1000&compact=1",
            enc(&hash(seq, index)),
            enc(&[peer; 20])
        );
        let body = e.on_announce(SEC, &q, format!("127.0.0.{peer}:6881").parse().unwrap());
        body.windows(6).any(|w| w == [127, 0, 0, 1, 0x0f, 0xa0])
    };
    // Peers 2..=5 join with Segment 0's crumb 1; 2, 3 and 5 report their rates.
    for p in 2..=5 {
        got_seed(&mut e, 0, 1, p);
    }
    for (p, rate) in [(2u8, 100.0), (3, 50_000.0), (5, 1499.0)] {
        let mut r = report(&format!("c{p}"), 0, true, Some([p; 20]));
        r.rate = rate;
        e.on_report(SEC, ip(&format!("127.0.0.{p}")), r).unwrap();
    }
    // A report refused (not from the peer's address) teaches nothing: peer 4 claims
    // a fast line from elsewhere.
    let mut forged = report("c4", 0, true, Some([4; 20]));
    forged.rate = 1e9;
    assert!(e.on_report(SEC, ip("127.0.0.9"), forged).is_err());
    let order = [2u8, 4, 5, 3, 6];
    let granted: Vec<bool> = order.iter().map(|&p| got_seed(&mut e, 1, 2, p)).collect();
    assert_eq!(granted, [true, false, false, true, false]);
    // A strong peer first uses the fanout up.
    let granted: Vec<bool> = [3u8, 2]
        .iter()
        .map(|&p| got_seed(&mut e, 1, 3, p))
        .collect();
    assert_eq!(granted, [true, false]);
}

/// Reports of crumbs 1 fetched from the super seed alone steer the window's
/// `sole_source_share`: 16 addresses, 4 of whose Segments failed, halve it at the
/// next Segment; the same from one address with many client ids do not.
#[test]
fn failing_sole_source_reports_lower_the_windows_share() {
    let mut e = engine();
    for seq in 0..3 {
        publish(&mut e, seq);
    }
    assert_eq!(e.window_doc(5 * SEC, None).sole_source_share, Some(1.0));
    let sole = |client: &str, successful: bool, id: [u8; 20]| ReportDoc {
        sole_source: true,
        ..report(client, 2, successful, Some(id))
    };
    // Sixteen made-up clients on one address: one vote.
    for i in 0..16u8 {
        let r = sole(&format!("one{i}"), false, [100 + i; 20]);
        peer_reports(&mut e, 5 * SEC, "127.0.0.9", r);
    }
    publish(&mut e, 3);
    assert_eq!(e.window_doc(7 * SEC, None).sole_source_share, Some(1.0));
    // Sixteen addresses, four of them lost the Segment (with the one above: 5 of 17).
    for i in 0..16u8 {
        let r = sole(&format!("c{i}"), i >= 4, [i + 1; 20]);
        peer_reports(&mut e, 7 * SEC, &format!("127.0.1.{}", i + 1), r);
    }
    publish(&mut e, 4);
    assert_eq!(e.window_doc(9 * SEC, None).sole_source_share, Some(0.5));
    let st = e.stats(9 * SEC);
    assert_eq!(st.sole_source_share, 0.5);
    assert!((st.sole_source_failed_share.unwrap() - 5.0 / 17.0).abs() < 1e-9);
}
