// SPDX-License-Identifier: MPL-2.0
//! `svcsegmenter`: layered video in, crumbs out (one `application/x-crumb` buffer per
//! crumb). See the crate README for properties and messages.

use gst::glib;
use gst::prelude::*;

mod imp;

/// Name of the custom upstream event that carries the success ratio rho to
/// svcsegmenter (crumbsink sends it once per Segment).
pub const SUCCESS_RATIO_EVENT: &str = "crumbs-success-ratio";

/// Builds the upstream event carrying rho (0.0..=1.0) for Segment `seq`.
pub fn success_ratio_event(rho: f64, seq: u64) -> gst::Event {
    gst::event::CustomUpstream::new(
        gst::Structure::builder(SUCCESS_RATIO_EVENT)
            .field("ratio", rho)
            .field("seq", seq)
            .build(),
    )
}

glib::wrapper! {
    pub struct SvcSegmenter(ObjectSubclass<imp::SvcSegmenter>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "svcsegmenter",
        gst::Rank::NONE,
        SvcSegmenter::static_type(),
    )
}
