//! `mysnap restore`.

use std::sync::Arc;

use anyhow::Result;
use mysnap::progress::Progress;
use mysnap::restore::{self, RestoreOptions, Selection};

use super::connector;
use crate::cli::RestoreArgs;
use crate::display::{bytes, count};

/// Validates the flags, runs the restore (or plans it), prints a summary.
pub async fn run(args: RestoreArgs, defaults: super::Defaults) -> Result<()> {
    let source = super::source(&args.target, &args.repo)?;
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
    let connector = connector(&args.connection, &defaults)?;
    let progress: Arc<dyn Progress> = Arc::from(args.report.progress());
    if args.dry_run {
        let plan = restore::dry_run(&connector, &options, prepared, progress)
            .await
            .map_err(|e| super::name_server(e, &connector))?;
        return print_plan(plan);
    }
    let s = restore::run(&connector, &options, prepared, progress)
        .await
        .map_err(|e| super::name_server(e, &connector))?;
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
