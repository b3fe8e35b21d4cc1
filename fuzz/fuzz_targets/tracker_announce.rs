// SPDX-License-Identifier: MPL-2.0
//! Fuzzes the tracker's announce query string (`GET /<channel>/announce?...`):
//! parsing, writing it back, and the tracker's reply being one bencoded dictionary.
//! The checks are `gstcrumbs::fuzzing::tracker_announce`, which the test suite also replays on
//! `fuzz/seeds/tracker_announce/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gstcrumbs::fuzzing::tracker_announce(data));
