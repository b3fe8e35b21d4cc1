// SPDX-License-Identifier: MPL-2.0
//! GStreamer glue of svcsegmenter: caps and buffers in, crumbs out. The cutting itself
//! is `core::segmenter` and `core::partition`.

use std::sync::{Mutex, MutexGuard};

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::core::audio::{AudioJoin, DEFAULT_MAX_WAIT};
use crate::core::classify::classify;
use crate::core::partition::partition;
use crate::core::segmenter::{AudioFrame, Segment, Segmenter, SegmenterConfig};
use crate::core::{AccessUnit, Codec};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "svcsegmenter",
        gst::DebugColorFlags::empty(),
        Some("Layered video to Segments and Crumbs"),
    )
});

const DEFAULT_GOPS: u32 = 1;
const DEFAULT_MIN_GOPS: u32 = 1;
const DEFAULT_MAX_GOPS: u32 = 10;
const DEFAULT_SUCCESS_THRESHOLD: f64 = 0.8;
const DEFAULT_MAX_CRUMB_SIZE: u32 = 256 * 1024;
const DEFAULT_MAX_SEGMENT_DURATION: u64 = 60_000_000_000;
/// This many malformed buffers in a row, or before the first usable one, make the
/// stream unusable: an element error instead of silently dropping everything. Buffers
/// that parse but are dropped while waiting for a key frame do not break the row: a
/// stream whose only parsable buffers are stray "inter frames" (random bytes with VP8
/// caps) is garbage too.
const MAX_MALFORMED_IN_A_ROW: u32 = 50;

#[derive(Debug, Clone)]
struct Settings {
    gops: u32,
    min_gops: u32,
    max_gops: u32,
    success_threshold: f64,
    max_crumb_size: u32,
    max_segment_duration: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            gops: DEFAULT_GOPS,
            min_gops: DEFAULT_MIN_GOPS,
            max_gops: DEFAULT_MAX_GOPS,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
            max_crumb_size: DEFAULT_MAX_CRUMB_SIZE,
            max_segment_duration: DEFAULT_MAX_SEGMENT_DURATION,
        }
    }
}

