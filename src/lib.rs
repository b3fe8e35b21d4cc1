// SPDX-License-Identifier: MPL-2.0
//! crumbs: live video over BitTorrent with layered (SVC) video, as GStreamer elements.
//!
//! `core` holds every algorithm as plain Rust (sans-IO, injected clock); the element
//! folders are GStreamer glue only.

use gst::glib;

pub mod channel;
pub mod client;
pub mod core;
pub mod crumbjoin;
pub mod crumbsink;
pub mod crumbsrc;
pub mod element;
pub mod fuzzing;
pub mod interface;
pub mod p2p;
mod properties;
pub mod sim;
pub mod spool;
pub mod svcsegmenter;
pub mod svcvp8enc;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    p2p::log::install();
    svcsegmenter::register(plugin)?;
    crumbjoin::register(plugin)?;
    crumbsink::register(plugin)?;
    crumbsrc::register(plugin)?;
    svcvp8enc::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    crumbs,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
