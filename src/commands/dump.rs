//! `mysnap dump`.

use std::sync::Arc;

use anyhow::Result;
use mysnap::dump::{self, DumpOptions};
use mysnap::progress::Progress;

use super::connector;
use crate::cli::DumpArgs;
use crate::display::{bytes, count};

/// Validates the flags, runs the dump, prints a summary.
pub async fn run(
    args: DumpArgs,
    defaults: super::Defaults,
    metrics: &super::metrics::Metrics,
) -> Result<()> {
    let codec = args.compress;
    let destination = match (&args.output, &args.repo.repo) {
        (Some(dir), _) => {
            if !args.tag.is_empty() || args.keep_forever {
                anyhow::bail!("--tag and --keep-forever are for a snapshot in a repository, not a dump directory (--output)");
            }
            dump::Destination::Directory(dir.clone())
        }
        (None, Some(_)) => dump::Destination::Repository {
            repo: super::repo::open(&args.repo)?,
            tags: args.tag.clone(),
            keep_forever: args.keep_forever,
        },
        (None, None) => anyhow::bail!(
            "where to? give --output DIR for a dump directory, or --repo REPO (or MYSNAP_REPO) for a repository"
        ),
    };
    let whole_server = args.databases.is_empty();
    let options = DumpOptions {
        databases: args.databases.clone(),
        filter: mysnap::filter::Filter::parse(&args.include, &args.exclude)?,
        patterns: (args.include.clone(), args.exclude.clone()),
        users: if args.no_users {
            false
        } else {
            args.users || whole_server
        },
        all_databases: whole_server,
        destination,
        threads: args.threads,
        codec,
        level: args.compress_level.unwrap_or(codec.default_level()),
        chunk_bytes: args.chunk_size,
        lock_nontransactional: !args.no_lock_nontransactional,
        max_rate: args.max_rate,
        busy_threads: args.busy_threads,
        lock_free: args.lock_free,
    };
    options.validate()?;
    let connector = connector(&args.connection, &defaults)?;
    let progress: Arc<dyn Progress> = Arc::from(args.report.progress());
    let dumped = dump::run(&connector, &options, progress)
        .await
        .map_err(|e| super::name_server(e, &connector))?;
    let m = &dumped.manifest;
    let t = &m.totals;
    for (name, help, value) in [
        (
            "mysnap_dump_rows",
            "Rows the last dump wrote.",
            t.rows as f64,
        ),
        (
            "mysnap_dump_raw_bytes",
            "Bytes of row text the last dump wrote.",
            t.raw_bytes as f64,
        ),
        (
            "mysnap_dump_stored_bytes",
            "Bytes the last dump stored (compressed).",
            t.stored_bytes as f64,
        ),
        (
            "mysnap_dump_tables",
            "Tables the last dump held.",
            t.tables as f64,
        ),
        (
            "mysnap_dump_global_lock_seconds",
            "How long the last dump held the global lock.",
            m.consistency.global_lock_ms / 1000.0,
        ),
    ] {
        metrics.set(name, help, &[], value);
    }
    if let dump::Destination::Repository { repo, .. } = &options.destination {
        super::restorable_metric(metrics, repo);
    }
    let to = match (&dumped.snapshot, &args.output) {
        (Some(s), _) => format!("snapshot {} of {}", s.id, repo_location(&args)),
        (None, Some(dir)) => dir.display().to_string(),
        (None, None) => String::new(),
    };
    if args.report.quiet {
        // Scripts capture the new snapshot's ID: ID=$(mysnap dump -q --repo R).
        if let Some(s) = &dumped.snapshot {
            println!("{}", s.id);
        }
        return Ok(());
    }
    println!(
        "dumped {}, {}, {}, {} raw, {} stored in {}, {:.1} s -> {}",
        count(m.databases.len() as u64, "database", "databases"),
        count(t.tables, "table", "tables"),
        count(t.rows, "row", "rows"),
        bytes(t.raw_bytes),
        bytes(t.stored_bytes),
        count(t.files, "file", "files"),
        m.duration_seconds,
        to
    );
    if !m.accounts.is_empty() {
        println!(
            "accounts: {}",
            count(m.accounts.len() as u64, "account", "accounts")
        );
    }
    println!(
        "snapshot: {} on {} sessions, global lock held {:.1} ms",
        m.consistency.method, m.consistency.sessions, m.consistency.global_lock_ms
    );
    match (&m.binlog.file, m.binlog.position) {
        (Some(f), Some(p)) => println!(
            "binlog: {f}:{p} gtid {}",
            m.binlog.gtid.as_deref().unwrap_or("(none)")
        ),
        _ => println!(
            "binlog: none. {}",
            m.point_in_time.reason.as_deref().unwrap_or("")
        ),
    }
    if !m.consistency.nontransactional_consistent {
        println!(
            "warning: non-transactional tables were read without a lock and may be inconsistent: {}",
            m.consistency.nontransactional_tables.join(", ")
        );
    }
    for note in &m.consistency.notes {
        println!("note: {note}");
    }
    println!(
        "manifest sha256: {} (keep it apart from the dump; restore --manifest-sha256 checks it)",
        dumped.manifest_sha256
    );
    if let Some(s) = &dumped.snapshot {
        println!("snapshot id: {}", s.id);
    }
    Ok(())
}

fn repo_location(args: &DumpArgs) -> String {
    args.repo
        .repo
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}
