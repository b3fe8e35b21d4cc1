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
pub mod fuzzing;
pub mod p2p;
pub mod sim;
pub mod spool;
pub mod svcsegmenter;
pub mod svcvp8enc;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
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

/// Caps of crumbs between elements (one crumb per buffer, format in docs/crumb-format.md).
pub(crate) fn crumb_caps() -> gst::Caps {
    gst::Caps::builder("application/x-crumb").build()
}

/// A number unique in this process, for private temporary directory names.
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The layered video formats svcsegmenter takes and crumbjoin gives back.
pub(crate) fn video_caps() -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    {
        let caps = caps.get_mut().unwrap();
        for name in ["video/x-h264", "video/x-h265"] {
            caps.append_structure(
                gst::Structure::builder(name)
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            );
        }
        caps.append_structure(
            gst::Structure::builder("video/x-av1")
                .field("stream-format", "obu-stream")
                .field("alignment", "tu")
                .build(),
        );
        caps.append_structure(gst::Structure::new_empty("video/x-vp8"));
        caps.append_structure(gst::Structure::new_empty("video/x-vp9"));
    }
    caps
}

/// An element message one of the elements posts, for the interface description
/// (`plugins/crumbs.json`) and the README.
pub struct MessageDoc {
    pub element: &'static str,
    pub name: &'static str,
    pub when: &'static str,
    /// (field, type, meaning)
    pub fields: &'static [(&'static str, &'static str, &'static str)],
}

/// Every element message of the plugin.
pub const MESSAGES: &[MessageDoc] = &[
    MessageDoc {
        element: "svcsegmenter",
        name: "svcsegmenter-segment",
        when: "once per Segment, before its crumbs are pushed",
        fields: &[
            ("seq", "guint64", "Segment sequence number from 0"),
            (
                "pts",
                "guint64",
                "presentation time of the Segment's start (ns; G_MAXUINT64 = unknown)",
            ),
            ("duration", "guint64", "playback duration |s| (ns)"),
            ("gops", "guint", "whole GOPs in the Segment (|G|)"),
            ("layers", "guint", "distinct crumb layers"),
            (
                "layer-names",
                "GstValueArray of gchararray",
                "crumb layers as S<spatial>Q<quality>T<temporal>, crumb order",
            ),
            ("crumbs", "guint", "crumbs N of the Segment"),
            ("bytes", "guint64", "bytes of all crumbs, headers included"),
            (
                "base-bytes",
                "guint64",
                "bytes of crumb 1 (headers + base layer)",
            ),
            ("access-units", "guint", "access units in the Segment"),
            (
                "starts-with-keyframe",
                "gboolean",
                "false only after a forced cut inside an over-long GOP",
            ),
        ],
    },
    MessageDoc {
        element: "crumbjoin",
        name: "crumbjoin-segment",
        when: "once per Segment output or skipped",
        fields: &[
            ("seq", "guint64", "Segment sequence number"),
            (
                "d",
                "guint",
                "crumbs output (the complete prefix 1..d; 0 = Segment skipped)",
            ),
            ("crumbs-total", "guint", "crumbs N of the Segment"),
            ("access-units", "guint", "access units output"),
        ],
    },
    MessageDoc {
        element: "crumbsink",
        name: "crumbsink-listening",
        when: "once the HTTP API, tracker and super seed listen",
        fields: &[
            ("url", "gchararray", "the URL clients join"),
            ("http-port", "guint", "bound HTTP port"),
            ("p2p-port", "guint", "the super seed's BitTorrent port"),
            ("spool-dir", "gchararray", "where crumb files are kept"),
        ],
    },
    MessageDoc {
        element: "crumbsink",
        name: "crumbsink-segment",
        when: "once per published Segment",
        fields: &[
            ("seq", "guint64", "Segment number"),
            (
                "crumbs",
                "guint",
                "crumbs published (torrents made and seeded)",
            ),
            ("bytes", "guint64", "bytes of those crumbs"),
            (
                "rho",
                "gdouble",
                "last success ratio sent upstream (-1 = none yet)",
            ),
            ("window-first", "guint64", "oldest live Segment"),
            ("window-last", "guint64", "newest live Segment"),
            (
                "expired",
                "GstValueArray of guint64",
                "Segments that left the window now",
            ),
        ],
    },
    MessageDoc {
        element: "crumbsrc",
        name: "crumbsrc-segment",
        when: "once per Segment done, failed or skipped",
        fields: &[
            ("seq", "guint64", "Segment number"),
            ("success", "gboolean", "crumb 1 complete by the deadline"),
            (
                "complete",
                "gboolean",
                "all D crumbs complete by the deadline",
            ),
            (
                "skipped",
                "gboolean",
                "left the window before the client got to it",
            ),
            ("d", "guint", "crumbs output (longest complete prefix)"),
            ("d-target", "guint", "D, the crumbs aimed for"),
            ("crumbs-done", "guint", "crumbs complete"),
            ("crumbs-total", "guint", "crumbs N of the Segment"),
            ("time-extension", "guint64", "time extension granted (ns)"),
            ("rate", "gdouble", "measured download rate R (bytes/s)"),
            (
                "bytes-from-super-seed",
                "guint64",
                "bytes of this Segment fetched from the super seed",
            ),
            (
                "bytes-from-peers",
                "guint64",
                "bytes of this Segment fetched from other clients",
            ),
            (
                "bytes-output",
                "guint64",
                "bytes of the crumbs output (1..d)",
            ),
            (
                "duration",
                "guint64",
                "playback duration |s| (ns; 0 = unknown)",
            ),
            (
                "deadline-margin",
                "gint64",
                "deadline minus finish time (ns; negative = late)",
            ),
        ],
    },
    MessageDoc {
        element: "crumbsrc",
        name: "crumbsrc-channel-restarted",
        when: "when the channel restarted (its window's epoch changed, or its newest Segment number went back): the old run is dropped and the client rejoins at the new start index",
        fields: &[
            (
                "sign",
                "gchararray",
                "how it was seen: epoch or numbers-back",
            ),
            (
                "old-epoch",
                "guint64",
                "the old run's epoch (G_MAXUINT64 = none)",
            ),
            (
                "new-epoch",
                "guint64",
                "the new run's epoch (G_MAXUINT64 = none)",
            ),
            (
                "old-latest",
                "guint64",
                "the old run's newest Segment seen (G_MAXUINT64 = none)",
            ),
            (
                "new-latest",
                "guint64",
                "the new run's newest Segment (G_MAXUINT64 = none yet)",
            ),
        ],
    },
    MessageDoc {
        element: "crumbsrc",
        name: "crumbsrc-stalled",
        when: "once, after a warning and before EOS, when the channel showed no sign of life for stall-timeout",
        fields: &[
            (
                "reason",
                "gchararray",
                "no-answer (the channel did not answer), window-frozen (no new Segment) or nothing-fetched (no byte of any crumb)",
            ),
            (
                "stalled-for",
                "guint64",
                "how long the sign of life was missing (ns)",
            ),
            (
                "timeout",
                "guint64",
                "the timeout in force: stall-timeout, at least two of the longest Segments (ns)",
            ),
        ],
    },
];
