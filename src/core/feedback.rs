// SPDX-License-Identifier: MPL-2.0
//! Client feedback and rho (paper, section 3.1, step 1): rho_i is the share of clients
//! that downloaded Segment s_i successfully (crumb 1 complete in time); the segmenter
//! moves |G| by one GOP per rho (`Segmenter::on_success_ratio`).
//!
//! Who counts for rho_i, decided here:
//! - every client that reported on s_i, with its newest report on s_i (a client that
//!   went back to the initial stage may attempt a Segment twice; its last word wins);
//! - every client that *skipped* s_i: it reported on a Segment before s_i and on one
//!   after s_i, but not on s_i. Clients move forward, so it will never watch s_i: that
//!   is a failure (typically a refresh of x' after a failed Segment jumped over it).
//! - a client that is merely silent on s_i (its newest report is older than s_i) is
//!   *not* counted: with x' = x-3, new and slower clients run a few Segments behind and
//!   report on s_i after its deadline. Counting them as failures would shrink |G| each
//!   time clients join. No evidence, no vote: with no participant rho is `None`, and
//!   |G| stays where it is.
//!
//! One address, one vote: every report comes with the network address it was sent
//! from ([`Voter`]), and rho_i is the mean over addresses of each address's successful
//! share. Many clients behind one address (a NAT, or one host running many clients
//! as the tests do) keep their exact share; one address posting under a hundred client
//! ids still weighs as one address. With a single address this is exactly the share of
//! successful clients. Who may report at all (a peer the channel knows) is decided by
//! the caller, [`super::channel::ChannelEngine`].
//!
//! Memory is bounded: reports of Segments that left the live window are forgotten, so
//! are clients whose newest report left it, and `max_clients` caps distinct clients.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::scheduler::Scheduler;

/// Settings of the feedback collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackConfig {
    /// N for `clients_reporting`: a client counts as reporting while its newest report
    /// is on one of the last N Segments.
    pub recent_segments: u32,
    /// Distinct clients tracked at most; reports from further new clients are refused.
    pub max_clients: usize,
    /// Longest client id accepted, in bytes.
    pub max_client_id_len: usize,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            recent_segments: 5,
            max_clients: 100_000,
            max_client_id_len: 128,
        }
    }
}

/// Whose vote a report is: the sender's IPv4 address, or the /64 prefix of its IPv6
/// address (one host or home network gets a whole /64, so counting IPv6 addresses one
/// by one would hand anyone 2^64 votes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Voter(IpAddr);

impl Voter {
    pub fn new(addr: IpAddr) -> Self {
        match addr.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Voter(IpAddr::V6(prefix.into()))
            }
            v4 => Voter(v4),
        }
    }
}

/// A client's report on one Segment: the HTTP API's document itself (client_id, seq,
/// successful = crumb 1 by the deadline, complete = all D crumbs, d, rate R in bytes/s).
pub use super::api::ReportDoc as Report;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeedbackError {
    #[error("empty client id")]
    EmptyClientId,
    #[error("client id longer than {0} bytes")]
    ClientIdTooLong(usize),
    #[error("Segment {0} is unknown")]
    UnknownSegment(u64),
    #[error("Segment {0} has left the live window")]
    OutOfWindow(u64),
    #[error(
        "d = {d} does not fit N = {n} (successful: {successful}; d is 0 exactly when the Segment failed)"
    )]
    BadD { d: u16, n: usize, successful: bool },
    #[error("rate must be a finite number >= 0")]
    BadRate,
    #[error("a Segment cannot be complete without being successful")]
    CompleteWithoutSuccess,
    #[error("too many clients")]
    TooManyClients,
}

