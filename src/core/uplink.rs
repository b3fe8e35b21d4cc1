// SPDX-License-Identifier: MPL-2.0
//! The upload governor: a client's seeding must not congest its own access link.
//!
//! Why: on an asymmetric line (ADSL 256/64 kbit/s) the uplink is a quarter of the
//! downlink and the modem's queue holds seconds of it. Once peers fetch from such a
//! client, its uplink queue fills, the TCP acknowledgements of its own downloads and
//! its requests to the channel wait behind seconds of upload, and the client misses
//! its deadlines, crumb 1 included (seen on the swarm bench: ADSL clients that seeded
//! played nothing). The BitTorrent world's answer is LEDBAT (uTP, RFC 6817): keep the
//! one-way *upstream* queueing delay under a target. crumbs applies the same rule to
//! the session's upload limit, with the one-way delay of the client's own window polls
//! as the signal: the channel stamps when it received a request (its clock) and the
//! client knows when it sent it (its clock). The clocks are not synchronised; the
//! smallest difference seen (the base) absorbs the offset, and the difference above it
//! is the queueing delay on the way up, whatever the downlink does.
//!
//! The rule, once per sample: queueing delay above the target (or a poll that got no
//! answer) halves the limit (from what is actually uploaded, if less); below half the
//! target, while the client uses at least half of it, the limit doubles until the
//! first congestion (slow start) and grows by a quarter after. It starts low: at
//! `downlink_share` of the download rate measured so far, at most `initial_limit`
//! (and at `min_limit` before any download rate is known); until then a start under
//! `weak_start` makes the line weak: it does not seed at all (a piece is 16 KiB, two
//! seconds of an ADSL uplink, and the limiter lets a whole piece through at once). A modem's queue holds
//! seconds of a slow uplink, and filling it once costs the client those seconds on
//! every request it makes; an uplink is rarely faster than its downlink, and an ADSL
//! one is a quarter of it. Seen on the swarm bench: an ADSL client that passed on
//! its first crumb 1 (40 KB) at the old fixed start (32 KiB/s, four times its
//! uplink) queued 5 s of upload, and its next request for a .torrent took 2.7 s.
//! Sans-IO: `now` and delays in ns from the caller's clocks.

use std::collections::VecDeque;

use super::time::{MS, SEC, per_second};

/// Settings of the governor.
#[derive(Clone, Debug, PartialEq)]
pub struct UplinkConfig {
    /// Queueing delay the uplink may hold, ns (LEDBAT's target is 100 ms).
    pub target_delay: u64,
    /// How long the base (smallest one-way delay) is remembered, ns: long enough to
    /// have seen an empty queue, short enough to follow a clock drift.
    pub base_window: u64,
    /// Lowest limit set, bytes/s.
    pub min_limit: u32,
    /// The highest limit at the start, bytes/s.
    pub initial_limit: u32,
    /// Share of the measured download rate the limit starts at (before the first
    /// delay sample changed it), at most `initial_limit`.
    pub downlink_share: f64,
    /// A start (from the downlink) under this makes the line weak until a delay
    /// sample has moved the limit: with a quarter of the downlink, a line under
    /// 256 kbit/s down (ADSL) does not seed, a 600 kbit/s one does.
    pub weak_start: u32,
    /// A limit below this after congestion makes the uplink *weak*: slower than one
    /// piece a second, it would hold every piece a peer asks of it longer than a
    /// Segment can wait. A weak client does not seed (see [`UploadGovernor::weak`]).
    pub weak_limit: u32,
    /// Window of the upload rate measurement, ns: whether the limit is used (slow
    /// start doubles only then) follows it, so a long one slows the start.
    pub rate_window: u64,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            target_delay: 100 * MS,
            base_window: 120 * SEC,
            min_limit: 1024,
            initial_limit: 32 * 1024,
            downlink_share: 0.25,
            weak_start: 8 * 1024,
            weak_limit: 16 * 1024,
            rate_window: 2 * SEC,
        }
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct UploadGovernor {
    config: UplinkConfig,
    /// (at, one-way delay) samples, increasing in delay from front to back over the
    /// base window (a monotonic deque: the front is the minimum).
    base: VecDeque<(u64, i64)>,
    /// (at, total bytes uploaded) for the rate.
    uploads: VecDeque<(u64, u64)>,
    limit: u32,
    last_delay: Option<u64>,
    congested: u64,
    /// The highest upload rate measured at a calm sample: what the line has carried
    /// without a queue.
    calm_peak: f64,
    /// A delay sample has changed the limit: the start from the downlink is over.
    probed: bool,
}

