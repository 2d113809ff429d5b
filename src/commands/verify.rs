//! `mysnap verify`.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use mysnap::connect::Connector;
use mysnap::progress::Progress;
use mysnap::restore::{verify_by_restoring, verify_dump, verify_snapshots, SnapshotCheck, Source};

use crate::cli::VerifyArgs;
use crate::display::bytes;

/// Checks a dump directory, or snapshots of a repository, with no server (and with
/// `--restore-to`, by restoring each) and says what was checked; the first problem of
/// each is the error.
pub async fn run(
    args: VerifyArgs,
    defaults: super::Defaults,
    metrics: &super::metrics::Metrics,
) -> Result<()> {
    let connector = match args.restore_to {
        true => Some(super::connector(&args.connection, &defaults)?),
        false => None,
    };
    let snapshots = args.all
        || args
            .target
            .as_deref()
            .is_some_and(|t| args.repo.repo.is_some() && super::names_snapshot(t));
    if !snapshots {
        let target = args.target.as_deref().unwrap_or_default();
        let source = super::source(target, &args.repo)?;
        let r = verify_dump(&source, args.threads)?;
        if let Some(c) = &connector {
            let tag = mysnap::format::manifest::digest(source.label().as_bytes());
            by_restoring(c, &source, &tag[..8], args.threads).await?;
        }
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "schema_version": 1,
                    "dump": target,
                    "ok": true,
                    "files": r.files,
                    "rows": r.rows,
                    "raw_bytes": r.raw_bytes,
                    "stored_bytes": r.stored_bytes,
                })
            );
        } else {
            println!(
                "verified {}: {} data files, {} rows, {} raw, {} stored; every size, sha256, row and column as the manifest records",
                source.label(),
                r.files,
                r.rows,
                bytes(r.raw_bytes),
                bytes(r.stored_bytes)
            );
        }
        return Ok(());
    }
    let repo = super::repo::open(&args.repo)?;
    // Whatever verify finds, the count of restorable snapshots after it.
    struct After<'a>(&'a super::metrics::Metrics, Arc<mysnap::repo::Repository>);
    impl Drop for After<'_> {
        fn drop(&mut self) {
            super::restorable_metric(self.0, &self.1);
        }
    }
    let _after = After(metrics, repo.clone());
    let ids = match &args.target {
        Some(t) => vec![repo.resolve(t)?],
        None => repo.indexes()?.into_iter().map(|i| i.id).collect(),
    };
    let mut checks = verify_snapshots(&repo, &ids, args.threads)?;
    if let Some(c) = &connector {
        for check in checks.iter_mut().filter(|c| c.outcome.is_ok()) {
            let source = Source::snapshot(repo.clone(), &check.id)?;
            let restored = by_restoring(c, &source, &check.id, args.threads).await;
            let problem = restored
                .as_ref()
                .err()
                .map(|e| format!("snapshot {}: restoring it: {e:#}", check.id));
            repo.record_verification(&check.id, problem.is_none(), problem.clone(), true)?;
            if let Some(p) = problem {
                check.outcome = Err(p);
            }
        }
    }
    report(&checks, args.json)?;
    let failed: Vec<&SnapshotCheck> = checks.iter().filter(|c| c.outcome.is_err()).collect();
    match failed.first() {
        None => Ok(()),
        Some(first) => {
            let why = first.outcome.as_ref().err().cloned().unwrap_or_default();
            if failed.len() == 1 {
                Err(anyhow!("{why}"))
            } else {
                Err(anyhow!(
                    "{} of {} snapshots failed verification; the first: {why}",
                    failed.len(),
                    checks.len()
                ))
            }
        }
    }
}

fn report(checks: &[SnapshotCheck], json: bool) -> Result<()> {
    if json {
        let rows: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| match &c.outcome {
                Ok(r) => serde_json::json!({
                    "schema_version": 1, "id": c.id, "ok": true, "files": r.files, "rows": r.rows,
                    "raw_bytes": r.raw_bytes, "stored_bytes": r.stored_bytes,
                }),
                Err(e) => serde_json::json!({ "schema_version": 1, "id": c.id, "ok": false, "problem": e }),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for c in checks {
        match &c.outcome {
            Ok(r) => println!(
                "verified snapshot {}: {} data files, {} rows, {} raw, {} stored; every size, sha256, row and column as the manifest records",
                c.id,
                r.files,
                r.rows,
                bytes(r.raw_bytes),
                bytes(r.stored_bytes)
            ),
            Err(e) => println!("FAILED {e}"),
        }
    }
    Ok(())
}

/// Restores into scratch databases, reads every table back, drops them; says so.
async fn by_restoring(
    connector: &Connector,
    source: &Source,
    tag: &str,
    threads: usize,
) -> Result<()> {
    let quiet: Arc<dyn Progress> = Arc::from(crate::display::for_stderr(
        crate::display::Display::NotesOnly,
        None,
    ));
    let r = verify_by_restoring(connector, source, tag, threads, quiet)
        .await
        .map_err(|e| super::name_server(e, connector))?;
    println!(
        "restored {} into {} ({}), read every table back: {} as the dump read them; scratch databases dropped",
        source.label(),
        connector.options().describe(),
        r.databases.join(", "),
        crate::display::count(r.tables as u64, "table", "tables")
    );
    Ok(())
}
