// SPDX-License-Identifier: MPL-2.0
//! Wrong property values fail when the element leaves NULL, with an error that names
//! the property, the value and the rule (never at the first Segment, never silently).

mod common;

use common::*;
use gst::prelude::*;

/// The error text of taking `desc` to READY, or None when it gets there.
fn ready_error(desc: &str) -> Option<String> {
    init();
    let p = launch(desc);
    let bus = p.bus().unwrap();
    let r = p.set_state(gst::State::Ready);
    let msg = bus.pop_filtered(&[gst::MessageType::Error]);
    p.set_state(gst::State::Null).unwrap();
    match (r, msg) {
        (Ok(_), None) => None,
        (Err(_), Some(msg)) => {
            let gst::MessageView::Error(e) = msg.view() else {
                unreachable!()
            };
            Some(e.error().to_string())
        }
        (r, msg) => panic!("{desc}: state change {r:?} with error message {msg:?}"),
    }
}

#[test]
fn wrong_values_fail_at_null_to_ready_naming_property_value_and_rule() {
    let cases = [
        (
            "fakesrc ! crumbsink piece-size=20000",
            &["piece-size=20000", "power of two"][..],
        ),
        (
            "fakesrc ! crumbsink max-upload-rate=1000",
            &["max-upload-rate=1000", "at least 1024 bytes/s"],
        ),
        (
            "fakesrc ! crumbsink address=localhost",
            &["address='localhost'", "IP address is needed"],
        ),
        (
            "fakesrc ! crumbsink announce-urls=ftp://tracker.example",
            &["announce-urls=", "not an http://, https:// or udp://"],
        ),
        (
            "fakesrc ! crumbsink channel=a.b",
            &["channel='a.b'", "letters, digits"],
        ),
        (
            "fakesrc ! svcsegmenter min-gops=5 max-gops=2 ! fakesink",
            &["min-gops=5", "may not exceed max-gops (= 2)"],
        ),
        (
            "crumbsrc ! fakesink",
            &["location=(none)", "http://HOST:PORT/CHANNEL"],
        ),
        (
            "crumbsrc location=127.0.0.1:8080/live ! fakesink",
            &["location='127.0.0.1:8080/live'", "http://HOST:PORT/CHANNEL"],
        ),
        (
            "crumbsrc location=http://127.0.0.1:8080/live address=localhost ! fakesink",
            &["address='localhost'"],
        ),
        (
            "crumbsrc location=http://127.0.0.1:8080/live max-download-rate=500 ! fakesink",
            &["max-download-rate=500", "at least 1024"],
        ),
    ];
    for (desc, words) in cases {
        let e = ready_error(desc).unwrap_or_else(|| panic!("{desc}: reached READY"));
        for w in words {
            assert!(e.contains(w), "{desc}: {e:?} lacks {w:?}");
        }
    }
    // The same elements with good values get to READY (nothing is bound or joined
    // before PAUSED).
    for desc in [
        "fakesrc ! crumbsink piece-size=32768 max-upload-rate=1024 address=::1 announce-urls=udp://127.0.0.1:6969",
        "fakesrc ! svcsegmenter min-gops=2 max-gops=2 ! fakesink",
        "crumbsrc location=http://127.0.0.1:1/live max-download-rate=1024 ! fakesink",
    ] {
        assert_eq!(ready_error(desc), None, "{desc}");
    }
}
