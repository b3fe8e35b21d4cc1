// SPDX-License-Identifier: MPL-2.0
//! Channel switching on loopback: two live channels of different sizes, one viewer
//! whose `location` is set while it plays. Bounded in time.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// A live VP8 channel of `width`x`height`, 1 s Segments.
fn channel(name: &str, width: u32, height: u32) -> Peer {
    Peer::start(&format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=30 ! svcsegmenter max-crumb-size=0 min-gops=1 max-gops=1 \
         ! crumbsink name={name} channel={name} window=4 tracker-interval=1"
    ))
}

/// Waits for `cond` (polled every 20 ms) at most `limit`.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// One decoded frame: its size and running time, and when it arrived.
type Seen = (i32, i32, u64, Instant);

#[test]
fn location_set_while_playing_switches_channel() {
    let small = channel("small", 160, 120);
    let large = channel("large", 320, 240);
    let small_url = small.listening().get::<String>("url").unwrap();
    let large_url = large.listening().get::<String>("url").unwrap();
    let frames: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let f2 = frames.clone();
    let viewer = Peer::start_with(
        &format!(
            "crumbsrc name=src location={small_url} ! vp8dec ! videoconvert \
             ! appsink name=sink caps=video/x-raw,format=I420 sync=false"
        ),
        move |p| {
            let sink = p
                .by_name("sink")
                .unwrap()
                .downcast::<gst_app::AppSink>()
                .unwrap();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let caps = sample.caps().unwrap().structure(0).unwrap().to_owned();
                        let pts = sample.buffer().unwrap().pts().unwrap().nseconds();
                        f2.lock().unwrap().push((
                            caps.get("width").unwrap(),
                            caps.get("height").unwrap(),
                            pts,
                            Instant::now(),
                        ));
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        },
    );
    let size = |w: i32| {
        let f = frames.lock().unwrap();
        f.iter().filter(|s| s.0 == w).count()
    };
    wait_for(
        "30 frames of the first channel",
        Duration::from_secs(30),
        || size(160) >= 30,
    );
    let src = viewer.pipeline.by_name("src").unwrap();
    let switched_at = Instant::now();
    src.set_property("location", &large_url);
    let took = wait_for(
        "30 frames of the second channel",
        Duration::from_secs(20),
        || size(320) >= 30,
    );
    viewer.assert_no_error();
    let msgs = viewer.named("crumbsrc-switched");
    assert_eq!(msgs.len(), 1, "one crumbsrc-switched message");
    assert_eq!(msgs[0].get::<String>("old-location").unwrap(), small_url);
    assert_eq!(msgs[0].get::<String>("new-location").unwrap(), large_url);
    let stats = src.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("channel-switches").unwrap(), 1);
    assert_eq!(src.property::<String>("location"), large_url);

    let f = frames.lock().unwrap().clone();
    // Every small frame before every large one: the old channel is left at once.
    let first_large = f.iter().position(|s| s.0 == 320).unwrap();
    assert!(
        f[first_large..].iter().all(|s| s.0 == 320),
        "no frame of the old channel after the new one's first"
    );
    assert!(f[..first_large].iter().all(|s| s.0 == 160));
    let first_frame = f[first_large].3.duration_since(switched_at);
    // Running times never go back across the switch (nor anywhere).
    for w in f.windows(2) {
        assert!(
            w[1].2 > w[0].2,
            "timestamps go back: {} then {}",
            w[0].2,
            w[1].2
        );
    }
    eprintln!(
        "switch: first frame of the new channel {:.2} s after location was set, 30 frames after {:.2} s",
        first_frame.as_secs_f64(),
        took.as_secs_f64()
    );
    // Typically within one Segment (1 s here): the new channel's start index is its
    // newest complete Segment; a bound with room for a loaded machine.
    assert!(first_frame < Duration::from_secs(5), "{first_frame:?}");
    small.assert_no_error();
    large.assert_no_error();
}

/// A value that is not a channel URL is refused with a warning; the client stays on
/// its channel.
#[test]
fn a_bad_location_while_playing_is_refused_with_a_warning() {
    let ch = channel("only", 160, 120);
    let url = ch.listening().get::<String>("url").unwrap();
    let viewer = Peer::start(&format!("crumbsrc name=src location={url} ! fakesink"));
    wait_for("a Segment", Duration::from_secs(30), || {
        !viewer.named("crumbsrc-segment").is_empty()
    });
    let warnings: Arc<Mutex<Vec<String>>> = Arc::default();
    let w2 = warnings.clone();
    let records = viewer.records.clone();
    // Peer's handler keeps element messages and errors; this one warnings too.
    viewer
        .pipeline
        .bus()
        .unwrap()
        .set_sync_handler(move |_, msg| {
            match msg.view() {
                gst::MessageView::Warning(w) => w2.lock().unwrap().push(w.error().to_string()),
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure() {
                        records.lock().unwrap().push(s.to_owned());
                    }
                }
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
    let src = viewer.pipeline.by_name("src").unwrap();
    src.set_property("location", "ftp://example/live");
    let w = warnings.lock().unwrap().clone();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("ftp://example/live") && w[0].contains("http://HOST:PORT/CHANNEL"),
        "{}",
        w[0]
    );
    assert_eq!(src.property::<String>("location"), url, "old channel kept");
    assert_eq!(
        src.property::<gst::Structure>("stats")
            .get::<u64>("channel-switches")
            .unwrap(),
        0
    );
    let before = viewer.named("crumbsrc-segment").len();
    wait_for(
        "a Segment after the refusal",
        Duration::from_secs(10),
        || viewer.named("crumbsrc-segment").len() > before,
    );
}
