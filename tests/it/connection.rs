//! Connection options as the mysql client takes them: TLS modes, option files, the
//! environment, the unix socket.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::{dump_args_with, run_mysnap, stderr, tcp_args, TestServer};

/// A CA and a server certificate for 127.0.0.1 signed by it, plus an unrelated CA.
fn make_certs(dir: &Path) {
    let sh = format!(
        r#"set -e; cd {dir}
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mysnap-test-ca -keyout ca.key -out ca.pem
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key -out other.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out server.pem"#,
        dir = dir.display()
    );
    let out = Command::new("sh").args(["-c", &sh]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `dump` of `d` into `out`, quietly, over TCP with no user: the login comes from `login`.
fn dump_args(server: &TestServer, out: &Path, login: &[&str]) -> Vec<String> {
    let mut conn = tcp_args(server.port());
    conn.extend(login.iter().map(|s| s.to_string()));
    dump_args_with(&conn, &["d"], out, &["-q"])
}

#[test]
fn ssl_modes_require_and_verify_the_server_certificate() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let p = |f: &str| certs.path().join(f).display().to_string();
    let server = TestServer::start_with(&[
        &format!("--ssl-ca={}", p("ca.pem")),
        &format!("--ssl-cert={}", p("server.pem")),
        &format!("--ssl-key={}", p("server.key")),
    ]);
    server.sql(
        "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY); INSERT INTO d.t VALUES (1);
         CREATE USER 'tls'@'%' IDENTIFIED BY 'pw' REQUIRE SSL; GRANT ALL ON *.* TO 'tls'@'%';",
    );
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let mut flags = vec!["-u", "tls", "-ppw"];
        flags.extend_from_slice(extra);
        run_mysnap(&dump_args(&server, &dir.path().join(name), &flags))
    };
    // The user requires TLS: refusing TLS must fail, every TLS mode must connect.
    let o = run("disabled", &["--ssl-mode", "DISABLED"]);
    assert!(
        !o.status.success() && stderr(&o).contains("Access denied"),
        "{}",
        stderr(&o)
    );
    for (name, extra) in [
        ("preferred", vec![]),
        ("required", vec!["--ssl-mode", "REQUIRED"]),
        ("verify-ca", vec!["--ssl-mode", "VERIFY_CA", "--ssl-ca"]),
        (
            "verify-identity",
            vec!["--ssl-mode", "VERIFY_IDENTITY", "--ssl-ca"],
        ),
    ] {
        let ca = p("ca.pem");
        let mut flags: Vec<&str> = extra.clone();
        if flags.last() == Some(&"--ssl-ca") {
            flags.push(&ca);
        }
        let o = run(name, &flags);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(
            dir.path().join(name).join("manifest.json").is_file(),
            "{name}"
        );
    }
    // A certificate from another CA is refused.
    let other = p("other.pem");
    let o = run("wrong-ca", &["--ssl-mode", "VERIFY_CA", "--ssl-ca", &other]);
    assert!(
        !o.status.success(),
        "a certificate from another CA was accepted"
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("mysnap: error: cannot connect to tls@127.0.0.1:"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("wrong-ca").join("manifest.json").exists());
}

#[test]
fn option_file_environment_and_socket_supply_the_login() {
    let server = TestServer::start();
    server.sql(
        "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY); INSERT INTO d.t VALUES (1);
         CREATE USER 'fromfile'@'%' IDENTIFIED BY 's3 cr#t'; GRANT ALL ON *.* TO 'fromfile'@'%';
         CREATE USER 'fromenv'@'%' IDENTIFIED BY 'envpw'; GRANT ALL ON *.* TO 'fromenv'@'%';",
    );
    let dir = tempfile::tempdir().unwrap();
    let cnf = dir.path().join("my.cnf");
    std::fs::write(&cnf, "[client]\nuser=fromfile\npassword=\"s3 cr#t\"\n").unwrap();
    let defaults = format!("--defaults-file={}", cnf.display());
    let o = run_mysnap(&dump_args(&server, &dir.path().join("file"), &[&defaults]));
    assert!(o.status.success(), "{}", stderr(&o));

    let as_fromenv = |name: &str, password: &str| {
        support::mysnap_command()
            .args(dump_args(
                &server,
                &dir.path().join(name),
                &["-u", "fromenv"],
            ))
            .env("MYSQL_PWD", password)
            .output()
            .unwrap()
    };
    let o = as_fromenv("env", "envpw");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_fromenv("env-wrong", "not-it");
    assert!(
        !o.status.success() && stderr(&o).contains("Access denied"),
        "{}",
        stderr(&o)
    );

    let sock = server.socket().display().to_string();
    let o = run_mysnap(&dump_args_with(
        &server.socket_args(),
        &["d"],
        &dir.path().join("socket"),
        &["-q"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let m = std::fs::read_to_string(dir.path().join("socket/manifest.json")).unwrap();
    assert!(
        m.contains(&format!("root@{sock}")),
        "the manifest names the socket source"
    );
    assert!(!m.contains("s3 cr#t") && !m.contains("envpw"));
}

/// A server with database `crm` and an account `backup` that only an option file names.
fn crm_server() -> TestServer {
    let server = TestServer::start();
    server.sql(
        "CREATE DATABASE crm; CREATE TABLE crm.t (id INT PRIMARY KEY); INSERT INTO crm.t VALUES (1), (2);
         CREATE USER 'backup'@'%' IDENTIFIED BY 'bk pw#1'; GRANT ALL ON *.* TO 'backup'@'%';",
    );
    server
}

/// Runs mysnap with `HOME=home` and the MySQL environment cleared.
fn mysnap_at_home(home: &Path, args: &[String]) -> std::process::Output {
    let mut cmd = support::mysnap_command();
    cmd.args(args).env("HOME", home);
    for var in [
        "MYSQL_PWD",
        "MYSQL_HOST",
        "MYSQL_TCP_PORT",
        "MYSQL_UNIX_PORT",
        "MYSQL_GROUP_SUFFIX",
        "MARIADB_HOME",
        "MYSQL_HOME",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_users_my_cnf_is_read_as_the_client_reads_it() {
    let server = crm_server();
    let home = tempfile::tempdir().unwrap();
    let port = server.port();
    // The issue's case: ~/.my.cnf names host, port and account; the dump must go there.
    write_private(
        &home.path().join(".my.cnf"),
        &format!(
            "# the backup account\n[client]\nuser = backup\npassword = \"bk pw#1\"  # quoted, with a #\nhost=127.0.0.1\nport={port}\n\n[mysqld]\nport=1\n\n[mysnap]\nthreads = 2\nloose-not-yet = 1\n"
        ),
    );
    let out = home.path().join("dump");
    let args = strings(&["dump", "-B", "crm", "-o", out.to_str().unwrap(), "-q"]);
    let o = mysnap_at_home(home.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["options"]["source"], format!("backup@127.0.0.1:{port}"));
    assert_eq!(m["options"]["threads"], 2, "[mysnap] threads = 2");
    // A flag wins over the file, and --no-defaults reads none.
    let out2 = home.path().join("dump2");
    let mut args = strings(&["dump", "-B", "crm", "-o", out2.to_str().unwrap(), "-q"]);
    args.extend(strings(&["--threads", "3"]));
    assert!(mysnap_at_home(home.path(), &args).status.success());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out2.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["options"]["threads"], 3);
    let mut args = strings(&[
        "dump",
        "--no-defaults",
        "-B",
        "crm",
        "-q",
        "--connect-timeout",
        "3",
    ]);
    args.extend(strings(&[
        "-o",
        home.path().join("dump3").to_str().unwrap(),
    ]));
    let o = mysnap_at_home(home.path(), &args);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains(&port.to_string()), "{}", stderr(&o));
    // --print-defaults shows what was read, the password masked.
    let o = mysnap_at_home(home.path(), &strings(&["dump", "--print-defaults"]));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        printed.contains("--user=backup") && printed.contains("--password=*****"),
        "{printed}"
    );
    assert!(
        printed.contains("--threads=2") && !printed.contains("bk pw"),
        "{printed}"
    );
}

#[test]
fn includes_extra_files_group_suffixes_and_the_environment() {
    let server = crm_server();
    let home = tempfile::tempdir().unwrap();
    let port = server.port();
    let conf = home.path().join("conf.d");
    std::fs::create_dir(&conf).unwrap();
    write_private(
        &conf.join("10-login.cnf"),
        "[client]\nuser=backup\npassword=\"bk pw#1\"\n",
    );
    let main = home.path().join("main.cnf");
    write_private(
        &main,
        &format!(
            "[client]\nhost=127.0.0.1\nport={port}\n!includedir {}\n",
            conf.display()
        ),
    );
    let dump = |name: &str, extra: &[&str]| {
        let mut args = strings(&["dump", "-B", "crm", "-q", "--connect-timeout", "3"]);
        args.extend(strings(extra));
        args.extend(strings(&["-o", home.path().join(name).to_str().unwrap()]));
        mysnap_at_home(home.path(), &args)
    };
    let defaults_file = format!("--defaults-file={}", main.display());
    let o = dump("file", &[&defaults_file]);
    assert!(
        o.status.success(),
        "!includedir in a --defaults-file: {}",
        stderr(&o)
    );
    let o = dump("extra", &["--defaults-extra-file", main.to_str().unwrap()]);
    assert!(o.status.success(), "--defaults-extra-file: {}", stderr(&o));
    // A suffix adds [client_backup], which names the port here.
    let suffixed = home.path().join("suffix.cnf");
    write_private(
        &suffixed,
        &format!("[client]\nuser=backup\npassword=\"bk pw#1\"\nhost=127.0.0.1\nport=1\n[client_backup]\nport={port}\n"),
    );
    let file = format!("--defaults-file={}", suffixed.display());
    assert!(!dump("nosuffix", &[&file]).status.success());
    let o = dump("suffix", &[&file, "--defaults-group-suffix=_backup"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The environment comes before option files, flags before both.
    let o = support::mysnap_command()
        .args(strings(&["dump", "-B", "crm", "-q", &file, "-o"]))
        .arg(home.path().join("env"))
        .env("HOME", home.path())
        .env("MYSQL_TCP_PORT", port.to_string())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "MYSQL_TCP_PORT over the file: {}",
        stderr(&o)
    );
    // An option file others can read that holds a password gets a warning.
    let loose = home.path().join("loose.cnf");
    std::fs::write(
        &loose,
        format!("[client]\nuser=backup\npassword=\"bk pw#1\"\nhost=127.0.0.1\nport={port}\n"),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let o = dump("loose", &[&format!("--defaults-file={}", loose.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("readable by other users"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("bk pw"), "{}", stderr(&o));
}

#[test]
fn protocol_tcp_reaches_localhost_over_tcp() {
    let server = crm_server();
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("dump");
    let port = server.port().to_string();
    let args = strings(&[
        "dump",
        "--no-defaults",
        "-h",
        "localhost",
        "-P",
        &port,
        "--protocol",
        "TCP",
        "-u",
        "root",
        "-B",
        "crm",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]);
    let o = mysnap_at_home(home.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["options"]["source"], format!("root@localhost:{port}"));
}
