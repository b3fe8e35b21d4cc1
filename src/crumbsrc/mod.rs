// SPDX-License-Identifier: MPL-2.0
//! `crumbsrc`: the client. Joins a channel by its URL, races Segments against their
//! deadlines, adapts how many crumbs it fetches, seeds what it has to other clients,
//! and outputs the longest complete prefix of each Segment as a live stream.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct CrumbSrc(ObjectSubclass<imp::CrumbSrc>) @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "crumbsrc",
        gst::Rank::NONE,
        CrumbSrc::static_type(),
    )
}
