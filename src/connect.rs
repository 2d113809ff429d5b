//! Connection options as the mysql client takes them (flags, environment, option file,
//! TLS), opening sessions, and what kind of server is on the other end.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};

use crate::error::{Error, Result, SqlContext};
use crate::optionfile::Loaded;

/// How TLS is used, with the mysql client's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disabled,
    /// TLS over TCP when the server offers it, without checking the certificate.
    #[default]
    Preferred,
    /// TLS always, certificate not checked (checked against `--ssl-ca` when given).
    Required,
    /// TLS with the certificate checked against `--ssl-ca`.
    VerifyCa,
    /// As `VerifyCa`, and the host name must match the certificate.
    VerifyIdentity,
}

impl std::str::FromStr for SslMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "DISABLED" => Ok(SslMode::Disabled),
            "PREFERRED" => Ok(SslMode::Preferred),
            "REQUIRED" => Ok(SslMode::Required),
            "VERIFY_CA" => Ok(SslMode::VerifyCa),
            "VERIFY_IDENTITY" => Ok(SslMode::VerifyIdentity),
            _ => Err(Error::Invalid(format!(
                "unknown --ssl-mode '{s}': use DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
            ))),
        }
    }
}

/// Where and as whom to connect. Build it from flags with [`ConnectOptions::resolve`].
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// Host name or address; `localhost` without a port means the unix socket, as in the mysql client.
    pub host: Option<String>,
    /// TCP port (3306 when unset).
    pub port: Option<u16>,
    /// Login user (the OS user when unset, as in the mysql client).
    pub user: Option<String>,
    /// Password; never printed, logged or written to a manifest.
    pub password: Option<String>,
    /// Unix socket path.
    pub socket: Option<PathBuf>,
    /// TLS mode.
    pub ssl_mode: SslMode,
    /// CA certificate for `VERIFY_CA`/`VERIFY_IDENTITY`.
    pub ssl_ca: Option<PathBuf>,
    /// How long to wait for a connection before giving up.
    pub connect_timeout: Duration,
    /// TCP or the socket, when forced (`--protocol`).
    pub protocol: Option<Protocol>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("target", &self.describe())
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ssl_mode", &self.ssl_mode)
            .finish()
    }
}

/// Connection flags as the mysql client spells them, before the environment and option
/// files fill gaps: one struct for every command that connects (the CLI flattens it).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectFlags {
    /// Server host (`localhost` with no port means the unix socket).
    #[arg(short = 'h', long)]
    pub host: Option<String>,
    /// TCP port.
    #[arg(short = 'P', long)]
    pub port: Option<u16>,
    /// User name.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Password: -pSECRET or --password=SECRET; -p or --password alone prompts without
    /// echo. Prefer MYSQL_PWD or an option file.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = PROMPT)]
    pub password: Option<String>,
    /// Unix socket.
    #[arg(short = 'S', long)]
    pub socket: Option<PathBuf>,
    /// TCP or SOCKET: how to reach the server whatever the host name says.
    #[arg(long, value_parser = parse_protocol)]
    pub protocol: Option<Protocol>,
    /// DISABLED, PREFERRED (default), REQUIRED, VERIFY_CA or VERIFY_IDENTITY.
    #[arg(long, value_parser = parse_ssl_mode)]
    pub ssl_mode: Option<SslMode>,
    /// CA certificate for VERIFY_CA / VERIFY_IDENTITY.
    #[arg(long)]
    pub ssl_ca: Option<PathBuf>,
    /// Seconds to wait for a connection.
    #[arg(long)]
    pub connect_timeout: Option<u64>,
    /// Which option files are read.
    #[command(flatten)]
    pub option_files: OptionFileFlags,
}

/// The option files to read, as the mysql client takes them. `main` reads them before
/// the arguments are parsed (their `[mysnap]` group supplies flags), so nothing reads
/// these fields after parsing; they are here so that clap knows the flags, on commands
/// that connect and on those that only read `[mysnap]` settings.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OptionFileFlags {
    /// Read no option file.
    #[arg(long)]
    pub no_defaults: bool,
    /// Read only this option file (and ~/.mylogin.cnf), instead of the usual ones.
    #[arg(long, value_name = "FILE")]
    pub defaults_file: Option<PathBuf>,
    /// Read this option file too, after the system's and before ~/.my.cnf.
    #[arg(long, value_name = "FILE")]
    pub defaults_extra_file: Option<PathBuf>,
    /// Read the groups with this suffix too ([client_SUFFIX], [mysnap_SUFFIX] ...).
    #[arg(long, value_name = "SUFFIX")]
    pub defaults_group_suffix: Option<String>,
    /// Read this login path's group of ~/.mylogin.cnf (mysql_config_editor).
    #[arg(long, value_name = "NAME")]
    pub login_path: Option<String>,
    /// Print the options read from option files (password masked) and exit.
    #[arg(long)]
    pub print_defaults: bool,
}

