// SPDX-License-Identifier: MPL-2.0
//! Clients that never hang: a channel restarted on the same port is rejoined at its new
//! start index (the window's epoch changed); a channel whose window freezes, whose
//! torrents nobody seeds, or that stops answering ends the client's stream with a
//! `crumbsrc-stalled` message, a warning and EOS after `stall-timeout`; a server that
//! never answers at all is an error at once.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gstcrumbs::core::api::{API_VERSION, CrumbDoc, SegmentDoc, WindowDoc};
use gstcrumbs::p2p::{RUNTIME, make_torrent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A live channel of 0.5 s GOPs; `valve` blocks its Segments on demand.
fn channel_desc(port: u16) -> String {
    format!(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter ! valve name=valve \
         ! crumbsink name=sink channel=live http-port={port}"
    )
}

fn client_desc(url: &str, props: &str) -> String {
    format!("crumbsrc name=src location={url} {props} ! vp8dec ! fakesink name=out sync=false")
}

/// What a pipeline's bus said, with when.
#[derive(Debug)]
enum Bus {
    Element(gst::Structure),
    Warning(String),
    Error(String),
    Eos,
}

struct Watched {
    pipeline: gst::Pipeline,
    rx: mpsc::Receiver<(Instant, Bus)>,
}

impl Watched {
    /// Starts `desc`; its bus messages arrive on `rx` (sent from a sync handler).
    fn start(desc: &str) -> Watched {
        let pipeline = launch(desc);
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        pipeline.bus().unwrap().set_sync_handler(move |_, msg| {
            let out = match msg.view() {
                gst::MessageView::Element(e) => e.structure().map(|s| Bus::Element(s.to_owned())),
                gst::MessageView::Warning(w) => {
                    Some(Bus::Warning(format!("{} ({:?})", w.error(), w.debug())))
                }
                gst::MessageView::Error(e) => {
                    Some(Bus::Error(format!("{} ({:?})", e.error(), e.debug())))
                }
                gst::MessageView::Eos(_) => Some(Bus::Eos),
                _ => None,
            };
            if let Some(m) = out {
                let _ = tx.lock().unwrap().send((Instant::now(), m));
            }
            gst::BusSyncReply::Drop
        });
        pipeline.set_state(gst::State::Playing).expect("starts");
        Watched { pipeline, rx }
    }

    /// Messages until `pick` takes one (at most `timeout`); every message seen goes to
    /// `seen`. An error fails the test unless `pick` takes it.
    fn until<T>(
        &self,
        what: &str,
        timeout: Duration,
        seen: &mut Vec<(Instant, Bus)>,
        mut pick: impl FnMut(Instant, &Bus) -> Option<T>,
    ) -> T {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let (at, m) = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("timed out ({timeout:?}) waiting for {what}"));
            let picked = pick(at, &m);
            if let (None, Bus::Error(e)) = (&picked, &m) {
                panic!("error while waiting for {what}: {e}");
            }
            seen.push((at, m));
            if let Some(v) = picked {
                return v;
            }
        }
    }

    fn stat(&self, element: &str, field: &str) -> u64 {
        let el = self.pipeline.by_name(element).unwrap();
        u(&el.property::<gst::Structure>("stats"), field)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn element(m: &Bus, name: &str) -> Option<gst::Structure> {
    match m {
        Bus::Element(s) if s.name() == name => Some(s.clone()),
        _ => None,
    }
}

fn listening(ch: &Watched) -> String {
    ch.until(
        "crumbsink-listening",
        Duration::from_secs(20),
        &mut Vec::new(),
        |_, m| element(m, "crumbsink-listening").map(|s| s.get::<String>("url").unwrap()),
    )
}

/// Waits for `n` successful Segments of the client; their numbers.
fn played(client: &Watched, n: usize, seen: &mut Vec<(Instant, Bus)>) -> Vec<u64> {
    let mut seqs = Vec::new();
    client.until("played Segments", Duration::from_secs(60), seen, |_, m| {
        let s = element(m, "crumbsrc-segment")?;
        if s.get::<bool>("success").unwrap() {
            seqs.push(u(&s, "seq"));
        }
        (seqs.len() >= n).then_some(())
    });
    seqs
}

/// Buffers reaching the client's sink (decoded frames).
fn count_frames(client: &Watched) -> Arc<AtomicU64> {
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    let pad = client
        .pipeline
        .by_name("out")
        .unwrap()
        .static_pad("sink")
        .unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        n2.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    n
}

/// The client's end: its `crumbsrc-stalled` message, warning and EOS, and when EOS came.
struct End {
    stalled: gst::Structure,
    warning: String,
    at: Instant,
}

fn wait_end(client: &Watched, timeout: Duration) -> End {
    let mut seen = Vec::new();
    let at = client.until("EOS", timeout, &mut seen, |at, m| {
        matches!(m, Bus::Eos).then_some(at)
    });
    let stalled = seen
        .iter()
        .find_map(|(_, m)| element(m, "crumbsrc-stalled"))
        .expect("a crumbsrc-stalled message before EOS");
    let warning = seen
        .iter()
        .find_map(|(_, m)| match m {
            Bus::Warning(w) => Some(w.clone()),
            _ => None,
        })
        .expect("a warning before EOS");
    End {
        stalled,
        warning,
        at,
    }
}

/// The channel is stopped and started again on the same port (new process state, new
/// epoch, Segment numbers from 0 again). The client sees the restart at its next
/// poll, drops the old run and plays the new one from its first Segments, decoded.
/// (Before the epoch it waited, silent, until the new numbers passed the old ones.)
#[test]
fn a_restarted_channel_is_rejoined_at_its_new_start() {
    init();
    let ch1 = Watched::start(&channel_desc(0));
    let url = listening(&ch1);
    let port: u16 = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // With held window polls: the restart is heard through them too.
    let client = Watched::start(&client_desc(&url, "window-hold=1000"));
    let frames = count_frames(&client);
    let mut seen = Vec::new();
    // Long enough for the old run's numbers to be well ahead of a new run's.
    let run1 = played(&client, 8, &mut seen);
    ch1.pipeline.set_state(gst::State::Null).unwrap();
    drop(ch1);
    let frames_run1 = frames.load(Ordering::Relaxed);

    let restarted = Instant::now();
    let ch2 = Watched::start(&channel_desc(port));
    assert_eq!(listening(&ch2), url, "the same channel URL");
    let answering = Instant::now();
    // The client's messages: the restart, then the new run's Segments.
    let restart = client.until(
        "the restart",
        Duration::from_secs(10),
        &mut seen,
        |at, m| element(m, "crumbsrc-channel-restarted").map(|s| (at, s)),
    );
    let mut run2 = Vec::new();
    let first_ok = client.until(
        "the new run",
        Duration::from_secs(30),
        &mut seen,
        |at, m| {
            let s = element(m, "crumbsrc-segment")?;
            run2.push((u(&s, "seq"), s.get::<bool>("success").unwrap()));
            s.get::<bool>("success")
                .unwrap()
                .then_some((at, u(&s, "seq")))
        },
    );
    let run2_more = played(&client, 3, &mut seen);
    // When the new run published the Segment the client played first.
    let mut published = Vec::new();
    while let Ok((at, m)) = ch2.rx.try_recv() {
        if let Some(s) = element(&m, "crumbsink-segment") {
            published.push((u(&s, "seq"), at));
        }
    }
    let first_published = published
        .first()
        .map(|p| p.0)
        .expect("the new run published");
    let published_at = published
        .iter()
        .find(|p| p.0 == first_ok.1)
        .map(|p| p.1)
        .expect("the Segment played was published by the new run");
    eprintln!(
        "old run played {run1:?}; channel answering {:?} after the restart, restart seen \
         {:?} after that; new run: first Segment {first_published}, played first {} \
         ({:?} after its publication), then {run2_more:?}; attempts {run2:?}",
        answering - restarted,
        restart.0.saturating_duration_since(answering),
        first_ok.1,
        first_ok.0.saturating_duration_since(published_at),
    );
    let r = &restart.1;
    assert_eq!(r.get::<String>("sign").unwrap(), "epoch");
    assert_ne!(u(r, "old-epoch"), u(r, "new-epoch"));
    assert!(u(r, "old-latest") >= *run1.last().unwrap());
    // Seen at the next window poll (one a second).
    assert!(
        restart.0.saturating_duration_since(answering) < Duration::from_millis(2500),
        "restart seen {:?} after the new run answered",
        restart.0.saturating_duration_since(answering)
    );
    // Rejoined at the new run's start: within 2 Segments of its first one, and every
    // Segment after the restart is the new run's.
    assert!(
        first_ok.1 <= first_published + 2,
        "first Segment played {} of the new run starting at {first_published}",
        first_ok.1
    );
    let old_last = *run1.last().unwrap();
    assert!(
        run2.iter()
            .map(|r| r.0)
            .chain(run2_more.iter().copied())
            .all(|seq| seq < old_last),
        "the new run's numbers, below the old ones: {run2:?} {run2_more:?}"
    );
    assert!(
        first_ok.0.saturating_duration_since(published_at) < Duration::from_secs(3),
        "played {:?} after its publication",
        first_ok.0.saturating_duration_since(published_at)
    );
    assert_eq!(client.stat("src", "channel-restarts"), 1);
    assert!(
        frames.load(Ordering::Relaxed) > frames_run1,
        "the new run decodes"
    );
    assert!(
        !seen
            .iter()
            .any(|(_, m)| matches!(m, Bus::Error(_) | Bus::Eos)),
        "no error, no EOS"
    );
}

/// The channel's source stops (its Segments are blocked before crumbsink) while its
/// HTTP server keeps answering with the same window: EOS after `stall-timeout`.
#[test]
fn a_frozen_window_ends_the_stream_after_the_stall_timeout() {
    init();
    let ch = Watched::start(&channel_desc(0));
    let url = listening(&ch);
    // Held window polls (a blocking reload) must still tell a frozen window, not a
    // channel that does not answer: the hold ends before the stall deadline.
    let client = Watched::start(&client_desc(&url, "stall-timeout=3000 window-hold=1000"));
    played(&client, 2, &mut Vec::new());
    ch.pipeline
        .by_name("valve")
        .unwrap()
        .set_property("drop", true);
    let frozen = Instant::now();
    let end = wait_end(&client, Duration::from_secs(20));
    let took = end.at - frozen;
    eprintln!("frozen window: EOS {took:?} after the source stopped");
    assert_eq!(
        end.stalled.get::<String>("reason").unwrap(),
        "window-frozen"
    );
    assert_eq!(u(&end.stalled, "timeout"), 3_000_000_000);
    assert!(u(&end.stalled, "stalled-for") >= 3_000_000_000);
    assert!(
        end.warning.contains("published no new Segment") && end.warning.contains(&url),
        "{}",
        end.warning
    );
    // The last new Segment came at most a Segment and a poll before the stop.
    assert!(
        took > Duration::from_millis(1500) && took < Duration::from_millis(5000),
        "{took:?}"
    );
}

/// A hand-made channel (real HTTP, real .torrent files for a real librqbit session) whose
/// window advances every half second but whose crumbs nobody seeds: the tracker knows
/// no peer and there is no super seed.
struct FakeChannel {
    port: u16,
}

impl FakeChannel {
    fn start() -> FakeChannel {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        RUNTIME.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let origin = Instant::now();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(sock, port, origin));
            }
        });
        FakeChannel { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/live", self.port)
    }
}

