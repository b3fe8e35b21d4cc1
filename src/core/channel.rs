// SPDX-License-Identifier: MPL-2.0
//! The channel's engine, sans-IO: the window ([`Scheduler`]), the feedback and rho
//! ([`Feedback`]), the tracker ([`Tracker`]), the .torrent files served and the
//! channel's statistics, driven by inputs and an injected clock (`now`, ns from any
//! origin the caller keeps). crumbsink (`crate::channel`) and the simulator
//! (`crate::sim`) both drive it: a Segment published, a report, an announce and time
//! passing go in; window documents, rho, tracker answers and expiries come out.
//!
//! IO stays with the caller: writing crumb files, seeding them (the super seed),
//! sockets. The order of a publish is: [`ChannelEngine::prepare`] the crumbs' info
//! hashes (so the super seed's first announce is answered), seed them, then
//! [`ChannelEngine::publish`] the Segment (or [`ChannelEngine::abandon`] it), and stop
//! seeding what it says expired.
//!
//! Feedback counts only the audience: a report is counted when its client is a peer
//! the channel knows, i.e. the report names a peer id (`peer_id`) that announced to
//! this tracker from the report's own IP address within the tracker's peer TTL; and
//! every address weighs one vote in rho (see [`super::feedback`]). What an attacker
//! can still do is said in docs/http-api.md ("Reports").

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use super::api::{
    self, ClientDoc, DCountDoc, ReportDoc, SegmentDoc, SegmentSampleDoc, StatsDoc, StatusDoc,
    WindowDoc,
};
use super::feedback::{Feedback, FeedbackConfig, FeedbackError, Voter};
use super::scheduler::{Expired, PublishedSegment, ScheduleError, Scheduler, SchedulerConfig};
use super::seed_load::{EnhancementCopies, SeedLoad};
use super::sole_source::SoleSourceGate;
use super::tracker::{AnnounceRequest, Event, Strength, Tracker, TrackerConfig, TrackerError};

/// Settings of a channel engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEngineConfig {
    /// The channel's name (the URL path segment; it names the .torrent paths).
    pub name: String,
    pub scheduler: SchedulerConfig,
    pub feedback: FeedbackConfig,
    pub tracker: TrackerConfig,
    /// Peers remembered at most as the channel's audience; beyond it, new peers'
    /// reports are not counted until older ones expire. Bounds memory against
    /// announce floods with made-up peer ids.
    pub max_audience: usize,
    /// This run of the channel (`WindowDoc::epoch`, see `api::channel_epoch`): a
    /// client that sees it change knows the channel restarted.
    pub epoch: Option<u64>,
    /// Copies of each enhancement piece the super seed uploads (crumbsink's
    /// `enhancement-copies`, no limit by default); [`EnhancementCopies::Auto`] limits
    /// them to one while the super seed's link is busy ([`SeedLoad`]).
    pub enhancement_copies: EnhancementCopies,
}

impl Default for ChannelEngineConfig {
    fn default() -> Self {
        ChannelEngineConfig {
            name: "live".into(),
            scheduler: SchedulerConfig::default(),
            feedback: FeedbackConfig::default(),
            tracker: TrackerConfig::default(),
            max_audience: 100_000,
            epoch: None,
            enhancement_copies: EnhancementCopies::Unlimited,
        }
    }
}

/// Why a report was not counted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    /// No `peer_id`, or one that did not announce to this tracker from the report's
    /// address (lately): not the channel's audience.
    #[error(
        "client '{0}' is not a peer of this channel (a report counts only with the peer_id its BitTorrent session announced to this tracker from the same address)"
    )]
    NotAPeer(String),
    #[error(transparent)]
    Invalid(#[from] FeedbackError),
}

/// What publishing a Segment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub seq: u64,
    /// Segments that left the live window, oldest first: stop seeding those with
    /// [`Expired::delete_data`] and delete their files (the engine already forgot
    /// their torrents).
    pub expired: Vec<Expired>,
    /// The live window after the publish, (oldest, newest).
    pub window: (u64, u64),
}

