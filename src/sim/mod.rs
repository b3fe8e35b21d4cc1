// SPDX-License-Identifier: MPL-2.0
//! A deterministic discrete-event swarm simulator (issue 5): the real channel engine
//! (ChannelEngine, as crumbsink runs it) and client engine (ClientEngine, also in
//! relay mode) driven in virtual time, with simulated links and a simulated
//! BitTorrent-like piece exchange, so that swarms of thousands of heterogeneous peers,
//! with churn, run in minutes.
//!
//! Model (simplifications against librqbit): pieces of one crumb come from the super
//! seed or any peer holding that piece (no peer lists, choking or handshakes: a fixed
//! `crumb_setup` delay stands for them; the reporting peers announce to the engine's
//! tracker, so that their reports count, but sources are picked by the model); each missing piece is
//! requested at once from the least loaded of the super seed and a few sampled
//! holders, rarest piece first; bandwidth is a fluid model per step (each uploader
//! splits its upload equally over its transfers, each downloader is scaled down to
//! its download capacity; capacity a capped transfer leaves unused is not given to
//! others); window fetches and reports take no time; no packet loss or RTT.

pub mod channel;
pub mod config;
pub mod metrics;
pub mod rng;
pub mod swarm;
#[cfg(test)]
mod tests;

pub use config::{GopLoop, Profile, SimConfig};
pub use metrics::{ClientFigures, SimResult, Summary, Trace, TracePeer, TracePoint};

use crate::core::client::Adaptation;
use swarm::Swarm;

/// Runs a swarm to the end and measures it.
pub fn run(config: SimConfig) -> SimResult {
    let mut swarm = Swarm::new(config);
    swarm.run();
    measure(&swarm)
}

fn measure(s: &Swarm) -> SimResult {
    let c = &s.config;
    let seg_s = c.segment_duration as f64 / 1e9;
    // A counter summed over the peers' engines.
    let engines_sum = |f: fn(&crate::core::client::ClientStats) -> u64| -> u64 {
        s.peers
            .iter()
            .filter_map(|p| p.engine.as_ref())
            .map(|e| f(&e.stats()))
            .sum()
    };
    let figures = |profile: Option<usize>| {
        Summary::of(
            s.peers
                .iter()
                .filter(move |p| !p.relay && profile.is_none_or(|k| p.profile == k))
                .map(|p| ClientFigures {
                    acc: &p.acc,
                    startup_s: p.startup.map(|t| t as f64 / 1e9),
                    segment_s: seg_s,
                    down_kbps: p.down * 8.0 / 1000.0,
                    up_kbps: p.up * 8.0 / 1000.0,
                    received: p.received,
                    from_super_seed: p.from_super_seed,
                }),
        )
    };
    let all = figures(None);
    // r_max for the population present at the end (constant with churn).
    let uploads: Vec<f64> = s
        .peers
        .iter()
        .filter(|p| p.alive)
        .map(|p| p.up * 8.0 / 1000.0)
        .collect();
    let r_max = metrics::r_max_kbps(c.super_seed_kbps, &uploads);
    let received: f64 = s.peers.iter().map(|p| p.received).sum();
    let full: u64 = s.channel.sizes.iter().sum();
    let full_kbps = full as f64 * 8.0 / 1000.0 / seg_s;
    let downloads: Vec<f64> = s
        .peers
        .iter()
        .filter(|p| p.acc.segments > 0)
        .map(|p| p.down * 8.0 / 1000.0)
        .collect();
    let bound = metrics::bound_kbps(r_max, full_kbps, &downloads);
    let rhos = &s.channel.rhos;
    SimResult {
        peers: c.peers,
        seconds: c.seconds,
        seed: c.seed,
        adaptation: match c.adaptation {
            Adaptation::Paper => "paper".into(),
            Adaptation::RateBased => "rate".into(),
        },
        sessions: s.peers.len(),
        clients: all.clients,
        continuity: all.continuity,
        completeness: all.completeness,
        delivered_kbps: all.delivered_kbps,
        full_quality_kbps: full_kbps,
        r_max_kbps: r_max,
        ratio_to_r_max: metrics::ratio(all.delivered_kbps, r_max),
        bound_kbps: bound,
        ratio_to_bound: metrics::ratio(all.delivered_kbps, bound),
        super_seed_share: if received > 0.0 {
            s.super_uploaded / received
        } else {
            0.0
        },
        super_seed_per_published_byte: metrics::ratio(
            s.super_uploaded,
            (s.channel.published * full) as f64,
        ),
        super_seed_uploaded_bytes: s.super_uploaded as u64,
        clients_received_bytes: received as u64,
        startup_s: all.startup_s,
        latency_s: all.latency_s,
        quality_switches_per_client: all.quality_switches_per_client,
        segments_published: s.channel.published,
        // The engine counts them (crumbsink's `segments-copies-limited`); the counter
        // does not depend on the time asked.
        segments_copies_limited: s
            .channel
            .engine
            .stats(c.seconds.saturating_mul(config::SEC))
            .segments_copies_limited,
        sole_source_crumbs: engines_sum(|e| e.sole_source_crumbs),
        sole_source_opened: engines_sum(|e| e.sole_source_opened),
        lowest_sole_source_share: s.lowest_sole_source_share,
        crumbs_per_segment: s.channel.sizes.len(),
        reports_accepted: s.channel.reports_accepted,
        reports_rejected: s.channel.reports_rejected,
        last_rho: rhos.last().map(|r| r.1),
        mean_rho: (!rhos.is_empty())
            .then(|| rhos.iter().map(|r| r.1).sum::<f64>() / rhos.len() as f64),
        events: s.events,
        profiles: c
            .profiles
            .iter()
            .enumerate()
            .map(|(k, p)| (p.name.clone(), figures(Some(k))))
            .collect(),
        trace: s.trace.clone(),
    }
}
