#!/bin/sh
# H.264 AVC: x264's non-reference B-frames (b-pyramid=false) are the droppable layer.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m videotestsrc num-buffers=600 ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! x264enc key-int-max=60 bframes=2 b-pyramid=false ! h264parse \
  ! svcsegmenter ! crumbjoin max-crumbs=1 ! avdec_h264 ! videoconvert ! autovideosink
