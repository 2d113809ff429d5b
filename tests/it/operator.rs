//! Operator conventions: shell completions and manual pages generated from the command
//! line's own definitions, Prometheus metrics files, and the systemd units.

use crate::support;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use support::{one_error_line, run_mysnap, run_mysnap_ok, stdout, TestServer};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The commands `mysnap --help` lists, and the commands of a group (`binlog`).
fn commands(group: Option<&str>) -> Vec<String> {
    let mut args = vec![];
    if let Some(g) = group {
        args.push(g.to_string());
    }
    args.push("--help".into());
    let help = stdout(&run_mysnap_ok(&args));
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_and_manual_pages_cover_every_command() {
    let top = commands(None);
    let binlog = commands(Some("binlog"));
    assert!(
        top.len() >= 12 && top.contains(&"binlog".to_string()),
        "{top:?}"
    );
    assert_eq!(binlog, vec!["archive".to_string(), "status".into()]);
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&run_mysnap_ok(&["completions", shell]));
        for c in top.iter().chain(&binlog) {
            assert!(script.contains(c.as_str()), "{shell} completion lacks {c}");
        }
        // Flags of a nested command too.
        assert!(
            script.contains("after-gap"),
            "{shell} completion lacks --after-gap"
        );
    }
    one_error_line(&run_mysnap(&["completions", "tcsh"]), &["tcsh"]);

    let dir = support::tempdir("mysnap-man-");
    let out = stdout(&run_mysnap_ok(&["man", "--output", &s(dir.path())]));
    assert!(out.contains("manual pages"), "{out}");
    let main = std::fs::read_to_string(dir.path().join("mysnap.1")).unwrap();
    assert!(
        main.starts_with(".ie") || main.contains(".TH"),
        "not a manual page"
    );
    for c in &top {
        assert!(main.contains(c.as_str()), "mysnap.1 does not mention {c}");
        let page = dir.path().join(format!("mysnap-{c}.1"));
        assert!(page.exists(), "no {}", page.display());
    }
    let archive = std::fs::read_to_string(dir.path().join("mysnap-binlog-archive.1")).unwrap();
    assert!(archive.contains("after\\-gap") || archive.contains("after-gap"));
    let dump = std::fs::read_to_string(dir.path().join("mysnap-dump.1")).unwrap();
    assert!(dump.contains("metrics\\-file") || dump.contains("metrics-file"));
}

