// SPDX-License-Identifier: MPL-2.0
//! Classifies the OBUs of one AV1 temporal unit in the low-overhead bitstream format
//! (every OBU with obu_has_size_field, as av1parse outputs with
//! `stream-format=obu-stream, alignment=tu`).
//!
//! The layer of an OBU is in its extension header (temporal_id, spatial_id). OBUs
//! without one belong to every operating point, which for frame data means the base
//! layer (libaom's SVC writes its (S0,T0) frames that way).

use std::ops::Range;

use super::classify::PartBuilder;
use super::{ClassifiedAu, LayerId, ParseError, PartClass};

pub const OBU_SEQUENCE_HEADER: u8 = 1;
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
pub const OBU_FRAME_HEADER: u8 = 3;
pub const OBU_TILE_GROUP: u8 = 4;
pub const OBU_METADATA: u8 = 5;
pub const OBU_FRAME: u8 = 6;
pub const OBU_REDUNDANT_FRAME_HEADER: u8 = 7;
pub const OBU_TILE_LIST: u8 = 8;
pub const OBU_PADDING: u8 = 15;

/// One OBU of a temporal unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obu {
    pub obu_type: u8,
    /// (temporal_id, spatial_id) from the extension header, if there is one.
    pub extension: Option<(u8, u8)>,
    /// The whole OBU, header included.
    pub range: Range<usize>,
    /// The OBU payload.
    pub payload: Range<usize>,
}

impl Obu {
    /// The layer of the OBU: its extension header, or the base layer without one.
    pub fn layer(&self) -> LayerId {
        match self.extension {
            Some((temporal, spatial)) => LayerId::new(spatial, 0, temporal),
            None => LayerId::BASE,
        }
    }
}

/// Reads a leb128() (AV1 spec 4.10.5): at most 8 bytes. Returns value and length.
fn leb128(data: &[u8]) -> Result<(u64, usize), ParseError> {
    let mut value = 0u64;
    for i in 0..8 {
        let b = *data.get(i).ok_or(ParseError::Truncated("AV1 obu_size"))?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(ParseError::Malformed("AV1 obu_size longer than 8 bytes"))
}

/// Reads the OBU starting at `start`.
fn read_obu(data: &[u8], start: usize) -> Result<Obu, ParseError> {
    let rest = data.get(start..).unwrap_or(&[]);
    let header = *rest
        .first()
        .ok_or(ParseError::Truncated("AV1 OBU header"))?;
    if header & 0x80 != 0 {
        return Err(ParseError::Malformed("AV1 obu_forbidden_bit set"));
    }
    let obu_type = (header >> 3) & 0x0f;
    if !matches!(obu_type, OBU_SEQUENCE_HEADER..=OBU_TILE_LIST | OBU_PADDING) {
        // 0 and 9..=14 are reserved: no encoder writes them.
        return Err(ParseError::Malformed("AV1 reserved obu_type"));
    }
    if header & 0x01 != 0 {
        return Err(ParseError::Malformed("AV1 obu_reserved_1bit set"));
    }
    let has_extension = header & 0x04 != 0;
    let has_size = header & 0x02 != 0;
    let mut at = 1;
    let extension = if has_extension {
        let ext = *rest
            .get(1)
            .ok_or(ParseError::Truncated("AV1 OBU extension header"))?;
        at += 1;
        if ext & 0x07 != 0 {
            return Err(ParseError::Malformed(
                "AV1 extension_header_reserved_3bits set",
            ));
        }
        Some((ext >> 5, (ext >> 3) & 3))
    } else {
        None
    };
    let size = if has_size {
        let (size, len) = leb128(&rest[at..])?;
        at += len;
        usize::try_from(size)
            .ok()
            .filter(|&s| s <= rest.len() - at)
            .ok_or(ParseError::Truncated("AV1 OBU payload"))?
    } else {
        // Without obu_size the OBU runs to the end of the buffer; so it can only be
        // the last one.
        rest.len() - at
    };
    Ok(Obu {
        obu_type,
        extension,
        range: start..start + at + size,
        payload: start + at..start + at + size,
    })
}

/// Splits a temporal unit into OBUs covering it contiguously.
pub fn split_obus(data: &[u8]) -> Result<Vec<Obu>, ParseError> {
    if data.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut obus = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let obu = read_obu(data, at)?;
        at = obu.range.end;
        obus.push(obu);
    }
    Ok(obus)
}

