// SPDX-License-Identifier: MPL-2.0
//! The crumb format (version 2; version 1 still read): one crumb of one Segment as a
//! self-describing, versioned, bounds-checked byte string. It is what each crumb's torrent carries and
//! what flows between elements as `application/x-crumb`. Layout in `docs/crumb-format.md`.

use super::{Codec, LayerId, Timestamp};

pub const MAGIC: [u8; 4] = *b"CRMB";
/// The version this build writes. Version 2 added the Segment's audio to crumb 1; a
/// crumb without audio is laid out exactly as in version 1.
pub const VERSION: u8 = 2;
/// Versions this build reads.
pub const VERSIONS_READ: [u8; 2] = [1, 2];
const HEADER_LEN: usize = 56;
const UNIT_HEADER_LEN: usize = 40;
const TRAILER_LEN: usize = 4;
const NONE: u64 = u64::MAX;
/// Longest caps string accepted; real caps with codec_data stay far below.
pub const MAX_CAPS_LEN: usize = 64 * 1024;

const SEGMENT_FLAG_KEYFRAME_START: u8 = 1;
const SEGMENT_FLAG_HAS_CAPS: u8 = 2;
/// Version 2: the crumb carries audio caps and audio units (crumb 1 only).
const SEGMENT_FLAG_HAS_AUDIO: u8 = 4;
const SEGMENT_FLAGS_KNOWN_V1: u8 = SEGMENT_FLAG_KEYFRAME_START | SEGMENT_FLAG_HAS_CAPS;
const SEGMENT_FLAGS_KNOWN: u8 = SEGMENT_FLAGS_KNOWN_V1 | SEGMENT_FLAG_HAS_AUDIO;

