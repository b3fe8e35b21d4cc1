// SPDX-License-Identifier: MPL-2.0
use super::*;
use crate::core::api::CrumbDoc;
use crate::core::time::{MS, SEC};

fn seg(seq: u64, duration: u64, sizes: &[u64]) -> SegmentDoc {
    SegmentDoc {
        seq,
        pts: Some(seq.wrapping_mul(duration)),
        duration,
        age_ms: 0,
        crumbs: sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| CrumbDoc {
                index: i as u16 + 1,
                info_hash: "00".repeat(20),
                size,
                layer: [0, 0, i as u8],
                piece_length: 16384,
                torrent: String::new(),
            })
            .collect(),
    }
}

fn window(segments: Vec<SegmentDoc>, start: Option<u64>) -> WindowDoc {
    WindowDoc {
        version: API_VERSION,
        channel: "live".into(),
        epoch: None,
        caps: None,
        audio_caps: None,
        latest: segments.iter().map(|s| s.seq).max(),
        start_index: start,
        window_size: 5,
        archive: false,
        tracker: String::new(),
        super_seed: None,
        oldest: None,
        max_duration: None,
        sole_source_share: None,
        segments,
    }
}

/// Segments `seqs` of 2 s with crumb sizes `sizes`, x' = `start`.
fn win(seqs: std::ops::RangeInclusive<u64>, sizes: &[u64], start: u64) -> WindowDoc {
    window(seqs.map(|s| seg(s, 2 * SEC, sizes)).collect(), Some(start))
}

fn downloads(actions: &[Action]) -> Vec<(u64, u16)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Download { seq, index } => Some((*seq, *index)),
            _ => None,
        })
        .collect()
}

fn records(actions: &[Action]) -> Vec<SegmentRecord> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Output { record, .. } => Some(record.clone()),
            _ => None,
        })
        .collect()
}

/// The engine as these tests were written for: the paper's rule, the super seed
/// only from the tracker (no fallback actions), no stall timeout. Tests of the
/// defaults say so.
fn base() -> ClientConfig {
    ClientConfig {
        adaptation: Adaptation::Paper,
        peer_patience: None,
        stall_timeout: None,
        ..ClientConfig::default()
    }
}

fn engine(config: ClientConfig) -> ClientEngine {
    let mut e = ClientEngine::new(config, 0);
    assert_eq!(e.poll_actions(0), vec![Action::FetchWindow]);
    e
}

/// Completes every crumb of `seq` up to `d` at `now` (crumb 1 first).
fn complete(e: &mut ClientEngine, now: u64, seq: u64, d: u16) -> Vec<Action> {
    for index in 1..=d {
        e.on_crumb_complete(now, seq, index);
    }
    e.poll_actions(now)
}

#[test]
fn initial_d_from_eq3_and_caps() {
    let sizes = [100, 200, 300, 400];
    for (max_crumbs, rate, want) in [(0, 100.0, 2), (1, 100.0, 1), (0, 1e9, 4), (3, 1e9, 3)] {
        let mut e = engine(ClientConfig {
            initial_rate: Some(rate),
            max_crumbs,
            ..base()
        });
        // |s| = 4 s, TE = 0: 400 bytes at 100 B/s are crumbs 1..2.
        let w = window(vec![seg(7, 4 * SEC, &sizes)], Some(7));
        e.on_window(SEC, &w).unwrap();
        assert_eq!(downloads(&e.poll_actions(SEC)), vec![(7, 1)]);
        assert_eq!(e.stats().d_current, want);
    }
    // No rate and no initial_rate: D = 1.
    let mut e = engine(base());
    e.on_window(0, &win(1..=5, &sizes, 2)).unwrap();
    assert_eq!(e.stats().d_current, 1);
}

#[test]
fn crumb_one_first_then_in_order() {
    let mut e = engine(ClientConfig {
        initial_rate: Some(1e9),
        ..base()
    });
    e.on_window(0, &win(1..=5, &[10, 10, 10, 10, 10], 2))
        .unwrap();
    assert_eq!(downloads(&e.poll_actions(0)), vec![(2, 1)]);
    e.on_crumb_progress(MS, 2, 1, 5);
    assert!(e.poll_actions(MS).is_empty(), "nothing beside crumb 1");
    e.on_crumb_complete(2 * MS, 2, 1);
    assert_eq!(downloads(&e.poll_actions(2 * MS)), vec![(2, 2), (2, 3)]);
    e.on_crumb_complete(3 * MS, 2, 3);
    assert_eq!(downloads(&e.poll_actions(3 * MS)), vec![(2, 4)]);
    e.on_crumb_complete(4 * MS, 2, 99); // no such crumb: ignored
    e.on_crumb_complete(4 * MS, 1, 2); // another Segment: ignored
    e.on_crumb_complete(4 * MS, 2, 2);
    e.on_crumb_complete(4 * MS, 2, 4);
    assert_eq!(downloads(&e.poll_actions(4 * MS)), vec![(2, 5)]);
    let a = complete(&mut e, 5 * MS, 2, 5);
    let r = &records(&a)[0];
    assert!(r.successful && r.complete && !r.skipped);
    assert_eq!(
        (r.seq, r.d, r.d_target, r.crumbs_done, r.crumbs_total),
        (2, 5, 5, 5, 5)
    );
    assert!(a.contains(&Action::Report(ClientReport {
        seq: 2,
        successful: true,
        complete: true,
        d: 5,
        rate: 0.0,
        sole_source: false,
    })));
    // Moved on at once: the next Segment's crumb 1, and only it.
    assert_eq!(downloads(&a), vec![(3, 1)]);
    assert_eq!(e.stats().startup_delay, Some(5 * MS));
}

fn prepares(actions: &[Action]) -> Vec<(u64, u16)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Prepare { seq, index } => Some((*seq, *index)),
            _ => None,
        })
        .collect()
}

#[test]
fn prepared_crumbs_start_ahead_of_their_turn() {
    let mut e = engine(ClientConfig {
        initial_rate: Some(1e9),
        prepare_ahead: 2,
        ..base()
    });
    e.on_window(0, &win(1..=5, &[10, 10, 10, 10, 10], 2))
        .unwrap();
    // Crumb 1 alone, crumbs 2 and 3 prepared meanwhile.
    let a = e.poll_actions(0);
    assert_eq!(downloads(&a), vec![(2, 1)]);
    assert_eq!(prepares(&a), vec![(2, 2), (2, 3)]);
    e.on_crumb_complete(MS, 2, 1);
    let a = e.poll_actions(MS);
    assert_eq!(downloads(&a), vec![(2, 2), (2, 3)]);
    assert_eq!(prepares(&a), vec![(2, 4), (2, 5)]);
    e.on_crumb_complete(2 * MS, 2, 2);
    let a = e.poll_actions(2 * MS);
    assert_eq!(downloads(&a), vec![(2, 4)]);
    assert!(prepares(&a).is_empty(), "crumb 5 is prepared already");
    // A prepared crumb's progress before it is asked for means nothing.
    let a = complete(&mut e, 3 * MS, 2, 5);
    assert_eq!(records(&a)[0].d, 5);
    assert!(
        !a.iter().any(|x| matches!(x, Action::Cancel { seq: 2, .. })),
        "{a:?}"
    );

    // D = 3 of 5 (2 s at 30 B/s: 60 bytes): crumbs 2 and 3 prepared, never 4 (D + 1).
    // Crumb 1 never comes: at the deadline the prepared crumbs go with it.
    let mut e = engine(ClientConfig {
        initial_rate: Some(30.0),
        prepare_ahead: 3,
        ..base()
    });
    e.on_window(0, &win(1..=5, &[20, 20, 20, 20, 20], 2))
        .unwrap();
    let a = e.poll_actions(0);
    assert_eq!(e.stats().d_current, 3);
    assert_eq!(prepares(&a), vec![(2, 2), (2, 3)]);
    e.tick(10 * SEC);
    let a = e.poll_actions(10 * SEC);
    assert!(!records(&a)[0].successful);
    let mut cancels: Vec<_> = a
        .iter()
        .filter_map(|x| match x {
            Action::Cancel { seq: 2, index } => Some(*index),
            _ => None,
        })
        .collect();
    cancels.sort();
    assert_eq!(cancels, vec![1, 2, 3]);

    // At the live edge (Segment 7 the newest): nothing prepared.
    let mut e = engine(ClientConfig {
        initial_rate: Some(1e9),
        prepare_ahead: 2,
        ..base()
    });
    let w = window(vec![seg(7, 4 * SEC, &[20, 20, 20, 20, 20])], Some(7));
    e.on_window(0, &w).unwrap();
    let a = e.poll_actions(0);
    assert_eq!(downloads(&a), vec![(7, 1)]);
    assert!(prepares(&a).is_empty(), "{a:?}");

    // Off (the engine's default): nothing prepared.
    let mut e = engine(ClientConfig {
        initial_rate: Some(1e9),
        ..base()
    });
    e.on_window(0, &win(1..=5, &[10, 10, 10, 10, 10], 2))
        .unwrap();
    assert!(prepares(&e.poll_actions(0)).is_empty());
}

#[test]
fn ample_time_starts_more_crumbs_at_once() {
    // Crumb 1 arrives at `bps`; then the other nine crumbs (90 kB) of a 2 s Segment
    // need 0.09 s at 1 MB/s (ample: six at once) or 1.8 s at 50 kB/s (two at once).
    for (bps, at_once) in [(1_000_000u64, 6usize), (50_000, 2)] {
        let mut e = engine(ClientConfig {
            initial_rate: Some(1e9),
            adaptation: Adaptation::RateBased,
            ..base()
        });
        e.on_window(0, &win(1..=5, &[10_000; 10], 2)).unwrap();
        assert_eq!(downloads(&e.poll_actions(0)), vec![(2, 1)]);
        let mut total = 0;
        for k in 1..=20 {
            total += bps / 100;
            e.on_bytes_received(k * 10 * MS, total);
        }
        e.on_crumb_complete(200 * MS, 2, 1);
        assert_eq!(
            downloads(&e.poll_actions(200 * MS)).len(),
            at_once,
            "{bps} B/s"
        );
    }
}

#[test]
fn the_rate_is_never_above_the_download_cap() {
    // A token bucket's burst: 30 kB in 150 ms under a 16 KiB/s cap.
    let mut e = engine(ClientConfig {
        initial_rate: Some(1e9),
        rate_cap: Some(16_384.0),
        ..base()
    });
    e.on_window(0, &win(1..=5, &[10_000; 3], 2)).unwrap();
    e.poll_actions(0);
    for k in 1..=15 {
        e.on_bytes_received(k * 10 * MS, k * 2_000);
    }
    assert_eq!(e.rate(150 * MS), Some(16_384.0));
}

fn fallbacks(actions: &[Action]) -> Vec<(u64, u16)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::UseSuperSeed { seq, index, .. } => Some((*seq, *index)),
            _ => None,
        })
        .collect()
}

