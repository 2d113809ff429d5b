//! The dump pipeline: snapshot → plan → workers → manifest.

pub(crate) mod output;
pub mod worker;

pub use output::Destination;

use std::collections::{BTreeMap, HashMap, VecDeque};

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use futures_util::future::try_join_all;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::task::JoinSet;

use crate::catalog::{self, TableInfo};
use crate::connect::{Connector, Flavor, ServerInfo};
use crate::error::{Error, Result, SqlContext};
use crate::filter::Filter;
use crate::format::chunkfile::FileSyncer;
use crate::format::manifest::StoredObject;
use crate::format::manifest::{
    Consistency, DataFile, Database, DumpOptionsRecord, Manifest, ObjectName, PointInTime,
    SessionSettings, Table, Tool, Totals, FORMAT_NAME, FORMAT_VERSION,
};
use crate::format::Codec;
use crate::plan;
use crate::progress::Progress;
use crate::snapshot::{Snapshot, SnapshotRequest};
use crate::sql::qualified;
use output::Output;
use worker::{dump_batch, Job, RateLimit, WorkerContext};

/// What to dump and how.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// Databases to dump; empty means every database of the server (but its own
    /// `mysql`, `information_schema`, `performance_schema` and `sys`).
    pub databases: Vec<String>,
    /// Which tables and objects of those databases (`--include`/`--exclude`).
    pub filter: Filter,
    /// The patterns `filter` was made from, for the manifest.
    pub patterns: (Vec<String>, Vec<String>),
    /// Dump the accounts (users, roles, grants) too.
    pub users: bool,
    /// Whether `databases` was resolved from "every database" (set by `run`).
    pub all_databases: bool,
    /// Where the dump goes: a new directory or a repository's new snapshot.
    pub destination: Destination,
    /// Sessions reading in parallel.
    pub threads: usize,
    /// Compression codec.
    pub codec: Codec,
    /// Compression level.
    pub level: i32,
    /// Target raw bytes per data file; tables larger than this are split by key.
    pub chunk_bytes: u64,
    /// Read non-transactional tables under a lock, so that they are consistent too.
    pub lock_nontransactional: bool,
    /// Cap on raw bytes per second.
    pub max_rate: Option<u64>,
    /// Pause reading while the server runs more than this many threads besides the dump's.
    pub busy_threads: Option<u64>,
    /// MariaDB: try the lock-free snapshot (compared binlog_snapshot positions) first.
    pub lock_free: bool,
}

impl DumpOptions {
    /// Checks the options before any connection is opened.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(Error::Invalid(format!(
                "--threads {} is out of range: use 1 to {MAX_THREADS}",
                self.threads
            )));
        }
        self.codec.check_level(self.level)?;
        if self.chunk_bytes < 4096 {
            return Err(Error::Invalid("--chunk-size must be at least 4 KiB".into()));
        }
        self.destination.check()
    }
}

/// The most sessions a dump or restore opens: each is a server connection and a thread
/// on both sides.
pub const MAX_THREADS: usize = 256;

/// Statements every dump session runs first: UTC, no character set conversion of
/// results, no statement time limit, and timeouts long enough for a slow writer.
pub fn session_init(flavor: Flavor) -> Vec<String> {
    let mut init = vec![
        "SET SESSION time_zone = '+00:00'".to_string(),
        "SET NAMES utf8mb4".to_string(),
        "SET SESSION character_set_results = binary".to_string(),
        "SET SESSION sql_mode = ''".to_string(),
        "SET SESSION net_write_timeout = 3600, net_read_timeout = 3600, wait_timeout = 86400"
            .to_string(),
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ".to_string(),
    ];
    init.push(match flavor {
        Flavor::Mariadb => "SET SESSION max_statement_time = 0".to_string(),
        Flavor::Mysql => "SET SESSION max_execution_time = 0".to_string(),
    });
    init
}

/// Times the dump's start is tried when DDL changes a table while it starts.
const START_ATTEMPTS: u32 = 3;

