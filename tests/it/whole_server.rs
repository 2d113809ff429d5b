//! The whole server as a DBA moves it: every database without naming them, the accounts
//! with their grants, table filters on the dump, the mysqldump habit `-B a b`, and the
//! restore options that go with a whole server (`--users`, `--definer current`,
//! `--existing=drop-database`).

use crate::support;

use support::{
    dump_args_with, fill_db, one_error_line, restore_args, run_mysnap, run_mysnap_ok, show_json,
    stdout, tempdir, TestServer,
};

/// Accounts of every kind: a role granted to a role, a user with a default role, column
/// grants and resource limits; one with REQUIRE SSL, a password expiry and a lock.
const ACCOUNTS: &str = "
    CREATE ROLE reader; CREATE ROLE writer;
    GRANT SELECT ON a.* TO reader; GRANT INSERT, UPDATE ON a.t1 TO writer; GRANT reader TO writer;
    CREATE USER 'app'@'%' IDENTIFIED BY 'app_pw_1' WITH MAX_QUERIES_PER_HOUR 100 MAX_USER_CONNECTIONS 5;
    GRANT writer TO 'app'@'%'; SET DEFAULT ROLE writer FOR 'app'@'%';
    GRANT SELECT (id), UPDATE (v) ON a.t2 TO 'app'@'%';
    CREATE USER 'ro'@'10.0.0.%' IDENTIFIED BY 'ro_pw_2' REQUIRE SSL PASSWORD EXPIRE INTERVAL 30 DAY ACCOUNT LOCK;
    GRANT SELECT ON *.* TO 'ro'@'10.0.0.%' WITH GRANT OPTION;
    GRANT PROCESS, RELOAD ON *.* TO 'app'@'%';";

/// The dumped accounts, as the server shows them: `SHOW CREATE USER` (roles have none)
/// and the sorted lines of `SHOW GRANTS`, for comparison between two servers.
fn account_state(server: &TestServer) -> Vec<String> {
    let mut out = Vec::new();
    for acct in ["'app'@'%'", "'ro'@'10.0.0.%'"] {
        out.push(server.sql(&format!("SHOW CREATE USER {acct}")));
    }
    for acct in ["'app'@'%'", "'ro'@'10.0.0.%'", "reader", "writer"] {
        let mut lines: Vec<String> = server
            .sql(&format!("SHOW GRANTS FOR {acct}"))
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        out.push(lines.join("\n"));
    }
    out.push(server.sql("SELECT User, Host, is_role, default_role FROM mysql.user WHERE User IN ('app', 'ro', 'reader', 'writer') ORDER BY User, Host"));
    out
}

fn source_with_accounts() -> TestServer {
    let s = TestServer::start();
    fill_db(&s, "a", &[("t1", 50), ("t2", 20), ("log_1", 10)], None);
    fill_db(&s, "b", &[("t1", 30)], None);
    s.sql(ACCOUNTS);
    s
}

#[test]
fn a_whole_server_dump_brings_every_database_and_the_accounts_back() {
    let source = source_with_accounts();
    let target = TestServer::start();
    let root_grants = target.sql("SHOW GRANTS");
    let dir = tempdir("mysnap-whole-");
    let out = dir.path().join("dump");
    // No --database: the whole server.
    let mut args = vec!["dump".to_string()];
    args.extend(source.conn_args());
    args.extend(["--output".into(), out.display().to_string(), "-q".into()]);
    run_mysnap_ok(&args);
    let m = show_json(&out);
    let dbs: Vec<&str> = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(dbs, ["a", "b"], "the server's own databases are not dumped");
    assert_eq!(m["options"]["all_databases"], true);
    assert!(!m["accounts"].as_array().unwrap().is_empty());

    // Without --users the accounts stay in the dump.
    run_mysnap_ok(&restore_args(&target, &out, &["-q", "--include", "b.*"]));
    assert_eq!(
        target.query_value("SELECT COUNT(*) FROM mysql.user WHERE User = 'app'"),
        "0"
    );

    let restored = run_mysnap_ok(&restore_args(
        &target,
        &out,
        &["--users", "--include", "a.*", "--progress", "none"],
    ));
    let said = stdout(&restored);
    assert!(said.contains("accounts: 4 created"), "{said}");
    assert!(
        said.contains("skipped"),
        "root's account is skipped: {said}"
    );
    support::assert_same_data(&source, &target, &["a", "b"]);
    assert_eq!(account_state(&source), account_state(&target));
    // The account the restore ran as is as it was (no role was left granted to it).
    assert_eq!(target.sql("SHOW GRANTS"), root_grants);
    // And the restored user logs in with its password, with its default role active.
    let login = std::process::Command::new("mariadb")
        .env_remove("MYSQL_PWD")
        .args([
            "--no-defaults",
            "-h127.0.0.1",
            &format!("-P{}", target.port()),
            "-uapp",
            "-papp_pw_1",
            "--batch",
            "--skip-column-names",
            "-e",
            "SELECT CURRENT_ROLE(), COUNT(*) FROM a.t1",
        ])
        .output()
        .unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&login.stdout), "writer\t50\n");
}

