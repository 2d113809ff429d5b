//! Loading one data file with multi-row `INSERT` statements: the fallback for servers that
//! refuse `LOAD DATA LOCAL INFILE`. Every value reaches the server as the same bytes and
//! goes through the same conversion as in `load_data`'s `LOAD DATA ... CHARACTER SET binary`.

use std::path::Path;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::blocks::read_blocks;
use super::tally::Tally;
use crate::error::{Error, IoContext, Result, SqlContext};
use crate::format::manifest::{ColumnEncoding, DataColumn, DataFile};
use crate::format::rowtext::{parse_rows, ROW_END};
use crate::format::Codec;
use crate::sql::{ident, qualified};

/// One parsed row: a value per column, `None` for NULL.
type Row = Vec<Option<Vec<u8>>>;

/// Loads one data file with multi-row INSERT statements; same checks as `LOAD DATA`'s.
///
/// The file is read and decompressed on a blocking thread, block by block, and sent as
/// statements of at most `max_statement_bytes` (a row longer than that goes alone). Warnings
/// are accepted only if they are exactly the file's `expected_warnings`, all code 1265 (ENUM
/// invalid-value entries); the rows stored must be the file's `rows`. Returns the rows stored.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_file(
    conn: &mut Conn,
    input: &super::Input,
    codec: Codec,
    file: &DataFile,
    db: &str,
    table: &str,
    columns: &[DataColumn],
    max_statement_bytes: usize,
) -> Result<u64> {
    let path = input.name.clone();
    let mut blocks = read_blocks(input.open.clone(), codec, |_| {});
    let mut splitter = RowSplitter::default();
    let mut builder = StatementBuilder::new(db, table, columns, max_statement_bytes);
    let mut tally = Tally::new(qualified(db, table));
    let mut row_no = 0u64;
    while let Some(block) = blocks.recv().await {
        for row in splitter.push(&block.at(&path)?) {
            row_no += 1;
            let full = builder
                .add_row(&row)
                .map_err(|e| Error::Damaged(format!("{}: row {row_no}: {e}", path.display())))?;
            if let Some(statement) = full {
                execute(conn, &path, file, statement, &mut tally).await?;
            }
        }
    }
    if !splitter.is_empty() {
        return Err(Error::Damaged(format!(
            "{}: the last row has no end; the file is truncated",
            path.display()
        )));
    }
    if let Some(statement) = builder.finish() {
        execute(conn, &path, file, statement, &mut tally).await?;
    }
    tally.finish(&path, file)
}

async fn execute(
    conn: &mut Conn,
    path: &Path,
    file: &DataFile,
    statement: Vec<u8>,
    tally: &mut Tally,
) -> Result<()> {
    conn.query_drop(statement)
        .await
        .ctx(|| format!("loading {}", path.display()))?;
    tally.record(conn, path, file).await
}

/// Cuts a stream of row text into whole rows, whatever the block boundaries: the bytes
/// after the last row end wait for the next block.
#[derive(Default)]
struct RowSplitter {
    pending: Vec<u8>,
    /// Bytes of `pending` already scanned, and whether the next one is escaped.
    scanned: usize,
    escaped: bool,
}

impl RowSplitter {
    /// Takes the next block; returns the rows it completes, parsed by `rowtext::parse_rows`.
    fn push(&mut self, block: &[u8]) -> Vec<Row> {
        self.pending.extend_from_slice(block);
        let mut end = None;
        // Same escape rule as parse_rows: `\` takes the next byte, even a row end.
        for (i, &b) in self.pending.iter().enumerate().skip(self.scanned) {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == ROW_END {
                end = Some(i);
            }
        }
        self.scanned = self.pending.len();
        let Some(end) = end else {
            return Vec::new();
        };
        let rows = parse_rows(&self.pending[..=end]);
        self.pending.drain(..=end);
        self.scanned = self.pending.len();
        rows
    }

    /// Whether no partial row is waiting.
    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Accumulates rows into `INSERT ... VALUES (...), (...)` statements of a bounded size.
struct StatementBuilder<'a> {
    columns: &'a [DataColumn],
    max_bytes: usize,
    header: Vec<u8>,
    statement: Vec<u8>,
    rows: usize,
    tuple: Vec<u8>,
}

impl<'a> StatementBuilder<'a> {
    fn new(db: &str, table: &str, columns: &'a [DataColumn], max_bytes: usize) -> Self {
        let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
        let header = format!(
            "INSERT INTO {} ({}) VALUES ",
            qualified(db, table),
            names.join(", ")
        )
        .into_bytes();
        StatementBuilder {
            columns,
            max_bytes,
            statement: header.clone(),
            header,
            rows: 0,
            tuple: Vec::new(),
        }
    }

