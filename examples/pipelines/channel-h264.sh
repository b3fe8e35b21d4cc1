#!/bin/sh
# A live H.264 channel: non-reference B-frames are the enhancement layer; port 8082.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! x264enc tune=zerolatency bframes=2 b-pyramid=false key-int-max=30 ! h264parse \
  ! svcsegmenter ! crumbsink channel=avc http-port=8082
# client: crumbsrc location=http://127.0.0.1:8082/avc ! avdec_h264 ! videoconvert ! autovideosink
