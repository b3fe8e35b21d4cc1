// SPDX-License-Identifier: MPL-2.0
//! The Segment Splitter (paper, section 3.1, step 1): groups access units into
//! Segments of |G| whole GOPs, and moves |G| by one GOP per success ratio rho.

use std::ops::Range;

use super::time::SEC;
use super::{AccessUnit, Codec, Part, PartClass};

/// Settings of the segmenter, as svcsegmenter's properties set them.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmenterConfig {
    /// |G| for the first Segment.
    pub gops: u16,
    /// |Gmin|.
    pub min_gops: u16,
    /// |Gmax|.
    pub max_gops: u16,
    /// rho above this grows |G| by one GOP; otherwise |G| shrinks by one.
    pub success_threshold: f64,
    /// A GOP running longer than this (ns) is cut without a key frame, so that a stream
    /// with missing key frames still produces Segments and memory stays bounded.
    pub max_segment_duration: u64,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig {
            gops: 1,
            min_gops: 1,
            max_gops: 10,
            success_threshold: 0.8,
            max_segment_duration: 60 * SEC,
        }
    }
}

/// A Segment: whole GOPs (or, after a forced cut, the rest of an over-long GOP).
#[derive(Clone, Debug)]
pub struct Segment {
    pub seq: u64,
    pub codec: Codec,
    pub caps: String,
    pub gops: u16,
    /// Earliest presentation time in the Segment.
    pub pts: Option<u64>,
    /// Playback duration |s| in ns.
    pub duration: u64,
    pub starts_with_keyframe: bool,
    pub aus: Vec<AccessUnit>,
    /// The channel's audio of the Segment's time span, when it carries audio.
    pub audio: Option<SegmentAudio>,
}

/// Audio of one Segment: it travels in crumb 1 (see `core::audio`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentAudio {
    pub caps: String,
    pub frames: Vec<AudioFrame>,
}

/// One compressed audio frame (one buffer of an encoder or parser).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioFrame {
    pub data: Vec<u8>,
    pub pts: Option<u64>,
    pub duration: Option<u64>,
}

/// Running counters, exposed in svcsegmenter's `stats`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SegmenterStats {
    pub access_units: u64,
    pub dropped_before_keyframe: u64,
    pub segments: u64,
    pub forced_cuts: u64,
    pub parameter_sets_inserted: u64,
    pub last_success_ratio: Option<f64>,
}

#[derive(Debug)]
pub struct Segmenter {
    config: SegmenterConfig,
    /// |G| the Segment being built aims for.
    target_gops: u16,
    codec: Option<(Codec, String)>,
    pending: Vec<AccessUnit>,
    pending_gops: u16,
    pending_starts_with_keyframe: bool,
    /// A key frame has been seen since the stream (or its caps) started.
    synced: bool,
    next_seq: u64,
    /// Header bytes (parameter sets) of the last key frame that carried them, put in
    /// front of a Segment whose key frame lacks them so every Segment decodes alone.
    last_parameter_sets: Option<Vec<u8>>,
    /// The longest GOP of the Segments cut at a key frame so far, ns (0: none yet).
    longest_gop: u64,
    stats: SegmenterStats,
}

impl Segmenter {
    pub fn new(config: SegmenterConfig) -> Self {
        let target_gops = config
            .gops
            .clamp(config.min_gops, config.max_gops.max(config.min_gops));
        Segmenter {
            config,
            target_gops,
            codec: None,
            pending: Vec::new(),
            pending_gops: 0,
            pending_starts_with_keyframe: true,
            synced: false,
            next_seq: 0,
            last_parameter_sets: None,
            longest_gop: 0,
            stats: SegmenterStats::default(),
        }
    }

    pub fn stats(&self) -> &SegmenterStats {
        &self.stats
    }

    /// |G| of the next Segment to start.
    pub fn target_gops(&self) -> u16 {
        self.target_gops
    }

