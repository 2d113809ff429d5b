//! Point-in-time restore: a snapshot rolled forward with the archived binary log must
//! give, for each checkpoint recorded while writers ran, exactly the state of that
//! checkpoint, whether the target is given as a time, a GTID position or a file:position.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use support::{one_error_line, run_mysnap, run_mysnap_ok, stdout, Running, TestServer};

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
}

struct Checkpoint {
    time: u64,
    gtid: String,
    position: String,
    state: Vec<u8>,
}

/// Waits until the archive holds everything the source has written.
fn wait_archived(source: &TestServer, repo: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = source.sql("SHOW MASTER STATUS");
        let mut c = st.split_whitespace();
        let want = format!("{}:{}", c.next().unwrap(), c.next().unwrap());
        let out = run_mysnap_ok(&["binlog", "status", "--repo", &s(repo), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let have = format!(
            "{}:{}",
            v["last"]["file"].as_str().unwrap_or(""),
            v["last"]["position"].as_u64().unwrap_or(0)
        );
        if have == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "archive at {have}, source at {want}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn restore_until(target: &TestServer, repo: &Path, flag: &str, value: &str) -> String {
    let mut args = vec![
        "restore".to_string(),
        "--repo".into(),
        s(repo),
        format!("--{flag}"),
        value.to_string(),
        "--existing=drop-database".into(),
    ];
    args.extend(target.conn_args());
    stdout(&run_mysnap_ok(&args))
}

#[test]
fn restores_to_each_checkpoint_by_time_gtid_and_position_are_exact() {
    let source = TestServer::start();
    let dir = support::tempdir("mysnap-pitr-");
    let repo = dir.path().join("repo");
    run_mysnap_ok(&["init", "--repo", &s(&repo)]);
    source.sql(
        "CREATE DATABASE bank; USE bank; CREATE TABLE bank.acct (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
         INSERT INTO bank.acct SELECT seq, 1000 FROM seq_1_to_50;
         CREATE TABLE bank.log (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64), at DATETIME);
         CREATE DATABASE other; CREATE TABLE other.x (a INT)",
    );
    support::snapshot_into(&source, &repo, "bank");
    let mut archiver = Running::spawn(&{
        let mut v = vec!["binlog".to_string(), "archive".into()];
        v.extend(source.conn_args());
        v.extend(["--repo".into(), s(&repo), "-q".into()]);
        v
    });
    // An early checkpoint, before any statement names the database explicitly (which a
    // rename cannot follow): row-format transfers only.
    let checksums = |srv: &TestServer, db: &str| -> Vec<String> {
        srv.sql(&format!("CHECKSUM TABLE {db}.acct, {db}.log"))
            .lines()
            .map(|l| l.split('\t').nth(1).unwrap_or("").to_string())
            .collect()
    };
    for i in 1..=20u64 {
        source.sql(&format!(
            "BEGIN; UPDATE bank.acct SET balance = balance - {i} WHERE id = {i}; UPDATE bank.acct SET balance = balance + {i} WHERE id = {}; COMMIT",
            i + 20
        ));
    }
    let early_gtid = source.sql("SELECT @@gtid_binlog_pos").trim().to_string();
    let early = checksums(&source, "bank");
    let mut checkpoints = Vec::new();
    let mut n = 0u64;
    for phase in 0..4 {
        // Transfers keep the total; each phase adds another kind of event.
        for _ in 0..30 {
            n += 1;
            let (a, b) = (n % 50 + 1, (n * 7) % 50 + 1);
            source.sql(&format!(
                "BEGIN; UPDATE bank.acct SET balance = balance - {n} WHERE id = {a}; UPDATE bank.acct SET balance = balance + {n} WHERE id = {b}; COMMIT"
            ));
        }
        match phase {
            0 => source.sql("ALTER TABLE bank.acct ADD COLUMN flag INT NOT NULL DEFAULT 0"),
            // Statement format: a temporary table across statements, AUTO_INCREMENT and
            // time context (multi-row VALUES: an INSERT ... SELECT would make the source
            // reserve more AUTO_INCREMENT values than a replica does, as the server's own
            // replication does too), a write to bank sent from another default database, and one
            // to a database outside the snapshot sent from bank.
            1 => source.sql(
                "SET SESSION binlog_format = STATEMENT; USE bank;
                 CREATE TEMPORARY TABLE tmp (v INT); INSERT INTO tmp VALUES (5), (6);
                 UPDATE acct JOIN tmp ON acct.id = tmp.v SET acct.flag = 2;
                 INSERT INTO log (note, at) VALUES ('statement', NOW()), ('format', NOW());
                 DROP TEMPORARY TABLE tmp;
                 INSERT INTO other.x VALUES (1);
                 USE other; UPDATE bank.acct SET flag = 1 WHERE id <= 5",
            ),
            2 => source.sql(
                "SET SESSION binlog_format = MIXED; USE bank;
                 INSERT INTO log (note, at) VALUES ('mixed', '2026-01-01 00:00:00');
                 UPDATE acct SET flag = flag + 1 WHERE id % 3 = 0;
                 INSERT INTO other.x VALUES (2)",
            ),
            _ => source.sql("DELETE FROM bank.log WHERE id = 1; FLUSH BINARY LOGS; UPDATE bank.acct SET flag = 9 WHERE id = 50"),
        };
        let gtid = source.sql("SELECT @@gtid_binlog_pos").trim().to_string();
        let st = source.sql("SHOW MASTER STATUS");
        let mut c = st.split_whitespace();
        let position = format!("{}:{}", c.next().unwrap(), c.next().unwrap());
        let time = now_secs();
        checkpoints.push(Checkpoint {
            time,
            gtid,
            position,
            state: source.canonical_dump(&["bank"]),
        });
        // The next writes in a later second than the checkpoint.
        while now_secs() <= time {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_archived(&source, &repo);
    // The last checkpoint's second may hold no event: the archive covers it once the
    // archiver has said, caught up, that it is past it.
    let last = checkpoints.last().unwrap().time;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = run_mysnap_ok(&["binlog", "status", "--repo", &s(&repo), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let a = &v["archiver"];
        let said = a["updated"]
            .as_str()
            .and_then(|u| humantime::parse_rfc3339(u).ok())
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        if said > last && a["lag_seconds"].as_f64() == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the archiver never said it was caught up: {a}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    archiver.assert_running();
    drop(archiver);

    let target = TestServer::start();
    let total = |t: &TestServer| {
        t.sql("SELECT SUM(balance) FROM bank.acct")
            .trim()
            .to_string()
    };
    for (i, c) in checkpoints.iter().enumerate() {
        let out = restore_until(&target, &repo, "until", &rfc3339(c.time));
        assert!(out.contains("replayed"), "{out}");
        assert!(
            target.canonical_dump(&["bank"]) == c.state,
            "--until {} (checkpoint {i}) differs from the checkpoint:\n{}",
            rfc3339(c.time),
            support::diff_excerpt(
                &String::from_utf8_lossy(&c.state),
                &String::from_utf8_lossy(&target.canonical_dump(&["bank"]))
            )
        );
        assert_eq!(total(&target), "50000");
        assert!(
            target.try_sql("SELECT * FROM other.x").is_err(),
            "a database outside the snapshot was created by the replay"
        );
        restore_until(&target, &repo, "until-gtid", &c.gtid);
        assert!(
            target.canonical_dump(&["bank"]) == c.state,
            "--until-gtid {} (checkpoint {i})",
            c.gtid
        );
        restore_until(&target, &repo, "until-position", &c.position);
        assert!(
            target.canonical_dump(&["bank"]) == c.state,
            "--until-position {} (checkpoint {i})",
            c.position
        );
    }
    // Nothing is left of the replay's replication connection, and the parallel applier
    // threads it used are set back.
    assert_eq!(target.sql("SHOW ALL SLAVES STATUS").trim(), "");
    assert_eq!(
        target.sql("SELECT @@GLOBAL.slave_parallel_threads").trim(),
        "0"
    );
    // "Put the shop back": into the source itself, whose server id the archived events
    // carry (a replica skips events of its own id unless they are given another).
    restore_until(&source, &repo, "until-gtid", &checkpoints[2].gtid);
    assert!(
        source.canonical_dump(&["bank"]) == checkpoints[2].state,
        "restored in place"
    );
    assert_eq!(source.sql("SHOW ALL SLAVES STATUS").trim(), "");

    // A dry run says what it would replay and changes nothing.
    let before = target.canonical_dump(&["bank"]);
    let mut args = vec![
        "restore".to_string(),
        "--repo".into(),
        s(&repo),
        "--until".into(),
        rfc3339(checkpoints[1].time),
        "--dry-run".into(),
        "--existing=drop-database".into(),
    ];
    args.extend(target.conn_args());
    let out = stdout(&run_mysnap_ok(&args));
    assert!(
        out.contains("replay:") && out.contains("transactions") && out.contains("predicted"),
        "{out}"
    );
    assert!(target.canonical_dump(&["bank"]) == before);

    // Targets the archive cannot reach are refused with one line.
    let refuse = |flag: &str, value: &str, needles: &[&str]| {
        let mut args = vec![
            "restore".to_string(),
            "--repo".into(),
            s(&repo),
            format!("--{flag}"),
            value.into(),
        ];
        args.extend(target.conn_args());
        one_error_line(&run_mysnap(&args), needles);
    };
    refuse(
        "until",
        &rfc3339(checkpoints[3].time + 3600),
        &["after the end of the archive"],
    );
    refuse(
        "until",
        "2001-01-01T00:00:00Z",
        &["no restorable snapshot", "before"],
    );
    refuse("until-gtid", "0-1-999999999", &["not in the archive"]);
    refuse("until", "yesterday", &["RFC 3339"]);
    let mid = checkpoints[0].position.rsplit_once(':').unwrap();
    refuse(
        "until-position",
        &format!("{}:{}", mid.0, mid.1.parse::<u64>().unwrap() - 3),
        &["not between two events"],
    );
    // --exclude and --rename apply to the replayed events as to the snapshot.
    let selected = |extra: &[&str], flag: &str, value: &str| {
        target.sql("DROP DATABASE IF EXISTS bank; DROP DATABASE IF EXISTS bank2");
        let mut args = vec![
            "restore".to_string(),
            "--repo".into(),
            s(&repo),
            format!("--{flag}"),
            value.to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.extend(target.conn_args());
        run_mysnap_ok(&args);
    };
    selected(
        &["--exclude", "bank.log"],
        "until",
        &rfc3339(checkpoints[3].time),
    );
    assert_eq!(target.table_names("bank"), vec!["acct".to_string()]);
    let acct = |srv: &TestServer, db: &str| {
        srv.sql(&format!(
            "SELECT id, balance, flag FROM {db}.acct ORDER BY id"
        ))
    };
    let mut at3 = TestServer::start();
    let mut args = vec![
        "restore".to_string(),
        "--repo".into(),
        s(&repo),
        "--until".into(),
        rfc3339(checkpoints[3].time),
    ];
    args.extend(at3.conn_args());
    run_mysnap_ok(&args);
    assert_eq!(
        acct(&target, "bank"),
        acct(&at3, "bank"),
        "--exclude changed what was replayed into the other tables"
    );
    at3.stop();
    selected(&["--rename", "bank=bank2"], "until-gtid", &early_gtid);
    assert_eq!(
        checksums(&target, "bank2"),
        early,
        "--rename bank=bank2 to the early checkpoint"
    );
    assert!(
        target.try_sql("SELECT 1 FROM bank.acct").is_err(),
        "the old name was written to"
    );
    // Past the first statement naming bank explicitly, a rename is refused before loading.
    target.sql("DROP DATABASE IF EXISTS bank2");
    let mut args = vec![
        "restore".to_string(),
        "--repo".into(),
        s(&repo),
        "--until".into(),
        rfc3339(checkpoints[3].time),
        "--rename".into(),
        "bank=bank2".into(),
    ];
    args.extend(target.conn_args());
    one_error_line(
        &run_mysnap(&args),
        &["--rename", "names database bank explicitly"],
    );
    assert!(
        target.try_sql("SELECT 1 FROM bank2.acct").is_err(),
        "loaded before refusing"
    );
}

#[test]
fn a_replay_killed_half_way_resumes_without_applying_a_transaction_twice() {
    let source = TestServer::start();
    let dir = support::tempdir("mysnap-pitr-");
    let repo = dir.path().join("repo");
    run_mysnap_ok(&["init", "--repo", &s(&repo)]);
    source.sql(
        "CREATE DATABASE bank; USE bank; CREATE TABLE acct (id INT PRIMARY KEY, balance BIGINT NOT NULL, n INT NOT NULL DEFAULT 0);
         INSERT INTO acct (id, balance) SELECT seq, 1000 FROM seq_1_to_100;
         CREATE TABLE seen (k INT PRIMARY KEY)",
    );
    support::snapshot_into(&source, &repo, "bank");
    // Many small transactions, each of which would fail if applied twice (a key).
    source.sql(
        "USE bank;\nDELIMITER //\n\
CREATE PROCEDURE w() BEGIN DECLARE i INT DEFAULT 0;
  WHILE i < 20000 DO
    START TRANSACTION;
    UPDATE acct SET balance = balance - 1, n = n + 1 WHERE id = i % 100 + 1;
    UPDATE acct SET balance = balance + 1 WHERE id = (i * 7) % 100 + 1;
    INSERT INTO seen VALUES (i);
    COMMIT;
    SET i = i + 1;
  END WHILE; END //\n\
DELIMITER ;\n\
CALL w()",
    );
    let gtid = source.sql("SELECT @@gtid_binlog_pos").trim().to_string();
    let want = source.canonical_dump(&["bank"]);
    let mut archive = vec!["binlog".to_string(), "archive".into()];
    archive.extend(source.conn_args());
    archive.extend(["--repo".into(), s(&repo), "--once".into(), "-q".into()]);
    run_mysnap_ok(&archive);

    let target = TestServer::start();
    let restore = |extra: &[&str]| {
        let mut v = vec![
            "restore".to_string(),
            "--repo".into(),
            s(&repo),
            "--until-gtid".into(),
            gtid.clone(),
        ];
        v.extend(target.conn_args());
        v.extend(extra.iter().map(|a| a.to_string()));
        v
    };
    let mut rng = rand::rng();
    let mut killed_in_replay = 0;
    for round in 0..3 {
        let mut run = Running::spawn(&restore(if round == 0 { &[] } else { &["--resume"] }));
        // Wait for the replay to begin, then kill mysnap at a random moment of it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while target.sql("SHOW ALL SLAVES STATUS").trim().is_empty() && run.is_running() {
            assert!(Instant::now() < deadline, "the replay did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rand::Rng::random_range(
            &mut rng,
            0..400,
        )));
        if run.is_running() {
            killed_in_replay += 1;
        }
        let _ = std::process::Command::new("kill")
            .args(["-9", &run.pid().to_string()])
            .status();
        let _ = run.finish(Duration::from_secs(10), || "kill".into());
        if target.sql("SHOW ALL SLAVES STATUS").trim().is_empty() {
            break; // it had finished
        }
    }
    assert!(killed_in_replay > 0, "no kill landed in the replay");
    if !target.sql("SHOW ALL SLAVES STATUS").trim().is_empty() {
        // Without --resume: refused, and nothing is touched.
        one_error_line(
            &run_mysnap(&restore(&["--existing=drop-database"])),
            &["--resume", "interrupted"],
        );
        let out = stdout(&run_mysnap_ok(&restore(&["--resume"])));
        assert!(out.contains("replayed"), "{out}");
    }
    assert!(
        target.canonical_dump(&["bank"]) == want,
        "the resumed replay differs from the source"
    );
    assert_eq!(target.sql("SELECT COUNT(*) FROM bank.seen").trim(), "20000");
    assert_eq!(target.sql("SHOW ALL SLAVES STATUS").trim(), "");
}