/// The password value of `-p` or `--password` given alone: prompt for it.
pub const PROMPT: &str = "\u{0}prompt";

fn parse_ssl_mode(s: &str) -> std::result::Result<SslMode, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_protocol(s: &str) -> std::result::Result<Protocol, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// How to reach the server, when not left to the host name (`--protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP, even to `localhost`.
    Tcp,
    /// The unix socket.
    Socket,
}

impl std::str::FromStr for Protocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Ok(Protocol::Tcp),
            "SOCKET" => Ok(Protocol::Socket),
            "PIPE" | "MEMORY" => Err(Error::Invalid(format!(
                "--protocol {s} exists on Windows only: use TCP or SOCKET"
            ))),
            _ => Err(Error::Invalid(format!(
                "unknown --protocol '{s}': use TCP or SOCKET"
            ))),
        }
    }
}

/// The option files' settings as connection settings: the last value of a key in the
/// groups read.
struct FileSettings<'a> {
    loaded: &'a Loaded,
    groups: &'a [String],
}

impl FileSettings<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.loaded
            .get(self.groups, key)
            .and_then(|s| s.value.clone())
    }

    fn has(&self, key: &str) -> bool {
        self.loaded.get(self.groups, key).is_some()
    }

    /// Where a setting came from, for messages.
    fn origin(&self, key: &str) -> String {
        self.loaded.get(self.groups, key).map_or_else(
            || "an option file".to_string(),
            |s| format!("{} line {}", s.file.display(), s.line),
        )
    }
}

impl ConnectOptions {
    /// Merges flags over the environment (`MYSQL_PWD`, `MYSQL_HOST`, `MYSQL_TCP_PORT`,
    /// `MYSQL_UNIX_PORT`) over the option files' `groups` (as `optionfile::load` read
    /// them): flags, then environment, then option files.
    pub fn resolve(
        flags: ConnectFlags,
        env: &dyn Fn(&str) -> Option<String>,
        files: &Loaded,
        groups: &[String],
    ) -> Result<Self> {
        let file = FileSettings {
            loaded: files,
            groups,
        };
        let port =
            match flags.port {
                Some(p) => Some(p),
                None => {
                    let (value, origin) = match env("MYSQL_TCP_PORT") {
                        Some(p) => (Some(p), "MYSQL_TCP_PORT".to_string()),
                        None => (file.get("port"), file.origin("port")),
                    };
                    match value {
                        Some(p) => Some(p.parse::<u16>().map_err(|_| {
                            Error::Invalid(format!("invalid port '{p}' in {origin}"))
                        })?),
                        None => None,
                    }
                }
            };
        // The client's boolean spellings in option files: ssl, skip-ssl, ssl-verify-server-cert.
        let file_ssl_mode = file.get("ssl-mode").or_else(|| {
            if file.has("skip-ssl") {
                Some("DISABLED".into())
            } else if file.has("ssl-verify-server-cert") {
                Some("VERIFY_IDENTITY".into())
            } else if file.has("ssl") {
                Some("REQUIRED".into())
            } else {
                None
            }
        });
        let ssl_mode = match (flags.ssl_mode, file_ssl_mode) {
            (Some(m), _) => m,
            (None, Some(m)) => m.parse()?,
            (None, None) => SslMode::default(),
        };
        let protocol = match (flags.protocol, file.get("protocol")) {
            (Some(p), _) => Some(p),
            (None, Some(p)) => Some(p.parse::<Protocol>()?),
            (None, None) => None,
        };
        let ssl_ca = flags
            .ssl_ca
            .or_else(|| file.get("ssl-ca").map(PathBuf::from));
        if let Some(ca) = &ssl_ca {
            if !ca.is_file() {
                return Err(Error::Invalid(format!(
                    "--ssl-ca {}: no such file",
                    ca.display()
                )));
            }
        }
        if matches!(ssl_mode, SslMode::VerifyCa | SslMode::VerifyIdentity) && ssl_ca.is_none() {
            return Err(Error::Invalid(
                "--ssl-mode VERIFY_CA and VERIFY_IDENTITY need --ssl-ca".into(),
            ));
        }
        let connect_timeout = match flags.connect_timeout {
            Some(t) => t,
            None => match file.get("connect-timeout") {
                Some(t) => t.parse().map_err(|_| {
                    Error::Invalid(format!(
                        "invalid connect-timeout '{t}' in {}",
                        file.origin("connect-timeout")
                    ))
                })?,
                None => 10,
            },
        };
        Ok(ConnectOptions {
            host: flags
                .host
                .or_else(|| env("MYSQL_HOST"))
                .or_else(|| file.get("host")),
            port,
            user: flags.user.or_else(|| file.get("user")),
            password: flags
                .password
                .or_else(|| env("MYSQL_PWD"))
                .or_else(|| file.get("password")),
            socket: flags
                .socket
                .or_else(|| env("MYSQL_UNIX_PORT").map(PathBuf::from))
                .or_else(|| file.get("socket").map(PathBuf::from)),
            protocol,
            ssl_mode,
            ssl_ca,
            connect_timeout: Duration::from_secs(connect_timeout),
        })
    }

