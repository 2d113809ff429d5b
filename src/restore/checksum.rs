//! `--checksum`: every restored table read back from the target, its rows encoded as the
//! dump encoded them and digested (see `format::digest`), and compared with the sum of its
//! files' digests. A restore that stored something else than the dump read (a trigger or
//! a default on the target, a column of another type, a server that changes values
//! without a warning) fails naming the table.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;

use crate::connect::{Connector, Flavor};
use crate::dump::worker::push_row_text;
use crate::error::{Error, Result, SqlContext};
use crate::format::digest::RowsDigest;
use crate::format::manifest::{ColumnEncoding, Table};
use crate::format::Manifest;
use crate::sql::qualified;

/// Checks that the manifest can be checked: every data file records its rows' digest.
pub(crate) fn check_recorded(manifest: &Manifest, label: &str) -> Result<()> {
    if let Some((_, _, f)) = manifest
        .data_files()
        .find(|(_, _, f)| f.rows_digest.is_none())
    {
        return Err(Error::Invalid(format!(
            "--checksum: {label} records no digest of its rows ({} has none: the dump was taken by an older mysnap)",
            f.path
        )));
    }
    Ok(())
}

/// The digest the dump recorded for a table, and its rows.
fn recorded(table: &Table) -> (RowsDigest, u64) {
    let mut d = RowsDigest::default();
    for f in &table.files {
        if let Some(parsed) = f.rows_digest.as_deref().and_then(RowsDigest::parse) {
            d.combine(parsed);
        }
    }
    (d, table.files.iter().map(|f| f.rows).sum())
}

/// Reads every table of `manifest` back from the target on `threads` sessions and
/// compares digests; the first table that differs (in manifest order) is the error.
/// Returns how many tables were checked.
pub(crate) async fn check_tables(
    connector: &Connector,
    flavor: Flavor,
    manifest: &Manifest,
    threads: usize,
) -> Result<usize> {
    let tables: Vec<(usize, String, Table)> = manifest
        .databases
        .iter()
        .flat_map(|db| db.tables.iter().map(move |t| (db.name.clone(), t.clone())))
        .enumerate()
        .map(|(i, (db, t))| (i, db, t))
        .collect();
    let count = tables.len();
    let queue = Arc::new(Mutex::new(tables.into_iter().collect::<VecDeque<_>>()));
    let init = crate::dump::session_init(flavor);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..threads.clamp(1, count.max(1)) {
        let (queue, connector, init) = (queue.clone(), connector.clone(), init.clone());
        tasks.spawn(async move {
            let mut conn = connector.connect(&[]).await?;
            for stmt in &init {
                conn.query_drop(stmt.as_str()).await.ctx(|| stmt.clone())?;
            }
            let mut failures = Vec::new();
            loop {
                let next = queue.lock().expect("checksum queue").pop_front();
                let Some((no, db, table)) = next else { break };
                let (digest, rows) = read_back(&mut conn, &db, &table).await?;
                let (expected, expected_rows) = recorded(&table);
                if digest != expected {
                    failures.push((
                        no,
                        format!(
                            "--checksum: table {} on the target is not what the dump read: {rows} rows read back ({expected_rows} dumped), digest {} where the dump recorded {}; something on the target changed values as they were stored (a trigger, a column of another type or default, rows it held before)",
                            qualified(&db, &table.name),
                            digest.to_hex(),
                            expected.to_hex()
                        ),
                    ));
                }
            }
            let _ = conn.disconnect().await;
            Ok::<_, Error>(failures)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let found =
            joined.map_err(|e| Error::Internal(format!("a checksum session failed: {e}")))??;
        failures.extend(found);
    }
    failures.sort();
    match failures.into_iter().next() {
        Some((_, why)) => Err(Error::Mismatch(why)),
        None => Ok(count),
    }
}

/// A table's rows on the target, read with the dump's SELECT and encoded as the dump
/// encodes them: their digest and count.
async fn read_back(
    conn: &mut mysql_async::Conn,
    db: &str,
    table: &Table,
) -> Result<(RowsDigest, u64)> {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(crate::catalog::select_expr)
        .collect();
    let history = if table.history {
        " FOR SYSTEM_TIME ALL"
    } else {
        ""
    };
    let sql = format!(
        "SELECT /* mysnap checksum */ {} FROM {}{history}",
        cols.join(", "),
        qualified(db, &table.name)
    );
    let enum_columns: Vec<bool> = table
        .columns
        .iter()
        .map(|c| c.encoding == ColumnEncoding::EnumIndex)
        .collect();
    let what = || format!("reading {} back for --checksum", qualified(db, &table.name));
    let mut result = conn.query_iter(sql.as_str()).await.ctx(what)?;
    let (mut digest, mut rows) = (RowsDigest::default(), 0u64);
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(row) = result.next().await.ctx(what)? {
        buf.clear();
        push_row_text(&mut buf, row, &enum_columns);
        digest.add_row(&buf);
        rows += 1;
    }
    Ok((digest, rows))
}
