// SPDX-License-Identifier: MPL-2.0
//! `svcsegmenter`: layered video in, crumbs out (one `application/x-crumb` buffer per
//! crumb). See the crate README for properties and messages.

use gst::glib;
use gst::prelude::*;

mod imp;

/// The success-ratio event svcsegmenter takes (defined with the other shared helpers).
pub use crate::element::{SUCCESS_RATIO_EVENT, success_ratio_event};

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
