// SPDX-License-Identifier: MPL-2.0
//! Audio beside video: real encoders (opusenc; avenc_aac when installed) into
//! svcsegmenter's `audio` pad, crumb 1 carrying the audio, crumbjoin and a live
//! crumbsrc on loopback giving it back on their `audio` pads to real decoders. At
//! each Segment start the audio and the video agree within one video frame; a late
//! joiner, a lost Segment (in crumbjoin and in a live channel) and a caps change keep
//! them aligned.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

const T: Duration = Duration::from_secs(90);
/// One video frame at 30 fps, the alignment bound.
const FRAME: u64 = 33_333_334;

/// What crossed one pad: buffers (pts, key frame, DISCONT), gaps (start, duration),
/// caps.
#[derive(Debug, Default, Clone)]
struct PadLog {
    buffers: Vec<(u64, bool, bool)>,
    gaps: Vec<(u64, u64)>,
    caps: Vec<String>,
}

type Log = Arc<Mutex<PadLog>>;

fn tap(pad: &gst::Pad, log: Log) {
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let mut l = log.lock().unwrap();
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    if let Some(pts) = b.pts() {
                        l.buffers.push((
                            pts.nseconds(),
                            !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
                            b.flags().contains(gst::BufferFlags::DISCONT),
                        ));
                    }
                }
                Some(gst::PadProbeData::Event(e)) => match e.view() {
                    gst::EventView::Gap(g) => {
                        let (start, d) = g.get();
                        l.gaps
                            .push((start.nseconds(), d.map_or(0, |d| d.nseconds())));
                    }
                    gst::EventView::Caps(c) => l.caps.push(c.caps().to_string()),
                    _ => {}
                },
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Logs of the `src` and (sometimes) `audio` pads of the element named `name`.
fn tap_element(pipeline: &gst::Pipeline, name: &str) -> (Log, Log) {
    let el = pipeline.by_name(name).unwrap();
    let (video, audio) = (Log::default(), Log::default());
    tap(&el.static_pad("src").unwrap(), video.clone());
    let a2 = audio.clone();
    el.connect_pad_added(move |_, pad| {
        if pad.name() == "audio" {
            tap(pad, a2.clone());
        }
    });
    (video, audio)
}

/// Buffers counted on the src pad of the element named `name` (a decoder).
fn count_output(pipeline: &gst::Pipeline, name: &str) -> Arc<Mutex<u64>> {
    let n = Arc::new(Mutex::new(0u64));
    let n2 = n.clone();
    pipeline
        .by_name(name)
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            *n2.lock().unwrap() += 1;
            gst::PadProbeReturn::Ok
        });
    n
}

/// At every Segment start (a video key frame: each Segment starts with one) some
/// audio frame starts within one video frame of it. Returns the starts checked.
fn assert_aligned(video: &PadLog, audio: &PadLog, what: &str) -> usize {
    assert!(!audio.buffers.is_empty(), "{what}: no audio");
    let starts: Vec<u64> = video.buffers.iter().filter(|b| b.1).map(|b| b.0).collect();
    for &k in &starts {
        let nearest = audio.buffers.iter().map(|a| a.0.abs_diff(k)).min().unwrap();
        assert!(
            nearest <= FRAME,
            "{what}: the audio nearest the Segment start {k} is {nearest} ns away"
        );
    }
    starts.len()
}

/// Neither pad has a buffer inside a gap of the video pad; both pads got the gaps.
fn assert_gaps_on_both(video: &PadLog, audio: &PadLog, what: &str) {
    assert_eq!(video.gaps, audio.gaps, "{what}: the same gaps on both pads");
    for &(start, d) in &video.gaps {
        for (pad, log) in [("video", video), ("audio", audio)] {
            assert!(
                !log.buffers.iter().any(|b| b.0 >= start && b.0 < start + d),
                "{what}: {pad} buffer inside the gap {start}+{d}"
            );
        }
    }
}

