#!/usr/bin/python3
# SPDX-License-Identifier: MPL-2.0
"""A libtorrent peer (Debian's python3-libtorrent, the library of qBittorrent and
Deluge) driven by tests/interop.rs: one JSON request per line on stdin, one JSON
answer per line on stdout.

Settings are libtorrent's defaults (its SSRF rule included: a loopback tracker is
used only at the path /announce) except the listen address (loopback only) and the
discovery that would reach beyond loopback (DHT, local service discovery, UPnP,
NAT-PMP), which is switched off.

Requests:
  {"op": "add", "torrent": PATH, "save": DIR}   -> {"info_hash": HEX}
  {"op": "status"}                              -> {"torrents": [{...}, ...]}
  {"op": "remove", "info_hash": HEX}            -> {}
  {"op": "alerts"}                              -> {"alerts": [TEXT, ...]} (since last)
The process ends when stdin closes.
"""

import json
import sys

import libtorrent as lt

STATES = {
    lt.torrent_status.checking_files: "checking",
    lt.torrent_status.downloading_metadata: "metadata",
    lt.torrent_status.downloading: "downloading",
    lt.torrent_status.finished: "finished",
    lt.torrent_status.seeding: "seeding",
    lt.torrent_status.checking_resume_data: "checking",
}


def main():
    port = int(sys.argv[1])
    settings = {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.peer_notification
        | lt.alert.category_t.status_notification,
    }
    ses = lt.session(settings)
    handles = {}
    alerts = []
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        for a in ses.pop_alerts():
            alerts.append("%s: %s" % (type(a).__name__, a.message()))
        del alerts[:-200]
        if op == "add":
            info = lt.torrent_info(req["torrent"])
            atp = lt.add_torrent_params()
            atp.ti = info
            atp.save_path = req["save"]
            # Started at once, as a streaming application adds a torrent it needs
            # now: an auto-managed one waits in libtorrent's queue (3 downloads and 5
            # seeds active, the queue looked at every 30 s).
            atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
            h = ses.add_torrent(atp)
            ih = str(info.info_hash())
            handles[ih] = h
            out = {"info_hash": ih}
        elif op == "status":
            torrents = []
            for ih, h in handles.items():
                st = h.status()
                torrents.append(
                    {
                        "info_hash": ih,
                        "name": st.name,
                        "state": STATES.get(st.state, str(st.state)),
                        "progress": st.progress,
                        "done": st.total_wanted_done,
                        "wanted": st.total_wanted,
                        "uploaded": st.all_time_upload,
                        "downloaded": st.all_time_download,
                        "peers": st.num_peers,
                        "error": str(st.errc.message()) if st.errc.value() else "",
                    }
                )
            out = {"torrents": torrents}
        elif op == "remove":
            h = handles.pop(req["info_hash"], None)
            if h is not None:
                ses.remove_torrent(h)
            out = {}
        elif op == "alerts":
            out = {"alerts": alerts}
            alerts = []
        else:
            out = {"error": "unknown op %r" % op}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
