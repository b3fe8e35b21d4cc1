// SPDX-License-Identifier: MPL-2.0
//! GStreamer glue of crumbjoin; the reassembly is `core::reassembly`.

use std::sync::Mutex;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::sync::LazyLock;

use crate::core::crumb::Crumb;
use crate::core::reassembly::{Output, Reassembler};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "crumbjoin",
        gst::DebugColorFlags::empty(),
        Some("Crumbs to a stream"),
    )
});

const DEFAULT_MAX_CRUMBS: u32 = 0;

#[derive(Debug, Clone, Default)]
struct Settings {
    max_crumbs: u32,
}

#[derive(Debug, Default)]
struct State {
    reassembler: Reassembler,
    malformed: u64,
    segment_sent: bool,
}

pub struct CrumbJoin {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    /// The sometimes pad `audio`, added at the first crumb 1 that carries audio.
    audiopad: Mutex<Option<gst::Pad>>,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

fn max_crumbs(settings: &Settings) -> u16 {
    settings.max_crumbs.min(u16::MAX as u32) as u16
}

impl CrumbJoin {
    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let crumb = {
            let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
            Crumb::decode(map.as_slice())
        };
        let mut state = self.state.lock().unwrap();
        let crumb = match crumb {
            Ok(c) => c,
            Err(err) => {
                // A bad crumb is dropped: its Segment then plays a shorter prefix (or is
                // skipped), the output stays clean.
                state.malformed += 1;
                drop(state);
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Demux,
                    ("Dropped a malformed crumb: {}", err),
                    ["offset {}, {} bytes", buffer.offset(), buffer.size()]
                );
                return Ok(gst::FlowSuccess::Ok);
            }
        };
        let out = state.reassembler.push(crumb);
        let outcomes = state.reassembler.take_outcomes();
        drop(state);
        self.post_outcomes(outcomes);
        self.push_outputs(out)
    }

    fn post_outcomes(&self, outcomes: Vec<crate::core::reassembly::SegmentOutcome>) {
        for o in outcomes {
            let msg = gst::message::Element::builder(
                crate::interface::CRUMBJOIN_SEGMENT.checked(
                    gst::Structure::builder(crate::interface::CRUMBJOIN_SEGMENT.name)
                        .field("seq", o.seq)
                        .field("d", o.d as u32)
                        .field("crumbs-total", o.crumbs_total as u32)
                        .field("access-units", o.access_units as u32)
                        .build(),
                ),
            )
            .src(&*self.obj())
            .build();
            let _ = self.obj().post_message(msg);
        }
    }

    fn push_outputs(&self, out: Vec<Output>) -> Result<gst::FlowSuccess, gst::FlowError> {
        for o in out {
            match o {
                Output::Caps(caps) => {
                    let caps = match crate::element::output_caps(&caps) {
                        Ok(c) => c,
                        Err(err) => {
                            gst::element_imp_error!(self, gst::StreamError::Format, ("{}", err));
                            return Err(gst::FlowError::NotNegotiated);
                        }
                    };
                    gst::debug!(CAT, imp = self, "Output caps {caps}");
                    self.srcpad.push_event(gst::event::Caps::new(&caps));
                    self.ensure_segment();
                }
                Output::Gap { pts, duration } => {
                    // Before the first caps there is nothing to play yet: no gap.
                    if !self.srcpad.has_current_caps() {
                        continue;
                    }
                    self.ensure_segment();
                    let ev = gst::event::Gap::builder(gst::ClockTime::from_nseconds(pts))
                        .duration(gst::ClockTime::from_nseconds(duration))
                        .build();
                    // A lost Segment is lost for both: one gap on each pad.
                    if let Some(audio) = self.audiopad.lock().unwrap().clone() {
                        audio.push_event(ev.clone());
                    }
                    self.srcpad.push_event(ev);
                }
                Output::Au { au, discont } => {
                    let buf = crate::element::au_buffer(au, discont, gst::ClockTime::from_nseconds);
                    self.srcpad.push(buf)?;
                }
                Output::AudioCaps(caps) => self.audio_caps(&caps)?,
                Output::Audio { frame, discont } => {
                    let Some(audio) = self.audiopad.lock().unwrap().clone() else {
                        continue;
                    };
                    let buf =
                        crate::element::au_buffer(frame, discont, gst::ClockTime::from_nseconds);
                    crate::element::audio_flow(audio.push(buf))?;
                }
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// The audio's caps: the first ones add the `audio` pad, later ones are a caps
    /// change on it.
    fn audio_caps(&self, caps: &str) -> Result<(), gst::FlowError> {
        let caps: gst::Caps = match caps.parse() {
            Ok(c) => c,
            Err(_) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("crumb carries unparsable audio caps '{}'", caps)
                );
                return Err(gst::FlowError::NotNegotiated);
            }
        };
        let mut audiopad = self.audiopad.lock().unwrap();
        if let Some(pad) = audiopad.as_ref() {
            let pad = pad.clone();
            drop(audiopad);
            pad.push_event(gst::event::Caps::new(&caps));
            return Ok(());
        }
        self.ensure_segment();
        let segment = self
            .srcpad
            .sticky_event::<gst::event::Segment>(0)
            .map(gst::Event::from)
            .unwrap_or_else(|| {
                gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())
            });
        let group = self
            .sinkpad
            .sticky_event::<gst::event::StreamStart>(0)
            .and_then(|e| e.group_id());
        let pad =
            crate::element::add_audio_pad(self.obj().upcast_ref(), &caps, segment, group, None)
                .map_err(|err| {
                    gst::element_imp_error!(self, gst::CoreError::Pad, ("{}", err));
                    gst::FlowError::Error
                })?;
        gst::debug!(CAT, imp = self, "Audio pad with caps {caps}");
        *audiopad = Some(pad);
        Ok(())
    }

    /// Upstream's segment event is held until caps are known (a segment event must
    /// follow caps); this sends a default time segment if upstream sent none.
    fn ensure_segment(&self) {
        let mut state = self.state.lock().unwrap();
        if state.segment_sent {
            return;
        }
        state.segment_sent = true;
        drop(state);
        let ev = self
            .sinkpad
            .sticky_event::<gst::event::Segment>(0)
            .map(gst::Event::from)
            .unwrap_or_else(|| {
                gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())
            });
        self.srcpad.push_event(ev);
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            // Our caps come from crumb 1, not from upstream.
            EventView::Caps(_) => true,
            EventView::Segment(_) => {
                let sent = self.state.lock().unwrap().segment_sent;
                if sent {
                    gst::Pad::event_default(pad, Some(&*self.obj()), event)
                } else {
                    true
                }
            }
            EventView::Eos(_) => {
                let mut state = self.state.lock().unwrap();
                let out = state.reassembler.finish();
                let outcomes = state.reassembler.take_outcomes();
                let nothing = state.reassembler.stats().segments_output == 0;
                drop(state);
                self.post_outcomes(outcomes);
                let _ = self.push_outputs(out);
                if nothing && !self.srcpad.has_current_caps() {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Demux,
                        ("No Segment could be played: no crumb 1 was received")
                    );
                    return false;
                }
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            EventView::FlushStop(_) => {
                self.state.lock().unwrap().reassembler.reset();
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let s = state.reassembler.stats();
        crate::interface::CRUMBJOIN_STATS.checked(
            gst::Structure::builder(crate::interface::CRUMBJOIN_STATS.name)
                .field("crumbs-received", s.crumbs_received)
                .field("crumbs-late", s.crumbs_late)
                .field("crumbs-malformed", state.malformed)
                .field("segments-output", s.segments_output)
                .field("segments-skipped", s.segments_skipped)
                .field("access-units-output", s.access_units_output)
                .field(
                    "access-units-dropped-waiting-keyframe",
                    s.access_units_dropped_waiting_keyframe,
                )
                .build(),
        )
    }
}

