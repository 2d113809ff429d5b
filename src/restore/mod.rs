//! The restore pipeline: the manifest drives everything. Verify every file → check the
//! target for conflicts → databases, sequences, tables → data in parallel, largest file
//! first → routines → views → triggers (after the data, so they do not fire) → events.

pub mod ddl;
pub mod loader;
pub mod verify;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::task::JoinSet;

use crate::catalog::definition_bytes;
use crate::connect::{Connector, Flavor, ServerInfo};
use crate::error::{Error, Result, SqlContext};
use crate::format::manifest::{Database, StoredObject};
use crate::format::Manifest;
use crate::progress::Progress;
use crate::sql::{ident, qualified};

/// What to do with a table that already exists on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse to start (the default).
    Fail,
    /// Drop it (and any same-named view, routine, trigger or event) and restore the dump's.
    Drop,
    /// Keep the table and load the dump's rows into it; other objects are replaced.
    Append,
}

impl std::str::FromStr for Existing {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fail" => Ok(Existing::Fail),
            "drop" => Ok(Existing::Drop),
            "append" => Ok(Existing::Append),
            _ => Err(Error::Invalid(format!(
                "unknown --existing '{s}': use fail, drop or append"
            ))),
        }
    }
}

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The dump directory.
    pub dir: PathBuf,
    /// Loader sessions.
    pub threads: usize,
    /// What to do with existing objects.
    pub existing: Existing,
    /// Write the restore to the target's binary log (so replicas follow). Off needs the
    /// privilege to set `sql_log_bin`.
    pub write_binlog: bool,
    /// Create tables without their secondary indexes and add them once the table's data
    /// is in (foreign keys are always added last).
    pub defer_indexes: bool,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// Tables created or loaded.
    pub tables: u64,
    /// Rows loaded.
    pub rows: u64,
    /// Raw bytes loaded.
    pub raw_bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Statements every restore session runs first.
pub fn session_init(server: &ServerInfo, write_binlog: bool) -> Vec<String> {
    let mut init = vec![
        "SET NAMES utf8mb4".to_string(),
        "SET SESSION time_zone = '+00:00'".to_string(),
        // The dump's values are already checked by their source; NO_AUTO_VALUE_ON_ZERO keeps id 0.
        "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'".to_string(),
        "SET SESSION foreign_key_checks = 0, unique_checks = 0".to_string(),
        "SET SESSION net_read_timeout = 3600, net_write_timeout = 3600, wait_timeout = 86400"
            .to_string(),
    ];
    if !write_binlog {
        init.push("SET SESSION sql_log_bin = 0".to_string());
    }
    match server.flavor {
        Flavor::Mariadb => {
            init.push("SET SESSION max_statement_time = 0".to_string());
            if server.at_least(10, 11, 0) {
                init.push("SET SESSION system_versioning_insert_history = 1".to_string());
            }
        }
        Flavor::Mysql => init.push("SET SESSION max_execution_time = 0".to_string()),
    }
    init
}

