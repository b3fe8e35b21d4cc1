// SPDX-License-Identifier: MPL-2.0
//! How many weak lines may fetch their urgent crumb 1 from the super seed alone: the
//! channel's share, published in its window (`sole_source_share`).
//!
//! A line that needs over half of |s| for crumb 1 fetches an urgent crumb 1 from the
//! super seed alone (`core::client`, `SOLE_SOURCE_SHARE`): a second source on such a
//! line brings pieces twice and loses the Segment. That holds while the super seed
//! has room for those crumbs, and at scale it has none: in the simulator at 10,000
//! peers (a quarter of them ADSL) every ADSL client asked the super seed for each
//! crumb 1 alone, its link split between some 2,500 of them, and ADSL played 0.81 of
//! its Segments (0.997 with peers beside the super seed).
//!
//! The channel learns it from the clients' reports: a report says whether its crumb 1
//! was asked of the super seed alone (`ReportDoc::sole_source`) and whether the
//! Segment played. Such reports are votes, one per sending address (as rho's: an
//! IPv4 address or an IPv6 /64, each worth its reports' failed share), so that one
//! address cannot drive the share down with made-up clients. With each Segment
//! published, once [`MIN_EVIDENCE`] addresses voted, the share halves when more than
//! [`FAIL_SHARE`] of the votes are failures and grows otherwise; with no vote at all
//! it grows too (nothing says the super seed lacks room); with a few it waits for
//! more, up to [`MAX_WAIT`] Segments, and then grows (in the simulator at 10,000
//! peers the share came down to 1/16 and stayed there for good without that: the
//! few weak lines that still went alone never made 16 votes). A channel whose
//! clients share one address (loopback) never judges it. It grows by a quarter, and
//! at least by [`RECOVER_STEP`]. Why reports and not the super seed's own upload: the
//! share of its link crumbs 1 take says nothing where the link is shaped outside the
//! channel (no `max-upload-rate`: crumbs 1 then share it with enhancement pieces; in
//! the simulator crumbs 1 were 0.15-0.6 of it while the ADSL clients lost a fifth of
//! their Segments). Where the audience is small (the swarm bench's three to five ADSL
//! clients) the evidence comes slowly and one loss in it is under the bar.
//!
//! What an attacker with many addresses (each announced as a peer of the channel)
//! can still do: report failed sole-source Segments and hold the share at 0. Weak
//! lines then fetch an urgent crumb 1 from the super seed beside their peers, as
//! before the sole source existed (the swarm bench's ADSL clients lost a Segment now
//! and then that way, docs/swarm.md, seventeenth round): a cost in continuity for
//! weak lines, never their base layer as a whole.
//!
//! A client goes alone for a Segment only when its draw for that Segment ([`draw`],
//! spread by the client's own key) is under the share, so that a share of 0.1 sends
//! a tenth of the weak lines' urgent crumbs 1 to the super seed alone, different
//! ones each Segment.

use std::collections::HashMap;

use super::feedback::Voter;

/// Addresses (votes) with reports of crumbs 1 fetched alone needed before the share
/// is judged.
pub const MIN_EVIDENCE: usize = 16;

/// Addresses counted between two judgements at most (the map is bounded; any more
/// are that many votes already).
pub const MAX_VOTERS: usize = 4096;

/// Segments the votes may gather for before the share grows without a judgement.
pub const MAX_WAIT: u32 = 8;

/// The share halves when more than this share of the votes are failures.
pub const FAIL_SHARE: f64 = 0.1;

/// The least the share grows by: from next to nothing back to 1 in about 17
/// Segments (the quarter's growth does the rest above 1/16).
pub const RECOVER_STEP: f64 = 1.0 / 64.0;

/// The channel's side: the share of weak lines' urgent crumbs 1 the super seed may
/// serve alone.
#[derive(Clone, Debug)]
pub struct SoleSourceGate {
    share: f64,
    /// Reports of crumbs 1 fetched alone since the share was last judged, by sending
    /// address: (reports, failed). One address, one vote (as rho's).
    votes: HashMap<Voter, (u32, u32)>,
    /// Segments published since the votes began to gather.
    waited: u32,
    /// The failed share of the votes the share was last judged on.
    last_failed_share: Option<f64>,
}

impl Default for SoleSourceGate {
    fn default() -> Self {
        Self::new()
    }
}

impl SoleSourceGate {
    /// Every weak line may go alone until the reports say otherwise.
    pub fn new() -> Self {
        SoleSourceGate {
            share: 1.0,
            votes: HashMap::new(),
            waited: 0,
            last_failed_share: None,
        }
    }

    /// A counted report from `voter`: whether its crumb 1 was asked of the super seed
    /// alone, and whether its Segment played.
    pub fn on_report(&mut self, voter: Voter, sole_source: bool, successful: bool) {
        if !sole_source || (self.votes.len() >= MAX_VOTERS && !self.votes.contains_key(&voter)) {
            return;
        }
        let (n, failed) = self.votes.entry(voter).or_default();
        *n = n.saturating_add(1);
        *failed = failed.saturating_add(u32::from(!successful));
    }

    /// A Segment is published: the share for its window.
    pub fn on_segment(&mut self) {
        let grow = match self.votes.len() {
            n if n < MIN_EVIDENCE => {
                // Too few votes: wait for more, a while. Few weak lines going alone
                // is no sign of trouble (a small audience; a share so low that its
                // votes trickle in), and it must not hold the share down for good.
                self.waited += 1;
                if n > 0 && self.waited < MAX_WAIT {
                    return;
                }
                self.votes.clear();
                true
            }
            n => {
                // Each address's own failed share is its vote.
                let failed: f64 = self
                    .votes
                    .values()
                    .map(|&(k, f)| f64::from(f) / f64::from(k.max(1)))
                    .sum::<f64>()
                    / n as f64;
                self.last_failed_share = Some(failed);
                self.votes.clear();
                failed <= FAIL_SHARE
            }
        };
        self.waited = 0;
        self.share = if grow {
            (self.share * 1.25).max(self.share + RECOVER_STEP).min(1.0)
        } else {
            self.share / 2.0
        };
    }

