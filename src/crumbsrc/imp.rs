// SPDX-License-Identifier: MPL-2.0
//! GStreamer glue of crumbsrc: events from `client::Client` become caps, gaps,
//! buffers and per-Segment messages.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;
use std::sync::LazyLock;

use crate::client::{Client, ClientEvent, ClientSettings, Mode};
use crate::core::client::{Adaptation, ClientConfig, PLAYOUT_DELAY_AUTO, PLAYOUT_MARGIN};
use crate::core::playout::Playout;
use crate::core::reassembly::Output;
use crate::core::uplink::UplinkConfig;
use crate::properties;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "crumbsrc",
        gst::DebugColorFlags::empty(),
        Some("Live P2P client"),
    )
});

const DEFAULT_MAX_CRUMBS: u32 = 0;
const DEFAULT_RATE: u32 = 0;
const DEFAULT_ADDRESS: &str = "127.0.0.1";
const DEFAULT_LATENCY: u64 = PLAYOUT_DELAY_AUTO;
const DEFAULT_START: i64 = -1;
const DEFAULT_ADAPTATION: AdaptationMode = AdaptationMode::Rate;
/// ms; 0 = no upload governor.
const DEFAULT_UPLINK_TARGET_DELAY: u32 = 100;
/// ms; -1 = never fall back (the super seed only when the tracker hands it out).
const DEFAULT_PEER_PATIENCE: i64 = (crate::core::client::DEFAULT_PEER_PATIENCE / 1_000_000) as i64;
/// ms; 0 = poll the window every 500 ms while waiting for a Segment.
const DEFAULT_WINDOW_HOLD: u32 = 0;
/// -1 = the channel's start index.
const DEFAULT_START_OFFSET: i32 = -1;
const DEFAULT_TAIL_CRUMB: bool = true;
const DEFAULT_PREPARED_CRUMBS: u32 = crate::core::client::DEFAULT_PREPARE_AHEAD as u32;
/// ms; 0 = wait forever.
const DEFAULT_STALL_TIMEOUT: u32 = (crate::core::client::DEFAULT_STALL_TIMEOUT / 1_000_000) as u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstCrumbSrcAdaptation")]
pub enum AdaptationMode {
    #[enum_value(
        name = "The paper: eq. 3 at start, then D+1 after a complete Segment, D-1 otherwise",
        nick = "paper"
    )]
    Paper = 0,
    #[enum_value(
        name = "Rate-based: D from the measured rate each Segment, with a safety margin",
        nick = "rate"
    )]
    Rate = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstCrumbSrcMode")]
pub enum SrcMode {
    #[enum_value(name = "Play: race Segments and output the stream", nick = "play")]
    Play = 0,
    #[enum_value(
        name = "Relay: fetch and seed every crumb of every Segment, no output",
        nick = "relay"
    )]
    Relay = 1,
}

#[derive(Debug, Clone)]
struct Settings {
    location: Option<String>,
    max_crumbs: u32,
    adaptation: AdaptationMode,
    max_upload_rate: u32,
    max_download_rate: u32,
    address: String,
    latency: u64,
    mode: SrcMode,
    start: i64,
    start_offset: i32,
    client_id: Option<String>,
    peer_patience: i64,
    uplink_target_delay: u32,
    stall_timeout: u32,
    window_hold: u32,
    tail_crumb: bool,
    prepared_crumbs: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: None,
            max_crumbs: DEFAULT_MAX_CRUMBS,
            adaptation: DEFAULT_ADAPTATION,
            max_upload_rate: DEFAULT_RATE,
            max_download_rate: DEFAULT_RATE,
            address: DEFAULT_ADDRESS.into(),
            latency: DEFAULT_LATENCY,
            mode: SrcMode::Play,
            start: DEFAULT_START,
            start_offset: DEFAULT_START_OFFSET,
            client_id: None,
            peer_patience: DEFAULT_PEER_PATIENCE,
            uplink_target_delay: DEFAULT_UPLINK_TARGET_DELAY,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            window_hold: DEFAULT_WINDOW_HOLD,
            tail_crumb: DEFAULT_TAIL_CRUMB,
            prepared_crumbs: DEFAULT_PREPARED_CRUMBS,
        }
    }
}

#[derive(Default)]
struct State {
    client: Option<Client>,
    /// Totals of the last client, so `stats` still reads after stop.
    last_totals: Option<crate::client::ClientTotals>,
    /// The running time of every output buffer: anchored at the first one of a run,
    /// moved forward at a stall (a Segment out after its play-out time).
    playout: Playout,
    /// The Segment being output: how long its first buffer waits for its play-out
    /// (ns), and how far its buffers moved the timeline forward (ns).
    play_delay: Option<i64>,
    stalled_by: u64,
    segments: u64,
    /// When the Segment being output was ready (running time, ns): its lateness is
    /// judged by it, not by when a sink pacing the streaming thread let it out.
    ready: Option<u64>,
    /// When the element last went to PLAYING: a Segment ready while it was paused
    /// counts as ready then (a live source's running time stands still in PAUSED).
    playing_since: Option<std::time::Instant>,
}

