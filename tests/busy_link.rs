// SPDX-License-Identifier: MPL-2.0
//! crumbsink's automatic `enhancement-copies=-1` (issue 9, eighteenth round): a
//! channel whose link is full (here its `max-upload-rate`, under what its viewers ask
//! for) sends each enhancement piece once, one with room to spare sends it to whoever
//! asks; `stats` says which (`uplink-busy`). Both start with one copy (the link is
//! presumed busy until 8 s of its upload say otherwise). Real channels, real crumbsrc
//! viewers, loopback.

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

    // Until the busy channel was judged busy (a variation measured, not presumed) and
    // published three Segments since, and the free one was judged (bounded).
    let end = Instant::now() + Duration::from_secs(90);
    let mut judged_at = None;
    loop {
        let c = copies(&busy);
        let b = stats(&busy);
        if judged_at.is_none()
            && b.get::<f64>("uplink-variation").unwrap() >= 0.0
            && b.get::<bool>("uplink-busy").unwrap()
        {
            judged_at = Some(c.len());
        }
        let free_judged = stats(&free).get::<f64>("uplink-variation").unwrap() >= 0.0;
        if judged_at.is_some_and(|n| c.len() >= n + 3) && free_judged && copies(&free).len() >= 12 {
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
    // Judged busy, the link goes on with one copy per piece.
    let limited = copies(&busy);
    let n = judged_at.unwrap();
    assert!(limited[n..].iter().all(|&k| k == 1), "{limited:?}");
    let v = b.get::<f64>("uplink-variation").unwrap();
    assert!(
        (0.0..=0.9).contains(&v) || b.get::<bool>("uplink-busy").unwrap(),
        "{b:?}"
    );
    // The channel with room: presumed busy for its first 8 s (1 s Segments), then
    // each Segment leaves in a burst, no limit.
    let unlimited = copies(&free);
    let first_free = unlimited.iter().position(|&k| k == 0).unwrap();
    assert!(first_free <= 10, "{unlimited:?}");
    assert!(
        unlimited[first_free..].iter().all(|&k| k == 0),
        "{unlimited:?}"
    );
    assert!(!f.get::<bool>("uplink-busy").unwrap(), "{f:?}");
    assert_eq!(u(&f, "segments-copies-limited"), first_free as u64, "{f:?}");
    assert!(
        u(&f, "bytes-uploaded") > 0,
        "the free channel's viewer fetched nothing: {f:?}"
    );
}