/// A client with the default peer patience, R known as `rate` before it starts, and
/// one Segment (2) of one crumb of `size` bytes lasting `duration`.
fn patient_with_one_crumb(rate: f64, duration: u64, size: u64) -> ClientEngine {
    let mut e = engine(ClientConfig {
        peer_patience: Some(300 * MS),
        initial_rate: Some(rate),
        ..base()
    });
    e.on_window(0, &window(vec![seg(2, duration, &[size])], Some(2)))
        .unwrap();
    e
}

/// The super seed asks as (crumb index, take over).
fn super_seed_asks(actions: &[Action]) -> Vec<(u16, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::UseSuperSeed {
                index, take_over, ..
            } => Some((*index, *take_over)),
            _ => None,
        })
        .collect()
}

/// Feeds bytes at `bps` from `from` to `to` (ms steps), as the running total `total`.
fn feed(e: &mut ClientEngine, total: &mut u64, from: u64, to: u64, bps: u64) {
    let mut t = from;
    while t < to {
        t += 10 * MS;
        *total += bps / 100;
        e.on_bytes_received(t, *total);
    }
}

/// The fill: D is chosen when a Segment begins, from an R that lags; when its D
/// crumbs are in and the Segment's own |s| still has room for one more at
/// FILL_SAFETY·R, the next crumb is fetched too (from peers alone: no fallback), and
/// the Segment ends when that no longer fits. Not in a run's first Segment (the
/// viewer's startup waits for it), and not with the paper's rule.
#[test]
fn the_fill_adds_crumbs_while_the_segment_has_time() {
    let run = |adaptation: Adaptation| {
        let mut e = engine(ClientConfig {
            adaptation,
            peer_patience: Some(300 * MS),
            ..base()
        });
        // 4 s Segments of twenty 20 kB crumbs, all published: Segment 2 is x'.
        let sizes = [20_000; 20];
        let w = window((1..=5).map(|s| seg(s, 4 * SEC, &sizes)).collect(), Some(2));
        e.on_window(0, &w).unwrap();
        e.poll_actions(0);
        let mut total = 0;
        // The first Segment (no R yet: D = 1) takes 1 s at 20 kB/s and is not
        // filled although 3 s of its |s| are left.
        feed(&mut e, &mut total, 0, SEC, 20_000);
        let a = complete(&mut e, SEC, 2, 1);
        let r = &records(&a)[0];
        assert_eq!((r.seq, r.d, r.d_target), (2, 1, 1), "{adaptation:?}");
        // Segment 3 begins with R = 20 kB/s.
        assert_eq!(downloads(&a), vec![(3, 1)], "{adaptation:?}");
        let chosen = e.stats().d_current;
        // Its crumbs now come at 100 kB/s: R rises while they do.
        let mut t = SEC;
        let mut done = 0u16;
        let mut outputs = Vec::new();
        let mut asked = vec![1u16];
        let mut fell_back = Vec::new();
        let mut stalled = false;
        while outputs.is_empty() && t < 6 * SEC {
            feed(&mut e, &mut total, t, t + 200 * MS, 100_000);
            t += 200 * MS;
            done += 1;
            e.on_crumb_complete(t, 3, done);
            let a = e.poll_actions(t);
            asked.extend(downloads(&a).iter().filter(|d| d.0 == 3).map(|d| d.1));
            fell_back.extend(fallbacks(&a));
            outputs.extend(records(&a));
            if !stalled && outputs.is_empty() && asked.iter().any(|&i| i > chosen) {
                // A filled crumb that gets no byte for 700 ms (past the peer
                // patience) is still left to the peers.
                stalled = true;
                t += 700 * MS;
                e.tick(t);
                fell_back.extend(fallbacks(&e.poll_actions(t)));
            }
        }
        (chosen, done, asked, fell_back, outputs, e.stats())
    };
    let (chosen, done, asked, fell_back, outputs, stats) = run(Adaptation::RateBased);
    let r = &outputs[0];
    assert!(chosen < 5, "D = {chosen} leaves room to fill");
    assert_eq!((r.seq, r.d, r.d_target), (3, done, done));
    assert!(
        r.complete && done > chosen,
        "filled from {chosen} to {done}"
    );
    assert!(done < 20, "the fill stops where |s| runs out: {done}");
    // Each crumb once, in order; the fill's are never asked of the super seed.
    assert_eq!(asked, (1..=done.max(chosen)).collect::<Vec<_>>());
    assert!(fell_back.iter().all(|f| f.1 <= chosen), "{fell_back:?}");
    assert_eq!(stats.crumbs_filled, u64::from(done - chosen));
    // Finished within |s| (4 s from its start at 1 s): TE untouched.
    assert!(r.finished_at <= r.started_at + 4 * SEC);

    let (chosen, done, _, _, outputs, stats) = run(Adaptation::Paper);
    assert_eq!(
        (outputs[0].d, done),
        (chosen, chosen),
        "the paper's D alone"
    );
    assert_eq!(stats.crumbs_filled, 0);
}

/// Where [`to_tail`] left a client.
struct AtTail {
    e: ClientEngine,
    t: u64,
    /// Crumbs of Segment 2 completed.
    done: u16,
    /// Bytes received so far.
    total: u64,
    /// The crumbs of Segment 2 asked for, each with the crumbs done when it was.
    asked: Vec<(u16, u16)>,
    out: Vec<SegmentRecord>,
}

/// Runs a rate-based client into its second Segment (2, of 4 s and twenty 60 kB
/// crumbs, begun at 1 s) and completes its crumbs at 100 kB/s, one every 600 ms,
/// until the Segment is output or waits for the next one with a tail crumb on its
/// way. `latest`: the newest Segment in the window (2: at the live edge).
fn to_tail(tail_crumb: bool, latest: u64) -> AtTail {
    let mut e = engine(ClientConfig {
        adaptation: Adaptation::RateBased,
        tail_crumb,
        ..base()
    });
    let sizes = [60_000; 20];
    let w = window(
        (1..=latest).map(|s| seg(s, 4 * SEC, &sizes)).collect(),
        Some(1),
    );
    e.on_window(0, &w).unwrap();
    assert_eq!(downloads(&e.poll_actions(0)), vec![(1, 1)]);
    let mut total = 0;
    feed(&mut e, &mut total, 0, SEC, 60_000);
    let a = complete(&mut e, SEC, 1, 1);
    assert_eq!(records(&a)[0].tail, None, "never in a run's first Segment");
    let of_2 = |a: &[Action], done: u16| -> Vec<(u16, u16)> {
        downloads(a)
            .iter()
            .filter(|d| d.0 == 2)
            .map(|d| (d.1, done))
            .collect()
    };
    let mut asked = of_2(&a, 0);
    let (mut t, mut done, mut out) = (SEC, 0u16, Vec::new());
    while out.is_empty() && !e.waits_for_window() && t < 6 * SEC {
        // Three quarters of the next crumb verified, then all of it.
        feed(&mut e, &mut total, t, t + 450 * MS, 100_000);
        e.on_crumb_progress(t + 450 * MS, 2, done + 1, 45_000);
        asked.extend(of_2(&e.poll_actions(t + 450 * MS), done));
        feed(&mut e, &mut total, t + 450 * MS, t + 600 * MS, 100_000);
        t += 600 * MS;
        done += 1;
        e.on_crumb_complete(t, 2, done);
        let a = e.poll_actions(t);
        asked.extend(of_2(&a, done));
        out.extend(records(&a).into_iter().filter(|r| r.seq == 2));
    }
    AtTail {
        e,
        t,
        done,
        total,
        asked,
        out,
    }
}

/// The tail crumb: at the live edge, crumb D + 1 is asked for beside the last of D when
/// it cannot arrive whole in |s|, fetched with the time left (from peers alone), and the
/// Segment is output with it as its tail when the next Segment comes out, or one
/// piece's time before that is due; the tail's bytes leave R alone, and its torrent
/// is dropped only after the Output (which reads it).
#[test]
fn the_tail_crumb_uses_the_idle_time_at_the_live_edge() {
    let AtTail {
        mut e,
        t,
        done,
        mut total,
        asked,
        out,
    } = to_tail(true, 2);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(e.stats().tail_crumbs, 1);
    let tail = done + 1;
    let indices: Vec<u16> = asked.iter().map(|a| a.0).collect();
    assert_eq!(indices, (1..=tail).collect::<Vec<_>>(), "one tail, after D");
    // Asked for as crumb D ended, before it was in (its start overlaps D's end).
    assert_eq!(asked.last().unwrap().1, done - 1, "{asked:?}");
    assert!(
        e.waits_for_window(),
        "the window is held for the next Segment"
    );
    // The tail's bytes do not move R.
    feed(&mut e, &mut total, t, t + 10 * MS, 100_000);
    let r0 = e.rate(t + 10 * MS);
    feed(&mut e, &mut total, t + 10 * MS, t + 150 * MS, 100_000);
    assert_eq!(e.rate(t + 150 * MS), r0);
    let t = t + 150 * MS;
    e.on_crumb_progress(t, 2, tail, 16_384);
    // Segment 3 comes out: Segment 2 is done with its tail, then Segment 3 begins.
    let w = window(
        (1..=3).map(|s| seg(s, 4 * SEC, &[60_000; 20])).collect(),
        Some(1),
    );
    e.on_window(t, &w).unwrap();
    let a = e.poll_actions(t);
    let r = &records(&a)[0];
    assert_eq!(
        (r.seq, r.d, r.tail, r.finished_at),
        (2, done, Some(tail), t)
    );
    assert!(r.complete && r.successful);
    let at = |want: &dyn Fn(&Action) -> bool| a.iter().position(want).unwrap();
    let output = at(&|x| matches!(x, Action::Output { seq: 2, .. }));
    let cancel = at(&|x| {
        *x == Action::Cancel {
            seq: 2,
            index: tail,
        }
    });
    let next = at(&|x| *x == Action::Download { seq: 3, index: 1 });
    assert!(output < cancel && cancel < next, "{a:?}");
    assert_eq!(e.stats().tail_crumbs_whole, 0);

    // No next Segment: the tail ends one piece's time at R before |s| is over.
    let AtTail {
        mut e,
        t,
        done,
        mut total,
        ..
    } = to_tail(true, 2);
    feed(&mut e, &mut total, t, t + 10 * MS, 100_000);
    e.tick(5 * SEC);
    let r = &records(&e.poll_actions(5 * SEC))[0];
    assert_eq!((r.d, r.tail), (done, Some(done + 1)));
    assert!(r.finished_at > t && r.finished_at < 5 * SEC, "{r:?}");
    // Its last bytes, after it was dropped, leave R alone too.
    let r0 = e.rate(5 * SEC);
    feed(&mut e, &mut total, 5 * SEC, 5 * SEC + 100 * MS, 100_000);
    assert_eq!(e.rate(5 * SEC + 100 * MS), r0);

    // A tail that arrives whole is one more crumb, and the next one is the tail.
    let AtTail { mut e, t, done, .. } = to_tail(true, 2);
    e.on_crumb_complete(t, 2, done + 1);
    let a = e.poll_actions(t);
    assert!(records(&a).is_empty());
    assert_eq!(downloads(&a), vec![(2, done + 2)]);
    assert_eq!((e.stats().tail_crumbs, e.stats().tail_crumbs_whole), (2, 1));

    // Off, or behind the live edge (the next Segment is out): no tail, done at D.
    for (tail_crumb, latest) in [(false, 2), (true, 3)] {
        let AtTail {
            e,
            done,
            asked,
            out,
            ..
        } = to_tail(tail_crumb, latest);
        assert_eq!(e.stats().tail_crumbs, 0);
        assert_eq!(
            (out[0].d, out[0].tail),
            (done, None),
            "{tail_crumb} {latest}"
        );
        let indices: Vec<u16> = asked.iter().map(|a| a.0).collect();
        assert_eq!(indices, (1..=done).collect::<Vec<_>>());
    }
}

