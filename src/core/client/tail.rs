// SPDX-License-Identifier: MPL-2.0
//! The tail crumb: crumb D + 1 at the live edge, read up to what has come at the
//! next Segment's start.

use super::*;

impl ClientEngine {
    /// At the live edge, crumb D + 1 as the tail (see [`ClientConfig::tail_crumb`])
    /// as crumb D ends: every crumb of D asked for, a slot free, and what D still
    /// misses within a crumb's start at R ([`ClientEngine::tail_fits`]), so that the
    /// tail's torrent, tracker and handshakes overlap D's last bytes. Called as
    /// crumbs progress and complete.
    pub(super) fn ask_tail(&mut self, now: u64) {
        if !self.tail_allowed() {
            return;
        }
        let rate = self.measured_rate(now);
        let startup = self.crumb_startup();
        let limit = usize::from(self.config.max_in_flight.max(1));
        let cap = self.cap(self.current.as_ref().map_or(0, |c| c.sizes.len()));
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let d = usize::from(cur.d).min(cur.sizes.len());
        if !cur.crumb1() || cur.tail.is_some() || (0..d).any(|i| !cur.requested[i]) {
            return;
        }
        let in_flight = (0..d).filter(|&i| !cur.done[i]).count();
        if in_flight == 0 || in_flight >= limit {
            // All of D in: `start_tail`'s turn.
            return;
        }
        if Self::tail_fits(cur, d, cap, (rate, startup), now) {
            self.request_tail(now, rate);
        }
    }

    /// Asks for the tail [`ClientEngine::tail_fits`] just set, unless it is on its way.
    pub(super) fn request_tail(&mut self, now: u64, rate: Option<f64>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let Some(i) = cur.tail.filter(|&i| !cur.requested[i]) else {
            return;
        };
        cur.request(i, now, None, rate);
        self.stats.tail_crumbs += 1;
        self.actions.push(Action::Download {
            seq: cur.seq,
            index: count(i + 1),
        });
    }

    /// How long a crumb takes to start from peers (torrent, tracker, handshakes): the
    /// peer patience, which is sized for it ([`DEFAULT_PEER_PATIENCE`] without one).
    pub(super) fn crumb_startup(&self) -> u64 {
        self.config.peer_patience.unwrap_or(DEFAULT_PEER_PATIENCE)
    }

    /// Whether the current Segment may have a tail crumb (see
    /// [`ClientConfig::tail_crumb`]): where the fill may grow D, at the live edge (the
    /// next Segment is not out yet).
    pub(super) fn tail_allowed(&self) -> bool {
        // Off the player's timeline (a Segment after a failure or a skip, or one due
        // already) the Segment's output anchors its play-out: waiting for a tail
        // would move the viewer's timeline later for good.
        let anchored = |c: &Current| c.on_timeline || self.playout_delay() == 0;
        self.config.tail_crumb
            && !self.on_demand
            && !self.config.relay
            && self.current.as_ref().is_some_and(|c| {
                c.fill && anchored(c) && self.window.is_some_and(|w| w.latest <= c.seq)
            })
    }

    /// Whether crumb `i` may be the tail now: none yet, within the cap, what crumbs
    /// before it still miss needs at most the crumb's start at R (its torrent, the
    /// tracker, the peers: `startup`, which overlaps them), and one of its pieces
    /// arrives at R before [`Current::tail_end`] after that start. Sets the tail (the
    /// caller asks for the crumb). A line on which that does not fit gets no tail:
    /// an ADSL client's tails brought no whole piece in the time a 4 s Segment leaves
    /// after its crumb 1, and what came of them was still on the line when the next
    /// crumb 1 started (swarm bench).
    pub(super) fn tail_fits(
        cur: &mut Current,
        i: usize,
        cap: u16,
        (rate, startup): (Option<f64>, u64),
        now: u64,
    ) -> bool {
        let Some(r) = rate.filter(|r| r.is_finite() && *r > 0.0) else {
            return false;
        };
        if cur.tail.is_some() || i >= cur.sizes.len() || count(i) >= cap {
            return false;
        }
        let missing: u64 = (0..i)
            .filter(|&k| !cur.done[k])
            .map(|k| cur.sizes[k].saturating_sub(cur.have[k]))
            .sum();
        let (end, piece_time) = cur.tail_end_at(i, r);
        let d_left = (missing as f64 * SEC as f64 / r) as u64;
        if d_left > startup {
            // Asked for beside crumb D only as D ends (its start overlaps D's last
            // bytes, no more): its pieces must not share the line with D's.
            return false;
        }
        if now.saturating_add(startup).saturating_add(piece_time) > end {
            return false;
        }
        cur.tail = Some(i);
        cur.tail_end = end;
        true
    }

    /// Crumbs 1..=D (and any tail before) are in at `now`: the Segment goes on while
    /// a tail crumb may bring more (see [`ClientConfig::tail_crumb`]), the one asked
    /// for beside crumb D or now the next one, until the next Segment is out or
    /// [`Current::tail_end`]. Returns whether it goes on. Without it a DSL client at
    /// the live edge fetched its D = 3 crumbs in 3.3 s of a 4 s Segment and then idled
    /// (crumb 4 needed 4.3 s; swarm bench log).
    pub(super) fn start_tail(&mut self, now: u64) -> bool {
        let rate = self.measured_rate(now);
        let allowed = self.tail_allowed();
        let startup = self.crumb_startup();
        let cap = self.cap(self.current.as_ref().map_or(0, |c| c.sizes.len()));
        let Some(cur) = self.current.as_mut() else {
            return false;
        };
        cur.prefix_done_at.get_or_insert(now);
        if cur.tail.is_some_and(|t| cur.done[t]) {
            // A tail that came whole is one more crumb; the next one may be the tail.
            self.stats.tail_crumbs_whole += 1;
            cur.tail = None;
        }
        if !allowed {
            return false;
        }
        match cur.tail {
            Some(_) if now >= cur.tail_end => return false,
            Some(_) => {}
            None => {
                let i = cur.done.iter().take_while(|d| **d).count();
                if !Self::tail_fits(cur, i, cap, (rate, startup), now) {
                    return false;
                }
                self.request_tail(now, rate);
            }
        }
        if self.tail_bytes == TailBytes::Counted {
            self.tail_bytes = TailBytes::AfterNext;
        }
        self.rate.set_active(now, false);
        true
    }

    /// Ends the tail (and with it the Segment) when the next Segment is out or at
    /// its [`Current::tail_end`].
    pub(super) fn end_tail(&mut self, now: u64, inclusive: bool) {
        let Some(cur) = self.current.as_ref().filter(|c| c.tailing()) else {
            return;
        };
        let next_out = self.window.is_some_and(|w| w.latest > cur.seq);
        let end = cur.tail_end;
        let t = if end < now || (end == now && inclusive) {
            end
        } else if next_out {
            now
        } else {
            return;
        };
        self.finish(t);
        self.try_start(t);
    }
}
