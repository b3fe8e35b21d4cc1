#!/usr/bin/env bash
# Keeps an opentracker whitelist equal to a crumbs channel's live crumbs, so that
# Debian's opentracker (built in "private" mode: it answers only whitelisted
# info-hashes) can serve as an external tracker of the channel (crumbsink
# announce-urls=http://HOST:6969/announce). Once a second: the channel's window ->
# the info-hashes of every crumb in it -> the whitelist file (replaced atomically) ->
# SIGHUP to opentracker, which re-reads it. Needs curl and python3.
#
#   examples/opentracker-whitelist.sh http://127.0.0.1:8080/live /etc/opentracker/whitelist.txt
#
# Stops with ^C. A channel that is down leaves the list as it was.
set -euo pipefail
channel=${1:?usage: $0 CHANNEL_URL WHITELIST_FILE}
list=${2:?usage: $0 CHANNEL_URL WHITELIST_FILE}
last=""
while sleep 1; do
  hashes=$(curl -sf --max-time 2 "$channel" | python3 -c '
import json, sys
window = json.load(sys.stdin)
for segment in window["segments"]:
    for crumb in segment["crumbs"]:
        print(crumb["info_hash"])
') || continue
  [ "$hashes" = "$last" ] && continue
  printf '%s\n' "$hashes" > "$list.new" && mv "$list.new" "$list"
  pkill -HUP -x opentracker || true
  last=$hashes
done
