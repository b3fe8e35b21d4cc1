// SPDX-License-Identifier: MPL-2.0
//! Annex B byte-stream scanning (H.264, H.265) and a bit reader for the few header
//! fields the classifiers look at.
//!
//! The scanner hands out each NAL unit *with* its start code, and with any zero bytes
//! in front of that start code (`zero_byte`, `trailing_zero_8bits`), so that the NAL
//! units of a buffer tile it exactly: the classifiers can then cut a buffer into parts
//! that concatenate back to the very same bytes.

use std::ops::Range;

use super::ParseError;

/// One NAL unit of an Annex B buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NalUnit {
    /// The start code (with the zero bytes before it) and the NAL unit up to the next
    /// start code or the end of the buffer.
    pub range: Range<usize>,
    /// Offset of the first byte after the start code: the NAL unit header. Equal to
    /// `range.end` when a start code ends the buffer or is followed by another one.
    pub header: usize,
}

impl NalUnit {
    /// The NAL unit without its start code: header, payload, trailing zero bytes.
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        data.get(self.header..self.range.end).unwrap_or(&[])
    }
}

/// Finds the next `00 00 01` at or after `from`. Returns the offset of the first zero
/// byte of the run of zeros in front of the `01` (never before `from`) and the offset
/// just after the `01`.
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    // Test the byte where a start code's `01` would be. Why the jumps: a byte above 1
    // can be neither the `01` nor one of the two zeros before it, so the next three
    // positions are out too; a `01` not preceded by two zeros likewise rules out the
    // next two positions.
    let mut i = from.checked_add(2)?;
    while let Some(&b) = data.get(i) {
        match b {
            0 => i += 1,
            1 if data[i - 1] == 0 && data[i - 2] == 0 => {
                let mut zeros = i - 2;
                while zeros > from && data[zeros - 1] == 0 {
                    zeros -= 1;
                }
                return Some((zeros, i + 1));
            }
            _ => i += 3,
        }
    }
    None
}

/// Splits an Annex B buffer into NAL units that cover it contiguously, in order.
///
/// Errors: an empty buffer, a buffer without start code, and bytes other than zeros in
/// front of the first start code (a buffer that does not begin on a NAL unit boundary
/// cannot be cut into parts that mean anything).
pub fn split_annex_b(data: &[u8]) -> Result<Vec<NalUnit>, ParseError> {
    if data.is_empty() {
        return Err(ParseError::Empty);
    }
    let Some((first, mut header)) = find_start_code(data, 0) else {
        return Err(ParseError::Malformed("Annex B buffer without start code"));
    };
    if first != 0 {
        return Err(ParseError::Malformed("bytes before the first start code"));
    }
    let mut nals = Vec::new();
    let mut start = 0;
    while let Some((next, next_header)) = find_start_code(data, header) {
        nals.push(NalUnit {
            range: start..next,
            header,
        });
        start = next;
        header = next_header;
    }
    nals.push(NalUnit {
        range: start..data.len(),
        header,
    });
    Ok(nals)
}

