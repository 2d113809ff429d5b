//! Command-line definitions. Connection flags follow the mysql client; `-h` is the host,
//! so help is `--help` only.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};
use mysnap::connect::ConnectFlags;
use mysnap::format::Codec;
use mysnap::optionfile::{Loaded, Sources};

/// Consistent, parallel, compressed logical snapshots of MySQL and MariaDB.
#[derive(Debug, Parser)]
#[command(name = "mysnap", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty snapshot repository (a new or empty directory), with the retention
    /// `forget` applies by default (keep 7 days unless policy flags say otherwise).
    Init(InitArgs),
    /// Take one consistent snapshot of databases (or the whole server) into a new
    /// directory (--output) or a repository (--repo; prints the new snapshot's ID).
    #[command(disable_help_flag = true, after_help = CONNECTION_HELP)]
    Dump(DumpArgs),
    /// Load a dump directory, or a repository's snapshot, into a server.
    #[command(disable_help_flag = true, after_help = CONNECTION_HELP)]
    Restore(RestoreArgs),
    /// List a repository's snapshots, oldest first: created, ID, restorable, databases,
    /// stored size, duration, tags, last verified.
    List(ListArgs),
    /// Describe a dump directory or a repository's snapshot.
    Show(ShowArgs),
    /// Check a dump directory or snapshots with no server: every file's size, sha256,
    /// decompression, rows, columns and row digests against the manifest; with
    /// --restore-to, also by restoring into scratch databases.
    #[command(disable_help_flag = true, after_help = CONNECTION_HELP)]
    Verify(VerifyArgs),
    /// Remove the snapshots no retention rule keeps (--dry-run: only say which); with
    /// --prune, also delete the data no snapshot needs any more.
    Forget(ForgetArgs),
    /// Remove one snapshot and the data only it needed.
    Delete(DeleteArgs),
    /// Protect a snapshot from every retention rule (--remove lifts that).
    Protect(ProtectArgs),
    /// The binary-log archive that rolls snapshots forward: `binlog archive` streams the
    /// source's binary log into the repository, `binlog status` shows what it holds.
    #[command(subcommand)]
    Binlog(BinlogCommand),
    /// Print a shell completion script (bash: save it as
    /// /usr/share/bash-completion/completions/mysnap; zsh: as _mysnap in a $fpath
    /// directory; fish: as ~/.config/fish/completions/mysnap.fish).
    Completions(CompletionsArgs),
    /// Write the manual pages (mysnap.1 and one per command, mysnap-dump.1 ...) into a
    /// directory, from the same definitions as --help.
    Man(ManArgs),
}

/// `mysnap completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `mysnap man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where to write the pages (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
}

/// `mysnap binlog ...`.
#[derive(Debug, Subcommand)]
pub enum BinlogCommand {
    /// Stream the source's binary log into the repository as a replica does, resuming
    /// exactly after the last archived event, until stopped (--once: what the source has
    /// now, then exit, for cron).
    #[command(disable_help_flag = true, after_help = CONNECTION_HELP)]
    Archive(BinlogArchiveArgs),
    /// The archive: first and last archived events (time, GTID, file:position),
    /// segments, bytes, gaps, and the archiver's lag behind the source.
    Status(BinlogStatusArgs),
}

/// `mysnap binlog archive`.
#[derive(Debug, Args)]
pub struct BinlogArchiveArgs {
    /// Connection to the source.
    #[command(flatten)]
    pub connection: ConnectFlags,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Where.
    #[command(flatten)]
    pub repo: RepoArg,
    /// Replica server id to register with (unique among the source's replicas and
    /// different from every server's own; default: one derived from the repository).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub server_id: Option<u32>,
    /// Archive what the source has now, then exit.
    #[arg(long)]
    pub once: bool,
    /// Go on after a gap (binary logs purged before they were archived, a reset binary
    /// log, another server after a failover), recording it: targets inside the gap
    /// cannot be restored.
    #[arg(long)]
    pub after_gap: bool,
    /// Write Prometheus metrics of this run to PATH (node_exporter's textfile
    /// collector: written to a temporary file and renamed).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Progress and quiet.
    #[command(flatten)]
    pub report: ReportArgs,
}

