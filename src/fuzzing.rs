// SPDX-License-Identifier: MPL-2.0
//! The properties the parser fuzz targets (`fuzz/fuzz_targets/`) check, here so that
//! the test suite replays the same checks on the seed corpus and on every input a
//! fuzzer ever found (`fuzz/seeds/<target>/`, `tests/fuzz_corpus.rs`). Each takes
//! any bytes and panics only when a property is broken.

use std::net::SocketAddr;

use crate::core::api::{ReportDoc, SegmentDoc, WindowDoc};
use crate::core::client::{Action, ClientConfig, ClientEngine};
use crate::core::feedback::{Feedback, FeedbackConfig, Voter};
use crate::core::scheduler::{PublishedCrumb, PublishedSegment, Scheduler, SchedulerConfig};
use crate::core::tracker::{AnnounceRequest, Tracker, TrackerConfig};

const SEC: u64 = 1_000_000_000;

/// Runs the engine's actions as a client would, with every download completing at
/// once, for a bounded number of rounds.
fn drive(e: &mut ClientEngine, now: u64) {
    for _ in 0..8 {
        let actions = e.poll_actions(now);
        if actions.is_empty() {
            return;
        }
        for a in actions {
            if let Action::Download { seq, index } = a {
                e.on_crumb_complete(now, seq, index);
            }
        }
    }
}

/// `GET /<channel>` and `GET /<channel>/segments/<seq>` bodies, as crumbsrc reads them.
/// Byte 0 picks the document: even = a window, odd = a Segment (on demand). Whatever
/// parses must serialize back to the same document, and the client engine must take
/// it (twice, then a later deadline) without panicking.
pub fn window_json(data: &[u8]) {
    let Some((&kind, json)) = data.split_first() else {
        return;
    };
    let config = ClientConfig {
        initial_rate: Some(1e6),
        ..ClientConfig::default()
    };
    if kind % 2 == 0 {
        let Ok(doc) = serde_json::from_slice::<WindowDoc>(json) else {
            return;
        };
        let again: WindowDoc = serde_json::from_str(&serde_json::to_string(&doc).unwrap())
            .expect("a window serializes to JSON that parses");
        assert_eq!(again, doc, "window JSON round trip");
        let mut e = ClientEngine::new(config, 0);
        e.poll_actions(0);
        let _ = e.on_window(0, &doc);
        drive(&mut e, 0);
        let _ = e.on_window(SEC, &doc);
        drive(&mut e, SEC);
        let later = e.next_wakeup().unwrap_or(0).max(SEC);
        e.tick(later);
        drive(&mut e, later);
        let _ = e.stats();
    } else {
        let Ok(doc) = serde_json::from_slice::<SegmentDoc>(json) else {
            return;
        };
        let again: SegmentDoc = serde_json::from_str(&serde_json::to_string(&doc).unwrap())
            .expect("a Segment serializes to JSON that parses");
        assert_eq!(again, doc, "Segment JSON round trip");
        let mut e = ClientEngine::new(config, 0);
        e.start_at(0, doc.seq);
        e.poll_actions(0);
        e.on_segment(0, &doc);
        drive(&mut e, 0);
        let later = e.next_wakeup().unwrap_or(0).max(SEC);
        e.tick(later);
        drive(&mut e, later);
    }
}

/// `POST /<channel>/report` bodies, as crumbsink reads them: whatever parses must
/// serialize back to a report that parses with the same fields, and the rho feedback
/// must take it (accept or refuse, never panic) against a channel with Segments 0..=4.
pub fn report_json(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<ReportDoc>(data) else {
        return;
    };
    let again: ReportDoc = serde_json::from_str(&serde_json::to_string(&doc).unwrap())
        .expect("a report serializes to JSON that parses");
    // rate is compared as parsed twice: a float's shortest decimal may differ in its
    // last bit from the input's decimal.
    assert_eq!(
        (
            &again.client_id,
            again.seq,
            again.successful,
            again.complete,
            again.d
        ),
        (&doc.client_id, doc.seq, doc.successful, doc.complete, doc.d),
        "report JSON round trip"
    );
    let mut scheduler = Scheduler::new(SchedulerConfig::default());
    for seq in 0..5u64 {
        let crumbs = (1..=3u16)
            .map(|index| PublishedCrumb {
                index,
                info_hash: [index as u8; 20],
                size: 1000,
                layer: (0, 0, index as u8 - 1),
                piece_length: 16384,
            })
            .collect();
        let segment = PublishedSegment {
            seq,
            duration: SEC,
            crumbs,
            pts: Some(seq * SEC),
        };
        scheduler.publish(segment, seq * SEC).unwrap();
    }
    let mut feedback = Feedback::new(FeedbackConfig::default());
    // Two voters: one address, and another (one vote per address).
    let here = Voter::new(std::net::Ipv4Addr::LOCALHOST.into());
    let there = Voter::new(std::net::Ipv4Addr::new(127, 0, 0, 2).into());
    let _ = feedback.record(doc.clone(), here, 5 * SEC, &scheduler);
    let _ = feedback.record(doc, there, 5 * SEC, &scheduler);
    let _ = feedback.rho_due(60 * SEC, &scheduler);
    let _ = feedback.clients_reporting(&scheduler);
}

/// Percent-encodes every byte (what BitTorrent clients do for the 20-byte strings).
fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// `GET /<channel>/announce?<query>`, as the tracker reads it (the query as the HTTP
/// server hands it over: text). Whatever parses must parse the same once written
/// back; the tracker's reply is always one bencoded dictionary. The torrent whose
/// info-hash the query names is registered, so announces get past that check.
pub fn tracker_announce(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let source: SocketAddr = "127.0.0.1:6881".parse().unwrap();
    let mut tracker = Tracker::new(TrackerConfig::default());
    tracker.set_super_seed("127.0.0.1:7000".parse().unwrap(), [7; 20]);
    tracker.register([0x11; 20]);
    if let Ok(req) = AnnounceRequest::parse(query) {
        tracker.register(req.info_hash);
        let mut back = format!(
            "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&compact={}&no_peer_id={}",
            escape(&req.info_hash),
            escape(&req.peer_id),
            req.port,
            req.uploaded,
            req.downloaded,
            u8::from(req.compact),
            u8::from(req.no_peer_id),
        );
        if let Some(left) = req.left {
            back += &format!("&left={left}");
        }
        if let Some(n) = req.numwant {
            back += &format!("&numwant={n}");
        }
        if let Some(ip) = req.ip {
            back += &format!("&ip={ip}");
        }
        back += match req.event {
            crate::core::tracker::Event::None => "",
            crate::core::tracker::Event::Started => "&event=started",
            crate::core::tracker::Event::Completed => "&event=completed",
            crate::core::tracker::Event::Stopped => "&event=stopped",
        };
        assert_eq!(
            AnnounceRequest::parse(&back).as_ref(),
            Ok(&req),
            "announce written back as {back}"
        );
    }
    for now in [0, SEC, 3600 * SEC] {
        let reply = tracker.handle(query, source, now);
        assert!(
            reply.first() == Some(&b'd') && reply.last() == Some(&b'e'),
            "tracker reply is not a bencoded dictionary: {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
}