/// Peers first: the super seed is asked for a crumb with no byte after the peer
/// patience, or whose pace would miss the deadline; once per crumb; never for a
/// crumb on time.
#[test]
fn super_seed_fallback_after_peer_patience() {
    let mut e = engine(ClientConfig {
        peer_patience: Some(300 * MS),
        initial_rate: Some(1e9),
        ..base()
    });
    // |s| = 8 s: patience 300 ms (half the time to the deadline is more).
    let sizes = [100_000, 100_000, 100_000];
    e.on_window(0, &window(vec![seg(2, 8 * SEC, &sizes)], Some(2)))
        .unwrap();
    assert_eq!(downloads(&e.poll_actions(0)), vec![(2, 1)]);
    assert_eq!(
        e.next_wakeup(),
        Some(300 * MS),
        "wake at the end of patience"
    );
    e.tick(299 * MS);
    assert!(fallbacks(&e.poll_actions(299 * MS)).is_empty());
    e.tick(300 * MS);
    assert_eq!(
        fallbacks(&e.poll_actions(300 * MS)),
        vec![(2, 1)],
        "no byte yet"
    );
    e.tick(SEC);
    assert!(fallbacks(&e.poll_actions(SEC)).is_empty(), "once per crumb");
    assert_eq!(e.next_wakeup(), Some(8 * SEC), "then only the deadline");
    e.on_crumb_complete(SEC, 2, 1);
    assert_eq!(downloads(&e.poll_actions(SEC)), vec![(2, 2), (2, 3)]);
    // Crumb 2 at a pace that makes it (half in 0.5 s, 6.5 s left); crumb 3 at one
    // that would not (a twentieth in 0.5 s: 9.5 s more needed).
    e.on_crumb_progress(1500 * MS, 2, 2, 50_000);
    e.on_crumb_progress(1500 * MS, 2, 3, 5_000);
    assert_eq!(fallbacks(&e.poll_actions(1500 * MS)), vec![(2, 3)]);
    e.on_crumb_complete(2 * SEC, 2, 2);
    assert!(fallbacks(&e.poll_actions(2 * SEC)).is_empty());
    assert_eq!(e.stats().super_seed_fallbacks, 2);

    // A short budget shortens the patience: half the time to the deadline.
    let mut e = engine(ClientConfig {
        peer_patience: Some(300 * MS),
        initial_rate: Some(1e9),
        ..base()
    });
    e.on_window(0, &window(vec![seg(2, 400 * MS, &[10_000])], Some(2)))
        .unwrap();
    e.poll_actions(0);
    assert_eq!(e.next_wakeup(), Some(200 * MS));
    e.tick(200 * MS);
    assert_eq!(fallbacks(&e.poll_actions(200 * MS)), vec![(2, 1)]);
    // None: never.
    let mut e = engine(base());
    e.on_window(0, &win(1..=5, &[10_000], 2)).unwrap();
    e.poll_actions(0);
    e.tick(1900 * MS);
    assert!(fallbacks(&e.poll_actions(1900 * MS)).is_empty());
}

/// A crumb's patience is fixed when it is asked for. R counts the time a Segment is
/// active, so while crumb 1 waits for a peer that sends nothing R falls, and a
/// patience computed again from it kept moving away (a fibre client waited 1.9 s of a
/// 3.6 s budget for a throttled peer, swarm bench).
#[test]
fn the_peer_patience_does_not_drift_while_nothing_comes() {
    let mut e = engine(ClientConfig {
        peer_patience: Some(300 * MS),
        ..base()
    });
    e.on_window(0, &win(2..=3, &[20_000], 2)).unwrap();
    e.poll_actions(0);
    // Segment 2's crumb 1 at 100 kB/s, done at 200 ms: R = 100 kB/s, and Segment 3
    // begins at once.
    for k in 0..=20u64 {
        e.on_bytes_received(k * 10 * MS, k * 1_000);
    }
    let a = complete(&mut e, 200 * MS, 2, 1);
    assert_eq!(downloads(&a), vec![(3, 1)]);
    // 300 ms, plus a first piece of 16 KiB at 100 kB/s (163.84 ms).
    let end = 200 * MS + 300 * MS + 163_840_000;
    assert_eq!(e.next_wakeup(), Some(end));
    e.tick(end - MS);
    assert!(fallbacks(&e.poll_actions(end - MS)).is_empty());
    // No byte meanwhile (R fell to 30 kB/s): the end stays where it was.
    assert!(e.rate(end).unwrap() < 35_000.0);
    e.tick(end);
    assert_eq!(fallbacks(&e.poll_actions(end)), vec![(3, 1)]);
}

/// The super seed takes over a crumb's pieces when the peers hold it up (no byte, or
/// a pace far under R), not when the link is full (a pace near R: pieces taken over
/// would come through it twice), nor for an urgent crumb 1 (sized by R).
#[test]
fn the_super_seed_takes_over_only_from_slow_peers() {
    let take_overs = |actions: &[Action]| -> Vec<bool> {
        super_seed_asks(actions).into_iter().map(|a| a.1).collect()
    };
    // R measured at `rate` B/s over 2 s; crumb 1 (100 kB of an 8 s Segment) has
    // `have` bytes at 2 s.
    let run = |rate: u64, have: u64| {
        // Known to be fast before it starts: crumb 1 is not urgent at once.
        let mut e = patient_with_one_crumb(1e9, 8 * SEC, 100_000);
        e.poll_actions(0);
        for k in 1..=20u64 {
            e.on_bytes_received(k * 100 * MS, k * rate / 10);
        }
        if have > 0 {
            e.on_crumb_progress(2 * SEC, 2, 1, have);
        }
        e.tick(2 * SEC);
        take_overs(&e.poll_actions(2 * SEC))
    };
    assert_eq!(run(100_000, 0), vec![true], "no byte yet");
    assert_eq!(
        run(100_000, 10_000),
        vec![true],
        "5 kB/s on a 100 kB/s link"
    );
    assert_eq!(run(10_000, 18_000), vec![false], "9 kB/s on a 10 kB/s link");
    // An urgent crumb 1 is sized by R: the link is what is short.
    let mut e = engine(ClientConfig {
        peer_patience: Some(300 * MS),
        initial_rate: Some(32_000.0),
        ..base()
    });
    e.on_window(0, &window(vec![seg(2, 4 * SEC, &[85_000])], Some(2)))
        .unwrap();
    assert_eq!(take_overs(&e.poll_actions(0)), vec![false]);
}

/// Crumb 1 that needs more than half the time left at R is asked of the super seed
/// at once, beside the peers (a weak line has no time for the patience); on a line
/// where it fits, peers first as before.
#[test]
fn an_urgent_crumb_1_asks_the_super_seed_at_once() {
    let adsl = |rate: f64| {
        let mut e = engine(ClientConfig {
            peer_patience: Some(300 * MS),
            initial_rate: Some(rate),
            ..base()
        });
        // A 4 s Segment whose crumb 1 is 85 kB (the bench's ADSL case).
        let sizes = [85_000, 100_000];
        e.on_window(0, &window(vec![seg(2, 4 * SEC, &sizes)], Some(2)))
            .unwrap();
        e
    };
    // 32 kB/s (ADSL 256 kbit/s): 2.7 s of 4 s.
    let mut e = adsl(32_000.0);
    let a = e.poll_actions(0);
    assert_eq!(downloads(&a), vec![(2, 1)]);
    assert_eq!(fallbacks(&a), vec![(2, 1)], "at once, with the download");
    assert_eq!(e.stats().urgent_fallbacks, 1);
    e.tick(SEC);
    assert!(fallbacks(&e.poll_actions(SEC)).is_empty(), "once per crumb");
    // 75 kB/s (600 kbit/s): 1.1 s of 4 s: peers first, the patience as before.
    let mut e = adsl(75_000.0);
    assert!(fallbacks(&e.poll_actions(0)).is_empty());
    e.on_crumb_progress(100 * MS, 2, 1, 16_384);
    e.tick(299 * MS);
    assert!(fallbacks(&e.poll_actions(299 * MS)).is_empty());
    assert_eq!(e.stats().urgent_fallbacks, 0);
    // No patience (peer-patience = -1): never, urgent or not.
    let mut e = engine(ClientConfig {
        initial_rate: Some(32_000.0),
        ..base()
    });
    e.on_window(0, &window(vec![seg(2, 4 * SEC, &[85_000])], Some(2)))
        .unwrap();
    assert!(fallbacks(&e.poll_actions(0)).is_empty());
}

/// The super seed asks as (crumb index, alone).
fn alone_asks(actions: &[Action]) -> Vec<(u16, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::UseSuperSeed { index, alone, .. } => Some((*index, *alone)),
            _ => None,
        })
        .collect()
}

/// An urgent crumb 1 on a line that needs more than half of |s| for it at R comes
/// from the super seed alone (no second source whose copies would fill the line);
/// one urgent for lack of a measured rate keeps its peers beside the super seed.
#[test]
fn a_slow_lines_urgent_crumb_1_comes_from_the_super_seed_alone() {
    let line = |rate: Option<f64>, duration: u64| {
        let mut e = engine(ClientConfig {
            peer_patience: Some(300 * MS),
            initial_rate: rate,
            ..base()
        });
        e.on_window(
            0,
            &window(vec![seg(2, duration, &[85_000, 100_000])], Some(2)),
        )
        .unwrap();
        e
    };
    // 32 kB/s (ADSL 256 kbit/s): 2.7 s of a 4 s Segment.
    let mut e = line(Some(32_000.0), 4 * SEC);
    assert_eq!(alone_asks(&e.poll_actions(0)), vec![(1, true)]);
    assert_eq!(e.stats().sole_source_crumbs, 1);
    // The super seed sends nothing: once, the crumb is taken over and no longer
    // alone (crumbsrc opens it to the tracker's peers), counted as opened.
    let mut later = Vec::new();
    for k in 1..=30 {
        e.tick(k * 100 * MS);
        later.extend(e.poll_actions(k * 100 * MS));
    }
    assert_eq!(alone_asks(&later), vec![(1, false)]);
    assert_eq!(super_seed_asks(&later), vec![(1, true)]);
    assert_eq!(e.stats().sole_source_opened, 1);
    // 50 kB/s: 1.7 s of 4 s, not urgent: peers first, no super seed yet.
    let mut e = line(Some(50_000.0), 4 * SEC);
    assert!(alone_asks(&e.poll_actions(0)).is_empty());
    // The same line and crumb in a 3 s Segment: 1.7 s is over half of it.
    let mut e = line(Some(50_000.0), 3 * SEC);
    assert_eq!(alone_asks(&e.poll_actions(0)), vec![(1, true)]);
    // No rate known (a first Segment): urgent, but nothing says the line is slow.
    let mut e = line(None, 4 * SEC);
    assert_eq!(alone_asks(&e.poll_actions(0)), vec![(1, false)]);
    assert_eq!(e.stats().sole_source_crumbs, 0);
    // Its take-over is not an opening: it was never alone.
    for k in 1..=30 {
        e.tick(k * 100 * MS);
        e.poll_actions(k * 100 * MS);
    }
    assert_eq!(e.stats().super_seed_take_overs, 1);
    assert_eq!(e.stats().sole_source_opened, 0);
}