/// `mysnap binlog status`.
#[derive(Debug, Args)]
pub struct BinlogStatusArgs {
    /// Option files.
    #[command(flatten)]
    pub option_files: mysnap::connect::OptionFileFlags,
    /// Where.
    #[command(flatten)]
    pub repo: RepoArg,
    /// Print a JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Where the repository is.
#[derive(Debug, Clone, Args)]
pub struct RepoArg {
    /// The snapshot repository (a directory).
    #[arg(long, env = "MYSNAP_REPO", value_name = "REPO")]
    pub repo: Option<PathBuf>,
}

impl RepoArg {
    /// The repository path, or a one-line error saying how to give one.
    pub fn required(&self) -> Result<&std::path::Path, String> {
        self.repo.as_deref().ok_or_else(|| {
            "no repository: give --repo REPO (or set MYSNAP_REPO, or repo = in the [mysnap] group of an option file)".to_string()
        })
    }
}

/// Retention rules; any combination, a snapshot kept by any rule is kept.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the snapshots taken within this long before now (7d, 36h, 2w).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keep_within: Option<std::time::Duration>,
    /// Keep the newest snapshot of each of the last N days (UTC) that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
}

impl PolicyArgs {
    /// The rules given.
    pub fn policy(&self) -> mysnap::repo::Policy {
        mysnap::repo::Policy {
            keep_last: self.keep_last,
            keep_within_secs: self.keep_within.map(|d| d.as_secs()),
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
        }
    }
}

/// `7d`, `36h`, `2w`, `1d12h`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.as_secs() > 0 => Ok(d),
        _ => Err("must be a duration such as 7d, 36h or 2w".into()),
    }
}

/// `mysnap init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Option files.
    #[command(flatten)]
    pub option_files: mysnap::connect::OptionFileFlags,
    /// Where.
    #[command(flatten)]
    pub repo: RepoArg,
    /// The retention `forget` applies when given no rule (default: --keep-within 7d).
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// `mysnap list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Option files.
    #[command(flatten)]
    pub option_files: mysnap::connect::OptionFileFlags,
    /// Where.
    #[command(flatten)]
    pub repo: RepoArg,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `mysnap forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Option files.
    #[command(flatten)]
    pub option_files: mysnap::connect::OptionFileFlags,
    /// Where.
    #[command(flatten)]
    pub repo: RepoArg,
    /// Rules (none: the repository's default, set at init).
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Say what would be kept and removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete the data objects no snapshot needs (and what interrupted dumps and
    /// deletes left).
    #[arg(long, conflicts_with = "dry_run")]
    pub prune: bool,
    /// Write Prometheus metrics of this run to PATH (node_exporter's textfile
    /// collector: written to a temporary file and renamed).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Print the decisions as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `mysnap delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Option files.
    #[command(flatten)]
    pub option_files: mysnap::connect::OptionFileFlags,
    /// Snapshot ID (a unique prefix will do).
    pub id: String,
    /// Where.
    #[command(flatten)]
    pub repo: RepoArg,
}

/// `mysnap protect`.
#[derive(Debug, Args)]
pub struct ProtectArgs {
    /// Option files.
    #[command(flatten)]
    pub option_files: mysnap::connect::OptionFileFlags,
    /// Snapshot ID (a unique prefix, or latest).
    pub id: String,
    /// Where.
    #[command(flatten)]
    pub repo: RepoArg,
    /// Lift the protection instead.
    #[arg(long)]
    pub remove: bool,
}

