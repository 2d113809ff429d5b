//! Restore options operators expect: --rename, --include/--exclude, --dry-run,
//! --progress=json and bars on a terminal, the INSERT fallback, a load retried after a
//! lock wait timeout, and bad combinations refused before any connection is opened.

use crate::support;

use std::path::{Path, PathBuf};

use support::{
    assert_same_data, dump_args, fixture, free_port, login_args, restore_args, restore_args_with,
    run_mysnap, run_mysnap_ok, stderr, TestServer,
};

fn shop_dump(dir: &Path) -> (TestServer, PathBuf) {
    let source = TestServer::start();
    source.sql_file(&fixture("sample.sql"));
    let out = dir.join("dump");
    run_mysnap_ok(&dump_args(
        &source,
        &["shop"],
        &out,
        &["--chunk-size", "256K", "-q"],
    ));
    (source, out)
}

fn restore(target_args: Vec<String>, dump: &Path, extra: &[&str]) -> std::process::Output {
    run_mysnap(&restore_args_with(&target_args, dump, extra))
}

#[test]
fn rename_restores_a_database_under_another_name_with_its_objects_following() {
    let dir = tempfile::tempdir().unwrap();
    let (source, dump) = shop_dump(dir.path());
    let target = TestServer::start();
    let o = restore(target.conn_args(), &dump, &["--rename", "shop=shop_copy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        target.table_names("shop").is_empty(),
        "nothing goes to the old name"
    );
    // The copy holds exactly what the source holds, once the name is swapped.
    let src = String::from_utf8(source.canonical_dump(&["shop"])).unwrap();
    let dst = String::from_utf8(target.canonical_dump(&["shop_copy"])).unwrap();
    let manifest = std::fs::read_to_string(dump.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("`shop`.`"),
        "the dump's definitions have qualified references to follow"
    );
    assert_eq!(src.replace("`shop`", "`shop_copy`"), dst);
}

#[test]
fn include_and_exclude_choose_tables_and_their_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let (source, dump) = shop_dump(dir.path());
    let all = source.table_names("shop");
    let target = TestServer::start();
    let o = restore(
        target.conn_args(),
        &dump,
        &["--include", "shop.order*", "--exclude", "shop.order_items"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let expected: Vec<String> = all
        .iter()
        .filter(|t| t.starts_with("order") && *t != "order_items")
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(target.table_names("shop"), expected);
    let rows = |s: &TestServer| s.query_value("SELECT COUNT(*) FROM shop.orders");
    assert_eq!(rows(&source), rows(&target));
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_source, dump) = shop_dump(dir.path());
    let target = TestServer::start();
    let o = restore(target.conn_args(), &dump, &["--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("database shop:") && out.contains("predicted"),
        "{out}"
    );
    assert!(out.contains("MiB/s"), "{out}");
    assert!(
        target.try_sql("USE shop").is_err(),
        "a dry run created the database"
    );
}

#[test]
fn json_progress_lines_count_bytes_up_to_the_total_and_never_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let (source, dump) = shop_dump(dir.path());
    let target = TestServer::start();
    let o = restore(target.conn_args(), &dump, &["--progress", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v.get("done_bytes").is_some())
        .collect();
    let last = lines.last().expect("at least the closing progress line");
    for l in &lines {
        assert!(l["done_bytes"].as_u64() <= l["total_bytes"].as_u64(), "{l}");
    }
    assert_eq!(last["done_bytes"], last["total_bytes"], "{last}");
    assert_eq!(last["tables_done"], last["tables_total"], "{last}");
    assert_same_data(&source, &target, &["shop"]);
}

#[test]
fn a_terminal_gets_a_bar_with_bytes_and_an_eta() {
    let dir = tempfile::tempdir().unwrap();
    let (source, dump) = shop_dump(dir.path());
    let target = TestServer::start();
    // `script` (util-linux) runs the restore on a pseudo-terminal and copies what it drew.
    let quoted: Vec<String> = std::iter::once(support::mysnap_bin().display().to_string())
        .chain(restore_args_with(
            &target.conn_args(),
            &dump,
            &["--progress", "bar"],
        ))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let o = support::isolate(&mut std::process::Command::new("script"))
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .output()
        .expect("running script");
    let drawn = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{drawn}");
    assert!(
        drawn.contains("restore") && drawn.contains("ETA") && drawn.contains("tables"),
        "no bar drawn:\n{drawn}"
    );
    assert_same_data(&source, &target, &["shop"]);
}

#[test]
fn a_target_refusing_local_infile_is_loaded_with_inserts_identically() {
    let dir = tempfile::tempdir().unwrap();
    let source = TestServer::start();
    source.sql_file(&fixture("fidelity.sql"));
    let dbs = ["fidelity", "fidelity_objects", "odd db-ünï"];
    let out = dir.path().join("dump");
    run_mysnap_ok(&dump_args(&source, &dbs, &out, &["-q"]));
    let target = TestServer::start_with(&["--local-infile=0"]);
    let o = restore(target.conn_args(), &out, &["--progress", "lines"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("local_infile=OFF"),
        "the fallback is announced: {}",
        stderr(&o)
    );
    assert_same_data(&source, &target, &dbs);
}

#[test]
fn bad_option_combinations_fail_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let (_source, dump) = shop_dump(dir.path());
    // Nothing listens here: an error about the options proves no connection came first.
    let nowhere = login_args(free_port(), "root");
    let cases: &[(&[&str], &str)] = &[
        (&["--rename", "shop"], "SRC=DST"),
        (&["--rename", "nosuch=x"], "no database 'nosuch'"),
        (
            &["--rename", "a=b", "--rename", "c=b"],
            "two databases to 'b'",
        ),
        (&["--include", "nosuch.*"], "leave nothing"),
        (&["--include", "orders"], "db.name pattern"),
        (&["--resume", "--existing", "drop"], "--resume"),
        (&["--existing", "sometimes"], "'sometimes' for '--existing"),
        (&["--threads", "0"], "--threads"),
        (&["--progress", "loud"], "'loud' for '--progress"),
    ];
    for (extra, needle) in cases {
        let o = restore(nowhere.clone(), &dump, extra);
        let err = stderr(&o);
        assert!(!o.status.success(), "{extra:?} succeeded");
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
        assert!(
            err.starts_with("mysnap: error:") && err.contains(needle),
            "{extra:?}: {err}"
        );
        assert!(
            !err.contains("cannot connect"),
            "{extra:?} connected first: {err}"
        );
    }
}

#[test]
fn a_load_blocked_past_the_lock_wait_timeout_is_rolled_back_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let source = TestServer::start();
    source.sql(
        "CREATE DATABASE r; USE r; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, 'v' FROM seq_1_to_1000;",
    );
    let out = dir.path().join("dump");
    run_mysnap_ok(&dump_args(&source, &["r"], &out, &["-q"]));
    // The target already has the table (empty); another session holds the lock on a row
    // the dump loads, for longer than the lock wait timeout, then gives it up.
    let target = TestServer::start_with(&["--innodb-lock-wait-timeout=1"]);
    target.sql("CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY, v VARCHAR(20));");
    let blocker = target
        .client("mariadb")
        .args([
            "-e",
            "START TRANSACTION; INSERT INTO r.t VALUES (500, 'x'); DO SLEEP(2.5); ROLLBACK;",
        ])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !target
        .processlist()
        .iter()
        .any(|r| r.contains("SLEEP(2.5)"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the blocking session did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = run_mysnap(&restore_args(
        &target,
        &out,
        &["--existing", "append", "--threads", "1"],
    ));
    assert!(
        o.status.success(),
        "the blocked load was not retried: {}",
        stderr(&o)
    );
    let _ = blocker.wait_with_output();
    assert_same_data(&source, &target, &["r"]);
}

#[test]
fn a_restore_checks_what_it_will_need_before_it_writes_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (source, dump) = shop_dump(dir.path());
    source.sql(
        "SET GLOBAL log_bin_trust_function_creators = 1;
         CREATE FUNCTION shop.f_unsafe() RETURNS INT RETURN 1;
         CREATE FUNCTION shop.f_safe() RETURNS INT DETERMINISTIC RETURN 2;",
    );
    let with_functions = dir.path().join("with-functions");
    run_mysnap_ok(&dump_args(&source, &["shop"], &with_functions, &["-q"]));
    let target = TestServer::start();
    // An account that may create and load everything in shop, but not as another definer,
    // nor switch the binary log off, nor create functions on a server writing a binlog.
    target.sql(
        "CREATE USER 'loader'@'%' IDENTIFIED BY 'ld_pw_1';
         GRANT ALL ON shop.* TO 'loader'@'%'; GRANT ALL ON mysnap.* TO 'loader'@'%';",
    );
    let mut loader = login_args(target.port(), "loader");
    loader.push("-pld_pw_1".into());
    let untouched = |what: &str| {
        assert!(
            target.table_names("shop").is_empty(),
            "{what}: the target was written"
        );
    };
    let cases: &[(&Path, &[&str], &[&str])] = &[
        (
            &dump,
            &[],
            &[
                "SET USER",
                "DEFINER is `root`@`localhost`",
                "--definer current",
            ],
        ),
        (
            &dump,
            &["--definer", "current", "--skip-binlog"],
            &["BINLOG ADMIN", "--skip-binlog"],
        ),
        (
            &with_functions,
            &["--definer", "current"],
            &["log_bin_trust_function_creators", "SUPER"],
        ),
    ];
    for (d, extra, needles) in cases {
        let o = restore(loader.clone(), d, extra);
        support::one_error_line(&o, needles);
        untouched(&format!("{extra:?}"));
        // --dry-run says the same, without writing either.
        let mut dry = extra.to_vec();
        dry.push("--dry-run");
        support::one_error_line(&restore(loader.clone(), d, &dry), needles);
        untouched(&format!("{dry:?}"));
    }
    // With the setting, only the function the binlog cannot take is named.
    target
        .sql("SET GLOBAL log_bin_trust_function_creators = 0; GRANT SUPER ON *.* TO 'loader'@'%';");
    let o = restore(loader.clone(), &with_functions, &["--definer", "current"]);
    support::one_error_line(&o, &["`shop`.`f_unsafe`", "DETERMINISTIC"]);
    untouched("f_unsafe");
    target.sql("SET GLOBAL log_bin_trust_function_creators = 1;");
    let o = restore(
        loader.clone(),
        &with_functions,
        &["--definer", "current", "-q"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    target.sql("SET GLOBAL log_bin_trust_function_creators = 0;");
    // A database the account cannot create in is named with the privilege.
    let o = restore(
        loader,
        &dump,
        &["--definer", "current", "--rename", "shop=elsewhere"],
    );
    support::one_error_line(&o, &["CREATE on `elsewhere`"]);
}

#[test]
fn dry_run_fails_where_the_real_restore_would() {
    let dir = tempfile::tempdir().unwrap();
    let (_source, dump) = shop_dump(dir.path());
    let target = TestServer::start();
    let ok = restore(target.conn_args(), &dump, &["--dry-run"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(support::stdout(&ok).contains("every check passed"));
    // Unreachable target.
    let nowhere = login_args(free_port(), "root");
    let o = restore(nowhere, &dump, &["--dry-run", "--connect-timeout", "3"]);
    support::one_error_line(&o, &["cannot connect"]);
    // Every table already there.
    run_mysnap_ok(&restore_args(&target, &dump, &["-q"]));
    let o = restore(target.conn_args(), &dump, &["--dry-run"]);
    support::one_error_line(&o, &["already exists"]);
    // A damaged data file.
    let file = std::fs::read_dir(dump.join("data"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let o = restore(
        target.conn_args(),
        &dump,
        &["--dry-run", "--existing", "drop"],
    );
    support::one_error_line(&o, &["sha256"]);
}
