// SPDX-License-Identifier: MPL-2.0
use super::*;

use crate::core::time::SEC;

/// Percent-encodes every byte, as careful clients do.
fn enc(b: &[u8]) -> String {
    b.iter().map(|b| format!("%{b:02X}")).collect()
}

fn hash(n: u8) -> [u8; 20] {
    [n; 20]
}

fn query(info_hash: [u8; 20], peer: u8, port: u16, extra: &str) -> String {
    format!(
        "info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0{extra}",
        enc(&info_hash),
        enc(&[peer; 20]),
    )
}

fn tracker() -> Tracker {
    let mut t = Tracker::new(TrackerConfig {
        interval_s: 10,
        min_interval_s: 5,
        peer_ttl_ns: 30 * SEC,
        max_peers_per_reply: 4,
        max_peers_per_torrent: 100,
        super_seed_fanout: 0,
        first_crumb_fanout: None,
    });
    assert!(t.register(hash(1)));
    t
}

fn src(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn announce(t: &mut Tracker, q: &str, source: &str, now: u64) -> Vec<u8> {
    let req = AnnounceRequest::parse(q).unwrap();
    t.announce(&req, src(source), now).unwrap()
}

fn head(complete: u32, incomplete: u32) -> Vec<u8> {
    format!("d8:completei{complete}e10:incompletei{incomplete}e8:intervali10e12:min intervali5e")
        .into_bytes()
}

/// Number of IPv4 peers in a compact reply with no peers6.
fn compact_count(body: &[u8]) -> usize {
    let at = body.windows(7).position(|w| w == b"5:peers").unwrap() + 7;
    let colon = body[at..].iter().position(|&b| b == b':').unwrap();
    let len: usize = std::str::from_utf8(&body[at..at + colon])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len % 6, 0);
    len / 6
}

#[test]
fn percent_decoding_is_bytewise() {
    // The classic example: 123456789abcdef123456789abcdef123456789a.
    let q = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
    let expected: [u8; 20] = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        0x12, 0x34, 0x56, 0x78, 0x9a,
    ];
    assert_eq!(percent_decode(q.as_bytes()).unwrap(), expected);
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(percent_decode(enc(&all).as_bytes()).unwrap(), all);
    assert_eq!(percent_decode(b"a+b%2b%2B").unwrap(), b"a+b++");
    for bad in ["%", "%4", "%zz", "ab%g1"] {
        assert_eq!(
            percent_decode(bad.as_bytes()),
            Err(TrackerError::BadPercentEncoding),
            "{bad}"
        );
    }
    let req = AnnounceRequest::parse(&format!(
        "?info_hash={q}&peer_id=-lt0D60-%01%02%03%04%05%06%07%08%09%0A%0B%0C&port=6881"
    ))
    .unwrap();
    assert_eq!(req.info_hash, expected);
    assert_eq!(&req.peer_id[..8], b"-lt0D60-");
}

#[test]
fn parses_every_field() {
    let req = AnnounceRequest::parse(&query(
        hash(1),
        7,
        6881,
        "&left=0&uploaded=5&compact=0&no_peer_id=1&event=completed&numwant=12&ip=127.0.0.2&key=x",
    ))
    .unwrap();
    assert_eq!(req.info_hash, hash(1));
    assert_eq!(req.peer_id, [7; 20]);
    assert_eq!(req.port, 6881);
    assert_eq!((req.uploaded, req.downloaded, req.left), (5, 0, Some(0)));
    assert!(!req.compact && req.no_peer_id);
    assert_eq!(req.event, Event::Completed);
    assert_eq!(req.numwant, Some(12));
    assert_eq!(req.ip, Some("127.0.0.2".parse().unwrap()));
    // Defaults.
    let req = AnnounceRequest::parse(&query(hash(1), 7, 1, "&numwant=-1&ip=host.example")).unwrap();
    assert!(req.compact && !req.no_peer_id);
    assert_eq!(
        (req.left, req.numwant, req.ip, req.event),
        (None, None, None, Event::None)
    );
    for (event, expected) in [
        ("started", Event::Started),
        ("stopped", Event::Stopped),
        ("", Event::None),
        ("empty", Event::None),
        ("paused", Event::None),
    ] {
        let q = query(hash(1), 7, 1, &format!("&event={event}"));
        assert_eq!(AnnounceRequest::parse(&q).unwrap().event, expected);
    }
}

