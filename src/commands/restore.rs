//! `mysnap restore`.

use std::sync::Arc;

use anyhow::Result;
use mysnap::progress::{self, Display};
use mysnap::restore::{self, Existing, RestoreOptions};

use super::{connector, mib};
use crate::cli::RestoreArgs;

/// Validates the flags, runs the restore, prints a summary.
pub async fn run(args: RestoreArgs) -> Result<()> {
    let existing: Existing = args.existing.parse()?;
    let options = RestoreOptions {
        dir: args.dir.clone(),
        threads: args.threads,
        existing,
        write_binlog: !args.skip_binlog,
        defer_indexes: !args.keep_indexes,
    };
    let connector = connector(&args.connection)?;
    let display = if args.quiet {
        Display::Quiet
    } else {
        Display::Auto
    };
    let progress: Arc<dyn progress::Progress> = Arc::from(progress::for_stderr(display));
    let s = restore::run(&connector, &options, progress).await?;
    if !args.quiet {
        println!(
            "restored {} tables, {} rows, {} in {:.1} s from {}",
            s.tables,
            s.rows,
            mib(s.raw_bytes),
            s.seconds,
            args.dir.display()
        );
    }
    Ok(())
}