/// The channel's `sole_source_share` decides which weak lines go alone: none at 0,
/// all at 1 (and when the window does not say), and at 0.25 about a quarter of the
/// clients for one Segment, and a quarter of one client's Segments, by its draws.
#[test]
fn the_channels_share_decides_which_weak_lines_go_alone() {
    let alone = |share: Option<f64>, key: u64, seq: u64| {
        let mut e = engine(ClientConfig {
            peer_patience: Some(300 * MS),
            initial_rate: Some(32_000.0),
            ..base()
        });
        e.set_draw_key(key);
        let mut w = window(vec![seg(seq, 4 * SEC, &[85_000, 100_000])], Some(seq));
        w.sole_source_share = share;
        e.on_window(0, &w).unwrap();
        let asks = alone_asks(&e.poll_actions(0));
        assert_eq!(asks.len(), 1, "urgent either way: {asks:?}");
        assert_eq!(e.stats().sole_source_crumbs, u64::from(asks[0].1));
        asks[0].1
    };
    assert!((0..20).all(|k| !alone(Some(0.0), k, 2)));
    assert!((0..20).all(|k| alone(Some(1.0), k, 2)));
    assert!((0..20).all(|k| alone(None, k, 2)));
    // Out of range or not a number: clamped, or all.
    assert!((0..20).all(|k| alone(Some(7.0), k, 2) && alone(Some(f64::NAN), k, 2)));
    assert!((0..20).all(|k| !alone(Some(-1.0), k, 2)));
    let clients = (0..400).filter(|&k| alone(Some(0.25), k, 2)).count();
    assert!((70..130).contains(&clients), "{clients} of 400 clients");
    let segments = (2..402).filter(|&q| alone(Some(0.25), 9, q)).count();
    assert!((70..130).contains(&segments), "{segments} of 400 Segments");
}

/// "Slow" is the line's best R, not R now: a client whose R fell to its share of a
/// busy super seed (the channel's link full) keeps its peers for an urgent crumb 1.
#[test]
fn a_line_that_was_fast_keeps_its_peers_when_r_falls() {
    let mut e = engine(ClientConfig {
        peer_patience: Some(300 * MS),
        playout_delay: 0,
        rate_window: 2 * SEC,
        ..base()
    });
    let segs = (2..=4).map(|q| seg(q, 4 * SEC, &[85_000])).collect();
    e.on_window(0, &window(segs, Some(2))).unwrap();
    // Segment 2: no rate yet, urgent, peers kept.
    assert_eq!(alone_asks(&e.poll_actions(0)), vec![(1, false)]);
    // 250 kB/s (2 Mbit/s): Segment 3 begins with crumb 1 needing 0.34 s: peers first.
    let mut total = 0;
    feed(&mut e, &mut total, 0, SEC, 250_000);
    assert!(alone_asks(&complete(&mut e, SEC, 2, 1)).is_empty());
    // Then 32 kB/s until just before Segment 3's deadline (8 s): Segment 4 begins
    // with 4.1 s left and R = 32 kB/s: urgent (2.7 s), but the line did 250 kB/s.
    feed(&mut e, &mut total, SEC, 7_900 * MS, 32_000);
    // (Segment 3's own fallback, its patience over, is not what is looked at.)
    e.poll_actions(7_900 * MS);
    let a = complete(&mut e, 7_900 * MS, 3, 1);
    assert_eq!(alone_asks(&a), vec![(1, false)]);
    assert_eq!(e.stats().sole_source_crumbs, 0);
}

/// A client that knows nothing of its line (no rate measured, no `initial-rate`)
/// asks the super seed for its first crumb 1 at once, beside the peers: its startup
/// waits on that crumb. Its next Segments go peers first again (R is measured then).
#[test]
fn the_first_crumb_1_with_no_rate_known_asks_the_super_seed_at_once() {
    let mut e = engine(ClientConfig {
        peer_patience: Some(300 * MS),
        ..base()
    });
    // Two Segments of 8 s whose crumb 1 is small: urgent by no rate, not by size.
    e.on_window(
        0,
        &window(
            vec![seg(2, 8 * SEC, &[20_000]), seg(3, 8 * SEC, &[20_000])],
            Some(2),
        ),
    )
    .unwrap();
    let a = e.poll_actions(0);
    assert_eq!(downloads(&a), vec![(2, 1)]);
    assert_eq!(fallbacks(&a), vec![(2, 1)], "at once, with the download");
    assert_eq!(e.stats().urgent_fallbacks, 1);
    // 20 kB in 200 ms (100 kB/s): crumb 1 of Segment 3 needs 0.2 s of 8: peers first.
    for k in 1..=4u64 {
        e.on_bytes_received(k * 50 * MS, k * 5_000);
    }
    e.on_crumb_progress(200 * MS, 2, 1, 20_000);
    let a = complete(&mut e, 200 * MS, 2, 1);
    assert_eq!(downloads(&a), vec![(3, 1)]);
    assert!(fallbacks(&a).is_empty(), "R known: peers first");
    assert_eq!(e.stats().urgent_fallbacks, 1);
}

/// A crumb asked of the super seed without taking over, whose bytes stop coming,
/// is asked again, taking over (the piece pinned on a peer that does not send it);
/// not on a line whose link is full of this crumb's pieces, nor where what the
/// crumb misses needs most of the time left.
#[test]
fn a_stalled_crumb_has_the_super_seed_take_over() {
    let take_overs = super_seed_asks;
    // The bench's case: a fibre client's first crumb 1 (three pieces, no R yet),
    // two pieces in at 100 ms, the third at a peer that sends nothing.
    let mut e = engine(ClientConfig {
        peer_patience: Some(300 * MS),
        ..base()
    });
    e.on_window(0, &window(vec![seg(2, 2 * SEC, &[39_663])], Some(2)))
        .unwrap();
    assert_eq!(take_overs(&e.poll_actions(0)), vec![(1, false)]);
    e.on_bytes_received(100 * MS, 23_279);
    e.on_crumb_progress(100 * MS, 2, 1, 23_279);
    // Stalled after the patience and two pieces' time at its own pace
    // (232.8 kB/s: 141 ms): at 541 ms.
    assert!(take_overs(&e.poll_actions(100 * MS)).is_empty());
    let wake = e.next_wakeup().unwrap();
    assert!((530 * MS..=550 * MS).contains(&wake), "{wake}");
    e.tick(500 * MS);
    assert!(take_overs(&e.poll_actions(500 * MS)).is_empty());
    e.tick(wake);
    assert_eq!(take_overs(&e.poll_actions(wake)), vec![(1, true)]);
    e.tick(SEC);
    assert!(take_overs(&e.poll_actions(SEC)).is_empty(), "once");
    assert_eq!(e.stats().super_seed_take_overs, 1);

    // A 256 kbit/s line (R = 32 kB/s) whose 85 kB crumb 1 comes from three sources
    // at once: its link is full, its pieces verify late. Not taken over...
    let adsl = |bytes_until: u64, have_at_2s: u64| {
        let mut e = patient_with_one_crumb(32_000.0, 5 * SEC, 85_000);
        let mut seen = take_overs(&e.poll_actions(0));
        let mut t = 0;
        while t < 3500 * MS {
            t += 100 * MS;
            if t <= bytes_until {
                e.on_bytes_received(t, t / MS * 30);
            }
            if t == 2 * SEC {
                e.on_crumb_progress(t, 2, 1, have_at_2s);
            }
            e.tick(t);
            seen.extend(take_overs(&e.poll_actions(t)));
        }
        (seen, e.stats().super_seed_take_overs)
    };
    assert_eq!(
        adsl(3500 * MS, 49_152),
        (vec![(1, false)], 0),
        "a full link"
    );
    // ... until its link falls idle (the bytes stop at 2.2 s): once the patience and
    // two pieces' time at R (1.09 s) pass from the last piece (at 2 s, 5 of its 6
    // pieces), the last 3 kB need 0.1 s of the 1.6 s left: taken over.
    assert_eq!(
        adsl(2200 * MS, 81_920),
        (vec![(1, false), (1, true)], 1),
        "an idle link"
    );
    // With 3 of 6 pieces in, the 36 kB it misses need 1.2 s of those 1.6 s: its
    // sources keep the pieces (the line, not a peer, is what is short).
    assert_eq!(adsl(2200 * MS, 49_152), (vec![(1, false)], 0), "no room");
    // Nothing at all (no byte, no piece) on an idle link: lost without the take-over,
    // whatever the room, so taken over once the patience and two pieces' time pass.
    assert_eq!(
        adsl(0, 0),
        (vec![(1, false), (1, true)], 1),
        "no byte on an idle link"
    );
}

#[test]
fn time_extension_accumulates_over_early_segments() {
    let mut e = engine(base());
    e.on_window(0, &win(1..=6, &[10], 3)).unwrap();
    e.poll_actions(0);
    // Segment 3: deadline 2 s. Done at 0.5 s: Segment 4 gets TE 1.5 s.
    let a = complete(&mut e, 500 * MS, 3, 1);
    assert_eq!(records(&a)[0].deadline, 2 * SEC);
    assert_eq!(e.stats().time_extension_last, 1500 * MS);
    // Done at 1 s: TE = 4 s - 1 s = 3 s. Done at 1.2 s: 6 s - 1.2 s.
    let a = complete(&mut e, SEC, 4, 1);
    assert_eq!(records(&a)[0].time_extension, 1500 * MS);
    assert_eq!(records(&a)[0].deadline, 4 * SEC);
    assert_eq!(e.stats().time_extension_last, 3 * SEC);
    let a = complete(&mut e, 1200 * MS, 5, 1);
    assert_eq!(records(&a)[0].deadline, 6 * SEC);
    assert_eq!(e.stats().time_extension_last, 4800 * MS);
    // Segment 6 is x: done, the engine asks for a window with x+1.
    e.on_crumb_complete(2 * SEC, 6, 1);
    assert!(e.poll_actions(2 * SEC).contains(&Action::FetchWindow));
    let s = e.stats();
    assert_eq!((s.segments_successful, s.segments_failed), (4, 0));
}

