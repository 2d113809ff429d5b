//! `mysnap show`.

use std::io::Write;

use anyhow::Result;
use mysnap::format::Manifest;

use super::mib;
use crate::cli::ShowArgs;

/// Prints a dump's manifest, as JSON or as a summary.
pub fn run(args: ShowArgs) -> Result<()> {
    let (m, digest) = Manifest::read_with_digest(&args.dir)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &m)?;
        writeln!(out)?;
        return Ok(());
    }
    if args.sql {
        out.write_all(&mysnap::format::script::schema_sql(&m))?;
        return Ok(());
    }
    writeln!(out, "dump:        {}", args.dir.display())?;
    writeln!(out, "manifest:    sha256 {digest}")?;
    writeln!(
        out,
        "taken:       {} (finished {}, {:.1} s)",
        m.snapshot_time, m.finished_time, m.duration_seconds
    )?;
    writeln!(
        out,
        "source:      {} ({} {}, server_id {})",
        m.options.source,
        serde_json::to_value(m.server.flavor)?
            .as_str()
            .unwrap_or(""),
        m.server.version,
        m.server.server_id
    )?;
    writeln!(
        out,
        "consistency: {}, global lock {:.1} ms, {} sessions",
        m.consistency.method, m.consistency.global_lock_ms, m.consistency.sessions
    )?;
    match (&m.binlog.file, m.binlog.position) {
        (Some(f), Some(p)) => writeln!(
            out,
            "binlog:      {f}:{p}, gtid {}",
            m.binlog.gtid.as_deref().unwrap_or("(none)")
        )?,
        _ => writeln!(
            out,
            "binlog:      none; {}",
            m.point_in_time.reason.as_deref().unwrap_or("")
        )?,
    }
    writeln!(
        out,
        "compression: {} level {}",
        m.options.compression, m.options.compression_level
    )?;
    writeln!(
        out,
        "totals:      {} tables, {} rows, {} raw, {} stored, {} files",
        m.totals.tables,
        m.totals.rows,
        mib(m.totals.raw_bytes),
        mib(m.totals.stored_bytes),
        m.totals.files
    )?;
    for db in &m.databases {
        writeln!(
            out,
            "database {} ({} / {}): {} tables, {} views, {} routines, {} triggers, {} events, {} sequences",
            printable(&db.name), db.charset, db.collation, db.tables.len(), db.views.len(), db.routines.len(), db.triggers.len(), db.events.len(), db.sequences.len()
        )?;
        for t in &db.tables {
            writeln!(
                out,
                "  {:<40} {:>8} {:>12} rows {:>12} {:>4} files",
                printable(&t.name),
                t.engine,
                t.rows,
                mib(t.raw_bytes),
                t.files.len()
            )?;
        }
    }
    Ok(())
}

/// A name with control characters escaped, so one object stays on one line.
fn printable(name: &str) -> String {
    if name.chars().any(char::is_control) {
        name.escape_default().to_string()
    } else {
        name.to_string()
    }
}
