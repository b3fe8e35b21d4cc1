// SPDX-License-Identifier: MPL-2.0
//! Helpers for the integration tests: the plugin registered in-process, pipelines run
//! to EOS with a bounded wait, decoded frames collected from an appsink.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use gst::prelude::*;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstcrumbs::plugin_register_static().expect("crumbs plugin registers");
    });
}

/// A file in the shared layered test streams, or None (test skipped, said loudly).
pub fn testdata(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: test stream {} is not present", p.display());
        None
    }
}

/// What a pipeline run left on the bus.
#[derive(Debug, Default)]
pub struct RunResult {
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// (source element name, structure) of every element message.
    pub element_messages: Vec<(String, gst::Structure)>,
}

impl RunResult {
    pub fn messages(&self, name: &str) -> Vec<&gst::Structure> {
        self.element_messages
            .iter()
            .filter(|(_, s)| s.name() == name)
            .map(|(_, s)| s)
            .collect()
    }

    pub fn messages_from(&self, src: &str, name: &str) -> Vec<&gst::Structure> {
        self.element_messages
            .iter()
            .filter(|(e, s)| e == src && s.name() == name)
            .map(|(_, s)| s)
            .collect()
    }
}

/// Runs a pipeline to EOS or error, at most `timeout`; then sets it to NULL.
pub fn run(pipeline: &gst::Pipeline, timeout: Duration) -> RunResult {
    let bus = pipeline.bus().unwrap();
    pipeline
        .set_state(gst::State::Playing)
        .expect("pipeline starts");
    let mut res = RunResult::default();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            res.error = Some(format!("timeout after {timeout:?}"));
            break;
        };
        use gst::MessageView;
        match msg.view() {
            MessageView::Eos(_) => break,
            MessageView::Error(e) => {
                res.error = Some(format!(
                    "{}: {} ({:?})",
                    e.src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    e.error(),
                    e.debug()
                ));
                break;
            }
            MessageView::Warning(w) => {
                res.warnings
                    .push(format!("{} ({:?})", w.error(), w.debug()))
            }
            MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    let src = e.src().map(|s| s.name().to_string()).unwrap_or_default();
                    res.element_messages.push((src, s.to_owned()));
                }
            }
            _ => {}
        }
    }
    pipeline
        .set_state(gst::State::Null)
        .expect("pipeline stops");
    res
}

