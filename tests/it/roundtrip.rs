//! Round trips compared with a tool-independent form: `mariadb-dump --hex-blob` of source
//! and target, `CHECKSUM TABLE` (bit-exact for floats) and database charsets.

use crate::support;

use std::path::Path;

use support::{
    assert_same_data, dump_args, fixture, restore_args, run_mysnap_ok, show_json, stderr,
    TestServer,
};

fn user_databases(server: &TestServer) -> Vec<String> {
    server
        .sql(
            "SELECT HEX(SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN \
             ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1",
        )
        .lines()
        // Hex, because the client's batch output escapes backslashes in names.
        .map(|h| String::from_utf8(hex::decode(h).unwrap()).unwrap())
        .collect()
}

fn dump(source: &TestServer, databases: &[impl AsRef<str>], out: &Path, extra: &[&str]) {
    run_mysnap_ok(&dump_args(source, databases, out, extra));
}

fn restore(target: &TestServer, dir: &Path, extra: &[&str]) {
    run_mysnap_ok(&restore_args(target, dir, extra));
}

/// Every row version of every system-versioned table, as `mariadb-dump --dump-history` prints it.
fn history(server: &TestServer) -> Vec<u8> {
    let tables = server.sql(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'fidelity' \
         AND TABLE_TYPE = 'SYSTEM VERSIONED' ORDER BY 1",
    );
    let tables: Vec<&str> = tables.lines().collect();
    assert!(
        !tables.is_empty(),
        "the fixture has system-versioned tables"
    );
    let out = server
        .client("mariadb-dump")
        .args([
            "--dump-history",
            "--hex-blob",
            "--skip-comments",
            "--skip-extended-insert",
            "--order-by-primary",
            "fidelity",
        ])
        .args(&tables)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("INSERT INTO"), "history dump has rows");
    out.stdout
}

#[test]
fn fidelity_fixture_round_trips_byte_identical() {
    let source = TestServer::start();
    let target = TestServer::start();
    source.sql_file(&fixture("fidelity.sql"));
    let dbs = user_databases(&source);
    assert!(dbs.len() >= 4, "fixture databases: {dbs:?}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    // Small files so that keyed tables are split into several ranges.
    dump(
        &source,
        &dbs,
        &out,
        &["--threads", "4", "--chunk-size", "64K"],
    );
    // --checksum: every table read back gives the digest the dump recorded.
    restore(&target, &out, &["--threads", "4", "--checksum"]);
    let names: Vec<&str> = dbs.iter().map(String::as_str).collect();
    assert_same_data(&source, &target, &names);
    assert_eq!(
        history(&source),
        history(&target),
        "system-versioned history differs"
    );

    let m = show_json(&out);
    let split = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["tables"].as_array().unwrap())
        .filter(|t| t["files"].as_array().unwrap().len() > 1)
        .count();
    assert!(split > 0, "no table was split into several files");

    // show: names with control characters escaped, columns lined up whatever the script.
    let shown = support::stdout(&run_mysnap_ok(&["show", out.to_str().unwrap()]));
    assert!(
        !shown.chars().any(|c| c.is_control() && c != '\n'),
        "{shown}"
    );
    assert!(
        shown.contains("line\\nbreak"),
        "a LF in a name is escaped: {shown}"
    );
    let engine_columns: std::collections::HashSet<usize> = shown
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(" InnoDB "))
        .map(|l| {
            unicode_width::UnicodeWidthStr::width(&l[..l.find(" InnoDB ").unwrap()])
                + l[l.find(" InnoDB ").unwrap()..].find('I').unwrap()
        })
        .collect();
    assert_eq!(engine_columns.len(), 1, "{shown}");

    // `show --sql` is the schema as a script the stock client loads: the same schema,
    // routines, views, triggers and events as the source's.
    let script = run_mysnap_ok(&["show", out.to_str().unwrap(), "--sql"]).stdout;
    let fresh = TestServer::start();
    let loaded = fresh
        .client("mariadb")
        .arg("--binary-mode")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&script)?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    assert_eq!(schema(&source, &names), schema(&fresh, &names));
}

