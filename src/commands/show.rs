//! `mysnap show`.

use std::io::Write;

use anyhow::Result;

use crate::cli::ShowArgs;
use crate::display::{bytes, count};

/// Prints a dump's manifest, as JSON or as a summary.
pub fn run(args: ShowArgs) -> Result<()> {
    let source = super::source(&args.target, &args.repo)?;
    let (m, digest) = source.manifest()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &m)?;
        writeln!(out)?;
        return Ok(());
    }
    if args.sql {
        out.write_all(&mysnap::format::schema_sql(&m))?;
        return Ok(());
    }
    writeln!(out, "dump:        {}", source.label())?;
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
        "totals:      {}, {}, {} raw, {} stored, {}",
        count(m.totals.tables, "table", "tables"),
        count(m.totals.rows, "row", "rows"),
        bytes(m.totals.raw_bytes),
        bytes(m.totals.stored_bytes),
        count(m.totals.files, "file", "files")
    )?;
    // One column width for every table name of the dump, so that the columns line up.
    let name_width = m
        .databases
        .iter()
        .flat_map(|d| &d.tables)
        .map(|t| unicode_width::UnicodeWidthStr::width(printable(&t.name).as_str()))
        .max()
        .unwrap_or(0)
        .max(20);
    for db in &m.databases {
        writeln!(
            out,
            "database {} ({} / {}): {}, {}, {}, {}, {}, {}",
            printable(&db.name),
            db.charset,
            db.collation,
            count(db.tables.len() as u64, "table", "tables"),
            count(db.views.len() as u64, "view", "views"),
            count(db.routines.len() as u64, "routine", "routines"),
            count(db.triggers.len() as u64, "trigger", "triggers"),
            count(db.events.len() as u64, "event", "events"),
            count(db.sequences.len() as u64, "sequence", "sequences")
        )?;
        for t in &db.tables {
            writeln!(
                out,
                "  {} {:>8} {:>17} {:>12} {:>9}",
                padded(&printable(&t.name), name_width),
                t.engine,
                count(t.rows, "row", "rows"),
                bytes(t.raw_bytes),
                count(t.files.len() as u64, "file", "files")
            )?;
        }
    }
    Ok(())
}

/// `s` followed by spaces up to `width` display columns (a CJK character takes two).
fn padded(s: &str, width: usize) -> String {
    let w = unicode_width::UnicodeWidthStr::width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// A name with control characters escaped, so one object stays on one line.
fn printable(name: &str) -> String {
    if name.chars().any(char::is_control) {
        name.escape_default().to_string()
    } else {
        name.to_string()
    }
}
