// SPDX-License-Identifier: MPL-2.0
//! [`P2pSession`]: one librqbit session, configured for crumbs.
//!
//! TCP only (uTP off), no DHT, no local service discovery, no persistence, an
//! explicit listen address (loopback or a test namespace's address) whose bound port
//! is also the port announced to trackers, a short connect timeout, and session-wide
//! upload/download limits in bytes/s that can change live.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail, ensure};
use librqbit::{
    AddTorrent, AddTorrentOptions, AddTorrentResponse, ConnectionOptions, ListenerMode,
    ListenerOptions, ManagedTorrent, PeerConnectionOptions, Session, SessionOptions,
    TorrentStatsState, api::TorrentIdOrHash, limits::LimitsConfig,
};

use super::{
    runtime::RUNTIME,
    torrent::{MadeTorrent, hex, parse_torrent},
};

/// The lowest rate limit honoured: librqbit takes whole 16 KiB blocks from its limiter
/// (whose burst the patch in `vendor/librqbit` keeps at one block), so below this
/// one block takes over 16 s. (Unpatched, anything below 16 KiB/s stopped transfers.)
pub const MIN_RATE_LIMIT_BPS: u32 = 1024;

/// How long [`P2pSession::seed`] waits for librqbit's hash check of the file.
const SEED_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`P2pSession::shutdown`] waits for the listening port to close.
const SHUTDOWN_PORT_TIMEOUT: Duration = Duration::from_secs(3);

/// Settings of a [`P2pSession`]. `Default` is loopback, any port, no limits.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Address to listen on for peers (TCP); also where downloads connect from.
    pub listen_addr: IpAddr,
    /// TCP port to listen on; 0 = pick a free one ([`P2pSession::listen_port`]).
    pub listen_port: u16,
    /// Default folder for downloads (created if missing).
    pub spool_dir: PathBuf,
    /// Session-wide upload limit in bytes/s (None = unlimited; raised to
    /// [`MIN_RATE_LIMIT_BPS`] if lower).
    pub upload_limit_bps: Option<u32>,
    /// Session-wide download limit in bytes/s (as `upload_limit_bps`).
    pub download_limit_bps: Option<u32>,
    /// Timeout of an outgoing peer connection. A failed peer is retried by librqbit
    /// only after 10 s or more, whatever this is.
    pub connect_timeout: Duration,
    /// Re-announce to trackers this often instead of the tracker's `interval`
    /// (None = as the tracker says). The tracker is how a running download learns
    /// of new peers.
    pub tracker_interval: Option<Duration>,
    /// Peers per torrent at most, connecting or connected, both ways (None:
    /// librqbit's 128).
    pub peer_limit: Option<usize>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            listen_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            listen_port: 0,
            spool_dir: std::env::temp_dir().join("crumbs-spool"),
            upload_limit_bps: None,
            download_limit_bps: None,
            connect_timeout: Duration::from_secs(2),
            tracker_interval: None,
            peer_limit: None,
        }
    }
}

/// A torrent in a [`P2pSession`], named by its info hash (stable across
/// [`P2pSession::remove`] and adding again, and what the channel's window lists).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TorrentId(pub [u8; 20]);

impl fmt::Display for TorrentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for TorrentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TorrentId({self})")
    }
}

impl TorrentId {
    fn key(self) -> TorrentIdOrHash {
        TorrentIdOrHash::Hash(librqbit_core::Id20::new(self.0))
    }
}

/// Where a torrent stands, from librqbit's counters (exact bytes, not averages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of verified pieces on disk.
    pub have_bytes: u64,
    pub total_bytes: u64,
    /// All pieces verified.
    pub finished: bool,
    /// Bytes this torrent uploaded since it last went live.
    pub uploaded_bytes: u64,
    /// librqbit's error, when the torrent failed (e.g. a disk error).
    pub error: Option<String>,
}

