//! Bad input fails early and clearly: a non-zero exit, exactly one `mysnap: error:` line on
//! stderr naming what is wrong, and nothing half-written that looks complete (no manifest in
//! a dump's output; no table created by a failed restore).

use crate::support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::{
    assert_same_data, dump_args, dump_args_with, fill_db, free_port, is_root, login_args,
    one_error_line, restore_args, run_mysnap, run_mysnap_ok, tempdir, wait_for_dump_select,
    wait_no_mysnap_sessions, Running, TestServer,
};
use tempfile::TempDir;

/// Creates `db` with InnoDB tables `t1..=tN` of `rows` rows each (~210 raw bytes a row),
/// analyzed so that the dump's size estimates (and so its chunking) are right.
fn fill(server: &TestServer, db: &str, tables: usize, rows: usize) {
    let names: Vec<String> = (1..=tables).map(|t| format!("t{t}")).collect();
    let tables: Vec<(&str, usize)> = names.iter().map(|t| (t.as_str(), rows)).collect();
    fill_db(server, db, &tables, None);
}

/// A server with a small database `d` (one table of 10 rows), and a temporary directory.
fn small_source() -> (TestServer, TempDir) {
    let s = TestServer::start();
    fill(&s, "d", 1, 10);
    (s, tmp())
}

/// A source with `d` (`tables` tables of `rows` rows) dumped into `DIR/dump`, and an empty
/// target: `(source, target, DIR, dump)`.
fn dumped(tables: usize, rows: usize) -> (TestServer, TestServer, TempDir, PathBuf) {
    let (src, dst) = (TestServer::start(), TestServer::start());
    fill(&src, "d", tables, rows);
    let dir = tmp();
    let dump = dir.path().join("dump");
    run_mysnap_ok(&dump_args(&src, &["d"], &dump, &[]));
    (src, dst, dir, dump)
}

/// `dump` of `d` into `out` as `user` with `-pPASSWORD` over TCP, then `extra`.
fn dump_as(
    server: &TestServer,
    user: &str,
    password: &str,
    out: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut login = login_args(server.port(), user);
    login.push(format!("-p{password}"));
    dump_args_with(&login, &["d"], out, extra)
}

/// Restores `dump` into `dst`, which must fail with one error line naming `needles`.
fn restore_error(dst: &TestServer, dump: &Path, needles: &[&str]) -> String {
    one_error_line(&run_mysnap(&restore_args(dst, dump, &[])), needles)
}

fn assert_untouched(dst: &TestServer) {
    let exists = dst
        .query_value("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'd'")
        == "1";
    assert!(!exists, "the restore touched the target");
}