    /// Adds a row; returns the statement so far when the row does not fit in it (the row
    /// then starts the next one). Errs on a malformed row.
    fn add_row(&mut self, row: &[Option<Vec<u8>>]) -> std::result::Result<Option<Vec<u8>>, String> {
        if row.len() != self.columns.len() {
            return Err(format!(
                "{} fields, the table has {} columns",
                row.len(),
                self.columns.len()
            ));
        }
        self.tuple.clear();
        self.tuple.push(b'(');
        for (i, (value, column)) in row.iter().zip(self.columns).enumerate() {
            if i > 0 {
                self.tuple.extend_from_slice(b", ");
            }
            push_literal(&mut self.tuple, column, value.as_deref())?;
        }
        self.tuple.push(b')');
        let full = (self.rows > 0 && self.statement.len() + 2 + self.tuple.len() > self.max_bytes)
            .then(|| self.take());
        if self.rows > 0 {
            self.statement.extend_from_slice(b", ");
        }
        self.statement.extend_from_slice(&self.tuple);
        self.rows += 1;
        Ok(full)
    }

    /// The last statement, if it has rows.
    fn finish(&mut self) -> Option<Vec<u8>> {
        (self.rows > 0).then(|| self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        self.rows = 0;
        std::mem::replace(&mut self.statement, self.header.clone())
    }
}

/// Appends a value as the literal its encoding needs; see `load_data::load_statement`, whose
/// conversions these repeat.
fn push_literal(
    out: &mut Vec<u8>,
    column: &DataColumn,
    value: Option<&[u8]>,
) -> std::result::Result<(), String> {
    let Some(value) = value else {
        out.extend_from_slice(b"NULL");
        return Ok(());
    };
    match column.encoding {
        ColumnEncoding::Raw | ColumnEncoding::FloatAsDouble => push_binary(out, value),
        ColumnEncoding::BitNumber | ColumnEncoding::EnumIndex => {
            // Bare in the statement: anything but digits would be SQL.
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(format!(
                    "column {} holds {:?}, not a number",
                    ident(&column.name),
                    String::from_utf8_lossy(&value[..value.len().min(40)])
                ));
            }
            out.extend_from_slice(value);
        }
        ColumnEncoding::TypedText | ColumnEncoding::JsonText => {
            out.extend_from_slice(b"CONVERT(");
            push_binary(out, value);
            out.extend_from_slice(b" USING utf8mb4)");
        }
    }
    Ok(())
}