fn have(factory: &str) -> bool {
    init();
    let ok = gst::ElementFactory::find(factory).is_some();
    if !ok {
        eprintln!("SKIPPED: {factory} is not installed");
    }
    ok
}

/// svcsegmenter -> crumbjoin with `encoder`'s audio; `drop_segment` drops every crumb
/// of that Segment between them; `caps_change_at` switches the video to 320x240 at
/// that frame. Checks both decoders ran, alignment, gaps; returns the logs.
fn through_crumbjoin(
    encoder: &str,
    decoder: &str,
    drop_segment: Option<u64>,
    caps_change_at: Option<u64>,
) -> (PadLog, PadLog, RunResult) {
    let pipeline = launch(&format!(
        "videotestsrc name=vsrc num-buffers=120 ! capsfilter name=cf caps=video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter name=seg ! crumbjoin name=join \
         join. ! queue ! vp8dec name=vdec ! fakesink \
         audiotestsrc num-buffers=200 samplesperbuffer=960 ! audioconvert ! {encoder} ! seg.audio \
         join.audio ! queue ! {decoder} name=adec ! fakesink"
    ));
    let (video, audio) = tap_element(&pipeline, "join");
    let vframes = count_output(&pipeline, "vdec");
    let aframes = count_output(&pipeline, "adec");
    if let Some(lost) = drop_segment {
        pipeline
            .by_name("join")
            .unwrap()
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                match &info.data {
                    // Offset carries the Segment number.
                    Some(gst::PadProbeData::Buffer(b)) if b.offset() == lost => {
                        // Taken: the probe owns and frees it (`Drop` would free it
                        // twice in gstreamer-rs).
                        info.data.take();
                        gst::PadProbeReturn::Handled
                    }
                    _ => gst::PadProbeReturn::Ok,
                }
            });
    }
    if let Some(at) = caps_change_at {
        let cf = pipeline.by_name("cf").unwrap();
        let n = Arc::new(Mutex::new(0u64));
        pipeline
            .by_name("vsrc")
            .unwrap()
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                let mut n = n.lock().unwrap();
                *n += 1;
                if *n == at {
                    cf.set_property(
                        "caps",
                        gst::Caps::builder("video/x-raw")
                            .field("width", 320)
                            .field("height", 240)
                            .field("framerate", gst::Fraction::new(30, 1))
                            .build(),
                    );
                }
                gst::PadProbeReturn::Ok
            });
    }
    let res = run(&pipeline, T);
    assert!(res.error.is_none(), "{:?}", res.error);
    let (video, audio) = (video.lock().unwrap().clone(), audio.lock().unwrap().clone());
    // Every video access unit decodes (audio bytes mixed into a frame would not).
    assert_eq!(
        *vframes.lock().unwrap() as usize,
        video.buffers.len(),
        "video frames decoded"
    );
    assert!(
        *aframes.lock().unwrap() as usize >= audio.buffers.len() / 2,
        "{decoder} decoded the audio"
    );
    let starts = assert_aligned(&video, &audio, encoder);
    assert!(starts >= 4, "{starts} Segment starts");
    assert_gaps_on_both(&video, &audio, encoder);
    (video, audio, res)
}

#[test]
fn opus_beside_vp8_through_crumbjoin() {
    let (_, audio, res) = through_crumbjoin("opusenc", "opusdec", None, None);
    assert_eq!(audio.caps.len(), 1);
    assert!(
        audio.caps[0].starts_with("audio/x-opus"),
        "{:?}",
        audio.caps
    );
    // Every Opus frame of 4 s (20 ms each) is in a Segment, and only once.
    let frames: u32 = res
        .messages("svcsegmenter-segment")
        .iter()
        .map(|s| s.get::<u32>("audio-frames").unwrap())
        .sum();
    assert!(
        (190..=201).contains(&frames),
        "{frames} audio frames in Segments"
    );
    assert_eq!(audio.buffers.len(), frames as usize);
    let mut pts: Vec<u64> = audio.buffers.iter().map(|b| b.0).collect();
    pts.dedup();
    assert_eq!(pts.len(), audio.buffers.len(), "no frame twice");
    assert!(audio.buffers[0].2, "first audio frame is DISCONT");
}