#[test]
fn races_to_x_then_waits_for_new_segments() {
    let mut e = engine(base());
    e.on_window(0, &win(1..=5, &[10], 4)).unwrap();
    e.poll_actions(0);
    complete(&mut e, 100 * MS, 4, 1);
    let a = complete(&mut e, 200 * MS, 5, 1);
    // At x = 5: nothing to download, ask for the window.
    assert_eq!(downloads(&a), vec![]);
    assert_eq!(a.last(), Some(&Action::FetchWindow));
    assert_eq!(e.next_wakeup(), Some(700 * MS));
    // Same window again: still waiting; the next fetch after the poll interval.
    e.on_window(300 * MS, &win(1..=5, &[10], 4)).unwrap();
    assert!(e.poll_actions(600 * MS).is_empty());
    assert_eq!(e.poll_actions(700 * MS), vec![Action::FetchWindow]);
    // Segment 6 appears at 3 s: TE = deadline of 5 (4 s) - 3 s, so the deadline
    // stays on the chain 2 + 2 + 2 = 6 s.
    e.on_window(3 * SEC, &win(2..=6, &[10], 4)).unwrap();
    assert_eq!(downloads(&e.poll_actions(3 * SEC)), vec![(6, 1)]);
    assert_eq!(e.stats().time_extension_last, SEC);
    assert_eq!(e.next_wakeup(), Some(6 * SEC));
    assert_eq!(e.stats().current_seq, Some(6));
}

/// crumbsrc's `start-offset`: a live run starts that many Segments behind the
/// newest, whatever start index the channel names (clamped into the window).
#[test]
fn a_client_start_offset_overrides_the_channels_start_index() {
    for (offset, want) in [(None, 2), (Some(0), 5), (Some(1), 4), (Some(9), 1)] {
        let mut e = engine(ClientConfig {
            start_offset: offset,
            ..base()
        });
        e.on_window(0, &win(1..=5, &[10], 2)).unwrap();
        assert_eq!(downloads(&e.poll_actions(0)), vec![(want, 1)], "{offset:?}");
    }
}

#[test]
fn the_playout_delay_is_the_first_segments_time_extension() {
    // crumbsrc's player plays the first output 3 s after it is output: a client at the
    // live edge keeps those 3 s over 2 s Segments (1 s more than |s| for every one);
    // a failure forgets them. The first Segment itself has |s| + 3 s: nothing plays
    // before it.
    let mut e = engine(ClientConfig {
        playout_delay: 3 * SEC,
        ..base()
    });
    e.on_window(0, &win(1..=1, &[10], 1)).unwrap();
    assert_eq!(downloads(&e.poll_actions(0)), vec![(1, 1)]);
    assert_eq!(e.stats().time_extension_last, 3 * SEC);
    assert_eq!(e.next_wakeup(), Some(5 * SEC));
    // Done at 0.5 s, the player plays it at 3.5 s, until 5.5 s. Segment 2, published
    // at 2 s, is due then (less the margin): TE = 5.3 - 2 - 2 s.
    complete(&mut e, 500 * MS, 1, 1);
    e.on_window(2 * SEC, &win(1..=2, &[10], 1)).unwrap();
    assert_eq!(downloads(&e.poll_actions(2 * SEC)), vec![(2, 1)]);
    assert_eq!(e.stats().time_extension_last, 1300 * MS);
    assert_eq!(e.next_wakeup(), Some(5300 * MS));
    // Crumb 1 of Segment 2 at 4.5 s: late for |s| (4 s), on time for the player.
    let a = complete(&mut e, 4500 * MS, 2, 1);
    assert!(records(&a)[0].successful);
    // A Segment longer than the playout delay has it too.
    let mut e = engine(ClientConfig {
        playout_delay: 3 * SEC,
        ..base()
    });
    e.on_window(0, &window(vec![seg(7, 4 * SEC, &[10])], Some(7)))
        .unwrap();
    e.poll_actions(0);
    assert_eq!(e.stats().time_extension_last, 3 * SEC);
    assert_eq!(e.next_wakeup(), Some(7 * SEC));
    // After a failure the playout delay is not given again: what the player held is
    // spent.
    e.tick(7 * SEC);
    e.on_window(8 * SEC, &window(vec![seg(9, 2 * SEC, &[10])], Some(9)))
        .unwrap();
    assert_eq!(downloads(&e.poll_actions(8 * SEC)), vec![(9, 1)]);
    assert_eq!(e.stats().time_extension_last, 0);
    // The default (0) is the paper's deadline: |s| from the start.
    let mut e = engine(base());
    e.on_window(0, &win(1..=1, &[10], 1)).unwrap();
    e.poll_actions(0);
    assert_eq!(e.next_wakeup(), Some(2 * SEC));
}

#[test]
fn with_a_player_the_deadlines_are_its_play_out_times() {
    // A channel at 2 s Segments that grows to 4 s (its window says 4 s at most): the
    // player anchors the first output at 0.5 s + 3 s + the 2 s lead, so it plays at
    // 5.5 s, and every Segment after it when the one before has played.
    let mut e = engine(ClientConfig {
        playout_delay: 3 * SEC,
        ..base()
    });
    // The window at `now` listing Segment `seq` (of `dur`) after the one before it;
    // `seq` is begun then, and `due` is its deadline.
    let step = |e: &mut ClientEngine, now: u64, seq: u64, durs: [u64; 2], due: u64| {
        let mut w = window(
            vec![seg(seq - 1, durs[0], &[10]), seg(seq, durs[1], &[10])],
            Some(seq - 1),
        );
        w.max_duration = Some(4 * SEC);
        e.on_window(now, &w).unwrap();
        assert_eq!(downloads(&e.poll_actions(now)), vec![(seq, 1)], "at {now}");
        assert_eq!(e.next_wakeup(), Some(due), "Segment {seq}");
    };
    let mut w = win(1..=1, &[10], 1);
    w.max_duration = Some(4 * SEC);
    e.on_window(0, &w).unwrap();
    e.poll_actions(0);
    complete(&mut e, 500 * MS, 1, 1);
    // Segment 2 (2 s) plays at 7.5 s: due at 7.3 s.
    step(&mut e, 2 * SEC, 2, [2 * SEC, 2 * SEC], 7300 * MS);
    complete(&mut e, 3 * SEC, 2, 1);
    // Segment 3 is the first of 4 s, published at 2 + 2 + 4 = 8 s: it plays at 9.5 s,
    // when Segment 2 ends, not 4 s after its publication (the paper's 12 s, a player
    // stall of 2.5 s).
    step(&mut e, 8 * SEC, 3, [2 * SEC, 4 * SEC], 9300 * MS);
    assert_eq!(e.stats().time_extension_last, 0, "less than |s|: no TE");
    let a = complete(&mut e, 9 * SEC, 3, 1);
    assert!(records(&a)[0].successful);
    // Segment 4 plays at 13.5 s (9.5 + 4 s): published at 12 s, due at 13.3 s.
    step(&mut e, 12 * SEC, 4, [4 * SEC, 4 * SEC], 13300 * MS);
    complete(&mut e, 13 * SEC, 4, 1);
    // Segment 5 plays at 17.5 s; published at 17.6 s it is late whatever is done: the
    // player stalls, and the engine gives it |s| (the paper's deadline) and anchors
    // the next at its output.
    step(&mut e, 17600 * MS, 5, [4 * SEC, 4 * SEC], 21600 * MS);
    complete(&mut e, 18 * SEC, 5, 1);
    // Out at 18 s, it plays at 21 s (no lead at the longest |s|), Segment 6 at 25 s.
    step(&mut e, 21600 * MS, 6, [4 * SEC, 4 * SEC], 24800 * MS);
}

#[test]
fn a_window_claiming_hour_long_segments_does_not_hold_the_player_an_hour() {
    let mut e = engine(ClientConfig {
        playout_delay: PLAYOUT_DELAY_AUTO,
        ..base()
    });
    let mut w = win(1..=1, &[10], 1);
    w.max_duration = Some(3600 * SEC);
    e.on_window(0, &w).unwrap();
    assert_eq!(e.playout_delay(), MAX_SEGMENT_ROOM);
    assert_eq!(e.playout_lead(2 * SEC), MAX_SEGMENT_ROOM - 2 * SEC);
    // Without a word from the channel: 3 s, and no room.
    let mut e = engine(ClientConfig {
        playout_delay: PLAYOUT_DELAY_AUTO,
        ..base()
    });
    e.on_window(0, &win(1..=1, &[10], 1)).unwrap();
    assert_eq!(e.playout_delay(), DEFAULT_PLAYOUT_DELAY);
    assert_eq!(e.playout_lead(2 * SEC), 0);
}

#[test]
fn failure_goes_back_to_the_initial_stage() {
    let mut e = engine(ClientConfig {
        initial_rate: Some(1e9),
        ..base()
    });
    let sizes = [10, 10, 10];
    e.on_window(0, &win(1..=5, &sizes, 2)).unwrap();
    e.poll_actions(0);
    complete(&mut e, 500 * MS, 2, 3);
    // Segment 3: TE 1.5 s, deadline 4 s; crumb 1 never comes.
    assert_eq!(e.stats().time_extension_last, 1500 * MS);
    assert!(e.poll_actions(4 * SEC - 1).is_empty());
    let a = e.poll_actions(4 * SEC);
    assert_eq!(a[0], Action::Cancel { seq: 3, index: 1 });
    let r = &records(&a)[0];
    assert!(!r.successful && r.d == 0 && r.finished_at == 4 * SEC);
    assert!(matches!(&a[2], Action::Report(r) if !r.successful));
    assert_eq!(a[3], Action::FetchWindow);
    // A late completion changes nothing.
    e.on_crumb_complete(4 * SEC + 1, 3, 1);
    assert!(e.poll_actions(4 * SEC + 1).is_empty());
    // The old window is stale: only a new one gives x'. x' = 8, so 4..=7 are skipped.
    e.on_window(5 * SEC, &win(6..=10, &sizes, 8)).unwrap();
    assert_eq!(downloads(&e.poll_actions(5 * SEC)), vec![(8, 1)]);
    let s = e.stats();
    assert_eq!((s.segments_failed, s.segments_skipped), (1, 4));
    assert_eq!(s.time_extension_last, 0, "TE forgotten");
    assert_eq!(e.next_wakeup(), Some(7 * SEC));
    // D re-estimated by eq. 3 (initial_rate is huge): N.
    assert_eq!(s.d_current, 3);
}

#[test]
fn failure_never_goes_back() {
    let mut e = engine(base());
    e.on_window(0, &win(1..=5, &[10], 4)).unwrap();
    e.poll_actions(0);
    e.tick(2 * SEC); // Segment 4 failed
    // A window whose x' is behind the failed Segment: start at 5.
    e.on_window(2 * SEC, &win(1..=5, &[10], 2)).unwrap();
    assert_eq!(downloads(&e.poll_actions(2 * SEC)), vec![(5, 1)]);
    assert_eq!(e.stats().segments_skipped, 0);
}

#[test]
fn event_at_the_deadline_counts() {
    let mut e = engine(base());
    e.on_window(0, &win(1..=5, &[10, 10], 3)).unwrap();
    e.poll_actions(0);
    e.on_crumb_complete(2 * SEC, 3, 1);
    let r = &records(&e.poll_actions(2 * SEC))[0];
    assert!(r.successful && r.complete);
}

