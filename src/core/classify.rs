// SPDX-License-Identifier: MPL-2.0
//! Cuts one access unit of any supported codec into classified parts.
//!
//! H.264, H.265 and AV1 carry their layers in the bitstream and have their own
//! modules; VP8 and VP9 frames are one part each, their layer given by the caller
//! (from the encoder's per-buffer meta), their key frame flag read here from the frame
//! header. The part builder shared by the codec modules lives here too.

use std::ops::Range;

use super::nal::BitReader;
use super::{ClassifiedAu, Codec, LayerId, ParseError, Part, PartClass, av1, h264, h265};

/// Classifies one access unit (H.264/H.265), temporal unit (AV1) or frame (VP8/VP9).
///
/// `vp8_layer_id` is the temporal layer from the encoder's meta; only VP8 and VP9 use
/// it (the other codecs say their layers in the bitstream).
pub fn classify(
    codec: Codec,
    data: &[u8],
    vp8_layer_id: Option<u8>,
) -> Result<ClassifiedAu, ParseError> {
    match codec {
        Codec::H264 => h264::classify(data),
        Codec::H265 => h265::classify(data),
        Codec::Av1 => av1::classify(data),
        Codec::Vp8 => whole_frame(data, vp8_layer_id, vp8_keyframe(data)?),
        // vp9enc attaches no layer meta, but should a caller have a layer id for VP9
        // (same temporal-scalability properties as vp8enc), it means the same thing.
        Codec::Vp9 => whole_frame(data, vp8_layer_id, vp9_keyframe(data)?),
    }
}

fn whole_frame(
    data: &[u8],
    layer_id: Option<u8>,
    keyframe: bool,
) -> Result<ClassifiedAu, ParseError> {
    let layer = LayerId::new(0, 0, layer_id.unwrap_or(0));
    Ok(ClassifiedAu {
        parts: vec![Part {
            class: PartClass::Layer(layer),
            range: 0..data.len(),
        }],
        keyframe: Some(keyframe),
    })
}

/// VP8 frame tag (RFC 6386, 9.1): a 3-byte little-endian field with bit 0 = 0 for a
/// key frame, bits 1-3 the version (0-3; libvpx refuses the rest), bit 4 show_frame
/// (0 for the invisible alt-ref frames vp8enc makes) and bits 5-23 the size of the
/// first partition, which must be in the buffer. A key frame continues with the start
/// code 9d 01 2a and a non-zero 14-bit width and height. Random bytes almost never
/// pass, so garbage with VP8 caps is refused instead of passing as inter frames.
fn vp8_keyframe(data: &[u8]) -> Result<bool, ParseError> {
    if data.is_empty() {
        return Err(ParseError::Empty);
    }
    if data.len() < 3 {
        return Err(ParseError::Truncated("VP8 frame tag"));
    }
    let tag = u32::from(data[0]) | u32::from(data[1]) << 8 | u32::from(data[2]) << 16;
    let key = tag & 1 == 0;
    let version = (tag >> 1) & 7;
    let first_partition = (tag >> 5) as usize;
    if version > 3 {
        return Err(ParseError::Malformed("VP8 frame tag version"));
    }
    if first_partition == 0 {
        return Err(ParseError::Malformed("VP8 first partition size 0"));
    }
    let header = if key { 10 } else { 3 };
    if data.len() < header {
        return Err(ParseError::Truncated("VP8 key frame header"));
    }
    if key {
        if data[3..6] != [0x9d, 0x01, 0x2a] {
            return Err(ParseError::Malformed("VP8 key frame start code"));
        }
        let width = u16::from_le_bytes([data[6], data[7]]) & 0x3fff;
        let height = u16::from_le_bytes([data[8], data[9]]) & 0x3fff;
        if width == 0 || height == 0 {
            return Err(ParseError::Malformed("VP8 key frame dimensions"));
        }
    }
    if first_partition > data.len() - header {
        return Err(ParseError::Truncated("VP8 first partition"));
    }
    Ok(key)
}