/// Lock discipline: `state` and `settings` are held only for bookkeeping, never while
/// waiting for the client's events or posting a message (a bus sync handler reading
/// `stats` runs on the posting thread and takes `state`).
#[derive(Default)]
pub struct CrumbSrc {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// The client's events, taken out of the client so that waiting for them holds
    /// no lock `stats` needs; only the streaming thread and start/stop take it.
    events: Mutex<Option<std::sync::mpsc::Receiver<ClientEvent>>>,
    flushing: AtomicBool,
    /// The sometimes pad `audio`, added when the window says the channel carries audio.
    audiopad: Mutex<Option<gst::Pad>>,
    /// The latency both pads answer, ns: `latency`, or by default
    /// `DEFAULT_PLAYOUT_DELAY` (the player's delay beyond it, up to the channel's
    /// longest Segment, is in the timestamps).
    latency: AtomicU64,
}

/// Settings with the values start needs, each checked by its property's rule.
type Validated = (Settings, String, IpAddr, Option<u32>, Option<u32>);

impl CrumbSrc {
    fn validated(&self) -> Result<Validated, gst::ErrorMessage> {
        let s = self.settings.lock().unwrap().clone();
        let url = properties::channel_url("location", s.location.as_deref())?;
        let address = properties::listen_address("address", &s.address)?;
        let min = crate::p2p::session::MIN_RATE_LIMIT_BPS;
        let up = properties::rate_limit("max-upload-rate", s.max_upload_rate, min)?;
        let down = properties::rate_limit("max-download-rate", s.max_download_rate, min)?;
        Ok((s, url, address, up, down))
    }

    /// The element's running time now, ns (0 before it has a clock).
    fn running_time(&self) -> u64 {
        let obj = self.obj();
        match (obj.clock(), obj.base_time()) {
            (Some(c), Some(b)) => c.time().saturating_sub(b).nseconds(),
            _ => 0,
        }
    }

    fn to_buffer(
        &self,
        state: &mut State,
        au: crate::core::reassembly::OutputAu,
        discont: bool,
    ) -> gst::Buffer {
        let latency = self.latency.load(Ordering::SeqCst);
        let now = self.running_time();
        let t = au.pts.or(au.dts).unwrap_or(0);
        let ready = state.ready.map_or(now, |r| r.min(now));
        let stamp = state.playout.stamp(t, now, ready, latency);
        if stamp.stalled {
            gst::info!(
                CAT,
                imp = self,
                "Ready after its play-out time: the timeline moves forward (stall {}, {} in all)",
                state.playout.stalls,
                gst::ClockTime::from_nseconds(state.playout.stall_time)
            );
        }
        let offset = stamp.offset;
        state.stalled_by += stamp.shift;
        if state.play_delay.is_none() {
            state.play_delay = Some(Playout::play_delay(t, offset, ready, latency));
        }
        let discont = discont || stamp.stalled;
        let buf = crate::element::au_buffer(au, discont, |t| {
            gst::ClockTime::from_nseconds(Playout::running(t, offset))
        });
        let end = buf
            .pts()
            .or(buf.dts())
            .map(|t| t + buf.duration().unwrap_or_default());
        if let Some(end) = end {
            state.playout.stamped_until(end.nseconds());
        }
        buf
    }

