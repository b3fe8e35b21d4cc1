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
//! - Stall (crumbsrc's `stall-timeout`): no window answered, x did not advance (live),
//!   or no byte of any crumb arrived, for [`ClientConfig::stall_timeout`]: the engine
//!   emits [`Action::Stalled`] once and then nothing more; the caller ends the stream.

use std::collections::BTreeMap;

use super::api::{API_VERSION, ReportDoc, SegmentDoc, WindowDoc};
pub use super::rate::{Adaptation, LastSegment, fit_prefix};
use super::rate::{RateEstimator, choose_d};

/// Default [`ClientConfig::peer_patience`]: a tracker round trip, a BitTorrent
/// handshake and a piece from a peer that is itself fetching it.
pub const DEFAULT_PEER_PATIENCE: u64 = 300_000_000;

/// Default [`ClientConfig::stall_timeout`]: five 2 s Segments.
pub const DEFAULT_STALL_TIMEOUT: u64 = 10_000_000_000;

/// Share of the time left to the deadline a crumb may need at its pace before the
/// super seed is asked (the rest is a margin for the pace to drop).
const FALLBACK_PACE_SHARE: f64 = 0.75;

/// Settings of a client engine, as crumbsrc's properties set them.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    pub adaptation: Adaptation,
    /// Never fetch more than this many crumbs of a Segment (0 = no cap).
    pub max_crumbs: u16,
    /// R (bytes/s) to use in eq. 3 before any measurement; `None` starts at D = 1.
    pub initial_rate: Option<f64>,
    /// RateBased: share of R·|s| a Segment's crumbs may take, in (0, 1].
    pub safety: f64,
    /// Crumbs of the current Segment in flight at once once crumb 1 is complete
    /// (crumb 1 is always fetched alone). 2 overlaps one torrent's start-up (tracker,
    /// peer connections) with the transfer of the previous one; more would split the
    /// link between crumbs and leave several half-done crumbs at the deadline, of
    /// which only a prefix is any use.
    pub max_in_flight: u16,
    /// Least time between two fetch requests (window or archived Segment), ns.
    pub poll_interval: u64,
    /// Window of the rate estimate, ns of active download time.
    pub rate_window: u64,
    /// Peers first, the super seed as the deadline's fallback: a crumb is fetched
    /// from peers alone for at least this long (ns; at most half the time to its
    /// deadline), then [`Action::UseSuperSeed`] asks for the super seed when the
    /// crumb has no byte yet or its pace would miss the deadline. `None`: never (the
    /// super seed is only what the tracker hands out).
    pub peer_patience: Option<u64>,
    /// Give up on a channel that shows no sign of life for this long (ns): no window
    /// answered, no new Segment in the window (live), or no byte of any crumb fetched.
    /// `None`: wait forever.
    pub stall_timeout: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            adaptation: Adaptation::Paper,
            max_crumbs: 0,
            initial_rate: None,
            safety: 0.8,
            max_in_flight: 2,
            poll_interval: 500_000_000,
            rate_window: 10_000_000_000,
            peer_patience: Some(DEFAULT_PEER_PATIENCE),
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
        }
    }
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Fetch the channel's window and pass it to [`ClientEngine::on_window`].
    FetchWindow,
    /// On-demand: fetch an archived Segment's document for [`ClientEngine::on_segment`]
    /// (or report [`ClientEngine::on_segment_unavailable`]).
    FetchSegment { seq: u64 },
    /// Start fetching crumb `index` of Segment `seq`.
    Download { seq: u64, index: u16 },
    /// Stop fetching this crumb: its Segment is over (keep seeding what is complete).
    Cancel { seq: u64, index: u16 },
    /// Peers are too slow for this crumb's deadline: connect it to the super seed
    /// (see [`ClientConfig::peer_patience`]). Once per crumb.
    UseSuperSeed { seq: u64, index: u16 },
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

/// A Segment's report to the channel: [`ReportDoc`] without the client id.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientReport {
    pub seq: u64,
    pub successful: bool,
    pub complete: bool,
    pub d: u16,
    /// R in bytes/s, 0 when unknown.
    pub rate: f64,
}

impl ClientReport {
    pub fn to_doc(&self, client_id: &str) -> ReportDoc {
        ReportDoc {
            client_id: client_id.to_owned(),
            seq: self.seq,
            successful: self.successful,
            complete: self.complete,
            d: self.d,
            rate: self.rate,
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
    /// D of the current (or last) Segment.
    pub d_current: u16,
    /// Channel restarts seen (epoch changed or numbers went back).
    pub channel_restarts: u64,
    pub rate: Option<f64>,
    pub current_seq: Option<u64>,
}

/// Why a window was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    #[error("channel API version {0} is not supported (expected {API_VERSION})")]
    Version(u32),
}

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
    done: Vec<bool>,
    /// When each crumb was requested.
    requested_at: Vec<u64>,
    /// Verified bytes of each crumb so far.
    have: Vec<u64>,
    /// The super seed was asked for this crumb.
    fell_back: Vec<bool>,
}

impl Current {
    fn crumb1(&self) -> bool {
        self.done.first().copied().unwrap_or(false)
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
    on_demand: bool,
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
    /// The previous Segment's D; `None` in the initial stage.
    last: Option<LastSegment>,
    last_fetch: Option<u64>,
    last_output_d: Option<u16>,
    sum_d: u64,
    stats: ClientStats,
    actions: Vec<Action>,
    /// The epoch of the channel run followed; `None` before the first window.
    epoch: Option<Option<u64>>,
    /// Newest Segment number of this run seen in a window.
    latest_seen: Option<u64>,
    liveness: Liveness,
    stalled: bool,
}

/// Signs of life of a channel, for [`ClientConfig::stall_timeout`]: when it last
/// answered (a window or a Segment document), last showed a new Segment, and when the
/// last byte of a crumb arrived. The engine keeps one; crumbsrc's relay mode, which
/// has no engine, keeps its own.
#[derive(Clone, Debug)]
pub struct Liveness {
    timeout: Option<u64>,
    /// Live: a window that stops advancing is a stall (not on demand, where an
    /// archive is played at the client's pace).
    follow_window: bool,
    last_answer: u64,
    last_advance: u64,
    last_fetched: u64,
    bytes_seen: u64,
    /// The last fetch got an answer: a stall while the channel is not answering is
    /// told as such, whichever sign of life ran out first.
    answering: bool,
    /// Longest Segment seen, ns: a healthy channel of long Segments shows a new one
    /// only that often, so the timeout is at least two of them.
    longest_segment: u64,
}

impl Liveness {
    pub fn new(timeout: Option<u64>, follow_window: bool, now: u64) -> Liveness {
        Liveness {
            timeout,
            follow_window,
            last_answer: now,
            last_advance: now,
            last_fetched: now,
            bytes_seen: 0,
            answering: true,
            longest_segment: 0,
        }
    }

    pub fn set_follow_window(&mut self, follow: bool) {
        self.follow_window = follow;
    }

    /// The channel answered (a window or Segment document, or a 404 for one).
    pub fn on_answer(&mut self, now: u64) {
        self.last_answer = self.last_answer.max(now);
        self.answering = true;
    }

    /// A fetch got no usable answer (refused, timed out, not JSON).
    pub fn on_no_answer(&mut self) {
        self.answering = false;
    }

    /// A new Segment appeared in the window.
    pub fn on_advance(&mut self, now: u64) {
        self.last_advance = self.last_advance.max(now);
    }

    /// A Segment of `duration` ns is known.
    pub fn on_segment(&mut self, duration: u64) {
        self.longest_segment = self.longest_segment.max(duration);
    }

    /// A crumb completed.
    pub fn on_fetched(&mut self, now: u64) {
        self.last_fetched = self.last_fetched.max(now);
    }

    /// The running total of crumb bytes downloaded: progress when it grew.
    pub fn on_bytes(&mut self, now: u64, total: u64) {
        if total > self.bytes_seen {
            self.bytes_seen = total;
            self.on_fetched(now);
        }
    }

