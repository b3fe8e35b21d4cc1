#!/usr/bin/python3
# SPDX-License-Identifier: MPL-2.0
"""A viewer application built on crumbsrc with PyGObject: it plays a crumbs channel,
prints crumbsrc's per-Segment messages and, periodically, its `stats`, and zaps
between channels by setting `location` while playing.

Debian 12: apt-get install python3-gi gir1.2-gstreamer-1.0 (scripts/setup does), and
run it with Debian's /usr/bin/python3. The plugin is found through GST_PLUGIN_PATH
(the folder holding libgstcrumbs.so); unset, the repository's target/release, then
target/debug, are tried.

    examples/viewer.py http://127.0.0.1:8080/news http://127.0.0.1:8080/sport \\
        --switch-every 20

Each line printed is one event, `kind key=value ...`, for people and scripts alike.
"""

import argparse
import json
import os
import signal
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

# The plugin must be on the path before GStreamer starts.
if "GST_PLUGIN_PATH" not in os.environ:
    for profile in ("release", "debug"):
        folder = os.path.join(HERE, "..", "target", profile)
        if os.path.exists(os.path.join(folder, "libgstcrumbs.so")):
            os.environ["GST_PLUGIN_PATH"] = os.path.normpath(folder)
            break

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

# The stats fields printed (all of them: gst-inspect-1.0 crumbsrc, plugins/crumbs.json).
STATS_FIELDS = (
    "segments-successful",
    "segments-failed",
    "segments-skipped",
    "mean-d",
    "d",
    "rate",
    "bytes-downloaded",
    "bytes-uploaded",
    "bytes-from-super-seed",
    "bytes-from-peers",
    "channel-switches",
)

SINKS = {
    # A window on a desktop; needs a display.
    "auto": "autovideosink",
    # Headless: frames are decoded and dropped.
    "fake": "fakesink",
    # Headless, as an application would take frames (e.g. to analyse them).
    "app": "appsink emit-signals=false drop=true max-buffers=4",
}


def say(kind, **fields):
    """One event line: `kind key=value ...`."""
    parts = [kind] + ["%s=%s" % (k.replace("_", "-"), v) for k, v in fields.items()]
    print(" ".join(parts), flush=True)


def channel_caps(url, wait=10.0):
    """The caps a channel announces in its window (GET URL, crumbs' channel API); a
    channel just started has none until its first Segment: waited for `wait` s."""
    end = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                caps = json.load(r).get("caps")
        except (OSError, ValueError) as e:
            raise SystemExit("cannot read channel %s: %s" % (url, e))
        if caps:
            return Gst.Caps.from_string(caps)
        if time.monotonic() > end:
            raise SystemExit("channel %s announced no caps in %.0f s (nothing published)"
                             % (url, wait))
        time.sleep(0.2)


def choose_decoder(urls, name):
    """A decoder for every channel of `urls`: one element stays in the pipeline across
    switches and takes the new channel's caps (another size, another stream header).
    decodebin does not: it refuses a caps change of its stream once set up."""
    caps = [(u, channel_caps(u)) for u in urls]
    if name:
        factory = Gst.ElementFactory.find(name)
        if factory is None:
            raise SystemExit("no element %s" % name)
    else:
        decoders = Gst.ElementFactory.list_get_elements(
            Gst.ELEMENT_FACTORY_TYPE_DECODER | Gst.ELEMENT_FACTORY_TYPE_MEDIA_VIDEO,
            Gst.Rank.MARGINAL)
        decoders = Gst.ElementFactory.list_filter(
            decoders, caps[0][1], Gst.PadDirection.SINK, True)
        if not decoders:
            raise SystemExit("no decoder for %s's caps %s" % caps[0])
        decoders.sort(key=lambda f: f.get_rank(), reverse=True)
        factory = decoders[0]
    for url, c in caps:
        if not factory.can_sink_any_caps(c):
            raise SystemExit("decoder %s cannot take channel %s (%s): zap between "
                             "channels of one codec" % (factory.get_name(), url,
                                                         c.get_structure(0).get_name()))
    return factory.get_name()


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Watch crumbs channels with crumbsrc, zapping between them.",
    )
    p.add_argument("urls", nargs="+", metavar="URL",
                   help="channel URLs http://HOST:PORT/CHANNEL, in zapping order")
    zap = p.add_mutually_exclusive_group()
    zap.add_argument("--switch-every", type=float, metavar="SECONDS",
                     help="switch to the next channel every SECONDS")
    zap.add_argument("--switch-after", type=int, metavar="N",
                     help="switch to the next channel after N Segments of the current one")
    p.add_argument("--sink", choices=sorted(SINKS), default="auto",
                   help="video sink: auto (a window, the default), fake or app (headless)")
    p.add_argument("--no-sync", action="store_true",
                   help="do not play at real-time pace (sink sync=false)")
    p.add_argument("--stats-interval", type=float, default=2.0, metavar="SECONDS",
                   help="print crumbsrc's stats this often (default 2; 0 = never)")
    p.add_argument("--segments", type=int, metavar="N",
                   help="quit after N Segments in all")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="quit after SECONDS")
    p.add_argument("--decoder", metavar="FACTORY",
                   help="video decoder element (default: the best ranked one for the "
                        "channels' caps, read from their windows)")
    p.add_argument("--max-crumbs", type=int, default=0, metavar="D",
                   help="crumbsrc max-crumbs (0 = no cap, 1 = base layer only)")
    args = p.parse_args(argv)
    if len(args.urls) < 2 and (args.switch_every or args.switch_after):
        p.error("switching needs at least two channel URLs")
    return args


