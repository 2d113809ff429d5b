//! A dump is gentle on a live server: --busy-threads pauses it while the server is busy,
//! --max-rate caps its reading.

use crate::support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{dump_args, run_mysnap, stderr, TestServer};

#[test]
fn dump_pauses_while_the_server_runs_more_threads_than_allowed() {
    let source = TestServer::start();
    source.sql(
        "CREATE DATABASE g; USE g; CREATE TABLE g.t (id INT PRIMARY KEY, v VARCHAR(100));
         INSERT INTO g.t SELECT seq, REPEAT('g', 100) FROM seq_1_to_20000;",
    );
    // Three sessions busy for a few seconds.
    let mut sleepers: Vec<_> = (0..3)
        .map(|_| {
            source
                .client("mariadb")
                .args(["-e", "SELECT SLEEP(4)"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while source
        .processlist()
        .iter()
        .filter(|r| r.contains("SLEEP(4)"))
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "the busy sessions did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    let o = run_mysnap(&dump_args(
        &source,
        &["g"],
        &out,
        &["--busy-threads", "1", "--progress", "lines"],
    ));
    let stderr = stderr(&o);
    assert!(o.status.success(), "{stderr}");
    let paused = stderr.find("pausing").expect("the dump says it pauses");
    let resumed = stderr.find("resuming").expect("the dump says it resumes");
    assert!(paused < resumed, "{stderr}");
    // It could not finish while the server was busy.
    for s in &mut sleepers {
        assert!(
            s.try_wait().unwrap().is_some(),
            "the dump finished while the server was busy"
        );
    }
    assert!(out.join("manifest.json").is_file());
}
