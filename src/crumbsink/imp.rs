// SPDX-License-Identifier: MPL-2.0
//! GStreamer glue of crumbsink: crumbs in, Segments published by `channel::Channel`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use std::sync::LazyLock;

use crate::channel::{
    Canceller, Channel, ChannelConfig, ChannelStatsHandle, IncomingCrumb, PublishError,
    ServerLimits,
};
use crate::core::crumb::Crumb;
use crate::core::seed_load::EnhancementCopies;
use crate::properties;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "crumbsink",
        gst::DebugColorFlags::empty(),
        Some("Live P2P channel"),
    )
});

const DEFAULT_CHANNEL: &str = "live";
const DEFAULT_ADDRESS: &str = "127.0.0.1";
const DEFAULT_HTTP_PORT: u32 = 0;
const DEFAULT_WINDOW: u32 = 5;
const DEFAULT_START_OFFSET: u32 = 3;
const DEFAULT_PIECE_SIZE: u32 = 16384;
const DEFAULT_MAX_UPLOAD_RATE: u32 = 0;
const DEFAULT_ARCHIVE: bool = false;
const DEFAULT_TRACKER_INTERVAL: u32 = 15;
const DEFAULT_SUPER_SEED_FANOUT: u32 = 1;
/// -1: crumb 1 follows `super-seed-fanout`.
const DEFAULT_FIRST_CRUMB_FANOUT: i32 = -1;
/// No limit. -1 (automatic, one copy while the super seed's link is busy,
/// `core::seed_load`) is not the default: on the swarm bench's tight channel it switched
/// to one copy after five Segments and kept little of what one copy from the start
/// gains (docs/swarm.md, eighteenth round).
const DEFAULT_ENHANCEMENT_COPIES: i32 = 0;
/// Two copies of each enhancement piece once a newer Segment is out. On the swarm
/// bench's tight channel (twice the full quality, 20 viewers) 1 gave 0.596 of bound
/// (seven runs interleaved with seven without a limit: 0.517) and 2 gave 0.589 (five
/// runs, 0.524-0.618), with N = 10 and N = 20 on the roomy channel unchanged and less
/// channel upload per client at N = 20 (9 % at 1; docs/swarm.md, twenty-first round).
/// Two rather than one: a piece whose only holder left, or never serves, would be lost to every
/// viewer behind the edge.
const DEFAULT_ENHANCEMENT_COPIES_BEHIND: u32 = 2;
const DEFAULT_HEADER_TIMEOUT_MS: u32 = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS: u32 = 30_000;
/// Well below the common 1,024 file descriptors a process may hold: crumb files,
/// torrents and peer sockets need theirs too.
const DEFAULT_MAX_CONNECTIONS: u32 = 512;
const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: u32 = 256;
/// A Segment whose crumb files cannot be written (retry included) is skipped with a
/// warning; this many in a row is an element error.
const MAX_WRITE_FAILURES_IN_A_ROW: u32 = 3;

#[derive(Debug, Clone)]
struct Settings {
    channel: String,
    address: String,
    http_port: u32,
    window: u32,
    start_offset: u32,
    piece_size: u32,
    max_upload_rate: u32,
    spool_dir: Option<String>,
    archive: bool,
    announce_urls: Vec<String>,
    tracker_interval: u32,
    super_seed_fanout: u32,
    first_crumb_fanout: i32,
    enhancement_copies: i32,
    enhancement_copies_behind: u32,
    header_timeout_ms: u32,
    idle_timeout_ms: u32,
    max_connections: u32,
    max_connections_per_address: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            channel: DEFAULT_CHANNEL.into(),
            address: DEFAULT_ADDRESS.into(),
            http_port: DEFAULT_HTTP_PORT,
            window: DEFAULT_WINDOW,
            start_offset: DEFAULT_START_OFFSET,
            piece_size: DEFAULT_PIECE_SIZE,
            max_upload_rate: DEFAULT_MAX_UPLOAD_RATE,
            spool_dir: None,
            archive: DEFAULT_ARCHIVE,
            announce_urls: Vec::new(),
            tracker_interval: DEFAULT_TRACKER_INTERVAL,
            super_seed_fanout: DEFAULT_SUPER_SEED_FANOUT,
            first_crumb_fanout: DEFAULT_FIRST_CRUMB_FANOUT,
            enhancement_copies: DEFAULT_ENHANCEMENT_COPIES,
            enhancement_copies_behind: DEFAULT_ENHANCEMENT_COPIES_BEHIND,
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
        }
    }
}