class Viewer:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.status = 0
        self.channel = 0
        # The channel crumbsrc plays (it changes at crumbsrc-switched, not when asked).
        self.playing = args.urls[0]
        self.switch_pending = False
        self.segments = 0
        self.segments_here = 0
        if Gst.ElementFactory.find("crumbsrc") is None:
            raise SystemExit(
                "crumbsrc not found: set GST_PLUGIN_PATH to the folder holding "
                "libgstcrumbs.so (cargo build --release: target/release)")
        sink = SINKS[args.sink]
        if args.no_sync:
            sink += " sync=false"
        decoder = choose_decoder(args.urls, args.decoder)
        say("decoder", name=decoder)
        # crumbsrc's audio pad, when the channel has audio, is left unlinked, which
        # crumbsrc allows.
        self.pipeline = Gst.parse_launch(
            "crumbsrc name=src max-crumbs=%d ! %s ! videoconvert ! %s name=sink"
            % (args.max_crumbs, decoder, sink))
        self.src = self.pipeline.get_by_name("src")
        self.src.set_property("location", args.urls[0])
        # The decoded size, at each caps event reaching the sink.
        pad = self.pipeline.get_by_name("sink").get_static_pad("sink")
        pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, self.on_sink_event)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)

    def run(self):
        say("playing", url=self.args.urls[0])
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            # The error message on the bus says why.
            self.status = 1
        if self.args.stats_interval > 0:
            GLib.timeout_add(int(self.args.stats_interval * 1000), self.print_stats)
        if self.args.switch_every:
            GLib.timeout_add(int(self.args.switch_every * 1000), self.on_switch_timer)
        if self.args.duration:
            GLib.timeout_add(int(self.args.duration * 1000), self.quit)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self.quit)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, self.quit)
        if self.status == 0:
            self.loop.run()
        self.print_stats()
        self.pipeline.set_state(Gst.State.NULL)
        return self.status

    def quit(self, *_):
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def switch(self):
        self.channel = (self.channel + 1) % len(self.args.urls)
        self.switch_pending = True
        url = self.args.urls[self.channel]
        say("switching", to=url)
        # crumbsrc leaves its channel and joins this one, base layer first; it posts
        # crumbsrc-switched once done.
        self.src.set_property("location", url)

    def on_switch_timer(self):
        self.switch()
        return GLib.SOURCE_CONTINUE

    def print_stats(self):
        st = self.src.get_property("stats")
        say("stats", **{f.replace("-", "_"): fmt(st.get_value(f)) for f in STATS_FIELDS})
        return GLib.SOURCE_CONTINUE

    def on_sink_event(self, _pad, info):
        event = info.get_event()
        if event.type == Gst.EventType.CAPS:
            s = event.parse_caps().get_structure(0)
            say("video", width=s.get_value("width"), height=s.get_value("height"))
        return Gst.PadProbeReturn.OK

    def on_message(self, _bus, msg):
        if msg.type == Gst.MessageType.ELEMENT and msg.src == self.src:
            self.on_crumbsrc_message(msg.get_structure())
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            say("error", source=msg.src.get_name(), message=repr(err.message),
                debug=repr(debug))
            self.status = 1
            self.loop.quit()
        elif msg.type == Gst.MessageType.WARNING:
            err, _ = msg.parse_warning()
            say("warning", source=msg.src.get_name(), message=repr(err.message))
        elif msg.type == Gst.MessageType.EOS:
            # crumbsrc ends the stream after stall-timeout without a sign of life.
            say("eos")
            self.loop.quit()

    def on_crumbsrc_message(self, s):
        name = s.get_name()
        if name == "crumbsrc-segment":
            self.segments += 1
            self.segments_here += 1
            say("segment", url=self.playing,
                **{f.replace("-", "_"): fmt(s.get_value(f)) for f in (
                    "seq", "success", "skipped", "d", "crumbs-total", "bytes-output",
                    "bytes-from-super-seed", "bytes-from-peers", "deadline-margin")})
            if self.args.segments and self.segments >= self.args.segments:
                self.loop.quit()
            elif (self.args.switch_after and not self.switch_pending
                  and self.segments_here >= self.args.switch_after):
                self.switch()
        elif name == "crumbsrc-switched":
            self.playing = s.get_value("new-location")
            self.switch_pending = False
            self.segments_here = 0
            say("switched", old=s.get_value("old-location"), new=self.playing)
        else:
            # crumbsrc-channel-restarted, crumbsrc-stalled: as GStreamer prints them.
            say("message", structure=s.to_string())


def fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "%.1f" % v
    return str(v)


def main(argv):
    args = parse_args(argv)
    Gst.init(None)
    return Viewer(args).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
