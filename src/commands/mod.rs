//! One module per subcommand: turn parsed flags into library options, call the engine,
//! print the outcome.

pub mod dump;
pub mod restore;
pub mod show;
pub mod verify;

use anyhow::Result;
use mysnap::connect::{ConnectFlags, ConnectOptions, Connector};

use crate::cli::ConnectionArgs;

/// Marks `-p` given without a value.
pub const PROMPT: &str = "\u{0}prompt";

/// What the option files said: their settings and the groups mysnap reads.
#[derive(Debug, Default)]
pub struct Defaults {
    /// Settings in reading order.
    pub loaded: mysnap::optionfile::Loaded,
    /// `client`, `client-server`, `client-mariadb`, `mysnap` (with any suffix, login path).
    pub groups: Vec<String>,
}

/// Builds a connector from flags, environment and option files; prompts for `-p`.
pub fn connector(args: &ConnectionArgs, defaults: &Defaults) -> Result<Connector> {
    let password = match args.password.as_deref() {
        Some(PROMPT) => Some(
            rpassword::prompt_password("Enter password: ")
                .map_err(|e| anyhow::anyhow!("cannot read the password from the terminal (-p): {e}; use MYSQL_PWD or --defaults-file without a terminal"))?,
        ),
        other => other.map(str::to_owned),
    };
    let flags = ConnectFlags {
        host: args.host.clone(),
        port: args.port,
        user: args.user.clone(),
        password,
        socket: args.socket.clone(),
        protocol: args.protocol.clone(),
        ssl_mode: args.ssl_mode.clone(),
        ssl_ca: args.ssl_ca.clone(),
        connect_timeout: args.connect_timeout,
    };
    let options = ConnectOptions::resolve(
        flags,
        &|k| std::env::var(k).ok(),
        &defaults.loaded,
        &defaults.groups,
    )?;
    Ok(Connector::new(options))
}

/// A lost connection names the server it was to (the engine's message says what was
/// being done, not where).
pub fn name_server(e: mysnap::Error, connector: &Connector) -> anyhow::Error {
    if e.is_connection_lost() {
        anyhow::Error::from(e).context(connector.options().describe())
    } else {
        e.into()
    }
}

/// `--progress-interval` as a duration.
pub fn interval(seconds: Option<f64>) -> Result<Option<std::time::Duration>> {
    match seconds {
        None => Ok(None),
        Some(s) if s > 0.0 && s.is_finite() => Ok(Some(std::time::Duration::from_secs_f64(s))),
        Some(s) => Err(anyhow::anyhow!(
            "--progress-interval {s}: must be a positive number of seconds"
        )),
    }
}
