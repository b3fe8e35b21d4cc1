// SPDX-License-Identifier: MPL-2.0
//! The simulated channel: the real [`ChannelEngine`] crumbsink runs (window, expiry,
//! tracker, audience, feedback, rho), a window document per publish, and the crumbs'
//! piece holders (who can serve which piece). Which downloader the tracker sends to the
//! super seed is modelled in `swarm` (a fluid model of the exchange, as librqbit is).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

use crate::core::api::WindowDoc;
use crate::core::channel::{ChannelEngine, ChannelEngineConfig, TorrentFile};
use crate::core::feedback::Report;
use crate::core::scheduler::{PublishedCrumb, PublishedSegment};
use crate::core::seed_load::{EnhancementCopies, copies_behind_edge};
use crate::core::tracker::{AnnounceRequest, Event};

/// A live crumb: its size and, per piece, the peers holding that piece (the super seed
/// holds every piece and is not listed).
pub struct CrumbState {
    pub size: u64,
    pub holders: Vec<Vec<u32>>,
    /// Downloaders told the super seed's address by the tracker so far.
    pub granted: u32,
    /// Of them, strong peers (`core::tracker::grant_room`).
    pub strong_granted: u32,
    /// Downloaders that announced the crumb so far (the tracker's peer list).
    pub downloaders: u32,
    /// Per piece, the transfers the super seed started (`enhancement_copies`).
    pub super_copies: Vec<u32>,
    /// The super seed serves each piece at most this many times (None: no limit),
    /// as the channel engine said when the Segment was published.
    pub copies: Option<u32>,
}

/// What a published Segment was: when its capture started, how long it is, and its
/// crumbs' sizes.
pub struct PublishedShape {
    pub capture_start: u64,
    pub duration: u64,
    pub sizes: Rc<[u64]>,
}

pub struct Channel {
    pub engine: ChannelEngine,
    pub window: Option<Rc<WindowDoc>>,
    pub crumbs: HashMap<(u64, u16), CrumbState>,
    /// Crumb sizes of a Segment of `duration` (the configured length).
    pub sizes: Vec<u64>,
    pub piece_size: u64,
    pub duration: u64,
    /// Per published Segment: its capture start, length and crumb sizes.
    pub segments: BTreeMap<u64, PublishedShape>,
    pub published: u64,
    pub reports_accepted: u64,
    pub reports_rejected: u64,
    pub rhos: Vec<(u64, f64)>,
    /// When the engine was last given the super seed's upload total (ns).
    load_fed: Option<u64>,
    /// `SimConfig::enhancement_copies_behind`.
    copies_behind: Option<u32>,
}

fn info_hash(seq: u64, index: u16) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&seq.to_be_bytes());
    h[8..10].copy_from_slice(&index.to_be_bytes());
    h
}

/// How often the engine is given the super seed's upload total (ns), as crumbsink's
/// sampler reads it.
const LOAD_SAMPLE_INTERVAL: u64 = 250_000_000;

/// Peer `p`'s address (a virtual one: nothing is sent) and peer id.
pub fn peer_address(p: u32) -> (IpAddr, [u8; 20]) {
    let ip = Ipv4Addr::from(0x7f00_0001u32.wrapping_add(p));
    let mut id = *b"-SIM0000-00000000000";
    id[12..16].copy_from_slice(&p.to_be_bytes());
    (IpAddr::V4(ip), id)
}

impl Channel {
    pub fn new(
        sizes: Vec<u64>,
        piece_size: u64,
        duration: u64,
        enhancement_copies: EnhancementCopies,
        copies_behind: Option<u32>,
    ) -> Self {
        Channel {
            copies_behind,
            engine: ChannelEngine::new(ChannelEngineConfig {
                name: "sim".into(),
                enhancement_copies,
                ..Default::default()
            }),
            window: None,
            crumbs: HashMap::new(),
            sizes,
            piece_size: piece_size.max(1),
            duration,
            segments: BTreeMap::new(),
            published: 0,
            reports_accepted: 0,
            reports_rejected: 0,
            rhos: Vec::new(),
            load_fed: None,
        }
    }

    /// The super seed's upload total at `now`, given to the engine as crumbsink's
    /// sampler does: every 250 ms.
    pub fn note_uploaded(&mut self, now: u64, uploaded: f64) {
        if self
            .load_fed
            .is_some_and(|t| now < t.saturating_add(LOAD_SAMPLE_INTERVAL))
        {
            return;
        }
        self.load_fed = Some(now);
        self.engine.note_uploaded(now, uploaded as u64);
    }