/// A crumb of a Segment being published: its .torrent file, served as
/// `/<channel>/torrents/<seq>/<index>.torrent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentFile {
    pub index: u16,
    pub bytes: Vec<u8>,
}

/// Per-Segment samples the status page's history keeps (about 4 minutes of 2 s
/// Segments): a bounded ring, the oldest dropped first.
pub const STATUS_HISTORY: usize = 120;

/// Reporting clients the status page lists at most; beyond it the one that reported
/// longest ago is forgotten (made-up client ids cannot grow memory).
pub const STATUS_CLIENTS: usize = 256;

/// Segments the stream's published rate is taken over ([`ChannelEngine::stream_rate`]).
const STREAM_RATE_SEGMENTS: usize = 4;

/// One Segment's sample in the status history.
#[derive(Clone, Debug)]
struct Sample {
    doc: SegmentSampleDoc,
    /// The super seed's upload total when the Segment was published.
    uploaded: Option<u64>,
    /// Counted reports by D.
    d_counts: BTreeMap<u16, u32>,
}

/// A reporting client's last report, where from and when.
#[derive(Clone, Debug)]
struct LastReport {
    report: ReportDoc,
    ip: IpAddr,
    at: u64,
}

/// A peer of the audience: where it announced from, when last, and the download rate
/// its last counted report gave (bytes/s).
#[derive(Clone, Copy, Debug)]
struct Member {
    ip: IpAddr,
    last_seen: u64,
    rate: Option<f64>,
}

/// The channel, without its IO.
#[derive(Debug)]
pub struct ChannelEngine {
    config: ChannelEngineConfig,
    scheduler: Scheduler,
    feedback: Feedback,
    tracker: Tracker,
    /// .torrent bytes by (seq, index) for every Segment still served.
    torrents: HashMap<(u64, u16), Vec<u8>>,
    caps: Option<String>,
    /// The audio's caps, from crumb 1 of the newest Segment that carried audio.
    audio_caps: Option<String>,
    tracker_url: String,
    super_seed: Option<String>,
    /// Peer ids that announced lately, and from where.
    audience: HashMap<[u8; 20], Member>,
    /// When the audience was last swept of expired members.
    audience_swept: u64,
    stats: StatsDoc,
    /// How busy the super seed's link is (fed by [`ChannelEngine::note_uploaded`]).
    seed_load: SeedLoad,
    /// The share of weak lines' urgent crumbs 1 the super seed serves alone
    /// (judged on the reports, see `core::sole_source`).
    sole_source: SoleSourceGate,
    /// The super seed's peer id (not a viewer).
    super_seed_id: Option<[u8; 20]>,
    /// The status page's per-Segment history, oldest first.
    history: VecDeque<Sample>,
    /// The status page's clients by client id.
    last_reports: HashMap<String, LastReport>,
    /// The longest a Segment can be as the segmenter says (ns), when it said.
    max_duration: Option<u64>,
}

impl ChannelEngine {
    pub fn new(config: ChannelEngineConfig) -> Self {
        ChannelEngine {
            scheduler: Scheduler::new(config.scheduler.clone()),
            feedback: Feedback::new(config.feedback.clone()),
            tracker: Tracker::new(config.tracker.clone()),
            torrents: HashMap::new(),
            caps: None,
            audio_caps: None,
            tracker_url: String::new(),
            super_seed: None,
            audience: HashMap::new(),
            audience_swept: 0,
            super_seed_id: None,
            history: VecDeque::new(),
            last_reports: HashMap::new(),
            max_duration: None,
            seed_load: SeedLoad::new(),
            sole_source: SoleSourceGate::new(),
            stats: StatsDoc {
                channel: config.name.clone(),
                ..Default::default()
            },
            config,
        }
    }

    pub fn config(&self) -> &ChannelEngineConfig {
        &self.config
    }

