//! The binary-log archive: what `binlog archive` stores must be the source's binary log
//! byte for byte, from the first snapshot's coordinates on, with neither a gap nor a
//! duplicate whatever stops it (kill -9, a server restart); purged or reset binary logs
//! are reported as gaps rather than archived past.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{one_error_line, run_mysnap, run_mysnap_ok, stdout, Running, TestServer};

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn archive_args(server: &TestServer, repo: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["binlog".to_string(), "archive".into()];
    v.extend(server.conn_args());
    v.extend(["--repo".to_string(), s(repo), "-q".into()]);
    v.extend(extra.iter().map(|a| a.to_string()));
    v
}

fn status_json(repo: &Path) -> serde_json::Value {
    let out = run_mysnap_ok(&["binlog", "status", "--repo", &s(repo), "--json"]);
    serde_json::from_slice(&out.stdout).expect("binlog status --json prints JSON")
}

/// A repository with one snapshot of database `d` (where the archive starts).
fn repo_with_snapshot(server: &TestServer, dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("repo");
    run_mysnap_ok(&["init", "--repo", &s(&repo)]);
    server.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(100))");
    support::snapshot_into(server, &repo, "d");
    repo
}

/// Checks that the archive is the source's binary log byte for byte: every segment's
/// events are the bytes of its file between its start and end, and the segments follow
/// each other without a hole from `from` to the end of the last file. Returns the
/// archived transactions.
fn assert_archive_is_the_binlog(server: &TestServer, repo: &Path, from: (&str, u64)) -> u64 {
    let repo = Arc::new(mysnap::repo::Repository::open(repo).expect("open the repository"));
    let archive = mysnap::binlog::Archive::new(repo);
    let headers = archive.headers().expect("segment headers");
    assert!(!headers.is_empty(), "nothing archived");
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut expect = (from.0.to_string(), from.1);
    let mut transactions = 0;
    for h in &headers {
        assert!(
            h.gap_before.is_none(),
            "segment {}: {:?}",
            h.seq,
            h.gap_before
        );
        if (h.file.clone(), h.start) != expect {
            // Only the start of the next file after a server stopped (no rotate event):
            // the file before must then end where the archive left it.
            assert_eq!(
                (h.start, h.after_end_of.as_deref()),
                (4, Some(expect.0.as_str())),
                "segment {} ({}:{}) does not continue the one before (which ends at {:?})",
                h.seq,
                h.file,
                h.start,
                expect
            );
            let len = std::fs::metadata(server.binlog_dir().join(&expect.0))
                .unwrap()
                .len();
            assert_eq!(len, expect.1, "{} was archived to its end", expect.0);
        }
        let bytes = files.entry(h.file.clone()).or_insert_with(|| {
            std::fs::read(server.binlog_dir().join(&h.file)).expect("binlog file")
        });
        let events = archive.events(h).expect("segment events");
        // Every event is the file's bytes at its place; between them, only MariaDB's
        // Annotate_rows events (type 160), which are sent only to replicas asking for them.
        let mut at = h.start as usize;
        for e in &events.events {
            let size = e.len();
            let log_pos = u32::from_le_bytes(e[13..17].try_into().unwrap()) as usize;
            let start = log_pos - size;
            while at < start {
                assert_eq!(
                    bytes[at + 4],
                    160,
                    "segment {}: a hole at {}:{at} that is not an annotation",
                    h.seq,
                    h.file
                );
                at += u32::from_le_bytes(bytes[at + 9..at + 13].try_into().unwrap()) as usize;
            }
            assert_eq!(
                at, start,
                "segment {}: an event overlaps the one before",
                h.seq
            );
            let (mut mine, mut theirs) = (e.clone(), bytes[start..log_pos].to_vec());
            if e[4] == 15 {
                // A format description's in-use flag is cleared when the file is closed.
                mine[17] &= !1;
                theirs[17] &= !1;
            }
            assert!(
                mine == theirs,
                "segment {}: the event at {}:{start} is not the file's",
                h.seq,
                h.file
            );
            at = log_pos;
        }
        assert_eq!(
            at as u64, h.end,
            "segment {} ends where its header says",
            h.seq
        );
        transactions += h.transactions;
        expect = h.resume_at();
    }
    // Up to the end of the source's current binary log, but for the binlog checkpoint
    // events (type 161) the server may write after the archiver's last read.
    let status = server.sql("SHOW MASTER STATUS");
    let mut cols = status.split_whitespace();
    let (file, pos) = (
        cols.next().unwrap().to_string(),
        cols.next().unwrap().parse::<u64>().unwrap(),
    );
    assert_eq!(
        expect.0, file,
        "the archive ends in the source's current binary log"
    );
    let bytes = std::fs::read(server.binlog_dir().join(&file)).unwrap();
    let mut at = expect.1 as usize;
    while (at as u64) < pos {
        assert_eq!(
            bytes[at + 4],
            161,
            "the archive ends at {file}:{} but the source has more than checkpoints after it ({pos})",
            expect.1
        );
        at += u32::from_le_bytes(bytes[at + 9..at + 13].try_into().unwrap()) as usize;
    }
    transactions
}

