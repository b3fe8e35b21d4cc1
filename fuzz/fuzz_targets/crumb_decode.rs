// SPDX-License-Identifier: MPL-2.0
//! Fuzzes the crumb reader: it must never panic, and whatever it accepts must be the
//! one canonical encoding of the crumb (re-encoding gives back the same bytes), since a
//! crumb's torrent info-hash is computed over exactly those bytes. The prefix reader
//! (a tail crumb's verified pieces) must never panic either, and never say it used
//! more bytes than it was given.
#![no_main]

use gstcrumbs::core::crumb::Crumb;
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    if let Ok(c) = Crumb::decode(data) {
        assert_eq!(c.encode(), data, "decode accepted a non-canonical encoding");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok((_, used)) = Crumb::decode_prefix(data) {
        assert!(used <= data.len(), "a prefix used more bytes than it had");
    }
    // As is: exercises the magic, version and checksum checks.
    check(data);
    // Resealed with a valid CRC-32 trailer: libFuzzer cannot forge a checksum, so
    // without this every mutation of a seed would stop at the checksum and the field
    // checks behind it would never run.
    if data.len() >= 4 {
        let mut sealed = data[..data.len() - 4].to_vec();
        let crc = crc32fast::hash(&sealed);
        sealed.extend_from_slice(&crc.to_be_bytes());
        check(&sealed);
    }
});
