// SPDX-License-Identifier: MPL-2.0
//! Fuzzes the window and Segment JSON a client reads (`GET /<channel>`,
//! `GET /<channel>/segments/<seq>`): parsing, the round trip, and the client engine
//! taking whatever parses. Byte 0 picks the document (even: window, odd: Segment).
//! The checks are `gstcrumbs::fuzzing::window_json`, which the test suite also replays on
//! `fuzz/seeds/window_json/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gstcrumbs::fuzzing::window_json(data));
