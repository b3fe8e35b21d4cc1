// SPDX-License-Identifier: MPL-2.0
//! crumbsink's automatic `enhancement-copies=-1` (issue 9, eighteenth round): a
//! channel whose link is full (here its `max-upload-rate`, under what its viewers ask
//! for) sends each enhancement piece once, one with room to spare sends it to whoever
//! asks; `stats` says which (`uplink-busy`). Real channels, real crumbsrc viewers,
//! loopback.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// A channel of about 3 Mbit/s (noise does not compress) in 1 s Segments.
fn channel(props: &str) -> Peer {
    Peer::start(&format!(
        "videotestsrc is-live=true pattern=snow \
         ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=30 layer-bitrates=<256,1024,3072> \
         ! svcsegmenter min-gops=1 max-gops=1 \
         ! crumbsink name=ch window=6 tracker-interval=2 enhancement-copies=-1 {props}"
    ))
}

fn viewer(url: &str) -> Peer {
    Peer::start(&format!("crumbsrc location={url} ! fakesink sync=false"))
}

/// `enhancement-copies` of each Segment the channel published.
fn copies(p: &Peer) -> Vec<u32> {
    p.named("crumbsink-segment")
        .iter()
        .map(|s| s.get::<u32>("enhancement-copies").unwrap())
        .collect()
}

fn stats(p: &Peer) -> gst::Structure {
    p.pipeline
        .by_name("ch")
        .unwrap()
        .property::<gst::Structure>("stats")
}

#[test]
fn a_busy_super_seed_sends_each_enhancement_piece_once() {
    init();
    // Held to 400 kB/s with every viewer sent to the super seed: its link never rests.
    let busy = channel("max-upload-rate=400000 super-seed-fanout=0");
    let free = channel("");
    let busy_url = busy.listening().get::<String>("url").unwrap();
    let free_url = free.listening().get::<String>("url").unwrap();
    let _viewers = [
        viewer(&busy_url),
        viewer(&busy_url),
        viewer(&busy_url),
        viewer(&free_url),
    ];

    // Until the busy channel published a Segment with one copy per enhancement piece
    // and a few more after it (bounded).
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        let c = copies(&busy);
        if let Some(first) = c.iter().position(|&k| k == 1)
            && c.len() >= first + 3
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "the busy channel never limited copies: {c:?}, stats {:?}",
            stats(&busy)
        );
        busy.assert_no_error();
        free.assert_no_error();
        std::thread::sleep(Duration::from_millis(100));
    }
    let (b, f) = (stats(&busy), stats(&free));
    eprintln!(
        "busy: copies {:?}, {b:?}\nfree: copies {:?}, {f:?}",
        copies(&busy),
        copies(&free)
    );
    assert!(u(&b, "segments-copies-limited") >= 1, "{b:?}");
    assert!(b.get::<f64>("uplink-variation").unwrap() >= 0.0, "{b:?}");
    // The channel with room: each Segment leaves in a burst, no limit.
    let unlimited = copies(&free);
    assert!(
        unlimited.len() >= 5 && unlimited.iter().all(|&k| k == 0),
        "{unlimited:?}"
    );
    assert!(!f.get::<bool>("uplink-busy").unwrap(), "{f:?}");
    assert_eq!(u(&f, "segments-copies-limited"), 0, "{f:?}");
    assert!(
        u(&f, "bytes-uploaded") > 0,
        "the free channel's viewer fetched nothing: {f:?}"
    );
}
