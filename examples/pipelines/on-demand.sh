#!/bin/sh
# On-demand playback of an archived channel (crumbsink archive=true) from Segment 0.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m crumbsrc location="${1:-http://127.0.0.1:8080/live}" start="${2:-0}" ! vp8dec ! videoconvert ! autovideosink
