// SPDX-License-Identifier: MPL-2.0
//! The bench's outputs: `swarm.json`, the HTML report, the simulator beside the real
//! run, and the summary table printed last.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Options;
use crate::events::Event;
use crate::metrics::{self, SwarmFigures};
use crate::profile::Profile;
use crate::report;
use crate::run::{RunLog, RunSpec};

pub fn one_line(f: &SwarmFigures) -> String {
    let mut s = format!(
        "continuity {:.3}, completeness {:.3}, delivered {:.0} kbit/s (bound {:.0}, ratio {:.2}), \
         channel upload {:.0} kbit/s ({:.0} per client), super seed share {:.3}, startup {:.1} s, latency {:.1} s, \
         viewer latency {:.1} s (worst client {:.1} s), freezes {:.2} per client ({:.1} s)",
        f.continuity,
        f.completeness,
        f.delivered_kbps,
        f.bound_kbps,
        f.ratio_to_bound,
        f.channel_upload_kbps,
        f.upload_per_client_kbps,
        f.super_seed_share,
        f.startup_s,
        f.latency_s,
        f.viewer_latency_s,
        f.worst_viewer_latency_s,
        f.stalls_per_client,
        f.stall_s_per_client
    );
    for e in &f.errors {
        s += &format!("\n  error: {e}");
    }
    s
}

type Done = (String, RunSpec, RunLog, SwarmFigures);

/// The lowest download rate whose client, and every client above it, played with no
/// failed Segment (None: no such rate in the ladder).
fn min_watchable(f: Option<&SwarmFigures>) -> Option<f64> {
    let f = f?;
    let mut c: Vec<_> = f.per_client.iter().collect();
    c.sort_by(|a, b| a.down_kbps.total_cmp(&b.down_kbps));
    let mut best = None;
    for x in c.iter().rev() {
        if x.segments > 0 && x.failed == 0 && x.error.is_none() {
            best = Some(x.down_kbps);
        } else {
            break;
        }
    }
    best
}

/// The simulator at the main run's size, profile and length.
fn sim_check(main: &Done) -> Value {
    use gstcrumbs::sim::{self, Profile as SimProfile, SimConfig, config::SEC};
    let (_, spec, log, real) = main;
    let mut c = SimConfig::paper(spec.links.len());
    // The layer rates the encoder really made (its base layer overshoots 128 kbit/s:
    // key frames), split above the base in the nominal proportions; and the real
    // mean Segment length.
    let (secs, bytes, base) = log.stream;
    let segments = log.published.len().max(1) as f64;
    if secs > 0.0 && bytes > 0 {
        let kbps = |b: u64| b as f64 * 8.0 / 1000.0 / secs;
        let (base, rest) = (kbps(base), kbps(bytes.saturating_sub(base)));
        c.layers_kbps = vec![base, rest * 512.0 / 2560.0, rest * 2048.0 / 2560.0];
        c.segment_duration = (secs / segments * 1e9) as u64;
    } else {
        c.segment_duration = 2 * SEC;
    }
    // The channel's |G| loop as the run showed it: the shortest Segment is one GOP
    // (min-gops 1), the longest bounds |G|, the first one starts it. Run at the mean
    // length instead, the simulator ramped D up over 3.5 s Segments where the bench's
    // first three were 2 s ones, and delivered 11-14 % less.
    let lengths = || log.published.values().map(|&(_, d)| d);
    let shortest = lengths().fold(f64::INFINITY, f64::min);
    let longest = lengths().fold(0.0, f64::max);
    let first = log
        .published
        .iter()
        .min_by_key(|(k, _)| **k)
        .map(|(_, &(_, d))| d);
    if let Some(first) = first
        && shortest.is_finite()
        && shortest > 0.0
    {
        let gops = |d: f64| ((d / shortest).round() as u16).max(1);
        c.gop_loop = Some(sim::GopLoop {
            gop: (shortest * 1e9) as u64,
            segmenter: gstcrumbs::core::segmenter::SegmenterConfig {
                gops: gops(first),
                min_gops: 1,
                max_gops: gops(longest),
                ..Default::default()
            },
        });
    }
    c.seconds = spec.seconds.round() as u64;
    c.super_seed_kbps = spec.channel_up_kbps;
    c.profiles = spec
        .links
        .iter()
        .map(|l| SimProfile::new(&l.name, l.down_kbps, l.up_kbps, 1.0))
        .collect();
    c.profile_order = Some((0..c.profiles.len()).collect());
    c.join_spread = (spec.join_spacing_s * spec.links.len() as f64 * 1e9) as u64;
    c.warmup = 0;
    let layers = c.layers_kbps.clone();
    let seg_s = c.segment_duration as f64 / 1e9;
    let r = sim::run(c);
    let pair = |a: f64, b: f64| json!({"bench": a, "sim": b});
    json!({
        "clients": r.clients,
        "continuity": pair(real.continuity, r.continuity),
        "completeness": pair(real.completeness, r.completeness),
        "delivered_kbps": pair(real.delivered_kbps, r.delivered_kbps),
        "super_seed_share": pair(real.super_seed_share, r.super_seed_share),
        "startup_s": pair(real.startup_s, r.startup_s),
        "latency_s": pair(real.latency_s, r.latency_s),
        "sim_layers_kbps": layers,
        "sim_segment_s": seg_s,
        // Per client's link (the bench's clients in order), where the two part.
        "sim_delivered_kbps_by_client": r
            .profiles
            .iter()
            .map(|(name, s)| json!([name, s.clients, s.delivered_kbps]))
            .collect::<Vec<_>>(),
        // Per link: [name, bench, simulator] super seed share.
        "super_seed_share_by_link": share_by_link(real, &r.profiles),
    })
}

