#!/bin/sh
# The paper's three layers (base 128 kbit/s, enhancement 1 512 kbit/s, enhancement 2
# 2048 kbit/s) as VP8 temporal layers at 640x480, cut into Segments of 2 GOPs; watch
# the base layer only (7.5 fps), with -m showing one message per Segment.
# Change max-crumbs=1 to 0 for everything.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=30/1 \
  ! svcvp8enc layer-bitrates="<128,512,2048>" keyframe-max-dist=30 \
  ! svcsegmenter gops=2 \
  ! crumbjoin max-crumbs=1 ! vp8dec ! videoconvert ! autovideosink
