// SPDX-License-Identifier: MPL-2.0
//! `crumbjoin`: crumbs in, the reassembled stream out. `max-crumbs` keeps a prefix.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct CrumbJoin(ObjectSubclass<imp::CrumbJoin>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "crumbjoin",
        gst::Rank::NONE,
        CrumbJoin::static_type(),
    )
}
