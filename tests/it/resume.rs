//! Interrupted restores continue with --resume without losing or duplicating a row:
//! after kill -9 of mysnap at random points, and after a restart of the target server.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use support::{
    assert_same_data, dump_args, fixture, restore_args, run_mysnap, run_mysnap_ok, stderr,
    TestServer,
};

/// A source with the shop schema and the fidelity fixture, dumped into many small files.
fn dumped_source(dir: &Path) -> (TestServer, PathBuf, Vec<&'static str>) {
    let source = TestServer::start();
    source.sql_file(&fixture("sample.sql"));
    source.sql_file(&fixture("fidelity.sql"));
    let dbs = vec!["shop", "fidelity", "fidelity_objects", "odd db-ünï"];
    let out = dir.join("dump");
    run_mysnap_ok(&dump_args(
        &source,
        &dbs,
        &out,
        &["--chunk-size", "16K", "-q"],
    ));
    (source, out, dbs)
}

fn restore_cmd(target: &TestServer, dump: &Path, extra: &[&str]) -> Command {
    let mut cmd = support::mysnap_command();
    cmd.args(restore_args(
        target,
        dump,
        &[&["--progress", "none"], extra].concat(),
    ));
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

fn journal_files(target: &TestServer) -> u64 {
    target
        .try_sql("SELECT COUNT(*) FROM mysnap.restore_journal WHERE item LIKE 'file:%'")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn restore_resumes_after_repeated_kill_9_without_losing_or_duplicating_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (source, dump, dbs) = dumped_source(dir.path());
    let target = TestServer::start();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261121);
    let mut kills = 0;
    let mut mid_load = false;
    // Kill at random points until the restore gets through; each run resumes the last.
    // The last run is never killed, so that the restore ends even on a machine slow
    // enough for every earlier kill to land before the end.
    const RUNS: usize = 12;
    for run in 0..RUNS {
        let extra: &[&str] = if run == 0 { &[] } else { &["--resume"] };
        // One session, so that a restore lasts long enough to be killed several times.
        let mut child = restore_cmd(&target, &dump, &[extra, &["--threads", "1"]].concat())
            .spawn()
            .unwrap();
        // Odd runs are killed at a random moment from their start (set-up included),
        // even runs at a random moment after they have committed a file of their own.
        let delay = Duration::from_millis(rng.random_range(30..400));
        let before = journal_files(&target);
        if run % 2 == 0 {
            let deadline = Instant::now() + Duration::from_secs(60);
            while journal_files(&target) <= before && child.try_wait().unwrap().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "the restore loaded nothing in 60 s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        if run + 1 < RUNS && child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            let recorded = journal_files(&target);
            eprintln!("killed after {delay:?}; {recorded} files recorded");
            mid_load |= recorded > 0;
            continue;
        }
        let out = child.wait_with_output().unwrap();
        // A kill that landed after the last step (the journal already cleared) leaves a
        // complete restore and nothing to resume; the comparison below decides.
        assert!(
            out.status.success() || stderr(&out).contains("nothing to resume"),
            "{}",
            stderr(&out)
        );
        break;
    }
    assert!(
        kills >= 3,
        "the restore was killed only {kills} times; make the dump bigger"
    );
    assert!(mid_load, "no kill landed while data was loading");
    assert_same_data(&source, &target, &dbs);
    // A completed restore leaves nothing to resume, and says so without changing anything.
    let again = restore_cmd(&target, &dump, &["--resume"]).output().unwrap();
    let line = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && line.contains("nothing to resume"),
        "{line}"
    );
    assert_same_data(&source, &target, &dbs);
    assert!(
        target
            .try_sql("SELECT 1 FROM mysnap.restore_journal")
            .is_err(),
        "the journal is removed once the restore completes"
    );
    // A restore killed between clearing its entries and dropping the journal leaves an
    // empty one: the next --resume says there is nothing to resume and removes it.
    target.sql(
        "CREATE DATABASE mysnap; CREATE TABLE mysnap.restore_journal (restore_id CHAR(64) CHARACTER SET ascii NOT NULL, item VARCHAR(700) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, done_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (restore_id, item)) ENGINE=InnoDB",
    );
    let again = restore_cmd(&target, &dump, &["--resume"]).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to resume"));
    assert!(
        target
            .try_sql("SELECT 1 FROM mysnap.restore_journal")
            .is_err(),
        "an empty journal left by a kill is removed"
    );
}

