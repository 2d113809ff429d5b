//! A dump worker: one session reads one key range with one SELECT and streams the rows,
//! as row text, to a writer thread that compresses, hashes and writes the files. Memory
//! holds a few blocks per worker, whatever the table size.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, QueryResult, TextProtocol, Value};
use tokio::sync::mpsc;

use crate::catalog::select_expr;
use crate::error::{Error, Result, SqlContext};
use crate::format::chunkfile::{DataFileWriter, SyncQueue};
use crate::format::digest::RowsDigest;
use crate::format::layout::data_file;
use crate::format::manifest::{ColumnEncoding, DataColumn, DataFile};
use crate::format::rowtext::{push_field, FIELD_END, ROW_END};
use crate::format::Codec;
use crate::plan::Range;
use crate::progress::Progress;
use crate::sql::qualified;

/// Row text is handed to the writer in blocks of about this size.
const BLOCK_BYTES: usize = 1 << 20;
/// Blocks in flight between a reader and its writer.
const BLOCKS_IN_FLIGHT: usize = 4;
/// A block's buffer: room for the row that crosses [`BLOCK_BYTES`].
const BLOCK_CAPACITY: usize = BLOCK_BYTES + 64 * 1024;

/// One range of one table to dump.
#[derive(Debug, Clone)]
pub struct Job {
    /// Position of the table in the dump (for file names and results).
    pub table_no: usize,
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// Columns in file order.
    pub columns: Vec<DataColumn>,
    /// Read every version of a system-versioned table.
    pub history: bool,
    /// The range.
    pub range: Range,
    /// Estimated raw bytes, for scheduling largest first.
    pub estimated_bytes: u64,
}

/// Settings shared by all workers.
pub struct WorkerContext {
    /// The local directory data files are written in before they are published.
    pub spool: PathBuf,
    /// Where finished data files go.
    pub publish: super::output::Publisher,
    /// Compression.
    pub codec: Codec,
    /// Compression level.
    pub level: i32,
    /// Raw bytes per data file.
    pub chunk_bytes: u64,
    /// Progress sink.
    pub progress: Arc<dyn Progress>,
    /// Optional cap on raw bytes per second over all workers.
    pub rate: Option<RateLimit>,
    /// Set while the server is too busy for the dump to go on reading.
    pub server_busy: Arc<std::sync::atomic::AtomicBool>,
    /// Where finished files go to be fsynced.
    pub syncer: SyncQueue,
}

/// A cap on bytes per second, shared by the workers.
pub struct RateLimit {
    bytes_per_sec: u64,
    started: Instant,
    sent: AtomicU64,
}

impl RateLimit {
    /// A limit of `bytes_per_sec`.
    pub fn new(bytes_per_sec: u64) -> Self {
        RateLimit {
            bytes_per_sec: bytes_per_sec.max(1),
            started: Instant::now(),
            sent: AtomicU64::new(0),
        }
    }

