// SPDX-License-Identifier: MPL-2.0
//! The download rate estimate R (paper, section 3.2 b, eq. 3) from the bytes a client
//! actually received.
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

/// Least active time between the oldest used sample and `now` before R is given:
/// below it one TCP burst or one piece would read as the link's rate.
pub const MIN_SPAN_NS: u64 = 100_000_000;

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

    pub fn is_active(&self) -> bool {
        self.active
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
        Some((self.bytes as f64 - bytes_at_start).max(0.0) * 1e9 / span as f64)
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000_000_000;

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
}
