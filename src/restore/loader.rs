//! Loading one data file: read → decompress → `LOAD DATA LOCAL INFILE`, streamed through
//! a bounded channel, with no temporary file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;

use crate::error::{Error, Result, SqlContext};
use crate::format::manifest::{ColumnEncoding, DataColumn, DataFile};
use crate::format::rowtext::LOAD_DATA_FORMAT;
use crate::format::Codec;
use crate::progress::Progress;
use crate::sql::{ident, qualified};

/// Decompressed bytes per block handed to the server.
pub(super) const READ_BLOCK: usize = 256 * 1024;

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

/// How rows reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `LOAD DATA LOCAL INFILE`, streamed.
    LoadData,
    /// Multi-row INSERT statements of at most this many bytes, for servers that refuse
    /// local infile (MySQL 8's default).
    Insert(usize),
}

/// How a file's load is wrapped.
pub struct LoadContext<'a> {
    /// How rows are sent.
    pub method: Method,
    /// Journal statement to run in the same transaction, if the restore is journaled.
    pub journal_sql: Option<String>,
    /// Whether the table's engine is transactional (the load and its journal row commit
    /// together); otherwise the journal row follows the load.
    pub transactional: bool,
    /// Where streamed bytes are reported.
    pub progress: &'a Arc<dyn Progress>,
}

