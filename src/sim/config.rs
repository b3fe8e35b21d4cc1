// SPDX-License-Identifier: MPL-2.0
//! Settings of a simulated swarm: the channel's layer ladder, the peers' profiles.

use crate::core::client::Adaptation;
use crate::core::seed_load::EnhancementCopies;

pub use crate::core::time::{MS, SEC};

/// One class of peer link, capacities in kbit/s.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: String,
    pub down_kbps: f64,
    pub up_kbps: f64,
    /// Relative share of peers with this profile.
    pub weight: f64,
}

impl Profile {
    pub fn new(name: &str, down_kbps: f64, up_kbps: f64, weight: f64) -> Self {
        Profile {
            name: name.to_owned(),
            down_kbps,
            up_kbps,
            weight,
        }
    }
}

/// Everything a run depends on (with the seed, the run is a pure function of it).
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub peers: usize,
    /// Virtual seconds simulated.
    pub seconds: u64,
    pub seed: u64,
    pub adaptation: Adaptation,
    /// |s|, ns (every Segment's, unless `gop_loop` moves it).
    pub segment_duration: u64,
    /// The channel's |G| loop, as svcsegmenter runs it: Segments of whole GOPs of
    /// `gop` ns, |G| moved by one GOP per rho (`core::segmenter`). `None`: every
    /// Segment is `segment_duration` long.
    pub gop_loop: Option<GopLoop>,
    /// Layer rates of the ladder, kbit/s, base first; each layer is cut in crumbs of
    /// at most `max_crumb` bytes.
    pub layers_kbps: Vec<f64>,
    pub max_crumb: u64,
    pub piece_size: u64,
    /// u_s, the super seed's upload, kbit/s.
    pub super_seed_kbps: f64,
    pub profiles: Vec<Profile>,
    /// Peer i gets profile `profile_order[i % len]` instead of the weights' mix: a
    /// run beside the swarm bench gives each simulated peer its bench client's link
    /// (the weighted mix of ten peers over ten equal profiles gave one cable client
    /// and four DSL ones for the bench's two and three).
    pub profile_order: Option<Vec<usize>>,
    /// Peers join uniformly over [0, join_spread] after the first Segment.
    pub join_spread: u64,
    /// Mean lifetime (s) of a peer; when set, a leaving peer is replaced by a fresh one
    /// of the same profile (constant population, churn). `None`: no churn.
    pub mean_lifetime_s: Option<f64>,
    /// Fluid model step, ns.
    pub step: u64,
    /// Delay between a Download action and the first piece request (tracker announce,
    /// handshakes), ns.
    pub crumb_setup: u64,
    /// Upload slots (unchoked transfers at once) per `slot_kbps` of upload, at least 1,
    /// at most `max_slots`, for peers and super seed alike.
    pub slot_kbps: f64,
    pub max_slots: u32,
    /// A source is not asked for a piece unless its share would be at least this.
    pub min_source_kbps: f64,
    /// Initial seeding, as crumbsink's `super-seed-fanout`: the first this many
    /// downloaders of a crumb may fetch from the super seed; the others only after
    /// their engine asks for it ([`crate::core::client::Action::UseSuperSeed`]).
    /// 0 = every downloader.
    pub super_seed_fanout: u32,
    /// As crumbsink's `first-crumb-fanout`: the same for crumb 1 (None = as
    /// `super_seed_fanout`).
    pub first_crumb_fanout: Option<u32>,
    /// As crumbsink's `enhancement-copies`: the super seed serves each piece of an
    /// enhancement crumb (index 2..) to at most this many downloads; no limit by
    /// default, as crumbsink. Automatic (one copy while the super seed's link is
    /// busy, `core::seed_load`, here fed the simulated upload every 250 ms) runs, but
    /// the fluid model shares the super seed's link between its transfers smoothly,
    /// without the bench's burst after each publication, so the rule saw a 16 Mbit/s
    /// channel busy in 25 of 30 Segments where the bench's never is (a model gap,
    /// docs/swarm.md, eighteenth round).
    pub enhancement_copies: EnhancementCopies,
    /// As crumbsink's `enhancement-copies-behind`: once a newer Segment is out, the
    /// super seed serves each enhancement piece at most this many times in all (the
    /// copies at the live edge count). Two by default, as crumbsink. None: no limit.
    pub enhancement_copies_behind: Option<u32>,
    /// The clients' tail crumb (crumbsrc's `tail-crumb`, on by default there too):
    /// a crumb beyond D at the live edge, its pieces from the start counted as output.
    pub tail_crumb: bool,
    /// The clients' crumbs prepared ahead of their turn (crumbsrc's
    /// `prepared-crumbs`): their setup ([`SimConfig::crumb_setup`]) runs from then.
    pub prepare_ahead: u16,
    /// The engine's peer patience before it asks for the super seed, ns (None:
    /// never), as crumbsrc's `peer-patience`.
    pub peer_patience: Option<u64>,
    /// The player's delay between output and play-out, ns, as crumbsrc's `latency`
    /// (default: its default, the channel's longest Segment): the deadlines follow
    /// the player's timeline.
    pub playout_delay: u64,
    /// Holders sampled (besides the super seed) when picking a piece's source.
    pub sample_holders: usize,
    /// Only the first this many peers announce to the channel's tracker and post
    /// reports (to bound the run's time: 10,000 of them take about twice as long as
    /// 1,000).
    pub feedback_clients: usize,
    /// Reports say whether their crumb 1 came from the super seed alone, as crumbsrc's
    /// do, so that the channel's `sole_source_share` follows how such Segments fare
    /// (`core::sole_source`). false: the channel never hears of it and every weak line
    /// may go alone (the build before the share, for comparison).
    pub sole_source_reports: bool,
    /// A crumb 1 fetched from the super seed alone is opened to peers when the engine
    /// takes it over (crumbsrc's `P2pSession::open_to_trackers`). false: it keeps the
    /// super seed as its one source (crumbsrc before that, for comparison).
    pub open_alone_to_peers: bool,
    /// Metrics ignore Segments begun before this (ns of virtual time).
    pub warmup: u64,
    /// Relays (crumbsrc `mode=relay`) besides `peers`, on the profile with the largest
    /// upload: each fetches every crumb (the super seed is one of its sources from the
    /// start) and seeds it to the peers; they play nothing, stay to the end, and are
    /// left out of the clients' figures.
    pub relays: usize,
    /// Peers per profile whose every Segment is traced (the first ones of each
    /// profile to be created), for the report's time series.
    pub trace_per_profile: usize,
}

