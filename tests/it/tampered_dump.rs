//! A restore trusts nothing it reads: a dump directory written or altered by someone else
//! (think of a shared bucket) can make it create the objects it names and load rows into
//! them, nothing more. Each crafted manifest here keeps every size and sha256 valid (a
//! checksum of the manifest alone proves nothing: whoever writes the manifest writes its
//! checksum), and each restore must fail with one line naming the problem before the
//! target is touched: no database created, the canary database still there, no file
//! written on the server.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{one_error_line, restore_args, run_mysnap, run_mysnap_ok, tempdir, TestServer};
use tempfile::TempDir;

/// A source with one database of every object kind, dumped once; a target holding a
/// canary database that an injected statement would drop.
struct Fixture {
    _source: TestServer,
    target: TestServer,
    dir: TempDir,
    dump: PathBuf,
}

fn fixture() -> Fixture {
    let source = TestServer::start();
    source.sql(
        "CREATE DATABASE d; USE d;
         CREATE TABLE t1 (id INT PRIMARY KEY, v VARCHAR(20), e ENUM('x','y') NOT NULL DEFAULT 'x');
         INSERT INTO t1 SELECT seq, CONCAT('v', seq), IF(seq % 2, 'x', 'y') FROM seq_1_to_50;
         CREATE TABLE t2 (id INT PRIMARY KEY) ENGINE=MyISAM;
         INSERT INTO t2 SELECT seq FROM seq_1_to_5;
         CREATE SEQUENCE s;
         CREATE VIEW v AS SELECT id FROM t1;
         CREATE PROCEDURE p() SELECT 1;
         CREATE TRIGGER tr BEFORE INSERT ON t1 FOR EACH ROW SET NEW.v = UPPER(NEW.v);",
    );
    let dir = tempdir("mysnap-tamper-");
    let dump = dir.path().join("dump");
    run_mysnap_ok(&support::dump_args(&source, &["d"], &dump, &["-q"]));
    let target = TestServer::start();
    target.sql(
        "CREATE DATABASE canary; CREATE TABLE canary.c (id INT); INSERT INTO canary.c VALUES (1);",
    );
    Fixture {
        _source: source,
        target,
        dir,
        dump,
    }
}

impl Fixture {
    /// A copy of the dump with its manifest changed by `edit` (given the copy's directory).
    fn tampered(&self, name: &str, edit: impl FnOnce(&mut Value, &Path)) -> PathBuf {
        let copy = self.dir.path().join(name);
        copy_dir(&self.dump, &copy);
        let path = copy.join("manifest.json");
        let mut m: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        edit(&mut m, &copy);
        fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        copy
    }

    /// The restore of `dump` fails with one line holding `needles`, and the target is as it was.
    fn refused(&self, dump: &Path, needles: &[&str]) -> String {
        let out = run_mysnap(&restore_args(&self.target, dump, &["--progress", "none"]));
        let line = one_error_line(&out, needles);
        assert!(!line.contains("root:"), "a file's content leaks: {line}");
        self.assert_untouched();
        line
    }

    fn assert_untouched(&self) {
        let dbs = self.target.sql("SHOW DATABASES");
        assert!(
            !dbs.lines().any(|d| d == "d"),
            "the restore created d: {dbs}"
        );
        assert!(
            !dbs.lines().any(|d| d == "mysnap"),
            "the restore wrote a journal"
        );
        assert_eq!(
            self.target.query_value("SELECT COUNT(*) FROM canary.c"),
            "1"
        );
    }
}

/// A change to a manifest, named with the needle its refusal must show.
type Edit = Box<dyn FnOnce(&mut Value)>;
/// A change to a manifest and the dump directory beside it.
type DirEdit = Box<dyn FnOnce(&mut Value, &Path)>;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to.join("data")).unwrap();
    fs::copy(from.join("manifest.json"), to.join("manifest.json")).unwrap();
    for e in fs::read_dir(from.join("data")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join("data").join(e.file_name())).unwrap();
    }
}

