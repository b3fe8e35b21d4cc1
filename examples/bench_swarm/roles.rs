// SPDX-License-Identifier: MPL-2.0
//! The processes the bench starts: `channel` (a live layered channel: svcvp8enc,
//! svcsegmenter, crumbsink) and `client` (crumbsrc, a decoder or fakesink). Each
//! writes [`Event`] lines on stdout and stops when its stdin closes.

use std::sync::mpsc;
use std::time::Duration;

use gst::prelude::*;

use crate::events::{Event, now_s, own_cost, stdin_closed};

/// A gst::Structure's numeric, boolean and string fields as JSON.
fn structure_json(s: &gst::Structure) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in s.iter() {
        let j = if let Ok(x) = v.get::<u64>() {
            x.into()
        } else if let Ok(x) = v.get::<i64>() {
            x.into()
        } else if let Ok(x) = v.get::<u32>() {
            x.into()
        } else if let Ok(x) = v.get::<i32>() {
            x.into()
        } else if let Ok(x) = v.get::<f64>() {
            serde_json::Value::from(x)
        } else if let Ok(x) = v.get::<bool>() {
            x.into()
        } else if let Ok(x) = v.get::<String>() {
            x.into()
        } else {
            continue;
        };
        m.insert(k.to_string(), j);
    }
    m.into()
}

fn num(s: &gst::StructureRef, f: &str) -> u64 {
    s.get::<u64>(f)
        .or_else(|_| s.get::<u32>(f).map(u64::from))
        .unwrap_or(0)
}

/// Runs `desc` until stdin closes (or an error), calling `on_element` for element
/// messages and `tick` once a second; ends with the End line (stats of `stats_of`).
fn drive(
    desc: &str,
    stats_of: &str,
    mut on_element: impl FnMut(&gst::StructureRef),
    mut tick: impl FnMut(&gst::Pipeline),
) -> i32 {
    let pipeline = match gst::parse::launch(desc) {
        Ok(p) => p.downcast::<gst::Pipeline>().expect("a pipeline"),
        Err(e) => {
            Event::Error {
                t: now_s(),
                text: format!("pipeline: {e}"),
            }
            .emit();
            return 1;
        }
    };
    let stop = stdin_closed();
    let bus = pipeline.bus().expect("a bus");
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        Event::Error {
            t: now_s(),
            text: format!("cannot start: {e}"),
        }
        .emit();
        return 1;
    }
    let mut rc = 0;
    let mut next_tick = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        if !matches!(stop.try_recv(), Err(mpsc::TryRecvError::Empty)) {
            break;
        }
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure() {
                        on_element(s)
                    }
                }
                gst::MessageView::Error(e) => {
                    let text = format!(
                        "{}: {} ({})",
                        e.src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        e.error(),
                        e.debug().unwrap_or_default()
                    );
                    Event::Error { t: now_s(), text }.emit();
                    rc = 1;
                    break;
                }
                gst::MessageView::Eos(_) => break,
                _ => {}
            }
        }
        if std::time::Instant::now() >= next_tick {
            next_tick += Duration::from_secs(1);
            tick(&pipeline);
        }
    }
    let stats = pipeline
        .by_name(stats_of)
        .map(|e| structure_json(&e.property::<gst::Structure>("stats")))
        .unwrap_or_default();
    let _ = pipeline.set_state(gst::State::Null);
    let (cpu_s, max_rss_kb) = own_cost();
    Event::End {
        t: now_s(),
        cpu_s,
        max_rss_kb,
        stats,
    }
    .emit();
    rc
}

pub struct ChannelArgs {
    pub address: String,
    /// Layer rates, kbit/s, base first (one entry: a one-layer stream).
    pub layers: Vec<u32>,
    /// Super seed cap, kbit/s (0 = none: tc shapes the link).
    pub max_upload_kbps: u32,
    /// Opus audio beside the video, kbit/s (0 = video only). It travels in crumb 1.
    pub audio_kbps: u32,
    /// More crumbsink properties, `name=value ...`; those written
    /// `segmenter:name=value` go to svcsegmenter instead.
    pub props: String,
}

