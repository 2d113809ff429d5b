//! The snapshot repository: IDs, list, show, restore by ID, verify, retention, protection,
//! and what faults (a full disk, a read-only repository, a missing or altered object,
//! kill -9 anywhere, a dump and a forget at once) must never do: list an incomplete
//! snapshot as restorable, or lose a complete one.

use crate::support;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{
    assert_same_data, fill_db, is_root, one_error_line, run_mysnap, run_mysnap_ok, stdout, Running,
    TestServer,
};

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn init(repo: &Path, extra: &[&str]) {
    let mut args = vec!["init".to_string(), "--repo".into(), s(repo)];
    args.extend(extra.iter().map(|a| a.to_string()));
    run_mysnap_ok(&args);
}

fn dump_args(server: &TestServer, repo: &Path, dbs: &[&str], extra: &[&str]) -> Vec<String> {
    let mut v = vec!["dump".to_string()];
    v.extend(server.conn_args());
    for db in dbs {
        v.extend(["-B".to_string(), db.to_string()]);
    }
    v.extend(["--repo".to_string(), s(repo)]);
    v.extend(extra.iter().map(|a| a.to_string()));
    v
}

/// Dumps into the repository and returns the new snapshot's ID (`-q` prints only it).
fn dump(server: &TestServer, repo: &Path, dbs: &[&str], extra: &[&str]) -> String {
    let mut args = dump_args(server, repo, dbs, extra);
    args.push("-q".into());
    let id = stdout(&run_mysnap_ok(&args)).trim().to_string();
    assert!(
        id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "dump -q prints the ID: {id:?}"
    );
    id
}

