// SPDX-License-Identifier: MPL-2.0
//! Swarm simulator (issue 5): drives the real ChannelEngine and ClientEngine with
//! simulated links and piece exchange.
//!
//! cargo run --release --example simulate -- --peers N [--seconds S] [--seed K]
//!     [--adaptation paper|rate] [--super-seed-kbps U] [--lifetime-s L]
//!     [--profile bench/profiles/paper.toml] [--out PATH] [--report PATH]
//!     [--crumb-setup-ms T] [--step-ms T] [--fanout K] [--first-crumb-fanout K]
//!     [--enhancement-copies K] [--copies-behind K] [--patience-ms T] [--relays R]
//!     [--no-sole-source-reports] [--no-open-alone] [--feedback-clients K]
//!
//! Prints a summary table, writes target/bench/sim.json and a report with plots,
//! target/bench/sim.html. `--profile` takes the peers' links and u_s from a swarm
//! profile file, the same the swarm bench shapes its real links with (delay and loss
//! are not simulated).

use std::path::PathBuf;
use std::time::Instant;

use gstcrumbs::core::client::Adaptation;
use gstcrumbs::sim::{self, SimConfig};

#[allow(dead_code)] // assign is for the swarm bench
#[path = "common/profile.rs"]
mod profile;
#[path = "common/report.rs"]
mod report;