/// Takes a consistent dump and writes its manifest last.
pub async fn run(
    connector: &Connector,
    options: &DumpOptions,
    progress: Arc<dyn Progress>,
) -> Result<Dumped> {
    options.validate()?;
    let started = Instant::now();
    let mut meta = connector.connect(&[]).await?;
    let server = ServerInfo::detect(&mut meta).await?;
    progress.note(&format!("dumping from {}", connector.connected_to(&server)));
    let init = session_init(server.flavor);
    for stmt in &init {
        meta.query_drop(stmt.as_str()).await.ctx(|| stmt.clone())?;
    }
    let resolved = DumpOptions {
        databases: resolve_databases(&mut meta, options, connector).await?,
        all_databases: options.databases.is_empty(),
        ..options.clone()
    };
    let options = &resolved;
    let output = Output::open(&options.destination)?;
    let syncer = FileSyncer::start();
    let ctx = Arc::new(WorkerContext {
        spool: output.spool().to_path_buf(),
        publish: output.publisher(),
        codec: options.codec,
        level: options.level,
        chunk_bytes: options.chunk_bytes,
        progress: progress.clone(),
        rate: options.max_rate.map(RateLimit::new),
        server_busy: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        syncer: syncer.queue(),
    });
    let flavor = server.flavor;
    // A DDL that lands while the dump starts makes it start over (with a new snapshot),
    // a few times, before it gives up.
    let mut attempt = 1;
    let Start {
        tables,
        snapshot,
        mut sessions,
        mut results,
        snapshot_time,
        lock_needed,
    } = loop {
        match start(&mut meta, connector, options, &server, &init, &ctx).await {
            Err(Error::Changed(why)) if attempt < START_ATTEMPTS => {
                progress.note(&format!("{why}: starting over with a new snapshot"));
                output.restart()?;
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(Error::Changed(why)) => {
                return Err(Error::Changed(format!(
                    "{why}, at each of {START_ATTEMPTS} attempts; nothing was written: run the dump again once the DDL is done"
                )))
            }
            other => break other?,
        }
    };
    let _ = meta.disconnect().await;
    let nontransactional: Vec<String> = tables
        .iter()
        .filter(|t| !t.transactional)
        .map(TableInfo::display_name)
        .collect();
    let job_for = |table_no: usize, t: &TableInfo, range: plan::Range, estimated_bytes| Job {
        table_no,
        database: t.database.clone(),
        table: t.name.clone(),
        columns: t.data_columns(flavor),
        history: t.system_versioned,
        range,
        estimated_bytes,
    };
    let definitions = table_definitions(&mut sessions, &tables).await?;
    let coordinator = &mut sessions[0];
    let mut databases = read_definitions(
        coordinator,
        &options.databases,
        &tables,
        definitions,
        flavor,
        &options.filter,
    )
    .await?;
    // Accounts are not in the read view: they are read as they are just after it opened,
    // as views and routines are.
    let (accounts, account_notes) = if options.users {
        crate::accounts::read(coordinator, flavor).await?
    } else {
        (Vec::new(), Vec::new())
    };
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "definitions read"
    );
    let mut jobs = Vec::new();
    for (no, t) in tables.iter().enumerate().filter(|(_, t)| t.transactional) {
        let ranges = plan::plan_table(coordinator, t, options.chunk_bytes).await?;
        let per_range = t.estimated_bytes / ranges.len().max(1) as u64;
        jobs.extend(ranges.into_iter().map(|r| job_for(no, t, r, per_range)));
    }
    let monitor = match options.busy_threads {
        Some(limit) => Some(
            watch_server_load(connector, limit, ctx.server_busy.clone(), progress.clone()).await?,
        ),
        None => None,
    };
    let outcome = run_jobs(sessions, jobs, ctx.clone()).await;
    if let Some(m) = monitor {
        m.abort();
    }
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "data read");
    let (sessions, files) = outcome?;
    results.extend(files);
    for mut s in sessions {
        let _ = s.query_drop("ROLLBACK").await;
        let _ = s.disconnect().await;
    }
    progress.end();

    let view_order = attach_files(&mut databases, &tables, results);
    let consistency = Consistency {
        method: snapshot.method.name().into(),
        global_lock_ms: snapshot.global_lock_ms(),
        backup_lock: snapshot.backup_lock,
        attempts: snapshot.attempts,
        sessions: options.threads as u32,
        nontransactional_consistent: nontransactional.is_empty() || lock_needed,
        nontransactional_tables: nontransactional,
        notes: snapshot
            .notes
            .iter()
            .cloned()
            .chain(account_notes)
            .collect(),
    };
    let binlog = snapshot.coordinates.clone();
    snapshot.close().await?;
    let mut manifest = build_manifest(
        connector,
        options,
        server,
        consistency,
        binlog,
        databases,
        view_order,
        snapshot_time,
        started,
    );
    manifest.accounts = accounts;
    // The data files must be durable before the manifest names them.
    syncer.finish()?;
    drop(ctx);
    let (manifest_sha256, snapshot) = output.finish(&manifest)?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "manifest written"
    );
    Ok(Dumped {
        manifest,
        manifest_sha256,
        snapshot,
    })
}