    /// `location` set: while a client runs, a switch to the new channel (a URL that
    /// is not one is refused with a warning, the old channel kept).
    fn set_location(&self, location: Option<String>) {
        let old = {
            let mut s = self.settings.lock().unwrap();
            std::mem::replace(&mut s.location, location.clone())
        };
        if old == location {
            return;
        }
        let state = self.state.lock().unwrap();
        let Some(client) = state.client.as_ref() else {
            return;
        };
        let refused = match properties::channel_url("location", location.as_deref()) {
            Ok(url) => client.switch(&url).err().map(|e| format!("{e:#}")),
            Err(_) => Some(format!(
                "'{}' is not a channel URL http://HOST:PORT/CHANNEL",
                location.as_deref().unwrap_or("(none)")
            )),
        };
        drop(state);
        if let Some(why) = refused {
            self.settings.lock().unwrap().location = old.clone();
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                (
                    "Not switching channel: {}; staying on {}",
                    why,
                    old.unwrap_or_default()
                )
            );
        } else {
            gst::info!(CAT, imp = self, "Switching to {location:?}");
        }
    }

    fn post_switched(&self, old: &str, new: &str) {
        let msg = gst::message::Element::builder(
            crate::interface::CRUMBSRC_SWITCHED.checked(
                gst::Structure::builder(crate::interface::CRUMBSRC_SWITCHED.name)
                    .field("old-location", old)
                    .field("new-location", new)
                    .build(),
            ),
        )
        .src(&*self.obj())
        .build();
        let _ = self.obj().post_message(msg);
    }

    fn post_relayed(
        &self,
        record: &crate::core::client::RelayRecord,
        from_seed: u64,
        from_peers: u64,
        uploaded: u64,
    ) {
        let msg = gst::message::Element::builder(
            crate::interface::CRUMBSRC_RELAY_SEGMENT.checked(
                gst::Structure::builder(crate::interface::CRUMBSRC_RELAY_SEGMENT.name)
                    .field("seq", record.seq)
                    .field("complete", record.complete())
                    .field("crumbs-done", u32::from(record.crumbs_done))
                    .field("crumbs-total", u32::from(record.crumbs_total))
                    .field("bytes-from-super-seed", from_seed)
                    .field("bytes-from-peers", from_peers)
                    .field("bytes-uploaded", uploaded)
                    .build(),
            ),
        )
        .src(&*self.obj())
        .build();
        let _ = self.obj().post_message(msg);
    }

    /// The audio caps from the window or from crumb 1: the first add the `audio`
    /// pad, different ones are a caps change on it.
    fn audio_caps(&self, caps: &str) -> Result<(), gst::FlowError> {
        let Ok(caps) = caps.parse::<gst::Caps>() else {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                ("The channel announces unparsable audio caps '{}'", caps)
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let mut audiopad = self.audiopad.lock().unwrap();
        if let Some(pad) = audiopad.clone() {
            drop(audiopad);
            if pad.current_caps().as_ref() != Some(&caps) {
                pad.push_event(gst::event::Caps::new(&caps));
            }
            return Ok(());
        }
        let src = self.obj().src_pad().clone();
        // Base source's segment (pushed before its first buffer): a live time segment
        // from 0, the timeline of both pads.
        let segment = src
            .sticky_event::<gst::event::Segment>(0)
            .map(gst::Event::from)
            .unwrap_or_else(|| {
                gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())
            });
        let group = src
            .sticky_event::<gst::event::StreamStart>(0)
            .and_then(|e| e.group_id());
        let pad = crate::element::add_audio_pad(
            self.obj().upcast_ref(),
            &caps,
            segment,
            group,
            Some(gst::ClockTime::from_nseconds(
                self.latency.load(Ordering::SeqCst),
            )),
        )
        .map_err(|err| {
            gst::element_imp_error!(self, gst::CoreError::Pad, ("{}", err));
            gst::FlowError::Error
        })?;
        gst::info!(CAT, imp = self, "The channel carries audio: {caps}");
        *audiopad = Some(pad);
        Ok(())
    }

    fn audio_pad(&self) -> Option<gst::Pad> {
        self.audiopad.lock().unwrap().clone()
    }

    /// The end of the stream on the `audio` pad too (the base source sends it on `src`).
    fn audio_eos(&self) {
        if let Some(pad) = self.audio_pad() {
            pad.push_event(gst::event::Eos::new());
        }
    }

    fn post_segment(
        &self,
        record: crate::core::client::SegmentRecord,
        (from_seed, from_peers): (u64, u64),
        (bytes_output, tail_bytes): (u64, u64),
        duration: u64,
        (play_delay, stall): (Option<i64>, u64),
    ) {
        // Deadline minus finish time; negative when the Segment was late (failed).
        let margin = record.deadline as i128 - record.finished_at as i128;
        let margin = margin.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        let msg = gst::message::Element::builder(
            crate::interface::CRUMBSRC_SEGMENT.checked(
                gst::Structure::builder(crate::interface::CRUMBSRC_SEGMENT.name)
                    .field("seq", record.seq)
                    .field("success", record.successful)
                    .field("complete", record.complete)
                    .field("skipped", record.skipped)
                    .field("d", record.d as u32)
                    .field("d-target", record.d_target as u32)
                    .field("crumbs-done", record.crumbs_done as u32)
                    .field("crumbs-total", record.crumbs_total as u32)
                    .field("time-extension", record.time_extension)
                    .field("rate", record.rate.unwrap_or(0.0))
                    .field("bytes-from-super-seed", from_seed)
                    .field("bytes-from-peers", from_peers)
                    .field("bytes-output", bytes_output)
                    .field("tail-crumb", record.tail.map_or(0, u32::from))
                    .field("tail-bytes", tail_bytes)
                    .field("sole-source", record.sole_source)
                    .field("duration", duration)
                    .field("deadline-margin", margin)
                    .field("play-delay", play_delay.unwrap_or(0))
                    .field("stall", stall)
                    .build(),
            ),
        )
        .src(&*self.obj())
        .build();
        let _ = self.obj().post_message(msg);
    }

    fn post_restart(&self, r: &crate::core::client::Restart) {
        let sign = match r.sign {
            crate::core::client::RestartSign::Epoch => "epoch",
            crate::core::client::RestartSign::NumbersBack => "numbers-back",
        };
        let msg = gst::message::Element::builder(
            crate::interface::CRUMBSRC_CHANNEL_RESTARTED.checked(
                gst::Structure::builder(crate::interface::CRUMBSRC_CHANNEL_RESTARTED.name)
                    .field("sign", sign)
                    .field("old-epoch", r.old_epoch.unwrap_or(u64::MAX))
                    .field("new-epoch", r.new_epoch.unwrap_or(u64::MAX))
                    .field("old-latest", r.old_latest.unwrap_or(u64::MAX))
                    .field("new-latest", r.new_latest.unwrap_or(u64::MAX))
                    .build(),
            ),
        )
        .src(&*self.obj())
        .build();
        let _ = self.obj().post_message(msg);
    }

    fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let (t, port) = match (&state.client, &state.last_totals) {
            (Some(c), _) => (c.totals.lock().unwrap().clone(), c.p2p_port as u32),
            (None, Some(t)) => (t.clone(), 0),
            (None, None) => (Default::default(), 0),
        };
        let e = &t.engine;
        crate::interface::CRUMBSRC_STATS.checked(
            gst::Structure::builder(crate::interface::CRUMBSRC_STATS.name)
                .field("segments-successful", e.segments_successful)
                .field("segments-failed", e.segments_failed)
                .field("segments-skipped", e.segments_skipped)
                .field("segments-complete", e.segments_complete)
                .field("mean-d", e.mean_d)
                .field("d", e.d_current as u32)
                .field("quality-switches", e.quality_switches)
                .field("startup-delay", e.startup_delay.unwrap_or(u64::MAX))
                .field("time-extension", e.time_extension_last)
                .field("rate", e.rate.unwrap_or(0.0))
                .field("bytes-downloaded", t.bytes_downloaded)
                .field("bytes-uploaded", t.bytes_uploaded)
                .field("bytes-from-super-seed", t.bytes_from_super_seed)
                .field("bytes-from-peers", t.bytes_from_peers)
                .field("pieces-stolen", t.pieces_stolen)
                .field("crumbs-malformed", t.crumbs_malformed)
                .field("torrents-seeding", t.torrents_seeding as u64)
                .field("super-seed-fallbacks", e.super_seed_fallbacks)
                .field("urgent-fallbacks", e.urgent_fallbacks)
                .field("sole-source-crumbs", e.sole_source_crumbs)
                .field("sole-source-opened", e.sole_source_opened)
                .field("super-seed-take-overs", e.super_seed_take_overs)
                .field("crumbs-filled", e.crumbs_filled)
                .field("tail-crumbs", e.tail_crumbs)
                .field("tail-crumbs-whole", e.tail_crumbs_whole)
                .field("tail-bytes", t.tail_bytes)
                .field("channel-restarts", e.channel_restarts)
                .field("channel-switches", e.channel_switches)
                .field("playout-stalls", state.playout.stalls)
                .field("playout-stall-time", state.playout.stall_time)
                .field("segments-relayed", e.segments_relayed)
                .field("segments-relay-incomplete", e.segments_relay_incomplete)
                .field("crumbs-relayed", e.crumbs_relayed)
                .field("upload-limit", t.upload_limit.unwrap_or(0))
                .field("uplink-delay", t.uplink_delay.unwrap_or(u64::MAX))
                .field("p2p-port", port)
                .build(),
        )
    }
}

