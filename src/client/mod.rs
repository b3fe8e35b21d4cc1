// SPDX-License-Identifier: MPL-2.0
//! The client's IO: HTTP to the channel (window, Segments, .torrent files, reports),
//! one librqbit session downloading and seeding crumbs, and the reassembly of what the
//! engine outputs. The decisions are `core::client::ClientEngine`'s; this task only
//! carries them out and feeds it what happened.

mod prefetch;
mod window;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::core::api::{CrumbDoc, SegmentDoc, WindowDoc};
use crate::core::client::{
    Action, ClientConfig as EngineConfig, ClientEngine, ClientStats, RelayRecord, Restart,
    SegmentRecord, StallReason,
};
use crate::core::crumb::Crumb;
use crate::core::reassembly::{Output, Reassembler};
use crate::core::uplink::{UplinkConfig, UploadGovernor};
use crate::p2p::{Fetch, P2pSession, RUNTIME, SessionConfig, TorrentId};

/// What the client does with a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Race Segments, adapt D, output the stream.
    Play,
    /// Download every crumb of every Segment as soon as it appears and seed it (an
    /// extra Program Super Seed); no output.
    Relay,
}

#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// `http://HOST:PORT/CHANNEL`.
    pub url: String,
    pub listen_address: IpAddr,
    pub max_upload_rate: Option<u32>,
    pub max_download_rate: Option<u32>,
    pub engine: EngineConfig,
    pub mode: Mode,
    /// On-demand: play from this Segment.
    pub start: Option<u64>,
    pub client_id: String,
    /// The upload governor (`core::uplink`); None: uploads limited only by
    /// `max_upload_rate`.
    pub uplink: Option<UplinkConfig>,
    /// How long the channel may hold a window poll while the engine waits for the
    /// next Segment (a blocking reload, `?wait=`); zero: plain polls.
    pub window_hold: Duration,
}

/// What the element receives, in order.
#[derive(Debug)]
pub enum ClientEvent {
    /// The first window: what the channel carries beside the video (sent once,
    /// before any output), so that crumbsrc adds its `audio` pad early.
    Channel {
        audio_caps: Option<String>,
    },
    /// Sent before a Segment's output: ns from now to when the engine plans its
    /// first frame to play (`SegmentRecord::plays_at`, `None` without a player's
    /// delay), where crumbsrc's play-out anchors it if it starts or moves its
    /// timeline there, and when the output was ready, by which its lateness is
    /// judged (`core::playout`: crumbsrc may push it later, held by downstream).
    Playout {
        play_in: Option<i64>,
        ready: std::time::Instant,
    },
    Output(Output),
    /// One Segment's outcome with where its bytes came from.
    Segment {
        record: SegmentRecord,
        bytes_from_super_seed: u64,
        bytes_from_peers: u64,
        /// Bytes of the crumbs output (1..=d, and of the tail crumb the bytes used).
        bytes_output: u64,
        /// Of those, the tail crumb's (`ClientConfig::tail_crumb`).
        tail_bytes: u64,
        /// |s| in ns (0 when the Segment's document never arrived).
        duration: u64,
    },
    /// The channel restarted: what follows is its new run (timestamps start over).
    Restarted(Restart),
    /// The client left channel `old` and joins `new`: what follows is the new
    /// channel (caps, timestamps start over).
    Switched {
        old: String,
        new: String,
    },
    /// Relay: one Segment's crumbs fetched, or given up, with where their bytes came
    /// from.
    Relayed {
        record: RelayRecord,
        bytes_from_super_seed: u64,
        bytes_from_peers: u64,
        /// Bytes uploaded to peers so far, all Segments.
        bytes_uploaded: u64,
    },
    /// Fatal: the text names the problem (unreachable channel, wrong URL...).
    Error(String),
    /// The channel showed no sign of life for `stall_timeout` after having worked
    /// (stopped, frozen, or its crumbs cannot be had): the end of the stream. The
    /// client has stopped.
    Stalled {
        reason: StallReason,
        /// How long the sign of life was missing, ns.
        stalled_for: u64,
        /// The timeout in force, ns.
        timeout: u64,
    },
}

/// Running totals shared with the element's `stats`.
#[derive(Clone, Debug, Default)]
pub struct ClientTotals {
    pub engine: ClientStats,
    pub bytes_downloaded: u64,
    pub bytes_uploaded: u64,
    pub bytes_from_super_seed: u64,
    pub bytes_from_peers: u64,
    /// Pieces one connection took over from another (librqbit's steals): each costs
    /// bytes fetched twice or a request cancelled.
    pub pieces_stolen: u64,
    pub crumbs_malformed: u64,
    /// Bytes of tail crumbs output (`ClientConfig::tail_crumb`).
    pub tail_bytes: u64,
    pub torrents_seeding: usize,
    /// The upload limit in force, bytes/s (None: unlimited).
    pub upload_limit: Option<u32>,
    /// The uplink's queueing delay at the last window poll, ns.
    pub uplink_delay: Option<u64>,
}

/// A running client. Dropping it stops the task and the session.
pub struct Client {
    pub events: mpsc::Receiver<ClientEvent>,
    stop: Arc<AtomicBool>,
    /// A channel to switch to, taken by the task at its next round.
    switch: Arc<Mutex<Option<String>>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub totals: Arc<Mutex<ClientTotals>>,
    pub p2p_port: u16,
}

/// Peers per crumb torrent at most (both ways).
const PEER_LIMIT: usize = 12;

/// Longest wait for one HTTP answer; shorter when the stall timeout ends sooner.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a crumb's completion is waited for in the background (the crumb goes
/// with its Segment's window long before).
const CRUMB_WAIT_BOUND: Duration = Duration::from_secs(600);

