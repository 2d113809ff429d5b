//! The `mysnap` command: parse flags, call the library, print one-line errors.

mod argv;
mod cli;
mod commands;
mod display;
mod malloc;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use commands::metrics::Metrics;

fn main() -> ExitCode {
    malloc::tune();
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // A value given after -p or --password as a separate argument may be a password that
    // was meant to be attached: no message ever shows it.
    let secrets = cli::possible_secrets(&args);
    let defaults = match read_defaults(&mut args) {
        Ok(Some(d)) => d,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mysnap: error: {}", one_line(&cli::redact(&e, &secrets)));
            return ExitCode::from(1);
        }
    };
    let cli = match Cli::try_parse_from(cli::normalize_password_args(args)) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, &secrets),
    };
    // A password given on the command line is overwritten in our argv so that it does
    // not stay visible in the process list.
    argv::scrub_passwords();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MYSNAP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Init(args) => commands::repo::init(args),
        Command::List(args) => commands::repo::list(args),
        Command::Forget(args) => {
            let m = Metrics::new(args.metrics_file.clone(), "forget");
            measured(&m, commands::repo::forget(args, &m))
        }
        Command::Delete(args) => commands::repo::delete(args),
        Command::Protect(args) => commands::repo::protect(args),
        Command::Binlog(cli::BinlogCommand::Status(args)) => commands::binlog::status(args),
        Command::Completions(args) => commands::docs::completions(args),
        Command::Man(args) => commands::docs::man(args),
        Command::Binlog(cli::BinlogCommand::Archive(args)) => {
            let m = Metrics::new(args.metrics_file.clone(), "binlog_archive");
            let r = run_async(
                commands::binlog::archive(args, defaults, &m),
                "stopped; the archive holds what was written, and the next run resumes exactly after it",
            );
            // A stop by SIGTERM is the service's normal end, not a failure.
            let stopped = r.as_ref().err().is_some_and(|e| e.downcast_ref::<Interrupted>().is_some());
            match m.write(r.is_ok() || stopped) {
                Ok(()) => r,
                Err(e) => r.and(Err(e)),
            }
        }
        Command::Show(args) => commands::show::run(args),
        Command::Verify(args) => {
            let m = Metrics::new(args.metrics_file.clone(), "verify");
            measured(&m, run_async(
                commands::verify::run(args, defaults, &m),
                "interrupted; a verification by restoring leaves its scratch databases (mysnap_verify_*) to be dropped, or replaced by the next one",
            ))
        }
        Command::Dump(args) => {
            let m = Metrics::new(args.metrics_file.clone(), "dump");
            measured(&m, run_async(
                commands::dump::run(args, defaults, &m),
                "interrupted; the dump was stopped and what it had written removed",
            ))
        }
        Command::Restore(args) => run_async(
            commands::restore::run(args, defaults),
            "interrupted; the target holds a partial restore: run the same command with --resume to continue it, or with --restart --existing=drop to start over",
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            // One line, whatever the server or a statement put in the message.
            let mut message = format!("{e:#}");
            let guidance = e
                .chain()
                .find_map(|c| c.downcast_ref::<mysnap::Error>())
                .and_then(mysnap::Error::guidance);
            if let Some(g) = guidance {
                message.push_str("; ");
                message.push_str(g);
            }
            let message = one_line(&cli::redact(&message, &secrets));
            eprintln!("mysnap: error: {message}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Reads the option files for a command that connects, prints their warnings, and puts
/// their `[mysnap]` settings into `args` as flags the user did not give. `None` when
/// `--print-defaults` printed them and the run is over.
fn read_defaults(args: &mut Vec<std::ffi::OsString>) -> Result<Option<commands::Defaults>, String> {
    use clap::CommandFactory;
    let sub_name = args
        .get(1)
        .and_then(|a| a.to_str())
        .unwrap_or("")
        .to_string();
    let command = Cli::command();
    // A command, or a command of a group (`binlog archive`): where its flags begin.
    let mut at = 2;
    let mut sub = command.get_subcommands().find(|c| c.get_name() == sub_name);
    if let Some(group) = sub.filter(|c| c.has_subcommands()) {
        let name = args.get(2).and_then(|a| a.to_str()).unwrap_or("");
        sub = group.get_subcommands().find(|c| c.get_name() == name);
        at = 3;
    }
    let Some(sub) = sub.filter(|c| {
        c.get_arguments()
            .any(|a| matches!(a.get_long(), Some("host" | "repo")))
    }) else {
        return Ok(Some(commands::Defaults::default()));
    };
    if args.len() < at {
        return Ok(Some(commands::Defaults::default()));
    }
    let (sources, print) = cli::defaults_sources(args);
    let env = |k: &str| std::env::var(k).ok();
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let loaded =
        mysnap::optionfile::load(&sources, &env, home.as_deref()).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        eprintln!("mysnap: warning: {w}");
    }
    let groups = mysnap::optionfile::groups(&sources, &env);
    let mysnap_groups: Vec<String> = groups
        .iter()
        .filter(|g| g.starts_with("mysnap"))
        .cloned()
        .collect();
    let flags = cli::settings_as_flags(&loaded, &mysnap_groups, sub, &args[at..])?;
    if print {
        println!("mysnap {sub_name} would have been started with the following arguments:");
        println!("{}", loaded.print_defaults(&groups).join(" "));
        return Ok(None);
    }
    args.splice(at..at, flags);
    Ok(Some(commands::Defaults { loaded, groups }))
}

/// A message on one line, whatever the server, a statement or a name put in it: runs of
/// whitespace become one space and other control characters (a name may hold an ESC)
/// are escaped.
fn one_line(message: &str) -> String {
    message
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// A usage error: one line, exit status 2 (as clap's own). Help and version print as usual.
fn usage_error(e: clap::Error, secrets: &[String]) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let mut message = one_line(&cli::redact(first, secrets));
    if !secrets.is_empty() && message != first {
        message.push_str(" (a value after -p/--password is not shown: give a password attached, -pSECRET or --password=SECRET, or -p alone to be prompted)");
    }
    eprintln!("mysnap: error: {message}; see mysnap --help");
    ExitCode::from(2)
}

/// Ctrl-C or SIGTERM, with what it means for the command that was stopped.
#[derive(Debug)]
struct Interrupted(&'static str);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Runs a command on a runtime; Ctrl-C or SIGTERM drops it, which closes every session,
/// so the server releases any lock they held.
fn run_async(
    fut: impl std::future::Future<Output = anyhow::Result<()>>,
    interrupted: &'static str,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = fut => r,
            _ = tokio::signal::ctrl_c() => Err(Interrupted(interrupted).into()),
            _ = term.recv() => Err(Interrupted(interrupted).into()),
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    outcome
}

/// The exit status scripts can act on (README, "Exit status"): 3 when the server could
/// not be reached or the connection was lost, 4 when data failed a check (damaged or
/// altered files or objects, a restore that read back different rows), 130 when
/// interrupted, 1 for anything else. Usage errors exit 2 before this.
fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<Interrupted>().is_some() {
        return 130;
    }
    match e.chain().find_map(|c| c.downcast_ref::<mysnap::Error>()) {
        Some(mysnap::Error::Connect { .. }) => 3,
        Some(err) if err.is_connection_lost() => 3,
        Some(mysnap::Error::Damaged(_) | mysnap::Error::Mismatch(_)) => 4,
        _ => 1,
    }
}

/// Writes the run's metrics (when asked) and passes its outcome on; a metrics file that
/// cannot be written fails a run that succeeded.
fn measured(m: &Metrics, r: anyhow::Result<()>) -> anyhow::Result<()> {
    match m.write(r.is_ok()) {
        Ok(()) => r,
        Err(e) => r.and(Err(e)),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