#[glib::object_subclass]
impl ObjectSubclass for CrumbSrc {
    const NAME: &'static str = "GstCrumbSrc";
    type Type = super::CrumbSrc;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for CrumbSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("Channel URL, http://HOST:PORT/CHANNEL (crumbsink's url); set while playing, the client switches channel: it joins the new one at its start index, base layer first")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-crumbs")
                    .nick("Maximum crumbs")
                    .blurb("Never fetch more than this many crumbs of a Segment (caps D; 0 = no cap, 1 = base layer only)")
                    .maximum(u16::MAX as u32)
                    .default_value(DEFAULT_MAX_CRUMBS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("adaptation", DEFAULT_ADAPTATION)
                    .nick("Adaptation")
                    .blurb("How D, the crumbs fetched per Segment, adapts: rate-based (default: D from the measured rate each Segment, raised one crumb at a time while the Segment's duration has room for it) or the paper's D+1/D-1 rule")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-upload-rate")
                    .nick("Maximum upload rate")
                    .blurb("Upload cap to other clients in bytes/s (0 = unlimited; else at least 1024)")
                    .default_value(DEFAULT_RATE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-download-rate")
                    .nick("Maximum download rate")
                    .blurb("Download cap in bytes/s, to act out a slow link (0 = unlimited; else at least 1024)")
                    .default_value(DEFAULT_RATE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("address")
                    .nick("Address")
                    .blurb("IP address this client's BitTorrent session listens on (others fetch from it there)")
                    .default_value(Some(DEFAULT_ADDRESS))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("latency")
                    .nick("Latency")
                    .blurb("Playback delay in ns (answered in the latency query): a run's first Segment plays this plus the channel's longest Segment minus its own (room for the Segments to grow) after its output; its buffers carry that running time less the latency answered. GST_CLOCK_TIME_NONE (the default, 18446744073709551615) = the channel's longest Segment (its window's max_duration), at least 3 s: the latency query answers 3 s and the rest is in the timestamps. At the live edge a Segment is fetched between its publication and the end of the one before it, so less room than a Segment fetches fewer crumbs than the link carries. The engine's deadlines are the play-out times. A Segment ready after its play-out time (not merely pushed after it, held by a synced sink downstream) moves the timeline forward to play this long after its output, marked DISCONT (stats: playout-stalls)")
                    .default_value(DEFAULT_LATENCY)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("mode", SrcMode::Play)
                    .nick("Mode")
                    .blurb("play: race Segments and output the stream; relay: fetch and seed every crumb (an extra super seed), no output")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt64::builder("start")
                    .nick("Start")
                    .blurb("On-demand: play an archived channel from this Segment (-1 = live, from the channel's start index)")
                    .minimum(-1)
                    .default_value(DEFAULT_START)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("start-offset")
                    .nick("Start offset")
                    .blurb("Live: join this many Segments behind the newest in the channel's window instead of at the channel's start index (its own start-offset, 3 by default). A line that can race the live edge (a few times the stream's full rate) watches that much closer to live; at the edge every client fetches a Segment while few peers hold it (docs/swarm.md, thirteenth round). -1 = the channel's start index")
                    .minimum(-1)
                    .maximum(1000)
                    .default_value(DEFAULT_START_OFFSET)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt64::builder("peer-patience")
                    .nick("Peer patience")
                    .blurb("Peers first, the super seed as the deadline's fallback: ms a crumb is fetched from peers alone (plus the time its first piece takes at the rate measured when the crumb is asked for; at most half the time to its deadline) before the super seed is asked, when the crumb has no byte yet or its pace would miss the deadline. A crumb 1 that needs more than half the time left at the measured rate is asked of the super seed at once, beside the peers; if it then gets no byte for the patience plus two pieces' time while the link is idle, and it has no byte at all or the line has room for the rest, the super seed takes over the pieces peers hold (stats: super-seed-take-overs). -1 = never ask (use the super seed only when the tracker hands it out)")
                    .minimum(-1)
                    .maximum(600_000)
                    .default_value(DEFAULT_PEER_PATIENCE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("uplink-target-delay")
                    .nick("Uplink target delay")
                    .blurb("Upload governor (LEDBAT's rule): ms of queueing delay this client's seeding may add on its own uplink, read from the one-way delay of its window polls; above it the upload limit halves, well below it grows; it starts at a quarter of the measured download rate, and a line whose measured download rate is under 256 kbit/s uploads nothing. 0 = off (uploads limited only by max-upload-rate)")
                    .maximum(10_000)
                    .default_value(DEFAULT_UPLINK_TARGET_DELAY)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("window-hold")
                    .nick("Window hold")
                    .blurb("While waiting for the next Segment, ms the channel may hold a window poll until that Segment is published (a blocking reload, ?wait=; at most 5000, and at most half the time left before stall-timeout): the Segment begins the moment it is out instead of up to 500 ms later. Swarm bench: 0.2-0.3 s less latency; channel upload per client 474 against 458 kbit/s (means of 9 and 5 runs, within their spread: clients at the live edge begin together). 0 = poll every 500 ms")
                    .maximum(crate::channel::MAX_WINDOW_WAIT_MS as u32)
                    .default_value(DEFAULT_WINDOW_HOLD)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("tail-crumb")
                    .nick("Tail crumb")
                    .blurb("At the live edge (the next Segment not out yet), when crumb D+1 cannot arrive whole within the Segment's duration, fetch it anyway from peers, asked for as crumb D ends, and output what its verified pieces hold from its start (whole access units, a spatial layer up to a key frame) after crumbs 1..D, when the next Segment comes out or one piece's time before it is due; its bytes after crumbs 1..D are in do not count in the measured rate (adaptation=rate, not a run's first Segment, on the player's timeline; stats: tail-crumbs, tail-bytes)")
                    .default_value(DEFAULT_TAIL_CRUMB)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("prepared-crumbs")
                    .nick("Prepared crumbs")
                    .blurb("Crumbs started ahead of their turn with their piece requests held: behind the live edge (a newer Segment is out), while crumbs download, the next this many after the last one asked for (up to D) fetch their .torrent, announce and connect to their peers, so that their first request goes out the moment they are asked for instead of after a start-up through a queue full of the crumbs before them. A connection held more than about 10 s may time out (librqbit's read timeout) and reconnect. 0 = each crumb starts when it is asked for (the default: measured no better on the swarm bench)")
                    .maximum(8)
                    .default_value(DEFAULT_PREPARED_CRUMBS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("stall-timeout")
                    .nick("Stall timeout")
                    .blurb("ms without a sign of life from the channel (no answer, no new Segment in the window, or no byte of any crumb) after which crumbsrc posts a warning and a crumbsrc-stalled message and ends the stream (EOS); at least two of the longest Segments seen. 0 = wait forever")
                    .maximum(3_600_000)
                    .default_value(DEFAULT_STALL_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("client-id")
                    .nick("Client id")
                    .blurb("Id in the reports to the channel (default: random)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(&crate::interface::CRUMBSRC_STATS.blurb())
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == "location" {
            return self.set_location(value.get().unwrap());
        }
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "max-crumbs" => s.max_crumbs = value.get().unwrap(),
            "adaptation" => s.adaptation = value.get().unwrap(),
            "max-upload-rate" => s.max_upload_rate = value.get().unwrap(),
            "max-download-rate" => s.max_download_rate = value.get().unwrap(),
            "address" => {
                s.address = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| DEFAULT_ADDRESS.into())
            }
            "latency" => s.latency = value.get().unwrap(),
            "mode" => s.mode = value.get().unwrap(),
            "start" => s.start = value.get().unwrap(),
            "start-offset" => s.start_offset = value.get().unwrap(),
            "client-id" => s.client_id = value.get().unwrap(),
            "peer-patience" => s.peer_patience = value.get().unwrap(),
            "window-hold" => s.window_hold = value.get().unwrap(),
            "uplink-target-delay" => s.uplink_target_delay = value.get().unwrap(),
            "stall-timeout" => s.stall_timeout = value.get().unwrap(),
            "tail-crumb" => s.tail_crumb = value.get().unwrap(),
            "prepared-crumbs" => s.prepared_crumbs = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => s.location.to_value(),
            "max-crumbs" => s.max_crumbs.to_value(),
            "adaptation" => s.adaptation.to_value(),
            "max-upload-rate" => s.max_upload_rate.to_value(),
            "max-download-rate" => s.max_download_rate.to_value(),
            "address" => s.address.to_value(),
            "latency" => s.latency.to_value(),
            "mode" => s.mode.to_value(),
            "start" => s.start.to_value(),
            "start-offset" => s.start_offset.to_value(),
            "client-id" => s.client_id.to_value(),
            "peer-patience" => s.peer_patience.to_value(),
            "window-hold" => s.window_hold.to_value(),
            "uplink-target-delay" => s.uplink_target_delay.to_value(),
            "stall-timeout" => s.stall_timeout.to_value(),
            "tail-crumb" => s.tail_crumb.to_value(),
            "prepared-crumbs" => s.prepared_crumbs.to_value(),
            "stats" => {
                drop(s);
                self.stats().to_value()
            }
            _ => unimplemented!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
        obj.set_do_timestamp(false);
    }
}

impl GstObjectImpl for CrumbSrc {}

impl ElementImpl for CrumbSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Crumb channel source",
                "Source/Network",
                "Watches a crumbs channel: races Segments against their deadlines over BitTorrent, adapts the crumbs fetched to the link, seeds to other clients, outputs the layered stream",
                "crumbs developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &crate::element::video_caps(),
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "audio",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &crate::element::audio_caps(),
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
        // Wrong properties fail here, not when the first Segment is due (start checks
        // again: READY still lets them change).
        if transition == gst::StateChange::NullToReady
            && let Err(e) = self.validated()
        {
            self.post_error_message(e);
            return Err(gst::StateChangeError);
        }
        let res = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToPlaying {
            self.state.lock().unwrap().playing_since = Some(std::time::Instant::now());
        }
        if transition == gst::StateChange::PausedToReady {
            // The next run adds it again when the channel carries audio.
            self.remove_audio_pad();
        }
        Ok(res)
    }
}

impl CrumbSrc {
    fn remove_audio_pad(&self) {
        if let Some(pad) = self.audiopad.lock().unwrap().take() {
            let _ = pad.set_active(false);
            let _ = self.obj().remove_pad(&pad);
        }
    }
}

impl BaseSrcImpl for CrumbSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let (s, url, address, max_upload_rate, max_download_rate) = self.validated()?;
        let client_id = s
            .client_id
            .clone()
            .unwrap_or_else(|| format!("crumbsrc-{:016x}", rand_id()));
        let settings = ClientSettings {
            url: url.clone(),
            listen_address: address,
            max_upload_rate,
            max_download_rate,
            engine: ClientConfig {
                adaptation: match s.adaptation {
                    AdaptationMode::Paper => Adaptation::Paper,
                    AdaptationMode::Rate => Adaptation::RateBased,
                },
                max_crumbs: s.max_crumbs.min(u16::MAX as u32) as u16,
                peer_patience: u64::try_from(s.peer_patience).ok().map(|ms| ms * 1_000_000),
                stall_timeout: (s.stall_timeout > 0)
                    .then(|| u64::from(s.stall_timeout) * 1_000_000),
                rate_cap: max_download_rate.map(f64::from),
                // The player's timeline: the engine's deadlines are its play-out times.
                playout_delay: s.latency,
                start_offset: u64::try_from(s.start_offset).ok(),
                tail_crumb: s.tail_crumb,
                prepare_ahead: s.prepared_crumbs.min(8) as u16,
                ..Default::default()
            },
            mode: match s.mode {
                SrcMode::Play => Mode::Play,
                SrcMode::Relay => Mode::Relay,
            },
            start: (s.start >= 0).then_some(s.start as u64),
            uplink: (s.uplink_target_delay > 0).then(|| UplinkConfig {
                target_delay: u64::from(s.uplink_target_delay) * 1_000_000,
                ..Default::default()
            }),
            client_id,
            window_hold: Duration::from_millis(u64::from(s.window_hold)),
        };
        let latency = match s.latency {
            PLAYOUT_DELAY_AUTO => crate::core::client::DEFAULT_PLAYOUT_DELAY,
            l => l,
        };
        self.latency.store(latency, Ordering::SeqCst);
        // Spool folders of killed clients and channels (best effort).
        let sweep = crate::spool::remove_stale_folders(&std::env::temp_dir());
        for p in &sweep.removed {
            gst::info!(
                CAT,
                imp = self,
                "Removed stale spool folder {}",
                p.display()
            );
        }
        for (p, e) in &sweep.failed {
            gst::warning!(
                CAT,
                imp = self,
                "Cannot remove stale spool folder {}: {e}",
                p.display()
            );
        }
        let mut client = Client::start(settings).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Cannot join channel {}: {:#}", url, e)
            )
        })?;
        gst::info!(
            CAT,
            imp = self,
            "Joining {url} (BitTorrent port {})",
            client.p2p_port
        );
        let (_, idle) = std::sync::mpsc::channel();
        *self.events.lock().unwrap() = Some(std::mem::replace(&mut client.events, idle));
        *self.state.lock().unwrap() = State {
            client: Some(client),
            ..Default::default()
        };
        self.flushing.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let client = self.state.lock().unwrap().client.take();
        *self.events.lock().unwrap() = None;
        if let Some(mut c) = client {
            c.stop();
            self.state.lock().unwrap().last_totals = Some(c.totals.lock().unwrap().clone());
        }
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let latency = gst::ClockTime::from_nseconds(self.latency.load(Ordering::SeqCst));
            q.set(true, latency, gst::ClockTime::NONE);
            return true;
        }
        BaseSrcImplExt::parent_query(self, query)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(false, Ordering::SeqCst);
        Ok(())
    }
}