/// Restores a dump directory into the server `connector` reaches.
pub async fn run(
    connector: &Connector,
    options: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreSummary> {
    if options.threads == 0 {
        return Err(Error::Invalid("--threads must be at least 1".into()));
    }
    let started = Instant::now();
    let manifest = Arc::new(Manifest::read(&options.dir)?);
    {
        let (dir, m, threads) = (options.dir.clone(), manifest.clone(), options.threads);
        tokio::task::spawn_blocking(move || verify::verify_files(&dir, &m, threads))
            .await
            .map_err(|e| Error::Dump(format!("verification failed: {e}")))??;
    }
    let mut admin = connector.connect(&[]).await?;
    let server = ServerInfo::detect(&mut admin).await?;
    if server.flavor != manifest.server.flavor {
        return Err(Error::Invalid(format!(
            "{} is {} {} but the dump comes from {} {}: table and routine definitions differ between MySQL and MariaDB, restore into the same flavor",
            connector.options().describe(),
            flavor_name(server.flavor),
            server.version,
            flavor_name(manifest.server.flavor),
            manifest.server.version
        )));
    }
    let init = session_init(&server, options.write_binlog);
    for stmt in &init {
        admin.query_drop(stmt.as_str()).await.ctx(|| stmt.clone())?;
    }
    let local_infile: Option<i64> = admin
        .query_first("SELECT @@GLOBAL.local_infile")
        .await
        .ctx(|| "reading @@local_infile".into())?;
    if local_infile == Some(0) {
        return Err(Error::Server(format!(
            "{} has local_infile=OFF; mysnap loads with LOAD DATA LOCAL INFILE: run SET GLOBAL local_infile=1 on the target",
            connector.options().describe()
        )));
    }
    let existing = existing_objects(&mut admin, &manifest).await?;
    check_conflicts(&manifest, &existing, options.existing)?;

    let deferred = create_schema(&mut admin, &manifest, &existing, options).await?;
    let deferred = Arc::new(deferred);
    let (rows, raw_bytes) =
        load_data(connector, &init, &manifest, options, &deferred, progress).await?;
    // Foreign keys last, once every table they join is complete; checks stay off, the
    // source already enforced them.
    for (key, split) in deferred.iter() {
        if let Some(sql) = split.add_foreign_keys_sql(&table_name(&manifest, *key)) {
            admin
                .query_drop(sql.as_str())
                .await
                .ctx(|| format!("adding the foreign keys of {}", table_name(&manifest, *key)))?;
        }
    }
    // Routines before views: a view may call a function; a routine body is not checked
    // at creation, so it needs nothing else to exist.
    for db in &manifest.databases {
        for o in &db.routines {
            create_stored(&mut admin, db, o, options.existing).await?;
        }
    }
    create_views(&mut admin, &manifest, options.existing).await?;
    for db in &manifest.databases {
        for o in db.triggers.iter().chain(&db.events) {
            create_stored(&mut admin, db, o, options.existing).await?;
        }
    }
    let _ = admin.disconnect().await;
    Ok(RestoreSummary {
        tables: manifest.totals.tables,
        rows,
        raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn flavor_name(f: Flavor) -> &'static str {
    match f {
        Flavor::Mariadb => "MariaDB",
        Flavor::Mysql => "MySQL",
    }
}

/// Objects on the target with the names the dump would create, as (kind, db, name).
type ObjectSet = HashSet<(String, String, String)>;

async fn existing_objects(conn: &mut Conn, manifest: &Manifest) -> Result<ObjectSet> {
    let mut out = HashSet::new();
    for db in &manifest.databases {
        let rows: Vec<(String, String)> = conn
            .exec(
                "SELECT IF(TABLE_TYPE = 'VIEW', 'VIEW', 'TABLE'), TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
                 UNION ALL SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? \
                 UNION ALL SELECT 'TRIGGER', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? \
                 UNION ALL SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
                (&db.name, &db.name, &db.name, &db.name),
            )
            .await
            .ctx(|| format!("listing objects of {} on the target", ident(&db.name)))?;
        out.extend(rows.into_iter().map(|(k, n)| (k, db.name.clone(), n)));
    }
    Ok(out)
}

/// Every object the dump creates, as (kind, db, name); sequences count as tables.
fn dump_objects(manifest: &Manifest) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for db in &manifest.databases {
        let d = || db.name.clone();
        out.extend(
            db.tables
                .iter()
                .map(|t| ("TABLE".into(), d(), t.name.clone())),
        );
        out.extend(
            db.sequences
                .iter()
                .map(|s| ("TABLE".into(), d(), s.name.clone())),
        );
        for o in db
            .views
            .iter()
            .chain(&db.routines)
            .chain(&db.triggers)
            .chain(&db.events)
        {
            out.push((o.kind.clone(), d(), o.name.clone()));
        }
    }
    out
}

fn check_conflicts(manifest: &Manifest, existing: &ObjectSet, policy: Existing) -> Result<()> {
    if policy != Existing::Fail {
        return Ok(());
    }
    let clashes: Vec<String> = dump_objects(manifest)
        .into_iter()
        .filter(|o| {
            existing.contains(o)
                // A view and a table share one namespace.
                || (o.0 == "TABLE" && existing.contains(&("VIEW".into(), o.1.clone(), o.2.clone())))
                || (o.0 == "VIEW" && existing.contains(&("TABLE".into(), o.1.clone(), o.2.clone())))
        })
        .map(|(kind, db, name)| format!("{} {}", kind.to_lowercase(), qualified(&db, &name)))
        .collect();
    match clashes.split_first() {
        None => Ok(()),
        Some((first, rest)) => Err(Error::Conflict(format!(
            "{first} already exists on the target{}; nothing was changed. Use --existing=drop to replace, or --existing=append to load into existing tables",
            if rest.is_empty() { String::new() } else { format!(" (and {} more)", rest.len()) }
        ))),
    }
}

async fn run_sql(conn: &mut Conn, sql: &str) -> Result<()> {
    conn.query_drop(sql).await.ctx(|| one_line(sql))
}

/// The start of a statement on one line, for error messages.
fn one_line(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}

/// A table by (database, table) position in the manifest.
type TableKey = (usize, usize);

fn table_name(manifest: &Manifest, (d, t): TableKey) -> String {
    let db = &manifest.databases[d];
    qualified(&db.name, &db.tables[t].name)
}

/// Databases, then sequences (a table's DEFAULT may name one), then tables. Returns, for
/// each table it created, the indexes and foreign keys still to add.
async fn create_schema(
    conn: &mut Conn,
    manifest: &Manifest,
    existing: &ObjectSet,
    options: &RestoreOptions,
) -> Result<HashMap<TableKey, ddl::SplitTable>> {
    let policy = options.existing;
    let mut deferred = HashMap::new();
    let exists = |kind: &str, db: &str, name: &str| {
        existing.contains(&(kind.to_string(), db.to_string(), name.to_string()))
    };
    for db in &manifest.databases {
        run_sql(
            conn,
            &format!(
                "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET {} COLLATE {}",
                ident(&db.name),
                db.charset,
                db.collation
            ),
        )
        .await?;
        run_sql(conn, &format!("USE {}", ident(&db.name))).await?;
        for s in &db.sequences {
            if exists("TABLE", &db.name, &s.name) {
                drop_any(conn, &db.name, &s.name).await?;
            }
            conn.query_drop(definition_bytes(&s.create_sql))
                .await
                .ctx(|| format!("creating sequence {}", qualified(&db.name, &s.name)))?;
            if !s.next_value.is_empty() {
                let q = qualified(&db.name, &s.name);
                run_sql(conn, &format!("DO SETVAL({q}, {}, 0)", s.next_value)).await?;
            }
        }
    }
    for (d, db) in manifest.databases.iter().enumerate() {
        run_sql(conn, &format!("USE {}", ident(&db.name))).await?;
        for (t_no, t) in db.tables.iter().enumerate() {
            let found = exists("TABLE", &db.name, &t.name) || exists("VIEW", &db.name, &t.name);
            if found && policy == Existing::Append {
                continue;
            }
            if found {
                drop_any(conn, &db.name, &t.name).await?;
            }
            // A table without data gets its indexes at once.
            let split = ddl::split_create_table(
                &t.create_sql,
                options.defer_indexes && !t.files.is_empty(),
            );
            conn.query_drop(definition_bytes(&split.create))
                .await
                .ctx(|| format!("creating table {}", qualified(&db.name, &t.name)))?;
            deferred.insert((d, t_no), split);
        }
    }
    Ok(deferred)
}

/// Drops a table, sequence or view of that name.
async fn drop_any(conn: &mut Conn, db: &str, name: &str) -> Result<()> {
    let q = qualified(db, name);
    run_sql(conn, &format!("DROP VIEW IF EXISTS {q}")).await?;
    run_sql(conn, &format!("DROP TABLE IF EXISTS {q}")).await
}

async fn load_data(
    connector: &Connector,
    init: &[String],
    manifest: &Arc<Manifest>,
    options: &RestoreOptions,
    deferred: &Arc<HashMap<TableKey, ddl::SplitTable>>,
    progress: Arc<dyn Progress>,
) -> Result<(u64, u64)> {
    let mut jobs: Vec<(usize, usize, usize)> = Vec::new();
    let mut remaining: HashMap<(usize, usize), usize> = HashMap::new();
    for (d, db) in manifest.databases.iter().enumerate() {
        for (t, table) in db.tables.iter().enumerate() {
            remaining.insert((d, t), table.files.len());
            jobs.extend((0..table.files.len()).map(|f| (d, t, f)));
        }
    }
    let file_of = |&(d, t, f): &(usize, usize, usize)| &manifest.databases[d].tables[t].files[f];
    jobs.sort_by_key(|j| std::cmp::Reverse(file_of(j).raw_bytes));
    progress.begin("restore", manifest.totals.raw_bytes, manifest.totals.tables);
    for _ in remaining.values().filter(|&&n| n == 0) {
        progress.table_done();
    }
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let remaining = Arc::new(Mutex::new(remaining));
    let mut set = JoinSet::new();
    for _ in 0..options.threads.min(manifest.totals.files.max(1) as usize) {
        let mut conn = connector.connect(init).await?;
        let (queue, remaining, manifest, progress, deferred) = (
            queue.clone(),
            remaining.clone(),
            manifest.clone(),
            progress.clone(),
            deferred.clone(),
        );
        let dir = options.dir.clone();
        set.spawn(async move {
            let (mut rows, mut bytes) = (0u64, 0u64);
            loop {
                let next = queue.lock().expect("queue").pop_front();
                let Some((d, t, f)) = next else { break };
                let db = &manifest.databases[d];
                let table = &db.tables[t];
                let file = &table.files[f];
                let stmt = loader::load_statement(&db.name, &table.name, &table.columns);
                rows += loader::load_file(
                    &mut conn,
                    dir.join(&file.path),
                    manifest.options.compression,
                    file,
                    &stmt,
                )
                .await?;
                bytes += file.raw_bytes;
                progress.advance(file.raw_bytes, file.rows);
                let complete = {
                    let mut left = remaining.lock().expect("remaining");
                    let n = left.get_mut(&(d, t)).expect("table");
                    *n -= 1;
                    *n == 0
                };
                if complete {
                    // Indexes are built here while other sessions go on loading.
                    let name = qualified(&db.name, &table.name);
                    if let Some(sql) = deferred.get(&(d, t)).and_then(|s| s.add_indexes_sql(&name))
                    {
                        conn.query_drop(sql.as_str())
                            .await
                            .ctx(|| format!("adding the indexes of {name}"))?;
                    }
                    progress.table_done();
                }
            }
            let _ = conn.disconnect().await;
            Ok::<_, Error>((rows, bytes))
        });
    }
    let (mut rows, mut bytes) = (0, 0);
    while let Some(joined) = set.join_next().await {
        let (r, b) = joined.map_err(|e| Error::Dump(format!("loader failed: {e}")))??;
        rows += r;
        bytes += b;
    }
    progress.end();
    Ok((rows, bytes))
}

/// Applies an object's creation context: database, sql_mode and character sets.
async fn enter_context(conn: &mut Conn, db: &Database, o: &StoredObject) -> Result<()> {
    run_sql(conn, &format!("USE {}", ident(&db.name))).await?;
    let mut sets = vec![
        format!("character_set_client = {}", o.character_set_client),
        format!("collation_connection = {}", o.collation_connection),
    ];
    if let Some(mode) = &o.sql_mode {
        sets.push(format!("sql_mode = {}", crate::sql::string(mode)));
    }
    if let Some(c) = &o.database_collation {
        sets.push(format!("collation_database = {c}"));
    }
    if let Some(tz) = &o.time_zone {
        sets.push(format!("time_zone = {}", crate::sql::string(tz)));
    }
    run_sql(conn, &format!("SET SESSION {}", sets.join(", "))).await
}

async fn leave_context(conn: &mut Conn) -> Result<()> {
    run_sql(
        conn,
        "SET NAMES utf8mb4, SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO', SESSION time_zone = '+00:00'",
    )
    .await
}

async fn create_stored(
    conn: &mut Conn,
    db: &Database,
    o: &StoredObject,
    policy: Existing,
) -> Result<()> {
    if policy != Existing::Fail {
        let kind = if o.kind == "VIEW" {
            "VIEW"
        } else {
            o.kind.as_str()
        };
        run_sql(
            conn,
            &format!("DROP {kind} IF EXISTS {}", qualified(&db.name, &o.name)),
        )
        .await?;
    }
    enter_context(conn, db, o).await?;
    let created = conn
        .query_drop(definition_bytes(&o.create_sql))
        .await
        .ctx(|| {
            format!(
                "creating {} {}",
                o.kind.to_lowercase(),
                qualified(&db.name, &o.name)
            )
        });
    leave_context(conn).await?;
    created
}

/// Creates views in the recorded order; one that still names a missing view (an order
/// the dump could not see) is retried after the others.
async fn create_views(conn: &mut Conn, manifest: &Manifest, policy: Existing) -> Result<()> {
    let mut pending: Vec<(&Database, &StoredObject)> = manifest
        .view_order
        .iter()
        .filter_map(|n| {
            let db = manifest.databases.iter().find(|d| d.name == n.database)?;
            db.views.iter().find(|v| v.name == n.name).map(|v| (db, v))
        })
        .collect();
    while !pending.is_empty() {
        let mut failed = Vec::new();
        let mut last_error = None;
        for (db, v) in pending.iter().copied() {
            match create_stored(conn, db, v, policy).await {
                Ok(()) => {}
                Err(e) if e.server_code() == Some(1146) => {
                    failed.push((db, v));
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        if failed.len() == pending.len() {
            return Err(last_error.expect("a failure"));
        }
        pending = failed;
    }
    Ok(())
}
