// SPDX-License-Identifier: MPL-2.0
//! The Torrent Maker's cut (paper, section 3.1, step 2): a Segment becomes crumbs.
//! Crumb 1 = headers + base layer; then each enhancement layer, lowest first, split at
//! access-unit boundaries in decode order into crumbs of at most `max_crumb_size`
//! payload bytes, so that every prefix 1..d of the crumbs decodes.

use std::collections::BTreeSet;

use super::crumb::{
    Crumb, SegmentInfo, TRACK_AUDIO, UNIT_FLAG_ENHANCEMENT_ONLY, UNIT_FLAG_KEYFRAME, Unit, VERSION,
};
use super::segmenter::Segment;
use super::{AccessUnit, LayerId, PartClass};

/// Cuts a Segment into crumbs. `max_crumb_size` 0 means one crumb per layer. A crumb
/// exceeds `max_crumb_size` only when one cut-point run alone does (one access unit of
/// a temporal layer, one GOP of a spatial or quality layer).
///
/// Headers of an access unit travel with the lowest layer that has picture data in it:
/// the AUD of a droppable B-frame goes with the B-frame, so that no prefix ever yields
/// an access unit made of headers alone.
pub fn partition(segment: &Segment, max_crumb_size: usize) -> Vec<Crumb> {
    let layers: BTreeSet<LayerId> = segment
        .aus
        .iter()
        .flat_map(|au| au.classified.parts.iter())
        .filter_map(|p| match p.class {
            PartClass::Layer(l) => Some(l.crumb_layer()),
            _ => None,
        })
        .collect();
    let mut layers: Vec<LayerId> = layers.into_iter().collect();
    if layers.is_empty() {
        layers.push(LayerId::BASE);
    }
    let base = layers[0];

    // One list of units per crumb layer, in decode order.
    let mut per_layer: Vec<Vec<Unit>> = vec![Vec::new(); layers.len()];
    for (i, au) in segment.aus.iter().enumerate() {
        split_access_unit(au, i as u32, &layers, base, &mut per_layer);
    }

    let mut cut: Vec<(LayerId, Vec<Unit>)> = Vec::new();
    for (k, units) in per_layer.into_iter().enumerate() {
        if k == 0 {
            // Headers + base layer stay one atomic crumb, whatever its size.
            cut.push((layers[0], units));
            continue;
        }
        // Cut points: any access unit for a temporal layer; only key frames for a
        // spatial or quality enhancement layer, because decoders resync a layer that
        // stops mid-GOP only at a key frame (openh264dec drops the rest of the GOP,
        // av1dec refuses a spatial layer that comes back mid-GOP).
        let key_frames_only = layers[k].is_spatial_or_quality_enhancement();
        let mut runs: Vec<Vec<Unit>> = Vec::new();
        for u in units {
            match runs.last_mut() {
                Some(run) if key_frames_only && u.flags & UNIT_FLAG_KEYFRAME == 0 => run.push(u),
                _ => runs.push(vec![u]),
            }
        }
        let mut current: Vec<Unit> = Vec::new();
        let mut size = 0;
        for run in runs {
            let run_size: usize = run.iter().map(|u| u.payload.len()).sum();
            if max_crumb_size > 0 && !current.is_empty() && size + run_size > max_crumb_size {
                cut.push((layers[k], std::mem::take(&mut current)));
                size = 0;
            }
            size += run_size;
            current.extend(run);
        }
        if !current.is_empty() {
            cut.push((layers[k], current));
        }
    }

    let info = SegmentInfo {
        seq: segment.seq,
        codec: segment.codec,
        crumb_count: cut.len().min(u16::MAX as usize) as u16,
        au_count: segment.aus.len() as u32,
        pts: segment.pts,
        duration: segment.duration,
        gops: segment.gops,
        starts_with_keyframe: segment.starts_with_keyframe,
    };
    cut.into_iter()
        .take(u16::MAX as usize)
        .enumerate()
        .map(|(k, (layer, mut units))| {
            // The audio travels in crumb 1, after the video's units: every viewer
            // who plays the base layer hears it.
            let audio = segment.audio.as_ref().filter(|_| k == 0);
            if let Some(a) = audio {
                units.extend(a.frames.iter().enumerate().map(|(i, f)| Unit {
                    track: TRACK_AUDIO,
                    decode_index: i as u32,
                    pts: f.pts,
                    dts: None,
                    duration: f.duration,
                    flags: 0,
                    payload: f.data.clone(),
                }));
            }
            Crumb {
                version: VERSION,
                segment: info.clone(),
                index: k as u16 + 1,
                layer,
                caps: (k == 0).then(|| segment.caps.clone()),
                audio_caps: audio.map(|a| a.caps.clone()),
                units,
            }
        })
        .collect()
}