impl PushSrcImpl for CrumbSrc {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        loop {
            if self.flushing.load(Ordering::SeqCst) {
                return Err(gst::FlowError::Flushing);
            }
            let event = {
                let events = self.events.lock().unwrap();
                let Some(events) = events.as_ref() else {
                    return Err(gst::FlowError::Flushing);
                };
                events.recv_timeout(Duration::from_millis(50))
            };
            let event = match event {
                Ok(e) => e,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    self.audio_eos();
                    return Err(gst::FlowError::Eos);
                }
            };
            match event {
                ClientEvent::Output(Output::Caps(caps)) => {
                    let caps = crate::element::output_caps(&caps).map_err(|e| {
                        gst::element_imp_error!(self, gst::StreamError::Format, ("{}", e));
                        gst::FlowError::NotNegotiated
                    })?;
                    if self.obj().set_caps(&caps).is_err() {
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Negotiation,
                            ("Downstream refused the channel's caps {}", caps)
                        );
                        return Err(gst::FlowError::NotNegotiated);
                    }
                }
                ClientEvent::Playout { play_in, ready } => {
                    // The sink adds the latency answered at start: the engine's plan
                    // (its delay, with the default the channel's longest Segment, and
                    // the room) is in the timestamps, at least the margin from now.
                    // (Not a latency message: an application that does not recalculate
                    // on it, as a bare pipeline does not, would leave the sink playing
                    // earlier than the engine fetches for.)
                    let answered = self.latency.load(Ordering::SeqCst) as i64;
                    // The event may have waited while downstream held this thread:
                    // the Segment was ready that long before now.
                    let mut state = self.state.lock().unwrap();
                    let waited = match state.playing_since {
                        Some(playing) => ready.elapsed().min(playing.elapsed()),
                        None => Duration::ZERO,
                    };
                    let waited = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
                    let ready = self.running_time().saturating_sub(waited);
                    state.ready = Some(ready);
                    if let Some(play_in) = play_in {
                        let play_in = play_in.max(PLAYOUT_MARGIN as i64);
                        state.playout.set_lead(play_in - answered);
                    }
                }
                ClientEvent::Output(Output::Gap { pts, duration }) => {
                    let offset = self.state.lock().unwrap().playout.offset();
                    if let Some(off) = offset {
                        let start = gst::ClockTime::from_nseconds(Playout::running(pts, off));
                        let ev = gst::event::Gap::builder(start)
                            .duration(gst::ClockTime::from_nseconds(duration))
                            .build();
                        // A lost Segment is lost for both: one gap on each pad.
                        if let Some(audio) = self.audio_pad() {
                            audio.push_event(ev.clone());
                        }
                        self.obj().src_pad().push_event(ev);
                    }
                }
                ClientEvent::Channel {
                    audio_caps: Some(caps),
                } => self.audio_caps(&caps)?,
                ClientEvent::Channel { audio_caps: None } => {
                    // Video only: the element has all its pads.
                    self.obj().no_more_pads();
                }
                ClientEvent::Output(Output::AudioCaps(caps)) => self.audio_caps(&caps)?,
                ClientEvent::Output(Output::Audio { frame, discont }) => {
                    // A window without audio caps and crumbs with audio: the pad
                    // comes with crumb 1's caps (AudioCaps came first).
                    let Some(audio) = self.audio_pad() else {
                        continue;
                    };
                    let buf = {
                        let mut state = self.state.lock().unwrap();
                        self.to_buffer(&mut state, frame, discont)
                    };
                    if let Err(err) = crate::element::audio_flow(audio.push(buf)) {
                        if err == gst::FlowError::Flushing {
                            return Err(err);
                        }
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Failed,
                            ("Cannot push audio: {:?}", err)
                        );
                        return Err(err);
                    }
                }
                ClientEvent::Output(Output::Au { au, discont }) => {
                    let mut state = self.state.lock().unwrap();
                    let buf = self.to_buffer(&mut state, au, discont);
                    return Ok(CreateSuccess::NewBuffer(buf));
                }
                ClientEvent::Segment {
                    record,
                    bytes_from_super_seed,
                    bytes_from_peers,
                    bytes_output,
                    tail_bytes,
                    duration,
                } => {
                    let playout = {
                        let mut state = self.state.lock().unwrap();
                        state.segments += 1;
                        let stalled_by = std::mem::take(&mut state.stalled_by);
                        (state.play_delay.take(), stalled_by)
                    };
                    self.post_segment(
                        record,
                        (bytes_from_super_seed, bytes_from_peers),
                        (bytes_output, tail_bytes),
                        duration,
                        playout,
                    );
                }
                ClientEvent::Error(text) => {
                    gst::element_imp_error!(self, gst::ResourceError::Read, ("{}", text));
                    return Err(gst::FlowError::Error);
                }
                ClientEvent::Restarted(r) => {
                    gst::info!(CAT, imp = self, "The channel restarted: {r:?}");
                    // The new run's timestamps start over: the next buffer is anchored
                    // anew, `latency` after now.
                    self.state.lock().unwrap().playout.restart();
                    self.post_restart(&r);
                }
                ClientEvent::Switched { old, new } => {
                    gst::info!(CAT, imp = self, "Left {old} for {new}");
                    // The restart's path: the new channel's timestamps are anchored
                    // anew, `latency` after now and never before the last buffer.
                    self.state.lock().unwrap().playout.restart();
                    self.post_switched(&old, &new);
                }
                ClientEvent::Relayed {
                    record,
                    bytes_from_super_seed,
                    bytes_from_peers,
                    bytes_uploaded,
                } => {
                    self.post_relayed(
                        &record,
                        bytes_from_super_seed,
                        bytes_from_peers,
                        bytes_uploaded,
                    );
                }
                ClientEvent::Stalled {
                    reason,
                    stalled_for,
                    timeout,
                } => {
                    let url = self.settings.lock().unwrap().location.clone();
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Read,
                        (
                            "Channel {} stalled: {} for {} ms (stall-timeout {} ms): end of stream",
                            url.unwrap_or_default(),
                            reason.describe(),
                            stalled_for / 1_000_000,
                            timeout / 1_000_000
                        )
                    );
                    let msg = gst::message::Element::builder(
                        crate::interface::CRUMBSRC_STALLED.checked(
                            gst::Structure::builder(crate::interface::CRUMBSRC_STALLED.name)
                                .field("reason", reason.as_str())
                                .field("stalled-for", stalled_for)
                                .field("timeout", timeout)
                                .build(),
                        ),
                    )
                    .src(&*self.obj())
                    .build();
                    let _ = self.obj().post_message(msg);
                    self.audio_eos();
                    return Err(gst::FlowError::Eos);
                }
            }
        }
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}
