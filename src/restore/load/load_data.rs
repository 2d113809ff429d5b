//! Sending a file's rows with `LOAD DATA LOCAL INFILE`: read → decompress → the server,
//! streamed through a bounded channel, with no temporary file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::blocks::read_blocks;
use super::tally::Tally;
use crate::error::{Result, SqlContext};
use crate::format::manifest::{ColumnEncoding, DataColumn, DataFile};
use crate::format::rowtext::LOAD_DATA_FORMAT;
use crate::format::Codec;
use crate::progress::Progress;
use crate::sql::{ident, qualified};

/// The `LOAD DATA` statement for a table's data files: each column loaded as written,
/// BIT through a number, MySQL JSON from utf8mb4 text.
pub fn load_statement(db: &str, table: &str, columns: &[DataColumn]) -> String {
    let mut targets = Vec::new();
    let mut sets = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        match c.encoding {
            ColumnEncoding::Raw | ColumnEncoding::FloatAsDouble => targets.push(ident(&c.name)),
            ColumnEncoding::BitNumber | ColumnEncoding::EnumIndex => {
                targets.push(format!("@v{i}"));
                sets.push(format!("{} = CAST(@v{i} AS UNSIGNED)", ident(&c.name)));
            }
            ColumnEncoding::JsonText | ColumnEncoding::TypedText => {
                targets.push(format!("@v{i}"));
                sets.push(format!("{} = CONVERT(@v{i} USING utf8mb4)", ident(&c.name)));
            }
        }
    }
    let set = if sets.is_empty() {
        String::new()
    } else {
        format!(" SET {}", sets.join(", "))
    };
    format!(
        "LOAD DATA LOCAL INFILE 'mysnap-stream' INTO TABLE {} {LOAD_DATA_FORMAT} ({}){set}",
        qualified(db, table),
        targets.join(", ")
    )
}

/// Streams one data file into `db`.`table` with one `LOAD DATA` statement, reporting raw
/// bytes to `progress` (and counting them in `reported`) as they are read. Returns the
/// rows stored, once [`Tally`] found them and the warnings to be what the dump recorded.
pub(super) async fn stream_file(
    conn: &mut Conn,
    input: &super::Input,
    codec: Codec,
    file: &DataFile,
    (db, table, columns): (&str, &str, &[DataColumn]),
    progress: &Arc<dyn Progress>,
    reported: &Arc<AtomicU64>,
) -> Result<u64> {
    let path = input.name.clone();
    let (progress, reported) = (progress.clone(), reported.clone());
    let rx = read_blocks(input.open.clone(), codec, move |n| {
        progress.advance(n as u64, 0);
        reported.fetch_add(n as u64, Ordering::Relaxed);
    });
    // The handler future must be Sync: it owns the receiver and builds the stream when run.
    conn.set_infile_handler(async move {
        Ok(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item.map(Bytes::from), rx))
        })
        .boxed())
    });
    let what = || format!("loading {}", path.display());
    conn.query_drop(load_statement(db, table, columns))
        .await
        .ctx(what)?;
    let mut tally = Tally::new(qualified(db, table));
    tally.record(conn, &path, file).await?;
    tally.finish(&path, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_and_json_columns_go_through_variables() {
        let cols = vec![
            DataColumn {
                name: "id".into(),
                encoding: ColumnEncoding::Raw,
            },
            DataColumn {
                name: "b".into(),
                encoding: ColumnEncoding::BitNumber,
            },
            DataColumn {
                name: "j".into(),
                encoding: ColumnEncoding::JsonText,
            },
        ];
        let s = load_statement("d", "t", &cols);
        assert!(
            s.starts_with(
                "LOAD DATA LOCAL INFILE 'mysnap-stream' INTO TABLE `d`.`t` CHARACTER SET binary"
            ),
            "{s}"
        );
        assert!(s.ends_with("(`id`, @v1, @v2) SET `b` = CAST(@v1 AS UNSIGNED), `j` = CONVERT(@v2 USING utf8mb4)"), "{s}");
    }
}