#[test]
fn aac_beside_vp8_through_crumbjoin() {
    if !have("avenc_aac") || !have("avdec_aac") {
        return;
    }
    let (_, audio, _) = through_crumbjoin("avenc_aac", "avdec_aac", None, None);
    assert!(
        audio.caps[0].starts_with("audio/mpeg") && audio.caps[0].contains("mpegversion=(int)4"),
        "{:?}",
        audio.caps
    );
}

#[test]
fn a_lost_segment_is_a_gap_on_both_pads() {
    let (video, audio, _) = through_crumbjoin("opusenc", "opusdec", Some(2), None);
    assert_eq!(video.gaps.len(), 1, "{:?}", video.gaps);
    // Both resume at the next Segment with DISCONT.
    let (start, d) = video.gaps[0];
    let after = |log: &PadLog| {
        *log.buffers
            .iter()
            .find(|b| b.0 >= start + d)
            .expect("something after the gap")
    };
    assert!(after(&video).2 && after(&audio).2, "DISCONT after the gap");
    assert!(after(&audio).0.abs_diff(after(&video).0) <= FRAME);
}

#[test]
fn a_caps_change_keeps_audio_and_video_aligned() {
    let (video, audio, res) = through_crumbjoin("opusenc", "opusdec", None, Some(60));
    assert!(res.messages("svcsegmenter-segment").len() >= 4);
    // The video's caps did change (160x120, then 320x240) ...
    assert_eq!(video.caps.len(), 2, "{:?}", video.caps);
    assert!(video.caps[1].contains("width=(int)320"), "{:?}", video.caps);
    // The audio's caps did not change: announced once, and it kept flowing across
    // the video's caps change without a hole longer than a video frame.
    assert_eq!(audio.caps.len(), 1);
    for w in audio.buffers.windows(2) {
        assert!(
            w[1].0 - w[0].0 <= FRAME,
            "audio hole {} .. {}",
            w[0].0,
            w[1].0
        );
    }
}

/// The video-only path is unchanged but for the version: no audio pad appears,
/// crumbs have no audio flag.
#[test]
fn video_only_crumbs_carry_no_audio() {
    let pipeline = launch(
        "videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter ! appsink name=crumbs sync=false",
    );
    let sink = pipeline
        .by_name("crumbs")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let crumbs = Arc::new(Mutex::new(Vec::new()));
    let c2 = crumbs.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let map = sample.buffer().unwrap().map_readable().unwrap().to_vec();
                c2.lock().unwrap().push(map);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let res = run(&pipeline, T);
    assert!(res.error.is_none(), "{:?}", res.error);
    let crumbs = crumbs.lock().unwrap();
    assert!(!crumbs.is_empty());
    for c in crumbs.iter() {
        assert_eq!(c[4], 2, "version 2");
        assert_eq!(c[6] & 0x04, 0, "no audio flag");
    }
    for s in res.messages("svcsegmenter-segment") {
        assert!(!s.has_field("audio-frames"), "{s}");
    }
}

