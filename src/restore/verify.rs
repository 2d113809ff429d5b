//! Checking a dump before anything touches the target, or with no server at all: every
//! data file the manifest names is there with its recorded size and sha256 and, when
//! asked, decompresses to exactly its recorded rows. Files are read through the dump's
//! [`Source`], once each: hashing and decompressing share one pass.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::Source;
use crate::error::{Error, Result};
use crate::format::digest::RowsDigest;
use crate::format::manifest::DataFile;
use crate::format::rowtext::RowCounter;
use crate::format::Codec;
use crate::repo::Repository;

/// Verifies the size and sha256 of `files`, on `threads` threads; the first damaged file
/// (in their order) is the error.
pub(crate) fn verify_listed(source: &Source, files: &[DataFile], threads: usize) -> Result<()> {
    on_threads(files, threads, |f| check_file(source, f, None))
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
    /// Their bytes as stored.
    pub stored_bytes: u64,
}

/// Checks a dump with no server: the manifest's rules, a data directory holding only its
/// files, and every file's size and sha256, and that it decompresses to exactly the rows
/// and bytes recorded, each row with its table's number of columns. The first problem
/// found is the error, naming the file.
pub fn verify_dump(source: &Source, threads: usize) -> Result<VerifyReport> {
    let (manifest, _) = source.manifest()?;
    source.check_layout(&manifest)?;
    let codec = manifest.options.compression;
    let files: Vec<_> = manifest.data_files().map(|(_, t, f)| (t, f)).collect();
    on_threads(&files, threads, |(t, f)| {
        check_file(source, f, Some((codec, t.columns.len())))
    })?;
    let t = &manifest.totals;
    Ok(VerifyReport {
        files: t.files as usize,
        rows: t.rows,
        raw_bytes: t.raw_bytes,
        stored_bytes: t.stored_bytes,
    })
}

/// Checks one data file: there, of its recorded size, and with its recorded sha256;
/// with `rows` as (codec, columns), also that it decompresses to its recorded rows and
/// bytes, each row of `columns` fields. One read of the stored bytes does all.
pub fn check_file(source: &Source, f: &DataFile, rows: Option<(Codec, usize)>) -> Result<()> {
    let name = || source.name(f);
    match source.stat(f) {
        Ok(Some(size)) if size == f.stored_bytes => {}
        Ok(Some(size)) => {
            return Err(Error::Damaged(format!(
                "{}: size {size} differs from the manifest's {}; the file is damaged",
                name(),
                f.stored_bytes
            )))
        }
        Ok(None) => {
            return Err(Error::Damaged(format!(
                "{}: missing; the dump is incomplete",
                name()
            )))
        }
        Err(e) => return Err(e),
    }
    let hashed = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let inner = Arc::new(Mutex::new(source.open(f)?));
    let mut reader = HashingReader {
        inner,
        state: hashed.clone(),
    };
    let decoded = match rows {
        Some((codec, columns)) => count_rows(reader.clone(), codec, columns),
        None => Ok((0, 0, RowsDigest::default())),
    };
    // What the decoder left (a trailer, or bytes appended) is hashed too.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| Error::io(name(), e))?;
    let (hasher, size) = {
        let st = hashed.lock().expect("hash state");
        (st.0.clone(), st.1)
    };
    let found = hex::encode(hasher.finalize());
    if size != f.stored_bytes {
        return Err(Error::Damaged(format!(
            "{}: {size} bytes read, the manifest says {}; the file is damaged",
            name(),
            f.stored_bytes
        )));
    }
    if found != f.sha256 {
        return Err(Error::Damaged(format!(
            "{}: sha256 {found} differs from the manifest's {}; the file is damaged",
            name(),
            f.sha256
        )));
    }
    let damaged = |what: String| Error::Damaged(format!("{}: {what}; the file is damaged", name()));
    match (rows, decoded) {
        (None, _) => Ok(()),
        (Some(_), Err(what)) => Err(damaged(what)),
        (Some(_), Ok((found, bytes, _))) if found != f.rows || bytes != f.raw_bytes => {
            Err(damaged(format!(
                "holds {found} rows and {bytes} bytes, the manifest says {} and {}",
                f.rows, f.raw_bytes
            )))
        }
        (Some(_), Ok((_, _, digest)))
            if f.rows_digest
                .as_deref()
                .is_some_and(|d| d != digest.to_hex()) =>
        {
            Err(damaged(format!(
                "its rows' digest is {}, the manifest says {}",
                digest.to_hex(),
                f.rows_digest.as_deref().unwrap_or_default()
            )))
        }
        (Some(_), Ok(_)) => Ok(()),
    }
}

/// Hashes and counts what is read through it; clones share the stream (the decoder takes
/// one, and what it leaves is read through another).
#[derive(Clone)]
struct HashingReader {
    inner: Arc<Mutex<Box<dyn Read + Send>>>,
    state: Arc<Mutex<(Sha256, u64)>>,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.lock().expect("stream").read(buf)?;
        let mut st = self.state.lock().expect("hash state");
        st.0.update(&buf[..n]);
        st.1 += n as u64;
        Ok(n)
    }
}

