// SPDX-License-Identifier: MPL-2.0
//! Reassembly: the longest complete prefix 1..d of a Segment's crumbs back into access
//! units a stock decoder takes. crumbjoin and crumbsrc both use it.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::Timestamp;
use super::crumb::{Crumb, SegmentInfo, UNIT_FLAG_ENHANCEMENT_ONLY, UNIT_FLAG_KEYFRAME, Unit};

/// One access unit rebuilt from a prefix of crumbs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputAu {
    pub data: Vec<u8>,
    pub pts: Timestamp,
    pub dts: Timestamp,
    pub duration: Timestamp,
    pub keyframe: bool,
}

/// The longest run of crumbs 1, 2, ... present, capped by `max_crumbs` (0 = all).
/// `crumbs` holds one Segment's crumbs by index.
pub fn complete_prefix(crumbs: &BTreeMap<u16, Crumb>, max_crumbs: u16) -> u16 {
    let mut d: u16 = 0;
    // Checked: with all 65535 crumbs present, d + 1 would overflow.
    while let Some(next) = d.checked_add(1) {
        if !crumbs.contains_key(&next) || (max_crumbs != 0 && d >= max_crumbs) {
            break;
        }
        d = next;
    }
    d
}

/// Rebuilds the access units of one Segment from crumbs 1..=d (all must be present).
/// Access units that have no data in the prefix (pictures of dropped layers) are left
/// out; so are enhancement-only headers when no spatial/quality enhancement is kept.
///
/// Takes the crumbs: each one's memory goes as soon as its units are placed, and an
/// access unit's bytes are allocated once at their final size (a unit that is a whole
/// access unit, as every one of a base-only Segment, is moved, not copied). A Segment
/// is then held about once while it is rebuilt, not as crumbs and access units at
/// once with every access unit grown by doubling: that pair was a client's largest
/// peak of heap above its mean (docs/memory.md, "Holding a Segment once").
pub fn assemble(mut crumbs: BTreeMap<u16, Crumb>, d: u16) -> Vec<OutputAu> {
    let prefix: Vec<Crumb> = (1..=d).filter_map(|k| crumbs.remove(&k)).collect();
    // Crumbs past the prefix are not output: free them before building anything.
    drop(crumbs);
    let Some(first) = prefix.first() else {
        return Vec::new();
    };
    let au_count = first.segment.au_count;
    let keep_enhancement_headers = prefix[1..]
        .iter()
        .any(|c| c.layer.is_spatial_or_quality_enhancement());
    let kept = |unit: &Unit| {
        (unit.flags & UNIT_FLAG_ENHANCEMENT_ONLY == 0 || keep_enhancement_headers)
            && unit.decode_index < au_count
    };
    // Each access unit's size in the prefix, keyed by decode index and holding only
    // the access units the prefix has data for: a table of `au_count` slots would let
    // one crumb that claims 2^32 access units make the reassembler allocate hundreds
    // of GB.
    let mut sizes: BTreeMap<u32, usize> = BTreeMap::new();
    for crumb in &prefix {
        for unit in crumb.video_units().filter(|u| kept(u)) {
            *sizes.entry(unit.decode_index).or_default() += unit.payload.len();
        }
    }
    let mut aus: BTreeMap<u32, OutputAu> = BTreeMap::new();
    for crumb in prefix {
        // Audio frames number their own track: they are output beside the video.
        for unit in crumb.into_video_units().filter(|u| kept(u)) {
            match aus.entry(unit.decode_index) {
                Entry::Occupied(mut au) => au.get_mut().data.extend_from_slice(&unit.payload),
                Entry::Vacant(slot) => {
                    let size = sizes.get(&unit.decode_index).copied().unwrap_or(0);
                    let data = if unit.payload.len() == size {
                        unit.payload
                    } else {
                        let mut data = Vec::with_capacity(size);
                        data.extend_from_slice(&unit.payload);
                        data
                    };
                    slot.insert(OutputAu {
                        data,
                        pts: unit.pts,
                        dts: unit.dts,
                        duration: unit.duration,
                        keyframe: unit.flags & UNIT_FLAG_KEYFRAME != 0,
                    });
                }
            }
        }
    }
    aus.into_values().filter(|a| !a.data.is_empty()).collect()
}

