//! The restore pipeline: the manifest drives everything. Verify the files → check the
//! target for conflicts → databases, sequences, tables (without secondary indexes) →
//! data on N sessions, largest file first, each table's indexes added once its data is
//! in → foreign keys → routines → views → triggers (after the data, so they do not fire)
//! → events. A journal on the target makes the restore resumable.

pub(crate) mod checksum;
pub(crate) mod data;
pub(crate) mod ddl;
pub(crate) mod forecast;
pub(crate) mod journal;
pub(crate) mod keys;
pub(crate) mod load;
pub(crate) mod objects;
mod preflight;
pub(crate) mod rates;
pub(crate) mod schedule;
pub(crate) mod schema;
pub(crate) mod scratch;
pub(crate) mod select;
pub(crate) mod source;
pub(crate) mod verify;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

pub use crate::accounts::AccountReport;
use crate::connect::{Connector, Flavor, ServerInfo};
use crate::error::{Error, Result, SqlContext};
use crate::format::definition;
use crate::format::layout::DATA_DIR;
use crate::format::manifest::DataFile;
use crate::format::Manifest;
use crate::progress::Progress;
use crate::sql::qualified;
use journal::{file_item, Journal};
use keys::TableKey;
pub use scratch::{verify_by_restoring, ScratchReport};
pub use select::Selection;
pub use source::Source;
pub use verify::{verify_dump, verify_snapshots, SnapshotCheck, VerifyReport};

/// What to do with a table that already exists on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse to start (the default).
    Fail,
    /// Drop it (and any same-named view, routine, trigger or event) and restore the dump's.
    Drop,
    /// Drop each database the dump restores, with everything in it, and restore it whole:
    /// the database is then exactly the snapshot's (`Drop` keeps what the dump lacks).
    DropDatabase,
    /// Keep the table and load the dump's rows into it; other objects are replaced.
    Append,
}

impl std::str::FromStr for Existing {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fail" => Ok(Existing::Fail),
            "drop" => Ok(Existing::Drop),
            "drop-database" => Ok(Existing::DropDatabase),
            "append" => Ok(Existing::Append),
            _ => Err(Error::Invalid(format!(
                "unknown --existing '{s}': use fail, drop, drop-database or append"
            ))),
        }
    }
}

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The dump to restore: a directory or a repository's snapshot.
    pub source: Source,
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
    /// Continue an interrupted restore of the same dump into the same target.
    pub resume: bool,
    /// Discard the record of an interrupted restore of this dump on the target and start
    /// over (what it created stays, unless `existing` is `Drop`).
    pub restart: bool,
    /// The sha256 the dump printed for its manifest, kept apart from the dump: the
    /// restore refuses a manifest with another.
    pub manifest_sha256: Option<String>,
    /// Create the dump's accounts (users, roles, grants).
    pub users: bool,
    /// Create views, routines, triggers and events with the restoring account as their
    /// DEFINER, for targets where the original definers do not exist.
    pub definer_current: bool,
    /// What to restore and under which names.
    pub selection: Selection,
    /// Read every table back once restored and compare its rows' digest with the dump's.
    pub checksum: bool,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    /// Tables restored.
    pub tables: u64,
    /// Rows loaded in this run.
    pub rows: u64,
    /// Rows of the restore, over every run (the selection's total).
    pub total_rows: u64,
    /// Raw bytes of the restore, over every run.
    pub total_raw_bytes: u64,
    /// Raw bytes loaded in this run.
    pub raw_bytes: u64,
    /// Files an interrupted run had already loaded.
    pub resumed_files: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// What `--users` did with the dump's accounts.
    pub accounts: Option<crate::accounts::AccountReport>,
    /// Tables `--checksum` read back and found as the dump read them.
    pub checked_tables: Option<usize>,
}

/// A dump read and narrowed to what the options restore; no connection involved.
pub struct Prepared {
    /// What the operator should know before the restore runs (one line each).
    pub warnings: Vec<String>,
    /// The selected, renamed manifest.
    pub manifest: Arc<Manifest>,
    /// The restore's journal identity.
    pub journal: Journal,
}

