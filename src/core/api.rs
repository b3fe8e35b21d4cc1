// SPDX-License-Identifier: MPL-2.0
//! The channel's HTTP API documents (JSON via serde), shared by the channel (crumbsink)
//! and the clients (crumbsrc). Plain data: documented in `docs/http-api.md`.

use serde::{Deserialize, Serialize};

/// Version of these documents; a client refuses a window of another major version.
pub const API_VERSION: u32 = 1;

/// `GET /<channel>`: the live window and where to start.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WindowDoc {
    pub version: u32,
    pub channel: String,
    /// The channel instance: chosen at the channel's start, different for every run
    /// ([`channel_epoch`]). A client that sees it change knows the channel restarted,
    /// with new Segments that may reuse the old numbers. Absent from older channels.
    #[serde(default)]
    pub epoch: Option<u64>,
    /// The stream's caps (crumb 1 of the newest Segment carries them too).
    pub caps: Option<String>,
    /// The audio's caps when the channel carries audio (crumb 1 of each Segment
    /// carries the audio and its caps too). Absent for a video-only channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_caps: Option<String>,
    /// x, the newest Segment.
    pub latest: Option<u64>,
    /// x' for the asking client (x - start_offset, kept inside the window).
    pub start_index: Option<u64>,
    /// |w|.
    pub window_size: u32,
    /// Segments that left the window stay available (`GET /<channel>/segments/<seq>`).
    pub archive: bool,
    /// The built-in tracker's announce URL.
    pub tracker: String,
    /// The super seed's BitTorrent address (so clients can tell its bytes from peers').
    #[serde(default)]
    pub super_seed: Option<String>,
    /// The oldest Segment still in the window (the list may start later when the
    /// client asked only for Segments after one it has).
    #[serde(default)]
    pub oldest: Option<u64>,
    /// The longest a Segment of this channel can be, ns (|Gmax| times the longest GOP
    /// so far, as svcsegmenter answers; else the longest published so far). A player
    /// anchored by a shorter Segment keeps the difference as room, so that it does not
    /// stall when the channel's Segments grow. Absent from older channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u64>,
    /// The share of weak lines (those that need over half of |s| for crumb 1) that may
    /// fetch an urgent crumb 1 from the super seed alone, in [0, 1]: each client draws
    /// per Segment whether it may (`core::sole_source`). The channel lowers it while
    /// the reports say such Segments fail. Absent from older channels (all may).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sole_source_share: Option<f64>,
    /// Segments x-|w|+1 ..= x, oldest first; with `?after=K`, only those after K.
    pub segments: Vec<SegmentDoc>,
}

/// One published Segment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentDoc {
    pub seq: u64,
    /// Presentation time of the Segment's start (ns), when known.
    pub pts: Option<u64>,
    /// |s| in ns.
    pub duration: u64,
    /// Milliseconds since the channel published it (how much of its deadline is gone).
    pub age_ms: u64,
    pub crumbs: Vec<CrumbDoc>,
}

/// One crumb's torrent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CrumbDoc {
    /// 1-based crumb index.
    pub index: u16,
    /// BitTorrent v1 info-hash, 40 hex digits.
    pub info_hash: String,
    /// Bytes.
    pub size: u64,
    /// [spatial, quality, temporal] of the crumb layer.
    pub layer: [u8; 3],
    pub piece_length: u32,
    /// Path of the .torrent file on this server.
    pub torrent: String,
}

/// `POST /<channel>/report`: a client's outcome for one Segment (feeds rho).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReportDoc {
    pub client_id: String,
    pub seq: u64,
    /// Crumb 1 complete by the deadline.
    pub successful: bool,
    /// All D crumbs complete by the deadline.
    pub complete: bool,
    pub d: u16,
    /// Measured download rate R, bytes/s.
    pub rate: f64,
    /// The BitTorrent peer id (40 hex digits) the client announces to the channel's
    /// tracker with. The channel counts a report only from a peer it knows: one that
    /// announced with this id from the report's address (docs/http-api.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    /// Crumb 1 was asked of the super seed alone (a weak line's urgent crumb 1): the
    /// channel's `sole_source_share` follows how such Segments fare.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sole_source: bool,
}