    /// The share published in the window, in [0, 1].
    pub fn share(&self) -> f64 {
        self.share
    }

    /// The failed share of the votes the share was last judged on (None before).
    pub fn last_failed_share(&self) -> Option<f64> {
        self.last_failed_share
    }
}

/// A client's draw for Segment `seq`, uniform in [0, 1): the client goes alone for
/// that Segment when it is under the channel's share. `key` spreads the clients
/// (crumbsrc: its client id; the simulator: the peer's number); the mix is
/// splitmix64's finalizer.
pub fn draw(key: u64, seq: u64) -> f64 {
    let mut z = key ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(k: u32) -> Voter {
        Voter::new(std::net::IpAddr::V4((0x0a00_0000 + k).into()))
    }

    /// `n` Segments, each with reports of crumbs 1 fetched alone from `alone`
    /// addresses, the first `failed` of them lost, and reports of other crumbs 1
    /// (which never count).
    fn segments(gate: &mut SoleSourceGate, n: usize, alone: u32, failed: u32) {
        for _ in 0..n {
            for k in 0..alone {
                gate.on_report(voter(k), true, k >= failed);
            }
            for k in 0..10 {
                gate.on_report(voter(k), false, k % 2 == 0);
            }
            gate.on_segment();
        }
    }

    #[test]
    fn failing_sole_source_crumbs_halve_the_share_each_segment() {
        let mut gate = SoleSourceGate::new();
        segments(&mut gate, 3, 100, 20);
        assert_eq!(gate.share(), 0.125);
        assert_eq!(gate.last_failed_share(), Some(0.2));
    }

    #[test]
    fn a_few_losses_or_none_keep_the_share() {
        let mut gate = SoleSourceGate::new();
        // One in ten is not over the bar; nobody alone says nothing against it.
        segments(&mut gate, 5, 100, 10);
        segments(&mut gate, 5, 0, 0);
        assert_eq!(gate.share(), 1.0);
        // Other crumbs 1 failing count for nothing.
        for k in 0..100 {
            gate.on_report(voter(k), false, false);
        }
        gate.on_segment();
        assert_eq!(gate.share(), 1.0);
    }

    #[test]
    fn a_small_audience_is_judged_on_enough_addresses_only() {
        let mut gate = SoleSourceGate::new();
        // Three weak clients, one loss each Segment: under 16 addresses, no judgement.
        segments(&mut gate, 7, 3, 1);
        assert_eq!((gate.share(), gate.last_failed_share()), (1.0, None));
        // A halved share is not held down by too few votes: it grows after 8 Segments.
        gate.share = 0.5;
        segments(&mut gate, 1, 3, 1);
        assert_eq!(gate.share(), 0.625);
        assert_eq!(gate.last_failed_share(), None);
        gate.share = 1.0;
        segments(&mut gate, 3, 3, 1);
        // The same clients (addresses 0-2) and 13 more, none lost: address 0 lost 3
        // of its 4, 3 / 4 of a vote, over 16 addresses: under the bar.
        segments(&mut gate, 1, 16, 0);
        let failed = gate.last_failed_share().unwrap();
        assert!((failed - 3.0 / 4.0 / 16.0).abs() < 1e-9, "{failed}");
        assert_eq!(gate.share(), 1.0);
        // Four of 16 addresses losing are over it.
        segments(&mut gate, 1, 16, 4);
        assert_eq!(gate.share(), 0.5);
    }

    #[test]
    fn one_address_is_one_vote() {
        let mut gate = SoleSourceGate::new();
        // A thousand failures from one address beside 15 others that played.
        for _ in 0..1000 {
            gate.on_report(voter(0), true, false);
        }
        for k in 1..16 {
            gate.on_report(voter(k), true, true);
        }
        gate.on_segment();
        assert_eq!(gate.last_failed_share(), Some(1.0 / 16.0));
        assert_eq!(gate.share(), 1.0);
        // The map is bounded.
        for k in 0..2 * MAX_VOTERS as u32 {
            gate.on_report(voter(k), true, true);
        }
        assert_eq!(gate.votes.len(), MAX_VOTERS);
    }

    #[test]
    fn the_share_grows_back_once_the_sole_source_crumbs_come() {
        let mut gate = SoleSourceGate::new();
        segments(&mut gate, 40, 100, 90);
        assert!(gate.share() < 1e-9, "{}", gate.share());
        segments(&mut gate, 1, 100, 0);
        assert!(
            (gate.share() - RECOVER_STEP).abs() < 1e-6,
            "{}",
            gate.share()
        );
        segments(&mut gate, 19, 100, 0);
        assert_eq!(gate.share(), 1.0);
    }

    #[test]
    fn draws_are_uniform_and_differ_between_clients() {
        let n = 10_000u64;
        let under = (0..n).filter(|&k| draw(k, 7) < 0.1).count();
        assert!((900..1100).contains(&under), "{under} of {n} under 0.1");
        // One client over Segments too.
        let under = (0..n).filter(|&seq| draw(42, seq) < 0.5).count();
        assert!((4800..5200).contains(&under), "{under} of {n} under 0.5");
        assert!((0..n).all(|k| (0.0..1.0).contains(&draw(k, k * 3))));
        assert_ne!(draw(1, 5), draw(2, 5));
        assert_eq!(draw(1, 5), draw(1, 5));
    }
}