/// Lock discipline: `state` and `settings` are held only for short bookkeeping. No
/// message is posted, no event pushed and no IO done (publishing, librqbit, files,
/// HTTP) while either is held: a bus sync handler reading `stats` runs on the posting
/// thread and takes `state`. The channel is taken out of `state` while it publishes.
#[derive(Default)]
struct State {
    /// None while stopped, or while the streaming thread publishes with it.
    channel: Option<Channel>,
    /// Where `stats` reads the channel's figures, publishing or not.
    stats: Option<ChannelStatsHandle>,
    /// False once stopped: a channel coming back from publishing is then stopped.
    running: bool,
    /// Crumbs of the Segment being received, by index.
    pending: BTreeMap<u16, IncomingCrumb>,
    pending_seq: Option<u64>,
    malformed: u64,
    incomplete_segments: u64,
    write_failures: u64,
    write_failures_in_a_row: u32,
    last_rho: Option<f64>,
    /// The copies limit of the last Segment published (None: no limit; logged when
    /// it changes).
    last_enhancement_copies: Option<u32>,
}

#[derive(Default)]
pub struct CrumbSink {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    url: Mutex<Option<String>>,
    /// Ends the streaming thread's waits on the runtime (`unlock`).
    canceller: Canceller,
}

impl CrumbSink {
    fn config(&self) -> Result<ChannelConfig, gst::ErrorMessage> {
        let s = self.settings.lock().unwrap().clone();
        if !crate::core::api::valid_channel_name(&s.channel) {
            return Err(properties::invalid(
                "channel",
                format!("'{}'", s.channel),
                "a channel name is 1 to 64 letters, digits, '-' or '_' (one URL path segment)",
            ));
        }
        let address = properties::listen_address("address", &s.address)?;
        let rate = properties::rate_limit(
            "max-upload-rate",
            s.max_upload_rate,
            crate::p2p::session::MIN_RATE_LIMIT_BPS,
        )?;
        properties::piece_size("piece-size", s.piece_size)?;
        properties::tracker_urls("announce-urls", &s.announce_urls)?;
        Ok(ChannelConfig {
            name: s.channel,
            address,
            http_port: s.http_port.min(65535) as u16,
            window: s.window,
            start_offset: s.start_offset,
            archive: s.archive,
            piece_size: s.piece_size,
            max_upload_rate: rate,
            spool_dir: s.spool_dir.map(PathBuf::from),
            announce_urls: s.announce_urls,
            tracker_interval: s.tracker_interval,
            super_seed_fanout: s.super_seed_fanout,
            first_crumb_fanout: u32::try_from(s.first_crumb_fanout).ok(),
            enhancement_copies: EnhancementCopies::from_property(s.enhancement_copies),
            enhancement_copies_behind: (s.enhancement_copies_behind > 0)
                .then_some(s.enhancement_copies_behind),
            limits: ServerLimits {
                header_timeout: std::time::Duration::from_millis(s.header_timeout_ms as u64),
                idle_timeout: std::time::Duration::from_millis(s.idle_timeout_ms as u64),
                max_connections: s.max_connections,
                max_connections_per_address: s.max_connections_per_address,
            },
        })
    }