/// Rounds of the client's loop in a row without a nap while the engine has more to
/// do at once (a bound: an engine that kept asking could otherwise spin).
const IMMEDIATE_ROUNDS: u32 = 8;

/// `http://HOST:PORT` of channel URL `url`, or why it is not one.
fn origin(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("'{url}' is not a URL"))?;
    if parsed.scheme() != "http"
        || parsed
            .path_segments()
            .map_or(0, |s| s.filter(|p| !p.is_empty()).count())
            != 1
    {
        bail!("'{url}' is not a channel URL (http://HOST:PORT/CHANNEL)");
    }
    Ok(format!("{}://{}", parsed.scheme(), parsed.authority()))
}

impl Client {
    pub fn start(settings: ClientSettings) -> anyhow::Result<Client> {
        let origin = origin(&settings.url)?;
        let spool = std::env::temp_dir().join(format!(
            "crumbsrc-{}-{}",
            std::process::id(),
            crate::spool::unique()
        ));
        let session = RUNTIME.block_on(P2pSession::new(SessionConfig {
            listen_addr: settings.listen_address,
            listen_port: 0,
            spool_dir: spool.clone(),
            upload_limit_bps: settings.max_upload_rate,
            download_limit_bps: settings.max_download_rate,
            // The channel's tracker interval: peers are found by the announce made
            // when a crumb starts; re-announces only keep a seeding crumb listed.
            tracker_interval: None,
            // A crumb needs a few good sources, not the whole swarm: every connection
            // costs handshakes, bitfields and HAVEs, a tenth of a slow line's Segment
            // with 20 peers per crumb.
            peer_limit: Some(PEER_LIMIT),
            ..Default::default()
        }))?;
        let p2p_port = session.listen_port();
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let switch = Arc::new(Mutex::new(None));
        let totals = Arc::new(Mutex::new(ClientTotals::default()));
        let governor = settings.uplink.clone().map(UploadGovernor::new);
        // The governor's first limit is set at the first round.
        let applied_upload_limit = settings.max_upload_rate;
        let runner = Runner {
            http: reqwest::Client::builder().build()?,
            origin,
            settings,
            switch: switch.clone(),
            relay_sources: HashMap::new(),
            session: Arc::new(session),
            spool,
            tx,
            stop: stop.clone(),
            totals: totals.clone(),
            docs: HashMap::new(),
            active: HashMap::new(),
            done: HashSet::new(),
            fallback_pending: HashMap::new(),
            super_seed_alone: HashSet::new(),
            started_alone: HashSet::new(),
            governor,
            applied_upload_limit,
            clock: Instant::now(),
            super_seed: None,
            reassembler: Reassembler::new(0),
            window_ok_once: false,
            last_window: Instant::now(),
            window_poll: None,
            window_again: false,
            stall_at: None,
            hold_window: false,
            crumb_done: Arc::new(tokio::sync::Notify::new()),
            prefetch: prefetch::TorrentPrefetch::default(),
            preparing: HashSet::new(),
            held: HashSet::new(),
        };
        let task = RUNTIME.spawn(runner.run());
        Ok(Client {
            events: rx,
            stop,
            switch,
            task: Some(task),
            totals,
            p2p_port,
        })
    }

    /// Leaves the channel for `url` (a channel URL, checked): done by the task at its
    /// next round, which then sends [`ClientEvent::Switched`].
    pub fn switch(&self, url: &str) -> anyhow::Result<()> {
        origin(url)?;
        *self.switch.lock().unwrap() = Some(url.to_owned());
        Ok(())
    }