/// How a client fetches one crumb ([`P2pSession::download_with`]).
#[derive(Debug, Clone, Copy)]
pub struct Fetch {
    /// Seed what arrives. false: no bitfield, no HAVE, every request refused (a weak
    /// line that must keep its uplink for its own requests and acknowledgements).
    pub upload: bool,
    /// The rate the client measured for its line, bytes/s: a connection does not
    /// take a piece over from another before the pieces in flight could have come
    /// down the line at it (the librqbit patch's `line_bytes_per_sec`). A weak line
    /// otherwise had peers take pieces from one another while they waited their turn
    /// on it, and the copies filled it.
    pub line_bytes_per_sec: Option<f64>,
    /// Fetch from the initial peers only: no tracker is asked (so no other peer
    /// learns of this download either). For a weak line's urgent crumb, whose one
    /// source is the super seed: every second source is a piece that may come twice
    /// down a line that has no room for it.
    pub initial_peers_only: bool,
    /// Start the torrent (tracker, connections, handshakes) but request no piece
    /// until [`P2pSession::release`]: a crumb prepared while the line still carries
    /// the ones before it (the librqbit patch's `hold_requests`).
    pub hold: bool,
}

impl Default for Fetch {
    fn default() -> Self {
        Self {
            upload: true,
            line_bytes_per_sec: None,
            initial_peers_only: false,
            hold: false,
        }
    }
}

/// How the super seed seeds one crumb ([`P2pSession::seed_with`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Seeding {
    /// Each piece goes to at most this many peers (the first to ask; a request from
    /// another closes its connection, so it takes the piece from them): the patch's
    /// `upload_peers_per_piece`.
    pub peers_per_piece: Option<usize>,
    /// Its blocks pass the session's upload limit before other torrents' (the
    /// patch's `upload_first`): with the uplink full, it still leaves at once.
    pub first: bool,
}

/// One librqbit session. Every method may be awaited on any runtime or called
/// through `RUNTIME.block_on`; librqbit's own tasks always run on [`RUNTIME`].
pub struct P2pSession {
    session: Arc<Session>,
    listen_addr: SocketAddr,
    peer_id: [u8; 20],
    tracker_interval: Option<Duration>,
    peer_limit: Option<usize>,
    stopped: AtomicBool,
}

impl fmt::Debug for P2pSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P2pSession")
            .field("listen_addr", &self.listen_addr)
            .finish_non_exhaustive()
    }
}

/// Runs `fut` as a task of [`RUNTIME`] (librqbit spawns onto the current runtime).
async fn on_runtime<T: Send + 'static>(
    fut: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    RUNTIME
        .spawn(fut)
        .await
        .map_err(|e| anyhow!("p2p task failed: {e}"))?
}

/// librqbit's per-peer stats filter for peers in `state` ("live", "all"). librqbit
/// exports `PeerStatsFilter` only with its HTTP API features; it is built from its
/// serde form instead, its type left to the call.
fn peer_filter<T: serde::de::DeserializeOwned>(state: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::json!({ "state": state }))
        .context("building librqbit's peer stats filter")
}

fn limit(bps: Option<u32>) -> Option<NonZeroU32> {
    bps.and_then(NonZeroU32::new)
        .map(|b| b.max(NonZeroU32::new(MIN_RATE_LIMIT_BPS).unwrap()))
}

/// A free TCP port on `ip` right now (librqbit must be given the port it announces,
/// so port 0 is resolved here; the socket is closed again before librqbit binds).
fn free_port(ip: IpAddr) -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind((ip, 0)).with_context(|| format!("binding {ip}:0"))?;
    Ok(l.local_addr()?.port())
}

/// A fresh BitTorrent peer id in Azureus style, `-CB0100-` then 12 bytes unique to
/// this process and session (a tracker tells the super seed apart by it).
fn new_peer_id() -> [u8; 20] {
    let mut id = *b"-CB0100-000000000000";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mix = nanos ^ (u64::from(std::process::id()) << 32) ^ crate::spool::unique();
    let tail = format!("{:012x}", mix & 0xffff_ffff_ffff);
    id[8..].copy_from_slice(tail.as_bytes());
    id
}

fn port_is_free(addr: SocketAddr) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
}

impl P2pSession {
    /// Starts a session listening on `cfg.listen_addr:cfg.listen_port`.
    pub async fn new(cfg: SessionConfig) -> anyhow::Result<Self> {
        on_runtime(Self::new_inner(cfg)).await
    }

