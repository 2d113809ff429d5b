//! `mysnap init`, `list`, `forget`, `delete` and `protect`: a repository's snapshots.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{anyhow, Result};
use mysnap::repo::{Policy, PruneOutcome, Repository};

use crate::cli::{DeleteArgs, ForgetArgs, InitArgs, ListArgs, ProtectArgs, RepoArg};
use crate::display::{bytes, count};

/// Opens the repository the flags, environment or option files name.
pub fn open(repo: &RepoArg) -> Result<Arc<Repository>> {
    let path: &Path = repo.required().map_err(|e| anyhow!(e))?;
    Ok(Arc::new(Repository::open(path)?))
}

/// `mysnap init`.
pub fn init(args: InitArgs) -> Result<()> {
    let path = args.repo.required().map_err(|e| anyhow!(e))?;
    let policy = match args.policy.policy() {
        p if p.is_empty() => Policy::seven_days(),
        p => p,
    };
    let repo = Repository::init(path, policy)?;
    println!(
        "created repository {} (default retention: {})",
        repo.location(),
        repo.config().retention.describe()
    );
    Ok(())
}

/// `mysnap list`.
pub fn list(args: ListArgs) -> Result<()> {
    let repo = open(&args.repo)?;
    let listed = repo.list()?;
    let protected = repo.protected()?;
    let indexes: Vec<_> = listed.iter().map(|l| l.index.clone()).collect();
    let windows = mysnap::binlog::Archive::new(repo.clone()).windows(&indexes)?;
    let when = crate::display::utc;
    if args.json {
        let rows: Vec<serde_json::Value> = listed
            .iter()
            .zip(&windows)
            .map(|(l, w)| {
                let i = &l.index;
                serde_json::json!({
                    "schema_version": 1,
                    "id": i.id,
                    "created": i.created,
                    "restorable": l.restorable,
                    "problem": l.problem,
                    "databases": i.databases,
                    "tables": i.tables,
                    "rows": i.rows,
                    "raw_bytes": i.raw_bytes,
                    "stored_bytes": i.stored_bytes,
                    "duration_seconds": i.duration_seconds,
                    "tags": i.tags,
                    "protected": protected.contains(&i.id),
                    "source": i.source,
                    "binlog": i.binlog,
                    "recoverable_until": w.until.map(when),
                    "binlog_gap": w.gap,
                    "last_verified": l.verified.as_ref().map(|v| serde_json::json!({
                        "time": v.time, "ok": v.ok, "problem": v.problem, "restored": v.restored,
                    })),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if listed.is_empty() {
        println!("no snapshots in {}", repo.location());
        return Ok(());
    }
    let mut table = vec![[
        "Created".to_string(),
        "Snapshot ID".into(),
        "Restorable".into(),
        "Databases".into(),
        "Stored".into(),
        "Duration".into(),
        "Tags".into(),
        "Last verified".into(),
        "Recoverable until".into(),
    ]];
    for (l, w) in listed.iter().zip(&windows) {
        let i = &l.index;
        let mut tags = i.tags.clone();
        if protected.contains(&i.id) {
            tags.insert(0, "(protected)".into());
        }
        table.push([
            i.created.clone(),
            i.id.clone(),
            if l.restorable { "yes" } else { "NO" }.into(),
            i.databases.join(","),
            bytes(i.stored_bytes),
            format!("{:.1} s", i.duration_seconds),
            tags.join(","),
            match &l.verified {
                None => "never".into(),
                Some(v) if v.ok && v.restored => format!("{} ok (restored)", v.time),
                Some(v) if v.ok => format!("{} ok", v.time),
                Some(v) => format!("{} FAILED", v.time),
            },
            match (w.until, &w.gap) {
                (None, _) => "-".into(),
                (Some(t), None) => when(t),
                (Some(t), Some(_)) => format!("{} (gap after)", when(t)),
            },
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    let bad: Vec<_> = listed.iter().filter(|l| !l.restorable).collect();
    for l in &bad {
        println!(
            "snapshot {} is not restorable: {}",
            l.index.id,
            l.problem.as_deref().unwrap_or("")
        );
    }
    for w in windows.iter().filter(|w| w.gap.is_some()) {
        println!(
            "snapshot {} can be rolled forward only up to the gap: {}",
            w.id,
            w.gap.as_deref().unwrap_or("")
        );
    }
    println!(
        "{}, {} restorable",
        count(listed.len() as u64, "snapshot", "snapshots"),
        listed.len() - bad.len()
    );
    Ok(())
}

/// `mysnap forget`.
pub fn forget(args: ForgetArgs, metrics: &super::metrics::Metrics) -> Result<()> {
    let repo = open(&args.repo)?;
    let given = args.policy.policy();
    let (policy, whose) = if given.is_empty() {
        (repo.config().retention.clone(), "the repository's default")
    } else {
        (given, "given")
    };
    let decisions = repo.forget(&policy, SystemTime::now(), !args.dry_run)?;
    let removed = decisions.iter().filter(|d| !d.keep).count();
    metrics.set(
        "mysnap_forget_kept_snapshots",
        "Snapshots the last forget kept.",
        &[],
        (decisions.len() - removed) as f64,
    );
    metrics.set(
        "mysnap_forget_removed_snapshots",
        "Snapshots the last forget removed (or, with --dry-run, would remove).",
        &[],
        removed as f64,
    );
    if args.json {
        let rows: Vec<serde_json::Value> = decisions
            .iter()
            .map(|d| {
                serde_json::json!({
                    "schema_version": 1, "id": d.id, "created": d.created, "keep": d.keep, "reasons": d.reasons,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("policy ({whose}): {}", policy.describe());
        for d in &decisions {
            if d.keep {
                println!("keep   {} {}  ({})", d.id, d.created, d.reasons.join("; "));
            } else {
                println!("remove {} {}  (no rule keeps it)", d.id, d.created);
            }
        }
        println!(
            "{} {}, {} kept",
            count(removed as u64, "snapshot", "snapshots"),
            if args.dry_run {
                "would be removed (dry run: nothing changed)"
            } else {
                "removed"
            },
            decisions.len() - removed
        );
        if !args.dry_run && !args.prune && removed > 0 {
            println!("their data stays until a prune: run forget --prune");
        }
    }
    if args.prune {
        report_prune(repo.prune()?);
    }
    super::restorable_metric(metrics, &repo);
    Ok(())
}

/// `mysnap delete`.
pub fn delete(args: DeleteArgs) -> Result<()> {
    let repo = open(&args.repo)?;
    if args.id == "latest" {
        return Err(anyhow!(
            "delete takes a snapshot ID, not latest: name the snapshot you mean (mysnap list shows them)"
        ));
    }
    let id = repo.resolve(&args.id)?;
    repo.delete(&id)?;
    println!("snapshot {id} removed");
    report_prune(repo.prune()?);
    Ok(())
}

/// `mysnap protect`.
pub fn protect(args: ProtectArgs) -> Result<()> {
    let repo = open(&args.repo)?;
    let id = repo.resolve(&args.id)?;
    repo.protect(&id, !args.remove)?;
    if args.remove {
        println!("snapshot {id} is no longer protected: retention rules apply to it again");
    } else {
        println!("snapshot {id} is protected: no retention rule removes it (protect --remove lifts that)");
    }
    Ok(())
}

fn report_prune(outcome: PruneOutcome) {
    match outcome {
        PruneOutcome::Done(r) => println!(
            "pruned: {} ({}) no snapshot needs, {} of archived binary log ({}) older than every kept snapshot, {}, {}",
            count(r.objects as u64, "data object", "data objects"),
            bytes(r.bytes),
            count(r.binlog_segments, "segment", "segments"),
            bytes(r.binlog_bytes),
            count(r.leftovers as u64, "leftover", "leftovers"),
            count(r.locks as u64, "stale lock", "stale locks")
        ),
        PruneOutcome::Busy(why) => {
            println!("not pruned now: {why}; the data stays until a later forget --prune")
        }
    }
}
