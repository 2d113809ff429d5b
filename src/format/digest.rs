//! Content digests: what a table's rows are, independent of their order, so that ranges
//! read by different sessions and files loaded in any order combine. A row's hash is the
//! xxh3-128 of its row text (fields escaped, tab-separated, newline-terminated: the bytes
//! the dump writes); a set of rows' digest is the sum of its rows' hashes modulo 2^128,
//! so a duplicated row counts twice and a changed value changes it. Not a defence against
//! someone forging data (the sha256 of each file is): a check that a restore stored what
//! the dump read.

use xxhash_rust::xxh3::xxh3_128;

/// A digest of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowsDigest(pub u128);

impl RowsDigest {
    /// Adds one row, given as its full row text (with its newline). (`rowtext::RowCounter`
    /// digests row text fed in blocks, the same way.)
    pub fn add_row(&mut self, row_text: &[u8]) {
        self.0 = self.0.wrapping_add(xxh3_128(row_text));
    }

    /// Adds another set of rows.
    pub fn combine(&mut self, other: RowsDigest) {
        self.0 = self.0.wrapping_add(other.0);
    }

    /// 32 hex digits, as manifests record it.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    /// Parses what [`RowsDigest::to_hex`] writes.
    pub fn parse(hex: &str) -> Option<Self> {
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(hex, 16).ok().map(RowsDigest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::rowtext::{push_row, RowCounter};

    #[test]
    fn digests_ignore_order_and_block_boundaries_but_not_values() {
        let rows: Vec<Vec<u8>> = [
            [Some(&b"1"[..]), Some(b"a\nb")],
            [Some(b"2"), None],
            [Some(b"3"), Some(b"back\\slash\t")],
        ]
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            push_row(&mut out, r);
            out
        })
        .collect();
        let mut forward = RowsDigest::default();
        rows.iter().for_each(|r| forward.add_row(r));
        let mut backward = RowsDigest::default();
        rows.iter().rev().for_each(|r| backward.add_row(r));
        assert_eq!(forward, backward);
        // Split in two sets and combined: the same.
        let (mut a, mut b) = (RowsDigest::default(), RowsDigest::default());
        a.add_row(&rows[0]);
        b.add_row(&rows[1]);
        b.add_row(&rows[2]);
        a.combine(b);
        assert_eq!(a, forward);
        // Streamed in blocks of every size: the same as row by row.
        let text: Vec<u8> = rows.concat();
        for size in 1..text.len() {
            let mut d = RowCounter::new(2);
            text.chunks(size).for_each(|c| d.push(c));
            assert_eq!(d.digest(), forward, "blocks of {size}");
            assert_eq!((d.finish(), d.bad_row), (Ok(3), None), "blocks of {size}");
        }
        // One byte of one value changed, or a row twice: another digest.
        let mut changed = RowsDigest::default();
        changed.add_row(&rows[0]);
        changed.add_row(&rows[1]);
        changed.add_row(b"3\tback\\\\slash\\t \n");
        assert_ne!(changed, forward);
        let mut twice = forward;
        twice.add_row(&rows[1]);
        assert_ne!(twice, forward);
        assert_eq!(RowsDigest::parse(&forward.to_hex()), Some(forward));
        assert_eq!(RowsDigest::parse("xyz"), None);
    }
}
