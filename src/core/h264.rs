// SPDX-License-Identifier: MPL-2.0
//! Classifies the NAL units of one H.264 access unit (Annex B): AVC, SVC (Annex G) and,
//! loosely, MVC/3D-AVC (Annex H/J).
//!
//! Layers come from the 3-byte SVC extension of prefix (14) and slice extension (20)
//! NAL units: (dependency_id, quality_id, temporal_id). Plain AVC has no layers in the
//! bitstream; there non-reference pictures (nal_ref_idc 0, such as x264's B-frames)
//! are a droppable top temporal layer, since nothing refers to them.

use super::classify::PartBuilder;
use super::nal::split_annex_b;
use super::{ClassifiedAu, LayerId, ParseError, PartClass};

/// The layer of AVC slices with nal_ref_idc 0 when no prefix NAL unit says better.
pub const NON_REFERENCE: LayerId = LayerId {
    spatial: 0,
    quality: 0,
    temporal: 1,
};

/// What the NAL unit header extension of types 14, 20 and 21 says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extension {
    layer: LayerId,
    idr: bool,
}

/// Reads the header extension following the first header byte of a NAL unit of type
/// 14, 20 or 21. `payload` starts at the NAL unit header.
///
/// SVC (svc_extension_flag 1): idr_flag, priority_id(6) | no_inter_layer_pred_flag,
/// dependency_id(3), quality_id(4) | temporal_id(3), use_ref_base_pic_flag,
/// discardable_flag, output_flag, reserved_three_2bits.
///
/// MVC (flag 0) and 3D-AVC (type 21 with avc_3d_extension_flag 1) have views rather
/// than layers. Their view order is not a dependency order we can rank without the
/// subset SPS, so every non-base view goes into one enhancement layer (spatial 1, kept
/// in decode order), the base view's prefix into the base; temporal_id is kept.
fn extension(nal_type: u8, payload: &[u8]) -> Result<Extension, ParseError> {
    const TRUNCATED: ParseError = ParseError::Truncated("H.264 NAL unit header extension");
    let b1 = *payload.get(1).ok_or(TRUNCATED)?;
    let view_layer = u8::from(nal_type != 14);
    if nal_type == 21 && b1 & 0x80 != 0 {
        // 3D-AVC: view_idx(8) | depth_flag, non_idr_flag, temporal_id(3), anchor,
        // inter_view; spread over b1 (7 bits) and b2.
        let b2 = *payload.get(2).ok_or(TRUNCATED)?;
        return Ok(Extension {
            layer: LayerId::new(view_layer, 0, (b2 >> 2) & 7),
            idr: b2 & 0x20 == 0,
        });
    }
    let (b2, b3) = match (payload.get(2), payload.get(3)) {
        (Some(&b2), Some(&b3)) => (b2, b3),
        _ => return Err(TRUNCATED),
    };
    if b1 & 0x80 != 0 {
        Ok(Extension {
            layer: LayerId::new((b2 >> 4) & 7, b2 & 0x0f, b3 >> 5),
            idr: b1 & 0x40 != 0,
        })
    } else {
        // MVC: non_idr_flag, priority_id(6) | view_id(10) | temporal_id(3), anchor,
        // inter_view, reserved_one_bit.
        Ok(Extension {
            layer: LayerId::new(view_layer, 0, (b3 >> 3) & 7),
            idr: b1 & 0x40 == 0,
        })
    }
}