/// `mysnap verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The server of `--restore-to`.
    #[command(flatten)]
    pub connection: ConnectFlags,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Also restore into scratch databases (mysnap_verify_<id>_<n>) of the server the
    /// connection flags name, read every table back, compare it with the dump's digests,
    /// then drop the scratch databases.
    #[arg(long)]
    pub restore_to: bool,
    /// A dump directory, or with a repository a snapshot ID (a unique prefix, or latest).
    #[arg(required_unless_present = "all")]
    pub target: Option<String>,
    /// Every snapshot of the repository (each shared object read once).
    #[arg(long, conflicts_with = "target")]
    pub all: bool,
    /// Where, for snapshots.
    #[command(flatten)]
    pub repo: RepoArg,
    /// Files checked at once.
    #[arg(short = 't', long, default_value_t = 4, value_parser = parse_threads)]
    pub threads: usize,
    /// Write Prometheus metrics of this run to PATH (node_exporter's textfile
    /// collector: written to a temporary file and renamed).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where connection settings come from, for `--help`.
const CONNECTION_HELP: &str =
    "Connection settings come from flags, then the environment (MYSQL_PWD, MYSQL_HOST, \
MYSQL_TCP_PORT, MYSQL_UNIX_PORT), then option files, read as the mysql client reads them: \
/etc/my.cnf, /etc/mysql/my.cnf, $MARIADB_HOME/my.cnf, --defaults-extra-file, ~/.my.cnf, \
~/.mylogin.cnf; groups [client], [client-server], [client-mariadb] and [mysnap]. The [mysnap] \
group may also hold mysnap's own settings by their long names (threads = 8).";

/// Output on stderr, for every command that reports progress.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Progress display on stderr.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Seconds between progress lines (lines: 10, json: 2).
    #[arg(long, value_name = "SECONDS", value_parser = parse_interval)]
    pub progress_interval: Option<std::time::Duration>,
    /// Only errors on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

impl ReportArgs {
    /// The progress front end these flags ask for.
    pub fn progress(&self) -> Box<dyn mysnap::progress::Progress> {
        crate::display::for_stderr(self.progress.display(self.quiet), self.progress_interval)
    }
}

/// A positive number of seconds.
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(std::time::Duration::from_secs_f64(secs)),
        _ => Err("must be a positive number of seconds".into()),
    }
}

/// `mysnap dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Connection.
    #[command(flatten)]
    pub connection: ConnectFlags,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Database to dump: `-B a -B b` or `-B a b`. Without any, the whole server is
    /// dumped, as with --all-databases.
    #[arg(short = 'B', long = "database", num_args = 1.., action = ArgAction::Append)]
    pub databases: Vec<String>,
    /// Every database but the server's own (mysql, information_schema,
    /// performance_schema, sys), and the accounts: the default when no --database is given.
    #[arg(short = 'A', long, conflicts_with = "databases")]
    pub all_databases: bool,
    /// Dump only tables and objects whose `db.name` matches this glob (repeatable; * ? [..];
    /// quote a name holding a dot with backticks).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out tables and objects whose `db.name` matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Dump the accounts (users, roles, their grants) too: the default for a whole-server dump.
    #[arg(long, overrides_with = "no_users")]
    pub users: bool,
    /// Leave the accounts out of a whole-server dump.
    #[arg(long)]
    pub no_users: bool,
    /// New (or empty) directory to write the dump into (instead of a repository).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// The repository to add the snapshot to (when no --output is given).
    #[command(flatten)]
    pub repo: RepoArg,
    /// A tag for the new snapshot (repeatable), shown by list.
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Protect the new snapshot from every retention rule.
    #[arg(long)]
    pub keep_forever: bool,
    /// Sessions reading in parallel.
    #[arg(short = 't', long, default_value_t = 4, value_parser = parse_threads)]
    pub threads: usize,
    /// Compression of the data files.
    #[arg(long, value_enum, default_value_t = Codec::Zstd)]
    pub compress: Codec,
    /// Compression level (zstd 1-19, default 1; gzip 0-9, default 6).
    #[arg(long)]
    pub compress_level: Option<i32>,
    /// Raw size of one data file; larger tables are split by key (K, M, G suffixes).
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    pub chunk_size: u64,
    /// Read MyISAM/Aria tables without holding a lock (they may then be inconsistent).
    #[arg(long)]
    pub no_lock_nontransactional: bool,
    /// Cap on raw bytes read per second over all sessions (K, M, G suffixes).
    #[arg(long, value_parser = parse_size)]
    pub max_rate: Option<u64>,
    /// MariaDB: try the lock-free snapshot first (sessions' binlog_snapshot positions
    /// compared) instead of a lock of a few milliseconds. Unsafe on MariaDB 10.11:
    /// sessions with equal positions were seen with different data (see
    /// bench/lockfree_probe.py); a dump taken this way says so.
    #[arg(long)]
    pub lock_free: bool,
    /// Pause reading while the server runs more than N statements besides the dump's
    /// (its process list, checked every second).
    #[arg(long, value_name = "N")]
    pub busy_threads: Option<u64>,
    /// Write Prometheus metrics of this run to PATH (node_exporter's textfile
    /// collector: written to a temporary file and renamed).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Progress and quiet.
    #[command(flatten)]
    pub report: ReportArgs,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// A bar on a terminal, else lines.
    Auto,
    /// A bar.
    Bar,
    /// A line every 10 s.
    Lines,
    /// A JSON object per line every 2 s.
    Json,
    /// No progress; notes and warnings still print.
    None,
}

