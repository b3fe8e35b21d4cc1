// SPDX-License-Identifier: MPL-2.0
//! The pipelines a user types: gst-launch-1.0 with the built plugin, 600 frames of
//! each layered codec, base layer only and everything.

use std::path::PathBuf;
use std::process::Command;

/// The directory holding the built libgstcrumbs.so (target/<profile>).
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(
        dir.join("libgstcrumbs.so").exists(),
        "no libgstcrumbs.so in {}",
        dir.display()
    );
    dir
}

struct Launch {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn gst_launch(pipeline: &str) -> Launch {
    let out = Command::new("timeout")
        .arg("300")
        .arg("gst-launch-1.0")
        .arg("-m")
        .args(shell_words(pipeline))
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env(
            "GST_REGISTRY",
            std::env::temp_dir().join("crumbs-test-registry.bin"),
        )
        .output()
        .expect("gst-launch-1.0 runs");
    Launch {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Splits like a shell would for our simple lines (double quotes group words).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// (d, crumbs-total) of every crumbjoin-segment message gst-launch printed.
fn joined(stdout: &str) -> Vec<(u32, u32)> {
    stdout
        .lines()
        .filter(|l| l.contains("crumbjoin-segment"))
        .map(|l| {
            let field = |name: &str| -> u32 {
                let i = l.find(&format!("{name}=(uint)")).unwrap() + name.len() + 7;
                l[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect::<String>()
                    .parse()
                    .unwrap()
            };
            (field("d"), field("crumbs-total"))
        })
        .collect()
}

const SRC: &str = "videotestsrc num-buffers=600 ! video/x-raw,width=320,height=240,framerate=30/1";

fn check(encoder: &str, decoder: &str) {
    for max in [1, 0] {
        let line = format!(
            "{SRC} ! {encoder} ! svcsegmenter ! crumbjoin max-crumbs={max} ! {decoder} ! fakesink"
        );
        let r = gst_launch(&line);
        assert!(r.ok, "gst-launch-1.0 {line}\n{}\n{}", r.stdout, r.stderr);
        let segs = joined(&r.stdout);
        assert!(segs.len() >= 9, "{line}: {} Segments", segs.len());
        for (d, n) in segs {
            assert!(
                n >= 2,
                "{line}: a layered stream has at least 2 crumbs, got {n}"
            );
            assert_eq!(d, if max == 1 { 1 } else { n }, "{line}");
        }
    }
}

#[test]
fn vp8_paper_ladder_from_gst_launch() {
    check("svcvp8enc layer-bitrates=\"<128,512,2048>\"", "vp8dec");
}

#[test]
fn h265_from_gst_launch() {
    check(
        "x265enc speed-preset=ultrafast key-int-max=60 option-string=\"temporal-layers=1\" ! h265parse",
        "avdec_h265",
    );
}

#[test]
fn h264_from_gst_launch() {
    check(
        "x264enc speed-preset=superfast key-int-max=60 bframes=2 b-pyramid=false ! h264parse",
        "avdec_h264",
    );
}

#[test]
fn inspect_lists_every_element() {
    let out = Command::new("gst-inspect-1.0")
        .arg("crumbs")
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env(
            "GST_REGISTRY",
            std::env::temp_dir().join("crumbs-test-registry.bin"),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for e in ["svcsegmenter", "crumbjoin", "svcvp8enc"] {
        assert!(
            text.contains(e),
            "gst-inspect-1.0 crumbs lacks {e}:\n{text}"
        );
    }
}

/// A gst-launch-1.0 -e -m process whose stdout lines arrive on a channel.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(pipeline: &str) -> Running {
        Self::start_limited(pipeline, None)
    }

    /// With `max_files`, the process may hold at most that many file descriptors
    /// (`ulimit -n`), like a process under the common limit of 1,024, only lower.
    fn start_limited(pipeline: &str, max_files: Option<u32>) -> Running {
        use std::io::BufRead;
        let mut command = match max_files {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec gst-launch-1.0 \"$@\""))
                    .arg("sh");
                c
            }
            None => Command::new("gst-launch-1.0"),
        };
        let mut child = command
            .arg("-e")
            .arg("-m")
            .args(shell_words(pipeline))
            .env("GST_PLUGIN_PATH", plugin_dir())
            .env(
                "GST_REGISTRY",
                std::env::temp_dir().join("crumbs-test-registry.bin"),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gst-launch-1.0 runs");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (from now on) containing `what`, waiting at most `timeout`.
    fn line_with(&mut self, what: &str, timeout: std::time::Duration) -> String {
        let end = std::time::Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                let _ = self.child.kill();
                panic!("no line with {what}; output:\n{}", self.seen.join("\n"))
            });
            self.seen.push(line.clone());
            if line.contains(what) {
                return line;
            }
        }
    }

    /// SIGINT, then the exit status and the rest of the output (bounded wait).
    fn interrupt(mut self, timeout: std::time::Duration) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let end = std::time::Instant::now() + timeout;
        // The reader thread ends when the process closes stdout.
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "still running {timeout:?} after SIGINT:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
        let status = self.child.wait().unwrap();
        (status, self.seen.join("\n"))
    }
}

