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