    /// A new run of the channel: it gets a whole timeout to show its first Segments.
    pub fn restart(&mut self, now: u64) {
        self.on_answer(now);
        self.on_advance(now);
        self.on_fetched(now);
    }

    /// The timeout in force: `stall_timeout`, at least two of the longest Segments.
    pub fn timeout(&self) -> Option<u64> {
        Some(self.timeout?.max(self.longest_segment.saturating_mul(2)))
    }

    /// When a stall is declared if nothing happens before.
    pub fn deadline(&self) -> Option<u64> {
        let mut since = self.last_answer.min(self.last_fetched);
        if self.follow_window {
            since = since.min(self.last_advance);
        }
        Some(since.saturating_add(self.timeout()?))
    }

    /// A stall at `now`: why, and since when the sign of life that ran out was
    /// missing. A channel that is not answering now is told as `NoAnswer` even when
    /// its window had stopped advancing before.
    pub fn stall(&self, now: u64) -> Option<(StallReason, u64)> {
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        let since = deadline.saturating_sub(self.timeout()?);
        let reason = if !self.answering || self.last_answer == since {
            StallReason::NoAnswer
        } else if self.follow_window && self.last_advance == since {
            StallReason::WindowFrozen
        } else {
            StallReason::NothingFetched
        };
        Some((reason, since))
    }
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
            liveness: Liveness::new(config.stall_timeout, true, now),
            config,
            created_at: now,
            last_now: now,
            on_demand: false,
            segments: BTreeMap::new(),
            window: None,
            window_fresh: false,
            current: None,
            next: None,
            last_done: None,
            prev_deadline: None,
            last: None,
            last_fetch: None,
            last_output_d: None,
            sum_d: 0,
            stats: ClientStats::default(),
            actions: Vec::new(),
            epoch: None,
            latest_seen: None,
            stalled: false,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// On-demand playback from Segment `seq` (archived or live): the Segment in
    /// progress is dropped, no racing toward x, the same deadline logic with each
    /// Segment's duration. A failure re-initialises TE and D and goes on with the next
    /// Segment (there is no x' to refresh).
    pub fn start_at(&mut self, now: u64, seq: u64) {
        self.last_now = self.last_now.max(now);
        if let Some(cur) = self.current.take() {
            self.cancel_in_flight(&cur);
            self.rate.set_active(now, false);
        }
        self.on_demand = true;
        self.liveness.set_follow_window(false);
        self.next = Some(seq);
        self.last_done = None;
        self.prev_deadline = None;
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
        let newest = doc.segments.iter().map(|s| s.seq).max();
        if let Some(latest) = doc.latest.or(newest) {
            let size = u64::from(doc.window_size.max(1));
            let oldest = doc
                .oldest
                .or_else(|| doc.segments.iter().map(|s| s.seq).min());
            let oldest = oldest.unwrap_or_else(|| latest.saturating_sub(size - 1));
            let start = doc
                .start_index
                .unwrap_or(latest)
                .clamp(oldest, latest.max(oldest));
            self.window = Some(WindowInfo {
                latest,
                oldest,
                start,
            });
            self.window_fresh = true;
        }
        self.advance(now, true);
        self.prune();
        Ok(())
    }

    /// Whether `doc` comes from another run of the channel than the windows before.
    pub fn restart_sign(&self, doc: &WindowDoc) -> Option<RestartSign> {
        let epoch = self.epoch?;
        if epoch != doc.epoch {
            return Some(RestartSign::Epoch);
        }
        let newest = doc.latest.or(doc.segments.iter().map(|s| s.seq).max());
        match (self.latest_seen, newest) {
            (Some(old), Some(new)) if new < old => Some(RestartSign::NumbersBack),
            _ => None,
        }
    }