    /// Stops downloading and seeding; waits (bounded) for the session to close.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(task) = self.task.take() {
            let _ = RUNTIME
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Runner {
    http: reqwest::Client,
    origin: String,
    settings: ClientSettings,
    switch: Arc<Mutex<Option<String>>>,
    /// Relay: bytes of Segments whose torrents went with the window before the engine
    /// reported them (from the super seed, from peers).
    relay_sources: HashMap<u64, (u64, u64)>,
    session: Arc<P2pSession>,
    spool: PathBuf,
    tx: mpsc::Sender<ClientEvent>,
    stop: Arc<AtomicBool>,
    totals: Arc<Mutex<ClientTotals>>,
    /// Segment documents seen, for crumb sizes and torrent paths.
    docs: HashMap<u64, SegmentDoc>,
    /// Crumbs being downloaded or seeded.
    active: HashMap<(u64, u16), TorrentId>,
    /// Crumbs complete (reported to the engine once).
    done: HashSet<(u64, u16)>,
    /// Crumbs whose torrent is to get the super seed as a peer once it is live, with
    /// whether it takes over their pieces (the engine's `take_over`).
    fallback_pending: HashMap<(u64, u16), bool>,
    /// Crumbs about to start whose one source is the super seed (the engine's
    /// `alone`): their torrent asks no tracker.
    super_seed_alone: HashSet<(u64, u16)>,
    /// Crumbs started from the super seed alone and not yet opened to their
    /// tracker: when the engine asks the super seed again (it sent nothing in its
    /// time), their peers are better than nothing.
    started_alone: HashSet<(u64, u16)>,
    governor: Option<UploadGovernor>,
    applied_upload_limit: Option<u32>,
    /// The origin of the engine's and the governor's `now`.
    clock: Instant,
    super_seed: Option<SocketAddr>,
    reassembler: Reassembler,
    window_ok_once: bool,
    last_window: Instant,
    /// The window poll on its way, if any.
    window_poll: Option<window::WindowPoll>,
    /// A window poll was asked for while one was on its way.
    window_again: bool,
    /// When the engine declares a stall (its clock): HTTP waits end by then.
    stall_at: Option<u64>,
    /// The engine waits for the window's next Segment: polls ask the channel to hold
    /// their answer until it is published (`ClientSettings::window_hold`).
    hold_window: bool,
    /// Woken when a crumb's torrent completes: the engine hears of it at once and
    /// asks for the next crumb, instead of at the loop's next round (up to 50 ms
    /// later, twice per crumb: a 3 Mbit/s line moves a 63 kB crumb in 170 ms).
    crumb_done: Arc<tokio::sync::Notify>,
    /// The next crumbs' .torrent files, fetched ahead.
    prefetch: prefetch::TorrentPrefetch,
    /// Crumbs the engine prepares ([`Action::Prepare`]) whose .torrent is on its way.
    preparing: HashSet<(u64, u16)>,
    /// Crumbs started with their requests held, until the engine asks for them.
    held: HashSet<(u64, u16)>,
}

impl Runner {
    async fn run(mut self) {
        let t0 = self.clock;
        let now = || t0.elapsed().as_nanos() as u64;
        let mut config = self.settings.engine.clone();
        config.relay = self.settings.mode == Mode::Relay;
        let mut engine = ClientEngine::new(config, now());
        engine.set_draw_key(draw_key(&self.settings.client_id));
        if let Some(seq) = self.settings.start {
            // On demand the engine asks for Segments, not the window: read it once
            // first for the super seed's address (the fallback needs it at once).
            // A failure here shows again at the liveness poll.
            let _ = self.fetch_window().await;
            engine.start_at(now(), seq);
        }
        let mut immediate = 0;
        while !self.stop.load(Ordering::SeqCst) {
            let switch = self.switch.lock().unwrap().take();
            if let Some(url) = switch {
                self.switch_channel(&mut engine, url, now()).await;
            }
            if let Some(Err(e)) = self.window_answer(&mut engine).await {
                engine.on_fetch_failed(now());
                if self.fail(e) {
                    self.finish().await;
                    return;
                }
            }
            engine.tick(now());
            self.stall_at = engine.stall_at();
            let mut actions = engine.poll_actions(now());
            self.hold_window = engine.waits_for_window();
            // The window also tells that the channel is alive and which crumbs left it
            // (to stop seeding them): read it at least every second (not after a stall:
            // that ends the stream at once).
            let stalled = actions.iter().any(|a| matches!(a, Action::Stalled { .. }));
            if !stalled
                && self.last_window.elapsed() >= Duration::from_secs(1)
                && !actions.contains(&Action::FetchWindow)
            {
                actions.insert(0, Action::FetchWindow);
            }
            // A crumb the engine sends to the super seed as soon as it is asked for
            // (urgent: too little time for peers) gets it as a first peer, before the
            // tracker's: added after the start, the super seed connected tens of ms
            // behind the peers, and on a slow line its bitfield then waited a second
            // in the downlink's queue behind their pieces (a crumb 1 lost, bench).
            for action in &actions {
                if let Action::UseSuperSeed {
                    seq,
                    index,
                    take_over,
                    alone,
                } = action
                {
                    self.fallback_pending.insert((*seq, *index), *take_over);
                    if *alone {
                        self.super_seed_alone.insert((*seq, *index));
                    }
                }
            }
            for action in actions {
                if let Action::Stalled { reason, since } = action {
                    let timeout = engine.config().stall_timeout;
                    self.stalled(reason, since, timeout);
                    self.finish().await;
                    return;
                }
                if let Err(e) = self.act(&mut engine, action, now()).await
                    && self.fail(e)
                {
                    self.finish().await;
                    return;
                }
            }
            if !self.preparing.is_empty() {
                self.start_prepared(engine.rate(now())).await;
            }
            self.poll_progress(Some(&mut engine), now());
            self.totals.lock().unwrap().engine = engine.stats();
            if engine.has_actions() && immediate < IMMEDIATE_ROUNDS {
                // What a completion just asked for (the next crumb) goes out now.
                immediate += 1;
                tokio::task::yield_now().await;
                continue;
            }
            immediate = 0;
            let wake = engine
                .next_wakeup()
                .map_or(50_000_000, |w| w.saturating_sub(now()));
            let nap = Duration::from_nanos(wake.clamp(5_000_000, 50_000_000));
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                _ = self.crumb_done.notified() => {}
            }
        }
        self.finish().await;
    }

    /// A failed step: fatal (returns true) for a channel that never answered;
    /// otherwise retried (the stall timeout decides when a channel is gone).
    fn fail(&mut self, e: anyhow::Error) -> bool {
        if !self.window_ok_once {
            let _ = self.tx.send(ClientEvent::Error(format!(
                "Cannot join channel {}: {e:#}",
                self.settings.url
            )));
            return true;
        }
        gst::debug!(crate::client::CAT, "{e:#}");
        false
    }

    fn stalled(&mut self, reason: StallReason, since: u64, timeout: Option<u64>) {
        let stalled_for = self.now().saturating_sub(since);
        let _ = self.tx.send(ClientEvent::Stalled {
            reason,
            stalled_for,
            timeout: timeout.unwrap_or(stalled_for),
        });
    }

