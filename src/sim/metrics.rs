// SPDX-License-Identifier: MPL-2.0
//! What a run measured, with the same names as the real bench.

use serde::Serialize;

/// Per-peer running sums, folded into [`Summary`]s at the end.
#[derive(Clone, Debug, Default)]
pub struct PeerAcc {
    /// Output records counted (after warm-up), skipped ones included.
    pub segments: u64,
    pub successful: u64,
    /// Sum of d / N.
    pub completeness: f64,
    /// Bytes of the output prefixes.
    pub delivered_bytes: u64,
    /// Playback seconds of the Segments counted.
    pub seconds: f64,
    pub latency_sum: f64,
    pub latency_n: u64,
    pub switches: u64,
    pub last_d: Option<u16>,
}

/// Figures for a group of clients (all, or one profile).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    pub clients: usize,
    pub continuity: f64,
    pub completeness: f64,
    pub delivered_kbps: f64,
    pub startup_s: f64,
    pub latency_s: f64,
    pub quality_switches_per_client: f64,
    pub down_kbps: f64,
    pub up_kbps: f64,
    /// Bytes these clients received (pieces taken over and received twice count
    /// twice, as in the bench), and the part of them the super seed sent.
    pub received_bytes: f64,
    pub super_seed_share: f64,
}

/// One client's contribution: its accumulator, startup delay and capacities.
pub struct ClientFigures<'a> {
    pub acc: &'a PeerAcc,
    pub startup_s: Option<f64>,
    pub segment_s: f64,
    pub down_kbps: f64,
    pub up_kbps: f64,
    /// Bytes received, and those of them from the super seed.
    pub received: f64,
    pub from_super_seed: f64,
}

impl Summary {
    /// Means over clients that have at least one counted Segment.
    pub fn of<'a>(clients: impl IntoIterator<Item = ClientFigures<'a>>) -> Summary {
        let mut s = Summary::default();
        let (mut startup, mut startup_n, mut lat, mut lat_n) = (0.0, 0usize, 0.0, 0u64);
        let (mut received, mut from_super_seed) = (0.0, 0.0);
        for c in clients {
            let a = c.acc;
            if a.segments == 0 {
                continue;
            }
            s.clients += 1;
            let n = a.segments as f64;
            s.continuity += a.successful as f64 / n;
            s.completeness += a.completeness / n;
            // Over the counted Segments' own lengths (|G| may have moved them), as the
            // bench counts; the configured length when none was recorded.
            let secs = if a.seconds > 0.0 {
                a.seconds
            } else {
                n * c.segment_s
            };
            s.delivered_kbps += a.delivered_bytes as f64 * 8.0 / 1000.0 / secs;
            s.quality_switches_per_client += a.switches as f64;
            s.down_kbps += c.down_kbps;
            s.up_kbps += c.up_kbps;
            received += c.received;
            from_super_seed += c.from_super_seed;
            if let Some(t) = c.startup_s {
                startup += t;
                startup_n += 1;
            }
            lat += a.latency_sum;
            lat_n += a.latency_n;
        }
        if s.clients > 0 {
            let k = s.clients as f64;
            s.continuity /= k;
            s.completeness /= k;
            s.delivered_kbps /= k;
            s.quality_switches_per_client /= k;
            s.down_kbps /= k;
            s.up_kbps /= k;
        }
        s.received_bytes = received;
        if received > 0.0 {
            s.super_seed_share = from_super_seed / received;
        }
        if startup_n > 0 {
            s.startup_s = startup / startup_n as f64;
        }
        if lat_n > 0 {
            s.latency_s = lat / lat_n as f64;
        }
        s
    }
}

/// One Segment of a traced peer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TracePoint {
    /// Virtual time the peer was done with the Segment, s.
    pub t: f64,
    pub seq: u64,
    /// Crumbs output (0: failed or skipped) and N.
    pub d: u16,
    pub n: u16,
    /// Deadline minus done, s (0 for a failed Segment: it ends at its deadline).
    pub margin_s: f64,
    pub success: bool,
    /// Delivered quality rate: bytes of crumbs 1..=d over |s|, kbit/s.
    pub kbps: f64,
    /// The peer's rate estimate R when done with the Segment, kbit/s (0: none yet).
    pub rate_kbps: f64,
    /// Before the warm-up ended (not counted in the figures).
    pub warmup: bool,
}

