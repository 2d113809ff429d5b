//! No lock survives a dump, failed or not; DDL during a dump waits for it or fails it
//! clearly; the manifest tells how the snapshot was taken and what it can be used for.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    dump_args, fill_db, one_error_line, run_mysnap_ok, show_json, stdout, tempdir,
    wait_for_dump_select, wait_no_mysnap_sessions, Running, ServerOptions, TestServer,
};
use tempfile::TempDir;

/// Everything in the processlist, with states, for failure messages.
fn processlist_states(server: &TestServer) -> String {
    server.sql(
        "SELECT ID, HOST, COMMAND, STATE, TIME, LEFT(INFO, 100) FROM information_schema.PROCESSLIST ORDER BY ID",
    )
}

/// Starts a slow dump of `d` (300 KB/s, 64 KiB files, then `extra`) into `DIR/out` and waits
/// until it runs a SELECT: `(dump, session id, DIR, DIR/out)`.
fn slow_dump_reading(s: &TestServer, extra: &[&str]) -> (Running, u64, TempDir, PathBuf) {
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let flags = [&["--max-rate", "300K", "--chunk-size", "64K"], extra].concat();
    let mut dump = Running::spawn(&dump_args(s, &["d"], &out_dir, &flags));
    let session = wait_for_dump_select(s, &mut dump);
    (dump, session, dir, out_dir)
}

/// Dumps `d` into `out` (then `extra`), which must succeed: its output and the manifest.
fn dump_ok(s: &TestServer, out: &Path, extra: &[&str]) -> (Output, Value) {
    let output = run_mysnap_ok(&dump_args(s, &["d"], out, extra));
    (output, show_json(out))
}

fn tmp() -> TempDir {
    tempdir("mysnap-locks-")
}

#[test]
fn killed_session_fails_the_dump_and_leaves_no_lock() {
    let s = TestServer::start();
    let tables = [("t1", 3000), ("t2", 2500), ("t3", 2000), ("t4", 2500)]; // ~2 MB raw
    fill_db(&s, "d", &tables, Some("legacy"));
    let (dump, victim, _dir, out_dir) = slow_dump_reading(&s, &["--threads", "2"]);
    s.kill_connection(victim).expect("KILL the dump session");
    let out = dump.finish(Duration::from_secs(30), || processlist_states(&s));
    let line = one_error_line(&out, &[]);
    // A lost connection is exit status 3 (README, "Exit status").
    assert_eq!(out.status.code(), Some(3), "{line}");
    assert!(!out_dir.join("manifest.json").exists(), "{line}");
    // Clear: it says which table's read failed, not only that something stopped.
    assert!(
        line.contains("`d`.`t"),
        "the error does not name the table: {line}"
    );

    wait_no_mysnap_sessions(&s, Duration::from_secs(10));
    // Every kind of lock a dump takes or holds can be taken again, at once.
    s.sql(
        "SET SESSION lock_wait_timeout = 5;
         FLUSH TABLES WITH READ LOCK; UNLOCK TABLES;
         BACKUP STAGE START; BACKUP STAGE END;
         INSERT INTO d.legacy VALUES (1000, 'after');
         ALTER TABLE d.t1 ADD COLUMN extra INT;",
    );
    assert_eq!(s.query_value("SELECT COUNT(*) FROM d.legacy"), "101");
}

#[test]
fn table_dropped_mid_dump_waits_or_fails_clearly() {
    let s = TestServer::start();
    let tables = [("t1", 4000), ("t2", 1500), ("t3", 3000)]; // ~1.8 MB raw
    fill_db(&s, "d", &tables, None);
    let t2_rows: u64 = s.query_value("SELECT COUNT(*) FROM d.t2").parse().unwrap();
    let (mut dump, _, _dir, out_dir) = slow_dump_reading(&s, &[]);

    let mut drop_cmd = s.client("mariadb");
    drop_cmd.args(["-e", "SET SESSION lock_wait_timeout = 120; DROP TABLE d.t2"]);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let out = drop_cmd.stdin(Stdio::null()).output().expect("run mariadb");
        let _ = tx.send((Instant::now(), out));
    });

    // Watch the dump: when was a dump SELECT last seen running?
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_select_seen = None;
    let mut dropped = None;
    while dump.is_running() {
        assert!(
            Instant::now() < deadline,
            "the dump is stuck (DROP {}):\n{}",
            if dropped.is_some() { "done" } else { "pending" },
            processlist_states(&s)
        );
        let seen_at = Instant::now();
        if s.processlist().iter().any(|r| r.contains("mysnap dump")) {
            last_select_seen = Some(seen_at);
        }
        if dropped.is_none() {
            dropped = rx.try_recv().ok();
        }
        sleep(Duration::from_millis(20));
    }
    let ended = Instant::now();
    let out = dump.finish(Duration::ZERO, String::new);
    let (drop_done, drop_out) = dropped.unwrap_or_else(|| {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("DROP TABLE not finished 10 s after the dump ended")
    });
    assert!(
        drop_out.status.success(),
        "DROP TABLE failed: {}",
        String::from_utf8_lossy(&drop_out.stderr)
    );
    assert!(drop_done < ended + Duration::from_secs(10));

    eprintln!(
        "dump: {}; DROP finished after the dump's exit was seen: {:?}",
        out.status,
        drop_done.checked_duration_since(ended)
    );
    if out.status.success() {
        // (a) The dump kept t2 whole, and the DROP waited for it.
        let m = show_json(&out_dir);
        let t2 = m["databases"][0]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "t2")
            .expect("t2 in the manifest");
        assert_eq!(
            t2["rows"].as_u64(),
            Some(t2_rows),
            "t2 rows in the manifest"
        );
        if let Some(seen) = last_select_seen {
            assert!(
                drop_done > seen,
                "DROP TABLE finished while the dump was still reading"
            );
        }
    } else {
        // (b) The dump failed, saying it was t2.
        let line = one_error_line(&out, &[]);
        assert!(line.contains("t2"), "the error does not name t2: {line}");
        assert!(!out_dir.join("manifest.json").exists());
    }
    wait_no_mysnap_sessions(&s, Duration::from_secs(10));
    assert_eq!(
        s.query_value("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'd' AND TABLE_NAME = 't2'"),
        "0"
    );
}