impl UploadGovernor {
    pub fn new(config: UplinkConfig) -> Self {
        UploadGovernor {
            base: VecDeque::new(),
            uploads: VecDeque::new(),
            limit: config.min_limit,
            last_delay: None,
            congested: 0,
            calm_peak: 0.0,
            probed: false,
            config,
        }
    }

    /// The upload limit to apply, bytes/s.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The queueing delay of the last sample, ns.
    pub fn last_delay(&self) -> Option<u64> {
        self.last_delay
    }

    /// The uplink congested below `weak_limit`: better not seed at all (peers would
    /// wait on every piece reserved here; the stream's own requests would queue
    /// behind them). The paper's weakest line (ADSL 64 kbit/s up) is one.
    /// Before any delay sample moved the limit, the start from the downlink decides:
    /// a start under `weak_start` (ADSL: a quarter of at most 256 kbit/s is at most
    /// 8,000 B/s) is weak until it proves otherwise, and so is a line whose download
    /// rate is not known yet.
    pub fn weak(&self) -> bool {
        let weak = f64::from(self.config.weak_limit);
        if !self.probed {
            return self.limit < self.config.weak_start;
        }
        self.congested > 0 && f64::from(self.limit) < weak && self.calm_peak < weak
    }

    /// Samples that found the uplink congested (or got no answer).
    pub fn congested_samples(&self) -> u64 {
        self.congested
    }

    /// The download rate measured so far, bytes/s: until a delay sample has changed the
    /// limit, the limit is `downlink_share` of it (between `min_limit` and
    /// `initial_limit`).
    pub fn on_downlink_rate(&mut self, rate: f64) {
        if self.probed || !rate.is_finite() || rate <= 0.0 {
            return;
        }
        let start = (rate * self.config.downlink_share).min(f64::from(u32::MAX)) as u32;
        let high = self.config.initial_limit.max(self.config.min_limit);
        let start = start.clamp(self.config.min_limit, high);
        // Moves of a quarter or more only: the rate wobbles, and every new limit is a
        // new token bucket (a fresh burst) in the session's limiter.
        if start.abs_diff(self.limit) >= self.limit / 4 {
            self.limit = start;
        }
    }

    /// The caller's running total of bytes uploaded.
    pub fn on_uploaded(&mut self, now: u64, total: u64) {
        self.uploads.push_back((now, total));
        let start = now.saturating_sub(self.config.rate_window);
        while self.uploads.len() > 2 && self.uploads[1].0 <= start {
            self.uploads.pop_front();
        }
    }

    /// Bytes/s uploaded over the rate window (None with less than 100 ms of evidence).
    pub fn upload_rate(&self) -> Option<f64> {
        let (&(t0, b0), &(t1, b1)) = (self.uploads.front()?, self.uploads.back()?);
        let span = t1.saturating_sub(t0);
        (span >= 100 * MS).then(|| per_second(b1.saturating_sub(b0) as f64, span))
    }

    /// A request sent at `sent` (caller's clock, ns) arrived at `received` (the
    /// channel's clock, ns).
    pub fn on_delay_sample(&mut self, now: u64, sent: u64, received: u64) {
        let owd = received as i64 - sent as i64;
        while self.base.back().is_some_and(|&(_, d)| d >= owd) {
            self.base.pop_back();
        }
        self.base.push_back((now, owd));
        let start = now.saturating_sub(self.config.base_window);
        while self.base.len() > 1 && self.base.front().is_some_and(|&(t, _)| t < start) {
            self.base.pop_front();
        }
        let base = self.base.front().map_or(owd, |&(_, d)| d);
        let delay = owd.saturating_sub(base).max(0) as u64;
        self.last_delay = Some(delay);
        if delay > self.config.target_delay {
            self.decrease();
        } else if delay < self.config.target_delay / 2 {
            self.calm_peak = self.calm_peak.max(self.upload_rate().unwrap_or(0.0));
            self.increase();
        }
    }

    /// A request got no answer in time: as congested as it gets (an uplink queue of
    /// seconds delays the request itself).
    pub fn on_no_answer(&mut self, _now: u64) {
        self.decrease();
    }

