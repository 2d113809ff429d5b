//! `mysnap restore`.

use std::sync::Arc;

use anyhow::Result;
use mysnap::binlog::replay::{self, Until};
use mysnap::progress::Progress;
use mysnap::restore::{self, RestoreOptions, Selection};

use super::connector;
use crate::cli::RestoreArgs;
use crate::display::{bytes, count};

/// Validates the flags, runs the restore (or plans it), prints a summary.
pub async fn run(args: RestoreArgs, defaults: super::Defaults) -> Result<()> {
    let until = match (&args.until, &args.until_gtid, &args.until_position) {
        (Some(t), _, _) => Some(Until::time(t)?),
        (_, Some(g), _) => Some(Until::gtid(g)?),
        (_, _, Some(p)) => Some(Until::position(p)?),
        _ => None,
    };
    let replay = match &until {
        None => None,
        Some(until) => {
            if args.repo.repo.is_none() {
                anyhow::bail!("--until, --until-gtid and --until-position need a repository (--repo REPO or MYSNAP_REPO) holding snapshots and the archived binary log");
            }
            let repo = super::repo::open(&args.repo)?;
            let plan = replay::plan(&repo, until, args.target.as_deref())?;
            if !args.report.quiet {
                eprintln!(
                    "point in time {}: snapshot {}, then {} of archived binary log ({}) from {}:{} to {}:{}{}",
                    until.describe(),
                    plan.snapshot,
                    count(plan.transactions, "transaction", "transactions"),
                    bytes(plan.bytes),
                    plan.start.0,
                    plan.start.1,
                    plan.stop.0,
                    plan.stop.1,
                    plan.stop_gtid
                        .as_deref()
                        .map(|g| format!(", last GTID {g}"))
                        .unwrap_or_default()
                );
            }
            Some((repo, plan))
        }
    };
    let target = match (&replay, &args.target) {
        (Some((_, plan)), _) => plan.snapshot.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => anyhow::bail!(
            "what to restore? give a dump directory, or a snapshot ID with --repo (or --until TIME to choose the snapshot)"
        ),
    };
    let source = super::source(&target, &args.repo)?;
    let options = RestoreOptions {
        source: source.clone(),
        threads: args.threads,
        existing: args.existing.into(),
        write_binlog: !args.skip_binlog,
        defer_indexes: !args.keep_indexes,
        resume: args.resume,
        restart: args.restart,
        manifest_sha256: args.manifest_sha256.clone(),
        users: args.users,
        definer_current: args.definer == crate::cli::DefinerArg::Current,
        selection: Selection::parse(&args.include, &args.exclude, &args.rename)?,
        checksum: args.checksum,
    };
    // Every check that needs no server runs before a connection is opened.
    let prepared = restore::prepare(&options)?;
    if !args.report.quiet {
        for w in &prepared.warnings {
            eprintln!("warning: {w}");
        }
    }
    // The selection, as the target's replication filters; checked before any load.
    let filter = match &replay {
        Some((repo, plan)) => {
            let f = replay::ReplayFilter::of(&source.manifest()?.0, &options.selection);
            replay::check(repo, plan, &f)?;
            f
        }
        None => replay::ReplayFilter::default(),
    };
    let connector = connector(&args.connection, &defaults)?;
    let progress: Arc<dyn Progress> = Arc::from(args.report.progress());
    if args.dry_run {
        let plan = restore::dry_run(&connector, &options, prepared, progress)
            .await
            .map_err(|e| super::name_server(e, &connector))?;
        if args.json {
            return print_plan_json(&plan, replay.as_ref().map(|(_, p)| p));
        }
        print_plan(plan)?;
        if let Some((_, plan)) = &replay {
            println!(
                "replay: {}, {}, {} of binary log events from {}:{} to {}:{}{}; predicted {:.0} s at {}/s (a rate assumed from bench/pitr.sh, not measured on this target)",
                count(plan.transactions, "transaction", "transactions"),
                count(plan.events, "event", "events"),
                bytes(plan.bytes),
                plan.start.0,
                plan.start.1,
                plan.stop.0,
                plan.stop.1,
                plan.stop_time
                    .map(|t| format!(
                        ", last transaction committed at {}",
                        crate::display::utc(u64::from(t))
                    ))
                    .unwrap_or_default(),
                plan.bytes as f64 / replay::ASSUMED_RATE,
                bytes(replay::ASSUMED_RATE as u64),
            );
        }
        return Ok(());
    }
    // A replay left half-way means the snapshot was loaded: --resume goes on with it.
    let interrupted = replay.is_some()
        && replay::interrupted(&connector)
            .await
            .map_err(|e| super::name_server(e, &connector))?;
    if interrupted && !args.resume {
        anyhow::bail!("the target holds an interrupted point-in-time replay (its replication connection 'mysnap_replay'): run the same restore with --resume to finish it, or remove it with STOP SLAVE 'mysnap_replay'; RESET SLAVE 'mysnap_replay' ALL");
    }
    let load = !interrupted;
    if load {
        let s = restore::run(&connector, &options, prepared, progress.clone())
            .await
            .map_err(|e| super::name_server(e, &connector))?;
        summarize(&args, &source, s);
    } else if !args.report.quiet {
        eprintln!("the snapshot was loaded before the replay was interrupted: resuming the replay");
    }
    if let Some((repo, plan)) = &replay {
        let r = replay::replay(
            &connector,
            repo,
            plan,
            &replay::ReplayOptions {
                filter: filter.clone(),
                listen: args.replay_address.clone(),
                threads: args.threads,
                resume: args.resume,
            },
            &*progress,
        )
        .await
        .map_err(|e| super::name_server(e, &connector))?;
        if !args.report.quiet {
            println!(
                "replayed {} ({}) in {:.1} s, up to {}:{}{}",
                count(r.transactions, "transaction", "transactions"),
                bytes(r.bytes),
                r.seconds,
                plan.stop.0,
                plan.stop.1,
                plan.stop_gtid
                    .as_deref()
                    .map(|g| format!(" (GTID {g})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Prints what a restore of a snapshot or dump did.
fn summarize(args: &RestoreArgs, source: &restore::Source, s: restore::RestoreSummary) {
    if !args.report.quiet {
        // A resumed restore counts what every run loaded, and says what this one did.
        let resumed = if s.resumed_files > 0 {
            format!(
                " ({} and {} loaded by this run; {} loaded before the interruption)",
                count(s.rows, "row", "rows"),
                bytes(s.raw_bytes),
                count(s.resumed_files as u64, "file", "files")
            )
        } else {
            String::new()
        };
        println!(
            "restored {}, {}, {} in {:.1} s from {}{resumed}",
            count(s.tables, "table", "tables"),
            count(s.total_rows, "row", "rows"),
            bytes(s.total_raw_bytes),
            s.seconds,
            source.label()
        );
        if let Some(n) = s.checked_tables {
            println!(
                "checksum: {} read back, every row as the dump read it",
                count(n as u64, "table", "tables")
            );
        }
        if let Some(a) = &s.accounts {
            println!(
                "accounts: {} created{}",
                a.created.len(),
                if a.created.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", a.created.join(", "))
                }
            );
            for (name, why) in &a.skipped {
                println!("account {name} skipped: {why}");
            }
            for (name, why) in &a.grants_skipped {
                println!("a grant to {name} skipped: {why}");
            }
        }
    }
}

/// `restore --dry-run --json` (docs/JSON.md).
fn print_plan_json(plan: &restore::DryRun, replay: Option<&replay::ReplayPlan>) -> Result<()> {
    let m = &plan.manifest;
    let databases: Vec<serde_json::Value> = m
        .databases
        .iter()
        .map(|db| {
            serde_json::json!({
                "name": db.name,
                "tables": db.tables.len(),
                "files": db.tables.iter().map(|t| t.files.len()).sum::<usize>(),
                "raw_bytes": db.tables.iter().map(|t| t.raw_bytes).sum::<u64>(),
                "sequences": db.sequences.len(),
                "views": db.views.len(),
                "routines": db.routines.len(),
                "triggers": db.triggers.len(),
                "events": db.events.len(),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "schema_version": 1,
        "target": plan.target,
        "verified_files": plan.verified_files,
        "databases": databases,
        "tables": m.totals.tables,
        "files": m.totals.files,
        "rows": m.totals.rows,
        "raw_bytes": m.totals.raw_bytes,
        "predicted_seconds": (plan.work_bytes as f64 / plan.rate).round(),
        "rate_bytes_per_second": plan.rate.round(),
        "rate_source": plan.rate_source,
        "replay": replay.map(|r| serde_json::json!({
            "snapshot": r.snapshot,
            "from": {"file": r.start.0, "position": r.start.1},
            "to": {"file": r.stop.0, "position": r.stop.1},
            "transactions": r.transactions,
            "events": r.events,
            "bytes": r.bytes,
            "last_gtid": r.stop_gtid,
            "last_commit_time": r.stop_time.map(|t| crate::display::utc(u64::from(t))),
            "predicted_seconds": (r.bytes as f64 / replay::ASSUMED_RATE).round(),
        })),
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

fn print_plan(plan: restore::DryRun) -> Result<()> {
    let m = &plan.manifest;
    println!(
        "dry run into {}: nothing is changed; every check passed (privileges, settings, conflicts, {} data files' sizes and sha256)",
        plan.target, plan.verified_files
    );
    for db in &m.databases {
        let files: usize = db.tables.iter().map(|t| t.files.len()).sum();
        let size: u64 = db.tables.iter().map(|t| t.raw_bytes).sum();
        println!(
            "database {}: {} ({}, {}), {}, {}, {}, {}, {}",
            db.name,
            count(db.tables.len() as u64, "table", "tables"),
            count(files as u64, "file", "files"),
            self::bytes(size),
            count(db.sequences.len() as u64, "sequence", "sequences"),
            count(db.views.len() as u64, "view", "views"),
            count(db.routines.len() as u64, "routine", "routines"),
            count(db.triggers.len() as u64, "trigger", "triggers"),
            count(db.events.len() as u64, "event", "events")
        );
    }
    let secs = plan.work_bytes as f64 / plan.rate;
    println!(
        "total: {}, {}, {}, {} of data; predicted {:.0} s at {}/s ({})",
        count(m.totals.tables, "table", "tables"),
        count(m.totals.files, "file", "files"),
        count(m.totals.rows, "row", "rows"),
        bytes(m.totals.raw_bytes),
        secs,
        bytes(plan.rate as u64),
        plan.rate_source
    );
    Ok(())
}
