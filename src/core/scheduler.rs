// SPDX-License-Identifier: MPL-2.0
//! The Program Scheduler (paper, section 3.1, step 3): the window of available
//! Segments x-|w|+1 ..= x, the start index x' handed to joining clients, and each
//! Segment's feedback deadline.
//!
//! Sans-IO: time is an explicit `now` in nanoseconds from any monotonic origin the
//! caller picks (the element uses its pipeline clock, the simulator its virtual time).
//! The scheduler only holds metadata (info-hashes, sizes); the crumb bytes, torrents
//! and tracker entries belong to the caller, which learns from [`Expired`] what to drop.

use std::collections::BTreeMap;

use super::LayerId;
use super::time::{MS, SEC};

/// Settings of the Program Scheduler, as crumbsink's properties set them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// |w|: live Segments kept available for sharing. 0 is taken as 1.
    pub window: u32,
    /// x' = x - start_offset for a joining client. The paper uses |w| = 5, x' = x-3:
    /// x' = x would make every client race for the same newest Segment (little to
    /// share), x' = x-|w|+1 leaves too little time before the Segment expires.
    pub start_offset: u32,
    /// Keep Segments that leave the live window available on demand (`get`) instead of
    /// forgetting them; they are still reported as [`Expired`] so live seeding, the
    /// tracker and the rho feedback can stop caring about them.
    pub archive: bool,
    /// Slack (ns) added to a Segment's deadline before its rho is computed, see
    /// [`SegmentEntry::deadline`].
    pub feedback_grace: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            window: 5,
            start_offset: 3,
            archive: false,
            feedback_grace: 2 * SEC,
        }
    }
}

/// One crumb's torrent as the Torrent Maker made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedCrumb {
    /// 1-based crumb index within the Segment.
    pub index: u16,
    /// BitTorrent v1 info-hash of the crumb's torrent.
    pub info_hash: [u8; 20],
    /// Crumb size in bytes (the torrent's one file).
    pub size: u64,
    /// (spatial, quality, temporal) of the crumb layer.
    pub layer: (u8, u8, u8),
    pub piece_length: u32,
}

impl PublishedCrumb {
    pub fn layer_id(&self) -> LayerId {
        LayerId::new(self.layer.0, self.layer.1, self.layer.2)
    }
}

/// A Segment whose crumbs have all been made into torrents and are ready to seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedSegment {
    pub seq: u64,
    /// Playback duration |s| in ns.
    pub duration: u64,
    /// Crumbs 1..=N, in index order.
    pub crumbs: Vec<PublishedCrumb>,
    /// Presentation time of the Segment's start, when known.
    pub pts: Option<u64>,
}

/// A published Segment as the scheduler keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentEntry {
    pub seq: u64,
    pub duration: u64,
    pub crumbs: Vec<PublishedCrumb>,
    pub pts: Option<u64>,
    /// `now` at `publish`: t_x for a client that follows the channel live.
    pub published_at: u64,
}

impl SegmentEntry {
    /// N, the number of crumbs.
    pub fn crumb_count(&self) -> usize {
        self.crumbs.len()
    }

    /// Bytes of all crumbs.
    pub fn total_size(&self) -> u64 {
        self.crumbs.iter().map(|c| c.size).sum()
    }

    /// Bytes of crumbs 1..=d (the numerator of the paper's eq. 3).
    pub fn prefix_size(&self, d: usize) -> u64 {
        self.crumbs.iter().take(d).map(|c| c.size).sum()
    }

    /// When the channel stops waiting for reports on this Segment and computes its rho:
    /// published_at + |s| + grace. Why this instant: a client following the channel
    /// live starts this Segment when it is published and must have it by
    /// published_at + |s| (paper 3.2 a); `grace` covers its report's trip to the
    /// channel (HTTP, retries, the client's own polling). Clients that run a few
    /// Segments behind report later; waiting for them would delay |G|'s reaction by up
    /// to |w| Segments, so their late reports only feed the per-client statistics.
    /// The API document of this Segment for channel `channel` at `now`.
    pub fn to_doc(&self, channel: &str, now: u64) -> super::api::SegmentDoc {
        super::api::SegmentDoc {
            seq: self.seq,
            pts: self.pts,
            duration: self.duration,
            age_ms: now.saturating_sub(self.published_at) / MS,
            crumbs: self
                .crumbs
                .iter()
                .map(|c| super::api::CrumbDoc {
                    index: c.index,
                    info_hash: super::api::hex(&c.info_hash),
                    size: c.size,
                    layer: [c.layer.0, c.layer.1, c.layer.2],
                    piece_length: c.piece_length,
                    torrent: format!("/{channel}/torrents/{}/{}.torrent", self.seq, c.index),
                })
                .collect(),
        }
    }

