// SPDX-License-Identifier: MPL-2.0
//! `crumbjoin`: crumbs in, the reassembled stream out. `max-crumbs` keeps a prefix.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct CrumbJoin(ObjectSubclass<imp::CrumbJoin>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "crumbjoin",
        gst::Rank::NONE,
        CrumbJoin::static_type(),
    )
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
pub(crate) fn add_audio_pad(
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
pub(crate) fn audio_flow(
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
