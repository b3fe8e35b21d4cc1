// SPDX-License-Identifier: MPL-2.0
//! The download rate estimate R (paper, section 3.2 b, eq. 3) from the bytes a client
//! actually received, and what R decides: D, the number of crumbs fetched of a
//! Segment ([`choose_d`], the paper's rule and our rate-based one). The client engine
//! (`client.rs`) owns the when; this module owns the how much.
//!
//! R is meant to answer "how fast can I fetch crumbs when I try", so only *active*
//! time counts: the client engine tells the estimator when downloads are running
//! ([`RateEstimator::set_active`]). A client that finished its Segment early and waits
//! for the next one to be published receives nothing, and that idle time must not
//! read as a slow link: were it counted, a client would measure its own consumption
//! rate instead of its capacity and could never raise its quality (the ON-OFF trap of
//! rate-based adaptive streaming). Time is an "active clock" that only runs while
//! active; samples live on that clock, so idle periods are simply cut out of the
//! timeline.
//!
//! While active, R is evaluated up to `now`: a stalled download (active, no bytes)
//! makes R fall, which is what a deadline-driven engine needs to hear.
//!
//! Sans-IO: `now` is nanoseconds from any monotonic origin the caller picks.

use std::collections::VecDeque;

use super::time::{MS, SEC, per_second};

/// Least active time between the oldest used sample and `now` before R is given:
/// below it one TCP burst or one piece would read as the link's rate.
pub const MIN_SPAN_NS: u64 = 100 * MS;

/// Samples kept per window at most (plus two): bounds memory whatever the caller's
/// reporting frequency.
const SAMPLES_PER_WINDOW: u64 = 256;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    /// Active clock (ns).
    at: u64,
    /// Bytes received up to then.
    bytes: u64,
}

/// Sliding-window rate of received bytes over active time, bytes per second.
#[derive(Clone, Debug)]
pub struct RateEstimator {
    window: u64,
    samples: VecDeque<Sample>,
    /// Bytes counted so far.
    bytes: u64,
    /// Last total passed to `on_bytes`, to turn totals into deltas.
    last_total: Option<u64>,
    active: bool,
    /// Wall time the current active period started.
    active_since: u64,
    /// Active time of the finished active periods.
    active_before: u64,
    /// Latest `now` seen: time never goes back for the estimator.
    last_now: u64,
}

impl RateEstimator {
    /// `window_ns`: how much recent active time R averages over (0 is taken as 1 ns).
    /// Starts inactive: call `set_active(now, true)` when downloads begin.
    pub fn new(window_ns: u64) -> Self {
        RateEstimator {
            window: window_ns.max(1),
            samples: VecDeque::new(),
            bytes: 0,
            last_total: None,
            active: false,
            active_since: 0,
            active_before: 0,
            last_now: 0,
        }
    }

