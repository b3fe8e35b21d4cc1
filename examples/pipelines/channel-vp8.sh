#!/bin/sh
# A live channel: the paper's three VP8 layers, |G| between 1 and 4 GOPs of 1 s moved
# by the audience's success ratio, the super seed capped at 2 MB/s, on port 8080.
# Clients join http://127.0.0.1:8080/live (see client.sh).
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=30/1 \
  ! svcvp8enc layer-bitrates="<128,512,2048>" keyframe-max-dist=30 \
  ! svcsegmenter min-gops=1 max-gops=4 \
  ! crumbsink channel=live http-port=8080 window=5 start-offset=3 max-upload-rate=2000000