#[test]
fn dump_selection_takes_the_mysqldump_forms_and_table_globs() {
    let source = TestServer::start();
    fill_db(
        &source,
        "a",
        &[("t1", 10), ("log_1", 10), ("log_2", 10)],
        None,
    );
    fill_db(&source, "b", &[("t1", 10)], None);
    fill_db(&source, "c", &[("t1", 10)], None);
    let dir = tempdir("mysnap-sel-");
    let out = dir.path().join("dump");
    let conn = source.conn_args();
    let mut args = vec!["dump".to_string()];
    args.extend(conn.clone());
    args.extend(
        ["-B", "a", "b", "--exclude", "a.log_*", "-o"]
            .iter()
            .map(|s| s.to_string()),
    );
    args.extend([out.display().to_string(), "-q".into()]);
    run_mysnap_ok(&args);
    let m = show_json(&out);
    let names: Vec<String> = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            let db = d["name"].as_str().unwrap().to_string();
            d["tables"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| format!("{db}.{}", t["name"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(names, ["a.t1", "b.t1"]);
    assert!(
        m.get("accounts").is_none(),
        "named databases dump no accounts"
    );
    // -A and -B together make no sense.
    let both = run_mysnap(&dump_args_with(
        &conn,
        &["a"],
        &dir.path().join("x"),
        &["-A"],
    ));
    assert_eq!(both.status.code(), Some(2));
    one_error_line(&both, &["--all-databases"]);
}

#[test]
fn restore_options_for_a_whole_server() {
    let source = source_with_accounts();
    source.sql(
        "CREATE DEFINER='app'@'%' SQL SECURITY DEFINER VIEW a.v AS SELECT id FROM a.t2;
         CREATE VIEW a.v1 AS SELECT id FROM a.log_1;",
    );
    let target = TestServer::start();
    let dir = tempdir("mysnap-ropt-");
    let out = dir.path().join("dump");
    run_mysnap_ok(&dump_args_with(
        &source.conn_args(),
        &["a"],
        &out,
        &["--users", "-q"],
    ));

    // A view whose table the selection leaves out is named before anything runs.
    let left_out = run_mysnap(&restore_args(
        &target,
        &out,
        &["--exclude", "a.log_1", "--dry-run"],
    ));
    let said = support::stderr(&left_out);
    assert!(said.contains("view `a`.`v1` reads `a`.`log_1`"), "{said}");

    // --definer current: the view is the restoring account's, where app does not exist.
    run_mysnap_ok(&restore_args(
        &target,
        &out,
        &["--definer", "current", "-q"],
    ));
    let definer = target.query_value(
        "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'a' AND TABLE_NAME = 'v'",
    );
    assert!(definer.starts_with("root@"), "{definer}");

    // --existing=drop keeps what the dump lacks; drop-database makes the database the snapshot.
    target.sql("CREATE TABLE a.extra (id INT)");
    run_mysnap_ok(&restore_args(&target, &out, &["--existing", "drop", "-q"]));
    assert!(target.table_names("a").contains(&"extra".to_string()));
    // (--users: the view's definer exists on the target again.)
    run_mysnap_ok(&restore_args(
        &target,
        &out,
        &["--existing", "drop-database", "--users", "-q"],
    ));
    assert!(!target.table_names("a").contains(&"extra".to_string()));
    support::assert_same_data(&source, &target, &["a"]);
    let refused = run_mysnap(&restore_args(
        &target,
        &out,
        &["--existing", "drop-database", "--include", "a.t1"],
    ));
    one_error_line(&refused, &["drop-database", "--include"]);
}
