// SPDX-License-Identifier: MPL-2.0
//! Bad input gets a clear error and loses nothing: garbage, truncated units, caps
//! changes, streams that start mid-GOP, malformed crumbs, missing crumbs and Segments.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;
use gstcrumbs::core::crumb::Crumb;

const T: Duration = Duration::from_secs(60);

fn vp8_stream(frames: u32) -> (gst::Caps, Vec<gst::Buffer>) {
    collect(
        &format!(
            "videotestsrc num-buffers={frames} ! video/x-raw,width=160,height=120,framerate=30/1 ! svcvp8enc keyframe-max-dist=10 ! appsink name=out"
        ),
        T,
    )
}

fn h264_stream(frames: u32) -> (gst::Caps, Vec<gst::Buffer>) {
    collect(
        &format!(
            "videotestsrc num-buffers={frames} ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc speed-preset=ultrafast key-int-max=10 ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=out"
        ),
        T,
    )
}

fn segmenter_harness(props: &[(&str, &str)]) -> gst_check::Harness {
    init();
    // Properties first: like gst-launch, they are set before the element starts.
    let el = gst::ElementFactory::make("svcsegmenter").build().unwrap();
    for (k, v) in props {
        el.set_property_from_str(k, v);
    }
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.play();
    h
}

/// Every crumb the harness output, decoded.
fn crumbs_out(h: &mut gst_check::Harness) -> Vec<Crumb> {
    let mut out = Vec::new();
    while let Some(b) = h.try_pull() {
        let map = b.map_readable().unwrap();
        out.push(Crumb::decode(map.as_slice()).expect("svcsegmenter writes valid crumbs"));
    }
    out
}

fn stat_u64(el: &gst::Element, field: &str) -> u64 {
    el.property::<gst::Structure>("stats")
        .get::<u64>(field)
        .unwrap()
}

fn errors_and_warnings(h: &gst_check::Harness) -> (Vec<String>, Vec<String>) {
    let bus = h.element().unwrap().bus();
    let (mut e, mut w) = (Vec::new(), Vec::new());
    let Some(bus) = bus else { return (e, w) };
    while let Some(m) = bus.pop() {
        match m.view() {
            gst::MessageView::Error(x) => e.push(x.error().to_string()),
            gst::MessageView::Warning(x) => w.push(x.error().to_string()),
            _ => {}
        }
    }
    (e, w)
}

fn with_bus(h: &mut gst_check::Harness) {
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
}

#[test]
fn garbage_is_a_clear_error_not_a_panic() {
    let mut h = segmenter_harness(&[]);
    with_bus(&mut h);
    h.set_src_caps_str("video/x-h264,stream-format=byte-stream,alignment=au");
    let mut seed = 7u32;
    let mut result = Ok(gst::FlowSuccess::Ok);
    for _ in 0..100 {
        let data: Vec<u8> = (0..200)
            .map(|_| {
                seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                // No start code can appear: every byte is >= 2.
                (seed >> 24) as u8 | 2
            })
            .collect();
        result = h.push(gst::Buffer::from_slice(data));
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(gst::FlowError::Error));
    let (errors, warnings) = errors_and_warnings(&h);
    assert!(
        errors.iter().any(|e| e.contains("Not a valid h264 stream")),
        "{errors:?}"
    );
    assert!(!warnings.is_empty());
    assert!(h.try_pull().is_none(), "nothing reaches downstream");
}