/// Classifies one Annex B access unit.
///
/// - SPS (7), PPS (8), SPS extension (13) are headers and subset SPS (15) an
///   enhancement header wherever they are: a dropped layer must never take a
///   parameter set later pictures may need.
/// - Base-layer slices (1-5) take the layer of the last prefix NAL unit (14) of the
///   access unit, else the base layer, or [`NON_REFERENCE`] when nal_ref_idc is 0.
/// - Prefix (14), slice extension (20, 21): the layer of their header extension.
/// - Other non-VCL units (SEI, AUD, end of sequence/stream, filler, ...) are headers
///   before the first slice and belong to the preceding slice's layer after it.
///
/// `keyframe` is what the lowest layer's slices say (IDR: type 5, or idr_flag of a
/// slice extension), `None` without slices.
pub fn classify(data: &[u8]) -> Result<ClassifiedAu, ParseError> {
    let nals = split_annex_b(data)?;
    let mut b = PartBuilder::with_capacity(nals.len());
    let mut prefix: Option<LayerId> = None;
    for nal in nals {
        let payload = nal.payload(data);
        let header = *payload
            .first()
            .ok_or(ParseError::Truncated("H.264 NAL unit header"))?;
        if header & 0x80 != 0 {
            return Err(ParseError::Malformed("H.264 forbidden_zero_bit set"));
        }
        let nal_ref_idc = (header >> 5) & 3;
        let nal_type = header & 0x1f;
        match nal_type {
            1..=5 => {
                let layer = prefix.unwrap_or(if nal_ref_idc != 0 {
                    LayerId::BASE
                } else {
                    NON_REFERENCE
                });
                b.picture(layer, nal_type == 5, nal.range);
            }
            14 => {
                // Not a slice itself: it only names the layer of the base slice after it.
                let ext = extension(nal_type, payload)?;
                prefix = Some(ext.layer);
                b.push(PartClass::Layer(ext.layer), nal.range);
            }
            20 | 21 => {
                let ext = extension(nal_type, payload)?;
                b.picture(ext.layer, ext.idr, nal.range);
            }
            7 | 8 | 13 => b.push(PartClass::Header, nal.range),
            15 => b.push(PartClass::EnhancementHeader, nal.range),
            _ => b.other(nal.range),
        }
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::super::Part;
    use super::super::classify::testutil::*;
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    const SPS: &[u8] = &[0x67, 0x42, 0xe0, 0x0c];
    const SSPS: &[u8] = &[0x6f, 0x53, 0x00];
    const PPS: &[u8] = &[0x68, 0xce, 0x38, 0x80];
    const SEI: &[u8] = &[0x06, 0x05, 0x01, 0x80];
    const AUD: &[u8] = &[0x09, 0xf0];
    const IDR: &[u8] = &[0x65, 0x88, 0x84];
    const P_REF: &[u8] = &[0x41, 0x9a, 0x02];
    const B_NONREF: &[u8] = &[0x01, 0x9e, 0x04];
    const EOS: &[u8] = &[0x0a];

    /// SVC prefix (14) or slice extension (20) with the given fields.
    fn svc(nal_type: u8, ref_idc: u8, idr: bool, did: u8, qid: u8, tid: u8) -> Vec<u8> {
        vec![
            (ref_idc << 5) | nal_type,
            0x80 | (u8::from(idr) << 6),
            0x80 | (did << 4) | qid,
            (tid << 5) | 0x07,
            0xaa,
        ]
    }

    fn classes(au: &ClassifiedAu) -> Vec<PartClass> {
        au.parts.iter().map(|p| p.class).collect()
    }

    fn layer(s: u8, q: u8, t: u8) -> PartClass {
        PartClass::Layer(LayerId::new(s, q, t))
    }

    #[test]
    fn avc_idr_with_headers() {
        let data = annexb(&[AUD, SPS, PPS, SEI, IDR]);
        let au = classify(&data).unwrap();
        assert_tiles(&au, data.len());
        assert_eq!(
            au.parts,
            vec![
                Part {
                    class: PartClass::Header,
                    range: 0..30
                },
                Part {
                    class: layer(0, 0, 0),
                    range: 30..37
                },
            ]
        );
        assert_eq!(au.keyframe, Some(true));
    }

    #[test]
    fn avc_non_reference_pictures_are_a_top_temporal_layer() {
        let au = classify(&annexb(&[P_REF])).unwrap();
        assert_eq!(classes(&au), vec![layer(0, 0, 0)]);
        assert_eq!(au.keyframe, Some(false));
        let au = classify(&annexb(&[AUD, B_NONREF])).unwrap();
        assert_eq!(
            classes(&au),
            vec![PartClass::Header, PartClass::Layer(NON_REFERENCE)]
        );
        assert_eq!(au.keyframe, Some(false));
    }

    #[test]
    fn units_after_a_slice_follow_its_layer_but_parameter_sets_stay_headers() {
        let data = annexb(&[B_NONREF, SEI, EOS, PPS, &[0x0c, 0xff, 0x80]]);
        let au = classify(&data).unwrap();
        assert_tiles(&au, data.len());
        assert_eq!(
            classes(&au),
            vec![
                PartClass::Layer(NON_REFERENCE),
                PartClass::Header,
                PartClass::Layer(NON_REFERENCE),
            ]
        );
    }

    #[test]
    fn svc_layers_come_from_prefix_and_extension() {
        let data = annexb(&[
            SPS,
            SSPS,
            PPS,
            &svc(14, 3, true, 0, 0, 0),
            IDR,
            &svc(20, 3, true, 1, 0, 0),
            &svc(20, 3, true, 2, 1, 0),
            SEI,
        ]);
        let au = classify(&data).unwrap();
        assert_tiles(&au, data.len());
        assert_eq!(
            classes(&au),
            vec![
                PartClass::Header,
                PartClass::EnhancementHeader,
                PartClass::Header,
                layer(0, 0, 0),
                layer(1, 0, 0),
                layer(2, 1, 0),
            ]
        );
        assert_eq!(au.keyframe, Some(true));

        // A non-reference base slice takes its temporal layer from the prefix.
        let data = annexb(&[
            &svc(14, 0, false, 0, 0, 2),
            B_NONREF,
            &svc(20, 0, false, 1, 0, 2),
        ]);
        let au = classify(&data).unwrap();
        assert_eq!(classes(&au), vec![layer(0, 0, 2), layer(1, 0, 2)]);
        assert_eq!(au.keyframe, Some(false));
    }

    #[test]
    fn the_base_layer_decides_the_key_frame() {
        // An enhancement IDR over a non-IDR base is no random access point.
        let data = annexb(&[
            &svc(14, 3, false, 0, 0, 0),
            P_REF,
            &svc(20, 3, true, 1, 0, 0),
        ]);
        assert_eq!(classify(&data).unwrap().keyframe, Some(false));
        // Without the base layer, the lowest extension layer decides.
        let data = annexb(&[&svc(20, 3, true, 1, 0, 0), &svc(20, 3, false, 2, 0, 0)]);
        assert_eq!(classify(&data).unwrap().keyframe, Some(true));
        // No slices: the bitstream cannot tell.
        assert_eq!(classify(&annexb(&[SPS, PPS])).unwrap().keyframe, None);
    }

    #[test]
    fn mvc_and_3d_avc_views_are_one_enhancement_layer() {
        // MVC prefix: svc_extension_flag 0, non_idr 0, view 0, tid 1; NAL 20 view 1.
        let prefix = [0x6e, 0x00, 0x00, 0x0b, 0xaa];
        let view = [0x74, 0x00, 0x00, 0x4b, 0xaa];
        let avc3d = [0x75, 0x80, 0x48, 0xaa];
        let data = annexb(&[&prefix, IDR, &view, &avc3d]);
        let au = classify(&data).unwrap();
        assert_eq!(
            classes(&au),
            vec![layer(0, 0, 1), layer(1, 0, 1), layer(1, 0, 2)]
        );
        assert_eq!(au.keyframe, Some(true));
    }

    #[test]
    fn errors() {
        assert_eq!(classify(&[]), Err(ParseError::Empty));
        assert!(matches!(classify(IDR), Err(ParseError::Malformed(_))));
        assert!(matches!(
            classify(&[0x12, 0, 0, 1, 0x65]),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            classify(&annexb(&[&[0xe5, 0x88]])),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            classify(&annexb(&[SPS, &[0x6e, 0x80, 0x00]])),
            Err(ParseError::Truncated(_))
        ));
        assert!(matches!(
            classify(&annexb(&[SPS, &[]])),
            Err(ParseError::Truncated(_))
        ));
        assert!(matches!(
            classify(&annexb(&[&[0x75, 0x80]])),
            Err(ParseError::Truncated(_))
        ));
    }

    /// Splits the test stream into access units: a new one starts at a parameter
    /// set, SEI, AUD or prefix NAL unit following a slice, or at a base slice directly
    /// following a slice.
    fn access_units(stream: &[u8]) -> Vec<&[u8]> {
        let nals = split_annex_b(stream).expect("Annex B stream");
        let mut aus = Vec::new();
        let mut start = 0;
        let mut had_slice = false;
        let mut after_prefix = false;
        for nal in nals {
            let t = nal.payload(stream).first().map_or(0, |h| h & 0x1f);
            let starts_au = match t {
                6..=9 | 14 | 15 => had_slice,
                1 | 5 => had_slice && !after_prefix,
                _ => false,
            };
            if starts_au {
                aus.push(&stream[start..nal.range.start]);
                start = nal.range.start;
                had_slice = false;
            }
            had_slice |= matches!(t, 1 | 5 | 20);
            after_prefix = t == 14;
        }
        aus.push(&stream[start..]);
        aus
    }

    #[test]
    fn openh264_svc_stream() {
        let Some(stream) = testdata("h264-svc-s3t3-640x360.264") else {
            return;
        };
        let aus = access_units(&stream);
        assert_eq!(aus.len(), 300);
        let mut tids: BTreeMap<u8, BTreeMap<u8, usize>> = BTreeMap::new();
        let mut keyframes = Vec::new();
        for (i, au_data) in aus.iter().enumerate() {
            let au = classify(au_data).unwrap();
            assert_tiles(&au, au_data.len());
            let layers: Vec<LayerId> = au
                .parts
                .iter()
                .filter_map(|p| match p.class {
                    PartClass::Layer(l) => Some(l),
                    _ => None,
                })
                .collect();
            // Prefix + base slice merged: one part per dependency layer, in order.
            let dids: Vec<u8> = layers.iter().map(|l| l.spatial).collect();
            assert_eq!(dids, vec![0, 1, 2], "access unit {i}");
            let tid = layers[0].temporal;
            for l in &layers {
                assert_eq!((l.quality, l.temporal), (0, tid), "access unit {i}");
                *tids.entry(l.spatial).or_default().entry(tid).or_default() += 1;
            }
            if au.keyframe == Some(true) {
                keyframes.push(i);
                // SPS, 2 subset SPS, 3 PPS in front of the IDR.
                assert_eq!(
                    classes(&au)[..3],
                    [
                        PartClass::Header,
                        PartClass::EnhancementHeader,
                        PartClass::Header
                    ]
                );
            } else {
                assert_eq!(au.keyframe, Some(false));
            }
        }
        assert_eq!(keyframes, vec![0, 60, 120, 180, 240]);
        let expected: BTreeMap<u8, usize> = [(0, 75), (1, 75), (2, 150)].into();
        assert_eq!(
            tids.keys().copied().collect::<BTreeSet<_>>(),
            [0, 1, 2].into()
        );
        for per_did in tids.values() {
            assert_eq!(per_did, &expected);
        }
    }

    #[test]
    fn never_panics_on_prefixes_of_a_real_access_unit() {
        let Some(stream) = testdata("h264-svc-s3t3-640x360.264") else {
            return;
        };
        let aus = access_units(&stream);
        check_prefixes(aus[0], 61, classify);
        check_prefixes(aus[1], 7, classify);
    }

    #[test]
    fn never_panics_on_random_nal_units() {
        let mut rng = Lcg(264);
        for _ in 0..5000 {
            let n = 1 + (rng.next_u32() % 5) as usize;
            let nals: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let len = (rng.next_u32() % 8) as usize;
                    rng.bytes(len)
                })
                .collect();
            let refs: Vec<&[u8]> = nals.iter().map(Vec::as_slice).collect();
            let data = annexb(&refs);
            if let Ok(au) = classify(&data) {
                assert_tiles(&au, data.len());
            }
        }
    }
}
