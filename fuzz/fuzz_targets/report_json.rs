// SPDX-License-Identifier: MPL-2.0
//! Fuzzes the report body the channel reads (`POST /<channel>/report`): parsing, the
//! round trip, and the rho feedback taking whatever parses.
//! The checks are `gstcrumbs::fuzzing::report_json`, which the test suite also replays on
//! `fuzz/seeds/report_json/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gstcrumbs::fuzzing::report_json(data));
