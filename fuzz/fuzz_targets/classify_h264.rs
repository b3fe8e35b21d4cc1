// SPDX-License-Identifier: MPL-2.0
//! Fuzzes the H.264 classifier: it must never panic, and when it accepts a buffer its
//! parts must tile the buffer.
#![no_main]

use gstcrumbs::core::Codec;
use gstcrumbs::core::classify::classify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(au) = classify(Codec::H264, data, None) {
        let mut at = 0;
        for p in &au.parts {
            assert_eq!(p.range.start, at, "parts must be contiguous");
            assert!(p.range.end > p.range.start, "empty part");
            at = p.range.end;
        }
        assert_eq!(at, data.len(), "parts must cover the buffer");
    }
});
