// SPDX-License-Identifier: MPL-2.0
//! A BitTorrent HTTP tracker core (BEP 3 announce, BEP 23 compact peers, BEP 7
//! `peers6`), sans-IO: the HTTP server hands in the raw query string, the peer's source
//! address and `now`; it gets back the bencoded body to send with status 200 (a
//! tracker reports errors in the body, as `failure reason`).
//!
//! Why a tracker of our own: librqbit has no tracker server, and its peers can be given
//! only when a torrent is added; a tracker is how clients of a channel find each other
//! and the super seed. It tracks only torrents the channel `register`s (its crumbs), so
//! it cannot be used as an open tracker, and forgets a torrent when its Segment expires.
//!
//! Peers expire by age: librqbit re-announces after `interval` and never sends
//! `completed` or `stopped`, so a peer not heard from for `peer_ttl_ns` is dropped.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use super::roster::{Peer, Roster};
use super::time::{MS, SEC};

/// Settings of the tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerConfig {
    /// `interval` told to clients (s). Crumb torrents live only a few Segments, so it
    /// is short; librqbit waits this long between announces.
    pub interval_s: u32,
    /// `min interval` told to clients (s).
    pub min_interval_s: u32,
    /// A peer not heard from for this long (ns) is dropped; a few intervals.
    pub peer_ttl_ns: u64,
    /// Peers returned at most per announce (numwant is capped to it).
    pub max_peers_per_reply: u32,
    /// Peers kept at most per torrent; a new peer beyond it still gets an answer but is
    /// not handed out to others. Bounds memory against peer-id floods.
    pub max_peers_per_torrent: usize,
    /// Initial seeding: how many peers of a torrent are told the super seed's address
    /// (the first to announce, while no other seed has announced the torrent); the
    /// others get only peers, so each piece leaves the channel about this many times
    /// and then spreads between peers. A peer alone with the super seed always gets
    /// it; a weak peer's grant does not count against the strong ones'
    /// ([`Tracker::announce_from`]). 0 = every peer gets it.
    pub super_seed_fanout: u32,
    /// The same for a Segment's crumb 1 (headers and base layer: every viewer needs it
    /// first, and all at once at the live edge), registered with
    /// [`Tracker::register_first_crumb`]. `None` = `super_seed_fanout`.
    pub first_crumb_fanout: Option<u32>,
}

impl TrackerConfig {
    /// The initial seeding fanout of a crumb: `first_crumb_fanout` for a Segment's
    /// crumb 1 when set, `super_seed_fanout` otherwise.
    pub fn fanout(&self, first_crumb: bool) -> u32 {
        fanout_for(self.super_seed_fanout, self.first_crumb_fanout, first_crumb)
    }
}

/// [`TrackerConfig::fanout`] from its two settings (the simulator keeps its own).
pub fn fanout_for(
    super_seed_fanout: u32,
    first_crumb_fanout: Option<u32>,
    first_crumb: bool,
) -> u32 {
    match first_crumb_fanout {
        Some(f) if first_crumb => f,
        _ => super_seed_fanout,
    }
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval_s: 10,
            min_interval_s: 5,
            peer_ttl_ns: 45 * SEC,
            max_peers_per_reply: 50,
            max_peers_per_torrent: 10_000,
            super_seed_fanout: 0,
            first_crumb_fanout: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Event {
    /// A regular update (no `event`, `event=empty`, or BEP 21 `paused`).
    #[default]
    None,
    Started,
    Completed,
    Stopped,
}

/// One announce, as parsed from its query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Bytes left; `None` when not given (the peer then counts as incomplete).
    pub left: Option<u64>,
    /// Compact peer lists (the default when `compact` is absent).
    pub compact: bool,
    pub no_peer_id: bool,
    pub event: Event,
    /// `None`: the configured maximum.
    pub numwant: Option<u32>,
    /// The `ip` parameter when it is a literal address (host names are ignored).
    pub ip: Option<IpAddr>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrackerError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("{0} given more than once")]
    Repeated(&'static str),
    #[error("bad percent-encoding")]
    BadPercentEncoding,
    #[error("unknown torrent")]
    UnknownTorrent,
}

