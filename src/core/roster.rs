// SPDX-License-Identifier: MPL-2.0
//! One torrent's peers as the tracker keeps them ([`Roster`]), built so that an
//! announce costs the same in a swarm of 10 and of 10,000.
//!
//! Why: the tracker used to scan every peer of the torrent several times per announce
//! (expiry, counts, "is another seed fresh", the reply's sample). A channel with
//! 10,000 viewers gets thousands of announces a second, each on a swarm of up to
//! `max_peers_per_torrent` (10,000): tens of millions of peer visits a second on the
//! channel's host, and the simulator could not run 10,000 announcing peers. Here
//! expiry follows a time-ordered index (only the expired are visited), counts are
//! kept, the freshest seeds are at the end of their own time index, and the reply's
//! sample draws random positions (rejecting the few peers a requester may not get)
//! instead of listing everyone.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;

use indexmap::IndexMap;

pub type PeerId = [u8; 20];

/// One peer's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    /// It announced `left=0`.
    pub seed: bool,
    /// `now` of its last announce.
    pub last_seen: u64,
}

impl Peer {
    /// Heard from within `ttl`.
    pub fn alive(&self, now: u64, ttl: u64) -> bool {
        now.saturating_sub(self.last_seen) < ttl
    }
}

/// One fewer peer under `key`; the key goes at zero.
fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

/// A swarm small enough (in peers) that the sample lists every eligible peer, as
/// the tracker always did: below it the listing is as cheap as the draws.
const LIST_ALL_BELOW: usize = 128;

/// The peers of one torrent: seeds and leechers apart (a seed's reply draws from the
/// leechers alone), each indexable by position (uniform draws), with their announce
/// times in order (expiry, freshest seeds).
#[derive(Clone, Debug, Default)]
pub struct Roster {
    seeds: IndexMap<PeerId, Peer>,
    leechers: IndexMap<PeerId, Peer>,
    /// (last_seen, id) of every peer: the oldest first.
    by_time: BTreeSet<(u64, PeerId)>,
    /// (last_seen, id) of the seeds.
    seeds_by_time: BTreeSet<(u64, PeerId)>,
    /// Peers per listen address and per port (is the super seed listed).
    addrs: HashMap<SocketAddr, usize>,
    ports: HashMap<u16, usize>,
}

impl Roster {
    pub fn len(&self) -> usize {
        self.seeds.len() + self.leechers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (seeds, leechers), expired entries included until [`Roster::prune`].
    pub fn counts(&self) -> (usize, usize) {
        (self.seeds.len(), self.leechers.len())
    }

    /// (seeds, leechers) heard from within `ttl` of `now`, without pruning.
    pub fn alive_counts(&self, now: u64, ttl: u64) -> (usize, usize) {
        let expired = |index: &BTreeSet<(u64, PeerId)>| match now.checked_sub(ttl) {
            // Alive: now - last_seen < ttl, so expired: last_seen <= now - ttl.
            Some(limit) => index.range(..=(limit, [0xff; 20])).count(),
            None => 0,
        };
        let seeds_expired = expired(&self.seeds_by_time);
        let all_expired = expired(&self.by_time);
        (
            self.seeds.len() - seeds_expired,
            self.leechers.len() - (all_expired - seeds_expired),
        )
    }

    pub fn get(&self, id: &PeerId) -> Option<&Peer> {
        self.seeds.get(id).or_else(|| self.leechers.get(id))
    }

    pub fn contains(&self, id: &PeerId) -> bool {
        self.get(id).is_some()
    }

    /// Every entry, seeds first, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.seeds.iter().chain(self.leechers.iter())
    }

    /// Adds or replaces the entry of `id`.
    pub fn upsert(&mut self, id: PeerId, peer: Peer) {
        self.remove(&id);
        self.by_time.insert((peer.last_seen, id));
        *self.addrs.entry(peer.addr).or_default() += 1;
        *self.ports.entry(peer.addr.port()).or_default() += 1;
        if peer.seed {
            self.seeds_by_time.insert((peer.last_seen, id));
            self.seeds.insert(id, peer);
        } else {
            self.leechers.insert(id, peer);
        }
    }

    pub fn remove(&mut self, id: &PeerId) -> Option<Peer> {
        let peer = match self.seeds.swap_remove(id) {
            Some(p) => {
                self.seeds_by_time.remove(&(p.last_seen, *id));
                p
            }
            None => self.leechers.swap_remove(id)?,
        };
        self.by_time.remove(&(peer.last_seen, *id));
        release(&mut self.addrs, peer.addr);
        release(&mut self.ports, peer.addr.port());
        Some(peer)
    }

