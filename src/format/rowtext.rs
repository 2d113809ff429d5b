//! Row text: the form `LOAD DATA INFILE` reads with its defaults (fields separated by tab,
//! rows by newline, `\` escapes, `\N` for NULL), written byte for byte with no character
//! set conversion, so any byte sequence survives.

use super::digest::RowsDigest;

/// Appends one field's value, escaped. `None` is SQL NULL.
pub fn push_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(value) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    // Most values need no escape: find the first byte that might, eight bytes at a time.
    let clean = first_special(value);
    out.extend_from_slice(&value[..clean]);
    let value = &value[clean..];
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => b"\\0",
            0x1a => b"\\Z",
            _ => continue,
        };
        out.extend_from_slice(&value[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&value[start..]);
}

/// The index of the first byte below 0x20 or equal to `\`, or a little before it (the
/// caller's byte loop decides); every byte that needs an escape is one of those.
fn first_special(value: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while i + 8 <= value.len() {
        let x = u64::from_le_bytes(value[i..i + 8].try_into().expect("8 bytes"));
        // A byte < 0x20 makes (x - 0x20..) borrow into its high bit where x's is clear;
        // a backslash is a zero byte of x ^ 0x5C...
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        let y = x ^ (ONES * 0x5c);
        let backslash = y.wrapping_sub(ONES) & !y & HIGHS;
        if below_space | backslash != 0 {
            return i;
        }
        i += 8;
    }
    i
}

/// Counts the rows of row text fed in blocks of any size, checks that each has the
/// expected number of fields, and digests them (see [`super::digest`]): what `verify`
/// needs without parsing values. One pass, jumping from one tab, newline or backslash to
/// the next (memchr), since these loops are most of what verify spends beside
/// decompression.
pub struct RowCounter {
    columns: usize,
    rows: u64,
    fields: usize,
    /// The previous block ended with a backslash: the next byte is escaped.
    escaped: bool,
    /// Bytes of an unfinished row were seen (in `hasher`).
    pending: bool,
    hasher: xxhash_rust::xxh3::Xxh3,
    digest: RowsDigest,
    /// The first row (1-based) with another number of fields, and that number.
    pub bad_row: Option<(u64, usize)>,
}

impl RowCounter {
    /// A counter for rows of `columns` fields.
    pub fn new(columns: usize) -> Self {
        RowCounter {
            columns,
            rows: 0,
            fields: 1,
            escaped: false,
            pending: false,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            digest: RowsDigest::default(),
            bad_row: None,
        }
    }

    /// Takes the next block.
    pub fn push(&mut self, block: &[u8]) {
        let mut i = 0;
        if self.escaped && !block.is_empty() {
            self.escaped = false;
            i = 1;
        }
        let mut row_start = 0;
        while let Some(off) = memchr::memchr3(b'\\', FIELD_END, ROW_END, &block[i..]) {
            let at = i + off;
            match block[at] {
                b'\\' if at + 1 < block.len() => i = at + 2,
                b'\\' => {
                    self.escaped = true;
                    i = at + 1;
                }
                FIELD_END => {
                    self.fields += 1;
                    i = at + 1;
                }
                _ => {
                    self.rows += 1;
                    if self.fields != self.columns && self.bad_row.is_none() {
                        self.bad_row = Some((self.rows, self.fields));
                    }
                    self.fields = 1;
                    let row = &block[row_start..=at];
                    let hash = if self.pending {
                        self.hasher.update(row);
                        let h = self.hasher.digest128();
                        self.hasher.reset();
                        self.pending = false;
                        h
                    } else {
                        xxhash_rust::xxh3::xxh3_128(row)
                    };
                    self.digest.0 = self.digest.0.wrapping_add(hash);
                    row_start = at + 1;
                    i = at + 1;
                }
            }
        }
        if row_start < block.len() {
            self.hasher.update(&block[row_start..]);
            self.pending = true;
        }
    }

    /// The rows counted; `Err` when the text ends inside a row.
    pub fn finish(&self) -> Result<u64, String> {
        if self.pending {
            return Err(format!("the text ends inside row {}", self.rows + 1));
        }
        Ok(self.rows)
    }

    /// The digest of the whole rows seen.
    pub fn digest(&self) -> RowsDigest {
        self.digest
    }
}