impl Settings {
    fn segmenter_config(&self) -> SegmenterConfig {
        let clamp = |v: u32| v.min(u16::MAX as u32) as u16;
        SegmenterConfig {
            gops: clamp(self.gops),
            min_gops: clamp(self.min_gops),
            max_gops: clamp(self.max_gops),
            success_threshold: self.success_threshold,
            max_segment_duration: self.max_segment_duration,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    malformed: u64,
    malformed_in_a_row: u32,
    usable_seen: bool,
    crumbs: u64,
    bytes: u64,
}

struct State {
    segmenter: Segmenter,
    codec: Option<Codec>,
    src_caps_sent: bool,
    /// Frame duration from the caps' framerate, to timestamp streams without
    /// timestamps (raw elementary-stream files): Segments need durations.
    frame_duration: Option<u64>,
    frames_interpolated: u64,
    interpolated_next: u64,
    counters: Counters,
    /// Closed Segments waiting for the audio of their span (see `core::audio`).
    audio: AudioJoin,
    audio_caps_set: bool,
    audio_segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    /// Crumbs made but not pushed yet: pushed in order under `push_lock`, by
    /// whichever streaming thread (video or audio) comes first.
    outbox: Vec<Prepared>,
    /// The video's EOS, held while Segments wait for audio.
    eos: Option<gst::Event>,
}

impl State {
    fn new(settings: &Settings, audio: bool) -> Self {
        let mut join = AudioJoin::new(DEFAULT_MAX_WAIT);
        join.set_active(audio);
        State {
            audio: join,
            audio_caps_set: false,
            audio_segment: None,
            outbox: Vec::new(),
            eos: None,
            segmenter: Segmenter::new(settings.segmenter_config()),
            codec: None,
            src_caps_sent: false,
            frame_duration: None,
            frames_interpolated: 0,
            interpolated_next: 0,
            counters: Counters::default(),
        }
    }
}

pub struct SvcSegmenter {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    /// The requested `audio` pad, if any.
    audiopad: Mutex<Option<gst::Pad>>,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Serialises taking crumbs out of `State::outbox` and pushing them, so that two
    /// streaming threads never push Segments out of order. Lock order: `push_lock`,
    /// then `state`, then `settings`.
    push_lock: Mutex<()>,
}

fn codec_from_caps(caps: &gst::CapsRef) -> Option<Codec> {
    let s = caps.structure(0)?;
    Some(match s.name().as_str() {
        "video/x-h264" => Codec::H264,
        "video/x-h265" => Codec::H265,
        "video/x-av1" => Codec::Av1,
        "video/x-vp8" => Codec::Vp8,
        "video/x-vp9" => Codec::Vp9,
        _ => return None,
    })
}

/// Layer id vp8enc attaches when temporal scalability is on.
fn vp8_layer_id(buffer: &gst::BufferRef) -> Option<u8> {
    let meta = gst::meta::CustomMeta::from_buffer(buffer, "GstVP8Meta").ok()?;
    let s = meta.structure();
    if !s.get::<bool>("use-temporal-scaling").unwrap_or(true) {
        return None;
    }
    s.get::<u32>("layer-id")
        .ok()
        .or_else(|| s.get::<i32>("layer-id").ok().map(|v| v.max(0) as u32))
        .map(|v| v.min(u8::MAX as u32) as u8)
}

impl SvcSegmenter {
    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // Lock discipline: no message is posted while `state` is held (a bus sync
        // handler may read `stats`, which takes it).
        let state = self.state.lock().unwrap();
        let Some(codec) = state.codec else {
            drop(state);
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Buffer before caps"));
            return Err(gst::FlowError::NotNegotiated);
        };
        drop(state);
        let map = buffer.map_readable().map_err(|_| {
            gst::element_imp_error!(self, gst::ResourceError::Read, ("Cannot map buffer"));
            gst::FlowError::Error
        })?;
        let layer_id = if codec == Codec::Vp8 {
            vp8_layer_id(&buffer)
        } else {
            None
        };
        let classified = classify(codec, map.as_slice(), layer_id);
        let mut state = self.state.lock().unwrap();
        let classified = match classified {
            Ok(c) => c,
            Err(err) => {
                drop(map);
                return self.malformed(state, codec, &buffer, err.to_string());
            }
        };
        let keyframe = classified
            .keyframe
            .unwrap_or(!buffer.flags().contains(gst::BufferFlags::DELTA_UNIT));
        let (mut pts, mut dts) = (
            buffer.pts().map(|t| t.nseconds()),
            buffer.dts().map(|t| t.nseconds()),
        );
        let mut duration = buffer.duration().map(|t| t.nseconds());
        if let (None, Some(d)) = (pts, state.frame_duration) {
            // No presentation time (raw elementary streams): one access unit per frame
            // at the caps' framerate, in decode order.
            let t = state.interpolated_next;
            state.interpolated_next += d;
            state.frames_interpolated += 1;
            (pts, dts, duration) = (Some(t), Some(t), duration.or(Some(d)));
        }
        let au = AccessUnit {
            data: map.as_slice().to_vec(),
            pts,
            dts,
            duration,
            keyframe,
            classified,
        };
        drop(map);
        let closed = state.segmenter.push(au);
        if state.segmenter.synced() {
            // Taken into a Segment: the stream is usable.
            state.counters.malformed_in_a_row = 0;
            state.counters.usable_seen = true;
        }
        let mut ready = closed.map_or_else(Vec::new, |seg| state.audio.push_segment(seg));
        if let Some(t) = pts {
            ready.extend(state.audio.on_video_time(t));
        }
        self.queue(state, ready)
    }

    /// A buffer that does not parse: the Segment so far is output (it decodes up to
    /// here), the rest of its GOP is dropped, and cutting resumes at the next key frame.
    fn malformed(
        &self,
        mut state: MutexGuard<'_, State>,
        codec: Codec,
        buffer: &gst::Buffer,
        reason: String,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        state.counters.malformed += 1;
        state.counters.malformed_in_a_row += 1;
        if state.counters.malformed_in_a_row >= MAX_MALFORMED_IN_A_ROW {
            let what = if state.counters.usable_seen {
                "in a row"
            } else {
                "and nothing usable"
            };
            drop(state);
            gst::element_imp_error!(
                self,
                gst::StreamError::Decode,
                (
                    "Not a valid {} stream: {} malformed buffers {}",
                    codec.as_str(),
                    MAX_MALFORMED_IN_A_ROW,
                    what
                ),
                ["last error: {}", reason]
            );
            return Err(gst::FlowError::Error);
        }
        let closed = state.segmenter.resync();
        let ready = closed.map_or_else(Vec::new, |seg| state.audio.push_segment(seg));
        self.prepare_ready(&mut state, ready);
        drop(state);
        gst::element_imp_warning!(
            self,
            gst::StreamError::Decode,
            (
                "Dropped a malformed {} access unit ({}); resuming at the next key frame",
                codec.as_str(),
                reason
            ),
            ["pts {:?}, {} bytes", buffer.pts(), buffer.size()]
        );
        self.push_outbox()
    }

    /// The crumbs and messages of ready Segments, made under the state lock into the
    /// outbox; they are pushed and posted after it is released.
    fn prepare_ready(&self, state: &mut State, ready: Vec<Segment>) {
        if ready.is_empty() {
            return;
        }
        let max = self.settings.lock().unwrap().max_crumb_size as usize;
        for seg in ready {
            let p = self.prepare(state, &seg, max);
            state.outbox.push(p);
        }
    }

    fn queue(
        &self,
        mut state: MutexGuard<'_, State>,
        ready: Vec<Segment>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.prepare_ready(&mut state, ready);
        drop(state);
        self.push_outbox()
    }

    /// A closed Segment (or none) of the video: it goes at once without audio, or
    /// when the audio of its span is in.
    fn output(
        &self,
        mut state: MutexGuard<'_, State>,
        closed: Option<Segment>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let ready = closed.map_or_else(Vec::new, |seg| state.audio.push_segment(seg));
        self.queue(state, ready)
    }

    /// Pushes the outbox in order; then the held EOS once no Segment waits.
    fn push_outbox(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let _order = self.push_lock.lock().unwrap();
        let (prepared, eos) = {
            let mut state = self.state.lock().unwrap();
            let prepared = std::mem::take(&mut state.outbox);
            let eos = if state.audio.waiting() == 0 {
                state.eos.take()
            } else {
                None
            };
            (prepared, eos)
        };
        let res = self.push_prepared(prepared);
        if let Some(eos) = eos {
            self.srcpad.push_event(eos);
        }
        res
    }

    /// Cuts a Segment into crumb buffers and the message that describes it.
    fn prepare(&self, state: &mut State, seg: &Segment, max_crumb_size: usize) -> Prepared {
        let crumbs = partition(seg, max_crumb_size);
        let count = crumbs.len();
        let mut buffers = Vec::with_capacity(count);
        let mut bytes = 0u64;
        let mut base_bytes = 0u64;
        let mut audio_bytes = 0u64;
        let mut layers = Vec::new();
        // Each crumb is dropped once encoded: the Segment is not held a third time.
        for c in crumbs {
            let data = c.encode();
            bytes += data.len() as u64;
            if c.index == 1 {
                base_bytes = data.len() as u64;
                audio_bytes = c.audio_len() as u64;
            }
            if !layers.contains(&c.layer) {
                layers.push(c.layer);
            }
            let mut buf = gst::Buffer::from_mut_slice(data);
            {
                let b = buf.get_mut().unwrap();
                b.set_pts(seg.pts.map(gst::ClockTime::from_nseconds));
                b.set_duration(gst::ClockTime::from_nseconds(seg.duration));
                b.set_offset(seg.seq);
                b.set_offset_end(c.index as u64);
                if c.index > 1 {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            buffers.push(buf);
        }
        state.counters.crumbs += count as u64;
        state.counters.bytes += bytes;
        let layer_names: Vec<String> = layers.iter().map(|l| l.to_string()).collect();
        let mut s = gst::Structure::builder(crate::interface::SVCSEGMENTER_SEGMENT.name)
            .field("seq", seg.seq)
            .field("pts", seg.pts.unwrap_or(u64::MAX))
            .field("duration", seg.duration)
            .field("gops", seg.gops as u32)
            .field("layers", layers.len() as u32)
            .field("layer-names", gst::Array::new(layer_names))
            .field("crumbs", count as u32)
            .field("bytes", bytes)
            .field("base-bytes", base_bytes)
            .field("access-units", seg.aus.len() as u32)
            .field("starts-with-keyframe", seg.starts_with_keyframe);
        if let Some(a) = &seg.audio {
            // Only with audio: the message of a video-only channel stays as it was.
            s = s
                .field("audio-frames", a.frames.len() as u32)
                .field("audio-bytes", audio_bytes);
        }
        let msg = gst::message::Element::builder(
            crate::interface::SVCSEGMENTER_SEGMENT.checked(s.build()),
        )
        .src(&*self.obj())
        .build();
        gst::debug!(
            CAT,
            imp = self,
            "Segment {} : {} GOPs, {} crumbs, {} bytes",
            seg.seq,
            seg.gops,
            count,
            bytes
        );
        Prepared { buffers, msg }
    }

    fn ensure_src_caps(&self) {
        let mut state = self.state.lock().unwrap();
        if state.src_caps_sent {
            return;
        }
        state.src_caps_sent = true;
        drop(state);
        let caps = gst::Caps::builder("application/x-crumb")
            .field("version", crate::core::crumb::VERSION as i32)
            .build();
        self.srcpad.push_event(gst::event::Caps::new(&caps));
    }

    fn push_prepared(&self, prepared: Vec<Prepared>) -> Result<gst::FlowSuccess, gst::FlowError> {
        if prepared.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        self.ensure_src_caps();
        for p in prepared {
            let _ = self.obj().post_message(p.msg);
            for buf in p.buffers {
                self.srcpad.push(buf)?;
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(c) => {
                let caps = c.caps();
                let Some(codec) = codec_from_caps(caps) else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::WrongType,
                        ("Unsupported caps {}", caps)
                    );
                    return false;
                };
                let mut state = self.state.lock().unwrap();
                state.codec = Some(codec);
                state.frame_duration = caps
                    .structure(0)
                    .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
                    .filter(|f| f.numer() > 0 && f.denom() > 0)
                    .map(|f| 1_000_000_000u64 * f.denom() as u64 / f.numer() as u64);
                let closed = state.segmenter.set_caps(codec, caps.to_string());
                drop(state);
                self.ensure_src_caps();
                let state = self.state.lock().unwrap();
                self.output(state, closed).is_ok()
            }
            EventView::Eos(_) => {
                let mut state = self.state.lock().unwrap();
                let closed = state.segmenter.flush();
                let no_segments = state.segmenter.stats().segments == 0
                    && state.segmenter.stats().access_units > 0;
                let with_audio = state.audio.is_active();
                let mut ready = closed.map_or_else(Vec::new, |seg| state.audio.push_segment(seg));
                ready.extend(state.audio.video_ended());
                if with_audio {
                    // Held until the Segments waiting for audio are out.
                    state.eos = Some(event.clone());
                }
                let res = self.queue(state, ready);
                if no_segments {
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Demux,
                        ("Stream ended without a key frame: no Segment was made")
                    );
                }
                if let Err(err) = res {
                    gst::debug!(CAT, imp = self, "Flow {err:?} while draining");
                }
                if with_audio {
                    return true;
                }
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            EventView::FlushStop(_) => {
                let settings = self.settings.lock().unwrap().clone();
                let mut state = self.state.lock().unwrap();
                let codec = state.codec;
                let caps_sent = state.src_caps_sent;
                let frame_duration = state.frame_duration;
                let caps = state.segmenter.caps();
                let audio = state.audio.is_active();
                *state = State::new(&settings, audio);
                state.src_caps_sent = caps_sent;
                state.frame_duration = frame_duration;
                if let (Some(c), Some(caps)) = (codec, caps) {
                    state.codec = Some(c);
                    state.segmenter.set_caps(c, caps);
                }
                drop(state);
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        if let gst::EventView::CustomUpstream(ev) = event.view()
            && let Some(s) = ev
                .structure()
                .filter(|s| s.name() == crate::element::SUCCESS_RATIO_EVENT)
        {
            let Ok(rho) = s.get::<f64>("ratio") else {
                gst::warning!(CAT, imp = self, "Success-ratio event without a ratio: {s}");
                return false;
            };
            if !(0.0..=1.0).contains(&rho) {
                gst::warning!(CAT, imp = self, "Success ratio {rho} outside 0..1, ignored");
                return false;
            }
            let mut state = self.state.lock().unwrap();
            state.segmenter.on_success_ratio(rho);
            gst::debug!(
                CAT,
                imp = self,
                "rho {rho}: next Segment gets {} GOPs",
                state.segmenter.target_gops()
            );
            return true;
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    /// crumbsink's `crumbs-segment-limits` query (how long a Segment can be) is
    /// answered here; the rest goes the default way. Safe from the streaming thread:
    /// crumbs are pushed without the state lock held.
    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if query.type_() == gst::QueryType::Custom {
            let max = self.state.lock().unwrap().segmenter.max_duration();
            if crate::element::answer_segment_limits(query, max) {
                return true;
            }
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    /// A compressed audio frame on the `audio` pad.
    fn audio_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        // The video's segment maps the audio's running time into the video's
        // timeline, the one crumbs carry: two live sources, or a video encoder that
        // shifts its timestamps, still give one timeline.
        let video_segment = self
            .sinkpad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().cloned());
        let mut state = self.state.lock().unwrap();
        if !state.audio_caps_set {
            drop(state);
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("Audio buffer before audio caps")
            );
            return Err(gst::FlowError::NotNegotiated);
        }
        let to_video = |t: gst::ClockTime| -> Option<u64> {
            let running = match &state.audio_segment {
                Some(seg) => seg.to_running_time(t)?,
                None => t,
            };
            match &video_segment {
                Some(vs) => vs.position_from_running_time(running).map(|t| t.nseconds()),
                None => Some(running.nseconds()),
            }
        };
        let pts = buffer.pts().and_then(to_video);
        let data = buffer
            .map_readable()
            .map_err(|_| {
                gst::element_imp_error!(self, gst::ResourceError::Read, ("Cannot map buffer"));
                gst::FlowError::Error
            })?
            .to_vec();
        let ready = state.audio.push_frame(AudioFrame {
            data,
            pts,
            duration: buffer.duration().map(|d| d.nseconds()),
        });
        self.queue(state, ready)
    }

    fn audio_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(c) => {
                let caps = c.caps();
                if !caps.can_intersect(&crate::element::audio_caps()) {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::WrongType,
                        ("Unsupported audio caps {}", caps)
                    );
                    return false;
                }
                let mut state = self.state.lock().unwrap();
                state.audio.set_caps(caps.to_string());
                state.audio_caps_set = true;
                true
            }
            EventView::Segment(e) => {
                let seg = e.segment().downcast_ref::<gst::ClockTime>().cloned();
                if seg.is_none() {
                    gst::warning!(CAT, obj = pad, "Audio segment not in time: ignored");
                }
                self.state.lock().unwrap().audio_segment = seg;
                true
            }
            EventView::Eos(_) => {
                let mut state = self.state.lock().unwrap();
                let ready = state.audio.end();
                if let Err(err) = self.queue(state, ready) {
                    gst::debug!(CAT, imp = self, "Flow {err:?} at the audio's end");
                }
                true
            }
            // The crumb stream has one stream-start, segment, EOS and flush: the
            // video's.
            _ => true,
        }
    }

    fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let a = state.audio.stats();
        let s = state.segmenter.stats();
        crate::interface::SVCSEGMENTER_STATS.checked(
            gst::Structure::builder(crate::interface::SVCSEGMENTER_STATS.name)
                .field("access-units", s.access_units)
                .field("dropped-before-keyframe", s.dropped_before_keyframe)
                .field("malformed", state.counters.malformed)
                .field("segments", s.segments)
                .field("forced-cuts", s.forced_cuts)
                .field("parameter-sets-inserted", s.parameter_sets_inserted)
                .field("crumbs", state.counters.crumbs)
                .field("bytes", state.counters.bytes)
                .field("current-gops", state.segmenter.target_gops() as u32)
                .field("timestamps-interpolated", state.frames_interpolated)
                .field("last-success-ratio", s.last_success_ratio.unwrap_or(-1.0))
                .field("audio-frames", a.frames)
                .field("audio-bytes", a.bytes)
                .field("audio-frames-dropped", a.frames_dropped)
                .field("segments-not-waited", a.segments_not_waited)
                .build(),
        )
    }
}