    /// The longest a Segment can be, ns: |Gmax| times the longest GOP seen, within
    /// `max_segment_duration`; `None` before a Segment was cut at a key frame. Players
    /// keep room for it (the window's `max_duration`): when rho grows |G|, a longer
    /// Segment comes later than the short ones before it.
    pub fn max_duration(&self) -> Option<u64> {
        let max = self.config.max_gops.max(self.config.min_gops);
        (self.longest_gop > 0).then(|| {
            self.longest_gop
                .saturating_mul(u64::from(max))
                .min(self.config.max_segment_duration)
        })
    }

    /// New caps: the Segment in progress is closed (returned) and the stream restarts at
    /// the next key frame.
    pub fn set_caps(&mut self, codec: Codec, caps: String) -> Option<Segment> {
        let out = self.flush();
        if self
            .codec
            .as_ref()
            .is_some_and(|(c, s)| *c != codec || *s != caps)
        {
            self.synced = false;
            self.last_parameter_sets = None;
        }
        self.codec = Some((codec, caps));
        out
    }

    /// The success ratio rho of the newest finished Segment (paper: |G_i| = |G_i-1| +- 1).
    pub fn on_success_ratio(&mut self, rho: f64) {
        self.stats.last_success_ratio = Some(rho);
        let max = self.config.max_gops.max(self.config.min_gops);
        self.target_gops = if rho > self.config.success_threshold {
            self.target_gops.saturating_add(1)
        } else {
            self.target_gops.saturating_sub(1)
        }
        .clamp(self.config.min_gops, max);
    }

    /// Adds one access unit; returns the Segment it closed, if any.
    pub fn push(&mut self, mut au: AccessUnit) -> Option<Segment> {
        self.stats.access_units += 1;
        if !self.synced {
            if !au.keyframe {
                // A stream joined mid-GOP: nothing before the first key frame decodes.
                self.stats.dropped_before_keyframe += 1;
                return None;
            }
            self.synced = true;
        }
        let mut closed = None;
        if au.keyframe {
            self.remember_or_insert_parameter_sets(&mut au);
            if self.pending_gops >= self.target_gops {
                closed = self.close(au.pts);
                self.pending_starts_with_keyframe = true;
            }
            self.pending_gops += 1;
        } else if let (Some(first), Some(pts)) = (self.first_pts(), au.pts)
            && pts.saturating_sub(first) >= self.config.max_segment_duration
        {
            // A GOP too long for one Segment: cut here; the next Segment depends on
            // this one and says so (a client that lacks it waits for a key frame).
            self.stats.forced_cuts += 1;
            closed = self.close(au.pts);
            self.pending_starts_with_keyframe = false;
            self.pending_gops = 1;
        }
        self.pending.push(au);
        closed
    }

    /// True once a key frame was taken since the start, a caps change or a resync:
    /// access units pushed now go into a Segment instead of being dropped.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The caps string of the stream, once known.
    pub fn caps(&self) -> Option<String> {
        self.codec.as_ref().map(|(_, c)| c.clone())
    }

    pub fn set_success_threshold(&mut self, threshold: f64) {
        self.config.success_threshold = threshold;
    }

    /// An access unit was lost (malformed): the Segment so far decodes and is closed;
    /// the rest of its GOP would not, so cutting resumes at the next key frame.
    pub fn resync(&mut self) -> Option<Segment> {
        let out = self.flush();
        self.synced = false;
        out
    }

    /// Closes the Segment in progress (EOS, caps change).
    pub fn flush(&mut self) -> Option<Segment> {
        let out = self.close(None);
        self.pending_starts_with_keyframe = true;
        out
    }

    fn first_pts(&self) -> Option<u64> {
        self.pending.iter().filter_map(|a| a.pts).min()
    }

