// SPDX-License-Identifier: MPL-2.0
//! The plugin's element messages and `stats` structures, each defined once: the
//! elements build them checked against these definitions (in debug builds, so every
//! test that runs an element checks what it posts), the `stats` blurbs are made from
//! them, and `tests/interface.rs` checks `plugins/crumbs.json` and README's tables
//! against them.

use gst::glib;
use gst::prelude::*;

use FieldType::*;

/// The GLib type of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Bool,
    U32,
    U64,
    I64,
    F64,
    Str,
    U64Array,
    StrArray,
}

impl FieldType {
    /// The type as GStreamer prints it (gst-inspect, `plugins/crumbs.json`).
    pub fn name(self) -> &'static str {
        match self {
            Bool => "gboolean",
            U32 => "guint",
            U64 => "guint64",
            I64 => "gint64",
            F64 => "gdouble",
            Str => "gchararray",
            U64Array => "GstValueArray of guint64",
            StrArray => "GstValueArray of gchararray",
        }
    }

    fn matches(self, v: &glib::SendValue) -> bool {
        let elements = |t: glib::Type| {
            v.get::<gst::Array>()
                .is_ok_and(|a| a.iter().all(|e| e.type_() == t))
        };
        match self {
            Bool => v.type_() == bool::static_type(),
            U32 => v.type_() == u32::static_type(),
            U64 => v.type_() == u64::static_type(),
            I64 => v.type_() == i64::static_type(),
            F64 => v.type_() == f64::static_type(),
            Str => v.type_() == String::static_type(),
            U64Array => elements(u64::static_type()),
            StrArray => elements(String::static_type()),
        }
    }
}

/// One field of a message or stats structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub meaning: &'static str,
    /// Present only in some cases (the meaning says when).
    pub optional: bool,
}

const fn f(name: &'static str, ty: FieldType, meaning: &'static str) -> Field {
    Field {
        name,
        ty,
        meaning,
        optional: false,
    }
}

/// A field present only in some cases (its meaning says when).
const fn opt(name: &'static str, ty: FieldType, meaning: &'static str) -> Field {
    Field {
        name,
        ty,
        meaning,
        optional: true,
    }
}

/// An element message or an element's `stats` structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StructDef {
    pub element: &'static str,
    /// The structure's name.
    pub name: &'static str,
    /// When it is posted (messages) or what it holds (stats).
    pub when: &'static str,
    pub fields: &'static [Field],
}

impl StructDef {
    /// Whether `s` is exactly this structure: its name, and every field with its type
    /// (no field missing but optional ones, none more).
    pub fn check(&self, s: &gst::StructureRef) -> Result<(), String> {
        if s.name() != self.name {
            return Err(format!("structure {} is not {}", s.name(), self.name));
        }
        for field in self.fields {
            match s.value(field.name) {
                Ok(v) if field.ty.matches(v) => {}
                Ok(v) => {
                    return Err(format!(
                        "{}: field {} is {}, defined as {}",
                        self.name,
                        field.name,
                        v.type_(),
                        field.ty.name()
                    ));
                }
                Err(_) if field.optional => {}
                Err(_) => return Err(format!("{}: field {} missing", self.name, field.name)),
            }
        }
        if let Some((extra, _)) = s
            .iter()
            .find(|(n, _)| !self.fields.iter().any(|f| f.name == n.as_str()))
        {
            return Err(format!("{}: field {extra} is not defined", self.name));
        }
        Ok(())
    }

    /// `s`, checked against this definition in debug builds (tests): what the elements
    /// post and return.
    pub fn checked(&self, s: gst::Structure) -> gst::Structure {
        if cfg!(debug_assertions)
            && let Err(e) = self.check(&s)
        {
            panic!("{e} (src/interface.rs defines it)");
        }
        s
    }

    /// The blurb of a `stats` property: its fields by name.
    pub fn blurb(&self) -> String {
        let names: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
        format!(
            "{}: {} (plugins/crumbs.json describes each field)",
            self.when,
            names.join(", ")
        )
    }
}

