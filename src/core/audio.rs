// SPDX-License-Identifier: MPL-2.0
//! Audio beside the video: svcsegmenter's `audio` pad feeds compressed audio frames
//! here, and each Segment the video closes takes the frames of its time span
//! [pts, pts + duration) before it is cut into crumbs (the audio travels in crumb 1).
//!
//! Audio and video arrive on two streaming threads with their own latencies, so a
//! closed Segment waits until the audio has reached its end: otherwise frames of its
//! span still on their way would land in no Segment. It waits no longer than
//! `max_wait` of video time past its end, so that a stalled or unlinked audio branch
//! cannot hold the channel.

use std::collections::VecDeque;
use std::sync::Arc;

use super::segmenter::{AudioFrame, Segment, SegmentAudio};

/// How long (ns of video time past a Segment's end) a Segment waits for audio
/// before it is published with the audio it has.
pub const DEFAULT_MAX_WAIT: u64 = 3_000_000_000;
/// Frames held while no Segment is open (the video waits for a key frame): the
/// oldest go beyond this, so memory stays bounded (about 80 s of 20 ms frames).
const MAX_QUEUED: usize = 4096;

/// Counters, exposed in svcsegmenter's `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AudioStats {
    /// Frames put into Segments.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames in no Segment's span (before the first key frame, between Segments
    /// after a caps change, or later than `max_wait`), or without a time.
    pub frames_dropped: u64,
    /// Segments published before the audio reached their end (`max_wait`).
    pub segments_not_waited: u64,
}

#[derive(Debug)]
struct Queued {
    frame: AudioFrame,
    caps: Arc<str>,
}

/// Pairs closed Segments with the audio of their span.
#[derive(Debug)]
pub struct AudioJoin {
    max_wait: u64,
    /// An audio input exists: Segments wait for it.
    active: bool,
    caps: Option<Arc<str>>,
    frames: VecDeque<Queued>,
    /// End of the newest frame (the audio's position), in the video's timeline.
    position: Option<u64>,
    /// The audio ended: nothing more to wait for.
    ended: bool,
    /// Newest video time seen.
    video_position: Option<u64>,
    waiting: VecDeque<Segment>,
    stats: AudioStats,
}

impl AudioJoin {
    pub fn new(max_wait: u64) -> Self {
        AudioJoin {
            max_wait,
            active: false,
            caps: None,
            frames: VecDeque::new(),
            position: None,
            ended: false,
            video_position: None,
            waiting: VecDeque::new(),
            stats: AudioStats::default(),
        }
    }

    pub fn stats(&self) -> &AudioStats {
        &self.stats
    }

    /// Whether an audio input exists (svcsegmenter: its `audio` pad was requested).
    pub fn set_active(&mut self, active: bool) -> Vec<Segment> {
        self.active = active;
        self.release()
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The audio's caps; frames pushed from now on carry them.
    pub fn set_caps(&mut self, caps: String) {
        if self.caps.as_deref() != Some(caps.as_str()) {
            self.caps = Some(caps.into());
        }
    }

    /// One audio frame, its time already in the video's timeline. A frame without a
    /// time follows the previous one. Returns the Segments it made ready.
    pub fn push_frame(&mut self, mut frame: AudioFrame) -> Vec<Segment> {
        let Some(caps) = self.caps.clone() else {
            self.stats.frames_dropped += 1;
            return Vec::new();
        };
        if frame.pts.is_none() {
            frame.pts = self.position;
        }
        let Some(pts) = frame.pts else {
            self.stats.frames_dropped += 1;
            return Vec::new();
        };
        let end = pts.saturating_add(frame.duration.unwrap_or(0));
        self.position = Some(self.position.map_or(end, |p| p.max(end)));
        self.frames.push_back(Queued { frame, caps });
        if self.frames.len() > MAX_QUEUED {
            self.frames.pop_front();
            self.stats.frames_dropped += 1;
        }
        let out = self.release();
        // Frames older than every Segment still to come belong to none.
        self.drop_before(self.waiting.front().and_then(|s| s.pts));
        out
    }

    /// The audio ended (EOS): Segments stop waiting for it.
    pub fn end(&mut self) -> Vec<Segment> {
        self.ended = true;
        self.release()
    }

    /// The video reached time `t` (an access unit's pts): Segments waiting for audio
    /// longer than `max_wait` go.
    pub fn on_video_time(&mut self, t: u64) -> Vec<Segment> {
        self.video_position = Some(self.video_position.map_or(t, |v| v.max(t)));
        self.release()
    }

    /// A Segment the video closed; returns the Segments ready (in order).
    pub fn push_segment(&mut self, seg: Segment) -> Vec<Segment> {
        self.waiting.push_back(seg);
        self.release()
    }

    /// The video ended: Segments still wait for the audio's end, unless no audio
    /// ever came (an audio branch that never starts must not hold the channel's EOS).
    pub fn video_ended(&mut self) -> Vec<Segment> {
        if self.position.is_none() {
            self.ended = true;
        }
        self.release()
    }

    /// Segments still waiting for audio.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn ready(&self, seg: &Segment) -> bool {
        let Some(pts) = seg.pts else {
            return true;
        };
        let end = pts.saturating_add(seg.duration);
        !self.active
            || self.ended
            || self.position.is_some_and(|p| p >= end)
            || self
                .video_position
                .is_some_and(|v| v.saturating_sub(end) > self.max_wait)
    }