#[test]
fn output_is_the_longest_complete_prefix() {
    let mut e = engine(ClientConfig {
        initial_rate: Some(1e9),
        max_in_flight: 4,
        ..base()
    });
    e.on_window(0, &win(1..=5, &[10; 5], 3)).unwrap();
    e.poll_actions(0);
    e.on_crumb_complete(MS, 3, 1);
    e.on_crumb_complete(MS, 3, 2);
    e.on_crumb_complete(MS, 3, 4);
    assert_eq!(
        downloads(&e.poll_actions(MS)),
        vec![(3, 2), (3, 3), (3, 4), (3, 5)]
    );
    let a = e.poll_actions(2 * SEC);
    assert!(a.contains(&Action::Cancel { seq: 3, index: 3 }));
    assert!(a.contains(&Action::Cancel { seq: 3, index: 5 }));
    assert!(!a.contains(&Action::Cancel { seq: 3, index: 4 }));
    let r = &records(&a)[0];
    assert!(r.successful && !r.complete);
    assert_eq!((r.d, r.crumbs_done, r.d_target), (2, 3, 5));
    assert!(matches!(&a[2], Action::Output { seq: 3, d: 2, .. }));
    // Crumb 1 missing: d = 0 even with later crumbs present.
    e.on_crumb_complete(2 * SEC + 1, 4, 2);
    let a = e.poll_actions(4 * SEC);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Output { seq: 4, d: 0, .. }))
    );
}

#[test]
fn paper_d_plus_minus_rule_and_bounds() {
    let mut e = engine(base());
    let w = window(
        vec![
            seg(1, 2 * SEC, &[1; 3]),
            seg(2, 2 * SEC, &[1; 3]),
            seg(3, 2 * SEC, &[1; 3]),
            seg(4, 2 * SEC, &[1; 3]),
            seg(5, 2 * SEC, &[1; 2]),
            seg(6, 2 * SEC, &[1; 4]),
            seg(7, 2 * SEC, &[1; 4]),
            seg(8, 2 * SEC, &[1; 4]),
            seg(9, 2 * SEC, &[1; 4]),
            seg(10, 2 * SEC, &[1; 4]),
        ],
        Some(1),
    );
    e.on_window(0, &w).unwrap();
    e.poll_actions(0);
    let mut now = 0;
    let mut ds = Vec::new();
    // Complete, complete, complete (D stays at N = 3), N drops to 2, then 4.
    for seq in 1..=6 {
        ds.push(e.stats().d_current);
        now += MS;
        complete(&mut e, now, seq, 4);
    }
    assert_eq!(ds, vec![1, 2, 3, 3, 2, 3]);
    // Segment 7 (D = 4): only crumb 1 by the deadline -> D = 3, then 2, then 1 (an
    // incomplete Segment at D = 1 is a failure, so 1 is the floor).
    assert_eq!(e.stats().d_current, 4);
    for (seq, want) in [(7, 3), (8, 2), (9, 1)] {
        e.on_crumb_complete(now, seq, 1);
        let deadline = e.next_wakeup().unwrap();
        let r = &records(&e.poll_actions(deadline))[0];
        assert!(r.successful && !r.complete);
        now = deadline;
        assert_eq!(e.stats().d_current, want);
    }
    // max_crumbs caps the climb.
    let mut e = engine(ClientConfig {
        max_crumbs: 2,
        ..base()
    });
    e.on_window(0, &win(1..=5, &[1; 4], 1)).unwrap();
    for seq in 1..=4 {
        complete(&mut e, seq * MS, seq, 4);
        assert!(e.stats().d_current <= 2);
    }
    assert_eq!(e.stats().d_current, 2);
    assert_eq!(e.stats().mean_d, 1.75);
}

#[test]
fn skips_segments_that_left_the_window() {
    let mut e = engine(base());
    e.on_window(0, &win(1..=5, &[10], 5)).unwrap();
    e.poll_actions(0);
    complete(&mut e, 100 * MS, 5, 1); // waiting for 6
    // The next window comes late: 6 and 7 left it; jump to x' = 10.
    e.on_window(20 * SEC, &win(8..=12, &[10], 10)).unwrap();
    let a = e.poll_actions(20 * SEC);
    assert_eq!(downloads(&a), vec![(10, 1)]);
    let skipped: Vec<u64> = records(&a)
        .iter()
        .filter(|r| r.skipped)
        .map(|r| r.seq)
        .collect();
    assert_eq!(
        skipped,
        vec![8, 9],
        "Output d = 0 where the Segment is known"
    );
    assert_eq!(e.stats().segments_skipped, 4);
    assert_eq!(e.stats().time_extension_last, 0);
    // A hole inside the window (13 never published): skipped, TE kept.
    let mut w = win(9..=14, &[10], 10);
    w.segments.retain(|s| s.seq != 13);
    e.on_window(20 * SEC, &w).unwrap();
    complete(&mut e, 21 * SEC, 10, 1);
    complete(&mut e, 21 * SEC, 11, 1);
    let a = complete(&mut e, 21 * SEC, 12, 1);
    assert_eq!(downloads(&a), vec![(14, 1)]);
    assert_eq!(e.stats().segments_skipped, 5);
    assert_eq!(e.stats().time_extension_last, 5 * SEC); // deadline 12 = 26 s
}

#[test]
fn refuses_other_versions_and_ignores_bad_segments() {
    let mut e = engine(base());
    let mut w = win(1..=2, &[10], 1);
    w.version = API_VERSION + 1;
    assert_eq!(
        e.on_window(0, &w),
        Err(ClientError::Version(API_VERSION + 1))
    );
    let mut w = win(1..=2, &[10, 10], 1);
    w.segments[0].crumbs[1].index = 3; // crumbs 1 and 3: not a Segment
    e.on_window(0, &w).unwrap();
    assert_eq!(downloads(&e.poll_actions(0)), vec![(2, 1)]);
    assert_eq!(e.stats().segments_skipped, 1);
}

#[test]
fn on_demand_from_an_archived_segment() {
    let mut e = ClientEngine::new(base(), 0);
    e.start_at(0, 40);
    assert_eq!(e.poll_actions(0), vec![Action::FetchSegment { seq: 40 }]);
    e.on_window(0, &win(45..=47, &[10], 45)).unwrap();
    assert_eq!(e.poll_actions(0), vec![]);
    e.on_segment(MS, &seg(40, 2 * SEC, &[10]));
    assert_eq!(downloads(&e.poll_actions(MS)), vec![(40, 1)]);
    let a = complete(&mut e, SEC, 40, 1);
    assert_eq!(a.last(), Some(&Action::FetchSegment { seq: 41 }));
    // 41 was published (the live edge is at 47) and is gone: skipped.
    e.on_segment_unavailable(SEC, 41);
    assert_eq!(e.poll_actions(SEC), vec![Action::FetchSegment { seq: 42 }]);
    // Same deadline chain: 42 gets TE = 1 ms + 2 s - 1.5 s.
    e.on_segment(1500 * MS, &seg(42, 2 * SEC, &[10]));
    assert_eq!(downloads(&e.poll_actions(1500 * MS)), vec![(42, 1)]);
    assert_eq!(e.stats().time_extension_last, 501 * MS);
    // A failure goes on with the next Segment, TE reset.
    let a = e.poll_actions(5 * SEC);
    assert!(records(&a).iter().any(|r| r.seq == 42 && !r.successful));
    assert_eq!(a.last(), Some(&Action::FetchSegment { seq: 43 }));
    assert_eq!(e.stats().segments_skipped, 1);
}

/// On-demand playback that catches up with the live edge waits for the next
/// Segment (asking for the window) instead of skipping ahead of the channel.
#[test]
fn on_demand_waits_at_the_live_edge() {
    let mut e = ClientEngine::new(base(), 0);
    e.start_at(0, 10);
    assert_eq!(e.poll_actions(0), vec![Action::FetchSegment { seq: 10 }]);
    e.on_window(MS, &win(8..=10, &[10], 8)).unwrap();
    assert_eq!(downloads(&e.poll_actions(MS)), vec![(10, 1)]);
    let a = complete(&mut e, 100 * MS, 10, 1);
    assert_eq!(a.last(), Some(&Action::FetchSegment { seq: 11 }));
    // 11 is not out yet (x = 10): wait, polling the window, never skipping.
    e.on_segment_unavailable(110 * MS, 11);
    let mut t = 110 * MS;
    for _ in 0..5 {
        t += SEC;
        assert_eq!(e.poll_actions(t), vec![Action::FetchWindow]);
        e.on_window(t, &win(8..=10, &[10], 8)).unwrap();
        assert_eq!(e.poll_actions(t), vec![Action::FetchSegment { seq: 11 }]);
        e.on_segment_unavailable(t, 11);
        assert_eq!(e.poll_actions(t), vec![]);
    }
    assert_eq!(e.stats().segments_skipped, 0);
    // Out now: the window lists it and it is fetched.
    t += SEC;
    assert_eq!(e.poll_actions(t), vec![Action::FetchWindow]);
    e.on_window(t, &win(9..=11, &[10], 9)).unwrap();
    assert_eq!(downloads(&e.poll_actions(t)), vec![(11, 1)]);
}

/// `win` of the channel run `epoch`.
fn run(epoch: u64, seqs: std::ops::RangeInclusive<u64>, start: u64) -> WindowDoc {
    WindowDoc {
        epoch: Some(epoch),
        ..win(seqs, &[10, 10], start)
    }
}

