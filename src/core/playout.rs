// SPDX-License-Identifier: MPL-2.0
//! crumbsrc's play-out timeline: the running time each output buffer carries.
//!
//! crumbsrc is a live source: a sink plays a buffer at its running time plus the
//! pipeline's latency, which crumbsrc answers with its `latency` (3 s by default). The
//! first buffer of a run is anchored where the client engine plans it to play: its
//! running time is its output time plus a *lead*, the planned delay less the latency
//! the sink adds (negative when the sink's latency is more than the plan needs); its
//! successors keep the stream's spacing (running time = stream time + offset). The
//! plan (`core::client`) is `latency` plus room for the channel's longest Segment after
//! its output: a client started at 2 s Segments that grow to 4 s would otherwise
//! freeze 3-6 s when they grow (swarm bench, tenth round: every client that started
//! with the channel did). (Stamping the first buffer `latency` ahead of its output as
//! well, as crumbsrc once did, made the viewer wait twice that.)
//!
//! A Segment output after its play-out time would reach the sink late, and a video
//! sink drops late frames (20 ms of lateness allowed), so every frame after it would
//! be dropped too: the viewer would see a frozen picture for the rest of the run. Such
//! a buffer is a *stall*: the timeline moves forward, anchored anew as the first
//! buffer of a run is, and the buffer is marked DISCONT. The viewer sees the picture
//! pause, as an HLS player's rebuffering, and play on.
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
    /// Where an anchored buffer goes, from its output (ns; negative: the sink's latency
    /// is more than the player needs then).
    lead: i64,
}

/// What [`Playout::stamp`] decided for one buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// running time = stream time + offset, for every time of the buffer.
    pub offset: i128,
    /// The timeline moved forward at this buffer: it is a discontinuity.
    pub stalled: bool,
    /// How far it moved, ns (0 when it did not).
    pub shift: u64,
}

impl Playout {
    /// The offset of the current run, once its first buffer was stamped (for gaps).
    pub fn offset(&self) -> Option<i128> {
        self.offset
    }

    /// Where the next anchored buffer goes: its running time is its output time plus
    /// `lead` (ns; crumbsrc sets it from the engine's plan, the play-out time less the
    /// sink's latency). Used when the timeline is anchored or moved forward, not while
    /// it holds.
    pub fn set_lead(&mut self, lead: i64) {
        self.lead = lead;
    }

    /// A new run (channel restart or switch): the next buffer is anchored anew,
    /// never before the end of the last one.
    pub fn restart(&mut self) {
        self.offset = None;
    }

    /// The offset for a buffer of stream time `t` (its PTS, else its DTS) output at
    /// running time `now`, its data ready since `ready` (<= `now`: when its Segment
    /// came out of the client engine), with the element's `latency`.
    ///
    /// Lateness is judged at `ready`, not at `now`: a synced sink right after the
    /// source (no queue between) paces its streaming thread, which pushes each buffer
    /// only once the one before it has played, a frame's time before its own play-out
    /// less the sink's processing deadline (20 ms by default). Judged at the push,
    /// every frame at 60 fps, and at 30 fps any 13 ms of scheduling delay, was a
    /// stall; the timeline moved seconds forward at each, a slideshow. A buffer held
    /// by downstream is downstream's to drop (QoS), not a Segment that came late.
    pub fn stamp(&mut self, t: u64, now: u64, ready: u64, latency: u64) -> Stamp {
        let floor = self.last_running.map_or(i128::MIN, |r| r as i128 + 1);
        // Where an anchored buffer goes: `lead` after now (the sink adds `latency`),
        // never before the running time's start.
        let anchor = (now as i128 + self.lead as i128).max(0);
        let Some(offset) = self.offset else {
            let offset = anchor.max(floor) - t as i128;
            self.offset = Some(offset);
            return Stamp {
                offset,
                stalled: false,
                shift: 0,
            };
        };
        let running = t as i128 + offset;
        let due = running + latency as i128;
        if due >= ready.min(now) as i128 {
            return Stamp {
                offset,
                stalled: false,
                shift: 0,
            };
        }
        // Late: it is anchored anew, and everything after it follows.
        let shift = anchor - running;
        let offset = offset + shift;
        self.offset = Some(offset);
        self.stalls += 1;
        self.stall_time = self.stall_time.saturating_add(shift as u64);
        Stamp {
            offset,
            stalled: true,
            shift: shift as u64,
        }
    }

