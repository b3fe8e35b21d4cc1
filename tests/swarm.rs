// SPDX-License-Identifier: MPL-2.0
//! End to end on loopback: one live channel, three crumbsrc clients with different
//! download caps and real decoders, one joining late. Bounded in time.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

#[test]
fn one_channel_three_clients() {
    // Three VP8 temporal layers (48/96/160 kbit/s), one crumb per layer, 1 s Segments.
    // The super seed is capped at 96 KB/s: 2.5 times one full stream for three clients.
    let channel = Peer::start(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=30 layer-bitrates=<48,96,160> \
         ! svcsegmenter max-crumb-size=0 min-gops=1 max-gops=1 \
         ! crumbsink name=ch window=6 max-upload-rate=98304 tracker-interval=1",
    );
    let url = channel_url(&channel);
    let client = |name: &str, props: &str| {
        Peer::start(&format!(
            "crumbsrc name={name} location={url} {props} ! vp8dec ! fakesink sync=false"
        ))
    };
    let fast = client("fast", "");
    // 24 KiB/s = 197 kbit/s: the base layer (48) and enhancement 1 (144 together) fit
    // with a quarter of the link to spare, all three (304) do not. The test checks that
    // a capped client stays under full quality and plays; how close to its link a
    // client can run is the bench's business (at 20 KiB/s, 88 % of the link, CI's
    // loaded machine lost one Segment in 24).
    let slow = client("slow", "max-download-rate=24576");
    std::thread::sleep(Duration::from_secs(8));
    let late = client("late", "max-download-rate=65536");
    std::thread::sleep(Duration::from_secs(14));

    // Killing one client leaves the others playing.
    fast.pipeline.set_state(gst::State::Null).unwrap();
    let slow_before = slow.named("crumbsrc-segment").len();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        slow.named("crumbsrc-segment").len() > slow_before,
        "the slow client goes on after another left"
    );

    for p in [&channel, &fast, &slow, &late] {
        assert!(
            p.errors.lock().unwrap().is_empty(),
            "{:?}",
            p.errors.lock().unwrap()
        );
    }
    let published = channel.named("crumbsink-segment");
    let latest = u(published.last().unwrap(), "seq");
    let mean_bytes = published.iter().map(|s| u(s, "bytes")).sum::<u64>() / published.len() as u64;
    eprintln!(
        "channel: {} Segments, {mean_bytes} bytes each on average",
        published.len()
    );
    let mut from_peers = 0;
    let mut extension = 0;
    for (name, peer) in [("fast", &fast), ("slow", &slow), ("late", &late)] {
        let recs = peer.named("crumbsrc-segment");
        let played: Vec<&gst::Structure> = recs
            .iter()
            .filter(|r| !r.get::<bool>("skipped").unwrap())
            .collect();
        let failed = played
            .iter()
            .filter(|r| !r.get::<bool>("success").unwrap())
            .count();
        let ds: Vec<u64> = played.iter().map(|r| u(r, "d")).collect();
        eprintln!(
            "{name}: {} Segments, {failed} failed, d {ds:?}",
            played.len()
        );
        assert!(played.len() >= 5, "{name} played {} Segments", played.len());
        assert_eq!(failed, 0, "{name} failed a Segment: d {ds:?}");
        from_peers += recs.iter().map(|r| u(r, "bytes-from-peers")).sum::<u64>();
        extension += recs
            .iter()
            .map(|r| u(r, "time-extension"))
            .max()
            .unwrap_or(0);
        let st = peer
            .pipeline
            .by_name(name)
            .unwrap()
            .property::<gst::Structure>("stats");
        assert!(st.get::<u64>("segments-successful").unwrap() >= 5);
        match name {
            // A probe of D = 3 may succeed once on a small early Segment (the token
            // bucket's burst), and the fill takes crumb 3 of a Segment small enough
            // for the cap; from the middle on it settles under full quality.
            "slow" => {
                let tail = &ds[ds.len() / 2..];
                let full = tail.iter().filter(|&&d| d > 2).count();
                assert!(full * 4 <= tail.len(), "slow client d {ds:?}");
            }
            "fast" => {
                let n: Vec<u64> = played.iter().map(|r| u(r, "crumbs-total")).collect();
                assert!(
                    ds.iter().zip(&n).any(|(d, n)| d == n),
                    "fast client never reached D=N: d {ds:?} of {n:?}"
                );
            }
            _ => {
                // Joined 8 s late and caught up with the live edge.
                let last = u(played.last().unwrap(), "seq");
                assert!(
                    last + 4 >= latest,
                    "late client at {last}, channel at {latest}"
                );
            }
        }
    }
    assert!(extension > 0, "time extensions are earned");
    assert!(
        from_peers > 0,
        "clients fetch from each other, not only from the super seed"
    );

    // Stopping the channel: the clients end cleanly (EOS), no hang.
    channel.pipeline.set_state(gst::State::Null).unwrap();
    let stopped = Instant::now();
    for (name, peer) in [("slow", &slow), ("late", &late)] {
        while peer.named("eos").is_empty() && peer.errors.lock().unwrap().is_empty() {
            assert!(
                stopped.elapsed() < Duration::from_secs(30),
                "{name} hangs after the channel stopped"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            peer.errors.lock().unwrap().is_empty(),
            "{name}: a clean EOS, not an error"
        );
        peer.pipeline.set_state(gst::State::Null).unwrap();
    }
    eprintln!(
        "clients ended {:?} after the channel stopped",
        stopped.elapsed()
    );
}