    /// The tracker URL the window names (the announce URL of every .torrent).
    pub fn set_tracker_url(&mut self, url: String) {
        self.tracker_url = url;
    }

    pub fn tracker_url(&self) -> &str {
        &self.tracker_url
    }

    /// The super seed: the address peers dial (the window names it) and its peer id;
    /// the tracker hands it out as `super_seed_fanout` says.
    pub fn set_super_seed(&mut self, addr: SocketAddr, peer_id: [u8; 20]) {
        self.tracker.set_super_seed(addr, peer_id);
        self.super_seed_id = Some(peer_id);
        self.super_seed = Some(addr.to_string());
    }

    /// Starts tracking the crumbs of a Segment about to be seeded: the super seed
    /// announces them as soon as it seeds them. The first is the Segment's crumb 1.
    pub fn prepare(&mut self, info_hashes: &[[u8; 20]]) {
        for (i, h) in info_hashes.iter().enumerate() {
            if i == 0 {
                self.tracker.register_first_crumb(*h);
            } else {
                self.tracker.register(*h);
            }
        }
    }

    /// Forgets the crumbs of a Segment whose publishing failed after `prepare`.
    pub fn abandon(&mut self, info_hashes: &[[u8; 20]]) {
        for h in info_hashes {
            self.tracker.remove_torrent(h);
        }
    }