/// The value of `name=(type)value` in a gst-launch -m line.
fn field(line: &str, name: &str) -> String {
    let at = line
        .find(&format!("{name}=("))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    let rest = &line[at..];
    let value = &rest[rest.find(')').unwrap() + 1..];
    let value = value.trim_start_matches('"');
    value
        .chars()
        .take_while(|c| !matches!(c, '"' | ',' | ';' | ' '))
        .collect::<String>()
        .replace('\\', "")
}

/// ^C on a channel and a client started with `gst-launch-1.0 -e`: both send EOS
/// through their pipelines, exit 0 within seconds and leave no spool behind.
#[test]
fn sigint_ends_channel_and_client_cleanly() {
    use std::time::Duration;
    let mut channel = Running::start(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter ! crumbsink channel=sigint",
    );
    let listening = channel.line_with("crumbsink-listening", Duration::from_secs(30));
    let url = field(&listening, "url");
    let spool = PathBuf::from(field(&listening, "spool-dir"));
    assert!(spool.is_dir(), "{listening}");
    let mut client = Running::start(&format!(
        "crumbsrc location={url} ! vp8dec ! fakesink sync=false"
    ));
    let pid = client.child.id();
    client.line_with("crumbsrc-segment", Duration::from_secs(60));
    let client_spools = || -> Vec<String> {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("crumbsrc-{pid}-")))
            .collect()
    };
    assert_eq!(client_spools().len(), 1, "the client's spool while it runs");

    let (status, out) = client.interrupt(Duration::from_secs(20));
    assert!(status.success(), "client: {status}\n{out}");
    assert!(out.contains("EOS"), "client ended without EOS:\n{out}");
    assert!(client_spools().is_empty(), "client spool left behind");

    let (status, out) = channel.interrupt(Duration::from_secs(20));
    assert!(status.success(), "channel: {status}\n{out}");
    assert!(out.contains("EOS"), "channel ended without EOS:\n{out}");
    assert!(
        !spool.exists(),
        "channel spool {} left behind",
        spool.display()
    );
}

/// The attack that used to kill a channel: far more half-sent HTTP requests than the
/// process has file descriptors (here 256). The per-address cap keeps the HTTP server's
/// share bounded, so crumb files can still be written: the channel keeps publishing,
/// answers a client from another address, and ends cleanly. (Without the cap the next
/// crumb write failed with "Too many open files" and the channel stopped.)
#[test]
fn idle_sockets_cannot_starve_a_channel_of_file_descriptors() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut channel = Running::start_limited(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 ! svcsegmenter ! crumbsink channel=fd \
         max-connections-per-address=64",
        Some(256),
    );
    let listening = channel.line_with("crumbsink-listening", Duration::from_secs(30));
    let url = field(&listening, "url");
    let addr: std::net::SocketAddr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    channel.line_with("crumbsink-segment", Duration::from_secs(30));
    let rt = gstcrumbs::p2p::RUNTIME.handle();
    let connect_from = |from: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(addr).await
    };
    let _idle: Vec<_> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..400 {
            if let Ok(mut s) = connect_from("127.0.0.1").await {
                let _ = s.write_all(b"GET /fd HTTP/1.1\r\nHost: x\r\n").await;
                v.push(s);
            }
        }
        v
    });
    // Segments keep coming while the sockets are held.
    for _ in 0..3 {
        channel.line_with("crumbsink-segment", Duration::from_secs(30));
    }
    let reply = rt.block_on(async {
        let mut s = connect_from("127.0.0.2").await.expect("connect");
        s.write_all(b"GET /fd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut reply)).await;
        String::from_utf8_lossy(&reply).into_owned()
    });
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let (status, out) = channel.interrupt(Duration::from_secs(20));
    assert!(status.success(), "channel: {status}\n{out}");
    assert!(!out.contains("ERROR"), "{out}");
}