#[test]
fn stream_starting_mid_gop_waits_for_a_key_frame() {
    let (caps, bufs) = h264_stream(45);
    let mut h = segmenter_harness(&[]);
    h.set_src_caps(caps);
    // Start at frame 3: frames 3..9 are not decodable without frame 0.
    for b in &bufs[3..] {
        h.push(b.clone()).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let crumbs = crumbs_out(&mut h);
    let el = h.element().unwrap();
    assert_eq!(stat_u64(&el, "dropped-before-keyframe"), 7);
    assert!(
        crumbs
            .iter()
            .filter(|c| c.index == 1)
            .all(|c| c.segment.starts_with_keyframe)
    );
    let first = crumbs.iter().find(|c| c.index == 1).unwrap();
    assert!(first.units[0].flags & gstcrumbs::core::crumb::UNIT_FLAG_KEYFRAME != 0);
    let aus: u32 = crumbs
        .iter()
        .filter(|c| c.index == 1)
        .map(|c| c.segment.au_count)
        .sum();
    assert_eq!(aus, 45 - 10);
}

#[test]
fn truncated_obu_is_dropped_and_cutting_resumes_at_the_next_key_frame() {
    let Some(file) = testdata("av1-svc-l2t3-640x360.ivf") else {
        return;
    };
    let (caps, bufs) = collect(
        &format!(
            "filesrc location={} ! ivfparse ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu ! appsink name=out",
            file.display()
        ),
        T,
    );
    let mut h = segmenter_harness(&[]);
    with_bus(&mut h);
    h.set_src_caps(caps);
    for (i, b) in bufs.iter().enumerate().take(40) {
        if i == 20 {
            // Cut the temporal unit in the middle of an OBU: its size field overruns.
            let map = b.map_readable().unwrap();
            h.push(gst::Buffer::from_slice(map[..map.len() / 2].to_vec()))
                .unwrap();
        } else {
            h.push(b.clone()).unwrap();
        }
    }
    h.push_event(gst::event::Eos::new());
    let crumbs = crumbs_out(&mut h);
    let (errors, warnings) = errors_and_warnings(&h);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        warnings.iter().any(|w| w.contains("malformed av1")),
        "{warnings:?}"
    );
    // The Segment before the damage is output whole (20 temporal units); the file has
    // no later key frame, so nothing after it is (it would not decode).
    let seg: Vec<_> = crumbs.iter().filter(|c| c.index == 1).collect();
    assert_eq!(seg.len(), 1);
    assert_eq!(seg[0].segment.au_count, 20);
    assert_eq!(stat_u64(&h.element().unwrap(), "malformed"), 1);
}

#[test]
fn caps_change_mid_stream_starts_a_new_segment_with_the_new_caps() {
    let (vcaps, vbufs) = vp8_stream(25);
    let (hcaps, hbufs) = h264_stream(25);
    let mut h = segmenter_harness(&[]);
    h.set_src_caps(vcaps.clone());
    for b in &vbufs {
        h.push(b.clone()).unwrap();
    }
    h.push_event(gst::event::Caps::new(&hcaps));
    for b in &hbufs {
        h.push(b.clone()).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let crumbs = crumbs_out(&mut h);
    let firsts: Vec<&Crumb> = crumbs.iter().filter(|c| c.index == 1).collect();
    let codecs: Vec<&str> = firsts.iter().map(|c| c.segment.codec.as_str()).collect();
    assert_eq!(codecs, ["vp8", "vp8", "vp8", "h264", "h264", "h264"]);
    assert!(firsts[3].caps.as_ref().unwrap().starts_with("video/x-h264"));
    // Sequence numbers keep counting across the change.
    let seqs: Vec<u64> = firsts.iter().map(|c| c.segment.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4, 5]);

    // crumbjoin follows the change: caps events with each codec, all frames out.
    let mut j = gst_check::Harness::new("crumbjoin");
    j.set_src_caps_str("application/x-crumb");
    j.play();
    for c in &crumbs {
        j.push(gst::Buffer::from_slice(c.encode())).unwrap();
    }
    j.push_event(gst::event::Eos::new());
    let mut caps_seen = Vec::new();
    let mut buffers = 0;
    while let Some(ev) = j.try_pull_event() {
        if let gst::EventView::Caps(c) = ev.view() {
            caps_seen.push(c.caps().structure(0).unwrap().name().to_string());
        }
    }
    while j.try_pull().is_some() {
        buffers += 1;
    }
    assert_eq!(caps_seen, ["video/x-vp8", "video/x-h264"]);
    assert_eq!(buffers, 50);
}