struct Prepared {
    buffers: Vec<gst::Buffer>,
    msg: gst::Message,
}

#[glib::object_subclass]
impl ObjectSubclass for SvcSegmenter {
    const NAME: &'static str = "GstSvcSegmenter";
    type Type = super::SvcSegmenter;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|pad, parent, buffer| {
                SvcSegmenter::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                SvcSegmenter::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap())
            .event_function(|pad, parent, event| {
                SvcSegmenter::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                SvcSegmenter::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .build();
        let settings = Settings::default();
        let state = State::new(&settings, false);
        SvcSegmenter {
            sinkpad,
            srcpad,
            audiopad: Mutex::new(None),
            settings: Mutex::new(settings),
            state: Mutex::new(state),
            push_lock: Mutex::new(()),
        }
    }
}

impl ObjectImpl for SvcSegmenter {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("gops")
                    .nick("GOPs")
                    .blurb("Whole GOPs per Segment at the start (|G|); success-ratio events move it within min-gops..max-gops")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_GOPS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-gops")
                    .nick("Minimum GOPs")
                    .blurb("Fewest GOPs per Segment (|Gmin|)")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_MIN_GOPS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-gops")
                    .nick("Maximum GOPs")
                    .blurb("Most GOPs per Segment (|Gmax|)")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_MAX_GOPS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("success-threshold")
                    .nick("Success threshold")
                    .blurb("Success ratio (0-1) above which a Segment grows by one GOP; at or below it, it shrinks by one")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_SUCCESS_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-crumb-size")
                    .nick("Maximum crumb size")
                    .blurb("Enhancement-layer crumbs hold at most this many payload bytes (split at access units; 0 = one crumb per layer). Crumb 1 (headers + base layer) is never split")
                    .default_value(DEFAULT_MAX_CRUMB_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("max-segment-duration")
                    .nick("Maximum Segment duration")
                    .blurb("A GOP longer than this (ns) is cut without a key frame, bounding memory on streams with missing key frames")
                    .minimum(1_000_000)
                    .default_value(DEFAULT_MAX_SEGMENT_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(&crate::interface::SVCSEGMENTER_STATS.blurb())
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "gops" => settings.gops = value.get().expect("type checked upstream"),
            "min-gops" => settings.min_gops = value.get().expect("type checked upstream"),
            "max-gops" => settings.max_gops = value.get().expect("type checked upstream"),
            "success-threshold" => {
                settings.success_threshold = value.get().expect("type checked upstream")
            }
            "max-crumb-size" => {
                settings.max_crumb_size = value.get().expect("type checked upstream")
            }
            "max-segment-duration" => {
                settings.max_segment_duration = value.get().expect("type checked upstream")
            }
            _ => unimplemented!(),
        }
        let threshold = settings.success_threshold;
        // Lock order is state, then settings (see `prepare_closed`): release settings
        // before taking state.
        drop(settings);
        // Settings reach the segmenter when the element starts (READY -> PAUSED), and
        // the threshold at once.
        let mut state = self.state.lock().unwrap();
        state.segmenter.set_success_threshold(threshold);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "gops" => settings.gops.to_value(),
            "min-gops" => settings.min_gops.to_value(),
            "max-gops" => settings.max_gops.to_value(),
            "success-threshold" => settings.success_threshold.to_value(),
            "max-crumb-size" => settings.max_crumb_size.to_value(),
            "max-segment-duration" => settings.max_segment_duration.to_value(),
            "stats" => {
                drop(settings);
                self.stats().to_value()
            }
            _ => unimplemented!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).unwrap();
        obj.add_pad(&self.srcpad).unwrap();
    }
}

