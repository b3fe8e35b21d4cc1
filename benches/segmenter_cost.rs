// SPDX-License-Identifier: MPL-2.0
//! Cost of svcsegmenter (and of svcsegmenter + crumbjoin) beside h264parse on the
//! same input (DESIGN.md section 6, "Cost").
//!
//! Every pipeline reads the same file with `filesrc ! h264parse`, so the baseline is
//! what any H.264 channel pays anyway; the other two add the elements under test.
//! Runs of the three pipelines alternate, so that a slow spell of the machine (other
//! builds, frequency scaling) hits all of them alike, and medians are reported.
//!
//! Run with `cargo bench --bench segmenter_cost`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// Runs of each pipeline; odd, so the median is one run.
const RUNS: usize = 9;
/// Frames of the AVC input: 50 s at 30 fps, 25 GOPs of 60 (so 25 Segments at |G| = 1).
const AVC_FRAMES: u32 = 1500;
/// h264parse reads the encoded 38 MB in ~20 ms, too short to time against pipeline
/// start-up: each input is read as copies back to back. Every copy starts with an IDR
/// and its parameter sets, so the concatenation is one valid stream.
const AVC_COPIES: usize = 4;
/// The SVC test file is 300 frames (10 s, 2.5 MB).
const SVC_COPIES: usize = 40;
/// Linux reports utime/stime in USER_HZ ticks, 100 per second on every ABI it runs on.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

const PARSE: &str = "h264parse ! video/x-h264,stream-format=byte-stream,alignment=au";

#[derive(Clone, Copy)]
enum Variant {
    Parse,
    Segment,
    Join,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Parse, Variant::Segment, Variant::Join];

    fn name(self) -> &'static str {
        match self {
            Variant::Parse => "h264parse",
            Variant::Segment => "+ svcsegmenter",
            Variant::Join => "+ svcsegmenter + crumbjoin",
        }
    }

    fn tail(self) -> &'static str {
        match self {
            Variant::Parse => "",
            Variant::Segment => "! svcsegmenter name=seg",
            Variant::Join => "! svcsegmenter name=seg ! crumbjoin",
        }
    }
}

/// CPU time used so far, per thread id. Threads of GStreamer's task pool outlive a
/// pipeline and are reused by the next one, so a run's CPU time is the per-thread
/// difference, taken after EOS while the streaming threads still exist.
type CpuSample = HashMap<u64, Duration>;

/// Per-thread CPU time in ns from /proc/self/task/*/schedstat (first field). The
/// utime/stime of /proc/self/stat count 10 ms ticks, too coarse for runs of 100 ms; they
/// are the fallback when schedstat is missing (kernels without CONFIG_SCHED_INFO).
fn cpu_sample() -> CpuSample {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let ns = std::fs::read_to_string(entry.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        if let Some(ns) = ns {
            out.insert(tid, Duration::from_nanos(ns));
        }
    }
    // Process totals under a key no thread has, for the fallback.
    out.insert(u64::MAX, process_cpu_ticks());
    out
}

fn cpu_between(before: &CpuSample, after: &CpuSample) -> Duration {
    let threads: Duration = after
        .iter()
        .filter(|(tid, _)| **tid != u64::MAX)
        .map(|(tid, t)| t.saturating_sub(before.get(tid).copied().unwrap_or_default()))
        .sum();
    if after.len() > 1 {
        threads
    } else {
        after[&u64::MAX].saturating_sub(before[&u64::MAX])
    }
}

/// CPU time of the whole process (all threads, user + system) from /proc/self/stat.
fn process_cpu_ticks() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / CLOCK_TICKS_PER_SEC)
}

/// Plays a pipeline to EOS; panics on an error message, so a broken pipeline cannot
/// pass for a fast one.
fn play(pipeline: &gst::Pipeline) {
    pipeline.set_state(gst::State::Playing).expect("to PLAYING");
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!(
                "{}: {} ({:?})",
                msg.src().map(|s| s.path_string()).unwrap_or_default(),
                e.error(),
                e.debug()
            ),
            _ => {}
        }
    }
}