fn sha256_of(path: &Path) -> (u64, String) {
    let bytes = fs::read(path).unwrap();
    (bytes.len() as u64, hex::encode(Sha256::digest(&bytes)))
}

fn db(m: &mut Value) -> &mut Value {
    &mut m["databases"][0]
}

fn table<'a>(m: &'a mut Value, name: &str) -> &'a mut Value {
    db(m)["tables"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"] == name)
        .unwrap()
}

/// Points `t1`'s first data file at `path` (another file), with that file's size and hash.
fn point_first_file_at(m: &mut Value, rel: &str, real: &Path) {
    let (size, sha) = sha256_of(real);
    let f = &mut table(m, "t1")["files"][0];
    f["path"] = json!(rel);
    f["stored_bytes"] = json!(size);
    f["sha256"] = json!(sha);
    // Keep every total consistent, so that only the path can be the reason.
    let stored: u64 = m["databases"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["files"].as_array().unwrap())
        .map(|f| f["stored_bytes"].as_u64().unwrap())
        .sum();
    m["totals"]["stored_bytes"] = json!(stored);
}

#[test]
fn data_file_paths_outside_the_dump_are_never_opened() {
    let f = fixture();
    let passwd = Path::new("/etc/passwd");
    let abs = f.tampered("abs", |m, _| point_first_file_at(m, "/etc/passwd", passwd));
    f.refused(&abs, &["/etc/passwd", "not in data/"]);
    let up = f.tampered("up", |m, _| {
        point_first_file_at(m, "data/../../../../../../etc/passwd", passwd)
    });
    f.refused(&up, &["not a plain file name"]);
    // A listed name that is a link planted to lead out of the dump.
    let link = f.tampered("link", |m, dir| {
        let rel = table(m, "t1")["files"][0]["path"]
            .as_str()
            .unwrap()
            .to_string();
        fs::remove_file(dir.join(&rel)).unwrap();
        std::os::unix::fs::symlink(passwd, dir.join(&rel)).unwrap();
        point_first_file_at(m, &rel, passwd);
    });
    f.refused(&link, &["not a regular file"]);
    let data_link = f.tampered("datalink", |_, dir| {
        fs::rename(dir.join("data"), dir.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("data")).unwrap();
    });
    f.refused(&data_link, &["not a directory"]);
}

#[test]
fn definitions_that_are_not_the_recorded_create_are_never_run() {
    let f = fixture();
    let outfile = f.dir.path().join("written-by-the-server");
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "drop",
            Box::new(|m: &mut Value| table(m, "t1")["create_sql"] = json!("DROP DATABASE canary")),
            "is not a CREATE TABLE",
        ),
        (
            "second",
            Box::new(|m: &mut Value| {
                let t = table(m, "t1");
                let sql = format!(
                    "{}; DROP DATABASE canary",
                    t["create_sql"].as_str().unwrap()
                );
                t["create_sql"] = json!(sql);
            }),
            "more than one statement",
        ),
        (
            "hidden",
            Box::new(|m: &mut Value| {
                let t = table(m, "t1");
                let sql = format!(
                    "{} /*!; DROP DATABASE canary */",
                    t["create_sql"].as_str().unwrap()
                );
                t["create_sql"] = json!(sql);
            }),
            "more than one statement",
        ),
        (
            "select",
            Box::new(|m: &mut Value| {
                table(m, "t1")["create_sql"] =
                    json!("CREATE TABLE `t1` (id INT PRIMARY KEY, v TEXT, e ENUM('x','y') NOT NULL) SELECT 1 AS id, LOAD_FILE('/etc/passwd') AS v, 'x' AS e");
            }),
            "from a query",
        ),
        (
            "elsewhere",
            Box::new(|m: &mut Value| {
                let t = table(m, "t1");
                let sql = t["create_sql"]
                    .as_str()
                    .unwrap()
                    .replacen("`t1`", "`canary`.`t1`", 1);
                t["create_sql"] = json!(sql);
            }),
            "another database",
        ),
        (
            "outfile",
            Box::new({
                let outfile = outfile.clone();
                move |m: &mut Value| {
                    db(m)["routines"][0]["create_sql"] = json!(format!(
                        "SELECT 'owned' INTO OUTFILE '{}'",
                        outfile.display()
                    ));
                }
            }),
            "is not a CREATE PROCEDURE",
        ),
        (
            "trigger",
            Box::new(|m: &mut Value| {
                let o = &mut db(m)["triggers"][0];
                let sql = o["create_sql"]
                    .as_str()
                    .unwrap()
                    .replace("ON `t1`", "ON `canary`.`c`")
                    .replace("ON t1", "ON canary.c");
                assert!(sql.contains("canary"), "{sql}");
                o["create_sql"] = json!(sql);
            }),
            "another database",
        ),
        (
            "view",
            Box::new(|m: &mut Value| {
                let o = &mut db(m)["views"][0];
                let sql = format!(
                    "{}; DROP DATABASE canary",
                    o["create_sql"].as_str().unwrap()
                );
                o["create_sql"] = json!(sql);
            }),
            "more than one statement",
        ),
    ];
    for (name, edit, needle) in cases {
        let dump = f.tampered(name, |m, _| edit(m));
        f.refused(&dump, &[needle]);
    }
    assert!(!outfile.exists(), "a definition wrote a file");
}