#[test]
fn restore_resumes_after_the_target_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (source, dump, dbs) = dumped_source(dir.path());
    let mut target = TestServer::start();
    let child = restore_cmd(&target, &dump, &["--threads", "2"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while journal_files(&target) < 3 {
        assert!(Instant::now() < deadline, "the restore loaded nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    target.restart();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "the restore cannot have finished across a restart"
    );
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("mysnap: error"))
            .count(),
        1,
        "{err}"
    );

    // Without --resume the target is not touched again.
    let refused = restore_cmd(&target, &dump, &[]).output().unwrap();
    let line = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && line.contains("--resume"),
        "{line}"
    );

    let out = restore_cmd(&target, &dump, &["--resume"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_data(&source, &target, &dbs);
}

#[test]
fn resume_with_nothing_recorded_restores_from_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let source = TestServer::start();
    source.sql_file(&fixture("sample.sql"));
    let out = dir.path().join("dump");
    run_mysnap_ok(&dump_args(&source, &["shop"], &out, &["-q"]));
    let target = TestServer::start();
    let o = run_mysnap(&restore_args(&target, &out, &["--resume"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("starting from the beginning"));
    assert_same_data(&source, &target, &["shop"]);
}

/// `SELECT COUNT(*)` of `table` on the target (0 when it does not exist).
fn rows_of(target: &TestServer, table: &str) -> u64 {
    target
        .try_sql(&format!("SELECT COUNT(*) FROM {table}"))
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn non_transactional_tables_killed_early_in_their_load_are_emptied_and_reloaded() {
    const ROWS: u64 = 80_000;
    let dir = tempfile::tempdir().unwrap();
    let source = TestServer::start();
    // A keyless table would silently keep duplicated rows; a keyed one fails on them.
    source.sql(&format!(
        "CREATE DATABASE m; USE m;
         CREATE TABLE keyless (a INT, b VARCHAR(100)) ENGINE=MyISAM;
         INSERT INTO keyless SELECT seq % 1000, REPEAT('k', 90) FROM seq_1_to_{ROWS};
         CREATE TABLE keyed (id INT PRIMARY KEY, b VARCHAR(100)) ENGINE=Aria;
         INSERT INTO keyed SELECT seq, REPEAT('a', 90) FROM seq_1_to_{ROWS};"
    ));
    let dump = dir.path().join("dump");
    run_mysnap_ok(&dump_args(&source, &["m"], &dump, &["-q"]));
    let checksums = source.table_checksums(&["m"]);
    let target = TestServer::start();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261202);
    let mut partial = 0;
    for round in 0..8 {
        target.sql("DROP DATABASE IF EXISTS m; DROP DATABASE IF EXISTS mysnap");
        let mut child = restore_cmd(&target, &dump, &["--threads", "2"])
            .spawn()
            .unwrap();
        // Killed within the first fraction of a second of the loads.
        let deadline = Instant::now() + Duration::from_secs(30);
        while target.query_value(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'LOAD DATA%'",
        ) == "0"
        {
            assert!(Instant::now() < deadline, "no load started");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the restore ended before its loads were seen"
            );
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..80)));
        child.kill().unwrap();
        child.wait().unwrap();
        let recorded = journal_files(&target);
        let (keyless, keyed) = (rows_of(&target, "m.keyless"), rows_of(&target, "m.keyed"));
        eprintln!(
            "round {round}: killed with {keyless} + {keyed} rows in, {recorded} files recorded"
        );
        // Rows in but the file not recorded: what a resume must not load a second time.
        if (0 < keyless && keyless < ROWS) || (0 < keyed && keyed < ROWS) {
            partial += 1;
        }
        let out = restore_cmd(&target, &dump, &["--resume"]).output().unwrap();
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        assert_eq!(rows_of(&target, "m.keyless"), ROWS, "round {round}");
        assert_eq!(rows_of(&target, "m.keyed"), ROWS, "round {round}");
        assert_eq!(target.table_checksums(&["m"]), checksums, "round {round}");
    }
    assert!(partial >= 3, "only {partial} kills landed inside a load");
    assert_same_data(&source, &target, &["m"]);
}
