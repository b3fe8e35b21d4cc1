// SPDX-License-Identifier: MPL-2.0
//! One swarm run: a channel process and N client processes on the run's topology,
//! their event lines gathered until the run's time is up, then a clean stop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::events::{Event, now_s};
use crate::net::{Node, Shape, Topology};
use crate::profile::Link;

/// Set by SIGINT/SIGTERM: the current run stops early and no other starts.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Debug)]
pub enum System {
    /// The layered channel (crumbsink) and crumbsrc clients.
    Crumbs {
        layers: Vec<u32>,
        /// Opus audio beside the video in crumb 1, kbit/s (0 = none).
        audio_kbps: u32,
        adaptation: String,
        /// Extra crumbsink and crumbsrc properties (`name=value ...`), for trying a
        /// design choice (e.g. `super-seed-fanout=1`, `peer-patience=-1`).
        channel_props: String,
        client_props: String,
    },
    /// The client-server reference: HLS at a bitrate ladder from nginx.
    Http { ladder: Vec<u32> },
}

impl System {
    /// The binary that plays this system's channel and client roles.
    fn program<'a>(&self, programs: &'a Programs) -> &'a Path {
        match self {
            System::Crumbs { .. } => &programs.crumbs,
            System::Http { .. } => &programs.http,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunSpec {
    pub label: String,
    pub system: System,
    pub channel_up_kbps: f64,
    pub links: Vec<Link>,
    pub seconds: f64,
    /// Clients join one after another, this far apart.
    pub join_spacing_s: f64,
    pub decode: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ClientLog {
    pub name: String,
    pub link: Link,
    pub started_t: f64,
    pub segments: Vec<Event>,
    pub end: Option<Event>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct RunLog {
    pub spec_label: String,
    pub netns: bool,
    pub notes: Vec<String>,
    pub t0: f64,
    pub t_end: f64,
    /// seq -> (publish time, duration s)
    pub published: HashMap<u64, (f64, f64)>,
    /// Sums over the published Segments: (seconds, bytes, crumb-1 bytes).
    pub stream: (f64, u64, u64),
    /// (t, cumulative bytes uploaded by the channel's host or role)
    pub upload: Vec<(f64, u64)>,
    /// Where `upload` was measured.
    pub upload_source: String,
    pub channel_end: Option<Event>,
    pub channel_error: Option<String>,
    pub clients: Vec<ClientLog>,
}

struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(
        node: &Node,
        program: &Path,
        args: &[String],
        log: &Path,
        idx: usize,
        tx: &mpsc::Sender<(usize, Event)>,
    ) -> Result<Proc, String> {
        let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = node
            .command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Its own process group: ^C reaches the bench, which stops its children
            // by closing their stdin, so each still writes its End line.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let out = child.stdout.take().expect("piped");
        let tx = tx.clone();
        // Every event line is also kept beside the stderr log, for a look afterwards.
        let mut keep = std::fs::File::create(log.with_extension("events.jsonl")).ok();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(f) = keep.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                if let Ok(ev) = serde_json::from_str::<Event>(&line) {
                    let _ = tx.send((idx, ev));
                }
            }
        });
        Ok(Proc { child })
    }

    /// Closes stdin (the stop signal) and waits up to `grace`; then kills.
    fn stop(mut self, grace: Duration) {
        drop(self.child.stdin.take());
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Programs {
    pub crumbs: PathBuf,
    pub http: PathBuf,
}

/// Runs one swarm; `netem`: None = loopback fallback (with the reason), Some(has netem).
pub fn run(
    spec: &RunSpec,
    netns: Result<bool, String>,
    programs: &Programs,
    logs: &Path,
) -> RunLog {
    let _ = std::fs::create_dir_all(logs);
    let mut shapes = vec![Shape {
        // The channel's download is not what is measured: leave it wide.
        down_kbps: 1_000_000.0,
        up_kbps: spec.channel_up_kbps,
        ..Default::default()
    }];
    shapes.extend(spec.links.iter().map(|l| Shape {
        down_kbps: l.down_kbps,
        up_kbps: l.up_kbps,
        delay_ms: l.delay_ms,
        loss_pct: l.loss_pct,
    }));
    let (topology, nodes) = match netns {
        Ok(netem) => match Topology::netns(&shapes, netem) {
            Ok(t) => t,
            Err(e) => Topology::loopback(shapes.len(), &e),
        },
        Err(why) => Topology::loopback(shapes.len(), &why),
    };
    let shaped = topology.is_netns();
    let mut log = RunLog {
        spec_label: spec.label.clone(),
        netns: shaped,
        notes: topology.notes.clone(),
        upload_source: if shaped {
            "bytes sent by the channel host's interface (everything: media, HTTP API, tracker)"
                .into()
        } else {
            "bytes uploaded by the channel role (super seed, or web server)".into()
        },
        ..Default::default()
    };
    let (tx, rx) = mpsc::channel();
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let mut channel_args = vec![
        "channel".to_string(),
        "--address".into(),
        nodes[0].ip.to_string(),
    ];
    match &spec.system {
        System::Crumbs {
            layers,
            audio_kbps,
            channel_props,
            ..
        } => channel_args.extend([
            "--layers".into(),
            list(layers),
            "--audio-kbps".into(),
            audio_kbps.to_string(),
            "--props".into(),
            channel_props.clone(),
        ]),
        System::Http { ladder } => {
            let dir = logs.join("hls");
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::create_dir_all(&dir);
            channel_args.extend([
                "--port".into(),
                "8080".into(),
                "--dir".into(),
                dir.display().to_string(),
                "--ladder-kbps".into(),
                list(ladder),
            ]);
        }
    }
    if !shaped {
        channel_args.extend([
            "--max-upload-kbps".into(),
            format!("{}", spec.channel_up_kbps.round() as u64),
        ]);
    }
    let program = spec.system.program(programs);
    log.t0 = now_s();
    let channel = match Proc::spawn(
        &nodes[0],
        program,
        &channel_args,
        &logs.join("channel.log"),
        0,
        &tx,
    ) {
        Ok(p) => p,
        Err(e) => {
            log.channel_error = Some(e);
            return log;
        }
    };
    // Wait for the channel to listen (bounded).
    let url = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((_, Event::Listening { url, .. })) => break Some(url),
            Ok((_, Event::Error { text, .. })) => {
                log.channel_error = Some(text);
                break None;
            }
            Ok((_, Event::Note { text, .. })) => log
                .notes
                .push(format!("channel: {}", text.trim_start_matches("channel: "))),
            Ok(_) => {}
            Err(_) => {
                log.channel_error = Some("the channel did not listen within 30 s".into());
                break None;
            }
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            break None;
        }
    };
    let Some(url) = url else {
        channel.stop(Duration::from_secs(10));
        return log;
    };
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(spec.seconds);
    let mut clients: Vec<Option<Proc>> = Vec::new();
    log.clients = spec
        .links
        .iter()
        .enumerate()
        .map(|(i, l)| ClientLog {
            name: format!("c{}-{}", i + 1, l.name.replace('/', "_")),
            link: l.clone(),
            ..Default::default()
        })
        .collect();
    let mut next_sample = Instant::now();
    while Instant::now() < end && !INTERRUPTED.load(Ordering::SeqCst) {
        // Join the clients whose time has come.
        while clients.len() < spec.links.len()
            && start.elapsed().as_secs_f64() >= clients.len() as f64 * spec.join_spacing_s
        {
            let i = clients.len();
            let node = &nodes[i + 1];
            let c = &mut log.clients[i];
            let args = client_args(spec, &url, node, c, shaped);
            c.started_t = now_s();
            match Proc::spawn(
                node,
                program,
                &args,
                &logs.join(format!("{}.log", c.name)),
                i + 1,
                &tx,
            ) {
                Ok(p) => clients.push(Some(p)),
                Err(e) => {
                    c.error = Some(e);
                    clients.push(None);
                }
            }
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some(b) = Topology::tx_bytes(&nodes[0]) {
                log.upload.push((now_s(), b));
            }
        }
        if let Ok((idx, ev)) = rx.recv_timeout(Duration::from_millis(100)) {
            absorb(&mut log, idx, ev, shaped);
        }
    }
    // Stop the clients first (their End lines carry their stats), then the channel.
    let stoppers: Vec<_> = clients
        .into_iter()
        .flatten()
        .map(|p| std::thread::spawn(move || p.stop(Duration::from_secs(15))))
        .collect();
    for s in stoppers {
        let _ = s.join();
    }
    log.t_end = now_s();
    channel.stop(Duration::from_secs(15));
    drop(tx);
    while let Ok((idx, ev)) = rx.recv_timeout(Duration::from_secs(1)) {
        absorb(&mut log, idx, ev, shaped);
    }
    log
}

