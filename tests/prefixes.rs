// SPDX-License-Identifier: MPL-2.0
//! Every prefix of crumbs of every codec decodes with stock decoders, and matches the
//! full decode where both have the frame.

mod common;

use std::time::Duration;

use common::*;

const TIMEOUT: Duration = Duration::from_secs(120);

/// One source, tee'd to a reference decode and to svcsegmenter ! crumbjoin
/// max-crumbs=d ! decoder for each d in `prefixes` (0 = all).
struct Case {
    /// Up to and including the parser, ending where the tee goes.
    source: String,
    /// Decoder (and anything it needs before it) for the reference and each branch.
    decoder: &'static str,
    /// Decoder for the reference if different (e.g. a base-layer-only decoder).
    reference_decoder: Option<&'static str>,
    max_crumb_size: u32,
    prefixes: Vec<u32>,
    /// svcsegmenter's gops (whole GOPs per Segment).
    gops: u32,
}

struct Outcome {
    reference: Decoded,
    prefix: Vec<(u32, Decoded)>,
    run: RunResult,
}

const RAW: &str = "videoconvert ! video/x-raw,format=I420";

fn run_case(case: &Case) -> Outcome {
    let mut desc = format!(
        "{} ! tee name=t  t. ! queue max-size-buffers=0 max-size-time=0 max-size-bytes=0 ! {} ! {RAW} ! appsink name=reference ",
        case.source,
        case.reference_decoder.unwrap_or(case.decoder)
    );
    let mut sinks = vec!["reference".to_string()];
    for d in &case.prefixes {
        desc += &format!(
            " t. ! queue max-size-buffers=0 max-size-time=0 max-size-bytes=0 ! svcsegmenter name=seg{d} max-crumb-size={} gops={} ! crumbjoin name=join{d} max-crumbs={d} ! {} ! {RAW} ! appsink name=d{d}",
            case.max_crumb_size, case.gops, case.decoder
        );
        sinks.push(format!("d{d}"));
    }
    let (mut decoded, run) = decode_many(&desc, &sinks, TIMEOUT);
    assert!(
        run.error.is_none(),
        "pipeline failed: {:?}\n{desc}",
        run.error
    );
    let reference = decoded.remove("reference").unwrap();
    let prefix = case
        .prefixes
        .iter()
        .map(|d| (*d, decoded.remove(&format!("d{d}")).unwrap()))
        .collect();
    Outcome {
        reference,
        prefix,
        run,
    }
}

impl Outcome {
    fn get(&self, d: u32) -> &Decoded {
        &self.prefix.iter().find(|(k, _)| *k == d).unwrap().1
    }

    /// Crumb counts per Segment as svcsegmenter announced them.
    fn crumbs_per_segment(&self) -> Vec<u32> {
        let any = self.prefix[0].0;
        self.run
            .messages_from(&format!("seg{any}"), "svcsegmenter-segment")
            .iter()
            .map(|s| s.get::<u32>("crumbs").unwrap())
            .collect()
    }

    /// Shared checks: more crumbs never give fewer frames; all crumbs give every frame
    /// of the reference; frames present in both decodes are identical when asked.
    fn check_common(&self, bit_exact_with_reference: bool) {
        let mut last = 0;
        let mut ds: Vec<&(u32, Decoded)> = self.prefix.iter().filter(|(d, _)| *d > 0).collect();
        ds.sort_by_key(|(d, _)| *d);
        for (d, dec) in ds {
            assert!(
                dec.len() >= last,
                "prefix {d} gave {} frames, fewer than the shorter prefix ({last})",
                dec.len()
            );
            assert!(dec.len() > 0, "prefix {d} decoded nothing");
            last = dec.len();
            if bit_exact_with_reference {
                let shared =
                    assert_shared_frames_identical(dec, &self.reference, &format!("prefix {d}"));
                assert_eq!(shared, dec.len(), "prefix {d}: frames not in the reference");
            }
        }
        if let Some((_, all)) = self.prefix.iter().find(|(d, _)| *d == 0) {
            assert_eq!(
                all.len(),
                self.reference.len(),
                "all crumbs must give every frame"
            );
            if bit_exact_with_reference {
                assert_shared_frames_identical(all, &self.reference, "all crumbs");
            }
        }
    }
}

fn test_src(frames: u32) -> String {
    format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1"
    )
}