#[test]
fn malformed_queries_are_errors() {
    let ih = enc(&hash(1));
    let pid = enc(&[7; 20]);
    let cases = [
        (
            format!("peer_id={pid}&port=1"),
            TrackerError::Missing("info_hash"),
        ),
        (
            format!("info_hash={ih}&port=1"),
            TrackerError::Missing("peer_id"),
        ),
        (
            format!("info_hash={ih}&peer_id={pid}"),
            TrackerError::Missing("port"),
        ),
        (
            format!("info_hash={}&peer_id={pid}&port=1", enc(&[1; 19])),
            TrackerError::Invalid("info_hash"),
        ),
        (
            format!("info_hash={}&peer_id={pid}&port=1", enc(&[1; 21])),
            TrackerError::Invalid("info_hash"),
        ),
        (
            format!("info_hash={ih}&peer_id=short&port=1"),
            TrackerError::Invalid("peer_id"),
        ),
        (
            format!("info_hash={ih}&peer_id={pid}&port=abc"),
            TrackerError::Invalid("port"),
        ),
        (
            format!("info_hash={ih}&peer_id={pid}&port=0"),
            TrackerError::Invalid("port"),
        ),
        (
            format!("info_hash={ih}&peer_id={pid}&port=70000"),
            TrackerError::Invalid("port"),
        ),
        (
            format!("info_hash={ih}&peer_id={pid}&port=-1"),
            TrackerError::Invalid("port"),
        ),
        (
            format!("info_hash={ih}&peer_id={pid}&port=1&left=x"),
            TrackerError::Invalid("left"),
        ),
        (
            format!("info_hash={ih}&peer_id={pid}&port=1&compact=2"),
            TrackerError::Invalid("compact"),
        ),
        (
            format!("info_hash={ih}&peer_id={pid}&port=1&event=bogus"),
            TrackerError::Invalid("event"),
        ),
        (
            format!("info_hash={ih}&peer_id={pid}&port=1&numwant=many"),
            TrackerError::Invalid("numwant"),
        ),
        (
            format!("info_hash={ih}&info_hash={ih}&peer_id={pid}&port=1"),
            TrackerError::Repeated("info_hash"),
        ),
        (
            format!("info_hash={ih}%&peer_id={pid}&port=1"),
            TrackerError::BadPercentEncoding,
        ),
        (String::new(), TrackerError::Missing("info_hash")),
    ];
    for (q, err) in cases {
        assert_eq!(AnnounceRequest::parse(&q), Err(err), "{q}");
    }
    let mut t = tracker();
    assert_eq!(
        t.handle(&format!("peer_id={pid}&port=1"), src("10.0.0.1:1"), 0),
        b"d14:failure reason17:missing info_hashe"
    );
    assert_eq!(t.peers_known(0), 0);
}

#[test]
fn unknown_torrents_are_refused() {
    let mut t = tracker();
    assert!(!t.register(hash(1)), "already registered");
    assert_eq!(t.torrents(), vec![hash(1)]);
    let req = AnnounceRequest::parse(&query(hash(2), 7, 6881, "")).unwrap();
    assert_eq!(
        t.announce(&req, src("10.0.0.1:1"), 0),
        Err(TrackerError::UnknownTorrent)
    );
    assert_eq!(
        t.handle(&query(hash(2), 7, 6881, ""), src("10.0.0.1:1"), 0),
        b"d14:failure reason15:unknown torrente"
    );
    announce(&mut t, &query(hash(1), 7, 6881, ""), "10.0.0.1:1", 0);
    assert!(t.remove_torrent(&hash(1)));
    assert!(!t.remove_torrent(&hash(1)));
    assert!(t.torrents().is_empty() && !t.is_registered(&hash(1)));
    assert_eq!(t.peers_known(0), 0);
    assert_eq!(
        t.handle(&query(hash(1), 7, 6881, ""), src("10.0.0.1:1"), 0),
        b"d14:failure reason15:unknown torrente"
    );
}