    pub fn deadline(&self, grace: u64) -> u64 {
        self.published_at
            .saturating_add(self.duration)
            .saturating_add(grace)
    }
}

/// A Segment that left the live window during a `publish`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expired {
    pub seq: u64,
    /// Its crumbs, so the caller can stop seeding them and remove them from the tracker.
    pub crumbs: Vec<PublishedCrumb>,
    /// True when `archive` keeps it available on demand: keep its data. False when the
    /// scheduler forgot it: the caller should delete its data.
    pub archived: bool,
}

impl Expired {
    /// Whether the caller should delete the Segment's crumb data.
    pub fn delete_data(&self) -> bool {
        !self.archived
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("Segment {seq} is not newer than the latest published Segment {latest}")]
    NotNewer { seq: u64, latest: u64 },
    #[error("Segment {0} has no crumbs")]
    NoCrumbs(u64),
    #[error("Segment {seq}: crumb at position {position} has index {index}, expected {}", position + 1)]
    BadCrumbIndex {
        seq: u64,
        position: usize,
        index: u16,
    },
    #[error("Segment {0} has more than 65535 crumbs")]
    TooManyCrumbs(u64),
}

/// The window of live Segments and the start index x'.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    /// Live Segments, plus archived ones when `config.archive`. Keyed by seq, so the
    /// window is a range query and gaps in numbering cost nothing.
    segments: BTreeMap<u64, SegmentEntry>,
    latest: Option<u64>,
}

