// SPDX-License-Identifier: MPL-2.0
//! crumbs with BitTorrent clients nobody here wrote: aria2 (Debian's `aria2`, driven
//! over its JSON-RPC on loopback) and libtorrent (Debian's `python3-libtorrent`, the
//! library of qBittorrent and Deluge, driven by `tests/libtorrent_peer.py`). Both ways:
//! - aria2 and libtorrent each seed every crumb (from the channel's own spool files,
//!   hash-checked) to a channel whose super seed is starved (16 KiB/s, a third of the
//!   stream), and crumbsrc takes the stream from them and plays, at full quality;
//! - aria2 fetches crumbs from crumbsrc; libtorrent, with its default settings (its
//!   SSRF rule takes a loopback tracker only at `/announce`), fetches a live channel's
//!   crumbs through its tracker;
//! - aria2 serving wrong data (unverified random bytes) never reaches the decoder;
//! - two aria2 fetching at once from a super seed that sends each enhancement piece
//!   once (crumbsink `enhancement-copies=1`) trade the rest and end intact.
//!
//! Skipped (with a message) when `aria2c` or python3-libtorrent is not installed;
//! `scripts/setup` installs both.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use gst::prelude::*;
use gstcrumbs::core::api::WindowDoc;
use gstcrumbs::p2p::RUNTIME;

/// An aria2c process with JSON-RPC on loopback, killed on drop.
struct Aria2 {
    child: Child,
    rpc: String,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "crumbs-interop-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Aria2 {
    /// A seeder that hash-checks what it is given (and a fetcher).
    fn start() -> Option<Aria2> {
        Self::start_with(&["--check-integrity=true"])
    }

    fn start_with(extra: &[&str]) -> Option<Aria2> {
        if Command::new("aria2c").arg("--version").output().is_err() {
            eprintln!("SKIPPED: aria2c is not installed (scripts/setup installs it)");
            return None;
        }
        let dir = TempDir::new("aria2");
        let rpc_port = free_port();
        let child = Command::new("aria2c")
            .args([
                "--enable-rpc=true",
                "--rpc-listen-all=false",
                &format!("--rpc-listen-port={rpc_port}"),
                &format!("--listen-port={}", free_port()),
                // aria2 counts a seeding torrent as active: room for every crumb.
                "--max-concurrent-downloads=1000",
                "--seed-ratio=0.0",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--bt-tracker-connect-timeout=5",
                "--quiet=true",
                "--log=aria2.log",
                "--log-level=info",
                "--stop-with-process",
                &std::process::id().to_string(),
            ])
            .args(extra)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aria2c starts");
        let a = Aria2 {
            child,
            rpc: format!("http://127.0.0.1:{rpc_port}/jsonrpc"),
            _dir: dir,
        };
        let end = Instant::now() + Duration::from_secs(10);
        while a.call("aria2.getVersion", serde_json::json!([])).is_err() {
            assert!(Instant::now() < end, "aria2c RPC did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(a)
    }

    fn call(&self, method: &str, params: serde_json::Value) -> Result<serde_json::Value, String> {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": "t", "method": method, "params": params});
        RUNTIME.block_on(async {
            let r = reqwest::Client::new()
                .post(&self.rpc)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
            match v.get("result") {
                Some(r) => Ok(r.clone()),
                None => Err(format!("{method}: {v}")),
            }
        })
    }

    /// Adds a torrent with its data (or its destination) in `dir`; returns the gid.
    fn add(&self, torrent: &[u8], dir: &Path) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(torrent);
        let opts = serde_json::json!({"dir": dir.display().to_string()});
        self.call("aria2.addTorrent", serde_json::json!([b64, [], opts]))
            .expect("aria2 takes the torrent")
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The end of aria2's log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self._dir.0.join("aria2.log")).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| {
                !l.contains("RPC") && !l.contains("HttpServer") && !l.starts_with("Exception")
            })
            .collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn status(&self, gid: &str) -> serde_json::Value {
        self.call("aria2.tellStatus", serde_json::json!([gid]))
            .unwrap_or_default()
    }
}

impl Drop for Aria2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(url: &str) -> Vec<u8> {
    RUNTIME.block_on(async {
        let r = reqwest::get(url).await.expect("HTTP GET");
        assert!(r.status().is_success(), "GET {url}: {}", r.status());
        r.bytes().await.unwrap().to_vec()
    })
}