#[test]
fn compact_ipv4_is_byte_exact() {
    let mut t = tracker();
    let first = announce(
        &mut t,
        &query(hash(1), 1, 6881, "&left=100&event=started"),
        "10.0.0.1:40000",
        0,
    );
    let mut expected = head(0, 1);
    expected.extend_from_slice(b"5:peers0:e");
    assert_eq!(first, expected, "alone: not given itself");
    let body = announce(
        &mut t,
        &query(hash(1), 2, 6882, "&left=100&compact=1"),
        "10.0.0.2:40001",
        SEC,
    );
    let mut expected = head(0, 2);
    expected.extend_from_slice(b"5:peers6:\x0a\x00\x00\x01\x1a\xe1e");
    assert_eq!(body, expected);
    assert_eq!(t.swarm_counts(&hash(1), SEC), Some((0, 2)));
}

#[test]
fn compact_ipv6_is_byte_exact() {
    let mut t = tracker();
    announce(
        &mut t,
        &query(hash(1), 1, 6881, "&left=0"),
        "[2001:db8::1]:40000",
        0,
    );
    let body = announce(
        &mut t,
        &query(hash(1), 2, 6882, "&left=100"),
        "10.0.0.2:40001",
        0,
    );
    let mut expected = head(1, 1);
    expected.extend_from_slice(b"5:peers0:6:peers618:");
    expected.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expected.extend_from_slice(&[0x1a, 0xe1, b'e']);
    assert_eq!(body, expected);
    // An IPv4-mapped source (dual-stack socket) is an IPv4 peer.
    let mut t = tracker();
    announce(
        &mut t,
        &query(hash(1), 1, 6881, ""),
        "[::ffff:10.0.0.1]:40000",
        0,
    );
    let body = announce(&mut t, &query(hash(1), 2, 6882, ""), "10.0.0.2:40001", 0);
    let mut expected = head(0, 2);
    expected.extend_from_slice(b"5:peers6:\x0a\x00\x00\x01\x1a\xe1e");
    assert_eq!(body, expected);
}

#[test]
fn dictionary_peers_when_not_compact() {
    let mut t = tracker();
    announce(
        &mut t,
        &query(hash(1), b'A', 6881, "&left=0"),
        "10.0.0.1:40000",
        0,
    );
    let body = announce(
        &mut t,
        &query(hash(1), 2, 6882, "&compact=0"),
        "10.0.0.2:1",
        0,
    );
    let mut expected = head(1, 1);
    expected.extend_from_slice(
        b"5:peersld2:ip8:10.0.0.17:peer id20:AAAAAAAAAAAAAAAAAAAA4:porti6881eeee",
    );
    assert_eq!(body, expected);
    let body = announce(
        &mut t,
        &query(hash(1), 2, 6882, "&compact=0&no_peer_id=1"),
        "10.0.0.2:1",
        0,
    );
    let mut expected = head(1, 1);
    expected.extend_from_slice(b"5:peersld2:ip8:10.0.0.14:porti6881eeee");
    assert_eq!(body, expected);
}

