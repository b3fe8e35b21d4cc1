// SPDX-License-Identifier: MPL-2.0
//! A client engine's settings and their defaults.

use super::Adaptation;
use crate::core::time::{MS, SEC};

/// Default [`ClientConfig::peer_patience`]: a tracker round trip, a BitTorrent
/// handshake and a piece from a peer that is itself fetching it.
pub const DEFAULT_PEER_PATIENCE: u64 = 300 * MS;

/// With a player, a Segment's deadline comes this long before its play-out: the
/// time reassembly, the decoder and the sink need before its first frame is due (a
/// video sink drops a frame 20 ms late, and every one after it that is late too).
pub const PLAYOUT_MARGIN: u64 = 200 * MS;

/// The most room a player keeps for the channel's longest Segment (the window's
/// `max_duration` is bounded by it), ns: svcsegmenter's default `max-segment-duration`.
pub const MAX_SEGMENT_ROOM: u64 = 60 * SEC;

/// The player's delay before the channel says how long its Segments can be, ns; with
/// [`PLAYOUT_DELAY_AUTO`], the delay until then.
pub const DEFAULT_PLAYOUT_DELAY: u64 = 3 * SEC;

/// [`ClientConfig::playout_delay`] (crumbsrc's default `latency`, `GST_CLOCK_TIME_NONE`):
/// the channel's longest Segment (the window's `max_duration`), at least
/// [`DEFAULT_PLAYOUT_DELAY`]. A client at the live edge can fetch a Segment only once it is
/// published, and has until the one before it has played: with less room than |s| it
/// fetches fewer crumbs than its link could carry (swarm bench, cable at the edge:
/// 1.29 Mbit/s with 3 s of room for 4 s Segments, 2.02 Mbit/s with 4 s).
pub const PLAYOUT_DELAY_AUTO: u64 = u64::MAX;

/// Default [`ClientConfig::stall_timeout`]: five 2 s Segments.
pub const DEFAULT_STALL_TIMEOUT: u64 = 10_000_000_000;