    /// Whether the connection goes over a unix socket: the host is `localhost` (or unset) and
    /// a socket was named, or no port was named and the usual socket exists (a port alone
    /// means TCP, as in the MariaDB client).
    pub fn uses_socket(&self) -> bool {
        match self.protocol {
            Some(Protocol::Tcp) => return false,
            Some(Protocol::Socket) => return true,
            None => {}
        }
        let local = matches!(self.host.as_deref(), None | Some("localhost"));
        local && (self.socket.is_some() || (self.port.is_none() && default_socket().is_some()))
    }

    /// `user@host:port` or `user@socket`, for messages; never the password.
    pub fn describe(&self) -> String {
        let user = self.effective_user();
        if self.uses_socket() {
            let sock = self
                .socket
                .clone()
                .or_else(default_socket)
                .unwrap_or_default();
            format!("{user}@{}", sock.display())
        } else {
            format!(
                "{user}@{}:{}",
                self.host.as_deref().unwrap_or("127.0.0.1"),
                self.port.unwrap_or(3306)
            )
        }
    }

    fn effective_user(&self) -> String {
        self.user
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into())
    }

    fn builder(&self, tls: bool) -> OptsBuilder {
        let mut b = OptsBuilder::default()
            .user(Some(self.effective_user()))
            .pass(self.password.clone())
            .prefer_socket(false)
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(60)))
            .stmt_cache_size(0)
            .connect_attributes(HashMap::from([("program_name".into(), "mysnap".into())]));
        if self.uses_socket() {
            let sock = self
                .socket
                .clone()
                .or_else(default_socket)
                .unwrap_or_default();
            b = b.socket(Some(sock.to_string_lossy().into_owned()));
        } else {
            b = b
                .ip_or_hostname(self.host.clone().unwrap_or_else(|| "127.0.0.1".into()))
                .tcp_port(self.port.unwrap_or(3306));
        }
        if tls {
            b = b.ssl_opts(Some(self.ssl_opts()));
        }
        b
    }

    fn ssl_opts(&self) -> SslOpts {
        let mut ssl = SslOpts::default();
        if let Some(ca) = &self.ssl_ca {
            ssl = ssl.with_root_certs(vec![ca.clone().into()]);
        }
        match self.ssl_mode {
            SslMode::VerifyIdentity => ssl,
            SslMode::VerifyCa => ssl.with_danger_skip_domain_validation(true),
            SslMode::Required if self.ssl_ca.is_some() => {
                ssl.with_danger_skip_domain_validation(true)
            }
            _ => ssl
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        }
    }
}