    /// Publishes the pending Segment: its complete prefix of crumbs (a crumb lost
    /// upstream makes the crumbs after it useless to every client). Called on the
    /// streaming thread without any lock held; takes `state` only for bookkeeping.
    fn publish_pending(&self) -> Result<(), gst::FlowError> {
        let mut state = self.state.lock().unwrap();
        let pending = std::mem::take(&mut state.pending);
        let Some(seq) = state.pending_seq.take() else {
            return Ok(());
        };
        let total = pending
            .values()
            .next()
            .map_or(0, |c| c.crumb.segment.crumb_count);
        let crumbs: Vec<IncomingCrumb> = (1u16..)
            .zip(pending)
            .take_while(|(expected, (idx, _))| idx == expected)
            .map(|(_, (_, c))| c)
            .collect();
        if crumbs.is_empty() {
            state.incomplete_segments += 1;
            gst::warning!(
                CAT,
                imp = self,
                "Segment {seq} has no crumb 1: not published"
            );
            return Ok(());
        }
        if crumbs.len() < total as usize {
            state.incomplete_segments += 1;
            gst::warning!(
                CAT,
                imp = self,
                "Segment {seq}: only crumbs 1..{} of {total} arrived",
                crumbs.len()
            );
        }
        let Some(mut channel) = state.channel.take() else {
            return Err(gst::FlowError::Flushing);
        };
        drop(state);

        // How long a Segment can be, for the window's `max_duration` (players keep that
        // room): asked of svcsegmenter before each Segment, as its GOPs are seen.
        let pad = self.obj().static_pad("sink").unwrap();
        channel.set_max_duration(crate::element::query_max_duration(&pad));
        // Blocking IO, without locks.
        let result = channel.publish(crumbs, &self.canceller);
        let rho = match &result {
            Ok(_) => channel.rho_due(),
            Err(_) => None,
        };

        let mut state = self.state.lock().unwrap();
        let leftover = if state.running {
            state.channel = Some(channel);
            None
        } else {
            Some(channel) // stopped meanwhile: stopped here, outside the lock
        };
        if let Some((_, r)) = rho {
            state.last_rho = Some(r);
        }
        let last_rho = state.last_rho;
        let failures_in_a_row = match &result {
            Err(PublishError::Spool { .. }) => {
                state.write_failures += 1;
                state.write_failures_in_a_row += 1;
                state.write_failures_in_a_row
            }
            Ok(_) => {
                state.write_failures_in_a_row = 0;
                0
            }
            Err(_) => state.write_failures_in_a_row,
        };
        drop(state);
        if let Some(ch) = leftover {
            let _ = ch.stop();
        }

        let outcome = match result {
            Ok(o) => o,
            Err(PublishError::Cancelled) => return Err(gst::FlowError::Flushing),
            Err(e @ PublishError::Spool { .. }) => {
                if failures_in_a_row >= MAX_WRITE_FAILURES_IN_A_ROW {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::Write,
                        (
                            "Cannot publish Segment {}: {} ({} Segments in a row)",
                            seq,
                            e,
                            failures_in_a_row
                        )
                    );
                    return Err(gst::FlowError::Error);
                }
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    ("Segment {} not published: {}", seq, e)
                );
                return Ok(());
            }
            Err(PublishError::Other(e)) => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ("Cannot publish Segment {}: {:#}", seq, e)
                );
                return Err(gst::FlowError::Error);
            }
        };
        for text in &outcome.write_retries {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ("Segment {}: {}", seq, text)
            );
        }
        let msg = gst::message::Element::builder(
            crate::interface::CRUMBSINK_SEGMENT.checked(
                gst::Structure::builder(crate::interface::CRUMBSINK_SEGMENT.name)
                    .field("seq", outcome.seq)
                    .field("crumbs", outcome.crumbs as u32)
                    .field("bytes", outcome.bytes)
                    .field("rho", last_rho.unwrap_or(-1.0))
                    .field("window-first", outcome.window.0)
                    .field("window-last", outcome.window.1)
                    .field("expired", gst::Array::new(outcome.expired.iter().copied()))
                    .field(
                        "enhancement-copies",
                        outcome.enhancement_copies.unwrap_or(0),
                    )
                    .build(),
            ),
        )
        .src(&*self.obj())
        .build();
        let _ = self.obj().post_message(msg);
        let copies = outcome.enhancement_copies;
        let before = std::mem::replace(
            &mut self.state.lock().unwrap().last_enhancement_copies,
            copies,
        );
        if before != copies {
            gst::info!(
                CAT,
                imp = self,
                "Segment {}: copies of each enhancement piece from the super seed {}",
                outcome.seq,
                copies.map_or("unlimited".to_owned(), |k| format!("limited to {k}"))
            );
        }
        if let Some((rseq, r)) = rho {
            gst::debug!(
                CAT,
                imp = self,
                "rho {r:.3} for Segment {rseq}: sent upstream"
            );
            let pad = self.obj().static_pad("sink").unwrap();
            if !pad.push_event(crate::element::success_ratio_event(r, rseq)) {
                gst::debug!(
                    CAT,
                    imp = self,
                    "no svcsegmenter upstream took the success ratio"
                );
            }
        }
        Ok(())
    }

    fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let (malformed, incomplete, write_failures) = (
            state.malformed,
            state.incomplete_segments,
            state.write_failures,
        );
        let handle = state.stats.clone();
        drop(state);
        // Zeros while not running: the structure is always the same.
        let (s, c) = handle.map_or_else(Default::default, |h| (h.stats(), h.connections()));
        let def = &crate::interface::CRUMBSINK_STATS;
        def.checked(
            gst::Structure::builder(def.name)
                .field("crumbs-malformed", malformed)
                .field("segments-incomplete", incomplete)
                .field("segments-write-failed", write_failures)
                .field("segments-published", s.segments_published)
                .field("segments-expired", s.segments_expired)
                .field("crumbs-published", s.crumbs_published)
                .field("bytes-published", s.bytes_published)
                .field("bytes-uploaded", s.bytes_uploaded)
                .field("peers-known", s.peers_known as u64)
                .field("clients-reporting", s.clients_reporting as u64)
                .field("reports-accepted", s.reports_accepted)
                .field("reports-rejected", s.reports_rejected)
                .field("torrents-seeded", s.torrents_seeded as u64)
                .field("last-rho", s.last_rho.unwrap_or(-1.0))
                .field("super-seed-grants", s.super_seed_grants)
                .field("uplink-variation", s.uplink_variation.unwrap_or(-1.0))
                .field("uplink-busy", s.uplink_busy)
                .field("segments-copies-limited", s.segments_copies_limited)
                .field("sole-source-share", s.sole_source_share)
                .field(
                    "sole-source-failed-share",
                    s.sole_source_failed_share.unwrap_or(-1.0),
                )
                .field("connections-open", c.open)
                .field("connections-accepted", c.accepted)
                .field("connections-refused", c.refused)
                .field("connections-timed-out", c.timed_out)
                .build(),
        )
    }
}