/// A finished dump.
#[derive(Debug, Clone)]
pub struct Dumped {
    /// Its manifest.
    pub manifest: Manifest,
    /// The sha256 of `manifest.json` as written, to keep apart from the dump.
    pub manifest_sha256: String,
    /// The new snapshot, when the dump went into a repository.
    pub snapshot: Option<crate::repo::SnapshotIndex>,
}

/// The dump's consistent start: the tables listed, the snapshot open, the
/// non-transactional tables read (under the lock, if one is needed), then every table
/// locked in the snapshot and checked to be the table that was listed.
struct Start {
    tables: Vec<TableInfo>,
    snapshot: Snapshot,
    sessions: Vec<Conn>,
    /// The non-transactional tables' files, by (table number, range).
    results: BTreeMap<(usize, usize), Vec<DataFile>>,
    snapshot_time: SystemTime,
    lock_needed: bool,
}

async fn start(
    meta: &mut Conn,
    connector: &Connector,
    options: &DumpOptions,
    server: &ServerInfo,
    init: &[String],
    ctx: &Arc<WorkerContext>,
) -> Result<Start> {
    let started = Instant::now();
    let mut tables: Vec<TableInfo> = Vec::new();
    for db in &options.databases {
        tables.extend(catalog::list_tables(meta, db).await?);
    }
    tables.retain(|t| options.filter.wants(&t.database, &t.name));
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "catalog read");
    let lock_needed = options.lock_nontransactional && tables.iter().any(|t| !t.transactional);
    let snapshot_time = SystemTime::now();
    let mut snapshot = Snapshot::open(
        connector,
        server,
        &SnapshotRequest {
            sessions: options.threads,
            lock_needed,
            lock_free_attempts: if options.lock_free { 20 } else { 0 },
            session_init: init.to_vec(),
        },
    )
    .await?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "snapshot open");
    let mut sessions = std::mem::take(&mut snapshot.sessions);
    let total_estimate: u64 = tables.iter().map(|t| t.estimated_bytes).sum();
    ctx.progress
        .begin("dump", total_estimate, 0, tables.len() as u64);

    // Non-transactional tables first, while the lock (if any) still holds writes.
    let mut results = BTreeMap::new();
    let nontrans_jobs: Vec<Job> = tables
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.transactional)
        .map(|(no, t)| Job {
            table_no: no,
            database: t.database.clone(),
            table: t.name.clone(),
            columns: t.data_columns(server.flavor),
            history: t.system_versioned,
            range: plan::Range {
                predicate: None,
                index: 0,
            },
            estimated_bytes: t.estimated_bytes,
        })
        .collect();
    if snapshot.holds_lock() || !nontrans_jobs.is_empty() {
        // Never throttled: under the lock every commit on the server waits for these reads.
        let locked_ctx = if snapshot.holds_lock() {
            Arc::new(WorkerContext {
                rate: None,
                server_busy: Arc::new(std::sync::atomic::AtomicBool::new(false)),
                syncer: ctx.syncer.clone(),
                progress: ctx.progress.clone(),
                spool: ctx.spool.clone(),
                publish: ctx.publish.clone(),
                ..**ctx
            })
        } else {
            ctx.clone()
        };
        let (back, files) = run_jobs(sessions, nontrans_jobs, locked_ctx).await?;
        sessions = back;
        results.extend(files);
    }
    snapshot.release_lock().await?;
    lock_tables(&mut sessions, &tables).await?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "tables locked in the snapshot"
    );
    // DDL waits now; what it did before the locks must not be what the data is read with.
    check_unaltered(&mut sessions[0], options, &tables).await?;
    Ok(Start {
        tables,
        snapshot,
        sessions,
        results,
        snapshot_time,
        lock_needed,
    })
}