/// `GET /<channel>/stats`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct StatsDoc {
    pub channel: String,
    pub segments_published: u64,
    pub segments_expired: u64,
    pub crumbs_published: u64,
    pub bytes_published: u64,
    /// Bytes the super seed uploaded to peers.
    pub bytes_uploaded: u64,
    pub peers_known: usize,
    pub clients_reporting: usize,
    pub reports_accepted: u64,
    pub reports_rejected: u64,
    pub announces: u64,
    /// Announce replies that named the super seed (initial seeding grants).
    #[serde(default)]
    pub super_seed_grants: u64,
    pub last_rho: Option<f64>,
    pub last_rho_seq: Option<u64>,
    pub torrents_seeded: usize,
    /// The coefficient of variation of the super seed's upload rate over the last
    /// 8 s (`core::seed_load`: low on a full link); None until known.
    #[serde(default)]
    pub uplink_variation: Option<f64>,
    /// The super seed's link is judged the bottleneck (`core::seed_load`).
    #[serde(default)]
    pub uplink_busy: bool,
    /// Segments published with a limit on the copies of each enhancement piece
    /// (`enhancement-copies`: set, or automatic while the link is busy).
    #[serde(default)]
    pub segments_copies_limited: u64,
    /// The share of weak lines that may fetch an urgent crumb 1 from the super seed
    /// alone (the window's `sole_source_share`).
    #[serde(default)]
    pub sole_source_share: f64,
    /// Of the votes (one per address) on crumbs 1 fetched from the super seed alone
    /// that the share was last judged on, the failed share (None before).
    #[serde(default)]
    pub sole_source_failed_share: Option<f64>,
}

/// `GET /channels`: the channels this HTTP server serves (several crumbsink elements
/// of one process sharing `address` and `http-port`), by name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct ChannelsDoc {
    pub version: u32,
    pub channels: Vec<ChannelEntryDoc>,
}

/// One channel of [`ChannelsDoc`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct ChannelEntryDoc {
    pub name: String,
    /// The URL clients join (crumbsrc's `location`).
    pub url: String,
    /// Its status page.
    pub status: String,
    pub caps: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_caps: Option<String>,
    /// x, the newest Segment.
    pub latest: Option<u64>,
    /// Viewers: the clients whose reports count, or when none reports (clients that do
    /// not report, plain BitTorrent peers), the peers the tracker knows besides the
    /// super seed.
    pub viewers: usize,
    pub clients_reporting: usize,
    pub peers_known: usize,
}

/// `GET /<channel>/status.json`: what the status page draws. Samples are per Segment,
/// oldest first, a bounded history kept by the channel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct StatusDoc {
    pub version: u32,
    pub channel: String,
    pub caps: Option<String>,
    pub latest: Option<u64>,
    pub start_index: Option<u64>,
    pub window_size: u32,
    /// The channel's clock (ms since it started) when the document was made.
    pub now_ms: u64,
    pub stats: StatsDoc,
    pub samples: Vec<SegmentSampleDoc>,
    /// The Segment whose reports `d_distribution` counts (the newest with reports).
    pub d_seq: Option<u64>,
    /// How many viewers fetched each D for Segment `d_seq`, by D ascending.
    pub d_distribution: Vec<DCountDoc>,
    /// Reporting clients with their last report, newest first.
    pub clients: Vec<ClientDoc>,
}

/// One Segment's figures on the status page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct SegmentSampleDoc {
    pub seq: u64,
    /// When it was published, ms on the channel's clock.
    pub published_ms: u64,
    /// |s| in ns.
    pub duration: u64,
    pub crumbs: u16,
    /// Its crumbs' bytes.
    pub bytes: u64,
    /// |G|, the Segment's GOP count, when the crumbs said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gops: Option<u16>,
    /// The channel's (super seed's) upload between the previous Segment's publish and
    /// this one's, bytes/s. Absent for the first sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_rate: Option<f64>,
    /// Reports counted for this Segment.
    pub reports: u32,
    /// What the reporting viewers received of this Segment, bytes/s over |s|: the
    /// prefix of D crumbs for a complete report, crumb 1 for a successful one.
    pub delivered_rate: f64,
    /// The sum of the download rates R the viewers reported, bytes/s.
    pub reported_rate: f64,
    /// rho of this Segment, once its feedback deadline passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
}

/// Viewers that fetched `d` crumbs of a Segment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct DCountDoc {
    pub d: u16,
    pub clients: u32,
}