impl GstObjectImpl for SvcSegmenter {}

impl ElementImpl for SvcSegmenter {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "SVC Segmenter",
                "Codec/Muxer/Video",
                "Cuts a layered video stream into Segments of whole GOPs and each Segment into Crumbs by layer (crumb 1 = headers + base layer)",
                "crumbs developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let sink_caps = crate::element::video_caps();
            let src_caps = crate::element::crumb_caps();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &sink_caps,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "audio",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &crate::element::audio_caps(),
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &src_caps,
                )
                .unwrap(),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        _name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let mut audiopad = self.audiopad.lock().unwrap();
        if audiopad.is_some() {
            gst::warning!(CAT, imp = self, "Only one audio pad");
            return None;
        }
        let pad = gst::Pad::builder_from_template(templ)
            .name("audio")
            .chain_function(|_pad, parent, buffer| {
                SvcSegmenter::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.audio_chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                SvcSegmenter::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.audio_event(pad, event),
                )
            })
            .build();
        *audiopad = Some(pad.clone());
        drop(audiopad);
        let ready = self.state.lock().unwrap().audio.set_active(true);
        debug_assert!(ready.is_empty());
        if self.obj().current_state() > gst::State::Ready {
            let _ = pad.set_active(true);
        }
        self.obj().add_pad(&pad).ok()?;
        Some(pad)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        if self.audiopad.lock().unwrap().take().as_ref() != Some(pad) {
            return;
        }
        let mut state = self.state.lock().unwrap();
        // Segments waiting for audio go now, with what they have.
        let ready = state.audio.set_active(false);
        if let Err(err) = self.queue(state, ready) {
            gst::debug!(CAT, imp = self, "Flow {err:?} releasing the audio pad");
        }
        let _ = pad.set_active(false);
        let _ = self.obj().remove_pad(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        // min-gops > max-gops is an error when leaving NULL and again when starting
        // (READY still lets them change), never a silent choice.
        if matches!(
            transition,
            gst::StateChange::NullToReady | gst::StateChange::ReadyToPaused
        ) {
            let s = self.settings.lock().unwrap().clone();
            if let Err(e) =
                crate::properties::ordered("min-gops", s.min_gops, "max-gops", s.max_gops)
            {
                self.post_error_message(e);
                return Err(gst::StateChangeError);
            }
        }
        if transition == gst::StateChange::ReadyToPaused {
            let settings = self.settings.lock().unwrap().clone();
            let audio = self.audiopad.lock().unwrap().is_some();
            *self.state.lock().unwrap() = State::new(&settings, audio);
        }
        self.parent_change_state(transition)
    }
}
