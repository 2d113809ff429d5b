//! Integration-test harness: throwaway `mariadbd` servers plus SQL and comparison helpers
//! built only on the stock MariaDB command-line tools (`mariadb`, `mariadb-dump`), so that the
//! checks never depend on the code under test. The modules of `tests/it` use it as
//! `crate::support`.

mod cli;

pub use cli::*;

use std::collections::hash_map::DefaultHasher;
use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Options given to `mariadb-install-db` when building the template datadir (part of its cache key).
const INSTALL_ARGS: &[&str] = &[
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
    "--skip-name-resolve",
    // A small redo log keeps the template cheap to copy; mariadbd resizes it on first start.
    "--innodb-log-file-size=16M",
];

/// How to start a [`TestServer`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Enable the binary log (`--log-bin`, `--binlog-format=ROW`) in [`TestServer::binlog_dir`].
    pub binlog: bool,
    /// Extra `mariadbd` flags, appended last so they override the defaults.
    pub extra_args: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            binlog: true,
            extra_args: Vec::new(),
        }
    }
}

/// A throwaway `mariadbd` on 127.0.0.1:[`port`](Self::port) and a private unix socket, root
/// without password. Everything lives in a temporary directory; dropping it stops the server.
pub struct TestServer {
    dir: TempDir,
    socket: PathBuf,
    datadir: PathBuf,
    binlog_dir: PathBuf,
    error_log: PathBuf,
    port: u16,
    server_id: u32,
    opts: ServerOptions,
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl TestServer {
    /// Starts a server with the binary log enabled.
    pub fn start() -> TestServer {
        Self::start_with_options(ServerOptions::default())
    }

    /// Starts a server with the binary log enabled and extra `mariadbd` flags.
    pub fn start_with(extra_args: &[&str]) -> TestServer {
        let extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        Self::start_with_options(ServerOptions {
            binlog: true,
            extra_args,
        })
    }

    /// Starts a server with the given options; panics (with the error log) if it fails to start.
    pub fn start_with_options(opts: ServerOptions) -> TestServer {
        static NEXT_ID: AtomicU32 = AtomicU32::new(1);
        let dir = tempfile::Builder::new()
            .prefix("mysnap-srv-")
            .tempdir()
            .expect("tempdir");
        let status = Command::new("cp")
            .arg("-a")
            .arg(template_datadir())
            .arg(dir.path().join("data"))
            .status()
            .expect("run cp");
        assert!(status.success(), "copying the template datadir failed");
        fs::create_dir(dir.path().join("binlog")).expect("mkdir binlog");
        fs::create_dir(dir.path().join("tmp")).expect("mkdir tmp");
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed) % 1000;
        let mut server = TestServer {
            socket: dir.path().join("mysqld.sock"),
            datadir: dir.path().join("data"),
            binlog_dir: dir.path().join("binlog"),
            error_log: dir.path().join("error.log"),
            dir,
            port: 0,
            server_id: (std::process::id() % 1_000_000) * 1000 + n,
            opts,
            child: None,
            watchdog: None,
        };
        for attempt in 1.. {
            server.port = free_port();
            match server.launch() {
                Ok(()) => return server,
                Err(log) if attempt < 5 => eprintln!("mariadbd port collision, retrying: {log}"),
                Err(log) => {
                    panic!("mariadbd could not bind a port after {attempt} attempts:\n{log}")
                }
            }
        }
        unreachable!()
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Unix socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Data directory.
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// Directory holding the binary logs (`mysql-bin.NNNNNN`, `mysql-bin.index`).
    pub fn binlog_dir(&self) -> &Path {
        &self.binlog_dir
    }

    /// The server's error log.
    pub fn error_log(&self) -> &Path {
        &self.error_log
    }

    /// The `--server-id` of this server (unique within the test process).
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// Spawns mariadbd and waits until it answers. `Err(log)` means the port was taken.
    fn launch(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let log_start = fs::metadata(self.error_log()).map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults");
        if is_root() {
            cmd.arg("--user=root");
        }
        cmd.arg(format!("--datadir={}", self.datadir().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--log-error={}", self.error_log().display()))
            .arg(format!("--server-id={}", self.server_id));
        if self.opts.binlog {
            cmd.arg(format!(
                "--log-bin={}",
                self.binlog_dir().join("mysql-bin").display()
            ))
            .arg("--binlog-format=ROW");
        }
        cmd.args([
            "--local-infile=1",
            "--max-allowed-packet=256M",
            "--innodb-buffer-pool-size=128M",
            "--innodb-log-file-size=64M",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--event-scheduler=OFF",
            "--innodb-flush-log-at-trx-commit=2",
            "--sync-binlog=0",
        ])
        .args(&self.opts.extra_args);
        let out = File::options()
            .create(true)
            .append(true)
            .open(d.join("mariadbd.out"))
            .expect("open mariadbd.out");
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = self.child.insert(cmd.spawn().expect("spawn mariadbd"));
        // If the test process dies without running Drop, the watchdog kills the server and
        // removes its directory.
        let script = r#"while kill -0 "$2" 2>/dev/null; do
            if ! kill -0 "$1" 2>/dev/null; then kill -9 "$2"; sleep 1; rm -rf "$3"; exit; fi
            sleep 1; done"#;
        let watchdog = Command::new("sh")
            .args([
                "-c",
                script,
                "watchdog",
                &std::process::id().to_string(),
                &child.id().to_string(),
            ])
            .arg(d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watchdog sh");
        self.watchdog = Some(watchdog);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                self.stop_process(false);
                let log = fs::read(self.error_log()).unwrap_or_default();
                let new = String::from_utf8_lossy(&log[(log_start as usize).min(log.len())..])
                    .into_owned();
                if new.contains("Address already in use") {
                    return Err(tail(&new, 5));
                }
                panic!(
                    "mariadbd exited with {status} during start-up:\n{}",
                    self.error_log_tail(40)
                );
            }
            if self.socket.exists() && self.try_sql("SELECT 1").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop_process(false);
                panic!(
                    "mariadbd not ready after {START_TIMEOUT:?}:\n{}",
                    self.error_log_tail(40)
                );
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// The last `n` lines of the error log.
    pub fn error_log_tail(&self, n: usize) -> String {
        tail(
            &String::from_utf8_lossy(&fs::read(self.error_log()).unwrap_or_default()),
            n,
        )
    }

    /// Stops the server (SIGTERM and up to 30 s if `graceful`, then SIGKILL), then its watchdog.
    fn stop_process(&mut self, graceful: bool) {
        if let Some(mut child) = self.child.take() {
            if graceful {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let deadline = Instant::now() + STOP_TIMEOUT;
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    sleep(Duration::from_millis(20));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    /// Stops the server cleanly (no-op if it is not running); the datadir is kept.
    pub fn stop(&mut self) {
        self.stop_process(true);
    }

    /// Kills the server with SIGKILL (no clean shutdown); [`restart`](Self::restart) recovers it.
    pub fn kill9(&mut self) {
        self.stop_process(false);
    }

    /// Stops the server (if running) and starts it again on the same datadir and port.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.launch() {
            panic!("port {} was taken while restarting:\n{log}", self.port);
        }
    }

    /// A `Command` for a MariaDB client tool (`mariadb`, `mariadb-dump`, ...) connected as root
    /// over the socket, with `--no-defaults` and the `MYSQL_*` environment cleared.
    pub fn client(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.arg("--no-defaults")
            .arg("-uroot")
            .arg(format!("--socket={}", self.socket().display()));
        for var in [
            "MYSQL_PWD",
            "MYSQL_HOST",
            "MYSQL_TCP_PORT",
            "MYSQL_UNIX_PORT",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn mariadb(&self) -> Command {
        let mut cmd = self.client("mariadb");
        cmd.args([
            "--batch",
            "--skip-column-names",
            "--default-character-set=utf8mb4",
        ]);
        cmd
    }

    /// Runs SQL (fed through stdin, so `DELIMITER` works) over the socket as root and returns the
    /// tab-separated rows (`mariadb --batch` escaping, lossy UTF-8), or stderr on failure.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        result(run_with_input(self.mariadb(), sql.as_bytes()))
    }

    /// Like [`try_sql`](Self::try_sql) but panics with stderr on failure.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\nSQL: {}", truncate(sql, 2000)))
    }

    /// Loads a `.sql` file through the `mariadb` client's stdin; panics with stderr on failure.
    pub fn sql_file(&self, path: &Path) -> String {
        let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let out = self.mariadb().stdin(file).output().expect("run mariadb");
        result(out).unwrap_or_else(|e| panic!("loading {} failed: {e}", path.display()))
    }

    /// First column of the first row, trimmed; panics if there are no rows.
    pub fn query_value(&self, sql: &str) -> String {
        let out = self.sql(sql);
        let line = out
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no rows from: {sql}"));
        line.split('\t').next().unwrap_or("").trim().to_string()
    }

    /// Rows of `SELECT ID, COMMAND, INFO FROM information_schema.PROCESSLIST`, tab-separated.
    pub fn processlist(&self) -> Vec<String> {
        let out =
            self.sql("SELECT ID, COMMAND, INFO FROM information_schema.PROCESSLIST ORDER BY ID");
        out.lines().map(str::to_string).collect()
    }

    /// `KILL CONNECTION id`; `Err` carries the client's stderr (e.g. unknown thread id).
    pub fn kill_connection(&self, id: u64) -> Result<(), String> {
        self.try_sql(&format!("KILL CONNECTION {id}")).map(|_| ())
    }

    /// mysnap CLI connection flags for this server over TCP: `-h 127.0.0.1 -P port -u root`.
    pub fn conn_args(&self) -> Vec<String> {
        login_args(self.port, "root")
    }

    /// mysnap CLI connection flags for this server over the socket: `-S sock -u root`.
    pub fn socket_args(&self) -> Vec<String> {
        vec![
            "-S".into(),
            self.socket().display().to_string(),
            "-u".into(),
            "root".into(),
        ]
    }

    /// `mariadb-dump` of `databases` (schema, rows, routines, triggers, events) as raw bytes,
    /// with `SET NAMES binary` and every string as hex so the stored bytes are compared exactly.
    /// The only normalisation: runs of `INSERT` lines (one row each) are sorted, because tables
    /// without a primary key have no defined row order. Comments (host, version) are skipped.
    pub fn canonical_dump(&self, databases: &[&str]) -> Vec<u8> {
        let mut cmd = self.client("mariadb-dump");
        cmd.args([
            "--skip-dump-date",
            "--skip-comments",
            "--order-by-primary",
            "--hex-blob",
            "--routines",
            "--triggers",
            "--events",
            "--skip-extended-insert",
            "--default-character-set=binary",
            "--databases",
        ])
        .args(databases);
        let out = cmd.stdin(Stdio::null()).output().expect("run mariadb-dump");
        assert!(
            out.status.success(),
            "mariadb-dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
        let mut i = 0;
        while i < lines.len() {
            let n = lines[i..]
                .iter()
                .take_while(|l| l.starts_with(b"INSERT INTO "))
                .count();
            lines[i..i + n].sort_unstable();
            i += n.max(1);
        }
        lines.join(&b'\n')
    }

    /// `(db.table, CHECKSUM TABLE ... EXTENDED)` for every base table of `databases`, sorted.
    pub fn table_checksums(&self, databases: &[&str]) -> Vec<(String, String)> {
        let list = self.sql(&format!(
            "SELECT HEX(TABLE_SCHEMA), HEX(TABLE_NAME) FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN ({}) ORDER BY 1, 2",
            in_list(databases)
        ));
        let tables: Vec<(String, String)> = list
            .lines()
            .map(|l| {
                let (db, t) = l.split_once('\t').expect("two columns");
                (unhex(db), unhex(t))
            })
            .collect();
        let stmts: String = tables
            .iter()
            .map(|(d, t)| {
                format!(
                    "CHECKSUM TABLE {}.{} EXTENDED;\n",
                    quote_ident(d),
                    quote_ident(t)
                )
            })
            .collect();
        let out = if stmts.is_empty() {
            String::new()
        } else {
            self.sql(&stmts)
        };
        let sums: Vec<&str> = out
            .lines()
            .map(|l| l.rsplit('\t').next().unwrap_or(""))
            .collect();
        assert_eq!(sums.len(), tables.len(), "CHECKSUM TABLE output:\n{out}");
        tables
            .iter()
            .zip(sums)
            .map(|((d, t), s)| (format!("{d}.{t}"), s.to_string()))
            .collect()
    }

    /// Names of the tables (and views) of `db`, sorted.
    pub fn table_names(&self, db: &str) -> Vec<String> {
        self.sql(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' ORDER BY 1"
        ))
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// `name<TAB>charset<TAB>collation` of each of `databases` that exists, sorted by name.
    pub fn database_charsets(&self, databases: &[&str]) -> Vec<String> {
        let q = format!(
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
             FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({}) ORDER BY 1",
            in_list(databases)
        );
        self.sql(&q).lines().map(str::to_string).collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_process(true);
    }
}

/// Panics unless `source` and `target` hold the same `dbs`: canonical dumps, table checksums and
/// database charsets/collations. On a dump mismatch both dumps are kept in files under
/// `CARGO_TARGET_TMPDIR/mismatch/` and the panic shows their paths and the first differing lines.
pub fn assert_same_data(source: &TestServer, target: &TestServer, dbs: &[&str]) {
    let (a, b) = (source.database_charsets(dbs), target.database_charsets(dbs));
    assert_eq!(
        a, b,
        "database charsets/collations differ (left: source, right: target)"
    );
    let (a, b) = (source.canonical_dump(dbs), target.canonical_dump(dbs));
    if a != b {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("mismatch")
            .join(format!(
                "{}-{}-{nanos}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
        fs::create_dir_all(&dir).expect("create mismatch dir");
        let (pa, pb) = (dir.join("source.sql"), dir.join("target.sql"));
        fs::write(&pa, &a).expect("write source dump");
        fs::write(&pb, &b).expect("write target dump");
        panic!(
            "canonical dumps of {dbs:?} differ\n  source: {}\n  target: {}\n{}",
            pa.display(),
            pb.display(),
            diff_excerpt(&String::from_utf8_lossy(&a), &String::from_utf8_lossy(&b))
        );
    }
    let (a, b) = (source.table_checksums(dbs), target.table_checksums(dbs));
    let bad: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
    assert!(
        a.len() == b.len() && bad.is_empty(),
        "table checksums differ (source, target): {bad:?}"
    );
}

/// Creates `db` with the given InnoDB tables (`(name, rows)`, ~210 raw bytes a row) and,
/// if `myisam` is set, a MyISAM table of that name with 100 rows. Analyzed, so that a
/// dump's size estimates (and so its chunking) are right.
pub fn fill_db(server: &TestServer, db: &str, tables: &[(&str, usize)], myisam: Option<&str>) {
    let mut sql = format!("CREATE DATABASE {db}; USE {db};\n");
    let mut all: Vec<(&str, usize, &str)> = tables.iter().map(|&(t, n)| (t, n, "InnoDB")).collect();
    all.extend(myisam.map(|t| (t, 100, "MyISAM")));
    for (t, rows, engine) in all {
        sql += &format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(255) NOT NULL) ENGINE={engine};
             INSERT INTO {t} SELECT seq, CONCAT(seq, ':', REPEAT(CHAR(65 + seq % 26), 200)) FROM seq_1_to_{rows};
             ANALYZE TABLE {t};\n"
        );
    }
    server.sql(&sql);
}

/// The few lines around the first difference, `-` for `a` and `+` for `b`.
pub fn diff_excerpt(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let pre = la.iter().zip(&lb).take_while(|(x, y)| x == y).count();
    let suf = la[pre..]
        .iter()
        .rev()
        .zip(lb[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut s = format!("@@ first difference at line {} @@\n", pre + 1);
    for l in &la[pre.saturating_sub(3)..pre] {
        s += &format!(" {}\n", truncate(l, 300));
    }
    for (sign, lines) in [
        ('-', &la[pre..la.len() - suf]),
        ('+', &lb[pre..lb.len() - suf]),
    ] {
        for l in lines.iter().take(15) {
            s += &format!("{sign}{}\n", truncate(l, 300));
        }
        if lines.len() > 15 {
            s += &format!("{sign}... ({} more lines)\n", lines.len() - 15);
        }
    }
    s
}

/// Path of the `mysnap` binary built by cargo for this test run.
pub fn mysnap_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mysnap"))
}

/// Clears what the developer's environment could change in a mysnap run: `HOME` (and
/// with it `~/.my.cnf` and the restore-rates file) is a directory of the test run's own,
/// and the client's variables are unset.
pub fn isolate(cmd: &mut Command) -> &mut Command {
    static HOME: OnceLock<TempDir> = OnceLock::new();
    let home = HOME.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("mysnap-test-home-")
            .tempdir()
            .expect("a home for mysnap")
    });
    cmd.env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"));
    for var in [
        "MYSQL_PWD",
        "MYSQL_HOST",
        "MYSQL_TCP_PORT",
        "MYSQL_UNIX_PORT",
        "MYSQL_GROUP_SUFFIX",
        "MYSQL_TEST_LOGIN_FILE",
        "MYSQL_HOME",
        "MARIADB_HOME",
        "MYSNAP_LOG",
        "MYSNAP_REPO",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A `Command` for the mysnap binary, its environment isolated ([`isolate`]).
pub fn mysnap_command() -> Command {
    let mut cmd = Command::new(mysnap_bin());
    isolate(&mut cmd);
    cmd
}

/// Runs `mysnap` with `args` and returns its output (never panics on a failing exit status).
pub fn run_mysnap<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    mysnap_command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mysnap")
}

/// Runs `mysnap` with `args`; panics with its stdout/stderr unless it exits successfully.
pub fn run_mysnap_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let out = run_mysnap(args);
    assert!(
        out.status.success(),
        "mysnap failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Quotes an identifier with backticks (embedded backticks doubled).
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a string literal with single quotes (backslashes and quotes escaped).
pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn in_list(items: &[&str]) -> String {
    if items.is_empty() {
        return "NULL".into();
    }
    items
        .iter()
        .map(|s| quote_str(s))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unhex(h: &str) -> String {
    let bytes: Vec<u8> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
        .collect();
    String::from_utf8(bytes).expect("utf8 identifier")
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn result(out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `cmd` with `input` on stdin (written from a thread, so big inputs cannot deadlock).
fn run_with_input(mut cmd: Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn client");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            let _ = stdin.write_all(input);
        });
        child.wait_with_output().expect("wait for client")
    })
}

/// Whether the tests run as root (permissions do not stop root).
pub fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A pristine datadir from `mariadb-install-db`, built once and cached in `CARGO_TARGET_TMPDIR`
/// (keyed by the mariadbd version and install flags); servers start from a `cp -a` of it.
fn template_datadir() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let version = Command::new("mariadbd")
            .arg("--version")
            .output()
            .expect("run mariadbd --version");
        let mut h = DefaultHasher::new();
        (&version.stdout, INSTALL_ARGS, is_root(), "v1").hash(&mut h);
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dst = root.join(format!("mariadb-template-{:016x}", h.finish()));
        if dst.is_dir() {
            return dst;
        }
        fs::create_dir_all(root).expect("create CARGO_TARGET_TMPDIR");
        let work = tempfile::Builder::new()
            .prefix(".mariadb-template-")
            .tempdir_in(root)
            .expect("tempdir");
        let data = work.path().join("data");
        let mut cmd = Command::new("mariadb-install-db");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(INSTALL_ARGS);
        if is_root() {
            cmd.arg("--user=root");
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Atomic publish; if a concurrent test process won the race, use its copy.
        if let Err(e) = fs::rename(&data, &dst) {
            assert!(dst.is_dir(), "publishing template {}: {e}", dst.display());
        }
        dst
    })
}