    /// Drops the peers not heard from within `ttl`; returns how many. Visits only them.
    pub fn prune(&mut self, now: u64, ttl: u64) -> usize {
        let mut removed = 0;
        while let Some(&(t, id)) = self.by_time.first() {
            if now.saturating_sub(t) < ttl {
                break;
            }
            self.remove(&id);
            removed += 1;
        }
        removed
    }

    /// Whether a peer listens at `addr`; an unspecified IP matches any peer on its
    /// port (the super seed's address as the channel knows it).
    pub fn lists(&self, addr: SocketAddr) -> bool {
        if addr.ip().is_unspecified() {
            self.ports.contains_key(&addr.port())
        } else {
            self.addrs.contains_key(&addr)
        }
    }

    /// The seeds heard from at or after `since`, the freshest first.
    pub fn seeds_since(&self, since: u64) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.seeds_by_time
            .range((since, [0; 20])..)
            .rev()
            .filter_map(|(_, id)| self.seeds.get_key_value(id))
    }

    /// Up to `want` peers drawn uniformly from those `eligible` says the requester
    /// may get: the leechers only when `leechers_only` (a seed has nothing to fetch),
    /// else everyone. `random` gives the draws. Small swarms are listed and shuffled;
    /// large ones get random positions, the ineligible and repeats rejected, listed
    /// after all when the draws do not find enough (most peers ineligible).
    pub fn sample(
        &self,
        want: usize,
        leechers_only: bool,
        mut random: impl FnMut() -> u64,
        eligible: impl Fn(&PeerId, &Peer) -> bool,
    ) -> Vec<(PeerId, SocketAddr)> {
        let pool = if leechers_only {
            self.leechers.len()
        } else {
            self.len()
        };
        // Position i of the pool: the seeds (unless leechers only), then the leechers.
        let seeds = if leechers_only { 0 } else { self.seeds.len() };
        let at = |i: usize| {
            if i < seeds {
                self.seeds.get_index(i)
            } else {
                self.leechers.get_index(i - seeds)
            }
        };
        if want == 0 || pool == 0 {
            return Vec::new();
        }
        if pool >= LIST_ALL_BELOW {
            let mut drawn = HashSet::new();
            let mut out = Vec::with_capacity(want);
            for _ in 0..4 * want + 16 {
                let i = (random() % pool as u64) as usize;
                if !drawn.insert(i) {
                    continue;
                }
                if let Some((id, p)) = at(i)
                    && eligible(id, p)
                {
                    out.push((*id, p.addr));
                    if out.len() == want {
                        return out;
                    }
                }
            }
        }
        // Partial Fisher-Yates over the eligible list: a uniform sample.
        let mut all: Vec<(PeerId, SocketAddr)> = (0..pool)
            .filter_map(at)
            .filter(|(id, p)| eligible(id, p))
            .map(|(id, p)| (*id, p.addr))
            .collect();
        let take = want.min(all.len());
        for i in 0..take {
            let span = (all.len() - i) as u64;
            let j = i + (random() % span) as usize;
            all.swap(i, j);
        }
        all.truncate(take);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> PeerId {
        let mut id = [0; 20];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id
    }

    fn peer(n: u32, seed: bool, at: u64) -> Peer {
        Peer {
            addr: SocketAddr::from(([127, 0, (n >> 8) as u8, n as u8], 6881)),
            seed,
            last_seen: at,
        }
    }

    fn rng() -> impl FnMut() -> u64 {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn counts_follow_upserts_removals_and_expiry() {
        let mut r = Roster::default();
        r.upsert(id(1), peer(1, false, 10));
        r.upsert(id(2), peer(2, true, 20));
        r.upsert(id(3), peer(3, false, 30));
        assert_eq!(r.counts(), (1, 2));
        // A leecher that completes moves to the seeds.
        r.upsert(id(1), peer(1, true, 40));
        assert_eq!(r.counts(), (2, 1));
        // Alive within 25 of 50: 30 and 40 (20 is expired: 50 - 20 >= 25).
        assert_eq!(r.alive_counts(50, 25), (1, 1));
        assert_eq!(r.counts(), (2, 1), "alive_counts does not prune");
        assert_eq!(r.prune(50, 25), 1);
        assert!(!r.contains(&id(2)));
        assert_eq!(r.counts(), (1, 1));
        assert_eq!(r.remove(&id(3)).map(|p| p.last_seen), Some(30));
        assert_eq!(r.remove(&id(3)), None);
        assert_eq!(r.counts(), (1, 0));
        assert_eq!(r.prune(1_000, 25), 1);
        assert!(r.is_empty());
        assert!(r.by_time.is_empty() && r.seeds_by_time.is_empty());
        assert!(r.addrs.is_empty() && r.ports.is_empty());
    }

    #[test]
    fn lists_by_address_or_by_port_alone() {
        let mut r = Roster::default();
        r.upsert(id(1), peer(1, true, 0));
        assert!(r.lists(SocketAddr::from(([127, 0, 0, 1], 6881))));
        assert!(!r.lists(SocketAddr::from(([127, 0, 0, 2], 6881))));
        assert!(r.lists(SocketAddr::from(([0, 0, 0, 0], 6881))));
        assert!(!r.lists(SocketAddr::from(([0, 0, 0, 0], 6882))));
        // The peer moves: its old address is no longer listed.
        let mut moved = peer(1, true, 1);
        moved.addr = SocketAddr::from(([127, 0, 0, 9], 7000));
        r.upsert(id(1), moved);
        assert!(!r.lists(SocketAddr::from(([0, 0, 0, 0], 6881))));
        assert!(r.lists(SocketAddr::from(([127, 0, 0, 9], 7000))));
    }

    #[test]
    fn freshest_seeds_first() {
        let mut r = Roster::default();
        r.upsert(id(1), peer(1, true, 10));
        r.upsert(id(2), peer(2, false, 50));
        r.upsert(id(3), peer(3, true, 40));
        r.upsert(id(4), peer(4, true, 20));
        let fresh: Vec<_> = r.seeds_since(20).map(|(i, _)| *i).collect();
        assert_eq!(fresh, vec![id(3), id(4)]);
        assert_eq!(r.seeds_since(41).count(), 0);
    }

    /// Small and large swarms alike: no repeats, only eligible peers, at most
    /// `want`, leechers only when asked, and every eligible peer drawn about as
    /// often as the others.
    #[test]
    fn samples_are_uniform_over_the_eligible() {
        for n in [10u32, 1_000] {
            let mut r = Roster::default();
            for k in 0..n {
                r.upsert(id(k), peer(k, k % 2 == 0, u64::from(k)));
            }
            let mut random = rng();
            let mut hits = vec![0u32; n as usize];
            // About 100 draws per peer either way.
            let rounds = 20 * n;
            for _ in 0..rounds {
                // Peer 1 is the requester.
                let s = r.sample(5, false, &mut random, |i, _| *i != id(1));
                assert_eq!(s.len(), 5);
                let distinct: HashSet<_> = s.iter().map(|(i, _)| *i).collect();
                assert_eq!(distinct.len(), 5);
                for (i, _) in s {
                    hits[u32::from_be_bytes(i[..4].try_into().unwrap()) as usize] += 1;
                }
            }
            assert_eq!(hits[1], 0);
            let expected = f64::from(rounds * 5) / f64::from(n - 1);
            // Poisson around 100: within 4.5 standard deviations of it.
            let (lo, hi) = (0.55, 1.45);
            for (k, &h) in hits.iter().enumerate().filter(|(k, _)| *k != 1) {
                let ratio = f64::from(h) / expected;
                assert!((lo..hi).contains(&ratio), "n {n}, peer {k}: {ratio}");
            }
            let leechers = r.sample(50, true, &mut random, |_, _| true);
            assert!(leechers.iter().all(|(i, _)| !r.get(i).unwrap().seed));
            assert_eq!(leechers.len(), 50.min(n as usize / 2));
        }
    }

    /// When almost nobody is eligible, the draws give up and the list finds them.
    #[test]
    fn a_sample_finds_the_few_eligible_in_a_large_swarm() {
        let mut r = Roster::default();
        for k in 0..5_000 {
            r.upsert(id(k), peer(k, false, 0));
        }
        let few = [id(17), id(4_321)];
        let s = r.sample(50, false, rng(), |i, _| few.contains(i));
        let got: HashSet<_> = s.iter().map(|(i, _)| *i).collect();
        assert_eq!(got, few.into_iter().collect());
        assert!(r.sample(50, false, rng(), |_, _| false).is_empty());
        assert!(r.sample(0, false, rng(), |_, _| true).is_empty());
    }
}
