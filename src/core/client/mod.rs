// SPDX-License-Identifier: MPL-2.0
//! The Client Engine (paper, section 3.2): Segment selection with Time Extensions,
//! racing toward x, re-initialisation on failure, and Crumb selection with adaptive D.
//!
//! Sans-IO, like quinn-proto: the caller (crumbsrc, or a swarm simulator) feeds events
//! with an explicit `now` (ns, any monotonic origin) and carries out the [`Action`]s
//! from [`ClientEngine::poll_actions`]. No clock, socket or runtime in here. Driving
//! it: after any event call `poll_actions(now)`, and call `tick` (or `poll_actions`)
//! again by [`ClientEngine::next_wakeup`]. How many crumbs (D) is decided in
//! [`super::rate::choose_d`], when to fetch them here.
//!
//! Semantics chosen (the paper leaves them open):
//! - A Segment s is begun at t_s; its deadline is t_s + |s| + TE_s. It is *successful*
//!   when crumb 1 completes at or before the deadline, *complete* when crumbs 1..=D do.
//! - The engine is *done* with s, and moves on, when all D crumbs are complete (time t)
//!   or at the deadline, whichever comes first. An event stamped exactly at the
//!   deadline still counts. Then it emits [`Action::Output`] (the longest complete
//!   prefix, 0 when crumb 1 is missing) and [`Action::Report`].
//! - The first Segment of a run (a new client, after a channel restart or switch)
//!   starts with TE = the playout delay ([`ClientConfig::playout_delay`], crumbsrc's
//!   `latency`): nothing plays before it, and its successors are timed from its
//!   output (below), so failing it sooner would only start the run again later.
//! - With a player (`playout_delay` > 0) the deadlines are the player's: a Segment
//!   plays when the one before it has played, so deadline_{s+1} = play_s + |s| -
//!   [`PLAYOUT_MARGIN`], where play_s is deadline_s + the margin, or, for the first
//!   Segment of a run (or one begun after its play-out time had passed: the player
//!   stalls there), its output time + playout delay + the lead crumbsrc keeps for the
//!   channel's longest Segment (the window's `max_duration` - |s|, `core::playout`).
//!   So when the Segments grow from 2 to 4 s at the live edge, the 4 s one has the
//!   time the player has, not 4 s from its publication (swarm bench: a player
//!   stalled 3-6 s there while the engine called the Segment in time); and a first
//!   Segment done early gives its successors the time its player holds. Below, the
//!   paper's deadlines, which stay the rule with no player.
//! - TE_{s+1} = deadline_s - t_{s+1}, never negative. When s+1 is already known, t_{s+1}
//!   is when s was done (at its deadline, not when a late `tick` noticed it), so
//!   deadline_{s+1} = deadline_s + |s+1|: spare time accumulates over any number of
//!   early Segments. Waiting at the live edge for x+1 eats into TE.
//! - Failure (crumb 1 missing at the deadline): TE is forgotten, D is re-estimated by
//!   eq. 3, and a fresh window is fetched for a new x'. The engine never goes back
//!   to a Segment before the failed one: it starts at max(x', failed + 1).
//! - A Segment that left the window before the engine got to it is skipped, and the
//!   engine jumps to x' of the window at hand (TE reset, D kept: being late says
//!   nothing about the link). A sequence number missing *inside* the window (the
//!   channel failed to publish it) is skipped without touching TE.
//! - A channel restart (the window's epoch changed, or its newest Segment number went
//!   back) drops everything of the old run: the Segment in progress is cancelled
//!   without output, TE and D are forgotten, and the engine asks for the whole new
//!   window at once ([`Action::ChannelRestarted`], then [`Action::FetchWindow`]) and
//!   starts at its x' like a new client. A restarted channel that keeps its numbers
//!   but changed its epoch is the same case; one that keeps its numbers and has no
//!   epoch looks like a channel that skipped ahead, which the rule above covers.
//! - A channel switch (crumbsrc's `location` set while playing,
//!   [`ClientEngine::switch_channel`]) is a restart the viewer asked for: the same
//!   forgetting, then the new channel is joined live at its start index like a new
//!   client (base layer first: D starts over), its first window compared with no
//!   epoch of the old one.
//! - Relay: every crumb of the window is fetched once; a Segment is reported
//!   ([`Action::Relayed`]) once all its crumbs are complete, or when it leaves the
//!   window with some missing (given up).
//! - Stall (crumbsrc's `stall-timeout`): no window answered, x did not advance (live),
//!   or no byte of any crumb arrived, for [`ClientConfig::stall_timeout`]: the engine
//!   emits [`Action::Stalled`] once and then nothing more; the caller ends the stream.

use std::collections::{BTreeMap, BTreeSet};

use super::api::{API_VERSION, ReportDoc, SegmentDoc, WindowDoc};
pub use super::rate::{Adaptation, LastSegment, fit_prefix};
use super::rate::{RateEstimator, choose_d};
use super::sole_source;
use super::time::SEC;

mod actions;
mod config;
mod fallback;
mod liveness;
mod relay;
mod requests;
mod restart;
mod tail;

pub use actions::*;
pub use config::*;
pub use liveness::Liveness;

/// Share of the time left to the deadline a crumb may need at its pace before the
/// super seed is asked (the rest is a margin for the pace to drop).
const FALLBACK_PACE_SHARE: f64 = 0.75;

/// A crumb that falls back at a pace under this share of R is held up by its peers,
/// not by the link: the super seed takes over their pieces ([`Action::UseSuperSeed`]'s
/// `take_over`). At a pace near R the link is full, and a piece taken over would come
/// twice through it (ADSL clients lost two Segments a run when every fallback took
/// over, swarm bench).
const TAKE_OVER_PACE: f64 = 0.5;

/// A crumb 1 the super seed was asked for without taking over (see [`TAKE_OVER_PACE`])
/// whose bytes stop coming for the peer patience plus this many of its pieces' times
/// (at R, or at the crumb's own pace before R is known, or at
/// [`STALL_FLOOR_RATE`]) is held up by a piece pinned on a peer that does not send
/// it: the super seed is asked again, now taking over, if the line has room for it
/// (`Current::roomy`). At a full link the pieces keep coming, so a weak line is not
/// taken over for nothing. In the swarm bench a
/// fibre client joining at N = 20 got two of crumb 1's three pieces in 0.1 s and
/// lost the Segment: the third sat at a DSL peer for 3 s, the super seed (asked,
/// not taking over) stole only after three times its average piece time.
const STALL_PIECES: f64 = 2.0;