/// VP9 uncompressed header (VP9 bitstream spec, 6.2) up to the key frame sync code.
/// In a superframe only the first frame is looked at: a key frame comes first.
fn vp9_keyframe(data: &[u8]) -> Result<bool, ParseError> {
    if data.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut r = BitReader::new(data, "VP9 uncompressed header");
    if r.read_bits(2)? != 2 {
        return Err(ParseError::Malformed("VP9 frame_marker"));
    }
    let profile_low = r.read_bits(1)?;
    let profile = (r.read_bits(1)? << 1) | profile_low;
    if profile == 3 {
        r.read_bit()?; // reserved_zero
    }
    if r.read_bit()? {
        // show_existing_frame: shows a decoded frame, decodable only after it.
        return Ok(false);
    }
    if r.read_bit()? {
        return Ok(false); // frame_type 1 = NON_KEY_FRAME
    }
    r.read_bits(2)?; // show_frame, error_resilient_mode
    if r.read_bits(24)? != 0x49_83_42 {
        return Err(ParseError::Malformed("VP9 frame_sync_code"));
    }
    Ok(true)
}

/// Builds the parts of an access unit for the codecs that signal layers per unit
/// (NAL unit, OBU): merges neighbours of one class, puts non-picture units after a
/// picture unit with that picture's layer, and remembers what the lowest layer's
/// picture says about being a key frame.
#[derive(Debug, Default)]
pub(crate) struct PartBuilder {
    parts: Vec<Part>,
    /// Class of the last picture data unit (VCL NAL unit, frame OBU).
    last_picture: Option<PartClass>,
    /// The lowest (spatial, quality) layer seen and whether its picture is a key
    /// picture: the base layer decides whether the access unit starts a GOP.
    lowest: Option<(LayerId, bool)>,
}

impl PartBuilder {
    pub(crate) fn with_capacity(n: usize) -> Self {
        PartBuilder {
            parts: Vec::with_capacity(n),
            ..PartBuilder::default()
        }
    }

    /// Appends a part, merging it into the previous one when the class is the same.
    pub(crate) fn push(&mut self, class: PartClass, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        match self.parts.last_mut() {
            Some(last) if last.class == class && last.range.end == range.start => {
                last.range.end = range.end;
            }
            _ => self.parts.push(Part { class, range }),
        }
    }

    /// Appends picture data of `layer`; `key` says whether that picture is an
    /// IDR/IRAP/key picture.
    pub(crate) fn picture(&mut self, layer: LayerId, key: bool, range: Range<usize>) {
        let class = PartClass::Layer(layer);
        self.last_picture = Some(class);
        let rank = |l: LayerId| (l.spatial, l.quality);
        self.lowest = match self.lowest {
            Some((low, k)) if rank(low) < rank(layer) => Some((low, k)),
            Some((low, k)) if rank(low) == rank(layer) => Some((low, k || key)),
            _ => Some((layer, key)),
        };
        self.push(class, range);
    }

    /// Appends a unit that is not picture data: a header before the first picture
    /// unit, else part of the preceding picture's layer (SEI after slices, end of
    /// sequence, padding), which keeps the order when crumbs are concatenated.
    pub(crate) fn other(&mut self, range: Range<usize>) {
        let class = self.last_picture.unwrap_or(PartClass::Header);
        self.push(class, range);
    }

    /// Finishes with the key frame flag of the lowest layer: `None` without pictures.
    pub(crate) fn finish(self) -> ClassifiedAu {
        let keyframe = self.lowest.map(|(_, key)| key);
        self.finish_with(keyframe)
    }

    pub(crate) fn finish_with(self, keyframe: Option<bool>) -> ClassifiedAu {
        ClassifiedAu {
            parts: self.parts,
            keyframe,
        }
    }
}

/// Helpers for the codec modules' tests.
#[cfg(test)]
pub(crate) mod testutil {
    use super::super::{ClassifiedAu, ParseError};

