// SPDX-License-Identifier: MPL-2.0
//! The channel's HTTP server (axum): window, Segments, .torrent files, tracker,
//! reports, stats, and a status page. Documented in `docs/http-api.md`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::Shared;
use crate::core::api::ReportDoc;

type S = Arc<Mutex<Shared>>;

pub(super) async fn serve(listener: tokio::net::TcpListener, shared: S) {
    let name = shared.lock().unwrap().name.clone();
    let app = Router::new()
        .route("/", get(index))
        .route(&format!("/{name}"), get(window))
        .route(&format!("/{name}/segments/{{seq}}"), get(segment))
        .route(&format!("/{name}/torrents/{{seq}}/{{file}}"), get(torrent))
        .route(&format!("/{name}/announce"), get(announce))
        .route(&format!("/{name}/report"), post(report))
        .route(&format!("/{name}/stats"), get(stats))
        .with_state(shared);
    let _ = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await;
}

#[derive(serde::Deserialize)]
struct WindowQuery {
    after: Option<u64>,
}

async fn window(State(s): State<S>, Query(q): Query<WindowQuery>) -> Response {
    Json(s.lock().unwrap().window_doc(q.after)).into_response()
}

async fn segment(State(s): State<S>, Path(seq): Path<u64>) -> Response {
    match s.lock().unwrap().one_segment(seq) {
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
    match s.lock().unwrap().torrents.get(&(seq, index)) {
        Some(bytes) => (
            [(header::CONTENT_TYPE, "application/x-bittorrent")],
            bytes.clone(),
        )
            .into_response(),
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
    let mut shared = s.lock().unwrap();
    let now = shared.now();
    shared.stats.announces += 1;
    let body = shared.tracker.handle(q.as_deref().unwrap_or(""), peer, now);
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

async fn report(State(s): State<S>, body: axum::body::Bytes) -> Response {
    let doc: ReportDoc = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => {
            s.lock().unwrap().stats.reports_rejected += 1;
            return (StatusCode::BAD_REQUEST, format!("malformed report: {e}\n")).into_response();
        }
    };
    let mut shared = s.lock().unwrap();
    let now = shared.now();
    let Shared {
        feedback,
        scheduler,
        stats,
        ..
    } = &mut *shared;
    match feedback.record(doc, now, scheduler) {
        Ok(()) => {
            stats.reports_accepted += 1;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            stats.reports_rejected += 1;
            (StatusCode::BAD_REQUEST, format!("report refused: {e}\n")).into_response()
        }
    }
}

async fn stats(State(s): State<S>) -> Response {
    Json(s.lock().unwrap().stats_doc()).into_response()
}

async fn index(State(s): State<S>) -> Html<String> {
    let shared = s.lock().unwrap();
    let w = shared.window_doc(None);
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
         tracker /{name}/announce</p><p>start index {start:?}, latest {latest:?}</p>\
         <table border=1><tr><th>Segment</th><th>length</th><th>crumbs</th><th>bytes</th></tr>{rows}</table>",
        name = w.channel,
        start = w.start_index,
        latest = w.latest,
    ))
}
