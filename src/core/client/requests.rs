// SPDX-License-Identifier: MPL-2.0
//! Which crumbs of the current Segment are asked for, in turn, and prepared ahead;
//! the fill that raises D within a Segment.

use super::*;

impl ClientEngine {
    /// Requests the next crumbs of the current Segment in index order, crumb 1 alone
    /// first, at most `max_in_flight` at once, up to D; prepares those after them.
    pub(super) fn request_more(&mut self) {
        self.request_in_turn();
        self.prepare_next();
    }

    /// [`ClientEngine::request_more`]'s requests.
    pub(super) fn request_in_turn(&mut self) {
        let now = self.last_now;
        let rate = self.measured_rate(now);
        let patience = self.config.peer_patience;
        let mut limit = usize::from(self.config.max_in_flight);
        let cap = self.cap(self.current.as_ref().map_or(0, |c| c.sizes.len()));
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if !cur.crumb1() || cur.tail.is_some() {
            return;
        }
        let d = usize::from(cur.d);
        let missing: u64 = (0..d)
            .filter(|&i| !cur.done[i])
            .map(|i| cur.sizes[i].saturating_sub(cur.have[i]))
            .sum();
        let left = cur.deadline.saturating_sub(now) as f64;
        if rate.is_some_and(|r| r > 0.0 && missing as f64 * SEC as f64 / r < AMPLE_SHARE * left) {
            limit = limit.max(AMPLE_IN_FLIGHT);
        }
        let mut in_flight = (0..d).filter(|&i| cur.requested[i] && !cur.done[i]).count();
        let mut d = d;
        let mut i = 1;
        while in_flight < limit {
            if i >= d {
                // The fill: every crumb up to D is asked for and the link has room.
                if !Self::fill(cur, d, cap, rate, now) {
                    break;
                }
                d += 1;
            }
            if !cur.requested[i] && !cur.done[i] {
                cur.request(i, now, patience, rate);
                in_flight += 1;
                let index = count(i + 1);
                self.actions.push(Action::Download {
                    seq: cur.seq,
                    index,
                });
            }
            i += 1;
        }
        if cur.d != count(d) {
            self.stats.crumbs_filled += u64::from(count(d) - cur.d);
            cur.d = count(d);
            self.stats.d_current = cur.d;
        }
        // No room for a whole one more: perhaps the next as the tail.
        self.ask_tail(now);
    }

    /// Prepares the [`ClientConfig::prepare_ahead`] crumbs after the last one asked
    /// for, up to D; not crumb 1, which is asked for as its Segment starts. Only
    /// behind the live edge (a newer Segment is out), where peers hold the crumbs
    /// already. At the edge a prepared torrent, the first to announce a crumb, took
    /// the super seed's initial-seeding grant and asked nothing of it for a while, and
    /// the others waited their patience and then asked the super seed directly
    /// (swarm bench, tight channel: 0.39 of bound against 0.52). Crumb D + 1 (the
    /// fill's or the tail's) is not prepared either: on an ADSL line at D = 1 its
    /// handshakes and the peers it drew shared the 64 kbit/s uplink with crumb 1's
    /// requests (two clients lost 6 Segments at N = 20).
    pub(super) fn prepare_next(&mut self) {
        let ahead = usize::from(self.config.prepare_ahead);
        if ahead == 0 || self.config.relay {
            return;
        }
        let latest = self.window.map(|w| w.latest);
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if cur.prefix_done_at.is_some() || latest.is_none_or(|l| l <= cur.seq) {
            return;
        }
        let from = (0..cur.sizes.len())
            .rev()
            .find(|&i| cur.requested[i])
            .map_or(1, |i| i + 1);
        // D is within the cap already (its start and the fill keep it there).
        let until = usize::from(cur.d).min(cur.sizes.len()).min(from + ahead);
        for i in from..until {
            if !cur.prepared[i] && !cur.requested[i] {
                cur.prepared[i] = true;
                self.actions.push(Action::Prepare {
                    seq: cur.seq,
                    index: count(i + 1),
                });
            }
        }
    }

    /// The fill: raises D by one crumb within the Segment when the crumbs still
    /// missing up to D + 1 arrive at [`FILL_SAFETY`]·R before the Segment's own |s|
    /// is over (TE untouched). D is chosen before the Segment from an R that lags
    /// (it counts each crumb's start-up, and a first Segment has none): a client
    /// done early otherwise sits idle until the next Segment is published. At the
    /// live edge that time is free; behind it, a Segment that ends within |s| leaves
    /// the next one the TE it had.
    pub(super) fn fill(cur: &Current, d: usize, cap: u16, rate: Option<f64>, now: u64) -> bool {
        let Some(r) = rate.filter(|r| r.is_finite() && *r > 0.0) else {
            return false;
        };
        if !cur.fill || d >= cur.sizes.len() || count(d) >= cap {
            return false;
        }
        let missing: u64 = (0..=d)
            .filter(|&i| !cur.done[i])
            .map(|i| cur.sizes[i].saturating_sub(cur.have[i]))
            .sum();
        let end = cur.started_at.saturating_add(cur.duration);
        let needs = missing as f64 * SEC as f64 / (FILL_SAFETY * r);
        (now as f64 + needs) <= end as f64
    }

    /// Cancels every crumb of `cur` asked for or prepared and not complete, but `keep`.
    pub(super) fn cancel_in_flight(&mut self, cur: &Current, keep: Option<usize>) {
        for i in 0..cur.done.len() {
            if (cur.requested[i] || cur.prepared[i]) && !cur.done[i] && keep != Some(i) {
                let index = count(i + 1);
                self.actions.push(Action::Cancel {
                    seq: cur.seq,
                    index,
                });
            }
        }
    }
}
