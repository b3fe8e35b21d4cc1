// SPDX-License-Identifier: MPL-2.0
//! crumbsrc's play-out timeline, seen by a synced sink: the first frame plays `latency`
//! after crumbsrc outputs it (not twice that) plus the room kept for the channel's
//! longest Segment, so that when the Segments grow while the client waits at the live
//! edge, the longer Segment still comes in time: no stall, no frame late. (Before the
//! room, each growth stalled the player; a late frame would reach the sink late, where
//! a video sink drops it and every frame after it. The stall itself, DISCONT and the
//! timeline moved forward, is unit-tested in `core::playout`.) A synced sink right
//! after crumbsrc paces its pushes, which are no stall; a pause delays the timeline.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// One buffer crumbsrc pushed: the clock's running time then, the buffer's running
/// time (a live time segment from 0: its PTS).
#[derive(Clone, Copy, Debug)]
struct Pushed {
    now: u64,
    running: u64,
}

#[test]
fn a_synced_sink_plays_every_frame_in_time_across_growing_segments() {
    // 0.5 s GOPs, |G| 1 to 4: the first Segment (0.5 s) is stamped 1.5 s ahead.
    plays_in_time(15, Some(500_000_000), 500_000_000, 1_500_000_000);
}

#[test]
fn with_the_default_latency_the_timestamps_carry_the_longest_segment() {
    // 1 s GOPs, |G| 1 to 4: Segments up to 4 s, more than the 3 s the latency query
    // answers. The first Segment (1 s) is stamped 3 s (room) + 1 s (4 s of delay
    // where the sink adds 3) ahead, and no frame comes late to a sink that plays with
    // the 3 s it was told.
    plays_in_time(30, None, 3_000_000_000, 4_000_000_000);
}

/// A channel of `gop`-frame GOPs (30 fps) whose |G| grows from 1 to 4 as the one client
/// reports success; the client joins at the live edge (start-offset=0), so each
/// longer Segment is published after the shorter one's play-out would have ended
/// without the room. crumbsrc at `latency` (`None`: the default), into a synced
/// sink that adds `answered`; its first buffer is stamped about `ahead_want` after
/// its output.
fn plays_in_time(gop: u32, latency: Option<u64>, answered: u64, ahead_want: i64) {
    init();
    let port = free_port();
    let channel = Peer::start(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist={gop} ! svcsegmenter min-gops=1 max-gops=4 \
         ! crumbsink channel=live http-port={port} window=6 start-offset=0"
    ));
    let url = channel.listening().get::<String>("url").unwrap();
    let latency = latency.map_or(String::new(), |l| format!("latency={l}"));
    // A queue after crumbsrc: each buffer is pushed when its Segment is ready, so that
    // its push time says whether it came in time (without it the sink paces the push,
    // a frame before play-out less 20 ms, and a scheduling hiccup reads as lateness;
    // that case is `a_sink_that_paces_crumbsrc_at_60_fps_is_no_stall`).
    // Held window polls: the client sees each Segment the moment it is published. With
    // plain polls (every 500 ms) it sees it 0-500 ms later, at random, which a 0.5 s
    // latency cannot absorb on a loaded machine (CI: one 420 ms stall), and this test
    // is about the room kept for the Segments' growth, not the poll's phase.
    let pushed: Arc<Mutex<Vec<Pushed>>> = Arc::default();
    let p2 = pushed.clone();
    let client = Peer::start_with(
        &format!(
            "crumbsrc name=src location={url} {latency} window-hold=1000 \
             ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! vp8dec \
             ! fakesink name=out sync=true max-lateness=20000000"
        ),
        move |pipeline| {
            let src = pipeline.by_name("src").unwrap();
            let weak = pipeline.downgrade();
            src.static_pad("src")
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                    let (Some(pipeline), Some(gst::PadProbeData::Buffer(buf))) =
                        (weak.upgrade(), info.data.as_ref())
                    else {
                        return gst::PadProbeReturn::Ok;
                    };
                    let now = match (pipeline.clock(), pipeline.base_time()) {
                        (Some(c), Some(b)) => c.time().saturating_sub(b).nseconds(),
                        _ => return gst::PadProbeReturn::Ok,
                    };
                    if let Some(pts) = buf.pts() {
                        p2.lock().unwrap().push(Pushed {
                            now,
                            running: pts.nseconds(),
                        });
                    }
                    gst::PadProbeReturn::Ok
                });
        },
    );

    // Until three of the longest Segments were played (the growth is over), 60 s at
    // most.
    let longest = u64::from(gop) * 4 * 1_000_000_000 / 30;
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        client.assert_no_error();
        let long = client
            .named("crumbsrc-segment")
            .iter()
            .filter(|s| s.get::<bool>("success").unwrap() && u(s, "duration") >= longest)
            .count();
        if long >= 3 {
            break;
        }
        assert!(
            Instant::now() < end,
            "the Segments did not grow to {longest} ns"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = client.stats("src");
    let pushed = pushed.lock().unwrap().clone();
    // Each Segment's figures, for a failure to say which Segment came late and why.
    let segments: Vec<String> = client
        .named("crumbsrc-segment")
        .iter()
        .map(|s| {
            format!(
                "{} dur {} ms d {}/{} margin {} ms play-delay {} ms stall {} ms",
                u(s, "seq"),
                u(s, "duration") / 1_000_000,
                s.get::<u32>("crumbs-done").unwrap(),
                s.get::<u32>("crumbs-total").unwrap(),
                s.get::<i64>("deadline-margin").unwrap() / 1_000_000,
                s.get::<i64>("play-delay").unwrap() / 1_000_000,
                u(s, "stall") / 1_000_000,
            )
        })
        .collect();
    drop(client);
    drop(channel);

    // The first frame is stamped `ahead_want` after the engine's plan was made, its
    // Segment done, so a little less after its output; the sink adds `answered`.
    let first = pushed[0];
    let ahead = first.running as i64 - first.now as i64;
    assert!(
        (ahead_want - 500_000_000..ahead_want + 200_000_000).contains(&ahead),
        "first buffer stamped {ahead} ns from its output time, not about {ahead_want}"
    );
    // No frame reached the sink after its play-out time.
    let late: Vec<_> = pushed
        .iter()
        .filter(|p| p.running + answered + 5_000_000 < p.now)
        .collect();
    assert!(
        late.is_empty(),
        "{} late buffers, first {:?}",
        late.len(),
        late[0]
    );
    // The growth did not stall the timeline.
    assert_eq!(
        u(&stats, "playout-stalls"),
        0,
        "a stall while the Segments grew at the live edge ({} ns); the Segments:\n{}",
        u(&stats, "playout-stall-time"),
        segments.join("\n")
    );
    // The timeline only moves forward.
    assert!(pushed.windows(2).all(|w| w[1].running >= w[0].running));
}

