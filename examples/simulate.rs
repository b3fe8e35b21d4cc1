// SPDX-License-Identifier: MPL-2.0
//! Swarm simulator (issue 5): drives the real Scheduler, Feedback and ClientEngine
//! with simulated links and piece exchange.
//!
//! cargo run --release --example simulate -- --peers N [--seconds S] [--seed K]
//!     [--adaptation paper|rate] [--super-seed-kbps U] [--lifetime-s L]
//!
//! Prints a summary table and writes target/bench/sim.json.

use std::time::Instant;

use gstcrumbs::core::client::Adaptation;
use gstcrumbs::sim::{self, SimConfig};

fn main() {
    let mut config = SimConfig::paper(1000);
    let mut args = std::env::args().skip(1);
    let mut out = std::path::PathBuf::from("target/bench/sim.json");
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--peers" => config.peers = val().parse().expect("--peers N"),
            "--seconds" => config.seconds = val().parse().expect("--seconds S"),
            "--seed" => config.seed = val().parse().expect("--seed K"),
            "--super-seed-kbps" => {
                config.super_seed_kbps = val().parse().expect("--super-seed-kbps U")
            }
            "--lifetime-s" => config.mean_lifetime_s = Some(val().parse().expect("--lifetime-s L")),
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
                     [--super-seed-kbps U] [--lifetime-s L] [--out PATH]"
                );
                return;
            }
            other => panic!("unknown argument {other}"),
        }
    }
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
        "full quality {:.0} kbps, r_max {:.0} kbps, ratio_to_r_max {:.3}, super_seed_share {:.4}, mean rho {}",
        r.full_quality_kbps,
        r.r_max_kbps,
        r.ratio_to_r_max,
        r.super_seed_share,
        r.mean_rho.map_or("-".into(), |x| format!("{x:.3}"))
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
}