const FAKE_SEGMENT: Duration = Duration::from_millis(500);

/// The torrent of the fake channel's crumb 1 of `seq`: 20 kB nobody has.
fn fake_torrent(port: u16, seq: u64) -> (Vec<u8>, String, u64) {
    let data = vec![seq as u8 ^ 0x5a; 20_000];
    let t = make_torrent(
        &format!("live-{seq}-1.crumb"),
        &data,
        16384,
        &[format!("http://127.0.0.1:{port}/live/announce")],
    )
    .unwrap();
    let hash = gstcrumbs::core::api::hex(&t.info_hash);
    (t.bytes, hash, data.len() as u64)
}

fn fake_window(port: u16, origin: Instant) -> WindowDoc {
    let x = (origin.elapsed().as_millis() / FAKE_SEGMENT.as_millis()) as u64 + 5;
    let segments = (x - 4..=x)
        .map(|seq| {
            let (_, info_hash, size) = fake_torrent(port, seq);
            SegmentDoc {
                seq,
                pts: Some(seq * FAKE_SEGMENT.as_nanos() as u64),
                duration: FAKE_SEGMENT.as_nanos() as u64,
                age_ms: 0,
                crumbs: vec![CrumbDoc {
                    index: 1,
                    info_hash,
                    size,
                    layer: [0, 0, 0],
                    piece_length: 16384,
                    torrent: format!("/live/torrents/{seq}/1.torrent"),
                }],
            }
        })
        .collect();
    WindowDoc {
        version: API_VERSION,
        channel: "live".into(),
        epoch: Some(1),
        caps: Some("video/x-vp8, width=(int)160, height=(int)120".into()),
        audio_caps: None,
        latest: Some(x),
        start_index: Some(x - 2),
        window_size: 5,
        archive: false,
        tracker: format!("http://127.0.0.1:{port}/live/announce"),
        super_seed: None,
        oldest: Some(x - 4),
        max_duration: None,
        sole_source_share: None,
        segments,
    }
}

