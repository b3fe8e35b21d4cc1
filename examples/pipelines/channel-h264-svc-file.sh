#!/bin/sh
# A channel from the H.264 SVC test file (3 spatial layers), looped, on port 8083.
# The raw file has no timestamps: capssetter gives svcsegmenter the framerate to time
# it, identity sync=true paces the Segments like a live source.
# Watch at full resolution (640x360):
#   gst-launch-1.0 crumbsrc location=http://127.0.0.1:8083/svc ! openh264dec ! videoconvert ! autovideosink
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m multifilesrc location="${1:?file.264}" loop=true ! h264parse \
  ! capssetter caps="video/x-h264,framerate=(fraction)30/1" \
  ! svcsegmenter ! identity sync=true ! crumbsink channel=svc http-port=8083