/// The usual socket paths, for `-h localhost` without `-S`.
fn default_socket() -> Option<PathBuf> {
    [
        "/run/mysqld/mysqld.sock",
        "/var/run/mysqld/mysqld.sock",
        "/tmp/mysql.sock",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

const TLS_UNKNOWN: u8 = 0;
const TLS_ON: u8 = 1;
const TLS_OFF: u8 = 2;

/// Opens sessions to one server with one set of options; remembers whether TLS was
/// negotiated so that `PREFERRED` costs one probe, not one per session.
#[derive(Clone)]
pub struct Connector {
    options: Arc<ConnectOptions>,
    tls: Arc<AtomicU8>,
}

impl Connector {
    /// A connector for these options.
    pub fn new(options: ConnectOptions) -> Self {
        let tls = match (options.ssl_mode, options.uses_socket()) {
            (SslMode::Disabled, _) | (SslMode::Preferred, true) => TLS_OFF,
            (SslMode::Preferred, false) => TLS_UNKNOWN,
            _ => TLS_ON,
        };
        Connector {
            options: Arc::new(options),
            tls: Arc::new(AtomicU8::new(tls)),
        }
    }

    /// `user@host:port (MariaDB 10.11.19, host db1)`: where its sessions go and what answered.
    pub fn connected_to(&self, server: &ServerInfo) -> String {
        format!(
            "{} ({} {}, host {})",
            self.options.describe(),
            server.flavor.name(),
            server.version,
            server.hostname
        )
    }

    /// The options this connector uses.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Opens a session and runs `init` statements on it, in order.
    pub async fn connect(&self, init: &[String]) -> Result<Conn> {
        let mut conn = self.open().await?;
        // Run here rather than through the driver's `init` option, which runs its list
        // last-first: `SET NAMES` must come before `character_set_results`.
        for stmt in init {
            conn.query_drop(stmt.as_str())
                .await
                .map_err(|e| Error::sql(format!("setting up the session ({stmt})"), e))?;
        }
        Ok(conn)
    }

    async fn open(&self) -> Result<Conn> {
        let state = self.tls.load(Ordering::Relaxed);
        let first_try = self.try_connect(state != TLS_OFF).await;
        match first_try {
            Err(Error::Connect {
                cause:
                    mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer),
                ..
            }) if state == TLS_UNKNOWN => {
                self.tls.store(TLS_OFF, Ordering::Relaxed);
                self.try_connect(false).await
            }
            Ok(conn) => {
                if state == TLS_UNKNOWN {
                    self.tls.store(TLS_ON, Ordering::Relaxed);
                }
                Ok(conn)
            }
            Err(e) => Err(e),
        }
    }

    async fn try_connect(&self, tls: bool) -> Result<Conn> {
        let opts = self.options.builder(tls);
        let target = self.options.describe();
        match tokio::time::timeout(self.options.connect_timeout, Conn::new(opts)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(cause)) => Err(Error::Connect { target, cause }),
            Err(_) => Err(Error::Connect {
                target,
                cause: mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no answer within {} s",
                        self.options.connect_timeout.as_secs()
                    ),
                ))),
            }),
        }
    }
}

/// Which server family: their statements and features differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// MariaDB (any version).
    Mariadb,
    /// Oracle MySQL or a compatible build (Percona Server).
    Mysql,
}

impl Flavor {
    /// `MariaDB` or `MySQL`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Mariadb => "MariaDB",
            Flavor::Mysql => "MySQL",
        }
    }
}

/// What mysnap knows of the server it talks to.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    /// MariaDB or MySQL.
    pub flavor: Flavor,
    /// `SELECT VERSION()` as the server says it.
    pub version: String,
    /// Major, minor, patch.
    pub version_number: (u32, u32, u32),
    /// `@@hostname`.
    pub hostname: String,
    /// `@@port`.
    pub port: u32,
    /// `@@server_id`.
    pub server_id: u64,
    /// `@@server_uuid` (MySQL only).
    pub server_uuid: Option<String>,
    /// Whether the binary log is on (`@@log_bin`).
    pub log_bin: bool,
}

impl ServerInfo {
    /// Reads the server's identity over an open session.
    pub async fn detect(conn: &mut Conn) -> Result<Self> {
        let row: Option<(String, String, String, u32, u64, u32)> = conn
            .query_first(
                "SELECT VERSION(), @@version_comment, @@hostname, @@port, @@server_id, @@log_bin",
            )
            .await
            .ctx(|| "reading the server version".into())?;
        let (version, comment, hostname, port, server_id, log_bin) =
            row.ok_or_else(|| Error::Server("the server returned no version".into()))?;
        let flavor = Self::flavor_of(&version, &comment);
        let server_uuid = if flavor == Flavor::Mysql {
            conn.query_first::<String, _>("SELECT @@server_uuid")
                .await
                .ctx(|| "reading @@server_uuid".into())?
        } else {
            None
        };
        Ok(ServerInfo {
            flavor,
            version_number: parse_version(&version),
            version,
            hostname,
            port,
            server_id,
            server_uuid,
            log_bin: log_bin != 0,
        })
    }

    /// MariaDB says so in its version string (or comment, behind some proxies).
    pub fn flavor_of(version: &str, comment: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb")
            || comment.to_ascii_lowercase().contains("mariadb")
        {
            Flavor::Mariadb
        } else {
            Flavor::Mysql
        }
    }

    /// Whether the server is at least this version.
    pub fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        self.version_number >= (major, minor, patch)
    }
}