/// What a temporal unit as av1parse gives it (`alignment=tu`) must look like beyond
/// parsing OBU by OBU (AV1 spec 7.5): it starts with its temporal delimiter (or, in
/// streams cut without them, a sequence header), a temporal delimiter has an empty
/// payload and comes nowhere else, the first OBU has its obu_size, and a sequence
/// header names a defined profile.
/// Random bytes almost never pass this, so garbage is refused instead of being cut
/// into Segments.
fn check_temporal_unit(data: &[u8], obus: &[Obu]) -> Result<(), ParseError> {
    match obus.first().map(|o| o.obu_type) {
        Some(OBU_TEMPORAL_DELIMITER | OBU_SEQUENCE_HEADER) => {}
        _ => {
            return Err(ParseError::Malformed(
                "AV1 temporal unit that starts with neither a temporal delimiter nor a sequence header",
            ));
        }
    }
    // Only the last OBU may run to the end of the buffer without obu_size, so a unit of
    // more than one OBU starts with a sized one; a lone unsized one is not a unit
    // either (av1parse writes every size).
    if data.get(obus[0].range.start).is_some_and(|h| h & 0x02 == 0) {
        return Err(ParseError::Malformed(
            "AV1 temporal unit whose first OBU has no obu_size",
        ));
    }
    for (i, obu) in obus.iter().enumerate() {
        match obu.obu_type {
            OBU_TEMPORAL_DELIMITER if i > 0 => {
                return Err(ParseError::Malformed(
                    "AV1 temporal delimiter inside a temporal unit",
                ));
            }
            OBU_TEMPORAL_DELIMITER if !obu.payload.is_empty() => {
                return Err(ParseError::Malformed(
                    "AV1 temporal delimiter with a payload",
                ));
            }
            // seq_profile (3 bits): 0, 1 and 2 are defined.
            OBU_SEQUENCE_HEADER if data.get(obu.payload.start).is_some_and(|b| b >> 5 > 2) => {
                return Err(ParseError::Malformed("AV1 sequence header seq_profile"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether the frame header starting `payload` is a key frame that is decoded (not
/// shown again with show_existing_frame). Only the first bits of
/// uncompressed_header() are needed (AV1 spec 5.9.2).
fn is_key_frame(payload: &[u8], reduced_still_picture_header: bool) -> Option<bool> {
    if reduced_still_picture_header {
        // Every frame of a reduced still picture stream is a key frame.
        return Some(true);
    }
    let b = *payload.first()?;
    let show_existing_frame = b & 0x80 != 0;
    let frame_type = (b >> 5) & 3;
    Some(!show_existing_frame && frame_type == 0)
}

/// Classifies one temporal unit.
///
/// - Sequence headers are headers wherever they are.
/// - Frame data (frame header, tile group, frame, redundant frame header, tile list):
///   the layer of its extension header, the base layer without one.
/// - Other OBUs (temporal delimiter, metadata, padding, reserved types): headers
///   before the first frame data, the preceding frame data's layer after it.
///
/// `keyframe` looks at the first frame header of the unit: `Some(true)` for a key
/// frame with a sequence header in the same unit (a random access point),
/// `Some(false)` for any other frame, `None` without frame data, with an empty frame
/// header, or for a key frame without a sequence header in the unit (the decoder may
/// have it from the caps; the buffer flags decide).
pub fn classify(data: &[u8]) -> Result<ClassifiedAu, ParseError> {
    let obus = split_obus(data)?;
    check_temporal_unit(data, &obus)?;
    let mut b = PartBuilder::with_capacity(obus.len());
    // reduced_still_picture_header of the first sequence header of the unit.
    let mut reduced_still: Option<bool> = None;
    let mut first_frame_header: Option<Range<usize>> = None;
    for obu in obus {
        match obu.obu_type {
            OBU_SEQUENCE_HEADER => {
                // seq_profile(3), still_picture(1), reduced_still_picture_header(1)
                let first = *data
                    .get(obu.payload.clone())
                    .and_then(<[u8]>::first)
                    .ok_or(ParseError::Truncated("AV1 sequence header"))?;
                reduced_still.get_or_insert(first & 0x08 != 0);
                b.push(PartClass::Header, obu.range);
            }
            OBU_FRAME_HEADER | OBU_FRAME => {
                first_frame_header.get_or_insert(obu.payload.clone());
                b.picture(obu.layer(), false, obu.range);
            }
            OBU_TILE_GROUP | OBU_REDUNDANT_FRAME_HEADER | OBU_TILE_LIST => {
                b.picture(obu.layer(), false, obu.range);
            }
            _ => b.other(obu.range),
        }
    }
    let keyframe = match (first_frame_header, reduced_still) {
        (None, _) => None,
        (Some(fh), reduced) => {
            // Without a sequence header, reduced_still_picture_header can be taken as
            // 0: it is 1 only in single-picture streams, whose one unit has one.
            let key = data
                .get(fh)
                .and_then(|p| is_key_frame(p, reduced.unwrap_or(false)));
            match key {
                Some(true) if reduced.is_none() => None,
                other => other,
            }
        }
    };
    Ok(b.finish_with(keyframe))
}

#[cfg(test)]
mod tests {
    use super::super::classify::testutil::*;
    use super::*;
    use std::collections::BTreeSet;

    /// An OBU with a size field; `ext` = (temporal_id, spatial_id).
    fn obu(obu_type: u8, ext: Option<(u8, u8)>, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(obu_type << 3) | 0x02 | if ext.is_some() { 0x04 } else { 0 }];
        if let Some((t, s)) = ext {
            v.push((t << 5) | (s << 3));
        }
        let mut n = payload.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            v.push(if n > 0 { byte | 0x80 } else { byte });
            if n == 0 {
                break;
            }
        }
        v.extend_from_slice(payload);
        v
    }

    const TD: u8 = OBU_TEMPORAL_DELIMITER;
    const SEQ: &[u8] = &[0x00, 0x00, 0x00];
    const KEY: &[u8] = &[0x10, 0x00];
    const INTER: &[u8] = &[0x30, 0x00];

    fn classes(au: &ClassifiedAu) -> Vec<PartClass> {
        au.parts.iter().map(|p| p.class).collect()
    }

    fn layer(s: u8, t: u8) -> PartClass {
        PartClass::Layer(LayerId::new(s, 0, t))
    }

    fn tu(obus: &[Vec<u8>]) -> Vec<u8> {
        obus.concat()
    }

    #[test]
    fn key_frame_with_sequence_header_and_spatial_layers() {
        let data = tu(&[
            obu(TD, None, &[]),
            obu(OBU_SEQUENCE_HEADER, None, SEQ),
            obu(OBU_FRAME, None, KEY),
            obu(OBU_FRAME, Some((0, 1)), INTER),
            obu(OBU_METADATA, Some((0, 1)), &[0x01]),
        ]);
        let au = classify(&data).unwrap();
        assert_tiles(&au, data.len());
        assert_eq!(
            classes(&au),
            vec![PartClass::Header, layer(0, 0), layer(1, 0)]
        );
        assert_eq!(au.parts[0].range, 0..7);
        assert_eq!(au.keyframe, Some(true));
    }

    #[test]
    fn inter_temporal_unit_with_frame_header_and_tile_groups() {
        let data = tu(&[
            obu(TD, None, &[]),
            obu(OBU_FRAME_HEADER, Some((2, 0)), INTER),
            obu(OBU_TILE_GROUP, Some((2, 0)), &[0xaa]),
            obu(OBU_PADDING, None, &[0, 0]),
            obu(OBU_FRAME_HEADER, Some((2, 1)), INTER),
            obu(OBU_REDUNDANT_FRAME_HEADER, Some((2, 1)), INTER),
        ]);
        let au = classify(&data).unwrap();
        assert_tiles(&au, data.len());
        assert_eq!(
            classes(&au),
            vec![PartClass::Header, layer(0, 2), layer(1, 2)]
        );
        assert_eq!(au.keyframe, Some(false));
    }

    #[test]
    fn key_frames_that_are_no_random_access_point() {
        // A key frame without a sequence header: the caller's flags decide.
        let data = tu(&[obu(TD, None, &[]), obu(OBU_FRAME, None, KEY)]);
        assert_eq!(classify(&data).unwrap().keyframe, None);
        // show_existing_frame of a key frame needs the earlier unit.
        let data = tu(&[
            obu(OBU_SEQUENCE_HEADER, None, SEQ),
            obu(OBU_FRAME_HEADER, None, &[0x80]),
        ]);
        assert_eq!(classify(&data).unwrap().keyframe, Some(false));
        // intra_only (frame_type 2) is not a key frame.
        let data = tu(&[
            obu(OBU_SEQUENCE_HEADER, None, SEQ),
            obu(OBU_FRAME, None, &[0x50]),
        ]);
        assert_eq!(classify(&data).unwrap().keyframe, Some(false));
    }

    #[test]
    fn reduced_still_picture_and_unknown_cases() {
        // reduced_still_picture_header 1: no frame_type bits, always a key frame.
        let data = tu(&[
            obu(OBU_SEQUENCE_HEADER, None, &[0x18]),
            obu(OBU_FRAME, None, INTER),
        ]);
        assert_eq!(classify(&data).unwrap().keyframe, Some(true));
        // No frame data, or an empty frame header: cannot tell.
        let data = tu(&[obu(TD, None, &[]), obu(OBU_SEQUENCE_HEADER, None, SEQ)]);
        assert_eq!(classify(&data).unwrap().keyframe, None);
        let data = tu(&[
            obu(OBU_SEQUENCE_HEADER, None, SEQ),
            obu(OBU_FRAME, None, &[]),
        ]);
        assert_eq!(classify(&data).unwrap().keyframe, None);
    }

    #[test]
    fn last_obu_may_omit_its_size() {
        let mut data = tu(&[obu(TD, None, &[])]);
        data.extend_from_slice(&[(OBU_FRAME << 3) | 0x04, 0x28, 0x30, 0x01, 0x02]);
        let au = classify(&data).unwrap();
        assert_tiles(&au, data.len());
        assert_eq!(classes(&au), vec![PartClass::Header, layer(1, 1)]);
    }

    #[test]
    fn errors() {
        assert_eq!(classify(&[]), Err(ParseError::Empty));
        assert!(matches!(
            classify(&[0x92, 0x00]),
            Err(ParseError::Malformed(_))
        ));
        // Size beyond the buffer.
        assert!(matches!(
            classify(&[0x32, 0x05, 0x10]),
            Err(ParseError::Truncated(_))
        ));
        // Extension flag without the extension byte.
        assert!(matches!(classify(&[0x36]), Err(ParseError::Truncated(_))));
        // Unterminated and overlong leb128.
        assert!(matches!(
            classify(&[0x32, 0x80]),
            Err(ParseError::Truncated(_))
        ));
        assert!(matches!(
            classify(&[0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(ParseError::Malformed(_))
        ));
        // A huge leb128 value must not overflow.
        assert!(matches!(
            classify(&[0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(ParseError::Truncated(_))
        ));
        // Empty sequence header.
        assert!(matches!(
            classify(&obu(OBU_SEQUENCE_HEADER, None, &[])),
            Err(ParseError::Truncated(_))
        ));
    }

    #[test]
    fn temporal_unit_shape_is_checked() {
        let frame = obu(OBU_FRAME, None, KEY);
        // A first OBU without obu_size.
        let mut data = tu(&[obu(OBU_SEQUENCE_HEADER, None, SEQ)]);
        data[0] &= !0x02;
        data.remove(1);
        assert!(matches!(classify(&data), Err(ParseError::Malformed(_))));
        // Frame data first: no temporal delimiter, no sequence header.
        assert!(matches!(classify(&frame), Err(ParseError::Malformed(_))));
        let data = tu(&[obu(OBU_PADDING, None, &[0]), obu(TD, None, &[])]);
        assert!(matches!(classify(&data), Err(ParseError::Malformed(_))));
        // A second temporal delimiter, or one with a payload.
        let data = tu(&[obu(TD, None, &[]), frame.clone(), obu(TD, None, &[])]);
        assert!(matches!(classify(&data), Err(ParseError::Malformed(_))));
        let data = tu(&[obu(TD, None, &[0x00]), frame.clone()]);
        assert!(matches!(classify(&data), Err(ParseError::Malformed(_))));
        // seq_profile 3..7 is reserved.
        let data = tu(&[obu(OBU_SEQUENCE_HEADER, None, &[0x60, 0, 0]), frame.clone()]);
        assert!(matches!(classify(&data), Err(ParseError::Malformed(_))));
        // Reserved OBU types and reserved bits.
        for t in [0u8, 9, 12, 14] {
            let data = tu(&[obu(TD, None, &[]), obu(t, None, &[1])]);
            assert!(
                matches!(classify(&data), Err(ParseError::Malformed(_))),
                "obu_type {t}"
            );
        }
        let mut data = tu(&[obu(TD, None, &[]), frame.clone()]);
        data[2] |= 0x01; // obu_reserved_1bit of the frame
        assert!(matches!(classify(&data), Err(ParseError::Malformed(_))));
        let mut data = tu(&[obu(TD, None, &[]), obu(OBU_FRAME, Some((1, 1)), INTER)]);
        data[3] |= 0x01; // extension_header_reserved_3bits
        assert!(matches!(classify(&data), Err(ParseError::Malformed(_))));
        // The well-formed versions pass.
        assert!(classify(&tu(&[obu(TD, None, &[]), frame.clone()])).is_ok());
        assert!(classify(&tu(&[obu(OBU_SEQUENCE_HEADER, None, SEQ), frame])).is_ok());
    }

    /// Random bytes are refused (almost) always: the reason garbage with AV1 caps makes
    /// svcsegmenter fail instead of publishing Segments.
    #[test]
    fn random_bytes_are_not_temporal_units() {
        let mut rng = Lcg(0xa71);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = 1 + (rng.next_u32() % 4096) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            if classify(&data).is_ok() {
                accepted += 1;
            }
        }
        assert!(accepted <= 20, "{accepted} of 20000 random buffers passed");
    }

    /// The temporal units of an IVF file: 32-byte file header, then per frame a 12-byte
    /// header (u32 size LE, u64 pts LE) and the frame.
    fn ivf_frames(file: &[u8]) -> Vec<&[u8]> {
        assert_eq!(&file[..4], b"DKIF");
        let mut frames = Vec::new();
        let mut at = 32;
        while at + 12 <= file.len() {
            let size = u32::from_le_bytes([file[at], file[at + 1], file[at + 2], file[at + 3]]);
            let end = at + 12 + size as usize;
            frames.push(&file[at + 12..end]);
            at = end;
        }
        assert_eq!(at, file.len());
        frames
    }

    #[test]
    fn libaom_l2t3_stream() {
        let Some(file) = testdata("av1-svc-l2t3-640x360.ivf") else {
            return;
        };
        let tus = ivf_frames(&file);
        assert_eq!(tus.len(), 300);
        let mut spatial = BTreeSet::new();
        let mut temporal = BTreeSet::new();
        for (i, tu) in tus.iter().enumerate() {
            let au = classify(tu).unwrap();
            assert_tiles(&au, tu.len());
            // A temporal delimiter first, then one frame per spatial layer.
            assert_eq!(au.parts[0].class, PartClass::Header);
            let layers: Vec<LayerId> = au
                .parts
                .iter()
                .filter_map(|p| match p.class {
                    PartClass::Layer(l) => Some(l),
                    _ => None,
                })
                .collect();
            assert_eq!(layers.len(), 2, "temporal unit {i}");
            assert_eq!(layers[0].temporal, layers[1].temporal);
            for l in layers {
                spatial.insert(l.spatial);
                temporal.insert(l.temporal);
            }
            let expected = if i == 0 { Some(true) } else { Some(false) };
            assert_eq!(au.keyframe, expected, "temporal unit {i}");
        }
        assert_eq!(spatial, [0, 1].into());
        assert_eq!(temporal, [0, 1, 2].into());
    }

    #[test]
    fn never_panics_on_prefixes_of_a_real_temporal_unit() {
        let Some(file) = testdata("av1-svc-l2t3-640x360.ivf") else {
            return;
        };
        let tus = ivf_frames(&file);
        check_prefixes(tus[0], 37, classify);
        check_prefixes(tus[1], 3, classify);
    }

    #[test]
    fn never_panics_on_random_obus() {
        let mut rng = Lcg(1);
        for _ in 0..5000 {
            let n = 1 + (rng.next_u32() % 4) as usize;
            let mut data = Vec::new();
            for _ in 0..n {
                let t = (rng.next_u32() % 16) as u8;
                let ext = rng
                    .next_u32()
                    .is_multiple_of(2)
                    .then(|| (rng.next_u32() % 8) as u8);
                let len = (rng.next_u32() % 5) as usize;
                let mut o = obu(t, ext.map(|e| (e, e & 3)), &rng.bytes(len));
                if rng.next_u32().is_multiple_of(8) {
                    o[0] ^= 1 << (rng.next_u32() % 8);
                }
                data.extend(o);
            }
            if let Ok(au) = classify(&data) {
                assert_tiles(&au, data.len());
            }
        }
    }
}