/// One HTTP/1.1 connection of the fake channel (keep-alive; bodies ignored).
async fn serve(mut sock: tokio::net::TcpStream, port: u16, origin: Instant) {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let (status, body): (&str, Vec<u8>) = if path.starts_with("/live/announce") {
            ("200 OK", b"d8:intervali60e5:peers0:e".to_vec())
        } else if let Some(rest) = path.strip_prefix("/live/torrents/") {
            let seq = rest
                .split('/')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            ("200 OK", fake_torrent(port, seq).0)
        } else if path.starts_with("/live/report") {
            ("204 No Content", Vec::new())
        } else if path == "/live" || path.starts_with("/live?") {
            (
                "200 OK",
                serde_json::to_vec(&fake_window(port, origin)).unwrap(),
            )
        } else {
            ("404 Not Found", Vec::new())
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if sock.write_all(head.as_bytes()).await.is_err() || sock.write_all(&body).await.is_err() {
            return;
        }
    }
}

/// The window advances, but no byte of any crumb can be had: EOS after
/// `stall-timeout`, each Segment a failure until then.
#[test]
fn crumbs_nobody_seeds_end_the_stream_after_the_stall_timeout() {
    init();
    let fake = FakeChannel::start();
    let started = Instant::now();
    // latency=0: the paper's deadlines (|s| from each start), so that Segments fail
    // before the stall; with the default 3 s playout delay the first Segment's time
    // extension would last until the stall itself.
    let client = Watched::start(&client_desc(&fake.url(), "stall-timeout=3000 latency=0"));
    let end = wait_end(&client, Duration::from_secs(20));
    let took = end.at - started;
    eprintln!("crumbs nobody seeds: EOS {took:?} after the start");
    assert_eq!(
        end.stalled.get::<String>("reason").unwrap(),
        "nothing-fetched"
    );
    assert!(
        end.warning.contains("no byte of any crumb"),
        "{}",
        end.warning
    );
    assert!(client.stat("src", "segments-failed") >= 2);
    assert_eq!(client.stat("src", "segments-successful"), 0);
    assert!(
        took > Duration::from_millis(2900) && took < Duration::from_millis(5000),
        "{took:?}"
    );
}