/// A most-significant-bit-first reader over a byte slice. In RBSP mode it drops the
/// emulation prevention bytes (the `03` of `00 00 03`) of an H.264/H.265 NAL unit.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    cur: u8,
    /// Bits of `cur` not yet read.
    left: u8,
    /// Zero bytes loaded in a row, to spot an emulation prevention byte.
    zeros: u8,
    rbsp: bool,
    /// What is being read, for the error.
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// Reads `data` as is (AV1, VP8, VP9 headers). `what` names the structure in errors.
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        BitReader {
            data,
            pos: 0,
            cur: 0,
            left: 0,
            zeros: 0,
            rbsp: false,
            what,
        }
    }

    /// Reads the payload of an H.264/H.265 NAL unit, skipping emulation prevention bytes.
    pub fn rbsp(data: &'a [u8], what: &'static str) -> Self {
        BitReader {
            rbsp: true,
            ..BitReader::new(data, what)
        }
    }

    fn load(&mut self) -> Result<(), ParseError> {
        let mut b = self.next_byte()?;
        if self.rbsp && self.zeros >= 2 && b == 3 {
            self.zeros = 0;
            b = self.next_byte()?;
        }
        self.zeros = if b == 0 {
            self.zeros.saturating_add(1)
        } else {
            0
        };
        self.cur = b;
        self.left = 8;
        Ok(())
    }

    fn next_byte(&mut self) -> Result<u8, ParseError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or(ParseError::Truncated(self.what))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn read_bit(&mut self) -> Result<bool, ParseError> {
        if self.left == 0 {
            self.load()?;
        }
        self.left -= 1;
        Ok((self.cur >> self.left) & 1 == 1)
    }

    /// Reads `n` bits (at most 32) as an unsigned number, most significant first.
    pub fn read_bits(&mut self, n: u32) -> Result<u32, ParseError> {
        debug_assert!(n <= 32, "read_bits reads at most 32 bits");
        let mut v: u64 = 0;
        for _ in 0..n.min(32) {
            v = (v << 1) | u64::from(self.read_bit()?);
        }
        // At most 32 bits were shifted in.
        Ok(v as u32)
    }

    /// Reads an unsigned exp-Golomb code, ue(v).
    pub fn read_ue(&mut self) -> Result<u32, ParseError> {
        let mut leading = 0u32;
        while !self.read_bit()? {
            leading += 1;
            if leading > 31 {
                return Err(ParseError::Malformed("exp-Golomb code longer than 32 bits"));
            }
        }
        let rest = u64::from(self.read_bits(leading)?);
        // (2^leading - 1) + rest <= 2^32 - 2 for leading <= 31.
        Ok(((1u64 << leading) - 1 + rest) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(data: &[u8]) -> Vec<(Range<usize>, usize)> {
        split_annex_b(data)
            .expect("valid Annex B")
            .into_iter()
            .map(|n| (n.range, n.header))
            .collect()
    }

    #[test]
    fn three_and_four_byte_start_codes_tile_the_buffer() {
        let data = [
            0, 0, 0, 1, 0x67, 0xaa, 0, 0, 1, 0x68, 0xbb, 0, 0, 0, 1, 0x65, 0xcc,
        ];
        assert_eq!(ranges(&data), vec![(0..6, 4), (6..11, 9), (11..17, 15)]);
    }

    #[test]
    fn zeros_before_a_start_code_go_with_the_next_unit() {
        // trailing_zero_8bits after the first unit and leading_zero_8bits at the start.
        let data = [0, 0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 0, 1, 0x65];
        assert_eq!(ranges(&data), vec![(0..7, 5), (7..13, 12)]);
    }

    #[test]
    fn empty_units_are_reported_not_skipped() {
        let data = [0, 0, 1, 0, 0, 1, 0x65, 0, 0, 1];
        assert_eq!(ranges(&data), vec![(0..3, 3), (3..7, 6), (7..10, 10)]);
        let nals = split_annex_b(&data).unwrap();
        assert!(nals[0].payload(&data).is_empty());
        assert_eq!(nals[1].payload(&data), &[0x65]);
    }

    #[test]
    fn errors() {
        assert_eq!(split_annex_b(&[]), Err(ParseError::Empty));
        assert!(matches!(
            split_annex_b(&[0x65, 0x88, 0x80]),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            split_annex_b(&[0, 0, 0]),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            split_annex_b(&[0xff, 0, 0, 1, 0x65]),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn start_code_search_does_not_skip_candidates() {
        // Every placement of a start code after some filler bytes is found.
        for filler in [0u8, 1, 2, 3, 0xff] {
            for n in 0..8 {
                let mut data = vec![0, 0, 1, 0x41];
                data.extend(std::iter::repeat_n(filler, n));
                data.extend([0, 0, 1, 0x41, 0x10]);
                let nals = split_annex_b(&data).unwrap();
                assert_eq!(nals.len(), 2, "filler {filler} x{n}: {data:?}");
                assert_eq!(nals[1].payload(&data), &[0x41, 0x10]);
            }
        }
    }

    #[test]
    fn bit_reader_reads_fields_and_exp_golomb() {
        // 1 | 010 | 011 | 00100 = ue 0, 1, 2, 3; then 0001 and a zero byte.
        let data = [0b1010_0110, 0b0100_0001, 0b0000_0000];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.read_ue().unwrap(), 0);
        assert_eq!(r.read_ue().unwrap(), 1);
        assert_eq!(r.read_ue().unwrap(), 2);
        assert_eq!(r.read_ue().unwrap(), 3);
        assert_eq!(r.read_bits(4).unwrap(), 1);
        assert_eq!(r.read_bits(8).unwrap(), 0);
        assert_eq!(r.read_bit(), Err(ParseError::Truncated("test")));
    }

    #[test]
    fn bit_reader_skips_emulation_prevention_in_rbsp_mode() {
        let data = [0x00, 0x00, 0x03, 0x01, 0xff];
        let mut r = BitReader::rbsp(&data, "test");
        assert_eq!(r.read_bits(24).unwrap(), 0x000001);
        assert_eq!(r.read_bits(8).unwrap(), 0xff);
        let mut plain = BitReader::new(&data, "test");
        assert_eq!(plain.read_bits(32).unwrap(), 0x0000_0301);
    }

    #[test]
    fn exp_golomb_too_long_is_malformed() {
        let data = [0u8; 8];
        let mut r = BitReader::new(&data, "test");
        assert!(matches!(r.read_ue(), Err(ParseError::Malformed(_))));
        let data = [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.read_ue().unwrap(), u32::MAX - 1);
    }
}