fn main() {
    let mut config = SimConfig::paper(1000);
    let mut args = std::env::args().skip(1);
    let mut out = PathBuf::from("target/bench/sim.json");
    let mut report_path = PathBuf::from("target/bench/sim.html");
    let mut profile_name = "built-in paper mix".to_string();
    let mut super_seed_set = None;
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--peers" => config.peers = val().parse().expect("--peers N"),
            "--seconds" => config.seconds = val().parse().expect("--seconds S"),
            "--seed" => config.seed = val().parse().expect("--seed K"),
            "--super-seed-kbps" => {
                super_seed_set = Some(val().parse().expect("--super-seed-kbps U"))
            }
            "--profile" => {
                let path = PathBuf::from(val());
                let p = profile::Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
                config.profiles = p
                    .links
                    .iter()
                    .map(|l| sim::Profile::new(&l.name, l.down_kbps, l.up_kbps, l.weight))
                    .collect();
                config.super_seed_kbps = p.channel_up_kbps;
                profile_name = format!("{} ({})", p.name, path.display());
            }
            "--report" => report_path = val().into(),
            "--crumb-setup-ms" => {
                config.crumb_setup = val().parse::<u64>().expect("--crumb-setup-ms T") * 1_000_000
            }
            "--step-ms" => config.step = val().parse::<u64>().expect("--step-ms T") * 1_000_000,
            "--fanout" => config.super_seed_fanout = val().parse().expect("--fanout K"),
            "--first-crumb-fanout" => {
                config.first_crumb_fanout = Some(val().parse().expect("--first-crumb-fanout K"))
            }
            "--enhancement-copies" => {
                config.enhancement_copies =
                    gstcrumbs::core::seed_load::EnhancementCopies::from_property(
                        val()
                            .parse()
                            .expect("--enhancement-copies K (-1 automatic, 0 no limit)"),
                    )
            }
            "--copies-behind" => {
                let k: u32 = val().parse().expect("--copies-behind K (0: no limit)");
                config.enhancement_copies_behind = (k > 0).then_some(k);
            }
            // The build before the channel's `sole_source_share`: reports do not say
            // whether crumb 1 came from the super seed alone, so every weak line may.
            "--no-sole-source-reports" => config.sole_source_reports = false,
            // crumbsrc before an alone crumb 1 could be opened to peers: taken over, it
            // still has the super seed alone.
            "--no-open-alone" => config.open_alone_to_peers = false,
            // Peers that announce and report (the first K; 1,000 by default, to bound
            // the run's time).
            "--feedback-clients" => {
                config.feedback_clients = val().parse().expect("--feedback-clients K")
            }
            "--patience-ms" => {
                let ms: i64 = val().parse().expect("--patience-ms T (-1: never)");
                config.peer_patience = u64::try_from(ms).ok().map(|ms| ms * 1_000_000);
            }
            "--lifetime-s" => config.mean_lifetime_s = Some(val().parse().expect("--lifetime-s L")),
            "--relays" => config.relays = val().parse().expect("--relays R"),
            "--out" => out = val().into(),
            "--adaptation" => {
                config.adaptation = match val().as_str() {
                    "paper" => Adaptation::Paper,
                    "rate" => Adaptation::RateBased,
                    other => panic!("--adaptation paper|rate, not {other}"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "simulate --peers N [--seconds S] [--seed K] [--adaptation paper|rate] \
                     [--super-seed-kbps U] [--lifetime-s L] [--profile PATH] [--out PATH] \
                     [--report PATH] [--crumb-setup-ms T] [--step-ms T] [--fanout K] \
                     [--first-crumb-fanout K] [--enhancement-copies K] [--copies-behind K] \
                     [--patience-ms T] [--no-sole-source-reports] [--no-open-alone] \
                     [--feedback-clients K] \
                     [--relays R]"
                );
                return;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    if let Some(u) = super_seed_set {
        config.super_seed_kbps = u;
    }
    // Time series for a few peers: up to 2 per link class, about 12 in all.
    config.trace_per_profile = (12 / config.profiles.len().max(1)).clamp(1, 2);
    let config_copy = config.clone();
    let started = Instant::now();
    let r = sim::run(config);
    let wall = started.elapsed().as_secs_f64();

    println!(
        "peers {} ({} sessions), {} s virtual, seed {}, adaptation {}: {wall:.1} s wall, {} events",
        r.peers, r.sessions, r.seconds, r.seed, r.adaptation, r.events
    );
    println!(
        "{:<14} {:>7} {:>10} {:>12} {:>14} {:>9} {:>9} {:>9}",
        "profile",
        "clients",
        "continuity",
        "completeness",
        "delivered_kbps",
        "startup_s",
        "latency_s",
        "switches"
    );
    let mut rows: Vec<(String, sim::Summary)> = r.profiles.clone();
    rows.push((
        "all".into(),
        sim::Summary {
            clients: r.clients,
            continuity: r.continuity,
            completeness: r.completeness,
            delivered_kbps: r.delivered_kbps,
            startup_s: r.startup_s,
            latency_s: r.latency_s,
            quality_switches_per_client: r.quality_switches_per_client,
            ..Default::default()
        },
    ));
    for (name, s) in &rows {
        println!(
            "{name:<14} {:>7} {:>10.3} {:>12.3} {:>14.1} {:>9.2} {:>9.2} {:>9.1}",
            s.clients,
            s.continuity,
            s.completeness,
            s.delivered_kbps,
            s.startup_s,
            s.latency_s,
            s.quality_switches_per_client
        );
    }
    println!(
        "full quality {:.0} kbps, r_max {:.0} kbps, ratio_to_r_max {:.3}, bound {:.0} kbps, \
         ratio_to_bound {:.3}, super_seed_share {:.4}, mean rho {}",
        r.full_quality_kbps,
        r.r_max_kbps,
        r.ratio_to_r_max,
        r.bound_kbps,
        r.ratio_to_bound,
        r.super_seed_share,
        r.mean_rho.map_or("-".into(), |x| format!("{x:.3}"))
    );
    println!(
        "channel upload per published byte {:.2} ({} Segments published, {} B uploaded)",
        r.super_seed_per_published_byte, r.segments_published, r.super_seed_uploaded_bytes
    );
    println!(
        "crumbs 1 from the super seed alone {} ({} opened to peers; lowest sole_source_share {:.3})",
        r.sole_source_crumbs, r.sole_source_opened, r.lowest_sole_source_share
    );
    let mut json = serde_json::to_value(&r).expect("serialisable");
    json["wall_s"] = serde_json::json!(wall);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("create output directory");
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .expect("write output");
    println!("wrote {}", out.display());
    let rep = build_report(&config_copy, &r, &rows, wall, &profile_name);
    report::write_html(&rep, &report_path).expect("write report");
    println!("wrote {}", report_path.display());
}

/// The HTML report: summary table, time series of the traced peers, quality CDFs.
fn build_report(
    c: &SimConfig,
    r: &sim::SimResult,
    rows: &[(String, sim::Summary)],
    wall: f64,
    profile_name: &str,
) -> report::Report {
    let f = |x: f64, digits: usize| format!("{x:.digits$}");
    let mut table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, s)| {
            vec![
                name.clone(),
                s.clients.to_string(),
                f(s.continuity, 3),
                f(s.completeness, 3),
                f(s.delivered_kbps, 1),
                f(s.startup_s, 2),
                f(s.latency_s, 2),
                f(s.quality_switches_per_client, 1),
            ]
        })
        .collect();
    // Link capacities next to each profile row (the "all" row has none).
    for (row, p) in table_rows.iter_mut().zip(&c.profiles) {
        row.insert(1, format!("{:.0} / {:.0}", p.down_kbps, p.up_kbps));
    }
    if let Some(last) = table_rows.last_mut().filter(|r| r.len() == 8) {
        last.insert(1, String::new());
    }
    let summary = report::Table {
        title: "Per link class".into(),
        header: [
            "link class",
            "down / up kbit/s",
            "clients",
            "continuity",
            "completeness",
            "delivered kbit/s",
            "startup s",
            "latency s",
            "quality switches per client",
        ]
        .map(String::from)
        .to_vec(),
        rows: table_rows,
        note: "continuity: share of Segments whose base layer (crumb 1) arrived by its                deadline; completeness: mean d/N over Segments; delivered: mean quality rate                output (bytes of crumbs 1..d per second of video); startup: join to first                output; latency: capture of a Segment to its output. Means over clients,                Segments begun after the warm-up only."
            .into(),
    };
    let bounds = report::Table {
        title: "Against the bounds".into(),
        header: ["figure", "value"].map(String::from).to_vec(),
        rows: vec![
            vec!["u_s, channel upload (kbit/s)".into(), f(c.super_seed_kbps, 0)],
            vec!["full quality rate, all N crumbs (kbit/s)".into(), f(r.full_quality_kbps, 0)],
            vec!["r_max = min(u_s, (u_s + Σu_i)/n) (kbit/s)".into(), f(r.r_max_kbps, 0)],
            vec!["delivered / r_max".into(), f(r.ratio_to_r_max, 3)],
            vec![
                "bound: mean of min(r_max, full quality, own download) (kbit/s)".into(),
                f(r.bound_kbps, 0),
            ],
            vec!["delivered / bound".into(), f(r.ratio_to_bound, 3)],
            vec!["super seed share of bytes received".into(), f(r.super_seed_share, 4)],
            vec!["mean rho".into(), r.mean_rho.map_or("-".into(), |x| f(x, 3))],
            vec!["events / wall time (s)".into(), format!("{} / {wall:.1}", r.events)],
        ],
        note: "r_max is the fluid bound on the rate every client can get; it ignores that                a client takes no more than the full quality rate or its own download,                which the bound row takes into account."
            .into(),
    };
    let link = |k: usize| c.profiles.get(k).map_or("?".into(), |p| p.name.clone());
    let mut traced: Vec<&sim::TracePeer> = r.trace.peers.iter().collect();
    traced.sort_by_key(|tp| (tp.profile, tp.id));
    let clients = traced
        .iter()
        .map(|tp| report::ClientSeries {
            name: format!("peer {}", tp.id),
            link: link(tp.profile),
            points: tp
                .points
                .iter()
                .map(|p| report::SegPoint {
                    t: p.t,
                    d: u32::from(p.d),
                    n: u32::from(p.n),
                    margin_s: p.margin_s,
                    success: p.success,
                    kbps: p.kbps,
                })
                .collect(),
        })
        .collect();
    let upload = r
        .trace
        .super_upload_kbps
        .iter()
        .enumerate()
        .map(|(k, v)| (k as f64 + 0.5, *v))
        .collect();
    let run = report::RunData {
        title: format!(
            "Sampled peers ({} of {} sessions), whole run including the {} s warm-up",
            r.trace.peers.len(),
            r.sessions,
            c.warmup / 1_000_000_000
        ),
        clients,
        channel_upload_kbps: upload,
    };
    // Quality CDF over every counted Segment of every client, per link class.
    let cdf: Vec<(String, Vec<f64>)> = r
        .trace
        .d_counts
        .iter()
        .enumerate()
        .map(|(k, counts)| {
            let values: Vec<f64> = counts
                .iter()
                .enumerate()
                .flat_map(|(d, &n)| {
                    let kbps = r.trace.d_kbps.get(d).copied().unwrap_or(0.0);
                    std::iter::repeat_n(kbps, n as usize)
                })
                .collect();
            (format!("{} ({} Segments)", link(k), values.len()), values)
        })
        .collect();
    let extra = vec![(
        "Quality distribution over all clients: for each link class, the share of all \
         counted Segments (after the warm-up) delivered at a quality rate of at most x \
         kbit/s; failed Segments count as 0. A curve further right is better."
            .to_string(),
        report::cdf_svg(
            "Quality CDF per link class, all clients",
            "delivered quality rate (kbit/s)",
            &cdf,
        ),
    )];
    let adaptation = &r.adaptation;
    report::Report {
        title: format!("Swarm simulation: {} peers, {profile_name}", r.peers),
        intro: vec![
            format!(
                "A deterministic discrete-event simulation of a swarm: the real channel                  (Scheduler, Feedback) and client (ClientEngine, adaptation {adaptation})                  cores driven in virtual time, with fluid-model links and a BitTorrent-like                  piece exchange (no tracker, handshakes, loss or RTT: a fixed {} ms stands                  for a torrent's start-up).",
                c.crumb_setup / 1_000_000
            ),
            format!(
                "{} peers ({} sessions{}) joining over the first {} s, {} s of virtual time,                  seed {}. Segments of {} s in {} crumbs (layers {} kbit/s); the channel                  uploads {:.0} kbit/s. The figures count Segments captured after {} s.",
                r.peers,
                r.sessions,
                c.mean_lifetime_s.map_or(String::new(), |l| format!(
                    ", churn with mean lifetime {l} s"
                )),
                c.join_spread / 1_000_000_000 + 2,
                r.seconds,
                r.seed,
                c.segment_duration as f64 / 1e9,
                r.crumbs_per_segment,
                c.layers_kbps
                    .iter()
                    .map(|l| format!("{l:.0}"))
                    .collect::<Vec<_>>()
                    .join(" + "),
                c.super_seed_kbps,
                c.warmup / 1_000_000_000,
            ),
            format!(
                "Overall: continuity {:.3}, completeness {:.3}, delivered {:.0} kbit/s                  ({:.2} of r_max, {:.2} of the bound), super seed share {:.3}.",
                r.continuity,
                r.completeness,
                r.delivered_kbps,
                r.ratio_to_r_max,
                r.ratio_to_bound,
                r.super_seed_share
            ),
        ],
        tables: vec![summary, bounds],
        runs: vec![run],
        extra_plots: extra,
    }
}
