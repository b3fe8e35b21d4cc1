// SPDX-License-Identifier: MPL-2.0
//! Fuzzes the reassembler with any sequence of crumbs the reader accepts: pushing them
//! and finishing must never panic, whatever their Segment numbers, indices, counts,
//! decode indices and timestamps claim; and Segments come out in increasing order.
//!
//! Input: byte 0 = `max_crumbs`; then records of a 4-byte big-endian length and that
//! many bytes of crumb body (everything but the CRC-32 trailer, which the target
//! appends: libFuzzer cannot forge checksums). A short last record takes what is left.
#![no_main]

use gstcrumbs::core::crumb::Crumb;
use gstcrumbs::core::reassembly::{Output, Reassembler};
use libfuzzer_sys::fuzz_target;

/// Keeps one input's work bounded (a record per crumb of a tiny Segment).
const MAX_RECORDS: usize = 64;

fn seal(body: &[u8]) -> Vec<u8> {
    let mut v = body.to_vec();
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_be_bytes());
    v
}

fn check(out: &[Output]) {
    for o in out {
        if let Output::Au { au, .. } = o {
            assert!(!au.data.is_empty(), "empty access unit output");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&max, mut rest)) = data.split_first() else {
        return;
    };
    let mut r = Reassembler::new(u16::from(max));
    for _ in 0..MAX_RECORDS {
        if rest.len() < 4 {
            break;
        }
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4..];
        let (body, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        if let Ok(c) = Crumb::decode(&seal(body)) {
            check(&r.push(c));
        }
    }
    check(&r.finish());
    let seqs: Vec<u64> = r.take_outcomes().iter().map(|o| o.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "Segments output out of order: {seqs:?}"
    );
});