    fn release(&mut self) -> Vec<Segment> {
        let mut out = Vec::new();
        while let Some(seg) = self.waiting.front() {
            if !self.ready(seg) {
                break;
            }
            let mut seg = self.waiting.pop_front().expect("front exists");
            if self.active {
                if !self.ended && self.position.is_none_or(|p| p < seg_end(&seg)) {
                    self.stats.segments_not_waited += 1;
                }
                seg.audio = self.take_span(&seg);
            }
            out.push(seg);
        }
        out
    }

    /// The frames whose pts is in the Segment's span; the Segment's audio caps are
    /// its first frame's (frames of other caps in the same span are dropped: one
    /// crumb names one audio format).
    fn take_span(&mut self, seg: &Segment) -> Option<SegmentAudio> {
        let start = seg.pts?;
        let end = seg_end(seg);
        self.drop_before(Some(start));
        let mut caps: Option<Arc<str>> = None;
        let mut frames = Vec::new();
        while let Some(q) = self.frames.front() {
            if q.frame.pts.is_none_or(|p| p >= end) {
                break;
            }
            let q = self.frames.pop_front().expect("front exists");
            let caps = caps.get_or_insert_with(|| q.caps.clone());
            if *caps != q.caps {
                self.stats.frames_dropped += 1;
                continue;
            }
            self.stats.frames += 1;
            self.stats.bytes += q.frame.data.len() as u64;
            frames.push(q.frame);
        }
        let caps = caps.or_else(|| self.caps.clone())?;
        Some(SegmentAudio {
            caps: caps.to_string(),
            frames,
        })
    }

    fn drop_before(&mut self, t: Option<u64>) {
        let Some(t) = t else {
            return;
        };
        while self.frames.front().is_some_and(|q| q.frame.pts < Some(t)) {
            self.frames.pop_front();
            self.stats.frames_dropped += 1;
        }
    }
}