/// `mariadb-dump --no-data` with routines, triggers and events, comments left out.
fn schema(server: &TestServer, dbs: &[&str]) -> String {
    let out = server
        .client("mariadb-dump")
        .args([
            "--no-data",
            "--routines",
            "--triggers",
            "--events",
            "--skip-comments",
            "--skip-dump-date",
            "--databases",
        ])
        .args(dbs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sample_schema_round_trips_with_every_codec() {
    let source = TestServer::start();
    source.sql_file(&fixture("sample.sql"));
    for codec in ["gzip", "none", "zstd"] {
        let target = TestServer::start();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("dump");
        dump(
            &source,
            &["shop"],
            &out,
            &[
                "--compress",
                codec,
                "--threads",
                "2",
                "--chunk-size",
                "256K",
            ],
        );
        let m = show_json(&out);
        assert_eq!(m["options"]["compression"], codec);
        for key in ["file", "position", "gtid"] {
            assert!(
                m["binlog"][key].is_string() || m["binlog"][key].is_u64(),
                "binlog.{key}: {}",
                m["binlog"]
            );
        }
        // One restore keeps indexes in place; the others add them after the data.
        let mut flags = vec!["--threads", "2"];
        if codec == "none" {
            flags.push("--keep-indexes");
        }
        restore(&target, &out, &flags);
        assert_same_data(&source, &target, &["shop"]);
    }
}

#[test]
fn tables_split_on_every_kind_of_key_lose_and_duplicate_no_row() {
    let source = TestServer::start();
    let target = TestServer::start();
    source.sql(
        "CREATE DATABASE k; USE k;
         CREATE TABLE u64 (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(40));
         INSERT INTO u64 SELECT seq * 3, REPEAT('u', 30) FROM seq_1_to_6000;
         INSERT INTO u64 VALUES (0, 'min'), (18446744073709551615, 'max'), (18446744073709551614, 'max-1');
         CREATE TABLE dense (id INT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO dense SELECT CAST(seq AS SIGNED) - 3000, REPEAT('d', 30) FROM seq_1_to_6000;
         CREATE TABLE i64 (id BIGINT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO i64 SELECT CAST(seq AS SIGNED) * 1000003 - 3000000000, REPEAT('i', 30) FROM seq_1_to_6000;
         INSERT INTO i64 VALUES (-9223372036854775808, 'min'), (9223372036854775807, 'max');
         CREATE TABLE composite (name VARCHAR(20) NOT NULL, n INT NOT NULL, v VARCHAR(40), PRIMARY KEY (name, n));
         INSERT INTO composite SELECT CONCAT('k', seq % 97), seq, REPEAT('c', 30) FROM seq_1_to_6000;
         CREATE TABLE ci (k VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, v VARCHAR(40));
         INSERT INTO ci SELECT CONCAT(IF(seq % 2, 'A', 'a'), seq, IF(seq % 3, 'é', 'E')), REPEAT('x', 30) FROM seq_1_to_6000;
         CREATE TABLE nullable (k INT NULL, v VARCHAR(40), UNIQUE KEY (k));
         INSERT INTO nullable SELECT IF(seq % 5 = 0, NULL, seq), REPEAT('n', 30) FROM seq_1_to_6000;
         CREATE TABLE nullable2 (a VARCHAR(10) NULL, b INT NULL, v VARCHAR(40), UNIQUE KEY (a, b));
         INSERT INTO nullable2 SELECT IF(seq % 7 = 0, NULL, CONCAT('a', seq % 13)), IF(seq % 11 = 0, NULL, seq), REPEAT('m', 30) FROM seq_1_to_6000;
         ANALYZE TABLE dense, u64, i64, composite, ci, nullable, nullable2;",
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    dump(
        &source,
        &["k"],
        &out,
        &["--threads", "3", "--chunk-size", "16K"],
    );
    let m = show_json(&out);
    for t in m["databases"][0]["tables"].as_array().unwrap() {
        let files = t["files"].as_array().unwrap().len();
        assert!(files >= 3, "{} was not split: {files} files", t["name"]);
        let rows = source.query_value(&format!(
            "SELECT COUNT(*) FROM k.`{}`",
            t["name"].as_str().unwrap()
        ));
        assert_eq!(t["rows"].to_string(), rows, "{}", t["name"]);
    }
    restore(&target, &out, &["--threads", "3"]);
    assert_same_data(&source, &target, &["k"]);
}

#[test]
fn secondary_indexes_of_every_kind_come_back_on_large_and_small_tables() {
    // A table split over several files gets its secondary indexes (plain, unique,
    // FULLTEXT, SPATIAL) after its data; the same definition on a one-file table keeps
    // them in place. Both must come back as the source has them.
    let source = TestServer::start();
    let target = TestServer::start();
    let table = |name: &str, rows: u32| {
        format!(
            "CREATE TABLE ix.{name} (id INT PRIMARY KEY, code VARCHAR(20) NOT NULL, a INT,
               body TEXT, pt POINT NOT NULL,
               UNIQUE KEY u_code (code), KEY k_a (a), FULLTEXT KEY ft_body (body),
               SPATIAL KEY sp_pt (pt)) ENGINE=InnoDB;
             INSERT INTO ix.{name} SELECT seq, CONCAT('c', seq), seq % 97,
               CONCAT('word', seq % 13, ' text ', REPEAT('x', 40)), POINT(seq % 100, seq / 100)
               FROM seq_1_to_{rows};"
        )
    };
    source.sql(&format!(
        "CREATE DATABASE ix; USE ix; {} {} ANALYZE TABLE ix.large, ix.small;",
        table("large", 3000),
        table("small", 20)
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    dump(&source, &["ix"], &out, &["--chunk-size", "16K"]);
    let m = show_json(&out);
    let files = |name: &str| {
        m["databases"][0]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["files"]
            .as_array()
            .unwrap()
            .len()
    };
    assert!(files("large") > 1, "the large table was not split");
    assert_eq!(files("small"), 1);
    restore(&target, &out, &["--threads", "2"]);
    assert_same_data(&source, &target, &["ix"]);
    let fulltext = |s: &TestServer| {
        s.query_value("SELECT COUNT(*) FROM ix.large WHERE MATCH(body) AGAINST('word7')")
    };
    assert_eq!(fulltext(&source), fulltext(&target));
}