/// Inside the snapshot: every session takes a metadata lock on every table, so that DDL
/// waits for the dump. All sessions at once, table by table: a session asking later
/// would queue behind a waiting DROP that waits for the others, and stall the dump.
/// Many tables per statement (a UNION opens them all), every session the same batch at
/// the same time. Non-transactional tables too: their definitions are read afterwards
/// and must stay theirs.
async fn lock_tables(sessions: &mut [Conn], tables: &[TableInfo]) -> Result<()> {
    let opened: Vec<String> = tables
        .iter()
        .map(|t| qualified(&t.database, &t.name))
        .collect();
    for batch in opened.chunks(TABLES_LOCKED_PER_STATEMENT) {
        let selects: Vec<String> = batch
            .iter()
            .map(|q| format!("(SELECT 1 FROM {q} LIMIT 0)"))
            .collect();
        let sql = format!("/* mysnap lock */ {}", selects.join(" UNION ALL "));
        let what = || match batch {
            [one] => format!("opening {one} in the snapshot"),
            _ => format!(
                "opening {} .. {} in the snapshot",
                batch[0],
                batch[batch.len() - 1]
            ),
        };
        let locked = try_join_all(sessions.iter_mut().map(|c| c.query_drop(sql.as_str()))).await;
        match locked {
            // Dropped or renamed away since it was listed.
            Err(mysql_async::Error::Server(e)) if e.code == 1146 => {
                return Err(Error::Changed(format!(
                    "{}: {} (dropped or renamed while the dump was starting)",
                    what(),
                    e.message
                )))
            }
            other => other.ctx(what)?,
        };
    }
    Ok(())
}

/// Fails the dump if a table listed before the snapshot differs (or a table not listed
/// exists) now that every session
/// holds its metadata lock (so that it can no longer change until the dump ends). Its
/// column list, encodings and chunk key came from that earlier listing, and the data is
/// read through the table's present definition: a DDL in between (an instant ADD COLUMN,
/// a type change) would make data files and definition disagree, or hold data of a table
/// that did not exist in the snapshot's state.
async fn check_unaltered(
    conn: &mut Conn,
    options: &DumpOptions,
    listed: &[TableInfo],
) -> Result<()> {
    // Listed twice, a moment apart: a copying ALTER's table is missing from a listing
    // for the instant its rebuilt copy is renamed in, and two listings in such instants
    // are far less likely than one.
    let mut now: HashMap<(String, String), TableInfo> = HashMap::new();
    for round in 0..2 {
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for db in &options.databases {
            for t in catalog::list_tables(conn, db).await? {
                if options.filter.wants(&t.database, &t.name) {
                    now.entry((t.database.clone(), t.name.clone())).or_insert(t);
                }
            }
        }
    }
    for t in listed {
        let same = now
            .remove(&(t.database.clone(), t.name.clone()))
            .is_some_and(|n| n.same_definition(t));
        if !same {
            return Err(Error::Changed(format!(
                "table {} was altered while the dump was starting (between listing the tables and locking them in the snapshot), so its data and definition could disagree",
                t.display_name()
            )));
        }
    }
    // A table missing from the listing but there now was created, or renamed into place
    // (a copying ALTER renames its new copy in): the snapshot may hold it, the dump would not.
    if let Some(t) = now.values().next() {
        return Err(Error::Changed(format!(
            "table {} appeared while the dump was starting (created, or renamed into place by an ALTER), so the dump would miss it",
            t.display_name()
        )));
    }
    Ok(())
}

/// The databases to dump: those named (which must exist), or every database of the
/// server but its own and mysnap's restore journal; in either case only those the filter
/// can select from.
async fn resolve_databases(
    meta: &mut Conn,
    options: &DumpOptions,
    connector: &Connector,
) -> Result<Vec<String>> {
    let names = if options.databases.is_empty() {
        let all: Vec<String> = meta
            .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
            .await
            .ctx(|| "listing databases".into())?;
        all.into_iter()
            .filter(|d| !NOT_DUMPED.iter().any(|s| s.eq_ignore_ascii_case(d)))
            .collect()
    } else {
        let missing = catalog::missing_databases(meta, &options.databases).await?;
        if let Some(db) = missing.first() {
            return Err(Error::Invalid(format!(
                "unknown database '{db}' on {}",
                connector.options().describe()
            )));
        }
        options.databases.clone()
    };
    Ok(names
        .into_iter()
        .filter(|d| options.filter.may_want_database(d))
        .collect())
}

