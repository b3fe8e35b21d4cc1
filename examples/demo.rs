// SPDX-License-Identifier: MPL-2.0
//! The main job: a live layered channel and several clients on loopback, some with
//! ADSL-like caps, for about a minute; then a per-client summary.
//!
//! `cargo run --release --example demo -- [seconds]`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

type Log = Arc<Mutex<Vec<(Instant, gst::Structure)>>>;

fn start(desc: &str) -> Result<(gst::Pipeline, Log), Box<dyn std::error::Error>> {
    let p = gst::parse::launch(desc)?
        .downcast::<gst::Pipeline>()
        .unwrap();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        let s = match msg.view() {
            gst::MessageView::Element(e) => e.structure().map(|s| s.to_owned()),
            gst::MessageView::Error(e) => Some(
                gst::Structure::builder("error")
                    .field("text", format!("{} ({:?})", e.error(), e.debug()))
                    .build(),
            ),
            _ => None,
        };
        if let Some(s) = s {
            l2.lock().unwrap().push((Instant::now(), s));
        }
        gst::BusSyncReply::Drop
    });
    p.set_state(gst::State::Playing)?;
    Ok((p, log))
}

fn num(s: &gst::Structure, f: &str) -> f64 {
    s.get::<u64>(f)
        .map(|v| v as f64)
        .or_else(|_| s.get::<u32>(f).map(f64::from))
        .or_else(|_| s.get::<f64>(f))
        .unwrap_or(0.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    gst::init()?;
    gstcrumbs::plugin_register_static()?;

    // The paper's ladder scaled to loopback-friendly sizes: base 128, enhancement 1
    // 512, enhancement 2 2048 kbit/s as VP8 temporal layers; 1 s GOPs, one crumb per
    // layer split at 64 KiB; the super seed capped at 2 MB/s as in the paper.
    println!("crumbs demo: a live channel and 5 clients on loopback for {seconds} s");
    let (channel, chlog) = start(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! video/x-raw,width=640,height=360,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=30 layer-bitrates=<128,512,2048> \
         ! svcsegmenter min-gops=1 max-gops=2 max-crumb-size=65536 \
         ! crumbsink name=ch window=5 max-upload-rate=2000000 tracker-interval=1",
    )?;
    let t0 = Instant::now();
    let url = loop {
        if let Some((_, s)) = chlog
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s)| s.name() == "crumbsink-listening")
        {
            break s.get::<String>("url")?;
        }
        if let Some((_, s)) = chlog
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s)| s.name() == "error")
        {
            return Err(s.get::<String>("text")?.into());
        }
        if t0.elapsed() > Duration::from_secs(20) {
            return Err("the channel did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("channel listening at {url}");

    // (name, download cap bytes/s, upload cap bytes/s, join after s, adaptation)
    let clients = [
        ("fiber", 0u32, 0u32, 0u64, "rate"),
        ("cable-3M", 375_000, 125_000, 0, "rate"),
        ("dsl-600k", 75_000, 32_000, 2, "rate"),
        ("adsl-256k", 32_000, 16_384, 4, "rate"),
        ("late-paper", 375_000, 125_000, 15, "paper"),
    ];
    let mut running: Vec<(&str, gst::Pipeline, Log, Instant)> = Vec::new();
    let end = t0 + Duration::from_secs(seconds);
    let mut pending: Vec<_> = clients.iter().collect();
    while Instant::now() < end {
        pending.retain(|(name, down, up, after, adaptation)| {
            if t0.elapsed() < Duration::from_secs(*after) {
                return true;
            }
            let desc = format!(
                "crumbsrc name=src location={url} max-download-rate={down} max-upload-rate={up} adaptation={adaptation} client-id={name} \
                 ! vp8dec ! fakesink sync=false"
            );
            match start(&desc) {
                Ok((p, log)) => running.push((name, p, log, Instant::now())),
                Err(e) => eprintln!("{name}: {e}"),
            }
            false
        });
        std::thread::sleep(Duration::from_millis(200));
    }

    // When each Segment was published, to measure live latency (publish -> output,
    // plus the Segment's own length captured before it).
    let published: HashMap<u64, (Instant, f64)> = chlog
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.name() == "svcsegmenter-segment")
        .map(|(t, s)| (s.get::<u64>("seq").unwrap(), (*t, num(s, "duration") / 1e9)))
        .collect();
    println!();
    println!(
        "{:<10} {:>5} {:>5} {:>6} {:>6} {:>9} {:>11} {:>10} {:>8} {:>8} {:>7} {:>8}",
        "client",
        "ok",
        "fail",
        "meanD",
        "maxN",
        "switches",
        "from seed",
        "from peers",
        "startup",
        "latency",
        "viewer",
        "freezes"
    );
    for (name, p, log, joined) in &running {
        let log = log.lock().unwrap();
        if let Some((_, e)) = log.iter().find(|(_, s)| s.name() == "error") {
            println!("{name:<10} error: {}", e.get::<String>("text")?);
            continue;
        }
        let recs: Vec<&(Instant, gst::Structure)> = log
            .iter()
            .filter(|(_, s)| {
                s.name() == "crumbsrc-segment" && !s.get::<bool>("skipped").unwrap_or(false)
            })
            .collect();
        let st = p
            .by_name("src")
            .unwrap()
            .property::<gst::Structure>("stats");
        // Capture to output, and capture to play-out (what the viewer sees: the
        // output's plus the time the Segment waits in the player).
        let (lat, viewer): (Vec<f64>, Vec<f64>) = recs
            .iter()
            .filter(|(_, s)| s.get::<bool>("success").unwrap_or(false))
            .filter_map(|(t, s)| {
                let (tp, dur) = published.get(&s.get::<u64>("seq").ok()?)?;
                let out = t.duration_since(*tp).as_secs_f64() + dur;
                let wait = s.get::<i64>("play-delay").unwrap_or(0) as f64 / 1e9;
                Some((out, out + wait))
            })
            .unzip();
        let mean = |v: &[f64]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                format!("{:.1}s", v.iter().sum::<f64>() / v.len() as f64)
            }
        };
        let startup = recs
            .iter()
            .find(|(_, s)| s.get::<bool>("success").unwrap_or(false))
            .map(|(t, _)| t.duration_since(*joined).as_secs_f64());
        println!(
            "{:<10} {:>5} {:>5} {:>6.2} {:>6} {:>9} {:>9.0}kB {:>8.0}kB {:>7} {:>7} {:>7} {:>8}",
            name,
            num(&st, "segments-successful"),
            num(&st, "segments-failed"),
            num(&st, "mean-d"),
            recs.iter()
                .map(|(_, s)| num(s, "crumbs-total") as u64)
                .max()
                .unwrap_or(0),
            num(&st, "quality-switches"),
            num(&st, "bytes-from-super-seed") / 1000.0,
            num(&st, "bytes-from-peers") / 1000.0,
            startup.map_or("-".into(), |s| format!("{s:.1}s")),
            mean(&lat),
            mean(&viewer),
            format!(
                "{} ({:.1}s)",
                num(&st, "playout-stalls"),
                num(&st, "playout-stall-time") / 1e9
            ),
        );
    }
    let st = channel
        .by_name("ch")
        .unwrap()
        .property::<gst::Structure>("stats");
    println!();
    println!(
        "channel: {} Segments published, {:.0} kB published, super seed uploaded {:.0} kB, {} peers known, {} clients reporting, last rho {:.2}",
        num(&st, "segments-published"),
        num(&st, "bytes-published") / 1000.0,
        num(&st, "bytes-uploaded") / 1000.0,
        num(&st, "peers-known"),
        num(&st, "clients-reporting"),
        num(&st, "last-rho"),
    );
    println!(
        "(ok/fail: Segments successful/failed; meanD: mean crumbs played; startup: join to first Segment; latency: capture to output; viewer: capture to play-out; freezes: Segments that came after their play-out time, and the time the picture stood)"
    );
    for (_, p, _, _) in running {
        p.set_state(gst::State::Null)?;
    }
    channel.set_state(gst::State::Null)?;
    Ok(())
}
