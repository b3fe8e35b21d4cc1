// SPDX-License-Identifier: MPL-2.0
//! How busy the super seed's link is, read from its upload counter alone, and what
//! crumbsink's automatic `enhancement-copies` makes of it.
//!
//! The channel does not know its link's rate (a provider's shaper, tc on the bench),
//! but the shape of its upload says whether the link is the swarm's bottleneck. With
//! room to spare each Segment leaves in a burst after its publication and the link is
//! idle until the next one; with the link full it uploads at the same rate all the
//! time. The measure is the coefficient of variation (standard deviation over mean)
//! of the upload rate in the steps of the last [`WINDOW`] (the sampler's, 250 ms):
//! swarm bench, 16 Mbit/s channel, N = 10 and 20: 1.02-2.1 (its peak rate is no
//! measure: the socket buffers take a Segment's first pieces at once); the channel
//! at twice the full quality, N = 20, once its audience is there: 0.6-0.95.
//!
//! The link counts as busy from [`BUSY_ENTER`] down and until the variation rises
//! over [`BUSY_LEAVE`]: one copy per piece takes load off the link, which must not
//! switch it back at once. Until its history spans [`WINDOW`] (a channel's first
//! Segments, or after its counter started again) the link is presumed busy: the
//! tight channel's variation stayed above 0.9 for its first four or five Segments,
//! and one copy per piece from the start was worth 0.65 of bound there against 0.56
//! when the rule switched at the fifth or sixth Segment; a channel with room shows its
//! bursts (1.0-2.1) and is free from its third to fifth Segment on.
//!
//! Why it matters: where the channel's link is the bottleneck, every second copy of
//! an enhancement piece it sends is time the first copy of another piece waits for
//! (the channel at twice the full quality, N = 20: 0.49-0.57 of bound with no limit,
//! 0.54-0.70, mean 0.65, with one copy per enhancement piece from the start); where it
//! has room, one copy makes the fast clients wait for peers (0.70-0.76 against
//! 0.78-0.81). Presumed busy at the start, the rule gave the tight channel 0.46-0.72
//! (mean 0.60, six runs; switching at the fifth Segment, 0.56) and cost the roomy one
//! about 3 % at N = 10, so crumbsink's default stays no limit and the figures are the
//! operator's (stats `uplink-busy`). docs/swarm.md, eighteenth and nineteenth rounds.

use std::collections::VecDeque;

const SEC: u64 = 1_000_000_000;

/// The upload's variation is taken over this long (ns): two 4 s Segments.
pub const WINDOW: u64 = 8 * SEC;

/// The steps the rate is taken in (ns): the sampler's.
pub const STEP: u64 = SEC / 4;

/// The link becomes busy when the variation is at most this.
pub const BUSY_ENTER: f64 = 0.9;

/// A busy link is free again when the variation is at least this.
pub const BUSY_LEAVE: f64 = 1.3;

/// Least mean upload (bytes/s) the rule judges: four 16 KiB blocks a step (about
/// 2 Mbit/s). The counter moves a block at a time (librqbit writes 16 KiB chunks),
/// and a full link of 24 kB/s fills one 250 ms step in three: its variation (1.3)
/// looks like bursts. Longer steps smear a Segment's burst over its period instead
/// (the bench's 1 s steps: 0.6-1.7 with room, 0.2-0.6 full). A slower link is never
/// judged busy: set `enhancement-copies=1` there.
pub const BUSY_MIN_RATE: f64 = 4.0 * 16384.0 * 4.0;

/// What crumbsink's `enhancement-copies` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnhancementCopies {
    /// One copy per enhancement piece while the link is busy ([`SeedLoad::busy`]),
    /// no limit otherwise.
    Auto,
    /// No limit.
    Unlimited,
    /// At most this many copies of each enhancement piece (at least 1).
    Limit(u32),
}

impl EnhancementCopies {
    /// From the property's value: -1 auto, 0 no limit, k a limit.
    pub fn from_property(v: i32) -> EnhancementCopies {
        match v {
            i32::MIN..=-1 => EnhancementCopies::Auto,
            0 => EnhancementCopies::Unlimited,
            k => EnhancementCopies::Limit(k as u32),
        }
    }

    /// The limit for a Segment published now (None = no limit).
    pub fn for_segment(self, load: &SeedLoad) -> Option<u32> {
        match self {
            EnhancementCopies::Auto => load.busy().then_some(1),
            EnhancementCopies::Unlimited => None,
            EnhancementCopies::Limit(k) => Some(k.max(1)),
        }
    }
}