/// Parses a metrics file with an exposition-format parser: `name{labels}` → value.
fn metrics(path: &Path) -> HashMap<String, f64> {
    let text = std::fs::read_to_string(path).expect("the metrics file");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
    assert!(!scrape.samples.is_empty());
    scrape
        .samples
        .iter()
        .map(|s| {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let value = match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{} is not a gauge: {other:?}", s.metric),
            };
            (format!("{}{{{}}}", s.metric, labels.join(",")), value)
        })
        .collect()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn metrics_files_say_when_each_command_last_succeeded_and_what_it_did() {
    let source = TestServer::start();
    support::fill_db(&source, "d", &[("a", 500), ("b", 300)], None);
    let dir = support::tempdir("mysnap-metrics-");
    let repo = dir.path().join("repo");
    run_mysnap_ok(&["init", "--repo", &s(&repo)]);
    let prom = dir.path().join("dump.prom");
    let mut args = vec!["dump".to_string()];
    args.extend(source.conn_args());
    args.extend([
        "-B".into(),
        "d".into(),
        "--repo".into(),
        s(&repo),
        "-q".into(),
    ]);
    args.extend(["--metrics-file".into(), s(&prom)]);
    run_mysnap_ok(&args);
    let m = metrics(&prom);
    let repo_label = format!("repository={}", repo.display());
    assert_eq!(m["mysnap_last_run_success{command=dump}"], 1.0);
    let success = m["mysnap_last_success_timestamp_seconds{command=dump}"];
    assert!((now() - success).abs() < 120.0, "{success}");
    assert_eq!(m["mysnap_dump_rows{command=dump}"], 800.0);
    assert_eq!(m["mysnap_dump_tables{command=dump}"], 2.0);
    assert!(m["mysnap_dump_global_lock_seconds{command=dump}"] >= 0.0);
    assert_eq!(
        m[&format!("mysnap_restorable_snapshots{{command=dump,{repo_label}}}")],
        1.0
    );
    // Readable by the exporter, written whole (no temporary file left beside it).
    assert_eq!(
        std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".mysnap-metrics")
        })
        .collect();
    assert!(leftovers.is_empty());
    // A failed run says so and keeps the last success time.
    let mut bad = vec!["dump".to_string()];
    bad.extend(source.conn_args());
    bad.extend([
        "-B".into(),
        "nosuchdb".into(),
        "--repo".into(),
        s(&repo),
        "--metrics-file".into(),
        s(&prom),
    ]);
    one_error_line(&run_mysnap(&bad), &["nosuchdb"]);
    let m = metrics(&prom);
    assert_eq!(m["mysnap_last_run_success{command=dump}"], 0.0);
    assert_eq!(
        m["mysnap_last_success_timestamp_seconds{command=dump}"],
        success
    );

    let v = dir.path().join("verify.prom");
    run_mysnap_ok(&[
        "verify",
        "--all",
        "--repo",
        &s(&repo),
        "--metrics-file",
        &s(&v),
    ]);
    let m = metrics(&v);
    assert_eq!(m["mysnap_last_run_success{command=verify}"], 1.0);
    assert_eq!(
        m[&format!("mysnap_restorable_snapshots{{command=verify,{repo_label}}}")],
        1.0
    );

    let f = dir.path().join("forget.prom");
    run_mysnap_ok(&[
        "forget",
        "--repo",
        &s(&repo),
        "--keep-last",
        "1",
        "--dry-run",
        "--metrics-file",
        &s(&f),
    ]);
    let m = metrics(&f);
    assert_eq!(m["mysnap_forget_kept_snapshots{command=forget}"], 1.0);
    assert_eq!(m["mysnap_forget_removed_snapshots{command=forget}"], 0.0);

    source.sql("USE d; INSERT INTO a SELECT 100000 + seq, 'x' FROM seq_1_to_10");
    let b = dir.path().join("binlog.prom");
    let mut args = vec!["binlog".to_string(), "archive".into()];
    args.extend(source.conn_args());
    args.extend([
        "--repo".into(),
        s(&repo),
        "--once".into(),
        "-q".into(),
        "--metrics-file".into(),
        s(&b),
    ]);
    run_mysnap_ok(&args);
    let m = metrics(&b);
    assert_eq!(m["mysnap_last_run_success{command=binlog_archive}"], 1.0);
    let last = m[&format!("mysnap_binlog_last_archived_event_timestamp_seconds{{command=binlog_archive,{repo_label}}}")];
    assert!((now() - last).abs() < 120.0, "{last}");
    assert_eq!(
        m[&format!("mysnap_binlog_archive_lag_seconds{{command=binlog_archive,{repo_label}}}")],
        0.0
    );
    // Every report in JSON carries its schema version (docs/JSON.md).
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&run_mysnap_ok(args).stdout).expect("JSON")
    };
    let r = s(&repo);
    for v in [
        json(&["list", "--repo", &r, "--json"])[0].clone(),
        json(&[
            "forget",
            "--repo",
            &r,
            "--keep-last",
            "1",
            "--dry-run",
            "--json",
        ])[0]
            .clone(),
        json(&["verify", "latest", "--repo", &r, "--json"])[0].clone(),
        json(&["binlog", "status", "--repo", &r, "--json"]),
    ] {
        assert_eq!(v["schema_version"], 1, "{v}");
    }
    let target = TestServer::start();
    let mut args = vec!["restore", "latest", "--repo", &r, "--dry-run", "--json"];
    let conn = target.conn_args();
    args.extend(conn.iter().map(String::as_str));
    let plan = json(&args);
    assert_eq!(plan["schema_version"], 1, "{plan}");
    assert_eq!(plan["rows"], 800, "{plan}");
    assert!(plan["predicted_seconds"].is_number(), "{plan}");
    // A metrics file in a place that cannot be written fails the run with one line.
    let mut args = vec![
        "verify".to_string(),
        "--all".into(),
        "--repo".into(),
        s(&repo),
    ];
    args.extend(["--metrics-file".into(), "/nonexistent-dir/x.prom".into()]);
    one_error_line(&run_mysnap(&args), &["/nonexistent-dir"]);
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed here");
        return;
    }
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let dir = support::tempdir("mysnap-units-");
    let mut files = Vec::new();
    for name in [
        "mysnap-binlog-archive.service",
        "mysnap-snapshot.service",
        "mysnap-snapshot.timer",
    ] {
        let text = std::fs::read_to_string(units.join(name)).unwrap();
        // The units name the installed binary; here, the one under test.
        let text = text.replace("/usr/local/bin/mysnap", &s(&support::mysnap_bin()));
        std::fs::write(dir.path().join(name), text).unwrap();
        files.push(s(&dir.path().join(name)));
    }
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&files)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("mysnap")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {err}"
    );
}

#[test]
fn exit_codes_tell_usage_connection_verification_and_other_failures_apart() {
    let code = |args: &[&str]| run_mysnap(args).status.code();
    // Usage: 2.
    assert_eq!(
        code(&["dump", "--threads", "0", "--output", "/tmp/x"]),
        Some(2)
    );
    // The server cannot be reached: 3.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = support::tempdir("mysnap-exit-");
    let out = dir.path().join("d");
    assert_eq!(
        code(&[
            "dump",
            "-h",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-u",
            "root",
            "-B",
            "x",
            "--output",
            &s(&out)
        ]),
        Some(3)
    );
    // Data that fails a check: 4.
    let source = TestServer::start();
    support::fill_db(&source, "d", &[("a", 200)], None);
    let mut args = vec!["dump".to_string()];
    args.extend(source.conn_args());
    args.extend([
        "-B".into(),
        "d".into(),
        "--output".into(),
        s(&out),
        "-q".into(),
    ]);
    run_mysnap_ok(&args);
    assert_eq!(code(&["verify", &s(&out)]), Some(0));
    let file = walk(&out)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/data/"))
        .expect("a data file");
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
    assert_eq!(code(&["verify", &s(&out)]), Some(4));
    // Anything else: 1 (a repository that is not one).
    assert_eq!(code(&["list", "--repo", &s(dir.path())]), Some(1));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
