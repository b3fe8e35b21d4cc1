#!/bin/sh
# A live H.265 channel (two temporal sub-layers) on port 8081.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! x265enc speed-preset=ultrafast key-int-max=30 option-string="temporal-layers=1:open-gop=0" ! h265parse \
  ! svcsegmenter ! crumbsink channel=hevc http-port=8081
# client: crumbsrc location=http://127.0.0.1:8081/hevc ! avdec_h265 ! videoconvert ! autovideosink
