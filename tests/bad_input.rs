//! Bad input fails early and clearly: a non-zero exit, exactly one `mysnap: error:` line on
//! stderr naming what is wrong, and nothing half-written that looks complete (no manifest in
//! a dump's output; no table created by a failed restore).

mod support;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::{assert_same_data, mysnap_bin, run_mysnap, run_mysnap_ok, TestServer};
use tempfile::TempDir;

/// Asserts a failed run: non-zero exit, stderr exactly one `mysnap: error:` line containing
/// every one of `needles` (case-insensitive). Returns that line.
fn one_error_line(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "mysnap should have failed; stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be one line, got:\n{stderr}");
    let line = lines[0];
    eprintln!("stderr: {line}");
    assert!(line.starts_with("mysnap: error:"), "{line}");
    for n in needles {
        assert!(
            line.to_lowercase().contains(&n.to_lowercase()),
            "error line should mention {n:?}: {line}"
        );
    }
    line.to_string()
}

fn args(server: &TestServer, extra: &[&str]) -> Vec<String> {
    let mut v = server.conn_args();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn dump_args(server: &TestServer, db: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["dump".to_string()];
    v.extend(server.conn_args());
    v.extend(["--database".into(), db.into(), "--output".into()]);
    v.push(out.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn restore_args(server: &TestServer, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["restore".to_string(), dir.display().to_string()];
    v.extend(args(server, extra));
    v
}

/// Creates `db` with InnoDB tables `t1..=tN` of `rows` rows each (~210 raw bytes a row),
/// analyzed so that the dump's size estimates (and so its chunking) are right.
fn fill(server: &TestServer, db: &str, tables: usize, rows: usize) {
    let mut sql = format!("CREATE DATABASE {db}; USE {db};\n");
    for t in 1..=tables {
        sql += &format!(
            "CREATE TABLE {db}.t{t} (id INT PRIMARY KEY, v VARCHAR(255) NOT NULL) ENGINE=InnoDB;
             INSERT INTO {db}.t{t} SELECT seq, CONCAT(seq, ':', REPEAT(CHAR(65 + seq % 26), 200)) FROM seq_1_to_{rows};
             ANALYZE TABLE {db}.t{t};\n"
        );
    }
    server.sql(&sql);
}

fn db_exists(server: &TestServer, db: &str) -> bool {
    server.query_value(&format!(
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
    )) == "1"
}

fn tables_of(server: &TestServer, db: &str) -> Vec<String> {
    server
        .sql(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' ORDER BY 1"
        ))
        .lines()
        .map(str::to_string)
        .collect()
}

/// mysnap's sessions: it connects over TCP, the harness over the socket.
fn mysnap_sessions(server: &TestServer) -> Vec<String> {
    server
        .sql("SELECT ID, USER, COMMAND, INFO FROM information_schema.PROCESSLIST WHERE HOST LIKE '127.0.0.1:%'")
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
        dump.assert_running();
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

    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// Panics with the output if the child has already exited.
    fn assert_running(&mut self) {
        if self.0.as_mut().unwrap().try_wait().unwrap().is_some() {
            let out = self.0.take().unwrap().wait_with_output().unwrap();
            panic!(
                "mysnap exited early ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Waits for the exit, at most `limit`.
    fn finish(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let child = self.0.as_mut().unwrap();
        while child.try_wait().expect("try_wait").is_none() {
            assert!(
                Instant::now() < deadline,
                "mysnap still running after {limit:?}"
            );
            sleep(Duration::from_millis(20));
        }
        self.0
            .take()
            .unwrap()
            .wait_with_output()
            .expect("collect output")
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
        .prefix("mysnap-bad-")
        .tempdir()
        .unwrap()
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("data"))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").unwrap().uid() == 0
}

#[test]
fn wrong_password_is_access_denied_naming_the_user() {
    let s = TestServer::start();
    fill(&s, "d", 1, 10);
    s.sql("CREATE USER 'u'@'%' IDENTIFIED BY 'right'; GRANT ALL ON *.* TO 'u'@'%';");
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let a = [
        "dump",
        "-h",
        "127.0.0.1",
        "-P",
        &s.port().to_string(),
        "-u",
        "u",
        "-pwrong_Pw9",
        "--database",
        "d",
        "--output",
        out_dir.to_str().unwrap(),
    ];
    let line = one_error_line(&run_mysnap(&a), &["access denied"]);
    assert!(
        line.contains("'u'@") || line.contains(&format!("u@127.0.0.1:{}", s.port())),
        "the user is not named: {line}"
    );
    assert!(!line.contains("wrong_Pw9"), "the password leaks: {line}");
    assert!(!out_dir.join("manifest.json").exists());
    // The right password works, so the failure was the password.
    let mut ok = a.to_vec();
    ok[7] = "-pright";
    run_mysnap_ok(&ok);
}

#[test]
fn unreachable_host_names_host_and_port() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let p = port.to_string();
    let out = run_mysnap(&[
        "dump",
        "-h",
        "127.0.0.1",
        "-P",
        &p,
        "-u",
        "root",
        "--connect-timeout",
        "5",
        "--database",
        "d",
        "--output",
        out_dir.to_str().unwrap(),
    ]);
    one_error_line(&out, &[&format!("127.0.0.1:{port}")]);
    assert!(!out_dir.join("manifest.json").exists());
}

#[test]
fn unknown_database_is_named_and_leaves_no_manifest() {
    let s = TestServer::start();
    fill(&s, "d", 1, 10);
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let mut a = dump_args(&s, "d", &out_dir, &[]);
    a.extend(["--database".into(), "no_such_db".into()]);
    one_error_line(&run_mysnap(&a), &["no_such_db"]);
    assert!(!out_dir.join("manifest.json").exists());
}

#[test]
fn non_empty_output_directory_is_refused_and_untouched() {
    let s = TestServer::start();
    fill(&s, "d", 1, 10);
    let dir = tmp();
    let keep = dir.path().join("precious.txt");
    fs::write(&keep, b"do not touch").unwrap();
    let out = run_mysnap(&dump_args(&s, "d", dir.path(), &[]));
    one_error_line(&out, &[dir.path().to_str().unwrap()]);
    assert_eq!(fs::read(&keep).unwrap(), b"do not touch");
    let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the existing file may be there");
}

#[test]
fn unwritable_output_path_is_named() {
    let s = TestServer::start();
    fill(&s, "d", 1, 10);
    let dir = tmp();
    let file = dir.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let mut targets = vec![file.join("out")];
    if !is_root() {
        let ro = dir.path().join("readonly");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        targets.push(ro.join("out"));
    }
    for target in targets {
        let out = run_mysnap(&dump_args(&s, "d", &target, &[]));
        one_error_line(&out, &[target.to_str().unwrap()]);
        assert!(!target.join("manifest.json").exists());
    }
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

#[test]
fn flipped_bit_in_a_data_file_fails_restore_before_any_table_is_created() {
    let (src, dst) = (TestServer::start(), TestServer::start());
    fill(&src, "d", 3, 2000);
    let dir = tmp();
    let dump = dir.path().join("dump");
    run_mysnap_ok(&dump_args(&src, "d", &dump, &[]));
    let files = data_files(&dump);
    assert!(files.len() >= 3, "{files:?}");
    let victim = &files[files.len() / 2];
    let mut bytes = fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    fs::write(victim, &bytes).unwrap();

    let out = run_mysnap(&restore_args(&dst, &dump, &[]));
    let name = victim.file_name().unwrap().to_str().unwrap();
    let line = one_error_line(&out, &[name]);
    assert!(
        line.contains("sha256") || line.contains("size"),
        "should say the checksum or size differs: {line}"
    );
    assert!(!db_exists(&dst, "d"), "the restore touched the target");
}

#[test]
fn truncated_manifest_is_reported_damaged_by_show_and_restore() {
    let (src, dst) = (TestServer::start(), TestServer::start());
    fill(&src, "d", 2, 100);
    let dir = tmp();
    let dump = dir.path().join("dump");
    run_mysnap_ok(&dump_args(&src, "d", &dump, &[]));
    let manifest = dump.join("manifest.json");
    let text = fs::read(&manifest).unwrap();
    fs::write(&manifest, &text[..text.len() / 2]).unwrap();

    let path = manifest.to_str().unwrap();
    let show = run_mysnap(&["show", dump.to_str().unwrap(), "--json"]);
    one_error_line(&show, &[path, "damaged"]);
    assert!(show.stdout.is_empty(), "show printed something");
    let show_text = run_mysnap(&["show", dump.to_str().unwrap()]);
    one_error_line(&show_text, &[path, "damaged"]);
    let restore = run_mysnap(&restore_args(&dst, &dump, &[]));
    one_error_line(&restore, &[path, "damaged"]);
    assert!(!db_exists(&dst, "d"), "the restore touched the target");
}

#[test]
fn existing_table_on_target_fails_without_changes_until_existing_drop() {
    let (src, dst) = (TestServer::start(), TestServer::start());
    fill(&src, "d", 3, 500);
    let dir = tmp();
    let dump = dir.path().join("dump");
    run_mysnap_ok(&dump_args(&src, "d", &dump, &[]));
    dst.sql(
        "CREATE DATABASE d; CREATE TABLE d.t2 (id INT PRIMARY KEY, v VARCHAR(255) NOT NULL);
         INSERT INTO d.t2 VALUES (42, 'mine');",
    );

    let out = run_mysnap(&restore_args(&dst, &dump, &[]));
    one_error_line(&out, &["`d`.`t2`"]);
    assert_eq!(tables_of(&dst, "d"), ["t2"], "other tables were created");
    assert_eq!(dst.sql("SELECT id, v FROM d.t2"), "42\tmine\n");

    run_mysnap_ok(&restore_args(&dst, &dump, &["--existing=drop"]));
    assert_same_data(&src, &dst, &["d"]);
}

#[test]
fn password_on_the_command_line_is_hidden_from_the_process_list() {
    const SECRET: &str = "SECRET_pw_123";
    let s = TestServer::start();
    fill(&s, "d", 1, 5000); // ~1 MB raw
    s.sql(&format!(
        "CREATE USER 'snap'@'%' IDENTIFIED BY '{SECRET}'; GRANT ALL ON *.* TO 'snap'@'%';"
    ));
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let p = s.port().to_string();
    let pw = format!("-p{SECRET}");
    let a: Vec<String> = [
        "dump",
        "-h",
        "127.0.0.1",
        "-P",
        &p,
        "-u",
        "snap",
        &pw,
        "--database",
        "d",
        "--output",
        out_dir.to_str().unwrap(),
        "--max-rate",
        "100K",
        "--chunk-size",
        "64K",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut child = Running::spawn(&a);
    let cmdline_path = format!("/proc/{}/cmdline", child.pid());
    let deadline = Instant::now() + Duration::from_secs(30);
    let cmdline = loop {
        assert!(Instant::now() < deadline, "the dump never connected");
        child.assert_running();
        let connected = s
            .query_value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'snap'")
            != "0";
        let cmdline = fs::read(&cmdline_path).unwrap_or_default();
        if connected && !cmdline.is_empty() {
            break cmdline;
        }
        sleep(Duration::from_millis(20));
    };
    let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        shown.contains("--max-rate"),
        "not mysnap's cmdline: {shown}"
    );
    assert!(!shown.contains(SECRET), "the password is visible: {shown}");
    let out = child.finish(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out_dir.join("manifest.json").is_file());
}

#[test]
fn restore_of_a_dump_without_manifest_says_it_is_not_finished() {
    let dst = TestServer::start();
    let dir = tmp();
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let partial = dir.path().join("partial");
    fs::create_dir_all(partial.join("data")).unwrap();
    fs::write(partial.join("data/d.t1-0000.00000.0000.tsv.zst"), b"").unwrap();
    for d in [&empty, &partial] {
        let out = run_mysnap(&restore_args(&dst, d, &[]));
        one_error_line(&out, &[d.to_str().unwrap(), "not a finished"]);
    }
    assert!(!db_exists(&dst, "d"));
}

#[test]
fn sigint_during_a_dump_exits_130_leaving_no_manifest_and_no_session() {
    let s = TestServer::start();
    fill(&s, "d", 2, 2500); // ~1 MB raw
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let a = dump_args(
        &s,
        "d",
        &out_dir,
        &["--max-rate", "100K", "--chunk-size", "64K"],
    );
    let mut child = Running::spawn(&a);
    wait_for_dump_select(&s, &mut child);
    let status = Command::new("kill")
        .args(["-INT", &child.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.finish(Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    one_error_line(&out, &["interrupted"]);
    assert!(out_dir.is_dir(), "the dump had started writing");
    assert!(!out_dir.join("manifest.json").exists());
    wait_no_mysnap_sessions(&s, Duration::from_secs(10));
}
