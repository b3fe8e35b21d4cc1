// SPDX-License-Identifier: MPL-2.0
//! The simulated channel: the real Scheduler and Feedback, a window document per
//! publish, and the crumbs' piece holders (who can serve which piece).

use std::collections::HashMap;
use std::rc::Rc;

use crate::core::api::{API_VERSION, WindowDoc};
use crate::core::feedback::{Feedback, FeedbackConfig, Report};
use crate::core::scheduler::{PublishedCrumb, PublishedSegment, Scheduler, SchedulerConfig};

/// A live crumb: its size and, per piece, the peers holding that piece (the super seed
/// holds every piece and is not listed).
pub struct CrumbState {
    pub size: u64,
    pub holders: Vec<Vec<u32>>,
    /// Downloaders told the super seed's address by the tracker so far.
    pub granted: u32,
}

pub struct Channel {
    pub scheduler: Scheduler,
    pub feedback: Feedback,
    pub window: Option<Rc<WindowDoc>>,
    pub crumbs: HashMap<(u64, u16), CrumbState>,
    pub sizes: Vec<u64>,
    pub piece_size: u64,
    pub duration: u64,
    pub published: u64,
    pub reports_accepted: u64,
    pub reports_rejected: u64,
    pub rhos: Vec<(u64, f64)>,
}

fn info_hash(seq: u64, index: u16) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&seq.to_be_bytes());
    h[8..10].copy_from_slice(&index.to_be_bytes());
    h
}

impl Channel {
    pub fn new(sizes: Vec<u64>, piece_size: u64, duration: u64) -> Self {
        Channel {
            scheduler: Scheduler::new(SchedulerConfig::default()),
            feedback: Feedback::new(FeedbackConfig::default()),
            window: None,
            crumbs: HashMap::new(),
            sizes,
            piece_size: piece_size.max(1),
            duration,
            published: 0,
            reports_accepted: 0,
            reports_rejected: 0,
            rhos: Vec::new(),
        }
    }

    pub fn pieces(&self, size: u64) -> usize {
        size.div_ceil(self.piece_size).max(1) as usize
    }

    /// Publishes the next Segment at `now`; forgets the crumbs that left the window.
    pub fn publish(&mut self, now: u64) {
        let seq = self.published;
        self.published += 1;
        let crumbs: Vec<PublishedCrumb> = self
            .sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| PublishedCrumb {
                index: (i + 1) as u16,
                info_hash: info_hash(seq, (i + 1) as u16),
                size,
                layer: (0, i.min(255) as u8, 0),
                piece_length: self.piece_size as u32,
            })
            .collect();
        for c in &crumbs {
            let holders = vec![Vec::new(); self.pieces(c.size)];
            self.crumbs.insert(
                (seq, c.index),
                CrumbState {
                    size: c.size,
                    holders,
                    granted: 0,
                },
            );
        }
        let segment = PublishedSegment {
            seq,
            duration: self.duration,
            crumbs,
            pts: Some(seq * self.duration),
        };
        let expired = self
            .scheduler
            .publish(segment, now)
            .expect("sequence numbers increase");
        for e in expired {
            for c in e.crumbs {
                self.crumbs.remove(&(e.seq, c.index));
            }
        }
        self.window = Some(Rc::new(self.window_doc(now)));
        if let Some(rho) = self.feedback.rho_due(now, &self.scheduler) {
            self.rhos.push(rho);
        }
    }

    fn window_doc(&self, now: u64) -> WindowDoc {
        let segments = self
            .scheduler
            .window()
            .into_iter()
            .map(|e| e.to_doc("sim", now))
            .collect();
        WindowDoc {
            version: API_VERSION,
            channel: "sim".into(),
            epoch: None,
            caps: None,
            latest: self.scheduler.latest().map(|e| e.seq),
            start_index: self.scheduler.start_index(),
            window_size: self.scheduler.config().window,
            archive: false,
            tracker: String::new(),
            super_seed: None,
            oldest: None,
            segments,
        }
    }

    pub fn report(&mut self, report: Report, now: u64) {
        match self.feedback.record(report, now, &self.scheduler) {
            Ok(()) => self.reports_accepted += 1,
            Err(_) => self.reports_rejected += 1,
        }
    }

    /// When Segment `seq`'s capture started (Segment k is published at (k+1)·|s|).
    pub fn capture_start(&self, seq: u64) -> u64 {
        seq * self.duration
    }
}