/// What the channel knows about one client, for stats.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientStats {
    /// Oldest and newest Segment the client reported on since it was (re)learned.
    pub first_seq: u64,
    pub last_seq: u64,
    /// D and R of its latest report.
    pub last_d: u16,
    pub last_rate: f64,
    pub last_successful: bool,
    pub last_complete: bool,
    /// `now` of its latest report.
    pub last_report_at: u64,
    pub reports: u64,
    /// Where its latest report came from (its vote when it skips a Segment).
    pub voter: Voter,
}

/// The feedback on one Segment, as rho sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentFeedback {
    pub seq: u64,
    /// Clients that reported on it.
    pub reporters: usize,
    pub successful: usize,
    pub complete: usize,
    /// Clients that jumped over it (counted as unsuccessful).
    pub skipped: usize,
    /// Mean d over reporters, a failure counting d = 0 (0 with no reporter).
    pub mean_d: f64,
    /// Distinct voters (addresses) among reporters and skippers.
    pub voters: usize,
    /// Sum over voters of each voter's successful share of its participants.
    pub voter_shares: f64,
}

impl SegmentFeedback {
    /// The mean over voters of their successful share (one address, one vote); with a
    /// single address, successful / (reporters + skipped). `None` with no participant.
    pub fn rho(&self) -> Option<f64> {
        (self.voters > 0).then(|| self.voter_shares / self.voters as f64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Outcome {
    successful: bool,
    complete: bool,
    d: u16,
    voter: Voter,
}

/// Collects reports and says when a rho is due.
#[derive(Debug, Default)]
pub struct Feedback {
    config: FeedbackConfig,
    /// seq -> client -> its newest report on that Segment; live Segments only.
    reports: BTreeMap<u64, HashMap<String, Outcome>>,
    clients: HashMap<String, ClientStats>,
    last_rho: Option<(u64, f64)>,
    late_reports: u64,
}

impl Feedback {
    pub fn new(config: FeedbackConfig) -> Self {
        Feedback {
            config,
            ..Default::default()
        }
    }

    /// Whether `report` is one `record` would take (client cap aside): a well-formed
    /// report on a live Segment.
    pub fn validate(&self, report: &Report, scheduler: &Scheduler) -> Result<(), FeedbackError> {
        if report.client_id.is_empty() {
            return Err(FeedbackError::EmptyClientId);
        }
        if report.client_id.len() > self.config.max_client_id_len {
            return Err(FeedbackError::ClientIdTooLong(
                self.config.max_client_id_len,
            ));
        }
        let Some(live) = scheduler.live_range() else {
            return Err(FeedbackError::UnknownSegment(report.seq));
        };
        if report.seq < *live.start() {
            return Err(FeedbackError::OutOfWindow(report.seq));
        }
        let Some(entry) = scheduler
            .get(report.seq)
            .filter(|_| live.contains(&report.seq))
        else {
            return Err(FeedbackError::UnknownSegment(report.seq));
        };
        let n = entry.crumb_count();
        // d counts crumbs output: 0 exactly when the Segment failed (crumb 1 missing),
        // which is the report rho most needs to hear.
        if usize::from(report.d) > n || (report.d == 0) == report.successful {
            return Err(FeedbackError::BadD {
                d: report.d,
                n,
                successful: report.successful,
            });
        }
        if !report.rate.is_finite() || report.rate < 0.0 {
            return Err(FeedbackError::BadRate);
        }
        if report.complete && !report.successful {
            return Err(FeedbackError::CompleteWithoutSuccess);
        }
        Ok(())
    }

    /// Validates and stores a report sent from `voter`. Reports on live Segments only:
    /// rho is about the live stream, and older data is forgotten.
    pub fn record(
        &mut self,
        report: Report,
        voter: Voter,
        now: u64,
        scheduler: &Scheduler,
    ) -> Result<(), FeedbackError> {
        self.prune(scheduler);
        self.validate(&report, scheduler)?;
        if !self.clients.contains_key(&report.client_id)
            && self.clients.len() >= self.config.max_clients
        {
            return Err(FeedbackError::TooManyClients);
        }
        if self.last_rho.is_some_and(|(s, _)| report.seq <= s) {
            self.late_reports += 1;
        }
        let outcome = Outcome {
            successful: report.successful,
            complete: report.complete,
            d: report.d,
            voter,
        };
        let stats = self
            .clients
            .entry(report.client_id.clone())
            .or_insert(ClientStats {
                first_seq: report.seq,
                last_seq: report.seq,
                last_d: report.d,
                last_rate: report.rate,
                last_successful: report.successful,
                last_complete: report.complete,
                last_report_at: now,
                reports: 0,
                voter,
            });
        stats.first_seq = stats.first_seq.min(report.seq);
        stats.last_seq = stats.last_seq.max(report.seq);
        stats.last_d = report.d;
        stats.last_rate = report.rate;
        stats.last_successful = report.successful;
        stats.last_complete = report.complete;
        stats.last_report_at = now;
        stats.reports += 1;
        stats.voter = voter;
        self.reports
            .entry(report.seq)
            .or_default()
            .insert(report.client_id, outcome);
        Ok(())
    }

    /// The rho of the newest live Segment whose deadline has passed, once per Segment.
    /// Older Segments whose deadline passed unseen are skipped: |G| should follow the
    /// freshest evidence. `None` when nothing is due, it was already emitted, or no
    /// client took part in that Segment.
    pub fn rho_due(&mut self, now: u64, scheduler: &Scheduler) -> Option<(u64, f64)> {
        self.prune(scheduler);
        let grace = scheduler.config().feedback_grace;
        let entry = scheduler
            .window()
            .into_iter()
            .rev()
            .find(|e| e.deadline(grace) <= now)?;
        if self.last_rho.is_some_and(|(s, _)| entry.seq <= s) {
            return None;
        }
        let rho = self.summary(entry.seq).rho()?;
        self.last_rho = Some((entry.seq, rho));
        Some((entry.seq, rho))
    }

    /// Counts of the feedback on Segment `seq` so far.
    pub fn summary(&self, seq: u64) -> SegmentFeedback {
        let empty = HashMap::new();
        let reports = self.reports.get(&seq).unwrap_or(&empty);
        let skippers: Vec<Voter> = self
            .clients
            .iter()
            .filter(|(id, c)| c.first_seq < seq && seq < c.last_seq && !reports.contains_key(*id))
            .map(|(_, c)| c.voter)
            .collect();
        let skipped = skippers.len();
        // (successful, participants) per voter; a skipper is a failure of its voter.
        let mut by_voter: HashMap<Voter, (usize, usize)> = HashMap::new();
        for o in reports.values() {
            let v = by_voter.entry(o.voter).or_default();
            v.0 += usize::from(o.successful);
            v.1 += 1;
        }
        for voter in skippers {
            by_voter.entry(voter).or_default().1 += 1;
        }
        let d_sum: u64 = reports.values().map(|o| u64::from(o.d)).sum();
        SegmentFeedback {
            voters: by_voter.len(),
            voter_shares: by_voter
                .values()
                .map(|&(ok, all)| ok as f64 / all as f64)
                .sum(),
            seq,
            reporters: reports.len(),
            successful: reports.values().filter(|o| o.successful).count(),
            complete: reports.values().filter(|o| o.complete).count(),
            skipped,
            mean_d: if reports.is_empty() {
                0.0
            } else {
                d_sum as f64 / reports.len() as f64
            },
        }
    }

    /// Distinct clients whose newest report is on one of the last N Segments.
    pub fn clients_reporting(&self, scheduler: &Scheduler) -> usize {
        let Some(x) = scheduler.latest().map(|e| e.seq) else {
            return 0;
        };
        let n = u64::from(self.config.recent_segments.max(1));
        let lo = x.saturating_sub(n - 1);
        self.clients.values().filter(|c| c.last_seq >= lo).count()
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientStats> {
        self.clients.get(client_id)
    }

    /// Every known client and its stats, in no particular order.
    pub fn clients(&self) -> impl Iterator<Item = (&str, &ClientStats)> {
        self.clients.iter().map(|(id, c)| (id.as_str(), c))
    }

    /// The last rho emitted by `rho_due`, with its Segment.
    pub fn last_rho(&self) -> Option<(u64, f64)> {
        self.last_rho
    }

    /// Reports that arrived for a Segment whose rho was already emitted (or an older
    /// one): how far behind the deadline clients run.
    pub fn late_reports(&self) -> u64 {
        self.late_reports
    }

    /// Forgets Segments that left the live window and clients last heard on them.
    fn prune(&mut self, scheduler: &Scheduler) {
        let Some(live) = scheduler.live_range() else {
            return;
        };
        let lo = *live.start();
        self.reports = self.reports.split_off(&lo);
        self.clients.retain(|_, c| c.last_seq >= lo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::scheduler::{PublishedCrumb, PublishedSegment, SchedulerConfig};

    use crate::core::time::SEC;

    /// The one address of most tests: every client behind it, as with one NAT.
    fn home() -> Voter {
        Voter::new("127.0.0.1".parse().unwrap())
    }

    /// Segments of 2 s, 3 crumbs, grace 1 s: Segment k published at 2k s, deadline 2k+3 s.
    fn publish(s: &mut Scheduler, seq: u64) {
        let crumbs = (1..=3)
            .map(|index| PublishedCrumb {
                index,
                info_hash: [index as u8; 20],
                size: 1000,
                layer: (0, 0, 0),
                piece_length: 16384,
            })
            .collect();
        s.publish(
            PublishedSegment {
                seq,
                duration: 2 * SEC,
                crumbs,
                pts: None,
            },
            seq * 2 * SEC,
        )
        .unwrap();
    }

    fn setup(n: u64) -> (Scheduler, Feedback) {
        let mut s = Scheduler::new(SchedulerConfig {
            window: 5,
            start_offset: 3,
            archive: false,
            feedback_grace: SEC,
        });
        for seq in 0..n {
            publish(&mut s, seq);
        }
        (s, Feedback::new(FeedbackConfig::default()))
    }

    fn report(client: &str, seq: u64, successful: bool) -> Report {
        Report {
            client_id: client.into(),
            seq,
            successful,
            complete: false,
            d: if successful { 2 } else { 0 },
            rate: 50_000.0,
            peer_id: None,
            sole_source: false,
        }
    }

    #[test]
    fn rho_is_successful_share_once_deadline_passed() {
        let (s, mut f) = setup(3);
        f.record(report("a", 2, true), home(), 5 * SEC, &s).unwrap();
        f.record(report("b", 2, true), home(), 5 * SEC, &s).unwrap();
        f.record(report("c", 2, false), home(), 5 * SEC, &s)
            .unwrap();
        f.record(report("d", 2, true), home(), 5 * SEC, &s).unwrap();
        // Segment 2: published 4 s, deadline 4 + 2 + 1 = 7 s. Segment 1 (deadline 5 s)
        // had no reports.
        assert_eq!(f.rho_due(6 * SEC, &s), None);
        assert_eq!(f.rho_due(7 * SEC, &s), Some((2, 0.75)));
        assert_eq!(f.rho_due(8 * SEC, &s), None, "emitted once");
        assert_eq!(f.last_rho(), Some((2, 0.75)));
        let sum = f.summary(2);
        assert_eq!((sum.reporters, sum.successful, sum.skipped), (4, 3, 0));
        assert_eq!(sum.mean_d, 1.5, "three d = 2, one failure d = 0");
    }

    #[test]
    fn no_evidence_no_rho() {
        let (mut s, mut f) = setup(3);
        assert_eq!(f.rho_due(100 * SEC, &s), None);
        // Reports only on an older Segment: the newest due one has none, no fallback.
        f.record(report("a", 1, true), home(), 5 * SEC, &s).unwrap();
        assert_eq!(f.rho_due(7 * SEC, &s), None);
        // Evidence arriving late still yields the rho while it is the newest due.
        f.record(report("a", 2, true), home(), 7 * SEC, &s).unwrap();
        assert_eq!(f.rho_due(7 * SEC, &s), Some((2, 1.0)));
        publish(&mut s, 3);
        f.record(report("a", 3, false), home(), 9 * SEC, &s)
            .unwrap();
        assert_eq!(f.rho_due(9 * SEC, &s), Some((3, 0.0)));
    }

    #[test]
    fn newest_due_segment_wins_and_older_are_skipped() {
        let (s, mut f) = setup(5);
        f.record(report("a", 2, true), home(), 0, &s).unwrap();
        f.record(report("a", 3, false), home(), 0, &s).unwrap();
        // At 20 s every Segment's deadline has passed: only Segment 4 counts, and
        // "a" is merely silent on it (newest report 3 < 4): no participant.
        assert_eq!(f.rho_due(20 * SEC, &s), None);
        f.record(report("a", 4, true), home(), 0, &s).unwrap();
        assert_eq!(f.rho_due(20 * SEC, &s), Some((4, 1.0)));
        // Older Segments never come back.
        assert_eq!(f.rho_due(21 * SEC, &s), None);
        f.record(report("b", 3, true), home(), 0, &s).unwrap();
        assert_eq!(f.rho_due(21 * SEC, &s), None);
        assert_eq!(f.late_reports(), 1);
    }

    #[test]
    fn skippers_count_as_failures_silent_clients_do_not() {
        let (s, mut f) = setup(5);
        f.record(report("skipper", 1, false), home(), 0, &s)
            .unwrap();
        f.record(report("skipper", 4, true), home(), 0, &s).unwrap();
        f.record(report("behind", 2, true), home(), 0, &s).unwrap();
        f.record(report("ok", 3, true), home(), 0, &s).unwrap();
        let sum = f.summary(3);
        assert_eq!((sum.reporters, sum.successful, sum.skipped), (1, 1, 1));
        // Segment 3: published 6 s, deadline 9 s; Segment 4's (11 s) not yet passed.
        assert_eq!(f.rho_due(9 * SEC, &s), Some((3, 0.5)));
    }

    #[test]
    fn latest_report_of_a_client_wins() {
        let (s, mut f) = setup(3);
        f.record(report("a", 2, false), home(), 0, &s).unwrap();
        f.record(report("a", 2, true), home(), 0, &s).unwrap();
        assert_eq!(f.summary(2).reporters, 1);
        assert_eq!(f.rho_due(7 * SEC, &s), Some((2, 1.0)));
        assert_eq!(f.client("a").map(|c| c.reports), Some(2));
    }

    #[test]
    fn malformed_reports_are_refused() {
        let (s, mut f) = setup(8);
        let mut r = report("", 5, true);
        assert_eq!(
            f.record(r.clone(), home(), 0, &s),
            Err(FeedbackError::EmptyClientId)
        );
        r.client_id = "x".repeat(129);
        assert!(matches!(
            f.record(r, home(), 0, &s),
            Err(FeedbackError::ClientIdTooLong(_))
        ));
        assert_eq!(
            f.record(report("a", 8, true), home(), 0, &s),
            Err(FeedbackError::UnknownSegment(8))
        );
        assert_eq!(
            f.record(report("a", 2, true), home(), 0, &s),
            Err(FeedbackError::OutOfWindow(2))
        );
        let mut r = report("a", 5, true);
        r.d = 0;
        let bad = |d, successful| FeedbackError::BadD {
            d,
            n: 3,
            successful,
        };
        assert_eq!(f.record(r.clone(), home(), 0, &s), Err(bad(0, true)));
        r.d = 4;
        assert_eq!(f.record(r, home(), 0, &s), Err(bad(4, true)));
        // A failure has no crumb output.
        let mut r = report("a", 5, false);
        r.d = 1;
        assert_eq!(f.record(r, home(), 0, &s), Err(bad(1, false)));
        for rate in [f64::NAN, f64::INFINITY, -1.0] {
            let mut r = report("a", 5, true);
            r.rate = rate;
            assert_eq!(f.record(r, home(), 0, &s), Err(FeedbackError::BadRate));
        }
        let mut r = report("a", 5, false);
        r.complete = true;
        assert_eq!(
            f.record(r, home(), 0, &s),
            Err(FeedbackError::CompleteWithoutSuccess)
        );
        assert_eq!(f.clients().count(), 0, "nothing stored");
        // Nothing published yet.
        let (empty, mut f) = setup(0);
        assert_eq!(
            f.record(report("a", 0, true), home(), 0, &empty),
            Err(FeedbackError::UnknownSegment(0))
        );
    }

    #[test]
    fn client_cap() {
        let (s, _) = setup(1);
        let mut f = Feedback::new(FeedbackConfig {
            max_clients: 2,
            ..Default::default()
        });
        f.record(report("a", 0, true), home(), 0, &s).unwrap();
        f.record(report("b", 0, true), home(), 0, &s).unwrap();
        assert_eq!(
            f.record(report("c", 0, true), home(), 0, &s),
            Err(FeedbackError::TooManyClients)
        );
        f.record(report("a", 0, false), home(), 0, &s).unwrap();
    }

    #[test]
    fn clients_reporting_and_stats_and_forgetting() {
        let (mut s, mut f) = setup(5);
        let mut r = report("a", 4, true);
        r.d = 3;
        r.complete = true;
        r.rate = 123.5;
        f.record(r, home(), 42, &s).unwrap();
        f.record(report("b", 1, true), home(), 0, &s).unwrap();
        f.record(report("c", 3, true), home(), 0, &s).unwrap();
        let c = f.client("a").unwrap();
        assert_eq!((c.last_d, c.last_rate, c.last_report_at), (3, 123.5, 42));
        assert!(c.last_complete);
        // N = 5 by default: all three; with N = 2 only a and c.
        assert_eq!(f.clients_reporting(&s), 3);
        f.config.recent_segments = 2;
        assert_eq!(f.clients_reporting(&s), 1 + 1);
        // Segment 1 leaves the window at seq 6: "b" and its reports are forgotten.
        publish(&mut s, 5);
        publish(&mut s, 6);
        assert_eq!(f.rho_due(0, &s), None);
        assert!(f.client("b").is_none());
        assert!(f.reports.keys().all(|&seq| seq >= 2));
        assert_eq!(f.clients().count(), 2);
    }

    #[test]
    fn one_address_one_vote() {
        let (s, mut f) = setup(3);
        let at = |a: &str| Voter::new(a.parse().unwrap());
        // Twenty ids from one address fail; one client elsewhere succeeds.
        for i in 0..20 {
            f.record(report(&format!("x{i}"), 2, false), at("127.0.0.9"), 0, &s)
                .unwrap();
        }
        f.record(report("real", 2, true), at("127.0.0.1"), 0, &s)
            .unwrap();
        let sum = f.summary(2);
        assert_eq!((sum.reporters, sum.voters), (21, 2));
        assert_eq!(sum.rho(), Some(0.5), "each address weighs one vote");
        // Within an address, its clients keep their exact shares.
        f.record(report("real2", 2, false), at("127.0.0.1"), 0, &s)
            .unwrap();
        assert_eq!(f.summary(2).rho(), Some(0.25));
        // An IPv6 /64 is one voter, whatever its interface ids.
        assert_eq!(at("2001:db8::1"), at("2001:db8::ffff:1"));
        assert_ne!(at("2001:db8::1"), at("2001:db8:0:1::1"));
        assert_eq!(at("::ffff:127.0.0.1"), at("127.0.0.1"));
    }
}