/// A live channel with audio on loopback that loses one Segment: a viewer playing both
/// pads from the start (the lost Segment is a gap on both), one joining 3 s late, and
/// a video-only viewer (`crumbsrc ! vp8dec`) of the same channel.
#[test]
fn live_channel_with_audio_on_loopback() {
    const LOST: u64 = 5;
    let channel = Peer::start_with(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter name=seg max-crumb-size=0 \
         ! crumbsink name=ch window=8 \
         audiotestsrc is-live=true samplesperbuffer=960 ! audioconvert ! opusenc ! seg.audio",
        |p| {
            // The channel loses Segment LOST (never published): viewers get a gap.
            p.by_name("ch")
                .unwrap()
                .static_pad("sink")
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, |_, info| match &info.data {
                    Some(gst::PadProbeData::Buffer(b)) if b.offset() == LOST => {
                        info.data.take();
                        gst::PadProbeReturn::Handled
                    }
                    _ => gst::PadProbeReturn::Ok,
                });
        },
    );
    let url = channel.listening().get::<String>("url").unwrap();
    let viewer = |name: &str| {
        let logs = Arc::new(Mutex::new(None));
        let l2 = logs.clone();
        let n = name.to_string();
        let peer = Peer::start_with(
            &format!(
                "crumbsrc name={name} location={url} latency=500000000 \
                 {name}. ! queue ! vp8dec name=vdec ! fakesink sync=false \
                 {name}.audio ! queue ! opusdec name=adec ! fakesink sync=false"
            ),
            move |p| {
                let (v, a) = tap_element(p, &n);
                let counts = (count_output(p, "vdec"), count_output(p, "adec"));
                *l2.lock().unwrap() = Some((v, a, counts));
            },
        );
        let logs = logs.lock().unwrap().take().unwrap();
        (peer, logs)
    };
    let (first, (v1, a1, c1)) = viewer("first");
    let video_only = Peer::start(&format!(
        "crumbsrc name=vo location={url} latency=500000000 ! vp8dec ! fakesink sync=false"
    ));
    let wait_segments = |peer: &Peer, n: usize, what: &str| {
        let end = Instant::now() + Duration::from_secs(40);
        // Segments played (d > 0): on a loaded machine some may fail, and only a
        // played one gives a Segment start to check.
        let played = |p: &Peer| {
            p.named("crumbsrc-segment")
                .iter()
                .filter(|r| u(r, "d") > 0)
                .count()
        };
        while played(peer) < n {
            peer.assert_no_error();
            channel.assert_no_error();
            assert!(Instant::now() < end, "{what}: fewer than {n} Segments");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_segments(&first, 6, "first");
    let (late, (v2, a2, c2)) = viewer("late");
    wait_segments(&late, 6, "late");
    wait_segments(&video_only, 6, "video only");
    for p in [&channel, &first, &late, &video_only] {
        p.assert_no_error();
    }

    // The audio pad is live with the element's latency, like `src`: the pipeline
    // delays both branches alike.
    let pad = first
        .pipeline
        .by_name("first")
        .unwrap()
        .static_pad("audio")
        .expect("crumbsrc has an audio pad");
    let mut q = gst::query::Latency::new();
    assert!(pad.query(&mut q));
    let (live, min, _) = q.result();
    assert!(
        live && min == gst::ClockTime::from_mseconds(500),
        "{live} {min}"
    );
    // The late viewer started at the live edge, not where the first one did.
    let first_seq = |p: &Peer| u(&p.named("crumbsrc-segment")[0], "seq");
    assert!(
        first_seq(&late) > first_seq(&first),
        "late joined at {}, first at {}",
        first_seq(&late),
        first_seq(&first)
    );
    // The window says the channel carries Opus.
    let window: gstcrumbs::core::api::WindowDoc = window_of(&url);
    assert!(
        window
            .audio_caps
            .as_deref()
            .is_some_and(|c| c.starts_with("audio/x-opus")),
        "{:?}",
        window.audio_caps
    );
    // The audio counts in crumb 1's size, which the clients' deadlines and rate
    // estimates use.
    let made = channel.named("svcsegmenter-segment");
    let mut checked = 0;
    for seg in &window.segments {
        let Some(m) = made.iter().find(|m| u(m, "seq") == seg.seq) else {
            continue;
        };
        assert!(u(m, "audio-bytes") > 0, "{m}");
        assert_eq!(seg.crumbs[0].size, u(m, "base-bytes"), "{m}");
        checked += 1;
    }
    assert!(checked > 0);
    for (what, v, a, c) in [("first", &v1, &a1, &c1), ("late", &v2, &a2, &c2)] {
        let (v, a) = (v.lock().unwrap().clone(), a.lock().unwrap().clone());
        let starts = assert_aligned(&v, &a, what);
        assert!(starts >= 4, "{what}: {starts} Segment starts");
        assert_gaps_on_both(&v, &a, what);
        // Every video access unit decodes (audio bytes mixed into a frame would not).
        // The decoder runs behind a queue, so wait (bounded) for it to reach the
        // frames crumbsrc had pushed when the log was read.
        let decoded = {
            let end = Instant::now() + Duration::from_secs(20);
            loop {
                let n = *c.0.lock().unwrap() as usize;
                if n + 10 >= v.buffers.len() || Instant::now() > end {
                    break n;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        assert!(
            decoded + 10 >= v.buffers.len(),
            "{what}: {decoded} of {} video frames decoded",
            v.buffers.len()
        );
        assert!(*c.1.lock().unwrap() > 0, "{what}: audio decoded");
        eprintln!(
            "{what}: {} video and {} audio buffers, {} Segment starts aligned",
            v.buffers.len(),
            a.buffers.len(),
            starts
        );
    }
    // The first viewer went through the lost Segment: one gap on both pads, then both
    // resume together with DISCONT.
    let (v, a) = (v1.lock().unwrap().clone(), a1.lock().unwrap().clone());
    assert!(!v.gaps.is_empty(), "first viewer saw no gap");
    let (start, d) = v.gaps[0];
    let after = |log: &PadLog| {
        *log.buffers
            .iter()
            .find(|b| b.0 >= start + d)
            .expect("something after the gap")
    };
    assert!(after(&v).2 && after(&a).2, "DISCONT after the gap");
    assert!(after(&a).0.abs_diff(after(&v).0) <= FRAME);
    let played = video_only
        .named("crumbsrc-segment")
        .iter()
        .filter(|s| s.get::<bool>("success").unwrap())
        .count();
    assert!(played >= 5, "video-only viewer played {played} Segments");
}

fn window_of(url: &str) -> gstcrumbs::core::api::WindowDoc {
    gstcrumbs::p2p::RUNTIME.block_on(async {
        let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
        serde_json::from_slice(&body).unwrap()
    })
}

/// A requested `audio` pad that never gets data does not hold the channel: the
/// Segments go out at the video's end, and EOS follows.
#[test]
fn an_audio_pad_never_fed_does_not_hold_the_channel() {
    let pipeline = launch(
        "videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter name=seg ! fakesink",
    );
    let seg = pipeline.by_name("seg").unwrap();
    let pad = seg.request_pad_simple("audio").expect("an audio pad");
    assert_eq!(pad.name(), "audio");
    let res = run(&pipeline, T);
    assert!(res.error.is_none(), "{:?}", res.error);
    let segments = res.messages("svcsegmenter-segment");
    assert!(segments.len() >= 3, "{} Segments", segments.len());
    // No audio caps ever: the crumbs say nothing about audio.
    assert!(segments.iter().all(|s| !s.has_field("audio-frames")));
}

/// Audio without caps is an element error naming the problem, not a panic or a hang.
#[test]
fn audio_without_caps_is_a_clear_error() {
    let pipeline = launch(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc ! svcsegmenter name=seg ! fakesink \
         appsrc name=a ! seg.audio",
    );
    let src = pipeline
        .by_name("a")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    src.push_buffer(gst::Buffer::from_slice(vec![0u8; 16]))
        .unwrap();
    let res = run(&pipeline, T);
    let err = res.error.expect("an error");
    assert!(err.contains("Audio buffer before audio caps"), "{err}");
}