#[glib::object_subclass]
impl ObjectSubclass for CrumbJoin {
    const NAME: &'static str = "GstCrumbJoin";
    type Type = super::CrumbJoin;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|pad, parent, buffer| {
                CrumbJoin::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                CrumbJoin::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap()).build();
        CrumbJoin {
            sinkpad,
            srcpad,
            audiopad: Mutex::new(None),
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State {
                reassembler: Reassembler::new(0),
                ..Default::default()
            }),
        }
    }
}

impl ObjectImpl for CrumbJoin {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("max-crumbs")
                    .nick("Maximum crumbs")
                    .blurb("Keep at most this many crumbs of each Segment, as the longest complete prefix 1..d (0 = all; 1 = headers + base layer only)")
                    .maximum(u16::MAX as u32)
                    .default_value(DEFAULT_MAX_CRUMBS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(&crate::interface::CRUMBJOIN_STATS.blurb())
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "max-crumbs" => {
                let mut settings = self.settings.lock().unwrap();
                settings.max_crumbs = value.get().expect("type checked upstream");
                let m = max_crumbs(&settings);
                self.state.lock().unwrap().reassembler.set_max_crumbs(m);
            }
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "max-crumbs" => self.settings.lock().unwrap().max_crumbs.to_value(),
            "stats" => self.stats().to_value(),
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

impl GstObjectImpl for CrumbJoin {}

impl ElementImpl for CrumbJoin {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Crumb Joiner",
                "Codec/Demuxer/Video",
                "Reassembles crumbs into the layered video stream, keeping the longest complete prefix of each Segment",
                "crumbs developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &crate::element::crumb_caps(),
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &crate::element::video_caps(),
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "audio",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &crate::element::audio_caps(),
                )
                .unwrap(),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let m = max_crumbs(&self.settings.lock().unwrap());
            *self.state.lock().unwrap() = State {
                reassembler: Reassembler::new(m),
                ..Default::default()
            };
        }
        let res = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady
            && let Some(pad) = self.audiopad.lock().unwrap().take()
        {
            // Like a demuxer: the next run adds it again if its crumbs carry audio.
            let _ = pad.set_active(false);
            let _ = self.obj().remove_pad(&pad);
        }
        Ok(res)
    }
}