    fn close(&mut self, next_pts: Option<u64>) -> Option<Segment> {
        if self.pending.is_empty() {
            return None;
        }
        let aus = std::mem::take(&mut self.pending);
        let gops = std::mem::replace(&mut self.pending_gops, 0).max(1);
        let pts = aus.iter().filter_map(|a| a.pts).min();
        let end = aus
            .iter()
            .filter_map(|a| a.pts.map(|p| p + a.duration.unwrap_or(0)))
            .max();
        // Prefer the next Segment's start: the Segments then tile time without holes.
        let duration = match (pts, next_pts, end) {
            (Some(p), Some(n), _) if n > p => n - p,
            (Some(p), _, Some(e)) => e.saturating_sub(p),
            _ => 0,
        };
        // Whole GOPs only (cut at the next key frame, begun at one): their mean length.
        if next_pts.is_some() && self.pending_starts_with_keyframe {
            self.longest_gop = self.longest_gop.max(duration / u64::from(gops));
        }
        let (codec, caps) = self.codec.clone()?;
        let seg = Segment {
            seq: self.next_seq,
            codec,
            caps,
            gops,
            pts,
            duration,
            starts_with_keyframe: self.pending_starts_with_keyframe,
            aus,
            audio: None,
        };
        self.next_seq += 1;
        self.stats.segments += 1;
        Some(seg)
    }

    fn remember_or_insert_parameter_sets(&mut self, au: &mut AccessUnit) {
        let Some((codec, _)) = &self.codec else {
            return;
        };
        let codec = *codec;
        if !matches!(codec, Codec::H264 | Codec::H265) {
            return;
        }
        let nals = annexb_nals(&au.data);
        let sets: Vec<u8> = nals
            .iter()
            .filter(|r| is_parameter_set(codec, &au.data[(*r).clone()]))
            .flat_map(|r| au.data[r.clone()].iter().copied())
            .collect();
        if !sets.is_empty() {
            self.last_parameter_sets = Some(sets);
            return;
        }
        let Some(ps) = &self.last_parameter_sets else {
            return;
        };
        // Encoders that send SPS/PPS once (h264parse config-interval=0) would leave
        // every later Segment undecodable on its own: repeat the last ones, after an
        // access unit delimiter if there is one (it must stay first).
        let at = match nals.first() {
            Some(r) if is_aud(codec, &au.data[r.clone()]) => r.end,
            _ => 0,
        };
        let n = ps.len();
        au.data.splice(at..at, ps.iter().copied());
        let mut parts = Vec::with_capacity(au.classified.parts.len() + 1);
        for p in au.classified.parts.drain(..) {
            if p.range.start >= at {
                parts.push(Part {
                    class: p.class,
                    range: p.range.start + n..p.range.end + n,
                });
            } else if p.range.end > at {
                // The part that held the delimiter: split around the inserted sets.
                parts.push(Part {
                    class: p.class,
                    range: p.range.start..at,
                });
                parts.push(Part {
                    class: p.class,
                    range: at + n..p.range.end + n,
                });
            } else {
                parts.push(p);
            }
        }
        // Parameter sets are headers, except H.264 subset SPS (enhancement only).
        let mut pos = at;
        for r in annexb_nals(ps) {
            let class = if codec == Codec::H264 && nal_header(&ps[r.clone()]) & 0x1f == 15 {
                PartClass::EnhancementHeader
            } else {
                PartClass::Header
            };
            let len = r.len();
            parts.push(Part {
                class,
                range: pos..pos + len,
            });
            pos += len;
        }
        parts.sort_by_key(|p| p.range.start);
        au.classified.parts = parts;
        self.stats.parameter_sets_inserted += 1;
    }
}

/// Ranges of the NAL units of an Annex B buffer, each with its start code (none for a
/// buffer that is not Annex B: the classifier already refused those).
fn annexb_nals(data: &[u8]) -> Vec<Range<usize>> {
    super::nal::split_annex_b(data)
        .map(|nals| nals.into_iter().map(|n| n.range).collect())
        .unwrap_or_default()
}

