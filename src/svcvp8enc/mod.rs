// SPDX-License-Identifier: MPL-2.0
//! `svcvp8enc`: vp8enc set up for temporal layers from one gst-launch line.
//!
//! In GStreamer 1.22 vp8enc's temporal-scalability array properties cannot be set
//! from gst-launch (GValueArray has no deserializer there). This bin holds a vp8enc
//! named `encoder` (reach any of its properties as `encoder::NAME=VALUE`) and sets the
//! layer pattern, reference flags and per-layer bitrates from two plain properties.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct SvcVp8Enc(ObjectSubclass<imp::SvcVp8Enc>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "svcvp8enc",
        gst::Rank::NONE,
        SvcVp8Enc::static_type(),
    )
}

/// The temporal pattern for `layers` layers: (layer id per frame, rate decimator per
/// layer, reference flags per frame). Reference flags make every layer refer only to
/// itself and lower layers, and keep entropy updates in the base layer, so a decoder
/// fed only layers 0..k never misses a reference.
pub fn temporal_pattern(layers: u32) -> (Vec<i32>, Vec<i32>, Vec<&'static str>) {
    // LAST = layer 0, GOLDEN = layer 1; the top layer updates nothing.
    const BASE: &str = "no-ref-golden+no-ref-alt+no-upd-golden+no-upd-alt";
    const MIDDLE: &str = "no-ref-alt+no-upd-last+no-upd-alt+no-upd-entropy";
    const TOP: &str = "no-upd-last+no-upd-golden+no-upd-alt+no-upd-entropy";
    match layers {
        0 | 1 => (vec![0], vec![1], vec![]),
        2 => (vec![0, 1], vec![2, 1], vec![BASE, TOP]),
        _ => (
            vec![0, 2, 1, 2],
            vec![4, 2, 1],
            vec![BASE, TOP, MIDDLE, TOP],
        ),
    }
}