fn list_json(repo: &Path) -> Vec<serde_json::Value> {
    let out = run_mysnap_ok(&["list", "--repo", &s(repo), "--json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("list --json prints JSON")
        .as_array()
        .expect("an array")
        .clone()
}

/// id → restorable, for every listed snapshot.
fn listed(repo: &Path) -> BTreeMap<String, bool> {
    list_json(repo)
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["restorable"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn data_objects(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(dirs) = fs::read_dir(repo.join("data")) else {
        return out;
    };
    for d in dirs {
        for f in fs::read_dir(d.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

fn restore(target: &TestServer, repo: &Path, id: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "restore".to_string(),
        id.to_string(),
        "--repo".into(),
        s(repo),
    ];
    args.extend(target.conn_args());
    args.extend(extra.iter().map(|a| a.to_string()));
    run_mysnap(&args)
}

/// Restores snapshot `id` into a fresh server and checks it holds `dbs` as `like` does.
fn assert_restores_as(like: &TestServer, repo: &Path, id: &str, dbs: &[&str]) -> TestServer {
    let target = TestServer::start();
    let out = restore(&target, repo, id, &[]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert_same_data(like, &target, dbs);
    target
}

fn user_databases(server: &TestServer) -> Vec<String> {
    server
        .sql(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN \
             ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every directory 0700 and file 0600 under `root`.
fn assert_private(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", p.display());
            }
        }
    }
}

#[test]
fn snapshots_are_listed_restored_by_id_verified_and_kept_by_retention() {
    let source = TestServer::start();
    fill_db(
        &source,
        "shop",
        &[("orders", 3000), ("items", 2000)],
        Some("legacy"),
    );
    fill_db(&source, "static", &[("countries", 500)], None);
    let dir = support::tempdir("mysnap-repo-");
    let repo = dir.path().join("repo");
    // Whatever the umask, what the repository holds is private. The umask is set in
    // the children only: the test process's is shared by the tests running beside it.
    let under_umask_0 = |args: &[String]| {
        let out = support::isolate(&mut std::process::Command::new("sh"))
            .arg("-c")
            .arg("umask 000; exec \"$0\" \"$@\"")
            .arg(support::mysnap_bin())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", support::stderr(&out));
        stdout(&out).trim().to_string()
    };
    under_umask_0(&["init".to_string(), "--repo".into(), s(&repo)]);
    let mut args = dump_args(&source, &repo, &["shop", "static"], &["--tag", "nightly"]);
    args.push("-q".into());
    let first = under_umask_0(&args);
    assert!(first.len() == 8, "dump -q prints the ID: {first:?}");
    source.sql("UPDATE shop.orders SET v = CONCAT(v, 'x') WHERE id <= 10");
    let second = dump(&source, &repo, &["shop", "static"], &["--keep-forever"]);
    assert_ne!(first, second);
    assert_private(&repo);

    // list: oldest first, both restorable, what an operator needs to choose.
    let all = list_json(&repo);
    let ids: Vec<&str> = all.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    for v in &all {
        assert_eq!(v["restorable"], true, "{v}");
        assert_eq!(v["databases"], serde_json::json!(["shop", "static"]));
        assert!(v["stored_bytes"].as_u64().unwrap() > 0);
        assert!(v["created"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(all[0]["tags"], serde_json::json!(["nightly"]));
    assert_eq!(all[1]["protected"], true);
    let text = stdout(&run_mysnap_ok(&["list", "--repo", &s(&repo)]));
    let header = text.lines().next().unwrap();
    for col in [
        "Created",
        "Snapshot ID",
        "Restorable",
        "Databases",
        "Stored",
        "Duration",
        "Tags",
    ] {
        assert!(header.contains(col), "{text}");
    }
    assert!(text.contains(&first) && text.contains("nightly"), "{text}");

    // Unchanged tables are stored once: the second snapshot shares their objects.
    let files_per_snapshot = |id: &str| -> usize {
        let out = run_mysnap_ok(&["show", id, "--repo", &s(&repo), "--json"]);
        let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        m["totals"]["files"].as_u64().unwrap() as usize
    };
    let stored = data_objects(&repo).len();
    let total = files_per_snapshot(&first) + files_per_snapshot(&second);
    assert!(
        stored < total,
        "{stored} objects for {total} files: nothing shared"
    );

    // Restore by a unique prefix, and `latest`: each the snapshot it names.
    let target = TestServer::start();
    let out = restore(&target, &repo, &first[..5], &[]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let old_orders =
        target.query_value("SELECT COUNT(*) FROM shop.orders WHERE v LIKE BINARY '%x'");
    assert_eq!(old_orders, "0", "the first snapshot predates the update");
    let latest = assert_restores_as(&source, &repo, "latest", &["shop", "static"]);

    // verify --all reads every object and records the outcome that list shows.
    let out = run_mysnap_ok(&["verify", "--all", "--repo", &s(&repo), "--json"]);
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checks.as_array().unwrap().len(), 2);
    assert!(
        checks.as_array().unwrap().iter().all(|c| c["ok"] == true),
        "{checks}"
    );
    assert!(list_json(&repo)
        .iter()
        .all(|v| v["last_verified"]["ok"] == true));

    // Retention: keep-last 1 keeps the newest; the protected one stays whatever the rule.
    let third = dump(&source, &repo, &["static"], &[]);
    let out = run_mysnap_ok(&[
        "forget",
        "--repo",
        &s(&repo),
        "--keep-last",
        "1",
        "--dry-run",
    ]);
    let plan = stdout(&out);
    assert!(plan.contains(&format!("remove {first}")), "{plan}");
    assert!(
        plan.contains(&format!("keep   {second}")) && plan.contains("protected"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("keep   {third}")) && plan.contains("keep-last 1"),
        "{plan}"
    );
    assert_eq!(listed(&repo).len(), 3, "a dry run changes nothing");
    let before = data_objects(&repo).len();
    run_mysnap_ok(&["forget", "--repo", &s(&repo), "--keep-last", "1", "--prune"]);
    assert_eq!(listed(&repo).keys().cloned().collect::<Vec<_>>(), {
        let mut v = vec![second.clone(), third.clone()];
        v.sort();
        v
    });
    let after = data_objects(&repo).len();
    assert!(
        after < before,
        "the prune freed the first snapshot's own objects"
    );
    run_mysnap_ok(&["verify", "--all", "--repo", &s(&repo)]);
    assert_restores_as(&latest, &repo, &second, &["shop", "static"]);

    // The default policy (7 days) keeps everything this young; protect --remove then
    // delete removes a snapshot for good.
    let out = stdout(&run_mysnap_ok(&["forget", "--repo", &s(&repo)]));
    assert!(out.contains("keep-within 7days"), "{out}");
    assert_eq!(listed(&repo).len(), 2);
    run_mysnap_ok(&["protect", &second, "--repo", &s(&repo), "--remove"]);
    run_mysnap_ok(&["delete", &second, "--repo", &s(&repo)]);
    assert_eq!(listed(&repo).keys().collect::<Vec<_>>(), [&third]);
    run_mysnap_ok(&["verify", &third, "--repo", &s(&repo)]);
    assert!(
        !repo.join(".tmp").exists() || fs::read_dir(repo.join(".tmp")).unwrap().next().is_none(),
        "no staging left"
    );
}

#[test]
fn the_repository_may_come_from_the_environment_or_an_option_file() {
    let source = TestServer::start();
    fill_db(&source, "d", &[("t", 100)], None);
    let dir = support::tempdir("mysnap-repo-");
    let (repo, other) = (dir.path().join("repo"), dir.path().join("other"));
    init(&repo, &[]);
    init(&other, &[]);
    let mut args = vec!["dump".to_string()];
    args.extend(source.conn_args());
    args.extend(["-B".into(), "d".into(), "-q".into()]);
    let out = support::mysnap_command()
        .args(&args)
        .env("MYSNAP_REPO", &repo)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert_eq!(listed(&repo).len(), 1);
    // [mysnap] repo = in an option file; the environment comes before it.
    let cnf = dir.path().join("my.cnf");
    fs::write(&cnf, format!("[mysnap]\nrepo = {}\n", other.display())).unwrap();
    let with_file = |env: Option<&Path>| {
        let mut cmd = support::mysnap_command();
        cmd.arg("list")
            .arg(format!("--defaults-file={}", cnf.display()))
            .arg("--json");
        if let Some(e) = env {
            cmd.env("MYSNAP_REPO", e);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", support::stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(with_file(None), 0, "the option file's (empty) repository");
    assert_eq!(
        with_file(Some(&repo)),
        1,
        "MYSNAP_REPO wins over the option file"
    );
}

#[test]
fn bad_repositories_and_ids_fail_with_one_line() {
    let source = TestServer::start();
    fill_db(&source, "d", &[("t", 200)], None);
    let dir = support::tempdir("mysnap-repo-");
    let repo = dir.path().join("repo");
    let r = s(&repo);

    // Not a repository: every command says so and how to make one.
    let plain = dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("notes.txt"), b"keep me").unwrap();
    for cmd in [
        vec!["list", "--repo", plain.to_str().unwrap()],
        vec!["forget", "--repo", plain.to_str().unwrap()],
        vec!["verify", "--all", "--repo", plain.to_str().unwrap()],
        vec!["delete", "abcd", "--repo", plain.to_str().unwrap()],
    ] {
        let out = run_mysnap(&cmd);
        one_error_line(&out, &["not a mysnap repository", "mysnap init --repo"]);
    }
    let out = run_mysnap(&dump_args(&source, &plain, &["d"], &[]));
    one_error_line(&out, &["not a mysnap repository"]);
    let out = run_mysnap(&["init", "--repo", plain.to_str().unwrap()]);
    one_error_line(&out, &["not empty"]);
    assert_eq!(fs::read(plain.join("notes.txt")).unwrap(), b"keep me");
    let out = run_mysnap(&["list"]);
    one_error_line(&out, &["--repo", "MYSNAP_REPO"]);

    init(&repo, &[]);
    let out = run_mysnap(&["init", "--repo", &r]);
    one_error_line(&out, &["repository already"]);
    let id = dump(&source, &repo, &["d"], &[]);

    // Unknown, malformed and ambiguous IDs.
    let unknown = if id.starts_with('f') { "0000" } else { "ffff" };
    let out = run_mysnap(&["show", unknown, "--repo", &r]);
    one_error_line(&out, &["no snapshot", unknown]);
    let target = TestServer::start();
    let out = restore(&target, &repo, unknown, &[]);
    one_error_line(&out, &["no snapshot", unknown]);
    let twin = format!(
        "{}{}",
        &id[..1],
        if &id[1..2] == "0" {
            "1234567"
        } else {
            "0000000"
        }
    );
    fs::copy(
        repo.join(format!("snapshots/{id}.json")),
        repo.join(format!("snapshots/{twin}.json")),
    )
    .unwrap();
    let out = run_mysnap(&["show", &id[..1], "--repo", &r]);
    one_error_line(&out, &["ambiguous", &id, &twin]);
    fs::remove_file(repo.join(format!("snapshots/{twin}.json"))).unwrap();
    let out = run_mysnap(&["delete", "latest", "--repo", &r]);
    one_error_line(&out, &["name the snapshot"]);
    let out = run_mysnap(&dump_args(&source, &repo, &["d"], &["--tag", "no spaces"]));
    one_error_line(&out, &["--tag", "no spaces"]);

    // A repository of a newer layout is refused, not misread.
    let config = fs::read_to_string(repo.join("config")).unwrap();
    fs::write(
        repo.join("config"),
        config.replace("\"version\": 1", "\"version\": 99"),
    )
    .unwrap();
    let out = run_mysnap(&["list", "--repo", &r]);
    one_error_line(&out, &["version 99"]);
    fs::write(repo.join("config"), &config).unwrap();
    assert_eq!(listed(&repo).len(), 1);
}

/// A bit flipped in the middle of a file of `path`.
fn flip_bit(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x04;
    let mode = fs::metadata(path).unwrap().permissions();
    fs::write(path, &bytes).unwrap();
    fs::set_permissions(path, mode).unwrap();
}

#[test]
fn missing_or_altered_objects_make_a_snapshot_unrestorable_before_the_target_is_touched() {
    let source = TestServer::start();
    fill_db(&source, "d", &[("a", 2000), ("b", 2000)], None);
    let dir = support::tempdir("mysnap-repo-");
    let repo = dir.path().join("repo");
    let r = s(&repo);
    init(&repo, &[]);
    let missing = dump(&source, &repo, &["d"], &["--chunk-size", "64K"]);
    let objects_a: HashSet<PathBuf> = data_objects(&repo).into_iter().collect();
    source.sql("UPDATE d.a SET v = CONCAT('changed', v); UPDATE d.b SET v = CONCAT('changed', v)");
    let flipped = dump(&source, &repo, &["d"], &["--chunk-size", "64K"]);
    let objects_b: Vec<PathBuf> = data_objects(&repo)
        .into_iter()
        .filter(|p| !objects_a.contains(p))
        .collect();
    assert!(!objects_b.is_empty());

    // One object of the first snapshot gone: list says so without reading any data.
    let gone = objects_a.iter().next().unwrap();
    fs::remove_file(gone).unwrap();
    let name = gone.file_name().unwrap().to_str().unwrap().to_string();
    let l = listed(&repo);
    assert!(!l[&missing]);
    assert!(l[&flipped]);
    let text = stdout(&run_mysnap_ok(&["list", "--repo", &r]));
    assert!(text.contains(&name) && text.contains("missing"), "{text}");

    // A flipped bit keeps the size: list cannot see it, verify can, and list then knows.
    let victim = &objects_b[objects_b.len() / 2];
    flip_bit(victim);
    let victim_name = victim.file_name().unwrap().to_str().unwrap().to_string();
    assert!(listed(&repo)[&flipped]);
    let out = run_mysnap(&["verify", &flipped, "--repo", &r]);
    one_error_line(
        &out,
        &[&format!("snapshot {flipped}"), &victim_name, "sha256"],
    );
    let l = list_json(&repo);
    let f = l.iter().find(|v| v["id"] == flipped.as_str()).unwrap();
    assert_eq!(f["restorable"], false, "{f}");
    assert_eq!(f["last_verified"]["ok"], false);

    // Neither restores, and the target is left as it was.
    let target = TestServer::start();
    let before = user_databases(&target);
    let out = restore(&target, &repo, &missing, &[]);
    one_error_line(&out, &[&missing, &name]);
    let out = restore(&target, &repo, &flipped, &[]);
    one_error_line(&out, &[&flipped, &victim_name, "sha256"]);
    assert_eq!(user_databases(&target), before, "the target was touched");

    // verify --all names both, and fails.
    let out = run_mysnap(&["verify", "--all", "--repo", &r]);
    one_error_line(&out, &["2 of 2 snapshots failed"]);
    let report = stdout(&out);
    assert!(
        report.contains(&name) && report.contains(&victim_name),
        "{report}"
    );
}

/// Mounts a tmpfs of `size` at `at` (so that a dump fills it); false where that is not
/// allowed (not root).
fn mount_tmpfs(at: &Path, size: &str, read_only: bool) -> bool {
    fs::create_dir_all(at).unwrap();
    let mut opts = format!("size={size},mode=0700");
    if read_only {
        opts.push_str(",ro");
    }
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_or_a_read_only_repository_leaves_no_snapshot_and_prune_cleans_up() {
    let source = TestServer::start();
    // Incompressible rows: 6 MB of random hex does not fit in a 3 MB disk, whatever the codec.
    source.sql(
        "CREATE DATABASE big; USE big; CREATE TABLE big.t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB;
         INSERT INTO big.t SELECT seq, CONCAT(MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND()),
           MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND())) FROM seq_1_to_25000;
         CREATE DATABASE small; USE small; CREATE TABLE small.t (id INT PRIMARY KEY) ENGINE=InnoDB;
         INSERT INTO small.t SELECT seq FROM seq_1_to_100;",
    );
    let dir = support::tempdir("mysnap-repo-");
    let disk = dir.path().join("disk");
    let (repo, _mounted) = if is_root() && mount_tmpfs(&disk, "3m", false) {
        (disk.join("repo"), Some(Unmount(disk.clone())))
    } else {
        panic!("this test needs to mount a small tmpfs (run the tests as root, as CI does)");
    };
    init(&repo, &[]);
    let kept = dump(&source, &repo, &["small"], &[]);
    let out = run_mysnap(&dump_args(
        &source,
        &repo,
        &["big"],
        &["--chunk-size", "256K"],
    ));
    one_error_line(&out, &["no space left"]);
    assert_eq!(
        listed(&repo).into_iter().collect::<Vec<_>>(),
        [(kept.clone(), true)],
        "only the complete snapshot is listed"
    );
    // What the failed dump stored is garbage for the next prune; the complete one stays.
    run_mysnap_ok(&["forget", "--repo", &s(&repo), "--keep-last", "1", "--prune"]);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(repo.join(format!("snapshots/{kept}.json"))).unwrap())
            .unwrap();
    let needed: HashSet<String> = index["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    let present: HashSet<String> = data_objects(&repo)
        .iter()
        .map(|p| p.strip_prefix(&repo).unwrap().display().to_string())
        .collect();
    assert_eq!(
        present, needed,
        "the prune left exactly what the snapshot needs"
    );
    assert!(
        !repo.join(".tmp").exists() || fs::read_dir(repo.join(".tmp")).unwrap().next().is_none(),
        "staging left behind"
    );
    run_mysnap_ok(&["verify", &kept, "--repo", &s(&repo)]);

    // Read-only: a dump fails saying where; list, verify and restore still work.
    let status = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(status.success());
    let out = run_mysnap(&dump_args(&source, &repo, &["small"], &[]));
    one_error_line(&out, &["read-only", &s(&repo)]);
    assert_eq!(listed(&repo).len(), 1);
    run_mysnap_ok(&["verify", &kept, "--repo", &s(&repo)]);
    assert_restores_as(&source, &repo, &kept, &["small"]);
}

#[test]
fn kill_9_anywhere_never_lists_an_incomplete_snapshot_nor_loses_a_complete_one() {
    use rand::Rng;
    let source = TestServer::start();
    fill_db(
        &source,
        "d",
        &[("a", 20000), ("b", 20000), ("c", 5000)],
        None,
    );
    let dir = support::tempdir("mysnap-repo-");
    let repo = dir.path().join("repo");
    let r = s(&repo);
    init(&repo, &[]);
    let mut complete: Vec<String> = vec![dump(&source, &repo, &["d"], &["--chunk-size", "128K"])];
    let mut rng = rand::rng();
    let check = |complete: &[String]| {
        let l = listed(&repo);
        for id in complete {
            assert_eq!(l.get(id), Some(&true), "complete snapshot {id} lost: {l:?}");
        }
        for (id, ok) in &l {
            assert!(ok, "snapshot {id} listed but not restorable: {l:?}");
        }
        run_mysnap_ok(&["verify", "--all", "--repo", &r]);
        l
    };
    for round in 0..6 {
        // A dump killed at a random point.
        let run = Running::spawn(&dump_args(
            &source,
            &repo,
            &["d"],
            &["--chunk-size", "128K", "-q"],
        ));
        std::thread::sleep(Duration::from_millis(rng.random_range(50..1500)));
        let _ = std::process::Command::new("kill")
            .args(["-9", &run.pid().to_string()])
            .status();
        let out = run.finish(Duration::from_secs(60), || "dump did not end".into());
        let l = check(&complete);
        if out.status.success() || l.len() > complete.len() {
            // It finished before the kill: a complete snapshot, listed.
            let new: Vec<String> = l
                .keys()
                .filter(|k| !complete.contains(k))
                .cloned()
                .collect();
            complete.extend(new);
        }
        // A delete or a forget --prune killed at a random point: the snapshot it removes
        // may go or stay, every other one stays.
        if complete.len() > 1 {
            let victim = complete[0].clone();
            let args: Vec<String> = if round % 2 == 0 {
                vec!["delete".into(), victim.clone(), "--repo".into(), r.clone()]
            } else {
                vec![
                    "forget".into(),
                    "--repo".into(),
                    r.clone(),
                    "--keep-last".into(),
                    (complete.len() - 1).to_string(),
                    "--prune".into(),
                ]
            };
            let run = Running::spawn(&args);
            std::thread::sleep(Duration::from_millis(rng.random_range(0..60)));
            let _ = std::process::Command::new("kill")
                .args(["-9", &run.pid().to_string()])
                .status();
            let _ = run.finish(Duration::from_secs(60), || "remove did not end".into());
            let l = check(&complete[1..]);
            if !l.contains_key(&victim) {
                complete.remove(0);
            }
        }
    }
    // The next prune finishes whatever was interrupted; what is left restores exactly.
    run_mysnap_ok(&["forget", "--repo", &r, "--keep-last", "100", "--prune"]);
    check(&complete);
    assert_restores_as(&source, &repo, "latest", &["d"]);
}

#[test]
fn a_dump_and_a_forget_at_once_lose_nothing() {
    let source = TestServer::start();
    fill_db(&source, "d", &[("a", 20000), ("b", 20000)], None);
    let dir = support::tempdir("mysnap-repo-");
    let repo = dir.path().join("repo");
    let r = s(&repo);
    init(&repo, &[]);
    // Older snapshots, one removed (delete, then forget) on each turn while the dump runs.
    let mut olds: std::collections::VecDeque<String> =
        (0..3).map(|_| dump(&source, &repo, &["d"], &[])).collect();
    // Slowed down, so that the removals and prunes run while it writes.
    let mut run = Running::spawn(&dump_args(
        &source,
        &repo,
        &["d"],
        &["--max-rate", "2M", "-q"],
    ));
    let started = Instant::now();
    let (mut removed, mut busy) = (Vec::new(), 0);
    while run.is_running() && started.elapsed() < Duration::from_secs(60) {
        // The running dump's snapshot is not listed until it is complete, so never
        // selected, and its objects are never pruned from under it.
        let l = listed(&repo);
        assert!(
            l.values().all(|ok| *ok),
            "a listed snapshot is not restorable: {l:?}"
        );
        let out = match olds.len() {
            // Only the newest old one left: keep-last 1 keeps it while the dump's
            // snapshot is not listed, and removes it once it is.
            0 | 1 => run_mysnap_ok(&["forget", "--repo", &r, "--keep-last", "1", "--prune"]),
            _ => {
                let victim = olds.pop_front().unwrap();
                let out = run_mysnap_ok(&["delete", &victim, "--repo", &r]);
                removed.push(victim);
                out
            }
        };
        if stdout(&out).contains("not pruned now") {
            busy += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = run.finish(Duration::from_secs(120), || "dump did not end".into());
    assert!(out.status.success(), "{}", support::stderr(&out));
    let new = stdout(&out).trim().to_string();
    assert!(
        removed.len() == 2 && busy >= 2,
        "removals ran while the dump did ({removed:?}, {busy} prunes found it busy)"
    );
    let l = listed(&repo);
    assert_eq!(l.get(&new), Some(&true), "{l:?}");
    for gone in &removed {
        assert!(!l.contains_key(gone), "{gone} was deleted: {l:?}");
    }
    run_mysnap_ok(&["forget", "--repo", &r, "--keep-last", "1", "--prune"]);
    run_mysnap_ok(&["verify", "--all", "--repo", &r]);
    assert_restores_as(&source, &repo, &new, &["d"]);
}

#[test]
fn checksum_catches_a_restore_that_silently_changed_a_value() {
    let source = TestServer::start();
    fill_db(&source, "d", &[("t", 3000), ("u", 500)], None);
    let dir = support::tempdir("mysnap-repo-");
    let repo = dir.path().join("repo");
    init(&repo, &[]);
    let id = dump(&source, &repo, &["d"], &["--chunk-size", "64K"]);

    // A target whose table rewrites one value on insert: no error, no warning.
    let tampering = |target: &TestServer| {
        target.sql(
            "CREATE DATABASE d; USE d;
             CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(255) NOT NULL) ENGINE=InnoDB;
             CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW
               SET NEW.v = IF(NEW.id = 1234, 'changed', NEW.v);",
        );
    };
    let silent = TestServer::start();
    tampering(&silent);
    let out = restore(&silent, &repo, &id, &["--existing", "append"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert_eq!(
        silent.query_value("SELECT v FROM d.t WHERE id = 1234"),
        "changed"
    );

    let checked = TestServer::start();
    tampering(&checked);
    let out = restore(
        &checked,
        &repo,
        &id,
        &["--existing", "append", "--checksum"],
    );
    one_error_line(&out, &["--checksum", "`d`.`t`", "not what the dump read"]);

    // An honest target passes, every table read back.
    let honest = TestServer::start();
    let out = restore(&honest, &repo, &id, &["--checksum"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(
        stdout(&out).contains("checksum: 2 tables read back"),
        "{}",
        stdout(&out)
    );

    // verify --restore-to: restored into scratch databases, read back, dropped; recorded.
    let scratch = TestServer::start();
    let mut args = vec![
        "verify".to_string(),
        id.clone(),
        "--repo".into(),
        s(&repo),
        "--restore-to".into(),
    ];
    args.extend(scratch.conn_args());
    let out = run_mysnap_ok(&args);
    assert!(
        stdout(&out).contains("scratch databases dropped"),
        "{}",
        stdout(&out)
    );
    assert!(
        user_databases(&scratch)
            .iter()
            .all(|d| !d.starts_with("mysnap_verify")),
        "{:?}",
        user_databases(&scratch)
    );
    let v = list_json(&repo);
    assert_eq!(v[0]["last_verified"]["ok"], true, "{v:?}");
    assert_eq!(v[0]["last_verified"]["restored"], true, "{v:?}");
    // And into the tampering server: the scratch copy is fresh, so it passes there too,
    // but the server's own database d was never touched.
    let mut args = vec![
        "verify".to_string(),
        id.clone(),
        "--repo".into(),
        s(&repo),
        "--restore-to".into(),
    ];
    args.extend(silent.conn_args());
    run_mysnap_ok(&args);
    assert_eq!(
        silent.query_value("SELECT v FROM d.t WHERE id = 1234"),
        "changed"
    );
}
