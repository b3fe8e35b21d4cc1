#!/bin/sh
# Watch and hear a channel with sound (channel-av.sh): crumbsrc's always pad `src` is
# the video, its sometimes pad `audio` appears when the window says the channel
# carries audio. A queue on each branch, so that one sink waiting for its clock does
# not hold the other. For an AAC channel, avdec_aac instead of opusdec.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m crumbsrc name=src location="${1:-http://127.0.0.1:8084/av}" \
  src. ! queue ! vp8dec ! videoconvert ! autovideosink \
  src.audio ! queue ! opusdec ! audioconvert ! audioresample ! autoaudiosink
