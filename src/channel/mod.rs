// SPDX-License-Identifier: MPL-2.0
//! The channel's IO: the super seed (one librqbit session seeding every crumb of the
//! window), the spool of crumb files, and the HTTP server (window, .torrent files,
//! tracker, reports, stats). Everything the channel decides is `core::channel`'s
//! [`ChannelEngine`] (the simulator drives the same one); this module only moves
//! bytes between it, the files and the sockets, and gives it the time.

mod server;

pub use server::{ConnectionCounts, MAX_WINDOW_WAIT_MS, ServerLimits};

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::core::api::{self, StatsDoc, StatusDoc};
use crate::core::channel::{ChannelEngine, ChannelEngineConfig, TorrentFile};
use crate::core::crumb::Crumb;
use crate::core::feedback::FeedbackConfig;
use crate::core::scheduler::{PublishedCrumb, PublishedSegment, SchedulerConfig};
use crate::core::seed_load::{EnhancementCopies, copies_behind_edge};
use crate::core::tracker::TrackerConfig;
use crate::p2p::{P2pSession, RUNTIME, Seeding, SessionConfig, TorrentId, make_torrent};

/// How a channel is set up (crumbsink's properties).
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    pub name: String,
    pub address: IpAddr,
    /// 0 = pick a free port.
    pub http_port: u16,
    pub window: u32,
    pub start_offset: u32,
    pub archive: bool,
    pub piece_size: u32,
    /// Super seed upload cap in bytes/s (None = unlimited).
    pub max_upload_rate: Option<u32>,
    /// None = a private temporary directory, removed on stop.
    pub spool_dir: Option<PathBuf>,
    /// External trackers announced in every .torrent besides the built-in one.
    pub announce_urls: Vec<String>,
    /// Tracker `interval` (s) told to peers.
    pub tracker_interval: u32,
    /// Peers per crumb told the super seed's address by the tracker (0 = all); see
    /// `TrackerConfig::super_seed_fanout`.
    pub super_seed_fanout: u32,
    /// The same for crumb 1 (None = `super_seed_fanout`); see
    /// `TrackerConfig::first_crumb_fanout`.
    pub first_crumb_fanout: Option<u32>,
    /// Peers the super seed uploads each piece of an enhancement crumb (crumbs
    /// 2..=N) to, the first to ask: a limit, none, or automatic (one while its link
    /// is busy, see `core::seed_load`). Crumb 1 is never limited.
    pub enhancement_copies: EnhancementCopies,
    /// Copies of each enhancement piece the super seed uploads in all once a newer
    /// Segment is out (None = no limit): the copies given at the live edge count,
    /// and a Segment seeded with fewer keeps its limit. Viewers behind the edge
    /// take the crumbs from the peers that fetched them; the super seed's upload
    /// goes to the edge.
    pub enhancement_copies_behind: Option<u32>,
    /// Connection caps and timeouts of the HTTP server.
    pub limits: ServerLimits,
}