/// The super seed's share of what each kind of link received, in the bench and in
/// the simulator (whose profiles are the bench's clients in order).
fn share_by_link(
    real: &SwarmFigures,
    sim: &[(String, gstcrumbs::sim::metrics::Summary)],
) -> Vec<Value> {
    let mut links: Vec<&str> = Vec::new();
    for c in &real.per_client {
        if !links.contains(&c.link.as_str()) {
            links.push(&c.link);
        }
    }
    links
        .into_iter()
        .map(|link| {
            let (seed, all) =
                real.per_client
                    .iter()
                    .filter(|c| c.link == link)
                    .fold((0, 0), |(s, a), c| {
                        let all = c.bytes_from_super_seed + c.bytes_from_peers;
                        (s + c.bytes_from_super_seed, a + all)
                    });
            let (sim_seed, sim_all) =
                sim.iter()
                    .filter(|(name, _)| name == link)
                    .fold((0.0, 0.0), |(s, a), (_, p)| {
                        (
                            s + p.super_seed_share * p.received_bytes,
                            a + p.received_bytes,
                        )
                    });
            json!([
                link,
                gstcrumbs::sim::metrics::ratio(seed as f64, all as f64),
                gstcrumbs::sim::metrics::ratio(sim_seed, sim_all)
            ])
        })
        .collect()
}

fn run_data(spec: &RunSpec, log: &RunLog) -> report::RunData {
    let clients = log
        .clients
        .iter()
        .map(|c| report::ClientSeries {
            name: c.name.clone(),
            link: c.link.name.clone(),
            points: c
                .segments
                .iter()
                .filter_map(|e| match *e {
                    Event::Segment {
                        t,
                        d,
                        n,
                        margin_s,
                        success,
                        skipped: false,
                        bytes,
                        duration_s,
                        ..
                    } => Some(report::SegPoint {
                        t: t - log.t0,
                        d,
                        n,
                        margin_s,
                        success,
                        kbps: if duration_s > 0.0 {
                            bytes as f64 * 8.0 / 1000.0 / duration_s
                        } else {
                            0.0
                        },
                    }),
                    _ => None,
                })
                .collect(),
        })
        .collect();
    report::RunData {
        title: spec.label.clone(),
        clients,
        channel_upload_kbps: metrics::upload_series(log),
    }
}

fn f3(x: f64) -> String {
    format!("{x:.3}")
}
fn f0(x: f64) -> String {
    format!("{x:.0}")
}
fn f1(x: f64) -> String {
    format!("{x:.1}")
}