/// Track id of the video's units.
pub const TRACK_VIDEO: u32 = 0;
/// Track id of the audio's units (version 2, crumb 1 only).
pub const TRACK_AUDIO: u32 = 1;

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
    /// Track id: `TRACK_VIDEO`, or `TRACK_AUDIO` in a version 2 crumb with audio.
    pub track: u32,
    /// Index of the access unit in the Segment, in decode order; for an audio unit,
    /// its position among the Segment's audio frames.
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
    /// Format version the crumb is (or is to be) written in: `VERSION` for new
    /// crumbs; a decoded version 1 crumb keeps 1 so that it re-encodes to its bytes.
    pub version: u8,
    pub segment: SegmentInfo,
    /// 1-based crumb index within the Segment.
    pub index: u16,
    /// The crumb layer (see `LayerId::crumb_layer`).
    pub layer: LayerId,
    /// The stream's caps as a string; crumb 1 always carries them.
    pub caps: Option<String>,
    /// Caps of the channel's audio, when the Segment carries audio (crumb 1 only). Its
    /// frames are the units of track `TRACK_AUDIO`, after the video's.
    pub audio_caps: Option<String>,
    pub units: Vec<Unit>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrumbError {
    #[error("not a crumb (bad magic)")]
    BadMagic,
    #[error("crumb format version {0} is not supported (this build reads versions 1 and 2)")]
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

    /// Bytes of the Segment's audio frames in this crumb.
    pub fn audio_len(&self) -> usize {
        self.audio_units().map(|u| u.payload.len()).sum()
    }

    /// The audio frames, in order (none without audio caps: a version 1 crumb's
    /// units are all video, whatever their track field).
    pub fn audio_units(&self) -> impl Iterator<Item = &Unit> {
        let audio = self.audio_caps.is_some();
        self.units
            .iter()
            .filter(move |u| audio && u.track == TRACK_AUDIO)
    }

    /// Whether a unit of this crumb is video (every unit of a crumb without audio).
    fn is_video(&self) -> impl Fn(&Unit) -> bool + use<> {
        let audio = self.audio_caps.is_some();
        move |u| !audio || u.track != TRACK_AUDIO
    }

    /// The video's units (all units of a crumb without audio).
    pub fn video_units(&self) -> impl Iterator<Item = &Unit> {
        let video = self.is_video();
        self.units.iter().filter(move |u| video(u))
    }

    /// The video's units, taken out of the crumb (the rest is dropped with it).
    pub fn into_video_units(self) -> impl Iterator<Item = Unit> {
        let video = self.is_video();
        self.units.into_iter().filter(move |u| video(u))
    }

    /// Serialises the crumb in `self.version` (a version 1 crumb has no audio).
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.version == VERSION || self.audio_caps.is_none());
        let caps = self.caps.as_deref().unwrap_or("").as_bytes();
        let audio_caps = self.audio_caps.as_deref().map(str::as_bytes);
        let len = HEADER_LEN
            + caps.len()
            + audio_caps.map_or(0, |a| 4 + a.len())
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
        if self.audio_caps.is_some() {
            flags |= SEGMENT_FLAG_HAS_AUDIO;
        }
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[self.version, s.codec.to_byte(), flags, 0]);
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
        if let Some(a) = audio_caps {
            out.extend_from_slice(&(a.len() as u32).to_be_bytes());
            out.extend_from_slice(a);
        }
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

    /// The format version of a crumb's bytes, after its magic.
    fn version_of(data: &[u8]) -> Result<u8, CrumbError> {
        if data.len() < 4 || data[..4] != MAGIC {
            return Err(CrumbError::BadMagic);
        }
        if data.len() < 5 {
            return Err(CrumbError::Truncated("header"));
        }
        let version = data[4];
        if !VERSIONS_READ.contains(&version) {
            return Err(CrumbError::UnsupportedVersion(version));
        }
        Ok(version)
    }

    /// Reads a crumb, checking every length, index and the checksum.
    pub fn decode(data: &[u8]) -> Result<Crumb, CrumbError> {
        let version = Self::version_of(data)?;
        if data.len() < HEADER_LEN + TRAILER_LEN {
            return Err(CrumbError::Truncated("header"));
        }
        let (body, trailer) = data.split_at(data.len() - TRAILER_LEN);
        let crc = u32::from_be_bytes(trailer.try_into().expect("4 bytes"));
        if crc32fast::hash(body) != crc {
            return Err(CrumbError::Checksum);
        }
        Self::decode_body(body, version, false).map(|(crumb, _, _)| crumb)
    }

    /// Reads the beginning of a crumb of index 2 or more, cut anywhere after its
    /// header: the crumb with the units that decode from `data`, and how many bytes
    /// of `data` they take (header included). Units are in decode order, so the whole
    /// ones in `data` decode as far as the crumb's layer may stop: after any access
    /// unit for a temporal layer, only before a key frame for a spatial or quality
    /// layer (the cut points of `partition`: decoders resync such a layer only at a
    /// key frame), so there the units from the last key frame in `data` on are
    /// dropped unless they end where a key frame begins. No checksum (it is at the
    /// end): the caller vouches for the bytes, as a BitTorrent client does for its
    /// verified pieces. Every field read is checked as [`Crumb::decode`] checks it. A
    /// crumb 1 is refused: the headers and the base layer are whole or nothing.
    pub fn decode_prefix(data: &[u8]) -> Result<(Crumb, usize), CrumbError> {
        let version = Self::version_of(data)?;
        let (mut crumb, mut used, runs_whole) = Self::decode_body(data, version, true)?;
        if !runs_whole && crumb.layer.is_spatial_or_quality_enhancement() {
            let keep = crumb
                .units
                .iter()
                .rposition(|u| u.flags & UNIT_FLAG_KEYFRAME != 0)
                .unwrap_or(0);
            let dropped: usize = crumb
                .units
                .drain(keep..)
                .map(|u| UNIT_HEADER_LEN + u.payload.len())
                .sum();
            used -= dropped;
        }
        Ok((crumb, used))
    }

    /// The fields and units of `body` (a crumb without its trailer; with `partial`, any
    /// prefix of a crumb's bytes, the units read as far as they are whole), the bytes
    /// they take, and whether the units read end a key frame's run (all of them read,
    /// or the first one missing is a key frame).
    fn decode_body(
        body: &[u8],
        version: u8,
        partial: bool,
    ) -> Result<(Crumb, usize, bool), CrumbError> {
        let mut r = Reader { data: body, pos: 5 };
        let codec =
            Codec::from_byte(r.u8("codec")?).ok_or(CrumbError::Malformed("unknown codec"))?;
        let flags = r.u8("flags")?;
        // Unknown flags and non-zero reserved bytes are refused, not ignored: a reader
        // accepting them would take several byte strings for one crumb, while a crumb's
        // torrent info-hash is computed over its exact bytes. Version 1 has one encoding
        // per crumb; a later version that gives them a meaning bumps VERSION.
        let known = if version == 1 {
            SEGMENT_FLAGS_KNOWN_V1
        } else {
            SEGMENT_FLAGS_KNOWN
        };
        if flags & !known != 0 {
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
        if partial && index == 1 {
            return Err(CrumbError::Malformed("crumb 1 read in part"));
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
        let audio_caps = if flags & SEGMENT_FLAG_HAS_AUDIO != 0 {
            if index != 1 {
                return Err(CrumbError::Malformed("audio outside crumb 1"));
            }
            let len = r.u32("audio caps length")? as usize;
            if len > MAX_CAPS_LEN {
                return Err(CrumbError::Malformed("audio caps too long"));
            }
            Some(
                std::str::from_utf8(r.bytes(len, "audio caps")?)
                    .map_err(|_| CrumbError::Malformed("audio caps are not UTF-8"))?
                    .to_owned(),
            )
        } else {
            None
        };
        // Every unit needs its header: bound the allocation by what the input can hold.
        let room = r.remaining() / UNIT_HEADER_LEN;
        if unit_count > room && !partial {
            return Err(CrumbError::Truncated("units"));
        }
        let mut units = Vec::with_capacity(unit_count.min(room));
        let mut last_index = None;
        let mut audio_frames = 0u32;
        let mut used = r.pos;
        let mut cut_at_key_frame = false;
        for _ in 0..unit_count {
            if partial && r.remaining() < UNIT_HEADER_LEN {
                break;
            }
            let track = r.u32("unit track")?;
            let decode_index = r.u32("unit decode index")?;
            // Version 1 left the track field free (writers put 0); version 2 knows
            // two tracks, the video's units first, then the audio frames numbered
            // 0, 1, 2, ... with no flags: one encoding per crumb.
            let audio = version >= 2 && track == TRACK_AUDIO && audio_caps.is_some();
            if audio {
                if decode_index != audio_frames {
                    return Err(CrumbError::Malformed("audio frames out of order"));
                }
                audio_frames += 1;
            } else {
                if version >= 2 && track != TRACK_VIDEO {
                    return Err(CrumbError::Malformed("unknown unit track"));
                }
                if audio_frames > 0 {
                    return Err(CrumbError::Malformed("video unit after audio units"));
                }
                if decode_index >= au_count {
                    return Err(CrumbError::Malformed(
                        "unit decode index outside the Segment",
                    ));
                }
                if last_index.is_some_and(|l| decode_index < l) {
                    return Err(CrumbError::Malformed("units out of decode order"));
                }
                last_index = Some(decode_index);
            }
            let pts = from_opt(r.u64("unit pts")?);
            let dts = from_opt(r.u64("unit dts")?);
            let duration = from_opt(r.u64("unit duration")?);
            let flags = r.u32("unit flags")?;
            if audio && flags != 0 {
                return Err(CrumbError::Malformed("audio unit with flags"));
            }
            if flags & !UNIT_FLAGS_KNOWN != 0 {
                return Err(CrumbError::Malformed("unknown unit flags"));
            }
            let len = r.u32("unit payload length")? as usize;
            if partial && len > r.remaining() {
                // Its header says whether the units before it end a run.
                cut_at_key_frame = flags & UNIT_FLAG_KEYFRAME != 0;
                break;
            }
            let payload = r.bytes(len, "unit payload")?.to_vec();
            used = r.pos;
            units.push(Unit {
                track,
                decode_index,
                pts,
                dts,
                duration,
                flags,
                payload,
            });
        }
        if r.remaining() != 0 && !partial {
            return Err(CrumbError::Malformed("trailing bytes after the last unit"));
        }
        let crumb = Crumb {
            version,
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
            audio_caps,
            units,
        };
        let runs_whole = crumb.units.len() == unit_count || cut_at_key_frame;
        Ok((crumb, used, runs_whole))
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

    /// Reserved bytes: must be zero (versions 1 and 2).
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
            version: VERSION,
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
            audio_caps: None,
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
        for (at, value) in [(7, 41), (39, 1), (42, 0x80), (43, 1), (6, 0x08), (6, 0x80)] {
            let mut v = good.clone();
            v[at] |= value;
            assert!(
                matches!(Crumb::decode(&reseal(v)), Err(CrumbError::Malformed(_))),
                "byte {at} |= {value:#x} accepted"
            );
        }
        assert_eq!(Crumb::decode(&good).unwrap().encode(), good);
    }

    fn with_audio() -> Crumb {
        let mut c = sample();
        c.audio_caps = Some("audio/x-opus, channel-mapping-family=(int)0".into());
        for i in 0..3u32 {
            c.units.push(Unit {
                track: TRACK_AUDIO,
                decode_index: i,
                pts: Some(1_000 + u64::from(i) * 20),
                dts: None,
                duration: Some(20),
                flags: 0,
                payload: vec![0xfc, i as u8],
            });
        }
        c
    }

    #[test]
    fn audio_round_trip() {
        let c = with_audio();
        let bytes = c.encode();
        assert_eq!(bytes[4], 2);
        assert_eq!(bytes[6], 0x07, "KEYFRAME_START | HAS_CAPS | HAS_AUDIO");
        let back = Crumb::decode(&bytes).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.audio_units().count(), 3);
        assert_eq!(back.audio_len(), 6);
        // Audio with no frame in this Segment still names the track.
        let mut empty = with_audio();
        empty.units.retain(|u| u.track == TRACK_VIDEO);
        assert_eq!(Crumb::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn audio_truncations_and_bit_flips_are_errors() {
        let bytes = with_audio().encode();
        for n in 0..bytes.len() {
            assert!(Crumb::decode(&bytes[..n]).is_err(), "prefix {n} accepted");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Crumb::decode(&b).is_err(), "flip at byte {i} accepted");
        }
    }

    /// A video-only crumb is the version 1 layout with version byte 2; version 1
    /// crumbs still read and re-encode to their bytes.
    #[test]
    fn version_1_still_reads() {
        let v2 = sample().encode();
        let mut v1 = v2.clone();
        v1[4] = 1;
        let v1 = reseal(v1);
        let c = Crumb::decode(&v1).unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.encode(), v1);
        assert_eq!(Crumb { version: 2, ..c }.encode(), v2);
        // Version 1 knows no audio flag.
        let mut a = with_audio().encode();
        a[4] = 1;
        assert!(matches!(
            Crumb::decode(&reseal(a)),
            Err(CrumbError::Malformed(_))
        ));
        let mut v3 = v2;
        v3[4] = 3;
        let err = Crumb::decode(&v3).unwrap_err();
        assert_eq!(err, CrumbError::UnsupportedVersion(3));
        assert!(err.to_string().contains("versions 1 and 2"), "{err}");
    }

    #[test]
    fn audio_rules_are_checked() {
        // Audio only in crumb 1.
        let mut c = with_audio();
        c.index = 2;
        assert_eq!(
            Crumb::decode(&c.encode()),
            Err(CrumbError::Malformed("audio outside crumb 1"))
        );
        // Frames numbered 0, 1, 2, ...
        let mut c = with_audio();
        c.units[3].decode_index = 2;
        assert!(matches!(
            Crumb::decode(&c.encode()),
            Err(CrumbError::Malformed(_))
        ));
        // No flags on audio.
        let mut c = with_audio();
        c.units[2].flags = UNIT_FLAG_KEYFRAME;
        assert!(Crumb::decode(&c.encode()).is_err());
        // Video after audio.
        let mut c = with_audio();
        let v = c.units.remove(0);
        c.units.push(v);
        assert!(Crumb::decode(&c.encode()).is_err());
        // Unknown track in version 2; audio track without audio caps.
        let mut c = sample();
        c.units[0].track = 7;
        assert!(Crumb::decode(&c.encode()).is_err());
        let mut c = sample();
        c.units[0].track = TRACK_AUDIO;
        assert!(Crumb::decode(&c.encode()).is_err());
    }

    /// An enhancement crumb of `layer` with units of 100, 200 and 300 bytes at decode
    /// indices 0, 1, 2, the third a key frame.
    fn enhancement(layer: LayerId) -> Crumb {
        let mut c = sample();
        c.index = 2;
        c.caps = None;
        c.layer = layer;
        c.segment.au_count = 3;
        c.units = (0..3u32)
            .map(|i| Unit {
                track: TRACK_VIDEO,
                decode_index: i,
                pts: Some(u64::from(i) * 33),
                dts: None,
                duration: Some(33),
                flags: if i == 2 { UNIT_FLAG_KEYFRAME } else { 0 },
                payload: vec![i as u8; 100 * (i as usize + 1)],
            })
            .collect();
        c
    }

    #[test]
    fn a_prefix_gives_its_whole_units() {
        let c = enhancement(LayerId::new(0, 0, 1));
        let bytes = c.encode();
        let header = bytes.len() - 4 - 3 * 40 - 600;
        // Every cut: the units whole in it, and the bytes they take.
        for n in header..=bytes.len() {
            let (p, used) = Crumb::decode_prefix(&bytes[..n]).unwrap();
            let whole = [140, 240, 340]
                .iter()
                .scan(header, |end, u| {
                    *end += u;
                    Some(*end)
                })
                .take_while(|end| *end <= n)
                .count();
            assert_eq!(p.units, c.units[..whole], "cut at {n}");
            assert_eq!(used, header + [0, 140, 380, 720][whole], "cut at {n}");
        }
        // The whole crumb reads as itself.
        assert_eq!(Crumb::decode_prefix(&bytes).unwrap().0, c);
        // Shorter than the header: an error, never a panic.
        for n in 0..header {
            assert!(Crumb::decode_prefix(&bytes[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn a_spatial_layer_stops_only_before_a_key_frame() {
        let c = enhancement(LayerId::new(1, 0, 0));
        let bytes = c.encode();
        let header = bytes.len() - 4 - 3 * 40 - 600;
        // Two whole units of the three, the third (a key frame, its header read) cut:
        // both kept; with only part of its header, nothing says their run ended.
        let (p, used) = Crumb::decode_prefix(&bytes[..header + 380 + 100]).unwrap();
        assert_eq!((p.units.len(), used), (2, header + 380));
        let (p, used) = Crumb::decode_prefix(&bytes[..header + 380 + 20]).unwrap();
        assert_eq!((p.units.len(), used), (0, header));
        // All three whole but the trailer missing: the crumb is whole.
        let (p, _) = Crumb::decode_prefix(&bytes[..bytes.len() - 4]).unwrap();
        assert_eq!(p.units, c.units);
        // A key frame that starts a run whose end is missing is dropped with it.
        let mut c = enhancement(LayerId::new(1, 0, 0));
        c.units[0].flags = UNIT_FLAG_KEYFRAME;
        c.units[1].flags = UNIT_FLAG_KEYFRAME;
        c.units[2].flags = 0;
        let bytes = c.encode();
        let (p, used) = Crumb::decode_prefix(&bytes[..header + 380 + 100]).unwrap();
        assert_eq!((p.units.len(), used), (1, header + 140));
        // A temporal layer keeps every whole unit.
        let c = enhancement(LayerId::new(0, 0, 2));
        let bytes = c.encode();
        let (p, _) = Crumb::decode_prefix(&bytes[..header + 380 + 20]).unwrap();
        assert_eq!(p.units.len(), 2);
    }

    #[test]
    fn a_crumb_1_or_a_forged_prefix_is_refused() {
        let bytes = sample().encode();
        assert_eq!(
            Crumb::decode_prefix(&bytes[..bytes.len() - 10]).map(|(_, u)| u),
            Err(CrumbError::Malformed("crumb 1 read in part"))
        );
        // The fields read are checked: units out of decode order are refused.
        let mut c = enhancement(LayerId::new(0, 0, 1));
        c.units.swap(0, 1);
        let bytes = c.encode();
        assert!(Crumb::decode_prefix(&bytes[..bytes.len() - 300]).is_err());
        // A unit claiming 4 GB ends the prefix, it allocates nothing.
        let c = enhancement(LayerId::new(0, 0, 1));
        let mut bytes = c.encode();
        let header = bytes.len() - 4 - 3 * 40 - 600;
        bytes[header + 36..header + 40].copy_from_slice(&u32::MAX.to_be_bytes());
        let (p, used) = Crumb::decode_prefix(&bytes).unwrap();
        assert_eq!((p.units.len(), used), (0, header));
    }
}