pub const SVCSEGMENTER_SEGMENT: StructDef = StructDef {
    element: "svcsegmenter",
    name: "svcsegmenter-segment",
    when: "once per Segment, before its crumbs are pushed",
    fields: &[
        f("seq", U64, "Segment sequence number from 0"),
        f(
            "pts",
            U64,
            "presentation time of the Segment's start (ns; G_MAXUINT64 = unknown)",
        ),
        f("duration", U64, "playback duration |s| (ns)"),
        f("gops", U32, "whole GOPs in the Segment (|G|)"),
        f("layers", U32, "distinct crumb layers"),
        f(
            "layer-names",
            StrArray,
            "crumb layers as S<spatial>Q<quality>T<temporal>, crumb order",
        ),
        f("crumbs", U32, "crumbs N of the Segment"),
        f("bytes", U64, "bytes of all crumbs, headers included"),
        f(
            "base-bytes",
            U64,
            "bytes of crumb 1 (headers + base layer, and the audio)",
        ),
        f("access-units", U32, "access units in the Segment"),
        f(
            "starts-with-keyframe",
            Bool,
            "false only after a forced cut inside an over-long GOP",
        ),
        opt(
            "audio-frames",
            U32,
            "audio frames of the Segment's span in crumb 1 (only when the audio pad is requested)",
        ),
        opt(
            "audio-bytes",
            U64,
            "payload bytes of those audio frames, part of base-bytes (only with the audio pad)",
        ),
    ],
};

pub const CRUMBJOIN_SEGMENT: StructDef = StructDef {
    element: "crumbjoin",
    name: "crumbjoin-segment",
    when: "once per Segment output or skipped",
    fields: &[
        f("seq", U64, "Segment sequence number"),
        f(
            "d",
            U32,
            "crumbs output (the complete prefix 1..d; 0 = Segment skipped)",
        ),
        f("crumbs-total", U32, "crumbs N of the Segment"),
        f("access-units", U32, "access units output"),
    ],
};

pub const CRUMBSINK_LISTENING: StructDef = StructDef {
    element: "crumbsink",
    name: "crumbsink-listening",
    when: "once the HTTP API, tracker and super seed listen",
    fields: &[
        f("url", Str, "the URL clients join"),
        f("http-port", U32, "bound HTTP port"),
        f("p2p-port", U32, "the super seed's BitTorrent port"),
        f("spool-dir", Str, "where crumb files are kept"),
    ],
};

pub const CRUMBSINK_SEGMENT: StructDef = StructDef {
    element: "crumbsink",
    name: "crumbsink-segment",
    when: "once per published Segment",
    fields: &[
        f("seq", U64, "Segment number"),
        f("crumbs", U32, "crumbs published (torrents made and seeded)"),
        f("bytes", U64, "bytes of those crumbs"),
        f(
            "rho",
            F64,
            "last success ratio sent upstream (-1 = none yet)",
        ),
        f("window-first", U64, "oldest live Segment"),
        f("window-last", U64, "newest live Segment"),
        f("expired", U64Array, "Segments that left the window now"),
        f(
            "enhancement-copies",
            U32,
            "copies of each enhancement piece the super seed uploads for this Segment (0 = no limit)",
        ),
    ],
};

pub const CRUMBSRC_SEGMENT: StructDef = StructDef {
    element: "crumbsrc",
    name: "crumbsrc-segment",
    when: "once per Segment done, failed or skipped",
    fields: &[
        f("seq", U64, "Segment number"),
        f("success", Bool, "crumb 1 complete by the deadline"),
        f("complete", Bool, "all D crumbs complete by the deadline"),
        f(
            "skipped",
            Bool,
            "left the window before the client got to it",
        ),
        f("d", U32, "crumbs output (longest complete prefix)"),
        f("d-target", U32, "D, the crumbs aimed for"),
        f("crumbs-done", U32, "crumbs complete"),
        f("crumbs-total", U32, "crumbs N of the Segment"),
        f("time-extension", U64, "time extension granted (ns)"),
        f("rate", F64, "measured download rate R (bytes/s)"),
        f(
            "bytes-from-super-seed",
            U64,
            "bytes of this Segment fetched from the super seed",
        ),
        f(
            "bytes-from-peers",
            U64,
            "bytes of this Segment fetched from other clients",
        ),
        f(
            "bytes-output",
            U64,
            "bytes of the crumbs output (1..d, and what was used of the tail crumb)",
        ),
        f(
            "tail-crumb",
            U32,
            "the tail crumb output after crumbs 1..d, in part (its verified pieces from its start; d+1), 0 = none",
        ),
        f(
            "tail-bytes",
            U64,
            "bytes of the tail crumb output (whole access units of its verified pieces)",
        ),
        f(
            "sole-source",
            Bool,
            "crumb 1 was asked of the super seed alone (a weak line's urgent crumb 1, as the channel's sole_source_share lets it)",
        ),
        f("duration", U64, "playback duration |s| (ns; 0 = unknown)"),
        f(
            "deadline-margin",
            I64,
            "deadline minus finish time (ns; negative = late)",
        ),
        f(
            "play-delay",
            I64,
            "time from the output of the Segment's first buffer (when the Segment was ready) to its play-out (ns; 0 = nothing output): a viewer's latency is the output's plus this",
        ),
        f(
            "stall",
            U64,
            "how far this Segment moved the play-out timeline forward (ns; 0 = played on time): a viewer's freeze",
        ),
    ],
};

