//! Helpers for running the `mysnap` CLI against a [`TestServer`]: argument vectors, running
//! children, reading what they print, and the sessions they leave on the server.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{mysnap_command, run_mysnap_ok, TestServer};

/// mysnap CLI flags for 127.0.0.1:`port` over TCP, with no user: `-h 127.0.0.1 -P port`.
pub fn tcp_args(port: u16) -> Vec<String> {
    vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-P".into(),
        port.to_string(),
    ]
}

/// mysnap CLI flags for `user` at 127.0.0.1:`port`: `-h 127.0.0.1 -P port -u user`.
pub fn login_args(port: u16, user: &str) -> Vec<String> {
    let mut v = tcp_args(port);
    v.extend(["-u".into(), user.into()]);
    v
}

/// `dump CONN --database DB... --output OUT EXTRA...`, with the connection flags `conn`.
pub fn dump_args_with(
    conn: &[String],
    dbs: &[impl AsRef<str>],
    out: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut v = vec!["dump".to_string()];
    v.extend_from_slice(conn);
    for db in dbs {
        v.extend(["--database".to_string(), db.as_ref().to_string()]);
    }
    v.extend(["--output".to_string(), out.display().to_string()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// `dump` of `dbs` from `server` (as root over TCP) into `out`, then `extra`.
pub fn dump_args(
    server: &TestServer,
    dbs: &[impl AsRef<str>],
    out: &Path,
    extra: &[&str],
) -> Vec<String> {
    dump_args_with(&server.conn_args(), dbs, out, extra)
}

/// `restore DIR CONN EXTRA...`, with the connection flags `conn`.
pub fn restore_args_with(conn: &[String], dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["restore".to_string(), dir.display().to_string()];
    v.extend_from_slice(conn);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// `restore` of `dir` into `server` (as root over TCP), then `extra`.
pub fn restore_args(server: &TestServer, dir: &Path, extra: &[&str]) -> Vec<String> {
    restore_args_with(&server.conn_args(), dir, extra)
}

/// A file under the repository's `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A temporary directory whose name starts with `prefix`.
pub fn tempdir(prefix: &str) -> TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// The output's stdout, lossy UTF-8.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The output's stderr, lossy UTF-8.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `mysnap show DIR --json`, parsed.
pub fn show_json(dir: &Path) -> serde_json::Value {
    let out = run_mysnap_ok(&["show".as_ref(), dir.as_os_str(), "--json".as_ref()]);
    serde_json::from_slice(&out.stdout).expect("show --json prints JSON")
}

/// Asserts a failed run: non-zero exit, stderr ending with exactly one `mysnap: error:`
/// line containing every one of `needles` (case-insensitive); lines before it are what
/// the run said as it went (the server it connected to, notes). Returns that line.
pub fn one_error_line(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "mysnap should have failed; stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    let errors = lines
        .iter()
        .filter(|l| l.starts_with("mysnap: error"))
        .count();
    assert_eq!(errors, 1, "stderr must hold one error line, got:\n{stderr}");
    let line = *lines.last().expect("an error line");
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

/// mysnap's sessions: it connects over TCP, the harness over the socket.
pub fn mysnap_sessions(server: &TestServer) -> Vec<String> {
    server
        .sql(
            "SELECT ID, USER, COMMAND, STATE, INFO FROM information_schema.PROCESSLIST \
             WHERE HOST LIKE '127.0.0.1:%'",
        )
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until mysnap has no session left on `server`; panics with them after `within`.
pub fn wait_no_mysnap_sessions(server: &TestServer, within: Duration) {
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
pub fn wait_for_dump_select(server: &TestServer, dump: &mut Running) -> u64 {
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

/// A running mysnap child, killed if the test panics. Its stdout and stderr go to files
/// (a pipe nobody drains would stop a talkative child), read when it is finished.
pub struct Running {
    child: Option<Child>,
    logs: TempDir,
}

impl Running {
    /// Starts `mysnap` with `args`.
    pub fn spawn<S: AsRef<OsStr>>(args: &[S]) -> Running {
        let logs = tempdir("mysnap-child-");
        let out = std::fs::File::create(logs.path().join("stdout")).expect("stdout file");
        let err = std::fs::File::create(logs.path().join("stderr")).expect("stderr file");
        let child = mysnap_command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn mysnap");
        Running {
            child: Some(child),
            logs,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Whether the child has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Panics with the output if the child has already exited.
    pub fn assert_running(&mut self) {
        if !self.is_running() {
            let out = self.collect();
            panic!(
                "mysnap exited early ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Waits for the exit, at most `limit`; `on_timeout` explains a hang.
    pub fn finish(mut self, limit: Duration, on_timeout: impl Fn() -> String) -> Output {
        let deadline = Instant::now() + limit;
        while self.is_running() {
            assert!(
                Instant::now() < deadline,
                "mysnap still running after {limit:?}:\n{}",
                on_timeout()
            );
            sleep(Duration::from_millis(20));
        }
        self.collect()
    }

    fn collect(&mut self) -> Output {
        let status = self.child.take().unwrap().wait().expect("wait for mysnap");
        let read = |name: &str| std::fs::read(self.logs.path().join(name)).unwrap_or_default();
        Output {
            status,
            stdout: read("stdout"),
            stderr: read("stderr"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Dumps database `db` of `server` into the repository `repo` and returns the snapshot's
/// ID (`dump -q` prints only it).
pub fn snapshot_into(server: &TestServer, repo: &Path, db: &str) -> String {
    let mut args = vec!["dump".to_string()];
    args.extend(server.conn_args());
    args.extend([
        "-B".into(),
        db.into(),
        "--repo".into(),
        repo.display().to_string(),
        "-q".into(),
    ]);
    stdout(&run_mysnap_ok(&args)).trim().to_string()
}