#[test]
fn vp8_three_temporal_layers() {
    let o = run_case(&Case {
        source: format!(
            "{} ! svcvp8enc keyframe-max-dist=32 layer-bitrates=<100,200,400>",
            test_src(128)
        ),
        decoder: "vp8dec",
        reference_decoder: None,
        max_crumb_size: 3000,
        prefixes: vec![0, 1, 2, 3, 4, 5, 6],
        gops: 1,
    });
    o.check_common(true);
    assert_eq!(o.reference.len(), 128);
    // Layer 0 is every 4th frame, layers 0+1 every 2nd.
    assert_eq!(o.get(1).len(), 32);
    let n = o.crumbs_per_segment();
    assert!(
        n.iter().all(|&n| n >= 3),
        "3 layers give at least 3 crumbs per Segment: {n:?}"
    );
    assert!(
        n.iter().any(|&n| n > 3),
        "max-crumb-size splits enhancement layers: {n:?}"
    );
    let layers: Vec<u32> = o
        .run
        .messages_from("seg0", "svcsegmenter-segment")
        .iter()
        .map(|s| s.get::<u32>("layers").unwrap())
        .collect();
    assert!(layers.iter().all(|&l| l == 3), "{layers:?}");
}

#[test]
fn vp8_layers_one_crumb_each() {
    let o = run_case(&Case {
        source: format!("{} ! svcvp8enc keyframe-max-dist=32", test_src(96)),
        decoder: "vp8dec",
        reference_decoder: None,
        max_crumb_size: 0,
        prefixes: vec![1, 2, 3],
        gops: 1,
    });
    o.check_common(true);
    assert_eq!(o.get(1).len(), 24);
    assert_eq!(o.get(2).len(), 48);
    assert_eq!(o.get(3).len(), 96);
}

/// `layers=1` makes a one-layer stream: one crumb per Segment however large (the
/// bin first configured for its default 3 layers must not keep marking frames T1/T2).
#[test]
fn vp8_one_layer_is_one_crumb() {
    let o = run_case(&Case {
        source: format!(
            "{} ! svcvp8enc layers=1 layer-bitrates=<400> keyframe-max-dist=32",
            test_src(96)
        ),
        decoder: "vp8dec",
        reference_decoder: None,
        max_crumb_size: 1000,
        prefixes: vec![1],
        gops: 1,
    });
    o.check_common(true);
    assert_eq!(o.get(1).len(), 96, "crumb 1 is the whole stream");
    assert!(o.crumbs_per_segment().iter().all(|&n| n == 1));
}

#[test]
fn h265_temporal_sub_layers() {
    let o = run_case(&Case {
        source: format!(
            "{} ! x265enc speed-preset=ultrafast key-int-max=30 option-string=\"temporal-layers=1:bframes=3:b-adapt=0\" ! h265parse ! video/x-h265,stream-format=byte-stream,alignment=au",
            test_src(120)
        ),
        decoder: "avdec_h265",
        reference_decoder: None,
        max_crumb_size: 0,
        prefixes: vec![0, 1, 2],
        gops: 1,
    });
    o.check_common(true);
    assert_eq!(o.reference.len(), 120);
    assert!(
        o.get(1).len() < 120,
        "the base sub-layer alone has fewer pictures"
    );
    assert!(o.crumbs_per_segment().iter().all(|&n| n == 2));
}

#[test]
fn h264_non_reference_b_frames() {
    let o = run_case(&Case {
        source: format!(
            "{} ! x264enc speed-preset=superfast key-int-max=30 bframes=2 b-pyramid=false ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au",
            test_src(120)
        ),
        decoder: "avdec_h264",
        reference_decoder: None,
        max_crumb_size: 2000,
        prefixes: vec![0, 1, 2, 3, 4],
        gops: 1,
    });
    o.check_common(true);
    assert_eq!(o.reference.len(), 120);
    // I and P pictures only: about a third with two B-frames between them.
    let base = o.get(1).len();
    assert!((30..=60).contains(&base), "base layer has {base} pictures");
}

