// SPDX-License-Identifier: MPL-2.0
//! The swarm bench (issue 5): a live layered channel and N crumbsrc clients, each in
//! its own network namespace with a `tc`-shaped access link from a profile file,
//! measured against the fluid limit r_max, against a client-server HLS reference
//! (nginx) at the same ladder, against a one-layer stream, and paper rule against rate
//! rule; the simulator is run at the same size for comparison.
//!
//! ```text
//! scripts/bench-swarm [--quick] [--profile bench/profiles/paper.toml] [--clients N]
//!     [--seconds S] [--sweep 2,5,10,20] [--loopback] [--decode]
//!     [--out target/bench/swarm.json] [--report target/bench/swarm.html]
//!     [--runs main,rule,crumbs,http,ladder,tight] [--tight-kbps 5376]
//! ```
//! Roles (started by the bench itself): `bench_swarm channel ...`, `bench_swarm client ...`.

#[path = "../common/events.rs"]
mod events;
mod metrics;
mod net;
#[path = "../common/profile.rs"]
mod profile;
#[path = "../common/report.rs"]
mod report;
mod roles;
mod run;
mod summary;

use std::path::PathBuf;

use profile::Profile;
use run::{Programs, RunSpec, System};

/// The paper's ladder: base 128, enhancement 1 512, enhancement 2 2048 kbit/s; the HLS
/// reference's variants are the cumulative rates.
const LAYERS: [u32; 3] = [128, 512, 2048];
/// Opus beside the video in the ladder runs (a programme, not only a picture): it
/// travels in crumb 1, so the weakest links must carry it with the base layer.
const AUDIO_KBPS: u32 = 64;

struct Options {
    quick: bool,
    profile: PathBuf,
    ladder_profile: PathBuf,
    clients: usize,
    seconds: f64,
    sweep: Vec<usize>,
    loopback: bool,
    decode: bool,
    out: PathBuf,
    report: PathBuf,
    /// Only the runs whose key starts with one of these (empty: all).
    runs: Vec<String>,
    /// The channel upload of the "tight" runs, kbit/s (default: twice the full
    /// quality, issue 9's "channel cut to twice the full-quality rate").
    tight_kbps: Option<f64>,
    /// Extra crumbsink / crumbsrc properties for every crumbs run.
    channel_props: String,
    client_props: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench_swarm [--quick] [--profile FILE] [--ladder-profile FILE] [--clients N] \
         [--seconds S] [--sweep 2,5,10,20] [--loopback] [--decode] [--out FILE] [--report FILE] \
         [--runs main,rule,crumbs,http,ladder,tight] [--tight-kbps K] \
         [--channel-props 'super-seed-fanout=1 segmenter:gops=2 ...'] [--client-props 'peer-patience=500 fibre-20M:start-offset=0 ...']"
    );
    std::process::exit(2)
}