#[test]
fn values_that_reach_sql_are_checked_before_use() {
    let f = fixture();
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "collation",
            Box::new(|m: &mut Value| {
                db(m)["collation"] = json!("utf8mb4_bin; DROP DATABASE canary")
            }),
            "malformed collation",
        ),
        (
            "charset-client",
            Box::new(|m: &mut Value| {
                db(m)["views"][0]["character_set_client"] = json!("utf8mb4, sql_log_bin = 0")
            }),
            "malformed client character set",
        ),
        (
            "db-collation",
            Box::new(|m: &mut Value| {
                db(m)["routines"][0]["database_collation"] =
                    json!("latin1_bin`; DROP DATABASE canary")
            }),
            "malformed database collation",
        ),
        (
            "sequence",
            Box::new(|m: &mut Value| {
                db(m)["sequences"][0]["next_value"] = json!("1, 0); DROP DATABASE canary; -- ")
            }),
            "not a number",
        ),
        (
            "unknown-collation",
            Box::new(|m: &mut Value| db(m)["collation"] = json!("utf8mb4_no_such_ci")),
            "unknown to the target",
        ),
        (
            "system-db",
            Box::new(|m: &mut Value| {
                // Views name their database; leave them out so that only the name is wrong.
                db(m)["name"] = json!("mysql");
                db(m)["views"] = json!([]);
                m["view_order"] = json!([]);
            }),
            "never writes into",
        ),
    ];
    for (name, edit, needle) in cases {
        let dump = f.tampered(name, |m, _| edit(m));
        f.refused(&dump, &[needle]);
    }
}