/// Sends SIGINT to `child`, which must exit with status 130 within 15 s.
fn interrupt(child: Running) -> std::process::Output {
    let status = Command::new("kill")
        .args(["-INT", &child.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.finish(Duration::from_secs(15), String::new);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    out
}

/// A dump of `d` into `DIR/out` held to 100 KB/s, running: `(DIR, out, child)`.
fn slow_dump(s: &TestServer) -> (TempDir, PathBuf, Running) {
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let a = dump_args(
        s,
        &["d"],
        &out_dir,
        &["--max-rate", "100K", "--chunk-size", "64K"],
    );
    (dir, out_dir, Running::spawn(&a))
}

fn tmp() -> TempDir {
    tempdir("mysnap-bad-")
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("data"))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn wrong_password_is_access_denied_naming_the_user() {
    let (s, dir) = small_source();
    s.sql("CREATE USER 'u'@'%' IDENTIFIED BY 'right'; GRANT ALL ON *.* TO 'u'@'%';");
    let out_dir = dir.path().join("out");
    let a = dump_as(&s, "u", "wrong_Pw9", &out_dir, &[]);
    let line = one_error_line(&run_mysnap(&a), &["access denied"]);
    assert!(
        line.contains("'u'@") || line.contains(&format!("u@127.0.0.1:{}", s.port())),
        "the user is not named: {line}"
    );
    assert!(!line.contains("wrong_Pw9"), "the password leaks: {line}");
    assert!(!out_dir.join("manifest.json").exists());
    // The right password works, so the failure was the password.
    run_mysnap_ok(&dump_as(&s, "u", "right", &out_dir, &[]));
}

#[test]
fn unreachable_host_names_host_and_port() {
    let port = free_port();
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let out = run_mysnap(&dump_args_with(
        &login_args(port, "root"),
        &["d"],
        &out_dir,
        &["--connect-timeout", "5"],
    ));
    one_error_line(&out, &[&format!("127.0.0.1:{port}")]);
    assert!(!out_dir.join("manifest.json").exists());
}

#[test]
fn unknown_database_is_named_and_leaves_no_manifest() {
    let (s, dir) = small_source();
    let out_dir = dir.path().join("out");
    let a = dump_args(&s, &["d", "no_such_db"], &out_dir, &[]);
    one_error_line(&run_mysnap(&a), &["no_such_db"]);
    assert!(!out_dir.join("manifest.json").exists());
}

#[test]
fn non_empty_output_directory_is_refused_and_untouched() {
    let (s, dir) = small_source();
    let keep = dir.path().join("precious.txt");
    fs::write(&keep, b"do not touch").unwrap();
    let out = run_mysnap(&dump_args(&s, &["d"], dir.path(), &[]));
    one_error_line(&out, &[dir.path().to_str().unwrap()]);
    assert_eq!(fs::read(&keep).unwrap(), b"do not touch");
    let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the existing file may be there");
}

#[test]
fn unwritable_output_path_is_named() {
    let (s, dir) = small_source();
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
        let out = run_mysnap(&dump_args(&s, &["d"], &target, &[]));
        one_error_line(&out, &[target.to_str().unwrap()]);
        assert!(!target.join("manifest.json").exists());
    }
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

#[test]
fn flipped_bit_in_a_data_file_fails_restore_before_any_table_is_created() {
    let (_src, dst, _dir, dump) = dumped(3, 2000);
    let files = data_files(&dump);
    assert!(files.len() >= 3, "{files:?}");
    let victim = &files[files.len() / 2];
    let mut bytes = fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    fs::write(victim, &bytes).unwrap();

    let name = victim.file_name().unwrap().to_str().unwrap();
    let line = restore_error(&dst, &dump, &[name]);
    assert!(
        line.contains("sha256") || line.contains("size"),
        "should say the checksum or size differs: {line}"
    );
    assert_untouched(&dst);
}

#[test]
fn truncated_manifest_is_reported_damaged_by_show_and_restore() {
    let (_src, dst, _dir, dump) = dumped(2, 100);
    let manifest = dump.join("manifest.json");
    let text = fs::read(&manifest).unwrap();
    fs::write(&manifest, &text[..text.len() / 2]).unwrap();

    let path = manifest.to_str().unwrap();
    let show = run_mysnap(&["show", dump.to_str().unwrap(), "--json"]);
    one_error_line(&show, &[path, "damaged"]);
    assert!(show.stdout.is_empty(), "show printed something");
    let show_text = run_mysnap(&["show", dump.to_str().unwrap()]);
    one_error_line(&show_text, &[path, "damaged"]);
    restore_error(&dst, &dump, &[path, "damaged"]);
    assert_untouched(&dst);
}

#[test]
fn existing_table_on_target_fails_without_changes_until_existing_drop() {
    let (src, dst, _dir, dump) = dumped(3, 500);
    dst.sql(
        "CREATE DATABASE d; CREATE TABLE d.t2 (id INT PRIMARY KEY, v VARCHAR(255) NOT NULL);
         INSERT INTO d.t2 VALUES (42, 'mine');",
    );

    restore_error(&dst, &dump, &["`d`.`t2`"]);
    assert_eq!(dst.table_names("d"), ["t2"], "other tables were created");
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
    let a = dump_as(
        &s,
        "snap",
        SECRET,
        &out_dir,
        &["--max-rate", "100K", "--chunk-size", "64K"],
    );
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
    let out = child.finish(Duration::from_secs(60), String::new);
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
        restore_error(&dst, d, &[d.to_str().unwrap(), "not a finished"]);
    }
    assert_untouched(&dst);
}

#[test]
fn sigint_during_a_dump_exits_130_removing_its_output_and_leaving_no_session() {
    let s = TestServer::start();
    fill(&s, "d", 2, 2500); // ~1 MB raw
    let (_dir, out_dir, mut child) = slow_dump(&s);
    wait_for_dump_select(&s, &mut child);
    assert!(
        out_dir.join("data").is_dir(),
        "the dump had started writing"
    );
    let out = interrupt(child);
    one_error_line(&out, &["interrupted", "removed"]);
    // Nothing half-written is left to look like a dump, fill the disk or block a rerun.
    assert!(
        !out_dir.exists(),
        "the interrupted dump's output was left behind"
    );
    wait_no_mysnap_sessions(&s, Duration::from_secs(10));
}

#[test]
fn everything_a_dump_writes_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let (s, dir) = small_source();
    let out_dir = dir.path().join("out");
    let args = dump_args(&s, &["d"], &out_dir, &["-q"]);
    let status = support::isolate(&mut Command::new("sh"))
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(support::mysnap_bin())
        .args(&args)
        .status()
        .unwrap();
    assert!(status.success());
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out_dir), 0o700);
    assert_eq!(mode(&out_dir.join("data")), 0o700);
    assert_eq!(mode(&out_dir.join("manifest.json")), 0o600);
    let files = data_files(&out_dir);
    assert!(!files.is_empty());
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[test]
fn a_value_after_p_is_never_shown_in_an_error() {
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let o = out_dir.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["dump", "-p", "Secret_Value_1", "-B", "d", "-o", o],
        vec!["dump", "--password", "Secret_Value_1", "-B", "d", "-o", o],
        vec!["restore", "--password", "Secret_Value_1"],
        vec!["restore", o, "--password", "Secret_Value_1"],
        vec!["restore", "-p", "Secret_Value_1", o],
    ];
    for args in cases {
        let out = run_mysnap(&args);
        let line = one_error_line(&out, &[]);
        assert!(!line.contains("Secret_Value_1"), "{args:?}: {line}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn out_of_range_threads_fail_at_parse_time_in_one_line() {
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let o = out_dir.to_str().unwrap();
    for args in [
        vec!["dump", "-B", "d", "-o", o, "--threads", "100000"],
        vec!["dump", "-B", "d", "-o", o, "--threads", "0"],
        vec!["restore", o, "--threads", "100000"],
    ] {
        let out = run_mysnap(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        one_error_line(&out, &["--threads", "1 to 256"]);
    }
    assert!(!out_dir.exists());
}

#[test]
fn max_rate_never_stretches_the_global_lock() {
    let s = TestServer::start();
    // 2 MB of MyISAM rows, read under the lock; at 20 KB/s they would hold it 100 s.
    fill_db(&s, "d", &[("t1", 10)], None);
    s.sql(
        "USE d; CREATE TABLE m (id INT PRIMARY KEY, v VARCHAR(255) NOT NULL) ENGINE=MyISAM;
         INSERT INTO m SELECT seq, REPEAT('m', 200) FROM seq_1_to_10000;",
    );
    let dir = tmp();
    let out_dir = dir.path().join("out");
    run_mysnap_ok(&dump_args(
        &s,
        &["d"],
        &out_dir,
        &["--max-rate", "20K", "-q"],
    ));
    let m = support::show_json(&out_dir);
    let lock_ms = m["consistency"]["global_lock_ms"].as_f64().unwrap();
    assert!(lock_ms < 10_000.0, "the global lock was held {lock_ms} ms");
    assert_eq!(m["consistency"]["nontransactional_consistent"], true);
}

#[test]
fn a_lost_connection_is_said_as_such_naming_the_server_and_the_output_is_removed() {
    for kill_server in [false, true] {
        let mut s = TestServer::start();
        fill(&s, "d", 2, 2500); // ~1 MB raw
        let (_dir, out_dir, mut child) = slow_dump(&s);
        let id = wait_for_dump_select(&s, &mut child);
        if kill_server {
            s.kill9();
        } else {
            s.kill_connection(id).unwrap();
        }
        let out = child.finish(Duration::from_secs(30), String::new);
        let line = one_error_line(
            &out,
            &["connection", "lost", &format!("127.0.0.1:{}", s.port())],
        );
        assert!(!line.contains("bytes remaining"), "{line}");
        assert!(!out_dir.exists(), "the failed dump left its output");
    }
}

#[test]
fn ctrl_c_during_a_restore_says_how_to_resume() {
    let (src, dst, _dir, dump) = dumped(3, 20000);
    let mut child = Running::spawn(&restore_args(
        &dst,
        &dump,
        &["--threads", "1", "--progress", "none"],
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while dst
        .try_sql("SELECT COUNT(*) FROM mysnap.restore_journal WHERE item LIKE 'file:%'")
        .map(|v| v.trim() == "0")
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the restore loaded nothing");
        child.assert_running();
        sleep(Duration::from_millis(10));
    }
    let out = interrupt(child);
    one_error_line(&out, &["interrupted", "--resume"]);
    // The resumed run's summary counts every run's rows, and says what it loaded itself.
    let resumed = run_mysnap_ok(&restore_args(
        &dst,
        &dump,
        &["--resume", "--progress", "none"],
    ));
    let said = support::stdout(&resumed);
    assert!(
        said.contains("restored 3 tables, 60000 rows")
            && said.contains("loaded before the interruption"),
        "{said}"
    );
    assert_same_data(&src, &dst, &["d"]);
}

#[test]
fn a_restore_that_fails_the_same_way_on_every_resume_can_be_restarted() {
    let (src, dst, dir, _) = dumped(2, 100);
    src.sql("CREATE VIEW d.v AS SELECT id FROM d.t2");
    let dump = dir.path().join("with-view");
    run_mysnap_ok(&dump_args(&src, &["d"], &dump, &["-q"]));
    // The view names a table the selection leaves out: creating it fails after the data.
    let exclude = ["--exclude", "d.t2", "--progress", "none"];
    restore_error_with(&dst, &dump, &exclude, &["`d`.`v`"]);
    restore_error_with(&dst, &dump, &exclude, &["--resume", "--restart"]);
    restore_error_with(
        &dst,
        &dump,
        &[&exclude[..], &["--resume"]].concat(),
        &["`d`.`v`"],
    );
    restore_error_with(
        &dst,
        &dump,
        &["--resume", "--existing=drop"],
        &["--restart"],
    );
    // The way out: start over, replacing what the failed run created, without the view.
    let out = run_mysnap(&restore_args(
        &dst,
        &dump,
        &[
            "--restart",
            "--existing=drop",
            "--exclude",
            "d.t2",
            "--exclude",
            "d.v",
        ],
    ));
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(support::stderr(&out).contains("discarded the record of an interrupted restore"));
    assert_eq!(dst.table_names("d"), ["t1"]);
    assert!(
        dst.try_sql("SELECT 1 FROM mysnap.restore_journal").is_err(),
        "the discarded restore's record is left in the journal"
    );
}

#[test]
fn appending_rows_whose_keys_exist_says_so_and_restart_replaces_the_table() {
    let (src, dst, _dir, dump) = dumped(1, 100);
    dst.sql(
        "CREATE DATABASE d; CREATE TABLE d.t1 (id INT PRIMARY KEY, v VARCHAR(255) NOT NULL);
         INSERT INTO d.t1 VALUES (7, 'mine');",
    );
    let line = restore_error_with(
        &dst,
        &dump,
        &["--existing=append"],
        &["`d`.`t1`", "already exists"],
    );
    assert!(
        !line.contains("mine") && !line.contains("definition or settings"),
        "{line}"
    );
    run_mysnap_ok(&restore_args(
        &dst,
        &dump,
        &["--restart", "--existing=drop", "-q"],
    ));
    assert_same_data(&src, &dst, &["d"]);
}

/// Restores `dump` into `dst` with `extra`, which must fail with one line naming `needles`.
fn restore_error_with(dst: &TestServer, dump: &Path, extra: &[&str], needles: &[&str]) -> String {
    one_error_line(&run_mysnap(&restore_args(dst, dump, extra)), needles)
}

#[test]
fn verify_checks_a_dump_without_a_server_down_to_its_rows() {
    let (_src, _dst, _dir, dump) = dumped(2, 300);
    let ok = run_mysnap_ok(&["verify", dump.to_str().unwrap()]);
    assert!(
        support::stdout(&ok).contains("verified"),
        "{}",
        support::stdout(&ok)
    );
    // A file rewritten with one row less, its size and hash updated in the manifest: only
    // reading its rows shows it.
    let file = &data_files(&dump)[0];
    let text = zstd::decode_all(fs::read(file).unwrap().as_slice()).unwrap();
    let cut = text[..text.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let short = zstd::encode_all(&text[..cut], 1).unwrap();
    fs::write(file, &short).unwrap();
    let manifest_path = dump.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    let name = format!("data/{}", file.file_name().unwrap().to_str().unwrap());
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&short))
    };
    let mut delta = 0i64;
    for t in m["databases"][0]["tables"].as_array_mut().unwrap() {
        for f in t["files"].as_array_mut().unwrap() {
            if f["path"] == name.as_str() {
                delta = short.len() as i64 - f["stored_bytes"].as_i64().unwrap();
                f["stored_bytes"] = serde_json::json!(short.len());
                f["sha256"] = serde_json::json!(sha);
            }
        }
    }
    let stored = m["totals"]["stored_bytes"].as_i64().unwrap() + delta;
    m["totals"]["stored_bytes"] = serde_json::json!(stored);
    fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
    let o = run_mysnap(&["verify", dump.to_str().unwrap()]);
    one_error_line(&o, &[file.file_name().unwrap().to_str().unwrap(), "rows"]);
    // A flipped bit is named by its hash.
    let mut bytes = fs::read(file).unwrap();
    bytes[0] ^= 0x40;
    fs::write(file, bytes).unwrap();
    one_error_line(
        &run_mysnap(&["verify", dump.to_str().unwrap()]),
        &["sha256"],
    );
}

#[test]
fn dump_progress_follows_its_flag_and_a_finished_run_ends_at_100_percent() {
    let (s, dir) = small_source();
    let run = |name: &str, progress: &str| {
        let out = dir.path().join(name);
        run_mysnap(&dump_args(
            &s,
            &["d"],
            &out,
            &["--progress", progress, "--progress-interval", "0.05"],
        ))
    };
    let json = run("json", "json");
    assert!(json.status.success(), "{}", support::stderr(&json));
    let lines: Vec<serde_json::Value> = support::stderr(&json)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every progress line is JSON"))
        .collect();
    let last = lines
        .iter()
        .rev()
        .find(|l| l.get("done_bytes").is_some())
        .unwrap();
    assert_eq!(last["done_bytes"], last["total_bytes"], "{last}");
    let lines = run("lines", "lines");
    let text = support::stderr(&lines);
    let last = text.lines().rev().find(|l| l.starts_with("dump:")).unwrap();
    assert!(last.contains("(100%)"), "{last}");
    assert!(!text.contains("0.0 MiB"), "sizes in units that fit: {text}");
    let none = run("none", "none");
    assert!(
        !support::stderr(&none).contains("dump:"),
        "{}",
        support::stderr(&none)
    );
    let bad = run("bad", "bogus");
    assert_eq!(bad.status.code(), Some(2));
    one_error_line(&bad, &["bogus", "--progress"]);
    let summary = support::stdout(&none);
    assert!(
        summary.contains("dumped 1 database, 1 table, 10 rows"),
        "{summary}"
    );
}