/// A TCP proxy in front of a real channel that can freeze: from then on it accepts
/// connections and reads requests but never answers, on old connections and new.
struct Freezer {
    port: u16,
    frozen: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Freezer {
    fn start(upstream: std::net::SocketAddr) -> Freezer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(tokio::sync::watch::Sender::new(false));
        let f = frozen.clone();
        RUNTIME.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                let mut rx = f.subscribe();
                tokio::spawn(async move {
                    if !*rx.borrow() {
                        let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut down, &mut up) => return,
                            _ = rx.wait_for(|f| *f) => {}
                        }
                    }
                    // Frozen: hold the client's socket, answer nothing.
                    let mut sink = [0u8; 4096];
                    while let Ok(n) = down.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                    std::future::pending::<()>().await;
                });
            }
        });
        Freezer { port, frozen }
    }
}

/// A channel that stops answering (its HTTP server accepts and never answers: a
/// stopped process, a black hole) after the client joined: EOS after the default
/// `stall-timeout` of 10 s (it was 52 s). One that never answered at all is an
/// error as soon as the first request times out.
#[test]
fn a_channel_that_stops_answering_ends_the_stream_after_the_stall_timeout() {
    init();
    let ch = Watched::start(&channel_desc(0));
    let url = listening(&ch);
    let upstream = url.trim_start_matches("http://").split('/').next().unwrap();
    let freezer = Freezer::start(upstream.parse().unwrap());
    let proxied = format!("http://127.0.0.1:{}/live", freezer.port);
    let client = Watched::start(&client_desc(&proxied, ""));
    played(&client, 2, &mut Vec::new());
    freezer.frozen.send_replace(true);
    let frozen = Instant::now();
    let end = wait_end(&client, Duration::from_secs(30));
    let took = end.at - frozen;
    eprintln!(
        "unanswering channel: EOS {took:?} after it stopped answering ({:?})",
        end.stalled
    );
    assert_eq!(end.stalled.get::<String>("reason").unwrap(), "no-answer");
    assert_eq!(u(&end.stalled, "timeout"), 10_000_000_000);
    assert!(end.warning.contains("did not answer"), "{}", end.warning);
    // The stall clock started at the last new Segment, a Segment and a poll before
    // the freeze at most (the channel's Segments are 0.5-1 s here).
    assert!(u(&end.stalled, "stalled-for") >= 10_000_000_000);
    assert!(
        took > Duration::from_secs(7) && took < Duration::from_millis(11_000),
        "{took:?}"
    );
    drop(client);

    // Never answered: the join fails with the first request's timeout (5 s).
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mute.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let (mut s, _) = mute.accept().unwrap();
        let mut b = [0u8; 1024];
        let _ = s.read(&mut b);
        // Keep it open, unanswered, until the client gave up.
        let _ = s.read(&mut b);
        let _ = s.write_all(b"");
    });
    let started = Instant::now();
    let client = Watched::start(&client_desc(&format!("http://127.0.0.1:{port}/live"), ""));
    let error = client.until(
        "an error",
        Duration::from_secs(15),
        &mut Vec::new(),
        |_, m| match m {
            Bus::Error(e) => Some(e.clone()),
            Bus::Eos => panic!("EOS instead of an error"),
            _ => None,
        },
    );
    let took = started.elapsed();
    eprintln!("never answering server: error {took:?} after the start: {error}");
    assert!(error.contains("Cannot join channel"), "{error}");
    assert!(took < Duration::from_secs(7), "{took:?}");
    drop(client);
    let _ = held.join();
}