#[glib::object_subclass]
impl ObjectSubclass for CrumbSink {
    const NAME: &'static str = "GstCrumbSink";
    type Type = super::CrumbSink;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for CrumbSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("channel")
                    .nick("Channel")
                    .blurb("Channel name: the URL path clients join (letters, digits, '-', '_')")
                    .default_value(Some(DEFAULT_CHANNEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("address")
                    .nick("Address")
                    .blurb("IP address the HTTP server and the super seed listen on")
                    .default_value(Some(DEFAULT_ADDRESS))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("http-port")
                    .nick("HTTP port")
                    .blurb("TCP port of the HTTP API and tracker (0 = pick a free one; read it back from url); crumbsinks of one process with the same address and a fixed port share one server, each channel under its name")
                    .maximum(65535)
                    .default_value(DEFAULT_HTTP_PORT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("window")
                    .nick("Window")
                    .blurb("Live Segments kept available and seeded (|w|)")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_WINDOW)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("start-offset")
                    .nick("Start offset")
                    .blurb("A joining client starts at x' = x - start-offset (kept inside the window)")
                    .maximum(1000)
                    .default_value(DEFAULT_START_OFFSET)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("piece-size")
                    .nick("Piece size")
                    .blurb("BitTorrent piece length of each crumb's torrent in bytes (power of two, >= 16384)")
                    .minimum(16384)
                    .maximum(16 * 1024 * 1024)
                    .default_value(DEFAULT_PIECE_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-upload-rate")
                    .nick("Maximum upload rate")
                    .blurb("Super seed upload cap in bytes/s (0 = unlimited; else at least 1024); under it every crumb 1 leaves before enhancement pieces")
                    .default_value(DEFAULT_MAX_UPLOAD_RATE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("spool-dir")
                    .nick("Spool directory")
                    .blurb("Directory for crumb files (default: a private temporary directory removed on stop)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("archive")
                    .nick("Archive")
                    .blurb("Keep Segments that leave the window (seeded and served) for on-demand viewing")
                    .default_value(DEFAULT_ARCHIVE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("announce-urls")
                    .nick("Announce URLs")
                    .blurb("Comma-separated external tracker announce URLs put in every .torrent after the built-in tracker, each its own tier (BEP 12)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("tracker-interval")
                    .nick("Tracker interval")
                    .blurb("Announce interval in seconds the built-in tracker tells peers. Peers are found by the announce a client makes when it starts a crumb; re-announces only keep it listed, so this is long (each client announces every crumb it seeds this often)")
                    .minimum(1)
                    .maximum(3600)
                    .default_value(DEFAULT_TRACKER_INTERVAL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("super-seed-fanout")
                    .nick("Super seed fanout")
                    .blurb("Initial seeding: peers per crumb the tracker gives the super seed's address to (the first to announce; a peer slower than the stream, by its last report's rate, does not use up the grant of one faster: at most twice this many); the others are sent to peers, so each piece leaves the channel about this many times (swarm bench, N = 10 and 20: 1 instead of 2 cut the channel's upload per client by about 15 %, delivered rate unchanged). crumbsrc falls back to the super seed by itself when peers are too slow for its deadline. 0 = give it to every peer")
                    .maximum(10_000)
                    .default_value(DEFAULT_SUPER_SEED_FANOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("first-crumb-fanout")
                    .nick("First crumb fanout")
                    .blurb("Initial seeding of each Segment's crumb 1 (headers and base layer, which every viewer needs first and, at the live edge, all at once): peers per crumb 1 the tracker gives the super seed's address to, as super-seed-fanout does for the other crumbs. 0 = give it to every peer (swarm bench: +1-2 % delivered with 10-20 viewers, more channel upload; the simulator: less delivered at 200-2,000). -1 = as super-seed-fanout")
                    .minimum(-1)
                    .maximum(10_000)
                    .default_value(DEFAULT_FIRST_CRUMB_FANOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("enhancement-copies")
                    .nick("Enhancement copies")
                    .blurb("Peers the super seed uploads each piece of an enhancement crumb (crumbs 2..N) to: the first to ask get it, a request from any other peer closes its connection and it takes the piece from those peers. Bounds the channel's upload per published byte: 1 suits a channel whose upload is the bottleneck (stats uplink-busy). Crumb 1 is never limited. 0 = no limit. -1 = automatic: 1 for each Segment published while the super seed's link is busy (its upload steady over the last 8 s: rate variation at most 0.9, until it reaches 1.3; presumed busy until 8 s of upload are known; links under about 2 Mbit/s are not judged), no limit otherwise")
                    .minimum(-1)
                    .maximum(10_000)
                    .default_value(DEFAULT_ENHANCEMENT_COPIES)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("enhancement-copies-behind")
                    .nick("Enhancement copies behind the edge")
                    .blurb("Peers the super seed uploads each piece of an enhancement crumb (crumbs 2..N) to in all, once a newer Segment is out (the copies given while it was the newest count; a lower enhancement-copies stays): viewers behind the live edge take those pieces from the peers that have them (a request for one given out already closes the connection), and the super seed's upload goes to the viewers at the edge. Crumb 1 is never limited; an archived Segment that leaves the window gets its earlier limit back (on-demand viewers come after the live ones left). 0 = no limit")
                    .maximum(10_000)
                    .default_value(DEFAULT_ENHANCEMENT_COPIES_BEHIND)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("header-timeout")
                    .nick("Header timeout")
                    .blurb("Milliseconds an HTTP client has to send a request's headers, from the connection's start or the end of the previous response (closes idle keep-alive too)")
                    .minimum(1)
                    .default_value(DEFAULT_HEADER_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("idle-timeout")
                    .nick("Idle timeout")
                    .blurb("Milliseconds without a byte moving either way after which an HTTP connection is closed")
                    .minimum(1)
                    .default_value(DEFAULT_IDLE_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-connections")
                    .nick("Maximum connections")
                    .blurb("Open HTTP connections in all; a new one beyond it is closed at once (counted in stats as connections-refused)")
                    .minimum(1)
                    .default_value(DEFAULT_MAX_CONNECTIONS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-connections-per-address")
                    .nick("Maximum connections per address")
                    .blurb("Open HTTP connections from one IP address; a new one beyond it is closed at once (counted in stats as connections-refused)")
                    .minimum(1)
                    .default_value(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("url")
                    .nick("URL")
                    .blurb("The URL clients join (http://ADDRESS:PORT/CHANNEL), once listening")
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(&crate::interface::CRUMBSINK_STATS.blurb())
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "channel" => {
                s.channel = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| DEFAULT_CHANNEL.into())
            }
            "address" => {
                s.address = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| DEFAULT_ADDRESS.into())
            }
            "http-port" => s.http_port = value.get().unwrap(),
            "window" => s.window = value.get().unwrap(),
            "start-offset" => s.start_offset = value.get().unwrap(),
            "piece-size" => s.piece_size = value.get().unwrap(),
            "max-upload-rate" => s.max_upload_rate = value.get().unwrap(),
            "spool-dir" => {
                s.spool_dir = value
                    .get::<Option<String>>()
                    .unwrap()
                    .filter(|d| !d.is_empty())
            }
            "archive" => s.archive = value.get().unwrap(),
            "announce-urls" => {
                s.announce_urls = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_default()
                    .split(',')
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .collect()
            }
            "tracker-interval" => s.tracker_interval = value.get().unwrap(),
            "super-seed-fanout" => s.super_seed_fanout = value.get().unwrap(),
            "first-crumb-fanout" => s.first_crumb_fanout = value.get().unwrap(),
            "enhancement-copies" => s.enhancement_copies = value.get().unwrap(),
            "enhancement-copies-behind" => s.enhancement_copies_behind = value.get().unwrap(),
            "header-timeout" => s.header_timeout_ms = value.get().unwrap(),
            "idle-timeout" => s.idle_timeout_ms = value.get().unwrap(),
            "max-connections" => s.max_connections = value.get().unwrap(),
            "max-connections-per-address" => s.max_connections_per_address = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "channel" => s.channel.to_value(),
            "address" => s.address.to_value(),
            "http-port" => s.http_port.to_value(),
            "window" => s.window.to_value(),
            "start-offset" => s.start_offset.to_value(),
            "piece-size" => s.piece_size.to_value(),
            "max-upload-rate" => s.max_upload_rate.to_value(),
            "spool-dir" => s.spool_dir.to_value(),
            "archive" => s.archive.to_value(),
            "announce-urls" => s.announce_urls.join(",").to_value(),
            "tracker-interval" => s.tracker_interval.to_value(),
            "super-seed-fanout" => s.super_seed_fanout.to_value(),
            "first-crumb-fanout" => s.first_crumb_fanout.to_value(),
            "enhancement-copies" => s.enhancement_copies.to_value(),
            "enhancement-copies-behind" => s.enhancement_copies_behind.to_value(),
            "header-timeout" => s.header_timeout_ms.to_value(),
            "idle-timeout" => s.idle_timeout_ms.to_value(),
            "max-connections" => s.max_connections.to_value(),
            "max-connections-per-address" => s.max_connections_per_address.to_value(),
            "url" => self.url.lock().unwrap().to_value(),
            "stats" => {
                drop(s);
                self.stats().to_value()
            }
            _ => unimplemented!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        // A channel publishes as fast as Segments come: no clock sync.
        self.obj().set_sync(false);
    }
}

impl GstObjectImpl for CrumbSink {}

impl ElementImpl for CrumbSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Crumb channel sink",
                "Sink/Network",
                "A live P2P channel: every crumb becomes a BitTorrent torrent seeded by a super seed, with a window of Segments, a tracker and an HTTP API",
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
                    &crate::element::crumb_caps(),
                )
                .unwrap(),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        // Wrong properties fail here, not at the first Segment (start checks again:
        // READY still lets them change).
        if transition == gst::StateChange::NullToReady
            && let Err(e) = self.config()
        {
            self.post_error_message(e);
            return Err(gst::StateChangeError);
        }
        self.parent_change_state(transition)
    }
}

impl BaseSinkImpl for CrumbSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let config = self.config()?;
        let channel = Channel::start(config.clone()).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenReadWrite,
                ("Cannot start channel '{}': {:#}", config.name, e)
            )
        })?;
        let url = channel.url();
        gst::info!(
            CAT,
            imp = self,
            "Channel listening at {url} (BitTorrent port {})",
            channel.p2p_port()
        );
        let msg = gst::message::Element::builder(
            crate::interface::CRUMBSINK_LISTENING.checked(
                gst::Structure::builder(crate::interface::CRUMBSINK_LISTENING.name)
                    .field("url", &url)
                    .field("http-port", channel.http_addr().port() as u32)
                    .field("p2p-port", channel.p2p_port() as u32)
                    .field("spool-dir", channel.spool_dir().display().to_string())
                    .build(),
            ),
        )
        .src(&*self.obj())
        .build();
        *self.url.lock().unwrap() = Some(url);
        self.canceller.reset();
        *self.state.lock().unwrap() = State {
            stats: Some(channel.stats_handle()),
            channel: Some(channel),
            running: true,
            ..Default::default()
        };
        let _ = self.obj().post_message(msg);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let channel = {
            let mut state = self.state.lock().unwrap();
            state.running = false;
            state.pending.clear();
            state.pending_seq = None;
            // The handle keeps the session alive: let it go with the channel.
            state.stats = None;
            state.channel.take()
        };
        if let Some(ch) = channel
            && let Err(e) = ch.stop()
        {
            gst::warning!(CAT, imp = self, "Channel stop: {e:#}");
        }
        *self.url.lock().unwrap() = None;
        Ok(())
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.canceller.cancel();
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.canceller.reset();
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let bytes = buffer
            .map_readable()
            .map_err(|_| gst::FlowError::Error)?
            .to_vec();
        let crumb = match Crumb::decode(&bytes) {
            // The channel reads the header and writes the bytes as they came: the
            // decoded units would hold the Segment a second time until it is out.
            Ok(c) => Crumb {
                units: Vec::new(),
                ..c
            },
            Err(err) => {
                self.state.lock().unwrap().malformed += 1;
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Demux,
                    ("Dropped a buffer that is not a valid crumb: {}", err)
                );
                return Ok(gst::FlowSuccess::Ok);
            }
        };
        let seq = crumb.segment.seq;
        let previous_done = {
            let state = self.state.lock().unwrap();
            state.pending_seq.is_some_and(|p| p != seq)
        };
        if previous_done {
            self.publish_pending()?;
        }
        let complete = {
            let mut state = self.state.lock().unwrap();
            state.pending_seq = Some(seq);
            let complete = crumb.segment.crumb_count as usize;
            state
                .pending
                .insert(crumb.index, IncomingCrumb { crumb, bytes });
            state.pending.len() >= complete
        };
        if complete {
            self.publish_pending()?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view()
            && let Err(e) = self.publish_pending()
        {
            // An error was posted already; flushing needs no word.
            gst::debug!(CAT, imp = self, "Last Segment not published at EOS: {e:?}");
            if e != gst::FlowError::Flushing {
                return false;
            }
        }
        self.parent_event(event)
    }
}