fn error_of(desc: &str) -> String {
    let p = launch(desc);
    let bus = p.bus().unwrap();
    let _ = p.set_state(gst::State::Playing);
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .expect("an error within 30 s, not a hang");
    let text = match msg.view() {
        gst::MessageView::Error(e) => format!("{} {:?}", e.error(), e.debug()),
        _ => "EOS".into(),
    };
    p.set_state(gst::State::Null).unwrap();
    text
}

#[test]
fn unreachable_or_wrong_channel_is_a_clear_error() {
    // Nothing listens on a port we just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = error_of(&format!(
        "crumbsrc location=http://127.0.0.1:{port}/live ! fakesink"
    ));
    assert!(e.contains("Cannot join channel"), "{e}");
    let e = error_of("crumbsrc location=not-a-url ! fakesink");
    assert!(e.contains("Invalid property location='not-a-url'"), "{e}");
    let e = error_of("crumbsrc location=http://127.0.0.1:9/a/b/c ! fakesink");
    assert!(e.contains("http://HOST:PORT/CHANNEL"), "{e}");
    let e = error_of("crumbsrc ! fakesink");
    assert!(e.contains("Invalid property location=(none)"), "{e}");
}

fn channel_url(channel: &Peer) -> String {
    channel.listening().get::<String>("url").unwrap()
}

