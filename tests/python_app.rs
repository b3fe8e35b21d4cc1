// SPDX-License-Identifier: MPL-2.0
//! The PyGObject example application (examples/viewer.py) run as a user would: two
//! live channels on loopback, the viewer zapping from one to the other, its output
//! checked. Needs Debian's python3-gi and gir1.2-gstreamer-1.0 (scripts/setup).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

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

fn channel(name: &str, width: u32, height: u32) -> Peer {
    Peer::start(&format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=30 ! svcsegmenter max-crumb-size=0 min-gops=1 max-gops=1 \
         ! crumbsink name={name} channel={name} window=4 tracker-interval=1"
    ))
}

#[test]
fn python_viewer_prints_segments_and_stats_and_switches_channel() {
    init();
    let one = channel("one", 160, 120);
    let two = channel("two", 320, 240);
    let url1 = one.listening().get::<String>("url").unwrap();
    let url2 = two.listening().get::<String>("url").unwrap();
    // Both channels on the air, as a viewer finds them in a channel list.
    let start = std::time::Instant::now();
    while one.named("crumbsink-segment").is_empty() || two.named("crumbsink-segment").is_empty() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "channels publish"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/viewer.py");
    // Debian's interpreter (the one with gi), bounded by timeout(1).
    let out = Command::new("timeout")
        .args(["-k", "5", "120"])
        .arg("/usr/bin/python3")
        .arg(&script)
        .args([&url1, &url2])
        .args([
            "--switch-after",
            "3",
            "--segments",
            "6",
            "--sink",
            "fake",
            "--no-sync",
            "--stats-interval",
            "0.5",
        ])
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .expect("runs /usr/bin/python3 (apt-get install python3-gi gir1.2-gstreamer-1.0)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let has = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    assert!(
        has(&format!("segment url={url1} ")) >= 3,
        "Segments of the first channel\n{stdout}"
    );
    assert!(
        has(&format!("segment url={url2} ")) >= 1,
        "Segments of the second channel\n{stdout}"
    );
    assert_eq!(has("segment "), 6, "quits after 6 Segments\n{stdout}");
    assert_eq!(has("decoder name=vp8dec"), 1, "{stdout}");
    assert_eq!(
        has(&format!("switched old={url1} new={url2}")),
        1,
        "{stdout}"
    );
    assert!(has("video width=160 height=120") >= 1, "{stdout}");
    assert!(has("video width=320 height=240") >= 1, "{stdout}");
    // Stats, periodic and at the end, from the element's `stats` property.
    let stats: Vec<&&str> = lines.iter().filter(|l| l.starts_with("stats ")).collect();
    assert!(!stats.is_empty(), "{stdout}");
    let last = stats.last().unwrap();
    let words: Vec<&str> = last.split_whitespace().collect();
    assert!(words.contains(&"channel-switches=1"), "{last}");
    assert!(!words.contains(&"bytes-downloaded=0"), "{last}");
    assert!(!lines.iter().any(|l| l.starts_with("error")), "{stdout}");
    one.assert_no_error();
    two.assert_no_error();
}