/// A traced peer session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TracePeer {
    pub id: u32,
    pub profile: usize,
    pub points: Vec<TracePoint>,
}

/// Time series of a run, for plots; bounded in size (a few peers, 1 s bins).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub peers: Vec<TracePeer>,
    /// The super seed's upload in 1 s bins of virtual time (bin k = [k, k+1) s), kbit/s.
    pub super_upload_kbps: Vec<f64>,
    /// Per profile, counted Segments (all peers, after warm-up) by output d (index d).
    pub d_counts: Vec<Vec<u64>>,
    /// Delivered quality rate of an output of d crumbs (index d), kbit/s.
    pub d_kbps: Vec<f64>,
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SimResult {
    pub peers: usize,
    pub seconds: u64,
    pub seed: u64,
    pub adaptation: String,
    /// Peer sessions (joins, churn replacements included).
    pub sessions: usize,
    pub clients: usize,
    pub continuity: f64,
    pub completeness: f64,
    pub delivered_kbps: f64,
    pub full_quality_kbps: f64,
    /// The fluid bound min(u_s, (u_s + sum u_i) / n) over the peers present at the end.
    pub r_max_kbps: f64,
    pub ratio_to_r_max: f64,
    /// Mean over counted clients of min(r_max, full quality, own download): what each
    /// client could get at best (r_max alone exceeds the full quality rate when peers
    /// upload a lot).
    pub bound_kbps: f64,
    pub ratio_to_bound: f64,
    pub super_seed_share: f64,
    /// Bytes the super seed uploaded per byte it published: how many times each
    /// piece left the channel (flat as the audience grows, if the swarm carries it).
    pub super_seed_per_published_byte: f64,
    pub super_seed_uploaded_bytes: u64,
    pub clients_received_bytes: u64,
    pub startup_s: f64,
    pub latency_s: f64,
    pub quality_switches_per_client: f64,
    pub segments_published: u64,
    /// Segments whose enhancement pieces the super seed uploaded a limited number of
    /// times (`enhancement_copies`, automatic: while its link was busy).
    pub segments_copies_limited: u64,
    /// Crumbs 1 the clients fetched from the super seed alone (weak lines, urgent).
    pub sole_source_crumbs: u64,
    /// Of those, crumbs whose super seed sent nothing in their time: taken over and
    /// opened to peers.
    pub sole_source_opened: u64,
    /// The lowest share of weak lines the channel let fetch crumb 1 from the super
    /// seed alone (`sole_source_share`, `core::sole_source`).
    pub lowest_sole_source_share: f64,
    pub crumbs_per_segment: usize,
    pub reports_accepted: u64,
    pub reports_rejected: u64,
    pub last_rho: Option<f64>,
    pub mean_rho: Option<f64>,
    pub events: u64,
    pub profiles: Vec<(String, Summary)>,
    /// Time series for the report (not in the JSON).
    #[serde(skip)]
    pub trace: Trace,
}

/// The fluid limit on the rate every client can get, r_max = min(u_s, (u_s + sum u_i)
/// / n), kbit/s, for clients with uploads `uploads_kbps` (0 without clients). The
/// simulator and the swarm bench both quote it.
pub fn r_max_kbps(u_s_kbps: f64, uploads_kbps: &[f64]) -> f64 {
    if uploads_kbps.is_empty() {
        return 0.0;
    }
    let sum: f64 = uploads_kbps.iter().sum();
    u_s_kbps.min((u_s_kbps + sum) / uploads_kbps.len() as f64)
}

/// What the clients could get at best, on average: min(r_max, full quality, own
/// download) per client (r_max alone exceeds the full quality rate when peers upload a
/// lot), kbit/s.
pub fn bound_kbps(r_max_kbps: f64, full_quality_kbps: f64, downloads_kbps: &[f64]) -> f64 {
    if downloads_kbps.is_empty() {
        return 0.0;
    }
    downloads_kbps
        .iter()
        .map(|d| r_max_kbps.min(full_quality_kbps).min(*d))
        .sum::<f64>()
        / downloads_kbps.len() as f64
}

/// a / b, 0 when b is not positive.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}
