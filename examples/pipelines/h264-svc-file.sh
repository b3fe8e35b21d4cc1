#!/bin/sh
# H.264 SVC (Annex G) with 3 spatial layers; crumbs per Segment: S0T0 S0T1 S0T2 S1 S2.
# max-crumbs=3: 160x90, 4: 320x180, 0: 640x360 (openh264dec decodes the highest layer).
# Usage: h264-svc-file.sh FILE.264 [max-crumbs]
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m filesrc location="${1:?file}" ! h264parse ! svcsegmenter \
  ! crumbjoin max-crumbs="${2:-0}" ! openh264dec ! videoconvert ! autovideosink