/// `8.4.3-log` → (8, 4, 3); `5.5.5-10.11.6-MariaDB` → (10, 11, 6) (the 5.5.5 prefix is a
/// replication-compatibility artefact).
pub fn parse_version(version: &str) -> (u32, u32, u32) {
    let v = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn groups() -> Vec<String> {
        ["client", "client-server", "client-mariadb", "mysnap"]
            .iter()
            .map(|g| g.to_string())
            .collect()
    }

    fn files(text: &str) -> (tempfile::TempDir, Loaded) {
        let dir = tempfile::tempdir().unwrap();
        let cnf = dir.path().join("my.cnf");
        std::fs::write(&cnf, text).unwrap();
        let mut loaded = Loaded::default();
        crate::optionfile::parse_file(&cnf, &groups(), &mut loaded, 0).unwrap();
        (dir, loaded)
    }

    fn resolve(
        flags: ConnectFlags,
        env: &dyn Fn(&str) -> Option<String>,
        loaded: &Loaded,
    ) -> Result<ConnectOptions> {
        ConnectOptions::resolve(flags, env, loaded, &groups())
    }

    #[test]
    fn flags_win_over_environment_and_environment_over_files() {
        let (_dir, loaded) = files(
            "[mysqld]\nport=1\n[client]\npassword=fromfile\nport=3307\nhost=filehost\nuser=fileuser\n[other]\nuser=x\n",
        );
        let env = |k: &str| match k {
            "MYSQL_PWD" => Some("fromenv".to_string()),
            "MYSQL_HOST" => Some("envhost".to_string()),
            _ => None,
        };
        let o = resolve(
            ConnectFlags {
                host: Some("flaghost".into()),
                ..Default::default()
            },
            &env,
            &loaded,
        )
        .unwrap();
        assert_eq!(o.host.as_deref(), Some("flaghost"));
        assert_eq!(o.password.as_deref(), Some("fromenv"));
        assert_eq!(o.port, Some(3307));
        assert_eq!(o.user.as_deref(), Some("fileuser"));
        let o = resolve(ConnectFlags::default(), &no_env, &loaded).unwrap();
        assert_eq!(o.password.as_deref(), Some("fromfile"));
        assert_eq!(o.host.as_deref(), Some("filehost"));
    }

    #[test]
    fn protocol_and_ssl_spellings_of_option_files() {
        let (_dir, loaded) = files("[client]\nprotocol=tcp\nskip-ssl\nhost=localhost\n");
        let o = resolve(ConnectFlags::default(), &no_env, &loaded).unwrap();
        assert_eq!(o.protocol, Some(Protocol::Tcp));
        assert!(
            !o.uses_socket(),
            "--protocol=TCP goes over TCP even to localhost"
        );
        assert_eq!(o.ssl_mode, SslMode::Disabled);
        let (_dir, loaded) = files("[client]\nport=nope\n");
        let e = resolve(ConnectFlags::default(), &no_env, &loaded)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("invalid port 'nope'") && e.contains("my.cnf line 2"),
            "{e}"
        );
        let e = "pipe".parse::<Protocol>().unwrap_err().to_string();
        assert!(e.contains("Windows"), "{e}");
    }

    #[test]
    fn verify_modes_need_a_ca_and_unknown_modes_are_refused() {
        let e = resolve(
            ConnectFlags {
                ssl_mode: Some(SslMode::VerifyCa),
                ..Default::default()
            },
            &no_env,
            &Loaded::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--ssl-ca"), "{e}");
        let e = "sometimes".parse::<SslMode>().unwrap_err();
        assert!(
            e.to_string().contains("unknown --ssl-mode 'sometimes'"),
            "{e}"
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let o = ConnectOptions {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{o:?}").contains("hunter2"));
        assert!(!o.describe().contains("hunter2"));
    }

    #[test]
    fn versions_and_flavors_from_recorded_server_answers() {
        assert_eq!(parse_version("8.4.3"), (8, 4, 3));
        assert_eq!(parse_version("8.0.36-28"), (8, 0, 36));
        assert_eq!(
            parse_version("5.5.5-10.11.6-MariaDB-0+deb12u1"),
            (10, 11, 6)
        );
        assert_eq!(
            parse_version("10.11.19-MariaDB-0+deb12u1-log"),
            (10, 11, 19)
        );
        assert_eq!(
            ServerInfo::flavor_of("10.11.19-MariaDB-0+deb12u1", "Debian 12"),
            Flavor::Mariadb
        );
        assert_eq!(
            ServerInfo::flavor_of("8.4.3", "MySQL Community Server - GPL"),
            Flavor::Mysql
        );
        assert_eq!(
            ServerInfo::flavor_of("8.0.36-28", "Percona Server (GPL), Release 28"),
            Flavor::Mysql
        );
    }
}
