// SPDX-License-Identifier: MPL-2.0
//! The channels' HTTP server (axum): window, Segments, .torrent files, tracker,
//! reports, stats, the list of channels and status pages. Documented in
//! `docs/http-api.md`.
//!
//! One server serves every channel of the process bound to the same (address, port):
//! a process-wide registry of servers ([`join`]), reference-counted by the channels'
//! [`Membership`]s; the server stops when its last channel leaves. Routes dispatch by
//! channel name; the tracker at the root dispatches by info-hash.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;

use super::{Shared, fmt_addr};
use crate::core::api::{self, ChannelEntryDoc, ChannelsDoc, ReportDoc};
use crate::core::channel::ReportError;
use crate::core::tracker::{AnnounceRequest, failure_body, scrape_body};

type S = Arc<Channels>;

/// The channels one server serves, by name. A name is reserved (None) from the
/// channel's join until its engine exists.
pub(super) struct Channels {
    addr: SocketAddr,
    by_name: Mutex<BTreeMap<String, Option<Arc<Shared>>>>,
}

impl Channels {
    fn get(&self, name: &str) -> Option<Arc<Shared>> {
        self.by_name.lock().unwrap().get(name).cloned().flatten()
    }

    /// The channels ready to serve, in name order.
    fn all(&self) -> Vec<Arc<Shared>> {
        self.by_name
            .lock()
            .unwrap()
            .values()
            .filter_map(Clone::clone)
            .collect()
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", fmt_addr(self.addr))
    }
}

/// A running HTTP server and the channels it serves. Its channels hold it (through
/// their [`Membership`]); dropping the last stops it.
struct Hub {
    key: (IpAddr, u16),
    channels: Arc<Channels>,
    connections: Arc<ConnectionStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Closes the listener and every connection.
        self.task.abort();
        let mut hubs = HUBS.lock().unwrap();
        if hubs.get(&self.key).is_some_and(|w| w.upgrade().is_none()) {
            hubs.remove(&self.key);
        }
    }
}

/// The process's HTTP servers by the (address, port) they are bound to.
static HUBS: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(HashMap::new()));

type Registry = HashMap<(IpAddr, u16), Weak<Hub>>;

/// A channel's place on a server: it serves the channel once [`Membership::serve`]
/// gave it the channel, and frees the name (and the server, when it was the last
/// channel) when dropped.
pub(super) struct Membership {
    hub: Arc<Hub>,
    name: String,
}

impl Membership {
    pub fn http_addr(&self) -> SocketAddr {
        self.hub.channels.addr
    }

    /// The server's connection counters (shared by its channels).
    pub fn connections(&self) -> Arc<ConnectionStats> {
        self.hub.connections.clone()
    }

    /// The channel's routes start answering.
    pub fn serve(&self, shared: Arc<Shared>) {
        self.hub
            .channels
            .by_name
            .lock()
            .unwrap()
            .insert(self.name.clone(), Some(shared));
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.channels.by_name.lock().unwrap().remove(&self.name);
    }
}

/// Channel `name` joins the server of (`address`, `port`) in this process, which is
/// started (bound) when there is none; port 0 always starts a new server on a free
/// port. The first channel's `limits` rule a shared server. A name already served
/// there is an error. Runs on the runtime (it spawns the server).
pub(super) fn join(
    address: IpAddr,
    port: u16,
    name: &str,
    limits: ServerLimits,
) -> anyhow::Result<Membership> {
    let mut hubs = HUBS.lock().unwrap();
    let existing = (port != 0)
        .then(|| hubs.get(&(address, port)).and_then(Weak::upgrade))
        .flatten();
    let hub = match existing {
        Some(hub) => hub,
        None => {
            let listener = std::net::TcpListener::bind((address, port))
                .with_context(|| format!("cannot listen on {address}:{port}"))?;
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let addr = listener.local_addr()?;
            let channels = Arc::new(Channels {
                addr,
                by_name: Mutex::new(BTreeMap::new()),
            });
            let connections = Arc::new(ConnectionStats::default());
            let task = tokio::spawn(serve(
                listener,
                channels.clone(),
                limits,
                connections.clone(),
            ));
            let hub = Arc::new(Hub {
                key: (address, addr.port()),
                channels,
                connections,
                task,
            });
            hubs.insert(hub.key, Arc::downgrade(&hub));
            hub
        }
    };
    // The registry's lock is let go before `hub` may be dropped (its Drop takes it).
    drop(hubs);
    {
        let mut names = hub.channels.by_name.lock().unwrap();
        if names.contains_key(name) {
            let url = hub.channels.url(name);
            drop(names);
            bail!(
                "channel '{name}' is already served at {url} by another crumbsink of this \
                 process: channels sharing address and http-port need different names"
            );
        }
        names.insert(name.to_owned(), None);
    }
    Ok(Membership {
        hub,
        name: name.to_owned(),
    })
}