/// The first byte of the NAL header after the start code (0 if there is none).
fn nal_header(nal: &[u8]) -> u8 {
    let skip = if nal.starts_with(&[0, 0, 0, 1]) { 4 } else { 3 };
    nal.get(skip).copied().unwrap_or(0)
}

fn is_parameter_set(codec: Codec, nal: &[u8]) -> bool {
    let h = nal_header(nal);
    match codec {
        Codec::H264 => matches!(h & 0x1f, 7 | 8 | 15),
        Codec::H265 => matches!((h >> 1) & 0x3f, 32..=34),
        _ => false,
    }
}

fn is_aud(codec: Codec, nal: &[u8]) -> bool {
    let h = nal_header(nal);
    match codec {
        Codec::H264 => h & 0x1f == 9,
        Codec::H265 => (h >> 1) & 0x3f == 35,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ClassifiedAu, LayerId};

    const FRAME: u64 = 33_333_333;

    fn au(i: u64, keyframe: bool) -> AccessUnit {
        AccessUnit {
            data: vec![0, 0, 1, 0x41, i as u8],
            pts: Some(i * FRAME),
            dts: Some(i * FRAME),
            duration: Some(FRAME),
            keyframe,
            classified: ClassifiedAu {
                parts: vec![Part {
                    class: PartClass::Layer(LayerId::BASE),
                    range: 0..5,
                }],
                keyframe: Some(keyframe),
            },
        }
    }

    fn run(seg: &mut Segmenter, frames: std::ops::Range<u64>, gop: u64) -> Vec<Segment> {
        frames
            .filter_map(|i| seg.push(au(i, i % gop == 0)))
            .collect()
    }

    fn segmenter(config: SegmenterConfig) -> Segmenter {
        let mut s = Segmenter::new(config);
        assert!(s.set_caps(Codec::Vp8, "video/x-vp8".into()).is_none());
        s
    }

    #[test]
    fn segments_hold_whole_gops() {
        let mut s = segmenter(SegmenterConfig {
            gops: 2,
            ..Default::default()
        });
        let segs = run(&mut s, 0..100, 10);
        // Key frames at 0,10,...,90: Segments close at 20, 40, 60, 80.
        assert_eq!(segs.len(), 4);
        for (k, seg) in segs.iter().enumerate() {
            assert_eq!(seg.seq, k as u64);
            assert_eq!(seg.gops, 2);
            assert_eq!(seg.aus.len(), 20);
            assert!(seg.aus[0].keyframe);
            assert_eq!(seg.duration, 20 * FRAME);
            assert_eq!(seg.pts, Some(20 * k as u64 * FRAME));
        }
        let last = s.flush().unwrap();
        assert_eq!(last.aus.len(), 20);
        assert_eq!(last.duration, 20 * FRAME);
        assert!(s.flush().is_none());
    }

    #[test]
    fn the_longest_segment_is_gmax_times_the_longest_gop() {
        let mut s = segmenter(SegmenterConfig {
            gops: 1,
            min_gops: 1,
            max_gops: 3,
            max_segment_duration: 50 * FRAME,
            ..Default::default()
        });
        assert_eq!(s.max_duration(), None, "no GOP seen yet");
        let segs = run(&mut s, 0..25, 10); // 1-GOP Segments of 10 frames
        assert_eq!(segs.len(), 2);
        assert_eq!(s.max_duration(), Some(30 * FRAME));
        // A longer GOP (20 frames) raises it, within max-segment-duration.
        let segs: Vec<_> = (25..80)
            .filter_map(|i| s.push(au(i, i == 40 || i == 60)))
            .collect();
        assert_eq!(segs.last().map(|g| g.duration), Some(20 * FRAME));
        assert_eq!(s.max_duration(), Some(50 * FRAME));
        // The Segment flushed at the end (no next key frame) is not a measure.
        let mut t = segmenter(SegmenterConfig::default());
        run(&mut t, 0..5, 10);
        assert!(t.flush().is_some());
        assert_eq!(t.max_duration(), None);
    }

    #[test]
    fn starts_at_first_keyframe() {
        let mut s = segmenter(SegmenterConfig::default());
        let segs: Vec<_> = (5..40).filter_map(|i| s.push(au(i, i % 10 == 0))).collect();
        assert_eq!(s.stats().dropped_before_keyframe, 5);
        assert_eq!(segs[0].pts, Some(10 * FRAME));
        assert!(segs.iter().all(|g| g.aus[0].keyframe));
    }

    #[test]
    fn success_ratio_moves_gops_within_bounds() {
        let mut s = segmenter(SegmenterConfig {
            gops: 2,
            min_gops: 1,
            max_gops: 3,
            success_threshold: 0.5,
            ..Default::default()
        });
        s.on_success_ratio(0.9);
        assert_eq!(s.target_gops(), 3);
        s.on_success_ratio(0.9);
        assert_eq!(s.target_gops(), 3);
        s.on_success_ratio(0.5);
        assert_eq!(s.target_gops(), 2);
        s.on_success_ratio(0.1);
        s.on_success_ratio(0.1);
        assert_eq!(s.target_gops(), 1);
        // The next Segment follows the new |G|.
        let segs = run(&mut s, 0..30, 10);
        assert!(segs.iter().all(|g| g.gops == 1 && g.aus.len() == 10));
    }

    #[test]
    fn over_long_gop_is_cut() {
        let mut s = segmenter(SegmenterConfig {
            max_segment_duration: 30 * FRAME,
            ..Default::default()
        });
        // One key frame, then 100 delta frames.
        let segs = run(&mut s, 0..100, 1000);
        assert_eq!(segs.len(), 3);
        assert!(segs[0].starts_with_keyframe);
        assert!(!segs[1].starts_with_keyframe);
        assert_eq!(s.stats().forced_cuts, 3);
    }

    #[test]
    fn caps_change_closes_the_segment_and_resyncs() {
        let mut s = segmenter(SegmenterConfig::default());
        run(&mut s, 0..15, 10);
        let closed = s.set_caps(Codec::Vp9, "video/x-vp9".into()).unwrap();
        assert_eq!(closed.aus.len(), 5);
        assert_eq!(closed.codec, Codec::Vp8);
        assert!(s.push(au(15, false)).is_none());
        assert_eq!(s.stats().dropped_before_keyframe, 1);
    }

    #[test]
    fn parameter_sets_are_repeated_into_each_segment() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_caps(Codec::H264, "video/x-h264".into());
        let idr_with_sps = AccessUnit {
            data: vec![0, 0, 1, 0x67, 1, 0, 0, 1, 0x65, 2],
            classified: ClassifiedAu {
                parts: vec![
                    Part {
                        class: PartClass::Header,
                        range: 0..5,
                    },
                    Part {
                        class: PartClass::Layer(LayerId::BASE),
                        range: 5..10,
                    },
                ],
                keyframe: Some(true),
            },
            ..au(0, true)
        };
        let bare_idr = AccessUnit {
            data: vec![0, 0, 1, 0x65, 3],
            ..au(10, true)
        };
        s.push(idr_with_sps);
        let seg = s.push(bare_idr).unwrap();
        assert_eq!(seg.aus.len(), 1);
        let seg = s.flush().unwrap();
        let a = &seg.aus[0];
        assert_eq!(a.data, vec![0, 0, 1, 0x67, 1, 0, 0, 1, 0x65, 3]);
        assert_eq!(a.classified.parts[0].range, 0..5);
        assert_eq!(a.classified.parts[1].range, 5..10);
        assert_eq!(s.stats().parameter_sets_inserted, 1);
    }
}
