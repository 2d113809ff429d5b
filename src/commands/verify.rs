//! `mysnap verify`.

use anyhow::Result;
use mysnap::restore::verify_dump;

use crate::cli::VerifyArgs;
use crate::display::bytes;

/// Checks a dump directory with no server and says what was checked.
pub fn run(args: VerifyArgs) -> Result<()> {
    let r = verify_dump(&args.dir, args.threads)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "dump": args.dir,
                "ok": true,
                "files": r.files,
                "rows": r.rows,
                "raw_bytes": r.raw_bytes,
                "stored_bytes": r.stored_bytes,
            })
        );
    } else {
        println!(
            "verified {}: {} data files, {} rows, {} raw, {} stored; every size, sha256, row and column as the manifest records",
            args.dir.display(),
            r.files,
            r.rows,
            bytes(r.raw_bytes),
            bytes(r.stored_bytes)
        );
    }
    Ok(())
}
