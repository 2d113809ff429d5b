//! Verifying by restoring: a dump restored into scratch databases of a server (each
//! database under a name of its own, `mysnap_verify_<tag>_<n>`, so nothing of the
//! server's is touched), every table read back and compared with the dump's digests
//! (`--checksum`), then the scratch databases dropped, whatever the outcome.

use std::sync::Arc;

use mysql_async::prelude::Queryable;

use super::{Existing, RestoreOptions, Selection, Source};
use crate::connect::Connector;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::sql::ident;

/// What a verification by restoring did.
#[derive(Debug, Clone)]
pub struct ScratchReport {
    /// Tables restored and read back as the dump read them.
    pub tables: usize,
    /// Rows restored.
    pub rows: u64,
    /// The scratch databases (dropped since).
    pub databases: Vec<String>,
}

/// Restores `source` into scratch databases through `connector`, checks every table's
/// digest, and drops the scratch databases. `tag` names them (a snapshot id).
pub async fn verify_by_restoring(
    connector: &Connector,
    source: &Source,
    tag: &str,
    threads: usize,
    progress: Arc<dyn Progress>,
) -> Result<ScratchReport> {
    let (manifest, _) = source.manifest()?;
    let tag: String = tag
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    let scratch: Vec<(String, String)> = manifest
        .databases
        .iter()
        .enumerate()
        .map(|(n, db)| (db.name.clone(), format!("mysnap_verify_{tag}_{n}")))
        .collect();
    let renames: Vec<String> = scratch.iter().map(|(f, t)| format!("{f}={t}")).collect();
    let options = RestoreOptions {
        source: source.clone(),
        threads,
        existing: Existing::Fail,
        // A verification is not the server's data: replicas need not follow it.
        write_binlog: false,
        defer_indexes: true,
        resume: false,
        restart: true,
        manifest_sha256: None,
        users: false,
        // The dump's definers may not exist on a scratch server.
        definer_current: true,
        selection: Selection::parse(&[], &[], &renames)?,
        checksum: true,
    };
    let prepared = super::prepare(&options)?;
    // Scratch databases left by a verification killed before its cleanup go first: their
    // names are mysnap's own.
    drop_scratch(connector, &scratch).await?;
    let outcome = super::run(connector, &options, prepared, progress).await;
    let dropped = drop_scratch(connector, &scratch).await;
    let summary = outcome?;
    dropped?;
    Ok(ScratchReport {
        tables: summary.checked_tables.unwrap_or(0),
        rows: summary.total_rows,
        databases: scratch.into_iter().map(|(_, t)| t).collect(),
    })
}

async fn drop_scratch(connector: &Connector, scratch: &[(String, String)]) -> Result<()> {
    let mut conn = connector.connect(&[]).await?;
    // Not replicated, as the restore was not.
    let _ = conn.query_drop("SET SESSION sql_log_bin = 0").await;
    for (_, db) in scratch {
        conn.query_drop(format!("DROP DATABASE IF EXISTS {}", ident(db)))
            .await
            .map_err(|e| Error::sql(format!("dropping the scratch database {db}"), e))?;
    }
    let _ = conn.disconnect().await;
    Ok(())
}
