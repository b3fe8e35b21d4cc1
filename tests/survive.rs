// SPDX-License-Identifier: MPL-2.0
//! A channel nobody can knock over, elements that never deadlock, runs that leave
//! nothing behind: idle and half-sent HTTP connections are capped and timed out, a
//! crumb file that cannot be written costs one Segment and a warning, `stats` read from
//! a bus sync handler does not deadlock, stale spool folders of dead processes go.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gstcrumbs::p2p::RUNTIME;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIVE: &str = "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! svcvp8enc keyframe-max-dist=15";

/// What the bus said, forwarded from a sync handler.
enum Bus {
    Element(gst::Structure),
    Warning(String),
    Error(String),
    Eos,
}

/// Starts `pipeline`; every element, warning, error and EOS message arrives on the
/// returned channel. `on_element` runs in the sync handler on each element message.
fn start(
    pipeline: &gst::Pipeline,
    on_element: impl Fn(&gst::StructureRef) + Send + Sync + 'static,
) -> mpsc::Receiver<Bus> {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    pipeline.bus().unwrap().set_sync_handler(move |_, msg| {
        let out = match msg.view() {
            gst::MessageView::Element(e) => e.structure().map(|s| {
                on_element(s);
                Bus::Element(s.to_owned())
            }),
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
            let _ = tx.lock().unwrap().send(m);
        }
        gst::BusSyncReply::Drop
    });
    pipeline.set_state(gst::State::Playing).expect("starts");
    rx
}

/// Waits for the next message `pick` takes, at most `timeout`; errors fail the test
/// unless `pick` takes them.
fn wait<T>(
    rx: &mpsc::Receiver<Bus>,
    what: &str,
    timeout: Duration,
    mut pick: impl FnMut(&Bus) -> Option<T>,
) -> T {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let m = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
        if let Some(v) = pick(&m) {
            return v;
        }
        if let Bus::Error(e) = m {
            panic!("error while waiting for {what}: {e}");
        }
    }
}

fn listening_url(rx: &mpsc::Receiver<Bus>) -> String {
    wait(
        rx,
        "crumbsink-listening",
        Duration::from_secs(20),
        |m| match m {
            Bus::Element(s) if s.name() == "crumbsink-listening" => {
                Some(s.get::<String>("url").unwrap())
            }
            _ => None,
        },
    )
}

fn wait_segments(rx: &mpsc::Receiver<Bus>, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        seqs.push(wait(rx, "Segments", Duration::from_secs(60), |m| match m {
            Bus::Element(s) if s.name() == "crumbsink-segment" => {
                Some(s.get::<u64>("seq").unwrap())
            }
            _ => None,
        }));
    }
    seqs
}

fn stat(el: &gst::Element, field: &str) -> u64 {
    el.property::<gst::Structure>("stats")
        .get::<u64>(field)
        .unwrap_or_else(|e| panic!("stats {field}: {e}"))
}

fn host_port(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .expect("bind a loopback address");
    socket.connect(to).await.expect("connect")
}