    pub fn window(&self) -> u64 {
        self.window
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether downloads are running from `now` on. Time while inactive does not count
    /// as download time.
    pub fn set_active(&mut self, now: u64, active: bool) {
        let now = self.clamp_now(now);
        if active == self.active {
            return;
        }
        if active {
            self.active_since = now;
        } else {
            self.active_before = self.active_clock(now);
        }
        self.active = active;
    }

    /// The caller's running total of bytes received (e.g. a session's progress counter).
    /// The first call only sets the baseline; a total that goes down (a counter reset)
    /// sets a new baseline and counts nothing.
    pub fn on_bytes(&mut self, now: u64, total: u64) {
        let delta = match self.last_total {
            Some(last) if total >= last => total - last,
            _ => 0,
        };
        self.last_total = Some(total);
        self.add(now, delta);
    }

    /// Takes `total` as the new baseline of [`RateEstimator::on_bytes`] without
    /// counting what came since the last total: bytes the caller knows say nothing
    /// about the link (the client's tail crumb).
    pub fn rebase(&mut self, total: u64) {
        self.last_total = Some(total);
    }

    /// `delta` bytes arrived at `now`. Bytes reported while inactive still count (they
    /// are typically the tail of the active period that just ended, reported late) but
    /// add no time.
    pub fn add(&mut self, now: u64, delta: u64) {
        let now = self.clamp_now(now);
        self.bytes = self.bytes.saturating_add(delta);
        let sample = Sample {
            at: self.active_clock(now),
            bytes: self.bytes,
        };
        let spacing = self.window / SAMPLES_PER_WINDOW;
        let len = self.samples.len();
        if len >= 2 && sample.at.saturating_sub(self.samples[len - 2].at) < spacing {
            // Too close to the previous kept sample: move the newest one forward.
            self.samples[len - 1] = sample;
        } else {
            self.samples.push_back(sample);
        }
        // Keep exactly one sample at or before the window start, as the anchor.
        let start = sample.at.saturating_sub(self.window);
        while self.samples.len() > 2 && self.samples[1].at <= start {
            self.samples.pop_front();
        }
    }

    /// R in bytes/s over the last `window` of active time ending at `now`; `None` with
    /// fewer than 2 samples or less than [`MIN_SPAN_NS`] of active time to go on.
    pub fn rate(&self, now: u64) -> Option<f64> {
        if self.samples.len() < 2 {
            return None;
        }
        let end = self.active_clock(now.max(self.last_now));
        let first = *self.samples.front()?;
        if end.saturating_sub(first.at) < MIN_SPAN_NS {
            return None;
        }
        // Bytes at the window start, interpolated between the samples around it.
        let start = end.saturating_sub(self.window);
        let (start, bytes_at_start) = if start <= first.at {
            (first.at, first.bytes as f64)
        } else {
            let mut prev = first;
            let mut at_start = self.bytes as f64;
            for s in self.samples.iter().skip(1) {
                if s.at >= start {
                    let span = (s.at - prev.at) as f64;
                    let frac = if span > 0.0 {
                        (start - prev.at) as f64 / span
                    } else {
                        1.0
                    };
                    at_start = prev.bytes as f64 + frac * (s.bytes - prev.bytes) as f64;
                    break;
                }
                prev = *s;
            }
            (start, at_start)
        };
        let span = end.saturating_sub(start);
        if span == 0 {
            return None;
        }
        Some(per_second(
            (self.bytes as f64 - bytes_at_start).max(0.0),
            span,
        ))
    }

    /// Forgets all evidence (e.g. after the network changed).
    pub fn reset(&mut self) {
        *self = RateEstimator::new(self.window);
    }

    fn clamp_now(&mut self, now: u64) -> u64 {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn active_clock(&self, now: u64) -> u64 {
        if self.active {
            self.active_before
                .saturating_add(now.saturating_sub(self.active_since))
        } else {
            self.active_before
        }
    }
}

/// How D, the number of crumbs to fetch, is chosen per Segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Adaptation {
    /// The paper: eq. 3 in the initial stage, then D+1 after a complete Segment, D-1
    /// otherwise.
    Paper,
    /// Each Segment, D from the measured rate against |s| alone (not TE), with a
    /// hysteresis band; see [`choose_d`]. The default: on the swarm bench's links it
    /// plays every Segment where the paper's probe fails some (docs/swarm.md).
    #[default]
    RateBased,
}

/// The margin at which spare time funds a probe above the band: wider than the band's
/// default safety (0.9). A probe that fails costs its partial crumb and the TE the
/// Segment used; at the band's margin a client whose link carries D and a bit more
/// probed D+1 after every Segment and failed it every other one (the paper's
/// oscillation, test `rate_based_vs_paper_where_paper_oscillates`).
pub const PROBE_SAFETY: f64 = 0.8;

/// What the previous Segment asked for, as [`choose_d`] needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LastSegment {
    /// D of that Segment.
    pub d: u16,
    /// All D crumbs arrived in time.
    pub complete: bool,
    /// Bytes of its crumbs 1..=D over its duration |s|, bytes/s: the quality D stood
    /// for. Crumbs are cut by size, so N and the crumb sizes change with |G|; the
    /// next Segment's D starts from the prefix carrying this rate, not from the index.
    pub prefix_rate: f64,
    /// Time left of its |s| (from its start, TE not counted) when its D crumbs were
    /// done, ns (0 when incomplete): what a probe of one more crumb may spend.
    pub spare: u64,
    /// Still in slow start (see [`choose_d`]): every Segment so far complete and D
    /// never down. [`LastSegment::new`] sets it for a lone complete Segment; the
    /// engine chains it over its Segments.
    pub slow_start: bool,
}