    /// How long a buffer of stream time `t` stamped with `offset` waits between its
    /// output at `now` and its play-out (`latency` for an anchored one), ns.
    pub fn play_delay(t: u64, offset: i128, now: u64, latency: u64) -> i64 {
        let d = t as i128 + offset + latency as i128 - now as i128;
        d.clamp(i64::MIN as i128, i64::MAX as i128) as i64
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
        let s = p.stamp(100 * SEC, 7 * SEC, 7 * SEC, 3 * SEC);
        assert!(!s.stalled);
        assert_eq!(Playout::running(100 * SEC, s.offset), 7 * SEC);
        // Its successors keep the stream's spacing while they are in time.
        let s = p.stamp(102 * SEC, 9 * SEC, 9 * SEC, 3 * SEC);
        assert!(!s.stalled);
        assert_eq!(Playout::running(102 * SEC, s.offset), 9 * SEC);
        let s = p.stamp(104 * SEC, 13 * SEC, 13 * SEC, 3 * SEC); // due at 11 + 3 = 14 s
        assert!(!s.stalled);
        assert_eq!(p.stalls, 0);
    }

    #[test]
    fn a_late_segment_stalls_the_timeline_instead_of_reaching_the_sink_late() {
        let mut p = Playout::default();
        p.stamp(0, 10 * SEC, 10 * SEC, 3 * SEC); // plays at 13 s
        // The Segments grew from 2 to 4 s at the live edge: stream time 2 s is out at
        // 16 s, due at 12 + 3 = 15 s. It plays 3 s after now, so 4 s later than due.
        let s = p.stamp(2 * SEC, 16 * SEC, 16 * SEC, 3 * SEC);
        assert!(s.stalled);
        assert_eq!(Playout::running(2 * SEC, s.offset), 16 * SEC);
        assert_eq!((p.stalls, p.stall_time), (1, 4 * SEC));
        // The rest of that Segment follows on the new timeline, in time.
        let s = p.stamp(
            2 * SEC + 33 * MS,
            16 * SEC + 5 * MS,
            16 * SEC + 5 * MS,
            3 * SEC,
        );
        assert!(!s.stalled);
        assert_eq!(
            Playout::running(2 * SEC + 33 * MS, s.offset),
            16 * SEC + 33 * MS
        );
        // Exactly due is in time (the sink allows its own lateness on top).
        let s = p.stamp(3 * SEC, 20 * SEC, 20 * SEC, 3 * SEC);
        assert!(!s.stalled);
        assert_eq!(p.stalls, 1);
    }

