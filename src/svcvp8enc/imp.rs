// SPDX-License-Identifier: MPL-2.0
//! GStreamer glue of svcvp8enc: a bin around vp8enc.

use std::sync::Mutex;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::sync::LazyLock;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "svcvp8enc",
        gst::DebugColorFlags::empty(),
        Some("VP8 with temporal layers"),
    )
});

const DEFAULT_LAYERS: u32 = 3;
/// The paper's ladder: base 128 kbit/s, enhancement 1 512 kbit/s, enhancement 2 2048 kbit/s.
const DEFAULT_LAYER_BITRATES: [i32; 3] = [128, 512, 2048];
const DEFAULT_KEYFRAME_MAX_DIST: i32 = 60;

#[derive(Debug, Clone)]
struct Settings {
    layers: u32,
    layer_bitrates: Vec<i32>,
    keyframe_max_dist: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            layers: DEFAULT_LAYERS,
            layer_bitrates: DEFAULT_LAYER_BITRATES.to_vec(),
            keyframe_max_dist: DEFAULT_KEYFRAME_MAX_DIST,
        }
    }
}

pub struct SvcVp8Enc {
    encoder: gst::Element,
    settings: Mutex<Settings>,
}

impl SvcVp8Enc {
    fn configure(&self) {
        let s = self.settings.lock().unwrap().clone();
        let layers = s.layers.clamp(1, 3);
        let (ids, decimators, flags) = super::temporal_pattern(layers);
        // Per-layer kbit/s to vp8enc's cumulative bits/s.
        let mut cumulative = Vec::new();
        let mut sum = 0i32;
        for k in 0..layers as usize {
            let kbps = s
                .layer_bitrates
                .get(k)
                .copied()
                .unwrap_or_else(|| *s.layer_bitrates.last().unwrap_or(&512));
            sum = sum.saturating_add(kbps.saturating_mul(1000));
            cumulative.push(sum);
        }
        let enc = &self.encoder;
        enc.set_property("keyframe-max-dist", s.keyframe_max_dist);
        enc.set_property("target-bitrate", sum);
        enc.set_property("temporal-scalability-number-layers", layers as i32);
        // Always set the whole pattern: a bin configured for 3 layers and then set to
        // 1 would otherwise keep the 3-layer ids and keep marking frames T1/T2.
        {
            let arr = |v: &[i32]| glib::ValueArray::new(v.iter().map(|x| x.to_value()));
            enc.set_property("temporal-scalability-periodicity", ids.len() as i32);
            enc.set_property("temporal-scalability-layer-id", arr(&ids));
            enc.set_property("temporal-scalability-rate-decimator", arr(&decimators));
            enc.set_property("temporal-scalability-target-bitrate", arr(&cumulative));
            enc.set_property_from_str(
                "temporal-scalability-layer-flags",
                &format!("<{}>", flags.join(",")),
            );
            // vp8enc indexes this array modulo its length: it must not stay empty.
            let sync = vec!["false"; ids.len()].join(",");
            enc.set_property_from_str(
                "temporal-scalability-layer-sync-flags",
                &format!("<{sync}>"),
            );
        }
        gst::debug!(
            CAT,
            imp = self,
            "{layers} layers, cumulative bitrates {cumulative:?} bit/s"
        );
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SvcVp8Enc {
    const NAME: &'static str = "GstSvcVp8Enc";
    type Type = super::SvcVp8Enc;
    type ParentType = gst::Bin;

    fn with_class(_klass: &Self::Class) -> Self {
        let encoder = gst::ElementFactory::make("vp8enc")
            .name("encoder")
            .property("deadline", 1i64)
            .property_from_str("end-usage", "cbr")
            .build()
            .expect("vp8enc (gst-plugins-good) is needed by svcvp8enc");
        SvcVp8Enc {
            encoder,
            settings: Mutex::new(Settings::default()),
        }
    }
}

impl ObjectImpl for SvcVp8Enc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("layers")
                    .nick("Temporal layers")
                    .blurb("Number of temporal layers (1-3); 3 uses the 0,2,1,2 pattern at 1/4, 1/2 and full frame rate")
                    .minimum(1)
                    .maximum(3)
                    .default_value(DEFAULT_LAYERS)
                    .mutable_ready()
                    .build(),
                gst::ParamSpecArray::builder("layer-bitrates")
                    .nick("Layer bitrates")
                    .blurb("Bitrate of each layer on its own in kbit/s, base first, e.g. \"<128,512,2048>\" (the last value repeats for missing layers)")
                    .element_spec(&glib::ParamSpecInt::builder("bitrate").minimum(1).maximum(1_000_000).default_value(512).build())
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("keyframe-max-dist")
                    .nick("Key frame distance")
                    .blurb("Most frames between key frames (the GOP length svcsegmenter cuts at)")
                    .minimum(1)
                    .maximum(i32::MAX)
                    .default_value(DEFAULT_KEYFRAME_MAX_DIST)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        {
            let mut s = self.settings.lock().unwrap();
            match pspec.name() {
                "layers" => s.layers = value.get().expect("type checked upstream"),
                "layer-bitrates" => {
                    let arr = value.get::<gst::Array>().expect("type checked upstream");
                    let v: Vec<i32> = arr
                        .iter()
                        .filter_map(|v| v.get::<i32>().ok())
                        .filter(|v| *v > 0)
                        .collect();
                    if v.is_empty() {
                        gst::warning!(
                            CAT,
                            imp = self,
                            "layer-bitrates needs at least one positive value, keeping {:?}",
                            s.layer_bitrates
                        );
                    } else {
                        s.layer_bitrates = v;
                    }
                }
                "keyframe-max-dist" => {
                    s.keyframe_max_dist = value.get().expect("type checked upstream")
                }
                _ => unimplemented!(),
            }
        }
        self.configure();
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "layers" => s.layers.to_value(),
            "layer-bitrates" => gst::Array::new(s.layer_bitrates.iter().copied()).to_value(),
            "keyframe-max-dist" => s.keyframe_max_dist.to_value(),
            _ => unimplemented!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add(&self.encoder).unwrap();
        let sink = gst::GhostPad::with_target(&self.encoder.static_pad("sink").unwrap()).unwrap();
        let src = gst::GhostPad::with_target(&self.encoder.static_pad("src").unwrap()).unwrap();
        obj.add_pad(&sink).unwrap();
        obj.add_pad(&src).unwrap();
        self.configure();
    }
}

impl GstObjectImpl for SvcVp8Enc {}

impl ElementImpl for SvcVp8Enc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "VP8 encoder with temporal layers",
                "Codec/Encoder/Video",
                "vp8enc with a temporal layer pattern and per-layer bitrates settable from gst-launch (default: the paper's 128/512/2048 kbit/s ladder)",
                "crumbs developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &gst::Caps::builder("video/x-raw")
                        .field("format", "I420")
                        .build(),
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &gst::Caps::builder("video/x-vp8").build(),
                )
                .unwrap(),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BinImpl for SvcVp8Enc {}