impl LastSegment {
    /// `d` crumbs of a Segment of `sizes` lasting `duration` ns, done `spare` ns
    /// before its deadline.
    pub fn new(d: u16, complete: bool, sizes: &[u64], duration: u64, spare: u64) -> Self {
        let bytes: u64 = sizes.iter().take(usize::from(d)).sum();
        let prefix_rate = if duration == 0 {
            0.0
        } else {
            per_second(bytes as f64, duration)
        };
        LastSegment {
            d,
            complete,
            prefix_rate,
            spare: if complete { spare.min(duration) } else { 0 },
            slow_start: complete,
        }
    }

    /// The D of a Segment of `sizes` and `duration` that carries what D carried last
    /// time (the same D when the Segments are alike).
    fn carried(&self, sizes: &[u64], duration: u64) -> u16 {
        if !(self.prefix_rate.is_finite() && self.prefix_rate > 0.0) || duration == 0 {
            return self.d;
        }
        // A hair of tolerance: the same sizes must give back the same D.
        fit_prefix(sizes, self.prefix_rate * (1.0 + 1e-9), duration)
    }
}

/// Largest d (at least 1) with bytes(crumbs 1..=d) / `rate` <= `budget_ns`: the
/// paper's eq. 3. `sizes` are crumbs 1..=N; the caller applies caps.
pub fn fit_prefix(sizes: &[u64], rate: f64, budget_ns: u64) -> u16 {
    let allowed = rate * budget_ns as f64 / SEC as f64;
    let mut sum = 0u64;
    let mut d = 0u16;
    for &size in sizes.iter().take(usize::from(u16::MAX)) {
        sum = sum.saturating_add(size);
        if sum as f64 > allowed {
            break;
        }
        d += 1;
    }
    d.max(1)
}