    async fn finish(&mut self) {
        if let Some(p) = self.window_poll.take() {
            p.task.abort();
        }
        let _ = self.session.shutdown().await;
        let _ = tokio::fs::remove_dir_all(&self.spool).await;
    }

    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        send_get(&self.http, &self.url_of(path), self.http_timeout()).await
    }

    /// A path of the channel's (or a whole URL) as a URL.
    fn url_of(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.origin, path)
        }
    }

    /// The window's URL (only the Segments newer than the newest one known: the rest
    /// is unchanged; held by the channel until there is one while the engine waits
    /// for it) and the timeout of a request sent now.
    fn window_request(&self) -> (String, Duration) {
        let mut url = match self.docs.keys().max() {
            Some(k) => format!("{}?after={k}", self.settings.url),
            None => self.settings.url.clone(),
        };
        if !self.hold_window || self.settings.window_hold.is_zero() {
            return (url, self.http_timeout());
        }
        // A poll every 500 ms finds a new Segment 250 ms after its publication on
        // average; held (crumbsrc `window-hold`), it is answered the moment the
        // Segment is out. Held for at most half the time left before the stall
        // deadline: the channel's answer (a frozen window, told as such) must come
        // before that deadline, not a poll cut short by it (which reads as a channel
        // that does not answer).
        let left = self.timeout_within(HTTP_TIMEOUT + self.settings.window_hold);
        let hold = self.settings.window_hold.min(left / 2);
        if hold < Duration::from_millis(50) {
            return (url, self.http_timeout());
        }
        url.push_str(if url.contains('?') { "&" } else { "?" });
        url.push_str(&format!("wait={}", hold.as_millis()));
        (url, left)
    }

    /// Never past the stall deadline: a channel that accepts and never answers must
    /// not hold the client longer than `stall-timeout`.
    fn http_timeout(&self) -> Duration {
        self.timeout_within(HTTP_TIMEOUT)
    }

    /// `longest`, cut to the time left before the stall deadline (at least 100 ms).
    fn timeout_within(&self, longest: Duration) -> Duration {
        let left = self.stall_at.map_or(longest, |at| {
            Duration::from_nanos(at.saturating_sub(self.now()))
        });
        left.clamp(Duration::from_millis(100), longest)
    }

    /// Starts a window poll beside the other IO; with one on its way, another starts as
    /// soon as it is answered (the engine asks when it needs a newer window: the one
    /// on its way may have been sent just before the Segment it waits for was out).
    fn start_window_poll(&mut self) {
        if self.window_poll.is_some() {
            self.window_again = true;
            return;
        }
        self.window_again = false;
        self.window_poll = Some(self.send_window_poll());
    }

    /// Sends a window poll (its answer comes in a task of its own).
    fn send_window_poll(&mut self) -> window::WindowPoll {
        // Counted before the attempt: a refused or timed-out fetch is not retried at
        // once by the one-second liveness check.
        self.last_window = Instant::now();
        let (url, timeout) = self.window_request();
        let clock = self.clock;
        let sent = self.now();
        window::WindowPoll::start(self.http.clone(), url, timeout, sent, move || {
            clock.elapsed().as_nanos() as u64
        })
    }

    /// The window poll's answer, if it has come: the window read (and given to the
    /// engine), or the failure.
    async fn window_answer(&mut self, engine: &mut ClientEngine) -> Option<anyhow::Result<()>> {
        let answer = self.window_poll.as_mut()?.take().await?;
        let sent = self.window_poll.take().map_or(0, |p| p.sent);
        let applied = self.apply_window(sent, answer).await;
        if self.window_again {
            self.start_window_poll();
        }
        let doc = match applied {
            Ok(doc) => doc,
            Err(e) => return Some(Err(e)),
        };
        let now = self.now();
        Some(
            engine
                .on_window(now, &doc)
                .map_err(|e| anyhow::anyhow!("{e}")),
        )
    }

    /// Reads the window now, in line (joining, on demand).
    async fn fetch_window(&mut self) -> anyhow::Result<WindowDoc> {
        let poll = self.send_window_poll();
        let sent = poll.sent;
        let answer = poll.answer().await;
        self.apply_window(sent, answer).await
    }

    /// Takes in a window poll's answer: the upload governor's delay sample, the
    /// Segment documents, the crumbs that left the window.
    async fn apply_window(
        &mut self,
        sent: u64,
        answer: anyhow::Result<window::WindowAnswer>,
    ) -> anyhow::Result<WindowDoc> {
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                if let Some(g) = self.governor.as_mut() {
                    g.on_no_answer(sent);
                }
                return Err(e);
            }
        };
        let took = answer.answered.saturating_sub(sent);
        if took > 250_000_000 {
            gst::debug!(
                crate::client::CAT,
                "the window took {} ms",
                took / 1_000_000
            );
        }
        if let (Some(g), Some(received)) = (self.governor.as_mut(), answer.received) {
            g.on_delay_sample(answer.answered, sent, received);
        }
        let body = answer.body;
        let doc: WindowDoc =
            serde_json::from_slice(&body).context("the channel's window is not valid JSON")?;
        if !self.window_ok_once {
            let _ = self.tx.send(ClientEvent::Channel {
                audio_caps: doc.audio_caps.clone(),
            });
        }
        self.window_ok_once = true;
        self.last_window = Instant::now();
        if let Some(s) = doc.super_seed.as_deref().and_then(|s| s.parse().ok()) {
            self.super_seed = Some(s);
        }
        for s in &doc.segments {
            self.docs.insert(s.seq, s.clone());
        }
        // Sharing: crumbs of Segments that left the window are no use to anyone. On
        // demand, archived Segments are played on purpose: only those a window behind
        // the one playing go.
        let live_first = doc.oldest.or(doc.segments.first().map(|s| s.seq));
        let first = match self.settings.start {
            None => live_first,
            Some(_) => {
                let playing = self.totals.lock().unwrap().engine.current_seq;
                playing.map(|p| p.saturating_sub(u64::from(doc.window_size.max(1))))
            }
        };
        if let Some(first) = first {
            let old: Vec<(u64, u16)> = self
                .active
                .keys()
                .filter(|(s, _)| *s < first)
                .copied()
                .collect();
            if self.settings.mode == Mode::Relay {
                // The engine reports those of these Segments it had not reported
                // (given up) right after this window; older entries are stale.
                self.relay_sources.clear();
                let seqs: HashSet<u64> = old.iter().map(|k| k.0).collect();
                for seq in seqs {
                    let bytes = self.sources(seq);
                    self.relay_sources.insert(seq, bytes);
                }
            }
            for k in old {
                if let Some(id) = self.active.remove(&k) {
                    let _ = self.session.remove(id, true).await;
                }
            }
            self.docs.retain(|s, _| *s >= first);
            self.done.retain(|(s, _)| *s >= first);
            self.started_alone.retain(|(s, _)| *s >= first);
            self.preparing.retain(|(s, _)| *s >= first);
            self.held.retain(|(s, _)| *s >= first);
            self.prefetch.forget_before(first);
        }
        Ok(doc)
    }

    fn crumb_doc(&self, seq: u64, index: u16) -> Option<CrumbDoc> {
        self.docs
            .get(&seq)?
            .crumbs
            .iter()
            .find(|c| c.index == index)
            .cloned()
    }

    /// Starts crumb `index` of Segment `seq`; `rate` is R, the engine's measure of
    /// the line (bytes/s), when it has one. `hold`: prepared, its requests held
    /// (only from a .torrent fetched ahead: a prepared crumb never waits on HTTP here).
    async fn start_download(
        &mut self,
        seq: u64,
        index: u16,
        rate: Option<f64>,
        hold: bool,
    ) -> anyhow::Result<()> {
        if self.active.contains_key(&(seq, index)) {
            return Ok(());
        }
        let Some(doc) = self.crumb_doc(seq, index) else {
            bail!("no document for crumb {index} of Segment {seq}")
        };
        let asked = std::time::Instant::now();
        let torrent = match self.prefetch.take((seq, index)).await {
            Some(t) => t,
            None if hold => bail!("its .torrent was not fetched"),
            None => self.get(&doc.torrent).await?.bytes().await?.to_vec(),
        };
        // A client past crumb 1 goes on in index order: the next .torrent files are
        // fetched while this crumb downloads.
        if index >= 2 && self.settings.mode == Mode::Play {
            for next in index + 1..=index.saturating_add(prefetch::LOOKAHEAD) {
                if self.active.contains_key(&(seq, next)) {
                    continue;
                }
                if let Some(d) = self.crumb_doc(seq, next) {
                    let url = self.url_of(&d.torrent);
                    let timeout = self.http_timeout();
                    self.prefetch.start(&self.http, (seq, next), url, timeout);
                }
            }
        }
        let dir = self.spool.join(seq.to_string());
        // Peers first: the tracker hands out the super seed to a crumb's first
        // downloaders only; the engine asks for it when peers are too slow. A relay is
        // an extra super seed and goes to the source at once, and so does a crumb
        // the engine found urgent as it asked for it.
        let first_to_super_seed = match self.settings.mode {
            Mode::Relay => true,
            Mode::Play => self.fallback_pending.contains_key(&(seq, index)),
        };
        let peers: Vec<_> = self
            .super_seed
            .filter(|_| first_to_super_seed)
            .into_iter()
            .collect();
        let fetch = Fetch {
            // A weak line (its governor says so) does not seed this crumb at all.
            upload: !self.weak_line(),
            // Pieces wait their turn on the line: peers do not take them from one
            // another sooner than the line can bring them.
            line_bytes_per_sec: rate,
            // A slow line's urgent crumb 1 comes from the super seed alone.
            initial_peers_only: self.super_seed_alone.remove(&(seq, index))
                && self.super_seed.is_some(),
            hold,
        };
        let id = self
            .session
            .download_with(&torrent, &dir, peers, fetch)
            .await?;
        gst::debug!(
            crate::client::CAT,
            "crumb {index} of Segment {seq}: torrent {id} started {} ms after it was asked for{}",
            asked.elapsed().as_millis(),
            if fetch.initial_peers_only {
                " (from the super seed alone)"
            } else if hold {
                " (prepared, requests held)"
            } else {
                ""
            }
        );
        self.active.insert((seq, index), id);
        if fetch.initial_peers_only {
            self.started_alone.insert((seq, index));
        }
        let (session, done) = (self.session.clone(), self.crumb_done.clone());
        tokio::spawn(async move {
            // Ends with the torrent (complete, failed or removed) or after a bound.
            let _ = session.wait_finished(id, CRUMB_WAIT_BOUND).await;
            done.notify_one();
        });
        Ok(())
    }

    /// Connects the pending crumbs' torrents to the super seed (a torrent still
    /// starting is tried again next round).
    fn add_super_seed(&mut self) {
        let Some(seed) = self.super_seed else {
            return;
        };
        let session = &self.session;
        let active = &self.active;
        self.fallback_pending
            .retain(|key, take_over| match active.get(key) {
                Some(&id) if !session.progress(id).is_ok_and(|p| p.finished) => {
                    match session.connect(id, seed, *take_over) {
                        Ok(new) => {
                            gst::debug!(
                                crate::client::CAT,
                                "crumb {} of Segment {}: super seed connected (known already: {})",
                                key.1,
                                key.0,
                                !new
                            );
                            false
                        }
                        Err(_) => true,
                    }
                }
                _ => false,
            });
    }

    async fn act(
        &mut self,
        engine: &mut ClientEngine,
        action: Action,
        now: u64,
    ) -> anyhow::Result<()> {
        match action {
            // Beside the other IO: its answer is taken at the next round.
            Action::FetchWindow => self.start_window_poll(),
            Action::FetchSegment { seq } => {
                match self
                    .get(&format!("{}/segments/{seq}", self.settings.url))
                    .await
                {
                    Ok(r) => {
                        let doc: SegmentDoc = serde_json::from_slice(&r.bytes().await?)?;
                        self.docs.insert(seq, doc.clone());
                        self.window_ok_once = true;
                        engine.on_segment(now, &doc);
                    }
                    Err(_) => engine.on_segment_unavailable(now, seq),
                }
            }
            Action::Prepare { seq, index } => {
                let key = (seq, index);
                if !self.active.contains_key(&key)
                    && let Some(d) = self.crumb_doc(seq, index)
                {
                    let url = self.url_of(&d.torrent);
                    let timeout = self.http_timeout();
                    self.prefetch.start(&self.http, key, url, timeout);
                    self.preparing.insert(key);
                }
            }
            Action::Download { seq, index } => {
                if self.release_prepared(seq, index).await {
                    return Ok(());
                }
                if let Err(e) = self
                    .start_download(seq, index, engine.rate(now), false)
                    .await
                {
                    // Playing, the engine sees it as a crumb that never completes; a
                    // relay asks for it again with the next window.
                    gst::debug!(crate::client::CAT, "crumb {index} of Segment {seq}: {e:#}");
                    engine.on_download_failed(now, seq, index);
                }
            }
            Action::UseSuperSeed {
                seq,
                index,
                take_over,
                alone,
            } => {
                gst::debug!(
                    crate::client::CAT,
                    "crumb {index} of Segment {seq}: asking the super seed (taking over: {take_over})"
                );
                self.fallback_pending.insert((seq, index), take_over);
                self.add_super_seed();
                if !alone {
                    self.open_to_peers(seq, index);
                }
            }
            Action::Cancel { seq, index } => {
                self.preparing.remove(&(seq, index));
                self.held.remove(&(seq, index));
                self.fallback_pending.remove(&(seq, index));
                self.super_seed_alone.remove(&(seq, index));
                self.started_alone.remove(&(seq, index));
                if !self.done.contains(&(seq, index))
                    && let Some(id) = self.active.remove(&(seq, index))
                {
                    let _ = self.session.remove(id, true).await;
                }
            }
            Action::Output { seq, d, record } => {
                let (from_seed, from_peers) = self.sources(seq);
                if !record.successful && !record.skipped {
                    let have: Vec<String> = self
                        .active
                        .iter()
                        .filter(|((s, _), _)| *s == seq)
                        .map(|((_, i), id)| {
                            let p = self.session.progress(*id);
                            format!("crumb {i}: {:?}", p.map(|p| p.have_bytes).ok())
                        })
                        .collect();
                    gst::debug!(
                        crate::client::CAT,
                        "Segment {seq} failed: te {} ms, rate {:?} B/s, super seed pending {}, {}",
                        record.time_extension / 1_000_000,
                        record.rate,
                        self.fallback_pending.keys().any(|(s, _)| *s == seq),
                        have.join(", ")
                    );
                }
                self.count_sources(from_seed, from_peers);
                let mut outputs = Vec::new();
                let mut read = 0;
                for index in 1..=d {
                    let Some(id) = self.active.get(&(seq, index)).copied() else {
                        break;
                    };
                    let bytes = match self.session.read_file(id).await {
                        Ok(b) => b,
                        Err(_) => break,
                    };
                    match Crumb::decode(&bytes) {
                        Ok(c) if c.segment.seq == seq && c.index == index => {
                            outputs.extend(self.reassembler.push(c));
                            read = index;
                        }
                        _ => {
                            // Piece hashes passed but the crumb is bad: the channel sent it
                            // so; never downstream.
                            self.totals.lock().unwrap().crumbs_malformed += 1;
                            break;
                        }
                    }
                }
                let tail_bytes = match record.tail.filter(|&t| t == read + 1) {
                    Some(t) => self.read_tail(seq, t, &mut outputs).await,
                    None => 0,
                };
                outputs.extend(self.reassembler.finish());
                if !outputs.is_empty() {
                    // When the engine plans it to play: the player anchors it there
                    // when it starts or moves its timeline, so both keep one.
                    let play_in = record.plays_at.map(|plays| {
                        let play_in = plays as i128 - self.now() as i128;
                        play_in.clamp(0, i64::MAX as i128) as i64
                    });
                    let ready = std::time::Instant::now();
                    let _ = self.tx.send(ClientEvent::Playout { play_in, ready });
                }
                for o in outputs {
                    let _ = self.tx.send(ClientEvent::Output(o));
                }
                let (bytes_output, duration) = self.docs.get(&seq).map_or((0, 0), |doc| {
                    let bytes: u64 = doc
                        .crumbs
                        .iter()
                        .filter(|c| c.index <= record.d)
                        .map(|c| c.size)
                        .sum();
                    (bytes + tail_bytes, doc.duration)
                });
                if self.weak_line() {
                    self.stop_seeding(seq).await;
                }
                let _ = self.tx.send(ClientEvent::Segment {
                    record,
                    bytes_from_super_seed: from_seed,
                    bytes_from_peers: from_peers,
                    bytes_output,
                    tail_bytes,
                    duration,
                });
            }
            Action::ChannelRestarted(r) => {
                gst::info!(crate::client::CAT, "channel restarted: {r:?}");
                self.drop_run().await;
                let _ = self.tx.send(ClientEvent::Restarted(r));
            }
            Action::Relayed(record) => {
                let (seed, peers) = match self.relay_sources.remove(&record.seq) {
                    Some(gone) => gone,
                    None => self.sources(record.seq),
                };
                self.count_sources(seed, peers);
                let bytes_uploaded = self.session.total_uploaded();
                let _ = self.tx.send(ClientEvent::Relayed {
                    record,
                    bytes_from_super_seed: seed,
                    bytes_from_peers: peers,
                    bytes_uploaded,
                });
            }
            Action::Stalled { .. } => {}
            Action::Report(r) => {
                let doc = r.to_doc(&self.settings.client_id, Some(self.session.peer_id()));
                let http = self.http.clone();
                let url = format!("{}/report", self.settings.url);
                tokio::spawn(async move {
                    let _ = http.post(url).json(&doc).send().await;
                });
            }
        }
        Ok(())
    }

    /// Crumb `index` of Segment `seq`, the tail crumb (`ClientConfig::tail_crumb`):
    /// what its verified pieces hold from its start, as far as it decodes, goes to
    /// reassembly after crumbs 1..index-1. Returns the crumb's bytes used (0: none).
    async fn read_tail(&mut self, seq: u64, index: u16, outputs: &mut Vec<Output>) -> u64 {
        let Some(id) = self.active.get(&(seq, index)).copied() else {
            return 0;
        };
        let bytes = match self.session.read_verified_prefix(id).await {
            Ok(b) if !b.is_empty() => b,
            Ok(_) => return 0,
            Err(e) => {
                gst::debug!(crate::client::CAT, "tail crumb {index} of {seq}: {e:#}");
                return 0;
            }
        };
        match Crumb::decode_prefix(&bytes) {
            Ok((c, used)) if c.segment.seq == seq && c.index == index => {
                gst::debug!(
                    crate::client::CAT,
                    "tail crumb {index} of Segment {seq}: {} units, {used} of {} verified bytes",
                    c.units.len(),
                    bytes.len()
                );
                if c.units.is_empty() {
                    return 0;
                }
                outputs.extend(self.reassembler.push(c));
                self.totals.lock().unwrap().tail_bytes += used as u64;
                used as u64
            }
            // The pieces passed their hashes, so the channel sent a bad crumb: as for
            // a whole one, never downstream.
            _ => {
                self.totals.lock().unwrap().crumbs_malformed += 1;
                0
            }
        }
    }

    /// Drops everything of the run (or channel) followed: its numbers may come back
    /// with other crumbs, so nothing of it may be kept, seeded or reassembled with
    /// what follows.
    async fn drop_run(&mut self) {
        for (_, id) in self.active.drain() {
            let _ = self.session.remove(id, true).await;
        }
        self.docs.clear();
        self.done.clear();
        self.preparing.clear();
        self.held.clear();
        // The old run's .torrent files: its numbers may come back with other crumbs.
        self.prefetch = prefetch::TorrentPrefetch::default();
        self.fallback_pending.clear();
        self.super_seed_alone.clear();
        self.started_alone.clear();
        self.relay_sources.clear();
        self.reassembler = Reassembler::new(0);
    }

    /// Leaves the channel followed for `url`: the channel restart's path (the old
    /// channel's torrents removed, reassembly reset), then the engine joins the new
    /// channel at its start index. Its first window is a first join again (audio caps
    /// sent, a channel that never answers is an error); live, whatever `start` said.
    async fn switch_channel(&mut self, engine: &mut ClientEngine, url: String, now: u64) {
        let origin = match origin(&url) {
            Ok(o) => o,
            Err(e) => {
                gst::warning!(crate::client::CAT, "not switching: {e:#}");
                return;
            }
        };
        gst::info!(
            crate::client::CAT,
            "switching from {} to {url}",
            self.settings.url
        );
        self.drop_run().await;
        // A poll of the old channel on its way must not answer for the new one.
        if let Some(p) = self.window_poll.take() {
            p.task.abort();
        }
        engine.switch_channel(now);
        let old = std::mem::replace(&mut self.settings.url, url.clone());
        self.origin = origin;
        self.settings.start = None;
        self.super_seed = None;
        self.window_ok_once = false;
        self.last_window = Instant::now();
        let _ = self.tx.send(ClientEvent::Switched { old, new: url });
    }

    /// Whether this client's uplink is too weak to seed: its governor found it
    /// slower than a piece a second (the paper's ADSL 64 kbit/s is). Peers would wait
    /// on every piece reserved here, and the client's own requests would queue
    /// behind its uploads.
    fn weak_line(&self) -> bool {
        self.governor.as_ref().is_some_and(UploadGovernor::weak)
    }

    /// A weak line does not seed: the torrents of Segments up to `seq` go (their
    /// crumbs were output already).
    async fn stop_seeding(&mut self, seq: u64) {
        let old: Vec<(u64, u16)> = self.active.keys().filter(|k| k.0 <= seq).copied().collect();
        for k in old {
            if let Some(id) = self.active.remove(&k) {
                let _ = self.session.remove(id, true).await;
            }
            self.fallback_pending.remove(&k);
        }
    }

    fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Applies the governor's upload limit (never above `max-upload-rate`).
    fn govern_uploads(&mut self, now: u64, uploaded: u64) {
        let Some(g) = self.governor.as_mut() else {
            return;
        };
        g.on_uploaded(now, uploaded);
        let cap = self.settings.max_upload_rate;
        let limit = Some(cap.map_or(g.limit(), |c| c.min(g.limit())));
        if limit != self.applied_upload_limit {
            self.applied_upload_limit = limit;
            self.session.set_upload_limit(limit);
        }
    }

    /// Bytes of Segment `seq` fetched from the super seed and from other peers.
    fn sources(&self, seq: u64) -> (u64, u64) {
        let mut seed = 0;
        let mut peers = 0;
        for ((s, _), id) in &self.active {
            if *s != seq {
                continue;
            }
            if let Ok(by_peer) = self.session.fetched_by_peer(*id) {
                for (addr, n) in by_peer {
                    if Some(addr) == self.super_seed {
                        seed += n;
                    } else {
                        peers += n;
                    }
                }
            }
        }
        (seed, peers)
    }

    /// Adds one Segment's bytes by source to the totals.
    fn count_sources(&self, seed: u64, peers: u64) {
        let mut t = self.totals.lock().unwrap();
        t.bytes_from_super_seed += seed;
        t.bytes_from_peers += peers;
    }

    /// A crumb started from the super seed alone that the engine escalates (no byte
    /// in its patience): the super seed is overloaded, so its torrent announces and
    /// takes the tracker's peers beside it (the simulator's model of the same step).
    fn open_to_peers(&mut self, seq: u64, index: u16) {
        let key = (seq, index);
        let Some(&id) = self.active.get(&key) else {
            return;
        };
        if !self.started_alone.remove(&key) {
            return;
        }
        match self.session.open_to_trackers(id) {
            Ok(()) => gst::debug!(
                crate::client::CAT,
                "crumb {index} of Segment {seq}: the super seed alone was too slow, opened to the tracker's peers"
            ),
            Err(e) => gst::debug!(
                crate::client::CAT,
                "crumb {index} of Segment {seq}: not opened to peers: {e:#}"
            ),
        }
    }

    /// Crumb `index` of Segment `seq`, asked for now, was prepared: its torrent may
    /// request pieces (returns true). A crumb to fetch from the super seed alone is
    /// started again without the tracker's peers its prepared torrent has.
    async fn release_prepared(&mut self, seq: u64, index: u16) -> bool {
        let key = (seq, index);
        self.preparing.remove(&key);
        if !self.held.remove(&key) {
            return false;
        }
        let Some(&id) = self.active.get(&key) else {
            return false;
        };
        if !self.super_seed_alone.contains(&key) && self.session.release(id).is_ok() {
            gst::debug!(
                crate::client::CAT,
                "crumb {index} of Segment {seq}: prepared torrent released"
            );
            return true;
        }
        self.active.remove(&key);
        let _ = self.session.remove(id, true).await;
        false
    }

    /// Starts, requests held, the prepared crumbs whose .torrent has arrived.
    async fn start_prepared(&mut self, rate: Option<f64>) {
        let ready: Vec<(u64, u16)> = self
            .preparing
            .iter()
            .copied()
            .filter(|&k| self.prefetch.is_ready(k))
            .collect();
        for (seq, index) in ready {
            self.preparing.remove(&(seq, index));
            if self.active.contains_key(&(seq, index)) {
                continue;
            }
            match self.start_download(seq, index, rate, true).await {
                Ok(()) => {
                    self.held.insert((seq, index));
                }
                Err(e) => gst::debug!(
                    crate::client::CAT,
                    "prepared crumb {index} of Segment {seq}: {e:#}"
                ),
            }
        }
    }

    fn poll_progress(&mut self, mut engine: Option<&mut ClientEngine>, now: u64) {
        if !self.fallback_pending.is_empty() {
            self.add_super_seed();
        }
        for (&(seq, index), &id) in &self.active {
            if self.done.contains(&(seq, index)) {
                continue;
            }
            let Ok(p) = self.session.progress(id) else {
                continue;
            };
            // Every crumb's bytes at every round: a crumb's start-up and pace
            // (GST_DEBUG=crumbsclient:6).
            gst::log!(
                crate::client::CAT,
                "crumb {index} of Segment {seq}: {} bytes",
                p.have_bytes
            );
            if let Some(e) = engine.as_deref_mut() {
                e.on_crumb_progress(now, seq, index, p.have_bytes);
            }
            if p.finished {
                gst::debug!(
                    crate::client::CAT,
                    "crumb {index} of Segment {seq}: complete"
                );
                self.done.insert((seq, index));
                if let Some(e) = engine.as_deref_mut() {
                    e.on_crumb_complete(now, seq, index);
                }
            }
        }
        let total = self.session.total_downloaded();
        if let Some(e) = engine {
            e.on_bytes_received(now, total);
            // The governor starts from the downlink (an uplink is rarely faster).
            if let (Some(g), Some(rate)) = (self.governor.as_mut(), e.rate(now)) {
                g.on_downlink_rate(rate);
            }
        }
        let uploaded = self.session.total_uploaded();
        self.govern_uploads(now, uploaded);
        let mut t = self.totals.lock().unwrap();
        t.bytes_downloaded = total;
        t.bytes_uploaded = uploaded;
        t.pieces_stolen = self.session.pieces_stolen();
        t.upload_limit = self.applied_upload_limit;
        t.uplink_delay = self.governor.as_ref().and_then(|g| g.last_delay());
        t.torrents_seeding = self
            .done
            .iter()
            .filter(|k| self.active.contains_key(k))
            .count();
    }
}

/// `GET url` within `timeout`; an answer that is not a success is an error.
async fn send_get(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<reqwest::Response> {
    let r = http
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !r.status().is_success() {
        bail!("GET {url}: HTTP {}", r.status());
    }
    Ok(r)
}

pub(crate) static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "crumbsclient",
        gst::DebugColorFlags::empty(),
        Some("crumbs client IO"),
    )
});

/// The engine's draw key from the client id (`ClientEngine::set_draw_key`): FNV-1a,
/// stable across runs and builds, so that a client's draws can be told from its id.
fn draw_key(client_id: &str) -> u64 {
    client_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
