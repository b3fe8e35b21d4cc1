// SPDX-License-Identifier: MPL-2.0
//! Peers first, the super seed as the fallback: peer patience, urgent crumbs 1, the
//! fallback at a crumb's pace, take-overs and stalled pieces.

use super::*;

impl ClientEngine {
    /// The earliest end of peer patience among crumbs still waiting for it.
    pub(super) fn patience_ends(&self, cur: &Current) -> Option<u64> {
        (0..cur.sizes.len().min(usize::from(cur.chosen_d)))
            .filter(|&i| cur.requested[i] && !cur.done[i] && !cur.taken_over[i])
            .filter_map(|i| match (cur.fell_back[i], self.config.peer_patience) {
                (false, _) => Some(cur.patience_until[i]),
                (true, Some(_)) if i == 0 => Some(cur.stall_until[i]),
                (true, _) => None,
            })
            .filter(|&t| t > self.last_now)
            .min()
    }

    /// Whether crumb `i` is urgent at `now` (see [`URGENT_SHARE`]): crumb 1 only, and
    /// only with a measured rate.
    pub(super) fn urgent(cur: &Current, i: usize, rate: Option<f64>, now: u64) -> bool {
        let Some(r) = rate.filter(|r| r.is_finite() && *r > 0.0) else {
            return false;
        };
        let left = cur.deadline.saturating_sub(now) as f64;
        let missing = cur.sizes[i].saturating_sub(cur.have[i]) as f64;
        i == 0 && missing * SEC as f64 / r > URGENT_SHARE * left
    }

    /// Peers first: asks for the super seed for each crumb in flight whose patience
    /// is over and that has no byte yet or whose pace would miss the deadline, and at
    /// once for crumb 1 when it is urgent.
    pub(super) fn check_fallbacks(&mut self, now: u64) {
        if self.config.peer_patience.is_none() {
            return;
        }
        let clock = self.stall_clock(now);
        let rate = clock.rate;
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        for i in 0..cur.sizes.len().min(usize::from(cur.chosen_d)) {
            if !cur.requested[i] || cur.done[i] || cur.taken_over[i] {
                continue;
            }
            if cur.fell_back[i] {
                // Crumb 1 only: without it the Segment is lost. An enhancement crumb
                // that stalls costs quality; taking it over costs the super seed's
                // upload, which where the channel's link is the bottleneck is what
                // everyone's crumb 1 comes from (the channel at twice the full
                // quality delivered 642-646 kbit/s with every crumb escalated, 737
                // without escalation; swarm bench).
                if i > 0 || now < cur.stall_until[i] {
                    continue;
                }
                if cur.link_busy(i, now, self.bytes_total) {
                    // The line is full (a weak one fetching this crumb from several
                    // sources at once): pieces come, only slowly. Watch again.
                    cur.progress(i, now, self.bytes_total, clock);
                } else if cur.have[i] == 0 || cur.roomy(i, now) {
                    // Room matters only for a crumb that is coming: with no verified
                    // byte on an idle link it is lost without the take-over (tight
                    // bench: an ADSL joiner with 2.85 s of time extension had no byte
                    // of crumb 1 in 6.8 s, the super seed asked at once; the 83 kB
                    // needed 6 s of the 6.85 s left at R, so it was never taken over).
                    self.stats.sole_source_opened +=
                        u64::from(cur.sole_source && !cur.taken_over[i]);
                    cur.taken_over[i] = true;
                    self.stats.super_seed_take_overs += 1;
                    self.actions.push(Action::UseSuperSeed {
                        seq: cur.seq,
                        index: count(i + 1),
                        take_over: true,
                        alone: false,
                    });
                }
                continue;
            }
            if Self::urgent(cur, i, rate, now) {
                cur.fell_back[i] = true;
                cur.progress(i, now, self.bytes_total, clock);
                self.stats.super_seed_fallbacks += 1;
                self.stats.urgent_fallbacks += 1;
                self.actions.push(Action::UseSuperSeed {
                    seq: cur.seq,
                    index: count(i + 1),
                    take_over: false,
                    alone: false,
                });
                continue;
            }
            if now < cur.patience_until[i] {
                continue;
            }
            let (have, size) = (cur.have[i], cur.sizes[i]);
            let elapsed = now.saturating_sub(cur.requested_at[i]).max(1) as f64;
            let left = cur.deadline.saturating_sub(now) as f64;
            let needs = size.saturating_sub(have) as f64 * elapsed / have.max(1) as f64;
            if have == 0 || needs > FALLBACK_PACE_SHARE * left {
                cur.fell_back[i] = true;
                self.stats.super_seed_fallbacks += 1;
                // The link is not the limit when the crumb's pace is well under R.
                let pace = have as f64 * SEC as f64 / elapsed;
                let take_over = have == 0 || rate.is_some_and(|r| pace < TAKE_OVER_PACE * r);
                cur.progress(i, now, self.bytes_total, clock);
                cur.taken_over[i] = take_over;
                self.stats.super_seed_take_overs += u64::from(take_over);
                self.actions.push(Action::UseSuperSeed {
                    seq: cur.seq,
                    index: count(i + 1),
                    take_over,
                    alone: false,
                });
            }
        }
    }

    pub(super) fn stall_clock(&self, now: u64) -> StallClock {
        StallClock {
            patience: self.config.peer_patience.unwrap_or(0),
            rate: self.measured_rate(now),
        }
    }
}
