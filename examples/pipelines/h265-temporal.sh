#!/bin/sh
# H.265 with two temporal sub-layers (x265 needs B-frames for that); crumb 1 holds
# the sub-layer 0 pictures and every parameter set.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m videotestsrc num-buffers=600 ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! x265enc speed-preset=ultrafast key-int-max=60 option-string="temporal-layers=1" ! h265parse \
  ! svcsegmenter ! crumbjoin max-crumbs=1 ! avdec_h265 ! videoconvert ! autovideosink
