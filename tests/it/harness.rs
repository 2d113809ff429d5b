//! Self-tests of the integration-test harness in `tests/support`.

use crate::support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use support::{assert_same_data, ServerOptions, TestServer};

const FIXTURE: &str = r#"
CREATE DATABASE h CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE TABLE h.t (
  id INT PRIMARY KEY AUTO_INCREMENT,
  l VARCHAR(20) CHARACTER SET latin1,
  u VARCHAR(20),
  b BLOB,
  d DOUBLE,
  f FLOAT
);
INSERT INTO h.t VALUES (1, X'e981', '😀 é', X'00ff0a', 0.1, 0.1), (2, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE h.`odd``name` (a INT);
INSERT INTO h.`odd``name` VALUES (3), (1), (2);
CREATE VIEW h.v AS SELECT id, u FROM h.t;
DELIMITER ;;
CREATE TRIGGER h.tr BEFORE INSERT ON h.t FOR EACH ROW BEGIN SET NEW.u = UPPER(NEW.u); END;;
CREATE PROCEDURE h.p() BEGIN SELECT COUNT(*) FROM h.t; END;;
DELIMITER ;
"#;

fn timed_start(opts: ServerOptions) -> TestServer {
    let t = Instant::now();
    let s = TestServer::start_with_options(opts);
    eprintln!("server on port {} started in {:?}", s.port(), t.elapsed());
    s
}

fn assert_differs(a: &TestServer, b: &TestServer, dbs: &[&str]) {
    let r = catch_unwind(AssertUnwindSafe(|| assert_same_data(a, b, dbs)));
    assert!(r.is_err(), "assert_same_data should have panicked");
}

#[test]
fn two_servers_are_independent_and_comparable() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| timed_start(ServerOptions::default()));
        let b = s.spawn(|| timed_start(ServerOptions::default()));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.port(), b.port());
    assert_ne!(a.server_id(), b.server_id());
    for s in [&a, &b] {
        assert_eq!(s.query_value("SELECT @@log_bin"), "1");
        assert_eq!(s.query_value("SELECT @@port"), s.port().to_string());
    }

    a.sql(
        "CREATE DATABASE only_a; CREATE TABLE only_a.t (x INT); INSERT INTO only_a.t VALUES (1);",
    );
    assert_eq!(a.query_value("SELECT COUNT(*) FROM only_a.t"), "1");
    let exists = "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'only_a'";
    assert_eq!(b.query_value(exists), "0");

    a.sql(FIXTURE);
    b.sql(FIXTURE);
    assert_eq!(a.canonical_dump(&["h"]), b.canonical_dump(&["h"]));
    let sums = a.table_checksums(&["h"]);
    assert_eq!(sums.len(), 2, "{sums:?}");
    assert!(sums.iter().any(|(t, _)| t == "h.odd`name"), "{sums:?}");
    assert_eq!(sums, b.table_checksums(&["h"]));
    assert_same_data(&a, &b, &["h"]);
    assert_same_data(&b, &a, &["h"]);

    // Row order of a table without a primary key is not data.
    for s in [&a, &b] {
        s.sql("DELETE FROM h.`odd``name`");
    }
    a.sql("INSERT INTO h.`odd``name` VALUES (1), (2)");
    b.sql("INSERT INTO h.`odd``name` VALUES (2), (1)");
    assert_same_data(&a, &b, &["h"]);

    b.sql("UPDATE h.t SET u = 'changed' WHERE id = 2");
    assert_ne!(a.canonical_dump(&["h"]), b.canonical_dump(&["h"]));
    assert_ne!(a.table_checksums(&["h"]), b.table_checksums(&["h"]));
    assert_differs(&a, &b, &["h"]);
    assert_differs(&b, &a, &["h"]);

    // A one-ulp FLOAT difference is caught by the checksums even if the dump text hides it.
    b.sql("UPDATE h.t SET u = NULL WHERE id = 2; UPDATE h.t SET f = 0.10000001 WHERE id = 1");
    assert_ne!(a.table_checksums(&["h"]), b.table_checksums(&["h"]));
    assert_differs(&a, &b, &["h"]);
    b.sql("UPDATE h.t SET f = 0.1 WHERE id = 1");
    assert_same_data(&a, &b, &["h"]);

    // Database collation is compared too.
    b.sql("ALTER DATABASE h COLLATE utf8mb4_general_ci");
    assert_differs(&a, &b, &["h"]);
}

#[test]
fn binlog_off_and_restart_keeps_data() {
    let mut s = timed_start(ServerOptions {
        binlog: false,
        extra_args: vec!["--max-connections=50".into()],
    });
    assert_eq!(s.query_value("SELECT @@log_bin"), "0");
    assert_eq!(s.query_value("SELECT @@max_connections"), "50");
    s.sql("CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY, v TEXT); INSERT INTO r.t VALUES (1, 'kept');");
    let port = s.port();

    let t = Instant::now();
    s.restart();
    eprintln!("restart took {:?}", t.elapsed());
    assert_eq!(s.port(), port);
    assert_eq!(s.query_value("SELECT v FROM r.t WHERE id = 1"), "kept");
    assert_eq!(s.query_value("SELECT @@log_bin"), "0");

    s.sql("INSERT INTO r.t VALUES (2, 'committed')");
    s.kill9();
    assert!(s.try_sql("SELECT 1").is_err());
    s.restart();
    assert_eq!(s.query_value("SELECT COUNT(*) FROM r.t"), "2");
    assert!(s
        .processlist()
        .iter()
        .any(|row| row.contains("PROCESSLIST")));
}