/// Loads one file on `conn`; checks the row count and that the server raised no warning
/// (a warning means a value did not go in exactly). Reports raw bytes as they stream.
/// Sessions loading the same table can deadlock: a transactional load that the server
/// rolled back for a deadlock or lock wait timeout is tried again, up to five times.
pub async fn load_file(
    conn: &mut Conn,
    path: PathBuf,
    codec: Codec,
    file: &DataFile,
    target: (&str, &str, &[DataColumn]),
    context: LoadContext<'_>,
) -> Result<u64> {
    let mut attempt = 1;
    loop {
        let reported = Arc::new(AtomicU64::new(0));
        match load_once(conn, &path, codec, file, target, &context, &reported).await {
            Err(e)
                if context.transactional
                    && matches!(e.server_code(), Some(1213 | 1205))
                    && attempt < 5 =>
            {
                context.progress.rewind(reported.load(Ordering::Relaxed));
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

async fn load_once(
    conn: &mut Conn,
    path: &std::path::Path,
    codec: Codec,
    file: &DataFile,
    target: (&str, &str, &[DataColumn]),
    context: &LoadContext<'_>,
    reported: &Arc<AtomicU64>,
) -> Result<u64> {
    let what = || format!("loading {}", path.display());
    if context.transactional {
        conn.query_drop("START TRANSACTION").await.ctx(what)?;
    }
    let loaded = match context.method {
        Method::LoadData => {
            let statement = load_statement(target.0, target.1, target.2);
            stream_load(
                conn,
                path,
                codec,
                file,
                (&qualified(target.0, target.1), &statement),
                context.progress,
                reported,
            )
            .await
        }
        Method::Insert(max) => {
            let (db, table, columns) = target;
            let n = super::insert::insert_file(
                conn,
                path.to_path_buf(),
                codec,
                file,
                db,
                table,
                columns,
                max,
            )
            .await;
            if n.is_ok() {
                context.progress.advance(file.raw_bytes, 0);
                reported.fetch_add(file.raw_bytes, Ordering::Relaxed);
            }
            n
        }
    };
    let finished = async {
        let loaded = loaded?;
        if let Some(sql) = &context.journal_sql {
            conn.query_drop(sql.as_str()).await.ctx(what)?;
        }
        if context.transactional {
            conn.query_drop("COMMIT").await.ctx(what)?;
        }
        Ok(loaded)
    }
    .await;
    if finished.is_err() && context.transactional {
        let _ = conn.query_drop("ROLLBACK").await;
    }
    finished
}

async fn stream_load(
    conn: &mut Conn,
    path: &std::path::Path,
    codec: Codec,
    file: &DataFile,
    (table, statement): (&str, &str),
    progress: &Arc<dyn Progress>,
    reported: &Arc<AtomicU64>,
) -> Result<u64> {
    let path = path.to_path_buf();
    let (progress, reported) = (progress.clone(), reported.clone());
    let rx = read_blocks(path.clone(), codec, move |n| {
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
    conn.query_drop(statement).await.ctx(what)?;
    let mut tally = Tally::new(table.to_string());
    tally.record(conn, &path, file).await?;
    tally.finish(&path, file)
}

/// Rows stored and warnings raised while loading one file (over one or many statements),
/// with a few warnings to show.
pub(super) struct Tally {
    /// The table loaded, `db`.`t`.
    table: String,
    rows: u64,
    warnings: u64,
    /// Rows skipped because their key already existed on the target (warning 1062).
    duplicates: u64,
    samples: Vec<String>,
}

impl Tally {
    /// A tally of loading into `table`.
    pub(super) fn new(table: String) -> Self {
        Tally {
            table,
            rows: 0,
            warnings: 0,
            duplicates: 0,
            samples: Vec::new(),
        }
    }

    /// Counts the statement just run. Fails at once on a warning other than an ENUM
    /// invalid-value entry (1265, which the server raises by design), or on more warnings
    /// than the dump counted: a warning means a value did not go in exactly.
    pub(super) async fn record(
        &mut self,
        conn: &mut Conn,
        path: &Path,
        file: &DataFile,
    ) -> Result<()> {
        self.rows += conn.affected_rows();
        let count = u64::from(conn.get_warnings());
        if count == 0 {
            return Ok(());
        }
        self.warnings += count;
        let mut warnings: Vec<(String, u32, String)> = conn
            .query("SHOW WARNINGS")
            .await
            .ctx(|| "reading load warnings".into())?;
        self.duplicates += warnings.iter().filter(|w| w.1 == 1062).count() as u64;
        // Unexpected codes first, so that the message shows them.
        warnings.sort_by_key(|w| w.1 == 1265);
        let unexpected = warnings.first().is_some_and(|w| w.1 != 1265);
        if unexpected {
            self.samples.clear();
        }
        let room = 3usize.saturating_sub(self.samples.len());
        self.samples.extend(
            warnings
                .into_iter()
                .take(room)
                .map(|w| format!("{} {}: {}", w.0, w.1, redact_values(&w.2))),
        );
        if unexpected || self.warnings > file.expected_warnings {
            return Err(self.changed_values(path, file));
        }
        Ok(())
    }

    /// The file's totals must be what the dump recorded: exactly its expected warnings
    /// and its rows. Returns the rows stored.
    pub(super) fn finish(&self, path: &Path, file: &DataFile) -> Result<u64> {
        if self.warnings != file.expected_warnings {
            return Err(self.changed_values(path, file));
        }
        if self.rows != file.rows {
            return Err(Error::Server(format!(
                "loading {} stored {} rows, the manifest says {}",
                path.display(),
                self.rows,
                file.rows
            )));
        }
        Ok(self.rows)
    }

    fn changed_values(&self, path: &Path, file: &DataFile) -> Error {
        if self.duplicates > 0 {
            return Error::Conflict(format!(
                "loading {} into {}: {} row(s) have a key that already exists in the table on the target, so they were not loaded; --existing=append only adds rows whose keys are new (remove the clashing rows, or restore into an empty table with --existing=drop)",
                path.display(),
                self.table,
                self.duplicates
            ));
        }
        Error::Server(format!(
            "loading {} into {} changed values ({} warnings, {} expected: {}); the target's definition or settings differ from the source",
            path.display(),
            self.table,
            self.warnings,
            file.expected_warnings,
            self.samples.join("; ")
        ))
    }
}

/// A server message without the data it quotes: "Incorrect integer value: '...' for
/// column" and "Duplicate entry '...' for key" carry a row's content, which an error
/// message must not show (a data file may hold anything, even a file's content).
pub(super) fn redact_values(message: &str) -> String {
    let mut out = message.to_string();
    for opener in ["value: '", "entry '"] {
        if let Some(start) = out.find(opener).map(|i| i + opener.len()) {
            let end = out[start..]
                .rfind("' for ")
                .map_or(out.len(), |i| start + i);
            out.replace_range(start..end, "...");
        }
    }
    out
}

/// Decompressed blocks of a data file, read ahead on a blocking thread; the bounded channel
/// keeps memory to a few blocks, and the thread stops when the receiver is dropped.
/// `on_read` is told each block's size as it is read.
pub(super) fn read_blocks(
    path: PathBuf,
    codec: Codec,
    mut on_read: impl FnMut(usize) + Send + 'static,
) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let result = (|| -> std::io::Result<()> {
            let file = crate::format::layout::open_data_file(&path)?;
            let mut input = codec.decoder(std::io::BufReader::with_capacity(READ_BLOCK, file))?;
            loop {
                let mut block = vec![0u8; READ_BLOCK];
                let n = read_full(&mut input, &mut block)?;
                if n == 0 {
                    return Ok(());
                }
                block.truncate(n);
                on_read(n);
                if tx.blocking_send(Ok(block)).is_err() {
                    return Ok(());
                }
            }
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
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
    fn messages_do_not_quote_row_content() {
        assert_eq!(
            redact_values("Incorrect integer value: 'root:x:0:0' for column `d`.`t`.`id` at row 1"),
            "Incorrect integer value: '...' for column `d`.`t`.`id` at row 1"
        );
        assert_eq!(
            redact_values("Duplicate entry 'secret' for key 'PRIMARY'"),
            "Duplicate entry '...' for key 'PRIMARY'"
        );
        assert_eq!(
            redact_values("Data truncated for column 'c' at row 3"),
            "Data truncated for column 'c' at row 3"
        );
    }

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
