//! What already exists on the target, conflicts with the dump, and creating databases,
//! sequences and tables (tables without the indexes that are added after the data).

use std::collections::{HashMap, HashSet};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::keys::TableKey;
use super::{ddl, run_definition, run_sql, Existing};
use crate::error::{Error, Result, SqlContext};
use crate::format::manifest::Table;
use crate::format::Manifest;
use crate::sql::{ident, qualified};

/// Objects on the target with the names the dump would create, as (kind, db, name).
pub type ObjectSet = HashSet<(String, String, String)>;

fn has(set: &ObjectSet, kind: &str, db: &str, name: &str) -> bool {
    set.contains(&(kind.to_string(), db.to_string(), name.to_string()))
}

/// Lists the target's objects in the dump's databases.
pub async fn existing_objects(conn: &mut Conn, manifest: &Manifest) -> Result<ObjectSet> {
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

/// Every character set and collation name the restore will put into SQL must be one the
/// target knows: they reach statements as words, so they are checked, not trusted.
pub async fn check_known_names(conn: &mut Conn, manifest: &Manifest) -> Result<()> {
    let ctx = || "listing the target's character sets and collations".to_string();
    let lower =
        |v: Vec<String>| -> HashSet<String> { v.iter().map(|n| n.to_ascii_lowercase()).collect() };
    let charsets = lower(
        conn.query("SELECT CHARACTER_SET_NAME FROM information_schema.CHARACTER_SETS")
            .await
            .ctx(ctx)?,
    );
    let mut collations = lower(
        conn.query("SELECT COLLATION_NAME FROM information_schema.COLLATIONS")
            .await
            .ctx(ctx)?,
    );
    // MariaDB 10.10+ names collations of several character sets in full there
    // (utf8mb4_uca1400_ai_ci); MySQL has no such column.
    if let Ok(full) = conn
        .query::<String, _>(
            "SELECT FULL_COLLATION_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY",
        )
        .await
    {
        collations.extend(lower(full));
    }
    let unknown = |set: &HashSet<String>, name: &str| !set.contains(&name.to_ascii_lowercase());
    for db in &manifest.databases {
        let of_db = || format!("database {}", ident(&db.name));
        if unknown(&charsets, &db.charset) {
            return Err(unknown_name("character set", &db.charset, &of_db()));
        }
        if unknown(&collations, &db.collation) {
            return Err(unknown_name("collation", &db.collation, &of_db()));
        }
        for o in db.stored_objects() {
            let what = || format!("{} {}", o.kind.to_lowercase(), qualified(&db.name, &o.name));
            if unknown(&charsets, &o.character_set_client) {
                return Err(unknown_name(
                    "character set",
                    &o.character_set_client,
                    &what(),
                ));
            }
            let colls = std::iter::once(&o.collation_connection).chain(&o.database_collation);
            for c in colls {
                if unknown(&collations, c) {
                    return Err(unknown_name("collation", c, &what()));
                }
            }
        }
    }
    Ok(())
}

fn unknown_name(what: &str, name: &str, of: &str) -> Error {
    Error::Invalid(format!(
        "the {what} '{name}' of {of} is unknown to the target; restore into a server that has it"
    ))
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
        for o in db.stored_objects() {
            out.push((o.kind.clone(), d(), o.name.clone()));
        }
    }
    out
}

