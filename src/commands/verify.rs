//! `mysnap verify`.

use anyhow::{anyhow, Result};
use mysnap::restore::{verify_dump, verify_snapshots, SnapshotCheck};

use crate::cli::VerifyArgs;
use crate::display::bytes;

/// Checks a dump directory, or snapshots of a repository, with no server and says what
/// was checked; the first problem of each is the error.
pub fn run(args: VerifyArgs) -> Result<()> {
    let snapshots = args.all
        || args
            .target
            .as_deref()
            .is_some_and(|t| args.repo.repo.is_some() && super::names_snapshot(t));
    if !snapshots {
        let target = args.target.as_deref().unwrap_or_default();
        let source = super::source(target, &args.repo)?;
        let r = verify_dump(&source, args.threads)?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
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
    let ids = match &args.target {
        Some(t) => vec![repo.resolve(t)?],
        None => repo.indexes()?.into_iter().map(|i| i.id).collect(),
    };
    let checks = verify_snapshots(&repo, &ids, args.threads)?;
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
                    "id": c.id, "ok": true, "files": r.files, "rows": r.rows,
                    "raw_bytes": r.raw_bytes, "stored_bytes": r.stored_bytes,
                }),
                Err(e) => serde_json::json!({ "id": c.id, "ok": false, "problem": e }),
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
