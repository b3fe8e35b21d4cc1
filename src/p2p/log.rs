// SPDX-License-Identifier: MPL-2.0
//! librqbit's `tracing` events into the GStreamer debug log, category
//! `crumbs-bittorrent`, so that `GST_DEBUG=crumbs*:5` shows the BitTorrent side
//! (handshakes, requests, choking, tracker answers) beside the elements' own logs.
//!
//! A `tracing` subscriber is process-wide: [`install`] sets ours only when the
//! application has not set one (an application with its own subscriber keeps it and
//! sees librqbit's events there). Events cost one threshold check while the category
//! is below their level, so a quiet log costs nearly nothing.

use std::fmt::Write as _;

use gst::glib;
use gst::log::DebugLogger as _;
use std::sync::LazyLock;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};

pub static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "crumbs-bittorrent",
        gst::DebugColorFlags::empty(),
        Some("librqbit: the BitTorrent side of crumbs"),
    )
});

/// GStreamer's level for a `tracing` level.
fn gst_level(level: &Level) -> gst::DebugLevel {
    match *level {
        Level::ERROR => gst::DebugLevel::Error,
        Level::WARN => gst::DebugLevel::Warning,
        Level::INFO => gst::DebugLevel::Info,
        Level::DEBUG => gst::DebugLevel::Debug,
        Level::TRACE => gst::DebugLevel::Trace,
    }
}

/// Fields as `name=value`, the message first and bare.
#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

/// The layer: spans keep their formatted fields; an event is logged with the names
/// and fields of the spans it happened in (`torrent{id=3}:peer{addr=..}: message`).
struct GstLayer;

impl<S> Layer<S> for GstLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, _meta: &'static Metadata<'static>) -> Interest {
        // Asked again at each event and span: the threshold can change while running
        // (`gst_debug_set_threshold_for_name`, the GST_DEBUG of a later init).
        Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        // A span is kept only while the category logs its level, like an event. A kept
        // span costs a slot in the registry's slab, and every slot ever used keeps its
        // extensions map after the span closed: librqbit opens spans per torrent, peer
        // and connection (a few every second in a channel), and the slab has a shard per
        // thread: heaptrack saw the registry grow from 0.8 to 1.5 MB in a channel's first
        // 50 minutes (0.4 to 0.75 MB in a client), with nothing logged. A span opened
        // while its level was off stays off (events in it lack its name and fields).
        CAT.above_threshold(gst_level(meta.level()))
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = gst_level(meta.level());
        if !CAT.above_threshold(level) {
            return;
        }
        let mut text = String::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let ext = span.extensions();
                match ext.get::<Fields>() {
                    Some(f) if !f.0.is_empty() => {
                        let _ = write!(text, "{}{{{}}}:", span.name(), f.0);
                    }
                    _ => {
                        let _ = write!(text, "{}:", span.name());
                    }
                }
            }
            if !text.is_empty() {
                text.push(' ');
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        text.push_str(&fields.0);
        CAT.log_literal(
            None::<&glib::Object>,
            level,
            glib::GString::from(meta.file().unwrap_or(meta.target())).as_gstr(),
            meta.module_path().unwrap_or(meta.target()),
            meta.line().unwrap_or(0),
            glib::GString::from(text).as_gstr(),
        );
    }
}

/// Sends `tracing` events (librqbit's) to [`CAT`], unless the process already has a
/// global subscriber. Idempotent.
pub fn install() {
    static INSTALLED: LazyLock<bool> = LazyLock::new(|| {
        LazyLock::force(&CAT);
        tracing::subscriber::set_global_default(Registry::default().with(GstLayer)).is_ok()
    });
    if !*INSTALLED {
        gst::debug!(
            CAT,
            "the application has its own tracing subscriber: librqbit logs go there"
        );
    }
}