/// What the server lets a client hold (crumbsink's `header-timeout`, `idle-timeout`,
/// `max-connections`, `max-connections-per-address`). Channels sharing a server: the
/// first channel's limits rule it.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// A request's headers must arrive within this, counted from the connection's
    /// start or the end of the previous response (so it also ends idle keep-alive).
    pub header_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed (a
    /// stalled request body, a response nobody reads).
    pub idle_timeout: Duration,
    /// Open connections in all; a new one beyond it is closed at once.
    pub max_connections: u32,
    /// Open connections from one IP address; a new one beyond it is closed at once.
    pub max_connections_per_address: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 512,
            max_connections_per_address: 256,
        }
    }
}

/// Connection counters, read by crumbsink's `stats`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
    accept_errors: AtomicU64,
}

/// A copy of the connection counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Connections open now.
    pub open: u64,
    /// Connections served since the start.
    pub accepted: u64,
    /// Connections closed at once because a cap was reached.
    pub refused: u64,
    /// Connections closed by the header or idle timeout.
    pub timed_out: u64,
    /// Failed accepts (out of file descriptors, ...).
    pub accept_errors: u64,
}

impl ConnectionStats {
    pub fn counts(&self) -> ConnectionCounts {
        ConnectionCounts {
            open: self.open.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
        }
    }
}

/// Open connections in all and by address.
struct Slots {
    total: u32,
    by_address: HashMap<IpAddr, u32>,
}

/// One open connection's place under the caps; given back when dropped.
struct Slot {
    slots: Arc<Mutex<Slots>>,
    stats: Arc<ConnectionStats>,
    address: IpAddr,
}

impl Slot {
    fn take(
        slots: &Arc<Mutex<Slots>>,
        stats: &Arc<ConnectionStats>,
        address: IpAddr,
        limits: &ServerLimits,
    ) -> Option<Slot> {
        let mut s = slots.lock().unwrap();
        let here = s.by_address.get(&address).copied().unwrap_or(0);
        if s.total >= limits.max_connections || here >= limits.max_connections_per_address {
            return None;
        }
        s.total += 1;
        s.by_address.insert(address, here + 1);
        stats.open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            slots: slots.clone(),
            stats: stats.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.slots.lock().unwrap();
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                s.by_address.remove(&self.address);
            }
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that remembers when a byte last moved either way.
struct Watched {
    inner: tokio::net::TcpStream,
    origin: Instant,
    /// Milliseconds since `origin` of the last byte read or written.
    last: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        self.last
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

fn router(channels: S) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/channels", get(channel_list))
        // The tracker answers at the root too: libtorrent (qBittorrent, Deluge) takes
        // a loopback or LAN tracker only at the path `/announce` (its SSRF rule). It
        // dispatches by info-hash to the channel that has the torrent.
        .route("/announce", get(root_announce))
        .route("/scrape", get(root_scrape))
        .route("/{channel}", get(window))
        .route("/{channel}/segments/{seq}", get(segment))
        .route("/{channel}/torrents/{seq}/{file}", get(torrent))
        .route("/{channel}/announce", get(announce))
        .route("/{channel}/scrape", get(scrape))
        .route("/{channel}/report", post(report))
        .route("/{channel}/stats", get(stats))
        .route("/{channel}/status", get(status_page))
        .route("/{channel}/status.json", get(status_json))
        .with_state(channels)
}

/// The 404 of a route naming a channel this server does not serve.
fn no_channel(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("no channel '{name}' here (GET /channels lists them)\n"),
    )
        .into_response()
}

/// The channel of a route, or return its 404.
macro_rules! channel_or_404 {
    ($cs:expr, $name:expr) => {
        match $cs.get(&$name) {
            Some(s) => s,
            None => return no_channel(&$name),
        }
    };
}

