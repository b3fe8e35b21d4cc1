// SPDX-License-Identifier: MPL-2.0
//! The main job (for now, until crumbsink and crumbsrc exist): a live layered VP8
//! channel is cut into Segments and Crumbs, and three "viewers" keep 1, 2 or all
//! crumbs of each Segment and decode them. Prints what each Segment holds and what
//! each viewer got.
//!
//! `cargo run --release --example demo -- [seconds]`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gst::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    gst::init()?;
    gstcrumbs::plugin_register_static()?;

    // The paper's ladder: base 128 kbit/s, enhancement 1 512 kbit/s, enhancement 2
    // 2048 kbit/s, as three temporal layers; 1 s GOPs, 2 GOPs per Segment.
    let viewers = [1u32, 2, 0];
    let mut desc = String::from(
        "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=640,height=360,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=30 layer-bitrates=<128,512,2048> \
         ! svcsegmenter name=seg gops=2 max-crumb-size=65536 ! tee name=t",
    );
    for d in viewers {
        desc += &format!(
            " t. ! queue ! crumbjoin name=view{d} max-crumbs={d} ! vp8dec ! fakesink name=out{d} sync=false signal-handoffs=true"
        );
    }
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .unwrap();
    let frames: BTreeMap<u32, std::sync::Arc<std::sync::atomic::AtomicU64>> = viewers
        .iter()
        .map(|d| {
            let c = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let c2 = c.clone();
            pipeline
                .by_name(&format!("out{d}"))
                .unwrap()
                .connect("handoff", false, move |_| {
                    c2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    None
                });
            (*d, c)
        })
        .collect();

    println!("crumbs demo: a live 3-layer VP8 channel cut into Segments and Crumbs, {seconds} s");
    println!();
    println!(
        "{:>4} {:>8} {:>5} {:>7} {:>10} {:>10} {:>10}  layers",
        "seg", "length", "GOPs", "crumbs", "base kb/s", "all kb/s", "bytes"
    );
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().unwrap();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut segments = 0u32;
    let mut failed = None;
    while Instant::now() < end {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                if s.name() == "svcsegmenter-segment" {
                    segments += 1;
                    let dur = s.get::<u64>("duration")? as f64 / 1e9;
                    let kbps = |b: u64| b as f64 * 8.0 / 1000.0 / dur.max(1e-9);
                    let layers = s.get::<gst::Array>("layer-names")?;
                    let names: Vec<String> = layers
                        .iter()
                        .filter_map(|v| v.get::<String>().ok())
                        .collect();
                    println!(
                        "{:>4} {:>7.2}s {:>5} {:>7} {:>10.0} {:>10.0} {:>10}  {}",
                        s.get::<u64>("seq")?,
                        dur,
                        s.get::<u32>("gops")?,
                        s.get::<u32>("crumbs")?,
                        kbps(s.get::<u64>("base-bytes")?),
                        kbps(s.get::<u64>("bytes")?),
                        s.get::<u64>("bytes")?,
                        names.join(" ")
                    );
                }
            }
            gst::MessageView::Error(e) => {
                failed = Some(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    pipeline.send_event(gst::event::Eos::new());
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(5),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null)?;
    if let Some(e) = failed {
        return Err(e.into());
    }

    println!();
    println!(
        "{:<28} {:>8} {:>14} {:>16}",
        "viewer", "frames", "Segments out", "Segments skipped"
    );
    for d in viewers {
        let st = pipeline
            .by_name(&format!("view{d}"))
            .unwrap()
            .property::<gst::Structure>("stats");
        let label = if d == 0 {
            "all crumbs".to_string()
        } else {
            format!("max-crumbs={d}")
        };
        println!(
            "{:<28} {:>8} {:>14} {:>16}",
            label,
            frames[&d].load(std::sync::atomic::Ordering::Relaxed),
            st.get::<u64>("segments-output")?,
            st.get::<u64>("segments-skipped")?
        );
    }
    let st = pipeline
        .by_name("seg")
        .unwrap()
        .property::<gst::Structure>("stats");
    println!();
    println!(
        "svcsegmenter: {segments} Segments, {} crumbs, {} bytes",
        st.get::<u64>("crumbs")?,
        st.get::<u64>("bytes")?
    );
    Ok(())
}