#[test]
fn lock_path_records_lock_time_and_keeps_myisam_consistent() {
    let s = TestServer::start();
    fill_db(&s, "d", &[("t", 1000)], Some("legacy_myisam"));
    let dir = tmp();

    let (out, m) = dump_ok(&s, &dir.path().join("locked"), &[]);
    let c = &m["consistency"];
    assert_eq!(c["method"], "backup-stage-block-commit", "{c}");
    assert_eq!(c["nontransactional_consistent"], true, "{c}");
    let ms = c["global_lock_ms"]
        .as_f64()
        .expect("global_lock_ms is a number");
    assert!(ms > 0.0 && ms < 5000.0, "global_lock_ms = {ms}");
    assert!(
        c["nontransactional_tables"]
            .to_string()
            .contains("legacy_myisam"),
        "{c}"
    );
    assert!(!stdout(&out).contains("warning"), "{}", stdout(&out));

    let (out, m) = dump_ok(
        &s,
        &dir.path().join("unlocked"),
        &["--no-lock-nontransactional", "--lock-free"],
    );
    let c = &m["consistency"];
    assert_eq!(c["method"], "mariadb-consistent-snapshot", "{c}");
    assert_eq!(c["global_lock_ms"].as_f64(), Some(0.0), "{c}");
    assert_eq!(c["nontransactional_consistent"], false, "{c}");
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.contains("warning") && l.contains("legacy_myisam")),
        "no warning naming the MyISAM table:\n{text}"
    );
    // Equal positions do not prove one snapshot on MariaDB 10.11: the dump says so, in
    // its output and in its manifest.
    assert!(
        text.contains("this dump may not be one snapshot"),
        "no caveat for the lock-free method:\n{text}"
    );
    assert!(
        c["notes"].to_string().contains("may not be one snapshot"),
        "{c}"
    );
}

#[test]
fn dump_without_binlog_says_point_in_time_is_impossible() {
    let s = TestServer::start_with_options(ServerOptions {
        binlog: false,
        extra_args: Vec::new(),
    });
    fill_db(&s, "d", &[("t", 100)], None);
    let dir = tmp();
    let (out, m) = dump_ok(&s, &dir.path().join("out"), &[]);
    for field in ["file", "position", "gtid"] {
        assert_eq!(
            m["binlog"].get(field),
            Some(&Value::Null),
            "{}",
            m["binlog"]
        );
    }
    assert_eq!(
        m["point_in_time"]["possible"], false,
        "{}",
        m["point_in_time"]
    );
    let text = stdout(&out);
    assert!(
        text.contains("point-in-time restore") && text.contains("impossible"),
        "stdout does not say point-in-time restore is impossible:\n{text}"
    );
}

#[test]
fn dump_with_binlog_records_the_snapshot_coordinates() {
    let s = TestServer::start();
    fill_db(&s, "d", &[("t", 100)], None);
    let status_before = s.sql("SHOW MASTER STATUS");
    let dir = tmp();
    let (out, m) = dump_ok(&s, &dir.path().join("out"), &[]);
    assert_eq!(
        s.sql("SHOW MASTER STATUS"),
        status_before,
        "the dump wrote to the binlog"
    );
    let b = &m["binlog"];
    let file = b["file"].as_str().expect("binlog.file");
    let pos = b["position"].as_u64().expect("binlog.position");
    let gtid = b["gtid"].as_str().expect("binlog.gtid");
    assert_eq!(m["point_in_time"]["possible"], true);
    let size: u64 = s
        .sql("SHOW BINARY LOGS")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{file}\t")))
        .unwrap_or_else(|| panic!("{file} is not in SHOW BINARY LOGS"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        pos <= size,
        "position {pos} beyond the size {size} of {file}"
    );
    // Nothing was written since the dump: its snapshot is the current end of the binlog.
    let master: Vec<&str> = status_before.trim_end().split('\t').collect();
    assert_eq!((file, pos.to_string().as_str()), (master[0], master[1]));
    assert_eq!(gtid, s.query_value("SELECT @@gtid_binlog_pos"));
    assert!(
        stdout(&out).contains(&format!("{file}:{pos}")),
        "{}",
        stdout(&out)
    );
}