/// Serves HTTP/1.1 on `listener` until the task is aborted (which closes every
/// connection too). Not `axum::serve`: it can neither cap connections nor time out a
/// client that never finishes its headers, and ~1,000 such sockets used to take every
/// file descriptor the process had (the next crumb write failed).
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    channels: S,
    limits: ServerLimits,
    stats: Arc<ConnectionStats>,
) {
    let app = router(channels);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let slots = Arc::new(Mutex::new(Slots {
        total: 0,
        by_address: HashMap::new(),
    }));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                // Out of descriptors or a connection reset before accept: wait a little
                // rather than spin; timeouts free descriptors meanwhile.
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&slots, &stats, peer.ip(), &limits) else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let origin = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        let io = Watched {
            inner: stream,
            origin,
            last: last.clone(),
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            // A Router is always ready: no poll_ready needed.
            tower_service::Service::call(&mut app, req)
        });
        let conn = http.serve_connection(TokioIo::new(io), service);
        let stats = stats.clone();
        connections.spawn(async move {
            let _slot = slot;
            let timed_out = idle_watch(conn, origin, &last, limits.idle_timeout).await;
            if timed_out {
                stats.timed_out.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Drives one connection until it ends, its header timeout fires, or nothing moved on
/// it for `idle`. True when a timeout ended it.
async fn idle_watch<F>(conn: F, origin: Instant, last: &AtomicU64, idle: Duration) -> bool
where
    F: Future<Output = Result<(), hyper::Error>>,
{
    tokio::pin!(conn);
    loop {
        let quiet = origin
            .elapsed()
            .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
        if quiet >= idle {
            return true; // dropping the connection closes the socket
        }
        tokio::select! {
            res = conn.as_mut() => return res.is_err_and(|e| e.is_timeout()),
            _ = tokio::time::sleep(idle - quiet) => {}
        }
    }
}

/// Longest hold of a blocking window reload (`?wait=`), ms: well under the
/// connection's idle timeout and a client's HTTP timeout.
pub const MAX_WINDOW_WAIT_MS: u64 = 5000;

#[derive(serde::Deserialize)]
struct WindowQuery {
    after: Option<u64>,
    /// Blocking reload (as LL-HLS's playlist reload): ms to hold an answer that
    /// would bring nothing new, until the next Segment is published.
    wait: Option<u64>,
}

async fn window(
    State(cs): State<S>,
    Path(name): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Response {
    let s = channel_or_404!(cs, name);
    // The arrival time: the upload governor reads the uplink's delay from it, so it
    // is taken before any hold.
    let received = s.now();
    let wait = q.wait.unwrap_or(0).min(MAX_WINDOW_WAIT_MS);
    if wait > 0 {
        // Subscribed before the check: a publication between the two still wakes it.
        let mut published = s.publications();
        let until = tokio::time::Instant::now() + Duration::from_millis(wait);
        while !s.engine().window_news(q.after) {
            match tokio::time::timeout_at(until, published.changed()).await {
                Ok(Ok(())) => {}
                // The hold is over, or the channel is gone: answer what there is.
                Ok(Err(_)) | Err(_) => break,
            }
        }
    }
    let doc = s.engine().window_doc(s.now(), q.after);
    (
        [(crate::core::api::RECEIVED_HEADER, received.to_string())],
        Json(doc),
    )
        .into_response()
}

async fn segment(State(cs): State<S>, Path((name, seq)): Path<(String, u64)>) -> Response {
    let s = channel_or_404!(cs, name);
    let now = s.now();
    let doc = s.engine().segment_doc(now, seq);
    match doc {
        Some(doc) => Json(doc).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("Segment {seq} is not available\n"),
        )
            .into_response(),
    }
}

async fn torrent(
    State(cs): State<S>,
    Path((name, seq, file)): Path<(String, u64, String)>,
) -> Response {
    let s = channel_or_404!(cs, name);
    let Some(index) = file
        .strip_suffix(".torrent")
        .and_then(|i| i.parse::<u16>().ok())
    else {
        return (StatusCode::NOT_FOUND, "expected <index>.torrent\n").into_response();
    };
    let bytes = s.engine().torrent(seq, index).map(<[u8]>::to_vec);
    match bytes {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "application/x-bittorrent")], bytes).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            format!("no crumb {index} of Segment {seq}\n"),
        )
            .into_response(),
    }
}

