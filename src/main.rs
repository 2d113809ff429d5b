//! The `mysnap` command: parse flags, call the library, print one-line errors.

mod argv;
mod cli;
mod commands;
mod malloc;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    malloc::tune();
    let cli = Cli::parse_from(cli::normalize_password_args(std::env::args_os()));
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
        Command::Show(args) => commands::show::run(args),
        Command::Dump(args) => run_async(commands::dump::run(args)),
        Command::Restore(args) => run_async(commands::restore::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            // One line, whatever the server or a statement put in the message.
            let message = format!("{e:#}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("mysnap: error: {message}");
            ExitCode::from(if e.downcast_ref::<Interrupted>().is_some() {
                130
            } else {
                1
            })
        }
    }
}

#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted; the output is incomplete and has no manifest")
    }
}

impl std::error::Error for Interrupted {}

/// Runs a command on a runtime; Ctrl-C or SIGTERM drops it, which closes every session,
/// so the server releases any lock they held.
fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = fut => r,
            _ = tokio::signal::ctrl_c() => Err(Interrupted.into()),
            _ = term.recv() => Err(Interrupted.into()),
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    outcome
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