/// Reads the dump and checks the options against it, before any connection.
pub fn prepare(options: &RestoreOptions) -> Result<Prepared> {
    if options.threads == 0 {
        return Err(Error::Invalid("--threads must be at least 1".into()));
    }
    if options.resume && matches!(options.existing, Existing::Drop | Existing::DropDatabase) {
        return Err(Error::Invalid(
            "--resume continues an interrupted restore; --existing=drop would drop what it loaded (to start over instead, use --restart --existing=drop)"
                .into(),
        ));
    }
    if options.resume && options.restart {
        return Err(Error::Invalid(
            "--resume continues an interrupted restore and --restart discards it: choose one"
                .into(),
        ));
    }
    let (original, digest) = options.source.manifest()?;
    if let Some(expected) = &options.manifest_sha256 {
        if !expected.eq_ignore_ascii_case(&digest) {
            return Err(Error::Damaged(format!(
                "{}: sha256 {digest} is not the {expected} given with --manifest-sha256; the manifest changed since the dump printed its digest",
                options.source.manifest_name()
            )));
        }
    }
    options.source.check_layout(&original)?;
    let (manifest, mut warnings) = if options.selection.is_everything() {
        (original, Vec::new())
    } else {
        let selected = options.selection.apply(&original)?;
        // --rename rewrote definitions: they must still create what they are recorded for.
        crate::format::validate::definitions(&selected).map_err(|e| {
            Error::Damaged(format!(
                "{}: after --rename, {e}",
                options.source.manifest_name()
            ))
        })?;
        let warnings = dangling_references(&original, &selected, &options.selection);
        (selected, warnings)
    };
    refuse_system_databases(&manifest)?;
    if options.checksum {
        checksum::check_recorded(&manifest, options.source.label())?;
    }
    if options.existing == Existing::DropDatabase && !options.selection.is_everything() {
        return Err(Error::Invalid(
            "--existing=drop-database drops whole databases, which --include/--exclude/--rename would leave partly restored; use --existing=drop with them".into(),
        ));
    }
    let manifest = if options.definer_current {
        with_current_definer(manifest)?
    } else {
        manifest
    };
    if options.users && manifest.accounts.is_empty() {
        warnings.push(
            "--users: the dump holds no accounts (dump the whole server, or with --users)".into(),
        );
    }
    if options.existing == Existing::Append {
        refuse_keyless_tables(&manifest)?;
    }
    Ok(Prepared {
        warnings,
        journal: Journal::new(&digest, &options.selection.fingerprint()),
        manifest: Arc::new(manifest),
    })
}

/// Appending needs a primary or unique key on every table: without one, the rows
/// appended could not be told from those the table held, and could be duplicated.
fn refuse_keyless_tables(manifest: &Manifest) -> Result<()> {
    let keyless = TableKey::all(manifest).find(|(_, _, t)| !ddl::has_unique_key(&t.create_sql));
    match keyless {
        Some((_, db, table)) => Err(Error::Invalid(format!(
            "--existing=append needs a primary or unique key on every table, so that appended rows cannot be duplicated; {} has none (leave it out with --exclude)",
            qualified(&db.name, &table.name)
        ))),
        None => Ok(()),
    }
}

/// Views and foreign keys of the selection that name a table or view of the dump that the
/// selection leaves out: creating them would fail, or leave a key without its table.
fn dangling_references(
    original: &Manifest,
    selected: &Manifest,
    selection: &Selection,
) -> Vec<String> {
    // Under the names the selected objects take (--rename).
    let all: HashSet<(String, String)> = original
        .databases
        .iter()
        .flat_map(|d| {
            let db = selection.target(&d.name);
            d.tables
                .iter()
                .map(|t| t.name.clone())
                .chain(d.views.iter().map(|v| v.name.clone()))
                .map(move |n| (db.clone(), n))
        })
        .collect();
    let kept: HashSet<(String, String)> = selected
        .databases
        .iter()
        .flat_map(|d| {
            d.tables
                .iter()
                .map(|t| t.name.clone())
                .chain(d.views.iter().map(|v| v.name.clone()))
                .map(move |n| (d.name.clone(), n))
        })
        .collect();
    let left_out = |db: &str, name: &str| {
        let key = (db.to_string(), name.to_string());
        all.contains(&key) && !kept.contains(&key)
    };
    let mut out = Vec::new();
    for db in &selected.databases {
        for v in &db.views {
            if let Some((d, n)) = definition::qualified_names(&v.create_sql)
                .into_iter()
                .find(|(d, n)| left_out(d, n))
            {
                out.push(format!(
                    "view {} reads {}, which this restore leaves out: creating the view will fail (leave it out too with --exclude)",
                    qualified(&db.name, &v.name),
                    qualified(&d, &n)
                ));
            }
        }
        for t in &db.tables {
            let split = ddl::split_create_table(&t.create_sql, false);
            for fk in &split.foreign_keys {
                if let Some((d, n)) = ddl::referenced_table(fk, &db.name) {
                    if left_out(&d, &n) {
                        out.push(format!(
                            "table {} has a foreign key to {}, which this restore leaves out",
                            qualified(&db.name, &t.name),
                            qualified(&d, &n)
                        ));
                    }
                }
            }
        }
    }
    out
}