impl TrackerError {
    /// The bencoded failure body for this error.
    pub fn body(&self) -> Vec<u8> {
        failure_body(&self.to_string())
    }
}

/// `d14:failure reason<len>:<msg>e`: how a tracker says no (HTTP status stays 200).
pub fn failure_body(msg: &str) -> Vec<u8> {
    let mut out = b"d".to_vec();
    put_bytes(&mut out, b"failure reason");
    put_bytes(&mut out, msg.as_bytes());
    out.push(b'e');
    out
}

/// The bencoded BEP 48 scrape answer for (info-hash, complete, incomplete) counts
/// (`downloaded` is not kept: 0).
pub fn scrape_body(mut files: Vec<([u8; 20], usize, usize)>) -> Vec<u8> {
    files.sort(); // bencode dictionaries are sorted by key
    files.dedup_by_key(|f| f.0);
    let mut out = b"d5:filesd".to_vec();
    for (h, complete, incomplete) in files {
        put_bytes(&mut out, &h);
        out.push(b'd');
        put_bytes(&mut out, b"complete");
        put_int(&mut out, complete as u64);
        put_bytes(&mut out, b"downloaded");
        put_int(&mut out, 0);
        put_bytes(&mut out, b"incomplete");
        put_int(&mut out, incomplete as u64);
        out.push(b'e');
    }
    out.extend_from_slice(b"ee");
    out
}

/// Byte-wise percent-decoding. info_hash and peer_id are raw 20-byte strings, so no
/// UTF-8 is assumed. `+` stays `+` (RFC 3986 query; BitTorrent clients escape every
/// byte outside the unreserved set, so treating `+` as a space would corrupt hashes).
pub fn percent_decode(s: &[u8]) -> Result<Vec<u8>, TrackerError> {
    fn hex(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            let hi = s.get(i + 1).copied().and_then(hex);
            let lo = s.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(TrackerError::BadPercentEncoding),
            }
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

fn hash20(v: &[u8], name: &'static str) -> Result<[u8; 20], TrackerError> {
    v.try_into().map_err(|_| TrackerError::Invalid(name))
}

/// Stores a 20-byte string parameter; a second occurrence is an error (two info_hash
/// values would make the announce ambiguous).
fn set_once(
    slot: &mut Option<[u8; 20]>,
    value: &[u8],
    name: &'static str,
) -> Result<(), TrackerError> {
    if slot.replace(hash20(value, name)?).is_some() {
        return Err(TrackerError::Repeated(name));
    }
    Ok(())
}

fn text<'a>(v: &'a [u8], name: &'static str) -> Result<&'a str, TrackerError> {
    std::str::from_utf8(v).map_err(|_| TrackerError::Invalid(name))
}

fn number<T: std::str::FromStr>(v: &[u8], name: &'static str) -> Result<T, TrackerError> {
    text(v, name)?
        .parse()
        .map_err(|_| TrackerError::Invalid(name))
}

impl AnnounceRequest {
    /// Parses the query string of `GET /announce?...` (with or without the `?`).
    /// Unknown parameters (key, trackerid, supportcrypto...) are ignored.
    pub fn parse(query: &str) -> Result<AnnounceRequest, TrackerError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut info_hash = None;
        let mut peer_id = None;
        let mut port = None;
        let mut req = AnnounceRequest {
            info_hash: [0; 20],
            peer_id: [0; 20],
            port: 0,
            uploaded: 0,
            downloaded: 0,
            left: None,
            compact: true,
            no_peer_id: false,
            event: Event::None,
            numwant: None,
            ip: None,
        };
        for pair in query.as_bytes().split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            let key = percent_decode(key)?;
            let value = percent_decode(value)?;
            match key.as_slice() {
                b"info_hash" => set_once(&mut info_hash, &value, "info_hash")?,
                b"peer_id" => set_once(&mut peer_id, &value, "peer_id")?,
                b"port" => match number::<u16>(&value, "port")? {
                    0 => return Err(TrackerError::Invalid("port")),
                    p => port = Some(p),
                },
                b"uploaded" => req.uploaded = number(&value, "uploaded")?,
                b"downloaded" => req.downloaded = number(&value, "downloaded")?,
                b"left" => req.left = Some(number(&value, "left")?),
                b"compact" => {
                    req.compact = match value.as_slice() {
                        b"1" => true,
                        b"0" => false,
                        _ => return Err(TrackerError::Invalid("compact")),
                    }
                }
                b"no_peer_id" => req.no_peer_id = value.as_slice() != b"0",
                b"event" => {
                    req.event = match value.as_slice() {
                        b"" | b"empty" | b"paused" => Event::None,
                        b"started" => Event::Started,
                        b"completed" => Event::Completed,
                        b"stopped" => Event::Stopped,
                        _ => return Err(TrackerError::Invalid("event")),
                    }
                }
                b"numwant" => {
                    // Some clients send -1 for "the default".
                    let n: i64 = number(&value, "numwant")?;
                    req.numwant = (n >= 0).then(|| u32::try_from(n).unwrap_or(u32::MAX));
                }
                b"ip" => {
                    req.ip = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|s| s.parse::<IpAddr>().ok());
                }
                _ => {}
            }
        }
        req.info_hash = info_hash.ok_or(TrackerError::Missing("info_hash"))?;
        req.peer_id = peer_id.ok_or(TrackerError::Missing("peer_id"))?;
        req.port = port.ok_or(TrackerError::Missing("port"))?;
        Ok(req)
    }
}