/// `_binary 0x...`: a hex literal survives any sql_mode and any byte.
fn push_binary(out: &mut Vec<u8>, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if value.is_empty() {
        out.extend_from_slice(b"_binary''");
        return;
    }
    out.reserve(10 + 2 * value.len());
    out.extend_from_slice(b"_binary 0x");
    for &b in value {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::rowtext::push_row;

    fn col(name: &str, encoding: ColumnEncoding) -> DataColumn {
        DataColumn {
            name: name.into(),
            encoding,
        }
    }

    fn row_text(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        push_row(&mut out, fields);
        out
    }

    /// Splits `text` into blocks of `block` bytes and builds every statement.
    fn statements(text: &[u8], block: usize, columns: &[DataColumn], max: usize) -> Vec<String> {
        let mut splitter = RowSplitter::default();
        let mut builder = StatementBuilder::new("d", "t", columns, max);
        let mut out = Vec::new();
        for chunk in text.chunks(block) {
            for row in splitter.push(chunk) {
                out.extend(builder.add_row(&row).unwrap());
            }
        }
        assert!(splitter.is_empty());
        out.extend(builder.finish());
        out.into_iter()
            .map(|s| String::from_utf8(s).unwrap())
            .collect()
    }

    fn one_column_statement(value: Option<&[u8]>) -> String {
        let cols = [col("c", ColumnEncoding::Raw)];
        let s = statements(&row_text(&[value]), 4096, &cols, 1 << 20);
        assert_eq!(s.len(), 1);
        s[0].clone()
    }

    #[test]
    fn each_encoding_gets_the_literal_load_data_would_convert_the_same_way() {
        let cols = [
            col("r", ColumnEncoding::Raw),
            col("f", ColumnEncoding::FloatAsDouble),
            col("b", ColumnEncoding::BitNumber),
            col("e", ColumnEncoding::EnumIndex),
            col("ip", ColumnEncoding::TypedText),
            col("j`", ColumnEncoding::JsonText),
            col("n", ColumnEncoding::JsonText),
        ];
        let text = row_text(&[
            Some(b"a'\\"),
            Some(b"0.10000000149011612"),
            Some(b"18446744073709551615"),
            Some(b"0"),
            Some(b"::1"),
            Some(b""),
            None,
        ]);
        assert_eq!(
            statements(&text, 7, &cols, 1 << 20),
            [
                "INSERT INTO `d`.`t` (`r`, `f`, `b`, `e`, `ip`, `j```, `n`) VALUES (\
              _binary 0x61275c, _binary 0x302e3130303030303030313439303131363132, \
              18446744073709551615, 0, CONVERT(_binary 0x3a3a31 USING utf8mb4), \
              CONVERT(_binary'' USING utf8mb4), NULL)"
            ]
        );
    }

    #[test]
    fn bit_and_enum_values_must_be_digits() {
        for encoding in [ColumnEncoding::BitNumber, ColumnEncoding::EnumIndex] {
            let cols = [col("b", encoding)];
            let mut b = StatementBuilder::new("d", "t", &cols, 100);
            for bad in [&b""[..], b"1)", b"-1", b"1 OR 1", b"0x1"] {
                let e = b.add_row(&[Some(bad.to_vec())]).unwrap_err();
                assert!(e.contains("`b`") && e.contains("not a number"), "{e}");
            }
            assert!(b.add_row(&[None]).unwrap().is_none());
            assert!(b.add_row(&[Some(b"1".to_vec()), None]).is_err());
        }
    }

    #[test]
    fn null_empty_and_the_strings_null_and_backslash_n_stay_distinct() {
        assert!(one_column_statement(None).ends_with("VALUES (NULL)"));
        assert!(one_column_statement(Some(b"")).ends_with("VALUES (_binary'')"));
        assert!(one_column_statement(Some(b"NULL")).ends_with("VALUES (_binary 0x4e554c4c)"));
        assert!(one_column_statement(Some(b"\\N")).ends_with("VALUES (_binary 0x5c4e)"));
    }

    #[test]
    fn every_byte_value_arrives_as_itself() {
        let all: Vec<u8> = (0..=255u8).collect();
        let s = one_column_statement(Some(&all));
        assert!(
            s.ends_with(&format!("VALUES (_binary 0x{})", hex::encode(&all))),
            "{s}"
        );
        // Whatever the block size, escapes cut between blocks are rejoined.
        let text = row_text(&[Some(&all), Some(&all)]);
        let cols = [col("a", ColumnEncoding::Raw), col("b", ColumnEncoding::Raw)];
        for block in 1..=text.len() {
            let s = statements(&text, block, &cols, 1 << 20);
            let h = hex::encode(&all);
            assert_eq!(s.len(), 1);
            assert!(s[0].ends_with(&format!("(_binary 0x{h}, _binary 0x{h})")));
        }
    }

    #[test]
    fn a_row_split_across_two_blocks_is_rejoined_at_every_cut() {
        let mut text = row_text(&[Some(b"one\\\t\n"), None]);
        text.extend(row_text(&[Some(b"\\N"), Some(b"tw\ro")]));
        // A `\` before a raw row end escapes it, as LOAD DATA reads it.
        text.extend(b"a\\\nb\tc\n");
        let expected = parse_rows(&text);
        assert_eq!(expected.len(), 3);
        assert_eq!(expected[2][0].as_deref(), Some(&b"a\nb"[..]));
        for cut in 0..=text.len() {
            let mut splitter = RowSplitter::default();
            let mut rows = splitter.push(&text[..cut]);
            rows.extend(splitter.push(&text[cut..]));
            assert!(splitter.is_empty());
            assert_eq!(rows, expected, "cut at {cut}");
        }
        let mut splitter = RowSplitter::default();
        assert_eq!(splitter.push(b"1\t2\n3\t").len(), 1);
        assert!(!splitter.is_empty(), "a truncated last row is noticed");
    }

    #[test]
    fn statements_are_cut_at_max_bytes_and_keep_every_row_in_order() {
        let cols = [
            col("id", ColumnEncoding::Raw),
            col("e", ColumnEncoding::EnumIndex),
        ];
        let mut text = Vec::new();
        for i in 0..1000 {
            text.extend(row_text(&[Some(i.to_string().as_bytes()), Some(b"2")]));
        }
        let max = 500;
        let s = statements(&text, 333, &cols, max);
        assert!(s.len() > 10);
        let header = "INSERT INTO `d`.`t` (`id`, `e`) VALUES ";
        let mut tuples = Vec::new();
        for (k, stmt) in s.iter().enumerate() {
            assert!(stmt.len() <= max, "{stmt}");
            let body = stmt.strip_prefix(header).unwrap();
            let these: Vec<&str> = body.split(", (").collect();
            if let Some(next) = s.get(k + 1) {
                // Cut only when the next row would not have fitted.
                let first = next[header.len()..].split(", (").next().unwrap();
                assert!(stmt.len() + 2 + first.len() > max);
            }
            tuples.extend(
                these
                    .into_iter()
                    .map(|t| t.trim_start_matches('(').to_string()),
            );
        }
        let expected: Vec<String> = (0..1000)
            .map(|i: u32| format!("_binary 0x{}, 2)", hex::encode(i.to_string())))
            .collect();
        assert_eq!(tuples, expected);
    }

    #[test]
    fn a_row_larger_than_the_limit_goes_alone() {
        let cols = [col("v", ColumnEncoding::Raw)];
        let big = vec![b'x'; 1000];
        let mut text = row_text(&[Some(b"a")]);
        text.extend(row_text(&[Some(&big)]));
        text.extend(row_text(&[Some(b"b")]));
        text.extend(row_text(&[Some(b"c")]));
        let s = statements(&text, 64, &cols, 100);
        let header = "INSERT INTO `d`.`t` (`v`) VALUES ";
        assert_eq!(
            s,
            [
                format!("{header}(_binary 0x61)"),
                format!("{header}(_binary 0x{})", "78".repeat(1000)),
                format!("{header}(_binary 0x62), (_binary 0x63)"),
            ]
        );
    }
}