    /// Forgets the old run: its Segment in progress (cancelled, no output), its
    /// Segments, TE and D; asks for the whole new window at once.
    fn restart(&mut self, now: u64, sign: RestartSign, doc: &WindowDoc) {
        let restart = Restart {
            sign,
            old_epoch: self.epoch.flatten(),
            new_epoch: doc.epoch,
            old_latest: self.latest_seen,
            new_latest: doc.latest.or(doc.segments.iter().map(|s| s.seq).max()),
        };
        if let Some(cur) = self.current.take() {
            self.cancel_in_flight(&cur);
            self.rate.set_active(now, false);
        }
        self.stats.channel_restarts += 1;
        self.actions.push(Action::ChannelRestarted(restart));
        self.segments.clear();
        self.window = None;
        self.window_fresh = false;
        if !self.on_demand {
            self.next = None;
        }
        self.last_done = None;
        self.prev_deadline = None;
        self.last = None;
        // The window in hand may list only Segments after one of the old run (the
        // caller's `?after=`): a whole one is needed, now.
        self.epoch = Some(doc.epoch);
        self.latest_seen = None;
        self.last_fetch = Some(now);
        self.actions.push(Action::FetchWindow);
        self.liveness.restart(now);
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

    /// On-demand: Segment `seq` cannot be had (the channel answered so); it is
    /// skipped.
    pub fn on_segment_unavailable(&mut self, now: u64, seq: u64) {
        self.advance(now, false);
        self.liveness.on_answer(now);
        if self.on_demand && self.current.is_none() && self.next == Some(seq) {
            self.skip(now, seq, seq.saturating_add(1));
        }
        self.advance(now, true);
    }

    /// Progress of a crumb: verified bytes so far. R comes from `on_bytes_received`
    /// (all bytes, whichever crumb); this paces the super seed fallback.
    pub fn on_crumb_progress(&mut self, now: u64, seq: u64, index: u16, have_bytes: u64) {
        self.advance(now, false);
        if let Some(cur) = self.current.as_mut().filter(|c| c.seq == seq)
            && let Some(have) = usize::from(index)
                .checked_sub(1)
                .and_then(|i| cur.have.get_mut(i))
        {
            *have = (*have).max(have_bytes);
        }
        self.advance(now, true);
    }

    /// Crumb `index` of Segment `seq` is complete (verified) at `now`.
    pub fn on_crumb_complete(&mut self, now: u64, seq: u64, index: u16) {
        self.advance(now, false);
        let Some(cur) = self.current.as_mut() else {
            return self.advance(now, true);
        };
        let i = usize::from(index);
        if cur.seq == seq && (1..=cur.done.len()).contains(&i) {
            self.liveness.on_fetched(now);
            cur.done[i - 1] = true;
            if cur.done.iter().take(usize::from(cur.d)).all(|d| *d) {
                self.finish(now);
                self.try_start(now);
            } else {
                self.request_more();
            }
        }
        self.advance(now, true);
    }

    /// The caller's running total of bytes downloaded (all crumbs), for R.
    pub fn on_bytes_received(&mut self, now: u64, total_bytes: u64) {
        self.advance(now, false);
        self.liveness.on_bytes(now, total_bytes);
        self.rate.on_bytes(now, total_bytes);
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

    /// When the engine gives up if nothing happens before (`stall_timeout` after the
    /// oldest missing sign of life); `None` when it never does.
    pub fn stall_at(&self) -> Option<u64> {
        self.liveness.deadline().filter(|_| !self.stalled)
    }

    fn next_engine_wakeup(&self) -> Option<u64> {
        match (&self.current, self.last_fetch) {
            (Some(cur), _) => {
                let patience = self
                    .config
                    .peer_patience
                    .map(|p| self.patience_ends(cur, p));
                Some(patience.into_iter().flatten().fold(cur.deadline, u64::min))
            }
            (None, Some(f)) => Some(f.saturating_add(self.config.poll_interval)),
            (None, None) => None,
        }
    }

    /// The earliest end of peer patience among crumbs still waiting for it.
    fn patience_ends(&self, cur: &Current, patience: u64) -> Option<u64> {
        let rate = self.rate.rate(self.last_now);
        (0..cur.sizes.len())
            .filter(|&i| cur.requested[i] && !cur.done[i] && !cur.fell_back[i])
            .map(|i| Self::patience_end(cur, i, patience, rate))
            .filter(|&t| t > self.last_now)
            .min()
    }

    /// When crumb `i` may fall back: the patience, plus the time its first piece takes
    /// at R (progress is only seen piece by piece: on a 256 kbit/s line a 16 KiB
    /// piece takes half a second from the best of peers), at most half the time to
    /// the deadline.
    fn patience_end(cur: &Current, i: usize, patience: u64, rate: Option<f64>) -> u64 {
        let t0 = cur.requested_at[i];
        let first_piece = match cur.piece_length {
            0 => cur.sizes[i],
            p => cur.sizes[i].min(p),
        };
        let wait = rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map_or(0, |r| (first_piece as f64 * 1e9 / r) as u64);
        let patience = patience.saturating_add(wait);
        t0.saturating_add(patience.min(cur.deadline.saturating_sub(t0) / 2))
    }

    /// Peers first: asks for the super seed for each crumb in flight whose patience
    /// is over and that has no byte yet or whose pace would miss the deadline.
    fn check_fallbacks(&mut self, now: u64) {
        let Some(patience) = self.config.peer_patience else {
            return;
        };
        let rate = self.rate.rate(now);
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        for i in 0..cur.sizes.len() {
            if !cur.requested[i] || cur.done[i] || cur.fell_back[i] {
                continue;
            }
            if now < Self::patience_end(cur, i, patience, rate) {
                continue;
            }
            let (have, size) = (cur.have[i], cur.sizes[i]);
            let elapsed = now.saturating_sub(cur.requested_at[i]).max(1) as f64;
            let left = cur.deadline.saturating_sub(now) as f64;
            let needs = size.saturating_sub(have) as f64 * elapsed / have.max(1) as f64;
            if have == 0 || needs > FALLBACK_PACE_SHARE * left {
                cur.fell_back[i] = true;
                self.stats.super_seed_fallbacks += 1;
                self.actions.push(Action::UseSuperSeed {
                    seq: cur.seq,
                    index: count(i + 1),
                });
            }
        }
    }

    pub fn rate(&self, now: u64) -> Option<f64> {
        self.rate.rate(now)
    }

    pub fn stats(&self) -> ClientStats {
        let mut s = self.stats.clone();
        s.rate = self.rate.rate(self.last_now);
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
                self.cancel_in_flight(&cur);
                self.rate.set_active(now, false);
            }
            self.actions.push(Action::Stalled { reason, since });
            return;
        }
        while let Some(deadline) = self.current.as_ref().map(|c| c.deadline) {
            if deadline > now || (deadline == now && !inclusive) {
                if inclusive {
                    self.check_fallbacks(now);
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
                rate: self.rate.rate(at),
                started_at: at,
                deadline: at,
                finished_at: at,
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
        let te = self.prev_deadline.map_or(0, |d| d.saturating_sub(at));
        let budget = meta.duration.saturating_add(te);
        let cap = self.cap(meta.sizes.len());
        let usable = |r: &f64| r.is_finite() && *r > 0.0;
        let rate = self.rate.rate(at).filter(usable);
        let rate = rate.or(self.config.initial_rate.filter(usable));
        let (adaptation, safety) = (self.config.adaptation, self.config.safety);
        let (sizes, duration) = (&meta.sizes, meta.duration);
        let d = choose_d(adaptation, safety, self.last, rate, sizes, duration, budget);
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
            done: vec![false; n],
            requested_at: vec![at; n],
            have: vec![0; n],
            fell_back: vec![false; n],
        };
        if let Some(first) = cur.requested.first_mut() {
            *first = true;
        }
        self.actions.push(Action::Download { seq, index: 1 });
        self.rate.set_active(at, true);
        self.stats.time_extension_last = te;
        self.stats.d_current = d;
        self.current = Some(cur);
        self.last_fetch = None;
        true
    }

    /// Requests the next crumbs of the current Segment in index order, crumb 1 alone
    /// first, at most `max_in_flight` at once, up to D.
    fn request_more(&mut self) {
        let now = self.last_now;
        let limit = usize::from(self.config.max_in_flight);
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if !cur.crumb1() {
            return;
        }
        let d = usize::from(cur.d);
        let mut in_flight = (0..d).filter(|&i| cur.requested[i] && !cur.done[i]).count();
        for i in 1..d {
            if in_flight >= limit {
                break;
            }
            if !cur.requested[i] && !cur.done[i] {
                cur.requested[i] = true;
                cur.requested_at[i] = now;
                in_flight += 1;
                let index = count(i + 1);
                self.actions.push(Action::Download {
                    seq: cur.seq,
                    index,
                });
            }
        }
    }

    fn cancel_in_flight(&mut self, cur: &Current) {
        for i in 0..cur.done.len() {
            if cur.requested[i] && !cur.done[i] {
                let index = count(i + 1);
                self.actions.push(Action::Cancel {
                    seq: cur.seq,
                    index,
                });
            }
        }
    }

    /// The current Segment is done at `t` (all D crumbs, or its deadline).
    fn finish(&mut self, t: u64) {
        let Some(cur) = self.current.take() else {
            return;
        };
        self.cancel_in_flight(&cur);
        self.rate.set_active(t, false);
        let successful = cur.crumb1();
        let complete = cur.done.iter().take(usize::from(cur.d)).all(|d| *d);
        let d = if successful {
            cur.prefix(self.cap(cur.sizes.len()))
        } else {
            0
        };
        let rate = self.rate.rate(t);
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
        };
        let report = ClientReport {
            seq: cur.seq,
            successful,
            complete,
            d,
            rate: rate.unwrap_or(0.0),
        };
        self.actions.push(Action::Output {
            seq: cur.seq,
            d,
            record,
        });
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
            // Of its own |s|, not of TE: TE stays a buffer.
            let spare = cur
                .started_at
                .saturating_add(cur.duration)
                .saturating_sub(t);
            self.last = Some(LastSegment::new(
                cur.d,
                complete,
                &cur.sizes,
                cur.duration,
                spare,
            ));
        } else {
            // Back to the initial stage: TE forgotten, D re-estimated, fresh x'.
            self.stats.segments_failed += 1;
            self.prev_deadline = None;
            self.last = None;
            if !self.on_demand {
                self.next = None;
                self.window_fresh = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::api::CrumbDoc;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000_000_000;

    fn seg(seq: u64, duration: u64, sizes: &[u64]) -> SegmentDoc {
        SegmentDoc {
            seq,
            pts: Some(seq.wrapping_mul(duration)),
            duration,
            age_ms: 0,
            crumbs: sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| CrumbDoc {
                    index: i as u16 + 1,
                    info_hash: "00".repeat(20),
                    size,
                    layer: [0, 0, i as u8],
                    piece_length: 16384,
                    torrent: String::new(),
                })
                .collect(),
        }
    }

    fn window(segments: Vec<SegmentDoc>, start: Option<u64>) -> WindowDoc {
        WindowDoc {
            version: API_VERSION,
            channel: "live".into(),
            epoch: None,
            caps: None,
            latest: segments.iter().map(|s| s.seq).max(),
            start_index: start,
            window_size: 5,
            archive: false,
            tracker: String::new(),
            super_seed: None,
            oldest: None,
            segments,
        }
    }

    /// Segments `seqs` of 2 s with crumb sizes `sizes`, x' = `start`.
    fn win(seqs: std::ops::RangeInclusive<u64>, sizes: &[u64], start: u64) -> WindowDoc {
        window(seqs.map(|s| seg(s, 2 * SEC, sizes)).collect(), Some(start))
    }

    fn downloads(actions: &[Action]) -> Vec<(u64, u16)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Download { seq, index } => Some((*seq, *index)),
                _ => None,
            })
            .collect()
    }

