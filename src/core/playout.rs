// SPDX-License-Identifier: MPL-2.0
//! crumbsrc's play-out timeline: the running time each output buffer carries.
//!
//! crumbsrc is a live source: a sink plays a buffer at its running time plus the
//! pipeline's latency, which crumbsrc answers with its `latency`. So the first buffer
//! of a run is stamped with the running time at which it is output, and plays
//! `latency` later; its successors keep the stream's spacing (running time = stream
//! time + offset). (Stamping it `latency` ahead as well, as crumbsrc did, made the
//! viewer wait twice that: 6 s instead of 3 with the default.)
//!
//! A Segment output after its play-out time would reach the sink late, and a video
//! sink drops late frames (20 ms of lateness allowed), so every frame after it would
//! be dropped too: the viewer would see a frozen picture for the rest of the run. That
//! happens without any fault of the client when the channel's Segments grow (|G|
//! follows the audience's success ratio) while the client waits at the live edge: the
//! longer Segment is published later than the shorter one's play-out ends. Such a
//! buffer is a *stall*: the timeline moves forward so that it plays `latency` after
//! now, as the first buffer of a run does, and the buffer is marked DISCONT. The
//! viewer sees the picture pause, as an HLS player's rebuffering, and play on.
//!
//! Pure arithmetic on explicit times (ns): unit-tested here, driven by crumbsrc.

/// The play-out timeline of one crumbsrc (both its pads share it, so audio and video
/// stay in sync across a stall).
#[derive(Debug, Default, Clone)]
pub struct Playout {
    /// running time = stream time + offset; `None` until the first buffer of a run.
    offset: Option<i128>,
    /// End of the latest buffer stamped (running time): a new run never goes back.
    last_running: Option<u64>,
    /// Stalls so far (buffers that would have played late).
    pub stalls: u64,
    /// Time the timeline moved forward over all stalls, ns: what the viewer waited.
    pub stall_time: u64,
}

/// What [`Playout::stamp`] decided for one buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// running time = stream time + offset, for every time of the buffer.
    pub offset: i128,
    /// The timeline moved forward at this buffer: it is a discontinuity.
    pub stalled: bool,
}

impl Playout {
    /// The offset of the current run, once its first buffer was stamped (for gaps).
    pub fn offset(&self) -> Option<i128> {
        self.offset
    }

    /// A new run (channel restart or switch): the next buffer is anchored anew,
    /// never before the end of the last one.
    pub fn restart(&mut self) {
        self.offset = None;
    }

    /// The offset for a buffer of stream time `t` (its PTS, else its DTS) output at
    /// running time `now`, with the element's `latency`.
    pub fn stamp(&mut self, t: u64, now: u64, latency: u64) -> Stamp {
        let floor = self.last_running.map_or(i128::MIN, |r| r as i128 + 1);
        let Some(offset) = self.offset else {
            // The first buffer of a run plays `latency` after now: the sink adds it.
            let offset = (now as i128).max(floor) - t as i128;
            self.offset = Some(offset);
            return Stamp {
                offset,
                stalled: false,
            };
        };
        let running = t as i128 + offset;
        let due = running + latency as i128;
        if due >= now as i128 {
            return Stamp {
                offset,
                stalled: false,
            };
        }
        // Late: it plays `latency` after now, and so does everything after it.
        let shift = now as i128 - running;
        let offset = offset + shift;
        self.offset = Some(offset);
        self.stalls += 1;
        self.stall_time = self.stall_time.saturating_add(shift as u64);
        Stamp {
            offset,
            stalled: true,
        }
    }

    /// The running time of stream time `t` under `offset` (0 before the epoch).
    pub fn running(t: u64, offset: i128) -> u64 {
        (t as i128 + offset).max(0) as u64
    }

    /// Records the end of a stamped buffer (running time).
    pub fn stamped_until(&mut self, end: u64) {
        self.last_running = self.last_running.max(Some(end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::time::{MS, SEC};

    #[test]
    fn the_first_buffer_plays_latency_after_it_is_output() {
        let mut p = Playout::default();
        // Stream time 100 s, output at running time 7 s: running time 7 s, so a sink
        // with the pipeline's 3 s of latency plays it at 10 s.
        let s = p.stamp(100 * SEC, 7 * SEC, 3 * SEC);
        assert!(!s.stalled);
        assert_eq!(Playout::running(100 * SEC, s.offset), 7 * SEC);
        // Its successors keep the stream's spacing while they are in time.
        let s = p.stamp(102 * SEC, 9 * SEC, 3 * SEC);
        assert!(!s.stalled);
        assert_eq!(Playout::running(102 * SEC, s.offset), 9 * SEC);
        let s = p.stamp(104 * SEC, 13 * SEC, 3 * SEC); // due at 11 + 3 = 14 s
        assert!(!s.stalled);
        assert_eq!(p.stalls, 0);
    }

    #[test]
    fn a_late_segment_stalls_the_timeline_instead_of_reaching_the_sink_late() {
        let mut p = Playout::default();
        p.stamp(0, 10 * SEC, 3 * SEC); // plays at 13 s
        // The Segments grew from 2 to 4 s at the live edge: stream time 2 s is out at
        // 16 s, due at 12 + 3 = 15 s. It plays 3 s after now, so 4 s later than due.
        let s = p.stamp(2 * SEC, 16 * SEC, 3 * SEC);
        assert!(s.stalled);
        assert_eq!(Playout::running(2 * SEC, s.offset), 16 * SEC);
        assert_eq!((p.stalls, p.stall_time), (1, 4 * SEC));
        // The rest of that Segment follows on the new timeline, in time.
        let s = p.stamp(2 * SEC + 33 * MS, 16 * SEC + 5 * MS, 3 * SEC);
        assert!(!s.stalled);
        assert_eq!(
            Playout::running(2 * SEC + 33 * MS, s.offset),
            16 * SEC + 33 * MS
        );
        // Exactly due is in time (the sink allows its own lateness on top).
        let s = p.stamp(3 * SEC, 20 * SEC, 3 * SEC);
        assert!(!s.stalled);
        assert_eq!(p.stalls, 1);
    }

    #[test]
    fn with_no_latency_every_segment_out_after_its_time_stalls() {
        let mut p = Playout::default();
        p.stamp(0, SEC, 0);
        assert!(!p.stamp(SEC, 2 * SEC, 0).stalled);
        assert!(p.stamp(2 * SEC, 3 * SEC + MS, 0).stalled);
        assert_eq!(p.stall_time, MS);
    }

    #[test]
    fn a_new_run_is_anchored_anew_and_never_before_the_last_buffer() {
        let mut p = Playout::default();
        let s = p.stamp(50 * SEC, 5 * SEC, SEC);
        p.stamped_until(Playout::running(52 * SEC, s.offset)); // 7 s
        p.restart();
        assert_eq!(p.offset(), None);
        // The restarted channel's Segments start at stream time 0, output at 6 s:
        // anchored after the last buffer's end, not at 6 s.
        let s = p.stamp(0, 6 * SEC, SEC);
        assert!(!s.stalled);
        assert_eq!(Playout::running(0, s.offset), 7 * SEC + 1);
        // Output later than that, it is anchored at now.
        p.restart();
        let s = p.stamp(0, 9 * SEC, SEC);
        assert_eq!(Playout::running(0, s.offset), 9 * SEC);
        assert_eq!(p.stalls, 0);
    }
}