    #[test]
    fn a_lead_keeps_room_for_the_channels_longest_segment() {
        // A channel at 2 s Segments that grow to 4 s: the first, output at 3 s, is
        // anchored 2 s later (lead = 4 - 2 s), so it plays at 3 + 2 + 3 = 8 s.
        let mut p = Playout::default();
        p.set_lead((2 * SEC) as i64);
        let s = p.stamp(0, 3 * SEC, 3 * SEC, 3 * SEC);
        assert_eq!(Playout::running(0, s.offset), 5 * SEC);
        assert_eq!(
            Playout::play_delay(0, s.offset, 3 * SEC, 3 * SEC),
            5_000_000_000
        );
        // The lead changes nothing once anchored.
        p.set_lead(0);
        // Stream time 2 s is the first 4 s Segment, published at 2 + 4 s and out at
        // 8.5 s: due at 7 + 3 = 10 s, in time (without the lead: due at 8 s, a stall).
        let s = p.stamp(2 * SEC, 8 * SEC + 500 * MS, 8 * SEC + 500 * MS, 3 * SEC);
        assert!(!s.stalled);
        assert_eq!(
            Playout::play_delay(2 * SEC, s.offset, 8 * SEC + 500 * MS, 3 * SEC),
            1_500_000_000
        );
        // A stall moves it `lead` after now too: out at 14 s, due at 11 + 3 s.
        p.set_lead(SEC as i64);
        let s = p.stamp(6 * SEC, 14 * SEC + 1, 14 * SEC + 1, 3 * SEC);
        assert!(s.stalled);
        assert_eq!(Playout::running(6 * SEC, s.offset), 15 * SEC + 1);
        assert_eq!(s.shift, 4 * SEC + 1);
        assert_eq!(p.stall_time, 4 * SEC + 1);
        let mut q = Playout::default();
        q.stamp(0, 3 * SEC, 3 * SEC, 3 * SEC);
        assert!(
            q.stamp(2 * SEC, 8 * SEC + 500 * MS, 8 * SEC + 500 * MS, 3 * SEC)
                .stalled
        );
    }

    #[test]
    fn a_buffer_ready_in_time_and_held_by_the_sink_is_no_stall() {
        // 60 fps, 0.5 s of latency, the sink syncing 20 ms after it: each frame is
        // pushed once the one before it played, 3.3 ms after its own due time.
        let mut p = Playout::default();
        let frame = 16_666_667;
        p.stamp(0, SEC, SEC, 500 * MS); // its Segment ready at 1 s
        for n in 1..120 {
            let due = SEC + n * frame + 500 * MS;
            let pushed = due - frame + 20 * MS;
            let s = p.stamp(n * frame, pushed, SEC, 500 * MS);
            assert!(!s.stalled, "frame {n}");
            assert_eq!(Playout::running(n * frame, s.offset), SEC + n * frame);
        }
        // The next Segment, ready after its first frame's due time, is late: a stall
        // moved `lead` (0) after its push.
        let t = 120 * frame;
        let due = SEC + t + 500 * MS;
        let s = p.stamp(t, due + 30 * MS, due + 10 * MS, 500 * MS);
        assert!(s.stalled);
        assert_eq!(Playout::running(t, s.offset), due + 30 * MS);
        assert_eq!(p.stalls, 1);
    }

    #[test]
    fn with_no_latency_every_segment_out_after_its_time_stalls() {
        let mut p = Playout::default();
        p.stamp(0, SEC, SEC, 0);
        assert!(!p.stamp(SEC, 2 * SEC, 2 * SEC, 0).stalled);
        assert!(p.stamp(2 * SEC, 3 * SEC + MS, 3 * SEC + MS, 0).stalled);
        assert_eq!(p.stall_time, MS);
    }

    #[test]
    fn a_new_run_is_anchored_anew_and_never_before_the_last_buffer() {
        let mut p = Playout::default();
        let s = p.stamp(50 * SEC, 5 * SEC, 5 * SEC, SEC);
        p.stamped_until(Playout::running(52 * SEC, s.offset)); // 7 s
        p.restart();
        assert_eq!(p.offset(), None);
        // The restarted channel's Segments start at stream time 0, output at 6 s:
        // anchored after the last buffer's end, not at 6 s.
        let s = p.stamp(0, 6 * SEC, 6 * SEC, SEC);
        assert!(!s.stalled);
        assert_eq!(Playout::running(0, s.offset), 7 * SEC + 1);
        // Output later than that, it is anchored at now.
        p.restart();
        let s = p.stamp(0, 9 * SEC, 9 * SEC, SEC);
        assert_eq!(Playout::running(0, s.offset), 9 * SEC);
        assert_eq!(p.stalls, 0);
    }
}