pub const CRUMBSRC_CHANNEL_RESTARTED: StructDef = StructDef {
    element: "crumbsrc",
    name: "crumbsrc-channel-restarted",
    when: "when the channel restarted (its window's epoch changed, or its newest Segment number went back): the old run is dropped and the client rejoins at the new start index",
    fields: &[
        f("sign", Str, "how it was seen: epoch or numbers-back"),
        f("old-epoch", U64, "the old run's epoch (G_MAXUINT64 = none)"),
        f("new-epoch", U64, "the new run's epoch (G_MAXUINT64 = none)"),
        f(
            "old-latest",
            U64,
            "the old run's newest Segment seen (G_MAXUINT64 = none)",
        ),
        f(
            "new-latest",
            U64,
            "the new run's newest Segment (G_MAXUINT64 = none yet)",
        ),
    ],
};

pub const CRUMBSRC_SWITCHED: StructDef = StructDef {
    element: "crumbsrc",
    name: "crumbsrc-switched",
    when: "when the client left its channel for the one location was set to while playing: the old channel's crumbs are dropped, the new one is joined at its start index (base layer first) and new caps follow",
    fields: &[
        f("old-location", Str, "the channel left"),
        f("new-location", Str, "the channel joined"),
    ],
};

pub const CRUMBSRC_RELAY_SEGMENT: StructDef = StructDef {
    element: "crumbsrc",
    name: "crumbsrc-relay-segment",
    when: "mode=relay, once per Segment whose crumbs were all fetched, or that left the window before (given up)",
    fields: &[
        f("seq", U64, "Segment number"),
        f("complete", Bool, "every crumb of the Segment fetched"),
        f("crumbs-done", U32, "crumbs fetched (and seeded)"),
        f("crumbs-total", U32, "crumbs N of the Segment"),
        f(
            "bytes-from-super-seed",
            U64,
            "bytes of this Segment fetched from the super seed",
        ),
        f(
            "bytes-from-peers",
            U64,
            "bytes of this Segment fetched from other clients",
        ),
        f(
            "bytes-uploaded",
            U64,
            "bytes uploaded to peers so far, all Segments",
        ),
    ],
};

pub const CRUMBSRC_STALLED: StructDef = StructDef {
    element: "crumbsrc",
    name: "crumbsrc-stalled",
    when: "once, after a warning and before EOS, when the channel showed no sign of life for stall-timeout",
    fields: &[
        f(
            "reason",
            Str,
            "no-answer (the channel did not answer), window-frozen (no new Segment) or nothing-fetched (no byte of any crumb)",
        ),
        f(
            "stalled-for",
            U64,
            "how long the sign of life was missing (ns)",
        ),
        f(
            "timeout",
            U64,
            "the timeout in force: stall-timeout, at least two of the longest Segments (ns)",
        ),
    ],
};

pub const SVCSEGMENTER_STATS: StructDef = StructDef {
    element: "svcsegmenter",
    name: "application/x-svcsegmenter-stats",
    when: "Running counters",
    fields: &[
        f("access-units", U64, "access units taken in"),
        f(
            "dropped-before-keyframe",
            U64,
            "access units dropped before the first key frame",
        ),
        f("malformed", U64, "buffers that could not be parsed"),
        f("segments", U64, "Segments cut"),
        f("forced-cuts", U64, "Segments cut inside an over-long GOP"),
        f(
            "parameter-sets-inserted",
            U64,
            "Segments given the stream's parameter sets",
        ),
        f("crumbs", U64, "crumbs pushed"),
        f("bytes", U64, "bytes of crumbs pushed"),
        f("current-gops", U32, "|G| the Segment in progress aims for"),
        f(
            "timestamps-interpolated",
            U64,
            "access units without timestamps, timed from the caps' framerate",
        ),
        f(
            "last-success-ratio",
            F64,
            "the last rho received (-1 = none yet)",
        ),
        f("audio-frames", U64, "audio frames put into crumb 1"),
        f("audio-bytes", U64, "payload bytes of those audio frames"),
        f(
            "audio-frames-dropped",
            U64,
            "audio frames outside every Segment's span (e.g. before the first key frame)",
        ),
        f(
            "segments-not-waited",
            U64,
            "Segments published before the audio reached their end (after waiting 3 s of video time)",
        ),
    ],
};