impl ProgressArg {
    /// The front end to build, `-q` winning.
    pub fn display(self, quiet: bool) -> crate::display::Display {
        use crate::display::Display;
        match (quiet, self) {
            (true, _) => Display::Quiet,
            (_, ProgressArg::Auto) => Display::Auto,
            (_, ProgressArg::Bar) => Display::Bars,
            (_, ProgressArg::Lines) => Display::Lines,
            (_, ProgressArg::Json) => Display::Json,
            (_, ProgressArg::None) => Display::NotesOnly,
        }
    }
}

/// `--existing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExistingArg {
    /// Refuse to start when an object of the dump exists.
    Fail,
    /// Replace the dump's objects; keep what the dump does not hold.
    Drop,
    /// Drop each database the dump restores, then restore it whole.
    DropDatabase,
    /// Load rows into existing tables.
    Append,
}

impl From<ExistingArg> for mysnap::restore::Existing {
    fn from(a: ExistingArg) -> Self {
        use mysnap::restore::Existing;
        match a {
            ExistingArg::Fail => Existing::Fail,
            ExistingArg::Drop => Existing::Drop,
            ExistingArg::DropDatabase => Existing::DropDatabase,
            ExistingArg::Append => Existing::Append,
        }
    }
}

/// `--definer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DefinerArg {
    /// The definers the dump recorded.
    Keep,
    /// The account the restore connects as (DEFINER=CURRENT_USER).
    Current,
}