/// What the reassembler hands downstream, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The stream's caps changed (crumb 1's caps string).
    Caps(String),
    /// Nothing to play from `pts` for `duration` (a Segment was skipped).
    Gap { pts: u64, duration: u64 },
    /// One access unit; `discont` marks the first after a gap or at the start.
    Au { au: OutputAu, discont: bool },
    /// The audio's caps changed (crumb 1's audio caps string); first one: the
    /// channel carries audio.
    AudioCaps(String),
    /// One audio frame, interleaved with the video's access units in time order;
    /// `discont` marks the first after a gap or at the start.
    Audio { frame: OutputAu, discont: bool },
}

/// What happened to one Segment, for stats and per-Segment messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentOutcome {
    pub seq: u64,
    /// Crumbs output (0 = the Segment was skipped).
    pub d: u16,
    pub crumbs_total: u16,
    pub access_units: usize,
}

/// Running counters of a reassembler.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    pub segments_output: u64,
    pub segments_skipped: u64,
    pub crumbs_received: u64,
    pub crumbs_late: u64,
    pub access_units_output: u64,
    pub access_units_dropped_waiting_keyframe: u64,
    pub audio_frames_output: u64,
}

/// Stream reassembler: crumbs in (Segments in increasing order, crumbs of a Segment
/// in any order), access units out as soon as a Segment's prefix is complete.
#[derive(Debug, Default)]
pub struct Reassembler {
    max_crumbs: u16,
    current: BTreeMap<u16, Crumb>,
    current_seq: Option<u64>,
    /// Highest Segment already output or skipped.
    done_seq: Option<u64>,
    caps: Option<String>,
    audio_caps: Option<String>,
    /// Next output audio frame carries DISCONT.
    audio_discont: bool,
    /// End time of the last output Segment, for gaps.
    last_end: Option<u64>,
    /// Next output access unit carries DISCONT.
    discont: bool,
    /// After a skipped Segment, a Segment that does not start with a key frame is
    /// dropped up to its first key frame: never feed a decoder broken references.
    need_keyframe: bool,
    outcomes: Vec<SegmentOutcome>,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// `max_crumbs` caps the prefix (0 = all crumbs).
    pub fn new(max_crumbs: u16) -> Self {
        Reassembler {
            max_crumbs,
            discont: true,
            audio_discont: true,
            need_keyframe: true,
            ..Default::default()
        }
    }

    pub fn set_max_crumbs(&mut self, max_crumbs: u16) {
        self.max_crumbs = max_crumbs;
    }

    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// Outcomes of Segments finished since the last call.
    pub fn take_outcomes(&mut self) -> Vec<SegmentOutcome> {
        std::mem::take(&mut self.outcomes)
    }

