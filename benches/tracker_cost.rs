// SPDX-License-Identifier: MPL-2.0
//! Cost of one announce to the channel's tracker in a crumb's swarm of 10,000 peers
//! (a channel with that audience; `max_peers_per_torrent`) against one of 10.
//!
//! Each announce is the whole path of a real one after HTTP: the query string parsed,
//! the peer refreshed, the reply's sample drawn and bencoded. Half the peers are
//! seeds (they get leechers only), half leechers; the super seed is set, so initial
//! seeding's checks run too. Runs of the two sizes alternate, so that a slow spell of
//! the machine hits both alike, and medians are reported; the ratio is the figure
//! (1 would be a cost independent of the swarm).
//!
//! Run with `cargo bench --bench tracker_cost`.

use std::net::SocketAddr;
use std::time::Instant;

use gstcrumbs::core::time::SEC;
use gstcrumbs::core::tracker::{Tracker, TrackerConfig};

/// Runs of each size; odd, so the median is one run.
const RUNS: usize = 9;
/// Announces timed per run.
const ANNOUNCES: u64 = 20_000;
const INFO_HASH: [u8; 20] = [7; 20];

fn percent(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn peer_id(n: u64) -> [u8; 20] {
    let mut id = *b"-CR0001-000000000000";
    id[8..16].copy_from_slice(&n.to_be_bytes());
    id
}

fn source(n: u64) -> SocketAddr {
    let n = n as u32;
    SocketAddr::from(([127, (n >> 16) as u8, (n >> 8) as u8, n as u8], 6881))
}

fn query(n: u64, seed: bool) -> String {
    format!(
        "info_hash={}&peer_id={}&port=6881&uploaded=0&downloaded=0&left={}&compact=1",
        percent(&INFO_HASH),
        percent(&peer_id(n)),
        if seed { 0 } else { 100_000 }
    )
}

/// A tracker whose one crumb has `peers` peers (half of them seeds), at `now`.
fn swarm(peers: u64, now: u64) -> Tracker {
    let mut t = Tracker::new(TrackerConfig::default());
    t.set_super_seed(SocketAddr::from(([127, 0, 0, 1], 5000)), [9; 20]);
    t.register(INFO_HASH);
    for n in 0..peers {
        t.handle(&query(n, n.is_multiple_of(2)), source(n), now);
    }
    t
}

/// Nanoseconds per announce: peers re-announce in turn, as librqbit's do every
/// interval.
fn run(peers: u64) -> f64 {
    let now = 10 * SEC;
    let mut t = swarm(peers, now);
    let started = Instant::now();
    let mut bytes = 0;
    for k in 0..ANNOUNCES {
        let n = (k * 7_919) % peers;
        bytes += t
            .handle(&query(n, n.is_multiple_of(2)), source(n), now + k)
            .len();
    }
    let ns = started.elapsed().as_nanos() as f64 / ANNOUNCES as f64;
    assert!(bytes > 0);
    ns
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (mut small, mut large) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        small.push(run(10));
        large.push(run(10_000));
    }
    let (small, large) = (median(small), median(large));
    println!("tracker announce, median of {RUNS} runs of {ANNOUNCES}:");
    println!("  swarm of 10 peers      {:>9.2} us", small / 1e3);
    println!("  swarm of 10,000 peers  {:>9.2} us", large / 1e3);
    println!("  ratio 10,000 / 10      {:>9.2}", large / small);
}
