//! Connection options as the mysql client takes them: TLS modes, option files, the
//! environment, the unix socket.

mod support;

use std::path::Path;
use std::process::Command;

use support::{dump_args_with, mysnap_bin, run_mysnap, stderr, tcp_args, TestServer};

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
        Command::new(mysnap_bin())
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