/// What the channel knows of an announcing peer's line, for initial seeding
/// ([`Tracker::announce_from`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strength {
    /// Downloads at least as fast as the stream is published (its last report's rate
    /// R), or nothing is known of any peer (a tracker on its own): a grant to it
    /// spreads the crumb.
    Strong,
    /// Slower than the stream, or not reported yet.
    Weak,
}

/// Whether initial seeding has room for one more grant of the super seed, after
/// `granted` grants of which `strong_granted` went to strong peers
/// ([`Tracker::announce_from`]; the simulator keeps its own counts).
pub fn grant_room(
    fanout: usize,
    granted: usize,
    strong_granted: usize,
    strength: Strength,
) -> bool {
    let weak_granted = granted.saturating_sub(strong_granted);
    strong_granted < fanout && (strength == Strength::Strong || weak_granted < fanout)
}

/// The swarm of one registered torrent.
#[derive(Clone, Debug, Default)]
struct Swarm {
    /// Its peers (replies depend only on the inputs: tests, simulator).
    peers: Roster,
    /// Peer ids told the super seed's address (initial seeding); at most
    /// `max_peers_per_torrent`.
    granted: BTreeSet<[u8; 20]>,
    /// How many of `granted` were strong peers when granted (see
    /// [`Tracker::announce_from`]).
    strong_granted: usize,
    /// A Segment's crumb 1: initial seeding by `first_crumb_fanout`.
    first_crumb: bool,
}

/// xorshift64: the tracker's draws, deterministic (no system randomness).
fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// Whether `addr` is the peer at `known` (whose IP may be unspecified: then the port
/// alone tells).
fn same_peer(known: Option<SocketAddr>, addr: SocketAddr) -> bool {
    known.is_some_and(|k| {
        k.port() == addr.port() && (k.ip().is_unspecified() || k.ip() == addr.ip().to_canonical())
    })
}