/// Every view, routine, trigger and event with `DEFINER=CURRENT_USER` (`--definer current`).
fn with_current_definer(mut manifest: Manifest) -> Result<Manifest> {
    for db in &mut manifest.databases {
        let name = db.name.clone();
        for o in db.stored_objects_mut() {
            o.create_sql = definition::with_current_definer(&o.create_sql).map_err(|e| {
                Error::Damaged(format!(
                    "--definer current: the definition of {} {} {e}",
                    o.kind.to_lowercase(),
                    qualified(&name, &o.name)
                ))
            })?;
        }
    }
    Ok(manifest)
}

/// The data directory holds the manifest's files and nothing else, and is a directory of
/// the dump, not a link to somewhere else: a file nobody listed means the dump was altered
/// or mixed with another.
pub(crate) fn check_data_directory(dir: &std::path::Path, manifest: &Manifest) -> Result<()> {
    let data = dir.join(DATA_DIR);
    let listed: std::collections::HashSet<&str> = manifest
        .data_files()
        .map(|(_, _, f)| f.path.as_str())
        .collect();
    let meta = match std::fs::symlink_metadata(&data) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && listed.is_empty() => return Ok(()),
        other => other.map_err(|e| {
            Error::Damaged(format!("{}: {e}; the dump is incomplete", data.display()))
        })?,
    };
    if !meta.is_dir() {
        return Err(Error::Damaged(format!(
            "{}: not a directory (a link?); a dump's data directory is its own",
            data.display()
        )));
    }
    for entry in std::fs::read_dir(&data).map_err(|e| Error::io(&data, e))? {
        let entry = entry.map_err(|e| Error::io(&data, e))?;
        let name = entry.file_name();
        let rel = format!("{DATA_DIR}/{}", name.to_string_lossy());
        if !listed.contains(rel.as_str()) {
            return Err(Error::Damaged(format!(
                "{}: not listed in the manifest; the dump directory holds a file that is not part of the dump (altered, or mixed with another dump)",
                dir.join(&rel).display()
            )));
        }
    }
    Ok(())
}

/// Databases a restore never writes into: the server's own (accounts, settings) and the
/// one holding mysnap's restore journal.
const SYSTEM_DATABASES: &[&str] = &[
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    journal::SCHEMA,
];

fn refuse_system_databases(manifest: &Manifest) -> Result<()> {
    for db in &manifest.databases {
        if SYSTEM_DATABASES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&db.name))
        {
            return Err(Error::Invalid(format!(
                "the dump holds database '{0}', which a restore never writes into (the server's own, or mysnap's journal); restore it under another name with --rename {0}={0}_copy, or leave it out with --exclude '{0}.*'",
                db.name
            )));
        }
    }
    Ok(())
}