fn launch(desc: &str) -> gst::Pipeline {
    gst::parse::launch(desc)
        .unwrap_or_else(|e| panic!("{desc}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap()
}

struct Run {
    wall: Duration,
    cpu: Duration,
    /// Crumbs svcsegmenter made, to show the element did its work.
    crumbs: u64,
}

fn run_once(input: &Path, v: Variant) -> Run {
    let desc = format!(
        "filesrc location=\"{}\" ! {PARSE} {} ! fakesink sync=false",
        input.display(),
        v.tail()
    );
    let pipeline = launch(&desc);
    let cpu0 = cpu_sample();
    let t0 = Instant::now();
    play(&pipeline);
    let wall = t0.elapsed();
    let cpu = cpu_between(&cpu0, &cpu_sample());
    let crumbs = pipeline
        .by_name("seg")
        .map(|seg| {
            seg.property::<gst::Structure>("stats")
                .get::<u64>("crumbs")
                .unwrap()
        })
        .unwrap_or(0);
    pipeline.set_state(gst::State::Null).unwrap();
    Run { wall, cpu, crumbs }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench(label: &str, input: &Path) {
    let bytes = std::fs::metadata(input).unwrap().len();
    // One untimed pass of each: page cache, plugin loading, first allocations.
    for v in Variant::ALL {
        run_once(input, v);
    }
    let mut runs: Vec<Vec<Run>> = Variant::ALL.iter().map(|_| Vec::new()).collect();
    for _ in 0..RUNS {
        for (k, v) in Variant::ALL.into_iter().enumerate() {
            runs[k].push(run_once(input, v));
        }
    }
    let wall: Vec<Duration> = runs
        .iter()
        .map(|r| median(r.iter().map(|x| x.wall).collect()))
        .collect();
    let cpu: Vec<Duration> = runs
        .iter()
        .map(|r| median(r.iter().map(|x| x.cpu).collect()))
        .collect();
    println!();
    println!(
        "{label}: {:.1} MB, median of {RUNS} interleaved runs",
        bytes as f64 / 1e6
    );
    println!(
        "  {:<28} {:>9} {:>9} {:>8} {:>11} {:>10} {:>7}",
        "filesrc ! ...", "wall ms", "CPU ms", "MB/s", "wall ratio", "CPU ratio", "crumbs"
    );
    for (k, v) in Variant::ALL.into_iter().enumerate() {
        println!(
            "  {:<28} {:>9.1} {:>9.1} {:>8.1} {:>11.2} {:>10.2} {:>7}",
            v.name(),
            ms(wall[k]),
            ms(cpu[k]),
            bytes as f64 / 1e6 / wall[k].as_secs_f64(),
            wall[k].as_secs_f64() / wall[0].as_secs_f64(),
            cpu[k].as_secs_f64() / cpu[0].as_secs_f64().max(1e-9),
            runs[k][0].crumbs,
        );
    }
    // The pipelines share filesrc and h264parse: the difference is the elements' own
    // cost, stated as a share of h264parse's.
    let own = |k: usize, base: &[Duration]| {
        (base[k].as_secs_f64() - base[0].as_secs_f64()) / base[0].as_secs_f64().max(1e-9)
    };
    println!(
        "  added cost relative to filesrc ! h264parse: svcsegmenter {:+.2} (wall) {:+.2} (CPU); \
         svcsegmenter + crumbjoin {:+.2} (wall) {:+.2} (CPU)",
        own(1, &wall),
        own(1, &cpu),
        own(2, &wall),
        own(2, &cpu)
    );
}

/// Removes the temporary files however the benchmark ends.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn main() {
    gst::init().expect("GStreamer init");
    gstcrumbs::plugin_register_static().expect("register crumbs plugin");
    let total = Instant::now();
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let avc = dir.join(format!("crumbs-bench-{pid}-avc.264"));
    let svc = dir.join(format!("crumbs-bench-{pid}-svc.264"));
    let _cleanup = TempFiles(vec![avc.clone(), svc.clone()]);

    // x264 B-frames without pyramid are non-reference pictures: svcsegmenter sees a
    // two-layer stream (DESIGN.md section 3), the common case for an AVC channel. A
    // moving pattern, so that x264 reaches its bitrate (a still one codes to ~1 MB).
    let t = Instant::now();
    let encode = launch(&format!(
        "videotestsrc num-buffers={AVC_FRAMES} pattern=smpte horizontal-speed=4 \
         ! video/x-raw,width=1280,height=720,framerate=30/1 \
         ! x264enc speed-preset=ultrafast key-int-max=60 bframes=2 b-pyramid=false \
           bitrate=6000 ! {PARSE} ! filesink location=\"{}\"",
        avc.display()
    ));
    play(&encode);
    encode.set_state(gst::State::Null).unwrap();
    println!(
        "encoded {AVC_FRAMES} frames of 1280x720 H.264 in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let one = std::fs::read(&avc).unwrap();
    std::fs::write(&avc, one.repeat(AVC_COPIES)).unwrap();
    bench(
        &format!("H.264 AVC, x264 2 B-frames, GOP 60, 1280x720, 6 Mbit/s, x{AVC_COPIES}"),
        &avc,
    );

    let svc_src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/h264-svc-s3t3-640x360.264");
    match std::fs::read(&svc_src) {
        Ok(one) => {
            std::fs::write(&svc, one.repeat(SVC_COPIES)).unwrap();
            bench(
                &format!("H.264 SVC 3 spatial x 3 temporal layers, test file x{SVC_COPIES}"),
                &svc,
            );
        }
        Err(e) => println!("\n(skipped the SVC input: {}: {e})", svc_src.display()),
    }
    println!("\ntotal {:.1} s", total.elapsed().as_secs_f64());
}