    /// Adds a crumb; returns what became ready.
    pub fn push(&mut self, crumb: Crumb) -> Vec<Output> {
        self.stats.crumbs_received += 1;
        let seq = crumb.segment.seq;
        // A crumb of a Segment older than the one in progress is late too: taking it
        // would output the newer Segment early and then go back in time.
        if self.done_seq.is_some_and(|d| seq <= d) || self.current_seq.is_some_and(|c| seq < c) {
            self.stats.crumbs_late += 1;
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.current_seq.is_some_and(|c| c != seq) {
            // A newer Segment started: output the older one with what it has.
            out.extend(self.finish_current());
        }
        self.current_seq = Some(seq);
        self.current.insert(crumb.index, crumb);
        let target = self.target();
        if target > 0 && complete_prefix(&self.current, self.max_crumbs) >= target {
            out.extend(self.finish_current());
        }
        out
    }

    /// End of stream: output the Segment in progress with what it has.
    pub fn finish(&mut self) -> Vec<Output> {
        self.finish_current()
    }

    /// Forgets the Segment in progress (flush).
    pub fn reset(&mut self) {
        *self = Reassembler::new(self.max_crumbs);
    }

    fn target(&self) -> u16 {
        let Some(c) = self.current.values().next() else {
            return 0;
        };
        let n = c.segment.crumb_count;
        if self.max_crumbs == 0 {
            n
        } else {
            n.min(self.max_crumbs)
        }
    }

    fn finish_current(&mut self) -> Vec<Output> {
        let crumbs = std::mem::take(&mut self.current);
        let Some(seq) = self.current_seq.take() else {
            return Vec::new();
        };
        // A Segment missing between the last one and this one breaks continuity.
        if self
            .done_seq
            .is_some_and(|prev| seq > prev.saturating_add(1))
        {
            self.discont = true;
            self.audio_discont = true;
            self.need_keyframe = true;
        }
        self.done_seq = Some(seq);
        let info: Option<SegmentInfo> = crumbs.values().next().map(|c| c.segment.clone());
        let d = complete_prefix(&crumbs, self.max_crumbs);
        let mut out = Vec::new();
        let crumbs_total = info.as_ref().map_or(0, |i| i.crumb_count);
        if d == 0 {
            self.stats.segments_skipped += 1;
            self.outcomes.push(SegmentOutcome {
                seq,
                d: 0,
                crumbs_total,
                access_units: 0,
            });
            if let Some(SegmentInfo {
                pts: Some(p),
                duration,
                ..
            }) = info
            {
                out.push(Output::Gap { pts: p, duration });
                // Saturating: pts and duration come from the wire, any u64 is possible.
                self.last_end = Some(p.saturating_add(duration));
            }
            self.discont = true;
            self.audio_discont = true;
            self.need_keyframe = true;
            return out;
        }
        let first = &crumbs[&1];
        if let Some(caps) = &first.caps
            && self.caps.as_ref() != Some(caps)
        {
            self.caps = Some(caps.clone());
            out.push(Output::Caps(caps.clone()));
            self.need_keyframe = true;
        }
        if let (Some(end), Some(p)) = (self.last_end, first.segment.pts)
            && p > end
        {
            out.push(Output::Gap {
                pts: end,
                duration: p - end,
            });
        }
        if let Some(caps) = &first.audio_caps
            && self.audio_caps.as_ref() != Some(caps)
        {
            self.audio_caps = Some(caps.clone());
            out.push(Output::AudioCaps(caps.clone()));
        }
        if first.segment.starts_with_keyframe {
            self.need_keyframe = false;
        }
        let audio: Vec<Output> = first
            .audio_units()
            .map(|u| Output::Audio {
                frame: OutputAu {
                    data: u.payload.clone(),
                    pts: u.pts,
                    dts: u.dts,
                    duration: u.duration,
                    keyframe: true,
                },
                discont: std::mem::take(&mut self.audio_discont),
            })
            .collect();
        self.last_end = first
            .segment
            .pts
            .map(|p| p.saturating_add(first.segment.duration));
        let mut n = 0;
        let mut video = Vec::new();
        // Last: `assemble` takes the crumbs.
        for au in assemble(crumbs, d) {
            if self.need_keyframe && !au.keyframe {
                self.stats.access_units_dropped_waiting_keyframe += 1;
                continue;
            }
            self.need_keyframe = false;
            let discont = std::mem::take(&mut self.discont);
            n += 1;
            video.push(Output::Au { au, discont });
        }
        self.stats.audio_frames_output += audio.len() as u64;
        out.extend(interleave(video, audio));
        self.stats.segments_output += 1;
        self.stats.access_units_output += n as u64;
        self.outcomes.push(SegmentOutcome {
            seq,
            d,
            crumbs_total,
            access_units: n,
        });
        out
    }
}

/// Video access units and audio frames of one Segment in one time order (video by
/// decode time), so that a consumer pushing both pads from one thread never holds
/// one pad's buffers far ahead of the other's.
fn interleave(video: Vec<Output>, audio: Vec<Output>) -> Vec<Output> {
    fn time(o: &Output) -> Option<u64> {
        match o {
            Output::Au { au, .. } => au.dts.or(au.pts),
            Output::Audio { frame, .. } => frame.pts,
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(video.len() + audio.len());
    let mut audio = audio.into_iter().peekable();
    let mut last = 0;
    for v in video {
        let t = time(&v).unwrap_or(last);
        last = t;
        while let Some(a) = audio.next_if(|a| time(a).unwrap_or(last) < t) {
            out.push(a);
        }
        out.push(v);
    }
    out.extend(audio);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::partition::partition;
    use crate::core::segmenter::Segment;
    use crate::core::{AccessUnit, ClassifiedAu, Codec, LayerId, Part, PartClass};

    /// A Segment of 6 access units: even ones base, odd ones temporal layer 1, each
    /// with a one-byte header; access unit 0 also carries an enhancement-only header.
    fn segment(seq: u64, keyframe_start: bool) -> Segment {
        let aus = (0..6u8)
            .map(|i| {
                let layer = LayerId::new(0, 0, i % 2);
                let mut parts = vec![
                    Part {
                        class: PartClass::Header,
                        range: 0..1,
                    },
                    Part {
                        class: PartClass::Layer(layer),
                        range: 1..3,
                    },
                ];
                let mut data = vec![b'h', i, i];
                if i == 0 {
                    data.push(b'e');
                    parts.push(Part {
                        class: PartClass::EnhancementHeader,
                        range: 3..4,
                    });
                }
                AccessUnit {
                    data,
                    pts: Some(seq * 6 + i as u64),
                    dts: None,
                    duration: Some(1),
                    keyframe: i == 0 && keyframe_start,
                    classified: ClassifiedAu {
                        parts,
                        keyframe: None,
                    },
                }
            })
            .collect();
        Segment {
            seq,
            codec: Codec::Vp8,
            caps: "video/x-vp8".into(),
            gops: 1,
            pts: Some(seq * 6),
            duration: 6,
            starts_with_keyframe: keyframe_start,
            aus,
            audio: None,
        }
    }

    fn aus(out: &[Output]) -> Vec<Vec<u8>> {
        out.iter()
            .filter_map(|o| match o {
                Output::Au { au, .. } => Some(au.data.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_prefix_gives_back_its_layers() {
        let crumbs = partition(&segment(0, true), 0);
        assert_eq!(crumbs.len(), 2);
        let map: BTreeMap<u16, Crumb> = crumbs.into_iter().map(|c| (c.index, c)).collect();
        // Base only: even access units, enhancement-only header left out.
        let base = assemble(map.clone(), 1);
        assert_eq!(
            base.iter().map(|a| a.data.clone()).collect::<Vec<_>>(),
            vec![
                b"h\0\0".to_vec(),
                b"h\x02\x02".to_vec(),
                b"h\x04\x04".to_vec()
            ]
        );
        // All: every access unit as it went in (a temporal layer keeps enhancement-only
        // headers out too: only spatial/quality layers need them).
        let all = assemble(map, 2);
        assert_eq!(all.len(), 6);
        assert_eq!(all[1].data, b"h\x01\x01");
        assert!(all[0].keyframe && !all[1].keyframe);
    }

    /// Memory: an access unit's bytes are allocated once, at their size (the old
    /// growth by doubling held up to twice a Segment's bytes at the peak).
    #[test]
    fn each_access_unit_is_allocated_at_its_size() {
        let crumbs = partition(&segment(0, true), 0);
        let map: BTreeMap<u16, Crumb> = crumbs.into_iter().map(|c| (c.index, c)).collect();
        for d in [1, 2] {
            for au in assemble(map.clone(), d) {
                assert_eq!(au.data.capacity(), au.data.len(), "d = {d}: {:?}", au.data);
            }
        }
    }

    #[test]
    fn stream_outputs_each_segment_when_its_prefix_is_complete() {
        let mut r = Reassembler::new(1);
        let mut out = Vec::new();
        for seq in 0..3 {
            for c in partition(&segment(seq, true), 0) {
                out.extend(r.push(c));
            }
        }
        assert_eq!(out[0], Output::Caps("video/x-vp8".into()));
        assert_eq!(aus(&out).len(), 9);
        let disconts = out
            .iter()
            .filter(|o| matches!(o, Output::Au { discont: true, .. }))
            .count();
        assert_eq!(disconts, 1);
        assert_eq!(
            r.stats().crumbs_late,
            3,
            "crumb 2 of each Segment comes after its output"
        );
        let outcomes = r.take_outcomes();
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes.iter().all(|o| o.d == 1 && o.crumbs_total == 2));
    }

    #[test]
    fn missing_segment_gives_a_gap_and_a_discont() {
        let mut r = Reassembler::new(0);
        let mut out = Vec::new();
        for seq in [0, 2] {
            for c in partition(&segment(seq, true), 0) {
                out.extend(r.push(c));
            }
        }
        assert!(out.contains(&Output::Gap {
            pts: 6,
            duration: 6
        }));
        let disconts: Vec<bool> = out
            .iter()
            .filter_map(|o| match o {
                Output::Au { discont, .. } => Some(*discont),
                _ => None,
            })
            .collect();
        assert_eq!(disconts.iter().filter(|d| **d).count(), 2);
        assert!(disconts[6]);
    }

    #[test]
    fn missing_crumb_one_skips_the_segment() {
        let mut r = Reassembler::new(0);
        let mut out = Vec::new();
        let s0 = partition(&segment(0, true), 0);
        out.extend(r.push(s0[1].clone()));
        out.extend(r.finish());
        assert_eq!(
            out,
            vec![Output::Gap {
                pts: 0,
                duration: 6
            }]
        );
        assert_eq!(r.stats().segments_skipped, 1);
    }

    #[test]
    fn segment_without_keyframe_after_a_gap_waits_for_one() {
        let mut r = Reassembler::new(0);
        let mut out = Vec::new();
        for c in partition(&segment(1, false), 0) {
            out.extend(r.push(c));
        }
        out.extend(r.finish());
        assert!(aus(&out).is_empty());
        assert_eq!(r.stats().access_units_dropped_waiting_keyframe, 6);
    }

    #[test]
    fn incomplete_segment_uses_its_longest_prefix_when_the_next_arrives() {
        let mut r = Reassembler::new(0);
        let s0 = partition(&segment(0, true), 0);
        assert!(r.push(s0[0].clone()).is_empty());
        let out = r.push(partition(&segment(1, true), 0)[0].clone());
        assert_eq!(aus(&out).len(), 3);
        assert_eq!(r.take_outcomes()[0].d, 1);
    }

    /// Fuzz finding (reassemble, out-of-memory): a crumb claiming 2^32 - 1 access units
    /// made `assemble` allocate a slot for each, about 9 GB for one crumb.
    #[test]
    fn huge_access_unit_count_allocates_nothing_for_it() {
        let mut crumbs = partition(&segment(0, true), 0);
        crumbs.truncate(1);
        crumbs[0].segment.au_count = u32::MAX;
        crumbs[0].units.last_mut().unwrap().decode_index = u32::MAX - 1;
        let map: BTreeMap<u16, Crumb> = crumbs.into_iter().map(|c| (c.index, c)).collect();
        let out = assemble(map, 1);
        assert_eq!(out.len(), 3, "every unit of crumb 1 still comes out");
        assert_eq!(
            out[2].data, b"h\x04\x04",
            "the last one in decode-index order"
        );
    }

    /// Fuzz finding (reassemble, overflow panic): the end of a Segment, pts + duration,
    /// overflowed for timestamps near u64::MAX, both for an output and a skipped
    /// Segment.
    #[test]
    fn segment_end_saturates() {
        for only_crumb in [0, 1] {
            let mut r = Reassembler::new(0);
            let mut c = partition(&segment(0, true), 0).swap_remove(only_crumb);
            c.segment.pts = Some(u64::MAX - 1);
            c.segment.duration = u64::MAX;
            r.push(c);
            r.finish();
            let mut next = partition(&segment(1, true), 0).swap_remove(0);
            next.segment.pts = Some(u64::MAX - 1);
            r.push(next);
            r.finish();
            assert_eq!(r.take_outcomes().len(), 2);
        }
    }

    /// Fuzz finding (reassemble, overflow panic): a crumb of Segment u64::MAX then one
    /// of an older Segment output the newer Segment first, then the older one, and
    /// `prev + 1` overflowed. A crumb older than the Segment in progress is late.
    #[test]
    fn older_segment_after_a_newer_one_is_late() {
        let mut r = Reassembler::new(0);
        let mut out = Vec::new();
        let mut newest = partition(&segment(5, true), 0).swap_remove(0);
        newest.segment.seq = u64::MAX;
        out.extend(r.push(newest));
        out.extend(r.push(partition(&segment(4, true), 0).swap_remove(0)));
        out.extend(r.finish());
        assert_eq!(r.stats().crumbs_late, 1);
        let seqs: Vec<u64> = r.take_outcomes().iter().map(|o| o.seq).collect();
        assert_eq!(seqs, vec![u64::MAX]);

        let mut r = Reassembler::new(0);
        let s5 = partition(&segment(5, true), 0);
        let s4 = partition(&segment(4, true), 0);
        r.push(s5[0].clone());
        r.push(s4[1].clone());
        r.push(s5[1].clone());
        let seqs: Vec<u64> = r.take_outcomes().iter().map(|o| o.seq).collect();
        assert_eq!(
            seqs,
            vec![5],
            "Segment 5 waits for its crumb 2, then is complete"
        );
        assert_eq!(r.stats().crumbs_late, 1);
    }

    /// Found in review beside the fuzz findings: with all 65535 crumbs of a Segment
    /// present, the prefix count overflowed u16.
    #[test]
    fn complete_prefix_of_all_65535_crumbs() {
        let one = partition(&segment(0, true), 0).swap_remove(1);
        let map: BTreeMap<u16, Crumb> = (1..=u16::MAX)
            .map(|k| {
                let mut c = one.clone();
                c.index = k;
                (k, c)
            })
            .collect();
        assert_eq!(complete_prefix(&map, 0), u16::MAX);
        assert_eq!(complete_prefix(&map, 3), 3);
    }

    fn with_audio(seq: u64) -> Segment {
        let mut s = segment(seq, true);
        s.audio = Some(crate::core::segmenter::SegmentAudio {
            caps: "audio/x-opus".into(),
            frames: [0, 2, 4]
                .iter()
                .map(|t| crate::core::segmenter::AudioFrame {
                    data: vec![b'a', (seq * 6 + t) as u8],
                    pts: Some(seq * 6 + t),
                    duration: Some(2),
                })
                .collect(),
        });
        s
    }

    /// (kind, time, discont) of each output: 'v' video, 'a' audio, 'g' gap.
    fn timeline(out: &[Output]) -> Vec<(char, u64, bool)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Au { au, discont } => Some(('v', au.pts.unwrap(), *discont)),
                Output::Audio { frame, discont } => Some(('a', frame.pts.unwrap(), *discont)),
                Output::Gap { pts, .. } => Some(('g', *pts, false)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn audio_comes_out_of_crumb_1_interleaved_with_the_video() {
        for max_crumbs in [0, 1] {
            let mut r = Reassembler::new(max_crumbs);
            let mut out = Vec::new();
            for c in partition(&with_audio(0), 0) {
                out.extend(r.push(c));
            }
            out.extend(r.finish());
            assert_eq!(
                out.iter()
                    .filter(|o| matches!(o, Output::AudioCaps(c) if c == "audio/x-opus"))
                    .count(),
                1
            );
            let t = timeline(&out);
            let audio: Vec<_> = t.iter().filter(|x| x.0 == 'a').copied().collect();
            assert_eq!(
                audio,
                vec![('a', 0, true), ('a', 2, false), ('a', 4, false)]
            );
            // Time order: nothing after a later one.
            let times: Vec<u64> = t.iter().map(|x| x.1).collect();
            let mut sorted = times.clone();
            sorted.sort();
            assert_eq!(times, sorted, "max-crumbs {max_crumbs}: {t:?}");
            assert_eq!(r.stats().audio_frames_output, 3);
            // The video is exactly what it is without audio.
            let mut plain = Reassembler::new(max_crumbs);
            let mut without = Vec::new();
            for c in partition(&segment(0, true), 0) {
                without.extend(plain.push(c));
            }
            without.extend(plain.finish());
            assert_eq!(aus(&out), aus(&without));
        }
    }

    #[test]
    fn a_lost_segment_is_a_gap_for_audio_too() {
        let mut r = Reassembler::new(0);
        let mut out = Vec::new();
        for c in partition(&with_audio(0), 0) {
            out.extend(r.push(c));
        }
        // Segment 1 lost its crumb 1 (only crumb 2 came), Segment 2 is whole.
        out.extend(r.push(partition(&with_audio(1), 0).swap_remove(1)));
        for c in partition(&with_audio(2), 0) {
            out.extend(r.push(c));
        }
        out.extend(r.finish());
        let t = timeline(&out);
        let after_gap: Vec<_> = t.iter().skip_while(|x| x.0 != 'g').copied().collect();
        assert_eq!(after_gap[0], ('g', 6, false));
        assert!(after_gap.contains(&('a', 12, true)), "{t:?}");
        assert!(after_gap.contains(&('v', 12, true)), "{t:?}");
        assert!(!t.iter().any(|x| (6..12).contains(&x.1) && x.0 != 'g'));
        // Audio caps are announced once: they did not change.
        assert_eq!(
            out.iter()
                .filter(|o| matches!(o, Output::AudioCaps(_)))
                .count(),
            1
        );
    }
}