/// Under `fail`, any object of the dump that exists on the target stops the restore
/// before anything is written.
pub fn check_conflicts(manifest: &Manifest, existing: &ObjectSet, policy: Existing) -> Result<()> {
    if policy != Existing::Fail {
        return Ok(());
    }
    let clashes: Vec<String> = dump_objects(manifest)
        .into_iter()
        .filter(|(kind, db, name)| {
            has(existing, kind, db, name)
                // A view and a table share one namespace.
                || (kind == "TABLE" && has(existing, "VIEW", db, name))
                || (kind == "VIEW" && has(existing, "TABLE", db, name))
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

/// The tables `create` made ready for loading.
pub struct Created {
    /// Each table's deferred clauses.
    pub deferred: HashMap<TableKey, ddl::SplitTable>,
    /// Tables loading with InnoDB's automatic statistics off (see [`quiet_stats_while_loading`]).
    pub quiet_stats: HashSet<TableKey>,
}

/// Whether a table is large enough for the bulk-load treatment (secondary indexes built
/// after its data, statistics quiet while it loads): several files or 16 MiB. A small
/// table loads as fast with its indexes in place, and an ALTER per table costs more than
/// it saves: 500 tables of 100 rows spent 1.8 s of session time in ALTERs (3 ms each).
pub fn large_table(t: &Table) -> bool {
    t.files.len() > 1 || t.raw_bytes >= 16 << 20
}

/// Whether a table loads with InnoDB's automatic statistics recalculation off. As a table
/// grows from empty, every tenth more rows sets off a recalculation: on sysbench tables
/// (2 cores) those took close to half the server's CPU in the first seconds of a load,
/// which then ran at two thirds of its later speed. Only where the definition leaves
/// STATS_AUTO_RECALC unset, so that setting it back to DEFAULT gives back the definition;
/// only for large tables, where recalculations repeat.
pub fn quiet_stats_while_loading(t: &Table) -> bool {
    t.engine.eq_ignore_ascii_case("InnoDB")
        && !t
            .create_sql
            .to_ascii_uppercase()
            .contains("STATS_AUTO_RECALC")
        && large_table(t)
}

/// Gives a loaded table back its automatic statistics and fresh statistics (sampled
/// pages, not a scan; not written to the binlog).
pub async fn restore_stats(conn: &mut Conn, db: &str, table: &str) -> Result<()> {
    let q = qualified(db, table);
    run_sql(
        conn,
        &format!("ALTER TABLE {q} STATS_AUTO_RECALC=DEFAULT, ALGORITHM=INSTANT"),
    )
    .await?;
    run_sql(conn, &format!("ANALYZE NO_WRITE_TO_BINLOG TABLE {q}")).await
}

/// Databases, then sequences (a table's DEFAULT may name one), then tables. A table that
/// exists is kept when appending or resuming, replaced when dropping. Returns, for every
/// table, the indexes and foreign keys still to add, and which tables load with their
/// statistics off.
pub async fn create(
    conn: &mut Conn,
    manifest: &Manifest,
    existing: &ObjectSet,
    policy: Existing,
    resume: bool,
    defer_indexes: bool,
) -> Result<Created> {
    let keep_existing = resume || policy == Existing::Append;
    for db in &manifest.databases {
        // Plain words, checked as the manifest was read and against the target's lists.
        run_sql(
            conn,
            &format!(
                "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET '{}' COLLATE '{}'",
                ident(&db.name),
                db.charset,
                db.collation
            ),
        )
        .await?;
        run_sql(conn, &format!("USE {}", ident(&db.name))).await?;
        for s in &db.sequences {
            if has(existing, "TABLE", &db.name, &s.name) {
                if keep_existing {
                    continue;
                }
                drop_any(conn, &db.name, &s.name).await?;
            }
            let q = qualified(&db.name, &s.name);
            run_definition(conn, &s.create_sql, None, || {
                format!("creating sequence {q}")
            })
            .await?;
            if !s.next_value.is_empty() {
                // Checked to be an integer when the manifest was read; written as one.
                let next: i128 = s.next_value.parse().map_err(|_| {
                    Error::Damaged(format!("sequence {q}: next value is not a number"))
                })?;
                run_sql(conn, &format!("DO SETVAL({q}, {next}, 0)")).await?;
            }
        }
    }
    let mut deferred = HashMap::new();
    let mut quiet_stats = HashSet::new();
    for (d, db) in manifest.databases.iter().enumerate() {
        run_sql(conn, &format!("USE {}", ident(&db.name))).await?;
        for (t_no, t) in db.tables.iter().enumerate() {
            let key = TableKey::new(d, t_no);
            let found = has(existing, "TABLE", &db.name, &t.name)
                || has(existing, "VIEW", &db.name, &t.name);
            // A small table (or one without data) gets its indexes at once.
            let split = ddl::split_create_table(&t.create_sql, defer_indexes && large_table(t));
            if found && keep_existing {
                // A resumed restore may have switched the statistics off in its first run.
                if resume && quiet_stats_while_loading(t) {
                    quiet_stats.insert(key);
                }
                deferred.insert(key, split);
                continue;
            }
            if found {
                drop_any(conn, &db.name, &t.name).await?;
            }
            let q = qualified(&db.name, &t.name);
            run_definition(conn, &split.create, None, || format!("creating table {q}")).await?;
            if quiet_stats_while_loading(t) {
                // Best effort: a server that refuses loads with the statistics on.
                let off = format!("ALTER TABLE {q} STATS_AUTO_RECALC=0, ALGORITHM=INSTANT");
                match conn.query_drop(off.as_str()).await {
                    Ok(()) => {
                        quiet_stats.insert(key);
                    }
                    Err(e) => tracing::warn!("{off}: {e}"),
                }
            }
            deferred.insert(key, split);
        }
    }
    Ok(Created {
        deferred,
        quiet_stats,
    })
}

/// Drops a table, sequence or view of that name.
async fn drop_any(conn: &mut Conn, db: &str, name: &str) -> Result<()> {
    let q = qualified(db, name);
    run_sql(conn, &format!("DROP VIEW IF EXISTS {q}")).await?;
    run_sql(conn, &format!("DROP TABLE IF EXISTS {q}")).await
}

/// The deferred clauses whose index or constraint name is not on the target yet: a
/// resumed restore may find some already added.
pub async fn missing_clauses(
    conn: &mut Conn,
    db: &str,
    table: &str,
    clauses: &[String],
    foreign_keys: bool,
) -> Result<Vec<String>> {
    if clauses.is_empty() {
        return Ok(Vec::new());
    }
    let sql = if foreign_keys {
        "SELECT CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_TYPE = 'FOREIGN KEY'"
    } else {
        "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"
    };
    let present: HashSet<String> = conn
        .exec::<String, _, _>(sql, (db, table))
        .await
        .ctx(|| format!("reading the indexes of {}", qualified(db, table)))?
        .into_iter()
        .collect();
    Ok(clauses
        .iter()
        .filter(|c| ddl::clause_name(c).is_none_or(|n| !present.contains(&n)))
        .cloned()
        .collect())
}

/// Adds those of a table's deferred `clauses` (indexes, or foreign keys) that are not on
/// it yet, in one `ALTER TABLE`.
pub async fn add_missing(
    conn: &mut Conn,
    db: &str,
    table: &str,
    clauses: &[String],
    foreign_keys: bool,
) -> Result<()> {
    let missing = missing_clauses(conn, db, table, clauses, foreign_keys).await?;
    let name = qualified(db, table);
    if let Some(sql) = ddl::alter(&name, &missing) {
        let what = if foreign_keys {
            "foreign keys"
        } else {
            "indexes"
        };
        run_definition(conn, &sql, None, || format!("adding the {what} of {name}")).await?;
    }
    Ok(())
}
