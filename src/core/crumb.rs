// SPDX-License-Identifier: MPL-2.0
//! The crumb format (version 1): one crumb of one Segment as a self-describing,
//! versioned, bounds-checked byte string. It is what each crumb's torrent carries and
//! what flows between elements as `application/x-crumb`. Layout in `docs/crumb-format.md`.

use super::{Codec, LayerId, Timestamp};

pub const MAGIC: [u8; 4] = *b"CRMB";
pub const VERSION: u8 = 1;
const HEADER_LEN: usize = 56;
const UNIT_HEADER_LEN: usize = 40;
const TRAILER_LEN: usize = 4;
const NONE: u64 = u64::MAX;
/// Longest caps string accepted; real caps with codec_data stay far below.
pub const MAX_CAPS_LEN: usize = 64 * 1024;

const SEGMENT_FLAG_KEYFRAME_START: u8 = 1;
const SEGMENT_FLAG_HAS_CAPS: u8 = 2;
const SEGMENT_FLAGS_KNOWN: u8 = SEGMENT_FLAG_KEYFRAME_START | SEGMENT_FLAG_HAS_CAPS;

/// The access unit starts a GOP (key frame / IDR / IRAP).
pub const UNIT_FLAG_KEYFRAME: u32 = 1;
/// Needed only with a spatial or quality enhancement layer (see `PartClass::EnhancementHeader`).
pub const UNIT_FLAG_ENHANCEMENT_ONLY: u32 = 2;
const UNIT_FLAGS_KNOWN: u32 = UNIT_FLAG_KEYFRAME | UNIT_FLAG_ENHANCEMENT_ONLY;

/// What every crumb of a Segment says about the Segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Segment sequence number, from 0 at the channel's start.
    pub seq: u64,
    pub codec: Codec,
    /// Number of crumbs of this Segment (N).
    pub crumb_count: u16,
    /// Number of access units in the Segment (decode indices run 0..au_count).
    pub au_count: u32,
    /// Presentation time of the Segment's start.
    pub pts: Timestamp,
    /// Playback duration |s| in nanoseconds.
    pub duration: u64,
    /// |G|: whole GOPs in the Segment.
    pub gops: u16,
    /// False only when the segmenter had to cut inside an over-long GOP: the Segment
    /// then depends on its predecessor.
    pub starts_with_keyframe: bool,
}

/// One access unit's share of a crumb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// Track id, 0 for the video; kept so audio can join the same Segments later.
    pub track: u32,
    /// Index of the access unit in the Segment, in decode order.
    pub decode_index: u32,
    pub pts: Timestamp,
    pub dts: Timestamp,
    pub duration: Timestamp,
    pub flags: u32,
    pub payload: Vec<u8>,
}