/// Settings of a client engine, as crumbsrc's properties set them.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    pub adaptation: Adaptation,
    /// Never fetch more than this many crumbs of a Segment (0 = no cap).
    pub max_crumbs: u16,
    /// R (bytes/s) to use in eq. 3 before any measurement; `None` starts at D = 1.
    pub initial_rate: Option<f64>,
    /// R is never taken above this (bytes/s): crumbsrc's `max-download-rate`. A token
    /// bucket lets a burst through at once after a pause, and R, measured over the
    /// time downloads were active, saw 28 KB/s under a 16 KiB/s cap; D = 2 then did
    /// not fit and its probes cost crumb 1 now and then (`tests/swarm.rs`).
    pub rate_cap: Option<f64>,
    /// RateBased: share of R·|s| a Segment's crumbs may take, in (0, 1]. 0.9 by
    /// default: the swarm bench's cable and DSL clients measure their R on what they
    /// fetch, and at 0.8 they left a fifth of it unused (N = 10: 857 kbit/s delivered
    /// at 0.8, mean of 5 runs; 883 at 0.9, mean of 8; docs/swarm.md, fifth round).
    /// Probes are funded at [`crate::core::rate::PROBE_SAFETY`].
    pub safety: f64,
    /// Crumbs of the current Segment in flight at once once crumb 1 is complete
    /// (crumb 1 is always fetched alone). 2 overlaps one torrent's start-up (tracker,
    /// peer connections) with the transfer of the previous one; more would split the
    /// link between crumbs and leave several half-done crumbs at the deadline, of
    /// which only a prefix is any use. While the time is ample, up to
    /// `AMPLE_IN_FLIGHT` (when the missing crumbs need under `AMPLE_SHARE` of
    /// the time left at R).
    pub max_in_flight: u16,
    /// Least time between two fetch requests (window or archived Segment), ns.
    pub poll_interval: u64,
    /// Window of the rate estimate, ns of active download time.
    pub rate_window: u64,
    /// Peers first, the super seed as the deadline's fallback: a crumb is fetched
    /// from peers alone for at least this long (ns; at most half the time to its
    /// deadline), then [`Action::UseSuperSeed`](super::Action::UseSuperSeed) asks for the super seed when the
    /// crumb has no byte yet or its pace would miss the deadline. `None`: never (the
    /// super seed is only what the tracker hands out).
    pub peer_patience: Option<u64>,
    /// Relay (crumbsrc `mode=relay`): fetch every crumb of every Segment in the window
    /// and seed it, an extra super seed; no deadlines, no output, no reports. The
    /// engine then asks for the window every `poll_interval` and for each crumb once
    /// ([`ClientEngine::on_download_failed`](super::ClientEngine::on_download_failed) puts one back).
    pub relay: bool,
    /// The player's delay between a Segment's output and its play-out, ns (crumbsrc's
    /// `latency`), or [`PLAYOUT_DELAY_AUTO`]. The first Segment of a run gets it as
    /// its time extension and the rest follow the player's timeline (see the module's
    /// semantics); 0: the paper's deadlines (|s| from the start).
    pub playout_delay: u64,
    /// Give up on a channel that shows no sign of life for this long (ns): no window
    /// answered, no new Segment in the window (live), or no byte of any crumb fetched.
    /// `None`: wait forever.
    pub stall_timeout: Option<u64>,
    /// Where a live run starts: this many Segments behind the newest in the window
    /// (crumbsrc's `start-offset`), instead of the channel's start index x'. A line
    /// that can race the live edge joins closer to it, and its viewer watches that
    /// much closer to live; the channel's offset is what keeps a joiner on Segments
    /// peers already hold (docs/swarm.md). `None`: the channel's start index.
    pub start_offset: Option<u64>,
    /// The tail crumb (crumbsrc's `tail-crumb`): at the live edge (the next Segment not
    /// out yet), when crumb D + 1 cannot arrive whole within |s|, it is asked for as D
    /// ends (its start overlapping D's last bytes) and fetched with the time left;
    /// what its verified pieces hold from its start is output after crumbs 1..=D
    /// ([`SegmentRecord::tail`](super::SegmentRecord::tail)). Its bytes after crumbs 1..=D are in do not count in
    /// R. Only where D may grow within a Segment (the rate-based rule, not a run's
    /// first Segment) and on the player's timeline.
    pub tail_crumb: bool,
    /// Crumbs prepared ahead of their turn (crumbsrc's `prepared-crumbs`): behind the
    /// live edge, while crumbs download, the next this many after the last one asked
    /// for (up to D) are started with their requests held ([`Action::Prepare`](super::Action::Prepare)). A crumb's start
    /// (its .torrent, the tracker, connections, handshakes) passes through the
    /// line's queue, full of the crumbs before it: on the swarm bench a 3 Mbit/s
    /// client's crumbs got their first byte 260 ms (median) after they were asked
    /// for, while one takes 170 ms of the line, and its line was idle for a fifth of
    /// the time. 0: each crumb starts when it is asked for.
    pub prepare_ahead: u16,
}

/// crumbsrc's `prepared-crumbs` by default ([`ClientConfig::prepare_ahead`]): none.
/// Two (as many as crumbs in flight) took a prepared crumb's first piece from 260 to
/// 190 ms after it was asked for on a 3 Mbit/s line, but over three interleaved
/// pairs of swarm bench runs gave 0.808 / 0.769 / 0.481 of bound (N = 10 / N = 20 /
/// tight) against 0.799 / 0.790 / 0.511 without, with 10 % more channel upload per
/// client at N = 20 (docs/swarm.md, twentieth round).
pub const DEFAULT_PREPARE_AHEAD: u16 = 0;

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            adaptation: Adaptation::Paper,
            max_crumbs: 0,
            initial_rate: None,
            rate_cap: None,
            safety: 0.9,
            max_in_flight: 2,
            poll_interval: 500 * MS,
            rate_window: 10 * SEC,
            peer_patience: Some(DEFAULT_PEER_PATIENCE),
            relay: false,
            playout_delay: 0,
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
            start_offset: None,
            tail_crumb: false,
            prepare_ahead: 0,
        }
    }
}