/// Blocking window reloads (`?wait=`) against a frozen channel, as a hostile client
/// would send them: a huge wait is held at most 5 s and answered with what there is
/// (no new Segment), and fifty held polls at once do not hold up a plain one.
#[test]
fn held_window_polls_are_capped_and_hold_nothing_else() {
    init();
    let ch = Watched::start(&channel_desc(0));
    let url = listening(&ch);
    let get = |u: String| {
        RUNTIME.block_on(async move {
            let r = reqwest::Client::new()
                .get(&u)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("an answer within 30 s");
            assert_eq!(r.status().as_u16(), 200, "{u}");
            let doc: WindowDoc = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            doc
        })
    };
    // Frozen once a Segment is out.
    let end = Instant::now() + Duration::from_secs(20);
    let latest = loop {
        if let Some(l) = get(url.clone()).latest {
            break l;
        }
        assert!(Instant::now() < end, "no Segment published");
        std::thread::sleep(Duration::from_millis(50));
    };
    ch.pipeline
        .by_name("valve")
        .unwrap()
        .set_property("drop", true);
    // Whatever was on its way when the valve closed.
    std::thread::sleep(Duration::from_millis(600));
    let latest = get(url.clone()).latest.unwrap().max(latest);
    let held: Vec<_> = (0..50)
        .map(|_| {
            let u = format!("{url}?after={latest}&wait=600000");
            std::thread::spawn(move || {
                let doc = RUNTIME.block_on(async {
                    reqwest::Client::new()
                        .get(&u)
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                        .expect("an answer within 30 s")
                        .bytes()
                        .await
                        .unwrap()
                });
                // Within the client's 30 s: the 600 s asked for is cut to 5 s.
                serde_json::from_slice::<WindowDoc>(&doc).unwrap()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A plain poll is answered while the held ones still wait (they are held 5 s).
    let plain = get(format!("{url}?after={latest}"));
    assert!(plain.segments.is_empty());
    assert!(
        held.iter().any(|h| !h.is_finished()),
        "the plain poll waited for the held ones"
    );
    for h in held {
        let doc = h.join().unwrap();
        assert!(doc.segments.is_empty(), "nothing was published");
        assert_eq!(doc.latest, Some(latest));
    }
}

/// crumbsrc's `start-offset`: a client at 0 joins at the newest Segment of the window,
/// one at the default (-1) at the channel's start index (3 behind the newest).
#[test]
fn a_client_start_offset_joins_at_the_live_edge() {
    init();
    let ch = Watched::start(&channel_desc(0));
    let url = listening(&ch);
    // Six Segments out: the window holds five, the channel's start index is 3 behind.
    let mut newest = 0;
    ch.until(
        "six Segments",
        Duration::from_secs(30),
        &mut Vec::new(),
        |_, m| {
            newest = u(&element(m, "crumbsink-segment")?, "seq");
            (newest >= 5).then_some(())
        },
    );
    let first_seq = |client: &Watched| {
        client.until(
            "a first Segment",
            Duration::from_secs(30),
            &mut Vec::new(),
            |_, m| Some(u(&element(m, "crumbsrc-segment")?, "seq")),
        )
    };
    let edge = Watched::start(&client_desc(&url, "start-offset=0"));
    let behind = Watched::start(&client_desc(&url, ""));
    let (at_edge, at_start) = (first_seq(&edge), first_seq(&behind));
    // What the channel published meanwhile bounds the newest either client saw.
    let mut latest = newest;
    while let Ok((_, m)) = ch.rx.try_recv() {
        if let Some(s) = element(&m, "crumbsink-segment") {
            latest = latest.max(u(&s, "seq"));
        }
    }
    eprintln!(
        "newest {newest} at the start, {latest} at the end; edge client began at {at_edge}, default at {at_start}"
    );
    assert!(
        at_edge >= newest,
        "start-offset=0 began at {at_edge}, newest was {newest}"
    );
    assert!(
        at_start + 3 <= latest,
        "the default began at {at_start}, {latest} published"
    );
    assert!(at_start < at_edge);
}
