// SPDX-License-Identifier: MPL-2.0
//! What the elements share: caps, the success-ratio event between crumbsink and
//! svcsegmenter, and turning reassembled access units into buffers. Element folders
//! use this module and `core`, never each other.

use gst::glib;
use gst::prelude::*;

/// Caps of crumbs between elements (one crumb per buffer, format in docs/crumb-format.md).
pub fn crumb_caps() -> gst::Caps {
    gst::Caps::builder("application/x-crumb").build()
}

/// The layered video formats svcsegmenter takes and crumbjoin gives back.
pub fn video_caps() -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    {
        let caps = caps.get_mut().unwrap();
        for name in ["video/x-h264", "video/x-h265"] {
            caps.append_structure(
                gst::Structure::builder(name)
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            );
        }
        caps.append_structure(
            gst::Structure::builder("video/x-av1")
                .field("stream-format", "obu-stream")
                .field("alignment", "tu")
                .build(),
        );
        caps.append_structure(gst::Structure::new_empty("video/x-vp8"));
        caps.append_structure(gst::Structure::new_empty("video/x-vp9"));
    }
    caps
}

/// The compressed audio svcsegmenter takes beside the video and crumbjoin and
/// crumbsrc give back: Opus and AAC, one frame per buffer.
pub fn audio_caps() -> gst::Caps {
    gst::Caps::builder_full()
        .structure(gst::Structure::new_empty("audio/x-opus"))
        .structure(
            gst::Structure::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .build(),
        )
        .build()
}

/// Name of the custom upstream event that carries the success ratio rho to
/// svcsegmenter (crumbsink sends it once per Segment).
pub const SUCCESS_RATIO_EVENT: &str = "crumbs-success-ratio";

/// Builds the upstream event carrying rho (0.0..=1.0) for Segment `seq`.
pub fn success_ratio_event(rho: f64, seq: u64) -> gst::Event {
    gst::event::CustomUpstream::new(
        gst::Structure::builder(SUCCESS_RATIO_EVENT)
            .field("ratio", rho)
            .field("seq", seq)
            .build(),
    )
}

/// Name of the custom upstream query crumbsink asks svcsegmenter with: how long a
/// Segment can be (field `max-duration`, ns), which the window gives players.
pub const SEGMENT_LIMITS_QUERY: &str = "crumbs-segment-limits";

/// Asks upstream of `pad` how long a Segment can be (ns); `None` when no
/// svcsegmenter answers (another source of crumbs) or it has cut no whole GOP yet.
pub fn query_max_duration(pad: &gst::Pad) -> Option<u64> {
    let mut q = gst::query::Custom::new(gst::Structure::new_empty(SEGMENT_LIMITS_QUERY));
    if !pad.peer_query(&mut q) {
        return None;
    }
    q.structure()?.get::<u64>("max-duration").ok()
}

/// Answers [`SEGMENT_LIMITS_QUERY`] when `query` is one; returns whether it was.
pub fn answer_segment_limits(query: &mut gst::QueryRef, max_duration: Option<u64>) -> bool {
    let ours = query.type_() == gst::QueryType::Custom
        && query
            .structure()
            .is_some_and(|s| s.name() == SEGMENT_LIMITS_QUERY);
    let (true, Some(max)) = (ours, max_duration) else {
        return false;
    };
    query.structure_mut().set("max-duration", max);
    true
}

/// The caps a stock decoder takes for a reassembled stream. h264parse advertises
/// `profile=scalable-*` when it sees a subset SPS; openh264dec refuses those caps but
/// decodes the stream (highest layer present) when told its base profile, and other
/// decoders ignore the SVC NAL units: so the scalable profiles are named by their base.
pub fn output_caps(caps: &str) -> Result<gst::Caps, glib::BoolError> {
    let mut caps: gst::Caps = caps
        .parse()
        .map_err(|_| glib::bool_error!("crumb carries unparsable caps '{}'", caps))?;
    {
        let caps = caps.make_mut();
        for s in caps.iter_mut() {
            if s.name() != "video/x-h264" {
                continue;
            }
            let base = match s.get::<&str>("profile") {
                Ok("scalable-baseline") | Ok("scalable-constrained-baseline") => Some("baseline"),
                Ok("scalable-high")
                | Ok("scalable-constrained-high")
                | Ok("scalable-high-intra") => Some("high"),
                _ => None,
            };
            if let Some(p) = base {
                s.set("profile", p);
            }
        }
    }
    Ok(caps)
}

/// Adds the sometimes pad `audio` to a crumbjoin or crumbsrc: active, with a
/// stream-start of the video's group, the audio caps and `segment` stored as sticky
/// events, so that what pad-added links receives them before the first frame. A live
/// source (crumbsrc) gives its `latency`: the pad answers the latency query as `src`
/// does, so the audio branch is delayed like the video's.
pub fn add_audio_pad(
    element: &gst::Element,
    caps: &gst::Caps,
    segment: gst::Event,
    group: Option<gst::GroupId>,
    latency: Option<gst::ClockTime>,
) -> Result<gst::Pad, glib::BoolError> {
    let templ = element
        .pad_template("audio")
        .ok_or_else(|| glib::bool_error!("no audio pad template"))?;
    let pad = gst::Pad::builder_from_template(&templ)
        .name("audio")
        .query_function(move |pad, parent, query| {
            if let (Some(l), gst::QueryViewMut::Latency(q)) = (latency, query.view_mut()) {
                q.set(true, l, gst::ClockTime::NONE);
                return true;
            }
            gst::Pad::query_default(pad, parent, query)
        })
        .build();
    pad.set_active(true)?;
    let stream_id = pad.create_stream_id(element, Some("audio"));
    let mut start = gst::event::StreamStart::builder(stream_id.as_str());
    if let Some(g) = group {
        start = start.group_id(g);
    }
    pad.push_event(start.build());
    pad.push_event(gst::event::Caps::new(caps));
    pad.push_event(segment);
    element.add_pad(&pad)?;
    element.no_more_pads();
    Ok(pad)
}

/// An audio buffer pushed on the `audio` pad: a branch nobody linked is not an error
/// (a viewer may want the picture only).
pub fn audio_flow(
    res: Result<gst::FlowSuccess, gst::FlowError>,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    match res {
        Err(gst::FlowError::NotLinked) => Ok(gst::FlowSuccess::Ok),
        r => r,
    }
}

/// A reassembled access unit as a buffer; `time` maps the channel's timestamps (ns) to
/// the output timeline (identity for crumbjoin, running time for the live crumbsrc).
pub fn au_buffer(
    au: crate::core::reassembly::OutputAu,
    discont: bool,
    time: impl Fn(u64) -> gst::ClockTime,
) -> gst::Buffer {
    let mut buf = gst::Buffer::from_mut_slice(au.data);
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(au.pts.map(&time));
        b.set_dts(au.dts.map(&time));
        b.set_duration(au.duration.map(gst::ClockTime::from_nseconds));
        let mut flags = gst::BufferFlags::empty();
        if !au.keyframe {
            flags |= gst::BufferFlags::DELTA_UNIT;
        }
        if discont {
            flags |= gst::BufferFlags::DISCONT;
        }
        b.set_flags(flags);
    }
    buf
}