#[test]
fn success_ratio_moves_gops() {
    let (caps, bufs) = vp8_stream(120);
    let mut h = segmenter_harness(&[
        ("gops", "2"),
        ("min-gops", "1"),
        ("max-gops", "3"),
        ("success-threshold", "0.5"),
    ]);
    h.set_src_caps(caps);
    let gops_of_segments = |h: &mut gst_check::Harness| -> Vec<u16> {
        crumbs_out(h)
            .iter()
            .filter(|c| c.index == 1)
            .map(|c| c.segment.gops)
            .collect()
    };
    for b in &bufs[..40] {
        h.push(b.clone()).unwrap();
    }
    assert_eq!(gops_of_segments(&mut h), [2]);
    // The audience succeeds: the Segment after next grows to 3 GOPs.
    assert!(h.push_upstream_event(gstcrumbs::svcsegmenter::success_ratio_event(0.9, 0)));
    for b in &bufs[40..80] {
        h.push(b.clone()).unwrap();
    }
    // The audience fails: one GOP less, down to 1 after two reports.
    assert!(h.push_upstream_event(gstcrumbs::svcsegmenter::success_ratio_event(0.2, 1)));
    assert!(h.push_upstream_event(gstcrumbs::svcsegmenter::success_ratio_event(0.2, 2)));
    for b in &bufs[80..] {
        h.push(b.clone()).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    // Key frames every 10 frames. |G| is what a Segment in progress aims for: the one
    // from frame 20 grows to 3 GOPs; after the failures Segments shrink to 1 GOP.
    let gops = gops_of_segments(&mut h);
    assert_eq!(gops[0], 3, "{gops:?}");
    assert!(gops[gops.len() - 3..].iter().all(|&g| g == 1), "{gops:?}");
    let st = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(st.get::<u32>("current-gops").unwrap(), 1);
    assert_eq!(st.get::<f64>("last-success-ratio").unwrap(), 0.2);
    // A ratio outside 0..1 is refused.
    assert!(!h.push_upstream_event(gstcrumbs::svcsegmenter::success_ratio_event(1.5, 3)));
}

#[test]
fn malformed_crumb_is_dropped_with_a_warning() {
    let (caps, bufs) = vp8_stream(30);
    let mut s = segmenter_harness(&[]);
    s.set_src_caps(caps);
    for b in &bufs {
        s.push(b.clone()).unwrap();
    }
    s.push_event(gst::event::Eos::new());
    let crumbs = crumbs_out(&mut s);
    init();
    let mut j = gst_check::Harness::new("crumbjoin");
    with_bus(&mut j);
    j.set_src_caps_str("application/x-crumb");
    j.play();
    j.push(gst::Buffer::from_slice(b"this is not a crumb".to_vec()))
        .unwrap();
    let mut damaged = crumbs[0].encode();
    let n = damaged.len();
    damaged[n / 2] ^= 0x40;
    j.push(gst::Buffer::from_slice(damaged)).unwrap();
    for c in &crumbs[1..] {
        j.push(gst::Buffer::from_slice(c.encode())).unwrap();
    }
    j.push_event(gst::event::Eos::new());
    let (errors, warnings) = errors_and_warnings(&j);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        warnings.iter().any(|w| w.contains("not a crumb")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("checksum")),
        "{warnings:?}"
    );
    let st = j.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(st.get::<u64>("crumbs-malformed").unwrap(), 2);
    // Segment 0 lost crumb 1: skipped; the others play.
    assert_eq!(st.get::<u64>("segments-skipped").unwrap(), 1);
    assert_eq!(st.get::<u64>("segments-output").unwrap(), 2);
}

