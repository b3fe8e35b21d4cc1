#!/bin/sh
# Watch a channel. Add max-download-rate=32000 max-upload-rate=8000 to act out an
# ADSL 256/64 link (base layer only), adaptation=rate for the rate-based policy,
# max-crumbs=1 for the base layer only. -m shows one crumbsrc-segment message per Segment.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m crumbsrc location="${1:-http://127.0.0.1:8080/live}" ! vp8dec ! videoconvert ! autovideosink
