// SPDX-License-Identifier: MPL-2.0
//! The sans-IO core: every algorithm of crumbs as plain Rust, driven by explicit inputs.
//! No GStreamer, no tokio, no sockets in here, so the elements and a swarm simulator
//! run the very same code.

pub mod api;
pub mod audio;
pub mod av1;
pub mod channel;
pub mod classify;
pub mod client;
pub mod crumb;
pub mod feedback;
pub mod h264;
pub mod h265;
pub mod nal;
pub mod partition;
pub mod playout;
pub mod rate;
pub mod reassembly;
pub mod roster;
pub mod scheduler;
pub mod seed_load;
pub mod segmenter;
pub mod sole_source;
pub mod spool;
pub mod time;
pub mod tracker;
pub mod uplink;

use std::ops::Range;

/// The codecs svcsegmenter understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 Annex B byte-stream, one access unit per buffer (AVC and SVC Annex G).
    H264,
    /// H.265 Annex B byte-stream, one access unit per buffer.
    H265,
    /// AV1 low-overhead OBU stream, one temporal unit per buffer (as av1parse outputs it).
    Av1,
    /// VP8, one frame per buffer; temporal layer from the encoder's GstVP8Meta.
    Vp8,
    /// VP9, one frame per buffer; one layer (vp9enc attaches no layer meta).
    Vp9,
}

impl Codec {
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Av1 => "av1",
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            Codec::H264 => 1,
            Codec::H265 => 2,
            Codec::Av1 => 3,
            Codec::Vp8 => 4,
            Codec::Vp9 => 5,
        }
    }

    pub fn from_byte(b: u8) -> Option<Codec> {
        Some(match b {
            1 => Codec::H264,
            2 => Codec::H265,
            3 => Codec::Av1,
            4 => Codec::Vp8,
            5 => Codec::Vp9,
            _ => return None,
        })
    }
}

/// A scalable layer as the codec signals it. Layers order as (spatial, quality,
/// temporal) ascending: a lower layer never references a higher one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerId {
    /// H.264 SVC dependency_id, H.265 nuh_layer_id, AV1 spatial_id.
    pub spatial: u8,
    /// H.264 SVC quality_id (0 elsewhere).
    pub quality: u8,
    /// temporal_id (H.264 SVC/prefix NAL, H.265, AV1, VP8 meta); for H.264 AVC without
    /// prefix NALs, 1 marks non-reference pictures.
    pub temporal: u8,
}

impl LayerId {
    pub const BASE: LayerId = LayerId {
        spatial: 0,
        quality: 0,
        temporal: 0,
    };

    pub fn new(spatial: u8, quality: u8, temporal: u8) -> Self {
        LayerId {
            spatial,
            quality,
            temporal,
        }
    }

    /// The layer a crumb is cut for. Temporal sub-layers are separate crumb layers only
    /// inside the lowest spatial/quality layer: a spatial or quality enhancement layer
    /// keeps all its temporal sub-layers together. Why: with (S1,T0) kept and (S1,T1)
    /// dropped, the enhancement picture would come and go every other frame; av1dec
    /// refuses a spatial layer that returns mid-GOP and openh264dec would switch
    /// resolution per access unit. Cut this way, a prefix of crumbs keeps a spatial
    /// layer from the Segment's key frame up to one point, then drops it for the rest
    /// of the Segment: always decodable.
    pub fn crumb_layer(self) -> LayerId {
        if self.spatial == 0 && self.quality == 0 {
            self
        } else {
            LayerId::new(self.spatial, self.quality, 0)
        }
    }

    /// True for a spatial or quality enhancement layer (not a temporal one).
    pub fn is_spatial_or_quality_enhancement(self) -> bool {
        self.spatial > 0 || self.quality > 0
    }
}

impl std::fmt::Display for LayerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S{}Q{}T{}", self.spatial, self.quality, self.temporal)
    }
}

/// What one part of an access unit is needed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartClass {
    /// Parameter sets, sequence headers, SEI, AUD, temporal delimiters: crumb 1.
    Header,
    /// Needed only when a spatial or quality enhancement layer is decoded (H.264 subset
    /// SPS, NAL 15): kept in crumb 1 but left out of the output when only lower layers
    /// remain, because its presence makes parsers advertise a scalable profile that
    /// stock decoders refuse.
    EnhancementHeader,
    /// Coded picture data of one layer.
    Layer(LayerId),
}

/// One contiguous part of an access unit and what it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub class: PartClass,
    pub range: Range<usize>,
}

/// The result of classifying one access unit (one buffer) of a codec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassifiedAu {
    /// Parts covering the whole buffer, in buffer order; adjacent parts of the same
    /// class are merged.
    pub parts: Vec<Part>,
    /// The bitstream itself says this access unit starts a GOP (IDR/IRAP, AV1 key frame
    /// with sequence header, VP8/VP9 key frame). `None` when the codec parser cannot
    /// tell, then the buffer flags decide.
    pub keyframe: Option<bool>,
}

/// An error in the coded bitstream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("empty access unit")]
    Empty,
}

pub use time::Timestamp;

/// One access unit entering the segmenter.
#[derive(Clone, Debug)]
pub struct AccessUnit {
    pub data: Vec<u8>,
    pub pts: Timestamp,
    pub dts: Timestamp,
    pub duration: Timestamp,
    pub keyframe: bool,
    pub classified: ClassifiedAu,
}