#[test]
fn an_inconsistent_manifest_is_refused_before_the_target_is_touched() {
    let f = fixture();
    let cases: Vec<(&str, DirEdit, &str)> = vec![
        (
            "file-rows",
            Box::new(|m: &mut Value, _: &Path| {
                let f = &mut table(m, "t1")["files"][0];
                f["rows"] = json!(f["rows"].as_u64().unwrap() + 1);
            }),
            "add up",
        ),
        (
            "table-rows",
            Box::new(|m: &mut Value, _: &Path| {
                let t = table(m, "t1");
                t["rows"] = json!(t["rows"].as_u64().unwrap() - 1);
            }),
            "add up",
        ),
        (
            "added-table",
            Box::new(|m: &mut Value, _: &Path| {
                let mut extra = table(m, "t2").clone();
                extra["name"] = json!("t3");
                extra["files"] = json!([]);
                extra["rows"] = json!(0);
                extra["raw_bytes"] = json!(0);
                let sql = extra["create_sql"]
                    .as_str()
                    .unwrap()
                    .replacen("`t2`", "`t3`", 1);
                extra["create_sql"] = json!(sql);
                db(m)["tables"].as_array_mut().unwrap().push(extra);
            }),
            "do not add up",
        ),
        (
            "duplicate-file",
            Box::new(|m: &mut Value, _: &Path| {
                // t2's file listed for t1 as well, with totals kept consistent.
                let f2 = table(m, "t2")["files"][0].clone();
                let t1 = table(m, "t1");
                t1["files"].as_array_mut().unwrap().push(f2.clone());
                t1["rows"] = json!(t1["rows"].as_u64().unwrap() + f2["rows"].as_u64().unwrap());
                t1["raw_bytes"] =
                    json!(t1["raw_bytes"].as_u64().unwrap() + f2["raw_bytes"].as_u64().unwrap());
                let totals = &mut m["totals"];
                for (k, v) in [
                    ("rows", "rows"),
                    ("raw_bytes", "raw_bytes"),
                    ("stored_bytes", "stored_bytes"),
                ] {
                    totals[k] = json!(totals[k].as_u64().unwrap() + f2[v].as_u64().unwrap());
                }
                totals["files"] = json!(totals["files"].as_u64().unwrap() + 1);
            }),
            "listed twice",
        ),
        (
            "unlisted-file",
            Box::new(|_: &mut Value, dir: &Path| {
                fs::write(dir.join("data/extra.tsv"), b"1\n").unwrap();
            }),
            "not listed in the manifest",
        ),
        (
            "view-order",
            Box::new(|m: &mut Value, _: &Path| m["view_order"] = json!([])),
            "view_order",
        ),
        (
            // The signature of a table altered during the dump: a column of the definition
            // that the data files do not hold.
            "missing-column",
            Box::new(|m: &mut Value, _: &Path| {
                table(m, "t1")["columns"].as_array_mut().unwrap().pop();
            }),
            "missing from the data files",
        ),
        (
            // And of a type change: an ENUM's data encoded as text would load as indexes.
            "encoding",
            Box::new(|m: &mut Value, _: &Path| {
                let cols = table(m, "t1")["columns"].as_array_mut().unwrap();
                cols.last_mut().unwrap()["encoding"] = json!("raw");
            }),
            "encoded as",
        ),
    ];
    for (name, edit, needle) in cases {
        let dump = f.tampered(name, edit);
        f.refused(&dump, &[needle]);
    }
}

#[test]
fn a_consistent_rewrite_is_caught_by_the_digest_kept_apart() {
    let f = fixture();
    // A rewrite that keeps every rule: only the digest the dump printed can tell.
    let (_, original) = sha256_of(&f.dump.join("manifest.json"));
    let rewritten = f.tampered("rewritten", |m, _| {
        let t = table(m, "t1");
        let sql = t["create_sql"].as_str().unwrap().to_string();
        t["create_sql"] = json!(format!("{sql} COMMENT='rewritten'"));
    });
    let out = run_mysnap(&restore_args(
        &f.target,
        &rewritten,
        &["--manifest-sha256", &original],
    ));
    one_error_line(&out, &["--manifest-sha256", &original]);
    f.assert_untouched();
}

#[test]
fn the_untampered_copy_restores() {
    let f = fixture();
    let copy = f.tampered("as-is", |_, _| {});
    let (_, digest) = sha256_of(&copy.join("manifest.json"));
    let shown = support::stdout(&run_mysnap_ok(&["show", copy.to_str().unwrap()]));
    assert!(
        shown.contains(&digest),
        "show prints the manifest's sha256: {shown}"
    );
    run_mysnap_ok(&restore_args(
        &f.target,
        &copy,
        &["--progress", "none", "--manifest-sha256", &digest],
    ));
    assert_eq!(f.target.query_value("SELECT COUNT(*) FROM d.t1"), "50");
    assert_eq!(f.target.query_value("SELECT COUNT(*) FROM d.t2"), "5");
}
