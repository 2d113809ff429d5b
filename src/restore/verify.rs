//! Checking a dump before anything touches the target: every file the manifest names
//! exists with its recorded size and sha256.

use std::io::Read;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::chunkfile::hash_file;
use crate::format::layout::open_data_file;
use crate::format::rowtext::RowCounter;
use crate::format::Codec;

/// Verifies the listed files, as (path, size, sha256), on `threads` threads; the first
/// damaged file is the error.
pub fn verify_listed(dir: &Path, files: &[(String, u64, String)], threads: usize) -> Result<()> {
    on_threads(files, threads, |(rel, size, sha)| {
        check_file(dir, rel, *size, sha)
    })
}

/// What [`verify_dump`] checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Data files.
    pub files: usize,
    /// Rows in them.
    pub rows: u64,
    /// Their bytes once decompressed.
    pub raw_bytes: u64,
    /// Their bytes on disk.
    pub stored_bytes: u64,
}

/// Checks a dump with no server: the manifest's rules, a data directory holding only its
/// files, and every file's size and sha256, and that it decompresses to exactly the rows
/// and bytes recorded, each row with its table's number of columns. The first problem
/// found is the error, naming the file.
pub fn verify_dump(dir: &Path, threads: usize) -> Result<VerifyReport> {
    let manifest = crate::format::Manifest::read(dir)?;
    super::check_data_directory(dir, &manifest)?;
    let codec = manifest.options.compression;
    let files: Vec<_> = manifest.data_files().map(|(_, t, f)| (t, f)).collect();
    on_threads(&files, threads, |(t, f)| {
        check_file(dir, &f.path, f.stored_bytes, &f.sha256)?;
        check_rows(
            &dir.join(&f.path),
            codec,
            f.rows,
            f.raw_bytes,
            t.columns.len(),
        )
    })?;
    let t = &manifest.totals;
    Ok(VerifyReport {
        files: t.files as usize,
        rows: t.rows,
        raw_bytes: t.raw_bytes,
        stored_bytes: t.stored_bytes,
    })
}

/// Decompresses a file and counts its rows and bytes.
fn check_rows(path: &Path, codec: Codec, rows: u64, raw: u64, columns: usize) -> Result<()> {
    let damaged =
        |what: String| Error::Damaged(format!("{}: {what}; the file is damaged", path.display()));
    let file = open_data_file(path).map_err(|e| Error::io(path, e))?;
    let mut input = codec
        .decoder(std::io::BufReader::with_capacity(256 * 1024, file))
        .map_err(|e| damaged(format!("does not decompress ({e})")))?;
    let mut counter = RowCounter::new(columns);
    let mut block = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match input.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(damaged(format!("does not decompress ({e})"))),
        };
        bytes += n as u64;
        counter.push(&block[..n]);
    }
    let found = counter.finish().map_err(damaged)?;
    if let Some((row, fields)) = counter.bad_row {
        return Err(damaged(format!(
            "row {row} has {fields} fields, its table {columns} columns"
        )));
    }
    if found != rows || bytes != raw {
        return Err(damaged(format!(
            "holds {found} rows and {bytes} bytes, the manifest says {rows} and {raw}"
        )));
    }
    Ok(())
}

/// Runs `check` on every item, on a pool of `threads` threads. The error is the first
/// failure in the items' order, so that a dump with several damaged files names the same
/// one on every run; items after it are not checked.
fn on_threads<T: Sync>(
    items: &[T],
    threads: usize,
    check: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the verification threads: {e}")))?;
    let first_failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.install(|| items.par_iter().find_map_first(|item| check(item).err()))
    }))
    .map_err(|_| Error::Internal("verification thread panicked".into()))?;
    first_failure.map_or(Ok(()), Err)
}

/// Checks one file's presence, size and sha256.
pub fn check_file(dir: &Path, rel: &str, size: u64, sha: &str) -> Result<()> {
    let path = dir.join(rel);
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| Error::Damaged(format!("{}: {e}; the dump is incomplete", path.display())))?;
    if !meta.is_file() {
        return Err(Error::Damaged(format!(
            "{}: not a regular file (a link or a directory); a dump's data files are plain files",
            path.display()
        )));
    }
    if meta.len() != size {
        return Err(Error::Damaged(format!(
            "{}: size {} differs from the manifest's {size}; the file is damaged",
            path.display(),
            meta.len()
        )));
    }
    let (found, _) = hash_file(&path)?;
    if found != sha {
        return Err(Error::Damaged(format!(
            "{}: sha256 {found} differs from the manifest's {sha}; the file is damaged",
            path.display()
        )));
    }
    Ok(())
}