fn origin(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    format!("http://{}", &rest[..rest.find('/').unwrap()])
}

/// A live channel whose super seed may send 16 KiB/s: three VP8 layers (96/192/320
/// kbit/s, 76 KB/s in all), one crumb per layer of 3 to 8 pieces, 3 s Segments.
/// Returns it with its URL and spool folder.
fn starved_channel() -> (Peer, String, PathBuf) {
    let channel = Peer::start(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=4 \
         ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=90 layer-bitrates=<96,192,320> \
         ! svcsegmenter max-crumb-size=0 min-gops=1 max-gops=1 \
         ! crumbsink name=ch window=8 start-offset=2 max-upload-rate=16384",
    );
    let listening = channel.listening();
    let url = listening.get::<String>("url").unwrap();
    let spool = PathBuf::from(listening.get::<String>("spool-dir").unwrap());
    (channel, url, spool)
}

/// A crumbsrc named `viewer` decoding the channel at `url`. aria2 answers a new
/// connection on its one-second tick: the peer patience leaves it time (crumbsrc
/// peers answer in milliseconds, hence the 300 ms default).
fn viewer(url: &str) -> Peer {
    Peer::start(&format!(
        "crumbsrc name=viewer location={url} peer-patience=1500 ! vp8dec ! fakesink sync=false"
    ))
}