/// A reporting client and its last report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct ClientDoc {
    pub client_id: String,
    /// The address it reported from.
    pub address: String,
    pub seq: u64,
    pub d: u16,
    pub successful: bool,
    pub complete: bool,
    /// R, bytes/s.
    pub rate: f64,
    /// ms since the report arrived.
    pub age_ms: u64,
}

/// Channel names that would hide a route of the server (`/channels`, the tracker at
/// the root).
pub const RESERVED_CHANNEL_NAMES: [&str; 3] = ["channels", "announce", "scrape"];

/// Response header of the window (`GET /<channel>`): the channel's clock, in ns from
/// its start, when the request arrived. The client's upload governor
/// ([`super::uplink`]) reads its uplink's queueing delay from it.
pub const RECEIVED_HEADER: &str = "x-crumbs-received-ns";

/// A channel run's epoch: its start time (ns since the Unix epoch) mixed with the
/// process id and a per-process count, so that two runs differ even when started in
/// the same nanosecond (two processes) or by the same process (two channels). The
/// mix is an xor with the pid and the count scrambled into the high bits, where the
/// clock's bits change slowest.
pub fn channel_epoch(unix_ns: u64, pid: u32, n: u64) -> u64 {
    let salt = (u64::from(pid) ^ n.rotate_left(22)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    unix_ns ^ salt
}

/// Hex of an info-hash.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 40 hex digits back into an info-hash.
pub fn parse_info_hash(s: &str) -> Option<[u8; 20]> {
    if s.len() != 40 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A channel name is one URL path segment: letters, digits, '-' and '_'.
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hash_hex_round_trip() {
        let h: [u8; 20] = core::array::from_fn(|i| (i * 13) as u8);
        assert_eq!(parse_info_hash(&hex(&h)), Some(h));
        assert_eq!(parse_info_hash("zz"), None);
        assert_eq!(parse_info_hash(&"g".repeat(40)), None);
    }

    #[test]
    fn channel_names() {
        assert!(valid_channel_name("live-1_a"));
        assert!(!valid_channel_name(""));
        assert!(!valid_channel_name("a/b"));
        assert!(!valid_channel_name("a b"));
    }

    #[test]
    fn window_json_round_trip() {
        let w = WindowDoc {
            version: API_VERSION,
            channel: "live".into(),
            epoch: Some(7),
            caps: Some("video/x-vp8".into()),
            audio_caps: Some("audio/x-opus".into()),
            latest: Some(9),
            start_index: Some(6),
            window_size: 5,
            archive: false,
            tracker: "http://127.0.0.1:1/live/announce".into(),
            super_seed: Some("127.0.0.1:2".into()),
            oldest: None,
            max_duration: Some(4_000_000_000),
            sole_source_share: Some(0.25),
            segments: vec![SegmentDoc {
                seq: 9,
                pts: None,
                duration: 2_000_000_000,
                age_ms: 5,
                crumbs: vec![CrumbDoc {
                    index: 1,
                    info_hash: "00".repeat(20),
                    size: 10,
                    layer: [0, 0, 0],
                    piece_length: 16384,
                    torrent: "/live/torrents/9/1.torrent".into(),
                }],
            }],
        };
        let s = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<WindowDoc>(&s).unwrap(), w);
        // A video-only channel's window is as before audio existed, both ways.
        let video_only = WindowDoc {
            audio_caps: None,
            ..w
        };
        let s = serde_json::to_string(&video_only).unwrap();
        assert!(!s.contains("audio"), "{s}");
        assert_eq!(serde_json::from_str::<WindowDoc>(&s).unwrap(), video_only);
        // A window of a channel from before epochs still parses.
        let mut v: serde_json::Value = serde_json::from_str(&s).unwrap();
        v.as_object_mut().unwrap().remove("epoch");
        let old: WindowDoc = serde_json::from_value(v).unwrap();
        assert_eq!(old.epoch, None);
    }

    #[test]
    fn epochs_differ_between_runs() {
        let t = 1_700_000_000_000_000_000;
        let e = channel_epoch(t, 100, 0);
        assert_ne!(e, channel_epoch(t, 101, 0), "another process, same ns");
        assert_ne!(
            e,
            channel_epoch(t, 100, 1),
            "another channel of the process"
        );
        assert_ne!(e, channel_epoch(t + 1, 100, 0), "a later start");
    }
}
