//! Loading one data file: read → decompress → `LOAD DATA LOCAL INFILE`, streamed through
//! a bounded channel, with no temporary file.

use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::stream::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;

use crate::error::{Error, Result, SqlContext};
use crate::format::manifest::{ColumnEncoding, DataColumn, DataFile};
use crate::format::rowtext::LOAD_DATA_FORMAT;
use crate::format::Codec;
use crate::sql::{ident, qualified};

const READ_BLOCK: usize = 256 * 1024;

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

/// Loads one file on `conn`; checks the row count and that the server raised no warning
/// (a warning means a value did not go in exactly).
pub async fn load_file(
    conn: &mut Conn,
    path: PathBuf,
    codec: Codec,
    file: &DataFile,
    statement: &str,
) -> Result<u64> {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let reader_path = path.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let result = (|| -> std::io::Result<()> {
            let file = std::fs::File::open(&reader_path)?;
            let mut input = codec.decoder(std::io::BufReader::with_capacity(READ_BLOCK, file))?;
            loop {
                let mut buf = vec![0u8; READ_BLOCK];
                let n = read_full(&mut input, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return Ok(());
                }
            }
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    // The handler future must be Sync: it owns the receiver and builds the stream when run.
    conn.set_infile_handler(async move {
        Ok(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed())
    });
    let what = || format!("loading {}", path.display());
    conn.query_drop(statement).await.ctx(what)?;
    let _ = reader.await;
    let loaded = conn.affected_rows();
    let count = u64::from(conn.get_warnings());
    if count > 0 {
        let warnings: Vec<(String, u32, String)> = conn
            .query("SHOW WARNINGS")
            .await
            .ctx(|| "reading load warnings".into())?;
        // ENUM invalid-value entries warn by design: accept exactly as many as the dump counted.
        let only_expected = count == file.expected_warnings && warnings.iter().all(|w| w.1 == 1265);
        if !only_expected {
            let text: Vec<String> = warnings
                .into_iter()
                .take(3)
                .map(|w| format!("{} {}: {}", w.0, w.1, w.2))
                .collect();
            return Err(Error::Server(format!(
                "loading {} changed values ({count} warnings, {} expected: {}); the target's definition or settings differ from the source",
                path.display(),
                file.expected_warnings,
                text.join("; ")
            )));
        }
    }
    check_rows(&path, loaded, file)
}

fn check_rows(path: &std::path::Path, loaded: u64, file: &DataFile) -> Result<u64> {
    if loaded != file.rows {
        return Err(Error::Server(format!(
            "loading {} stored {loaded} rows, the manifest says {}",
            path.display(),
            file.rows
        )));
    }
    Ok(loaded)
}

fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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