/// Decompresses a stream and counts its rows and bytes; a row with another number of
/// fields than `columns`, or a stream that does not decompress, is the error.
fn count_rows(
    input: HashingReader,
    codec: Codec,
    columns: usize,
) -> std::result::Result<(u64, u64, RowsDigest), String> {
    let mut input = codec
        .decoder(std::io::BufReader::with_capacity(256 * 1024, input))
        .map_err(|e| format!("does not decompress ({e})"))?;
    let mut counter = RowCounter::new(columns);
    let mut block = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match input.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("does not decompress ({e})")),
        };
        bytes += n as u64;
        counter.push(&block[..n]);
    }
    let found = counter.finish()?;
    if let Some((row, fields)) = counter.bad_row {
        return Err(format!(
            "row {row} has {fields} fields, its table {columns} columns"
        ));
    }
    Ok((found, bytes, counter.digest()))
}

/// Runs `check` on every item, on a pool of `threads` threads. The error is the first
/// failure in the items' order, so that a dump with several damaged files names the same
/// one on every run; items after it are not checked.
fn on_threads<T: Sync>(
    items: &[T],
    threads: usize,
    check: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let pool = pool(threads)?;
    let first_failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.install(|| items.par_iter().find_map_first(|item| check(item).err()))
    }))
    .map_err(|_| Error::Internal("verification thread panicked".into()))?;
    first_failure.map_or(Ok(()), Err)
}

/// Runs `check` on every item, on `threads` threads, and returns every outcome in the
/// items' order (for checking many snapshots, where each wants its own answer).
pub(crate) fn each_on_threads<T: Sync>(
    items: &[T],
    threads: usize,
    check: impl Fn(&T) -> Result<()> + Sync,
) -> Result<Vec<Result<()>>> {
    let pool = pool(threads)?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.install(|| items.par_iter().map(&check).collect())
    }))
    .map_err(|_| Error::Internal("verification thread panicked".into()))
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the verification threads: {e}")))
}

/// One snapshot's verification.
#[derive(Debug, Clone)]
pub struct SnapshotCheck {
    /// Its id.
    pub id: String,
    /// What was checked, or the first problem, naming the snapshot and the object.
    pub outcome: std::result::Result<VerifyReport, String>,
}

/// Verifies snapshots of a repository as [`verify_dump`] verifies a directory (and that
/// each index names exactly its manifest's objects), reading each object once however
/// many snapshots share it, and records each outcome in the repository for `list`.
pub fn verify_snapshots(
    repo: &Arc<Repository>,
    ids: &[String],
    threads: usize,
) -> Result<Vec<SnapshotCheck>> {
    let objects = Source::objects(repo, super::source::read_lock(repo, "verify")?);
    // Each snapshot's files, in manifest order, as positions among the unique objects.
    let mut unique: Vec<(DataFile, Codec, usize)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    // Per snapshot: its files' positions among the unique objects, and its totals.
    type Planned = std::result::Result<(Vec<usize>, VerifyReport), String>;
    let mut plans: Vec<(String, Planned)> = Vec::new();
    for id in ids {
        let planned = (|| -> Result<(Vec<usize>, VerifyReport)> {
            let manifest = repo.manifest(id)?;
            check_index_objects(repo, id, &manifest)?;
            let codec = manifest.options.compression;
            let mut mine = Vec::new();
            for (_, t, f) in manifest.data_files() {
                let name = crate::repo::data_object(f);
                let at = *position.entry(name).or_insert_with(|| {
                    unique.push((f.clone(), codec, t.columns.len()));
                    unique.len() - 1
                });
                mine.push(at);
            }
            let t = &manifest.totals;
            Ok((
                mine,
                VerifyReport {
                    files: t.files as usize,
                    rows: t.rows,
                    raw_bytes: t.raw_bytes,
                    stored_bytes: t.stored_bytes,
                },
            ))
        })();
        plans.push((id.clone(), planned.map_err(|e| e.to_string())));
    }
    let outcomes = each_on_threads(&unique, threads, |(f, codec, columns)| {
        check_file(&objects, f, Some((*codec, *columns)))
    })?;
    let mut out = Vec::new();
    for (id, planned) in plans {
        let outcome = planned.and_then(|(mine, report)| {
            match mine.iter().find_map(|&at| outcomes[at].as_ref().err()) {
                Some(e) => Err(format!("snapshot {id}: {e}")),
                None => Ok(report),
            }
        });
        let outcome = outcome.map_err(|e| {
            if e.starts_with(&format!("snapshot {id}")) {
                e
            } else {
                format!("snapshot {id}: {e}")
            }
        });
        // A repository that cannot be written to (a read-only mount) is still verified.
        if let Err(e) =
            repo.record_verification(&id, outcome.is_ok(), outcome.as_ref().err().cloned(), false)
        {
            tracing::warn!("the outcome of verifying {id} was not recorded: {e}");
        }
        out.push(SnapshotCheck { id, outcome });
    }
    Ok(out)
}

/// The index, which `list` trusts to say whether a snapshot is restorable, names exactly
/// the objects its manifest needs, with their sizes.
fn check_index_objects(
    repo: &Repository,
    id: &str,
    manifest: &crate::format::Manifest,
) -> Result<()> {
    let index = repo.index(id)?;
    let listed: HashSet<(String, u64)> = index
        .objects
        .iter()
        .map(|o| (o.name.clone(), o.size))
        .collect();
    let needed: HashSet<(String, u64)> = manifest
        .data_files()
        .map(|(_, _, f)| (crate::repo::data_object(f), f.stored_bytes))
        .collect();
    if listed != needed {
        return Err(Error::Damaged(format!(
            "snapshot {id}: its index names {} objects, its manifest needs {} (not the same); the index was altered",
            listed.len(),
            needed.len()
        )));
    }
    Ok(())
}
