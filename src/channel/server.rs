// SPDX-License-Identifier: MPL-2.0
//! The channel's HTTP server (axum): window, Segments, .torrent files, tracker,
//! reports, stats, and a status page. Documented in `docs/http-api.md`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;

use super::Shared;
use crate::core::api::ReportDoc;
use crate::core::channel::ReportError;

type S = Arc<Shared>;

/// What the server lets a client hold (crumbsink's `header-timeout`, `idle-timeout`,
/// `max-connections`, `max-connections-per-address`).
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

fn router(shared: S) -> Router {
    let name = shared.name.clone();
    Router::new()
        .route("/", get(index))
        .route(&format!("/{name}"), get(window))
        .route(&format!("/{name}/segments/{{seq}}"), get(segment))
        .route(&format!("/{name}/torrents/{{seq}}/{{file}}"), get(torrent))
        // The tracker answers at the root too: libtorrent (qBittorrent, Deluge) takes
        // a loopback or LAN tracker only at the path `/announce` (its SSRF rule).
        .route("/announce", get(announce))
        .route("/scrape", get(scrape))
        .route(&format!("/{name}/announce"), get(announce))
        .route(&format!("/{name}/scrape"), get(scrape))
        .route(&format!("/{name}/report"), post(report))
        .route(&format!("/{name}/stats"), get(stats))
        .with_state(shared)
}

/// Serves HTTP/1.1 on `listener` until the task is aborted (which closes every
/// connection too). Not `axum::serve`: it can neither cap connections nor time out a
/// client that never finishes its headers, and ~1,000 such sockets used to take every
/// file descriptor the process had (the next crumb write failed).
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    shared: S,
    limits: ServerLimits,
    stats: Arc<ConnectionStats>,
) {
    let app = router(shared);
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

#[derive(serde::Deserialize)]
struct WindowQuery {
    after: Option<u64>,
}

async fn window(State(s): State<S>, Query(q): Query<WindowQuery>) -> Response {
    let now = s.now();
    let doc = s.engine().window_doc(now, q.after);
    (
        [(crate::core::api::RECEIVED_HEADER, now.to_string())],
        Json(doc),
    )
        .into_response()
}

async fn segment(State(s): State<S>, Path(seq): Path<u64>) -> Response {
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

async fn torrent(State(s): State<S>, Path((seq, file)): Path<(u64, String)>) -> Response {
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

/// BitTorrent HTTP tracker. Errors are bencoded `failure reason` bodies with status
/// 200, as BEP 3 clients expect; the channel goes on.
async fn announce(
    State(s): State<S>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
) -> Response {
    let now = s.now();
    let body = s
        .engine()
        .on_announce(now, q.as_deref().unwrap_or(""), peer);
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// BEP 48 scrape of the channel's torrents (the URL clients derive from the announce
/// URL by its last path part).
async fn scrape(State(s): State<S>, RawQuery(q): RawQuery) -> Response {
    let now = s.now();
    let body = s.engine().on_scrape(now, q.as_deref().unwrap_or(""));
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// A report counts only from a peer the channel knows (its `peer_id` announced from
/// this address): others get 403 and change nothing.
async fn report(
    State(s): State<S>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
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

async fn stats(State(s): State<S>) -> Response {
    Json(s.stats()).into_response()
}

async fn index(State(s): State<S>) -> Html<String> {
    let now = s.now();
    let w = s.engine().window_doc(now, None);
    let rows: String = w
        .segments
        .iter()
        .map(|seg| {
            format!(
                "<tr><td>{}</td><td>{:.2} s</td><td>{}</td><td>{} B</td></tr>",
                seg.seq,
                seg.duration as f64 / 1e9,
                seg.crumbs.len(),
                seg.crumbs.iter().map(|c| c.size).sum::<u64>()
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><title>crumbs: {name}</title><h1>channel {name}</h1>\
         <p>window <a href=\"/{name}\">/{name}</a> (JSON), stats <a href=\"/{name}/stats\">/{name}/stats</a>, \
         tracker /announce</p><p>start index {start:?}, latest {latest:?}</p>\
         <table border=1><tr><th>Segment</th><th>length</th><th>crumbs</th><th>bytes</th></tr>{rows}</table>",
        name = w.channel,
        start = w.start_index,
        latest = w.latest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