#[test]
fn peers_expire_by_age_and_stopped_removes() {
    let mut t = tracker();
    announce(&mut t, &query(hash(1), 1, 6881, ""), "10.0.0.1:1", 0);
    announce(&mut t, &query(hash(1), 3, 6883, ""), "10.0.0.3:1", 20 * SEC);
    assert_eq!(t.peers_known(29 * SEC), 2);
    let body = announce(&mut t, &query(hash(1), 2, 6882, ""), "10.0.0.2:1", 29 * SEC);
    assert_eq!(compact_count(&body), 2);
    // Peer 1 was last seen at 0; the TTL is 30 s.
    assert_eq!(t.peers_known(30 * SEC), 2);
    let body = announce(&mut t, &query(hash(1), 2, 6882, ""), "10.0.0.2:1", 30 * SEC);
    assert_eq!(compact_count(&body), 1);
    assert!(body.starts_with(&head(0, 2)));
    // Re-announcing keeps a peer alive.
    assert_eq!(t.peers_known(55 * SEC), 1);
    assert_eq!(t.purge(55 * SEC), 1);
    // Stopped removes at once and gets no peers.
    announce(&mut t, &query(hash(1), 1, 6881, ""), "10.0.0.1:1", 56 * SEC);
    let body = announce(
        &mut t,
        &query(hash(1), 2, 6882, "&event=stopped"),
        "10.0.0.2:1",
        56 * SEC,
    );
    let mut expected = head(0, 1);
    expected.extend_from_slice(b"5:peers0:e");
    assert_eq!(body, expected);
    assert_eq!(t.peers_known(56 * SEC), 1);
}

#[test]
fn numwant_is_honoured_and_capped() {
    let mut t = tracker();
    for p in 1..=10u8 {
        announce(
            &mut t,
            &query(hash(1), p, 6000 + u16::from(p), ""),
            &format!("10.0.0.{p}:1"),
            0,
        );
    }
    let q = |extra: &str| query(hash(1), 1, 6001, extra);
    assert_eq!(
        compact_count(&announce(&mut t, &q("&numwant=3"), "10.0.0.1:1", 0)),
        3
    );
    assert_eq!(
        compact_count(&announce(&mut t, &q("&numwant=0"), "10.0.0.1:1", 0)),
        0
    );
    // Capped at max_peers_per_reply (4); -1 and absent mean the maximum.
    assert_eq!(
        compact_count(&announce(&mut t, &q("&numwant=100"), "10.0.0.1:1", 0)),
        4
    );
    assert_eq!(
        compact_count(&announce(&mut t, &q("&numwant=-1"), "10.0.0.1:1", 0)),
        4
    );
    let body = announce(&mut t, &q(""), "10.0.0.1:1", 0);
    assert_eq!(compact_count(&body), 4);
    // Distinct peers, never the announcer itself.
    let start = body.windows(7).position(|w| w == b"5:peers").unwrap() + 10;
    let mut seen: Vec<&[u8]> = body[start..start + 24].chunks(6).collect();
    assert!(seen.iter().all(|p| p[3] != 1));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4);
}

#[test]
fn seeds_get_only_leechers() {
    let mut t = tracker();
    announce(&mut t, &query(hash(1), 1, 6001, "&left=0"), "10.0.0.1:1", 0);
    announce(&mut t, &query(hash(1), 2, 6002, "&left=5"), "10.0.0.2:1", 0);
    let body = announce(&mut t, &query(hash(1), 3, 6003, "&left=0"), "10.0.0.3:1", 0);
    let mut expected = head(2, 1);
    expected.extend_from_slice(b"5:peers6:\x0a\x00\x00\x02\x17\x72e");
    assert_eq!(body, expected);
}

#[test]
fn ip_parameter_only_from_loopback() {
    let mut t = tracker();
    // A local process may name the address others should dial...
    announce(
        &mut t,
        &query(hash(1), 1, 6881, "&ip=10.9.9.9"),
        "127.0.0.1:1",
        0,
    );
    // ...a remote one may not.
    announce(
        &mut t,
        &query(hash(1), 2, 6882, "&ip=192.0.2.7"),
        "10.0.0.2:1",
        0,
    );
    let body = announce(
        &mut t,
        &query(hash(1), 3, 6883, "&numwant=10"),
        "10.0.0.3:1",
        0,
    );
    let mut expected = head(0, 3);
    expected.extend_from_slice(b"5:peers12:\x0a\x09\x09\x09\x1a\xe1\x0a\x00\x00\x02\x1a\xe2e");
    assert_eq!(body.len(), expected.len());
    assert!(body.windows(6).any(|w| w == b"\x0a\x09\x09\x09\x1a\xe1"));
    assert!(body.windows(6).any(|w| w == b"\x0a\x00\x00\x02\x1a\xe2"));
}

