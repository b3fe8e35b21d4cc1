#!/bin/sh
# An extra Program Super Seed: fetches every crumb of every Segment and seeds it.
: "${GST_PLUGIN_PATH:=$(dirname "$0")/../../target/release}"; export GST_PLUGIN_PATH
exec gst-launch-1.0 -m crumbsrc location="${1:-http://127.0.0.1:8080/live}" mode=relay ! fakesink