pub fn finish(o: &Options, profile: &Profile, done: &[Done]) -> Result<(), String> {
    let get = |k: &str| done.iter().find(|d| d.0 == k);
    let main = get("main").ok_or("the main run did not happen")?;
    let mut notes: Vec<String> = Vec::new();
    for (_, _, log, _) in done {
        for n in &log.notes {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    let by_n = |prefix: &str, f: &dyn Fn(&SwarmFigures) -> f64| -> BTreeMap<String, f64> {
        o.sweep
            .iter()
            .filter_map(|&n| {
                let key = if prefix == "crumbs" && n == o.clients {
                    "main".to_string()
                } else {
                    format!("{prefix}-{n}")
                };
                get(&key).map(|d| (n.to_string(), f(&d.3)))
            })
            .collect()
    };
    let http_up = by_n("http", &|f| f.upload_per_client_kbps);
    let crumbs_up = by_n("crumbs", &|f| f.upload_per_client_kbps);
    let layered = min_watchable(get("ladder-layered").map(|d| &d.3));
    // What the lowest link must carry at least: crumb 1 (headers, base layer and the
    // audio) of the ladder run, as the encoder really made it.
    let crumb1_kbps = get("ladder-layered").and_then(|d| {
        let (secs, _, base) = d.2.stream;
        (secs > 0.0).then(|| base as f64 * 8.0 / 1000.0 / secs)
    });
    let one_layer = min_watchable(get("ladder-one-layer").map(|d| &d.3));
    let sim = sim_check(main);
    let m = &main.3;
    let mut out = json!({
        "profile": profile.name,
        "shaping": m.shaping,
        "channel_upload_measured_as": main.2.upload_source,
        "notes": notes,
        "clients": m.clients,
        "continuity": m.continuity,
        "completeness": m.completeness,
        "delivered_kbps": m.delivered_kbps,
        "full_quality_kbps": m.full_quality_kbps,
        "r_max_kbps": m.r_max_kbps,
        "ratio_to_r_max": m.ratio_to_r_max,
        "bound_kbps": m.bound_kbps,
        "ratio_to_bound": m.ratio_to_bound,
        "super_seed_share": m.super_seed_share,
        "startup_s": m.startup_s,
        "latency_s": m.latency_s,
        "viewer_latency_s": m.viewer_latency_s,
        "worst_viewer_latency_s": m.worst_viewer_latency_s,
        "stalls_per_client": m.stalls_per_client,
        "stall_s_per_client": m.stall_s_per_client,
        "quality_switches_per_client": m.quality_switches_per_client,
        "client_cpu_pct": m.client_cpu_pct,
        "client_max_rss_kb": m.client_max_rss_kb,
        "http_upload_per_client_kbps": http_up,
        "crumbs_upload_per_client_kbps": crumbs_up,
        "super_seed_share_by_clients": by_n("crumbs", &|f| f.super_seed_share),
        "http_continuity_by_clients": by_n("http", &|f| f.continuity),
        "crumbs_continuity_by_clients": by_n("crumbs", &|f| f.continuity),
        "http_delivered_kbps_by_clients": by_n("http", &|f| f.delivered_kbps),
        "crumbs_delivered_kbps_by_clients": by_n("crumbs", &|f| f.delivered_kbps),
        "tight": done
            .iter()
            .filter(|d| d.0.starts_with("tight-"))
            .map(|d| (d.0.clone(), serde_json::to_value(&d.3).unwrap_or_default()))
            .collect::<serde_json::Map<_, _>>(),
        "min_watchable_kbps_layered": layered,
        "min_watchable_kbps_one_layer": one_layer,
        "ladder_crumb1_kbps": crumb1_kbps,
        "min_watchable_over_crumb1": layered.zip(crumb1_kbps).map(|(l, c)| l / c),
        "sim_check": sim,
    });
    out["rules"] = json!({
        "paper": get("main").map(|d| &d.3),
        "rate": get("rule").map(|d| &d.3),
    });
    out["runs"] = done
        .iter()
        .map(|d| (d.0.clone(), serde_json::to_value(&d.3).unwrap_or_default()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    if let Some(dir) = o.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(
        &o.out,
        serde_json::to_string_pretty(&out).unwrap_or_default() + "\n",
    )
    .map_err(|e| format!("{}: {e}", o.out.display()))?;

    // The report.
    let header = |h: &[&str]| h.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let runs_table = report::Table {
        title: "Every run".into(),
        header: header(&[
            "run", "clients", "continuity", "completeness", "delivered kbit/s", "bound kbit/s", "ratio to bound",
            "ratio to r_max", "channel kbit/s", "per client kbit/s", "super seed share", "startup s", "latency s",
            "viewer latency s", "freezes per client", "switches", "client CPU %", "client peak MB",
        ]),
        rows: done
            .iter()
            .map(|(_, _, _, f)| {
                vec![
                    f.label.clone(),
                    f.clients.to_string(),
                    f3(f.continuity),
                    f3(f.completeness),
                    f0(f.delivered_kbps),
                    f0(f.bound_kbps),
                    format!("{:.2}", f.ratio_to_bound),
                    format!("{:.3}", f.ratio_to_r_max),
                    f0(f.channel_upload_kbps),
                    f0(f.upload_per_client_kbps),
                    f3(f.super_seed_share),
                    f1(f.startup_s),
                    f1(f.latency_s),
                    f1(f.viewer_latency_s),
                    format!("{:.2}", f.stalls_per_client),
                    f1(f.quality_switches_per_client),
                    f1(f.client_cpu_pct),
                    f1(f.client_max_rss_kb as f64 / 1024.0),
                ]
            })
            .collect(),
        note: "continuity: share of Segments played; completeness: mean D/N; bound: mean over clients of \
               min(r_max, own download, full quality); super seed share: channel bytes / bytes clients downloaded \
               (HLS: the web server's). latency: capture to output; viewer latency: capture to play-out (the \
               output's plus the time a Segment waits in the player); freezes: Segments that came after their \
               play-out time and moved the player's timeline forward."
            .into(),
    };
    let mut clients_table = report::Table {
        title: format!("Clients of the main run ({})", m.label),
        header: header(&[
            "client",
            "down kbit/s",
            "up kbit/s",
            "segments",
            "failed",
            "completeness",
            "delivered kbit/s",
            "startup s",
            "latency s",
            "viewer latency s",
            "freezes (s)",
            "switches",
            "from super seed kB",
            "from peers kB",
            "CPU %",
            "peak MB",
        ]),
        rows: Vec::new(),
        note: String::new(),
    };
    for c in &m.per_client {
        clients_table.rows.push(vec![
            c.name.clone(),
            f0(c.down_kbps),
            f0(c.up_kbps),
            c.segments.to_string(),
            c.failed.to_string(),
            f3(c.completeness),
            f0(c.delivered_kbps),
            c.startup_s.map_or("-".into(), f1),
            c.latency_s.map_or("-".into(), f1),
            c.viewer_latency_s.map_or("-".into(), f1),
            format!("{} ({:.1})", c.stalls, c.stall_s),
            c.quality_switches.to_string(),
            f0(c.bytes_from_super_seed as f64 / 1000.0),
            f0(c.bytes_from_peers as f64 / 1000.0),
            f1(c.cpu_pct),
            f1(c.max_rss_kb as f64 / 1024.0),
        ]);
    }
    let scale_table = report::Table {
        title: "Channel upload per client: crumbs beside HLS".into(),
        header: header(&[
            "clients",
            "crumbs kbit/s per client",
            "HLS kbit/s per client",
            "crumbs continuity",
            "HLS continuity",
            "crumbs delivered kbit/s",
            "HLS delivered kbit/s",
        ]),
        rows: o
            .sweep
            .iter()
            .map(|n| {
                let k = n.to_string();
                let cell = |m: &Value| m.get(&k).and_then(|v| v.as_f64()).map_or("-".into(), f0);
                let cell3 = |m: &Value| m.get(&k).and_then(|v| v.as_f64()).map_or("-".into(), f3);
                vec![
                    k.clone(),
                    cell(&out["crumbs_upload_per_client_kbps"]),
                    cell(&out["http_upload_per_client_kbps"]),
                    cell3(&out["crumbs_continuity_by_clients"]),
                    cell3(&out["http_continuity_by_clients"]),
                    cell(&out["crumbs_delivered_kbps_by_clients"]),
                    cell(&out["http_delivered_kbps_by_clients"]),
                ]
            })
            .collect(),
        note: "Same profile, same links, same channel upload cap; HLS variants are the cumulative layer rates.".into(),
    };
    let opt = |x: Option<f64>| {
        x.map_or("none in the ladder".to_string(), |v| {
            format!("{v:.0} kbit/s")
        })
    };
    let watch_table = report::Table {
        title: "Lowest link rate that plays without a failed Segment".into(),
        header: header(&["stream", "lowest link"]),
        rows: vec![
            vec!["layered (128 + 512 + 2048)".into(), opt(layered)],
            vec![format!("one layer ({:.0})", m.full_quality_kbps), opt(one_layer)],
        ],
        note: "From one run each over the ladder profile: the lowest download rate whose client, and every faster one, had no failed Segment.".into(),
    };
    let sim_rows = [
        "continuity",
        "completeness",
        "delivered_kbps",
        "super_seed_share",
        "startup_s",
        "latency_s",
    ]
    .iter()
    .map(|k| {
        let b = sim[k]["bench"].as_f64().unwrap_or(0.0);
        let s = sim[k]["sim"].as_f64().unwrap_or(0.0);
        vec![k.to_string(), f3(b), f3(s)]
    })
    .collect();
    let sim_table = report::Table {
        title: "The simulator at the main run's size and profile".into(),
        header: header(&["figure", "bench", "simulator"]),
        rows: sim_rows,
        note: "The simulator drives the same channel and client engine with a fluid link model: no TCP, \
               no librqbit handshakes or choking, a fixed crumb setup delay."
            .into(),
    };
    let mut extra = Vec::new();
    let series = |m: &Value| -> Vec<(f64, f64)> {
        m.as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut crumbs_s = series(&out["crumbs_upload_per_client_kbps"]);
    let mut http_s = series(&out["http_upload_per_client_kbps"]);
    crumbs_s.sort_by(|a, b| a.0.total_cmp(&b.0));
    http_s.sort_by(|a, b| a.0.total_cmp(&b.0));
    extra.push((
        "Channel upload per client as the audience grows".to_string(),
        report::line_chart_svg(
            "channel upload per client",
            "clients",
            "kbit/s per client",
            &[("crumbs".into(), crumbs_s), ("HLS".into(), http_s)],
        ),
    ));
    let mut intro = vec![
        format!(
            "Profile {} ({}); shaping: {}. Stream: VP8, 640x360 at 30 fps, layers 128 / 512 / 2048 kbit/s, \
             1 s GOPs, Segments of 1-2 GOPs, crumbs of at most 64 KiB.",
            profile.name, profile.description, m.shaping
        ),
        format!(
            "Main run: {} clients, delivered {:.0} kbit/s on average against a bound of {:.0} (ratio {:.2}); \
             r_max = min(u_s, (u_s + sum u_i)/n) = {:.0} kbit/s, delivered / r_max = {:.3}.",
            m.clients,
            m.delivered_kbps,
            m.bound_kbps,
            m.ratio_to_bound,
            m.r_max_kbps,
            m.ratio_to_r_max
        ),
    ];
    let (secs, bytes, base) = main.2.stream;
    if secs > 0.0 {
        intro.push(format!(
            "The encoder really made {:.0} kbit/s in all, {:.0} of them in crumb 1 (headers + base \
             layer: VP8 key frames push it over the nominal 128), in Segments of {:.1} s on average.",
            bytes as f64 * 8.0 / 1000.0 / secs,
            base as f64 * 8.0 / 1000.0 / secs,
            secs / main.2.published.len().max(1) as f64
        ));
    }
    intro.push(format!(
        "Channel upload is measured as {}.",
        main.2.upload_source
    ));
    intro.extend(notes.iter().cloned());
    let mut runs = Vec::new();
    for key in ["main", "rule", "ladder-layered", "ladder-one-layer"] {
        if let Some((_, spec, log, _)) = get(key) {
            runs.push(run_data(spec, log));
        }
    }
    if let Some((_, spec, log, _)) = o.sweep.iter().max().and_then(|n| get(&format!("http-{n}"))) {
        runs.push(run_data(spec, log));
    }
    for (key, spec, log, _) in done {
        if key.starts_with("tight-") {
            runs.push(run_data(spec, log));
        }
    }
    let rep = report::Report {
        title: "crumbs swarm bench".into(),
        intro,
        tables: vec![
            runs_table,
            clients_table,
            scale_table,
            watch_table,
            sim_table,
        ],
        runs,
        extra_plots: extra,
    };
    report::write_html(&rep, &o.report).map_err(|e| format!("{}: {e}", o.report.display()))?;

    // The summary, last.
    println!();
    println!(
        "{:<38} {:>7} {:>10} {:>12} {:>9} {:>6} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6}",
        "run",
        "clients",
        "continuity",
        "completeness",
        "kbit/s",
        "ratio",
        "up/client",
        "seedshare",
        "startup",
        "latency",
        "viewer",
        "freezes",
        "cpu%",
        "MB"
    );
    for (_, _, _, f) in done {
        println!(
            "{:<38} {:>7} {:>10.3} {:>12.3} {:>9.0} {:>6.2} {:>9.0} {:>9.3} {:>6.1}s {:>6.1}s {:>6.1}s {:>7.2} {:>7.1} {:>6.1}",
            f.label,
            f.clients,
            f.continuity,
            f.completeness,
            f.delivered_kbps,
            f.ratio_to_bound,
            f.upload_per_client_kbps,
            f.super_seed_share,
            f.startup_s,
            f.latency_s,
            f.viewer_latency_s,
            f.stalls_per_client,
            f.client_cpu_pct,
            f.client_max_rss_kb as f64 / 1024.0
        );
    }
    println!();
    println!(
        "main: delivered {:.0} kbit/s, r_max {:.0} kbit/s, delivered/r_max {:.3}, delivered/bound {:.2}",
        m.delivered_kbps, m.r_max_kbps, m.ratio_to_r_max, m.ratio_to_bound
    );
    println!(
        "upload per client (kbit/s), crumbs vs HLS: {}",
        o.sweep
            .iter()
            .map(|n| {
                let k = n.to_string();
                format!(
                    "N={n}: {} vs {}",
                    crumbs_up.get(&k).map_or("-".into(), |x| f0(*x)),
                    http_up.get(&k).map_or("-".into(), |x| f0(*x))
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "min watchable link: layered {}, one layer {}{}",
        opt(layered),
        opt(one_layer),
        match layered.zip(crumb1_kbps) {
            Some((l, c)) => format!(
                " (crumb 1 of the ladder run: {c:.0} kbit/s; layered / crumb 1 = {:.2})",
                l / c
            ),
            None => String::new(),
        }
    );
    let pair = |k: &str| {
        (
            sim[k]["sim"].as_f64().unwrap_or(0.0),
            sim[k]["bench"].as_f64().unwrap_or(0.0),
        )
    };
    let (share, by_link) = (pair("super_seed_share"), &sim["super_seed_share_by_link"]);
    let by_link: Vec<String> = by_link
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let f = |k: usize| l[k].as_f64().unwrap_or(0.0);
            format!("{} {:.2} ({:.2})", l[0].as_str().unwrap_or("?"), f(2), f(1))
        })
        .collect();
    println!(
        "simulator at N={}: continuity {:.3} (bench {:.3}), completeness {:.3} (bench {:.3}), \
         delivered {:.0} kbit/s (bench {:.0}), super seed share {:.3} (bench {:.3}; by link: {})",
        sim["clients"],
        pair("continuity").0,
        m.continuity,
        pair("completeness").0,
        m.completeness,
        pair("delivered_kbps").0,
        pair("delivered_kbps").1,
        share.0,
        share.1,
        by_link.join(", ")
    );
    for n in &notes {
        println!("note: {n}");
    }
    println!("wrote {} and {}", o.out.display(), o.report.display());
    // A bench that ran but measured nothing is a failure (so CI's quick run catches
    // a command that rotted), not a table of zeros.
    let broken: Vec<String> = done
        .iter()
        .filter(|(_, _, _, f)| f.clients == 0 || !f.errors.is_empty())
        .map(|(k, _, _, f)| format!("{k}: {} clients played; {}", f.clients, f.errors.join("; ")))
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!("runs without a result: {}", broken.join(" | ")))
    }
}
