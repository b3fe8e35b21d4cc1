#!/bin/sh
# A live channel with sound, on port 8084: camera-like video (a moving ball, the
# paper's three VP8 layers) and microphone-like audio (a tone, Opus). The audio of
# each Segment travels in its crumb 1, so every viewer of the base layer hears it.
# 60 ms Opus frames: each frame costs a 40-byte header in crumb 1 (16 kbit/s with
# opusenc's default 20 ms frames, 5 kbit/s with 60 ms), paid by the weakest links.
# AAC instead of Opus: audioconvert ! avenc_aac ! seg.audio (or voaacenc).
# Watch with client-av.sh.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=30/1 \
  ! svcvp8enc layer-bitrates="<128,512,2048>" keyframe-max-dist=30 \
  ! svcsegmenter name=seg min-gops=1 max-gops=4 ! crumbsink channel=av http-port=8084 \
  audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! opusenc frame-size=60 ! seg.audio