/// Statements every restore session runs first.
pub fn session_init(server: &ServerInfo, write_binlog: bool) -> Vec<String> {
    let mut init = vec![
        "SET NAMES utf8mb4".to_string(),
        "SET SESSION time_zone = '+00:00'".to_string(),
        // The dump's values were checked by their source; NO_AUTO_VALUE_ON_ZERO keeps id 0.
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

pub(crate) async fn run_sql(conn: &mut Conn, sql: &str) -> Result<()> {
    conn.query_drop(sql).await.ctx(|| one_line(sql))
}

/// Runs SQL that comes from the dump (a definition, or an ALTER built from one) as
/// exactly one statement: prepared, since the binary protocol never runs more than one,
/// whereas the text protocol runs every statement of a multi-statement text. MySQL
/// cannot prepare CREATE PROCEDURE, FUNCTION, TRIGGER or EVENT (ER_UNSUPPORTED_PS, 1295);
/// such a definition goes as text once [`definition::single_statement`] has found
/// nothing after its body, parsed under the `sql_mode` it is created in.
pub(crate) async fn run_definition(
    conn: &mut Conn,
    sql: &str,
    sql_mode: Option<&str>,
    context: impl Fn() -> String,
) -> Result<()> {
    let bytes = definition::definition_bytes(sql);
    match conn.prep(bytes.as_slice()).await {
        Ok(stmt) => {
            let outcome = conn.exec_drop(&stmt, ()).await.ctx(&context);
            let _ = conn.close(stmt).await;
            outcome
        }
        Err(mysql_async::Error::Server(e)) if e.code == 1295 => {
            definition::single_statement(sql, sql_mode)
                .map_err(|e| Error::Damaged(format!("{}: the definition {e}", context())))?;
            conn.query_drop(bytes).await.ctx(context)
        }
        Err(e) => Err(Error::sql(context(), e)),
    }
}

/// The start of a statement on one line, for error messages.
fn one_line(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}

/// Opens the admin session and checks that the target can take this dump.
async fn open_target(
    connector: &Connector,
    manifest: &Manifest,
    write_binlog: bool,
    progress: &dyn Progress,
) -> Result<(Conn, ServerInfo, Vec<String>, load::Method)> {
    let mut admin = connector.connect(&[]).await?;
    let server = ServerInfo::detect(&mut admin).await?;
    progress.note(&format!(
        "restoring into {}",
        connector.connected_to(&server)
    ));
    if server.flavor != manifest.server.flavor {
        return Err(Error::Invalid(format!(
            "{} is {} {} but the dump comes from {} {}: table and routine definitions differ between MySQL and MariaDB, restore into the same flavor",
            connector.options().describe(),
            server.flavor.name(),
            server.version,
            manifest.server.flavor.name(),
            manifest.server.version
        )));
    }
    let init = session_init(&server, write_binlog);
    for stmt in &init {
        match admin.query_drop(stmt.as_str()).await {
            // Switching the binary log off is the one setting that needs a privilege.
            Err(mysql_async::Error::Server(e))
                if e.code == 1227 && stmt.contains("sql_log_bin") =>
            {
                return Err(Error::Invalid(format!(
                    "the restore needs BINLOG ADMIN (or SUPER) (to switch the binary log off with --skip-binlog) and {} does not hold it; grant it, or restore without --skip-binlog",
                    connector.options().describe()
                )));
            }
            other => other.ctx(|| stmt.clone())?,
        }
    }
    let (local_infile, max_packet): (i64, u64) = admin
        .query_first("SELECT @@GLOBAL.local_infile, @@max_allowed_packet")
        .await
        .ctx(|| "reading @@local_infile".into())?
        .unwrap_or((1, 16 << 20));
    let method = if local_infile == 0 {
        progress.note(&format!(
            "{} refuses LOAD DATA LOCAL INFILE (local_infile=OFF): loading with multi-row INSERT statements, which is slower; SET GLOBAL local_infile=1 on the target for full speed",
            connector.options().describe()
        ));
        load::Method::Insert((max_packet as usize / 2).clamp(64 << 10, 4 << 20))
    } else {
        load::Method::LoadData
    };
    Ok((admin, server, init, method))
}

/// Index build work of each table whose indexes are deferred, in byte-equivalents of
/// loading. Building reads the whole table and sorts the keys: measured on sysbench
/// tables (MariaDB 10.11, 2 cores) an ALTER adding `k` took about a quarter of the
/// table's load time, close to twice the source's index size plus a sixteenth of the
/// table's row text.
fn index_units(
    manifest: &Manifest,
    deferred: &HashMap<TableKey, ddl::SplitTable>,
) -> HashMap<TableKey, u64> {
    deferred
        .iter()
        .filter(|(_, s)| !s.indexes.is_empty())
        .map(|(&key, _)| (key, index_work(key.of(manifest).1)))
        .collect()
}

fn index_work(table: &crate::format::manifest::Table) -> u64 {
    table.index_bytes * 2 + table.raw_bytes / 16
}

/// What the checks before any write found, and what the restore goes on with.
struct Checked {
    admin: Conn,
    server: ServerInfo,
    init: Vec<String>,
    method: load::Method,
    /// Journal items of an interrupted run (empty with `--restart`).
    done: HashSet<String>,
    resuming: bool,
    recorded_files: usize,
    existing: schema::ObjectSet,
}

/// Everything a restore checks before it writes anything: the target's flavor and names,
/// the journal, every file still to load (size and sha256), conflicts with existing
/// objects, and the privileges and settings the whole restore will need.
async fn check(
    connector: &Connector,
    options: &RestoreOptions,
    manifest: &Manifest,
    journal: &Journal,
    progress: &dyn Progress,
) -> Result<Checked> {
    let (mut admin, server, init, method) =
        open_target(connector, manifest, options.write_binlog, progress).await?;
    schema::check_known_names(&mut admin, manifest).await?;
    let account: Option<String> = admin
        .query_first("SELECT CURRENT_USER()")
        .await
        .ctx(|| "reading the restoring account".into())?;
    preflight::check(
        &mut admin,
        &server,
        manifest,
        options,
        &account.unwrap_or_default(),
    )
    .await?;
    let mut done = journal.read(&mut admin).await?;
    let recorded_files = done.iter().filter(|i| i.starts_with("file:")).count();
    if options.restart {
        // Discarded once the checks have passed.
        done.clear();
    }
    if !options.resume && !done.is_empty() {
        return Err(Error::Conflict(format!(
            "an interrupted restore of this dump is recorded on the target ({recorded_files} file(s) loaded, in `mysnap`.`restore_journal`); continue it with --resume, or start it over with --restart (add --existing=drop to replace what it created)"
        )));
    }
    let resuming = options.resume && !done.is_empty();
    if options.resume && !resuming {
        progress.note("no interrupted restore of this dump is recorded on the target: starting from the beginning");
    }
    let remaining: Vec<DataFile> = manifest
        .data_files()
        .filter(|(_, _, f)| !done.contains(&file_item(&f.path)))
        .map(|(_, _, f)| f.clone())
        .collect();
    {
        let (source, threads) = (options.source.clone(), options.threads);
        tokio::task::spawn_blocking(move || verify::verify_listed(&source, &remaining, threads))
            .await
            .map_err(|e| Error::Internal(format!("verification failed: {e}")))??;
    }
    let existing = schema::existing_objects(&mut admin, manifest).await?;
    if !resuming {
        if let Err(e) = schema::check_conflicts(manifest, &existing, options.existing) {
            if !options.resume {
                return Err(e);
            }
            // A completed restore removes its journal (one killed while removing it left
            // it empty: tidy that); say why --resume found nothing.
            journal.tidy(&mut admin).await?;
            return Err(Error::Conflict(format!(
                "nothing to resume (no interrupted restore of this dump is recorded on the target; a completed restore leaves none) and {e}"
            )));
        }
    }
    Ok(Checked {
        admin,
        server,
        init,
        method,
        done,
        resuming,
        recorded_files,
        existing,
    })
}

/// Restores a dump directory, as [`prepare`] read it, into the server `connector` reaches.
pub async fn run(
    connector: &Connector,
    options: &RestoreOptions,
    prepared: Prepared,
    progress: Arc<dyn Progress>,
) -> Result<RestoreSummary> {
    let started = Instant::now();
    let Prepared {
        manifest, journal, ..
    } = prepared;
    let Checked {
        mut admin,
        server,
        init,
        method,
        done,
        resuming,
        recorded_files,
        mut existing,
    } = check(connector, options, &manifest, &journal, progress.as_ref()).await?;
    let account_items: HashSet<String> = done
        .iter()
        .filter(|i| i.starts_with("account:") || i.starts_with("grants:"))
        .cloned()
        .collect();
    if options.restart {
        let discarded = journal.discard(&mut admin).await?;
        if discarded > 0 || recorded_files > 0 {
            progress.note(&format!(
                "discarded the record of an interrupted restore of this dump ({discarded} file(s) loaded); what it created stays on the target unless --existing=drop replaces it"
            ));
        }
    }
    journal.create(&mut admin).await?;
    if !resuming {
        journal.record(&mut admin, journal::STARTED).await?;
        journal.record(&mut admin, &journal.dump_item()).await?;
    }

    if options.existing == Existing::DropDatabase {
        for db in &manifest.databases {
            run_sql(
                &mut admin,
                &format!("DROP DATABASE IF EXISTS {}", crate::sql::ident(&db.name)),
            )
            .await?;
        }
        existing.clear();
    }
    let schema::Created {
        deferred,
        quiet_stats,
    } = schema::create(
        &mut admin,
        &manifest,
        &existing,
        options.existing,
        resuming,
        options.defer_indexes,
    )
    .await?;
    let transactional = transactional_on_target(&mut admin, &manifest).await?;
    let done = reload_nontransactional(
        &mut admin,
        &manifest,
        &journal,
        &transactional,
        options.existing == Existing::Append,
        done,
    )
    .await?;
    let units = index_units(&manifest, &deferred);
    let done_bytes: u64 = manifest
        .data_files()
        .filter(|(_, _, f)| done.contains(&file_item(&f.path)))
        .map(|(_, _, f)| f.raw_bytes)
        .sum();
    let total = manifest.totals.raw_bytes + units.values().sum::<u64>();
    progress.begin("restore", total, done_bytes, manifest.totals.tables);
    let resumed_files = done.iter().filter(|i| i.starts_with("file:")).count();
    let plan = Arc::new(data::LoadPlan {
        manifest: manifest.clone(),
        source: options.source.clone(),
        deferred: Arc::new(deferred),
        quiet_stats,
        done,
        transactional,
        journal: Some(journal.clone()),
        index_units: units,
        method,
    });
    let load_started = Instant::now();
    let (rows, raw_bytes) = data::load(
        connector,
        &init,
        plan.clone(),
        options.threads,
        progress.clone(),
    )
    .await?;
    add_foreign_keys(&mut admin, &plan).await?;
    progress.end();
    objects::create_all(
        &mut admin,
        &manifest,
        resuming || options.existing != Existing::Fail,
    )
    .await?;
    let accounts = if options.users && !manifest.accounts.is_empty() {
        let replace = matches!(options.existing, Existing::Drop | Existing::DropDatabase);
        Some(
            crate::accounts::restore(
                &mut admin,
                &manifest.accounts,
                &journal,
                &account_items,
                replace,
            )
            .await?,
        )
    } else {
        None
    };
    journal.finish(&mut admin).await?;
    let _ = admin.disconnect().await;
    rates::record(&server, total - done_bytes, load_started.elapsed());
    let checked_tables = match options.checksum {
        true => Some(
            checksum::check_tables(connector, server.flavor, &manifest, options.threads).await?,
        ),
        false => None,
    };
    Ok(RestoreSummary {
        tables: manifest.totals.tables,
        rows,
        raw_bytes,
        resumed_files,
        total_rows: manifest.totals.rows,
        total_raw_bytes: manifest.totals.raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
        accounts,
        checked_tables,
    })
}

/// The tables of the dump that are transactional on the target, by the engine the
/// target actually gave them (not the manifest's word: a server without the dump's
/// engine may substitute another).
async fn transactional_on_target(
    conn: &mut Conn,
    manifest: &Manifest,
) -> Result<HashSet<TableKey>> {
    let mut out = HashSet::new();
    for (d, db) in manifest.databases.iter().enumerate() {
        let names: HashSet<String> = conn
            .exec::<String, _, _>(
                "SELECT t.TABLE_NAME FROM information_schema.TABLES t JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE \
                 WHERE t.TABLE_SCHEMA = ? AND e.TRANSACTIONS = 'YES'",
                (&db.name,),
            )
            .await
            .ctx(|| format!("reading the engines of {} on the target", crate::sql::ident(&db.name)))?
            .into_iter()
            .collect();
        out.extend(
            db.tables
                .iter()
                .enumerate()
                .filter(|(_, t)| names.contains(&t.name))
                .map(|(t, _)| TableKey::new(d, t)),
        );
    }
    Ok(out)
}

/// A non-transactional table cannot roll back a half-loaded file, and its journal row is
/// written after its rows: whatever the journal says, a table an interrupted run began to
/// load (a `begin:` item) but did not finish may hold any of its rows. It is emptied and
/// all its files are loaded again. Appending, its rows cannot be told from the target's
/// own, so the resume stops instead.
async fn reload_nontransactional(
    conn: &mut Conn,
    manifest: &Manifest,
    journal: &Journal,
    transactional: &HashSet<TableKey>,
    append: bool,
    mut done: HashSet<String>,
) -> Result<HashSet<String>> {
    for (key, db, table) in TableKey::all(manifest) {
        if transactional.contains(&key) {
            continue;
        }
        let loaded: Vec<String> = table.files.iter().map(|f| file_item(&f.path)).collect();
        let began: Vec<String> = table
            .files
            .iter()
            .map(|f| journal::begin_item(&f.path))
            .collect();
        let complete = loaded.iter().all(|i| done.contains(i));
        let touched = loaded.iter().chain(&began).any(|i| done.contains(i));
        if complete || !touched {
            continue;
        }
        let q = qualified(&db.name, &table.name);
        if append {
            return Err(Error::Conflict(format!(
                "cannot resume: the interrupted run had begun appending to {q}, a non-transactional table whose rows cannot be rolled back or told from those it held before; put its rows back as they were, then restore again with --restart"
            )));
        }
        run_sql(conn, &format!("TRUNCATE TABLE {q}")).await?;
        let items: Vec<String> = loaded.into_iter().chain(began).collect();
        journal.forget(conn, &items).await?;
        for i in &items {
            done.remove(i);
        }
    }
    Ok(done)
}

/// Foreign keys last, once every table they join is complete; checks stay off, the
/// source already enforced them.
async fn add_foreign_keys(conn: &mut Conn, plan: &data::LoadPlan) -> Result<()> {
    let mut keys: Vec<&TableKey> = plan.deferred.keys().collect();
    keys.sort();
    for key in keys {
        let split = &plan.deferred[key];
        let (db, table) = key.of(&plan.manifest);
        schema::add_missing(conn, &db.name, &table.name, &split.foreign_keys, true).await?;
    }
    Ok(())
}

/// What `--dry-run` reports.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// Data files whose size and sha256 were checked.
    pub verified_files: usize,
    /// The server and account it would restore into.
    pub target: String,
    /// The selected, renamed manifest.
    pub manifest: Arc<Manifest>,
    /// Raw bytes of data plus index work, in byte-equivalents.
    pub work_bytes: u64,
    /// The rate the prediction uses, bytes per second.
    pub rate: f64,
    /// Where the rate comes from.
    pub rate_source: String,
}

/// Runs every check of a real restore (connection, target, privileges and settings,
/// journal, conflicts, every file's size and sha256) without writing anything, then plans
/// it: what would be created and loaded, and how long it should take at the rate last
/// measured on this target (or a stated default). Fails where the real run would fail.
pub async fn dry_run(
    connector: &Connector,
    options: &RestoreOptions,
    prepared: Prepared,
    progress: Arc<dyn Progress>,
) -> Result<DryRun> {
    let Prepared {
        manifest, journal, ..
    } = prepared;
    let Checked {
        admin,
        server,
        done,
        ..
    } = check(connector, options, &manifest, &journal, progress.as_ref()).await?;
    let _ = admin.disconnect().await;
    let index_work: u64 = if options.defer_indexes {
        manifest
            .databases
            .iter()
            .flat_map(|d| &d.tables)
            .filter(|t| {
                schema::large_table(t)
                    && !ddl::split_create_table(&t.create_sql, true)
                        .indexes
                        .is_empty()
            })
            .map(index_work)
            .sum()
    } else {
        0
    };
    let (rate, rate_source) = match rates::lookup(&server) {
        Some(r) => (
            r,
            format!("measured by the last restore into {}", rates::key(&server)),
        ),
        None => (
            rates::DEFAULT_RATE,
            format!(
                "default: no restore into {} measured yet",
                rates::key(&server)
            ),
        ),
    };
    let verified = manifest
        .data_files()
        .filter(|(_, _, f)| !done.contains(&file_item(&f.path)))
        .count();
    Ok(DryRun {
        verified_files: verified,
        target: format!(
            "{} ({} {})",
            connector.options().describe(),
            server.flavor.name(),
            server.version
        ),
        work_bytes: manifest.totals.raw_bytes + index_work,
        manifest,
        rate,
        rate_source,
    })
}