/// Reads until the server closes the connection (EOF or reset); the bytes read.
async fn until_closed(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// 300 connections that never finish their headers, from one address, against a
/// channel capped at 100 per address: 200 are closed at once and counted, the channel
/// goes on publishing and answers other clients, and the 100 it took are closed by the
/// header timeout. A request body that stalls is closed by the idle timeout. (The
/// total cap is unit-tested in `channel::server`.)
#[test]
fn idle_connections_are_capped_and_timed_out() {
    const HEADER_TIMEOUT_MS: u64 = 1000;
    const IDLE_TIMEOUT_MS: u64 = 2000;
    let pipeline = launch(&format!(
        "{LIVE} ! svcsegmenter ! crumbsink name=sink max-connections=1000 \
         max-connections-per-address=100 header-timeout={HEADER_TIMEOUT_MS} \
         idle-timeout={IDLE_TIMEOUT_MS}"
    ));
    let sink = pipeline.by_name("sink").unwrap();
    let rx = start(&pipeline, |_| {});
    let url = listening_url(&rx);
    let addr = host_port(&url);
    wait_segments(&rx, 1);

    // The attack, from 127.0.0.2: half a request each, then silence.
    let opened = Instant::now();
    let mut idle = RUNTIME.block_on(async {
        let mut v = Vec::new();
        for _ in 0..300 {
            let mut s = connect_from("127.0.0.2", addr).await;
            let _ = s.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\n").await;
            v.push(s);
        }
        v
    });
    // The accept loop works through the backlog; the counters say when it is done.
    let end = Instant::now() + Duration::from_secs(20);
    while stat(&sink, "connections-refused") < 200 {
        assert!(Instant::now() < end, "refused connections not counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(stat(&sink, "connections-refused"), 200);
    // Segments published from here on were published under the attack.
    while rx.try_recv().is_ok() {}

    // Another client is served meanwhile, and Segments keep coming.
    let (status, body) = RUNTIME.block_on(async {
        let mut s = connect_from("127.0.0.1", addr).await;
        s.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let reply = until_closed(&mut s).await;
        let text = String::from_utf8_lossy(&reply).into_owned();
        let status = text.split(' ').nth(1).unwrap_or("").to_string();
        (status, text)
    });
    assert_eq!(status, "200", "{body}");
    assert!(body.contains("\"segments\""), "{body}");
    wait_segments(&rx, 2);

    // The 100 accepted ones are closed by the header timeout, none before it.
    RUNTIME.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            for s in &mut idle {
                until_closed(s).await;
            }
        })
        .await
        .expect("idle connections closed by the header timeout")
    });
    assert!(
        opened.elapsed() >= Duration::from_millis(HEADER_TIMEOUT_MS - 100),
        "closed after {:?}",
        opened.elapsed()
    );
    // The server counts a timed-out connection right after closing it: the client
    // may see the close first.
    let end = Instant::now() + Duration::from_secs(5);
    while stat(&sink, "connections-timed-out") < 100 {
        assert!(
            Instant::now() < end,
            "timed-out connections counted: {}",
            stat(&sink, "connections-timed-out")
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // A request whose body stalls: closed by the idle timeout.
    let before = stat(&sink, "connections-timed-out");
    let stalled = Instant::now();
    RUNTIME.block_on(async {
        let mut s = connect_from("127.0.0.1", addr).await;
        s.write_all(
            b"POST /live/report HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"seq\":",
        )
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(20), until_closed(&mut s))
            .await
            .expect("stalled body closed by the idle timeout");
    });
    assert!(stalled.elapsed() >= Duration::from_millis(IDLE_TIMEOUT_MS - 100));
    // (The super seed's own idle keep-alive connections to the tracker time out too.)
    let end = Instant::now() + Duration::from_secs(5);
    while stat(&sink, "connections-timed-out") <= before {
        assert!(Instant::now() < end, "the stalled body's timeout counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Still publishing.
    wait_segments(&rx, 1);
    pipeline.set_state(gst::State::Null).unwrap();
}

/// An application that reads every element's `stats` from a bus sync handler on each
/// element message (the handler runs on the posting thread) reaches EOS: no element
/// posts while holding the lock `stats` takes. It used to deadlock at crumbsink's first
/// Segment.
#[test]
fn stats_read_from_a_sync_handler_do_not_deadlock() {
    let pipeline = launch(
        "videotestsrc num-buffers=120 ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter name=seg ! queue ! crumbsink name=sink",
    );
    let elements: Vec<gst::Element> = ["seg", "sink"]
        .iter()
        .map(|n| pipeline.by_name(n).unwrap())
        .collect();
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let r2 = reads.clone();
    let rx = start(&pipeline, move |_| {
        for el in &elements {
            let _ = el.property::<gst::Structure>("stats");
        }
        r2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let mut published = 0;
    // A deadlock shows as a timeout here (the pipeline is then left as it is: it
    // could not be stopped).
    wait(&rx, "EOS", Duration::from_secs(60), |m| match m {
        Bus::Element(s) if s.name() == "crumbsink-segment" => {
            published += 1;
            None
        }
        Bus::Eos => Some(()),
        _ => None,
    });
    assert_eq!(published, 8, "120 frames, a key frame every 15");
    assert!(reads.load(std::sync::atomic::Ordering::SeqCst) >= 16);
    let sink = pipeline.by_name("sink").unwrap();
    assert_eq!(stat(&sink, "segments-published"), 8);
    pipeline.set_state(gst::State::Null).unwrap();
}

/// A crumb file that cannot be written (here: a directory has its name) costs that
/// Segment, with a warning naming the file; the channel goes on. Three Segments in a
/// row is an element error.
#[test]
fn a_crumb_write_that_fails_is_reported_and_survived() {
    for blocked in [vec![2u64], vec![2, 3, 4]] {
        let spool = std::env::temp_dir().join(format!(
            "crumbs-test-spool-{}-{}",
            std::process::id(),
            blocked.len()
        ));
        let _ = std::fs::remove_dir_all(&spool);
        for seq in &blocked {
            std::fs::create_dir_all(spool.join(format!("live-{seq:010}-001.crumb"))).unwrap();
        }
        let pipeline = launch(&format!(
            "videotestsrc num-buffers=90 ! video/x-raw,width=160,height=120,framerate=30/1 \
             ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter ! crumbsink name=sink spool-dir={}",
            spool.display()
        ));
        let rx = start(&pipeline, |_| {});
        let mut published = Vec::new();
        let mut warnings = Vec::new();
        let error = wait(&rx, "EOS or error", Duration::from_secs(60), |m| match m {
            Bus::Element(s) if s.name() == "crumbsink-segment" => {
                published.push(s.get::<u64>("seq").unwrap());
                None
            }
            Bus::Warning(w) => {
                warnings.push(w.clone());
                None
            }
            Bus::Error(e) => Some(Some(e.clone())),
            Bus::Eos => Some(None),
            _ => None,
        });
        let sink = pipeline.by_name("sink").unwrap();
        let failed = stat(&sink, "segments-write-failed");
        pipeline.set_state(gst::State::Null).unwrap();
        let _ = std::fs::remove_dir_all(&spool);
        let name = "live-0000000002-001.crumb";
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("Segment 2 not published") && w.contains(name)),
            "{warnings:?}"
        );
        if blocked.len() == 1 {
            assert_eq!(error, None);
            assert_eq!(published, [0, 1, 3, 4, 5]);
            assert_eq!(failed, 1);
        } else {
            let error = error.expect("three failed Segments in a row are an error");
            assert!(
                error.contains("Cannot publish Segment 4") && error.contains("retried once"),
                "{error}"
            );
            assert_eq!(published, [0, 1]);
            assert_eq!(failed, 3);
        }
    }
}

/// The pid of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A spool folder last changed ten minutes ago, with a crumb in it.
fn old_folder(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("x.crumb"), b"left behind").unwrap();
    let then = std::time::SystemTime::now() - Duration::from_secs(600);
    std::fs::File::open(&dir)
        .unwrap()
        .set_modified(then)
        .unwrap();
    dir
}

/// A crumbsrc start removes the spool folders killed clients and channels left
/// behind, and keeps those of live processes.
#[test]
fn stale_spool_folders_of_dead_processes_go_at_start() {
    init();
    let dead = dead_pid();
    let stale_client = old_folder(&format!("crumbsrc-{dead}-0"));
    let stale_channel = old_folder(&format!("crumbs-live-{dead}-3"));
    let mut alive = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let live_client = old_folder(&format!("crumbsrc-{}-0", alive.id()));
    let mine = old_folder(&format!("crumbsrc-{}-999999", std::process::id()));

    let src = gst::ElementFactory::make("crumbsrc")
        .property("location", "http://127.0.0.1:9/live")
        .build()
        .unwrap();
    src.set_state(gst::State::Paused).unwrap();
    let stale_gone = !stale_client.exists() && !stale_channel.exists();
    let live_kept = live_client.exists() && mine.exists();
    src.set_state(gst::State::Null).unwrap();
    let _ = alive.kill();
    let _ = alive.wait();
    for d in [&stale_client, &stale_channel, &live_client, &mine] {
        let _ = std::fs::remove_dir_all(d);
    }
    assert!(stale_gone, "the dead processes' folders are removed");
    assert!(live_kept, "live processes' folders are kept");
}
