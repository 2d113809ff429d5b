//! Checking a dump before anything touches the target: every file the manifest names
//! exists with its recorded size and sha256.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::chunkfile::hash_file;

/// Verifies the listed files, as (path, size, sha256), on `threads` threads; the first
/// damaged file is the error.
pub fn verify_listed(dir: &Path, files: &[(String, u64, String)], threads: usize) -> Result<()> {
    let files = Arc::new(files.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (files, next, dir) = (files.clone(), next.clone(), dir.to_path_buf());
            std::thread::spawn(move || -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((rel, size, sha)) = files.get(i) else {
                        return Ok(());
                    };
                    check_file(&dir, rel, *size, sha)?;
                }
            })
        })
        .collect();
    let mut first_error = None;
    for h in handles {
        let r = h
            .join()
            .unwrap_or_else(|_| Err(Error::Dump("verification thread panicked".into())));
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
        .map_err(|e| Error::Dump(format!("{}: {e}; the dump is incomplete", path.display())))?;
    if !meta.is_file() {
        return Err(Error::Dump(format!(
            "{}: not a regular file (a link or a directory); a dump's data files are plain files",
            path.display()
        )));
    }
    if meta.len() != size {
        return Err(Error::Dump(format!(
            "{}: size {} differs from the manifest's {size}; the file is damaged",
            path.display(),
            meta.len()
        )));
    }
    let (found, _) = hash_file(&path)?;
    if found != sha {
        return Err(Error::Dump(format!(
            "{}: sha256 {found} differs from the manifest's {sha}; the file is damaged",
            path.display()
        )));
    }
    Ok(())
}
