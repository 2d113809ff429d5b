//! No lock survives a dump, failed or not; DDL during a dump waits for it or fails it
//! clearly; the manifest tells how the snapshot was taken and what it can be used for.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{mysnap_bin, run_mysnap_ok, ServerOptions, TestServer};
use tempfile::TempDir;

/// Creates `db` with the given InnoDB tables (`(name, rows)`, ~210 raw bytes a row) and,
/// if `myisam` is set, a MyISAM table of that name with 100 rows. Analyzed, so that the
/// dump's size estimates (and so its chunking) are right.
fn fill(server: &TestServer, db: &str, tables: &[(&str, usize)], myisam: Option<&str>) {
    let mut sql = format!("CREATE DATABASE {db}; USE {db};\n");
    let mut all: Vec<(&str, usize, &str)> = tables.iter().map(|&(t, n)| (t, n, "InnoDB")).collect();
    all.extend(myisam.map(|t| (t, 100, "MyISAM")));
    for (t, rows, engine) in all {
        sql += &format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(255) NOT NULL) ENGINE={engine};
             INSERT INTO {t} SELECT seq, CONCAT(seq, ':', REPEAT(CHAR(65 + seq % 26), 200)) FROM seq_1_to_{rows};
             ANALYZE TABLE {t};\n"
        );
    }
    server.sql(&sql);
}

fn dump_args(server: &TestServer, db: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["dump".to_string()];
    v.extend(server.conn_args());
    v.extend(["--database".into(), db.into(), "--output".into()]);
    v.push(out.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// `mysnap show DIR --json`, parsed.
fn show_json(dir: &Path) -> Value {
    let out = run_mysnap_ok(&["show", dir.to_str().unwrap(), "--json"]);
    serde_json::from_slice(&out.stdout).expect("show --json prints JSON")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a failed run with exactly one `mysnap: error:` line on stderr; returns it.
fn one_error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the dump should have failed:\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be one line, got:\n{stderr}");
    eprintln!("stderr: {}", lines[0]);
    assert!(lines[0].starts_with("mysnap: error:"), "{}", lines[0]);
    lines[0].to_string()
}

/// mysnap's sessions: it connects over TCP, the harness over the socket.
fn mysnap_sessions(server: &TestServer) -> Vec<String> {
    server
        .sql("SELECT ID, COMMAND, STATE, INFO FROM information_schema.PROCESSLIST WHERE HOST LIKE '127.0.0.1:%'")
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_no_mysnap_sessions(server: &TestServer, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = mysnap_sessions(server);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mysnap sessions still open after {within:?}: {left:?}"
        );
        sleep(Duration::from_millis(50));
    }
}

/// Everything in the processlist, with states, for failure messages.
fn processlist_states(server: &TestServer) -> String {
    server.sql(
        "SELECT ID, HOST, COMMAND, STATE, TIME, LEFT(INFO, 100) FROM information_schema.PROCESSLIST ORDER BY ID",
    )
}

/// Polls the processlist (inside the server, in one-second rounds, so that short SELECTs
/// are not missed) until a session runs a dump SELECT; returns its id. Panics if the dump
/// exits first or after 30 s.
fn wait_for_dump_select(server: &TestServer, dump: &mut Running) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let id = server.query_value(
            "DELIMITER //
             BEGIN NOT ATOMIC
               DECLARE victim BIGINT DEFAULT NULL;
               DECLARE deadline DATETIME(6) DEFAULT NOW(6) + INTERVAL 1 SECOND;
               WHILE victim IS NULL AND NOW(6) < deadline DO
                 SET victim = (SELECT ID FROM information_schema.PROCESSLIST
                               WHERE ID <> CONNECTION_ID() AND INFO LIKE '%mysnap dump%' LIMIT 1);
               END WHILE;
               SELECT victim;
             END //",
        );
        if let Ok(id) = id.parse() {
            return id;
        }
        assert!(
            dump.is_running(),
            "the dump ended before any SELECT was seen"
        );
        assert!(Instant::now() < deadline, "no dump SELECT seen within 30 s");
    }
}

/// A running mysnap child, killed if the test panics.
struct Running(Option<Child>);

impl Running {
    fn spawn(args: &[String]) -> Running {
        let child = Command::new(mysnap_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mysnap");
        Running(Some(child))
    }

    fn is_running(&mut self) -> bool {
        self.0.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Waits for the exit, at most `limit`; `on_timeout` explains a hang.
    fn finish(mut self, limit: Duration, on_timeout: impl Fn() -> String) -> Output {
        let deadline = Instant::now() + limit;
        while self.is_running() {
            assert!(
                Instant::now() < deadline,
                "mysnap still running after {limit:?}:\n{}",
                on_timeout()
            );
            sleep(Duration::from_millis(20));
        }
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn tmp() -> TempDir {
    tempfile::Builder::new()
        .prefix("mysnap-locks-")
        .tempdir()
        .unwrap()
}

#[test]
fn killed_session_fails_the_dump_and_leaves_no_lock() {
    let s = TestServer::start();
    let tables = [("t1", 3000), ("t2", 2500), ("t3", 2000), ("t4", 2500)]; // ~2 MB raw
    fill(&s, "d", &tables, Some("legacy"));
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let mut dump = Running::spawn(&dump_args(
        &s,
        "d",
        &out_dir,
        &[
            "--threads",
            "2",
            "--max-rate",
            "300K",
            "--chunk-size",
            "64K",
        ],
    ));
    let victim = wait_for_dump_select(&s, &mut dump);
    s.kill_connection(victim).expect("KILL the dump session");
    let out = dump.finish(Duration::from_secs(30), || processlist_states(&s));
    let line = one_error_line(&out);
    assert_eq!(out.status.code(), Some(1), "{line}");
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
    fill(&s, "d", &tables, None);
    let t2_rows: u64 = s.query_value("SELECT COUNT(*) FROM d.t2").parse().unwrap();
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let mut dump = Running::spawn(&dump_args(
        &s,
        "d",
        &out_dir,
        &["--max-rate", "300K", "--chunk-size", "64K"],
    ));
    wait_for_dump_select(&s, &mut dump);

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
        let line = one_error_line(&out);
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
    fill(&s, "d", &[("t", 1000)], Some("legacy_myisam"));
    let dir = tmp();

    let locked = dir.path().join("locked");
    let out = run_mysnap_ok(&dump_args(&s, "d", &locked, &[]));
    let m = show_json(&locked);
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

    let unlocked = dir.path().join("unlocked");
    let out = run_mysnap_ok(&dump_args(
        &s,
        "d",
        &unlocked,
        &["--no-lock-nontransactional"],
    ));
    let m = show_json(&unlocked);
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
}

#[test]
fn dump_without_binlog_says_point_in_time_is_impossible() {
    let s = TestServer::start_with_options(ServerOptions {
        binlog: false,
        extra_args: Vec::new(),
    });
    fill(&s, "d", &[("t", 100)], None);
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let out = run_mysnap_ok(&dump_args(&s, "d", &out_dir, &[]));
    let m = show_json(&out_dir);
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
    fill(&s, "d", &[("t", 100)], None);
    let status_before = s.sql("SHOW MASTER STATUS");
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let out = run_mysnap_ok(&dump_args(&s, "d", &out_dir, &[]));
    assert_eq!(
        s.sql("SHOW MASTER STATUS"),
        status_before,
        "the dump wrote to the binlog"
    );
    let m = show_json(&out_dir);
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
