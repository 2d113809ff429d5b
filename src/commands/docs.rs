//! `mysnap completions` and `mysnap man`: generated from the clap definitions, so they
//! say what `--help` says.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// Prints a completion script for the shell.
pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "mysnap", &mut std::io::stdout());
    Ok(())
}

/// Writes `mysnap.1` and a page per command (`mysnap-dump.1`, `mysnap-binlog-archive.1`).
pub fn man(args: ManArgs) -> Result<()> {
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("{}: cannot create the directory", args.output.display()))?;
    let command = Cli::command();
    let mut written = 0;
    write_page(&command, "mysnap", &args.output, &mut written)?;
    println!(
        "wrote {written} manual pages into {}",
        args.output.display()
    );
    Ok(())
}

fn write_page(command: &clap::Command, name: &str, dir: &Path, written: &mut usize) -> Result<()> {
    let page = command.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .with_context(|| format!("rendering the manual page {name}"))?;
    std::fs::write(&path, out).with_context(|| format!("{}: cannot write", path.display()))?;
    *written += 1;
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_page(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