/// The field separator.
pub const FIELD_END: u8 = b'\t';
/// The row terminator.
pub const ROW_END: u8 = b'\n';

/// Appends one row: each field escaped by [`push_field`] (`None` is SQL NULL), separated by
/// [`FIELD_END`], then [`ROW_END`]. (The dump writes fields as they stream; tests build rows.)
#[cfg(test)]
pub fn push_row(out: &mut Vec<u8>, fields: &[Option<&[u8]>]) {
    for (i, &field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(FIELD_END);
        }
        push_field(out, field);
    }
    out.push(ROW_END);
}

/// The clause that tells `LOAD DATA` this format.
pub const LOAD_DATA_FORMAT: &str =
    "CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' STARTING BY ''";

/// Splits row text back into rows of fields (`None` for NULL); for tests and tools that
/// read data files without a server.
pub fn parse_rows(text: &[u8]) -> Vec<Vec<Option<Vec<u8>>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = Vec::new();
    let mut is_null = false;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' if i + 1 < text.len() => {
                i += 1;
                match text[i] {
                    b'N' if field.is_empty() => is_null = true,
                    b'0' => field.push(0),
                    b't' => field.push(b'\t'),
                    b'n' => field.push(b'\n'),
                    b'r' => field.push(b'\r'),
                    b'Z' => field.push(0x1a),
                    b'b' => field.push(8),
                    other => field.push(other),
                }
            }
            FIELD_END | ROW_END => {
                row.push(if is_null {
                    None
                } else {
                    Some(std::mem::take(&mut field))
                });
                field.clear();
                is_null = false;
                if text[i] == ROW_END {
                    rows.push(std::mem::take(&mut row));
                }
            }
            b => field.push(b),
        }
        i += 1;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_across_blocks_with_escapes() {
        let mut text = Vec::new();
        push_row(&mut text, &[Some(b"a\tb\n\\".as_slice()), None]);
        push_row(&mut text, &[Some(b"".as_slice()), Some(b"x".as_slice())]);
        let mut c = RowCounter::new(2);
        for chunk in text.chunks(3) {
            c.push(chunk);
        }
        assert_eq!(c.finish(), Ok(2));
        assert_eq!(c.bad_row, None);
        let mut c = RowCounter::new(3);
        c.push(&text);
        assert_eq!(c.bad_row, Some((1, 2)));
        let mut c = RowCounter::new(2);
        c.push(b"a\tb");
        assert!(c.finish().is_err());
    }

    #[test]
    fn null_empty_and_the_strings_null_and_backslash_n_stay_distinct() {
        let mut text = Vec::new();
        push_row(&mut text, &[None, Some(b""), Some(b"NULL"), Some(b"\\N")]);
        assert_eq!(text, b"\\N\t\tNULL\t\\\\N\n");
        assert_eq!(
            parse_rows(&text),
            vec![vec![
                None,
                Some(vec![]),
                Some(b"NULL".to_vec()),
                Some(b"\\N".to_vec())
            ]]
        );
    }

    #[test]
    fn the_fast_scan_never_skips_a_byte_that_needs_an_escape() {
        for special in [0u8, b'\t', b'\n', b'\r', 0x1a, b'\\'] {
            for pos in 0..20 {
                let mut v: Vec<u8> = (0..20).map(|i| b'a' + i as u8 % 26).collect();
                v[pos] = special;
                v.extend_from_slice(&[0xff, 0x80, 0x7f]);
                assert!(first_special(&v) <= pos, "byte {special:#x} at {pos}");
                let mut out = Vec::new();
                push_field(&mut out, Some(&v));
                assert_eq!(
                    parse_rows(&[out, b"\n".to_vec()].concat()),
                    vec![vec![Some(v.clone())]]
                );
            }
        }
        assert_eq!(first_special(&[0xffu8; 24]), 24);
    }

    #[test]
    fn every_byte_value_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut text = Vec::new();
        push_row(&mut text, &[Some(&all), Some(b"\x81\x5c")]);
        assert_eq!(
            parse_rows(&text),
            vec![vec![Some(all.clone()), Some(b"\x81\x5c".to_vec())]]
        );
        // No raw separator byte may remain inside a field.
        let fields = text.len() - 1;
        assert_eq!(text[..fields].iter().filter(|&&b| b == b'\n').count(), 0);
    }
}