/// `mysnap restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A dump directory, or with a repository a snapshot ID (a unique prefix, or latest);
    /// with --until*, optional: the newest snapshot before the target is chosen.
    pub target: Option<String>,
    /// Where, for a snapshot.
    #[command(flatten)]
    pub repo: RepoArg,
    /// Connection.
    #[command(flatten)]
    pub connection: ConnectFlags,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Loader sessions.
    #[arg(short = 't', long, default_value_t = 4, value_parser = parse_threads)]
    pub threads: usize,
    /// What to do with objects that already exist on the target: fail; drop (replace
    /// the dump's objects, keep the rest); drop-database (drop each restored database
    /// first, so that it is exactly the snapshot); append (load rows into existing tables).
    #[arg(long, value_enum, default_value_t = ExistingArg::Fail)]
    pub existing: ExistingArg,
    /// Create the dump's accounts (users, roles, grants): never the account the restore
    /// connects as; an account that exists is skipped unless --existing=drop.
    #[arg(long)]
    pub users: bool,
    /// DEFINER of views, routines, triggers and events: keep the dump's, or make it the
    /// restoring account (for targets where the original definers do not exist).
    #[arg(long, value_enum, default_value_t = DefinerArg::Keep)]
    pub definer: DefinerArg,
    /// Do not write the restore to the target's binary log (replicas will not see it).
    #[arg(long)]
    pub skip_binlog: bool,
    /// Create tables with all their indexes instead of adding secondary indexes after
    /// each large table's data is loaded.
    #[arg(long)]
    pub keep_indexes: bool,
    /// Continue an interrupted restore of this dump into this target (files already
    /// loaded, as recorded in `mysnap`.`restore_journal` on the target, are skipped).
    #[arg(long)]
    pub resume: bool,
    /// Start over: discard the record of an interrupted restore of this dump on the target
    /// (what it created stays on the target; add --existing=drop to replace it).
    #[arg(long, conflicts_with = "resume")]
    pub restart: bool,
    /// Refuse the dump unless its manifest's sha256 is this one (as `dump` printed it;
    /// kept apart from the dump, it shows the manifest was not changed since).
    #[arg(long, value_name = "HEX", value_parser = parse_sha256)]
    pub manifest_sha256: Option<String>,
    /// Restore only objects whose `db.name` matches this glob (repeatable; * and ?).
    #[arg(long)]
    pub include: Vec<String>,
    /// Leave out objects whose `db.name` matches this glob (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Restore database SRC as DST (repeatable); views, triggers and routines that name
    /// SRC follow.
    #[arg(long, value_name = "SRC=DST")]
    pub rename: Vec<String>,
    /// Print what would be restored and how long it should take; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the plan as JSON (docs/JSON.md).
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// Once restored, read every table back and compare its rows with the dump's digest
    /// of them; fail naming the first table that differs.
    #[arg(long)]
    pub checksum: bool,
    /// Point in time: roll the snapshot forward with the repository's archived binary
    /// log to include every transaction committed in or before this second: RFC 3339
    /// (2026-12-02T02:14:00Z, or with an offset) or 'YYYY-MM-DD HH:MM:SS' in this host's
    /// time zone.
    #[arg(long, value_name = "TIME", group = "pitr")]
    pub until: Option<String>,
    /// Point in time: up to the transaction that brings the position to this GTID
    /// (MariaDB: domain-server-sequence, several separated by commas).
    #[arg(long, value_name = "GTID_POS", group = "pitr")]
    pub until_gtid: Option<String>,
    /// Point in time: every transaction ending at or before this source binlog position
    /// (FILE:POS, between transactions, as SHOW MASTER STATUS gives it).
    #[arg(long, value_name = "FILE:POS", group = "pitr")]
    pub until_position: Option<String>,
    /// Where mysnap listens for the target's replica connection during the replay
    /// (HOST:PORT; port 0 for any free one). The target must reach it: the default suits
    /// a target on this host.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
    pub replay_address: String,
    /// Progress and quiet.
    #[command(flatten)]
    pub report: ReportArgs,
}

/// `mysnap show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Option files.
    #[command(flatten)]
    pub option_files: mysnap::connect::OptionFileFlags,
    /// A dump directory, or with a repository a snapshot ID (a unique prefix, or latest).
    pub target: String,
    /// Where, for a snapshot.
    #[command(flatten)]
    pub repo: RepoArg,
    /// Print the manifest as JSON.
    #[arg(long, conflicts_with = "sql")]
    pub json: bool,
    /// Print the definitions as a SQL script (schema only: databases, sequences, tables,
    /// routines, views, triggers, events), as a restore creates them.
    #[arg(long)]
    pub sql: bool,
}