/// The slowest pace assumed for a stalled crumb's pieces when neither R nor the
/// crumb's own pace is known: 32 KB/s, a 256 kbit/s line.
const STALL_FLOOR_RATE: f64 = 32_000.0;

/// Crumb 1 that needs more than this share of the time left at the measured rate R
/// is urgent: the super seed is asked at once, beside the peers, without waiting for
/// the peer patience. Crumb 1 is the base layer (without it the Segment is lost), and
/// on a weak line (ADSL: crumb 1 takes two thirds of the Segment at the line's rate)
/// the patience, a first piece from a peer that shares its uplink and a fallback
/// after them do not fit in what is left (the deadline fallback of p2p-media-loader,
/// taken early where the link leaves no room). Strong lines stay peers-first.
const URGENT_SHARE: f64 = 0.5;

/// A crumb 1 urgent as it is asked for, on a line that needs more than this share of
/// |s| for it at the best R the client has seen (its line, not its sources), comes
/// from the super seed alone ([`Action::UseSuperSeed`]'s
/// `alone`): such a line (ADSL: 0.7 of |s|) has no room for a piece that comes twice,
/// and every second source makes one likely (librqbit reserves a small crumb's pieces
/// on the first peer with a bitfield; a piece taken back from a busy peer has often
/// left it already, and a CANCEL cannot recall it). Swarm bench: the ADSL clients'
/// lost Segments were each a crumb 1 whose pieces came twice down the line.
const SOLE_SOURCE_SHARE: f64 = 0.5;

/// The fill (see [`ClientEngine::fill`]) counts on this share of R: a crumb it adds
/// must arrive with a fifth of its time to spare, as a probe must.
const FILL_SAFETY: f64 = super::rate::PROBE_SAFETY;

/// Crumbs in flight at most while the time is ample (see [`AMPLE_SHARE`]), instead of
/// [`ClientConfig::max_in_flight`].
const AMPLE_IN_FLIGHT: usize = 6;

/// The time is ample when the crumbs still missing up to D need less than this share
/// of the time left at R. Then more crumbs start at once: each crumb's start (its
/// .torrent, the tracker, the handshakes) takes a good part of what a fast line needs
/// to move it, so with two in flight a 20 Mbit/s line was idle between crumbs, R
/// measured 0.3-5 Mbit/s and D took ten Segments to reach full quality (swarm
/// bench). Close to the deadline, two in flight keep the link on the next crumb of
/// the prefix.
const AMPLE_SHARE: f64 = 0.25;

#[derive(Clone, Debug)]
struct SegmentMeta {
    duration: u64,
    sizes: Vec<u64>,
    /// Largest BitTorrent piece length of its crumbs (bytes).
    piece_length: u64,
}

impl SegmentMeta {
    /// Crumbs must be exactly 1..=N (any order): anything else is not a Segment we
    /// can reason about, and is treated as missing.
    fn parse(doc: &SegmentDoc) -> Option<SegmentMeta> {
        let mut crumbs: Vec<_> = doc.crumbs.iter().map(|c| (c.index, c.size)).collect();
        crumbs.sort_unstable();
        let ok = !crumbs.is_empty()
            && crumbs.len() <= usize::from(u16::MAX)
            && crumbs
                .iter()
                .enumerate()
                .all(|(i, c)| usize::from(c.0) == i + 1);
        let piece_length = doc.crumbs.iter().map(|c| u64::from(c.piece_length)).max();
        ok.then(|| SegmentMeta {
            duration: doc.duration,
            sizes: crumbs.into_iter().map(|c| c.1).collect(),
            piece_length: piece_length.unwrap_or(0),
        })
    }
}