    /// A test stream from the repository's shared test data, `None` (with a note) when
    /// it is not checked out next to the crate.
    pub fn testdata(name: &str) -> Option<Vec<u8>> {
        let path = format!("{}/../shared/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        match std::fs::read(&path) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("skipping: test stream {path} not available ({e})");
                None
            }
        }
    }

    /// NAL units with 4-byte start codes.
    pub fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(n);
        }
        out
    }

    /// Parts tile `0..len` in order, none empty, neighbours of different classes.
    pub fn assert_tiles(au: &ClassifiedAu, len: usize) {
        let mut at = 0;
        for (i, p) in au.parts.iter().enumerate() {
            assert_eq!(
                p.range.start, at,
                "part {i} does not follow: {:?}",
                au.parts
            );
            assert!(
                p.range.end > p.range.start,
                "empty part {i}: {:?}",
                au.parts
            );
            if i > 0 {
                assert_ne!(au.parts[i - 1].class, p.class, "unmerged: {:?}", au.parts);
            }
            at = p.range.end;
        }
        assert_eq!(at, len, "parts do not cover the buffer: {:?}", au.parts);
    }

    /// A simple LCG so the "never panics" tests are reproducible without a crate.
    pub struct Lcg(pub u64);

    impl Lcg {
        pub fn next_u32(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }

        /// Random bytes biased towards 0, 1 and small values so that start codes and
        /// plausible headers show up.
        pub fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| match self.next_u32() % 8 {
                    0..=2 => 0,
                    3 => 1,
                    _ => self.next_u32() as u8,
                })
                .collect()
        }
    }

    /// Classifies every prefix of `data` that `step` picks (all of the first 512 bytes,
    /// then every `step`-th) and checks Ok results tile the prefix.
    pub fn check_prefixes(
        data: &[u8],
        step: usize,
        f: impl Fn(&[u8]) -> Result<ClassifiedAu, ParseError>,
    ) {
        let mut n = 0;
        while n <= data.len() {
            let prefix = &data[..n];
            if let Ok(au) = f(prefix) {
                assert_tiles(&au, n);
            }
            n += if n < 512 { 1 } else { step };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    fn vp8_key() -> Vec<u8> {
        // key frame, version 0, shown, first partition size 1; 9d 01 2a; 64x64
        vec![
            0x30, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x00, 0x40, 0x00, 0xaa,
        ]
    }

    #[test]
    fn vp8_is_one_part_with_the_meta_layer() {
        let key = vp8_key();
        let au = classify(Codec::Vp8, &key, Some(2)).unwrap();
        assert_eq!(
            au.parts,
            vec![Part {
                class: PartClass::Layer(LayerId::new(0, 0, 2)),
                range: 0..key.len()
            }]
        );
        assert_eq!(au.keyframe, Some(true));
        // inter frame, version 0, shown, first partition size 1
        let inter = [0x31, 0x00, 0x00, 0x12];
        let au = classify(Codec::Vp8, &inter, None).unwrap();
        assert_eq!(au.parts[0].class, PartClass::Layer(LayerId::BASE));
        assert_eq!(au.keyframe, Some(false));
    }

    #[test]
    fn vp8_errors() {
        assert_eq!(classify(Codec::Vp8, &[], None), Err(ParseError::Empty));
        assert!(matches!(
            classify(Codec::Vp8, &[0x31, 0x01], None),
            Err(ParseError::Truncated(_))
        ));
        assert!(matches!(
            classify(Codec::Vp8, &vp8_key()[..9], None),
            Err(ParseError::Truncated(_))
        ));
        let mut bad = vp8_key();
        bad[4] = 0x02;
        assert!(matches!(
            classify(Codec::Vp8, &bad, None),
            Err(ParseError::Malformed(_))
        ));
        // Version 4..7, first partition size 0 or beyond the buffer, zero dimensions.
        let inter = [0x31, 0x00, 0x00, 0x12];
        for (i, bad) in [
            [0x39, 0x00, 0x00, 0x12], // version 4
            [0x11, 0x00, 0x00, 0x12], // first partition size 0
            [0x51, 0x00, 0x00, 0x12], // first partition size 2, 1 byte left
        ]
        .iter()
        .enumerate()
        {
            assert!(classify(Codec::Vp8, bad, None).is_err(), "case {i}");
        }
        assert!(classify(Codec::Vp8, &inter, None).is_ok());
        let mut bad = vp8_key();
        bad[6] = 0;
        bad[7] = 0xc0; // width 0 (scale bits set)
        assert!(matches!(
            classify(Codec::Vp8, &bad, None),
            Err(ParseError::Malformed(_))
        ));
        // An invisible (alt-ref) inter frame is fine.
        assert_eq!(
            classify(Codec::Vp8, &[0x21, 0x00, 0x00, 0x12], None)
                .unwrap()
                .keyframe,
            Some(false)
        );
    }

    /// Random bytes are refused (almost) always, so garbage with VP8 caps gives an
    /// error instead of passing as inter frames.
    #[test]
    fn vp8_random_bytes_are_refused() {
        let mut rng = Lcg(0x0f8);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = 1 + (rng.next_u32() % 4096) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            if classify(Codec::Vp8, &data, None).is_ok() {
                accepted += 1;
            }
        }
        assert!(accepted <= 100, "{accepted} of 20000 random buffers passed");
    }

    #[test]
    fn vp9_key_and_inter_frames() {
        // 10 | profile 0 (0,0) | show_existing 0 | frame_type 0 | show 1 | err_res 0 | sync
        let key = [0b1000_0010, 0x49, 0x83, 0x42, 0x00];
        let au = classify(Codec::Vp9, &key, None).unwrap();
        assert_eq!(au.keyframe, Some(true));
        assert_eq!(au.parts.len(), 1);
        assert_eq!(au.parts[0].class, PartClass::Layer(LayerId::BASE));
        // Profile 3 has a reserved bit before show_existing_frame.
        let key_p3 = [0b1011_0001, 0b0_0100100, 0b1_1000001, 0b1_0100001, 0];
        assert_eq!(
            classify(Codec::Vp9, &key_p3, None).unwrap().keyframe,
            Some(true)
        );
        let inter = [0b1000_0110, 0x00];
        assert_eq!(
            classify(Codec::Vp9, &inter, None).unwrap().keyframe,
            Some(false)
        );
        let show_existing = [0b1000_1000];
        assert_eq!(
            classify(Codec::Vp9, &show_existing, None).unwrap().keyframe,
            Some(false)
        );
    }

    #[test]
    fn vp9_errors() {
        assert_eq!(classify(Codec::Vp9, &[], None), Err(ParseError::Empty));
        assert!(matches!(
            classify(Codec::Vp9, &[0x42, 0x49, 0x83, 0x42], None),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            classify(Codec::Vp9, &[0b1000_0010, 0x49], None),
            Err(ParseError::Truncated(_))
        ));
        assert!(matches!(
            classify(Codec::Vp9, &[0b1000_0010, 0x49, 0x83, 0x43], None),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn builder_merges_and_attaches_trailing_units() {
        let mut b = PartBuilder::default();
        b.other(0..2);
        b.other(2..4);
        b.picture(LayerId::new(1, 0, 0), false, 4..6);
        b.picture(LayerId::BASE, true, 6..8);
        b.other(8..9);
        b.push(PartClass::Header, 9..9);
        let au = b.finish();
        assert_tiles(&au, 9);
        assert_eq!(au.parts.len(), 3);
        assert_eq!(au.parts[2].range, 6..9);
        // The base layer decides, whatever the order.
        assert_eq!(au.keyframe, Some(true));
        assert_eq!(PartBuilder::default().finish().keyframe, None);
    }

    #[test]
    fn never_panics_on_random_input() {
        let mut rng = Lcg(0x5eed);
        for codec in [Codec::H264, Codec::H265, Codec::Av1, Codec::Vp8, Codec::Vp9] {
            for i in 0..3000 {
                let len = (rng.next_u32() % 200) as usize;
                let mut data = rng.bytes(len);
                if i % 2 == 0 && matches!(codec, Codec::H264 | Codec::H265) {
                    data.splice(0..0, [0, 0, 0, 1]);
                }
                if let Ok(au) = classify(codec, &data, Some(1)) {
                    assert_tiles(&au, data.len());
                }
            }
        }
    }
}