    fn decrease(&mut self) {
        self.probed = true;
        self.congested += 1;
        let used = self.upload_rate().unwrap_or(f64::from(self.limit));
        let from = f64::from(self.limit).min(used);
        self.limit = ((from * 0.5) as u32).max(self.config.min_limit);
    }

    fn increase(&mut self) {
        let used = self.upload_rate().unwrap_or(0.0);
        // Only a limit that is used says anything about the line: an idle client
        // keeps its limit (it does not grow without evidence).
        if used < 0.5 * f64::from(self.limit) {
            return;
        }
        self.probed = true;
        let factor = if self.congested == 0 { 2.0 } else { 1.25 };
        self.limit = ((f64::from(self.limit) * factor) as u32).max(self.limit + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::time::{MS, SEC};

    /// A link that uploads at `link` B/s (and downloads at `down` B/s) with the
    /// governor's limit, and a queue that grows when the client offers more than the
    /// link carries (the client always has more to upload than the link takes).
    /// Returns (limit, queueing delay) per second.
    fn run(link: f64, down: f64, seconds: u64, offset: u64) -> (UploadGovernor, Vec<(u32, u64)>) {
        let mut g = UploadGovernor::new(UplinkConfig::default());
        g.on_downlink_rate(down);
        let mut queue_bytes = 0.0f64;
        let mut uploaded = 0u64;
        let mut out = Vec::new();
        for s in 0..seconds {
            let now = s * SEC;
            let offered = f64::from(g.limit());
            queue_bytes = (queue_bytes + offered - link).max(0.0);
            uploaded += offered.min(link + queue_bytes) as u64;
            g.on_uploaded(now, uploaded);
            let delay = (queue_bytes / link * 1e9) as u64;
            // The channel's clock runs `offset` ahead; 20 ms of path delay.
            g.on_delay_sample(now, now, now + offset + 20 * MS + delay);
            out.push((g.limit(), delay));
        }
        (g, out)
    }

    #[test]
    fn keeps_a_saturated_uplink_near_its_rate_with_a_short_queue() {
        // 8 KB/s: a 64 kbit/s ADSL uplink.
        let (g, out) = run(8_000.0, 32_000.0, 120, 5 * SEC);
        assert!(g.congested_samples() > 0);
        assert!(g.weak());
        let tail = &out[60..];
        let mean_delay = tail.iter().map(|o| o.1).sum::<u64>() / tail.len() as u64;
        assert!(mean_delay < SEC, "queue held short: {mean_delay} ns");
        let mean_limit = tail.iter().map(|o| f64::from(o.0)).sum::<f64>() / tail.len() as f64;
        assert!(
            (3_000.0..12_000.0).contains(&mean_limit),
            "around the link's rate: {mean_limit}"
        );
    }

    #[test]
    fn a_fast_uplink_opens_up_quickly() {
        // 2.5 MB/s (20 Mbit/s): slow start doubles from 32 KiB/s each calm second.
        let (g, out) = run(2_500_000.0, 2_500_000.0, 30, 0);
        let first_fast = out.iter().position(|o| o.0 >= 1_000_000).unwrap();
        assert!(first_fast <= 10, "{out:?}");
        assert!(!g.weak());
        assert!(g.limit() >= 1_000_000);
        assert!(out.iter().all(|o| o.1 < SEC));
        // A line that carried 40 KB/s calmly is not weak, even cut low for a while.
        let (g, _) = run(40_000.0, 2_500_000.0, 60, 0);
        assert!(g.congested_samples() > 0 && !g.weak());
    }

    /// crumbsrc samples at every window poll (2 a second). The upload rate that
    /// says whether the limit is used is measured over `rate_window`, and each
    /// doubling waits for it: over 5 s this took 4 s, over 2 s 3 s. Meanwhile peers
    /// queue whole crumbs on the client: an ADSL client had its crumb 1 reserved on
    /// a 20 Mbit/s client 6 s into its run, got no byte of it in 2.3 s and lost the
    /// Segment (swarm bench).
    #[test]
    fn a_fast_uplink_in_demand_opens_up_within_seconds() {
        let mut g = UploadGovernor::new(UplinkConfig::default());
        g.on_downlink_rate(2_500_000.0);
        let mut uploaded = 0u64;
        let step = 500 * MS;
        let mut at = None;
        for k in 0..40u64 {
            let now = k * step;
            // Peers ask for more than the limit: it is used to the full.
            uploaded += u64::from(g.limit()) * step / SEC;
            g.on_uploaded(now, uploaded);
            g.on_delay_sample(now, now, now + 20 * MS);
            if g.limit() >= 1_000_000 {
                at = Some(now);
                break;
            }
        }
        let at = at.expect("never reached 1 MB/s");
        assert!(at <= 3 * SEC, "1 MB/s after {} ms", at / MS);
    }

    #[test]
    fn an_idle_uplink_keeps_its_limit_and_congestion_without_uploads_is_not_ours() {
        let mut g = UploadGovernor::new(UplinkConfig::default());
        g.on_downlink_rate(1e6);
        for s in 0..60 {
            g.on_uploaded(s * SEC, s * 1000);
            // Jitter well under the target; a clock offset that is negative.
            let jitter = (s % 3) * 10 * MS;
            g.on_delay_sample(s * SEC, s * SEC + 7 * SEC, s * SEC + jitter);
        }
        assert_eq!(g.limit(), 32 * 1024, "no evidence, no growth");
        assert!(!g.weak(), "never congested");
        assert_eq!(g.congested_samples(), 0);
    }

    #[test]
    fn no_answer_halves_and_calm_grows_again() {
        let mut g = UploadGovernor::new(UplinkConfig::default());
        g.on_downlink_rate(1e6);
        g.on_uploaded(0, 0);
        g.on_uploaded(SEC, 8_000);
        assert!(!g.weak());
        // 150 ms of queue: half of what was used.
        g.on_delay_sample(SEC, SEC, SEC);
        g.on_delay_sample(2 * SEC, 2 * SEC, 2 * SEC + 150 * MS);
        assert_eq!(g.limit(), 4_000, "half of what was used");
        assert!(g.weak());
        g.on_no_answer(3 * SEC);
        assert_eq!(g.limit(), 2_000, "no answer: half again");
        for _ in 0..20 {
            g.on_no_answer(4 * SEC);
        }
        assert_eq!(g.limit(), 1024, "never below the floor");
        // Calm again and used: grows by a quarter per sample (congestion seen).
        let mut t = 4 * SEC;
        let mut sent = 8_000;
        for _ in 0..10 {
            sent += u64::from(g.limit());
            g.on_uploaded(t, sent);
            g.on_delay_sample(t, t, t);
            t += SEC;
        }
        assert!(g.limit() > 2_000 && g.limit() < 20_000, "{}", g.limit());
    }

    #[test]
    fn the_limit_starts_from_the_downlink_until_a_sample_moves_it() {
        let mut g = UploadGovernor::new(UplinkConfig::default());
        assert_eq!(g.limit(), 1024, "no download rate yet: the floor");
        assert!(g.weak(), "no evidence: no seeding");
        // ADSL 256 kbit/s down: a quarter is 8 KB/s, its 64 kbit/s uplink: weak.
        g.on_downlink_rate(32_000.0);
        assert_eq!(g.limit(), 8_000);
        assert!(g.weak());
        g.on_downlink_rate(f64::NAN);
        g.on_downlink_rate(0.0);
        assert_eq!(g.limit(), 8_000, "no rate is no evidence");
        g.on_downlink_rate(30_000.0);
        assert_eq!(g.limit(), 8_000, "a wobble of the rate does not move it");
        // DSL 600 kbit/s: 18.75 KB/s, seeds; and so it does at 40 KB/s measured.
        g.on_downlink_rate(75_000.0);
        assert_eq!(g.limit(), 18_750);
        assert!(!g.weak());
        g.on_downlink_rate(40_000.0);
        assert!(!g.weak());
        // Fibre: capped at the initial limit.
        g.on_downlink_rate(2_500_000.0);
        assert_eq!(g.limit(), 32 * 1024);
        g.on_downlink_rate(32_000.0);
        assert_eq!(g.limit(), 8_000, "follows the downlink while not probed");
        // A congested sample moves it; the downlink no longer does.
        g.on_uploaded(0, 0);
        g.on_uploaded(SEC, 4_000);
        g.on_delay_sample(SEC, SEC, SEC);
        g.on_delay_sample(2 * SEC, 2 * SEC, 2 * SEC + 300 * MS);
        assert_eq!(g.limit(), 2_000);
        g.on_downlink_rate(2_500_000.0);
        assert_eq!(g.limit(), 2_000);
    }
}
