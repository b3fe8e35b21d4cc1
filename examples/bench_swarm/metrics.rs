// SPDX-License-Identifier: MPL-2.0
//! Figures of a run, per client and for the swarm, from its event log. The names are
//! the simulator's (`src/sim/metrics.rs`), so the two can be set side by side.

use serde::Serialize;

use crate::events::Event;
use gstcrumbs::sim::metrics as sim;

use crate::run::{ClientLog, RunLog};

#[derive(Clone, Debug, Default, Serialize)]
pub struct ClientFigures {
    pub name: String,
    pub link: String,
    pub down_kbps: f64,
    pub up_kbps: f64,
    /// Segments counted: from the first one the client attempted.
    pub segments: usize,
    pub failed: usize,
    pub continuity: f64,
    pub completeness: f64,
    pub delivered_kbps: f64,
    pub startup_s: Option<f64>,
    pub latency_s: Option<f64>,
    /// Capture to the viewer's screen: the output's latency plus the time a Segment
    /// waits in the player (`play-delay`), mean over the Segments played.
    pub viewer_latency_s: Option<f64>,
    /// Freezes: Segments that moved the player's timeline forward, and by how much
    /// in all (s).
    pub stalls: usize,
    pub stall_s: f64,
    pub quality_switches: usize,
    pub bytes_from_super_seed: u64,
    pub bytes_from_peers: u64,
    /// Pieces a connection took over from another (crumbsrc's `pieces-stolen`): a
    /// storm of them is a link filled with copies.
    pub pieces_stolen: u64,
    /// CPU of the client process over its life, percent of one core.
    pub cpu_pct: f64,
    pub max_rss_kb: u64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SwarmFigures {
    pub label: String,
    pub shaping: String,
    pub seconds: f64,
    pub clients: usize,
    pub continuity: f64,
    pub completeness: f64,
    pub delivered_kbps: f64,
    /// The stream's full quality (all layers, or the top variant), kbit/s.
    pub full_quality_kbps: f64,
    /// Fluid bound min(u_s, (u_s + sum u_i) / n).
    pub r_max_kbps: f64,
    pub ratio_to_r_max: f64,
    /// What each client could get at most: min(r_max, its download, full quality),
    /// averaged; and delivered / that.
    pub bound_kbps: f64,
    pub ratio_to_bound: f64,
    /// Channel (super seed / web server) bytes over bytes the clients downloaded.
    pub super_seed_share: f64,
    pub startup_s: f64,
    pub latency_s: f64,
    pub viewer_latency_s: f64,
    /// The highest client's viewer latency.
    pub worst_viewer_latency_s: f64,
    pub stalls_per_client: f64,
    pub stall_s_per_client: f64,
    pub quality_switches_per_client: f64,
    pub channel_upload_kbps: f64,
    pub upload_per_client_kbps: f64,
    pub client_cpu_pct: f64,
    pub client_max_rss_kb: u64,
    pub channel_cpu_pct: f64,
    pub channel_max_rss_kb: u64,
    pub errors: Vec<String>,
    pub per_client: Vec<ClientFigures>,
}

struct Seg {
    t: f64,
    seq: u64,
    success: bool,
    skipped: bool,
    d: u32,
    n: u32,
    bytes: u64,
    duration_s: f64,
    from_seed: u64,
    from_peers: u64,
    play_delay_s: Option<f64>,
    stall_s: f64,
}

fn segs(c: &ClientLog) -> Vec<Seg> {
    c.segments
        .iter()
        .filter_map(|e| match *e {
            Event::Segment {
                t,
                seq,
                success,
                skipped,
                d,
                n,
                bytes,
                duration_s,
                from_seed,
                from_peers,
                play_delay_s,
                stall_s,
                ..
            } => Some(Seg {
                t,
                seq,
                success,
                skipped,
                d,
                n,
                bytes,
                duration_s,
                from_seed,
                from_peers,
                play_delay_s,
                stall_s,
            }),
            _ => None,
        })
        .collect()
}

fn end_cost(e: &Option<Event>, life_s: f64) -> (f64, u64) {
    match e {
        Some(Event::End {
            cpu_s, max_rss_kb, ..
        }) => (100.0 * cpu_s / life_s.max(1e-3), *max_rss_kb),
        _ => (0.0, 0),
    }
}

fn stat(e: &Option<Event>, key: &str) -> u64 {
    match e {
        Some(Event::End { stats, .. }) => stats.get(key).and_then(|v| v.as_u64()).unwrap_or(0),
        _ => 0,
    }
}

pub fn client(log: &RunLog, c: &ClientLog) -> ClientFigures {
    let all = segs(c);
    // Count from the first Segment the client attempted: the ones before it were in the
    // window when it joined, never its to play.
    let first = all.iter().position(|s| !s.skipped).unwrap_or(all.len());
    let counted = &all[first..];
    let mut f = ClientFigures {
        name: c.name.clone(),
        link: c.link.name.clone(),
        down_kbps: c.link.down_kbps,
        up_kbps: c.link.up_kbps,
        segments: counted.len(),
        error: c.error.clone(),
        ..Default::default()
    };
    // Startup counts from when the client could first have played: its own start,
    // or the channel's first publication if it came later (a client started with the
    // channel waits for the first Segment to be captured, as an HLS player would).
    let first_published = log
        .published
        .values()
        .map(|&(t, _)| t)
        .min_by(f64::total_cmp);
    let joinable = first_published.map_or(c.started_t, |t| t.max(c.started_t));
    let (mut bytes, mut secs, mut lat, mut lat_n, mut last_d) = (0u64, 0.0, 0.0, 0usize, None);
    let mut viewer = Vec::new();
    for s in counted {
        let dur = if s.duration_s > 0.0 {
            s.duration_s
        } else {
            log.published.get(&s.seq).map_or(0.0, |p| p.1)
        };
        secs += dur;
        f.bytes_from_super_seed += s.from_seed;
        f.bytes_from_peers += s.from_peers;
        if s.stall_s > 0.0 {
            f.stalls += 1;
            f.stall_s += s.stall_s;
        }
        if s.n > 0 {
            f.completeness += s.d as f64 / s.n as f64;
        }
        if !s.success {
            f.failed += 1;
            continue;
        }
        bytes += s.bytes;
        if f.startup_s.is_none() {
            f.startup_s = Some(s.t - joinable);
        }
        if let Some((tp, d)) = log.published.get(&s.seq) {
            lat += s.t - (tp - d);
            lat_n += 1;
            if let Some(p) = s.play_delay_s {
                viewer.push(s.t - (tp - d) + p);
            }
        }
        if last_d.is_some_and(|d| d != s.d) {
            f.quality_switches += 1;
        }
        last_d = Some(s.d);
    }
    if !counted.is_empty() {
        f.continuity = (counted.len() - f.failed) as f64 / counted.len() as f64;
        f.completeness /= counted.len() as f64;
    }
    if secs > 0.0 {
        f.delivered_kbps = bytes as f64 * 8.0 / 1000.0 / secs;
    }
    if lat_n > 0 {
        f.latency_s = Some(lat / lat_n as f64);
    }
    if !viewer.is_empty() {
        f.viewer_latency_s = Some(mean(viewer.into_iter()));
    }
    let life = log.t_end.max(c.started_t) - c.started_t;
    (f.cpu_pct, f.max_rss_kb) = end_cost(&c.end, life);
    f.pieces_stolen = stat(&c.end, "pieces-stolen");
    f
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// Upload over the run, kbit/s, from the cumulative byte samples.
pub fn upload_kbps(log: &RunLog) -> f64 {
    match (log.upload.first(), log.upload.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => {
            (b.1.saturating_sub(a.1)) as f64 * 8.0 / 1000.0 / (b.0 - a.0)
        }
        _ => 0.0,
    }
}

/// Per-second upload series (t since start, kbit/s) for the report.
pub fn upload_series(log: &RunLog) -> Vec<(f64, f64)> {
    log.upload
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| {
            (
                w[1].0 - log.t0,
                w[1].1.saturating_sub(w[0].1) as f64 * 8.0 / 1000.0 / (w[1].0 - w[0].0),
            )
        })
        .collect()
}

pub fn swarm(
    log: &RunLog,
    channel_up_kbps: f64,
    full_quality_kbps: f64,
    seconds: f64,
) -> SwarmFigures {
    let per_client: Vec<ClientFigures> = log.clients.iter().map(|c| client(log, c)).collect();
    let active: Vec<&ClientFigures> = per_client.iter().filter(|c| c.segments > 0).collect();
    let uploads: Vec<f64> = log.clients.iter().map(|c| c.link.up_kbps).collect();
    let downloads: Vec<f64> = log.clients.iter().map(|c| c.link.down_kbps).collect();
    let r_max = sim::r_max_kbps(channel_up_kbps, &uploads);
    let bound = sim::bound_kbps(r_max, full_quality_kbps, &downloads);
    let delivered = mean(active.iter().map(|c| c.delivered_kbps));
    let downloaded: u64 = log
        .clients
        .iter()
        .map(|c| stat(&c.end, "bytes-downloaded").max(stat(&c.end, "bytes")))
        .sum();
    let channel_sent =
        stat(&log.channel_end, "bytes-uploaded").max(stat(&log.channel_end, "bytes_sent"));
    let upload = upload_kbps(log);
    let (channel_cpu_pct, channel_max_rss_kb) = end_cost(&log.channel_end, log.t_end - log.t0);
    let mut errors: Vec<String> = per_client
        .iter()
        .filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.name)))
        .collect();
    if let Some(e) = &log.channel_error {
        errors.insert(0, format!("channel: {e}"));
    }
    let mut lat = Vec::new();
    for c in &active {
        if let Some(l) = c.latency_s {
            lat.push(l);
        }
    }
    SwarmFigures {
        label: log.spec_label.clone(),
        shaping: if log.netns { "netns+tc" } else { "loopback" }.into(),
        seconds,
        clients: active.len(),
        continuity: mean(active.iter().map(|c| c.continuity)),
        completeness: mean(active.iter().map(|c| c.completeness)),
        delivered_kbps: delivered,
        full_quality_kbps,
        r_max_kbps: r_max,
        ratio_to_r_max: sim::ratio(delivered, r_max),
        bound_kbps: bound,
        ratio_to_bound: sim::ratio(delivered, bound),
        super_seed_share: if downloaded > 0 {
            channel_sent as f64 / downloaded as f64
        } else {
            0.0
        },
        startup_s: mean(active.iter().filter_map(|c| c.startup_s)),
        latency_s: mean(lat.into_iter()),
        viewer_latency_s: mean(active.iter().filter_map(|c| c.viewer_latency_s)),
        worst_viewer_latency_s: active
            .iter()
            .filter_map(|c| c.viewer_latency_s)
            .fold(0.0, f64::max),
        stalls_per_client: mean(active.iter().map(|c| c.stalls as f64)),
        stall_s_per_client: mean(active.iter().map(|c| c.stall_s)),
        quality_switches_per_client: mean(active.iter().map(|c| c.quality_switches as f64)),
        channel_upload_kbps: upload,
        upload_per_client_kbps: if log.clients.is_empty() {
            0.0
        } else {
            upload / log.clients.len() as f64
        },
        client_cpu_pct: mean(active.iter().map(|c| c.cpu_pct)),
        client_max_rss_kb: active.iter().map(|c| c.max_rss_kb).max().unwrap_or(0),
        channel_cpu_pct,
        channel_max_rss_kb,
        errors,
        per_client,
    }
}
