// SPDX-License-Identifier: MPL-2.0
//! The discrete-event loop: events in virtual time (joins, leaves, publishes, engine
//! wake-ups, fluid steps), peers running the real [`ClientEngine`], and the piece
//! exchange as a fluid model.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::core::client::{Action, ClientConfig, ClientEngine};
use crate::core::feedback::Report;
use crate::core::tracker::{Strength, grant_room};

use super::channel::Channel;
use super::config::SimConfig;
use super::metrics::{PeerAcc, Trace, TracePeer, TracePoint};
use super::rng::Rng;
use crate::core::segmenter::Segmenter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Publish,
    Step,
    Join(u32),
    Leave(u32),
    Wake(u32),
}

/// A crumb a peer is fetching.
struct Download {
    seq: u64,
    index: u16,
    /// Pieces held / requested, one bit each.
    have: u64,
    inflight: u64,
    pieces: usize,
    /// No piece is requested before this (torrent start-up).
    ready_at: u64,
    /// The super seed is one of this download's sources (tracker grant or fallback).
    super_seed: bool,
    /// The super seed serves every piece it has a slot for, peers only the rest: it
    /// was the torrent's first peer (a crumb urgent as it was asked for: crumbsrc
    /// starts the torrent with the super seed alone, and librqbit reserves every
    /// piece on the first connection), or it took over from slow peers.
    super_seed_first: bool,
    /// The super seed is the only source (the engine's `alone`: crumbsrc starts the
    /// torrent with the super seed and asks no tracker, `p2p::Fetch::initial_peers_only`).
    super_seed_only: bool,
}

/// One piece on its way from `up` to `down`.
struct Transfer {
    down: u32,
    up: u32,
    seq: u64,
    index: u16,
    piece: u8,
    /// The piece's bytes, and those still to come.
    size: f64,
    remaining: f64,
}

pub struct Peer {
    pub profile: usize,
    pub down: f64,
    pub up: f64,
    /// Upload slots.
    pub slots: u32,
    pub joined_at: u64,
    pub alive: bool,
    pub engine: Option<ClientEngine>,
    downloads: Vec<Download>,
    /// Crumbs prepared ([`Action::Prepare`]) and when: their setup runs from then.
    prepared: HashMap<(u64, u16), u64>,
    wake: Option<u64>,
    pub received: f64,
    pub from_super_seed: f64,
    pub uploaded: f64,
    pub acc: PeerAcc,
    pub startup: Option<u64>,
    /// Runs the engine in relay mode.
    pub relay: bool,
    /// Index in `trace.peers` when this peer's Segments are traced.
    pub traced: Option<usize>,
}

pub struct Swarm {
    pub config: SimConfig,
    pub channel: Channel,
    /// The channel's |G| loop (`SimConfig::gop_loop`): the segmenter's rule, fed the
    /// channel's rho, and how many rhos it has heard.
    gops: Option<(Segmenter, usize)>,
    /// The length of the Segment being captured (published next).
    next_duration: u64,
    pub peers: Vec<Peer>,
    rng: Rng,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    order: u64,
    transfers: Vec<Transfer>,
    /// Active uploads per uploader; the super seed is index `peers.len()`'s slot 0.
    load: Vec<u32>,
    super_load: u32,
    super_slots: u32,
    /// u_s, bytes/s.
    super_up: f64,
    pub super_uploaded: f64,
    /// The lowest `sole_source_share` the channel's window has carried.
    pub lowest_sole_source_share: f64,
    /// Bytes received for nothing: the part of a piece's second copy (a take-over)
    /// that had arrived when the other copy completed it.
    pub duplicate_bytes: f64,
    pub events: u64,
    pub now: u64,
    engine_config: ClientConfig,
    pub trace: Trace,
}

const SUPER: u32 = u32::MAX;

