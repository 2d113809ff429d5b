//! Checking a dump before anything touches the target: every file the manifest names
//! exists with its recorded size and sha256.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use std::io::Read;

use crate::format::chunkfile::hash_file;
use crate::format::layout::open_data_file;
use crate::format::rowtext::RowCounter;
use crate::format::Codec;

/// Verifies the listed files, as (path, size, sha256), on `threads` threads; the first
/// damaged file is the error.
pub fn verify_listed(dir: &Path, files: &[(String, u64, String)], threads: usize) -> Result<()> {
    let dir = dir.to_path_buf();
    on_threads(files.to_vec(), threads, move |(rel, size, sha)| {
        check_file(&dir, rel, *size, sha)
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
    let jobs: Vec<(String, u64, String, u64, u64, usize)> = manifest
        .data_files()
        .map(|(_, t, f)| {
            (
                f.path.clone(),
                f.stored_bytes,
                f.sha256.clone(),
                f.rows,
                f.raw_bytes,
                t.columns.len(),
            )
        })
        .collect();
    let dir_owned = dir.to_path_buf();
    on_threads(
        jobs,
        threads,
        move |(rel, size, sha, rows, raw, columns)| {
            check_file(&dir_owned, rel, *size, sha)?;
            check_rows(&dir_owned.join(rel), codec, *rows, *raw, *columns)
        },
    )?;
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

/// Runs `check` on every item, on `threads` threads; the first failure is the error.
fn on_threads<T: Send + Sync + 'static>(
    items: Vec<T>,
    threads: usize,
    check: impl Fn(&T) -> Result<()> + Send + Sync + 'static,
) -> Result<()> {
    let items = Arc::new(items);
    let check = Arc::new(check);
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (items, next, check) = (items.clone(), next.clone(), check.clone());
            std::thread::spawn(move || -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        return Ok(());
                    };
                    check(item)?;
                }
            })
        })
        .collect();
    let mut first_error = None;
    for h in handles {
        let r = h
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("verification thread panicked".into())));
        if let (Err(e), None) = (r, &first_error) {
            first_error = Some(e);
        }
    }
    first_error.map_or(Ok(()), Err)
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