/// One crumb: crumb 1 = headers + base layer, the rest enhancement layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crumb {
    pub segment: SegmentInfo,
    /// 1-based crumb index within the Segment.
    pub index: u16,
    /// The crumb layer (see `LayerId::crumb_layer`).
    pub layer: LayerId,
    /// The stream's caps as a string; crumb 1 always carries them.
    pub caps: Option<String>,
    pub units: Vec<Unit>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrumbError {
    #[error("not a crumb (bad magic)")]
    BadMagic,
    #[error("crumb format version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("crumb truncated: {0}")]
    Truncated(&'static str),
    #[error("crumb checksum mismatch")]
    Checksum,
    #[error("malformed crumb: {0}")]
    Malformed(&'static str),
}

fn opt(t: Timestamp) -> u64 {
    t.unwrap_or(NONE)
}

fn from_opt(v: u64) -> Timestamp {
    (v != NONE).then_some(v)
}

impl Crumb {
    /// Total payload bytes carried by this crumb.
    pub fn payload_len(&self) -> usize {
        self.units.iter().map(|u| u.payload.len()).sum()
    }

    /// Serialises the crumb (version 1).
    pub fn encode(&self) -> Vec<u8> {
        let caps = self.caps.as_deref().unwrap_or("").as_bytes();
        let len = HEADER_LEN
            + caps.len()
            + self.units.len() * UNIT_HEADER_LEN
            + self.payload_len()
            + TRAILER_LEN;
        let mut out = Vec::with_capacity(len);
        let s = &self.segment;
        let mut flags = 0;
        if s.starts_with_keyframe {
            flags |= SEGMENT_FLAG_KEYFRAME_START;
        }
        if self.caps.is_some() {
            flags |= SEGMENT_FLAG_HAS_CAPS;
        }
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[VERSION, s.codec.to_byte(), flags, 0]);
        out.extend_from_slice(&s.seq.to_be_bytes());
        out.extend_from_slice(&opt(s.pts).to_be_bytes());
        out.extend_from_slice(&s.duration.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&s.crumb_count.to_be_bytes());
        out.extend_from_slice(&[
            self.layer.spatial,
            self.layer.quality,
            self.layer.temporal,
            0,
        ]);
        out.extend_from_slice(&s.gops.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&s.au_count.to_be_bytes());
        out.extend_from_slice(&(self.units.len() as u32).to_be_bytes());
        out.extend_from_slice(&(caps.len() as u32).to_be_bytes());
        out.extend_from_slice(caps);
        for u in &self.units {
            out.extend_from_slice(&u.track.to_be_bytes());
            out.extend_from_slice(&u.decode_index.to_be_bytes());
            out.extend_from_slice(&opt(u.pts).to_be_bytes());
            out.extend_from_slice(&opt(u.dts).to_be_bytes());
            out.extend_from_slice(&opt(u.duration).to_be_bytes());
            out.extend_from_slice(&u.flags.to_be_bytes());
            out.extend_from_slice(&(u.payload.len() as u32).to_be_bytes());
            out.extend_from_slice(&u.payload);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        debug_assert_eq!(out.len(), len);
        out
    }

    /// Reads a crumb, checking every length, index and the checksum.
    pub fn decode(data: &[u8]) -> Result<Crumb, CrumbError> {
        if data.len() < 4 || data[..4] != MAGIC {
            return Err(CrumbError::BadMagic);
        }
        if data.len() < 5 {
            return Err(CrumbError::Truncated("header"));
        }
        if data[4] != VERSION {
            return Err(CrumbError::UnsupportedVersion(data[4]));
        }
        if data.len() < HEADER_LEN + TRAILER_LEN {
            return Err(CrumbError::Truncated("header"));
        }
        let (body, trailer) = data.split_at(data.len() - TRAILER_LEN);
        let crc = u32::from_be_bytes(trailer.try_into().expect("4 bytes"));
        if crc32fast::hash(body) != crc {
            return Err(CrumbError::Checksum);
        }
        let mut r = Reader { data: body, pos: 5 };
        let codec =
            Codec::from_byte(r.u8("codec")?).ok_or(CrumbError::Malformed("unknown codec"))?;
        let flags = r.u8("flags")?;
        // Unknown flags and non-zero reserved bytes are refused, not ignored: a reader
        // accepting them would take several byte strings for one crumb, while a crumb's
        // torrent info-hash is computed over its exact bytes. Version 1 has one encoding
        // per crumb; a later version that gives them a meaning bumps VERSION.
        if flags & !SEGMENT_FLAGS_KNOWN != 0 {
            return Err(CrumbError::Malformed("unknown segment flags"));
        }
        r.reserved_zero(1)?;
        let seq = r.u64("segment seq")?;
        let pts = from_opt(r.u64("segment pts")?);
        let duration = r.u64("segment duration")?;
        let index = r.u16("crumb index")?;
        let crumb_count = r.u16("crumb count")?;
        if index == 0 || index > crumb_count {
            return Err(CrumbError::Malformed("crumb index outside 1..=crumb count"));
        }
        let layer = LayerId::new(r.u8("layer")?, r.u8("layer")?, r.u8("layer")?);
        r.reserved_zero(1)?;
        let gops = r.u16("gops")?;
        r.reserved_zero(2)?;
        let au_count = r.u32("access unit count")?;
        let unit_count = r.u32("unit count")? as usize;
        let caps_len = r.u32("caps length")? as usize;
        if caps_len > MAX_CAPS_LEN {
            return Err(CrumbError::Malformed("caps too long"));
        }
        let caps_bytes = r.bytes(caps_len, "caps")?;
        let caps = if flags & SEGMENT_FLAG_HAS_CAPS != 0 {
            Some(
                std::str::from_utf8(caps_bytes)
                    .map_err(|_| CrumbError::Malformed("caps are not UTF-8"))?
                    .to_owned(),
            )
        } else if caps_len != 0 {
            return Err(CrumbError::Malformed("caps bytes without caps flag"));
        } else {
            None
        };
        if index == 1 && caps.is_none() {
            return Err(CrumbError::Malformed("crumb 1 carries no caps"));
        }
        // Every unit needs its header: bound the allocation by what the input can hold.
        if unit_count > r.remaining() / UNIT_HEADER_LEN {
            return Err(CrumbError::Truncated("units"));
        }
        let mut units = Vec::with_capacity(unit_count);
        let mut last_index = None;
        for _ in 0..unit_count {
            let track = r.u32("unit track")?;
            let decode_index = r.u32("unit decode index")?;
            if decode_index >= au_count {
                return Err(CrumbError::Malformed(
                    "unit decode index outside the Segment",
                ));
            }
            if last_index.is_some_and(|l| decode_index < l) {
                return Err(CrumbError::Malformed("units out of decode order"));
            }
            last_index = Some(decode_index);
            let pts = from_opt(r.u64("unit pts")?);
            let dts = from_opt(r.u64("unit dts")?);
            let duration = from_opt(r.u64("unit duration")?);
            let uflags = r.u32("unit flags")?;
            if uflags & !UNIT_FLAGS_KNOWN != 0 {
                return Err(CrumbError::Malformed("unknown unit flags"));
            }
            let len = r.u32("unit payload length")? as usize;
            let payload = r.bytes(len, "unit payload")?.to_vec();
            units.push(Unit {
                track,
                decode_index,
                pts,
                dts,
                duration,
                flags: uflags,
                payload,
            });
        }
        if r.remaining() != 0 {
            return Err(CrumbError::Malformed("trailing bytes after the last unit"));
        }
        Ok(Crumb {
            segment: SegmentInfo {
                seq,
                codec,
                crumb_count,
                au_count,
                pts,
                duration,
                gops,
                starts_with_keyframe: flags & SEGMENT_FLAG_KEYFRAME_START != 0,
            },
            index,
            layer,
            caps,
            units,
        })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CrumbError> {
        if n > self.remaining() {
            return Err(CrumbError::Truncated(what));
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// Reserved bytes: must be zero in version 1.
    fn reserved_zero(&mut self, n: usize) -> Result<(), CrumbError> {
        if self.bytes(n, "reserved")?.iter().any(|&b| b != 0) {
            return Err(CrumbError::Malformed("reserved bytes are not zero"));
        }
        Ok(())
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CrumbError> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, CrumbError> {
        Ok(u16::from_be_bytes(
            self.bytes(2, what)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, CrumbError> {
        Ok(u32::from_be_bytes(
            self.bytes(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, CrumbError> {
        Ok(u64::from_be_bytes(
            self.bytes(8, what)?.try_into().expect("8 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Crumb {
        Crumb {
            segment: SegmentInfo {
                seq: 78,
                codec: Codec::H264,
                crumb_count: 3,
                au_count: 4,
                pts: Some(1_000),
                duration: 2_000_000_000,
                gops: 2,
                starts_with_keyframe: true,
            },
            index: 1,
            layer: LayerId::BASE,
            caps: Some("video/x-h264, stream-format=(string)byte-stream".into()),
            units: vec![
                Unit {
                    track: 0,
                    decode_index: 0,
                    pts: Some(1_000),
                    dts: None,
                    duration: Some(33),
                    flags: UNIT_FLAG_KEYFRAME,
                    payload: vec![0, 0, 0, 1, 0x67],
                },
                Unit {
                    track: 0,
                    decode_index: 2,
                    pts: None,
                    dts: Some(5),
                    duration: None,
                    flags: 0,
                    payload: vec![],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let c = sample();
        assert_eq!(Crumb::decode(&c.encode()).unwrap(), c);
        let mut c2 = sample();
        c2.index = 2;
        c2.caps = None;
        c2.layer = LayerId::new(1, 0, 0);
        assert_eq!(Crumb::decode(&c2.encode()).unwrap(), c2);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            assert!(
                Crumb::decode(&bytes[..n]).is_err(),
                "prefix of {n} bytes accepted"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_an_error() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(
                    Crumb::decode(&b).is_err(),
                    "flip at byte {i} bit {bit} accepted"
                );
            }
        }
    }

    fn reseal(mut body: Vec<u8>) -> Vec<u8> {
        let n = body.len() - TRAILER_LEN;
        body.truncate(n);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        body
    }

    #[test]
    fn checked_fields_with_valid_checksum() {
        let good = sample().encode();
        let mut v = good.clone();
        v[4] = 9;
        assert_eq!(Crumb::decode(&v), Err(CrumbError::UnsupportedVersion(9)));
        let mut v = good.clone();
        v[0] = b'X';
        assert_eq!(Crumb::decode(&v), Err(CrumbError::BadMagic));
        // crumb index 0
        let mut v = good.clone();
        v[32] = 0;
        v[33] = 0;
        assert!(matches!(
            Crumb::decode(&reseal(v)),
            Err(CrumbError::Malformed(_))
        ));
        // unknown codec
        let mut v = good.clone();
        v[5] = 99;
        assert!(matches!(
            Crumb::decode(&reseal(v)),
            Err(CrumbError::Malformed(_))
        ));
        // huge unit count must not allocate
        let mut v = good.clone();
        v[48..52].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Crumb::decode(&reseal(v)).is_err());
        // decode index beyond au_count
        let mut v = good;
        v[44..48].copy_from_slice(&1u32.to_be_bytes());
        assert!(matches!(
            Crumb::decode(&reseal(v)),
            Err(CrumbError::Malformed(_))
        ));
    }

    /// Fuzz finding (crumb_decode): a byte string with a non-zero reserved byte or an
    /// unknown segment flag, resealed with a valid checksum, decoded to a crumb whose
    /// encoding differs from the input. Each such field is now refused.
    #[test]
    fn only_the_canonical_encoding_is_accepted() {
        let good = sample().encode();
        // Offsets: reserved 7, 39, 42..44; segment flags 6.
        for (at, value) in [(7, 41), (39, 1), (42, 0x80), (43, 1), (6, 0x04), (6, 0x80)] {
            let mut v = good.clone();
            v[at] |= value;
            assert!(
                matches!(Crumb::decode(&reseal(v)), Err(CrumbError::Malformed(_))),
                "byte {at} |= {value:#x} accepted"
            );
        }
        assert_eq!(Crumb::decode(&good).unwrap().encode(), good);
    }
}