impl Swarm {
    pub fn new(config: SimConfig) -> Self {
        let sizes = config.crumb_sizes();
        let mut channel = Channel::new(
            sizes,
            config.piece_size,
            config.segment_duration,
            config.enhancement_copies,
            config.enhancement_copies_behind,
        );
        // The window's `max_duration`, as svcsegmenter answers it: |Gmax| GOPs.
        channel.set_max_duration(config.gop_loop.as_ref().map(|g| {
            let max = g.segmenter.max_gops.max(g.segmenter.min_gops);
            g.gop.saturating_mul(u64::from(max))
        }));
        let engine_config = ClientConfig {
            adaptation: config.adaptation,
            peer_patience: config.peer_patience,
            playout_delay: config.playout_delay,
            tail_crumb: config.tail_crumb,
            prepare_ahead: config.prepare_ahead,
            // The simulated channel never restarts nor freezes: a peer starved for
            // a while must go on, as its figures assume.
            stall_timeout: None,
            ..Default::default()
        };
        let gops = config
            .gop_loop
            .as_ref()
            .map(|g| (Segmenter::new(g.segmenter.clone()), 0));
        let mut s = Swarm {
            gops,
            next_duration: config.segment_duration,
            rng: Rng::new(config.seed),
            channel,
            peers: Vec::new(),
            queue: BinaryHeap::new(),
            order: 0,
            transfers: Vec::new(),
            load: Vec::new(),
            super_load: 0,
            super_slots: config.slots(config.super_seed_kbps),
            super_up: config.super_seed_kbps * 1000.0 / 8.0,
            super_uploaded: 0.0,
            lowest_sole_source_share: 1.0,
            duplicate_bytes: 0.0,
            events: 0,
            now: 0,
            engine_config,
            trace: Trace::default(),
            config,
        };
        s.next_duration = s.gop_duration().unwrap_or(s.config.segment_duration);
        let dur = s.next_duration;
        s.push(dur, Event::Publish);
        s.push(dur + s.config.step, Event::Step);
        for i in 0..s.config.peers {
            let profile = s.config.profile_of(i);
            let at = dur + (s.rng.unit() * s.config.join_spread as f64) as u64;
            s.add_peer(profile, at);
        }
        if s.config.relays > 0 {
            let fastest = (0..s.config.profiles.len())
                .max_by(|&a, &b| {
                    s.config.profiles[a]
                        .up_kbps
                        .total_cmp(&s.config.profiles[b].up_kbps)
                })
                .unwrap_or(0);
            for _ in 0..s.config.relays {
                let id = s.add_peer(fastest, dur);
                s.peers[id as usize].relay = true;
            }
        }
        s.start_trace();
        s
    }

    /// Picks the traced peers (the first `trace_per_profile` of each profile) and sizes
    /// the per-profile counters.
    fn start_trace(&mut self) {
        let sizes = &self.channel.sizes;
        let seg_s = self.config.segment_duration as f64 / 1e9;
        self.trace.d_kbps = (0..=sizes.len())
            .map(|d| sizes.iter().take(d).sum::<u64>() as f64 * 8.0 / 1000.0 / seg_s)
            .collect();
        self.trace.d_counts = vec![vec![0; sizes.len() + 1]; self.config.profiles.len()];
        let mut per_profile = vec![0usize; self.config.profiles.len()];
        for (id, peer) in self.peers.iter_mut().enumerate() {
            if !peer.relay && per_profile[peer.profile] < self.config.trace_per_profile {
                per_profile[peer.profile] += 1;
                peer.traced = Some(self.trace.peers.len());
                self.trace.peers.push(TracePeer {
                    id: id as u32,
                    profile: peer.profile,
                    points: Vec::new(),
                });
            }
        }
    }

    /// |G| x GOP under the |G| loop.
    fn gop_duration(&self) -> Option<u64> {
        let (segmenter, _) = self.gops.as_ref()?;
        let gop = self.config.gop_loop.as_ref()?.gop;
        Some(u64::from(segmenter.target_gops()) * gop)
    }

    /// Publishes the Segment captured until `t`; under the |G| loop, the rho the
    /// channel computed meanwhile moves the next Segment's |G|, as in svcsegmenter.
    fn publish(&mut self, t: u64) {
        let dur = self.next_duration;
        let sizes = self.config.crumb_sizes_for(dur);
        self.channel.publish(t, dur, &sizes);
        let share = self.channel.engine.sole_source_share();
        self.lowest_sole_source_share = self.lowest_sole_source_share.min(share);
        if let Some((segmenter, heard)) = self.gops.as_mut() {
            for &(_, rho) in &self.channel.rhos[*heard..] {
                segmenter.on_success_ratio(rho);
            }
            *heard = self.channel.rhos.len();
        }
        self.next_duration = self.gop_duration().unwrap_or(self.config.segment_duration);
    }