/// crumbsink's `enhancement-copies-behind`: the copies of each enhancement piece a
/// Segment seeded with `seeded` (None = no limit) may leave the super seed with once a
/// newer Segment is out, when `behind` (None = no limit; at least 1) is lower than
/// `seeded`; None when the Segment keeps its limit. The copies given at the live edge
/// count against it (docs/swarm.md, twenty-first round).
pub fn copies_behind_edge(seeded: Option<u32>, behind: Option<u32>) -> Option<u32> {
    let behind = behind?.max(1);
    seeded.is_none_or(|k| k > behind).then_some(behind)
}

/// The super seed's upload over time; fed its byte counter every few hundred ms.
#[derive(Clone, Debug)]
pub struct SeedLoad {
    /// (time ns, bytes uploaded in all), oldest first, spanning [`WINDOW`].
    samples: VecDeque<(u64, u64)>,
    busy: bool,
    variation: Option<f64>,
}

impl Default for SeedLoad {
    /// Presumed busy (see the module's text).
    fn default() -> Self {
        SeedLoad {
            samples: VecDeque::new(),
            busy: true,
            variation: None,
        }
    }
}

impl SeedLoad {
    pub fn new() -> SeedLoad {
        SeedLoad::default()
    }

    /// The upload counter read at `now` (ns, any monotonic origin). A counter that
    /// went back (a new session) starts the history again.
    pub fn on_sample(&mut self, now: u64, uploaded: u64) {
        if let Some(&(t, b)) = self.samples.back() {
            if now == t {
                return;
            }
            if now < t || uploaded < b {
                *self = SeedLoad::default();
            }
        }
        self.samples.push_back((now, uploaded));
        // Keep the newest sample at or before the window's start, so that the steps
        // cover the whole window.
        while self.samples.len() > 2 && self.samples[1].0 <= now.saturating_sub(WINDOW) {
            self.samples.pop_front();
        }
        self.variation = self.compute_variation(now);
        match self.variation {
            _ if !self.spans_window(now) => {}
            Some(v) if !self.busy && v <= BUSY_ENTER => self.busy = true,
            Some(v) if self.busy && v >= BUSY_LEAVE => self.busy = false,
            Some(_) => {}
            // A trickle, not judged: free.
            None => self.busy = false,
        }
    }

    /// Whether the link is the bottleneck now, or presumed so before the history
    /// spans the window (see the module's text).
    pub fn busy(&self) -> bool {
        self.busy
    }

    fn spans_window(&self, now: u64) -> bool {
        self.samples
            .front()
            .is_some_and(|&(t0, _)| now.saturating_sub(t0) >= WINDOW)
    }

    /// The coefficient of variation of the upload rate over the last window;
    /// `None` until the history spans it, or while the mean rate is under
    /// [`BUSY_MIN_RATE`].
    pub fn variation(&self) -> Option<f64> {
        self.variation
    }