/// Cancels the channel's waits on the runtime (crumbsink's `unlock`): a wait running
/// or started while cancelled returns [`PublishError::Cancelled`] at once.
#[derive(Clone, Default)]
pub struct Canceller(Arc<CancelInner>);

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Canceller {
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Waits may block again (crumbsink's `unlock_stop`).
    pub fn reset(&self) {
        self.0.cancelled.store(false, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Runs `fut` on the runtime until it ends or the canceller fires.
    fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, PublishError> {
        RUNTIME.block_on(async {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return Err(PublishError::Cancelled);
            }
            tokio::select! {
                out = fut => Ok(out),
                _ = notified => Err(PublishError::Cancelled),
            }
        })
    }
}

/// Why a Segment was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A crumb file could not be written, retry included; nothing of the Segment is
    /// published (the files already written are removed) and the channel goes on.
    #[error("cannot write crumb file {}: {error} (retried once)", path.display())]
    Spool {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The wait was cancelled (flushing or stopping).
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// How often the super seed's upload counter is read for `core::seed_load`: a
/// Segment's burst lasts about a second on a link with room.
const LOAD_SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// Pause before the one retry of a failed crumb write.
const SPOOL_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// One crumb as it arrives from svcsegmenter: its header and its exact bytes.
pub struct IncomingCrumb {
    pub crumb: Crumb,
    pub bytes: Vec<u8>,
}

/// What publishing a Segment did.
#[derive(Debug, Clone)]
pub struct PublishOutcome {
    pub seq: u64,
    pub crumbs: usize,
    pub bytes: u64,
    pub expired: Vec<u64>,
    pub window: (u64, u64),
    /// Crumb writes that failed once and worked on the retry, described.
    pub write_retries: Vec<String>,
    /// Copies of each enhancement piece the super seed uploads for this Segment
    /// (None = no limit).
    pub enhancement_copies: Option<u32>,
}

/// What the HTTP handlers and the element share: the engine behind its lock, the
/// clock it is given, and the super seed's figures the engine does not know.
pub(crate) struct Shared {
    pub name: String,
    origin: Instant,
    engine: Mutex<ChannelEngine>,
    session: Arc<P2pSession>,
    /// Torrents the super seed seeds now.
    seeded: AtomicUsize,
    /// Bumped at every publication: blocking window reloads wait on it.
    published: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// The engine's clock: ns since the channel started.
    pub fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// The engine; held only to compute, never across IO or a message post.
    pub fn engine(&self) -> MutexGuard<'_, ChannelEngine> {
        self.engine.lock().unwrap()
    }

    /// A receiver that wakes at the next publication.
    pub fn publications(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// The stats document: the engine's figures and the super seed's.
    pub fn stats(&self) -> StatsDoc {
        let mut st = self.engine().stats(self.now());
        st.bytes_uploaded = self.session.total_uploaded();
        st.torrents_seeded = self.seeded.load(Ordering::Relaxed);
        st
    }

    /// The status page's document, with the super seed's figures.
    pub fn status(&self) -> StatusDoc {
        let mut doc = self.engine().status_doc(self.now());
        doc.stats.bytes_uploaded = self.session.total_uploaded();
        doc.stats.torrents_seeded = self.seeded.load(Ordering::Relaxed);
        doc
    }
}

/// What the channel's statistics are read from, without the `Channel` itself (that
/// one is busy publishing on the streaming thread): cheap to clone, never blocks on IO.
#[derive(Clone)]
pub struct ChannelStatsHandle {
    shared: Arc<Shared>,
    connections: Arc<server::ConnectionStats>,
}

impl ChannelStatsHandle {
    pub fn stats(&self) -> StatsDoc {
        self.shared.stats()
    }

    /// The HTTP server's connection counters.
    pub fn connections(&self) -> ConnectionCounts {
        self.connections.counts()
    }
}

/// A running channel: super seed + HTTP server. Dropping it without `stop` still
/// frees the port and the session (best effort).
pub struct Channel {
    shared: Arc<Shared>,
    /// The task that reads the super seed's upload counter (aborted at stop).
    load_sampler: tokio::task::AbortHandle,
    session: Arc<P2pSession>,
    connections: Arc<server::ConnectionStats>,
    /// Its place on the HTTP server it shares with the process's other channels of
    /// the same address and port.
    membership: Option<server::Membership>,
    http_addr: SocketAddr,
    spool: PathBuf,
    private_spool: bool,
    config: ChannelConfig,
    /// Torrent ids of seeded crumbs by (seq, index).
    seeded: HashMap<(u64, u16), TorrentId>,
    /// The Segment published last: limited to `enhancement_copies_behind` when the
    /// next one is out.
    at_edge: Option<u64>,
    /// Per Segment in the window, its last crumb's index and the copies its
    /// enhancement pieces were seeded with (None = no limit), given back when it
    /// leaves the window for the archive.
    seeded_copies: HashMap<u64, (u16, Option<u32>)>,
}

impl Channel {
    /// Binds the HTTP server, starts the super seed. Errors name what failed (port in
    /// use, unwritable spool directory).
    pub fn start(config: ChannelConfig) -> anyhow::Result<Channel> {
        if !api::valid_channel_name(&config.name) {
            bail!(
                "channel name '{}' must be letters, digits, '-' or '_' (it is a URL path segment)",
                config.name
            );
        }
        if api::RESERVED_CHANNEL_NAMES.contains(&config.name.as_str()) {
            bail!(
                "channel name '{}' is taken by the server's own routes (/channels, /announce, /scrape): choose another",
                config.name
            );
        }
        // Leftovers of killed channels and clients (best effort).
        crate::spool::remove_stale_folders(&std::env::temp_dir());
        let (spool, private_spool) = match &config.spool_dir {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .with_context(|| format!("cannot create spool-dir {}", d.display()))?;
                if !config.archive {
                    // A killed channel of this name left its last Segments here; this
                    // run starts a new window and would never serve them.
                    crate::spool::remove_crumb_files(d, &config.name);
                }
                let probe = d.join(".crumbs-write-test");
                std::fs::write(&probe, b"ok")
                    .with_context(|| format!("spool-dir {} is not writable", d.display()))?;
                let _ = std::fs::remove_file(&probe);
                (d.clone(), false)
            }
            None => {
                let d = std::env::temp_dir().join(format!(
                    "crumbs-{}-{}-{}",
                    config.name,
                    std::process::id(),
                    crate::spool::unique()
                ));
                std::fs::create_dir_all(&d)
                    .with_context(|| format!("cannot create {}", d.display()))?;
                (d, true)
            }
        };
        let result = RUNTIME.block_on(Self::start_async(
            config.clone(),
            spool.clone(),
            private_spool,
        ));
        if result.is_err() && private_spool {
            let _ = std::fs::remove_dir_all(&spool);
        }
        result
    }

    async fn start_async(
        config: ChannelConfig,
        spool: PathBuf,
        private_spool: bool,
    ) -> anyhow::Result<Channel> {
        let membership = server::join(
            config.address,
            config.http_port,
            &config.name,
            config.limits,
        )?;
        let http_addr = membership.http_addr();
        let tracker_url = format!("http://{}/announce", fmt_addr(http_addr));
        let session = P2pSession::new(SessionConfig {
            listen_addr: config.address,
            listen_port: 0,
            spool_dir: spool.clone(),
            upload_limit_bps: config.max_upload_rate,
            download_limit_bps: None,
            tracker_interval: Some(std::time::Duration::from_secs(
                config.tracker_interval.max(1) as u64,
            )),
            ..Default::default()
        })
        .await
        .context("cannot start the super seed's BitTorrent session")?;
        let mut engine = ChannelEngine::new(ChannelEngineConfig {
            name: config.name.clone(),
            scheduler: SchedulerConfig {
                window: config.window,
                start_offset: config.start_offset,
                archive: config.archive,
                ..Default::default()
            },
            feedback: FeedbackConfig::default(),
            tracker: TrackerConfig {
                interval_s: config.tracker_interval.max(1),
                min_interval_s: (config.tracker_interval / 2).max(1),
                peer_ttl_ns: 4 * config.tracker_interval.max(1) as u64 * 1_000_000_000,
                super_seed_fanout: config.super_seed_fanout,
                first_crumb_fanout: config.first_crumb_fanout,
                ..Default::default()
            },
            epoch: Some(api::channel_epoch(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
                std::process::id(),
                crate::spool::unique(),
            )),
            enhancement_copies: config.enhancement_copies,
            ..Default::default()
        });
        engine.set_tracker_url(tracker_url);
        engine.set_super_seed(session.listen_addr(), session.peer_id());
        let session = Arc::new(session);
        let shared = Arc::new(Shared {
            name: config.name.clone(),
            origin: Instant::now(),
            engine: Mutex::new(engine),
            session: session.clone(),
            seeded: AtomicUsize::new(0),
            published: tokio::sync::watch::Sender::new(0),
        });
        let connections = membership.connections();
        membership.serve(shared.clone());
        let load_sampler = tokio::spawn(Self::sample_load(Arc::downgrade(&shared))).abort_handle();
        Ok(Channel {
            shared,
            load_sampler,
            session,
            connections,
            membership: Some(membership),
            http_addr,
            spool,
            private_spool,
            config,
            seeded: HashMap::new(),
            at_edge: None,
            seeded_copies: HashMap::new(),
        })
    }

    /// Feeds the engine the super seed's upload counter every
    /// [`LOAD_SAMPLE_INTERVAL`] while the channel lives.
    async fn sample_load(shared: std::sync::Weak<Shared>) {
        let mut tick = tokio::time::interval(LOAD_SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let uploaded = shared.session.total_uploaded();
            let now = shared.now();
            shared.engine().note_uploaded(now, uploaded);
        }
    }

    /// The URL clients join: `http://ADDRESS:PORT/CHANNEL`.
    pub fn url(&self) -> String {
        format!("http://{}/{}", fmt_addr(self.http_addr), self.config.name)
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn p2p_port(&self) -> u16 {
        self.session.listen_port()
    }

    pub fn spool_dir(&self) -> &Path {
        &self.spool
    }

    /// Statistics readable while the channel publishes on another thread.
    pub fn stats_handle(&self) -> ChannelStatsHandle {
        ChannelStatsHandle {
            shared: self.shared.clone(),
            connections: self.connections.clone(),
        }
    }

    /// Writes one crumb file; a failure is retried once after a short pause. Ok holds
    /// the description of a failure the retry mended.
    fn write_crumb(
        path: &Path,
        bytes: &[u8],
        cancel: &Canceller,
    ) -> Result<Option<String>, PublishError> {
        let first = match std::fs::write(path, bytes) {
            Ok(()) => return Ok(None),
            Err(e) => e,
        };
        cancel.block_on(async { tokio::time::sleep(SPOOL_RETRY_PAUSE).await })?;
        match std::fs::write(path, bytes) {
            Ok(()) => Ok(Some(format!(
                "writing crumb file {} failed ({first}); the retry worked",
                path.display()
            ))),
            Err(error) => Err(PublishError::Spool {
                path: path.to_path_buf(),
                error,
            }),
        }
    }

    /// How long a Segment can be as the segmenter says (ns), or `None`: the window's
    /// `max_duration` (see [`crate::core::channel::ChannelEngine::max_duration`]).
    pub fn set_max_duration(&self, max: Option<u64>) {
        self.shared.engine().set_max_duration(max);
    }

    /// Torrent Maker + Program Scheduler: every crumb becomes a torrent seeded by the
    /// super seed; the Segment enters the window; expired Segments stop being seeded
    /// and their files are deleted (unless archived). The crumb files are all written
    /// first: when one cannot be written (retry included) nothing of the Segment is
    /// published and the channel stays as it was. Waits on the runtime end early with
    /// [`PublishError::Cancelled`] when `cancel` fires.
    pub fn publish(
        &mut self,
        crumbs: Vec<IncomingCrumb>,
        cancel: &Canceller,
    ) -> Result<PublishOutcome, PublishError> {
        let Some(first) = crumbs.first() else {
            return Err(anyhow::anyhow!("no crumbs to publish").into());
        };
        let info = first.crumb.segment.clone();
        let seq = info.seq;
        let mut announce = vec![self.shared.engine().tracker_url().to_owned()];
        announce.extend(self.config.announce_urls.iter().cloned());
        let mut files = Vec::with_capacity(crumbs.len());
        let mut write_retries = Vec::new();
        for c in &crumbs {
            let name = format!(
                "{}-{:010}-{:03}.crumb",
                self.config.name, seq, c.crumb.index
            );
            let path = self.spool.join(&name);
            match Self::write_crumb(&path, &c.bytes, cancel) {
                Ok(retried) => write_retries.extend(retried),
                Err(e) => {
                    for (_, written) in &files {
                        let _ = std::fs::remove_file(written);
                    }
                    return Err(e);
                }
            }
            files.push((name, path));
        }
        let mut torrents = Vec::with_capacity(crumbs.len());
        for (c, (name, _)) in crumbs.iter().zip(&files) {
            torrents.push(make_torrent(
                name,
                &c.bytes,
                self.config.piece_size,
                &announce,
            )?);
        }
        let hashes: Vec<[u8; 20]> = torrents.iter().map(|t| t.info_hash).collect();
        // Tracked before seeded: the super seed announces each crumb as it adds it.
        self.shared.engine().prepare(&hashes);
        let enhancement_copies = self.shared.engine().enhancement_copies();
        // Counted without a limit when one comes behind the edge.
        let counted = self.config.enhancement_copies_behind.map(|_| usize::MAX);
        let peers_per_piece = enhancement_copies.map(|k| k as usize).or(counted);
        for ((c, (_, path)), torrent) in crumbs.iter().zip(&files).zip(&torrents) {
            // Crumb 1 is every viewer's continuity: it goes to whoever asks (limited,
            // the swarm bench's main run fell to 0.34 continuity) and ahead of the
            // enhancement crumbs under `max-upload-rate`. An enhancement crumb's
            // pieces may leave the channel a bounded number of times.
            let base = c.crumb.index == 1;
            let copies = (!base).then_some(peers_per_piece).flatten();
            let seeding = self.session.seed_with(
                torrent,
                path,
                Vec::new(),
                Seeding {
                    peers_per_piece: copies,
                    first: base,
                },
            );
            let id = match cancel.block_on(seeding) {
                Ok(Ok(id)) => id,
                Ok(Err(e)) => {
                    self.shared.engine().abandon(&hashes);
                    return Err(e.into());
                }
                Err(e) => {
                    self.shared.engine().abandon(&hashes);
                    return Err(e);
                }
            };
            self.seeded.insert((seq, c.crumb.index), id);
            self.shared
                .seeded
                .store(self.seeded.len(), Ordering::Relaxed);
        }
        let mut bytes = 0u64;
        let mut caps = None;
        let mut audio_caps = None;
        let mut published = Vec::with_capacity(crumbs.len());
        let mut files = Vec::with_capacity(crumbs.len());
        for (c, torrent) in crumbs.iter().zip(torrents) {
            bytes += c.bytes.len() as u64;
            if c.crumb.caps.is_some() {
                caps = c.crumb.caps.clone();
            }
            if c.crumb.audio_caps.is_some() {
                audio_caps = c.crumb.audio_caps.clone();
            }
            published.push(PublishedCrumb {
                index: c.crumb.index,
                info_hash: torrent.info_hash,
                size: c.bytes.len() as u64,
                layer: (
                    c.crumb.layer.spatial,
                    c.crumb.layer.quality,
                    c.crumb.layer.temporal,
                ),
                piece_length: self.config.piece_size,
            });
            files.push(TorrentFile {
                index: c.crumb.index,
                bytes: torrent.bytes,
            });
        }
        let segment = PublishedSegment {
            seq,
            duration: info.duration,
            crumbs: published,
            pts: info.pts,
        };
        let now = self.shared.now();
        let outcome = self
            .shared
            .engine()
            .publish(now, segment, files, caps, audio_caps)
            .map_err(anyhow::Error::from)?;
        self.shared.engine().note_segment(
            seq,
            (info.gops > 0).then_some(info.gops),
            Some(self.session.total_uploaded()),
        );
        self.shared
            .published
            .send_modify(|n| *n = n.wrapping_add(1));
        let last = crumbs.iter().map(|c| c.crumb.index).max().unwrap_or(1);
        self.seeded_copies.insert(seq, (last, enhancement_copies));
        self.limit_behind_edge(seq);
        let mut to_remove = Vec::new();
        for e in &outcome.expired {
            let seeded = self.seeded_copies.remove(&e.seq);
            if let Some((n, copies)) = seeded.filter(|_| !e.delete_data()) {
                self.unlimit_archived(e.seq, n, copies);
            }
        }
        for e in outcome.expired.iter().filter(|e| e.delete_data()) {
            for c in &e.crumbs {
                if let Some(id) = self.seeded.remove(&(e.seq, c.index)) {
                    to_remove.push(id);
                }
            }
        }
        self.shared
            .seeded
            .store(self.seeded.len(), Ordering::Relaxed);
        for id in to_remove {
            // Deletes the crumb file too.
            cancel.block_on(self.session.remove(id, true))??;
        }
        Ok(PublishOutcome {
            seq,
            crumbs: crumbs.len(),
            bytes,
            expired: outcome.expired.iter().map(|e| e.seq).collect(),
            window: outcome.window,
            write_retries,
            enhancement_copies,
        })
    }

    /// Segment `seq` is out: the Segment before it is behind the live edge now, and
    /// its enhancement pieces leave the super seed at most
    /// `enhancement_copies_behind` times in all (unless seeded with fewer). On the
    /// swarm bench's tight channel (twice the full quality for 20 viewers) the
    /// viewers three Segments behind took 45 % of the super seed's bytes, mostly the
    /// highest crumbs, each fetched from it by several of them, while the viewers at
    /// the edge fetched theirs from it at a fair share of 270 kbit/s
    /// (docs/swarm.md, twenty-first round).
    fn limit_behind_edge(&mut self, seq: u64) {
        let Some(prev) = self.at_edge.replace(seq).filter(|p| *p != seq) else {
            return;
        };
        let Some(&(n, copies)) = self.seeded_copies.get(&prev) else {
            return;
        };
        let behind = self.config.enhancement_copies_behind;
        if let Some(k) = copies_behind_edge(copies, behind) {
            self.set_enhancement_copies(prev, n, Some(k as usize));
        }
    }

    /// Segment `seq` (crumbs up to `n`) left the window for the archive: its
    /// enhancement pieces get back the limit they were seeded with (`copies`). An
    /// archived Segment is fetched on demand, long after the viewers who held its
    /// pieces left.
    fn unlimit_archived(&self, seq: u64, n: u16, copies: Option<u32>) {
        if copies_behind_edge(copies, self.config.enhancement_copies_behind).is_some() {
            self.set_enhancement_copies(seq, n, copies.map(|k| k as usize));
        }
    }

    /// Sets the limit of crumbs 2..=`n` of Segment `seq`.
    fn set_enhancement_copies(&self, seq: u64, n: u16, copies: Option<usize>) {
        for id in (2..=n).filter_map(|i| self.seeded.get(&(seq, i))) {
            // Every one was seeded counting its copies; one removed meanwhile has
            // nothing left to limit.
            let _ = self.session.set_peers_per_piece(*id, copies);
        }
    }

    /// rho of the newest Segment whose deadline passed, once per Segment.
    pub fn rho_due(&self) -> Option<(u64, f64)> {
        let now = self.shared.now();
        self.shared.engine().poll_rho(now)
    }

    pub fn stats(&self) -> StatsDoc {
        self.shared.stats()
    }

    /// Stops the server and the super seed; removes the private spool.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        self.load_sampler.abort();
        // Leaves the HTTP server (stopping it when this was its last channel).
        drop(self.membership.take());
        let res = RUNTIME.block_on(self.session.shutdown());
        self.seeded.clear();
        self.shared.seeded.store(0, Ordering::Relaxed);
        if self.private_spool {
            let _ = std::fs::remove_dir_all(&self.spool);
        }
        res
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if self.membership.is_some() {
            let _ = self.shutdown();
        }
    }
}

pub(crate) fn fmt_addr(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => v.to_string(),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}