fn snapshot_coordinates(repo: &Path) -> (String, u64) {
    let out = run_mysnap_ok(&["list", "--repo", &s(repo), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = &v[0]["binlog"];
    (
        b["file"].as_str().unwrap().to_string(),
        b["position"].as_u64().unwrap(),
    )
}

#[test]
fn the_archive_is_the_binlog_byte_for_byte_from_the_first_snapshot_on() {
    let source = TestServer::start();
    let dir = support::tempdir("mysnap-binlog-");
    let repo = repo_with_snapshot(&source, dir.path());
    let (file, pos) = snapshot_coordinates(&repo);
    // Transactions, DDL, a rotation, statement-format events and a temporary table.
    for i in 0..50 {
        source.sql(&format!("INSERT INTO d.t VALUES ({i}, REPEAT('x', {i}))"));
    }
    source.sql("ALTER TABLE d.t ADD COLUMN w INT; FLUSH BINARY LOGS");
    source.sql("SET SESSION binlog_format = STATEMENT; CREATE TEMPORARY TABLE d.tmp (a INT); INSERT INTO d.tmp VALUES (1); UPDATE d.t SET w = 1 WHERE id < 10; DROP TEMPORARY TABLE d.tmp");
    source.sql("BEGIN; UPDATE d.t SET w = 2 WHERE id >= 10; DELETE FROM d.t WHERE id = 3; COMMIT");
    let out = run_mysnap_ok(&archive_args(&source, &repo, &["--once"]));
    assert!(out.status.success());
    let first = assert_archive_is_the_binlog(&source, &repo, (&file, pos));
    assert!(first >= 50 + 2, "{first} transactions archived");
    // A second run resumes exactly after the first: no gap, no duplicate.
    for i in 100..120 {
        source.sql(&format!("INSERT INTO d.t VALUES ({i}, 'y', {i})"));
    }
    run_mysnap_ok(&archive_args(&source, &repo, &["--once"]));
    let second = assert_archive_is_the_binlog(&source, &repo, (&file, pos));
    assert_eq!(second, first + 20, "each transaction archived once");
    // Nothing new: a run adds no transaction (the server may still have written a
    // binlog checkpoint event since, which is archived like any other).
    run_mysnap_ok(&archive_args(&source, &repo, &["--once"]));
    assert_eq!(
        assert_archive_is_the_binlog(&source, &repo, (&file, pos)),
        second
    );
    let st = status_json(&repo);
    assert_eq!(st["transactions"].as_u64().unwrap(), second);
    assert_eq!(st["first"]["file"], file.as_str());
    assert_eq!(st["first"]["position"].as_u64().unwrap(), pos);
    assert!(st["gaps"].as_array().unwrap().is_empty(), "{st}");
    assert!(
        st["last"]["gtid"].as_str().unwrap().starts_with("0-"),
        "{st}"
    );
    let text = stdout(&run_mysnap_ok(&["binlog", "status", "--repo", &s(&repo)]));
    assert!(
        text.contains("gaps:     none") && text.contains(&file),
        "{text}"
    );
    let listed = run_mysnap_ok(&["list", "--repo", &s(&repo), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        v[0]["binlog_gap"].is_null() && v[0]["recoverable_until"].is_string(),
        "{v}"
    );
}

#[test]
fn kill_9_and_server_restarts_leave_no_gap_and_no_duplicate() {
    let mut source = TestServer::start();
    let dir = support::tempdir("mysnap-binlog-");
    let repo = repo_with_snapshot(&source, dir.path());
    let (file, pos) = snapshot_coordinates(&repo);
    let mut written = 0u64;
    let mut write = |source: &TestServer, n: u64| {
        for _ in 0..n {
            written += 1;
            source.sql(&format!(
                "INSERT INTO d.t VALUES ({written}, REPEAT('z', {}))",
                written % 90
            ));
        }
    };
    let mut rng = rand::rng();
    for round in 0..8 {
        let mut archiver = Running::spawn(&archive_args(&source, &repo, &[]));
        let started = Instant::now();
        let until = Duration::from_millis(rand::Rng::random_range(&mut rng, 200..1500));
        while started.elapsed() < until {
            write(&source, 5);
        }
        if round == 4 {
            // The source goes away and comes back while the archiver streams.
            source.restart();
            write(&source, 10);
            std::thread::sleep(Duration::from_millis(500));
        }
        archiver.assert_running();
        let _ = std::process::Command::new("kill")
            .args(["-9", &archiver.pid().to_string()])
            .status();
        let _ = archiver.finish(Duration::from_secs(10), || "kill -9".into());
        write(&source, 7);
    }
    run_mysnap_ok(&archive_args(&source, &repo, &["--once"]));
    let transactions = assert_archive_is_the_binlog(&source, &repo, (&file, pos));
    assert!(
        transactions >= written,
        "{transactions} archived, {written} written"
    );
    // And it replays to the source's state (up to the archive's end: the source may
    // have written a checkpoint event since).
    let target = TestServer::start();
    let st = status_json(&repo);
    let end = format!(
        "{}:{}",
        st["last"]["file"].as_str().unwrap(),
        st["last"]["position"].as_u64().unwrap()
    );
    let mut args = vec![
        "restore".to_string(),
        "--repo".into(),
        s(&repo),
        "--until-position".into(),
        end,
    ];
    args.extend(target.conn_args());
    run_mysnap_ok(&args);
    assert!(
        target.canonical_dump(&["d"]) == source.canonical_dump(&["d"]),
        "the archive replayed differs from the source"
    );
}

#[test]
fn purged_or_reset_binary_logs_are_gaps_not_archived_past() {
    let source = TestServer::start();
    let dir = support::tempdir("mysnap-binlog-");
    let repo = repo_with_snapshot(&source, dir.path());
    source.sql("INSERT INTO d.t VALUES (1, 'a')");
    run_mysnap_ok(&archive_args(&source, &repo, &["--once"]));
    // While no archiver runs, the binary logs it has not read are purged.
    source.sql("INSERT INTO d.t VALUES (2, 'b'); FLUSH BINARY LOGS; INSERT INTO d.t VALUES (3, 'c'); FLUSH BINARY LOGS");
    let last = source.sql("SHOW MASTER STATUS");
    let last_file = last.split_whitespace().next().unwrap().to_string();
    // The server purges a file only once its transactions are checkpointed: retry.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        source.sql(&format!("PURGE BINARY LOGS TO '{last_file}'"));
        let logs = source.sql("SHOW BINARY LOGS");
        if logs.lines().count() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "PURGE left {logs}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let before = status_json(&repo)["segments"].as_u64().unwrap();
    let out = run_mysnap(&archive_args(&source, &repo, &["--once"]));
    let line = one_error_line(&out, &["purged", "--after-gap"]);
    assert!(line.contains("gap"), "{line}");
    assert_eq!(
        status_json(&repo)["segments"].as_u64().unwrap(),
        before,
        "nothing written past the gap"
    );
    // Told to, it records the gap and goes on from the oldest binary log left.
    source.sql("INSERT INTO d.t VALUES (4, 'd')");
    run_mysnap_ok(&archive_args(&source, &repo, &["--once", "--after-gap"]));
    let st = status_json(&repo);
    let gaps = st["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{st}");
    assert_eq!(gaps[0]["resumes"]["file"], last_file.as_str());
    assert!(
        gaps[0]["reason"].as_str().unwrap().contains("purged"),
        "{st}"
    );
    let text = stdout(&run_mysnap_ok(&["binlog", "status", "--repo", &s(&repo)]));
    assert!(text.contains("gap:") && text.contains("purged"), "{text}");
    // The snapshot's window ends at the gap, and list says so; a target past it is refused.
    let listed = run_mysnap_ok(&["list", "--repo", &s(&repo), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        v[0]["binlog_gap"].as_str().unwrap().contains("purged"),
        "{v}"
    );
    assert!(v[0]["recoverable_until"].is_string(), "{v}");
    let text = stdout(&run_mysnap_ok(&["list", "--repo", &s(&repo)]));
    assert!(
        text.contains("(gap after)") && text.contains("only up to the gap"),
        "{text}"
    );
    let mut args = vec![
        "restore".to_string(),
        "--repo".into(),
        s(&repo),
        "--until-gtid".into(),
    ];
    args.push(source.sql("SELECT @@gtid_binlog_pos").trim().to_string());
    args.extend(source.conn_args());
    one_error_line(&run_mysnap(&args), &["beyond a gap"]);

    // RESET MASTER makes new files under the old names: refused, not archived as the old.
    source.sql("RESET MASTER; INSERT INTO d.t VALUES (5, 'e'); INSERT INTO d.t VALUES (6, 'f')");
    let before = status_json(&repo)["segments"].as_u64().unwrap();
    let out = run_mysnap(&archive_args(&source, &repo, &["--once"]));
    one_error_line(&out, &["--after-gap"]);
    assert_eq!(status_json(&repo)["segments"].as_u64().unwrap(), before);
}

#[test]
fn bad_archive_requests_fail_with_one_line() {
    let dir = support::tempdir("mysnap-binlog-");
    // No binary log on the source.
    let nolog = TestServer::start_with_options(support::ServerOptions {
        binlog: false,
        extra_args: Vec::new(),
    });
    let repo = dir.path().join("repo");
    run_mysnap_ok(&["init", "--repo", &s(&repo)]);
    let out = run_mysnap(&archive_args(&nolog, &repo, &["--once"]));
    one_error_line(&out, &["binary log is off", "log_bin"]);
    // Not a repository.
    let out = run_mysnap(&archive_args(
        &nolog,
        &dir.path().join("nowhere"),
        &["--once"],
    ));
    one_error_line(&out, &["not a mysnap repository"]);
    let out = run_mysnap(&[
        "binlog",
        "status",
        "--repo",
        &s(&dir.path().join("nowhere")),
    ]);
    one_error_line(&out, &["not a mysnap repository"]);
    // An account without replication privileges.
    let source = TestServer::start();
    source.sql("CREATE USER weak@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO weak@'%'");
    let mut args = vec!["binlog".to_string(), "archive".into()];
    args.extend(support::login_args(source.port(), "weak"));
    args.extend(["--repo".into(), s(&repo), "--once".into()]);
    let out = support::isolate(&mut support::mysnap_command())
        .args(&args)
        .env("MYSQL_PWD", "pw")
        .output()
        .unwrap();
    one_error_line(&out, &["REPLICATION SLAVE"]);
    // An empty archive says so.
    let text = stdout(&run_mysnap_ok(&["binlog", "status", "--repo", &s(&repo)]));
    assert!(text.contains("no binary log archived"), "{text}");
}

#[test]
fn forget_prunes_the_segments_only_older_snapshots_needed() {
    let source = TestServer::start();
    let dir = support::tempdir("mysnap-binlog-");
    let repo = repo_with_snapshot(&source, dir.path());
    let dump = || support::snapshot_into(&source, &repo, "d");
    for round in 0..3 {
        for i in 0..10 {
            source.sql(&format!(
                "INSERT INTO d.t VALUES ({}, 'r')",
                round * 100 + i
            ));
        }
        source.sql("FLUSH BINARY LOGS");
        run_mysnap_ok(&archive_args(&source, &repo, &["--once"]));
        if round == 1 {
            dump();
        }
    }
    let before = status_json(&repo);
    let listed: serde_json::Value =
        serde_json::from_slice(&run_mysnap_ok(&["list", "--repo", &s(&repo), "--json"]).stdout)
            .unwrap();
    let kept = &listed[1];
    let (kept_file, kept_pos) = (
        kept["binlog"]["file"].as_str().unwrap().to_string(),
        kept["binlog"]["position"].as_u64().unwrap(),
    );
    // Keeping only the newer snapshot: the segments before its coordinates go.
    let out = stdout(&run_mysnap_ok(&[
        "forget",
        "--repo",
        &s(&repo),
        "--keep-last",
        "1",
        "--prune",
    ]));
    assert!(out.contains("of archived binary log"), "{out}");
    let after = status_json(&repo);
    assert!(
        after["segments"].as_u64().unwrap() < before["segments"].as_u64().unwrap(),
        "nothing pruned: {before} / {after}"
    );
    assert!(after["gaps"].as_array().unwrap().is_empty(), "{after}");
    assert_eq!(after["last"], before["last"], "the newest segments stay");
    // The kept snapshot's coordinates are still in the archive, and it can be rolled
    // forward to the end.
    let first = (
        after["first"]["file"].as_str().unwrap().to_string(),
        after["first"]["position"].as_u64().unwrap(),
    );
    assert!(
        first.0 < kept_file || (first.0 == kept_file && first.1 <= kept_pos),
        "{first:?} after {kept_file}:{kept_pos}"
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&run_mysnap_ok(&["list", "--repo", &s(&repo), "--json"]).stdout)
            .unwrap();
    assert!(
        listed[0]["recoverable_until"].is_string() && listed[0]["binlog_gap"].is_null(),
        "{listed}"
    );
    // Again: nothing more goes.
    run_mysnap_ok(&["forget", "--repo", &s(&repo), "--keep-last", "1", "--prune"]);
    assert_eq!(status_json(&repo)["segments"], after["segments"]);
}