#[test]
fn peers_per_torrent_are_capped() {
    let mut t = Tracker::new(TrackerConfig {
        max_peers_per_torrent: 2,
        ..Default::default()
    });
    t.register(hash(1));
    for p in 1..=3u8 {
        announce(
            &mut t,
            &query(hash(1), p, 6000, ""),
            &format!("10.0.0.{p}:1"),
            0,
        );
    }
    assert_eq!(t.peers_known(0), 2);
    // The third peer is answered, just not stored.
    let body = announce(&mut t, &query(hash(1), 3, 6000, ""), "10.0.0.3:1", 0);
    assert_eq!(compact_count(&body), 2);
}

/// The IPv4 peers of a compact reply, in order.
fn compact_peers(body: &[u8]) -> Vec<SocketAddr> {
    let at = body.windows(7).position(|w| w == b"5:peers").unwrap() + 7;
    let colon = body[at..].iter().position(|&b| b == b':').unwrap();
    let start = at + colon + 1;
    body[start..start + 6 * compact_count(body)]
        .chunks(6)
        .map(|c| {
            let ip = std::net::Ipv4Addr::new(c[0], c[1], c[2], c[3]);
            SocketAddr::from((ip, u16::from_be_bytes([c[4], c[5]])))
        })
        .collect()
}

#[test]
fn initial_seeding_hands_out_the_super_seed_to_the_first_peers_only() {
    let mut t = Tracker::new(TrackerConfig {
        super_seed_fanout: 2,
        max_peers_per_reply: 50,
        ..Default::default()
    });
    t.register(hash(1));
    let seed = src("10.0.0.100:7000");
    t.set_super_seed(seed, [100; 20]);
    // Its own announce changes nothing: it is listed once.
    announce(
        &mut t,
        &query(hash(1), 100, 7000, "&left=0"),
        "10.0.0.100:1",
        0,
    );
    let ask = |t: &mut Tracker, p: u8| {
        let body = announce(
            t,
            &query(hash(1), p, 6000, "&left=5"),
            &format!("10.0.0.{p}:1"),
            0,
        );
        compact_peers(&body)
    };
    // The first two get the super seed, first in the list.
    assert_eq!(ask(&mut t, 1), vec![seed]);
    assert_eq!(ask(&mut t, 2)[0], seed);
    // The third and later get the peers only.
    for p in 3..=6 {
        let peers = ask(&mut t, p);
        assert!(!peers.contains(&seed), "peer {p} got the super seed");
        assert_eq!(peers.len(), usize::from(p) - 1);
    }
    // A granted peer keeps getting it on re-announce.
    assert_eq!(ask(&mut t, 1)[0], seed);
    // Where another seed has the torrent, nobody new gets the super seed.
    t.register(hash(3));
    let other = announce(
        &mut t,
        &query(hash(3), 50, 6050, "&left=0"),
        "10.0.0.50:1",
        0,
    );
    assert!(compact_peers(&other).is_empty(), "a seed gets no seeds");
    let body = announce(&mut t, &query(hash(3), 7, 6000, "&left=5"), "10.0.0.7:1", 0);
    assert_eq!(compact_peers(&body), vec![src("10.0.0.50:6050")]);
    // A seed not heard for more than about an interval may have dropped the crumb
    // (librqbit never says `stopped`): it no longer stands in for the super seed.
    let q = query(hash(3), 8, 6000, "&left=5");
    let body = announce(&mut t, &q, "10.0.0.8:1", 20 * SEC);
    assert_eq!(compact_peers(&body)[0], seed);
    assert_eq!(t.super_seed_grants(), 4);
    t.remove_torrent(&hash(3));
    assert_eq!(t.swarm_counts(&hash(1), 0), Some((1, 6)));
    // A peer alone with the super seed gets it whatever the fanout: here the
    // only other peers left.
    for p in 1..=6u8 {
        let q = query(hash(1), p, 6000, "&event=stopped");
        announce(&mut t, &q, &format!("10.0.0.{p}:1"), 0);
    }
    assert_eq!(ask(&mut t, 9), vec![seed]);
    // Fanout 0: everyone gets it (and the sample may put it anywhere), even
    // before the super seed's own first announce.
    let mut t = tracker();
    t.set_super_seed(seed, [100; 20]);
    for p in 1..=3 {
        assert!(ask(&mut t, p).contains(&seed));
    }
    // Seeds get no super seed.
    let body = announce(&mut t, &query(hash(1), 8, 6000, "&left=0"), "10.0.0.8:1", 0);
    assert!(!compact_peers(&body).contains(&seed));
}