#[test]
fn aria2_seeds_to_crumbsrc_and_fetches_from_the_channel() {
    init();
    let Some(aria2) = Aria2::start() else {
        return;
    };
    let (channel, url, spool) = starved_channel();
    let origin = origin(&url);

    // aria2 seeds every crumb as it is published, from the channel's spool files.
    let mut seeded = std::collections::HashMap::new();
    let seed_new = |seeded: &mut std::collections::HashMap<(u64, u16), String>| -> WindowDoc {
        let w: WindowDoc = serde_json::from_slice(&get(&url)).unwrap();
        for s in &w.segments {
            for c in &s.crumbs {
                if let std::collections::hash_map::Entry::Vacant(e) = seeded.entry((s.seq, c.index))
                {
                    e.insert(aria2.add(&get(&format!("{origin}{}", c.torrent)), &spool));
                }
            }
        }
        w
    };
    while seed_new(&mut seeded).segments.len() < 3 {
        std::thread::sleep(Duration::from_millis(100));
    }

    let client = viewer(&url);
    let end = Instant::now() + Duration::from_secs(60);
    let played = |p: &Peer| {
        p.named("crumbsrc-segment")
            .into_iter()
            .filter(|r| !r.get::<bool>("skipped").unwrap())
            .collect::<Vec<_>>()
    };
    while played(&client).len() < 8 {
        assert!(
            Instant::now() < end,
            "crumbsrc stalled: {:?}",
            played(&client)
        );
        client.assert_no_error();
        seed_new(&mut seeded);
        std::thread::sleep(Duration::from_millis(100));
    }

    // The other way: a second aria2 fetches, into an empty folder, the crumbs of a
    // Segment crumbsrc played whole, once the first aria2 stopped seeding them: from
    // crumbsrc (and the starved super seed).
    let w = seed_new(&mut seeded);
    // The newest Segment played (crumbs 1..d) still in the window.
    let (newest, d) = played(&client)
        .iter()
        .rev()
        .filter(|r| u(r, "d") > 0)
        .find_map(|r| {
            let s = w.segments.iter().find(|s| s.seq == u(r, "seq"))?;
            Some((s.clone(), u(r, "d") as u16))
        })
        .expect("a Segment played still in the window");
    let crumbs: Vec<_> = newest.crumbs.iter().filter(|c| c.index <= d).collect();
    for c in &crumbs {
        aria2
            .call(
                "aria2.remove",
                serde_json::json!([seeded[&(newest.seq, c.index)]]),
            )
            .unwrap();
    }
    let viewer = client.pipeline.by_name("viewer").unwrap();
    let uploaded = |v: &gst::Element| {
        v.property::<gst::Structure>("stats")
            .get::<u64>("bytes-uploaded")
            .unwrap()
    };
    let uploaded_before = uploaded(&viewer);
    let fetcher = Aria2::start().unwrap();
    let fetched = TempDir::new("fetched");
    let gids: Vec<(String, String)> = crumbs
        .iter()
        .map(|c| {
            let t = get(&format!("{origin}{}", c.torrent));
            let name = gstcrumbs::p2p::parse_torrent(&t).unwrap().name;
            (fetcher.add(&t, &fetched.0), name)
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(30);
    for (gid, name) in &gids {
        loop {
            let st = fetcher.status(gid);
            let status = st["status"].as_str().unwrap_or("").to_owned();
            let done = st["completedLength"] == st["totalLength"] && st["totalLength"] != "0";
            if done || status == "complete" {
                break;
            }
            assert!(status != "error", "aria2 failed on {name}: {st}");
            assert!(
                Instant::now() < end,
                "aria2 did not fetch {name}: {st}\n{}",
                fetcher.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let got = std::fs::read(fetched.0.join(name)).unwrap();
        let want = std::fs::read(spool.join(name)).unwrap();
        assert_eq!(got, want, "aria2 fetched {name} intact");
    }

    let uploaded = uploaded(&viewer) - uploaded_before;
    eprintln!("crumbsrc uploaded {uploaded} B while aria2 fetched");
    assert!(uploaded > 0, "aria2 fetched from crumbsrc");
    client.assert_no_error();
    channel.assert_no_error();
    let recs = played(&client);
    let from_peers: u64 = recs.iter().map(|r| u(r, "bytes-from-peers")).sum();
    let from_seed: u64 = recs.iter().map(|r| u(r, "bytes-from-super-seed")).sum();
    let failed = recs
        .iter()
        .filter(|r| !r.get::<bool>("success").unwrap())
        .count();
    let above = recs.iter().filter(|r| u(r, "d") >= 2).count();
    eprintln!(
        "crumbsrc: {} Segments, {failed} failed, {above} with d >= 2; {from_peers} B from aria2, {from_seed} B from the super seed",
        recs.len()
    );
    assert!(
        from_peers > from_seed,
        "crumbsrc takes the stream from aria2, not the starved super seed"
    );
    // The starved super seed alone (48 KB per Segment) cannot carry crumbs 1..2
    // (about 100 KB): those Segments are aria2's.
    assert!(
        above >= 3,
        "quality above the super seed's reach with aria2's help"
    );
    assert!(failed <= 1, "{failed} Segments failed");
}

/// The escape of a crumb fetched from the super seed alone (crumbsrc's weak line with
/// an urgent crumb 1, `Fetch::initial_peers_only`): its one source, the starved super
/// seed, crawls; opened to its tracker (`P2pSession::open_to_trackers`), the download
/// announces to the channel's tracker, which lists aria2 seeding the crumb, and aria2
/// brings most of it.
#[test]
fn an_alone_download_opened_to_the_tracker_fetches_from_aria2() {
    init();
    let Some(aria2) = Aria2::start() else {
        return;
    };
    let (channel, url, spool) = starved_channel();
    let origin = origin(&url);
    let w: WindowDoc = loop {
        let w: WindowDoc = serde_json::from_slice(&get(&url)).unwrap();
        if !w.segments.is_empty() {
            break w;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let super_seed: std::net::SocketAddr = w.super_seed.as_deref().unwrap().parse().unwrap();
    // The newest Segment's largest crumb: at 16 KiB/s seconds of the super seed.
    let crumb = w
        .segments
        .last()
        .unwrap()
        .crumbs
        .iter()
        .max_by_key(|c| c.size)
        .unwrap()
        .clone();
    let torrent = get(&format!("{origin}{}", crumb.torrent));
    aria2.add(&torrent, &spool);
    // The channel's tracker lists aria2 as a seed of it (the super seed is counted
    // from the start): complete 2 in its scrape.
    let pct: String = gstcrumbs::p2p::parse_torrent(&torrent)
        .unwrap()
        .info_hash
        .iter()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let complete = || {
        let body = get(&format!("{url}/scrape?info_hash={pct}"));
        let at = body.windows(11).position(|w| w == b"8:completei").unwrap() + 11;
        let end = at + body[at..].iter().position(|&b| b == b'e').unwrap();
        std::str::from_utf8(&body[at..end])
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let end = Instant::now() + Duration::from_secs(20);
    while complete() < 2 {
        assert!(Instant::now() < end, "aria2 never announced the crumb");
        std::thread::sleep(Duration::from_millis(100));
    }

    let dir = TempDir::new("alone");
    let session = RUNTIME
        .block_on(gstcrumbs::p2p::P2pSession::new(
            gstcrumbs::p2p::SessionConfig {
                spool_dir: dir.0.clone(),
                ..Default::default()
            },
        ))
        .unwrap();
    let fetch = gstcrumbs::p2p::Fetch {
        initial_peers_only: true,
        ..Default::default()
    };
    let id = RUNTIME
        .block_on(session.download_with(&torrent, &dir.0, vec![super_seed], fetch))
        .unwrap();
    // Alone: the first bytes come from the super seed, aria2 is not asked.
    let end = Instant::now() + Duration::from_secs(20);
    while session.progress(id).unwrap().have_bytes == 0 {
        assert!(Instant::now() < end, "nothing from the super seed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let by_peer = session.fetched_by_peer(id).unwrap();
    assert!(by_peer.keys().all(|a| *a == super_seed), "{by_peer:?}");

    session.open_to_trackers(id).unwrap();
    RUNTIME
        .block_on(session.wait_finished(id, Duration::from_secs(30)))
        .unwrap();
    let data = RUNTIME.block_on(session.read_file(id)).unwrap();
    let name = gstcrumbs::p2p::parse_torrent(&torrent).unwrap().name;
    assert_eq!(
        data,
        std::fs::read(spool.join(&name)).unwrap(),
        "{name} intact"
    );
    let by_peer = session.fetched_by_peer(id).unwrap();
    let from_seed = by_peer.get(&super_seed).copied().unwrap_or(0);
    let from_others: u64 = by_peer
        .iter()
        .filter(|(a, _)| **a != super_seed)
        .map(|(_, b)| b)
        .sum();
    eprintln!(
        "crumb of {} B: {from_others} B from aria2, {from_seed} B from the super seed",
        crumb.size
    );
    assert!(from_others > from_seed, "{by_peer:?}");
    RUNTIME.block_on(session.shutdown()).unwrap();
    channel.assert_no_error();
}

/// A peer that serves wrong data (aria2 seeding random bytes of the right length,
/// unverified) with the super seed starved: librqbit's piece hashes catch every bad
/// piece and drop the peer, crumbsrc takes those crumbs from the super seed, and no
/// byte of the bad copies reaches the decoder (every Segment played decodes, none is
/// malformed).
#[test]
fn a_peer_serving_corrupt_crumbs_never_reaches_the_decoder() {
    init();
    let Some(aria2) = Aria2::start_with(&["--bt-seed-unverified=true"]) else {
        return;
    };
    let (channel, url, _) = starved_channel();
    let origin = origin(&url);
    let bad = TempDir::new("bad");
    let mut seeded = std::collections::HashSet::new();
    let mut noise = 0x9E37_79B9_7F4A_7C15u64;
    let mut seed_bad = |seeded: &mut std::collections::HashSet<(u64, u16)>| {
        let w: WindowDoc = serde_json::from_slice(&get(&url)).unwrap();
        for s in &w.segments {
            for c in &s.crumbs {
                if seeded.insert((s.seq, c.index)) {
                    let t = get(&format!("{origin}{}", c.torrent));
                    let name = gstcrumbs::p2p::parse_torrent(&t).unwrap().name;
                    let junk: Vec<u8> = (0..c.size)
                        .map(|_| {
                            noise ^= noise << 13;
                            noise ^= noise >> 7;
                            noise ^= noise << 17;
                            noise as u8
                        })
                        .collect();
                    std::fs::write(bad.0.join(&name), junk).unwrap();
                    aria2.add(&t, &bad.0);
                }
            }
        }
    };
    let client = viewer(&url);
    let end = Instant::now() + Duration::from_secs(60);
    let played = |p: &Peer| {
        p.named("crumbsrc-segment")
            .into_iter()
            .filter(|r| u(r, "d") > 0)
            .count()
    };
    while played(&client) < 5 {
        assert!(Instant::now() < end, "crumbsrc stalled");
        client.assert_no_error();
        seed_bad(&mut seeded);
        std::thread::sleep(Duration::from_millis(100));
    }
    client.assert_no_error();
    let recs = client.named("crumbsrc-segment");
    let from_bad: u64 = recs.iter().map(|r| u(r, "bytes-from-peers")).sum();
    let st = client
        .pipeline
        .by_name("viewer")
        .unwrap()
        .property::<gst::Structure>("stats");
    eprintln!(
        "{} Segments played; {from_bad} B fetched from the corrupt peer and thrown away",
        played(&client)
    );
    assert!(
        from_bad > 0,
        "the corrupt peer was asked (the test exercised the path)"
    );
    // librqbit drops a peer at its first piece that fails the hash check: a crumb
    // torrent takes a piece or two from it, not the crumb.
    assert!(
        from_bad <= 2 * 16_384 * recs.len() as u64,
        "{from_bad} B from the corrupt peer over {} Segments: it was not dropped",
        recs.len()
    );
    assert_eq!(st.get::<u64>("crumbs-malformed").unwrap(), 0);
    channel.assert_no_error();
}

/// A libtorrent session in a python3 child (`tests/libtorrent_peer.py`), one JSON
/// request and answer per line; ends when dropped (its stdin closes).
struct Libtorrent {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    torrents: TempDir,
}

impl Libtorrent {
    fn start() -> Option<Libtorrent> {
        // Debian's interpreter: python3-libtorrent is built for it.
        let python = "/usr/bin/python3";
        let ok = Command::new(python)
            .args(["-c", "import libtorrent"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: python3-libtorrent is not installed (scripts/setup installs it)");
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libtorrent_peer.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(free_port().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lt = Libtorrent {
            child,
            stdin,
            stdout,
            torrents: TempDir::new("libtorrent"),
        };
        lt.call(serde_json::json!({"op": "status"}));
        Some(lt)
    }

    fn call(&mut self, req: serde_json::Value) -> serde_json::Value {
        writeln!(self.stdin, "{req}").expect("libtorrent peer takes a request");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("libtorrent peer answers");
        assert!(!line.is_empty(), "libtorrent peer exited");
        serde_json::from_str(&line).expect("libtorrent peer answers JSON")
    }

    /// Adds a .torrent whose data is (or goes) in `save`; returns its info-hash.
    fn add(&mut self, torrent: &[u8], save: &Path) -> String {
        let name = gstcrumbs::p2p::parse_torrent(torrent).unwrap().name;
        let path = self.torrents.0.join(format!("{name}.torrent"));
        std::fs::write(&path, torrent).unwrap();
        let r = self.call(serde_json::json!({
            "op": "add",
            "torrent": path.display().to_string(),
            "save": save.display().to_string(),
        }));
        r["info_hash"].as_str().expect("an info-hash").to_owned()
    }

    fn status(&mut self) -> Vec<serde_json::Value> {
        let r = self.call(serde_json::json!({"op": "status"}));
        r["torrents"].as_array().cloned().unwrap_or_default()
    }

    fn alerts(&mut self) -> String {
        let r = self.call(serde_json::json!({"op": "alerts"}));
        let all: Vec<String> = r["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        all[all.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Libtorrent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// libtorrent with its default settings fetches a live channel's crumbs: the .torrent
/// files name only the channel's tracker, which libtorrent accepts on loopback only at
/// `/announce`, so every byte it gets proves the tracker worked for it.
/// A live channel of 1 s Segments (three VP8 layers, one crumb per layer), crumbsink
/// `ch` with `sink_props` added, once its window lists 3 Segments: the channel, its
/// window then, its spool folder and its origin.
fn live_channel(sink_props: &str) -> (Peer, WindowDoc, PathBuf, String) {
    let channel = Peer::start(&format!(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=4 \
         ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=30 layer-bitrates=<96,192,320> \
         ! svcsegmenter max-crumb-size=0 min-gops=1 max-gops=1 \
         ! crumbsink name=ch window=8 start-offset=2 {sink_props}"
    ));
    let listening = channel.listening();
    let url = listening.get::<String>("url").unwrap();
    let spool = PathBuf::from(listening.get::<String>("spool-dir").unwrap());
    let end = Instant::now() + Duration::from_secs(30);
    let w = loop {
        let w: WindowDoc = serde_json::from_slice(&get(&url)).unwrap();
        if w.segments.len() >= 3 {
            break w;
        }
        assert!(Instant::now() < end, "the channel published no 3 Segments");
        std::thread::sleep(Duration::from_millis(100));
    };
    (channel, w, spool, origin(&url))
}

#[test]
fn libtorrent_fetches_a_live_channel_through_its_tracker() {
    init();
    let Some(mut lt) = Libtorrent::start() else {
        return;
    };
    let (channel, w, spool, origin) = live_channel("");
    assert!(w.tracker.ends_with("/announce"), "{}", w.tracker);
    // The newest 3 Segments, every crumb.
    let fetched = TempDir::new("lt-fetched");
    let mut names = Vec::new();
    for s in &w.segments[w.segments.len() - 3..] {
        for c in &s.crumbs {
            let t = get(&format!("{origin}{}", c.torrent));
            names.push(gstcrumbs::p2p::parse_torrent(&t).unwrap().name);
            lt.add(&t, &fetched.0);
        }
    }
    let started = Instant::now();
    let end = started + Duration::from_secs(30);
    loop {
        let st = lt.status();
        let done = st
            .iter()
            .filter(|t| t["wanted"].as_u64().is_some_and(|w| w > 0) && t["done"] == t["wanted"])
            .count();
        if done == names.len() {
            break;
        }
        assert!(
            Instant::now() < end,
            "libtorrent fetched {done} of {} crumbs: {st:?}\n{}",
            names.len(),
            lt.alerts()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "libtorrent fetched {} crumbs in {:?}",
        names.len(),
        started.elapsed()
    );
    for name in &names {
        let got = std::fs::read(fetched.0.join(name)).unwrap();
        let want = std::fs::read(spool.join(name)).unwrap();
        assert_eq!(got, want, "libtorrent fetched {name} intact");
    }
    channel.assert_no_error();
}

/// libtorrent seeds every crumb to a channel whose super seed is starved: crumbsrc,
/// with its default settings, finds it through the channel's tracker and plays from
/// it above the super seed's reach.
#[test]
fn libtorrent_seeds_to_crumbsrc() {
    init();
    let Some(mut lt) = Libtorrent::start() else {
        return;
    };
    let (channel, url, spool) = starved_channel();
    let origin = origin(&url);
    let mut seeded = std::collections::HashSet::new();
    let mut seed_new = |lt: &mut Libtorrent| -> usize {
        let w: WindowDoc = serde_json::from_slice(&get(&url)).unwrap();
        for s in &w.segments {
            for c in &s.crumbs {
                if seeded.insert((s.seq, c.index)) {
                    lt.add(&get(&format!("{origin}{}", c.torrent)), &spool);
                }
            }
        }
        w.segments.len()
    };
    while seed_new(&mut lt) < 3 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let client = Peer::start(&format!(
        "crumbsrc name=viewer location={url} ! vp8dec ! fakesink sync=false"
    ));
    let end = Instant::now() + Duration::from_secs(60);
    let played = |p: &Peer| {
        p.named("crumbsrc-segment")
            .into_iter()
            .filter(|r| !r.get::<bool>("skipped").unwrap())
            .collect::<Vec<_>>()
    };
    while played(&client).len() < 8 {
        assert!(
            Instant::now() < end,
            "crumbsrc stalled: {:?}\n{}",
            played(&client),
            lt.alerts()
        );
        client.assert_no_error();
        seed_new(&mut lt);
        std::thread::sleep(Duration::from_millis(100));
    }
    client.assert_no_error();
    channel.assert_no_error();
    let recs = played(&client);
    let from_peers: u64 = recs.iter().map(|r| u(r, "bytes-from-peers")).sum();
    let from_seed: u64 = recs.iter().map(|r| u(r, "bytes-from-super-seed")).sum();
    let failed = recs
        .iter()
        .filter(|r| !r.get::<bool>("success").unwrap())
        .count();
    let above = recs.iter().filter(|r| u(r, "d") >= 2).count();
    let lt_uploaded: u64 = lt
        .status()
        .iter()
        .filter_map(|t| t["uploaded"].as_u64())
        .sum();
    eprintln!(
        "crumbsrc: {} Segments, {failed} failed, {above} with d >= 2; {from_peers} B from peers ({lt_uploaded} B uploaded by libtorrent), {from_seed} B from the super seed",
        recs.len()
    );
    assert!(lt_uploaded > 0, "libtorrent uploaded to crumbsrc");
    assert!(
        from_peers > from_seed,
        "crumbsrc takes the stream from libtorrent, not the starved super seed"
    );
    assert!(
        above >= 3,
        "quality above the super seed's reach with libtorrent's help"
    );
    assert!(failed <= 1, "{failed} Segments failed");
}

/// crumbsink `enhancement-copies=1` with clients nobody here wrote: two aria2 fetch the
/// same live crumbs at once through the channel's tracker (which names the super seed
/// to both: `super-seed-fanout=0`). The super seed sends each piece of an enhancement
/// crumb once (a second request for it closes that connection), so the two trade those
/// pieces; both end with every crumb intact. (libtorrent cannot be the second here: by
/// default it connects to one peer per IP address, and on loopback the super seed and
/// aria2 share one.)
#[test]
fn standard_clients_trade_what_a_one_copy_super_seed_sends_once() {
    init();
    let (Some(first), Some(second)) = (Aria2::start(), Aria2::start()) else {
        return;
    };
    // A window of 40 one-second Segments: the crumbs stay on the channel's tracker
    // (and super seed) for the whole 40 s the two may take. (The 5 of 6 crumbs this
    // test ended with in 1 run of 10 came from the librqbit patch, not the window: a
    // peer cut off with its request still in the upload limiter used up the piece's
    // one copy; vendor/README.md.)
    let (channel, w, spool, origin) =
        live_channel("super-seed-fanout=0 enhancement-copies=1 window=40");
    let sink = channel.pipeline.by_name("ch").unwrap();
    let uploaded = || {
        sink.property::<gst::Structure>("stats")
            .get::<u64>("bytes-uploaded")
            .unwrap()
    };
    let uploaded_before = uploaded();
    // The newest 2 Segments, every crumb, to both at once.
    let dirs = [TempDir::new("aria-a"), TempDir::new("aria-b")];
    let (mut names, mut gids) = (Vec::new(), Vec::new());
    // What the channel published, read now: its spool forgets Segments as the window
    // moves on.
    let mut published = Vec::new();
    let (mut base_bytes, mut enhancement_bytes, mut enhancement_crumbs) = (0, 0, 0);
    for s in &w.segments[w.segments.len() - 2..] {
        for c in &s.crumbs {
            let t = get(&format!("{origin}{}", c.torrent));
            let name = gstcrumbs::p2p::parse_torrent(&t).unwrap().name;
            published.push(std::fs::read(spool.join(&name)).unwrap());
            names.push(name);
            gids.push([first.add(&t, &dirs[0].0), second.add(&t, &dirs[1].0)]);
            if c.index == 1 {
                base_bytes += c.size;
            } else {
                enhancement_bytes += c.size;
                enhancement_crumbs += 1;
            }
        }
    }
    assert!(enhancement_crumbs >= 2, "{w:?}");
    let end = Instant::now() + Duration::from_secs(40);
    loop {
        // Seeding on (`--seed-ratio=0.0`): complete when all is there.
        let complete = |a: &Aria2, gid: &str| {
            let st = a.status(gid);
            st["completedLength"] == st["totalLength"] && st["totalLength"] != "0"
        };
        let clients = [&first, &second];
        let done = [0, 1].map(|k| gids.iter().filter(|g| complete(clients[k], &g[k])).count());
        if done == [names.len(); 2] {
            break;
        }
        assert!(
            Instant::now() < end,
            "the two aria2 fetched {done:?} of {} crumbs\n{}\n{}",
            names.len(),
            first.log_tail(),
            second.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (name, want) in names.iter().zip(&published) {
        for d in &dirs {
            assert_eq!(&std::fs::read(d.0.join(name)).unwrap(), want, "{name}");
        }
    }
    // Crumb 1 may leave twice, every enhancement piece once (a block resent may count
    // twice: one block of slack). Without the limit both took nearly everything from
    // the super seed: 242 kB here against 167 kB with it.
    let up = uploaded() - uploaded_before;
    let most = 2 * base_bytes + enhancement_bytes + 16 * 1024;
    eprintln!(
        "the super seed uploaded {up} B for {base_bytes} B of crumbs 1 and {enhancement_bytes} B \
         of enhancement crumbs fetched by two clients (at most {most})"
    );
    assert!(up <= most, "uploaded {up} B, more than {most}");
    channel.assert_no_error();
}