/// The option files named on the command line, read before clap sees the arguments
/// (their `[mysnap]` group supplies flags): `--no-defaults`, `--defaults-file`,
/// `--defaults-extra-file`, `--defaults-group-suffix`, `--login-path`; and whether
/// `--print-defaults` was given.
pub fn defaults_sources(args: &[OsString]) -> (Sources, bool) {
    let mut sources = Sources::default();
    let mut print = false;
    let strs: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    for (i, a) in strs.iter().enumerate() {
        let value = |name: &str| -> Option<String> {
            let long = format!("--{name}");
            if let Some(v) = a.strip_prefix(&format!("{long}=")) {
                Some(v.to_string())
            } else if *a == long {
                strs.get(i + 1).map(|v| v.to_string())
            } else {
                None
            }
        };
        match *a {
            "--no-defaults" => sources.no_defaults = true,
            "--print-defaults" => print = true,
            _ => {}
        }
        if let Some(v) = value("defaults-file") {
            sources.defaults_file = Some(PathBuf::from(v));
        }
        if let Some(v) = value("defaults-extra-file") {
            sources.defaults_extra_file = Some(PathBuf::from(v));
        }
        if let Some(v) = value("defaults-group-suffix") {
            sources.group_suffix = Some(v);
        }
        if let Some(v) = value("login-path") {
            sources.login_path = Some(v);
        }
    }
    (sources, print)
}

/// Connection settings: read from every group, handled by `connect`, never flags here.
const CONNECTION_KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "socket",
    "protocol",
    "ssl",
    "skip-ssl",
    "ssl-mode",
    "ssl-ca",
    "ssl-verify-server-cert",
    "connect-timeout",
];

/// The `[mysnap]` group's own settings (threads, compress...) as flags of the subcommand
/// `sub`, for those the user did not give: option files come after flags (and the
/// environment). A key no subcommand knows is an error naming its file and line, unless
/// written `loose-`; a key of another subcommand is left to it.
pub fn settings_as_flags(
    loaded: &Loaded,
    mysnap_groups: &[String],
    sub: &clap::Command,
    user_args: &[OsString],
) -> Result<Vec<OsString>, String> {
    let all = Cli::command();
    let known = |key: &str| {
        all.get_subcommands()
            .flat_map(|c| c.get_arguments())
            .any(|a| a.get_long() == Some(key))
    };
    let given = |arg: &clap::Arg| {
        user_args.iter().filter_map(|a| a.to_str()).any(|a| {
            let long = arg.get_long().map(|l| format!("--{l}"));
            long.as_deref()
                .is_some_and(|l| a == l || a.starts_with(&format!("{l}=")))
                || arg
                    .get_short()
                    .is_some_and(|s| a.starts_with(&format!("-{s}")) && !a.starts_with("--"))
        })
    };
    let mut out: Vec<OsString> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // Last value wins: walk from the end.
    for s in loaded.settings.iter().rev() {
        if !mysnap_groups.contains(&s.group) || CONNECTION_KEYS.contains(&s.key.as_str()) {
            continue;
        }
        let (key, on) = match s
            .key
            .strip_prefix("skip-")
            .or_else(|| s.key.strip_prefix("disable-"))
        {
            Some(k) => (k.to_string(), false),
            None => (
                s.key.strip_prefix("enable-").unwrap_or(&s.key).to_string(),
                true,
            ),
        };
        if !known(&key) {
            if s.loose {
                continue;
            }
            return Err(format!(
                "unknown option '{}' in [{}] of {} line {} (write it loose-{} to have it ignored)",
                s.key,
                s.group,
                s.file.display(),
                s.line,
                s.key
            ));
        }
        let Some(arg) = sub.get_arguments().find(|a| a.get_long() == Some(&key)) else {
            continue;
        };
        // The environment comes before option files (MYSNAP_REPO before repo =).
        let in_env = arg
            .get_env()
            .is_some_and(|e| std::env::var_os(e).is_some_and(|v| !v.is_empty()));
        if !seen.insert(key.clone()) || given(arg) || in_env {
            continue;
        }
        if arg.get_action().takes_values() {
            match &s.value {
                Some(v) => out.push(format!("--{key}={v}").into()),
                None => {
                    return Err(format!(
                        "option '{key}' in [{}] of {} line {} needs a value",
                        s.group,
                        s.file.display(),
                        s.line
                    ))
                }
            }
        } else {
            let truthy = s.value.as_deref().is_none_or(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "1" | "on" | "true" | "yes")
            });
            if on == truthy {
                out.push(format!("--{key}").into());
            }
        }
    }
    out.reverse();
    Ok(out)
}