fn bencoded(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// BitTorrent HTTP tracker. Errors are bencoded `failure reason` bodies with status
/// 200, as BEP 3 clients expect; the channel goes on.
async fn announce(
    State(cs): State<S>,
    Path(name): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
) -> Response {
    let s = channel_or_404!(cs, name);
    channel_announce(&s, peer, q.as_deref().unwrap_or(""))
}

fn channel_announce(s: &Shared, peer: SocketAddr, query: &str) -> Response {
    let now = s.now();
    let body = s.engine().on_announce(now, query, peer);
    bencoded(body)
}

/// The tracker at the root: the announce goes to the channel whose tracker has the
/// torrent (an unknown one to the first channel, which refuses it as its own tracker
/// does).
async fn root_announce(
    State(cs): State<S>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
) -> Response {
    let query = q.as_deref().unwrap_or("");
    let req = match AnnounceRequest::parse(query) {
        Ok(r) => r,
        Err(e) => return bencoded(e.body()),
    };
    let all = cs.all();
    let Some(s) = all
        .iter()
        .find(|s| s.engine().tracks(&req.info_hash))
        .or(all.first())
    else {
        return bencoded(failure_body("no channel is served here"));
    };
    channel_announce(s, peer, query)
}

/// BEP 48 scrape of the channel's torrents (the URL clients derive from the announce
/// URL by its last path part).
async fn scrape(State(cs): State<S>, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let s = channel_or_404!(cs, name);
    let now = s.now();
    let body = s.engine().on_scrape(now, q.as_deref().unwrap_or(""));
    bencoded(body)
}

/// BEP 48 scrape at the root: every channel's torrents asked for (all of them when
/// no info_hash is given).
async fn root_scrape(State(cs): State<S>, RawQuery(q): RawQuery) -> Response {
    let query = q.as_deref().unwrap_or("");
    let mut files = Vec::new();
    for s in cs.all() {
        let now = s.now();
        match s.engine().tracker().scrape_counts(query, now) {
            Ok(f) => files.extend(f),
            Err(e) => return bencoded(e.body()),
        }
    }
    bencoded(scrape_body(files))
}

/// A report counts only from a peer the channel knows (its `peer_id` announced from
/// this address): others get 403 and change nothing.
async fn report(
    State(cs): State<S>,
    Path(name): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let s = channel_or_404!(cs, name);
    let doc: ReportDoc = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => {
            s.engine().on_malformed_report();
            return (StatusCode::BAD_REQUEST, format!("malformed report: {e}\n")).into_response();
        }
    };
    let now = s.now();
    let result = s.engine().on_report(now, peer.ip(), doc);
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e @ ReportError::NotAPeer(_)) => {
            (StatusCode::FORBIDDEN, format!("report refused: {e}\n")).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("report refused: {e}\n")).into_response(),
    }
}

async fn stats(State(cs): State<S>, Path(name): Path<String>) -> Response {
    let s = channel_or_404!(cs, name);
    Json(s.stats()).into_response()
}

async fn status_json(State(cs): State<S>, Path(name): Path<String>) -> Response {
    let s = channel_or_404!(cs, name);
    ([(header::CACHE_CONTROL, "no-store")], Json(s.status())).into_response()
}

async fn status_page(State(cs): State<S>, Path(name): Path<String>) -> Response {
    let s = channel_or_404!(cs, name);
    Html(STATUS_PAGE.replace("{{CHANNEL}}", &html_escape(&s.name))).into_response()
}

/// The list of channels of this server.
fn channels_doc(cs: &Channels) -> ChannelsDoc {
    ChannelsDoc {
        version: api::API_VERSION,
        channels: cs
            .all()
            .iter()
            .map(|s| {
                let now = s.now();
                let e = s.engine();
                let st = e.stats(now);
                ChannelEntryDoc {
                    name: s.name.clone(),
                    url: cs.url(&s.name),
                    status: format!("{}/status", cs.url(&s.name)),
                    caps: e.caps().map(str::to_owned),
                    audio_caps: e.audio_caps().map(str::to_owned),
                    latest: e.latest(),
                    viewers: e.viewers(now),
                    clients_reporting: st.clients_reporting,
                    peers_known: st.peers_known,
                }
            })
            .collect(),
    }
}

async fn channel_list(State(cs): State<S>) -> Response {
    Json(channels_doc(&cs)).into_response()
}