pub fn channel(a: ChannelArgs) -> i32 {
    let (segmenter_props, sink_props): (Vec<&str>, Vec<&str>) = a
        .props
        .split_whitespace()
        .partition(|p| p.starts_with("segmenter:"));
    let segmenter_props = segmenter_props
        .iter()
        .map(|p| p.trim_start_matches("segmenter:"))
        .collect::<Vec<_>>()
        .join(" ");
    let sink_props = sink_props.join(" ");
    let bitrates = a
        .layers
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // The paper's ladder at 640x360: 2 s GOPs (1 s ones push the base layer far
    // over its 128 kbit/s: key frames), Segments of 1-2 GOPs, crumbs of at most
    // 64 KiB (crumb 1 whole), a 5-Segment window.
    let cap = if a.max_upload_kbps > 0 {
        format!("max-upload-rate={}", a.max_upload_kbps as u64 * 1000 / 8)
    } else {
        String::new()
    };
    // Microphone-like audio: pink noise keeps Opus near its target rate. 60 ms
    // frames: each frame costs a 40-byte unit header in crumb 1 (16 kbit/s at 20 ms,
    // 5 kbit/s at 60 ms), which weak links pay with the base layer.
    let audio = if a.audio_kbps > 0 {
        format!(
            "audiotestsrc is-live=true wave=pink-noise ! audioconvert \
             ! opusenc bitrate={} frame-size=60 ! seg.audio",
            a.audio_kbps * 1000
        )
    } else {
        String::new()
    };
    let desc = format!(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=4 \
         ! video/x-raw,width=640,height=360,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=60 layers={} layer-bitrates=<{bitrates}> \
         ! svcsegmenter name=seg min-gops=1 max-gops=2 max-crumb-size=65536 {segmenter_props} \
         ! crumbsink name=ch address={} window=5 {cap} {sink_props} {audio}",
        a.layers.len(),
        a.address,
    );
    drive(
        &desc,
        "ch",
        |s| match s.name().as_str() {
            "crumbsink-listening" => Event::Listening {
                t: now_s(),
                url: s.get::<String>("url").unwrap_or_default(),
            }
            .emit(),
            "svcsegmenter-segment" => Event::Published {
                t: now_s(),
                seq: num(s, "seq"),
                duration_s: num(s, "duration") as f64 / 1e9,
                bytes: num(s, "bytes"),
                base_bytes: num(s, "base-bytes"),
            }
            .emit(),
            _ => {}
        },
        |p| {
            if let Some(ch) = p.by_name("ch") {
                let st = ch.property::<gst::Structure>("stats");
                Event::Upload {
                    t: now_s(),
                    bytes: num(&st, "bytes-uploaded"),
                }
                .emit();
            }
        },
    )
}

pub struct ClientArgs {
    pub url: String,
    pub address: String,
    pub name: String,
    pub adaptation: String,
    /// More crumbsrc properties, `name=value ...`.
    pub props: String,
    /// Rate caps for the loopback fallback, kbit/s (0 = none: tc shapes the link).
    pub down_kbps: u32,
    pub up_kbps: u32,
    pub decode: bool,
}

pub fn client(a: ClientArgs) -> i32 {
    // crumbsrc's caps are bytes/s, at least 1024.
    let cap = |kbps: u32| {
        if kbps == 0 {
            0
        } else {
            (kbps as u64 * 1000 / 8).max(1024)
        }
    };
    let sink = if a.decode {
        "vp8dec ! fakesink sync=false"
    } else {
        "fakesink sync=false"
    };
    let desc = format!(
        "crumbsrc name=src location={} address={} client-id={} adaptation={} \
         max-download-rate={} max-upload-rate={} {} ! {sink}",
        a.url,
        a.address,
        a.name,
        a.adaptation,
        cap(a.down_kbps),
        cap(a.up_kbps),
        a.props
    );
    drive(
        &desc,
        "src",
        |s| {
            if s.name() == "crumbsrc-segment" {
                Event::Segment {
                    t: now_s(),
                    seq: num(s, "seq"),
                    success: s.get::<bool>("success").unwrap_or(false),
                    skipped: s.get::<bool>("skipped").unwrap_or(false),
                    d: num(s, "d") as u32,
                    d_target: num(s, "d-target") as u32,
                    n: num(s, "crumbs-total") as u32,
                    bytes: num(s, "bytes-output"),
                    duration_s: num(s, "duration") as f64 / 1e9,
                    margin_s: s.get::<i64>("deadline-margin").unwrap_or(0) as f64 / 1e9,
                    from_seed: num(s, "bytes-from-super-seed"),
                    from_peers: num(s, "bytes-from-peers"),
                    te_s: num(s, "time-extension") as f64 / 1e9,
                    rate_kbps: s.get::<f64>("rate").unwrap_or(0.0) * 8.0 / 1000.0,
                    play_delay_s: s
                        .get::<i64>("play-delay")
                        .ok()
                        .filter(|d| *d != 0)
                        .map(|d| d as f64 / 1e9),
                    stall_s: num(s, "stall") as f64 / 1e9,
                }
                .emit()
            }
        },
        |_| {},
    )
}