fn seg_end(seg: &Segment) -> u64 {
    seg.pts.map_or(0, |p| p.saturating_add(seg.duration))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Codec;

    fn seg(seq: u64, pts: u64, duration: u64) -> Segment {
        Segment {
            seq,
            codec: Codec::Vp8,
            caps: "video/x-vp8".into(),
            gops: 1,
            pts: Some(pts),
            duration,
            starts_with_keyframe: true,
            aus: Vec::new(),
            audio: None,
        }
    }

    fn frame(pts: u64) -> AudioFrame {
        AudioFrame {
            data: vec![pts as u8; 3],
            pts: Some(pts),
            duration: Some(20),
        }
    }

    fn pts_of(seg: &Segment) -> Vec<u64> {
        seg.audio
            .as_ref()
            .unwrap()
            .frames
            .iter()
            .map(|f| f.pts.unwrap())
            .collect()
    }

    #[test]
    fn without_audio_segments_pass_at_once() {
        let mut j = AudioJoin::new(DEFAULT_MAX_WAIT);
        let out = j.push_segment(seg(0, 0, 100));
        assert_eq!(out.len(), 1);
        assert!(out[0].audio.is_none());
    }

    #[test]
    fn a_segment_waits_for_the_audio_of_its_span() {
        let mut j = AudioJoin::new(DEFAULT_MAX_WAIT);
        j.set_active(true);
        j.set_caps("audio/x-opus".into());
        // Audio from before the first Segment (video not yet at a key frame).
        assert!(j.push_frame(frame(80)).is_empty());
        assert!(j.push_segment(seg(0, 100, 100)).is_empty());
        for t in [100, 120, 140, 160] {
            assert!(j.push_frame(frame(t)).is_empty(), "early at {t}");
        }
        assert!(j.push_segment(seg(1, 200, 100)).is_empty());
        // 180 + 20 reaches Segment 0's end: it goes, with its span's frames only.
        let out = j.push_frame(frame(180));
        assert_eq!(out.len(), 1);
        assert_eq!(pts_of(&out[0]), vec![100, 120, 140, 160, 180]);
        assert_eq!(out[0].audio.as_ref().unwrap().caps, "audio/x-opus");
        assert_eq!(j.stats().frames_dropped, 1);
        assert_eq!(j.stats().frames, 5);
        assert_eq!(j.stats().bytes, 15);
        // The audio ends: Segment 1 goes with what there is (nothing).
        let out = j.end();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].seq, 1);
        assert!(pts_of(&out[0]).is_empty());
        assert_eq!(j.stats().segments_not_waited, 0);
    }

    #[test]
    fn a_stalled_audio_branch_holds_segments_at_most_max_wait() {
        let mut j = AudioJoin::new(1_000);
        j.set_active(true);
        j.set_caps("audio/x-opus".into());
        j.push_frame(frame(0));
        assert!(j.push_segment(seg(0, 0, 100)).is_empty());
        assert!(j.on_video_time(1_100).is_empty());
        let out = j.on_video_time(1_101);
        assert_eq!(out.len(), 1);
        assert_eq!(pts_of(&out[0]), vec![0]);
        assert_eq!(j.stats().segments_not_waited, 1);
    }

    #[test]
    fn video_end_without_any_audio_does_not_wait() {
        let mut j = AudioJoin::new(DEFAULT_MAX_WAIT);
        j.set_active(true);
        assert!(j.push_segment(seg(0, 0, 100)).is_empty());
        let out = j.video_ended();
        assert_eq!(out.len(), 1);
        // No caps were ever known: the Segment says nothing about audio.
        assert!(out[0].audio.is_none());
    }

    #[test]
    fn untimed_frames_follow_the_previous_one_and_caps_changes_keep_their_frames() {
        let mut j = AudioJoin::new(DEFAULT_MAX_WAIT);
        j.set_active(true);
        j.set_caps("audio/x-opus".into());
        j.push_frame(frame(0));
        j.push_frame(AudioFrame {
            pts: None,
            ..frame(0)
        });
        j.set_caps("audio/x-opus, rate=(int)24000".into());
        // The audio already reached 40: Segment 0 goes at once.
        let first = j.push_segment(seg(0, 0, 40));
        assert_eq!(first.len(), 1);
        assert_eq!(pts_of(&first[0]), vec![0, 20]);
        assert_eq!(first[0].audio.as_ref().unwrap().caps, "audio/x-opus");
        assert!(j.push_segment(seg(1, 40, 40)).is_empty());
        j.push_frame(frame(40));
        let out = j.push_frame(frame(60));
        assert_eq!(out.len(), 1);
        assert_eq!(pts_of(&out[0]), vec![40, 60]);
        assert_eq!(
            out[0].audio.as_ref().unwrap().caps,
            "audio/x-opus, rate=(int)24000"
        );
    }
}
