//! One module per subcommand: turn parsed flags into library options, call the engine,
//! print the outcome.

pub mod binlog;
pub mod docs;
pub mod dump;
pub mod metrics;
pub mod repo;
pub mod restore;
pub mod show;
pub mod verify;

use anyhow::Result;
use mysnap::connect::{ConnectFlags, ConnectOptions, Connector, PROMPT};

/// What the option files said: their settings and the groups mysnap reads.
#[derive(Debug, Default)]
pub struct Defaults {
    /// Settings in reading order.
    pub loaded: mysnap::optionfile::Loaded,
    /// `client`, `client-server`, `client-mariadb`, `mysnap` (with any suffix, login path).
    pub groups: Vec<String>,
}

/// Builds a connector from flags, environment and option files; prompts for `-p`.
pub fn connector(flags: &ConnectFlags, defaults: &Defaults) -> Result<Connector> {
    let mut flags = flags.clone();
    if flags.password.as_deref() == Some(PROMPT) {
        flags.password = Some(
            rpassword::prompt_password("Enter password: ")
                .map_err(|e| anyhow::anyhow!("cannot read the password from the terminal (-p): {e}; use MYSQL_PWD or an option file without a terminal"))?,
        );
    }
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

/// What a command's argument names: a dump directory, or, when a repository is given
/// and the argument is a snapshot ID (hex digits) or `latest`, that snapshot. A path
/// holding anything else (`./dump`, `/backups/x`) is always a directory.
pub fn source(target: &str, repo: &crate::cli::RepoArg) -> Result<mysnap::restore::Source> {
    match &repo.repo {
        Some(path) if names_snapshot(target) => {
            let repo = std::sync::Arc::new(mysnap::repo::Repository::open(path)?);
            let id = repo.resolve(target)?;
            Ok(mysnap::restore::Source::snapshot(repo, &id)?)
        }
        None if names_snapshot(target) && !std::path::Path::new(target).exists() => {
            anyhow::bail!(
                "{target}: no such dump directory (for a snapshot of a repository, give --repo REPO or set MYSNAP_REPO)"
            )
        }
        _ => Ok(mysnap::restore::Source::directory(std::path::Path::new(
            target,
        ))?),
    }
}

/// A snapshot ID or a prefix of one, or `latest`.
pub fn names_snapshot(target: &str) -> bool {
    target == "latest" || (!target.is_empty() && target.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The repository's restorable snapshots, as a metric (monitoring alerts when it drops).
pub fn restorable_metric(m: &metrics::Metrics, repo: &mysnap::repo::Repository) {
    if let Ok(listed) = repo.list() {
        let n = listed.iter().filter(|l| l.restorable).count();
        m.set(
            "mysnap_restorable_snapshots",
            "Snapshots in the repository that can be restored.",
            &[("repository", &repo.location())],
            n as f64,
        );
    }
}