pub const CRUMBJOIN_STATS: StructDef = StructDef {
    element: "crumbjoin",
    name: "application/x-crumbjoin-stats",
    when: "Running counters",
    fields: &[
        f("crumbs-received", U64, "crumbs taken in"),
        f("crumbs-late", U64, "crumbs of a Segment already output"),
        f("crumbs-malformed", U64, "buffers that are not crumbs"),
        f("segments-output", U64, "Segments output"),
        f("segments-skipped", U64, "Segments skipped (no crumb 1)"),
        f("access-units-output", U64, "access units output"),
        f(
            "access-units-dropped-waiting-keyframe",
            U64,
            "access units dropped while waiting for a key frame",
        ),
    ],
};

pub const CRUMBSINK_STATS: StructDef = StructDef {
    element: "crumbsink",
    name: "application/x-crumbsink-stats",
    when: "The channel's counters, 0 while not running",
    fields: &[
        f("crumbs-malformed", U64, "buffers that are not crumbs"),
        f(
            "segments-incomplete",
            U64,
            "Segments published without some of their crumbs",
        ),
        f(
            "segments-write-failed",
            U64,
            "Segments not published: a crumb file could not be written, retry included",
        ),
        f("segments-published", U64, "Segments published"),
        f("segments-expired", U64, "Segments that left the window"),
        f("crumbs-published", U64, "crumbs published"),
        f("bytes-published", U64, "bytes of crumbs published"),
        f("bytes-uploaded", U64, "bytes the super seed uploaded"),
        f(
            "peers-known",
            U64,
            "live peer entries of the tracker, summed over crumbs",
        ),
        f(
            "clients-reporting",
            U64,
            "clients whose newest report is on one of the last 5 Segments",
        ),
        f("reports-accepted", U64, "reports counted"),
        f(
            "reports-rejected",
            U64,
            "reports refused (malformed, or not from a peer of the channel)",
        ),
        f("torrents-seeded", U64, "torrents the super seed seeds"),
        f(
            "last-rho",
            F64,
            "the last rho sent upstream (-1 = none yet)",
        ),
        f(
            "super-seed-grants",
            U64,
            "announce replies that named the super seed",
        ),
        f(
            "uplink-variation",
            F64,
            "coefficient of variation of the super seed's upload rate over the last 8 s, low on a full link (-1 unknown)",
        ),
        f(
            "uplink-busy",
            Bool,
            "the super seed's link is judged the bottleneck, or presumed so until 8 s of its upload are known (enhancement-copies=-1 limits copies to 1)",
        ),
        f(
            "segments-copies-limited",
            U64,
            "Segments published with a limit on each enhancement piece's copies",
        ),
        f(
            "sole-source-share",
            F64,
            "share of weak lines (crumb 1 takes over half a Segment) that may fetch an urgent crumb 1 from the super seed alone, in the window: halved with each Segment while over a tenth of such Segments fail (judged once 16 addresses reported, one vote each), 0..1",
        ),
        f(
            "sole-source-failed-share",
            F64,
            "share of the Segments whose crumb 1 came from the super seed alone that failed, in the votes (one per address) the share was last judged on (-1 none yet)",
        ),
        f("connections-open", U64, "HTTP connections open"),
        f("connections-accepted", U64, "HTTP connections served"),
        f(
            "connections-refused",
            U64,
            "HTTP connections closed at once: beyond max-connections or max-connections-per-address",
        ),
        f(
            "connections-timed-out",
            U64,
            "HTTP connections closed by the header or idle timeout",
        ),
    ],
};