/// D for a Segment of crumb `sizes` and `duration` |s|, with `budget` = |s| + TE,
/// given the previous Segment (`None` in the initial stage) and R (`None` without
/// evidence). The caller clamps the result into 1..=min(N, cap). "The previous D"
/// below is `LastSegment::carried`: the D of this Segment with the bit rate the
/// previous D had, so a change of N (|G| moved, crumbs are cut by size) neither
/// climbs one crumb per Segment nor drops quality.
///
/// Paper: eq. 3 on |s| + TE in the initial stage (D = 1 without R), then D+1 after a
/// complete Segment, D-1 otherwise.
///
/// RateBased: `up` = largest d with bytes(1..d) <= safety·R·|s|, `keep` = the same
/// with no margin; D = the previous D clamped into [up, keep] (`up` in the initial
/// stage), and below the previous D after an incomplete Segment. After a complete
/// Segment it probes one crumb above the previous D when the time that Segment had to
/// spare pays for it (bytes(1..D+1) <= safety·R·(|s| + spare)); in slow start (no
/// incomplete Segment and no fall of D yet), when the spare was at least half of
/// |s|, to twice the bytes of the previous D. Without R, the
/// paper's rule. Why it beats the paper's rule:
/// 1. It reaches the right D in one Segment after a rate change instead of one step
///    per Segment (N = 15 crumbs of 20 s Segments would take five minutes to climb).
/// 2. It probes only with spare time: the paper asks for D+1 after every complete
///    Segment, so at a steady rate every other Segment overcommits, wastes its partial
///    crumb, ends at its deadline, and quality switches all the time.
/// 3. It sizes D on |s| alone, what the link sustains, and leaves TE alone: TE stays a
///    buffer that carries crumb 1 through a dip of the rate. The paper spends TE on
///    quality and runs at TE ≈ 0, where one dip fails Segments.
/// 4. The band [up, keep] holds D still while R wanders near a threshold.
///
/// The price: it leaves about 1 - safety of the link unused for quality (that spare
/// time rebuilds TE). R must exclude idle time (see [`RateEstimator::set_active`]),
/// otherwise a client finishing early would measure its consumption, not its link.
pub fn choose_d(
    adaptation: Adaptation,
    safety: f64,
    last: Option<LastSegment>,
    rate: Option<f64>,
    sizes: &[u64],
    duration: u64,
    budget: u64,
) -> u16 {
    let spare = last.map_or(0, |l| l.spare);
    let in_slow_start = last.is_some_and(|l| l.slow_start);
    let last = last.map(|l| (l.carried(sizes, duration), l.complete));
    let step = |(d, complete): (u16, bool)| {
        if complete {
            d.saturating_add(1)
        } else {
            d.saturating_sub(1)
        }
    };
    match (adaptation, last, rate) {
        (Adaptation::Paper, None, Some(r)) => fit_prefix(sizes, r, budget),
        (_, None, None) => 1,
        (Adaptation::Paper, Some(last), _) | (_, Some(last), None) => step(last),
        (Adaptation::RateBased, last, Some(r)) => {
            let up = fit_prefix(sizes, safety * r, duration);
            let keep = fit_prefix(sizes, r, duration);
            let (lo, hi) = (up.min(keep), up.max(keep));
            // The probe: one crumb more than the last D when the time the last
            // Segment had to spare covers it at [`PROBE_SAFETY`] (or `safety` if
            // lower). R only knows the crumbs it was asked for (and their sources):
            // without a probe a client measured low once (a slow first source,
            // start-up) would stay low. Not TE: spending the accumulated buffer on
            // quality is the paper's oscillation.
            let funding = safety.min(PROBE_SAFETY) * r;
            let funded = fit_prefix(sizes, funding, duration.saturating_add(spare));
            // Slow start: when the last D crumbs took at most half of |s|, twice their
            // bytes fit in |s| at the pace they came, whatever R says. R reads low at
            // the start (it counts each small crumb's start-up and a first source's
            // waits, over a window of several Segments): a 3 Mbit/s client measured
            // 0.3 Mbit/s, fetched crumb 1 in 0.3 s of 4 s and climbed one crumb per
            // Segment for ten Segments (swarm bench). Only until the first incomplete
            // Segment or fall of D, as TCP's: after it, a client under a cap
            // (`tests/swarm.rs`' 196 kbit/s one) doubled to full quality every fourth
            // Segment, made it on its time extension and fell back.
            let slow_start = in_slow_start && spare.saturating_mul(2) >= duration;
            match last {
                None => lo,
                Some((d, true)) => {
                    let mut probe = funded.min(d.saturating_add(1));
                    if slow_start {
                        // The longest prefix within twice the bytes of crumbs 1..=d.
                        let bytes: u64 = sizes.iter().take(usize::from(d)).sum();
                        probe = probe.max(fit_prefix(sizes, 2.0 * bytes as f64, SEC));
                    }
                    d.clamp(lo, hi).max(probe)
                }
                Some((d, false)) => d.clamp(lo, hi).min(d.saturating_sub(1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::time::{MS, SEC};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 1e-6 + 1e-6
    }

    /// Feeds a constant rate `bps` from `from` to `to` in steps of `step`, as totals.
    fn feed(r: &mut RateEstimator, total: &mut u64, from: u64, to: u64, step: u64, bps: u64) {
        let mut t = from;
        while t < to {
            t += step;
            *total += bps * step / SEC;
            r.on_bytes(t, *total);
        }
    }

    #[test]
    fn no_estimate_without_evidence() {
        let mut r = RateEstimator::new(5 * SEC);
        assert_eq!(r.rate(0), None);
        r.set_active(0, true);
        r.on_bytes(0, 0);
        assert_eq!(r.rate(10 * SEC), None, "one sample is no rate");
        r.on_bytes(50 * MS, 5000);
        assert_eq!(r.rate(50 * MS), None, "50 ms is too short");
        r.on_bytes(100 * MS, 10_000);
        assert!(close(r.rate(100 * MS).unwrap(), 100_000.0));
    }

    #[test]
    fn constant_rate_and_window() {
        let mut r = RateEstimator::new(2 * SEC);
        let mut total = 0;
        r.set_active(0, true);
        r.on_bytes(0, 0);
        feed(&mut r, &mut total, 0, 3 * SEC, 10 * MS, 100_000);
        assert!(close(r.rate(3 * SEC).unwrap(), 100_000.0));
        // The link speeds up: after one full window only the new rate is seen.
        feed(&mut r, &mut total, 3 * SEC, 4 * SEC, 10 * MS, 300_000);
        assert!(
            close(r.rate(4 * SEC).unwrap(), 200_000.0),
            "half old, half new"
        );
        feed(&mut r, &mut total, 4 * SEC, 5 * SEC, 10 * MS, 300_000);
        assert!(close(r.rate(5 * SEC).unwrap(), 300_000.0));
        assert!(r.samples.len() <= SAMPLES_PER_WINDOW as usize + 2);
    }

    #[test]
    fn add_counts_deltas() {
        let mut r = RateEstimator::new(SEC);
        r.set_active(0, true);
        r.add(0, 0);
        r.add(500 * MS, 1000);
        r.add(SEC, 1000);
        assert!(close(r.rate(SEC).unwrap(), 2000.0));
        assert_eq!(r.bytes(), 2000);
    }

    #[test]
    fn idle_time_is_not_slowness() {
        let mut r = RateEstimator::new(10 * SEC);
        let mut total = 0;
        r.set_active(0, true);
        r.on_bytes(0, 0);
        feed(&mut r, &mut total, 0, SEC, 10 * MS, 50_000);
        r.set_active(SEC, false);
        // Ten idle seconds: the estimate stays where it was.
        assert!(close(r.rate(11 * SEC).unwrap(), 50_000.0));
        r.set_active(11 * SEC, true);
        feed(&mut r, &mut total, 11 * SEC, 12 * SEC, 10 * MS, 50_000);
        assert!(close(r.rate(12 * SEC).unwrap(), 50_000.0));
    }

    #[test]
    fn stall_while_active_lowers_the_rate() {
        let mut r = RateEstimator::new(4 * SEC);
        let mut total = 0;
        r.set_active(0, true);
        r.on_bytes(0, 0);
        feed(&mut r, &mut total, 0, 2 * SEC, 10 * MS, 80_000);
        // Two seconds active with no byte: 160 kB over 4 s.
        assert!(close(r.rate(4 * SEC).unwrap(), 40_000.0));
    }

    #[test]
    fn counter_reset_and_time_going_back() {
        let mut r = RateEstimator::new(SEC);
        r.set_active(0, true);
        r.on_bytes(0, 1_000_000);
        r.on_bytes(500 * MS, 1_001_000);
        r.on_bytes(SEC, 10); // session restarted: new baseline
        r.on_bytes(SEC, 1010);
        assert!(close(r.rate(SEC).unwrap(), 2000.0));
        r.on_bytes(SEC / 2, 2010); // clock glitch: treated as `now` = 1 s
        assert!(close(r.rate(SEC).unwrap(), 3000.0));
    }

    #[test]
    fn fit_prefix_is_eq3() {
        let sizes = [100, 200, 300, 400];
        assert_eq!(fit_prefix(&sizes, 100.0, 6 * SEC), 3);
        assert_eq!(fit_prefix(&sizes, 100.0, 6 * SEC - 1), 2);
        assert_eq!(fit_prefix(&sizes, 100.0, 10 * SEC), 4);
        assert_eq!(fit_prefix(&sizes, 100.0, 100 * SEC), 4, "never more than N");
        assert_eq!(fit_prefix(&sizes, 100.0, SEC / 2), 1, "at least 1");
        assert_eq!(fit_prefix(&sizes, 0.0, SEC), 1);
    }

    /// The previous Segment had the same shape as the test's: 100-byte crumbs, 1 s,
    /// no time to spare.
    fn l(d: u16, complete: bool) -> Option<LastSegment> {
        Some(LastSegment::new(d, complete, &[100; 8], SEC, 0))
    }

    #[test]
    fn paper_rule() {
        let sizes = [100, 100, 100, 100];
        let d =
            |last, rate, budget| choose_d(Adaptation::Paper, 0.8, last, rate, &sizes, SEC, budget);
        // Initial stage: eq. 3 on |s| + TE, or 1 without R.
        assert_eq!(d(None, Some(100.0), 3 * SEC), 3);
        assert_eq!(d(None, None, 3 * SEC), 1);
        // Then D+1 / D-1, whatever R says (the caller clamps into 1..=N).
        assert_eq!(d(l(2, true), Some(1e9), SEC), 3);
        assert_eq!(d(l(2, false), Some(1e9), SEC), 1);
        assert_eq!(d(l(4, true), None, SEC), 5);
    }

    #[test]
    fn rate_based_band_and_hysteresis() {
        let sizes = [100, 100, 100, 100, 100];
        let d = |last, rate: f64| {
            choose_d(
                Adaptation::RateBased,
                0.8,
                last,
                Some(rate),
                &sizes,
                SEC,
                SEC,
            )
        };
        // R = 350 B/s, |s| = 1 s: up = 2 (280 B), keep = 3 (350 B). TE is not spent.
        assert_eq!(d(None, 350.0), 2);
        assert_eq!(d(l(1, true), 350.0), 2, "straight up to the band");
        assert_eq!(d(l(3, true), 350.0), 3, "inside the band: held");
        assert_eq!(d(l(5, true), 350.0), 3, "down to the band in one step");
        assert_eq!(d(l(3, false), 350.0), 2, "incomplete: below the last D");
        assert_eq!(d(l(1, false), 350.0), 0, "the caller clamps to 1");
        // Spare time of the last Segment pays for a probe one crumb up, after a
        // complete Segment only; TE does not.
        let probe = |complete, spare| {
            let last = Some(LastSegment::new(3, complete, &[100; 8], SEC, spare));
            let rate = Some(350.0);
            choose_d(
                Adaptation::RateBased,
                0.8,
                last,
                rate,
                &sizes,
                SEC,
                10 * SEC,
            )
        };
        // D crumbs in at most half of |s|: twice their bytes, whatever R says (slow
        // start).
        assert_eq!(probe(true, SEC), 5, "all 5 crumbs (twice 300 B)");
        assert_eq!(probe(true, 10 * SEC), 5, "spare at most |s|");
        let from = |prev: u16, rate: f64| {
            d(
                Some(LastSegment::new(prev, true, &[100; 8], SEC, 600 * MS)),
                rate,
            )
        };
        assert_eq!(from(1, 50.0), 2, "R funds nothing: twice 100 B");
        assert_eq!(from(2, 50.0), 4, "twice 200 B");
        assert_eq!(from(2, 1e9), 5, "the band above it");
        // Slow start ends at the first incomplete Segment or fall of D.
        let ended = Some(LastSegment {
            slow_start: false,
            ..LastSegment::new(1, true, &[100; 8], SEC, 600 * MS)
        });
        assert_eq!(d(ended, 50.0), 1, "over: R funds nothing, no doubling");
        // Less spare: one crumb up at most.
        assert_eq!(probe(true, 400 * MS), 3, "392 B: not enough for 4");
        assert_eq!(
            choose_d(
                Adaptation::RateBased,
                0.8,
                Some(LastSegment::new(1, true, &[100; 8], SEC, 450 * MS)),
                Some(350.0),
                &sizes,
                SEC,
                SEC
            ),
            2,
            "406 B fundable, 1 crumb up from 1 (and 2 is the band's floor)"
        );
        assert_eq!(probe(false, SEC), 2, "not after an incomplete one");
        assert_eq!(d(l(3, true), 350.0), 3, "no spare, no probe, whatever TE");
        // No R: the paper's rule.
        let no_rate = choose_d(
            Adaptation::RateBased,
            0.8,
            l(2, true),
            None,
            &sizes,
            SEC,
            SEC,
        );
        assert_eq!(no_rate, 3);
        // A safety above 1 does not panic: the band is ordered.
        let wild = choose_d(
            Adaptation::RateBased,
            3.0,
            l(1, true),
            Some(350.0),
            &sizes,
            SEC,
            SEC,
        );
        assert_eq!(wild, 3);
    }

    /// |G| doubled: twice the crumbs, each as big. D carries the same bit rate, it
    /// does not climb (or fall) by the index.
    #[test]
    fn d_follows_a_change_of_n() {
        let short = [100u64; 4];
        let long = [100u64; 8];
        for a in [Adaptation::Paper, Adaptation::RateBased] {
            // 2 crumbs of a 1 s Segment = 200 B/s = 4 crumbs of a 2 s Segment.
            let last = Some(LastSegment::new(2, true, &short, SEC, 0));
            let rate = Some(1e9);
            let d = choose_d(a, 0.8, last, rate, &long, 2 * SEC, 2 * SEC);
            let want = if a == Adaptation::Paper { 5 } else { 8 };
            assert_eq!(d, want, "{a:?}: probe one up from 4, or the rate's band");
            let last = Some(LastSegment::new(4, false, &long, 2 * SEC, 0));
            let d = choose_d(Adaptation::Paper, 0.8, last, None, &short, SEC, SEC);
            assert_eq!(d, 1, "back to the short Segments: 2, one down");
        }
        // Without a usable rate (duration 0) the index is kept.
        let last = Some(LastSegment::new(3, true, &short, 0, 0));
        assert_eq!(
            choose_d(Adaptation::Paper, 0.8, last, None, &long, SEC, SEC),
            4
        );
    }
}
