//! Loading one data file: in one transaction with its journal row (when the table's
//! engine has transactions), the row count and warnings checked, tried again when
//! sessions loading the same table deadlock. The rows go by one of two strategies:
//! `LOAD DATA LOCAL INFILE` streamed from the decompressor (`load_data`), or multi-row
//! INSERT statements when the target refuses local infile (`insert`). Both read the file
//! through `blocks` and check what the server stored through `tally`.

mod blocks;

pub(crate) use blocks::Opener;
mod insert;
mod load_data;
mod tally;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{Result, SqlContext};
use crate::format::manifest::{DataColumn, DataFile};
use crate::format::Codec;
use crate::progress::Progress;

/// A data file to load: its name for messages, and how to read its stored bytes.
pub struct Input {
    /// The file's path, or its snapshot and object, for messages.
    pub name: PathBuf,
    /// Opens its stored bytes.
    pub open: Opener,
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
    input: Input,
    codec: Codec,
    file: &DataFile,
    target: (&str, &str, &[DataColumn]),
    context: LoadContext<'_>,
) -> Result<u64> {
    let mut attempt = 1;
    loop {
        let reported = Arc::new(AtomicU64::new(0));
        match load_once(conn, &input, codec, file, target, &context, &reported).await {
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

/// One attempt: the rows, then the journal row, committed together when transactional;
/// rolled back on any failure.
async fn load_once(
    conn: &mut Conn,
    input: &Input,
    codec: Codec,
    file: &DataFile,
    target: (&str, &str, &[DataColumn]),
    context: &LoadContext<'_>,
    reported: &Arc<AtomicU64>,
) -> Result<u64> {
    let what = || format!("loading {}", input.name.display());
    if context.transactional {
        conn.query_drop("START TRANSACTION").await.ctx(what)?;
    }
    let loaded = send_rows(conn, input, codec, file, target, context, reported).await;
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

/// Sends the file's rows by the context's method and returns the rows stored. Raw bytes
/// reported to the progress are also counted in `reported`, for a retry to take back.
async fn send_rows(
    conn: &mut Conn,
    input: &Input,
    codec: Codec,
    file: &DataFile,
    target: (&str, &str, &[DataColumn]),
    context: &LoadContext<'_>,
    reported: &Arc<AtomicU64>,
) -> Result<u64> {
    match context.method {
        Method::LoadData => {
            load_data::stream_file(conn, input, codec, file, target, context.progress, reported)
                .await
        }
        Method::Insert(max) => {
            let (db, table, columns) = target;
            let rows =
                insert::insert_file(conn, input, codec, file, db, table, columns, max).await?;
            // The statements report nothing as they go: the whole file, once stored.
            context.progress.advance(file.raw_bytes, 0);
            reported.fetch_add(file.raw_bytes, Ordering::Relaxed);
            Ok(rows)
        }
    }
}