fn restarts(actions: &[Action]) -> Vec<Restart> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ChannelRestarted(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_epoch_drops_the_old_run_and_starts_at_the_new_start_index() {
    let mut e = engine(base());
    e.on_window(0, &run(1, 40..=44, 42)).unwrap();
    assert_eq!(downloads(&e.poll_actions(0)), vec![(42, 1)]);
    // The channel restarted from 0; the client asked `?after=44`, so the window
    // lists no Segment, only x = 1.
    let mut w = run(2, 0..=1, 0);
    w.segments.clear();
    e.on_window(SEC, &w).unwrap();
    let a = e.poll_actions(SEC);
    assert_eq!(
        a,
        vec![
            Action::Cancel { seq: 42, index: 1 },
            Action::ChannelRestarted(Restart {
                sign: RestartSign::Epoch,
                old_epoch: Some(1),
                new_epoch: Some(2),
                old_latest: Some(44),
                new_latest: Some(1),
            }),
            Action::FetchWindow,
        ],
        "no Output for the dropped Segment, the whole window asked for at once"
    );
    assert_eq!(e.stats().channel_restarts, 1);
    // The whole new window: x' = 0 begins at once, TE and D start over.
    e.on_window(SEC + MS, &run(2, 0..=1, 0)).unwrap();
    assert_eq!(downloads(&e.poll_actions(SEC + MS)), vec![(0, 1)]);
    let s = e.stats();
    assert_eq!((s.time_extension_last, s.d_current), (0, 1));
    assert_eq!((s.segments_failed, s.segments_skipped), (0, 0));
    // Then it plays on in the new run.
    let a = complete(&mut e, SEC + 2 * MS, 0, 1);
    assert_eq!(downloads(&a), vec![(1, 1)]);
    assert_eq!(e.stats().channel_restarts, 1);
}

#[test]
fn a_new_epoch_with_the_numbers_kept_is_a_restart_too() {
    let mut e = engine(base());
    e.on_window(0, &run(1, 40..=44, 42)).unwrap();
    e.poll_actions(0);
    complete(&mut e, 100 * MS, 42, 1);
    // Spool or archive reused: the new run goes on from 45 (and relists 43, 44
    // with other crumbs).
    e.on_window(SEC, &run(9, 43..=47, 45)).unwrap();
    let a = e.poll_actions(SEC);
    assert_eq!(restarts(&a)[0].sign, RestartSign::Epoch);
    assert!(a.contains(&Action::Cancel { seq: 43, index: 1 }));
    e.on_window(SEC, &run(9, 43..=47, 45)).unwrap();
    assert_eq!(downloads(&e.poll_actions(SEC)), vec![(45, 1)]);
    // The same epoch again is no restart.
    e.on_window(2 * SEC, &run(9, 44..=48, 46)).unwrap();
    assert!(restarts(&e.poll_actions(2 * SEC)).is_empty());
    assert_eq!(e.stats().channel_restarts, 1);
}

#[test]
fn numbers_going_back_are_a_restart_without_epochs() {
    let mut e = engine(base());
    e.on_window(0, &win(40..=44, &[10], 42)).unwrap();
    e.poll_actions(0);
    e.on_window(SEC, &win(0..=2, &[10], 0)).unwrap();
    let a = e.poll_actions(SEC);
    let r = &restarts(&a)[0];
    assert_eq!(r.sign, RestartSign::NumbersBack);
    assert_eq!((r.old_epoch, r.new_epoch), (None, None));
    assert_eq!((r.old_latest, r.new_latest), (Some(44), Some(2)));
    e.on_window(SEC, &win(0..=2, &[10], 0)).unwrap();
    assert_eq!(downloads(&e.poll_actions(SEC)), vec![(0, 1)]);
    // A channel gaining an epoch (an upgrade that restarted it) is one too.
    e.on_window(2 * SEC, &run(5, 0..=3, 1)).unwrap();
    assert_eq!(restarts(&e.poll_actions(2 * SEC)).len(), 1);
    assert_eq!(e.stats().channel_restarts, 2);
}

#[test]
fn numbers_that_go_on_without_epochs_are_a_channel_ahead_not_a_restart() {
    let mut e = engine(base());
    e.on_window(0, &win(40..=44, &[10], 42)).unwrap();
    e.poll_actions(0);
    complete(&mut e, 100 * MS, 42, 1);
    complete(&mut e, 200 * MS, 43, 1);
    complete(&mut e, 300 * MS, 44, 1);
    // Restarted with the numbers kept, no epoch: it looks like a channel that
    // went on, and the client jumps to its x' as for any Segments it missed.
    e.on_window(20 * SEC, &win(60..=64, &[10], 62)).unwrap();
    let a = e.poll_actions(20 * SEC);
    assert!(restarts(&a).is_empty());
    assert_eq!(downloads(&a), vec![(62, 1)]);
}

fn stall_config(timeout: u64) -> ClientConfig {
    ClientConfig {
        stall_timeout: Some(timeout),
        ..base()
    }
}

fn stalls(actions: &[Action]) -> Vec<(StallReason, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stalled { reason, since } => Some((*reason, *since)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_frozen_window_is_a_stall_after_the_timeout() {
    let mut e = engine(stall_config(5 * SEC));
    e.on_window(0, &win(1..=5, &[10], 5)).unwrap();
    e.poll_actions(0);
    complete(&mut e, 100 * MS, 5, 1);
    e.on_bytes_received(100 * MS, 10);
    // The channel answers every second, always with x = 5.
    for t in 1..5 {
        e.on_window(t * SEC, &win(1..=5, &[10], 5)).unwrap();
        assert!(stalls(&e.poll_actions(t * SEC)).is_empty());
    }
    assert_eq!(e.stall_at(), Some(5 * SEC));
    assert!(e.next_wakeup() <= Some(5 * SEC), "woken for the stall");
    assert!(stalls(&e.poll_actions(5 * SEC - 1)).is_empty());
    let a = e.poll_actions(5 * SEC);
    assert_eq!(stalls(&a), vec![(StallReason::WindowFrozen, 0)]);
    // Once: then nothing, whatever comes.
    e.on_window(6 * SEC, &win(1..=6, &[10], 6)).unwrap();
    assert!(e.poll_actions(7 * SEC).is_empty());
    assert_eq!(e.next_wakeup(), None);
}

#[test]
fn no_answer_is_a_stall_after_the_timeout() {
    let mut e = engine(stall_config(5 * SEC));
    e.on_window(0, &win(1..=5, &[10], 5)).unwrap();
    e.poll_actions(0);
    complete(&mut e, 2 * SEC, 5, 1);
    e.on_bytes_received(2 * SEC, 10);
    let mut t = 2 * SEC;
    let mut got = Vec::new();
    while got.is_empty() {
        t += SEC / 2;
        e.on_fetch_failed(t);
        got = stalls(&e.poll_actions(t));
    }
    assert_eq!(t, 5 * SEC);
    assert_eq!(got, vec![(StallReason::NoAnswer, 0)]);
}

#[test]
fn crumbs_nobody_seeds_are_a_stall_after_the_timeout() {
    let mut e = engine(stall_config(5 * SEC));
    e.on_window(0, &win(1..=5, &[10], 3)).unwrap();
    e.poll_actions(0);
    e.on_bytes_received(0, 0);
    // The window advances, every Segment fails: no byte ever comes.
    let mut got = Vec::new();
    let mut t = 0;
    while got.is_empty() && t < 20 * SEC {
        t += SEC / 2;
        let x = 5 + t / (2 * SEC);
        e.on_window(t, &win(x - 4..=x, &[10], x - 2)).unwrap();
        e.on_bytes_received(t, 0);
        got = stalls(&e.poll_actions(t));
    }
    assert_eq!(got, vec![(StallReason::NothingFetched, 0)]);
    assert_eq!(t, 5 * SEC);
    assert!(e.stats().segments_failed >= 2);
}

#[test]
fn progress_of_any_kind_keeps_a_channel_alive() {
    // Bytes trickling in keep it alive however slow; windows advancing too.
    let mut e = engine(stall_config(5 * SEC));
    let mut t = 0;
    while t < 60 * SEC {
        let x = 5 + t / (2 * SEC);
        e.on_window(t, &win(x - 4..=x, &[1_000_000], x - 2))
            .unwrap();
        e.on_bytes_received(t, t / MS);
        assert!(stalls(&e.poll_actions(t)).is_empty(), "at {t}");
        t += SEC;
    }
    // Segments of 8 s: a new one every 8 s is no stall at a 5 s timeout (the
    // timeout is at least two Segments).
    let mut e = engine(stall_config(5 * SEC));
    let long = |x: u64| window(vec![seg(x, 8 * SEC, &[10])], Some(x));
    for x in 1..5 {
        let t = x * 8 * SEC;
        e.on_window(t, &long(x)).unwrap();
        e.on_bytes_received(t, x);
        assert!(stalls(&e.poll_actions(t + 7 * SEC)).is_empty());
    }
    e.on_window(47 * SEC, &long(4)).unwrap();
    assert_eq!(
        stalls(&e.poll_actions(48 * SEC)),
        vec![(StallReason::WindowFrozen, 32 * SEC)]
    );
    // No timeout: never.
    let mut e = engine(base());
    e.on_window(0, &win(1..=5, &[10], 5)).unwrap();
    assert!(stalls(&e.poll_actions(3600 * SEC)).is_empty());
}

#[test]
fn a_restart_gives_the_new_run_a_whole_timeout() {
    let mut e = engine(stall_config(5 * SEC));
    e.on_window(0, &run(1, 1..=5, 5)).unwrap();
    e.poll_actions(0);
    // Gone for 4 s, back as a new run with nothing published yet.
    e.on_fetch_failed(4 * SEC);
    let mut w = run(2, 0..=0, 0);
    w.segments.clear();
    w.latest = None;
    e.on_window(4 * SEC, &w).unwrap();
    assert_eq!(restarts(&e.poll_actions(4 * SEC)).len(), 1);
    e.on_window(8 * SEC, &w).unwrap();
    assert!(stalls(&e.poll_actions(9 * SEC - 1)).is_empty());
    assert_eq!(
        stalls(&e.poll_actions(9 * SEC)),
        vec![(StallReason::WindowFrozen, 4 * SEC)]
    );
}

#[test]
fn on_demand_is_not_stalled_by_a_window_that_stands_still() {
    let mut e = ClientEngine::new(stall_config(5 * SEC), 0);
    e.start_at(0, 40);
    let mut t = 0;
    for seq in 40..50 {
        e.poll_actions(t);
        e.on_segment(t, &seg(seq, 2 * SEC, &[10]));
        e.poll_actions(t);
        t += SEC;
        e.on_bytes_received(t, seq);
        e.on_crumb_complete(t, seq, 1);
        assert!(stalls(&e.poll_actions(t)).is_empty());
    }
    assert!(!stalls(&e.poll_actions(t + 10 * SEC)).is_empty());
}

/// Found by fuzzing (`window_json`): on demand, Segment u64::MAX was begun again
/// after it was done, at each of its deadlines, so a late `tick` looped (and
/// queued actions) once per |s| of the gap: 30 million times for 32 ns Segments.
#[test]
fn the_last_segment_number_is_played_once() {
    let mut e = ClientEngine::new(base(), 0);
    e.start_at(0, u64::MAX);
    e.poll_actions(0);
    e.on_segment(0, &seg(u64::MAX, 32, &[10, 10]));
    assert_eq!(downloads(&e.poll_actions(0)), vec![(u64::MAX, 1)]);
    e.tick(SEC);
    let a = e.poll_actions(SEC);
    assert_eq!(records(&a).len(), 1, "{a:?}");
    assert!(downloads(&a).is_empty());
    assert_eq!(e.stats().segments_failed, 1);
    // Live, the same: done once, then only window polls.
    let mut e = engine(base());
    e.on_window(0, &win(u64::MAX - 1..=u64::MAX, &[10], u64::MAX))
        .unwrap();
    e.poll_actions(0);
    let a = complete(&mut e, MS, u64::MAX, 1);
    assert_eq!(records(&a).len(), 1);
    assert!(downloads(&e.poll_actions(10 * SEC)).is_empty());
}

/// The paper's deployment scaled to 2 s Segments: base 128 kbps in crumb 1,
/// enhancement 1 (512 kbps) in 4 crumbs, enhancement 2 (2048 kbps) in 10: N = 15,
/// 672 kB per Segment, 336 kB/s at full quality.
const SIM_SIZES: [u64; 15] = [
    32_000, 32_000, 32_000, 32_000, 32_000, 51_200, 51_200, 51_200, 51_200, 51_200, 51_200, 51_200,
    51_200, 51_200, 51_200,
];
const SIM_DUR: u64 = 2 * SEC;

/// A channel publishing Segment k at k·|s| (|w| = 5, x' = x - 3) and a fake link
/// of `rate(t)` bytes/s serving requested crumbs one at a time, lowest first.
/// Runs until `segments` Segments are done; returns their records.
fn simulate(
    config: ClientConfig,
    rate: impl Fn(u64) -> f64,
    segments: usize,
) -> (Vec<SegmentRecord>, ClientStats) {
    let dt = 5 * MS;
    let join = 4 * SIM_DUR + 300 * MS;
    let window_at = |t: u64| {
        let x = t / SIM_DUR;
        let lo = x.saturating_sub(4);
        win(lo..=x, &SIM_SIZES, x.saturating_sub(3))
    };
    let mut e = ClientEngine::new(config, join);
    let mut queue: Vec<(u64, u16, f64)> = Vec::new();
    let mut total = 0.0f64;
    let mut out = Vec::new();
    let mut t = join;
    while out.len() < segments && t < join + 4 * SIM_DUR * segments as u64 {
        loop {
            let actions = e.poll_actions(t);
            if actions.is_empty() {
                break;
            }
            for a in actions {
                match a {
                    Action::FetchWindow => e.on_window(t, &window_at(t)).unwrap(),
                    Action::Download { seq, index } => queue.push((seq, index, 0.0)),
                    Action::Cancel { seq, index } => queue.retain(|q| (q.0, q.1) != (seq, index)),
                    Action::Output { record, .. } => out.push(record),
                    Action::Report(_)
                    | Action::UseSuperSeed { .. }
                    | Action::Relayed(_)
                    | Action::Prepare { .. } => {}
                    Action::FetchSegment { .. } => panic!("live client"),
                    Action::ChannelRestarted(_) | Action::Stalled { .. } => {
                        panic!("the simulated channel never restarts nor stalls")
                    }
                }
            }
        }
        queue.sort_by_key(|q| (q.0, q.1));
        let mut budget = rate(t) * dt as f64 / 1e9;
        let mut completed = Vec::new();
        while budget > 0.0 && !queue.is_empty() {
            let need = SIM_SIZES[usize::from(queue[0].1) - 1] as f64 - queue[0].2;
            if need <= budget {
                budget -= need;
                total += need;
                completed.push((queue[0].0, queue[0].1));
                queue.remove(0);
            } else {
                queue[0].2 += budget;
                total += budget;
                budget = 0.0;
            }
        }
        t += dt;
        e.on_bytes_received(t, total as u64);
        for (seq, index) in completed {
            e.on_crumb_complete(t, seq, index);
        }
        e.tick(t);
    }
    (out, e.stats())
}

fn config(adaptation: Adaptation) -> ClientConfig {
    ClientConfig {
        adaptation,
        ..base()
    }
}

#[test]
fn simulation_fast_link_reaches_full_quality() {
    for a in [Adaptation::Paper, Adaptation::RateBased] {
        // 500 kB/s, 1.5 times the full-quality rate.
        let (recs, st) = simulate(config(a), |_| 500_000.0, 60);
        assert_eq!(recs.len(), 60);
        assert!(recs.iter().all(|r| r.successful && !r.skipped), "{a:?}");
        assert_eq!((st.segments_failed, st.segments_skipped), (0, 0));
        assert!(recs[30..].iter().all(|r| r.d == 15 && r.complete), "{a:?}");
        assert_eq!(st.d_current, 15);
    }
}

#[test]
fn simulation_link_just_above_base_rate() {
    for a in [Adaptation::Paper, Adaptation::RateBased] {
        // 20 kB/s: the base layer alone takes 16 kB/s.
        let (recs, st) = simulate(config(a), |_| 20_000.0, 60);
        assert_eq!(recs.len(), 60);
        assert_eq!((st.segments_failed, st.segments_skipped), (0, 0), "{a:?}");
        assert!(
            recs.iter()
                .all(|r| r.successful && r.d == 1 && r.d_target <= 2)
        );
        assert_eq!(st.mean_d, 1.0);
    }
}

/// At 62 kB/s crumbs 1..3 (96 kB) fit a 2 s Segment, 1..4 (128 kB) do not. The
/// paper's rule probes D+1 after every complete Segment, spends TE on it, and ends
/// up cycling D through 3, 4, 5, 4 with TE at 0 half the time; RateBased holds D = 3
/// with every Segment complete and TE kept as a buffer. Then R dips to 12 kB/s for
/// 8 s (crumb 1 alone needs 2.7 s): the paper fails Segments, RateBased rides the
/// dip on its TE.
#[test]
fn rate_based_vs_paper_where_paper_oscillates() {
    let steady = |_| 62_000.0;
    let (paper, paper_st) = simulate(config(Adaptation::Paper), steady, 60);
    let (rb, rb_st) = simulate(config(Adaptation::RateBased), steady, 60);
    let switches = |recs: &[SegmentRecord]| {
        recs.windows(2)
            .filter(|w| w[0].d_target != w[1].d_target)
            .count()
    };
    let tail = |recs: &[SegmentRecord]| recs[20..].to_vec();
    assert_eq!((paper_st.segments_failed, rb_st.segments_failed), (0, 0));
    assert!(switches(&tail(&paper)) >= 20);
    assert!(tail(&paper).iter().filter(|r| !r.complete).count() >= 10);
    assert!(tail(&paper).iter().any(|r| r.time_extension == 0));
    assert_eq!(switches(&tail(&rb)), 0);
    assert!(tail(&rb).iter().all(|r| r.complete && r.d == 3));
    assert!(tail(&rb).iter().all(|r| r.time_extension >= SIM_DUR));
    assert!(rb_st.quality_switches <= 1 && paper_st.quality_switches >= 20);

    let dip = |t: u64| {
        if (70 * SEC..78 * SEC).contains(&t) {
            12_000.0
        } else {
            62_000.0
        }
    };
    let (_, paper_st) = simulate(config(Adaptation::Paper), dip, 60);
    let (rb, rb_st) = simulate(config(Adaptation::RateBased), dip, 60);
    assert!(paper_st.segments_failed >= 1);
    assert_eq!(rb_st.segments_failed, 0);
    assert!(rb.iter().all(|r| r.successful));
    // And it climbs back to D = 3 once the dip leaves the rate window.
    assert_eq!(rb.last().map(|r| r.d), Some(3));
}

/// Relay mode: the window every poll interval, every crumb of every Segment in it
/// once, nothing output, nothing reported; a crumb that could not start is asked for
/// again with the next window; Segments that left the window are forgotten.
#[test]
fn relay_fetches_every_crumb_of_the_window_once() {
    let mut e = ClientEngine::new(
        ClientConfig {
            relay: true,
            ..base()
        },
        0,
    );
    assert_eq!(e.poll_actions(0), [Action::FetchWindow]);
    assert_eq!(e.next_wakeup(), Some(500 * MS));
    e.on_window(0, &win(3..=5, &[100, 200], 4)).unwrap();
    let a = e.poll_actions(0);
    assert_eq!(
        downloads(&a),
        [(3, 1), (3, 2), (4, 1), (4, 2), (5, 1), (5, 2)],
        "from the oldest Segment, not x'"
    );
    assert!(e.poll_actions(100 * MS).is_empty(), "poll interval");
    // Crumbs complete, deadlines pass: no output, no report, no fallback.
    e.on_crumb_complete(SEC, 3, 1);
    e.on_download_failed(SEC, 4, 2);
    let a = e.poll_actions(10 * SEC);
    assert!(
        !a.is_empty() && a.iter().all(|a| *a == Action::FetchWindow),
        "{a:?}"
    );
    e.on_window(10 * SEC, &win(4..=6, &[100, 200], 5)).unwrap();
    assert_eq!(
        downloads(&e.poll_actions(10 * SEC)),
        [(4, 2), (6, 1), (6, 2)],
        "the failed crumb again, and the new Segment"
    );
    assert!(
        e.relayed.iter().all(|&(seq, _)| seq >= 4),
        "Segment 3 forgotten"
    );
    assert_eq!(e.stats().segments_successful + e.stats().segments_failed, 0);
}

fn relayed(actions: &[Action]) -> Vec<RelayRecord> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Relayed(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// Relay: a Segment is reported once all its crumbs are complete, or when it leaves
/// the window with some missing; the counters say which.
#[test]
fn relay_reports_each_segment_once_fetched_or_given_up() {
    let mut e = ClientEngine::new(
        ClientConfig {
            relay: true,
            ..base()
        },
        0,
    );
    e.poll_actions(0);
    e.on_window(0, &win(3..=5, &[100, 200], 4)).unwrap();
    e.poll_actions(0);
    e.on_crumb_complete(SEC, 4, 2);
    assert!(relayed(&e.poll_actions(SEC)).is_empty(), "crumb 1 missing");
    e.on_crumb_complete(SEC, 4, 1);
    e.on_crumb_complete(SEC, 4, 1);
    e.on_crumb_complete(SEC, 3, 1);
    assert_eq!(
        relayed(&e.poll_actions(SEC)),
        [RelayRecord {
            seq: 4,
            crumbs_done: 2,
            crumbs_total: 2
        }],
        "once, when all its crumbs are complete"
    );
    // Segment 3 leaves the window with crumb 2 missing; 4, reported, is not again.
    e.on_window(2 * SEC, &win(5..=6, &[100, 200], 6)).unwrap();
    assert_eq!(
        relayed(&e.poll_actions(2 * SEC)),
        [RelayRecord {
            seq: 3,
            crumbs_done: 1,
            crumbs_total: 2
        }]
    );
    assert!(!relayed(&[]).iter().any(RelayRecord::complete));
    let s = e.stats();
    assert_eq!(
        (
            s.segments_relayed,
            s.segments_relay_incomplete,
            s.crumbs_relayed
        ),
        (1, 1, 3)
    );
}

/// A channel switch forgets the old channel like a restart, without cancelling its
/// crumbs (the caller dropped them), and joins the new one at its start index in
/// the initial stage, whatever its epoch and numbers.
#[test]
fn a_switch_joins_the_new_channel_at_its_start_index_base_layer_first() {
    let mut e = engine(ClientConfig {
        initial_rate: Some(1e9),
        ..base()
    });
    e.on_window(0, &run(1, 40..=44, 42)).unwrap();
    e.poll_actions(0);
    complete(&mut e, 100 * MS, 42, 2);
    assert_eq!(e.stats().d_current, 2);
    e.switch_channel(200 * MS);
    assert_eq!(
        e.poll_actions(200 * MS),
        [Action::FetchWindow],
        "no Cancel, no Output of the old channel's Segment in progress"
    );
    // The new channel has lower numbers and another epoch: no restart; x' = 7.
    e.on_window(300 * MS, &run(5, 3..=8, 7)).unwrap();
    let a = e.poll_actions(300 * MS);
    assert!(restarts(&a).is_empty(), "{a:?}");
    assert_eq!(
        downloads(&a),
        [(7, 1)],
        "base layer first, at the start index"
    );
    let s = e.stats();
    assert_eq!((s.channel_switches, s.channel_restarts), (1, 0));
    assert_eq!((s.time_extension_last, s.segments_failed), (0, 0));
    // And it plays on there.
    assert_eq!(downloads(&complete(&mut e, 400 * MS, 7, 1)), [(7, 2)]);
}