pub const CRUMBSRC_STATS: StructDef = StructDef {
    element: "crumbsrc",
    name: "application/x-crumbsrc-stats",
    when: "The client's counters",
    fields: &[
        f(
            "segments-successful",
            U64,
            "Segments with crumb 1 by the deadline",
        ),
        f(
            "segments-failed",
            U64,
            "Segments without crumb 1 by the deadline",
        ),
        f(
            "segments-skipped",
            U64,
            "Segments that left the window before the client got to them",
        ),
        f(
            "segments-complete",
            U64,
            "Segments with all D crumbs by the deadline",
        ),
        f("mean-d", F64, "mean crumbs output per Segment"),
        f("d", U32, "D, the crumbs aimed for now"),
        f(
            "quality-switches",
            U64,
            "changes of d between successful Segments",
        ),
        f(
            "startup-delay",
            U64,
            "ns from start to the first output (max = none yet)",
        ),
        f(
            "time-extension",
            U64,
            "the last time extension granted (ns)",
        ),
        f("rate", F64, "measured download rate R (bytes/s)"),
        f("bytes-downloaded", U64, "bytes received"),
        f("bytes-uploaded", U64, "bytes uploaded to peers"),
        f(
            "bytes-from-super-seed",
            U64,
            "bytes fetched from the super seed",
        ),
        f("bytes-from-peers", U64, "bytes fetched from other clients"),
        f(
            "pieces-stolen",
            U64,
            "pieces re-requested from another peer because the first was slow",
        ),
        f(
            "crumbs-malformed",
            U64,
            "downloaded crumbs that did not parse",
        ),
        f("torrents-seeding", U64, "torrents seeded now"),
        f(
            "super-seed-fallbacks",
            U64,
            "crumbs for which the super seed was asked",
        ),
        f(
            "urgent-fallbacks",
            U64,
            "of those, crumbs 1 asked of the super seed at once: more than half the time left at the measured rate",
        ),
        f(
            "sole-source-crumbs",
            U64,
            "of those, crumbs 1 fetched from the super seed alone (no tracker, no other peer): the line needs more than half of the Segment's duration for one at the highest rate it has measured (its line, not its sources)",
        ),
        f(
            "sole-source-opened",
            U64,
            "of those, crumbs 1 whose super seed sent nothing in their time: taken over and opened to the tracker's peers (the super seed is overloaded)",
        ),
        f(
            "super-seed-take-overs",
            U64,
            "crumbs whose pieces in flight at peers the super seed was told to take over: at the fallback when the crumb came at under half the measured rate, or, for a crumb 1, later when its bytes stopped for the peer patience plus two pieces' time while the link was not busy, and it had no byte at all or the line had room for the rest",
        ),
        f(
            "crumbs-filled",
            U64,
            "crumbs added to a Segment's d while it was fetched, from peers alone, when its duration had time to spare at the measured rate (adaptation=rate)",
        ),
        f(
            "tail-crumbs",
            U64,
            "tail crumbs asked for (tail-crumb=true): crumb d+1 fetched from peers at the live edge with the time left once crumbs 1..d were in",
        ),
        f(
            "tail-crumbs-whole",
            U64,
            "of those, the ones that arrived whole before their Segment was done (the next crumb was then the tail)",
        ),
        f(
            "tail-bytes",
            U64,
            "bytes of tail crumbs output in part (whole access units of their verified pieces)",
        ),
        f(
            "channel-restarts",
            U64,
            "restarts of the channel seen (a new epoch, or Segment numbers going back)",
        ),
        f(
            "channel-switches",
            U64,
            "channels switched to (location set while playing)",
        ),
        f(
            "playout-stalls",
            U64,
            "Segments output after their play-out time (the channel's Segments grew while the client waited at the live edge, or a Segment came late): the timeline moved forward so that they play `latency` after their output, marked DISCONT, instead of reaching the sink late",
        ),
        f(
            "playout-stall-time",
            U64,
            "ns the timeline moved forward over all playout-stalls: what the viewer waited",
        ),
        f(
            "segments-relayed",
            U64,
            "mode=relay: Segments with every crumb fetched (the segments-* counters above count play mode only)",
        ),
        f(
            "segments-relay-incomplete",
            U64,
            "mode=relay: Segments that left the window with some crumb not fetched",
        ),
        f("crumbs-relayed", U64, "mode=relay: crumbs fetched"),
        f(
            "upload-limit",
            U32,
            "bytes/s set by the upload governor (0 = none)",
        ),
        f(
            "uplink-delay",
            U64,
            "ns of queueing delay on the uplink at the last window poll (max = unknown)",
        ),
        f("p2p-port", U32, "the BitTorrent port (0 = not running)"),
    ],
};

/// Every element message of the plugin.
pub const MESSAGES: &[&StructDef] = &[
    &SVCSEGMENTER_SEGMENT,
    &CRUMBJOIN_SEGMENT,
    &CRUMBSINK_LISTENING,
    &CRUMBSINK_SEGMENT,
    &CRUMBSRC_SEGMENT,
    &CRUMBSRC_CHANNEL_RESTARTED,
    &CRUMBSRC_SWITCHED,
    &CRUMBSRC_RELAY_SEGMENT,
    &CRUMBSRC_STALLED,
];

/// Every element's `stats` structure.
pub const STATS: &[&StructDef] = &[
    &SVCSEGMENTER_STATS,
    &CRUMBJOIN_STATS,
    &CRUMBSINK_STATS,
    &CRUMBSRC_STATS,
];