impl SimConfig {
    /// The paper's setting: base 128, enh1 512, enh2 2048 kbit/s, 2 s Segments,
    /// crumbs <= 64 KiB, 16 KiB pieces, four access profiles in equal shares.
    pub fn paper(peers: usize) -> Self {
        SimConfig {
            peers,
            seconds: 120,
            seed: 1,
            adaptation: Adaptation::RateBased,
            segment_duration: 2 * SEC,
            gop_loop: None,
            layers_kbps: vec![128.0, 512.0, 2048.0],
            max_crumb: 64 * 1024,
            piece_size: 16 * 1024,
            super_seed_kbps: 10_000.0,
            profiles: vec![
                Profile::new("adsl-256/64", 256.0, 64.0, 1.0),
                Profile::new("dsl-600", 600.0, 600.0, 1.0),
                Profile::new("cable-3M", 3_000.0, 3_000.0, 1.0),
                Profile::new("fibre-20M", 20_000.0, 20_000.0, 1.0),
            ],
            profile_order: None,
            join_spread: 20 * SEC,
            mean_lifetime_s: None,
            step: 50 * MS,
            crumb_setup: 100 * MS,
            slot_kbps: 512.0,
            max_slots: 32,
            min_source_kbps: 128.0,
            super_seed_fanout: 1,
            first_crumb_fanout: None,
            enhancement_copies: EnhancementCopies::Unlimited,
            enhancement_copies_behind: Some(2),
            tail_crumb: true,
            prepare_ahead: crate::core::client::DEFAULT_PREPARE_AHEAD,
            peer_patience: Some(crate::core::client::DEFAULT_PEER_PATIENCE),
            playout_delay: crate::core::client::PLAYOUT_DELAY_AUTO,
            sample_holders: 8,
            feedback_clients: 1000,
            sole_source_reports: true,
            open_alone_to_peers: true,
            warmup: 30 * SEC,
            trace_per_profile: 2,
            relays: 0,
        }
    }

    /// The profile of peer `i`: `profile_order`'s when given, else in proportion to
    /// the weights, interleaved by a golden-ratio sequence (deterministic, and any
    /// prefix of the peers is a fair mix).
    pub fn profile_of(&self, i: usize) -> usize {
        let last = self.profiles.len().saturating_sub(1);
        if let Some(order) = self.profile_order.as_ref().filter(|o| !o.is_empty()) {
            return order[i % order.len()].min(last);
        }
        let weights: f64 = self.profiles.iter().map(|p| p.weight).sum();
        let x = ((i as f64 * 0.618_033_988_749_895 + 0.5) % 1.0) * weights;
        let mut acc = 0.0;
        self.profiles
            .iter()
            .position(|p| {
                acc += p.weight;
                x < acc
            })
            .unwrap_or(last)
    }

    /// Upload slots of a link of `up_kbps`.
    pub fn slots(&self, up_kbps: f64) -> u32 {
        ((up_kbps / self.slot_kbps.max(1e-9)).round() as u32).clamp(1, self.max_slots.max(1))
    }

    /// Crumb sizes of one Segment of `segment_duration`.
    pub fn crumb_sizes(&self) -> Vec<u64> {
        self.crumb_sizes_for(self.segment_duration)
    }

    /// Crumb sizes of one Segment of `duration` ns: each layer's bytes cut in equal
    /// crumbs of at most `max_crumb` bytes.
    pub fn crumb_sizes_for(&self, duration: u64) -> Vec<u64> {
        let secs = duration as f64 / 1e9;
        let mut sizes = Vec::new();
        for kbps in &self.layers_kbps {
            let bytes = (kbps * 1000.0 / 8.0 * secs).round() as u64;
            let n = bytes.div_ceil(self.max_crumb.max(1)).max(1);
            for i in 0..n {
                let lo = bytes * i / n;
                let hi = bytes * (i + 1) / n;
                sizes.push((hi - lo).max(1));
            }
        }
        sizes
    }
}

/// The channel's |G| loop in the simulator (see [`SimConfig::gop_loop`]).
#[derive(Clone, Debug)]
pub struct GopLoop {
    /// One GOP, ns.
    pub gop: u64,
    /// |G| at start, its bounds and the success threshold, as svcsegmenter's.
    pub segmenter: crate::core::segmenter::SegmenterConfig,
}
