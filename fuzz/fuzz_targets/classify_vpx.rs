// SPDX-License-Identifier: MPL-2.0
//! Fuzzes the VP8 and VP9 frame classifiers. The first input byte picks the codec
//! (bit 0) and the meta layer id (bits 1-3, none when 0); the rest is the frame.
#![no_main]

use gstcrumbs::core::classify::classify;
use gstcrumbs::core::{Codec, LayerId, PartClass};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let codec = if selector & 1 == 0 {
        Codec::Vp8
    } else {
        Codec::Vp9
    };
    let layer_id = match (selector >> 1) & 7 {
        0 => None,
        n => Some(n - 1),
    };
    if let Ok(au) = classify(codec, data, layer_id) {
        assert_eq!(au.parts.len(), 1, "a VP8/VP9 frame is one part");
        assert_eq!(au.parts[0].range, 0..data.len());
        assert_eq!(
            au.parts[0].class,
            PartClass::Layer(LayerId::new(0, 0, layer_id.unwrap_or(0)))
        );
        assert!(au.keyframe.is_some());
    }
});
