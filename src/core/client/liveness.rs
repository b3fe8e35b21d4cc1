// SPDX-License-Identifier: MPL-2.0
//! The channel's signs of life, for the stall timeout.

use super::*;

/// Signs of life of a channel, for [`ClientConfig::stall_timeout`]: when it last
/// answered (a window or a Segment document), last showed a new Segment, and when the
/// last byte of a crumb arrived. The engine keeps one; crumbsrc's relay mode, which
/// has no engine, keeps its own.
#[derive(Clone, Debug)]
pub struct Liveness {
    timeout: Option<u64>,
    /// Live: a window that stops advancing is a stall (not on demand, where an
    /// archive is played at the client's pace).
    follow_window: bool,
    last_answer: u64,
    last_advance: u64,
    last_fetched: u64,
    bytes_seen: u64,
    /// The last fetch got an answer: a stall while the channel is not answering is
    /// told as such, whichever sign of life ran out first.
    answering: bool,
    /// Longest Segment seen, ns: a healthy channel of long Segments shows a new one
    /// only that often, so the timeout is at least two of them.
    longest_segment: u64,
}

impl Liveness {
    pub fn new(timeout: Option<u64>, follow_window: bool, now: u64) -> Liveness {
        Liveness {
            timeout,
            follow_window,
            last_answer: now,
            last_advance: now,
            last_fetched: now,
            bytes_seen: 0,
            answering: true,
            longest_segment: 0,
        }
    }

    pub fn set_follow_window(&mut self, follow: bool) {
        self.follow_window = follow;
    }

    /// The channel answered (a window or Segment document, or a 404 for one).
    pub fn on_answer(&mut self, now: u64) {
        self.last_answer = self.last_answer.max(now);
        self.answering = true;
    }

    /// A fetch got no usable answer (refused, timed out, not JSON).
    pub fn on_no_answer(&mut self) {
        self.answering = false;
    }

    /// A new Segment appeared in the window.
    pub fn on_advance(&mut self, now: u64) {
        self.last_advance = self.last_advance.max(now);
    }

    /// A Segment of `duration` ns is known.
    pub fn on_segment(&mut self, duration: u64) {
        self.longest_segment = self.longest_segment.max(duration);
    }

    /// A crumb completed.
    pub fn on_fetched(&mut self, now: u64) {
        self.last_fetched = self.last_fetched.max(now);
    }

    /// The running total of crumb bytes downloaded: progress when it grew.
    pub fn on_bytes(&mut self, now: u64, total: u64) {
        if total > self.bytes_seen {
            self.bytes_seen = total;
            self.on_fetched(now);
        }
    }

    /// A new run of the channel: it gets a whole timeout to show its first Segments.
    pub fn restart(&mut self, now: u64) {
        self.on_answer(now);
        self.on_advance(now);
        self.on_fetched(now);
    }

    /// The timeout in force: `stall_timeout`, at least two of the longest Segments.
    pub fn timeout(&self) -> Option<u64> {
        Some(self.timeout?.max(self.longest_segment.saturating_mul(2)))
    }

    /// When a stall is declared if nothing happens before.
    pub fn deadline(&self) -> Option<u64> {
        let mut since = self.last_answer.min(self.last_fetched);
        if self.follow_window {
            since = since.min(self.last_advance);
        }
        Some(since.saturating_add(self.timeout()?))
    }

    /// A stall at `now`: why, and since when the sign of life that ran out was
    /// missing. A channel that is not answering now is told as `NoAnswer` even when
    /// its window had stopped advancing before.
    pub fn stall(&self, now: u64) -> Option<(StallReason, u64)> {
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        let since = deadline.saturating_sub(self.timeout()?);
        let reason = if !self.answering || self.last_answer == since {
            StallReason::NoAnswer
        } else if self.follow_window && self.last_advance == since {
            StallReason::WindowFrozen
        } else {
            StallReason::NothingFetched
        };
        Some((reason, since))
    }
}
