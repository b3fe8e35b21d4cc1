// SPDX-License-Identifier: MPL-2.0
//! Relay mode: every crumb of the window, once.

use super::*;

impl ClientEngine {
    /// Relay: every crumb of the window not asked for yet; Segments that left the
    /// window are forgotten (the caller stops seeding them as it reads the window).
    pub(super) fn relay_window(&mut self, doc: &WindowDoc) {
        if let Some(oldest) = doc
            .oldest
            .or_else(|| doc.segments.iter().map(|s| s.seq).min())
        {
            self.relayed = self.relayed.split_off(&(oldest, 0));
            let kept = self.relay_segments.split_off(&oldest);
            // Left the window with crumbs missing: given up.
            for (seq, (total, done)) in std::mem::replace(&mut self.relay_segments, kept) {
                self.stats.segments_relay_incomplete += 1;
                self.actions.push(Action::Relayed(RelayRecord {
                    seq,
                    crumbs_done: count(done.len()),
                    crumbs_total: total,
                }));
            }
        }
        for seg in &doc.segments {
            let first_seen = self
                .relayed
                .range((seg.seq, 0)..=(seg.seq, u16::MAX))
                .next()
                .is_none();
            if first_seen && !seg.crumbs.is_empty() {
                self.relay_segments
                    .entry(seg.seq)
                    .or_insert_with(|| (count(seg.crumbs.len()), BTreeSet::new()));
            }
            for c in &seg.crumbs {
                if self.relayed.insert((seg.seq, c.index)) {
                    self.actions.push(Action::Download {
                        seq: seg.seq,
                        index: c.index,
                    });
                }
            }
        }
    }

    /// Relay: crumb `index` of Segment `seq` is complete; the Segment is reported once
    /// all its crumbs are.
    pub(super) fn relay_complete(&mut self, now: u64, seq: u64, index: u16) {
        if !self.relayed.contains(&(seq, index)) {
            return;
        }
        let Some((total, done)) = self.relay_segments.get_mut(&seq) else {
            return;
        };
        if !done.insert(index) {
            return;
        }
        self.liveness.on_fetched(now);
        self.stats.crumbs_relayed += 1;
        if done.len() >= usize::from(*total) {
            let total = *total;
            self.relay_segments.remove(&seq);
            self.stats.segments_relayed += 1;
            self.actions.push(Action::Relayed(RelayRecord {
                seq,
                crumbs_done: total,
                crumbs_total: total,
            }));
        }
    }
}