/// The tracker: registered torrents and their peers.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    swarms: HashMap<[u8; 20], Swarm>,
    /// The channel's own seed (address, peer id): a seed of every registered torrent
    /// from the start (it need not announce), handed out as `super_seed_fanout` says.
    super_seed: Option<(SocketAddr, [u8; 20])>,
    /// Times the super seed's address was handed out (initial seeding grants).
    super_seed_grants: u64,
    /// xorshift64 state for sampling peers: deterministic, no system randomness.
    rng: u64,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            swarms: HashMap::new(),
            super_seed: None,
            super_seed_grants: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// The super seed's address as peers dial it (its IP may be unspecified, then
    /// only the port tells it apart) and its peer id. Every registered torrent has it
    /// as a seed from then on; see [`TrackerConfig::super_seed_fanout`].
    pub fn set_super_seed(&mut self, addr: SocketAddr, peer_id: [u8; 20]) {
        self.super_seed = Some((addr, peer_id));
    }

    /// How many times the super seed's address was handed out so far.
    pub fn super_seed_grants(&self) -> u64 {
        self.super_seed_grants
    }

    /// Starts tracking a torrent (a crumb just published). False if it already was.
    pub fn register(&mut self, info_hash: [u8; 20]) -> bool {
        self.register_swarm(info_hash, false)
    }

    /// [`Tracker::register`] for a Segment's crumb 1, whose initial seeding follows
    /// [`TrackerConfig::first_crumb_fanout`].
    pub fn register_first_crumb(&mut self, info_hash: [u8; 20]) -> bool {
        self.register_swarm(info_hash, true)
    }

    fn register_swarm(&mut self, info_hash: [u8; 20], first_crumb: bool) -> bool {
        if self.swarms.contains_key(&info_hash) {
            return false;
        }
        let swarm = Swarm {
            first_crumb,
            ..Swarm::default()
        };
        self.swarms.insert(info_hash, swarm);
        true
    }

    /// Stops tracking a torrent (its Segment expired) and forgets its peers.
    pub fn remove_torrent(&mut self, info_hash: &[u8; 20]) -> bool {
        self.swarms.remove(info_hash).is_some()
    }

    pub fn is_registered(&self, info_hash: &[u8; 20]) -> bool {
        self.swarms.contains_key(info_hash)
    }

    /// The registered torrents, in no particular order.
    pub fn torrents(&self) -> Vec<[u8; 20]> {
        self.swarms.keys().copied().collect()
    }

    /// Live (not expired) peer entries summed over torrents.
    pub fn peers_known(&self, now: u64) -> usize {
        let ttl = self.config.peer_ttl_ns;
        self.swarms
            .values()
            .map(|s| {
                let (seeds, leechers) = s.peers.alive_counts(now, ttl);
                seeds + leechers
            })
            .sum()
    }

    /// (complete, incomplete) of a torrent, expired peers left out.
    pub fn swarm_counts(&self, info_hash: &[u8; 20], now: u64) -> Option<(usize, usize)> {
        Some(
            self.swarms
                .get(info_hash)?
                .peers
                .alive_counts(now, self.config.peer_ttl_ns),
        )
    }

    /// Drops expired peers everywhere (announces prune their own torrent already);
    /// returns how many went.
    pub fn purge(&mut self, now: u64) -> usize {
        let ttl = self.config.peer_ttl_ns;
        let mut removed = 0;
        for swarm in self.swarms.values_mut() {
            removed += swarm.peers.prune(now, ttl);
        }
        removed
    }

    /// The address other peers should dial: the request's source address, with the
    /// announced port. `ip=` is honoured only from a loopback source (a process on this
    /// host, e.g. a peer in a network namespace or one bound to another local address);
    /// from anywhere else it could point the swarm at a third party.
    fn peer_addr(req: &AnnounceRequest, source: SocketAddr) -> SocketAddr {
        let src = source.ip().to_canonical();
        let ip = match req.ip {
            Some(ip) if src.is_loopback() => ip.to_canonical(),
            _ => src,
        };
        SocketAddr::new(ip, req.port)
    }

    /// Handles one announce: updates the peer and returns the bencoded reply.
    pub fn announce(
        &mut self,
        req: &AnnounceRequest,
        source: SocketAddr,
        now: u64,
    ) -> Result<Vec<u8>, TrackerError> {
        self.announce_from(req, source, now, Strength::Strong)
    }

    /// [`Tracker::announce`] from a peer of known `strength`. A grant of the super
    /// seed is worth what its holder passes on: a crumb's first downloader on a thin
    /// line (an ADSL viewer, which fetches crumb 1 from the super seed at once anyway)
    /// holds every other viewer to its pace. So a weak peer's grant does not use up a
    /// strong peer's: the first `fanout` strong peers to announce get the super seed
    /// even after `fanout` weak ones did (at most twice `fanout` grants per crumb; an
    /// audience of one strength gets `fanout`, as before). Swarm bench, N = 10: the
    /// cable and fibre clients had crumb 1 in 0.09 s (median) when a fibre client held
    /// the grant, 0.36 s when a cable one did, 0.56 s when an ADSL one did (docs/swarm.md,
    /// fifteenth round).
    pub fn announce_from(
        &mut self,
        req: &AnnounceRequest,
        source: SocketAddr,
        now: u64,
        strength: Strength,
    ) -> Result<Vec<u8>, TrackerError> {
        let ttl = self.config.peer_ttl_ns;
        let max_per_torrent = self.config.max_peers_per_torrent;
        let addr = Self::peer_addr(req, source);
        let seed = req.left == Some(0);
        let swarm = self
            .swarms
            .get_mut(&req.info_hash)
            .ok_or(TrackerError::UnknownTorrent)?;
        swarm.peers.prune(now, ttl);
        if req.event == Event::Stopped {
            swarm.peers.remove(&req.peer_id);
        } else if swarm.peers.contains(&req.peer_id) || swarm.peers.len() < max_per_torrent {
            swarm.peers.upsert(
                req.peer_id,
                Peer {
                    addr,
                    seed,
                    last_seen: now,
                },
            );
        }
        let (mut complete, incomplete) = swarm.peers.counts();
        if let Some((ss, _)) = self.super_seed
            && !swarm.peers.lists(ss)
        {
            complete += 1; // the super seed, before its own first announce
        }
        let want = req
            .numwant
            .unwrap_or(self.config.max_peers_per_reply)
            .min(self.config.max_peers_per_reply) as usize;
        // Candidates, a uniform sample (so load spreads over the swarm instead of
        // every client getting the same first peers): everyone but the peer itself
        // (by id, or by address after a restart under a new id); a seed gets no
        // seeds, it has nothing to fetch.
        let super_seed = self.super_seed;
        let stopped = req.event == Event::Stopped;
        let mut candidates = if stopped {
            Vec::new()
        } else {
            let rng = &mut self.rng;
            // At least one, even for numwant=0: whether anyone else could serve the
            // peer decides a grant below.
            swarm.peers.sample(
                want.max(1),
                seed,
                || next_random(rng),
                |id, p| {
                    *id != req.peer_id
                        && p.addr != addr
                        && !same_peer(super_seed.map(|s| s.0), p.addr)
                },
            )
        };
        // Initial seeding: the super seed goes first to the first `fanout` peers while
        // no other seed has the torrent (and to a peer nobody else could serve);
        // everyone else is sent to them.
        let fanout = self.config.fanout(swarm.first_crumb) as usize;
        let mut granted = false;
        if let Some((ss_addr, ss_id)) = super_seed.filter(|s| !stopped && !seed && s.0 != addr) {
            // Only a seed heard within about one interval: librqbit never announces
            // `stopped`, so a peer that dropped the crumb stays listed up to the TTL.
            let fresh = u64::from(self.config.interval_s) * 1500 * MS;
            let other_seed = swarm
                .peers
                .seeds_since((now + 1).saturating_sub(fresh))
                .any(|(id, p)| *id != req.peer_id && !same_peer(Some(ss_addr), p.addr));
            let strong = strength == Strength::Strong;
            let room = grant_room(fanout, swarm.granted.len(), swarm.strong_granted, strength);
            let known = swarm.granted.contains(&req.peer_id);
            let grant = fanout == 0 || known || (room && !other_seed) || candidates.is_empty();
            if grant {
                if !known && swarm.granted.len() < max_per_torrent {
                    swarm.granted.insert(req.peer_id);
                    swarm.strong_granted += usize::from(strong);
                }
                granted = true;
                // First in the reply, whatever the sample picked.
                candidates.insert(0, (ss_id, ss_addr));
            }
        }
        candidates.truncate(want);
        if granted && want > 0 {
            self.super_seed_grants += 1;
        }
        Ok(self.reply(req, complete, incomplete, &candidates))
    }

    /// `announce` from a raw query string, always giving a body (a failure body on
    /// error): what an HTTP handler sends.
    pub fn handle(&mut self, query: &str, source: SocketAddr, now: u64) -> Vec<u8> {
        AnnounceRequest::parse(query)
            .and_then(|req| self.announce(&req, source, now))
            .unwrap_or_else(|e| e.body())
    }

    /// BEP 48 scrape from a raw query string (`info_hash=..&info_hash=..`; none asks
    /// for every registered torrent): the bencoded `files` dictionary with complete
    /// (the super seed included), incomplete and downloaded (not kept: 0). Unknown
    /// info-hashes are left out, as BEP 48 allows; a malformed query gets a failure
    /// body.
    pub fn scrape(&self, query: &str, now: u64) -> Vec<u8> {
        match self.scrape_counts(query, now) {
            Ok(files) => scrape_body(files),
            Err(e) => e.body(),
        }
    }

    /// The swarms a BEP 48 scrape asks for (all when no `info_hash` is given), as
    /// (info-hash, complete, incomplete); unknown info-hashes are left out. Several
    /// channels' counts for one scrape at the server's root are joined by
    /// [`scrape_body`].
    pub fn scrape_counts(
        &self,
        query: &str,
        now: u64,
    ) -> Result<Vec<([u8; 20], usize, usize)>, TrackerError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut asked = BTreeSet::new();
        for pair in query.as_bytes().split(|&b| b == b'&') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            let key = percent_decode(&pair[..eq])?;
            if key != b"info_hash" {
                continue;
            }
            let v = percent_decode(&pair[eq + 1..])?;
            let h = <[u8; 20]>::try_from(v.as_slice())
                .map_err(|_| TrackerError::Invalid("info_hash"))?;
            asked.insert(h);
        }
        let all = asked.is_empty();
        let ttl = self.config.peer_ttl_ns;
        let mut out = Vec::new();
        for (h, swarm) in self
            .swarms
            .iter()
            .filter(|(h, _)| all || asked.contains(*h))
        {
            let (mut complete, incomplete) = swarm.peers.alive_counts(now, ttl);
            if let Some((ss, _)) = self.super_seed
                && !swarm
                    .peers
                    .iter()
                    .any(|(_, p)| same_peer(Some(ss), p.addr) && p.alive(now, ttl))
            {
                complete += 1;
            }
            out.push((*h, complete, incomplete));
        }
        Ok(out)
    }

    fn reply(
        &self,
        req: &AnnounceRequest,
        complete: usize,
        incomplete: usize,
        peers: &[([u8; 20], SocketAddr)],
    ) -> Vec<u8> {
        let mut out = b"d".to_vec();
        put_bytes(&mut out, b"complete");
        put_int(&mut out, complete as u64);
        put_bytes(&mut out, b"incomplete");
        put_int(&mut out, incomplete as u64);
        put_bytes(&mut out, b"interval");
        put_int(&mut out, u64::from(self.config.interval_s));
        put_bytes(&mut out, b"min interval");
        put_int(&mut out, u64::from(self.config.min_interval_s));
        put_bytes(&mut out, b"peers");
        if req.compact {
            let mut v4 = Vec::new();
            let mut v6 = Vec::new();
            for (_, addr) in peers {
                match addr {
                    SocketAddr::V4(a) => {
                        v4.extend_from_slice(&a.ip().octets());
                        v4.extend_from_slice(&a.port().to_be_bytes());
                    }
                    SocketAddr::V6(a) => {
                        v6.extend_from_slice(&a.ip().octets());
                        v6.extend_from_slice(&a.port().to_be_bytes());
                    }
                }
            }
            put_bytes(&mut out, &v4);
            if !v6.is_empty() {
                put_bytes(&mut out, b"peers6");
                put_bytes(&mut out, &v6);
            }
        } else {
            out.push(b'l');
            for (id, addr) in peers {
                // Keys in sorted order, as bencode requires: ip, peer id, port.
                out.push(b'd');
                put_bytes(&mut out, b"ip");
                put_bytes(&mut out, addr.ip().to_string().as_bytes());
                if !req.no_peer_id {
                    put_bytes(&mut out, b"peer id");
                    put_bytes(&mut out, id);
                }
                put_bytes(&mut out, b"port");
                put_int(&mut out, u64::from(addr.port()));
                out.push(b'e');
            }
            out.push(b'e');
        }
        out.push(b'e');
        out
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

fn put_int(out: &mut Vec<u8>, i: u64) {
    out.push(b'i');
    out.extend_from_slice(i.to_string().as_bytes());
    out.push(b'e');
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
