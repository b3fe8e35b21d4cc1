// SPDX-License-Identifier: MPL-2.0
//! A channel that restarted or was switched: the run's state is forgotten and the
//! new window joined like a new client's.

use super::*;

impl ClientEngine {
    /// Whether `doc` comes from another run of the channel than the windows before.
    pub fn restart_sign(&self, doc: &WindowDoc) -> Option<RestartSign> {
        let epoch = self.epoch?;
        if epoch != doc.epoch {
            return Some(RestartSign::Epoch);
        }
        let newest = doc.latest.or(doc.segments.iter().map(|s| s.seq).max());
        match (self.latest_seen, newest) {
            (Some(old), Some(new)) if new < old => Some(RestartSign::NumbersBack),
            _ => None,
        }
    }

    /// Forgets the old run: its Segment in progress (cancelled, no output), its
    /// Segments, TE and D; asks for the whole new window at once.
    pub(super) fn restart(&mut self, now: u64, sign: RestartSign, doc: &WindowDoc) {
        let restart = Restart {
            sign,
            old_epoch: self.epoch.flatten(),
            new_epoch: doc.epoch,
            old_latest: self.latest_seen,
            new_latest: doc.latest.or(doc.segments.iter().map(|s| s.seq).max()),
        };
        self.drop_current(now);
        self.stats.channel_restarts += 1;
        self.actions.push(Action::ChannelRestarted(restart));
        self.forget_run(now);
        self.epoch = Some(doc.epoch);
    }

    /// The viewer switched channel (the caller now talks to the new one and has
    /// dropped the old one's crumbs): everything of the old channel is forgotten as
    /// on a restart, and the new one is joined live at its start index, in the
    /// initial stage (TE and D start over: base layer first). On demand too: the
    /// Segment numbers of the old channel mean nothing on the new one.
    pub fn switch_channel(&mut self, now: u64) {
        self.last_now = self.last_now.max(now);
        if self.stalled {
            return;
        }
        self.stats.channel_switches += 1;
        self.on_demand = false;
        self.at_live_edge = false;
        self.liveness.set_follow_window(true);
        self.next = None;
        self.relayed.clear();
        self.relay_segments.clear();
        // Without Cancel actions: the caller dropped the old channel's torrents, and
        // its Segment numbers may name the new channel's crumbs.
        self.current = None;
        self.rate.set_active(now, false);
        self.forget_run(now);
        // The new channel's first window is not compared with the old one's epoch.
        self.epoch = None;
    }

    /// The Segment in progress is cancelled, without output.
    pub(super) fn drop_current(&mut self, now: u64) {
        if let Some(cur) = self.current.take() {
            self.cancel_in_flight(&cur, None);
            self.rate.set_active(now, false);
        }
    }

    /// Forgets the run followed (its Segments, TE and D; the Segment in progress is
    /// dropped first) and asks for a whole window at once.
    pub(super) fn forget_run(&mut self, now: u64) {
        self.segments.clear();
        self.window = None;
        self.window_fresh = false;
        if !self.on_demand {
            self.next = None;
        }
        self.last_done = None;
        self.prev_deadline = None;
        self.next_play = None;
        self.last = None;
        // The window in hand may list only Segments after one of the old run (the
        // caller's `?after=`): a whole one is needed, now.
        self.latest_seen = None;
        self.last_fetch = Some(now);
        self.actions.push(Action::FetchWindow);
        self.liveness.restart(now);
    }
}
