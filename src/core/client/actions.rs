// SPDX-License-Identifier: MPL-2.0
//! What the engine tells its caller: actions, the records of Segments and relayed
//! Segments, reports, restarts, stalls and stats.

use super::*;

/// What the caller must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Fetch the channel's window and pass it to [`ClientEngine::on_window`].
    FetchWindow,
    /// On-demand: fetch an archived Segment's document for [`ClientEngine::on_segment`]
    /// (or report [`ClientEngine::on_segment_unavailable`]).
    FetchSegment { seq: u64 },
    /// Start fetching crumb `index` of Segment `seq` (or let it request its pieces,
    /// when it was prepared).
    Download { seq: u64, index: u16 },
    /// Start crumb `index` of Segment `seq` ahead of its turn with its piece requests
    /// held (see [`ClientConfig::prepare_ahead`]): its .torrent, tracker and peer
    /// handshakes overlap the crumbs before it. A [`Action::Download`] for it follows
    /// when its turn comes, or a [`Action::Cancel`] when the Segment ends first.
    Prepare { seq: u64, index: u16 },
    /// Stop fetching this crumb: its Segment is over (keep seeding what is complete).
    Cancel { seq: u64, index: u16 },
    /// Peers are too slow for this crumb's deadline: connect it to the super seed
    /// (see [`ClientConfig::peer_patience`]). Once per crumb. `take_over`: the peers,
    /// not the link, are what is slow (no byte yet, or a pace under half of R), so the
    /// super seed should take over the pieces they hold at once; otherwise it is one
    /// more source (pieces taken over on a full link arrive twice through it).
    /// `alone`: asked as the crumb starts, and the super seed is its only source
    /// (no tracker, no other peer: see `SOLE_SOURCE_SHARE`).
    UseSuperSeed {
        seq: u64,
        index: u16,
        take_over: bool,
        alone: bool,
    },
    /// Hand crumbs 1..=d of Segment `seq` to reassembly; d = 0: the Segment is skipped.
    Output {
        seq: u64,
        d: u16,
        record: SegmentRecord,
    },
    /// Send this report to the channel (feeds rho).
    Report(ClientReport),
    /// The channel restarted: drop every crumb, torrent and Segment document of the
    /// old run (its numbers may come back with other content) and restart reassembly.
    /// A [`Action::FetchWindow`] follows, for the whole new window.
    ChannelRestarted(Restart),
    /// The channel showed no sign of life for `stall_timeout`: end the stream. Emitted
    /// once; the engine does nothing after it.
    Stalled { reason: StallReason, since: u64 },
    /// Relay: the engine is done with this Segment's crumbs (all fetched, or the
    /// Segment left the window first).
    Relayed(RelayRecord),
}

/// What a relay did with one Segment (for the element's per-Segment message).
#[derive(Clone, Debug, PartialEq)]
pub struct RelayRecord {
    pub seq: u64,
    /// Crumbs complete (fetched and seeded).
    pub crumbs_done: u16,
    /// N.
    pub crumbs_total: u16,
}

impl RelayRecord {
    /// Every crumb fetched (otherwise the Segment left the window first).
    pub fn complete(&self) -> bool {
        self.crumbs_done >= self.crumbs_total
    }
}

/// How a channel restart was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartSign {
    /// The window's epoch changed (or appeared, or went).
    Epoch,
    /// The newest Segment number went back.
    NumbersBack,
}

/// A channel restart, for the element's message.
#[derive(Clone, Debug, PartialEq)]
pub struct Restart {
    pub sign: RestartSign,
    pub old_epoch: Option<u64>,
    pub new_epoch: Option<u64>,
    /// The old run's newest Segment seen.
    pub old_latest: Option<u64>,
    /// The new run's newest Segment (None: nothing published yet).
    pub new_latest: Option<u64>,
}

/// Which sign of life was missing for `stall_timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallReason {
    /// No window (or Segment document) answered.
    NoAnswer,
    /// Windows answered, but no new Segment appeared in them.
    WindowFrozen,
    /// Segments were there, but no byte of any crumb arrived.
    NothingFetched,
}

impl StallReason {
    /// The name in crumbsrc's messages.
    pub fn as_str(self) -> &'static str {
        match self {
            StallReason::NoAnswer => "no-answer",
            StallReason::WindowFrozen => "window-frozen",
            StallReason::NothingFetched => "nothing-fetched",
        }
    }

    /// What happened, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            StallReason::NoAnswer => "the channel did not answer",
            StallReason::WindowFrozen => "the channel published no new Segment",
            StallReason::NothingFetched => "no byte of any crumb could be fetched",
        }
    }
}

/// A Segment's report to the channel: [`ReportDoc`] without the client's ids.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientReport {
    pub seq: u64,
    pub successful: bool,
    pub complete: bool,
    pub d: u16,
    /// R in bytes/s, 0 when unknown.
    pub rate: f64,
    /// Crumb 1 was asked of the super seed alone ([`Action::UseSuperSeed`]'s `alone`).
    pub sole_source: bool,
}