/// A Segment's crumb 1 has its own fanout: here three first downloaders where the
/// enhancement crumbs have one.
#[test]
fn crumb_1_has_its_own_fanout() {
    let mut t = Tracker::new(TrackerConfig {
        super_seed_fanout: 1,
        first_crumb_fanout: Some(3),
        ..Default::default()
    });
    let seed = src("10.0.0.100:7000");
    t.set_super_seed(seed, [100; 20]);
    assert!(t.register_first_crumb(hash(1)));
    assert!(t.register(hash(2)));
    assert!(!t.register_first_crumb(hash(2)), "registered already");
    let got_seed = |t: &mut Tracker, h: u8, p: u8| {
        let q = query(hash(h), p, 6000, "&left=5");
        compact_peers(&announce(t, &q, &format!("10.0.0.{p}:1"), 0)).contains(&seed)
    };
    let crumb1: Vec<bool> = (1..=5).map(|p| got_seed(&mut t, 1, p)).collect();
    let crumb2: Vec<bool> = (1..=5).map(|p| got_seed(&mut t, 2, p)).collect();
    assert_eq!(crumb1, [true, true, true, false, false]);
    assert_eq!(crumb2, [true, false, false, false, false]);
    // Without its own fanout, crumb 1 follows the others'.
    let mut t = Tracker::new(TrackerConfig {
        super_seed_fanout: 1,
        ..Default::default()
    });
    t.set_super_seed(seed, [100; 20]);
    t.register_first_crumb(hash(1));
    let crumb1: Vec<bool> = (1..=3).map(|p| got_seed(&mut t, 1, p)).collect();
    assert_eq!(crumb1, [true, false, false]);
}

#[test]
fn a_weak_peers_grant_leaves_the_super_seed_to_the_first_strong_ones() {
    use Strength::{Strong, Weak};
    let seed = src("10.0.0.100:7000");
    // Who gets the super seed when peers 1.. announce in order with these strengths.
    let grants = |fanout: u32, order: &[Strength]| -> Vec<bool> {
        let mut t = Tracker::new(TrackerConfig {
            super_seed_fanout: fanout,
            ..Default::default()
        });
        t.set_super_seed(seed, [100; 20]);
        t.register(hash(1));
        (1u8..)
            .zip(order)
            .map(|(p, s)| {
                let q = query(hash(1), p, 6000, "&left=5");
                let req = AnnounceRequest::parse(&q).unwrap();
                let body = t
                    .announce_from(&req, src(&format!("10.0.0.{p}:1")), 0, *s)
                    .unwrap();
                compact_peers(&body).contains(&seed)
            })
            .collect()
    };
    // The first (weak) one is alone with the super seed; the next weak one is not
    // granted, the first strong one is, and nobody after it.
    assert_eq!(
        grants(1, &[Weak, Weak, Strong, Strong, Weak]),
        [true, false, true, false, false]
    );
    // A strong peer first: the fanout is used up, as before.
    assert_eq!(grants(1, &[Strong, Weak, Strong]), [true, false, false]);
    // An audience of one strength gets `fanout` grants, whichever strength it is.
    assert_eq!(grants(2, &[Weak; 5]), [true, true, false, false, false]);
    assert_eq!(grants(2, &[Strong; 5]), [true, true, false, false, false]);
    // At most twice the fanout in all: two weak, then two strong.
    assert_eq!(
        grants(2, &[Weak, Weak, Weak, Strong, Weak, Strong, Strong]),
        [true, true, false, true, false, true, false]
    );
    // A granted peer keeps its grant at its next announce, whatever it is now.
    let mut t = Tracker::new(TrackerConfig {
        super_seed_fanout: 1,
        ..Default::default()
    });
    t.set_super_seed(seed, [100; 20]);
    t.register(hash(1));
    let mut ask = |p: u8, s: Strength| {
        let q = query(hash(1), p, 6000, "&left=5");
        let req = AnnounceRequest::parse(&q).unwrap();
        let body = t
            .announce_from(&req, src(&format!("10.0.0.{p}:1")), 0, s)
            .unwrap();
        compact_peers(&body).contains(&seed)
    };
    assert!(ask(1, Weak));
    assert!(ask(2, Strong));
    assert!(ask(1, Strong) && ask(2, Weak), "grants are kept");
    assert!(!ask(3, Strong), "two grants, one of each, used up");
}

