// SPDX-License-Identifier: MPL-2.0
//! Replays the parser fuzz targets' inputs through their checks
//! (`gstcrumbs::fuzzing`): the seed corpus and every input a fuzzer found, kept in
//! `fuzz/seeds/<target>/`. Runs on stable, without libFuzzer.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: {name} breaks the check");
        }
        n += 1;
    }
    assert!(n >= 5, "{target}: only {n} inputs in {}", dir.display());
}

#[test]
fn window_and_segment_json_corpus() {
    replay("window_json", gstcrumbs::fuzzing::window_json);
}

#[test]
fn report_json_corpus() {
    replay("report_json", gstcrumbs::fuzzing::report_json);
}

#[test]
fn tracker_announce_corpus() {
    replay("tracker_announce", gstcrumbs::fuzzing::tracker_announce);
}
