//! Loading data files on N sessions, largest first across all tables, and adding each
//! table's deferred indexes as soon as its last file is in, while the others go on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::Conn;
use tokio::task::JoinSet;

use super::journal::{file_item, Journal};
use super::keys::{FileKey, TableKey};
use super::load::{load_file, LoadContext, Method};
use super::schedule::Schedule;
use super::{ddl, schema};
use crate::connect::Connector;
use crate::error::{Error, Result};
use crate::format::Manifest;
use crate::progress::Progress;

/// What the loaders share.
pub struct LoadPlan {
    /// The (selected, renamed) manifest.
    pub manifest: Arc<Manifest>,
    /// Where the dump is read from.
    pub source: super::Source,
    /// Deferred clauses per table.
    pub deferred: Arc<HashMap<TableKey, ddl::SplitTable>>,
    /// Tables loading with automatic statistics off, to switch back on when loaded.
    pub quiet_stats: HashSet<TableKey>,
    /// Files already loaded by an interrupted run.
    pub done: HashSet<String>,
    /// Tables whose engine on the target is transactional: their loads commit with their
    /// journal rows. Others record when a load begins, so that a resume knows to empty them.
    pub transactional: HashSet<TableKey>,
    /// The journal, when the restore is journaled.
    pub journal: Option<Journal>,
    /// Work units of a table's index build (its index bytes), for progress.
    pub index_units: HashMap<TableKey, u64>,
    /// How rows are sent.
    pub method: Method,
}

/// Files still to load, largest first, with their raw bytes; and the tables with nothing
/// left to load (empty, or loaded before an interruption), which only need finishing.
fn pending(plan: &LoadPlan) -> (Vec<(FileKey, u64)>, Vec<TableKey>) {
    let mut jobs = Vec::new();
    let mut ready = Vec::new();
    for (key, _, table) in TableKey::all(&plan.manifest) {
        let todo: Vec<usize> = (0..table.files.len())
            .filter(|&f| !plan.done.contains(&file_item(&table.files[f].path)))
            .collect();
        if todo.is_empty() {
            ready.push(key);
        }
        jobs.extend(todo.into_iter().map(|file| {
            let raw_bytes = table.files[file].raw_bytes;
            (FileKey { table: key, file }, raw_bytes)
        }));
    }
    jobs.sort_by_key(|&(_, raw)| std::cmp::Reverse(raw));
    (jobs, ready)
}

/// Adds a table's deferred indexes that are not there yet, gives it back its automatic
/// statistics, and reports the work. Returns how long the indexes took.
async fn finish_table(
    conn: &mut Conn,
    plan: &LoadPlan,
    key: TableKey,
    progress: &Arc<dyn Progress>,
) -> Result<Duration> {
    let (db, table) = key.of(&plan.manifest);
    let began = Instant::now();
    if let Some(split) = plan.deferred.get(&key) {
        schema::add_missing(conn, &db.name, &table.name, &split.indexes, false).await?;
    }
    let indexed = began.elapsed();
    if plan.quiet_stats.contains(&key) {
        schema::restore_stats(conn, &db.name, &table.name).await?;
    }
    tracing::debug!(
        indexes_ms = indexed.as_millis() as u64,
        stats_ms = (began.elapsed() - indexed).as_millis() as u64,
        units = plan.index_units.get(&key).copied().unwrap_or(0),
        "finished {}.{}",
        db.name,
        table.name
    );
    progress.table_done();
    progress.advance(plan.index_units.get(&key).copied().unwrap_or(0), 0);
    Ok(indexed)
}

/// Loads every pending file; returns rows and raw bytes loaded in this run.
pub async fn load(
    connector: &Connector,
    init: &[String],
    plan: Arc<LoadPlan>,
    threads: usize,
    progress: Arc<dyn Progress>,
) -> Result<(u64, u64)> {
    let (jobs, ready) = pending(&plan);
    let sessions = threads.min(jobs.len()).max(1);
    let mut conns = Vec::new();
    for _ in 0..sessions {
        conns.push(connector.connect(init).await?);
    }
    for key in ready {
        finish_table(&mut conns[0], &plan, key, &progress).await?;
    }
    let schedule = Arc::new(Schedule::new(jobs, plan.index_units.clone(), sessions));
    progress.set_forecast(schedule.clone());
    let mut set = JoinSet::new();
    for (session, mut conn) in conns.into_iter().enumerate() {
        let (schedule, plan, progress) = (schedule.clone(), plan.clone(), progress.clone());
        let tally = schedule.tally(progress.clone());
        set.spawn(async move {
            let (mut rows, mut bytes) = (0u64, 0u64);
            while let Some(key) = schedule.next(session) {
                let (db, table, file) = key.of(&plan.manifest);
                let transactional = plan.transactional.contains(&key.table);
                if let (false, Some(j)) = (transactional, &plan.journal) {
                    super::run_sql(&mut conn, &j.begin_sql(&file.path)).await?;
                }
                let context = LoadContext {
                    method: plan.method,
                    journal_sql: plan
                        .journal
                        .as_ref()
                        .map(|j| j.record_sql(&file_item(&file.path))),
                    transactional,
                    progress: &tally,
                };
                let input = plan.source.input(file);
                let target = (
                    db.name.as_str(),
                    table.name.as_str(),
                    table.columns.as_slice(),
                );
                rows += load_file(
                    &mut conn,
                    input,
                    plan.manifest.options.compression,
                    file,
                    target,
                    context,
                )
                .await?;
                bytes += file.raw_bytes;
                progress.advance(0, file.rows);
                if schedule.loaded(session, key.table) {
                    let indexed = finish_table(&mut conn, &plan, key.table, &progress).await?;
                    schedule.finished(session, key.table, indexed);
                }
            }
            let _ = conn.disconnect().await;
            Ok::<_, Error>((rows, bytes))
        });
    }
    let (mut rows, mut bytes) = (0, 0);
    while let Some(joined) = set.join_next().await {
        // The first failure ends the restore; dropping the set closes the other sessions.
        let (r, b) = joined.map_err(|e| Error::Internal(format!("loader failed: {e}")))??;
        rows += r;
        bytes += b;
    }
    Ok((rows, bytes))
}