    fn compute_variation(&self, now: u64) -> Option<f64> {
        let &(t0, b0) = self.samples.front()?;
        if !self.spans_window(now) {
            return None;
        }
        let &(t1, b1) = self.samples.back()?;
        let mean = b1.saturating_sub(b0) as f64 * SEC as f64 / t1.saturating_sub(t0) as f64;
        if mean < BUSY_MIN_RATE {
            return None;
        }
        // Each step's rate, weighted by its length (the sampler's ticks may slip).
        let mut var = 0.0;
        for (&(ta, ba), &(tb, bb)) in self.samples.iter().zip(self.samples.iter().skip(1)) {
            let dt = tb.saturating_sub(ta) as f64;
            let rate = bb.saturating_sub(ba) as f64 * SEC as f64 / dt;
            var += (rate - mean).powi(2) * dt;
        }
        var /= t1.saturating_sub(t0) as f64;
        Some(var.sqrt() / mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn behind_the_edge_a_lower_limit_wins() {
        assert_eq!(copies_behind_edge(None, Some(2)), Some(2));
        assert_eq!(copies_behind_edge(Some(5), Some(2)), Some(2));
        assert_eq!(copies_behind_edge(Some(2), Some(2)), None, "kept");
        assert_eq!(copies_behind_edge(Some(1), Some(2)), None, "kept");
        assert_eq!(copies_behind_edge(None, None), None);
        assert_eq!(copies_behind_edge(None, Some(0)), Some(1), "at least one");
    }

    /// Feeds `load` every 250 ms from `from` for `secs` seconds with `rate(t)` bytes/s.
    fn feed(
        load: &mut SeedLoad,
        total: &mut u64,
        from: u64,
        secs: u64,
        rate: impl Fn(u64) -> u64,
    ) -> u64 {
        let mut t = from;
        while t < from + secs * SEC {
            t += 250 * MS;
            *total += rate(t) / 4;
            load.on_sample(t, *total);
        }
        t
    }

    /// A channel with room: each 4 s Segment leaves in its first second.
    fn bursts(t: u64) -> u64 {
        if (t / SEC).is_multiple_of(4) {
            1_500_000
        } else {
            20_000
        }
    }

    /// A full link: the same rate all the time, a dip when a Segment is published.
    fn full(t: u64) -> u64 {
        if (t / (250 * MS)).is_multiple_of(16) {
            300_000
        } else {
            650_000
        }
    }

    #[test]
    fn a_link_with_room_between_bursts_is_not_busy() {
        let mut load = SeedLoad::new();
        let mut total = 0;
        feed(&mut load, &mut total, 0, 120, bursts);
        let v = load.variation().unwrap();
        assert!(v > BUSY_LEAVE, "{v}");
        assert!(!load.busy());
        assert_eq!(EnhancementCopies::Auto.for_segment(&load), None);
    }

    #[test]
    fn a_link_that_uploads_all_the_time_is_busy_and_limits_copies_to_one() {
        let mut load = SeedLoad::new();
        let mut total = 0;
        feed(&mut load, &mut total, 0, 60, full);
        assert!(
            load.variation().unwrap() < BUSY_ENTER,
            "{:?}",
            load.variation()
        );
        assert!(load.busy());
        assert_eq!(EnhancementCopies::Auto.for_segment(&load), Some(1));
        assert_eq!(EnhancementCopies::Unlimited.for_segment(&load), None);
        assert_eq!(EnhancementCopies::Limit(3).for_segment(&load), Some(3));
    }

    #[test]
    fn a_busy_link_stays_busy_between_the_thresholds_and_is_free_again_with_bursts() {
        let mut load = SeedLoad::new();
        let mut total = 0;
        let t = feed(&mut load, &mut total, 0, 30, full);
        assert!(load.busy());
        // One copy per piece: the link idles half the time, on and off.
        let half = |t: u64| {
            if (t / (500 * MS)).is_multiple_of(2) {
                0
            } else {
                600_000
            }
        };
        let t = feed(&mut load, &mut total, t, 30, half);
        let v = load.variation().unwrap();
        assert!(v > BUSY_ENTER && v < BUSY_LEAVE, "{v}");
        assert!(load.busy());
        // The audience left: bursts again.
        feed(&mut load, &mut total, t, 30, bursts);
        assert!(!load.busy(), "{:?}", load.variation());
        // The same variation from a free link does not make it busy...
        let mut free = SeedLoad::new();
        let mut free_total = 0;
        let t = feed(&mut free, &mut free_total, 0, 30, bursts);
        feed(&mut free, &mut free_total, t, 30, half);
        assert!(!free.busy());
        // ... and one that starts with it stays presumed busy.
        let mut fresh = SeedLoad::new();
        feed(&mut fresh, &mut 0, 0, 30, half);
        assert!(fresh.busy());
    }

    #[test]
    fn presumed_busy_before_the_window_and_free_on_a_trickle() {
        let mut load = SeedLoad::new();
        assert!(load.busy());
        let mut total = 0;
        feed(&mut load, &mut total, 0, 7, bursts);
        assert_eq!(load.variation(), None);
        assert!(load.busy(), "no judgement before 8 s of history");
        assert_eq!(EnhancementCopies::Auto.for_segment(&load), Some(1));
        feed(&mut load, &mut total, 7 * SEC, 2, bursts);
        assert!(!load.busy(), "{:?}", load.variation());
        let mut trickle = SeedLoad::new();
        feed(&mut trickle, &mut 0, 0, 30, |_| 200_000);
        assert_eq!(trickle.variation(), None);
        assert!(!trickle.busy());
    }

    /// A full link of 24 kB/s moves a 16 KiB block every 0.68 s, so most 250 ms steps
    /// hold nothing and it would look like bursts: such a link is not judged.
    #[test]
    fn a_link_under_four_blocks_a_step_is_not_judged() {
        let mut load = SeedLoad::new();
        let (mut t, mut total, mut next_block) = (0u64, 0u64, 0u64);
        while t < 60 * SEC {
            t += 250 * MS;
            while next_block <= t {
                total += 16384;
                next_block += 16384 * SEC / 24_000;
            }
            load.on_sample(t, total);
        }
        assert_eq!(load.variation(), None);
        assert!(!load.busy());
    }

    #[test]
    fn a_counter_that_goes_back_starts_the_history_again() {
        let mut load = SeedLoad::new();
        let mut total = 0;
        let t = feed(&mut load, &mut total, 0, 30, bursts);
        assert!(!load.busy());
        load.on_sample(t + 250 * MS, 10);
        assert!(load.busy(), "presumed busy again");
        assert_eq!(load.variation(), None);
    }

    #[test]
    fn the_property_maps_to_the_rule() {
        assert_eq!(
            EnhancementCopies::from_property(-1),
            EnhancementCopies::Auto
        );
        assert_eq!(
            EnhancementCopies::from_property(0),
            EnhancementCopies::Unlimited
        );
        assert_eq!(
            EnhancementCopies::from_property(2),
            EnhancementCopies::Limit(2)
        );
    }
}