/// A crumb count or index as u16 (Segments hold at most u16::MAX crumbs).
fn count(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// The window as last seen.
#[derive(Clone, Copy, Debug)]
struct WindowInfo {
    latest: u64,
    oldest: u64,
    start: u64,
}

/// The Segment being downloaded.
#[derive(Clone, Debug)]
struct Current {
    seq: u64,
    started_at: u64,
    deadline: u64,
    te: u64,
    d: u16,
    duration: u64,
    piece_length: u64,
    sizes: Vec<u64>,
    requested: Vec<bool>,
    /// Crumbs started ahead of their turn ([`Action::Prepare`]).
    prepared: Vec<bool>,
    done: Vec<bool>,
    /// Crumb 1 asked of the super seed alone.
    sole_source: bool,
    /// When each crumb was requested.
    requested_at: Vec<u64>,
    /// When each crumb may fall back to the super seed (see
    /// [`Current::patience_end`]), fixed when it is requested.
    patience_until: Vec<u64>,
    /// Verified bytes of each crumb so far.
    have: Vec<u64>,
    /// The super seed was asked for this crumb.
    fell_back: Vec<bool>,
    /// ... and told to take over the pieces peers hold.
    taken_over: Vec<bool>,
    /// When each crumb's verified bytes last grew (or it fell back without taking
    /// over): the clock of [`STALL_PIECES`].
    progress_at: Vec<u64>,
    /// Bytes received by the whole client (all torrents, verified or not) at
    /// `progress_at`: a link busy since then is no stall.
    bytes_at: Vec<u64>,
    /// When each crumb counts as stalled, and the pace its pieces were expected at,
    /// fixed at `progress_at` (R falls while a crumb waits: an end computed again
    /// from it moves away as fast as time comes).
    stall_until: Vec<u64>,
    stall_pace: Vec<f64>,
    /// D may grow while the Segment is fetched (see [`ClientEngine::fill`]): the
    /// rate-based rule's, not in a run's first Segment (the viewer's startup waits
    /// for it) and not in the paper's rule (D is its eq. 3 and ±1 alone).
    fill: bool,
    /// D as chosen when the Segment began; crumbs above it were added by the fill
    /// and are fetched from peers alone: extras must not take the super seed's
    /// upload from anyone's crumb 1 (where the channel's link was the bottleneck,
    /// fills with fallbacks cost weak clients their crumb 1; swarm bench).
    chosen_d: u16,
    /// Its deadline is the player's (see [`ClientEngine::next_play`]).
    on_timeline: bool,
    /// When crumbs 1..=D were all in: the Segment's own end, what its spare time is
    /// counted from (a tail after it is extra).
    prefix_done_at: Option<u64>,
    /// The tail crumb being fetched (index from 0), see [`ClientConfig::tail_crumb`].
    tail: Option<usize>,
    /// When the tail stops at the latest: one of its pieces' time at R before the
    /// next Segment is due out (this one's start + |s|), so that what is still on its
    /// way has come down the line when the next crumb 1 starts; never past the deadline.
    tail_end: u64,
}

/// What a crumb's stall clock is set from (see [`Current::progress`]).
#[derive(Clone, Copy)]
struct StallClock {
    patience: u64,
    rate: Option<f64>,
}

impl Current {
    /// Crumb `i` is asked for at `now`. Its patience ends are fixed now, from R now: R
    /// counts the active time, so while a crumb waits for a peer that sends nothing R
    /// falls with every millisecond, and an end computed again from it moved away as
    /// fast as time came (to half the time to the deadline: a fibre client waited
    /// 1.9 s for a throttled peer and measured 0.5 Mbit/s, swarm bench).
    fn request(&mut self, i: usize, now: u64, patience: Option<u64>, rate: Option<f64>) {
        self.requested[i] = true;
        self.requested_at[i] = now;
        self.patience_until[i] = patience.map_or(u64::MAX, |p| self.patience_end(i, p, rate));
    }

    /// When crumb `i`, requested now, may fall back: the patience, plus the time its
    /// first piece takes at R (progress is only seen piece by piece: on a 256 kbit/s
    /// line a 16 KiB piece takes half a second from the best of peers), at most half
    /// the time to the deadline.
    fn patience_end(&self, i: usize, patience: u64, rate: Option<f64>) -> u64 {
        let t0 = self.requested_at[i];
        let first_piece = match self.piece_length {
            0 => self.sizes[i],
            p => self.sizes[i].min(p),
        };
        let wait = rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map_or(0, |r| (first_piece as f64 * SEC as f64 / r) as u64);
        let patience = patience.saturating_add(wait);
        t0.saturating_add(patience.min(self.deadline.saturating_sub(t0) / 2))
    }

    /// Crumb `i` moved on at `now` (bytes verified, or the super seed asked): its
    /// stall clock starts over.
    fn progress(&mut self, i: usize, now: u64, bytes_total: u64, clock: StallClock) {
        self.progress_at[i] = now;
        self.bytes_at[i] = bytes_total;
        let pace = self.stall_pace(i, clock.rate);
        let piece = match self.piece_length {
            0 => self.sizes[i],
            p => self.sizes[i].min(p),
        };
        let wait = (STALL_PIECES * piece as f64 * SEC as f64 / pace) as u64;
        self.stall_pace[i] = pace;
        self.stall_until[i] = now.saturating_add(clock.patience).saturating_add(wait);
    }

    /// The pace crumb `i`'s pieces are expected at now: R, or the crumb's own
    /// before R is known, or [`STALL_FLOOR_RATE`].
    fn stall_pace(&self, i: usize, rate: Option<f64>) -> f64 {
        let usable = |r: &f64| r.is_finite() && *r > 0.0;
        let own = {
            let t = self.progress_at[i].saturating_sub(self.requested_at[i]);
            (self.have[i] > 0 && t > 0).then(|| self.have[i] as f64 * SEC as f64 / t as f64)
        };
        rate.filter(usable)
            .or(own.filter(usable))
            .unwrap_or(STALL_FLOOR_RATE)
    }

    /// Whether the client received at least [`TAKE_OVER_PACE`] of the stall pace
    /// since crumb `i` last moved on.
    fn link_busy(&self, i: usize, now: u64, bytes_total: u64) -> bool {
        let elapsed = now.saturating_sub(self.progress_at[i]) as f64 / SEC as f64;
        let received = bytes_total.saturating_sub(self.bytes_at[i]) as f64;
        received >= TAKE_OVER_PACE * self.stall_pace[i] * elapsed
    }

    /// Whether what crumb `i` still misses needs under [`URGENT_SHARE`] of the time
    /// left at its stall pace: the line has room, and a take-over costs it little.
    /// Where it has not (a weak line's crumb 1), its sources keep their pieces: with
    /// take-overs there too, the channel at twice the full quality (its link the
    /// bottleneck, the super seed the slow source) had ADSL clients lose 9 Segments
    /// in a run where they lost 2-6 before (swarm bench).
    fn roomy(&self, i: usize, now: u64) -> bool {
        let left = self.deadline.saturating_sub(now) as f64;
        let missing = self.sizes[i].saturating_sub(self.have[i]) as f64;
        missing * (SEC as f64) / self.stall_pace[i] < URGENT_SHARE * left
    }

    fn crumb1(&self) -> bool {
        self.done.first().copied().unwrap_or(false)
    }

    /// Crumbs 1..=D are in and a tail crumb is on its way: the Segment waits for the
    /// next one to come out (or for [`Current::tail_end`]).
    fn tailing(&self) -> bool {
        self.tail.is_some() && self.prefix_done_at.is_some()
    }

    /// [`Current::tail_end`] for crumb `i` as the tail at R = `r`, and its pieces' time.
    fn tail_end_at(&self, i: usize, r: f64) -> (u64, u64) {
        let piece = match self.piece_length {
            0 => self.sizes[i],
            p => self.sizes[i].min(p),
        };
        let piece_time = (piece as f64 * SEC as f64 / r) as u64;
        let end = self
            .started_at
            .saturating_add(self.duration)
            .saturating_sub(piece_time)
            .min(self.deadline);
        (end, piece_time)
    }

    fn prefix(&self, cap: u16) -> u16 {
        count(self.done.iter().take_while(|d| **d).count()).min(cap)
    }
}

/// The client engine; see the module documentation for its exact semantics.
#[derive(Debug)]
pub struct ClientEngine {
    config: ClientConfig,
    created_at: u64,
    last_now: u64,
    rate: RateEstimator,
    /// The highest R a Segment began with: what the line itself can carry, as far as
    /// this client has seen. R alone also falls when the sources are slow (the
    /// channel's link full), which says nothing about the line.
    line_peak: Option<f64>,
    /// The window's `sole_source_share` (all weak lines when the channel says none).
    sole_source_share: f64,
    /// Spreads this client's draws against [`Self::sole_source_share`] from other
    /// clients' ([`ClientEngine::set_draw_key`]).
    draw_key: u64,
    on_demand: bool,
    /// On-demand: the next Segment is not published yet (the viewer caught up with
    /// the live edge): the window is asked for until it is.
    at_live_edge: bool,
    segments: BTreeMap<u64, SegmentMeta>,
    window: Option<WindowInfo>,
    /// A window arrived since the last (re-)initialisation: x' may be taken from it.
    window_fresh: bool,
    current: Option<Current>,
    /// The Segment to begin next; `None` in the live initial stage (x' decides).
    next: Option<u64>,
    /// Newest Segment done (successful or failed): the engine never goes back past it.
    last_done: Option<u64>,
    /// Deadline of the previous successful Segment: TE of the next is measured to it.
    prev_deadline: Option<u64>,
    /// With a player (`playout_delay` > 0): when the next Segment plays (the end of
    /// the previous one's play-out), [`PLAYOUT_MARGIN`] after its deadline; `None`
    /// until a Segment of the run was output, and after a failure or a skip.
    next_play: Option<u64>,
    /// The channel's longest Segment (the window's `max_duration`), ns.
    max_duration: Option<u64>,
    /// With [`PLAYOUT_DELAY_AUTO`]: the longest `max_duration` seen (it never shrinks,
    /// as the player's latency would have to).
    auto_delay: u64,
    /// The previous Segment's D; `None` in the initial stage.
    last: Option<LastSegment>,
    last_fetch: Option<u64>,
    last_output_d: Option<u16>,
    sum_d: u64,
    stats: ClientStats,
    actions: Vec<Action>,
    /// Relay: the crumbs asked for, of Segments still in the window.
    relayed: BTreeSet<(u64, u16)>,
    /// Relay: Segments not reported yet, with their N and the crumbs complete.
    relay_segments: BTreeMap<u64, (u16, BTreeSet<u16>)>,
    /// The epoch of the channel run followed; `None` before the first window.
    epoch: Option<Option<u64>>,
    /// Newest Segment number of this run seen in a window.
    latest_seen: Option<u64>,
    liveness: Liveness,
    stalled: bool,
    /// Bytes received so far, all torrents (`on_bytes_received`).
    bytes_total: u64,
    /// Whether the bytes received now count in R (see [`TailBytes`]).
    tail_bytes: TailBytes,
}

/// What R makes of the bytes received: all of them, except from a tail crumb's
/// start to the next Segment's. The first report after the tail's start still
/// counts: it carries the last bytes of crumb D, whose completion started the tail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum TailBytes {
    #[default]
    Counted,
    AfterNext,
    Skipped,
}