impl ClientReport {
    /// The document for client `client_id` whose BitTorrent session announces as
    /// `peer_id` (the channel counts reports of peers it knows only).
    pub fn to_doc(&self, client_id: &str, peer_id: Option<[u8; 20]>) -> ReportDoc {
        ReportDoc {
            client_id: client_id.to_owned(),
            seq: self.seq,
            successful: self.successful,
            complete: self.complete,
            d: self.d,
            rate: self.rate,
            peer_id: peer_id.map(|id| crate::core::api::hex(&id)),
            sole_source: self.sole_source,
        }
    }
}

/// What happened to one Segment (for the element's per-Segment message).
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentRecord {
    pub seq: u64,
    /// Left the window (or unavailable) before the engine got to it: never attempted.
    pub skipped: bool,
    /// Crumb 1 complete by the deadline.
    pub successful: bool,
    /// Crumbs 1..=D complete by the deadline.
    pub complete: bool,
    /// Crumbs output (the longest complete prefix; 0 when not successful).
    pub d: u16,
    /// D, the crumbs the engine aimed for.
    pub d_target: u16,
    /// Crumbs complete, any index.
    pub crumbs_done: u16,
    /// N.
    pub crumbs_total: u16,
    /// TE granted to this Segment, ns.
    pub time_extension: u64,
    /// R when the Segment was done, bytes/s.
    pub rate: Option<f64>,
    pub started_at: u64,
    pub deadline: u64,
    pub finished_at: u64,
    /// With a player: when its first frame is to play (engine clock, ns), the time
    /// crumbsrc's play-out anchors it at when it starts or moves the timeline.
    pub plays_at: Option<u64>,
    /// The tail crumb (see [`ClientConfig::tail_crumb`]): crumb d + 1, incomplete,
    /// whose verified pieces from its start go out after crumbs 1..=d.
    pub tail: Option<u16>,
    /// Crumb 1 was asked of the super seed alone ([`Action::UseSuperSeed`]'s `alone`).
    pub sole_source: bool,
}

/// Running counters, for crumbsrc's `stats` property.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientStats {
    pub segments_successful: u64,
    pub segments_failed: u64,
    /// Segments never attempted (left the window, missing, unavailable).
    pub segments_skipped: u64,
    /// Successful Segments with all D crumbs.
    pub segments_complete: u64,
    /// Mean crumbs output over successful Segments.
    pub mean_d: f64,
    /// Changes of the output d between consecutive successful Segments.
    pub quality_switches: u64,
    /// First Output with d > 0 minus the engine's creation, ns.
    pub startup_delay: Option<u64>,
    /// TE of the Segment begun last, ns.
    pub time_extension_last: u64,
    /// Crumbs for which the super seed was asked (peers too slow).
    pub super_seed_fallbacks: u64,
    /// Of those, crumbs 1 asked of it at once, too big for the time left at R.
    pub urgent_fallbacks: u64,
    /// Of those, crumbs 1 fetched from the super seed alone (a line that needs over
    /// half of |s| for one at the best R it has shown, see `SOLE_SOURCE_SHARE`).
    pub sole_source_crumbs: u64,
    /// Of those, crumbs whose super seed sent nothing in their time: taken over
    /// and opened to the tracker's peers (the super seed is overloaded).
    pub sole_source_opened: u64,
    /// Crumbs whose pieces the super seed was told to take over from peers: at the
    /// fallback (a pace well under R) or later, when the crumb stalled (see
    /// [`STALL_PIECES`]).
    pub super_seed_take_overs: u64,
    /// D of the current (or last) Segment.
    pub d_current: u16,
    /// Crumbs added to a Segment's D while it was fetched (the fill: time to spare
    /// within its |s|).
    pub crumbs_filled: u64,
    /// Tail crumbs asked for (see [`ClientConfig::tail_crumb`]), and of those, the
    /// ones that arrived whole before their Segment was done.
    pub tail_crumbs: u64,
    pub tail_crumbs_whole: u64,
    /// Channel restarts seen (epoch changed or numbers went back).
    pub channel_restarts: u64,
    /// Channels switched to by the viewer ([`ClientEngine::switch_channel`]).
    pub channel_switches: u64,
    /// Relay: Segments with every crumb fetched.
    pub segments_relayed: u64,
    /// Relay: Segments that left the window with some crumb not fetched.
    pub segments_relay_incomplete: u64,
    /// Relay: crumbs fetched.
    pub crumbs_relayed: u64,
    pub rate: Option<f64>,
    pub current_seq: Option<u64>,
}

/// Why a window was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    #[error("channel API version {0} is not supported (expected {API_VERSION})")]
    Version(u32),
}
