// SPDX-License-Identifier: MPL-2.0
//! `crumbsink`: the channel. Torrent Maker, Program Scheduler, super seed, tracker and
//! HTTP API in one sink: `... ! svcsegmenter ! crumbsink channel=live` is a live
//! channel any number of crumbsrc clients (or standard BitTorrent clients) can join.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct CrumbSink(ObjectSubclass<imp::CrumbSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "crumbsink",
        gst::Rank::NONE,
        CrumbSink::static_type(),
    )
}