    /// How long a Segment can be, ns (the window's `max_duration`), as the segmenter
    /// would say; `None`: the longest in the window.
    pub fn set_max_duration(&mut self, max: Option<u64>) {
        self.engine.set_max_duration(max);
    }

    pub fn pieces(&self, size: u64) -> usize {
        size.div_ceil(self.piece_size).max(1) as usize
    }

    /// Publishes the next Segment at `now`, `duration` long with crumbs of `sizes`;
    /// forgets the crumbs that left the window.
    pub fn publish(&mut self, now: u64, duration: u64, sizes: &[u64]) {
        let seq = self.published;
        self.published += 1;
        // `enhancement-copies-behind`: the Segment before is behind the edge now.
        if let Some(prev) = seq.checked_sub(1) {
            for (_, crumb) in self
                .crumbs
                .iter_mut()
                .filter(|((s, index), _)| *s == prev && *index > 1)
            {
                if let Some(k) = copies_behind_edge(crumb.copies, self.copies_behind) {
                    crumb.copies = Some(k);
                }
            }
        }
        let capture_start = now.saturating_sub(duration);
        self.segments.insert(
            seq,
            PublishedShape {
                capture_start,
                duration,
                sizes: sizes.into(),
            },
        );
        let crumbs: Vec<PublishedCrumb> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| PublishedCrumb {
                index: (i + 1) as u16,
                info_hash: info_hash(seq, (i + 1) as u16),
                size,
                layer: (0, i.min(255) as u8, 0),
                piece_length: self.piece_size as u32,
            })
            .collect();
        let copies = self.engine.enhancement_copies();
        for c in &crumbs {
            let holders = vec![Vec::new(); self.pieces(c.size)];
            let super_copies = vec![0; holders.len()];
            self.crumbs.insert(
                (seq, c.index),
                CrumbState {
                    size: c.size,
                    holders,
                    granted: 0,
                    strong_granted: 0,
                    downloaders: 0,
                    super_copies,
                    copies: (c.index > 1).then_some(copies).flatten(),
                },
            );
        }
        let segment = PublishedSegment {
            seq,
            duration,
            crumbs,
            pts: Some(capture_start),
        };
        let torrents = segment
            .crumbs
            .iter()
            .map(|c| TorrentFile {
                index: c.index,
                bytes: Vec::new(),
            })
            .collect();
        let published = self
            .engine
            .publish(now, segment, torrents, None, None)
            .expect("sequence numbers increase");
        for e in published.expired {
            for c in e.crumbs {
                self.crumbs.remove(&(e.seq, c.index));
            }
        }
        self.window = Some(Rc::new(self.engine.window_doc(now, None)));
        if let Some(rho) = self.engine.poll_rho(now) {
            self.rhos.push(rho);
        }
    }

    /// Peer `p` announces crumb (seq, index) to the tracker, as librqbit does when a
    /// download starts: it becomes the channel's audience, so its reports count.
    pub fn announce(&mut self, p: u32, seq: u64, index: u16, now: u64) {
        let (ip, peer_id) = peer_address(p);
        let req = AnnounceRequest {
            info_hash: info_hash(seq, index),
            peer_id,
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: self.crumbs.get(&(seq, index)).map(|c| c.size),
            compact: true,
            no_peer_id: true,
            event: Event::Started,
            // Peers are picked by the fluid model; the reply's list is not needed.
            numwant: Some(0),
            ip: None,
        };
        let _ = self.engine.announce(now, &req, SocketAddr::new(ip, 6881));
    }

    /// Peer `p`'s report.
    pub fn report(&mut self, p: u32, report: Report, now: u64) {
        let (ip, _) = peer_address(p);
        match self.engine.on_report(now, ip, report) {
            Ok(()) => self.reports_accepted += 1,
            Err(_) => self.reports_rejected += 1,
        }
    }

    /// When Segment `seq`'s capture started (it is published when it ends).
    pub fn capture_start(&self, seq: u64) -> u64 {
        self.segments
            .get(&seq)
            .map_or(seq * self.duration, |s| s.capture_start)
    }

    /// Segment `seq`'s length and crumb sizes (the configured ones if unknown).
    pub fn shape(&self, seq: u64) -> (u64, Rc<[u64]>) {
        self.segments.get(&seq).map_or_else(
            || (self.duration, self.sizes.as_slice().into()),
            |s| (s.duration, s.sizes.clone()),
        )
    }
}