/// The client properties for a client on link `link`: those without a prefix, and
/// those prefixed `LINK:` (a profile's link name, as `fibre-20M:start-offset=0`) for
/// that link alone.
fn link_props(props: &str, link: &str) -> String {
    props
        .split_whitespace()
        .filter_map(|tok| match tok.split_once(':') {
            Some((l, p)) if !l.contains('=') && p.contains('=') => (l == link).then_some(p),
            _ => Some(tok),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn client_args(spec: &RunSpec, url: &str, node: &Node, c: &ClientLog, shaped: bool) -> Vec<String> {
    let cap = |x: f64| {
        if shaped {
            "0".to_string()
        } else {
            format!("{}", x.round() as u64)
        }
    };
    match &spec.system {
        System::Crumbs {
            adaptation,
            client_props,
            ..
        } => {
            let mut a = vec![
                "client".to_string(),
                "--props".into(),
                link_props(client_props, &c.link.name),
                "--url".into(),
                url.into(),
                "--address".into(),
                node.ip.to_string(),
                "--name".into(),
                c.name.clone(),
                "--adaptation".into(),
                adaptation.clone(),
                "--down-kbps".into(),
                cap(c.link.down_kbps),
                "--up-kbps".into(),
                cap(c.link.up_kbps),
            ];
            if spec.decode {
                a.push("--decode".into());
            }
            a
        }
        System::Http { .. } => vec![
            "client".to_string(),
            "--url".into(),
            url.into(),
            "--name".into(),
            c.name.clone(),
            "--down-kbps".into(),
            cap(c.link.down_kbps),
        ],
    }
}

fn absorb(log: &mut RunLog, idx: usize, ev: Event, shaped: bool) {
    if idx == 0 {
        match ev {
            Event::Published {
                t,
                seq,
                duration_s,
                bytes,
                base_bytes,
            } => {
                log.published.insert(seq, (t, duration_s));
                log.stream.0 += duration_s;
                log.stream.1 += bytes;
                log.stream.2 += base_bytes;
            }
            Event::Upload { t, bytes } if !shaped => log.upload.push((t, bytes)),
            Event::Error { text, .. } => log.channel_error = Some(text),
            Event::Note { text, .. } => log
                .notes
                .push(format!("channel: {}", text.trim_start_matches("channel: "))),
            e @ Event::End { .. } => log.channel_end = Some(e),
            _ => {}
        }
        return;
    }
    let Some(c) = log.clients.get_mut(idx - 1) else {
        return;
    };
    match ev {
        e @ Event::Segment { .. } => c.segments.push(e),
        Event::Error { text, .. } => c.error = Some(text),
        Event::Note { text, .. } => log.notes.push(format!("{}: {text}", c.name)),
        e @ Event::End { .. } => c.end = Some(e),
        _ => {}
    }
}
