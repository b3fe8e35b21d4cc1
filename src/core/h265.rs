// SPDX-License-Identifier: MPL-2.0
//! Classifies the NAL units of one H.265 access unit (Annex B).
//!
//! Every H.265 NAL unit header says its layer: nuh_layer_id (spatial/quality/view
//! layer of SHVC and MV-HEVC, 0 in single-layer streams) and nuh_temporal_id_plus1
//! (temporal sub-layer, which x265 sets with `temporal-layers`).

use super::classify::PartBuilder;
use super::nal::split_annex_b;
use super::{ClassifiedAu, LayerId, ParseError, PartClass};

/// Video, sequence and picture parameter sets.
const VPS: u8 = 32;
const PPS: u8 = 34;
/// Intra random access point pictures: BLA, IDR, CRA and the two reserved IRAP types.
const IRAP: std::ops::RangeInclusive<u8> = 16..=23;

/// Classifies one Annex B access unit.
///
/// - VCL units (types 0-31): `Layer(nuh_layer_id, 0, TemporalId)`.
/// - VPS, SPS, PPS (32-34): headers wherever they are, so that dropping a layer never
///   drops a parameter set later pictures may need.
/// - Other non-VCL units (AUD, SEI, end of sequence/bitstream, filler, ...): headers
///   before the first VCL unit, the preceding VCL unit's layer after it.
///
/// `keyframe` says whether the lowest layer's picture is an IRAP picture, `None`
/// without VCL units.
pub fn classify(data: &[u8]) -> Result<ClassifiedAu, ParseError> {
    let nals = split_annex_b(data)?;
    let mut b = PartBuilder::with_capacity(nals.len());
    for nal in nals {
        let (b0, b1) = match nal.payload(data) {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Err(ParseError::Truncated("H.265 NAL unit header")),
        };
        if b0 & 0x80 != 0 {
            return Err(ParseError::Malformed("H.265 forbidden_zero_bit set"));
        }
        let nal_type = (b0 >> 1) & 0x3f;
        let layer_id = ((b0 & 1) << 5) | (b1 >> 3);
        let Some(temporal_id) = (b1 & 7).checked_sub(1) else {
            return Err(ParseError::Malformed("H.265 nuh_temporal_id_plus1 is 0"));
        };
        match nal_type {
            0..=31 => b.picture(
                LayerId::new(layer_id, 0, temporal_id),
                IRAP.contains(&nal_type),
                nal.range,
            ),
            VPS..=PPS => b.push(PartClass::Header, nal.range),
            _ => b.other(nal.range),
        }
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::super::classify::testutil::*;
    use super::*;

    /// A NAL unit of `nal_type` in layer `layer_id`, sub-layer `tid`, with a payload byte.
    fn nal(nal_type: u8, layer_id: u8, tid: u8) -> Vec<u8> {
        vec![
            (nal_type << 1) | (layer_id >> 5),
            ((layer_id & 0x1f) << 3) | (tid + 1),
            0xaf,
        ]
    }

    fn classes(au: &ClassifiedAu) -> Vec<PartClass> {
        au.parts.iter().map(|p| p.class).collect()
    }

    fn layer(s: u8, t: u8) -> PartClass {
        PartClass::Layer(LayerId::new(s, 0, t))
    }

    #[test]
    fn idr_with_parameter_sets_and_suffix_sei() {
        let data = annexb(&[
            &nal(35, 0, 0), // AUD
            &nal(32, 0, 0), // VPS
            &nal(33, 0, 0), // SPS
            &nal(34, 0, 0), // PPS
            &nal(39, 0, 0), // prefix SEI
            &nal(19, 0, 0), // IDR_W_RADL
            &nal(19, 0, 0),
            &nal(40, 0, 0), // suffix SEI
        ]);
        let au = classify(&data).unwrap();
        assert_tiles(&au, data.len());
        assert_eq!(classes(&au), vec![PartClass::Header, layer(0, 0)]);
        assert_eq!(au.parts[0].range, 0..35);
        assert_eq!(au.keyframe, Some(true));
    }

    #[test]
    fn temporal_sub_layers() {
        let au = classify(&annexb(&[&nal(1, 0, 1), &nal(40, 0, 1)])).unwrap();
        assert_eq!(classes(&au), vec![layer(0, 1)]);
        assert_eq!(au.keyframe, Some(false));
        let au = classify(&annexb(&[&nal(35, 0, 0), &nal(0, 0, 2)])).unwrap();
        assert_eq!(classes(&au), vec![PartClass::Header, layer(0, 2)]);
        // CRA is an IRAP picture too.
        assert_eq!(
            classify(&annexb(&[&nal(21, 0, 0)])).unwrap().keyframe,
            Some(true)
        );
    }

    #[test]
    fn layered_access_unit() {
        let data = annexb(&[
            &nal(32, 0, 0),
            &nal(19, 0, 0),
            &nal(39, 1, 0), // prefix SEI of layer 1 after a base slice
            &nal(34, 1, 0), // PPS of layer 1
            &nal(1, 1, 0),  // layer 1 inter-layer predicted (not IRAP)
            &nal(36, 0, 0), // end of sequence
        ]);
        let au = classify(&data).unwrap();
        assert_tiles(&au, data.len());
        assert_eq!(
            classes(&au),
            vec![
                PartClass::Header,
                layer(0, 0),
                PartClass::Header,
                layer(1, 0)
            ]
        );
        // The base layer decides, whatever the order of the units.
        assert_eq!(au.keyframe, Some(true));
        let data = annexb(&[&nal(19, 2, 0), &nal(1, 1, 0)]);
        assert_eq!(classify(&data).unwrap().keyframe, Some(false));
        assert_eq!(classify(&annexb(&[&nal(33, 0, 0)])).unwrap().keyframe, None);
    }

    #[test]
    fn largest_layer_id() {
        let au = classify(&annexb(&[&nal(1, 63, 6)])).unwrap();
        assert_eq!(classes(&au), vec![layer(63, 6)]);
    }

    #[test]
    fn errors() {
        assert_eq!(classify(&[]), Err(ParseError::Empty));
        assert!(matches!(
            classify(&nal(1, 0, 0)),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            classify(&annexb(&[&[0x80 | 0x26, 0x01, 0xaf]])),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            classify(&annexb(&[&[0x26, 0x00, 0xaf]])),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            classify(&annexb(&[&nal(32, 0, 0), &[0x26]])),
            Err(ParseError::Truncated(_))
        ));
    }

    #[test]
    fn never_panics_on_random_nal_units() {
        let mut rng = Lcg(265);
        for _ in 0..5000 {
            let n = 1 + (rng.next_u32() % 5) as usize;
            let nals: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let len = (rng.next_u32() % 6) as usize;
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