/// Caps in short for a person: the media type, and the size and frame rate (video) or
/// the rate and channels (audio) when given.
fn short_caps(caps: &str) -> String {
    let mut parts = caps.split(", ");
    let media = parts.next().unwrap_or_default();
    let fields: HashMap<&str, &str> = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            // "(int)160" -> "160"
            Some((k, v.rsplit_once(')').map_or(v, |(_, v)| v)))
        })
        .collect();
    let mut out = media.to_owned();
    if let (Some(w), Some(h)) = (fields.get("width"), fields.get("height")) {
        out += &format!(" {w}×{h}");
    }
    if let Some(r) = fields.get("framerate") {
        out += &format!(" @ {r} fps");
    }
    if let Some(r) = fields.get("rate") {
        out += &format!(" {r} Hz");
    }
    if let Some(c) = fields.get("channels") {
        out += &format!(" ×{c}");
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The server's front page: its channels, linked to their status pages.
async fn index(State(cs): State<S>) -> Html<String> {
    let doc = channels_doc(&cs);
    let rows: String = doc
        .channels
        .iter()
        .map(|c| {
            let n = html_escape(&c.name);
            let audio = c.audio_caps.as_deref().map(short_caps);
            format!(
                "<tr><td><a href=\"/{n}/status\">{n}</a></td><td><code>{url}</code></td>\
                 <td>{latest}</td><td>{viewers}</td><td>{peers}</td>\
                 <td title=\"{full}\">{caps}{audio}</td>\
                 <td><a href=\"/{n}\">window</a> · <a href=\"/{n}/stats\">stats</a> · \
                 <a href=\"/{n}/status.json\">status</a></td></tr>",
                url = html_escape(&c.url),
                latest = c.latest.map_or("none yet".into(), |l| l.to_string()),
                viewers = c.viewers,
                peers = c.peers_known,
                full = html_escape(c.caps.as_deref().unwrap_or("")),
                caps = html_escape(&c.caps.as_deref().map_or("not known yet".into(), short_caps)),
                audio = audio.map_or(String::new(), |a| format!(" + {}", html_escape(&a))),
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width\"><title>crumbs channels</title>\
         <style>body{{font:15px system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse}}td,th{{padding:.35em .8em;border-bottom:1px solid #ddd;text-align:left}}\
         code{{font-size:12px;color:#555}}</style></head><body>\
         <h1>crumbs channels</h1><p>{count} channel(s) on this server. \
         Play one with <code>crumbsrc location=URL</code>; the list as JSON: <a href=\"/channels\">/channels</a>.</p>\
         <table id=channels><tr><th>channel (status page)</th><th>URL (crumbsrc location)</th>\
         <th>latest Segment</th><th>viewers</th><th>peers known</th><th>caps</th><th>JSON</th></tr>\
         {rows}</table></body></html>",
        count = doc.channels.len(),
    ))
}

/// The status page: static HTML, CSS and a small script that polls `status.json`
/// every second and draws its charts as inline SVG (nothing fetched but the JSON).
const STATUS_PAGE: &str = include_str!("status.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_short() {
        assert_eq!(
            short_caps(
                "video/x-vp8, profile=(string)0, width=(int)160, height=(int)120, \
                 framerate=(fraction)30/1, interlace-mode=(string)progressive"
            ),
            "video/x-vp8 160×120 @ 30/1 fps"
        );
        assert_eq!(
            short_caps("audio/x-opus, rate=(int)48000, channels=(int)2"),
            "audio/x-opus 48000 Hz ×2"
        );
        assert_eq!(short_caps("video/x-h264"), "video/x-h264");
    }

    #[test]
    fn slots_cap_connections_in_all_and_per_address() {
        let limits = ServerLimits {
            max_connections: 3,
            max_connections_per_address: 2,
            ..Default::default()
        };
        let slots = Arc::new(Mutex::new(Slots {
            total: 0,
            by_address: HashMap::new(),
        }));
        let stats = Arc::new(ConnectionStats::default());
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
        );
        let take = |ip| Slot::take(&slots, &stats, ip, &limits);
        let a1 = take(a).unwrap();
        let a2 = take(a).unwrap();
        assert!(take(a).is_none(), "per-address cap");
        let b1 = take(b).unwrap();
        assert!(take(c).is_none(), "total cap");
        assert_eq!(stats.counts().open, 3);
        drop(a1);
        assert!(take(a).is_some(), "a slot given back is free again");
        drop((a2, b1));
        assert_eq!(stats.counts().open, 0);
        assert!(slots.lock().unwrap().by_address.is_empty());
    }
}
