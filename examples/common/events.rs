// SPDX-License-Identifier: MPL-2.0
//! The JSON-lines protocol between the swarm bench and the processes it starts (one
//! channel, N clients, each perhaps in its own network namespace). Every line on a
//! role's stdout is one [`Event`]; a role stops when its stdin closes.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch: every namespace shares this machine's clock, so the
/// bench can subtract a channel's times from a client's.
pub fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "ev", rename_all = "kebab-case")]
pub enum Event {
    /// Channel: clients join at this URL.
    Listening { t: f64, url: String },
    /// Channel: a Segment (or an HLS media segment) was published. Its first frame was
    /// captured about `duration_s` before `t`.
    Published {
        t: f64,
        seq: u64,
        duration_s: f64,
        bytes: u64,
        /// Bytes of crumb 1 (headers + base layer); 0 where there are no layers.
        #[serde(default)]
        base_bytes: u64,
    },
    /// Channel: bytes uploaded so far by the role itself (super seed, or web server).
    Upload { t: f64, bytes: u64 },
    /// Client: one Segment done (output, failed or skipped).
    Segment {
        t: f64,
        seq: u64,
        success: bool,
        skipped: bool,
        /// Crumbs (or, for HLS, the variant number from 1) output; 0 = nothing.
        d: u32,
        d_target: u32,
        /// N (or the number of HLS variants).
        n: u32,
        /// Bytes output for this Segment.
        bytes: u64,
        duration_s: f64,
        /// Deadline minus finish time, s (negative: late).
        margin_s: f64,
        from_seed: u64,
        from_peers: u64,
        /// Time extension the Segment began with, s.
        #[serde(default)]
        te_s: f64,
        /// The client's measured download rate R when it was done, kbit/s.
        #[serde(default)]
        rate_kbps: f64,
        /// How long the Segment's first frame waits in the player between its output
        /// and its play-out, s (crumbsrc's timeline; the HLS client's deadline margin):
        /// the viewer's latency is the output's plus this.
        #[serde(default)]
        play_delay_s: Option<f64>,
        /// How far the Segment moved the player's timeline forward, s: a freeze.
        #[serde(default)]
        stall_s: f64,
    },
    /// Any role: a non-fatal remark worth showing (shaping fell back, ...).
    Note { t: f64, text: String },
    /// Any role: a fatal error; the role exits after it.
    Error { t: f64, text: String },
    /// Any role, last line: what the process cost.
    End {
        t: f64,
        cpu_s: f64,
        max_rss_kb: u64,
        #[serde(default)]
        stats: serde_json::Value,
    },
}

impl Event {
    /// Writes the event as one line on stdout and flushes (the bench reads as it goes).
    pub fn emit(&self) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string(self).expect("serialisable")
        );
        let _ = out.flush();
    }
}

/// CPU seconds (user + system) and peak resident memory (kB) of this process.
pub fn own_cost() -> (f64, u64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0);
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_maxrss as u64)
}

/// Blocks until stdin closes (the bench's stop signal), on a thread of its own.
pub fn stdin_closed() -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = tx.send(());
    });
    rx
}