#[test]
fn scrape_counts_seeds_leechers_and_the_super_seed() {
    let mut t = tracker();
    assert!(t.register(hash(2)));
    announce(
        &mut t,
        &query(hash(1), 7, 6881, "&left=0"),
        "127.0.0.2:1",
        0,
    );
    announce(
        &mut t,
        &query(hash(1), 8, 6882, "&left=5"),
        "127.0.0.3:1",
        0,
    );
    let one = format!("20:{}", String::from_utf8_lossy(&hash(1)));
    let two = format!("20:{}", String::from_utf8_lossy(&hash(2)));
    let f1 = "d8:completei1e10:downloadedi0e10:incompletei1ee";
    let f2 = "d8:completei0e10:downloadedi0e10:incompletei0ee";
    // One torrent asked; an unknown one is left out.
    let body = t.scrape(
        &format!("info_hash={}&info_hash={}", enc(&hash(1)), enc(&hash(9))),
        SEC,
    );
    assert_eq!(body, format!("d5:filesd{one}{f1}ee").into_bytes());
    // No info_hash: every torrent, in key order.
    let body = t.scrape("", SEC);
    assert_eq!(body, format!("d5:filesd{one}{f1}{two}{f2}ee").into_bytes());
    // The super seed is a seed of every torrent from the start.
    t.set_super_seed(src("127.0.0.1:6000"), [0xee; 20]);
    let body = t.scrape(&format!("info_hash={}", enc(&hash(2))), SEC);
    let f2 = "d8:completei1e10:downloadedi0e10:incompletei0ee";
    assert_eq!(body, format!("d5:filesd{two}{f2}ee").into_bytes());
    // Expired peers are not counted.
    let body = t.scrape(&format!("info_hash={}", enc(&hash(1))), 60 * SEC);
    let f1 = "d8:completei1e10:downloadedi0e10:incompletei0ee";
    assert_eq!(body, format!("d5:filesd{one}{f1}ee").into_bytes());
    // A malformed info_hash gets a failure body.
    assert!(
        t.scrape("info_hash=%41", SEC)
            .starts_with(b"d14:failure reason")
    );
}

#[test]
fn scrape_counts_of_several_trackers_join_into_one_answer() {
    let (mut a, mut b) = (
        Tracker::new(TrackerConfig::default()),
        Tracker::new(TrackerConfig::default()),
    );
    a.register([3; 20]);
    b.register([1; 20]);
    b.register([2; 20]);
    let mut files = a.scrape_counts("", 0).unwrap();
    files.extend(b.scrape_counts("", 0).unwrap());
    let body = scrape_body(files);
    let keys: Vec<usize> = [[1u8; 20], [2; 20], [3; 20]]
        .iter()
        .map(|h| body.windows(20).position(|w| w == h).unwrap())
        .collect();
    assert!(keys.is_sorted(), "bencode keys in order: {keys:?}");
    assert_eq!(body, {
        let mut all = Tracker::new(TrackerConfig::default());
        for h in [[1u8; 20], [2; 20], [3; 20]] {
            all.register(h);
        }
        all.scrape("", 0)
    });
    assert!(a.scrape_counts("info_hash=%01", 0).is_err());
}