/// A Segment lost between segmenter and joiner: the decoder gets a clean stream (a gap,
/// then a DISCONT at the next Segment's key frame) and never an error.
#[test]
fn lost_segment_gives_a_gap_and_a_clean_decode() {
    let pipeline = launch(
        "videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120,framerate=30/1 ! svcvp8enc keyframe-max-dist=10 \
         ! svcsegmenter name=seg ! crumbjoin name=join ! vp8dec ! videoconvert ! video/x-raw,format=I420 ! appsink name=frames",
    );
    let join = pipeline.by_name("join").unwrap();
    let sinkpad = join.static_pad("sink").unwrap();
    sinkpad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        let Some(gst::PadProbeData::Buffer(b)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let b = b.clone();
        // Offset carries the Segment number: drop all of Segment 2.
        if b.offset() == 2 {
            // Take the buffer: the probe owns and frees it.
            info.data.take();
            gst::PadProbeReturn::Handled
        } else {
            gst::PadProbeReturn::Ok
        }
    });
    let srcpad = join.static_pad("src").unwrap();
    let gaps = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let disconts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (g2, d2) = (gaps.clone(), disconts.clone());
    srcpad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Gap => {
                    g2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Some(gst::PadProbeData::Buffer(b))
                    if b.flags().contains(gst::BufferFlags::DISCONT) =>
                {
                    d2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    let sink = pipeline
        .by_name("frames")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let f2 = frames.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                f2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let res = run(&pipeline, T);
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(frames.load(std::sync::atomic::Ordering::SeqCst), 50);
    assert_eq!(gaps.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        disconts.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "first buffer and after the gap"
    );
    let skipped: Vec<_> = res
        .messages("crumbjoin-segment")
        .into_iter()
        .filter(|s| s.get::<u32>("d").unwrap() == 0)
        .collect();
    assert!(
        skipped.is_empty(),
        "a Segment never seen is a gap, not a skipped Segment message"
    );
}

/// A raw elementary stream without timestamps is timed from the caps' framerate, so its
/// Segments have durations (a channel needs them for deadlines).
#[test]
fn stream_without_timestamps_is_timed_from_the_framerate() {
    let Some(file) = testdata("h264-svc-s3t3-640x360.264") else {
        return;
    };
    let pipeline = launch(&format!(
        "filesrc location={} ! h264parse ! capssetter caps=\"video/x-h264,framerate=(fraction)30/1\" ! svcsegmenter name=seg ! fakesink",
        file.display()
    ));
    let res = run(&pipeline, T);
    assert!(res.error.is_none(), "{:?}", res.error);
    let segs = res.messages("svcsegmenter-segment");
    assert_eq!(segs.len(), 5);
    for (k, s) in segs.iter().enumerate() {
        // 60 frames at 30 fps per GOP (integer ns per frame).
        assert_eq!(
            s.get::<u64>("duration").unwrap(),
            60 * 33_333_333,
            "Segment {k}"
        );
        assert_eq!(s.get::<u64>("pts").unwrap(), k as u64 * 60 * 33_333_333);
    }
    let st = pipeline
        .by_name("seg")
        .unwrap()
        .property::<gst::Structure>("stats");
    assert_eq!(st.get::<u64>("timestamps-interpolated").unwrap(), 300);
}

/// 2 MB of random bytes (a fixed seed: the same bytes every run) in a temporary file.
fn random_file(tag: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "crumbs-test-random-{tag}-{}.bin",
        std::process::id()
    ));
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..2 * 1024 * 1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    std::fs::write(&path, data).unwrap();
    path
}

/// Random bytes with AV1 or VP8 caps (filesrc, 4 kB buffers, as a user would try it)
/// are refused with an element error naming the codec; no Segment is made.
#[test]
fn random_bytes_with_av1_or_vp8_caps_are_an_error() {
    for (codec, caps) in [
        ("av1", "video/x-av1,stream-format=obu-stream,alignment=tu"),
        ("vp8", "video/x-vp8,width=160,height=120,framerate=30/1"),
    ] {
        let file = random_file(codec);
        let pipeline = launch(&format!(
            "filesrc location={} ! capsfilter caps=\"{caps}\" ! svcsegmenter name=seg ! fakesink",
            file.display()
        ));
        let res = run(&pipeline, T);
        let _ = std::fs::remove_file(&file);
        let error = res.error.as_deref().unwrap_or("");
        assert!(
            error.contains(&format!("Not a valid {codec} stream")),
            "{codec}: {:?}",
            res.error
        );
        assert!(
            res.messages("svcsegmenter-segment").is_empty(),
            "{codec}: garbage became Segments"
        );
        let st = pipeline
            .by_name("seg")
            .unwrap()
            .property::<gst::Structure>("stats");
        assert_eq!(st.get::<u64>("segments").unwrap(), 0, "{codec}");
        assert_eq!(st.get::<u64>("crumbs").unwrap(), 0, "{codec}");
        // It stopped at the error: 50 malformed buffers, not 512 warnings.
        let malformed = st.get::<u64>("malformed").unwrap();
        assert!((50..=60).contains(&malformed), "{codec}: {malformed}");
    }
}