fn split_access_unit(
    au: &AccessUnit,
    decode_index: u32,
    layers: &[LayerId],
    base: LayerId,
    per_layer: &mut [Vec<Unit>],
) {
    let lowest = au
        .classified
        .parts
        .iter()
        .filter_map(|p| match p.class {
            PartClass::Layer(l) => Some(l.crumb_layer()),
            _ => None,
        })
        .min()
        .unwrap_or(base);
    let flags = if au.keyframe { UNIT_FLAG_KEYFRAME } else { 0 };
    let unit = |payload: Vec<u8>, extra: u32| Unit {
        track: 0,
        decode_index,
        pts: au.pts,
        dts: au.dts,
        duration: au.duration,
        flags: flags | extra,
        payload,
    };
    // Runs of bytes per crumb layer (and, in crumb 1, per enhancement-only flag).
    let mut runs: Vec<(usize, u32, Vec<u8>)> = Vec::new();
    for part in &au.classified.parts {
        let (layer, extra) = match part.class {
            PartClass::Header => (lowest, 0),
            PartClass::EnhancementHeader => (base, UNIT_FLAG_ENHANCEMENT_ONLY),
            PartClass::Layer(l) => (l.crumb_layer(), 0),
        };
        let Ok(k) = layers.binary_search(&layer) else {
            continue;
        };
        let Some(bytes) = au.data.get(part.range.clone()) else {
            continue;
        };
        match runs.iter_mut().rev().find(|(rk, _, _)| *rk == k) {
            Some((_, rx, buf)) if *rx == extra => buf.extend_from_slice(bytes),
            _ => runs.push((k, extra, bytes.to_vec())),
        }
    }
    for (k, extra, payload) in runs {
        per_layer[k].push(unit(payload, extra));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ClassifiedAu, Codec, Part};

    fn part(class: PartClass, range: std::ops::Range<usize>) -> Part {
        Part { class, range }
    }

    fn layer(s: u8, t: u8) -> PartClass {
        PartClass::Layer(LayerId::new(s, 0, t))
    }

    fn au(i: u64, data: Vec<u8>, parts: Vec<Part>) -> AccessUnit {
        AccessUnit {
            data,
            pts: Some(i),
            dts: Some(i),
            duration: Some(1),
            keyframe: i == 0,
            classified: ClassifiedAu {
                parts,
                keyframe: Some(i == 0),
            },
        }
    }

    fn segment(aus: Vec<AccessUnit>) -> Segment {
        Segment {
            seq: 7,
            codec: Codec::H264,
            caps: "video/x-h264".into(),
            gops: 1,
            pts: Some(0),
            duration: aus.len() as u64,
            starts_with_keyframe: true,
            aus,
            audio: None,
        }
    }

    #[test]
    fn svc_access_unit_is_cut_by_layer_in_order() {
        // [H H E B B S1 S1 S2] : header, subset SPS, base, spatial 1, spatial 2
        let data = b"HHEBBSSZ".to_vec();
        let a = au(
            0,
            data,
            vec![
                part(PartClass::Header, 0..2),
                part(PartClass::EnhancementHeader, 2..3),
                part(layer(0, 0), 3..5),
                part(layer(1, 0), 5..7),
                part(layer(2, 1), 7..8),
            ],
        );
        let crumbs = partition(&segment(vec![a]), 0);
        assert_eq!(crumbs.len(), 3);
        assert_eq!(crumbs[0].units.len(), 3);
        assert_eq!(crumbs[0].units[0].payload, b"HH");
        assert_eq!(crumbs[0].units[1].payload, b"E");
        assert_eq!(
            crumbs[0].units[1].flags,
            UNIT_FLAG_KEYFRAME | UNIT_FLAG_ENHANCEMENT_ONLY
        );
        assert_eq!(crumbs[0].units[2].payload, b"BB");
        assert_eq!(crumbs[1].units[0].payload, b"SS");
        // Temporal sub-layers of a spatial enhancement layer stay with it.
        assert_eq!(crumbs[2].layer, LayerId::new(2, 0, 0));
        assert!(
            crumbs
                .iter()
                .all(|c| c.segment.crumb_count == 3 && c.segment.au_count == 1)
        );
        assert!(crumbs[0].caps.is_some() && crumbs[1].caps.is_none());
    }

    #[test]
    fn headers_travel_with_the_lowest_layer_present() {
        let idr = au(
            0,
            b"AIIII".to_vec(),
            vec![part(PartClass::Header, 0..1), part(layer(0, 0), 1..5)],
        );
        let b = au(
            1,
            b"Abb".to_vec(),
            vec![part(PartClass::Header, 0..1), part(layer(0, 1), 1..3)],
        );
        let crumbs = partition(&segment(vec![idr, b]), 0);
        assert_eq!(crumbs.len(), 2);
        assert_eq!(crumbs[0].units.len(), 1);
        assert_eq!(crumbs[1].units[0].payload, b"Abb");
        assert_eq!(crumbs[1].units[0].decode_index, 1);
    }

    #[test]
    fn enhancement_layers_split_at_access_units() {
        let aus: Vec<_> = (0..10)
            .map(|i| {
                au(
                    i,
                    vec![b'x'; 10],
                    vec![part(layer(0, 0), 0..2), part(layer(0, 1), 2..10)],
                )
            })
            .collect();
        let crumbs = partition(&segment(aus), 20);
        // base: 10 units of 2 bytes in one crumb; temporal 1: 10 units of 8 bytes, two
        // to a crumb of <= 20 bytes.
        assert_eq!(crumbs.len(), 1 + 5);
        assert_eq!(crumbs[0].payload_len(), 20);
        for c in &crumbs[1..] {
            assert!(c.payload_len() <= 20);
            assert_eq!(c.layer, LayerId::new(0, 0, 1));
        }
        let order: Vec<u32> = crumbs[1..]
            .iter()
            .flat_map(|c| c.units.iter().map(|u| u.decode_index))
            .collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn spatial_layers_split_only_at_key_frames() {
        // Two GOPs of 5 access units; spatial layer 1 has 8 bytes per access unit.
        let aus: Vec<_> = (0..10)
            .map(|i| {
                let mut a = au(
                    i,
                    vec![b'x'; 10],
                    vec![part(layer(0, 0), 0..2), part(layer(1, 0), 2..10)],
                );
                a.keyframe = i % 5 == 0;
                a
            })
            .collect();
        let crumbs = partition(&segment(aus), 20);
        assert_eq!(
            crumbs.len(),
            1 + 2,
            "one crumb per GOP, each over max-crumb-size"
        );
        assert_eq!(crumbs[1].units.len(), 5);
        assert_eq!(crumbs[2].units[0].decode_index, 5);
        assert!(crumbs[2].units[0].flags & UNIT_FLAG_KEYFRAME != 0);
    }

    #[test]
    fn one_layer_stream_is_one_crumb() {
        let aus: Vec<_> = (0..5)
            .map(|i| au(i, vec![1; 100], vec![part(layer(0, 0), 0..100)]))
            .collect();
        let crumbs = partition(&segment(aus), 10);
        assert_eq!(crumbs.len(), 1);
        assert_eq!(crumbs[0].payload_len(), 500);
    }

    /// The audio travels in crumb 1, after the video's units, and counts in its size.
    #[test]
    fn audio_goes_into_crumb_1_only() {
        let a = au(
            0,
            b"HBBSS".to_vec(),
            vec![
                part(PartClass::Header, 0..1),
                part(layer(0, 0), 1..3),
                part(layer(1, 0), 3..5),
            ],
        );
        let mut s = segment(vec![a]);
        let without = partition(&s, 0);
        s.audio = Some(crate::core::segmenter::SegmentAudio {
            caps: "audio/mpeg, mpegversion=(int)4".into(),
            frames: vec![crate::core::segmenter::AudioFrame {
                data: vec![7; 100],
                pts: Some(0),
                duration: Some(21),
            }],
        });
        let with = partition(&s, 0);
        assert_eq!(with.len(), without.len());
        assert_eq!(
            with[0].audio_caps.as_deref(),
            Some("audio/mpeg, mpegversion=(int)4")
        );
        assert_eq!(with[0].audio_len(), 100);
        assert_eq!(with[0].units.last().unwrap().track, TRACK_AUDIO);
        assert!(with[0].encode().len() >= without[0].encode().len() + 100);
        for (a, b) in with[1..].iter().zip(&without[1..]) {
            assert_eq!(a, b);
        }
    }
}