fn options(args: &[String]) -> Options {
    let mut o = Options {
        quick: false,
        profile: "bench/profiles/paper.toml".into(),
        ladder_profile: "bench/profiles/ladder.toml".into(),
        clients: 0,
        seconds: 0.0,
        sweep: Vec::new(),
        loopback: false,
        decode: false,
        out: "target/bench/swarm.json".into(),
        report: "target/bench/swarm.html".into(),
        runs: Vec::new(),
        tight_kbps: None,
        channel_props: String::new(),
        client_props: String::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--quick" => o.quick = true,
            "--profile" => o.profile = val().into(),
            "--ladder-profile" => o.ladder_profile = val().into(),
            "--clients" => o.clients = val().parse().unwrap_or_else(|_| usage()),
            "--seconds" => o.seconds = val().parse().unwrap_or_else(|_| usage()),
            "--sweep" => {
                o.sweep = val()
                    .split(',')
                    .map(|s| s.trim().parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--loopback" => o.loopback = true,
            "--decode" => o.decode = true,
            "--out" => o.out = val().into(),
            "--report" => o.report = val().into(),
            "--tight-kbps" => o.tight_kbps = Some(val().parse().unwrap_or_else(|_| usage())),
            "--channel-props" => o.channel_props = val(),
            "--client-props" => o.client_props = val(),
            "--runs" => o.runs = val().split(',').map(|s| s.trim().to_string()).collect(),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if o.clients == 0 {
        o.clients = if o.quick { 3 } else { 10 };
    }
    if o.seconds <= 0.0 {
        // The paper rule climbs one crumb per Segment: two minutes let a fibre client
        // reach the top of some 20 crumbs.
        o.seconds = if o.quick { 20.0 } else { 120.0 };
    }
    if o.sweep.is_empty() {
        o.sweep = if o.quick {
            vec![2, 3]
        } else {
            vec![2, 5, 10, 20]
        };
    }
    o
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn role(args: &[String]) -> Option<i32> {
    let rest = &args[1..];
    let arg = |n: &str| flag(rest, n).unwrap_or_default();
    let kbps = |n: &str| arg(n).parse::<u32>().unwrap_or(0);
    match args.first().map(String::as_str) {
        Some("channel") => Some(roles::channel(roles::ChannelArgs {
            address: arg("--address"),
            layers: arg("--layers")
                .split(',')
                .filter_map(|s| s.parse().ok())
                .collect(),
            max_upload_kbps: kbps("--max-upload-kbps"),
            audio_kbps: kbps("--audio-kbps"),
            props: arg("--props"),
        })),
        Some("client") => Some(roles::client(roles::ClientArgs {
            url: arg("--url"),
            address: arg("--address"),
            name: arg("--name"),
            adaptation: flag(rest, "--adaptation").unwrap_or_else(|| "rate".into()),
            props: arg("--props"),
            down_kbps: kbps("--down-kbps"),
            up_kbps: kbps("--up-kbps"),
            decode: rest.iter().any(|a| a == "--decode"),
        })),
        _ => None,
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    run::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("channel" | "client")) {
        let init = gst::init()
            .map_err(|e| e.to_string())
            .and_then(|_| gstcrumbs::plugin_register_static().map_err(|e| e.to_string()));
        if let Err(e) = init {
            events::Event::Error {
                t: events::now_s(),
                text: format!("GStreamer: {e}"),
            }
            .emit();
            std::process::exit(1);
        }
        std::process::exit(role(&args).unwrap_or(2));
    }
    let o = options(&args);
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    match bench(&o) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench-swarm: {e}");
            std::process::exit(1);
        }
    }
}

fn bench(o: &Options) -> Result<(), String> {
    let profile = Profile::load(&o.profile)?;
    let ladder = Profile::load(&o.ladder_profile)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let programs = Programs {
        http: exe.with_file_name("bench_http"),
        crumbs: exe,
    };
    let netns = if o.loopback {
        Err("--loopback given".to_string())
    } else {
        net::Topology::sweep_stale();
        net::Topology::probe()
    };
    match &netns {
        Ok(netem) => println!(
            "shaping: network namespaces + veth + tc tbf{}",
            if *netem {
                " + netem"
            } else {
                " (no netem here: delay and loss not applied)"
            }
        ),
        Err(e) => println!("shaping: loopback fallback ({e}); elements' rate caps instead of tc"),
    }
    let logs = o
        .out
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("swarm-logs");
    let full: f64 = LAYERS.iter().map(|&x| x as f64).sum();
    let ladder_kbps: Vec<u32> = LAYERS
        .iter()
        .scan(0, |acc, &x| {
            *acc += x;
            Some(*acc)
        })
        .collect();
    let sweep_seconds = if o.quick { 15.0 } else { 60.0 };
    let spacing = if o.quick { 0.5 } else { 1.0 };
    let mut plan: Vec<(String, RunSpec)> = Vec::new();
    let crumbs = |adaptation: &str, layers: Vec<u32>| System::Crumbs {
        layers,
        audio_kbps: 0,
        adaptation: adaptation.into(),
        channel_props: o.channel_props.clone(),
        client_props: o.client_props.clone(),
    };
    let spec = |label: String, system: System, p: &Profile, links, seconds| RunSpec {
        label,
        system,
        channel_up_kbps: p.channel_up_kbps,
        links,
        seconds,
        join_spacing_s: spacing,
        decode: o.decode,
    };
    plan.push((
        "main".into(),
        spec(
            format!("crumbs N={} (defaults: rate rule)", o.clients),
            crumbs("rate", LAYERS.to_vec()),
            &profile,
            profile.assign(o.clients),
            o.seconds,
        ),
    ));
    plan.push((
        "rule".into(),
        spec(
            format!("crumbs paper rule N={}", o.clients),
            crumbs("paper", LAYERS.to_vec()),
            &profile,
            profile.assign(o.clients),
            o.seconds,
        ),
    ));
    for &n in &o.sweep {
        if n != o.clients {
            plan.push((
                format!("crumbs-{n}"),
                spec(
                    format!("crumbs N={n}"),
                    crumbs("rate", LAYERS.to_vec()),
                    &profile,
                    profile.assign(n),
                    sweep_seconds,
                ),
            ));
        }
        plan.push((
            format!("http-{n}"),
            spec(
                format!("HLS N={n}"),
                System::Http {
                    ladder: ladder_kbps.clone(),
                },
                &profile,
                profile.assign(n),
                sweep_seconds,
            ),
        ));
    }
    let ladder_links = if o.quick {
        // Three rungs are enough to keep the command from rotting.
        let pick = [192.0, 600.0, 2800.0];
        ladder
            .links
            .iter()
            .filter(|l| pick.contains(&l.down_kbps))
            .cloned()
            .collect()
    } else {
        ladder.links.clone()
    };
    let ladder_seconds = if o.quick { 20.0 } else { 60.0 };
    plan.push((
        "ladder-layered".into(),
        spec(
            "min watchable, layered (rate rule)".into(),
            // The rate rule: the paper rule's probing of D+1 costs a weak link the
            // next Segment (see the main and rule runs), which is not the layering's
            // limit but the rule's.
            with_audio(crumbs("rate", LAYERS.to_vec())),
            &ladder,
            ladder_links.clone(),
            ladder_seconds,
        ),
    ));
    plan.push((
        "ladder-one-layer".into(),
        spec(
            "min watchable, one layer".into(),
            with_audio(crumbs("rate", vec![full as u32])),
            &ladder,
            ladder_links,
            ladder_seconds,
        ),
    ));

    // The audience's own upload against a channel that cannot serve everyone: the
    // largest N with the channel's upload cut to --tight-kbps.
    if let (false, Some(&n)) = (o.quick, o.sweep.iter().max()) {
        let tight_kbps = o.tight_kbps.unwrap_or(2.0 * full);
        let mut tight = profile.clone();
        tight.channel_up_kbps = tight_kbps;
        for (key, system) in [
            ("tight-crumbs", crumbs("rate", LAYERS.to_vec())),
            (
                "tight-http",
                System::Http {
                    ladder: ladder_kbps.clone(),
                },
            ),
        ] {
            let name = if key == "tight-http" { "HLS" } else { "crumbs" };
            plan.push((
                format!("{key}-{n}"),
                spec(
                    format!("{name} N={n}, channel {tight_kbps:.0} kbit/s"),
                    system,
                    &tight,
                    tight.assign(n),
                    sweep_seconds,
                ),
            ));
        }
    }
    plan.retain(|(key, _)| {
        key == "main" || o.runs.is_empty() || o.runs.iter().any(|r| key.starts_with(r.as_str()))
    });
    if plan.iter().any(|(k, _)| k.starts_with("http")) && !programs.http.exists() {
        return Err(format!(
            "{} is missing: build it with `cargo build --example bench_http` (scripts/bench-swarm does)",
            programs.http.display()
        ));
    }
    let total: f64 = plan.iter().map(|(_, s)| s.seconds + 8.0).sum();
    println!("{} runs, about {:.0} min", plan.len(), total / 60.0);
    let mut done = Vec::new();
    for (key, spec) in &plan {
        if run::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            println!("interrupted: the remaining runs are skipped");
            break;
        }
        println!(
            "run {key}: {} ({} clients, {:.0} s)",
            spec.label,
            spec.links.len(),
            spec.seconds
        );
        let log = run::run(spec, netns.clone(), &programs, &logs.join(key));
        let full_q = match &spec.system {
            // The picture's quality: the audio is the same whatever d.
            System::Crumbs { layers, .. } => layers.iter().map(|&x| x as f64).sum(),
            System::Http { ladder } => ladder.last().copied().unwrap_or(0) as f64,
        };
        let figs = metrics::swarm(&log, spec.channel_up_kbps, full_q, spec.seconds);
        println!("  {}", summary::one_line(&figs));
        done.push((key.clone(), spec.clone(), log, figs));
    }
    summary::finish(o, &profile, &done)
}

/// The ladder runs' channel carries audio (`AUDIO_KBPS`).
fn with_audio(system: System) -> System {
    match system {
        System::Crumbs {
            layers,
            adaptation,
            channel_props,
            client_props,
            ..
        } => System::Crumbs {
            layers,
            audio_kbps: AUDIO_KBPS,
            adaptation,
            channel_props,
            client_props,
        },
        other => other,
    }
}
