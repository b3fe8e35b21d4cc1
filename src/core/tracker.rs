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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

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
    /// it. 0 = every peer gets it.
    pub super_seed_fanout: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval_s: 10,
            min_interval_s: 5,
            peer_ttl_ns: 45_000_000_000,
            max_peers_per_reply: 50,
            max_peers_per_torrent: 10_000,
            super_seed_fanout: 0,
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

#[derive(Clone, Debug)]
struct Peer {
    addr: SocketAddr,
    seed: bool,
    last_seen: u64,
}

/// The swarm of one registered torrent.
#[derive(Clone, Debug, Default)]
struct Swarm {
    /// By peer id; a BTreeMap so replies depend only on the inputs (tests, simulator).
    peers: BTreeMap<[u8; 20], Peer>,
    /// Peer ids told the super seed's address (initial seeding); at most
    /// `max_peers_per_torrent`.
    granted: BTreeSet<[u8; 20]>,
}

impl Peer {
    fn alive(&self, now: u64, ttl: u64) -> bool {
        now.saturating_sub(self.last_seen) < ttl
    }
}

impl Swarm {
    fn prune(&mut self, now: u64, ttl: u64) {
        self.peers.retain(|_, p| p.alive(now, ttl));
    }

    /// (seeds, leechers) among live peers.
    fn counts(&self, now: u64, ttl: u64) -> (usize, usize) {
        let alive = self.peers.values().filter(|p| p.alive(now, ttl));
        let (seeds, all) = alive.fold((0, 0), |(s, a), p| (s + usize::from(p.seed), a + 1));
        (seeds, all - seeds)
    }
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
        if self.swarms.contains_key(&info_hash) {
            return false;
        }
        self.swarms.insert(info_hash, Swarm::default());
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
            .flat_map(|s| s.peers.values())
            .filter(|p| p.alive(now, ttl))
            .count()
    }

    /// (complete, incomplete) of a torrent, expired peers left out.
    pub fn swarm_counts(&self, info_hash: &[u8; 20], now: u64) -> Option<(usize, usize)> {
        Some(
            self.swarms
                .get(info_hash)?
                .counts(now, self.config.peer_ttl_ns),
        )
    }

    /// Drops expired peers everywhere (announces prune their own torrent already);
    /// returns how many went.
    pub fn purge(&mut self, now: u64) -> usize {
        let ttl = self.config.peer_ttl_ns;
        let mut removed = 0;
        for swarm in self.swarms.values_mut() {
            let before = swarm.peers.len();
            swarm.prune(now, ttl);
            removed += before - swarm.peers.len();
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

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Handles one announce: updates the peer and returns the bencoded reply.
    pub fn announce(
        &mut self,
        req: &AnnounceRequest,
        source: SocketAddr,
        now: u64,
    ) -> Result<Vec<u8>, TrackerError> {
        let ttl = self.config.peer_ttl_ns;
        let max_per_torrent = self.config.max_peers_per_torrent;
        let addr = Self::peer_addr(req, source);
        let seed = req.left == Some(0);
        let swarm = self
            .swarms
            .get_mut(&req.info_hash)
            .ok_or(TrackerError::UnknownTorrent)?;
        swarm.prune(now, ttl);
        if req.event == Event::Stopped {
            swarm.peers.remove(&req.peer_id);
        } else if swarm.peers.contains_key(&req.peer_id) || swarm.peers.len() < max_per_torrent {
            swarm.peers.insert(
                req.peer_id,
                Peer {
                    addr,
                    seed,
                    last_seen: now,
                },
            );
        }
        let (mut complete, incomplete) = swarm.counts(now, ttl);
        if let Some((ss, _)) = self.super_seed
            && !swarm.peers.values().any(|p| same_peer(Some(ss), p.addr))
        {
            complete += 1; // the super seed, before its own first announce
        }
        // Candidates: everyone but the peer itself (by id, or by address after a
        // restart under a new id); a seed gets no seeds, it has nothing to fetch.
        let super_seed = self.super_seed;
        let stopped = req.event == Event::Stopped;
        let mut candidates: Vec<([u8; 20], SocketAddr)> = if stopped {
            Vec::new()
        } else {
            swarm
                .peers
                .iter()
                .filter(|(id, p)| **id != req.peer_id && p.addr != addr && !(seed && p.seed))
                .filter(|(_, p)| !same_peer(super_seed.map(|s| s.0), p.addr))
                .map(|(id, p)| (*id, p.addr))
                .collect()
        };
        // Initial seeding: the super seed goes first to the first `fanout` peers while
        // no other seed has the torrent (and to a peer nobody else could serve);
        // everyone else is sent to them.
        let fanout = self.config.super_seed_fanout as usize;
        let mut granted = false;
        if let Some((ss_addr, ss_id)) = super_seed.filter(|s| !stopped && !seed && s.0 != addr) {
            // Only a seed heard within about one interval: librqbit never announces
            // `stopped`, so a peer that dropped the crumb stays listed up to the TTL.
            let fresh = u64::from(self.config.interval_s) * 1_500_000_000;
            let other_seed = swarm.peers.iter().any(|(id, p)| {
                p.seed
                    && *id != req.peer_id
                    && !same_peer(Some(ss_addr), p.addr)
                    && now.saturating_sub(p.last_seen) < fresh
            });
            let grant = fanout == 0
                || swarm.granted.contains(&req.peer_id)
                || (swarm.granted.len() < fanout && !other_seed)
                || candidates.is_empty();
            if grant {
                if swarm.granted.len() < max_per_torrent {
                    swarm.granted.insert(req.peer_id);
                }
                granted = true;
                // First in the reply, whatever the sample below picks.
                candidates.insert(0, (ss_id, ss_addr));
            }
        }
        let want = req
            .numwant
            .unwrap_or(self.config.max_peers_per_reply)
            .min(self.config.max_peers_per_reply) as usize;
        // Partial Fisher-Yates: a uniform sample, so load spreads over the swarm
        // instead of every client getting the same first peers (e.g. the super seed).
        let take = want.min(candidates.len());
        let fixed = usize::from(granted).min(take);
        for i in fixed..take {
            let span = (candidates.len() - i) as u64;
            let j = i + (self.next_random() % span) as usize;
            candidates.swap(i, j);
        }
        candidates.truncate(take);
        if granted && take > 0 {
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
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut asked = BTreeSet::new();
        for pair in query.as_bytes().split(|&b| b == b'&') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            let key = match percent_decode(&pair[..eq]) {
                Ok(k) => k,
                Err(e) => return e.body(),
            };
            if key != b"info_hash" {
                continue;
            }
            match percent_decode(&pair[eq + 1..]) {
                Ok(v) => match <[u8; 20]>::try_from(v.as_slice()) {
                    Ok(h) => {
                        asked.insert(h);
                    }
                    Err(_) => return TrackerError::Invalid("info_hash").body(),
                },
                Err(e) => return e.body(),
            }
        }
        let all = asked.is_empty();
        let mut hashes: Vec<&[u8; 20]> = self
            .swarms
            .keys()
            .filter(|h| all || asked.contains(*h))
            .collect();
        hashes.sort(); // bencode dictionaries are sorted by key
        let ttl = self.config.peer_ttl_ns;
        let mut out = b"d5:filesd".to_vec();
        for h in hashes {
            let swarm = &self.swarms[h];
            let (mut complete, incomplete) = swarm.counts(now, ttl);
            if let Some((ss, _)) = self.super_seed
                && !swarm
                    .peers
                    .values()
                    .any(|p| same_peer(Some(ss), p.addr) && p.alive(now, ttl))
            {
                complete += 1;
            }
            put_bytes(&mut out, h);
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
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    /// Percent-encodes every byte, as careful clients do.
    fn enc(b: &[u8]) -> String {
        b.iter().map(|b| format!("%{b:02X}")).collect()
    }

    fn hash(n: u8) -> [u8; 20] {
        [n; 20]
    }

    fn query(info_hash: [u8; 20], peer: u8, port: u16, extra: &str) -> String {
        format!(
            "info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0{extra}",
            enc(&info_hash),
            enc(&[peer; 20]),
        )
    }

    fn tracker() -> Tracker {
        let mut t = Tracker::new(TrackerConfig {
            interval_s: 10,
            min_interval_s: 5,
            peer_ttl_ns: 30 * SEC,
            max_peers_per_reply: 4,
            max_peers_per_torrent: 100,
            super_seed_fanout: 0,
        });
        assert!(t.register(hash(1)));
        t
    }

    fn src(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn announce(t: &mut Tracker, q: &str, source: &str, now: u64) -> Vec<u8> {
        let req = AnnounceRequest::parse(q).unwrap();
        t.announce(&req, src(source), now).unwrap()
    }

    fn head(complete: u32, incomplete: u32) -> Vec<u8> {
        format!(
            "d8:completei{complete}e10:incompletei{incomplete}e8:intervali10e12:min intervali5e"
        )
        .into_bytes()
    }

    /// Number of IPv4 peers in a compact reply with no peers6.
    fn compact_count(body: &[u8]) -> usize {
        let at = body.windows(7).position(|w| w == b"5:peers").unwrap() + 7;
        let colon = body[at..].iter().position(|&b| b == b':').unwrap();
        let len: usize = std::str::from_utf8(&body[at..at + colon])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len % 6, 0);
        len / 6
    }

    #[test]
    fn percent_decoding_is_bytewise() {
        // The classic example: 123456789abcdef123456789abcdef123456789a.
        let q = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
        let expected: [u8; 20] = [
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
            0xef, 0x12, 0x34, 0x56, 0x78, 0x9a,
        ];
        assert_eq!(percent_decode(q.as_bytes()).unwrap(), expected);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(percent_decode(enc(&all).as_bytes()).unwrap(), all);
        assert_eq!(percent_decode(b"a+b%2b%2B").unwrap(), b"a+b++");
        for bad in ["%", "%4", "%zz", "ab%g1"] {
            assert_eq!(
                percent_decode(bad.as_bytes()),
                Err(TrackerError::BadPercentEncoding),
                "{bad}"
            );
        }
        let req = AnnounceRequest::parse(&format!(
            "?info_hash={q}&peer_id=-lt0D60-%01%02%03%04%05%06%07%08%09%0A%0B%0C&port=6881"
        ))
        .unwrap();
        assert_eq!(req.info_hash, expected);
        assert_eq!(&req.peer_id[..8], b"-lt0D60-");
    }

    #[test]
    fn parses_every_field() {
        let req = AnnounceRequest::parse(&query(
            hash(1),
            7,
            6881,
            "&left=0&uploaded=5&compact=0&no_peer_id=1&event=completed&numwant=12&ip=127.0.0.2&key=x",
        ))
        .unwrap();
        assert_eq!(req.info_hash, hash(1));
        assert_eq!(req.peer_id, [7; 20]);
        assert_eq!(req.port, 6881);
        assert_eq!((req.uploaded, req.downloaded, req.left), (5, 0, Some(0)));
        assert!(!req.compact && req.no_peer_id);
        assert_eq!(req.event, Event::Completed);
        assert_eq!(req.numwant, Some(12));
        assert_eq!(req.ip, Some("127.0.0.2".parse().unwrap()));
        // Defaults.
        let req =
            AnnounceRequest::parse(&query(hash(1), 7, 1, "&numwant=-1&ip=host.example")).unwrap();
        assert!(req.compact && !req.no_peer_id);
        assert_eq!(
            (req.left, req.numwant, req.ip, req.event),
            (None, None, None, Event::None)
        );
        for (event, expected) in [
            ("started", Event::Started),
            ("stopped", Event::Stopped),
            ("", Event::None),
            ("empty", Event::None),
            ("paused", Event::None),
        ] {
            let q = query(hash(1), 7, 1, &format!("&event={event}"));
            assert_eq!(AnnounceRequest::parse(&q).unwrap().event, expected);
        }
    }

    #[test]
    fn malformed_queries_are_errors() {
        let ih = enc(&hash(1));
        let pid = enc(&[7; 20]);
        let cases = [
            (
                format!("peer_id={pid}&port=1"),
                TrackerError::Missing("info_hash"),
            ),
            (
                format!("info_hash={ih}&port=1"),
                TrackerError::Missing("peer_id"),
            ),
            (
                format!("info_hash={ih}&peer_id={pid}"),
                TrackerError::Missing("port"),
            ),
            (
                format!("info_hash={}&peer_id={pid}&port=1", enc(&[1; 19])),
                TrackerError::Invalid("info_hash"),
            ),
            (
                format!("info_hash={}&peer_id={pid}&port=1", enc(&[1; 21])),
                TrackerError::Invalid("info_hash"),
            ),
            (
                format!("info_hash={ih}&peer_id=short&port=1"),
                TrackerError::Invalid("peer_id"),
            ),
            (
                format!("info_hash={ih}&peer_id={pid}&port=abc"),
                TrackerError::Invalid("port"),
            ),
            (
                format!("info_hash={ih}&peer_id={pid}&port=0"),
                TrackerError::Invalid("port"),
            ),
            (
                format!("info_hash={ih}&peer_id={pid}&port=70000"),
                TrackerError::Invalid("port"),
            ),
            (
                format!("info_hash={ih}&peer_id={pid}&port=-1"),
                TrackerError::Invalid("port"),
            ),
            (
                format!("info_hash={ih}&peer_id={pid}&port=1&left=x"),
                TrackerError::Invalid("left"),
            ),
            (
                format!("info_hash={ih}&peer_id={pid}&port=1&compact=2"),
                TrackerError::Invalid("compact"),
            ),
            (
                format!("info_hash={ih}&peer_id={pid}&port=1&event=bogus"),
                TrackerError::Invalid("event"),
            ),
            (
                format!("info_hash={ih}&peer_id={pid}&port=1&numwant=many"),
                TrackerError::Invalid("numwant"),
            ),
            (
                format!("info_hash={ih}&info_hash={ih}&peer_id={pid}&port=1"),
                TrackerError::Repeated("info_hash"),
            ),
            (
                format!("info_hash={ih}%&peer_id={pid}&port=1"),
                TrackerError::BadPercentEncoding,
            ),
            (String::new(), TrackerError::Missing("info_hash")),
        ];
        for (q, err) in cases {
            assert_eq!(AnnounceRequest::parse(&q), Err(err), "{q}");
        }
        let mut t = tracker();
        assert_eq!(
            t.handle(&format!("peer_id={pid}&port=1"), src("10.0.0.1:1"), 0),
            b"d14:failure reason17:missing info_hashe"
        );
        assert_eq!(t.peers_known(0), 0);
    }

    #[test]
    fn unknown_torrents_are_refused() {
        let mut t = tracker();
        assert!(!t.register(hash(1)), "already registered");
        assert_eq!(t.torrents(), vec![hash(1)]);
        let req = AnnounceRequest::parse(&query(hash(2), 7, 6881, "")).unwrap();
        assert_eq!(
            t.announce(&req, src("10.0.0.1:1"), 0),
            Err(TrackerError::UnknownTorrent)
        );
        assert_eq!(
            t.handle(&query(hash(2), 7, 6881, ""), src("10.0.0.1:1"), 0),
            b"d14:failure reason15:unknown torrente"
        );
        announce(&mut t, &query(hash(1), 7, 6881, ""), "10.0.0.1:1", 0);
        assert!(t.remove_torrent(&hash(1)));
        assert!(!t.remove_torrent(&hash(1)));
        assert!(t.torrents().is_empty() && !t.is_registered(&hash(1)));
        assert_eq!(t.peers_known(0), 0);
        assert_eq!(
            t.handle(&query(hash(1), 7, 6881, ""), src("10.0.0.1:1"), 0),
            b"d14:failure reason15:unknown torrente"
        );
    }

    #[test]
    fn compact_ipv4_is_byte_exact() {
        let mut t = tracker();
        let first = announce(
            &mut t,
            &query(hash(1), 1, 6881, "&left=100&event=started"),
            "10.0.0.1:40000",
            0,
        );
        let mut expected = head(0, 1);
        expected.extend_from_slice(b"5:peers0:e");
        assert_eq!(first, expected, "alone: not given itself");
        let body = announce(
            &mut t,
            &query(hash(1), 2, 6882, "&left=100&compact=1"),
            "10.0.0.2:40001",
            SEC,
        );
        let mut expected = head(0, 2);
        expected.extend_from_slice(b"5:peers6:\x0a\x00\x00\x01\x1a\xe1e");
        assert_eq!(body, expected);
        assert_eq!(t.swarm_counts(&hash(1), SEC), Some((0, 2)));
    }

    #[test]
    fn compact_ipv6_is_byte_exact() {
        let mut t = tracker();
        announce(
            &mut t,
            &query(hash(1), 1, 6881, "&left=0"),
            "[2001:db8::1]:40000",
            0,
        );
        let body = announce(
            &mut t,
            &query(hash(1), 2, 6882, "&left=100"),
            "10.0.0.2:40001",
            0,
        );
        let mut expected = head(1, 1);
        expected.extend_from_slice(b"5:peers0:6:peers618:");
        expected.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        expected.extend_from_slice(&[0x1a, 0xe1, b'e']);
        assert_eq!(body, expected);
        // An IPv4-mapped source (dual-stack socket) is an IPv4 peer.
        let mut t = tracker();
        announce(
            &mut t,
            &query(hash(1), 1, 6881, ""),
            "[::ffff:10.0.0.1]:40000",
            0,
        );
        let body = announce(&mut t, &query(hash(1), 2, 6882, ""), "10.0.0.2:40001", 0);
        let mut expected = head(0, 2);
        expected.extend_from_slice(b"5:peers6:\x0a\x00\x00\x01\x1a\xe1e");
        assert_eq!(body, expected);
    }

    #[test]
    fn dictionary_peers_when_not_compact() {
        let mut t = tracker();
        announce(
            &mut t,
            &query(hash(1), b'A', 6881, "&left=0"),
            "10.0.0.1:40000",
            0,
        );
        let body = announce(
            &mut t,
            &query(hash(1), 2, 6882, "&compact=0"),
            "10.0.0.2:1",
            0,
        );
        let mut expected = head(1, 1);
        expected.extend_from_slice(
            b"5:peersld2:ip8:10.0.0.17:peer id20:AAAAAAAAAAAAAAAAAAAA4:porti6881eeee",
        );
        assert_eq!(body, expected);
        let body = announce(
            &mut t,
            &query(hash(1), 2, 6882, "&compact=0&no_peer_id=1"),
            "10.0.0.2:1",
            0,
        );
        let mut expected = head(1, 1);
        expected.extend_from_slice(b"5:peersld2:ip8:10.0.0.14:porti6881eeee");
        assert_eq!(body, expected);
    }

    #[test]
    fn peers_expire_by_age_and_stopped_removes() {
        let mut t = tracker();
        announce(&mut t, &query(hash(1), 1, 6881, ""), "10.0.0.1:1", 0);
        announce(&mut t, &query(hash(1), 3, 6883, ""), "10.0.0.3:1", 20 * SEC);
        assert_eq!(t.peers_known(29 * SEC), 2);
        let body = announce(&mut t, &query(hash(1), 2, 6882, ""), "10.0.0.2:1", 29 * SEC);
        assert_eq!(compact_count(&body), 2);
        // Peer 1 was last seen at 0; the TTL is 30 s.
        assert_eq!(t.peers_known(30 * SEC), 2);
        let body = announce(&mut t, &query(hash(1), 2, 6882, ""), "10.0.0.2:1", 30 * SEC);
        assert_eq!(compact_count(&body), 1);
        assert!(body.starts_with(&head(0, 2)));
        // Re-announcing keeps a peer alive.
        assert_eq!(t.peers_known(55 * SEC), 1);
        assert_eq!(t.purge(55 * SEC), 1);
        // Stopped removes at once and gets no peers.
        announce(&mut t, &query(hash(1), 1, 6881, ""), "10.0.0.1:1", 56 * SEC);
        let body = announce(
            &mut t,
            &query(hash(1), 2, 6882, "&event=stopped"),
            "10.0.0.2:1",
            56 * SEC,
        );
        let mut expected = head(0, 1);
        expected.extend_from_slice(b"5:peers0:e");
        assert_eq!(body, expected);
        assert_eq!(t.peers_known(56 * SEC), 1);
    }

    #[test]
    fn numwant_is_honoured_and_capped() {
        let mut t = tracker();
        for p in 1..=10u8 {
            announce(
                &mut t,
                &query(hash(1), p, 6000 + u16::from(p), ""),
                &format!("10.0.0.{p}:1"),
                0,
            );
        }
        let q = |extra: &str| query(hash(1), 1, 6001, extra);
        assert_eq!(
            compact_count(&announce(&mut t, &q("&numwant=3"), "10.0.0.1:1", 0)),
            3
        );
        assert_eq!(
            compact_count(&announce(&mut t, &q("&numwant=0"), "10.0.0.1:1", 0)),
            0
        );
        // Capped at max_peers_per_reply (4); -1 and absent mean the maximum.
        assert_eq!(
            compact_count(&announce(&mut t, &q("&numwant=100"), "10.0.0.1:1", 0)),
            4
        );
        assert_eq!(
            compact_count(&announce(&mut t, &q("&numwant=-1"), "10.0.0.1:1", 0)),
            4
        );
        let body = announce(&mut t, &q(""), "10.0.0.1:1", 0);
        assert_eq!(compact_count(&body), 4);
        // Distinct peers, never the announcer itself.
        let start = body.windows(7).position(|w| w == b"5:peers").unwrap() + 10;
        let mut seen: Vec<&[u8]> = body[start..start + 24].chunks(6).collect();
        assert!(seen.iter().all(|p| p[3] != 1));
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn seeds_get_only_leechers() {
        let mut t = tracker();
        announce(&mut t, &query(hash(1), 1, 6001, "&left=0"), "10.0.0.1:1", 0);
        announce(&mut t, &query(hash(1), 2, 6002, "&left=5"), "10.0.0.2:1", 0);
        let body = announce(&mut t, &query(hash(1), 3, 6003, "&left=0"), "10.0.0.3:1", 0);
        let mut expected = head(2, 1);
        expected.extend_from_slice(b"5:peers6:\x0a\x00\x00\x02\x17\x72e");
        assert_eq!(body, expected);
    }

    #[test]
    fn ip_parameter_only_from_loopback() {
        let mut t = tracker();
        // A local process may name the address others should dial...
        announce(
            &mut t,
            &query(hash(1), 1, 6881, "&ip=10.9.9.9"),
            "127.0.0.1:1",
            0,
        );
        // ...a remote one may not.
        announce(
            &mut t,
            &query(hash(1), 2, 6882, "&ip=192.0.2.7"),
            "10.0.0.2:1",
            0,
        );
        let body = announce(
            &mut t,
            &query(hash(1), 3, 6883, "&numwant=10"),
            "10.0.0.3:1",
            0,
        );
        let mut expected = head(0, 3);
        expected.extend_from_slice(b"5:peers12:\x0a\x09\x09\x09\x1a\xe1\x0a\x00\x00\x02\x1a\xe2e");
        assert_eq!(body.len(), expected.len());
        assert!(body.windows(6).any(|w| w == b"\x0a\x09\x09\x09\x1a\xe1"));
        assert!(body.windows(6).any(|w| w == b"\x0a\x00\x00\x02\x1a\xe2"));
    }

    #[test]
    fn peers_per_torrent_are_capped() {
        let mut t = Tracker::new(TrackerConfig {
            max_peers_per_torrent: 2,
            ..Default::default()
        });
        t.register(hash(1));
        for p in 1..=3u8 {
            announce(
                &mut t,
                &query(hash(1), p, 6000, ""),
                &format!("10.0.0.{p}:1"),
                0,
            );
        }
        assert_eq!(t.peers_known(0), 2);
        // The third peer is answered, just not stored.
        let body = announce(&mut t, &query(hash(1), 3, 6000, ""), "10.0.0.3:1", 0);
        assert_eq!(compact_count(&body), 2);
    }

    /// The IPv4 peers of a compact reply, in order.
    fn compact_peers(body: &[u8]) -> Vec<SocketAddr> {
        let at = body.windows(7).position(|w| w == b"5:peers").unwrap() + 7;
        let colon = body[at..].iter().position(|&b| b == b':').unwrap();
        let start = at + colon + 1;
        body[start..start + 6 * compact_count(body)]
            .chunks(6)
            .map(|c| {
                let ip = std::net::Ipv4Addr::new(c[0], c[1], c[2], c[3]);
                SocketAddr::from((ip, u16::from_be_bytes([c[4], c[5]])))
            })
            .collect()
    }

    #[test]
    fn initial_seeding_hands_out_the_super_seed_to_the_first_peers_only() {
        let mut t = Tracker::new(TrackerConfig {
            super_seed_fanout: 2,
            max_peers_per_reply: 50,
            ..Default::default()
        });
        t.register(hash(1));
        let seed = src("10.0.0.100:7000");
        t.set_super_seed(seed, [100; 20]);
        // Its own announce changes nothing: it is listed once.
        announce(
            &mut t,
            &query(hash(1), 100, 7000, "&left=0"),
            "10.0.0.100:1",
            0,
        );
        let ask = |t: &mut Tracker, p: u8| {
            let body = announce(
                t,
                &query(hash(1), p, 6000, "&left=5"),
                &format!("10.0.0.{p}:1"),
                0,
            );
            compact_peers(&body)
        };
        // The first two get the super seed, first in the list.
        assert_eq!(ask(&mut t, 1), vec![seed]);
        assert_eq!(ask(&mut t, 2)[0], seed);
        // The third and later get the peers only.
        for p in 3..=6 {
            let peers = ask(&mut t, p);
            assert!(!peers.contains(&seed), "peer {p} got the super seed");
            assert_eq!(peers.len(), usize::from(p) - 1);
        }
        // A granted peer keeps getting it on re-announce.
        assert_eq!(ask(&mut t, 1)[0], seed);
        // Where another seed has the torrent, nobody new gets the super seed.
        t.register(hash(3));
        let other = announce(
            &mut t,
            &query(hash(3), 50, 6050, "&left=0"),
            "10.0.0.50:1",
            0,
        );
        assert!(compact_peers(&other).is_empty(), "a seed gets no seeds");
        let body = announce(&mut t, &query(hash(3), 7, 6000, "&left=5"), "10.0.0.7:1", 0);
        assert_eq!(compact_peers(&body), vec![src("10.0.0.50:6050")]);
        // A seed not heard for more than about an interval may have dropped the crumb
        // (librqbit never says `stopped`): it no longer stands in for the super seed.
        let q = query(hash(3), 8, 6000, "&left=5");
        let body = announce(&mut t, &q, "10.0.0.8:1", 20 * SEC);
        assert_eq!(compact_peers(&body)[0], seed);
        assert_eq!(t.super_seed_grants(), 4);
        t.remove_torrent(&hash(3));
        assert_eq!(t.swarm_counts(&hash(1), 0), Some((1, 6)));
        // A peer alone with the super seed gets it whatever the fanout: here the
        // only other peers left.
        for p in 1..=6u8 {
            let q = query(hash(1), p, 6000, "&event=stopped");
            announce(&mut t, &q, &format!("10.0.0.{p}:1"), 0);
        }
        assert_eq!(ask(&mut t, 9), vec![seed]);
        // Fanout 0: everyone gets it (and the sample may put it anywhere), even
        // before the super seed's own first announce.
        let mut t = tracker();
        t.set_super_seed(seed, [100; 20]);
        for p in 1..=3 {
            assert!(ask(&mut t, p).contains(&seed));
        }
        // Seeds get no super seed.
        let body = announce(&mut t, &query(hash(1), 8, 6000, "&left=0"), "10.0.0.8:1", 0);
        assert!(!compact_peers(&body).contains(&seed));
    }
    #[test]
    fn scrape_counts_seeds_leechers_and_the_super_seed() {
        let mut t = tracker();
        assert!(t.register(hash(2)));
        announce(
            &mut t,
            &query(hash(1), 7, 6881, "&left=0"),
            "127.0.0.2:1",
            0,
        );
        announce(
            &mut t,
            &query(hash(1), 8, 6882, "&left=5"),
            "127.0.0.3:1",
            0,
        );
        let one = format!("20:{}", String::from_utf8_lossy(&hash(1)));
        let two = format!("20:{}", String::from_utf8_lossy(&hash(2)));
        let f1 = "d8:completei1e10:downloadedi0e10:incompletei1ee";
        let f2 = "d8:completei0e10:downloadedi0e10:incompletei0ee";
        // One torrent asked; an unknown one is left out.
        let body = t.scrape(
            &format!("info_hash={}&info_hash={}", enc(&hash(1)), enc(&hash(9))),
            SEC,
        );
        assert_eq!(body, format!("d5:filesd{one}{f1}ee").into_bytes());
        // No info_hash: every torrent, in key order.
        let body = t.scrape("", SEC);
        assert_eq!(body, format!("d5:filesd{one}{f1}{two}{f2}ee").into_bytes());
        // The super seed is a seed of every torrent from the start.
        t.set_super_seed(src("127.0.0.1:6000"), [0xee; 20]);
        let body = t.scrape(&format!("info_hash={}", enc(&hash(2))), SEC);
        let f2 = "d8:completei1e10:downloadedi0e10:incompletei0ee";
        assert_eq!(body, format!("d5:filesd{two}{f2}ee").into_bytes());
        // Expired peers are not counted.
        let body = t.scrape(&format!("info_hash={}", enc(&hash(1))), 60 * SEC);
        let f1 = "d8:completei1e10:downloadedi0e10:incompletei0ee";
        assert_eq!(body, format!("d5:filesd{one}{f1}ee").into_bytes());
        // A malformed info_hash gets a failure body.
        assert!(
            t.scrape("info_hash=%41", SEC)
                .starts_with(b"d14:failure reason")
        );
    }
}