pub fn launch(desc: &str) -> gst::Pipeline {
    init();
    gst::parse::launch(desc)
        .unwrap_or_else(|e| panic!("cannot build '{desc}': {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub pts: u64,
    pub width: i32,
    pub height: i32,
    pub hash: u64,
}

/// Decoded frames of one appsink.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    pub frames: Vec<Frame>,
}

impl Decoded {
    pub fn by_pts(&self) -> BTreeMap<u64, &Frame> {
        self.frames.iter().map(|f| (f.pts, f)).collect()
    }

    pub fn resolutions(&self) -> std::collections::BTreeSet<(i32, i32)> {
        self.frames.iter().map(|f| (f.width, f.height)).collect()
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Runs `desc` and hashes every frame reaching each appsink named in `sinks`
/// (raw video; their caps must be fixed to one format, e.g. I420).
pub fn decode_many(
    desc: &str,
    sinks: &[String],
    timeout: Duration,
) -> (BTreeMap<String, Decoded>, RunResult) {
    let pipeline = launch(desc);
    let mut stores = Vec::new();
    for name in sinks {
        let sink = pipeline
            .by_name(name)
            .unwrap_or_else(|| panic!("pipeline has no appsink {name}"))
            .downcast::<gst_app::AppSink>()
            .unwrap();
        sink.set_property("sync", false);
        let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let f2 = frames.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let caps = sample.caps().ok_or(gst::FlowError::Error)?;
                    let info =
                        gst_video::VideoInfo::from_caps(caps).map_err(|_| gst::FlowError::Error)?;
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    f2.lock().unwrap().push(Frame {
                        pts: buffer.pts().map(|t| t.nseconds()).unwrap_or(u64::MAX),
                        width: info.width() as i32,
                        height: info.height() as i32,
                        hash: fnv(map.as_slice()),
                    });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        stores.push((name.clone(), frames));
    }
    let run = run(&pipeline, timeout);
    let out = stores
        .into_iter()
        .map(|(n, f)| {
            (
                n,
                Decoded {
                    frames: std::mem::take(&mut *f.lock().unwrap()),
                },
            )
        })
        .collect();
    (out, run)
}

/// Runs `desc` (which must end in `appsink name=frames`) and hashes every frame.
pub fn decode(desc: &str, timeout: Duration) -> (Decoded, RunResult) {
    let (mut m, run) = decode_many(desc, &["frames".to_string()], timeout);
    (m.remove("frames").unwrap(), run)
}

/// Frames both decodes share (same pts) must be identical.
pub fn assert_shared_frames_identical(a: &Decoded, b: &Decoded, what: &str) -> usize {
    let bm = b.by_pts();
    let mut shared = 0;
    for f in &a.frames {
        if let Some(g) = bm.get(&f.pts) {
            assert_eq!(
                (f.width, f.height),
                (g.width, g.height),
                "{what}: resolution at pts {}",
                f.pts
            );
            assert_eq!(f.hash, g.hash, "{what}: frame at pts {} differs", f.pts);
            shared += 1;
        }
    }
    shared
}

/// Two decodes of the same frames without timestamps (raw elementary streams): frame k
/// of one must be frame k of the other.
pub fn assert_identical_by_index(a: &Decoded, b: &Decoded, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: frame counts");
    for (k, (f, g)) in a.frames.iter().zip(&b.frames).enumerate() {
        assert_eq!(
            (f.width, f.height),
            (g.width, g.height),
            "{what}: resolution of frame {k}"
        );
        assert_eq!(f.hash, g.hash, "{what}: frame {k} differs");
    }
}

/// Runs `desc` (ending in `appsink name=out`) and returns the caps and every buffer
/// that reached the sink: real encoded streams to feed elements by hand.
pub fn collect(desc: &str, timeout: Duration) -> (gst::Caps, Vec<gst::Buffer>) {
    let pipeline = launch(desc);
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    sink.set_property("sync", false);
    let store = std::sync::Arc::new(std::sync::Mutex::new((None, Vec::new())));
    let s2 = store.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let mut st = s2.lock().unwrap();
                if st.0.is_none() {
                    st.0 = sample.caps().map(|c| c.to_owned());
                }
                st.1.push(sample.buffer().unwrap().to_owned());
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let res = run(&pipeline, timeout);
    assert!(res.error.is_none(), "{:?}", res.error);
    let (caps, bufs) = std::mem::take(&mut *store.lock().unwrap());
    (caps.expect("caps reached the sink"), bufs)
}

/// A playing pipeline whose element messages (and an `eos` entry at EOS) and errors
/// are recorded from a bus sync handler. Set to NULL on drop.
pub struct Peer {
    pub pipeline: gst::Pipeline,
    pub records: std::sync::Arc<std::sync::Mutex<Vec<gst::Structure>>>,
    pub errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Peer {
    pub fn start(desc: &str) -> Peer {
        Peer::start_with(desc, |_| {})
    }

    /// Like `start`, with `setup` run on the pipeline before it plays (probes, signal
    /// handlers that must not miss the first data).
    pub fn start_with(desc: &str, setup: impl FnOnce(&gst::Pipeline)) -> Peer {
        let pipeline = launch(desc);
        setup(&pipeline);
        let records = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (r2, e2) = (records.clone(), errors.clone());
        pipeline.bus().unwrap().set_sync_handler(move |_, msg| {
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure() {
                        r2.lock().unwrap().push(s.to_owned());
                    }
                }
                gst::MessageView::Error(e) => {
                    e2.lock()
                        .unwrap()
                        .push(format!("{} ({:?})", e.error(), e.debug()))
                }
                gst::MessageView::Eos(_) => {
                    r2.lock().unwrap().push(gst::Structure::new_empty("eos"))
                }
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
        pipeline.set_state(gst::State::Playing).expect("starts");
        Peer {
            pipeline,
            records,
            errors,
        }
    }

    /// The messages recorded so far with this structure name.
    pub fn named(&self, name: &str) -> Vec<gst::Structure> {
        let r = self.records.lock().unwrap();
        r.iter().filter(|s| s.name() == name).cloned().collect()
    }

    /// The `stats` structure of the element named `element`.
    pub fn stats(&self, element: &str) -> gst::Structure {
        self.pipeline
            .by_name(element)
            .unwrap()
            .property::<gst::Structure>("stats")
    }

    pub fn assert_no_error(&self) {
        let e = self.errors.lock().unwrap();
        assert!(e.is_empty(), "{e:?}");
    }

    /// A channel's `crumbsink-listening` message, waited for (20 s at most).
    pub fn listening(&self) -> gst::Structure {
        let end = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.named("crumbsink-listening").into_iter().next() {
                return s;
            }
            assert!(std::time::Instant::now() < end, "channel did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// An unsigned field of a message, whether guint64 or guint.
pub fn u(s: &gst::Structure, f: &str) -> u64 {
    s.get::<u64>(f)
        .or_else(|_| s.get::<u32>(f).map(u64::from))
        .unwrap()
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a server a test starts
/// itself. Taken below Linux's ephemeral range (32768-60999): a port from `bind(0)`
/// is in that range, and once released any outgoing connection of a test running
/// beside (librqbit's, a browser's) could take it before the server bound it
/// (`several_channels_share_one_port` failed so, once, in a full run).
pub fn free_port() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = seed | 1;
    for _ in 0..1000 {
        // xorshift: a spread of tries, different in each process.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + (x % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000")
}
