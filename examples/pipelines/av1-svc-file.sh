#!/bin/sh
# AV1 L2T3 (2 spatial, 3 temporal layers) from an IVF file; crumbs: S0T0 S0T1 S0T2 S1.
# max-crumbs=3: 320x180 at full rate, 0: 640x360.
# Usage: av1-svc-file.sh FILE.ivf [max-crumbs]
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m filesrc location="${1:?file}" ! ivfparse ! av1parse ! svcsegmenter \
  ! crumbjoin max-crumbs="${2:-0}" ! av1dec ! videoconvert ! autovideosink