impl ClientEngine {
    /// A live client in the initial stage: its first action is [`Action::FetchWindow`].
    pub fn new(mut config: ClientConfig, now: u64) -> Self {
        config.max_in_flight = config.max_in_flight.max(1);
        if !(config.safety.is_finite() && config.safety > 0.0) {
            config.safety = ClientConfig::default().safety;
        }
        ClientEngine {
            rate: RateEstimator::new(config.rate_window),
            line_peak: None,
            sole_source_share: 1.0,
            draw_key: 0,
            liveness: Liveness::new(config.stall_timeout, true, now),
            config,
            created_at: now,
            last_now: now,
            on_demand: false,
            at_live_edge: false,
            segments: BTreeMap::new(),
            window: None,
            window_fresh: false,
            current: None,
            next: None,
            last_done: None,
            prev_deadline: None,
            next_play: None,
            max_duration: None,
            auto_delay: DEFAULT_PLAYOUT_DELAY,
            last: None,
            last_fetch: None,
            last_output_d: None,
            sum_d: 0,
            stats: ClientStats::default(),
            actions: Vec::new(),
            relayed: BTreeSet::new(),
            relay_segments: BTreeMap::new(),
            epoch: None,
            latest_seen: None,
            bytes_total: 0,
            tail_bytes: TailBytes::Counted,
            stalled: false,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// What sets this client's draws apart from other clients' (crumbsrc: a hash of
    /// its client id): which Segments' urgent crumbs 1 it may fetch from the super
    /// seed alone while the channel lets only a share of the weak lines do so
    /// (`core::sole_source`). Clients with the same key draw alike.
    pub fn set_draw_key(&mut self, key: u64) {
        self.draw_key = key;
    }

    /// On-demand playback from Segment `seq` (archived or live): the Segment in
    /// progress is dropped, no racing toward x, the same deadline logic with each
    /// Segment's duration. A failure re-initialises TE and D and goes on with the next
    /// Segment (there is no x' to refresh).
    pub fn start_at(&mut self, now: u64, seq: u64) {
        self.last_now = self.last_now.max(now);
        self.drop_current(now);
        self.on_demand = true;
        self.at_live_edge = false;
        self.liveness.set_follow_window(false);
        self.next = Some(seq);
        self.last_done = None;
        self.prev_deadline = None;
        self.next_play = None;
        self.last = None;
        self.last_fetch = None;
        self.advance(now, true);
    }

    /// A window from the channel. Keeps the Segments' metadata; in the initial stage
    /// takes x' from it; at the live edge, begins x+1 once it is there.
    pub fn on_window(&mut self, now: u64, doc: &WindowDoc) -> Result<(), ClientError> {
        if doc.version != API_VERSION {
            return Err(ClientError::Version(doc.version));
        }
        if self.config.relay {
            self.relay_window(doc);
            return Ok(());
        }
        self.advance(now, false);
        if self.stalled {
            return Ok(());
        }
        self.liveness.on_answer(now);
        if let Some(sign) = self.restart_sign(doc) {
            self.restart(now, sign, doc);
            return Ok(());
        }
        self.epoch = Some(doc.epoch);
        let newest = doc.latest.or(doc.segments.iter().map(|s| s.seq).max());
        if newest.is_some_and(|n| self.latest_seen.is_none_or(|l| n > l)) {
            self.latest_seen = newest;
            self.liveness.on_advance(now);
        }
        for seg in &doc.segments {
            self.insert_segment(seg);
        }
        // On-demand at the live edge: the next Segment is asked for again at once (it
        // may be out now, or have left the window: then it is skipped).
        if std::mem::take(&mut self.at_live_edge) {
            self.last_fetch = None;
        }
        let newest = doc.segments.iter().map(|s| s.seq).max();
        if let Some(latest) = doc.latest.or(newest) {
            let size = u64::from(doc.window_size.max(1));
            let oldest = doc
                .oldest
                .or_else(|| doc.segments.iter().map(|s| s.seq).min());
            let oldest = oldest.unwrap_or_else(|| latest.saturating_sub(size - 1));
            let start = match self.config.start_offset {
                Some(offset) => latest.saturating_sub(offset),
                None => doc.start_index.unwrap_or(latest),
            };
            let start = start.clamp(oldest, latest.max(oldest));
            self.window = Some(WindowInfo {
                latest,
                oldest,
                start,
            });
            self.window_fresh = true;
            // A channel's word, bounded: a window claiming hour-long Segments (a bug,
            // or a forged window) must not make the player wait an hour.
            self.max_duration = doc.max_duration.map(|m| m.min(MAX_SEGMENT_ROOM));
            self.sole_source_share = doc
                .sole_source_share
                .filter(|s| s.is_finite())
                .map_or(1.0, |s| s.clamp(0.0, 1.0));
            if let Some(m) = self.max_duration {
                self.auto_delay = self.auto_delay.max(m);
            }
        }
        self.advance(now, true);
        self.prune();
        Ok(())
    }

    /// The player's delay in force, ns: [`ClientConfig::playout_delay`], or with
    /// [`PLAYOUT_DELAY_AUTO`] the channel's longest Segment so far.
    fn playout_delay(&self) -> u64 {
        match self.config.playout_delay {
            PLAYOUT_DELAY_AUTO => self.auto_delay,
            d => d,
        }
    }

    /// The room crumbsrc's play-out keeps, ns, when it anchors a Segment of `duration`:
    /// the channel's longest Segment minus it (see `core::playout`).
    fn playout_lead(&self, duration: u64) -> u64 {
        self.max_duration.map_or(0, |m| m.saturating_sub(duration))
    }

    /// When Segment `cur`, done at `t`, plays: at its deadline (plus the margin) on
    /// the player's timeline; else where the player anchors it, `playout_delay` plus
    /// the room for the channel's longest Segment after its output. (From its
    /// output, not its publication: a line that took long for it has that much more
    /// room for the ones after it. Anchored at publication, an ADSL client at the live
    /// edge had 3.8 s for each 83 kB crumb 1 of 4 s Segments and lost one in its
    /// first N = 20 run, for 1.4 s less latency; swarm bench.)
    fn plays_at(&self, cur: &Current, t: u64) -> u64 {
        if cur.on_timeline {
            return cur.deadline.saturating_add(PLAYOUT_MARGIN);
        }
        t.saturating_add(self.playout_delay())
            .saturating_add(self.playout_lead(cur.duration))
    }

    /// A window or Segment fetch got no usable answer (refused, timed out, not
    /// JSON): nothing changes but time, which `stall_timeout` measures.
    pub fn on_fetch_failed(&mut self, now: u64) {
        self.liveness.on_no_answer();
        self.advance(now, true);
    }

    /// One Segment's document (on-demand: `GET /<channel>/segments/<seq>`).
    pub fn on_segment(&mut self, now: u64, doc: &SegmentDoc) {
        self.advance(now, false);
        self.liveness.on_answer(now);
        self.insert_segment(doc);
        self.advance(now, true);
        self.prune();
    }

    /// On-demand: Segment `seq` cannot be had. Published once and gone (a channel
    /// without archive expired it): skipped. Not published yet, or the live edge not
    /// known: waited for, the window asked for each poll interval until it lists it
    /// (skipping there would run ahead of the channel and never play again).
    pub fn on_segment_unavailable(&mut self, now: u64, seq: u64) {
        self.advance(now, false);
        self.liveness.on_answer(now);
        if self.on_demand && self.current.is_none() && self.next == Some(seq) {
            match self.window {
                Some(w) if seq <= w.latest => self.skip(now, seq, seq.saturating_add(1)),
                _ => self.at_live_edge = true,
            }
        }
        self.advance(now, true);
    }

    /// Progress of a crumb: verified bytes so far. R comes from `on_bytes_received`
    /// (all bytes, whichever crumb); this paces the super seed fallback.
    pub fn on_crumb_progress(&mut self, now: u64, seq: u64, index: u16, have_bytes: u64) {
        self.advance(now, false);
        let clock = self.stall_clock(now);
        if let Some(cur) = self.current.as_mut().filter(|c| c.seq == seq)
            && let Some(i) = usize::from(index)
                .checked_sub(1)
                .filter(|&i| i < cur.have.len())
            && have_bytes > cur.have[i]
        {
            cur.have[i] = have_bytes;
            cur.progress(i, now, self.bytes_total, clock);
            self.ask_tail(now);
        }
        self.advance(now, true);
    }

    /// Crumb `index` of Segment `seq` is complete (verified) at `now`.
    pub fn on_crumb_complete(&mut self, now: u64, seq: u64, index: u16) {
        self.advance(now, false);
        if self.config.relay {
            self.relay_complete(now, seq, index);
            return self.advance(now, true);
        }
        let Some(cur) = self.current.as_mut() else {
            return self.advance(now, true);
        };
        let i = usize::from(index);
        if cur.seq == seq && (1..=cur.done.len()).contains(&i) {
            self.liveness.on_fetched(now);
            cur.done[i - 1] = true;
            // May raise D (the fill) before the Segment is taken as done.
            self.request_more();
            if self
                .current
                .as_ref()
                .is_some_and(|c| c.done.iter().take(usize::from(c.d)).all(|d| *d))
                && !self.start_tail(now)
            {
                self.finish(now);
                self.try_start(now);
            }
        }
        self.advance(now, true);
    }

    /// Relay: crumb `index` of Segment `seq` could not be started; it is asked for
    /// again with the next window that still lists it. (A client that plays sees such a
    /// crumb as one that never completes.)
    pub fn on_download_failed(&mut self, now: u64, seq: u64, index: u16) {
        self.advance(now, false);
        self.relayed.remove(&(seq, index));
        self.advance(now, true);
    }

    /// The caller's running total of bytes downloaded (all crumbs), for R.
    pub fn on_bytes_received(&mut self, now: u64, total_bytes: u64) {
        // Decided before `advance`, which may begin the next Segment: what came since
        // the last report is still the tail's.
        let tail_bytes = self.tail_bytes;
        self.advance(now, false);
        self.liveness.on_bytes(now, total_bytes);
        // A tail's bytes say what peers hold of a crumb beyond D, not what the line
        // carries: R is left out of them (the estimator is idle meanwhile), up to the
        // next Segment's start (the last of them come after the tail was dropped).
        match tail_bytes {
            TailBytes::Counted => self.rate.on_bytes(now, total_bytes),
            TailBytes::AfterNext => {
                if self.tail_bytes == TailBytes::AfterNext {
                    self.tail_bytes = TailBytes::Skipped;
                }
                self.rate.on_bytes(now, total_bytes);
            }
            TailBytes::Skipped => self.rate.rebase(total_bytes),
        }
        self.bytes_total = self.bytes_total.max(total_bytes);
        self.advance(now, true);
    }

    /// Checks deadlines and polling timers.
    pub fn tick(&mut self, now: u64) {
        self.advance(now, true);
    }

    /// Everything to do as of `now`, in order.
    pub fn poll_actions(&mut self, now: u64) -> Vec<Action> {
        self.advance(now, true);
        std::mem::take(&mut self.actions)
    }

    /// Whether actions wait for [`ClientEngine::poll_actions`].
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// When `tick` should be called next at the latest (a deadline, the end of a
    /// crumb's peer patience, or a poll timer).
    pub fn next_wakeup(&self) -> Option<u64> {
        if self.stalled {
            return None;
        }
        let wake = self.next_engine_wakeup();
        match self.liveness.deadline() {
            Some(s) => Some(wake.map_or(s, |w| w.min(s))),
            None => wake,
        }
    }

    /// Whether a live client has nothing to fetch until the window brings a new
    /// Segment (its first, or x+1 at the live edge, also while a tail crumb fills the
    /// wait): its window polls may then be held by the channel until one is
    /// published (a blocking reload).
    pub fn waits_for_window(&self) -> bool {
        !self.on_demand
            && !self.config.relay
            && !self.stalled
            && self.current.as_ref().is_none_or(|c| c.tailing())
    }

    /// When the engine gives up if nothing happens before (`stall_timeout` after the
    /// oldest missing sign of life); `None` when it never does.
    pub fn stall_at(&self) -> Option<u64> {
        self.liveness.deadline().filter(|_| !self.stalled)
    }

    fn next_engine_wakeup(&self) -> Option<u64> {
        match (&self.current, self.last_fetch) {
            (Some(cur), _) => {
                let patience = self.patience_ends(cur);
                let tail_end = cur.tailing().then_some(cur.tail_end);
                let fetch = self
                    .last_fetch
                    .filter(|_| cur.tailing())
                    .map(|f| f.saturating_add(self.config.poll_interval));
                let wake = [patience, tail_end, fetch].into_iter().flatten();
                Some(wake.fold(cur.deadline, u64::min))
            }
            (None, Some(f)) => Some(f.saturating_add(self.config.poll_interval)),
            (None, None) => None,
        }
    }

    pub fn rate(&self, now: u64) -> Option<f64> {
        self.measured_rate(now)
    }

    /// R, at most [`ClientConfig::rate_cap`].
    fn measured_rate(&self, now: u64) -> Option<f64> {
        let r = self.rate.rate(now)?;
        Some(self.config.rate_cap.map_or(r, |cap| r.min(cap)))
    }

    pub fn stats(&self) -> ClientStats {
        let mut s = self.stats.clone();
        s.rate = self.measured_rate(self.last_now);
        s.current_seq = self.current.as_ref().map(|c| c.seq).or(self.next);
        if let Some(cur) = &self.current {
            s.d_current = cur.d;
        }
        s
    }

    fn insert_segment(&mut self, doc: &SegmentDoc) {
        if self.current.as_ref().is_some_and(|c| c.seq == doc.seq) {
            return;
        }
        if let Some(meta) = SegmentMeta::parse(doc) {
            self.liveness.on_segment(meta.duration);
            self.segments.insert(doc.seq, meta);
        }
    }

    /// Forgets metadata of Segments behind the engine (and, live, behind the window).
    fn prune(&mut self) {
        let window = self.window.filter(|_| !self.on_demand).map(|w| w.oldest);
        let keep = [self.current.as_ref().map(|c| c.seq), self.next, window]
            .into_iter()
            .flatten()
            .min();
        if let Some(keep) = keep {
            self.segments = self.segments.split_off(&keep);
        }
    }

    fn cap(&self, n: usize) -> u16 {
        let n = count(n).max(1);
        match self.config.max_crumbs {
            0 => n,
            m => n.min(m),
        }
    }

    /// Processes deadlines up to `now` (`inclusive`: a deadline equal to `now` too) and
    /// begins the next Segment when it can; `inclusive` also asks for what is missing
    /// (the non-inclusive pass runs before an event is applied, which may supply it).
    fn advance(&mut self, now: u64, inclusive: bool) {
        let now = now.max(self.last_now);
        self.last_now = now;
        if self.stalled {
            return;
        }
        if inclusive && let Some((reason, since)) = self.liveness.stall(now) {
            self.stalled = true;
            if let Some(cur) = self.current.take() {
                self.cancel_in_flight(&cur, None);
                self.rate.set_active(now, false);
            }
            self.actions.push(Action::Stalled { reason, since });
            return;
        }
        if self.config.relay {
            if inclusive {
                self.request_fetch(now);
            }
            return;
        }
        self.end_tail(now, inclusive);
        while let Some(deadline) = self.current.as_ref().map(|c| c.deadline) {
            if deadline > now || (deadline == now && !inclusive) {
                if inclusive {
                    self.check_fallbacks(now);
                    if self.current.as_ref().is_some_and(|c| c.tailing()) {
                        // At the live edge: the next Segment is what ends the tail.
                        self.request_fetch(now);
                    }
                }
                return;
            }
            self.finish(deadline);
            self.try_start(deadline);
        }
        if !self.try_start(now) && inclusive {
            self.request_fetch(now);
        }
    }

    /// What to fetch while idle, at most once per poll interval.
    fn request_fetch(&mut self, now: u64) {
        let action = match (self.on_demand, self.next) {
            (true, Some(_)) if self.at_live_edge => Action::FetchWindow,
            (true, Some(seq)) => Action::FetchSegment { seq },
            (true, None) => return,
            (false, _) => Action::FetchWindow,
        };
        if self
            .last_fetch
            .is_none_or(|f| now >= f.saturating_add(self.config.poll_interval))
        {
            self.last_fetch = Some(now);
            self.actions.push(action);
        }
    }

    /// Begins the next Segment at `at` if it is known; skips what cannot be had.
    /// Returns whether a Segment is in progress.
    fn try_start(&mut self, at: u64) -> bool {
        if self.current.is_some() {
            return true;
        }
        if !self.on_demand && self.next.is_none() {
            // Initial stage: x' from a window received since (re-)initialisation.
            let Some(w) = self.window.filter(|_| self.window_fresh) else {
                return false;
            };
            if self.last_done.is_some_and(|d| w.latest < d) {
                self.last_done = None; // the channel restarted its numbering
            }
            let start = self
                .last_done
                .map_or(w.start, |d| w.start.max(d.saturating_add(1)));
            if let Some(done) = self.last_done {
                self.skip(at, done.saturating_add(1), start);
            }
            self.next = Some(start);
        }
        let Some(seq) = self.next else {
            return false;
        };
        if self.on_demand {
            return self.segments.contains_key(&seq) && self.begin(seq, at);
        }
        let Some(w) = self.window else {
            return false;
        };
        if seq < w.oldest {
            // Left the window before we got to it: jump to x' (TE reset, D kept).
            let to = w.start.max(seq);
            self.skip(at, seq, to);
            self.prev_deadline = None;
            self.next_play = None;
            self.next = Some(to);
            return self.segments.contains_key(&to) && self.begin(to, at);
        }
        if self.segments.contains_key(&seq) {
            return self.begin(seq, at);
        }
        if seq > w.latest {
            return false; // x+1 is not published yet: wait (FetchWindow)
        }
        match self.segments.range(seq..=w.latest).next().map(|(s, _)| *s) {
            Some(present) => {
                // A hole in the numbering: skip it, TE untouched.
                self.skip(at, seq, present);
                self.begin(present, at)
            }
            None => false,
        }
    }

    /// Skips Segments `from..to`: counted; Output d = 0 for those with metadata.
    fn skip(&mut self, at: u64, from: u64, to: u64) {
        if to <= from {
            return;
        }
        self.stats.segments_skipped += to - from;
        let known: Vec<(u64, u16)> = self
            .segments
            .range(from..to)
            .map(|(s, m)| (*s, count(m.sizes.len())))
            .collect();
        for (seq, crumbs_total) in known {
            let record = SegmentRecord {
                seq,
                skipped: true,
                successful: false,
                complete: false,
                d: 0,
                d_target: 0,
                crumbs_done: 0,
                crumbs_total,
                time_extension: 0,
                rate: self.measured_rate(at),
                started_at: at,
                deadline: at,
                finished_at: at,
                plays_at: None,
                tail: None,
                sole_source: false,
            };
            self.actions.push(Action::Output { seq, d: 0, record });
        }
        self.next = Some(to);
        self.last_done = Some(to - 1);
        self.last_fetch = None;
    }

    fn begin(&mut self, seq: u64, at: u64) -> bool {
        let Some(meta) = self.segments.get(&seq) else {
            return false;
        };
        // No Segment done yet in this run: the first one, whose TE is the player's
        // delay. Nothing plays before it (its successors are timed from its output),
        // so failing it sooner only starts the run again later: an ADSL joiner measured at 108 kbit/s had the
        // 4 s of its 4 s Segment for an 83 kB crumb 1 and lost it (swarm bench).
        let te = match (self.prev_deadline, self.last_done) {
            (Some(d), _) => d.saturating_sub(at),
            (None, None) => self.playout_delay(),
            (None, Some(_)) => 0,
        };
        let mut budget = meta.duration.saturating_add(te);
        // With a player, a Segment on its timeline is due when the one before it has
        // played; one due already (published after that) makes the player stall
        // whatever is done, and gets the budget above.
        let due = self
            .next_play
            .map(|p| p.saturating_sub(PLAYOUT_MARGIN))
            .filter(|d| self.playout_delay() > 0 && *d > at);
        if let Some(due) = due {
            budget = due - at;
        }
        let te = budget.saturating_sub(meta.duration);
        let cap = self.cap(meta.sizes.len());
        let usable = |r: &f64| r.is_finite() && *r > 0.0;
        let rate = self.measured_rate(at).filter(usable);
        let rate = rate.or(self.config.initial_rate.filter(usable));
        let (adaptation, safety) = (self.config.adaptation, self.config.safety);
        let (sizes, duration) = (&meta.sizes, meta.duration);
        // D fits |s|, or less when the player's timeline leaves less.
        let fit = duration.min(budget);
        let d = choose_d(adaptation, safety, self.last, rate, sizes, fit, budget);
        let d = d.clamp(1, cap);
        let n = meta.sizes.len();
        let mut cur = Current {
            seq,
            started_at: at,
            deadline: at.saturating_add(budget),
            te,
            d,
            duration,
            piece_length: meta.piece_length,
            sizes: meta.sizes.clone(),
            requested: vec![false; n],
            prepared: vec![false; n],
            done: vec![false; n],
            requested_at: vec![at; n],
            patience_until: vec![u64::MAX; n],
            have: vec![0; n],
            fell_back: vec![false; n],
            sole_source: false,
            taken_over: vec![false; n],
            progress_at: vec![at; n],
            bytes_at: vec![self.bytes_total; n],
            stall_until: vec![u64::MAX; n],
            stall_pace: vec![STALL_FLOOR_RATE; n],
            fill: self.config.adaptation == Adaptation::RateBased
                && (self.prev_deadline.is_some() || self.last_done.is_some()),
            chosen_d: d,
            on_timeline: due.is_some(),
            prefix_done_at: None,
            tail: None,
            tail_end: 0,
        };
        if n > 0 {
            cur.request(0, at, self.config.peer_patience, self.measured_rate(at));
        }
        self.actions.push(Action::Download { seq, index: 1 });
        // With no rate known at all (a client's first Segment, no `initial-rate`)
        // crumb 1 is urgent too: nothing says peers can serve it in time, and the
        // viewer's startup waits on it. Peers first cost an ADSL joiner the whole
        // peer patience (300 ms of a 1.6 s start, swarm bench) before the super seed
        // was asked.
        let urgent = rate.is_none() || Self::urgent(&cur, 0, rate, at);
        if let Some(r) = rate {
            self.line_peak = Some(self.line_peak.map_or(r, |p| p.max(r)));
        }
        // Only an urgent crumb 1: with time to spare a slow line still fetches from
        // peers first (from the super seed alone every time, the ADSL clients took
        // all their bytes from it and the channel at twice the full quality
        // delivered 0.39-0.41 of bound against 0.53-0.56; swarm bench). Slow by the
        // line's best, not by R now: with the channel's link full every client's R
        // falls to its share of the super seed, and a cable client whose crumb 1 then
        // came from the super seed alone lost it (swarm bench, tight).
        // And only while the channel has room for such crumbs: at scale the weak
        // lines' crumbs 1 alone fill its link (`core::sole_source`).
        let alone = urgent
            && self.line_peak.is_some_and(|r| {
                cur.sizes.first().copied().unwrap_or(0) as f64 * SEC as f64 / r
                    > SOLE_SOURCE_SHARE * duration as f64
            })
            && sole_source::draw(self.draw_key, seq) < self.sole_source_share;
        if self.config.peer_patience.is_some() && urgent {
            cur.fell_back[0] = true;
            let clock = self.stall_clock(at);
            cur.progress(0, at, self.bytes_total, clock);
            self.stats.super_seed_fallbacks += 1;
            self.stats.urgent_fallbacks += 1;
            self.stats.sole_source_crumbs += u64::from(alone);
            cur.sole_source = alone;
            self.actions.push(Action::UseSuperSeed {
                seq,
                index: 1,
                take_over: false,
                alone,
            });
        }
        self.rate.set_active(at, true);
        self.tail_bytes = TailBytes::Counted;
        self.stats.time_extension_last = te;
        self.stats.d_current = d;
        self.current = Some(cur);
        self.last_fetch = None;
        // Crumbs 2.. start while crumb 1 downloads alone.
        self.prepare_next();
        true
    }

    /// The current Segment is done at `t` (all D crumbs, or its deadline).
    fn finish(&mut self, t: u64) {
        let Some(cur) = self.current.take() else {
            return;
        };
        let successful = cur.crumb1();
        let complete = cur.done.iter().take(usize::from(cur.d)).all(|d| *d);
        let d = if successful {
            cur.prefix(self.cap(cur.sizes.len()))
        } else {
            0
        };
        // The tail's torrent stays until its pieces are read for the Output.
        let tail = cur
            .tail
            .filter(|&i| !cur.done[i] && usize::from(d) == i && successful);
        self.cancel_in_flight(&cur, tail);
        self.rate.set_active(t, false);
        let rate = self.measured_rate(t);
        let plays_at = (successful && self.playout_delay() > 0).then(|| self.plays_at(&cur, t));
        let record = SegmentRecord {
            seq: cur.seq,
            skipped: false,
            successful,
            complete,
            d,
            d_target: cur.d,
            crumbs_done: count(cur.done.iter().filter(|d| **d).count()),
            crumbs_total: count(cur.sizes.len()),
            time_extension: cur.te,
            rate,
            started_at: cur.started_at,
            deadline: cur.deadline,
            finished_at: t,
            plays_at,
            tail: tail.map(|i| count(i + 1)),
            sole_source: cur.sole_source,
        };
        let report = ClientReport {
            seq: cur.seq,
            successful,
            complete,
            d,
            rate: rate.unwrap_or(0.0),
            sole_source: cur.sole_source,
        };
        self.actions.push(Action::Output {
            seq: cur.seq,
            d,
            record,
        });
        if let Some(i) = tail {
            self.actions.push(Action::Cancel {
                seq: cur.seq,
                index: count(i + 1),
            });
        }
        self.actions.push(Action::Report(report));
        self.last_done = Some(cur.seq);
        self.last_fetch = None;
        // Segment u64::MAX has no successor: saturating would begin it again, and
        // again at each of its deadlines (found by fuzzing: a loop of 32 ns Segments).
        self.next = cur.seq.checked_add(1);
        if successful {
            self.stats.segments_successful += 1;
            self.stats.segments_complete += u64::from(complete);
            self.sum_d += u64::from(d);
            self.stats.mean_d = self.sum_d as f64 / self.stats.segments_successful as f64;
            if self.last_output_d.is_some_and(|p| p != d) {
                self.stats.quality_switches += 1;
            }
            self.last_output_d = Some(d);
            if self.stats.startup_delay.is_none() && d > 0 {
                self.stats.startup_delay = Some(t.saturating_sub(self.created_at));
            }
            self.prev_deadline = Some(cur.deadline);
            if let Some(plays) = plays_at {
                self.next_play = Some(plays.saturating_add(cur.duration));
            }
            // Of its own |s|, not of TE: TE stays a buffer. A tail after crumbs
            // 1..=D is extra: the spare is counted from when they were in.
            let spare = cur
                .started_at
                .saturating_add(cur.duration)
                .saturating_sub(cur.prefix_done_at.unwrap_or(t).min(t));
            let slow_start = complete && self.last.is_none_or(|l| l.slow_start && cur.d >= l.d);
            self.last = Some(LastSegment {
                slow_start,
                ..LastSegment::new(cur.d, complete, &cur.sizes, cur.duration, spare)
            });
        } else {
            // Back to the initial stage: TE forgotten, D re-estimated, fresh x'.
            self.stats.segments_failed += 1;
            self.prev_deadline = None;
            self.next_play = None;
            self.last = None;
            if !self.on_demand {
                self.next = None;
                self.window_fresh = false;
            }
        }
    }
}

#[cfg(test)]
mod tests;
