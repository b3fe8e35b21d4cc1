// SPDX-License-Identifier: MPL-2.0
//! Where the bench's processes run: each in its own network namespace, all joined by
//! veth pairs to one bridge in a "switch" namespace, with `tc` shaping each access
//! link; or, where namespaces cannot be made, all on loopback with the elements' own
//! rate caps.
//!
//! Shaping an access link: the node's end of its veth shapes the node's upload (egress
//! towards the switch), the switch's end shapes its download. Rates use `tbf`; delay
//! and loss need `netem`, which some kernels lack (then they are ignored, with a note).

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

/// One host of the bench: the channel or a client.
#[derive(Clone, Debug)]
pub struct Node {
    /// Network namespace (None: loopback fallback, the bench's own namespace).
    pub ns: Option<String>,
    pub ip: IpAddr,
}

impl Node {
    /// A command that runs `program args` on this node.
    pub fn command(&self, program: &std::path::Path) -> Command {
        match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

/// Shaping of one access link, kbit/s.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    pub down_kbps: f64,
    pub up_kbps: f64,
    pub delay_ms: f64,
    pub loss_pct: f64,
}

/// The namespaces of one run; dropped, it deletes every namespace it made.
pub struct Topology {
    prefix: String,
    made: Vec<String>,
    /// Remarks for the report (fallbacks, ignored settings).
    pub notes: Vec<String>,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Address of node `i` (0 = the channel) in 10.203.0.0/16.
fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 203, (i / 250) as u8, (i % 250 + 1) as u8)
}

impl Topology {
    /// Removes namespaces left by bench runs whose process is gone (killed with -9).
    pub fn sweep_stale() {
        let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let Some(rest) = name.strip_prefix("crumbs-") else {
                continue;
            };
            let pid = rest.split('-').next().unwrap_or("");
            if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = run(&["ip", "netns", "del", name]);
            }
        }
    }

    /// Checks that namespaces, veth, bridges and tbf work here (as root); `Err` says
    /// why not, for the loopback fallback's note.
    pub fn probe() -> Result<bool, String> {
        let mut t = Topology {
            prefix: format!("crumbs-{}-probe", std::process::id()),
            made: Vec::new(),
            notes: Vec::new(),
        };
        let sw = t.add_ns("sw")?;
        run(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        let n = t.add_ns("n0")?;
        run(&[
            "ip", "link", "add", "p0", "netns", &sw, "type", "veth", "peer", "name", "eth0",
            "netns", &n,
        ])?;
        run(&[
            "ip", "netns", "exec", &n, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate",
            "1mbit", "burst", "16kb", "latency", "100ms",
        ])?;
        let netem = run(&[
            "ip", "netns", "exec", &sw, "tc", "qdisc", "add", "dev", "p0", "root", "netem",
            "delay", "10ms",
        ])
        .is_ok();
        Ok(netem)
    }

    /// Makes the switch and `nodes` hosts (0 = channel) with their shaping.
    pub fn netns(shapes: &[Shape], netem: bool) -> Result<(Topology, Vec<Node>), String> {
        let mut t = Topology {
            prefix: format!("crumbs-{}", std::process::id()),
            made: Vec::new(),
            notes: Vec::new(),
        };
        let sw = t.add_ns("sw")?;
        run(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &sw, "link", "set", "br0", "up"])?;
        let mut nodes = Vec::new();
        let mut ignored = false;
        for (i, shape) in shapes.iter().enumerate() {
            let ns = t.add_ns(&format!("n{i}"))?;
            let port = format!("p{i}");
            run(&[
                "ip", "link", "add", &port, "netns", &sw, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            run(&["ip", "-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            let ip = address(i);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ip}/16"),
                "dev",
                "eth0",
            ])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            shape_egress(&ns, "eth0", shape.up_kbps, shape, netem)?;
            shape_egress(&sw, &port, shape.down_kbps, shape, netem)?;
            ignored |= !netem && (shape.delay_ms > 0.0 || shape.loss_pct > 0.0);
            nodes.push(Node {
                ns: Some(ns),
                ip: IpAddr::V4(ip),
            });
        }
        if ignored {
            t.notes.push(
                "this kernel has no netem qdisc: the profile's delay and loss were not applied (rates were)"
                    .into(),
            );
        }
        Ok((t, nodes))
    }

    /// Every node on 127.0.0.1 (the loopback fallback).
    pub fn loopback(count: usize, why: &str) -> (Topology, Vec<Node>) {
        let t = Topology {
            prefix: String::new(),
            made: Vec::new(),
            notes: vec![format!(
                "network namespaces unavailable ({why}): all processes on loopback, links capped by the elements' max-download-rate / max-upload-rate instead of tc"
            )],
        };
        let node = Node {
            ns: None,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        (t, vec![node; count])
    }

    pub fn is_netns(&self) -> bool {
        !self.prefix.is_empty()
    }

    fn add_ns(&mut self, suffix: &str) -> Result<String, String> {
        let name = format!("{}-{suffix}", self.prefix);
        run(&["ip", "netns", "add", &name])?;
        self.made.push(name.clone());
        Ok(name)
    }

    /// Bytes sent so far by `node`'s access interface (its upload), from the kernel.
    pub fn tx_bytes(node: &Node) -> Option<u64> {
        let ns = node.ns.as_ref()?;
        let out = Command::new("ip")
            .args(["-n", ns, "-s", "-j", "link", "show", "eth0"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.get(0)?.get("stats64")?.get("tx")?.get("bytes")?.as_u64()
    }
}

/// tbf at `kbps` on `dev`'s egress, under netem for delay and loss when there is one.
fn shape_egress(ns: &str, dev: &str, kbps: f64, shape: &Shape, netem: bool) -> Result<(), String> {
    let rate = format!("{}kbit", kbps.round().max(8.0) as u64);
    let bytes_per_s = kbps * 1000.0 / 8.0;
    // A burst of ~20 ms of the rate (at least two full frames) and a queue of half a
    // second, at least 64 kB: an access line's buffer. A queue of a few packets would
    // drop the initial window of every new connection (and each crumb is a torrent
    // with connections of its own), which no real modem does.
    let burst = format!("{}", (bytes_per_s * 0.02).max(3200.0) as u64);
    let limit = format!("{}", (bytes_per_s * 0.5).max(65536.0) as u64);
    let mut args = vec!["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev];
    let extra = netem && (shape.delay_ms > 0.0 || shape.loss_pct > 0.0);
    if extra {
        let delay = format!("{}ms", shape.delay_ms);
        let loss = format!("{}%", shape.loss_pct);
        let mut a = args.clone();
        a.extend([
            "root", "handle", "1:", "netem", "delay", &delay, "loss", &loss,
        ]);
        run(&a)?;
        args.extend(["parent", "1:", "handle", "10:"]);
    } else {
        args.push("root");
    }
    args.extend(["tbf", "rate", &rate, "burst", &burst, "limit", &limit]);
    run(&args)
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.made.drain(..).rev() {
            let _ = run(&["ip", "netns", "del", &ns]);
        }
    }
}