    /// Waits until sending `n` more bytes keeps the average under the limit.
    async fn take(&self, n: u64) {
        let sent = self.sent.fetch_add(n, Ordering::Relaxed) + n;
        let due = Duration::from_secs_f64(sent as f64 / self.bytes_per_sec as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// What the writer says when the reader stopped before the end of its range.
/// What a batch's writer thread ends with.
enum Written {
    /// Every job's files, in job order.
    All(Vec<Vec<DataFile>>),
    /// The reader stopped first (it failed): the last file stays `.partial`.
    Abandoned,
}

enum Block {
    /// Row text, with its rows, ENUM invalid-value entries and digest.
    Rows(Pending),
    NextFile,
    /// The batch's next job begins.
    NextJob,
    Done,
}

/// The SELECT that reads a job's range.
pub fn select_statement(job: &Job) -> String {
    let cols: Vec<String> = job.columns.iter().map(select_expr).collect();
    let history = if job.history {
        " FOR SYSTEM_TIME ALL"
    } else {
        ""
    };
    let filter = job
        .range
        .predicate
        .as_ref()
        .map(|p| format!(" WHERE {p}"))
        .unwrap_or_default();
    format!(
        "SELECT /* mysnap dump */ {} FROM {}{history}{filter}",
        cols.join(", "),
        qualified(&job.database, &job.table)
    )
}

/// Dumps a batch of jobs on `conn` with one multi-statement query (small tables are
/// batched so that a thousand of them do not cost a thousand round trips); returns each
/// job's files in order.
pub async fn dump_batch(
    conn: &mut Conn,
    jobs: &[Job],
    ctx: &WorkerContext,
) -> Result<Vec<Vec<DataFile>>> {
    let (tx, rx) = mpsc::channel::<Block>(BLOCKS_IN_FLIGHT);
    // Written blocks come back to be filled again: a fresh 1 MiB buffer per block would
    // be a fresh mmap (see the binary's malloc tuning) and its page faults.
    let (spare_tx, mut spare_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = spawn_writer(jobs, ctx, rx, spare_tx);
    let read = read_batch(conn, jobs, ctx, &tx, &mut spare_rx).await;
    match read {
        Ok(()) => {
            let _ = tx.send(Block::Done).await;
            drop(tx);
            match writer.await {
                Ok(Ok(Written::All(files))) => Ok(files),
                Ok(Ok(Written::Abandoned)) => Err(Error::Internal(
                    "the file writer stopped before the reader was done".into(),
                )),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(Error::Internal(format!("writer thread failed: {e}"))),
            }
        }
        Err(e) => {
            drop(tx);
            // A writer error (disk full) explains a closed channel better than the reader's;
            // a writer that merely stopped because the reader did explains nothing.
            match writer.await {
                Ok(Err(writer_error)) => Err(writer_error),
                _ => Err(e),
            }
        }
    }
}

fn spawn_writer(
    jobs: &[Job],
    ctx: &WorkerContext,
    mut rx: mpsc::Receiver<Block>,
    spare: mpsc::UnboundedSender<Vec<u8>>,
) -> tokio::task::JoinHandle<Result<Written>> {
    let (spool, publish, codec, level, syncer) = (
        ctx.spool.clone(),
        ctx.publish.clone(),
        ctx.codec,
        ctx.level,
        ctx.syncer.clone(),
    );
    let ext = ctx.codec.extension().to_string();
    let writer_for = move |job: &Job| {
        let (db, table, table_no, range, ext) = (
            job.database.clone(),
            job.table.clone(),
            job.table_no,
            job.range.index,
            ext.clone(),
        );
        DataFileWriter::new(
            &spool,
            publish.clone(),
            codec,
            level,
            0,
            Box::new(move |part| data_file(&db, &table, table_no, range, part, &ext)),
        )
        .synced_by(syncer.clone())
    };
    let mut writers: Vec<DataFileWriter> = jobs.iter().map(writer_for).collect();
    writers.reverse();
    tokio::task::spawn_blocking(move || {
        let mut done = Vec::new();
        let mut writer = writers.pop().expect("a batch has a job");
        while let Some(block) = rx.blocking_recv() {
            match block {
                Block::Rows(Pending {
                    mut text,
                    rows,
                    enum_errors,
                    digest,
                }) => {
                    writer.write_rows(&text, rows, enum_errors, digest)?;
                    // A buffer a very long row grew is let go rather than kept in use.
                    if text.capacity() <= 2 * BLOCK_CAPACITY {
                        text.clear();
                        let _ = spare.send(text);
                    }
                }
                Block::NextFile => writer.finish_file()?,
                Block::NextJob => {
                    let next = writers
                        .pop()
                        .expect("NextJob only between the batch's jobs");
                    done.push(std::mem::replace(&mut writer, next).finish()?);
                }
                Block::Done => {
                    done.push(writer.finish()?);
                    return Ok(Written::All(done));
                }
            }
        }
        // The reader failed: leave the `.partial` file, never a complete-looking one.
        Ok(Written::Abandoned)
    })
}

async fn read_batch(
    conn: &mut Conn,
    jobs: &[Job],
    ctx: &WorkerContext,
    tx: &mpsc::Sender<Block>,
    spare: &mut mpsc::UnboundedReceiver<Vec<u8>>,
) -> Result<()> {
    let sql: Vec<String> = jobs.iter().map(select_statement).collect();
    let mut result = conn
        .query_iter(sql.join(";"))
        .await
        .ctx(|| reading(&jobs[0]))?;
    for (i, job) in jobs.iter().enumerate() {
        if i > 0 {
            send(tx, Block::NextJob).await?;
        }
        read_result_set(&mut result, job, ctx, tx, spare).await?;
    }
    Ok(())
}

/// What a failed read was doing.
fn reading(job: &Job) -> String {
    format!("reading {}", qualified(&job.database, &job.table))
}

/// Streams the rows of the current result set, the job's, to the writer.
async fn read_result_set(
    result: &mut QueryResult<'_, '_, TextProtocol>,
    job: &Job,
    ctx: &WorkerContext,
    tx: &mpsc::Sender<Block>,
    spare: &mut mpsc::UnboundedReceiver<Vec<u8>>,
) -> Result<()> {
    let what = || reading(job);
    let enum_columns: Vec<bool> = job
        .columns
        .iter()
        .map(|c| c.encoding == ColumnEncoding::EnumIndex)
        .collect();
    let mut block = Pending::new(next_buffer(spare));
    let mut file_bytes = 0u64;
    while let Some(row) = result.next().await.ctx(what)? {
        let start = block.text.len();
        block.enum_errors += push_row_text(&mut block.text, row, &enum_columns);
        block.digest.add_row(&block.text[start..]);
        block.rows += 1;
        if block.text.len() >= BLOCK_BYTES {
            file_bytes += block.text.len() as u64;
            let full = std::mem::replace(&mut block, Pending::new(next_buffer(spare)));
            send_block(tx, ctx, full).await?;
            if file_bytes >= ctx.chunk_bytes {
                file_bytes = 0;
                send(tx, Block::NextFile).await?;
            }
        }
    }
    if !block.text.is_empty() {
        send_block(tx, ctx, block).await?;
    }
    Ok(())
}

/// Appends a row read with the text protocol as row text; returns how many of its
/// values are ENUM invalid-value entries (`enum_columns` marks ENUM columns read as
/// their index). The restore's `--checksum` reads rows back through this too, so that
/// the same rows give the same digest.
pub(crate) fn push_row_text(
    buf: &mut Vec<u8>,
    row: mysql_async::Row,
    enum_columns: &[bool],
) -> u64 {
    let mut enum_errors = 0;
    for (i, value) in row.unwrap_raw().into_iter().enumerate() {
        if i > 0 {
            buf.push(FIELD_END);
        }
        if enum_columns[i] && matches!(&value, Some(Value::Bytes(b)) if b == b"0") {
            enum_errors += 1;
        }
        match value {
            None | Some(Value::NULL) => push_field(buf, None),
            Some(Value::Bytes(b)) => push_field(buf, Some(&b)),
            Some(other) => push_field(buf, Some(other.as_sql(true).as_bytes())),
        }
    }
    buf.push(ROW_END);
    enum_errors
}

/// Rows encoded but not yet handed to the writer.
struct Pending {
    text: Vec<u8>,
    rows: u64,
    enum_errors: u64,
    digest: RowsDigest,
}

impl Pending {
    fn new(text: Vec<u8>) -> Self {
        Pending {
            text,
            rows: 0,
            enum_errors: 0,
            digest: RowsDigest::default(),
        }
    }
}

/// An empty buffer for the next block: one the writer is done with, else a new one.
fn next_buffer(spare: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<u8> {
    spare
        .try_recv()
        .unwrap_or_else(|_| Vec::with_capacity(BLOCK_CAPACITY))
}

async fn send_block(tx: &mpsc::Sender<Block>, ctx: &WorkerContext, full: Pending) -> Result<()> {
    let (len, rows) = (full.text.len() as u64, full.rows);
    send(tx, Block::Rows(full)).await?;
    ctx.progress.advance(len, rows);
    if let Some(rate) = &ctx.rate {
        rate.take(len).await;
    }
    // Backing off between blocks leaves the query open: the server just waits to send.
    while ctx.server_busy.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn send(tx: &mpsc::Sender<Block>, block: Block) -> Result<()> {
    tx.send(block)
        .await
        .map_err(|_| Error::Internal("the file writer stopped".into()))
}