    /// Segment `segment` enters the window at `now` with its .torrent files; `caps`
    /// and `audio_caps` (when the crumbs carried them) become the window's caps. The Segments that
    /// leave the window are forgotten here (tracker, .torrent files) unless archived;
    /// the caller stops seeding them.
    pub fn publish(
        &mut self,
        now: u64,
        segment: PublishedSegment,
        torrents: Vec<TorrentFile>,
        caps: Option<String>,
        audio_caps: Option<String>,
    ) -> Result<Published, ScheduleError> {
        let seq = segment.seq;
        let hashes: Vec<[u8; 20]> = segment.crumbs.iter().map(|c| c.info_hash).collect();
        let crumbs = segment.crumbs.len() as u64;
        let bytes: u64 = segment.crumbs.iter().map(|c| c.size).sum();
        self.prepare(&hashes);
        let expired = self.scheduler.publish(segment, now)?;
        self.sole_source.on_segment();
        // Peers of crumbs nobody announces any more (archived ones) go too.
        self.tracker.purge(now);
        for t in torrents {
            self.torrents.insert((seq, t.index), t.bytes);
        }
        if caps.is_some() {
            self.caps = caps;
        }
        if audio_caps.is_some() {
            self.audio_caps = audio_caps;
        }
        self.stats.segments_published += 1;
        if self.history.len() >= STATUS_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Sample {
            doc: SegmentSampleDoc {
                seq,
                published_ms: now / 1_000_000,
                duration: self.scheduler.get(seq).map_or(0, |e| e.duration),
                crumbs: crumbs as u16,
                bytes,
                ..Default::default()
            },
            uploaded: None,
            d_counts: BTreeMap::new(),
        });
        self.stats.crumbs_published += crumbs;
        self.stats.bytes_published += bytes;
        for e in &expired {
            self.stats.segments_expired += 1;
            if !e.delete_data() {
                continue; // archived: still seeded, still tracked, still served
            }
            for c in &e.crumbs {
                self.tracker.remove_torrent(&c.info_hash);
                self.torrents.remove(&(e.seq, c.index));
            }
        }
        let window = self
            .scheduler
            .live_range()
            .map(|r| (*r.start(), *r.end()))
            .unwrap_or((seq, seq));
        Ok(Published {
            seq,
            expired,
            window,
        })
    }

    /// rho of the newest Segment whose feedback deadline passed, once per Segment
    /// (what the channel sends upstream to svcsegmenter, which moves |G|).
    pub fn poll_rho(&mut self, now: u64) -> Option<(u64, f64)> {
        let due = self.feedback.rho_due(now, &self.scheduler);
        if let Some((seq, rho)) = due {
            self.stats.last_rho = Some(rho);
            self.stats.last_rho_seq = Some(seq);
            if let Some(s) = self.sample_mut(seq) {
                s.doc.rho = Some(rho);
            }
        }
        due
    }

    /// When the next rho may be due: the feedback deadline of the newest Segment,
    /// if it has not passed yet and no rho was emitted for it.
    pub fn next_wakeup(&self) -> Option<u64> {
        let latest = self.scheduler.latest()?;
        if self
            .feedback
            .last_rho()
            .is_some_and(|(s, _)| s >= latest.seq)
        {
            return None;
        }
        Some(latest.deadline(self.scheduler.config().feedback_grace))
    }

    /// A client's report, sent from `source`. Counted only from a peer the channel
    /// knows (see the module documentation).
    pub fn on_report(
        &mut self,
        now: u64,
        source: IpAddr,
        report: ReportDoc,
    ) -> Result<(), ReportError> {
        // A malformed report is refused for what it is, whoever sent it.
        if let Err(e) = self.feedback.validate(&report, &self.scheduler) {
            self.stats.reports_rejected += 1;
            return Err(e.into());
        }
        let ttl = self.config.tracker.peer_ttl_ns;
        let member = report
            .peer_id
            .as_deref()
            .and_then(api::parse_info_hash)
            .and_then(|id| self.audience.get_mut(&id))
            .filter(|m| m.ip == source.to_canonical() && now.saturating_sub(m.last_seen) < ttl);
        let known = member.is_some();
        // Its rate tells initial seeding whether the peer is strong (`strength`).
        if let Some(m) = member
            && report.rate.is_finite()
        {
            m.rate = Some(report.rate.max(0.0));
        }
        let result = if known {
            let kept = report.clone();
            self.feedback
                .record(report, Voter::new(source), now, &self.scheduler)
                .map_err(ReportError::from)
                .inspect(|()| self.note_report(now, source, kept))
        } else {
            Err(ReportError::NotAPeer(report.client_id))
        };
        match result {
            Ok(()) => self.stats.reports_accepted += 1,
            Err(_) => self.stats.reports_rejected += 1,
        }
        result
    }

    /// A report body that is not a report document at all.
    pub fn on_malformed_report(&mut self) {
        self.stats.reports_rejected += 1;
    }

    /// An announce (`GET /announce?<query>`) from `source`: the bencoded
    /// body to answer with status 200 (a failure body on error).
    /// A BEP 48 scrape from its raw query string: always a body (see
    /// [`Tracker::scrape`]).
    pub fn on_scrape(&self, now: u64, query: &str) -> Vec<u8> {
        self.tracker.scrape(query, now)
    }

    pub fn on_announce(&mut self, now: u64, query: &str, source: SocketAddr) -> Vec<u8> {
        self.stats.announces += 1;
        AnnounceRequest::parse(query)
            .and_then(|req| self.announce(now, &req, source))
            .unwrap_or_else(|e| e.body())
    }

    /// An announce already parsed (the simulator's peers).
    pub fn announce(
        &mut self,
        now: u64,
        req: &AnnounceRequest,
        source: SocketAddr,
    ) -> Result<Vec<u8>, TrackerError> {
        let strength = self.strength(&req.peer_id);
        let body = self.tracker.announce_from(req, source, now, strength)?;
        self.learn_peer(now, req, source.ip().to_canonical());
        Ok(body)
    }

    /// Remembers the peer of an answered announce as audience (by the address it
    /// announced from, not the `ip=` it asks to be dialled at).
    fn learn_peer(&mut self, now: u64, req: &AnnounceRequest, ip: IpAddr) {
        let ttl = self.config.tracker.peer_ttl_ns;
        if req.event == Event::Stopped {
            self.audience.remove(&req.peer_id);
            return;
        }
        if now.saturating_sub(self.audience_swept) >= ttl {
            self.audience
                .retain(|_, m| now.saturating_sub(m.last_seen) < ttl);
            self.audience_swept = now;
        }
        if self.audience.len() < self.config.max_audience
            || self.audience.contains_key(&req.peer_id)
        {
            let m = self.audience.entry(req.peer_id).or_insert(Member {
                ip,
                last_seen: now,
                rate: None,
            });
            if m.ip != ip {
                m.rate = None; // another line under the same id: nothing known of it
            }
            m.ip = ip;
            m.last_seen = now;
        }
    }

    /// A peer is strong for initial seeding ([`Tracker::announce_from`]) when its
    /// last counted report's rate is at least the stream's published rate: it can
    /// take every crumb, and pass it on, faster than the stream comes.
    pub fn strength(&self, peer_id: &[u8; 20]) -> Strength {
        let rate = self.audience.get(peer_id).and_then(|m| m.rate);
        match (rate, self.stream_rate()) {
            (Some(r), Some(stream)) if r >= stream => Strength::Strong,
            _ => Strength::Weak,
        }
    }

    /// Bytes per second the newest Segments published (up to [`STREAM_RATE_SEGMENTS`]
    /// of them), if any had a duration.
    pub fn stream_rate(&self) -> Option<f64> {
        let (bytes, ns) = self
            .history
            .iter()
            .rev()
            .filter(|s| s.doc.duration > 0)
            .take(STREAM_RATE_SEGMENTS)
            .fold((0u64, 0u64), |(b, d), s| {
                (b + s.doc.bytes, d + s.doc.duration)
            });
        (ns > 0).then(|| bytes as f64 * 1e9 / ns as f64)
    }

    /// The longest a Segment can be, ns, as the segmenter says (svcsegmenter answers
    /// crumbsink's `crumbs-segment-limits` query); `None` when nobody said.
    pub fn set_max_duration(&mut self, max: Option<u64>) {
        self.max_duration = max;
    }

    /// The window's `max_duration`: the segmenter's word, or longer when a Segment in
    /// the window is (a GOP that outgrew the ones before); without the segmenter's
    /// word, the longest Segment in the window.
    pub fn max_duration(&self) -> Option<u64> {
        let longest = self.scheduler.window().iter().map(|e| e.duration).max();
        self.max_duration.max(longest).filter(|d| *d > 0)
    }

    /// The window at `now`; with `after`, only the Segments newer than it are listed
    /// (a client polling every second need not download the whole window each time:
    /// on a 256 kbit/s link that was a fifth of the line).
    pub fn window_doc(&self, now: u64, after: Option<u64>) -> WindowDoc {
        let name = &self.config.name;
        WindowDoc {
            version: api::API_VERSION,
            channel: name.clone(),
            epoch: self.config.epoch,
            caps: self.caps.clone(),
            audio_caps: self.audio_caps.clone(),
            latest: self.scheduler.latest().map(|e| e.seq),
            start_index: self.scheduler.start_index(),
            window_size: self.scheduler.config().window,
            archive: self.scheduler.config().archive,
            tracker: self.tracker_url.clone(),
            super_seed: self.super_seed.clone(),
            oldest: self.scheduler.window().first().map(|e| e.seq),
            max_duration: self.max_duration(),
            sole_source_share: Some(self.sole_source_share()),
            segments: self
                .scheduler
                .window()
                .iter()
                .filter(|e| after.is_none_or(|a| e.seq > a))
                .map(|e| e.to_doc(name, now))
                .collect(),
        }
    }

    /// One Segment (live, or archived when `archive` is on).
    pub fn segment_doc(&self, now: u64, seq: u64) -> Option<SegmentDoc> {
        Some(self.scheduler.get(seq)?.to_doc(&self.config.name, now))
    }

    /// The .torrent file of crumb `index` of Segment `seq`.
    pub fn torrent(&self, seq: u64, index: u16) -> Option<&[u8]> {
        self.torrents.get(&(seq, index)).map(Vec::as_slice)
    }

    /// The share of weak lines that may fetch an urgent crumb 1 from the super seed
    /// alone, as the window carries it (`core::sole_source`).
    pub fn sole_source_share(&self) -> f64 {
        self.sole_source.share()
    }

    /// The statistics the engine knows (the caller adds the super seed's
    /// `bytes_uploaded` and `torrents_seeded`).
    pub fn stats(&self, now: u64) -> StatsDoc {
        let mut st = self.stats.clone();
        st.peers_known = self.tracker.peers_known(now);
        st.super_seed_grants = self.tracker.super_seed_grants();
        st.clients_reporting = self.feedback.clients_reporting(&self.scheduler);
        st.uplink_variation = self.seed_load.variation();
        st.uplink_busy = self.seed_load.busy();
        st.sole_source_share = self.sole_source_share();
        st.sole_source_failed_share = self.sole_source.last_failed_share();
        st
    }

    /// The super seed's upload total at `now`, read every few hundred ms: how busy its
    /// link is decides [`Self::enhancement_copies`] under `EnhancementCopies::Auto`.
    pub fn note_uploaded(&mut self, now: u64, uploaded: u64) {
        self.seed_load.on_sample(now, uploaded);
    }

    /// Copies of each enhancement piece the super seed may upload for a Segment
    /// published now (None = no limit); counted in the statistics.
    pub fn enhancement_copies(&mut self) -> Option<u32> {
        let copies = self.config.enhancement_copies.for_segment(&self.seed_load);
        self.stats.segments_copies_limited += u64::from(copies.is_some());
        copies
    }

    /// What the IO side knows of Segment `seq` just published: |G| (from its crumbs)
    /// and the super seed's upload total now, from which the channel's upload rate
    /// since the previous Segment is computed.
    pub fn note_segment(&mut self, seq: u64, gops: Option<u16>, uploaded: Option<u64>) {
        let prev = self
            .history
            .iter()
            .rev()
            .find(|s| s.doc.seq < seq)
            .and_then(|s| Some((s.uploaded?, s.doc.published_ms)));
        let Some(s) = self.sample_mut(seq) else {
            return;
        };
        s.doc.gops = gops.or(s.doc.gops);
        if let Some(up) = uploaded {
            s.uploaded = Some(up);
            if let Some((prev_up, prev_ms)) = prev {
                let ms = s.doc.published_ms.saturating_sub(prev_ms).max(1);
                s.doc.upload_rate = Some(up.saturating_sub(prev_up) as f64 * 1000.0 / ms as f64);
            }
        }
    }

    fn sample_mut(&mut self, seq: u64) -> Option<&mut Sample> {
        self.history.iter_mut().rev().find(|s| s.doc.seq == seq)
    }

    /// A counted report enters the status history: the Segment's delivered rate and
    /// D distribution, and the client's last report.
    fn note_report(&mut self, now: u64, source: IpAddr, report: ReportDoc) {
        self.sole_source
            .on_report(Voter::new(source), report.sole_source, report.successful);
        // Bytes the viewer got by the deadline: D crumbs when complete, crumb 1 when
        // only successful (what it got beyond crumb 1 is not known).
        let got = match (report.complete, report.successful) {
            (true, _) => report.d.max(1) as usize,
            (false, true) => 1,
            (false, false) => 0,
        };
        let bytes = self
            .scheduler
            .get(report.seq)
            .map_or(0, |e| e.prefix_size(got));
        if let Some(s) = self.sample_mut(report.seq) {
            s.doc.reports += 1;
            s.doc.reported_rate += report.rate.max(0.0);
            if s.doc.duration > 0 {
                s.doc.delivered_rate += bytes as f64 * 1e9 / s.doc.duration as f64;
            }
            *s.d_counts.entry(report.d).or_insert(0) += 1;
        }
        if self.last_reports.len() >= STATUS_CLIENTS
            && !self.last_reports.contains_key(&report.client_id)
            && let Some(oldest) = self
                .last_reports
                .iter()
                .min_by_key(|(_, r)| r.at)
                .map(|(k, _)| k.clone())
        {
            self.last_reports.remove(&oldest);
        }
        self.last_reports.insert(
            report.client_id.clone(),
            LastReport {
                report,
                ip: source.to_canonical(),
                at: now,
            },
        );
    }

    /// Viewers at `now`: the clients whose reports count, or when none reports, the
    /// peers that announced lately other than the super seed.
    pub fn viewers(&self, now: u64) -> usize {
        let reporting = self.feedback.clients_reporting(&self.scheduler);
        if reporting > 0 {
            return reporting;
        }
        let ttl = self.config.tracker.peer_ttl_ns;
        self.audience
            .iter()
            .filter(|(id, m)| {
                Some(**id) != self.super_seed_id && now.saturating_sub(m.last_seen) < ttl
            })
            .count()
    }

    /// The status page's document at `now` (the caller adds the super seed's figures
    /// to `stats`, as for [`Self::stats`]).
    pub fn status_doc(&self, now: u64) -> StatusDoc {
        let ttl = self.config.tracker.peer_ttl_ns;
        let d_sample = self.history.iter().rev().find(|s| s.doc.reports > 0);
        let mut clients: Vec<&LastReport> = self
            .last_reports
            .values()
            .filter(|r| now.saturating_sub(r.at) < ttl)
            .collect();
        clients.sort_by(|a, b| {
            b.at.cmp(&a.at)
                .then(a.report.client_id.cmp(&b.report.client_id))
        });
        StatusDoc {
            version: api::API_VERSION,
            channel: self.config.name.clone(),
            caps: self.caps.clone(),
            latest: self.scheduler.latest().map(|e| e.seq),
            start_index: self.scheduler.start_index(),
            window_size: self.scheduler.config().window,
            now_ms: now / 1_000_000,
            stats: self.stats(now),
            samples: self.history.iter().map(|s| s.doc.clone()).collect(),
            d_seq: d_sample.map(|s| s.doc.seq),
            d_distribution: d_sample
                .map(|s| {
                    s.d_counts
                        .iter()
                        .map(|(&d, &clients)| DCountDoc { d, clients })
                        .collect()
                })
                .unwrap_or_default(),
            clients: clients
                .into_iter()
                .map(|r| ClientDoc {
                    client_id: r.report.client_id.clone(),
                    address: r.ip.to_string(),
                    seq: r.report.seq,
                    d: r.report.d,
                    successful: r.report.successful,
                    complete: r.report.complete,
                    rate: r.report.rate,
                    age_ms: now.saturating_sub(r.at) / 1_000_000,
                })
                .collect(),
        }
    }

    /// Whether a window poll that knows every Segment up to `after` has news: a
    /// Segment after it, or a numbering that went back (a restart, which the poll must
    /// hear at once). False while nothing is published. A blocking window reload
    /// (`?wait=`) holds its answer while this is false.
    pub fn window_news(&self, after: Option<u64>) -> bool {
        match (self.latest(), after) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(latest), Some(after)) => latest != after,
        }
    }

    /// x, the newest Segment.
    pub fn latest(&self) -> Option<u64> {
        self.scheduler.latest().map(|e| e.seq)
    }

    /// The caps of the channel's video (None before the first Segment).
    pub fn caps(&self) -> Option<&str> {
        self.caps.as_deref()
    }

    /// The caps of the channel's audio, if it carries audio.
    pub fn audio_caps(&self) -> Option<&str> {
        self.audio_caps.as_deref()
    }

    /// Whether the channel's tracker tracks crumb `info_hash` (where an announce at
    /// the server's root goes).
    pub fn tracks(&self, info_hash: &[u8; 20]) -> bool {
        self.tracker.is_registered(info_hash)
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
