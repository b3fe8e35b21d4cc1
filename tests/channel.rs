// SPDX-License-Identifier: MPL-2.0
//! crumbsink on loopback: a live channel publishes Segments; an HTTP client reads the
//! window; a plain librqbit session (not the project's client code) downloads crumbs
//! by the advertised torrents, finding the super seed through the built-in tracker;
//! Segments expire (or stay, with archive=true); rho moves |G|; bad input is answered
//! cleanly; start/stop cycles leak nothing.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gstcrumbs::core::api::{ReportDoc, WindowDoc};
use gstcrumbs::p2p::RUNTIME;

const LIVE: &str = "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! svcvp8enc keyframe-max-dist=15";

/// Crumb bytes by (Segment, index) as svcsegmenter pushed them.
type CrumbStore = Arc<Mutex<HashMap<(u64, u16), Vec<u8>>>>;

/// A playing live channel, its crumbs as svcsegmenter made them, and its messages.
struct Live {
    pipeline: gst::Pipeline,
    crumbs: CrumbStore,
    messages: Arc<Mutex<Vec<(String, gst::Structure)>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Live {
    fn start(desc: &str) -> Live {
        let pipeline = launch(desc);
        let crumbs: CrumbStore = Arc::new(Mutex::new(HashMap::new()));
        if let Some(sink) = pipeline.by_name("crumbs") {
            let sink = sink.downcast::<gst_app::AppSink>().unwrap();
            let c2 = crumbs.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let b = sample.buffer().unwrap();
                        let map = b.map_readable().unwrap();
                        c2.lock()
                            .unwrap()
                            .insert((b.offset(), b.offset_end() as u16), map.to_vec());
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
        let messages = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (m2, e2) = (messages.clone(), errors.clone());
        let bus = pipeline.bus().unwrap();
        bus.set_sync_handler(move |_, msg| {
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure() {
                        let src = e.src().map(|s| s.name().to_string()).unwrap_or_default();
                        m2.lock().unwrap().push((src, s.to_owned()));
                    }
                }
                gst::MessageView::Error(e) => {
                    e2.lock()
                        .unwrap()
                        .push(format!("{} ({:?})", e.error(), e.debug()))
                }
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
        pipeline
            .set_state(gst::State::Playing)
            .expect("channel starts");
        Live {
            pipeline,
            crumbs,
            messages,
            errors,
        }
    }

    /// Waits (bounded) until `pred` holds on the messages so far.
    fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&[(String, gst::Structure)]) -> Option<T>,
    ) -> T {
        let end = Instant::now() + timeout;
        loop {
            assert!(
                self.errors.lock().unwrap().is_empty(),
                "pipeline error: {:?}",
                self.errors.lock().unwrap()
            );
            // A snapshot: `pred` may look at the messages itself.
            let snapshot = self.messages.lock().unwrap().clone();
            if let Some(v) = pred(&snapshot) {
                return v;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self, sink: &str) -> String {
        self.wait_for("crumbsink-listening", Duration::from_secs(20), |m| {
            m.iter()
                .find(|(src, s)| src == sink && s.name() == "crumbsink-listening")
                .map(|(_, s)| s.get::<String>("url").unwrap())
        })
    }

    fn published(&self, sink: &str) -> Vec<u64> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|(src, s)| src == sink && s.name() == "crumbsink-segment")
            .map(|(_, s)| s.get::<u64>("seq").unwrap())
            .collect()
    }

    fn wait_published(&self, sink: &str, n: usize) {
        self.wait_for("Segments", Duration::from_secs(60), |_| {
            (self.published(sink).len() >= n).then_some(())
        });
    }

    fn stop(self) {
        self.pipeline.set_state(gst::State::Null).unwrap();
    }
}

fn get(url: &str) -> (u16, Vec<u8>) {
    RUNTIME.block_on(async {
        let r = reqwest::get(url).await.expect("HTTP GET");
        let status = r.status().as_u16();
        (status, r.bytes().await.unwrap().to_vec())
    })
}

fn post(url: &str, body: Vec<u8>) -> (u16, String) {
    RUNTIME.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .body(body)
            .send()
            .await
            .expect("HTTP POST");
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

fn window(url: &str) -> WindowDoc {
    let (status, body) = get(url);
    assert_eq!(status, 200);
    serde_json::from_slice(&body).expect("window is JSON")
}

fn origin(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    format!("http://{}", &rest[..rest.find('/').unwrap()])
}

/// The newest Segment's seq and the .torrent files of its crumbs 1 and 2.
fn newest_two_crumbs(url: &str) -> (u64, Vec<Vec<u8>>) {
    let newest = window(url).segments.last().unwrap().clone();
    let torrents = newest.crumbs[..2]
        .iter()
        .map(|c| get(&format!("{}{}", origin(url), c.torrent)).1)
        .collect();
    (newest.seq, torrents)
}

/// Downloads torrents with a plain librqbit session, all at once, peers from the
/// tracker only; returns each file's bytes.
fn librqbit_download(torrents: Vec<Vec<u8>>, dir: &std::path::Path) -> Vec<Vec<u8>> {
    librqbit_fetch(torrents, dir, Duration::from_secs(30))
        .into_iter()
        .map(|f| f.expect("download finishes within 30 s"))
        .collect()
}

/// Downloads each torrent in a fresh librqbit session; `None` for a torrent not
/// complete within `limit` (counted from the first wait).
fn librqbit_fetch(
    torrents: Vec<Vec<u8>>,
    dir: &std::path::Path,
    limit: Duration,
) -> Vec<Option<Vec<u8>>> {
    use librqbit::{
        AddTorrent, AddTorrentOptions, AddTorrentResponse, ListenerMode, ListenerOptions, Session,
        SessionOptions,
    };
    let dir = dir.to_path_buf();
    RUNTIME.block_on(async move {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let session = Session::new_with_opts(
            dir.clone(),
            SessionOptions {
                dht: None,
                persistence: None,
                fastresume: false,
                disable_local_service_discovery: true,
                listen: Some(ListenerOptions {
                    mode: ListenerMode::TcpOnly,
                    listen_addr: ([127, 0, 0, 1], port).into(),
                    announce_port: Some(port),
                    enable_upnp_port_forwarding: false,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut handles = Vec::new();
        for torrent in torrents {
            let resp = session
                .add_torrent(
                    AddTorrent::from_bytes(torrent),
                    Some(AddTorrentOptions {
                        output_folder: Some(dir.to_str().unwrap().to_owned()),
                        overwrite: true,
                        ..Default::default()
                    }),
                )
                .await
                .unwrap();
            let AddTorrentResponse::Added(_, handle) = resp else {
                panic!("torrent not added")
            };
            handles.push(handle);
        }
        let mut out = Vec::new();
        let until = tokio::time::Instant::now() + limit;
        for handle in handles {
            let done = tokio::time::timeout_at(until, handle.wait_until_completed()).await;
            out.push(done.ok().map(|r| {
                r.unwrap();
                std::fs::read(dir.join(handle.name().unwrap())).unwrap()
            }));
        }
        session.stop().await;
        out
    })
}

#[test]
fn live_channel_window_download_expiry_and_tracker() {
    let spool = std::env::temp_dir().join(format!("crumbs-test-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    // Segments of 1 s (30 frames) and a window of 4: 4 s to fetch a Segment.
    let live = Live::start(&format!(
        "{LIVE} keyframe-max-dist=30 ! svcsegmenter max-crumb-size=3000 ! tee name=t \
         t. ! queue ! crumbsink name=ch channel=live window=4 tracker-interval=1 \
         enhancement-copies=1 spool-dir={} \
         t. ! queue ! appsink name=crumbs sync=false",
        spool.display()
    ));
    let url = live.url("ch");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/live"),
        "{url}"
    );
    live.wait_published("ch", 5);

    let w = window(&url);
    assert_eq!(w.channel, "live");
    assert_eq!(w.window_size, 4);
    assert_eq!(w.segments.len(), 4);
    let latest = w.latest.unwrap();
    let seqs: Vec<u64> = w.segments.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (latest - 3..=latest).collect::<Vec<_>>());
    assert_eq!(
        w.start_index,
        Some(latest - 3),
        "x' = x - 3 inside the window"
    );
    assert!(w.caps.as_deref().unwrap().starts_with("video/x-vp8"));
    let seg = w.segments.last().unwrap().clone();
    assert!(seg.crumbs.len() >= 3, "3 layers: at least 3 crumbs");
    assert_eq!(w.oldest, Some(latest - 3));

    // `?after=SEQ` lists only the newer Segments (the poll of a client that has the
    // rest); a later Segment may have arrived meanwhile.
    let delta = window(&format!("{url}?after={}", latest - 2));
    let seqs: Vec<u64> = delta.segments.iter().map(|s| s.seq).collect();
    assert!(
        seqs.len() >= 2 && seqs[..2] == [latest - 1, latest],
        "{seqs:?}"
    );
    assert!(delta.oldest.unwrap() >= latest - 3);
    assert_eq!(delta.window_size, 4);
    let (status, body) = get(&format!("{url}?after=soon"));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // `&wait=MS` (a blocking reload): a poll that knows the newest Segment is held
    // until the next one is out (1 s Segments here, well inside the 5 s asked), and
    // answered with it; one with news is answered as usual.
    let newest = window(&url).latest.unwrap();
    let held = window(&format!("{url}?after={newest}&wait=5000"));
    let seqs: Vec<u64> = held.segments.iter().map(|s| s.seq).collect();
    assert_eq!(seqs.first(), Some(&(newest + 1)), "{seqs:?}");
    let now = window(&format!("{url}?after={}&wait=5000", newest - 1));
    assert!(now.segments.iter().any(|s| s.seq == newest));
    let (status, _) = get(&format!("{url}?after={newest}&wait=forever"));
    assert_eq!(status, 400);

    // A plain librqbit session downloads every crumb of the newest Segment by its
    // torrent, finding the super seed through the tracker, byte for byte.
    let dl = std::env::temp_dir().join(format!("crumbs-test-dl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dl);
    let torrents: Vec<Vec<u8>> = seg
        .crumbs
        .iter()
        .map(|c| {
            let (status, torrent) = get(&format!("{}{}", origin(&url), c.torrent));
            assert_eq!(status, 200);
            torrent
        })
        .collect();
    let files = librqbit_download(torrents, &dl);
    for (c, data) in seg.crumbs.iter().zip(files) {
        assert_eq!(data.len() as u64, c.size);
        let original = live
            .crumbs
            .lock()
            .unwrap()
            .get(&(seg.seq, c.index))
            .cloned()
            .unwrap();
        assert_eq!(
            data, original,
            "crumb {} of Segment {} differs",
            c.index, seg.seq
        );
    }
    let _ = std::fs::remove_dir_all(&dl);
    // The tracker hands out the peers that announced: the super seed at least.
    let c1 = &seg.crumbs[0];
    let ih: String = gstcrumbs::core::api::parse_info_hash(&c1.info_hash)
        .unwrap()
        .iter()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let (status, body) = get(&format!(
        "{}/announce?info_hash={ih}&peer_id=-TEST00-123456789012&port=6881&left=100&compact=1",
        url
    ));
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("5:peers"), "{text}");
    assert!(!text.contains("failure"), "{text}");
    // The same tracker at the root, the URL the window and the .torrent files name
    // (libtorrent takes a loopback or LAN tracker only at `/announce`), and its BEP 48
    // scrape, where the super seed counts as a seed.
    let root = origin(&url);
    assert_eq!(window(&url).tracker, format!("{root}/announce"));
    let (status, body) = get(&format!(
        "{root}/announce?info_hash={ih}&peer_id=-TEST00-123456789013&port=6882&left=100"
    ));
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("5:peers") && !text.contains("failure"),
        "{text}"
    );
    let (status, body) = get(&format!("{root}/scrape?info_hash={ih}"));
    assert_eq!(status, 200);
    let mut want = b"d5:filesd20:".to_vec();
    want.extend_from_slice(&gstcrumbs::core::api::parse_info_hash(&c1.info_hash).unwrap());
    want.extend_from_slice(b"d8:completei");
    assert!(
        body.starts_with(&want) && body.get(want.len()).is_some_and(|&b| b != b'0'),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let stats = live
        .pipeline
        .by_name("ch")
        .unwrap()
        .property::<gst::Structure>("stats");
    assert!(stats.get::<u64>("peers-known").unwrap() >= 1);

    // That Segment expires: out of the window, its torrents 404, its files deleted.
    let target = seg.seq + 5;
    live.wait_for("expiry", Duration::from_secs(60), |_| {
        live.published("ch").contains(&target).then_some(())
    });
    let w = window(&url);
    assert!(w.segments.iter().all(|s| s.seq != seg.seq));
    assert_eq!(
        get(&format!("{}{}", origin(&url), seg.crumbs[0].torrent)).0,
        404
    );
    let files: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !files
            .iter()
            .any(|f| f.contains(&format!("-{:010}-", seg.seq))),
        "{files:?}"
    );
    // Disk stays bounded by the window: at most |w| Segments of files.
    let max_crumbs = w.segments.iter().map(|s| s.crumbs.len()).max().unwrap();
    assert!(files.len() <= 5 * max_crumbs, "{} files", files.len());
    let stats = live
        .pipeline
        .by_name("ch")
        .unwrap()
        .property::<gst::Structure>("stats");
    assert!(stats.get::<u64>("segments-expired").unwrap() >= 5);
    assert!(
        stats.get::<u64>("bytes-uploaded").unwrap() > 0,
        "the super seed uploaded to the librqbit client"
    );

    // `enhancement-copies=1`: every piece of an enhancement crumb leaves the super
    // seed once. After one session took crumbs 1 and 2 of the newest Segment (and is
    // gone), a second gets crumb 1 again (never limited) and no byte of crumb 2: the
    // super seed closes its connection (on loopback an allowed crumb takes a few ms).
    let (_, torrents) = newest_two_crumbs(&url);
    let first = librqbit_download(torrents.clone(), &dl);
    let _ = std::fs::remove_dir_all(&dl);
    let again = librqbit_fetch(torrents, &dl, Duration::from_millis(1500));
    assert_eq!(again[0].as_ref(), Some(&first[0]), "crumb 1 again");
    assert!(again[1].is_none(), "crumb 2 twice from the super seed");
    let _ = std::fs::remove_dir_all(&dl);
    live.stop();
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn enhancement_copies_behind_the_live_edge() {
    // `enhancement-copies-behind=1`: while a Segment is the newest its enhancement
    // pieces go to whoever asks; once a newer one is out, the copies it gave count
    // and no more leave the super seed (crumb 1 is never limited). Segments of one
    // 10 s GOP leave time for two fetches at the edge (1-2 s each here), and every
    // downloader gets the super seed's address (with the default fanout of 1 the
    // second would only be told of the first, gone by then).
    let live = Live::start(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=300 ! svcsegmenter max-crumb-size=3000 \
         ! crumbsink name=ch channel=edge window=4 super-seed-fanout=0 enhancement-copies-behind=1",
    );
    let url = live.url("ch");
    let dl = std::env::temp_dir().join(format!("crumbs-test-behind-{}", std::process::id()));
    live.wait_published("ch", 1);
    let (newest, torrents) = newest_two_crumbs(&url);
    let first = librqbit_download(torrents.clone(), &dl);
    let _ = std::fs::remove_dir_all(&dl);
    let second = librqbit_fetch(torrents.clone(), &dl, Duration::from_secs(3));
    let _ = std::fs::remove_dir_all(&dl);
    assert_eq!(window(&url).latest, Some(newest), "still the newest");
    assert_eq!(
        second[1].as_ref(),
        Some(&first[1]),
        "crumb 2 twice at the edge"
    );
    live.wait_published("ch", 2);
    let third = librqbit_fetch(torrents, &dl, Duration::from_millis(1500));
    let _ = std::fs::remove_dir_all(&dl);
    assert_eq!(third[0].as_ref(), Some(&first[0]), "crumb 1 again");
    assert!(third[1].is_none(), "crumb 2 a third time, behind the edge");
    live.stop();
}

#[test]
fn archive_keeps_every_segment() {
    let spool = std::env::temp_dir().join(format!("crumbs-test-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let live = Live::start(&format!(
        "{LIVE} ! svcsegmenter max-crumb-size=3000 ! crumbsink name=ch channel=tv window=2 \
         archive=true super-seed-fanout=0 enhancement-copies-behind=1 spool-dir={}",
        spool.display()
    ));
    let url = live.url("ch");
    live.wait_published("ch", 5);
    let w = window(&url);
    assert!(w.archive);
    assert_eq!(w.segments.len(), 2);
    let mut first_two = Vec::new();
    for seq in 0..3u64 {
        let (status, body) = get(&format!("{url}/segments/{seq}"));
        assert_eq!(status, 200, "archived Segment {seq}");
        let doc: gstcrumbs::core::api::SegmentDoc = serde_json::from_slice(&body).unwrap();
        let torrents: Vec<Vec<u8>> = doc.crumbs[..2]
            .iter()
            .map(|c| get(&format!("{}{}", origin(&url), c.torrent)))
            .map(|(status, body)| (status == 200).then_some(body).unwrap())
            .collect();
        first_two.push(torrents);
    }
    // Out of the window, an archived Segment's enhancement pieces are no longer held
    // to `enhancement-copies-behind`: on-demand viewers come long after the live
    // ones who held them. Two sessions one after the other both get crumb 2.
    let dl = spool.with_extension("dl");
    let first = librqbit_download(first_two[0].clone(), &dl);
    let _ = std::fs::remove_dir_all(&dl);
    let again = librqbit_download(first_two[0].clone(), &dl);
    let _ = std::fs::remove_dir_all(&dl);
    assert_eq!(again, first, "archived crumbs served again");
    let files = std::fs::read_dir(&spool).unwrap().count();
    live.stop();
    assert!(files >= 5 * 3, "{files} files: every Segment kept");
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn two_channels_side_by_side_and_bad_requests() {
    let live = Live::start(&format!(
        "{LIVE} ! svcsegmenter ! tee name=t t. ! queue ! crumbsink name=a channel=one t. ! queue ! crumbsink name=b channel=two"
    ));
    let (ua, ub) = (live.url("a"), live.url("b"));
    assert_ne!(ua, ub);
    live.wait_published("a", 2);
    live.wait_published("b", 2);
    assert_eq!(window(&ua).channel, "one");
    assert_eq!(window(&ub).channel, "two");

    // Malformed reports and tracker requests get an HTTP/tracker error; the channel goes on.
    let (status, text) = post(&format!("{ua}/report"), b"{not json".to_vec());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("malformed report"), "{text}");
    let bad = ReportDoc {
        client_id: "c".into(),
        seq: 999_999,
        successful: true,
        complete: true,
        d: 1,
        rate: 1.0,
        peer_id: None,
        sole_source: false,
    };
    let (status, text) = post(&format!("{ua}/report"), serde_json::to_vec(&bad).unwrap());
    assert_eq!(status, 400, "{text}");
    let (status, body) = get(&format!("{ua}/announce?info_hash=short&port=1"));
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("failure reason"));
    assert_eq!(get(&format!("{ua}/torrents/0/zzz")).0, 404);
    let before = live.published("a").len();
    live.wait_published("a", before + 2);
    let (status, body) = get(&format!("{ua}/stats"));
    assert_eq!(status, 200);
    let st: gstcrumbs::core::api::StatsDoc = serde_json::from_slice(&body).unwrap();
    assert_eq!(st.reports_rejected, 2);
    live.stop();
}

fn start_error(desc: &str) -> String {
    let p = launch(desc);
    let bus = p.bus().unwrap();
    let _ = p.set_state(gst::State::Playing);
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(20), &[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = format!("{} {:?}", e.error(), e.debug());
    p.set_state(gst::State::Null).unwrap();
    text
}

#[test]
fn port_in_use_and_unwritable_spool_are_clear_errors() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = start_error(&format!(
        "{LIVE} ! svcsegmenter ! crumbsink http-port={port}"
    ));
    assert!(
        e.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{e}"
    );
    let e = start_error(&format!(
        "{LIVE} ! svcsegmenter ! crumbsink spool-dir=/proc/crumbs-cannot-be-here"
    ));
    assert!(e.contains("spool-dir /proc/crumbs-cannot-be-here"), "{e}");
    let e = start_error(&format!("{LIVE} ! svcsegmenter ! crumbsink channel=a/b"));
    assert!(e.contains("channel name"), "{e}");
}

#[test]
fn not_a_crumb_is_a_warning_and_the_channel_goes_on() {
    init();
    let mut h = gst_check::Harness::new("crumbsink");
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    h.set_src_caps_str("application/x-crumb");
    h.play();
    assert_eq!(
        h.push(gst::Buffer::from_slice(b"garbage".to_vec())),
        Ok(gst::FlowSuccess::Ok)
    );
    let warning = std::iter::from_fn(|| bus.pop()).find_map(|m| match m.view() {
        gst::MessageView::Warning(w) => Some(w.error().to_string()),
        _ => None,
    });
    assert!(warning.unwrap().contains("not a valid crumb"));
    let st = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(st.get::<u64>("crumbs-malformed").unwrap(), 1);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn start_stop_cycles_leak_nothing() {
    init();
    let cycle = || {
        let p = launch(&format!(
            "{LIVE} ! svcsegmenter ! crumbsink name=ch channel=cycle"
        ));
        p.set_state(gst::State::Playing).unwrap();
        let (_, state, _) = p.state(gst::ClockTime::from_seconds(20));
        assert_eq!(state, gst::State::Playing);
        let url = p.by_name("ch").unwrap().property::<Option<String>>("url");
        assert!(url.is_some(), "listening once PLAYING");
        p.set_state(gst::State::Null).unwrap();
        assert!(
            p.by_name("ch")
                .unwrap()
                .property::<Option<String>>("url")
                .is_none()
        );
    };
    // Warm up: lazily created threads and runtimes.
    cycle();
    cycle();
    let fds = open_fds();
    // Private spool directories of this test's channel.
    let spools = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("crumbs-cycle-")
            })
            .count()
    };
    let tmp_before = spools();
    for _ in 0..15 {
        cycle();
    }
    let tmp_after = spools();
    assert!(
        open_fds() <= fds + 2,
        "file descriptors grew from {fds} to {}",
        open_fds()
    );
    assert_eq!(
        tmp_after, tmp_before,
        "private spool directories are removed on stop"
    );
}

/// Reports say success, then failure (d = 0, as crumbsrc reports a failed Segment):
/// rho moves svcsegmenter's |G| up to max-gops, then down to min-gops.
#[test]
fn reports_move_gops() {
    let live = Live::start(&format!(
        "{LIVE} ! svcsegmenter name=seg gops=1 min-gops=1 max-gops=3 success-threshold=0.5 ! crumbsink name=ch window=10 start-offset=0"
    ));
    let url = live.url("ch");
    let gops = || -> Vec<u32> {
        live.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.name() == "svcsegmenter-segment")
            .map(|(_, s)| s.get::<u32>("gops").unwrap())
            .collect()
    };
    let peer_id = *b"-TEST00-reporter0001";
    let report_all = |successful: bool| {
        let w = window(&url);
        // Reports count only from a peer of the channel: announce a crumb first, as
        // crumbsrc's BitTorrent session does, from the address the reports come from.
        if let Some(seg) = w.segments.last() {
            let ih = gstcrumbs::core::api::parse_info_hash(&seg.crumbs[0].info_hash).unwrap();
            let enc = |b: &[u8]| b.iter().map(|b| format!("%{b:02X}")).collect::<String>();
            let (status, _) = get(&format!(
                "{url}/announce?info_hash={}&peer_id={}&port=6881&left=100",
                enc(&ih),
                enc(&peer_id)
            ));
            assert_eq!(status, 200);
        }
        for s in &w.segments {
            let r = ReportDoc {
                client_id: "tester".into(),
                seq: s.seq,
                successful,
                complete: successful,
                // What crumbsrc sends: a failed Segment output no crumb.
                d: u16::from(successful),
                rate: 1e6,
                peer_id: Some(gstcrumbs::core::api::hex(&peer_id)),
                sole_source: false,
            };
            let (status, text) = post(&format!("{url}/report"), serde_json::to_vec(&r).unwrap());
            // A Segment may leave the window between the GET and the POST.
            assert!(
                status == 204 || text.contains("left the live window"),
                "report {r:?} refused: {status} {text}"
            );
        }
    };
    live.wait_for("|G| to reach 3", Duration::from_secs(90), |_| {
        report_all(true);
        gops().contains(&3).then_some(())
    });
    let seen = gops().len();
    live.wait_for("|G| back to 1", Duration::from_secs(90), |_| {
        report_all(false);
        gops()[seen..].contains(&1).then_some(())
    });
    let rhos: Vec<f64> = live
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.name() == "crumbsink-segment")
        .map(|(_, s)| s.get::<f64>("rho").unwrap())
        .collect();
    assert!(rhos.contains(&1.0) && rhos.contains(&0.0), "{rhos:?}");
    live.stop();
}