/// A relay fetches and seeds every crumb; an on-demand client plays an archived
/// channel from Segment 0, long after Segment 0 left the live window, and on at the
/// live edge, which it catches up with.
#[test]
fn relay_and_on_demand() {
    let channel = Peer::start(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter max-crumb-size=0 \
         ! crumbsink name=ch window=3 archive=true tracker-interval=1",
    );
    let url = channel_url(&channel);
    let relay = Peer::start(&format!(
        "crumbsrc name=relay location={url} mode=relay ! fakesink"
    ));
    while channel.named("crumbsink-segment").len() < 8 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = relay
        .pipeline
        .by_name("relay")
        .unwrap()
        .property::<gst::Structure>("stats");
    assert!(
        st.get::<u64>("bytes-downloaded").unwrap() > 0,
        "relay fetched crumbs"
    );
    assert!(
        st.get::<u64>("torrents-seeding").unwrap() > 0,
        "relay seeds what it fetched"
    );
    // Its own per-Segment messages: on an unloaded loopback every crumb of each
    // Segment fetched, from the super seed (no other peer); one given up (left the
    // window first) says how many it got. Its stats count them, and no play-mode
    // Segment.
    let relayed = relay.named("crumbsrc-relay-segment");
    let complete: Vec<_> = relayed
        .iter()
        .filter(|r| r.get::<bool>("complete").unwrap())
        .collect();
    assert!(
        complete.len() >= 4,
        "{} complete of {relayed:?}",
        complete.len()
    );
    for r in &relayed {
        let (done, total) = (u(r, "crumbs-done"), u(r, "crumbs-total"));
        assert!(total >= 1 && done <= total, "{r}");
        assert_eq!(r.get::<bool>("complete").unwrap(), done == total, "{r}");
    }
    for r in &complete {
        assert!(u(r, "bytes-from-super-seed") > 0, "{r}");
    }
    let seqs: std::collections::BTreeSet<u64> = relayed.iter().map(|r| u(r, "seq")).collect();
    assert_eq!(seqs.len(), relayed.len(), "one message per Segment");
    let st = relay
        .pipeline
        .by_name("relay")
        .unwrap()
        .property::<gst::Structure>("stats");
    assert!(st.get::<u64>("segments-relayed").unwrap() >= complete.len() as u64);
    assert!(
        st.get::<u64>("crumbs-relayed").unwrap()
            >= relayed.iter().map(|r| u(r, "crumbs-done")).sum::<u64>()
    );
    assert!(st.get::<u64>("bytes-from-super-seed").unwrap() > 0);
    assert_eq!(st.get::<u64>("segments-successful").unwrap(), 0);
    // The relay goes: the on-demand client fetches from the super seed alone, faster
    // than real time (sync=false), so it reaches the live edge.
    assert!(relay.errors.lock().unwrap().is_empty());
    relay.pipeline.set_state(gst::State::Null).unwrap();
    let vod = Peer::start(&format!(
        "crumbsrc name=vod location={url} start=0 ! vp8dec ! fakesink sync=false"
    ));
    let end = Instant::now() + Duration::from_secs(40);
    while vod.named("crumbsrc-segment").len() < 24 {
        assert!(Instant::now() < end, "on-demand playback did not progress");
        assert!(
            vod.errors.lock().unwrap().is_empty(),
            "{:?}",
            vod.errors.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every archived Segment plays, in order from 0 (the first 8 had left the live
    // window before the on-demand client started), and on at the live edge, which
    // it catches up with after about 16 Segments: it waits there for each new one,
    // skipping none.
    let recs = vod.named("crumbsrc-segment");
    let seqs: Vec<u64> = recs.iter().map(|r| u(r, "seq")).collect();
    assert_eq!(
        &seqs[..24],
        &(0..24).collect::<Vec<u64>>()[..],
        "plays from the archived start"
    );
    let failed: Vec<u64> = recs
        .iter()
        .take(24)
        .filter(|r| !r.get::<bool>("success").unwrap())
        .map(|r| u(r, "seq"))
        .collect();
    assert!(
        failed.is_empty(),
        "on-demand Segments failed: {failed:?}\n{recs:?}"
    );
    for p in [&vod, &channel] {
        assert!(
            p.errors.lock().unwrap().is_empty(),
            "{:?}",
            p.errors.lock().unwrap()
        );
        p.pipeline.set_state(gst::State::Null).unwrap();
    }
}

/// The tail crumb (crumbsrc `tail-crumb`, issue 9, nineteenth round): a client whose
/// link carries only part of a Segment fetches the next crumb beyond D in the time
/// its link would idle at the live edge, and what its verified pieces hold from its
/// start goes through reassembly into a real decoder: no error, no Segment lost.
#[test]
fn a_tail_crumb_reaches_the_decoder() {
    // About 4.3 Mbit/s in 2 s Segments, enhancement crumbs of at most 128 KiB (eight
    // pieces): at 100 KiB/s one does not fit whole in what crumb 1 leaves of |s|.
    let channel = Peer::start(
        "videotestsrc is-live=true pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=30 layer-bitrates=<256,1024,3072> \
         ! svcsegmenter min-gops=2 max-gops=2 max-crumb-size=131072 \
         ! crumbsink name=ch window=6 tracker-interval=1",
    );
    let url = channel_url(&channel);
    // 100 KiB/s: crumb 1 of each Segment, then idle at the live edge.
    let client = Peer::start(&format!(
        "crumbsrc name=c location={url} start-offset=0 max-download-rate=102400 \
         ! vp8dec ! fakesink sync=false"
    ));
    let tails = |p: &Peer| -> Vec<gst::Structure> {
        p.named("crumbsrc-segment")
            .into_iter()
            .filter(|r| u(r, "tail-bytes") > 0)
            .collect()
    };
    let end = std::time::Instant::now() + Duration::from_secs(90);
    while tails(&client).len() < 2 {
        assert!(
            std::time::Instant::now() < end,
            "no tail crumb output in 90 s: {:?}",
            client
                .pipeline
                .by_name("c")
                .unwrap()
                .property::<gst::Structure>("stats")
        );
        channel.assert_no_error();
        client.assert_no_error();
        std::thread::sleep(Duration::from_millis(100));
    }
    // Two more Segments decoded after it.
    let n = client.named("crumbsrc-segment").len();
    while client.named("crumbsrc-segment").len() < n + 2 {
        assert!(std::time::Instant::now() < end, "the client stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    channel.assert_no_error();
    client.assert_no_error();
    for t in tails(&client) {
        // Crumb d+1, in part: more than its header, less than the whole crumb.
        assert_eq!(u(&t, "tail-crumb"), u(&t, "d") + 1, "{t:?}");
        assert!(t.get::<bool>("success").unwrap(), "{t:?}");
        assert!(
            u(&t, "tail-bytes") > 56 && u(&t, "tail-bytes") < 131072 + 2048,
            "{t:?}"
        );
    }
    let recs = client.named("crumbsrc-segment");
    let failed = recs
        .iter()
        .filter(|r| !r.get::<bool>("skipped").unwrap() && !r.get::<bool>("success").unwrap())
        .count();
    assert_eq!(failed, 0, "{recs:?}");
    let stats = client
        .pipeline
        .by_name("c")
        .unwrap()
        .property::<gst::Structure>("stats");
    eprintln!("{stats:?}");
    assert!(
        u(&stats, "tail-bytes") > 0 && u(&stats, "tail-crumbs") >= 2,
        "{stats:?}"
    );
    assert_eq!(u(&stats, "crumbs-malformed"), 0, "{stats:?}");
}