/// crumbsrc right before a synced sink, no queue between (`crumbsrc ! vp8dec !
/// autovideosink`, the pipeline README shows): the sink paces crumbsrc's streaming
/// thread, which pushes each frame only once the one before it has played, a frame's
/// time before its own play-out less the sink's processing deadline (20 ms). Judged
/// by its push, every frame at 60 fps would be late; judged by when its Segment was
/// ready, none is: no stall, every Segment played.
#[test]
fn a_sink_that_paces_crumbsrc_at_60_fps_is_no_stall() {
    init();
    let port = free_port();
    let channel = Peer::start(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=60/1 \
         ! svcvp8enc keyframe-max-dist=30 ! svcsegmenter min-gops=1 max-gops=1 \
         ! crumbsink channel=live http-port={port} window=6 start-offset=0"
    ));
    let url = channel.listening().get::<String>("url").unwrap();
    let client = Peer::start(&format!(
        "crumbsrc name=src location={url} latency=500000000 window-hold=1000 ! vp8dec \
         ! fakesink sync=true"
    ));
    wait_for_segments(&client, 6);
    let stats = client.stats("src");
    let segments = client.named("crumbsrc-segment");
    drop(client);
    drop(channel);
    assert!(
        segments.iter().all(|s| s.get::<bool>("success").unwrap()),
        "a Segment failed: {segments:?}"
    );
    assert_eq!(
        (u(&stats, "playout-stalls"), u(&stats, "playout-stall-time")),
        (0, 0),
        "the sink's pace taken for stalls"
    );
}

/// A viewer pauses a synced pipeline for 2 s and plays on: a live pipeline's running
/// time stands still in PAUSED, so the Segments that came meanwhile play from where it
/// paused, 2 s further behind the live edge: no stall, no frame late at the sink
/// (where a video sink would drop them), none dropped. (crumbsrc counts a Segment
/// that came while paused as ready when it plays again.)
#[test]
fn after_a_pause_the_segments_play_on_from_where_it_paused() {
    init();
    let port = free_port();
    let channel = Peer::start(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter min-gops=1 max-gops=1 \
         ! crumbsink channel=live http-port={port} window=10 start-offset=0"
    ));
    let url = channel.listening().get::<String>("url").unwrap();
    let client = Peer::start(&format!(
        "crumbsrc name=src location={url} latency=500000000 window-hold=1000 ! vp8dec \
         ! fakesink name=out sync=true max-lateness=20000000"
    ));
    wait_for_segments(&client, 3);
    client.pipeline.set_state(gst::State::Paused).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    client.pipeline.set_state(gst::State::Playing).unwrap();
    let before = client.named("crumbsrc-segment").len();
    wait_for_segments(&client, before + 6);
    let sink = client.stats("out");
    let stats = client.stats("src");
    drop(client);
    drop(channel);
    // A frame or two may come late to the sink on a loaded machine; 2 s of them is
    // 60.
    let dropped = u(&sink, "dropped");
    assert!(dropped < 10, "{dropped} frames late at the sink: {sink:?}");
    assert_eq!(u(&stats, "playout-stalls"), 0, "{stats:?}");
    assert_eq!(u(&stats, "segments-failed"), 0, "{stats:?}");
}

/// Until crumbsrc `src` of `client` has posted `n` crumbsrc-segment messages, 30 s at
/// most.
fn wait_for_segments(client: &Peer, n: usize) {
    let end = Instant::now() + Duration::from_secs(30);
    while client.named("crumbsrc-segment").len() < n {
        client.assert_no_error();
        assert!(
            Instant::now() < end,
            "{n} Segments did not come in 30 s: {:?}",
            client.stats("src")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