    fn push(&mut self, at: u64, e: Event) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, e)));
    }

    fn add_peer(&mut self, profile: usize, at: u64) -> u32 {
        let p = &self.config.profiles[profile];
        let id = self.peers.len() as u32;
        self.peers.push(Peer {
            profile,
            down: p.down_kbps * 1000.0 / 8.0,
            up: p.up_kbps * 1000.0 / 8.0,
            slots: self.config.slots(p.up_kbps),
            joined_at: at,
            alive: false,
            engine: None,
            downloads: Vec::new(),
            prepared: HashMap::new(),
            wake: None,
            received: 0.0,
            from_super_seed: 0.0,
            uploaded: 0.0,
            acc: PeerAcc::default(),
            startup: None,
            relay: false,
            traced: None,
        });
        self.load.push(0);
        self.push(at, Event::Join(id));
        id
    }

    /// Runs to the configured end.
    pub fn run(&mut self) {
        let end = self.config.seconds * 1_000_000_000;
        while let Some(Reverse((t, _, e))) = self.queue.pop() {
            if t > end {
                break;
            }
            self.now = t;
            self.events += 1;
            match e {
                Event::Publish => {
                    self.publish(t);
                    self.push(t + self.next_duration, Event::Publish);
                }
                Event::Step => {
                    self.step(t);
                    self.push(t + self.config.step, Event::Step);
                }
                Event::Join(p) => self.join(p, t),
                Event::Leave(p) => self.leave(p, t),
                Event::Wake(p) => {
                    let peer = &mut self.peers[p as usize];
                    if peer.alive && peer.wake == Some(t) {
                        peer.wake = None;
                        if let Some(e) = peer.engine.as_mut() {
                            e.tick(t);
                        }
                        self.drive(p, t);
                    }
                }
            }
        }
        for p in 0..self.peers.len() {
            self.collect_startup(p);
        }
    }

    fn join(&mut self, p: u32, t: u64) {
        let peer = &mut self.peers[p as usize];
        peer.alive = true;
        let config = ClientConfig {
            relay: peer.relay,
            ..self.engine_config.clone()
        };
        let mut engine = ClientEngine::new(config, t);
        engine.set_draw_key(u64::from(p));
        peer.engine = Some(engine);
        if let Some(mean) = self.config.mean_lifetime_s.filter(|_| !peer.relay) {
            let life = (self.rng.exp(mean) * 1e9) as u64;
            self.push(t + life.max(1), Event::Leave(p));
        }
        self.drive(p, t);
    }

    fn leave(&mut self, p: u32, t: u64) {
        self.collect_startup(p as usize);
        let peer = &mut self.peers[p as usize];
        peer.alive = false;
        peer.engine = None;
        peer.prepared.clear();
        peer.downloads.clear();
        let profile = peer.profile;
        self.add_peer(profile, t);
    }

    fn collect_startup(&mut self, p: usize) {
        let peer = &mut self.peers[p];
        if let Some(e) = &peer.engine {
            peer.startup = e.stats().startup_delay;
        }
    }

    /// Carries out the engine's actions until it has none, then schedules its wake-up.
    fn drive(&mut self, p: u32, now: u64) {
        let Some(mut engine) = self.peers[p as usize].engine.take() else {
            return;
        };
        loop {
            let actions = engine.poll_actions(now);
            if actions.is_empty() {
                break;
            }
            for a in actions {
                self.action(p, &mut engine, a, now);
            }
        }
        let peer = &mut self.peers[p as usize];
        if let Some(w) = engine.next_wakeup() {
            let w = w.max(now + 1);
            if peer.wake.is_none_or(|old| w < old || old <= now) {
                peer.wake = Some(w);
                self.push(w, Event::Wake(p));
            }
        }
        self.peers[p as usize].engine = Some(engine);
    }

    fn action(&mut self, p: u32, engine: &mut ClientEngine, a: Action, now: u64) {
        match a {
            Action::FetchWindow => {
                if let Some(w) = self.channel.window.clone() {
                    let _ = engine.on_window(now, &w);
                }
            }
            Action::FetchSegment { seq } => engine.on_segment_unavailable(now, seq),
            Action::Prepare { seq, index } => {
                self.peers[p as usize].prepared.insert((seq, index), now);
            }
            Action::Download { seq, index } => {
                // A prepared crumb's setup (tracker, handshakes) ran from its Prepare.
                let ready_at = self.peers[p as usize]
                    .prepared
                    .remove(&(seq, index))
                    .unwrap_or(now)
                    .saturating_add(self.config.crumb_setup)
                    .max(now);
                if (p as usize) < self.config.feedback_clients {
                    self.channel.announce(p, seq, index, now);
                }
                let fanout = crate::core::tracker::fanout_for(
                    self.config.super_seed_fanout,
                    self.config.first_crumb_fanout,
                    index == 1,
                );
                // As the channel sees the peer: strong when its last counted report's
                // rate is at least the stream's.
                let strength = self
                    .channel
                    .engine
                    .strength(&super::channel::peer_address(p).1);
                let strong = strength == Strength::Strong;
                if let Some(c) = self.channel.crumbs.get_mut(&(seq, index)) {
                    let pieces = c.holders.len().min(64);
                    // The tracker: the first `fanout` downloaders get the super seed (a
                    // weak one's grant leaving a strong one's, `grant_room`), and so does
                    // one that finds no other peer in the list (as `core::tracker`: a peer
                    // that has announced counts, pieces or not).
                    let alone = c.downloaders == 0;
                    c.downloaders += 1;
                    // A relay adds the super seed as a peer itself (crumbsrc does).
                    let relay = self.peers[p as usize].relay;
                    let room = grant_room(
                        fanout as usize,
                        c.granted as usize,
                        c.strong_granted as usize,
                        strength,
                    );
                    let super_seed = relay || fanout == 0 || room || alone;
                    c.granted += u32::from(super_seed);
                    c.strong_granted += u32::from(super_seed && strong);
                    self.peers[p as usize].downloads.push(Download {
                        seq,
                        index,
                        have: 0,
                        inflight: 0,
                        pieces,
                        ready_at,
                        super_seed,
                        super_seed_first: false,
                        super_seed_only: false,
                    });
                }
            }
            Action::ChannelRestarted(_) | Action::Stalled { .. } | Action::Relayed(_) => {}
            Action::Cancel { seq, index } => {
                self.peers[p as usize].prepared.remove(&(seq, index));
                let d = &mut self.peers[p as usize].downloads;
                d.retain(|d| (d.seq, d.index) != (seq, index));
            }
            Action::UseSuperSeed {
                seq,
                index,
                take_over,
                alone,
            } => {
                let d = &mut self.peers[p as usize].downloads;
                if let Some(d) = d.iter_mut().find(|d| (d.seq, d.index) == (seq, index)) {
                    d.super_seed = true;
                    d.super_seed_first = take_over || (d.have | d.inflight) == 0;
                    // Escalated (not alone any more): opened to peers, as crumbsrc
                    // does, unless the model is of the client before it could.
                    d.super_seed_only =
                        alone || (d.super_seed_only && !self.config.open_alone_to_peers);
                }
                if take_over {
                    self.take_over(p, seq, index);
                }
            }
            Action::Output { seq, d, record } => {
                let tail = record.tail.map_or(0, |t| self.tail_bytes(p, seq, t));
                self.record_output(p, seq, d, &record, tail, now);
            }
            Action::Report(r) => {
                if (p as usize) < self.config.feedback_clients {
                    let report = Report {
                        client_id: format!("p{p}"),
                        seq: r.seq,
                        successful: r.successful,
                        complete: r.complete,
                        d: r.d,
                        rate: r.rate,
                        peer_id: Some(crate::core::api::hex(&super::channel::peer_address(p).1)),
                        sole_source: r.sole_source && self.config.sole_source_reports,
                    };
                    self.channel.report(p, report, now);
                }
            }
        }
    }

    /// The bytes of `p`'s tail crumb `index` of Segment `seq` output: its pieces held
    /// from its start (crumbsrc reads the verified ones; whole access units of them,
    /// which the fluid model does not have, are a little less).
    fn tail_bytes(&self, p: u32, seq: u64, index: u16) -> u64 {
        let Some(d) = self.peers[p as usize]
            .downloads
            .iter()
            .find(|d| (d.seq, d.index) == (seq, index))
        else {
            return 0;
        };
        let size = self
            .channel
            .shape(seq)
            .1
            .get(usize::from(index) - 1)
            .copied()
            .unwrap_or(0);
        (u64::from(d.have.trailing_ones()) * self.channel.piece_size).min(size)
    }

    fn record_output(
        &mut self,
        p: u32,
        seq: u64,
        d: u16,
        record: &crate::core::client::SegmentRecord,
        tail: u64,
        now: u64,
    ) {
        let capture = self.channel.capture_start(seq);
        let warmup = capture < self.config.warmup;
        let peer = &self.peers[p as usize];
        if let Some(k) = peer.traced {
            let margin = record.deadline as f64 - record.finished_at as f64;
            self.trace.peers[k].points.push(TracePoint {
                t: now as f64 / 1e9,
                seq,
                d,
                n: record.crumbs_total,
                margin_s: margin / 1e9,
                success: record.successful,
                kbps: self
                    .trace
                    .d_kbps
                    .get(usize::from(d))
                    .copied()
                    .unwrap_or(0.0),
                rate_kbps: record.rate.map_or(0.0, |r| r * 8.0 / 1000.0),
                warmup,
            });
        }
        if warmup {
            return;
        }
        if let Some(c) = self.trace.d_counts[peer.profile].get_mut(usize::from(d)) {
            *c += 1;
        }
        let (duration, sizes) = self.channel.shape(seq);
        let bytes: u64 = sizes.iter().take(usize::from(d)).sum();
        let n = sizes.len().max(1) as f64;
        let acc = &mut self.peers[p as usize].acc;
        acc.segments += 1;
        acc.seconds += duration as f64 / 1e9;
        if record.successful {
            acc.successful += 1;
            acc.latency_sum += now.saturating_sub(capture) as f64 / 1e9;
            acc.latency_n += 1;
            if acc.last_d.is_some_and(|l| l != d) {
                acc.switches += 1;
            }
            acc.last_d = Some(d);
        }
        acc.completeness += f64::from(d) / n;
        acc.delivered_bytes += bytes + tail;
    }

    /// The super seed takes over the pieces of crumb `index` of Segment `seq` that
    /// peers are sending `p` (crumbsrc's urgent connection, the librqbit patch's
    /// `add_urgent_peer`): each is sent again from the super seed while a slot is
    /// free, and the peer's copy goes on until one of the two completes the piece.
    /// Both copies cross `p`'s link and count as received: the bench's clients
    /// count a piece taken over twice too. (`p` cancels the peer's copy and the
    /// librqbit patch honours CANCEL, but only for blocks still queued at the peer;
    /// here every transfer is under way from its start, so it goes on. Stopping it
    /// instead gave 20 peers a super seed share of 0.35 against 0.23 while the
    /// bench's did not move: docs/swarm.md, sixteenth round.)
    fn take_over(&mut self, p: u32, seq: u64, index: u16) {
        self.recount();
        let pinned: Vec<u8> = self
            .transfers
            .iter()
            .filter(|t| t.down == p && (t.seq, t.index) == (seq, index) && t.up != SUPER)
            .map(|t| t.piece)
            .collect();
        let piece_size = self.channel.piece_size;
        let Some(crumb) = self.channel.crumbs.get_mut(&(seq, index)) else {
            return;
        };
        for piece in pinned {
            if self.super_load >= self.super_slots {
                break;
            }
            crumb.super_copies[usize::from(piece)] += 1;
            self.super_load += 1;
            let lo = u64::from(piece) * piece_size;
            let size = (crumb.size.min(lo + piece_size) - lo) as f64;
            self.transfers.push(Transfer {
                down: p,
                up: SUPER,
                seq,
                index,
                piece,
                size,
                remaining: size,
            });
        }
    }

    /// Picks a source for a piece among the super seed and a few sampled holders with a
    /// free upload slot: the one giving the largest share of its upload (least
    /// loaded), if that share is at least `min_source_kbps`.
    fn pick_source(&mut self, p: u32, holders: &[u32], super_seed: bool) -> Option<u32> {
        let min = self.config.min_source_kbps * 1000.0 / 8.0;
        let mut best = None;
        let mut best_share = min;
        if super_seed && self.super_load < self.super_slots {
            let share = self.super_up / f64::from(self.super_load + 1);
            if share >= best_share {
                best = Some(SUPER);
                best_share = share;
            }
        }
        let k = self.config.sample_holders.min(holders.len());
        for _ in 0..k {
            let h = holders[self.rng.below(holders.len())];
            let peer = &self.peers[h as usize];
            let load = self.load[h as usize];
            if h == p || !peer.alive || load >= peer.slots {
                continue;
            }
            let share = peer.up / f64::from(load + 1);
            if share > best_share {
                best = Some(h);
                best_share = share;
            }
        }
        best
    }

    /// One fluid step: the bytes moved over (now - step, now], applied at `now`.
    fn step(&mut self, now: u64) {
        let dt = self.config.step as f64 / 1e9;
        // 1. Drop transfers whose ends left or whose download was cancelled; recount.
        let peers = &self.peers;
        let mut dropped: Vec<(u32, u64, u16, u8)> = Vec::new();
        self.transfers.retain(|t| {
            let down = &peers[t.down as usize];
            let keep = down.alive
                && (t.up == SUPER || peers[t.up as usize].alive)
                && down
                    .downloads
                    .iter()
                    .any(|d| (d.seq, d.index) == (t.seq, t.index));
            if !keep {
                dropped.push((t.down, t.seq, t.index, t.piece));
            }
            keep
        });
        for (p, seq, index, piece) in dropped {
            if let Some(d) = self.peers[p as usize]
                .downloads
                .iter_mut()
                .find(|d| (d.seq, d.index) == (seq, index))
            {
                d.inflight &= !(1u64 << piece);
            }
        }
        self.recount();
        // 3. Fluid sharing: uploaders split equally, downloaders capped.
        let us = self.super_up;
        let mut demand = vec![0.0f64; self.peers.len()];
        let mut rates = Vec::with_capacity(self.transfers.len());
        for t in &self.transfers {
            let r = if t.up == SUPER {
                us / f64::from(self.super_load.max(1))
            } else {
                let u = &self.peers[t.up as usize];
                u.up / f64::from(self.load[t.up as usize].max(1))
            };
            demand[t.down as usize] += r;
            rates.push(r);
        }
        let mut completed: Vec<(u32, u64, u16, u8)> = Vec::new();
        let mut got = vec![false; self.peers.len()];
        let super_before = self.super_uploaded;
        for (t, r) in self.transfers.iter_mut().zip(rates) {
            let down = &mut self.peers[t.down as usize];
            let scale = (down.down / demand[t.down as usize].max(1e-9)).min(1.0);
            let bytes = (r * scale * dt).min(t.remaining);
            t.remaining -= bytes;
            down.received += bytes;
            got[t.down as usize] = true;
            if t.up == SUPER {
                down.from_super_seed += bytes;
                self.super_uploaded += bytes;
            } else {
                self.peers[t.up as usize].uploaded += bytes;
            }
            if t.remaining <= 1e-6 {
                completed.push((t.down, t.seq, t.index, t.piece));
            }
        }
        // A piece taken over completes once: its other copy stops where it is.
        let mut duplicate = 0.0;
        let done: std::collections::HashSet<_> = completed.iter().copied().collect();
        self.transfers.retain(|t| {
            let twice = done.contains(&(t.down, t.seq, t.index, t.piece));
            if twice && t.remaining > 1e-6 {
                duplicate += t.size - t.remaining;
            }
            t.remaining > 1e-6 && !twice
        });
        self.duplicate_bytes += duplicate;
        // The bytes moved over (now - step, now] go to the 1 s bin of that interval.
        let bin = (now.saturating_sub(1) / 1_000_000_000) as usize;
        let bins = &mut self.trace.super_upload_kbps;
        if bins.len() <= bin {
            bins.resize(bin + 1, 0.0);
        }
        bins[bin] += (self.super_uploaded - super_before) * 8.0 / 1000.0;
        self.channel.note_uploaded(now, self.super_uploaded);
        // 4. Pieces and crumbs done; engines learn at the end of the step.
        let at = now;
        let mut crumbs_done: Vec<(u32, u64, u16)> = Vec::new();
        for (p, seq, index, piece) in completed {
            let peer = &mut self.peers[p as usize];
            let Some(d) = peer
                .downloads
                .iter_mut()
                .find(|d| (d.seq, d.index) == (seq, index))
            else {
                continue;
            };
            d.have |= 1u64 << piece;
            d.inflight &= !(1u64 << piece);
            if let Some(c) = self.channel.crumbs.get_mut(&(seq, index)) {
                c.holders[usize::from(piece)].push(p);
            }
            if d.have.count_ones() as usize == d.pieces {
                crumbs_done.push((p, seq, index));
                peer.downloads.retain(|d| (d.seq, d.index) != (seq, index));
            }
        }
        let piece_size = self.channel.piece_size;
        // In crumbsrc's order: progress and completions, then the bytes (a tail
        // crumb's start counts the report after it as the last crumb's bytes).
        for (peer, _) in self.peers.iter_mut().zip(&got).filter(|g| *g.1) {
            if let Some(e) = peer.engine.as_mut() {
                for d in &peer.downloads {
                    let have = u64::from(d.have.count_ones()) * piece_size;
                    e.on_crumb_progress(at, d.seq, d.index, have);
                }
            }
        }
        for (p, seq, index) in crumbs_done {
            if let Some(e) = self.peers[p as usize].engine.as_mut() {
                e.on_crumb_complete(at, seq, index);
            }
        }
        for (peer, _) in self.peers.iter_mut().zip(&got).filter(|g| *g.1) {
            if let Some(e) = peer.engine.as_mut() {
                e.on_bytes_received(at, peer.received as u64);
            }
        }
        for (p, _) in got.iter().enumerate().filter(|g| *g.1) {
            self.drive(p as u32, at);
        }
        self.request(now);
    }

    fn recount(&mut self) {
        self.load.iter_mut().for_each(|l| *l = 0);
        self.super_load = 0;
        for t in &self.transfers {
            if t.up == SUPER {
                self.super_load += 1;
            } else {
                self.load[t.up as usize] += 1;
            }
        }
    }

    /// Requests, sent at `now`: every missing piece not in flight, rarest first.
    fn request(&mut self, now: u64) {
        self.recount();
        for p in 0..self.peers.len() as u32 {
            if !self.peers[p as usize].alive || self.peers[p as usize].downloads.is_empty() {
                continue;
            }
            let mut downloads = std::mem::take(&mut self.peers[p as usize].downloads);
            for d in downloads.iter_mut().filter(|d| d.ready_at <= now) {
                let Some(crumb) = self.channel.crumbs.get(&(d.seq, d.index)) else {
                    continue;
                };
                let mut wanted: Vec<(usize, usize)> = (0..d.pieces)
                    .filter(|&i| (d.have | d.inflight) & (1u64 << i) == 0)
                    .map(|i| (crumb.holders[i].len(), i))
                    .collect();
                if wanted.is_empty() {
                    continue;
                }
                wanted.sort_unstable();
                let size = crumb.size;
                let piece_size = self.channel.piece_size;
                for (_, i) in wanted {
                    let crumb = self
                        .channel
                        .crumbs
                        .get_mut(&(d.seq, d.index))
                        .expect("present");
                    let holders = std::mem::take(&mut crumb.holders[i]);
                    // `enhancement-copies`: an enhancement piece's copies from the
                    // super seed are counted; past the limit only peers serve it.
                    let used_up = crumb.copies.is_some_and(|k| crumb.super_copies[i] >= k);
                    let super_seed = d.super_seed && !used_up;
                    let up =
                        if super_seed && d.super_seed_first && self.super_load < self.super_slots {
                            Some(SUPER)
                        } else if d.super_seed_only {
                            None
                        } else {
                            self.pick_source(p, &holders, super_seed)
                        };
                    let crumb = self
                        .channel
                        .crumbs
                        .get_mut(&(d.seq, d.index))
                        .expect("present");
                    crumb.holders[i] = holders;
                    let Some(up) = up else {
                        continue;
                    };
                    if up == SUPER {
                        crumb.super_copies[i] += 1;
                        self.super_load += 1;
                    } else {
                        self.load[up as usize] += 1;
                    }
                    let lo = i as u64 * piece_size;
                    let bytes = size.min(lo + piece_size) - lo;
                    d.inflight |= 1u64 << i;
                    self.transfers.push(Transfer {
                        down: p,
                        up,
                        seq: d.seq,
                        index: d.index,
                        piece: i as u8,
                        size: bytes as f64,
                        remaining: bytes as f64,
                    });
                }
            }
            self.peers[p as usize].downloads = downloads;
        }
    }
}