/// Databases a whole-instance dump leaves out: the server's own (its accounts are dumped
/// as statements instead) and the one holding mysnap's restore journal.
const NOT_DUMPED: &[&str] = &[
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    crate::restore::journal::SCHEMA,
];

/// Polls the process list every second on a session of its own and raises `busy` while
/// the server runs more than `limit` statements besides the dump's, so that workers
/// pause between blocks.
async fn watch_server_load(
    connector: &Connector,
    limit: u64,
    busy: Arc<std::sync::atomic::AtomicBool>,
    progress: Arc<dyn Progress>,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut conn = connector.connect(&[]).await?;
    // The first reading is taken before any worker starts, so a busy server pauses the
    // dump from its first block.
    check_server_load(&mut conn, limit, &busy, progress.as_ref()).await;
    Ok(tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            check_server_load(&mut conn, limit, &busy, progress.as_ref()).await;
        }
    }))
}

async fn check_server_load(
    conn: &mut Conn,
    limit: u64,
    busy: &std::sync::atomic::AtomicBool,
    progress: &dyn Progress,
) {
    // Running threads that are not the dump's (its statements carry a mysnap comment).
    let others: u64 = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
             AND COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID') \
             AND (INFO IS NULL OR INFO NOT LIKE '%/* mysnap%')",
        )
        .await
        .unwrap_or(None)
        .unwrap_or(0);
    let now_busy = others > limit;
    if busy.swap(now_busy, std::sync::atomic::Ordering::Relaxed) != now_busy {
        progress.note(&if now_busy {
            format!("server busy ({others} statements running besides the dump's, over --busy-threads {limit}): pausing")
        } else {
            "server load back under --busy-threads: resuming".to_string()
        });
    }
}

/// Tables whose metadata lock one statement takes.
const TABLES_LOCKED_PER_STATEMENT: usize = 250;

/// Whole tables estimated under this size are read in batches.
const SMALL_TABLE_BYTES: u64 = 1 << 20;
/// Raw bytes a batch of small tables may be estimated to hold.
const BATCH_BYTES: u64 = 8 << 20;

/// Orders jobs largest first and puts small whole tables into batches, each read with
/// one multi-statement query; enough batches that every session gets several.
fn batch_jobs(mut jobs: Vec<Job>, sessions: usize) -> Vec<Vec<Job>> {
    jobs.sort_by_key(|j| std::cmp::Reverse(j.estimated_bytes));
    let is_small = |j: &Job| j.range.predicate.is_none() && j.estimated_bytes < SMALL_TABLE_BYTES;
    let small_count = jobs.iter().filter(|j| is_small(j)).count();
    let per_batch = (small_count / (sessions * 4)).clamp(1, catalog::STATEMENTS_PER_ROUND_TRIP);
    let mut batches: Vec<Vec<Job>> = Vec::new();
    let mut open: Vec<Job> = Vec::new();
    let mut open_bytes = 0;
    for job in jobs {
        if !is_small(&job) {
            batches.push(vec![job]);
            continue;
        }
        if !open.is_empty()
            && (open.len() == per_batch || open_bytes + job.estimated_bytes > BATCH_BYTES)
        {
            batches.push(std::mem::take(&mut open));
            open_bytes = 0;
        }
        open_bytes += job.estimated_bytes;
        open.push(job);
    }
    if !open.is_empty() {
        batches.push(open);
    }
    batches
}

/// Runs jobs on the sessions, each session pulling the next largest batch; returns the
/// sessions for reuse and each job's files keyed by (table number, range).
async fn run_jobs(
    sessions: Vec<Conn>,
    jobs: Vec<Job>,
    ctx: Arc<WorkerContext>,
) -> Result<(Vec<Conn>, BTreeMap<(usize, usize), Vec<DataFile>>)> {
    let mut ranges_left: HashMap<usize, usize> = HashMap::new();
    for j in &jobs {
        *ranges_left.entry(j.table_no).or_default() += 1;
    }
    let ranges_left = Arc::new(Mutex::new(ranges_left));
    let queue = Arc::new(Mutex::new(VecDeque::from(batch_jobs(jobs, sessions.len()))));
    let mut set = JoinSet::new();
    for mut conn in sessions {
        let (queue, ctx, ranges_left) = (queue.clone(), ctx.clone(), ranges_left.clone());
        set.spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().expect("job queue").pop_front();
                let Some(batch) = next else { break };
                let files = dump_batch(&mut conn, &batch, &ctx).await?;
                for (job, files) in batch.iter().zip(files) {
                    let mut left = ranges_left.lock().expect("ranges left");
                    let n = left.get_mut(&job.table_no).expect("table of a job");
                    *n -= 1;
                    if *n == 0 {
                        ctx.progress.table_done();
                    }
                    drop(left);
                    done.push(((job.table_no, job.range.index), files));
                }
            }
            Ok::<_, Error>((conn, done))
        });
    }
    let mut sessions = Vec::new();
    let mut results = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        // The first failure stops every worker; dropping their sessions ends their reads.
        let (conn, done) = joined.map_err(|e| Error::Internal(format!("worker failed: {e}")))??;
        sessions.push(conn);
        results.extend(done);
    }
    Ok((sessions, results))
}

/// `SHOW CREATE TABLE` of every table, in the order of `tables`, shared out among the
/// sessions (all inside the snapshot, holding the tables' metadata locks).
async fn table_definitions(sessions: &mut [Conn], tables: &[TableInfo]) -> Result<Vec<String>> {
    let names: Vec<(&str, &str)> = tables
        .iter()
        .map(|t| (t.database.as_str(), t.name.as_str()))
        .collect();
    let share = names.len().div_ceil(sessions.len()).max(1);
    let parts = try_join_all(
        sessions
            .iter_mut()
            .zip(names.chunks(share))
            .map(|(conn, part)| catalog::table_definitions(conn, part)),
    )
    .await?;
    Ok(parts.into_iter().flatten().collect())
}

async fn read_definitions(
    conn: &mut Conn,
    names: &[String],
    tables: &[TableInfo],
    // `SHOW CREATE TABLE` of each of `tables`, in the same order.
    mut definitions: Vec<String>,
    flavor: Flavor,
    filter: &Filter,
) -> Result<Vec<Database>> {
    let mut out = Vec::new();
    for db in names {
        let (charset, collation, create_sql) = catalog::database_definition(conn, db).await?;
        let mut db_tables = Vec::new();
        for (i, t) in tables.iter().enumerate().filter(|(_, t)| &t.database == db) {
            let create_sql = std::mem::take(&mut definitions[i]);
            db_tables.push(Table {
                name: t.name.clone(),
                engine: t.engine.clone(),
                transactional: t.transactional,
                create_sql,
                columns: t.data_columns(flavor),
                history: t.system_versioned,
                rows: 0,
                raw_bytes: 0,
                index_bytes: t.estimated_index_bytes,
                chunk_key: plan::chunk_key(t)
                    .map(|(k, _)| k.columns.clone())
                    .unwrap_or_default(),
                files: Vec::new(),
            });
        }
        let wanted = |o: &StoredObject| filter.wants(db, &o.name);
        let mut sequences = if flavor == Flavor::Mariadb {
            catalog::sequences(conn, db).await?
        } else {
            Vec::new()
        };
        sequences.retain(|s| filter.wants(db, &s.name));
        let mut views = catalog::views(conn, db).await?;
        views.retain(wanted);
        let mut routines = catalog::routines(conn, db).await?;
        routines.retain(wanted);
        // A trigger follows its table.
        let mut triggers = catalog::triggers(conn, db).await?;
        triggers.retain(|t| filter.wants(db, t.table.as_deref().unwrap_or(&t.name)));
        let mut events = catalog::events(conn, db).await?;
        events.retain(wanted);
        out.push(Database {
            name: db.clone(),
            charset,
            collation,
            create_sql,
            tables: db_tables,
            sequences,
            views,
            routines,
            triggers,
            events,
        });
    }
    Ok(out)
}

/// Puts each table's files (in key order) into the manifest's tables and orders views.
fn attach_files(
    databases: &mut [Database],
    tables: &[TableInfo],
    results: BTreeMap<(usize, usize), Vec<DataFile>>,
) -> Vec<ObjectName> {
    for ((table_no, _), files) in results {
        let info = &tables[table_no];
        let table = databases
            .iter_mut()
            .find(|d| d.name == info.database)
            .and_then(|d| d.tables.iter_mut().find(|t| t.name == info.name))
            .expect("every job's table is in the manifest");
        table.rows += files.iter().map(|f| f.rows).sum::<u64>();
        table.raw_bytes += files.iter().map(|f| f.raw_bytes).sum::<u64>();
        table.files.extend(files);
    }
    let views: Vec<(String, String, String)> = databases
        .iter()
        .flat_map(|d| {
            d.views
                .iter()
                .map(move |v| (d.name.clone(), v.name.clone(), v.create_sql.clone()))
        })
        .collect();
    catalog::order_views(&views)
        .into_iter()
        .map(|(database, name)| ObjectName { database, name })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn build_manifest(
    connector: &Connector,
    options: &DumpOptions,
    server: ServerInfo,
    consistency: Consistency,
    binlog: crate::format::manifest::BinlogCoordinates,
    databases: Vec<Database>,
    view_order: Vec<ObjectName>,
    snapshot_time: SystemTime,
    started: Instant,
) -> Manifest {
    let mut totals = Totals::default();
    for t in databases.iter().flat_map(|d| &d.tables) {
        totals.tables += 1;
        totals.rows += t.rows;
        totals.raw_bytes += t.raw_bytes;
        totals.files += t.files.len() as u64;
        totals.stored_bytes += t.files.iter().map(|f| f.stored_bytes).sum::<u64>();
    }
    let point_in_time = if binlog.file.is_some() {
        PointInTime {
            possible: true,
            reason: None,
        }
    } else {
        PointInTime {
            possible: false,
            reason: Some("the source server has no binary log (log_bin is OFF): point-in-time restore from this dump is impossible".into()),
        }
    };
    Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        tool: Tool {
            name: "mysnap".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        snapshot_time: humantime::format_rfc3339_seconds(snapshot_time).to_string(),
        finished_time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        duration_seconds: started.elapsed().as_secs_f64(),
        server,
        consistency,
        binlog,
        point_in_time,
        options: DumpOptionsRecord {
            source: connector.options().describe(),
            databases: options.databases.clone(),
            all_databases: options.all_databases,
            include: options.patterns.0.clone(),
            exclude: options.patterns.1.clone(),
            threads: options.threads,
            compression: options.codec,
            compression_level: options.level,
            chunk_bytes: options.chunk_bytes,
        },
        session: SessionSettings {
            time_zone: "+00:00".into(),
            character_set: "binary".into(),
        },
        databases,
        view_order,
        totals,
        accounts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(table_no: usize, predicate: Option<&str>, estimated_bytes: u64) -> Job {
        Job {
            table_no,
            database: "d".into(),
            table: format!("t{table_no}"),
            columns: Vec::new(),
            history: false,
            range: plan::Range {
                predicate: predicate.map(str::to_string),
                index: 0,
            },
            estimated_bytes,
        }
    }

    #[test]
    fn small_whole_tables_are_batched_after_the_large_jobs_and_none_is_lost() {
        let mut jobs = vec![
            job(0, Some("`id` < 10"), 64 << 20),
            job(0, Some("`id` >= 10"), 64 << 20),
        ];
        // A large table without a usable key: one job, never batched.
        jobs.push(job(1, None, 300 << 20));
        jobs.extend((2..102).map(|n| job(n, None, 16 << 10)));
        let batches = batch_jobs(jobs, 2);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(&sizes[..3], &[1, 1, 1], "large jobs alone, first");
        assert_eq!(batches[0][0].table_no, 1, "largest first");
        // 100 small tables over 2 sessions: batches of 12, so each session gets several.
        assert!(
            sizes[3..].iter().all(|&n| (1..=12).contains(&n)),
            "{sizes:?}"
        );
        assert!(sizes.len() - 3 >= 8, "{sizes:?}");
        let mut seen: Vec<usize> = batches.iter().flatten().map(|j| j.table_no).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, (0..102).collect::<Vec<_>>());
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 103);
    }

    #[test]
    fn a_batch_holds_at_most_its_byte_budget_of_estimates() {
        let jobs: Vec<Job> = (0..400).map(|n| job(n, None, 900 << 10)).collect();
        for batch in batch_jobs(jobs, 1) {
            let bytes: u64 = batch.iter().map(|j| j.estimated_bytes).sum();
            assert!(bytes <= BATCH_BYTES, "{} jobs, {bytes} bytes", batch.len());
        }
    }
}
