//! `mysnap binlog archive` and `mysnap binlog status`.

use std::sync::Arc;

use anyhow::Result;
use mysnap::binlog::{self, Archive, ArchiveOptions};
use mysnap::progress::Progress;

use super::connector;
use crate::cli::{BinlogArchiveArgs, BinlogStatusArgs};
use crate::display::{bytes, count};

/// Streams the source's binary log into the repository.
pub async fn archive(
    args: BinlogArchiveArgs,
    defaults: super::Defaults,
    metrics: &super::metrics::Metrics,
) -> Result<()> {
    let repo = super::repo::open(&args.repo)?;
    let connector = connector(&args.connection, &defaults)?;
    let progress: Arc<dyn Progress> = Arc::from(args.report.progress());
    // A running archiver rewrites its metrics as it says where it stands.
    let (status_tx, mut status_rx) = tokio::sync::watch::channel(None::<binlog::ArchiverStatus>);
    let options = ArchiveOptions {
        server_id: args.server_id,
        once: args.once,
        after_gap: args.after_gap,
        on_status: Some(Arc::new(move |s: &binlog::ArchiverStatus| {
            let _ = status_tx.send(Some(s.clone()));
        })),
        ..ArchiveOptions::default()
    };
    let location = repo.location();
    let update = |s: &binlog::ArchiverStatus| {
        let repo_label = [("repository", location.as_str())];
        metrics.set(
            "mysnap_binlog_archive_lag_seconds",
            "How far the archive is behind the source (0 when caught up).",
            &repo_label,
            s.lag_seconds,
        );
        metrics.set(
            "mysnap_binlog_last_archived_event_timestamp_seconds",
            "The timestamp of the newest archived binlog event.",
            &repo_label,
            f64::from(s.archived_time),
        );
    };
    let run = binlog::archive(&connector, repo.clone(), &options, &*progress);
    tokio::pin!(run);
    let report = loop {
        tokio::select! {
            r = &mut run => break r,
            changed = status_rx.changed() => {
                if changed.is_ok() {
                    if let Some(s) = status_rx.borrow_and_update().clone() {
                        update(&s);
                        if let Err(e) = metrics.write(true) {
                            progress.note(&format!("warning: {e:#}"));
                        }
                    }
                }
            }
        }
    };
    if let Some(s) = status_rx.borrow().clone() {
        update(&s);
    }
    let report = report.map_err(|e| super::name_server(e, &connector))?;
    if !args.report.quiet {
        let until = report
            .until
            .as_ref()
            .map(|(f, p)| format!("; archived up to {f}:{p}"))
            .unwrap_or_default();
        eprintln!(
            "archived {} of {} ({} stored) in {}{until}",
            count(report.transactions, "transaction", "transactions"),
            bytes(report.raw_bytes),
            bytes(report.stored_bytes),
            count(report.segments, "segment", "segments"),
        );
    }
    Ok(())
}

fn time(secs: u32) -> String {
    crate::display::utc(u64::from(secs))
}

/// Shows the archive.
pub fn status(args: BinlogStatusArgs) -> Result<()> {
    let repo = super::repo::open(&args.repo)?;
    let archive = Archive::new(repo.clone());
    let status = archive.status()?;
    if args.json {
        let point = |p: &Option<binlog::Point>| {
            p.as_ref().map(|p| {
                serde_json::json!({
                    "time": time(p.time), "file": p.file, "position": p.position, "gtid": p.gtid,
                })
            })
        };
        let gaps: Vec<serde_json::Value> = status
            .gaps
            .iter()
            .map(|g| {
                serde_json::json!({
                    "after": {"time": time(g.after_time), "file": g.after_file, "position": g.after_position},
                    "resumes": {"time": time(g.resumes_time), "file": g.resumes_file, "position": g.resumes_position},
                    "reason": g.reason,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "schema_version": 1,
            "repository": repo.location(),
            "first": point(&status.first),
            "last": point(&status.last),
            "segments": status.segments,
            "events": status.events,
            "transactions": status.transactions,
            "raw_bytes": status.raw_bytes,
            "stored_bytes": status.stored_bytes,
            "gaps": gaps,
            "source": status.source,
            "archiver": status.archiver,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let (Some(first), Some(last)) = (&status.first, &status.last) else {
        println!(
            "no binary log archived in {} yet (start one with: mysnap binlog archive --repo {} [connection])",
            repo.location(),
            repo.location()
        );
        return Ok(());
    };
    let gtid = |g: &Option<String>| {
        g.as_deref()
            .map(|g| format!(", GTID {g}"))
            .unwrap_or_default()
    };
    println!("binary log archive of {}", repo.location());
    if let Some(s) = &status.source {
        println!(
            "source:   {} server_id {}{} on host {}",
            s.flavor,
            s.server_id,
            s.server_uuid
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default(),
            s.hostname
        );
    }
    println!(
        "first:    {}  {}:{}{}",
        time(first.time),
        first.file,
        first.position,
        gtid(&first.gtid)
    );
    println!(
        "last:     {}  {}:{}{}",
        time(last.time),
        last.file,
        last.position,
        gtid(&last.gtid)
    );
    println!(
        "holds:    {}, {}, {} of events ({} stored)",
        count(status.segments, "segment", "segments"),
        count(status.transactions, "transaction", "transactions"),
        bytes(status.raw_bytes),
        bytes(status.stored_bytes)
    );
    if status.gaps.is_empty() {
        println!("gaps:     none");
    }
    for g in &status.gaps {
        println!(
            "gap:      after {} {}:{} until {} {}:{}: {}",
            time(g.after_time),
            g.after_file,
            g.after_position,
            time(g.resumes_time),
            g.resumes_file,
            g.resumes_position,
            g.reason
        );
    }
    match &status.archiver {
        Some(a) => println!(
            "archiver: pid {} on {}, last said {}: archived to {}:{}, source at {}, lag {:.0} s",
            a.pid,
            a.host,
            a.updated,
            a.archived_file,
            a.archived_position,
            match (&a.source_file, a.source_position) {
                (Some(f), Some(p)) => format!("{f}:{p}"),
                _ => "unknown".into(),
            },
            a.lag_seconds
        ),
        None => println!("archiver: none has run"),
    }
    Ok(())
}