#[test]
fn h264_svc_three_spatial_layers() {
    let Some(file) = testdata("h264-svc-s3t3-640x360.264") else {
        return;
    };
    let source = format!(
        "filesrc location={} ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au",
        file.display()
    );
    // One crumb per layer: S0T0, S0T1, S0T2, S1, S2.
    let o = run_case(&Case {
        source: source.clone(),
        decoder: "openh264dec",
        reference_decoder: Some(
            "capssetter caps=\"video/x-h264,profile=(string)baseline\" ! openh264dec",
        ),
        max_crumb_size: 0,
        prefixes: vec![1, 2, 3, 4, 5],
        gops: 1,
    });
    o.check_common(false);
    assert!(
        o.crumbs_per_segment().iter().all(|&n| n == 5),
        "{:?}",
        o.crumbs_per_segment()
    );
    assert_eq!(o.reference.len(), 300);
    assert_eq!(o.reference.resolutions(), [(640, 360)].into());
    assert_eq!(o.get(1).len(), 75);
    assert_eq!(o.get(2).len(), 150);
    for (d, res) in [
        (1, (160, 90)),
        (2, (160, 90)),
        (3, (160, 90)),
        (4, (320, 180)),
        (5, (640, 360)),
    ] {
        assert_eq!(o.get(d).resolutions(), [res].into(), "prefix {d}");
    }
    assert_eq!(o.get(3).len(), 300);
    assert_eq!(o.get(4).len(), 300);
    // All crumbs: bit-exact with the full decode of the file. The raw file carries no
    // timestamps (its SPS has no timing info), so frames pair up by order.
    assert_identical_by_index(o.get(5), &o.reference, "all crumbs");

    // The base layer alone, decoded by openh264dec, is bit-exact with what avdec_h264
    // (which ignores the SVC NAL units) makes of the untouched file.
    let (base_ref, run) = decode(
        &format!("{source} ! avdec_h264 ! {RAW} ! appsink name=frames"),
        TIMEOUT,
    );
    assert!(run.error.is_none(), "{:?}", run.error);
    assert_identical_by_index(o.get(3), &base_ref, "base layer");
}

#[test]
fn h264_svc_every_prefix_decodes() {
    let Some(file) = testdata("h264-svc-s3t3-640x360.264") else {
        return;
    };
    let o = run_case(&Case {
        source: format!(
            "filesrc location={} ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au",
            file.display()
        ),
        decoder: "openh264dec",
        reference_decoder: Some(
            "capssetter caps=\"video/x-h264,profile=(string)baseline\" ! openh264dec",
        ),
        max_crumb_size: 40_000,
        prefixes: (0..=12).collect(),
        gops: 3,
    });
    o.check_common(false);
    assert!(
        o.crumbs_per_segment().iter().any(|&n| n > 5),
        "{:?}",
        o.crumbs_per_segment()
    );
}

#[test]
fn av1_two_spatial_three_temporal_layers() {
    let Some(file) = testdata("av1-svc-l2t3-640x360.ivf") else {
        return;
    };
    let o = run_case(&Case {
        source: format!(
            "filesrc location={} ! ivfparse ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu",
            file.display()
        ),
        decoder: "av1dec",
        reference_decoder: None,
        max_crumb_size: 0,
        prefixes: vec![1, 2, 3, 4],
        gops: 1,
    });
    o.check_common(false);
    assert!(
        o.crumbs_per_segment().iter().all(|&n| n == 4),
        "{:?}",
        o.crumbs_per_segment()
    );
    assert_eq!(o.reference.len(), 300);
    assert_eq!(o.get(1).len(), 75);
    assert_eq!(o.get(3).len(), 300);
    assert_eq!(o.get(3).resolutions(), [(320, 180)].into());
    assert_eq!(o.get(4).resolutions(), [(640, 360)].into());
    assert_eq!(
        assert_shared_frames_identical(o.get(4), &o.reference, "all crumbs"),
        300
    );
}

#[test]
fn av1_every_prefix_decodes() {
    let Some(file) = testdata("av1-svc-l2t3-640x360.ivf") else {
        return;
    };
    let o = run_case(&Case {
        source: format!(
            "filesrc location={} ! ivfparse ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu",
            file.display()
        ),
        decoder: "av1dec",
        reference_decoder: None,
        max_crumb_size: 30_000,
        prefixes: (0..=10).collect(),
        gops: 1,
    });
    o.check_common(false);
}

/// Single-layer streams: one crumb per Segment, identical to the plain decode.
#[test]
fn single_layer_streams() {
    for (enc, dec) in [
        (
            "x264enc speed-preset=superfast key-int-max=30 bframes=0 ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au",
            "avdec_h264",
        ),
        (
            "x265enc speed-preset=ultrafast tune=zerolatency key-int-max=30 ! h265parse ! video/x-h265,stream-format=byte-stream,alignment=au",
            "avdec_h265",
        ),
        ("vp8enc deadline=1 keyframe-max-dist=30", "vp8dec"),
        ("vp9enc deadline=1 keyframe-max-dist=30", "vp9dec"),
        (
            "av1enc cpu-used=10 target-bitrate=300 keyframe-max-dist=30 ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu",
            "av1dec",
        ),
    ] {
        let o = run_case(&Case {
            source: format!("{} ! {enc}", test_src(60)),
            decoder: dec,
            reference_decoder: None,
            max_crumb_size: 1000,
            prefixes: vec![0, 1],
            gops: 1,
        });
        o.check_common(true);
        assert_eq!(o.get(1).len(), 60, "{enc}");
        assert!(
            o.crumbs_per_segment().iter().all(|&n| n == 1),
            "{enc}: {:?}",
            o.crumbs_per_segment()
        );
    }
}