/// Rewrites the mysql client's `-pSECRET` and `-p` into `--password=SECRET` and
/// `--password`: a short option with an optional attached value is ambiguous for clap
/// (`-ppw` would read as `-p -p -w`).
pub fn normalize_password_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|a| match a.to_str() {
            Some("-p") => OsString::from("--password"),
            Some(s) if s.starts_with("-p") => OsString::from(format!("--password={}", &s[2..])),
            _ => a,
        })
        .collect()
}

/// Arguments that follow a bare `-p` or `--password`: the mysql client reads them as
/// something else (`-p` alone prompts), but they may be a password meant to be attached,
/// so messages never show them.
/// Passwords given as `-pSECRET` or `--password=SECRET` are included, in case a message
/// ever repeats an argument.
pub fn possible_secrets(args: &[OsString]) -> Vec<String> {
    let after_flag = args
        .windows(2)
        .filter(|w| matches!(w[0].to_str(), Some("-p" | "--password")))
        .filter_map(|w| w[1].to_str())
        .filter(|v| !v.starts_with('-'));
    let attached = args.iter().filter_map(|a| {
        let a = a.to_str()?;
        a.strip_prefix("--password=")
            .or_else(|| a.strip_prefix("-p").filter(|_| !a.starts_with("--")))
    });
    // A very short password would blank out common words; it never reaches a message anyway.
    after_flag
        .filter(|v| !v.is_empty())
        .chain(attached.filter(|v| v.len() >= 4))
        .map(str::to_owned)
        .collect()
}

/// 64 hex digits.
fn parse_sha256(s: &str) -> Result<String, String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("must be 64 hex digits, as dump and show print it".into())
    }
}

/// `--threads`: 1 to `dump::MAX_THREADS` sessions.
fn parse_threads(s: &str) -> Result<usize, String> {
    let max = mysnap::dump::MAX_THREADS;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a number from 1 to {max}")),
    }
}

/// `message` with every possible secret replaced.
pub fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_string();
    for s in secrets {
        out = out.replace(s.as_str(), "(not shown)");
    }
    out
}

/// Parses `64M`, `1.5G`, `512KiB`, `4096` into bytes; K, M, G, T are powers of 1024, as
/// in the mysql client's options (parse-size, in its binary mode).
pub fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(s.trim())
        .map_err(|_| format!("invalid size '{s}': use a number with K, M, G or T (powers of 1024)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn the_documented_forms_parse() {
        Cli::command().debug_assert();
        let parse = |args: &[&str]| {
            Cli::try_parse_from(normalize_password_args(args.iter().map(OsString::from)))
        };
        let c = parse(&[
            "mysnap",
            "dump",
            "-h",
            "db1",
            "-P",
            "3307",
            "-u",
            "backup",
            "-ppw",
            "--database",
            "a",
            "--database",
            "b",
            "--output",
            "/tmp/x",
            "--threads",
            "8",
        ])
        .unwrap();
        let Command::Dump(d) = c.command else {
            panic!()
        };
        assert_eq!(d.connection.password.as_deref(), Some("pw"));
        assert_eq!(d.databases, ["a", "b"]);
        let c = parse(&[
            "mysnap",
            "restore",
            "/tmp/x",
            "-S",
            "/s.sock",
            "-p",
            "--threads",
            "2",
        ])
        .unwrap();
        let Command::Restore(r) = c.command else {
            panic!()
        };
        assert_eq!(r.connection.password.as_deref(), Some("\u{0}prompt"));
        assert!(parse(&["mysnap", "show", "/tmp/x", "--json"]).is_ok());
        // -P (port) is not a password.
        let c = parse(&["mysnap", "restore", "/tmp/x", "-P3307"]).unwrap();
        let Command::Restore(r) = c.command else {
            panic!()
        };
        assert_eq!(
            (r.connection.port, r.connection.password),
            (Some(3307), None)
        );
    }
}