impl Scheduler {
    pub fn new(mut config: SchedulerConfig) -> Self {
        config.window = config.window.max(1);
        Scheduler {
            config,
            segments: BTreeMap::new(),
            latest: None,
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Segment x enters the window; Segments older than x-|w|+1 leave it and are
    /// returned, oldest first. Sequence numbers must increase strictly (a gap is
    /// accepted: a Segment the caller failed to publish is simply absent); crumbs must
    /// be listed as indices 1..=N.
    pub fn publish(
        &mut self,
        segment: PublishedSegment,
        now: u64,
    ) -> Result<Vec<Expired>, ScheduleError> {
        let seq = segment.seq;
        if let Some(latest) = self.latest
            && seq <= latest
        {
            return Err(ScheduleError::NotNewer { seq, latest });
        }
        if segment.crumbs.is_empty() {
            return Err(ScheduleError::NoCrumbs(seq));
        }
        if segment.crumbs.len() > usize::from(u16::MAX) {
            return Err(ScheduleError::TooManyCrumbs(seq));
        }
        for (position, crumb) in segment.crumbs.iter().enumerate() {
            if usize::from(crumb.index) != position + 1 {
                return Err(ScheduleError::BadCrumbIndex {
                    seq,
                    position,
                    index: crumb.index,
                });
            }
        }
        // Entries that were live before this publish and are not after it.
        let old_lo = self.live_lo();
        self.latest = Some(seq);
        let new_lo = self.live_lo().unwrap_or(seq);
        let leaving: Vec<u64> = match old_lo {
            Some(old_lo) if old_lo < new_lo => self
                .segments
                .range(old_lo..new_lo)
                .map(|(s, _)| *s)
                .collect(),
            _ => Vec::new(),
        };
        let mut expired = Vec::with_capacity(leaving.len());
        for s in leaving {
            let crumbs = if self.config.archive {
                self.segments.get(&s).map(|e| e.crumbs.clone())
            } else {
                self.segments.remove(&s).map(|e| e.crumbs)
            };
            if let Some(crumbs) = crumbs {
                expired.push(Expired {
                    seq: s,
                    crumbs,
                    archived: self.config.archive,
                });
            }
        }
        self.segments.insert(
            seq,
            SegmentEntry {
                seq,
                duration: segment.duration,
                crumbs: segment.crumbs,
                pts: segment.pts,
                published_at: now,
            },
        );
        Ok(expired)
    }

    /// x-|w|+1 (saturating at 0), the oldest live sequence number.
    fn live_lo(&self) -> Option<u64> {
        let window = u64::from(self.config.window);
        self.latest.map(|x| x.saturating_sub(window - 1))
    }

    /// The live sequence numbers x-|w|+1 ..= x (some may be absent after a gap).
    pub fn live_range(&self) -> Option<std::ops::RangeInclusive<u64>> {
        Some(self.live_lo()?..=self.latest?)
    }

    /// Whether `seq` is in the live window and was published.
    pub fn is_live(&self, seq: u64) -> bool {
        self.live_range().is_some_and(|r| r.contains(&seq)) && self.segments.contains_key(&seq)
    }

    /// The live Segments x-|w|+1 ..= x, oldest first.
    pub fn window(&self) -> Vec<&SegmentEntry> {
        match self.live_range() {
            Some(r) => self.segments.range(r).map(|(_, e)| e).collect(),
            None => Vec::new(),
        }
    }

    /// Segment x, the newest.
    pub fn latest(&self) -> Option<&SegmentEntry> {
        self.segments.get(&self.latest?)
    }

    /// A live Segment, or an archived one when `archive` is on.
    pub fn get(&self, seq: u64) -> Option<&SegmentEntry> {
        self.segments.get(&seq)
    }

    /// Every Segment still held (live and archived), oldest first.
    pub fn all(&self) -> impl Iterator<Item = &SegmentEntry> {
        self.segments.values()
    }

    /// x' for a joining client: x - start_offset, clamped into the window; while fewer
    /// Segments than that have been published (or after a gap), the oldest live one at
    /// or after the target. With the defaults (|w| = 5, offset 3) this is the paper's
    /// x - |w| + 1 < x' < x; other settings are honoured as configured.
    pub fn start_index(&self) -> Option<u64> {
        let x = self.latest?;
        let lo = self.live_lo()?;
        let target = x
            .saturating_sub(u64::from(self.config.start_offset))
            .max(lo);
        self.segments.range(target..=x).next().map(|(s, _)| *s)
    }

    /// When Segment `seq` was published.
    pub fn published_at(&self, seq: u64) -> Option<u64> {
        self.segments.get(&seq).map(|e| e.published_at)
    }

    /// The feedback deadline of Segment `seq` (see [`SegmentEntry::deadline`]).
    pub fn deadline(&self, seq: u64) -> Option<u64> {
        self.segments
            .get(&seq)
            .map(|e| e.deadline(self.config.feedback_grace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::time::SEC;

    fn crumb(index: u16) -> PublishedCrumb {
        PublishedCrumb {
            index,
            info_hash: [index as u8; 20],
            size: 1000 * u64::from(index),
            layer: (0, 0, index as u8 - 1),
            piece_length: 16384,
        }
    }

    fn seg(seq: u64) -> PublishedSegment {
        PublishedSegment {
            seq,
            duration: 2 * SEC,
            crumbs: vec![crumb(1), crumb(2), crumb(3)],
            pts: Some(seq * 2 * SEC),
        }
    }

    fn sched(window: u32, start_offset: u32, archive: bool) -> Scheduler {
        Scheduler::new(SchedulerConfig {
            window,
            start_offset,
            archive,
            feedback_grace: SEC,
        })
    }

    fn seqs(s: &Scheduler) -> Vec<u64> {
        s.window().iter().map(|e| e.seq).collect()
    }

    #[test]
    fn window_slides() {
        let mut s = sched(5, 3, false);
        assert!(s.window().is_empty());
        assert_eq!(s.latest(), None);
        for seq in 0..5 {
            assert!(s.publish(seg(seq), seq * 2 * SEC).unwrap().is_empty());
        }
        assert_eq!(seqs(&s), vec![0, 1, 2, 3, 4]);
        let expired = s.publish(seg(5), 10 * SEC).unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].seq, 0);
        assert!(expired[0].delete_data());
        assert_eq!(expired[0].crumbs.len(), 3);
        assert_eq!(seqs(&s), vec![1, 2, 3, 4, 5]);
        assert_eq!(s.latest().map(|e| e.seq), Some(5));
        assert_eq!(s.get(0), None);
        assert!(s.is_live(1) && !s.is_live(0) && !s.is_live(6));
        assert_eq!(s.live_range(), Some(1..=5));
    }

    #[test]
    fn expiry_is_oldest_first_across_a_gap() {
        let mut s = sched(3, 1, false);
        for seq in 10..13 {
            s.publish(seg(seq), 0).unwrap();
        }
        // Jumping from 12 to 14: 10 and 11 leave, oldest first.
        let expired: Vec<u64> = s
            .publish(seg(14), 0)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(expired, vec![10, 11]);
        assert_eq!(seqs(&s), vec![12, 14]);
        // A big jump empties the window.
        let expired: Vec<u64> = s
            .publish(seg(100), 0)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(expired, vec![12, 14]);
        assert_eq!(seqs(&s), vec![100]);
    }

    #[test]
    fn start_index_clamps_at_start_and_in_steady_state() {
        let mut s = sched(5, 3, false);
        assert_eq!(s.start_index(), None);
        s.publish(seg(0), 0).unwrap();
        assert_eq!(s.start_index(), Some(0));
        s.publish(seg(1), 0).unwrap();
        s.publish(seg(2), 0).unwrap();
        assert_eq!(s.start_index(), Some(0), "oldest available while few");
        s.publish(seg(3), 0).unwrap();
        assert_eq!(s.start_index(), Some(0));
        for seq in 4..20 {
            s.publish(seg(seq), 0).unwrap();
            let x = seq;
            let xp = s.start_index().unwrap();
            assert_eq!(xp, x - 3);
            assert!(x + 1 < xp + 5 && xp < x, "paper: x-|w|+1 < x' < x");
        }
        // An offset beyond the window is clamped to its oldest Segment.
        let mut s = sched(3, 10, false);
        for seq in 0..6 {
            s.publish(seg(seq), 0).unwrap();
        }
        assert_eq!(s.start_index(), Some(3));
        // After a gap, the oldest live Segment at or after the target.
        let mut s = sched(5, 3, false);
        s.publish(seg(0), 0).unwrap();
        s.publish(seg(5), 0).unwrap();
        assert_eq!(s.start_index(), Some(5));
    }

    #[test]
    fn archive_keeps_everything_but_reports_expiry() {
        let mut s = sched(2, 1, true);
        s.publish(seg(0), 0).unwrap();
        s.publish(seg(1), 0).unwrap();
        let expired = s.publish(seg(2), 0).unwrap();
        assert_eq!(expired.len(), 1);
        assert!(expired[0].archived && !expired[0].delete_data());
        assert_eq!(seqs(&s), vec![1, 2]);
        assert_eq!(s.get(0).map(|e| e.seq), Some(0), "on demand");
        assert!(!s.is_live(0));
        assert_eq!(s.all().count(), 3);
        // Archived Segments are not reported twice.
        let expired = s.publish(seg(3), 0).unwrap();
        assert_eq!(expired.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn duplicates_and_out_of_order_are_rejected() {
        let mut s = sched(5, 3, false);
        s.publish(seg(3), 0).unwrap();
        assert_eq!(
            s.publish(seg(3), 0),
            Err(ScheduleError::NotNewer { seq: 3, latest: 3 })
        );
        assert_eq!(
            s.publish(seg(2), 0),
            Err(ScheduleError::NotNewer { seq: 2, latest: 3 })
        );
        let mut bad = seg(4);
        bad.crumbs.clear();
        assert_eq!(s.publish(bad, 0), Err(ScheduleError::NoCrumbs(4)));
        let mut bad = seg(4);
        bad.crumbs.swap(0, 1);
        assert!(matches!(
            s.publish(bad, 0),
            Err(ScheduleError::BadCrumbIndex { position: 0, .. })
        ));
        // Rejections change nothing.
        assert_eq!(seqs(&s), vec![3]);
        s.publish(seg(4), 0).unwrap();
        assert_eq!(seqs(&s), vec![3, 4]);
    }

    #[test]
    fn deadlines_and_sizes() {
        let mut s = sched(5, 3, false);
        s.publish(seg(7), 40 * SEC).unwrap();
        assert_eq!(s.published_at(7), Some(40 * SEC));
        assert_eq!(s.deadline(7), Some(40 * SEC + 2 * SEC + SEC));
        assert_eq!(s.deadline(8), None);
        let e = s.get(7).unwrap();
        assert_eq!(e.crumb_count(), 3);
        assert_eq!(e.total_size(), 6000);
        assert_eq!(e.prefix_size(2), 3000);
        assert_eq!(e.crumbs[2].layer_id(), LayerId::new(0, 0, 2));
    }

    #[test]
    fn zero_window_acts_as_one() {
        let mut s = sched(0, 0, false);
        s.publish(seg(0), 0).unwrap();
        let expired = s.publish(seg(1), 0).unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(seqs(&s), vec![1]);
        assert_eq!(s.start_index(), Some(1));
    }
}