    fn records(actions: &[Action]) -> Vec<SegmentRecord> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Output { record, .. } => Some(record.clone()),
                _ => None,
            })
            .collect()
    }

    /// The engine as these tests were written for: the paper's rule, the super seed
    /// only from the tracker (no fallback actions), no stall timeout. Tests of the
    /// defaults say so.
    fn base() -> ClientConfig {
        ClientConfig {
            adaptation: Adaptation::Paper,
            peer_patience: None,
            stall_timeout: None,
            ..ClientConfig::default()
        }
    }

    fn engine(config: ClientConfig) -> ClientEngine {
        let mut e = ClientEngine::new(config, 0);
        assert_eq!(e.poll_actions(0), vec![Action::FetchWindow]);
        e
    }

    /// Completes every crumb of `seq` up to `d` at `now` (crumb 1 first).
    fn complete(e: &mut ClientEngine, now: u64, seq: u64, d: u16) -> Vec<Action> {
        for index in 1..=d {
            e.on_crumb_complete(now, seq, index);
        }
        e.poll_actions(now)
    }

    #[test]
    fn initial_d_from_eq3_and_caps() {
        let sizes = [100, 200, 300, 400];
        for (max_crumbs, rate, want) in [(0, 100.0, 2), (1, 100.0, 1), (0, 1e9, 4), (3, 1e9, 3)] {
            let mut e = engine(ClientConfig {
                initial_rate: Some(rate),
                max_crumbs,
                ..base()
            });
            // |s| = 4 s, TE = 0: 400 bytes at 100 B/s are crumbs 1..2.
            let w = window(vec![seg(7, 4 * SEC, &sizes)], Some(7));
            e.on_window(SEC, &w).unwrap();
            assert_eq!(downloads(&e.poll_actions(SEC)), vec![(7, 1)]);
            assert_eq!(e.stats().d_current, want);
        }
        // No rate and no initial_rate: D = 1.
        let mut e = engine(base());
        e.on_window(0, &win(1..=5, &sizes, 2)).unwrap();
        assert_eq!(e.stats().d_current, 1);
    }

    #[test]
    fn crumb_one_first_then_in_order() {
        let mut e = engine(ClientConfig {
            initial_rate: Some(1e9),
            ..base()
        });
        e.on_window(0, &win(1..=5, &[10, 10, 10, 10, 10], 2))
            .unwrap();
        assert_eq!(downloads(&e.poll_actions(0)), vec![(2, 1)]);
        e.on_crumb_progress(MS, 2, 1, 5);
        assert!(e.poll_actions(MS).is_empty(), "nothing beside crumb 1");
        e.on_crumb_complete(2 * MS, 2, 1);
        assert_eq!(downloads(&e.poll_actions(2 * MS)), vec![(2, 2), (2, 3)]);
        e.on_crumb_complete(3 * MS, 2, 3);
        assert_eq!(downloads(&e.poll_actions(3 * MS)), vec![(2, 4)]);
        e.on_crumb_complete(4 * MS, 2, 99); // no such crumb: ignored
        e.on_crumb_complete(4 * MS, 1, 2); // another Segment: ignored
        e.on_crumb_complete(4 * MS, 2, 2);
        e.on_crumb_complete(4 * MS, 2, 4);
        assert_eq!(downloads(&e.poll_actions(4 * MS)), vec![(2, 5)]);
        let a = complete(&mut e, 5 * MS, 2, 5);
        let r = &records(&a)[0];
        assert!(r.successful && r.complete && !r.skipped);
        assert_eq!(
            (r.seq, r.d, r.d_target, r.crumbs_done, r.crumbs_total),
            (2, 5, 5, 5, 5)
        );
        assert!(a.contains(&Action::Report(ClientReport {
            seq: 2,
            successful: true,
            complete: true,
            d: 5,
            rate: 0.0
        })));
        // Moved on at once: the next Segment's crumb 1, and only it.
        assert_eq!(downloads(&a), vec![(3, 1)]);
        assert_eq!(e.stats().startup_delay, Some(5 * MS));
    }

    fn fallbacks(actions: &[Action]) -> Vec<(u64, u16)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::UseSuperSeed { seq, index } => Some((*seq, *index)),
                _ => None,
            })
            .collect()
    }

    /// Peers first: the super seed is asked for a crumb with no byte after the peer
    /// patience, or whose pace would miss the deadline; once per crumb; never for a
    /// crumb on time.
    #[test]
    fn super_seed_fallback_after_peer_patience() {
        let mut e = engine(ClientConfig {
            peer_patience: Some(300 * MS),
            initial_rate: Some(1e9),
            ..base()
        });
        // |s| = 8 s: patience 300 ms (half the time to the deadline is more).
        let sizes = [100_000, 100_000, 100_000];
        e.on_window(0, &window(vec![seg(2, 8 * SEC, &sizes)], Some(2)))
            .unwrap();
        assert_eq!(downloads(&e.poll_actions(0)), vec![(2, 1)]);
        assert_eq!(
            e.next_wakeup(),
            Some(300 * MS),
            "wake at the end of patience"
        );
        e.tick(299 * MS);
        assert!(fallbacks(&e.poll_actions(299 * MS)).is_empty());
        e.tick(300 * MS);
        assert_eq!(
            fallbacks(&e.poll_actions(300 * MS)),
            vec![(2, 1)],
            "no byte yet"
        );
        e.tick(SEC);
        assert!(fallbacks(&e.poll_actions(SEC)).is_empty(), "once per crumb");
        assert_eq!(e.next_wakeup(), Some(8 * SEC), "then only the deadline");
        e.on_crumb_complete(SEC, 2, 1);
        assert_eq!(downloads(&e.poll_actions(SEC)), vec![(2, 2), (2, 3)]);
        // Crumb 2 at a pace that makes it (half in 0.5 s, 6.5 s left); crumb 3 at one
        // that would not (a twentieth in 0.5 s: 9.5 s more needed).
        e.on_crumb_progress(1500 * MS, 2, 2, 50_000);
        e.on_crumb_progress(1500 * MS, 2, 3, 5_000);
        assert_eq!(fallbacks(&e.poll_actions(1500 * MS)), vec![(2, 3)]);
        e.on_crumb_complete(2 * SEC, 2, 2);
        assert!(fallbacks(&e.poll_actions(2 * SEC)).is_empty());
        assert_eq!(e.stats().super_seed_fallbacks, 2);

        // A short budget shortens the patience: half the time to the deadline.
        let mut e = engine(ClientConfig {
            peer_patience: Some(300 * MS),
            ..base()
        });
        e.on_window(0, &window(vec![seg(2, 400 * MS, &[10_000])], Some(2)))
            .unwrap();
        e.poll_actions(0);
        assert_eq!(e.next_wakeup(), Some(200 * MS));
        e.tick(200 * MS);
        assert_eq!(fallbacks(&e.poll_actions(200 * MS)), vec![(2, 1)]);
        // None: never.
        let mut e = engine(base());
        e.on_window(0, &win(1..=5, &[10_000], 2)).unwrap();
        e.poll_actions(0);
        e.tick(1900 * MS);
        assert!(fallbacks(&e.poll_actions(1900 * MS)).is_empty());
    }

    #[test]
    fn time_extension_accumulates_over_early_segments() {
        let mut e = engine(base());
        e.on_window(0, &win(1..=6, &[10], 3)).unwrap();
        e.poll_actions(0);
        // Segment 3: deadline 2 s. Done at 0.5 s: Segment 4 gets TE 1.5 s.
        let a = complete(&mut e, 500 * MS, 3, 1);
        assert_eq!(records(&a)[0].deadline, 2 * SEC);
        assert_eq!(e.stats().time_extension_last, 1500 * MS);
        // Done at 1 s: TE = 4 s - 1 s = 3 s. Done at 1.2 s: 6 s - 1.2 s.
        let a = complete(&mut e, SEC, 4, 1);
        assert_eq!(records(&a)[0].time_extension, 1500 * MS);
        assert_eq!(records(&a)[0].deadline, 4 * SEC);
        assert_eq!(e.stats().time_extension_last, 3 * SEC);
        let a = complete(&mut e, 1200 * MS, 5, 1);
        assert_eq!(records(&a)[0].deadline, 6 * SEC);
        assert_eq!(e.stats().time_extension_last, 4800 * MS);
        // Segment 6 is x: done, the engine asks for a window with x+1.
        e.on_crumb_complete(2 * SEC, 6, 1);
        assert!(e.poll_actions(2 * SEC).contains(&Action::FetchWindow));
        let s = e.stats();
        assert_eq!((s.segments_successful, s.segments_failed), (4, 0));
    }

    #[test]
    fn races_to_x_then_waits_for_new_segments() {
        let mut e = engine(base());
        e.on_window(0, &win(1..=5, &[10], 4)).unwrap();
        e.poll_actions(0);
        complete(&mut e, 100 * MS, 4, 1);
        let a = complete(&mut e, 200 * MS, 5, 1);
        // At x = 5: nothing to download, ask for the window.
        assert_eq!(downloads(&a), vec![]);
        assert_eq!(a.last(), Some(&Action::FetchWindow));
        assert_eq!(e.next_wakeup(), Some(700 * MS));
        // Same window again: still waiting; the next fetch after the poll interval.
        e.on_window(300 * MS, &win(1..=5, &[10], 4)).unwrap();
        assert!(e.poll_actions(600 * MS).is_empty());
        assert_eq!(e.poll_actions(700 * MS), vec![Action::FetchWindow]);
        // Segment 6 appears at 3 s: TE = deadline of 5 (4 s) - 3 s, so the deadline
        // stays on the chain 2 + 2 + 2 = 6 s.
        e.on_window(3 * SEC, &win(2..=6, &[10], 4)).unwrap();
        assert_eq!(downloads(&e.poll_actions(3 * SEC)), vec![(6, 1)]);
        assert_eq!(e.stats().time_extension_last, SEC);
        assert_eq!(e.next_wakeup(), Some(6 * SEC));
        assert_eq!(e.stats().current_seq, Some(6));
    }

    #[test]
    fn failure_goes_back_to_the_initial_stage() {
        let mut e = engine(ClientConfig {
            initial_rate: Some(1e9),
            ..base()
        });
        let sizes = [10, 10, 10];
        e.on_window(0, &win(1..=5, &sizes, 2)).unwrap();
        e.poll_actions(0);
        complete(&mut e, 500 * MS, 2, 3);
        // Segment 3: TE 1.5 s, deadline 4 s; crumb 1 never comes.
        assert_eq!(e.stats().time_extension_last, 1500 * MS);
        assert!(e.poll_actions(4 * SEC - 1).is_empty());
        let a = e.poll_actions(4 * SEC);
        assert_eq!(a[0], Action::Cancel { seq: 3, index: 1 });
        let r = &records(&a)[0];
        assert!(!r.successful && r.d == 0 && r.finished_at == 4 * SEC);
        assert!(matches!(&a[2], Action::Report(r) if !r.successful));
        assert_eq!(a[3], Action::FetchWindow);
        // A late completion changes nothing.
        e.on_crumb_complete(4 * SEC + 1, 3, 1);
        assert!(e.poll_actions(4 * SEC + 1).is_empty());
        // The old window is stale: only a new one gives x'. x' = 8, so 4..=7 are skipped.
        e.on_window(5 * SEC, &win(6..=10, &sizes, 8)).unwrap();
        assert_eq!(downloads(&e.poll_actions(5 * SEC)), vec![(8, 1)]);
        let s = e.stats();
        assert_eq!((s.segments_failed, s.segments_skipped), (1, 4));
        assert_eq!(s.time_extension_last, 0, "TE forgotten");
        assert_eq!(e.next_wakeup(), Some(7 * SEC));
        // D re-estimated by eq. 3 (initial_rate is huge): N.
        assert_eq!(s.d_current, 3);
    }

    #[test]
    fn failure_never_goes_back() {
        let mut e = engine(base());
        e.on_window(0, &win(1..=5, &[10], 4)).unwrap();
        e.poll_actions(0);
        e.tick(2 * SEC); // Segment 4 failed
        // A window whose x' is behind the failed Segment: start at 5.
        e.on_window(2 * SEC, &win(1..=5, &[10], 2)).unwrap();
        assert_eq!(downloads(&e.poll_actions(2 * SEC)), vec![(5, 1)]);
        assert_eq!(e.stats().segments_skipped, 0);
    }

    #[test]
    fn event_at_the_deadline_counts() {
        let mut e = engine(base());
        e.on_window(0, &win(1..=5, &[10, 10], 3)).unwrap();
        e.poll_actions(0);
        e.on_crumb_complete(2 * SEC, 3, 1);
        let r = &records(&e.poll_actions(2 * SEC))[0];
        assert!(r.successful && r.complete);
    }

    #[test]
    fn output_is_the_longest_complete_prefix() {
        let mut e = engine(ClientConfig {
            initial_rate: Some(1e9),
            max_in_flight: 4,
            ..base()
        });
        e.on_window(0, &win(1..=5, &[10; 5], 3)).unwrap();
        e.poll_actions(0);
        e.on_crumb_complete(MS, 3, 1);
        e.on_crumb_complete(MS, 3, 2);
        e.on_crumb_complete(MS, 3, 4);
        assert_eq!(
            downloads(&e.poll_actions(MS)),
            vec![(3, 2), (3, 3), (3, 4), (3, 5)]
        );
        let a = e.poll_actions(2 * SEC);
        assert!(a.contains(&Action::Cancel { seq: 3, index: 3 }));
        assert!(a.contains(&Action::Cancel { seq: 3, index: 5 }));
        assert!(!a.contains(&Action::Cancel { seq: 3, index: 4 }));
        let r = &records(&a)[0];
        assert!(r.successful && !r.complete);
        assert_eq!((r.d, r.crumbs_done, r.d_target), (2, 3, 5));
        assert!(matches!(&a[2], Action::Output { seq: 3, d: 2, .. }));
        // Crumb 1 missing: d = 0 even with later crumbs present.
        e.on_crumb_complete(2 * SEC + 1, 4, 2);
        let a = e.poll_actions(4 * SEC);
        assert!(
            a.iter()
                .any(|a| matches!(a, Action::Output { seq: 4, d: 0, .. }))
        );
    }

    #[test]
    fn paper_d_plus_minus_rule_and_bounds() {
        let mut e = engine(base());
        let w = window(
            vec![
                seg(1, 2 * SEC, &[1; 3]),
                seg(2, 2 * SEC, &[1; 3]),
                seg(3, 2 * SEC, &[1; 3]),
                seg(4, 2 * SEC, &[1; 3]),
                seg(5, 2 * SEC, &[1; 2]),
                seg(6, 2 * SEC, &[1; 4]),
                seg(7, 2 * SEC, &[1; 4]),
                seg(8, 2 * SEC, &[1; 4]),
                seg(9, 2 * SEC, &[1; 4]),
                seg(10, 2 * SEC, &[1; 4]),
            ],
            Some(1),
        );
        e.on_window(0, &w).unwrap();
        e.poll_actions(0);
        let mut now = 0;
        let mut ds = Vec::new();
        // Complete, complete, complete (D stays at N = 3), N drops to 2, then 4.
        for seq in 1..=6 {
            ds.push(e.stats().d_current);
            now += MS;
            complete(&mut e, now, seq, 4);
        }
        assert_eq!(ds, vec![1, 2, 3, 3, 2, 3]);
        // Segment 7 (D = 4): only crumb 1 by the deadline -> D = 3, then 2, then 1 (an
        // incomplete Segment at D = 1 is a failure, so 1 is the floor).
        assert_eq!(e.stats().d_current, 4);
        for (seq, want) in [(7, 3), (8, 2), (9, 1)] {
            e.on_crumb_complete(now, seq, 1);
            let deadline = e.next_wakeup().unwrap();
            let r = &records(&e.poll_actions(deadline))[0];
            assert!(r.successful && !r.complete);
            now = deadline;
            assert_eq!(e.stats().d_current, want);
        }
        // max_crumbs caps the climb.
        let mut e = engine(ClientConfig {
            max_crumbs: 2,
            ..base()
        });
        e.on_window(0, &win(1..=5, &[1; 4], 1)).unwrap();
        for seq in 1..=4 {
            complete(&mut e, seq * MS, seq, 4);
            assert!(e.stats().d_current <= 2);
        }
        assert_eq!(e.stats().d_current, 2);
        assert_eq!(e.stats().mean_d, 1.75);
    }

    #[test]
    fn skips_segments_that_left_the_window() {
        let mut e = engine(base());
        e.on_window(0, &win(1..=5, &[10], 5)).unwrap();
        e.poll_actions(0);
        complete(&mut e, 100 * MS, 5, 1); // waiting for 6
        // The next window comes late: 6 and 7 left it; jump to x' = 10.
        e.on_window(20 * SEC, &win(8..=12, &[10], 10)).unwrap();
        let a = e.poll_actions(20 * SEC);
        assert_eq!(downloads(&a), vec![(10, 1)]);
        let skipped: Vec<u64> = records(&a)
            .iter()
            .filter(|r| r.skipped)
            .map(|r| r.seq)
            .collect();
        assert_eq!(
            skipped,
            vec![8, 9],
            "Output d = 0 where the Segment is known"
        );
        assert_eq!(e.stats().segments_skipped, 4);
        assert_eq!(e.stats().time_extension_last, 0);
        // A hole inside the window (13 never published): skipped, TE kept.
        let mut w = win(9..=14, &[10], 10);
        w.segments.retain(|s| s.seq != 13);
        e.on_window(20 * SEC, &w).unwrap();
        complete(&mut e, 21 * SEC, 10, 1);
        complete(&mut e, 21 * SEC, 11, 1);
        let a = complete(&mut e, 21 * SEC, 12, 1);
        assert_eq!(downloads(&a), vec![(14, 1)]);
        assert_eq!(e.stats().segments_skipped, 5);
        assert_eq!(e.stats().time_extension_last, 5 * SEC); // deadline 12 = 26 s
    }

    #[test]
    fn refuses_other_versions_and_ignores_bad_segments() {
        let mut e = engine(base());
        let mut w = win(1..=2, &[10], 1);
        w.version = API_VERSION + 1;
        assert_eq!(
            e.on_window(0, &w),
            Err(ClientError::Version(API_VERSION + 1))
        );
        let mut w = win(1..=2, &[10, 10], 1);
        w.segments[0].crumbs[1].index = 3; // crumbs 1 and 3: not a Segment
        e.on_window(0, &w).unwrap();
        assert_eq!(downloads(&e.poll_actions(0)), vec![(2, 1)]);
        assert_eq!(e.stats().segments_skipped, 1);
    }

    #[test]
    fn on_demand_from_an_archived_segment() {
        let mut e = ClientEngine::new(base(), 0);
        e.start_at(0, 40);
        assert_eq!(e.poll_actions(0), vec![Action::FetchSegment { seq: 40 }]);
        e.on_segment(MS, &seg(40, 2 * SEC, &[10]));
        assert_eq!(downloads(&e.poll_actions(MS)), vec![(40, 1)]);
        let a = complete(&mut e, SEC, 40, 1);
        assert_eq!(a.last(), Some(&Action::FetchSegment { seq: 41 }));
        e.on_segment_unavailable(SEC, 41);
        assert_eq!(e.poll_actions(SEC), vec![Action::FetchSegment { seq: 42 }]);
        // Same deadline chain: 42 gets TE = 1 ms + 2 s - 1.5 s.
        e.on_segment(1500 * MS, &seg(42, 2 * SEC, &[10]));
        assert_eq!(downloads(&e.poll_actions(1500 * MS)), vec![(42, 1)]);
        assert_eq!(e.stats().time_extension_last, 501 * MS);
        // A failure goes on with the next Segment, TE reset.
        let a = e.poll_actions(5 * SEC);
        assert!(records(&a).iter().any(|r| r.seq == 42 && !r.successful));
        assert_eq!(a.last(), Some(&Action::FetchSegment { seq: 43 }));
        assert_eq!(e.stats().segments_skipped, 1);
    }

    /// `win` of the channel run `epoch`.
    fn run(epoch: u64, seqs: std::ops::RangeInclusive<u64>, start: u64) -> WindowDoc {
        WindowDoc {
            epoch: Some(epoch),
            ..win(seqs, &[10, 10], start)
        }
    }

    fn restarts(actions: &[Action]) -> Vec<Restart> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::ChannelRestarted(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_new_epoch_drops_the_old_run_and_starts_at_the_new_start_index() {
        let mut e = engine(base());
        e.on_window(0, &run(1, 40..=44, 42)).unwrap();
        assert_eq!(downloads(&e.poll_actions(0)), vec![(42, 1)]);
        // The channel restarted from 0; the client asked `?after=44`, so the window
        // lists no Segment, only x = 1.
        let mut w = run(2, 0..=1, 0);
        w.segments.clear();
        e.on_window(SEC, &w).unwrap();
        let a = e.poll_actions(SEC);
        assert_eq!(
            a,
            vec![
                Action::Cancel { seq: 42, index: 1 },
                Action::ChannelRestarted(Restart {
                    sign: RestartSign::Epoch,
                    old_epoch: Some(1),
                    new_epoch: Some(2),
                    old_latest: Some(44),
                    new_latest: Some(1),
                }),
                Action::FetchWindow,
            ],
            "no Output for the dropped Segment, the whole window asked for at once"
        );
        assert_eq!(e.stats().channel_restarts, 1);
        // The whole new window: x' = 0 begins at once, TE and D start over.
        e.on_window(SEC + MS, &run(2, 0..=1, 0)).unwrap();
        assert_eq!(downloads(&e.poll_actions(SEC + MS)), vec![(0, 1)]);
        let s = e.stats();
        assert_eq!((s.time_extension_last, s.d_current), (0, 1));
        assert_eq!((s.segments_failed, s.segments_skipped), (0, 0));
        // Then it plays on in the new run.
        let a = complete(&mut e, SEC + 2 * MS, 0, 1);
        assert_eq!(downloads(&a), vec![(1, 1)]);
        assert_eq!(e.stats().channel_restarts, 1);
    }

    #[test]
    fn a_new_epoch_with_the_numbers_kept_is_a_restart_too() {
        let mut e = engine(base());
        e.on_window(0, &run(1, 40..=44, 42)).unwrap();
        e.poll_actions(0);
        complete(&mut e, 100 * MS, 42, 1);
        // Spool or archive reused: the new run goes on from 45 (and relists 43, 44
        // with other crumbs).
        e.on_window(SEC, &run(9, 43..=47, 45)).unwrap();
        let a = e.poll_actions(SEC);
        assert_eq!(restarts(&a)[0].sign, RestartSign::Epoch);
        assert!(a.contains(&Action::Cancel { seq: 43, index: 1 }));
        e.on_window(SEC, &run(9, 43..=47, 45)).unwrap();
        assert_eq!(downloads(&e.poll_actions(SEC)), vec![(45, 1)]);
        // The same epoch again is no restart.
        e.on_window(2 * SEC, &run(9, 44..=48, 46)).unwrap();
        assert!(restarts(&e.poll_actions(2 * SEC)).is_empty());
        assert_eq!(e.stats().channel_restarts, 1);
    }

    #[test]
    fn numbers_going_back_are_a_restart_without_epochs() {
        let mut e = engine(base());
        e.on_window(0, &win(40..=44, &[10], 42)).unwrap();
        e.poll_actions(0);
        e.on_window(SEC, &win(0..=2, &[10], 0)).unwrap();
        let a = e.poll_actions(SEC);
        let r = &restarts(&a)[0];
        assert_eq!(r.sign, RestartSign::NumbersBack);
        assert_eq!((r.old_epoch, r.new_epoch), (None, None));
        assert_eq!((r.old_latest, r.new_latest), (Some(44), Some(2)));
        e.on_window(SEC, &win(0..=2, &[10], 0)).unwrap();
        assert_eq!(downloads(&e.poll_actions(SEC)), vec![(0, 1)]);
        // A channel gaining an epoch (an upgrade that restarted it) is one too.
        e.on_window(2 * SEC, &run(5, 0..=3, 1)).unwrap();
        assert_eq!(restarts(&e.poll_actions(2 * SEC)).len(), 1);
        assert_eq!(e.stats().channel_restarts, 2);
    }

    #[test]
    fn numbers_that_go_on_without_epochs_are_a_channel_ahead_not_a_restart() {
        let mut e = engine(base());
        e.on_window(0, &win(40..=44, &[10], 42)).unwrap();
        e.poll_actions(0);
        complete(&mut e, 100 * MS, 42, 1);
        complete(&mut e, 200 * MS, 43, 1);
        complete(&mut e, 300 * MS, 44, 1);
        // Restarted with the numbers kept, no epoch: it looks like a channel that
        // went on, and the client jumps to its x' as for any Segments it missed.
        e.on_window(20 * SEC, &win(60..=64, &[10], 62)).unwrap();
        let a = e.poll_actions(20 * SEC);
        assert!(restarts(&a).is_empty());
        assert_eq!(downloads(&a), vec![(62, 1)]);
    }

    fn stall_config(timeout: u64) -> ClientConfig {
        ClientConfig {
            stall_timeout: Some(timeout),
            ..base()
        }
    }

    fn stalls(actions: &[Action]) -> Vec<(StallReason, u64)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Stalled { reason, since } => Some((*reason, *since)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_frozen_window_is_a_stall_after_the_timeout() {
        let mut e = engine(stall_config(5 * SEC));
        e.on_window(0, &win(1..=5, &[10], 5)).unwrap();
        e.poll_actions(0);
        complete(&mut e, 100 * MS, 5, 1);
        e.on_bytes_received(100 * MS, 10);
        // The channel answers every second, always with x = 5.
        for t in 1..5 {
            e.on_window(t * SEC, &win(1..=5, &[10], 5)).unwrap();
            assert!(stalls(&e.poll_actions(t * SEC)).is_empty());
        }
        assert_eq!(e.stall_at(), Some(5 * SEC));
        assert!(e.next_wakeup() <= Some(5 * SEC), "woken for the stall");
        assert!(stalls(&e.poll_actions(5 * SEC - 1)).is_empty());
        let a = e.poll_actions(5 * SEC);
        assert_eq!(stalls(&a), vec![(StallReason::WindowFrozen, 0)]);
        // Once: then nothing, whatever comes.
        e.on_window(6 * SEC, &win(1..=6, &[10], 6)).unwrap();
        assert!(e.poll_actions(7 * SEC).is_empty());
        assert_eq!(e.next_wakeup(), None);
    }

    #[test]
    fn no_answer_is_a_stall_after_the_timeout() {
        let mut e = engine(stall_config(5 * SEC));
        e.on_window(0, &win(1..=5, &[10], 5)).unwrap();
        e.poll_actions(0);
        complete(&mut e, 2 * SEC, 5, 1);
        e.on_bytes_received(2 * SEC, 10);
        let mut t = 2 * SEC;
        let mut got = Vec::new();
        while got.is_empty() {
            t += SEC / 2;
            e.on_fetch_failed(t);
            got = stalls(&e.poll_actions(t));
        }
        assert_eq!(t, 5 * SEC);
        assert_eq!(got, vec![(StallReason::NoAnswer, 0)]);
    }

    #[test]
    fn crumbs_nobody_seeds_are_a_stall_after_the_timeout() {
        let mut e = engine(stall_config(5 * SEC));
        e.on_window(0, &win(1..=5, &[10], 3)).unwrap();
        e.poll_actions(0);
        e.on_bytes_received(0, 0);
        // The window advances, every Segment fails: no byte ever comes.
        let mut got = Vec::new();
        let mut t = 0;
        while got.is_empty() && t < 20 * SEC {
            t += SEC / 2;
            let x = 5 + t / (2 * SEC);
            e.on_window(t, &win(x - 4..=x, &[10], x - 2)).unwrap();
            e.on_bytes_received(t, 0);
            got = stalls(&e.poll_actions(t));
        }
        assert_eq!(got, vec![(StallReason::NothingFetched, 0)]);
        assert_eq!(t, 5 * SEC);
        assert!(e.stats().segments_failed >= 2);
    }

    #[test]
    fn progress_of_any_kind_keeps_a_channel_alive() {
        // Bytes trickling in keep it alive however slow; windows advancing too.
        let mut e = engine(stall_config(5 * SEC));
        let mut t = 0;
        while t < 60 * SEC {
            let x = 5 + t / (2 * SEC);
            e.on_window(t, &win(x - 4..=x, &[1_000_000], x - 2))
                .unwrap();
            e.on_bytes_received(t, t / MS);
            assert!(stalls(&e.poll_actions(t)).is_empty(), "at {t}");
            t += SEC;
        }
        // Segments of 8 s: a new one every 8 s is no stall at a 5 s timeout (the
        // timeout is at least two Segments).
        let mut e = engine(stall_config(5 * SEC));
        let long = |x: u64| window(vec![seg(x, 8 * SEC, &[10])], Some(x));
        for x in 1..5 {
            let t = x * 8 * SEC;
            e.on_window(t, &long(x)).unwrap();
            e.on_bytes_received(t, x);
            assert!(stalls(&e.poll_actions(t + 7 * SEC)).is_empty());
        }
        e.on_window(47 * SEC, &long(4)).unwrap();
        assert_eq!(
            stalls(&e.poll_actions(48 * SEC)),
            vec![(StallReason::WindowFrozen, 32 * SEC)]
        );
        // No timeout: never.
        let mut e = engine(base());
        e.on_window(0, &win(1..=5, &[10], 5)).unwrap();
        assert!(stalls(&e.poll_actions(3600 * SEC)).is_empty());
    }

    #[test]
    fn a_restart_gives_the_new_run_a_whole_timeout() {
        let mut e = engine(stall_config(5 * SEC));
        e.on_window(0, &run(1, 1..=5, 5)).unwrap();
        e.poll_actions(0);
        // Gone for 4 s, back as a new run with nothing published yet.
        e.on_fetch_failed(4 * SEC);
        let mut w = run(2, 0..=0, 0);
        w.segments.clear();
        w.latest = None;
        e.on_window(4 * SEC, &w).unwrap();
        assert_eq!(restarts(&e.poll_actions(4 * SEC)).len(), 1);
        e.on_window(8 * SEC, &w).unwrap();
        assert!(stalls(&e.poll_actions(9 * SEC - 1)).is_empty());
        assert_eq!(
            stalls(&e.poll_actions(9 * SEC)),
            vec![(StallReason::WindowFrozen, 4 * SEC)]
        );
    }

    #[test]
    fn on_demand_is_not_stalled_by_a_window_that_stands_still() {
        let mut e = ClientEngine::new(stall_config(5 * SEC), 0);
        e.start_at(0, 40);
        let mut t = 0;
        for seq in 40..50 {
            e.poll_actions(t);
            e.on_segment(t, &seg(seq, 2 * SEC, &[10]));
            e.poll_actions(t);
            t += SEC;
            e.on_bytes_received(t, seq);
            e.on_crumb_complete(t, seq, 1);
            assert!(stalls(&e.poll_actions(t)).is_empty());
        }
        assert!(!stalls(&e.poll_actions(t + 10 * SEC)).is_empty());
    }

    /// Found by fuzzing (`window_json`): on demand, Segment u64::MAX was begun again
    /// after it was done, at each of its deadlines, so a late `tick` looped (and
    /// queued actions) once per |s| of the gap: 30 million times for 32 ns Segments.
    #[test]
    fn the_last_segment_number_is_played_once() {
        let mut e = ClientEngine::new(base(), 0);
        e.start_at(0, u64::MAX);
        e.poll_actions(0);
        e.on_segment(0, &seg(u64::MAX, 32, &[10, 10]));
        assert_eq!(downloads(&e.poll_actions(0)), vec![(u64::MAX, 1)]);
        e.tick(SEC);
        let a = e.poll_actions(SEC);
        assert_eq!(records(&a).len(), 1, "{a:?}");
        assert!(downloads(&a).is_empty());
        assert_eq!(e.stats().segments_failed, 1);
        // Live, the same: done once, then only window polls.
        let mut e = engine(base());
        e.on_window(0, &win(u64::MAX - 1..=u64::MAX, &[10], u64::MAX))
            .unwrap();
        e.poll_actions(0);
        let a = complete(&mut e, MS, u64::MAX, 1);
        assert_eq!(records(&a).len(), 1);
        assert!(downloads(&e.poll_actions(10 * SEC)).is_empty());
    }

    /// The paper's deployment scaled to 2 s Segments: base 128 kbps in crumb 1,
    /// enhancement 1 (512 kbps) in 4 crumbs, enhancement 2 (2048 kbps) in 10: N = 15,
    /// 672 kB per Segment, 336 kB/s at full quality.
    const SIM_SIZES: [u64; 15] = [
        32_000, 32_000, 32_000, 32_000, 32_000, 51_200, 51_200, 51_200, 51_200, 51_200, 51_200,
        51_200, 51_200, 51_200, 51_200,
    ];
    const SIM_DUR: u64 = 2 * SEC;

    /// A channel publishing Segment k at k·|s| (|w| = 5, x' = x - 3) and a fake link
    /// of `rate(t)` bytes/s serving requested crumbs one at a time, lowest first.
    /// Runs until `segments` Segments are done; returns their records.
    fn simulate(
        config: ClientConfig,
        rate: impl Fn(u64) -> f64,
        segments: usize,
    ) -> (Vec<SegmentRecord>, ClientStats) {
        let dt = 5 * MS;
        let join = 4 * SIM_DUR + 300 * MS;
        let window_at = |t: u64| {
            let x = t / SIM_DUR;
            let lo = x.saturating_sub(4);
            win(lo..=x, &SIM_SIZES, x.saturating_sub(3))
        };
        let mut e = ClientEngine::new(config, join);
        let mut queue: Vec<(u64, u16, f64)> = Vec::new();
        let mut total = 0.0f64;
        let mut out = Vec::new();
        let mut t = join;
        while out.len() < segments && t < join + 4 * SIM_DUR * segments as u64 {
            loop {
                let actions = e.poll_actions(t);
                if actions.is_empty() {
                    break;
                }
                for a in actions {
                    match a {
                        Action::FetchWindow => e.on_window(t, &window_at(t)).unwrap(),
                        Action::Download { seq, index } => queue.push((seq, index, 0.0)),
                        Action::Cancel { seq, index } => {
                            queue.retain(|q| (q.0, q.1) != (seq, index))
                        }
                        Action::Output { record, .. } => out.push(record),
                        Action::Report(_) | Action::UseSuperSeed { .. } => {}
                        Action::FetchSegment { .. } => panic!("live client"),
                        Action::ChannelRestarted(_) | Action::Stalled { .. } => {
                            panic!("the simulated channel never restarts nor stalls")
                        }
                    }
                }
            }
            queue.sort_by_key(|q| (q.0, q.1));
            let mut budget = rate(t) * dt as f64 / 1e9;
            let mut completed = Vec::new();
            while budget > 0.0 && !queue.is_empty() {
                let need = SIM_SIZES[usize::from(queue[0].1) - 1] as f64 - queue[0].2;
                if need <= budget {
                    budget -= need;
                    total += need;
                    completed.push((queue[0].0, queue[0].1));
                    queue.remove(0);
                } else {
                    queue[0].2 += budget;
                    total += budget;
                    budget = 0.0;
                }
            }
            t += dt;
            e.on_bytes_received(t, total as u64);
            for (seq, index) in completed {
                e.on_crumb_complete(t, seq, index);
            }
            e.tick(t);
        }
        (out, e.stats())
    }

    fn config(adaptation: Adaptation) -> ClientConfig {
        ClientConfig {
            adaptation,
            ..base()
        }
    }

    #[test]
    fn simulation_fast_link_reaches_full_quality() {
        for a in [Adaptation::Paper, Adaptation::RateBased] {
            // 500 kB/s, 1.5 times the full-quality rate.
            let (recs, st) = simulate(config(a), |_| 500_000.0, 60);
            assert_eq!(recs.len(), 60);
            assert!(recs.iter().all(|r| r.successful && !r.skipped), "{a:?}");
            assert_eq!((st.segments_failed, st.segments_skipped), (0, 0));
            assert!(recs[30..].iter().all(|r| r.d == 15 && r.complete), "{a:?}");
            assert_eq!(st.d_current, 15);
        }
    }

    #[test]
    fn simulation_link_just_above_base_rate() {
        for a in [Adaptation::Paper, Adaptation::RateBased] {
            // 20 kB/s: the base layer alone takes 16 kB/s.
            let (recs, st) = simulate(config(a), |_| 20_000.0, 60);
            assert_eq!(recs.len(), 60);
            assert_eq!((st.segments_failed, st.segments_skipped), (0, 0), "{a:?}");
            assert!(
                recs.iter()
                    .all(|r| r.successful && r.d == 1 && r.d_target <= 2)
            );
            assert_eq!(st.mean_d, 1.0);
        }
    }

    /// At 62 kB/s crumbs 1..3 (96 kB) fit a 2 s Segment, 1..4 (128 kB) do not. The
    /// paper's rule probes D+1 after every complete Segment, spends TE on it, and ends
    /// up cycling D through 3, 4, 5, 4 with TE at 0 half the time; RateBased holds D = 3
    /// with every Segment complete and TE kept as a buffer. Then R dips to 12 kB/s for
    /// 8 s (crumb 1 alone needs 2.7 s): the paper fails Segments, RateBased rides the
    /// dip on its TE.
    #[test]
    fn rate_based_vs_paper_where_paper_oscillates() {
        let steady = |_| 62_000.0;
        let (paper, paper_st) = simulate(config(Adaptation::Paper), steady, 60);
        let (rb, rb_st) = simulate(config(Adaptation::RateBased), steady, 60);
        let switches = |recs: &[SegmentRecord]| {
            recs.windows(2)
                .filter(|w| w[0].d_target != w[1].d_target)
                .count()
        };
        let tail = |recs: &[SegmentRecord]| recs[20..].to_vec();
        assert_eq!((paper_st.segments_failed, rb_st.segments_failed), (0, 0));
        assert!(switches(&tail(&paper)) >= 20);
        assert!(tail(&paper).iter().filter(|r| !r.complete).count() >= 10);
        assert!(tail(&paper).iter().any(|r| r.time_extension == 0));
        assert_eq!(switches(&tail(&rb)), 0);
        assert!(tail(&rb).iter().all(|r| r.complete && r.d == 3));
        assert!(tail(&rb).iter().all(|r| r.time_extension >= SIM_DUR));
        assert!(rb_st.quality_switches <= 1 && paper_st.quality_switches >= 20);

        let dip = |t: u64| {
            if (70 * SEC..78 * SEC).contains(&t) {
                12_000.0
            } else {
                62_000.0
            }
        };
        let (_, paper_st) = simulate(config(Adaptation::Paper), dip, 60);
        let (rb, rb_st) = simulate(config(Adaptation::RateBased), dip, 60);
        assert!(paper_st.segments_failed >= 1);
        assert_eq!(rb_st.segments_failed, 0);
        assert!(rb.iter().all(|r| r.successful));
        // And it climbs back to D = 3 once the dip leaves the rate window.
        assert_eq!(rb.last().map(|r| r.d), Some(3));
    }
}
