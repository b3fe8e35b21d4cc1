// SPDX-License-Identifier: MPL-2.0
//! Several channels on one HTTP port: crumbsink elements of one process sharing
//! `address` and `http-port` serve from one server (`/channels`, root tracker by
//! info-hash, a duplicate name refused, the server living as long as its last
//! channel), and the status page as a browser shows it (headless Chromium: DOM and
//! screenshot of a live channel with a viewer).

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gstcrumbs::core::api::{ChannelsDoc, StatsDoc, StatusDoc, WindowDoc, parse_info_hash};
use gstcrumbs::p2p::RUNTIME;

const LIVE: &str = "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! svcvp8enc keyframe-max-dist=15";

fn get(url: &str) -> (u16, Vec<u8>) {
    RUNTIME.block_on(async {
        let r = reqwest::get(url).await.expect("HTTP GET");
        let status = r.status().as_u16();
        (status, r.bytes().await.unwrap().to_vec())
    })
}

fn json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    let (status, body) = get(url);
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Waits (bounded) until `pred` gives a value.
fn wait<T>(what: &str, timeout: Duration, mut pred: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = pred() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn channel(name: &str, port: u16) -> Peer {
    Peer::start(&format!(
        "{LIVE} ! svcsegmenter ! crumbsink name={name} channel={name} http-port={port} window=6 tracker-interval=1"
    ))
}

fn viewer(url: &str) -> Peer {
    Peer::start(&format!(
        "crumbsrc location={url} ! vp8dec ! fakesink sync=false"
    ))
}

fn wait_segments(p: &Peer, n: usize, what: &str) {
    wait(what, Duration::from_secs(90), || {
        p.assert_no_error();
        (p.named("crumbsrc-segment").len() >= n).then_some(())
    });
}

/// The error a pipeline posts when it cannot start.
fn start_error(desc: &str) -> String {
    let p = launch(desc);
    let bus = p.bus().unwrap();
    assert!(p.set_state(gst::State::Playing).is_err(), "{desc} started");
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

fn pct(b: &[u8]) -> String {
    b.iter().map(|b| format!("%{b:02X}")).collect()
}

fn stats(base: &str, name: &str) -> StatsDoc {
    json(&format!("{base}/{name}/stats"))
}

#[test]
fn several_channels_share_one_port() {
    init();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let one = channel("one", port);
    let two = channel("two", port);
    let url_one = one.listening().get::<String>("url").unwrap();
    let url_two = two.listening().get::<String>("url").unwrap();
    assert_eq!(url_one, format!("{base}/one"));
    assert_eq!(url_two, format!("{base}/two"));

    // A viewer of each channel plays, both through the one port.
    let v1 = viewer(&url_one);
    let v2 = viewer(&url_two);
    wait_segments(&v1, 2, "the viewer of one to play");
    wait_segments(&v2, 2, "the viewer of two to play");

    let w1: WindowDoc = json(&url_one);
    let w2: WindowDoc = json(&url_two);
    assert_eq!((w1.channel.as_str(), w2.channel.as_str()), ("one", "two"));
    assert_eq!(w1.tracker, format!("{base}/announce"));
    assert_eq!(w2.tracker, w1.tracker, "one tracker URL for the server");
    for w in [&w1, &w2] {
        let c = &w.segments.last().unwrap().crumbs[0];
        let (status, torrent) = get(&format!("{base}{}", c.torrent));
        assert_eq!(status, 200, "{}", c.torrent);
        assert!(torrent.starts_with(b"d"), "a .torrent file");
    }

    // /channels lists both, with what a guide needs.
    let list: ChannelsDoc = json(&format!("{base}/channels"));
    let names: Vec<&str> = list.channels.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    for (c, w) in list.channels.iter().zip([&w1, &w2]) {
        assert_eq!(c.url, format!("{base}/{}", c.name));
        assert_eq!(c.status, format!("{base}/{}/status", c.name));
        assert!(
            c.caps.as_deref().unwrap().starts_with("video/x-vp8"),
            "{c:?}"
        );
        assert!(c.latest.unwrap() >= w.latest.unwrap(), "{c:?}");
        assert!(c.viewers >= 1, "each channel has its viewer: {c:?}");
    }
    let (status, page) = get(&format!("{base}/"));
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("href=\"/one/status\"") && page.contains("href=\"/two/status\""),
        "{page}"
    );
    assert!(!page.contains("Some("), "no Rust debug text: {page}");

    // The root tracker reaches the channel that has the torrent: an announce of a
    // crumb of two counts at two, not at one.
    let crumb = &w2.segments.last().unwrap().crumbs[0];
    let ih = parse_info_hash(&crumb.info_hash).unwrap();
    let (a1, a2) = (stats(&base, "one").announces, stats(&base, "two").announces);
    let (status, body) = get(&format!(
        "{base}/announce?info_hash={}&peer_id={}&port=6881&left=100",
        pct(&ih),
        pct(b"-TEST00-rootannounce")
    ));
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(!body.contains("failure"), "{body}");
    assert!(body.contains("peers"), "{body}");
    let (b1, b2) = (stats(&base, "one").announces, stats(&base, "two").announces);
    assert!(b2 > a2, "two counted the announce ({a2} -> {b2})");
    // One's own clients announce meanwhile; the test's peer id must not be known there.
    let (_, scrape_one) = get(&format!("{base}/one/scrape?info_hash={}", pct(&ih)));
    assert_eq!(scrape_one, b"d5:filesdee", "one does not track two's crumb");
    let _ = (a1, b1);
    // A scrape at the root without info_hash lists the torrents of both channels.
    let (status, all) = get(&format!("{base}/scrape"));
    assert_eq!(status, 200);
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for w in [&w1, &w2] {
        let ih = parse_info_hash(&w.segments.last().unwrap().crumbs[0].info_hash).unwrap();
        assert!(
            contains(&all, &ih),
            "root scrape lists {}'s crumb",
            w.channel
        );
    }

    // A second channel of a name already served on the port is a clear error.
    let err = start_error(&format!(
        "{LIVE} ! svcsegmenter ! crumbsink channel=two http-port={port}"
    ));
    assert!(
        err.contains("channel 'two' is already served") && err.contains(&url_two),
        "{err}"
    );
    assert_eq!(get(&url_two).0, 200, "the duplicate took nothing away");
    // Names that the server's own routes would hide are refused.
    let err = start_error(&format!(
        "{LIVE} ! svcsegmenter ! crumbsink channel=channels http-port={port}"
    ));
    assert!(err.contains("channel name 'channels' is taken"), "{err}");

    // Stopping one leaves two serving on the port.
    drop(v1);
    drop(one);
    let (status, _) = get(&url_one);
    assert_eq!(status, 404, "one is gone");
    let list: ChannelsDoc = json(&format!("{base}/channels"));
    assert_eq!(list.channels.len(), 1);
    assert_eq!(list.channels[0].name, "two");
    let played = v2.named("crumbsrc-segment").len();
    wait_segments(&v2, played + 2, "two's viewer to go on playing");
    v2.assert_no_error();

    // The server stops with its last channel: the port is free again.
    drop(v2);
    drop(two);
    wait("the port to be free", Duration::from_secs(10), || {
        std::net::TcpListener::bind(("127.0.0.1", port)).ok()
    });
}

/// What `chromium` is called here, if it is installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Runs headless Chromium with `args` on `url`, killed after 60 s at most.
fn run_chromium(bin: &str, args: &[&str], url: &str) -> std::process::Output {
    let profile = std::env::temp_dir().join(format!(
        "crumbs-test-chromium-{}-{}",
        std::process::id(),
        args.len()
    ));
    let mut child = std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let end = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    out
}

#[test]
fn status_page_in_headless_chromium() {
    init();
    let Some(bin) = chromium() else {
        eprintln!(
            "SKIPPED status_page_in_headless_chromium: chromium is not installed (scripts/setup installs it)"
        );
        return;
    };
    let port = free_port();
    let ch = channel("news", port);
    let url = ch.listening().get::<String>("url").unwrap();
    let v = viewer(&url);
    wait_segments(&v, 3, "the viewer to play");
    // The page's figures are there: reports counted, rho computed, upload measured.
    let status_url = format!("{url}/status");
    let doc = wait(
        "reports and rho in status.json",
        Duration::from_secs(60),
        || {
            let d: StatusDoc = json(&format!("{url}/status.json"));
            (d.stats.last_rho.is_some()
                && !d.clients.is_empty()
                && !d.d_distribution.is_empty()
                && d.samples.iter().any(|s| s.upload_rate.is_some()))
            .then_some(d)
        },
    );
    assert_eq!(doc.channel, "news");
    assert!(doc.samples.iter().all(|s| s.gops.is_some()), "|G| known");
    assert!(doc.samples.iter().any(|s| s.delivered_rate > 0.0));

    let out = run_chromium(bin, &["--dump-dom"], &status_url);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("channel <span id=\"name\">news</span>"),
        "{dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refreshes = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|r| r[..r.find('"')?].parse::<u32>().ok())
        .unwrap_or(0);
    assert!(
        refreshes >= 1,
        "the script refreshed from status.json: {dom}"
    );
    assert!(
        dom.matches("<path d=\"M").count() >= 2,
        "drawn lines (upload/delivered, rho): {dom}"
    );
    assert!(dom.contains("class=\"bar\""), "drawn bars: {dom}");
    let figure = |id: &str| -> String {
        let at = dom
            .find(&format!("id=\"{id}\">"))
            .unwrap_or_else(|| panic!("{id}"));
        let rest = &dom[at + id.len() + 6..];
        rest[..rest.find('<').unwrap()].to_owned()
    };
    for id in ["f-published", "f-latest", "f-peers", "f-viewers"] {
        let v = figure(id);
        assert!(v.parse::<u64>().is_ok(), "{id} is a number: '{v}'");
    }
    assert!(figure("f-published").parse::<u64>().unwrap() >= 3);
    assert!(
        figure("f-rho").starts_with(|c: char| c.is_ascii_digit()),
        "{}",
        figure("f-rho")
    );
    assert!(
        doc.clients
            .iter()
            .any(|c| dom.contains(&format!("<td>{}</td>", c.client_id))),
        "the clients table lists the viewer"
    );
    assert!(!dom.contains("Some("), "no Rust debug text");

    let shot = std::env::temp_dir().join(format!("crumbs-status-{}.png", std::process::id()));
    let _ = std::fs::remove_file(&shot);
    let out = run_chromium(
        bin,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
        ],
        &status_url,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 20_000,
        "a page with charts, not a blank: {} bytes",
        png.len()
    );
    // Kept for a look when CRUMBS_KEEP_SCREENSHOT is set.
    if std::env::var_os("CRUMBS_KEEP_SCREENSHOT").is_none() {
        let _ = std::fs::remove_file(&shot);
    } else {
        eprintln!("screenshot: {}", shot.display());
    }
    v.assert_no_error();
}