    async fn new_inner(cfg: SessionConfig) -> anyhow::Result<Self> {
        tokio::fs::create_dir_all(&cfg.spool_dir)
            .await
            .with_context(|| format!("creating spool dir {}", cfg.spool_dir.display()))?;
        // With port 0 another process may take the port we picked before librqbit
        // binds it: pick again then.
        let attempts = if cfg.listen_port == 0 { 5 } else { 1 };
        let mut last_err = None;
        for _ in 0..attempts {
            let port = match cfg.listen_port {
                0 => free_port(cfg.listen_addr)?,
                p => p,
            };
            let listen_addr = SocketAddr::new(cfg.listen_addr, port);
            let peer_id = new_peer_id();
            let opts = SessionOptions {
                peer_id: Some(librqbit_core::Id20::new(peer_id)),
                dht: None,
                persistence: None,
                fastresume: false,
                disable_local_service_discovery: true,
                listen: Some(ListenerOptions {
                    mode: ListenerMode::TcpOnly,
                    listen_addr,
                    enable_upnp_port_forwarding: false,
                    utp_opts: None,
                    // librqbit leaves the announce port unset for a loopback
                    // address, and then tells trackers port 4240.
                    announce_port: Some(port),
                    ipv4_only: cfg.listen_addr.is_ipv4(),
                    ..Default::default()
                }),
                connect: Some(ConnectionOptions {
                    proxy_url: None,
                    enable_tcp: true,
                    peer_opts: Some(PeerConnectionOptions {
                        connect_timeout: Some(cfg.connect_timeout),
                        ..Default::default()
                    }),
                }),
                ratelimits: LimitsConfig {
                    upload_bps: limit(cfg.upload_limit_bps),
                    download_bps: limit(cfg.download_limit_bps),
                },
                client_name_and_version: Some(format!(
                    "crumbs {} (rqbit {})",
                    env!("CARGO_PKG_VERSION"),
                    librqbit::version()
                )),
                ..Default::default()
            };
            match Session::new_with_opts(cfg.spool_dir.clone(), opts).await {
                Ok(session) => {
                    let bound = session
                        .listen_addr()
                        .context("librqbit session has no listener")?;
                    return Ok(Self {
                        session,
                        listen_addr: bound,
                        peer_id,
                        tracker_interval: cfg.tracker_interval,
                        peer_limit: cfg.peer_limit,
                        stopped: AtomicBool::new(false),
                    });
                }
                Err(e) => last_err = Some(e.context(format!("listening on {listen_addr}"))),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no attempt made")))
    }

    /// The TCP port peers reach this session on (the bound one when 0 was asked).
    pub fn listen_port(&self) -> u16 {
        self.listen_addr.port()
    }

    /// The address peers reach this session on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// The peer id this session gives in handshakes and announces.
    pub fn peer_id(&self) -> [u8; 20] {
        self.peer_id
    }

    fn add_options(
        &self,
        output_folder: &Path,
        initial_peers: Vec<SocketAddr>,
    ) -> anyhow::Result<AddTorrentOptions> {
        Ok(AddTorrentOptions {
            // Existing files are hash-checked and what verifies is kept.
            overwrite: true,
            output_folder: Some(
                output_folder
                    .to_str()
                    .with_context(|| format!("{} is not UTF-8", output_folder.display()))?
                    .to_owned(),
            ),
            initial_peers: (!initial_peers.is_empty()).then_some(initial_peers),
            force_tracker_interval: self.tracker_interval,
            peer_limit: self.peer_limit,
            ..Default::default()
        })
    }

    async fn add(
        &self,
        torrent_bytes: Vec<u8>,
        opts: AddTorrentOptions,
    ) -> anyhow::Result<Arc<ManagedTorrent>> {
        let session = self.session.clone();
        on_runtime(async move {
            let resp = session
                .add_torrent(AddTorrent::from_bytes(torrent_bytes), Some(opts))
                .await?;
            match resp {
                AddTorrentResponse::Added(_, h) | AddTorrentResponse::AlreadyManaged(_, h) => Ok(h),
                AddTorrentResponse::ListOnly(_) => bail!("librqbit only listed the torrent"),
            }
        })
        .await
    }

    /// Seeds a crumb already written to `data_path` (whose file name must be the
    /// torrent's name). librqbit hash-checks the file first; this returns once the
    /// torrent is live and complete, and fails (and drops the torrent) if the file
    /// does not match. `initial_peers` are connected to at once (e.g. other seeds).
    pub async fn seed(
        &self,
        torrent: &MadeTorrent,
        data_path: &Path,
        initial_peers: Vec<SocketAddr>,
    ) -> anyhow::Result<TorrentId> {
        self.seed_with(torrent, data_path, initial_peers, Seeding::default())
            .await
    }

    /// [`Self::seed`] with the super seed's options ([`Seeding`]).
    pub async fn seed_with(
        &self,
        torrent: &MadeTorrent,
        data_path: &Path,
        initial_peers: Vec<SocketAddr>,
        seeding: Seeding,
    ) -> anyhow::Result<TorrentId> {
        let file_name = data_path.file_name().and_then(|n| n.to_str());
        ensure!(
            file_name == Some(torrent.name.as_str()),
            "{} must be named {:?} as in the torrent",
            data_path.display(),
            torrent.name
        );
        let len = tokio::fs::metadata(data_path)
            .await
            .with_context(|| format!("reading {}", data_path.display()))?
            .len();
        ensure!(
            len == torrent.length,
            "{} has {len} bytes, the torrent {}",
            data_path.display(),
            torrent.length
        );
        let folder = match data_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut opts = self.add_options(&folder, initial_peers)?;
        opts.upload_peers_per_piece = seeding.peers_per_piece;
        opts.upload_first = seeding.first;
        let handle = self.add(torrent.bytes.clone(), opts).await?;
        let id = TorrentId(handle.info_hash().0);
        let checked = tokio::time::timeout(SEED_CHECK_TIMEOUT, handle.wait_until_initialized())
            .await
            .map_err(|_| anyhow!("hash check of {} took over {SEED_CHECK_TIMEOUT:?}", id))
            .and_then(|r| r);
        let progress = self.progress(id);
        match (checked, progress) {
            (Ok(()), Ok(p)) if p.finished => Ok(id),
            (checked, progress) => {
                let _ = self.remove(id, false).await;
                checked?;
                let p = progress?;
                bail!(
                    "{} does not match torrent {id}: {} of {} bytes verify",
                    data_path.display(),
                    p.have_bytes,
                    p.total_bytes
                )
            }
        }
    }

    /// Starts downloading a crumb into `output_dir` (created if missing; the file is
    /// `output_dir/<torrent name>`). Returns at once; see [`Self::progress`] and
    /// [`Self::wait_finished`]. Once complete, the torrent stays and seeds.
    pub async fn download(
        &self,
        torrent_bytes: &[u8],
        output_dir: &Path,
        initial_peers: Vec<SocketAddr>,
    ) -> anyhow::Result<TorrentId> {
        self.download_with(torrent_bytes, output_dir, initial_peers, Fetch::default())
            .await
    }

    /// [`Self::download`] with [`Fetch`] options.
    pub async fn download_with(
        &self,
        torrent_bytes: &[u8],
        output_dir: &Path,
        initial_peers: Vec<SocketAddr>,
        fetch: Fetch,
    ) -> anyhow::Result<TorrentId> {
        parse_torrent(torrent_bytes)?;
        tokio::fs::create_dir_all(output_dir)
            .await
            .with_context(|| format!("creating {}", output_dir.display()))?;
        let mut opts = self.add_options(output_dir, initial_peers)?;
        opts.disable_upload_torrent = !fetch.upload;
        opts.disable_trackers = fetch.initial_peers_only;
        opts.line_bytes_per_sec = fetch
            .line_bytes_per_sec
            .and_then(|r| std::num::NonZeroU32::new(r.min(f64::from(u32::MAX)) as u32));
        opts.hold_requests = fetch.hold;
        let handle = self.add(torrent_bytes.to_vec(), opts).await?;
        Ok(TorrentId(handle.info_hash().0))
    }

    /// Peers this torrent has a live connection to (0 when it is not live).
    pub fn connected_peers(&self, id: TorrentId) -> anyhow::Result<usize> {
        let Some(live) = self.handle(id)?.live() else {
            return Ok(0);
        };
        Ok(live
            .per_peer_stats_snapshot(peer_filter("live")?)
            .peers
            .len())
    }

    /// Lets a torrent started with [`Fetch::hold`] request its pieces.
    pub fn release(&self, id: TorrentId) -> anyhow::Result<()> {
        self.handle(id)?.release_requests();
        Ok(())
    }

    /// A new limit on the peers each piece of a seeded torrent goes to (`None`: no
    /// limit), for the requests that come after it; the copies given out already
    /// count. Only for a torrent seeded with [`Seeding::peers_per_piece`] (any
    /// value, `usize::MAX` to count without a limit): the patch's
    /// `set_upload_peers_per_piece`.
    pub fn set_peers_per_piece(&self, id: TorrentId, limit: Option<usize>) -> anyhow::Result<()> {
        let counted = self
            .handle(id)?
            .set_upload_peers_per_piece(limit.unwrap_or(usize::MAX));
        ensure!(
            counted,
            "torrent {id} was seeded without a count of its copies"
        );
        Ok(())
    }

    /// Makes a running torrent connect to `peer` at once, beside its peer limit
    /// (no-op when it knows the peer already; returns whether the peer was new).
    /// Goes through `add_peer_now`, added by the patch in `vendor/librqbit`: the
    /// public `add_peer_if_not_seen` queues the peer behind every tracker peer for a
    /// free connection slot. Fails when the torrent is not live (still checking, or
    /// gone). With `take_over`, for the deadline's source (the super seed): once its
    /// connection finds nothing left to reserve, it takes over the pieces in flight
    /// on other peers at once instead of waiting until they look slow (the patch's
    /// `add_urgent_peer`; the peer is marked even when it is connected already).
    pub fn connect(
        &self,
        id: TorrentId,
        peer: SocketAddr,
        take_over: bool,
    ) -> anyhow::Result<bool> {
        let live = self
            .handle(id)?
            .live()
            .with_context(|| format!("torrent {id} is not live"))?;
        let added = if take_over {
            live.add_urgent_peer(peer)
        } else {
            live.add_peer_now(peer)
        };
        added.with_context(|| format!("adding peer {peer} to torrent {id}"))
    }

    /// Opens a download started with [`Fetch::initial_peers_only`] to its .torrent's
    /// trackers: it announces and connects to the peers they list (the patch's
    /// `Session::open_to_trackers`). For a weak line's urgent crumb whose one source
    /// (the super seed) has sent nothing in its time: peers are then better than
    /// nothing. Call it once per download (each call starts an announce loop); fails
    /// when the torrent is not live or its .torrent names no tracker.
    pub fn open_to_trackers(&self, id: TorrentId) -> anyhow::Result<()> {
        let handle = self.handle(id)?;
        let bytes = handle.with_metadata(|m| m.torrent_bytes.clone())?;
        let trackers = parse_torrent(&bytes)?.announce;
        ensure!(!trackers.is_empty(), "torrent {id} names no tracker");
        // Its announce loop is a task of the session's runtime, whoever calls.
        let _runtime = RUNTIME.enter();
        self.session.open_to_trackers(&handle, &trackers)
    }

    fn handle(&self, id: TorrentId) -> anyhow::Result<Arc<ManagedTorrent>> {
        self.session
            .get(id.key())
            .with_context(|| format!("no torrent {id} in the session"))
    }

    /// Byte counts of a torrent, straight from librqbit's counters.
    pub fn progress(&self, id: TorrentId) -> anyhow::Result<Progress> {
        let s = self.handle(id)?.stats();
        // While a torrent initializes, librqbit's progress counts the bytes its hash
        // check has read, verified or not: nothing is had yet.
        let checking = matches!(s.state, TorrentStatsState::Initializing { .. });
        Ok(Progress {
            have_bytes: if checking { 0 } else { s.progress_bytes },
            total_bytes: s.total_bytes,
            finished: s.finished,
            uploaded_bytes: s.uploaded_bytes,
            error: match s.state {
                TorrentStatsState::Error => Some(s.error.unwrap_or_default()),
                _ => None,
            },
        })
    }

    /// Payload bytes this session received from each peer of a torrent, from
    /// librqbit's per-peer counters (`fetched_bytes`: every block that arrived, so a
    /// block sent twice by a slow and a fast peer counts for both).
    ///
    /// Keys are the addresses librqbit knows the peers by: the address this session
    /// connected to for a peer it dialled (a seed's listen address), the remote end
    /// of the socket (an ephemeral port) for a peer that connected in.
    ///
    /// librqbit keeps a peer's entry, counters included, after the connection ends:
    /// a completed download drops its seeds but still lists them here, and so do
    /// peers that failed and wait to be retried. It forgets a peer only when its
    /// reconnect back-off is used up (about a day of failures). Peers known but
    /// never fetched from are listed with 0.
    ///
    /// The counters live as long as the torrent is live, which a complete torrent
    /// stays while it seeds. When it is not live (still hash-checking, paused, or
    /// failed) there are none and the map is empty; they start from 0 again when the
    /// torrent goes live again, e.g. after it is removed and added again. Fails only
    /// when the torrent is not in the session.
    pub fn fetched_by_peer(&self, id: TorrentId) -> anyhow::Result<HashMap<SocketAddr, u64>> {
        let Some(live) = self.handle(id)?.live() else {
            return Ok(HashMap::new());
        };
        // "all": dropped peers too, not only the connected ones.
        live.per_peer_stats_snapshot(peer_filter("all")?)
            .peers
            .into_iter()
            .map(|(addr, stats)| {
                let addr = addr
                    .parse::<SocketAddr>()
                    .with_context(|| format!("librqbit peer address {addr:?}"))?;
                Ok((addr, stats.counters.fetched_bytes))
            })
            .collect()
    }

    /// Payload bytes this torrent received from all its peers since it last went
    /// live (0 when it is not live, as [`Self::fetched_by_peer`]). librqbit's torrent
    /// counter leaves out blocks that came after their request was cancelled, so it
    /// can be a little below the sum of [`Self::fetched_by_peer`]. Fails only when
    /// the torrent is not in the session.
    pub fn fetched_total(&self, id: TorrentId) -> anyhow::Result<u64> {
        Ok(self
            .handle(id)?
            .live()
            .map_or(0, |live| live.stats_snapshot().fetched_bytes))
    }

    /// Waits until the torrent is complete, at most `timeout`; fails on timeout or
    /// when the torrent fails.
    pub async fn wait_finished(&self, id: TorrentId, timeout: Duration) -> anyhow::Result<()> {
        let handle = self.handle(id)?;
        let deadline = Instant::now() + timeout;
        loop {
            let p = self.progress(id)?;
            if p.finished {
                return Ok(());
            }
            if let Some(e) = p.error {
                bail!("torrent {id} failed: {e}");
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "torrent {id} not finished after {timeout:?}: {} of {} bytes",
                    p.have_bytes,
                    p.total_bytes
                );
            }
            // librqbit's completion notify, with a poll as a fallback (a notify
            // before we listen is lost, and the torrent may not be live yet).
            let wait = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(wait, handle.wait_until_completed()).await;
        }
    }

    /// The file a torrent's data is in.
    pub fn output_path(&self, id: TorrentId) -> anyhow::Result<PathBuf> {
        let handle = self.handle(id)?;
        let rel =
            handle.with_metadata(|m| m.file_infos.first().map(|f| f.relative_filename.clone()))?;
        Ok(handle
            .output_folder()
            .join(rel.context("torrent has no file")?))
    }

    /// The bytes of a complete torrent, read from its file on disk.
    pub async fn read_file(&self, id: TorrentId) -> anyhow::Result<Vec<u8>> {
        let p = self.progress(id)?;
        ensure!(
            p.finished,
            "torrent {id} is not complete ({} of {} bytes)",
            p.have_bytes,
            p.total_bytes
        );
        let path = self.output_path(id)?;
        tokio::fs::read(&path)
            .await
            .with_context(|| format!("reading {}", path.display()))
    }

    /// The bytes of a torrent's file from its start up to its first piece not
    /// verified yet (all of them when it is complete), read from disk: of a crumb cut
    /// short by its deadline, what decodes (`Crumb::decode_prefix`).
    pub async fn read_verified_prefix(&self, id: TorrentId) -> anyhow::Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        // Still initialising (or stopped by an error): no piece to read.
        let n = self.handle(id)?.verified_prefix_bytes().unwrap_or(0);
        if n == 0 {
            return Ok(Vec::new());
        }
        let path = self.output_path(id)?;
        let file = tokio::fs::File::open(&path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let mut bytes = Vec::with_capacity(n as usize);
        file.take(n)
            .read_to_end(&mut bytes)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        ensure!(
            bytes.len() as u64 == n,
            "{} holds {} bytes, {n} verified",
            path.display(),
            bytes.len()
        );
        Ok(bytes)
    }

    /// Stops and forgets a torrent; with `delete_files` its file goes too (and its
    /// folder, when that is empty then and not the spool dir).
    /// Every [`super::memory::TRIM_EVERY_REMOVED`]th removal in the process gives the
    /// allocator's free pages back to the system ([`super::memory`]).
    pub async fn remove(&self, id: TorrentId, delete_files: bool) -> anyhow::Result<()> {
        self.session
            .delete(id.key(), delete_files)
            .await
            .with_context(|| format!("removing torrent {id}"))?;
        super::memory::torrent_removed();
        Ok(())
    }

    /// Changes the session-wide limits in bytes/s at once (None = unlimited; values
    /// below [`MIN_RATE_LIMIT_BPS`] are raised to it).
    /// Sets the upload limit alone (each limit set is a new token bucket, with a full
    /// burst: the download limit must not be reset whenever the upload one moves).
    pub fn set_upload_limit(&self, upload_bps: Option<u32>) {
        self.session.ratelimits.set_upload_bps(limit(upload_bps));
    }

    pub fn set_rate_limits(&self, upload_bps: Option<u32>, download_bps: Option<u32>) {
        self.session.ratelimits.set_upload_bps(limit(upload_bps));
        self.session
            .ratelimits
            .set_download_bps(limit(download_bps));
    }

    /// The limits in force, in bytes/s.
    pub fn rate_limits(&self) -> (Option<u32>, Option<u32>) {
        let l = self.session.ratelimits.get_config();
        (
            l.upload_bps.map(NonZeroU32::get),
            l.download_bps.map(NonZeroU32::get),
        )
    }

    /// Bytes this session uploaded to peers since it started (all torrents).
    pub fn total_uploaded(&self) -> u64 {
        self.session.stats_snapshot().counters.uploaded_bytes
    }

    /// Bytes this session received from peers since it started (all torrents).
    pub fn total_downloaded(&self) -> u64 {
        self.session.stats_snapshot().counters.fetched_bytes
    }

    /// Pieces taken over from one connection by another since the session started.
    pub fn pieces_stolen(&self) -> u64 {
        u64::from(self.session.stats_snapshot().peers.steals)
    }

    /// librqbit's handle of a torrent, weakly: tests check that a removed torrent
    /// is freed.
    #[cfg(test)]
    pub(crate) fn weak_handle(&self, id: TorrentId) -> std::sync::Weak<ManagedTorrent> {
        self.handle(id)
            .as_ref()
            .map_or_else(|_| std::sync::Weak::new(), Arc::downgrade)
    }

    /// librqbit's live state of a torrent (None when not live), weakly and
    /// type-erased (librqbit does not export its type): tests check that it is freed.
    #[cfg(test)]
    pub(crate) fn weak_live(
        &self,
        id: TorrentId,
    ) -> Option<std::sync::Weak<dyn std::any::Any + Send + Sync>> {
        let live: Arc<dyn std::any::Any + Send + Sync> = self.handle(id).ok()?.live()?;
        Some(Arc::downgrade(&live))
    }

    /// The torrents in the session.
    pub fn torrents(&self) -> Vec<TorrentId> {
        self.session
            .with_torrents(|it| it.map(|(_, h)| TorrentId(h.info_hash().0)).collect())
    }

    /// Stops the session: forgets every torrent (keeping files), cancels librqbit's
    /// tasks and waits (at most 3 s) until the listening port is free again.
    /// Idempotent; dropping a session without it cancels too, without waiting.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        for id in self.torrents() {
            // Best effort: the cancellation below stops it anyway.
            let _ = self.remove(id, false).await;
        }
        self.session.cancellation_token().cancel();
        let deadline = Instant::now() + SHUTDOWN_PORT_TIMEOUT;
        while !port_is_free(self.listen_addr) {
            if Instant::now() >= deadline {
                bail!(
                    "port {} still bound {SHUTDOWN_PORT_TIMEOUT:?} after shutdown",
                    self.listen_addr
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

impl Drop for P2pSession {
    fn drop(&mut self) {
        self.session.cancellation_token().cancel();
    }
}
