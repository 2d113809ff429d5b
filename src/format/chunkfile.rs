//! Writing data files: row text → compressor → sha256 → `<name>.partial`, renamed to its
//! final name only once complete, then fsynced by a [`FileSyncer`] off the writer's path.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::codec::{Codec, FinishWrite};
use super::digest::RowsDigest;
use super::layout::PARTIAL_SUFFIX;
use super::manifest::DataFile;
use crate::error::{Error, IoContext, Result};

/// Counts and hashes the bytes that reach the disk.
struct HashingWriter {
    file: BufWriter<File>,
    state: std::sync::Arc<std::sync::Mutex<(Sha256, u64)>>,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        let mut st = self.state.lock().expect("hash state");
        st.0.update(&buf[..n]);
        st.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Not synced here: a FileSyncer does it off the writer's path.
        self.file.flush()
    }
}

/// fsyncs finished files on threads of their own, so that writers never wait for the disk
/// (an fsync per file in the writer made a thousand small tables wait a thousand journal
/// commits); [`FileSyncer::finish`] waits for the last. Several threads, because fsyncs
/// that overlap share ext4's journal commits: 1000 small new files took 175 ms to fsync
/// one after another and 100 ms from 4 threads (a 1000-table dump: 330 to 380 ms against
/// 285 to 300 ms). Only the files handed to it are synced, never the rest of the
/// filesystem (the server's files may share it).
pub struct FileSyncer {
    tx: SyncQueue,
    threads: Vec<std::thread::JoinHandle<Result<()>>>,
}

/// Where a [`DataFileWriter`] hands its finished files (`None` ends a syncing thread).
pub type SyncQueue = std::sync::mpsc::Sender<Option<(File, PathBuf)>>;

/// Threads that fsync at once.
const SYNC_THREADS: usize = 4;

impl FileSyncer {
    /// Starts the syncing threads.
    pub fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Option<(File, PathBuf)>>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let threads = (0..SYNC_THREADS)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    let mut first_error = None;
                    loop {
                        let next = rx.lock().expect("sync queue").recv();
                        let Ok(Some((file, path))) = next else { break };
                        if first_error.is_none() {
                            first_error = file.sync_all().at(&path).err();
                        }
                    }
                    first_error.map_or(Ok(()), Err)
                })
            })
            .collect();
        FileSyncer { tx, threads }
    }

    /// A queue for writers.
    pub fn queue(&self) -> SyncQueue {
        self.tx.clone()
    }

    /// Waits until every file queued so far is synced; the first failure is the error.
    /// Call it once the writers are done: what they queue later is not waited for.
    pub fn finish(self) -> Result<()> {
        for _ in &self.threads {
            let _ = self.tx.send(None);
        }
        let mut outcome = Ok(());
        for thread in self.threads {
            let result = thread
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("a file syncing thread panicked".into())));
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }
}

/// One data file being written.
struct OpenFile {
    relative: String,
    partial: PathBuf,
    /// The same file, kept to hand to the syncer once the encoder is done with it.
    sync_handle: Option<File>,
    encoder: Box<dyn FinishWrite + Send>,
    hash: std::sync::Arc<std::sync::Mutex<(Sha256, u64)>>,
    rows: u64,
    raw_bytes: u64,
    expected_warnings: u64,
    digest: RowsDigest,
}

/// Hands a finished file (the spool file, consumed) to where the dump goes.
pub type Publish = std::sync::Arc<dyn Fn(&Path, &DataFile) -> Result<()> + Send + Sync>;

/// Writes the data files of one table range, starting a new file whenever asked.
pub struct DataFileWriter {
    spool: PathBuf,
    publish: Publish,
    codec: Codec,
    level: i32,
    name_of_part: Box<dyn Fn(usize) -> String + Send>,
    next_part: usize,
    current: Option<OpenFile>,
    done: Vec<DataFile>,
    syncer: Option<SyncQueue>,
}

impl DataFileWriter {
    /// A writer into the spool directory `spool`, naming part `n` with `name_of_part(n)`
    /// (a path relative to `spool`), handing each finished file to `publish`.
    pub fn new(
        spool: &Path,
        publish: Publish,
        codec: Codec,
        level: i32,
        first_part: usize,
        name_of_part: Box<dyn Fn(usize) -> String + Send>,
    ) -> Self {
        DataFileWriter {
            spool: spool.to_path_buf(),
            publish,
            codec,
            level,
            name_of_part,
            next_part: first_part,
            current: None,
            done: Vec::new(),
            syncer: None,
        }
    }

    /// Hands every finished file to `queue` to be fsynced.
    pub fn synced_by(mut self, queue: SyncQueue) -> Self {
        self.syncer = Some(queue);
        self
    }

    /// Appends whole rows of row text to the current file (opening one if needed);
    /// `expected_warnings` counts values that will warn when loaded (see [`DataFile`]),
    /// `digest` is the rows' (see [`super::digest`]).
    pub fn write_rows(
        &mut self,
        text: &[u8],
        rows: u64,
        expected_warnings: u64,
        digest: RowsDigest,
    ) -> Result<()> {
        if self.current.is_none() {
            self.current = Some(self.open_next()?);
        }
        let f = self.current.as_mut().expect("open file");
        f.encoder.write_all(text).at(&f.partial)?;
        f.rows += rows;
        f.raw_bytes += text.len() as u64;
        f.expected_warnings += expected_warnings;
        f.digest.combine(digest);
        Ok(())
    }

    /// Completes the current file: trailer, then handed on to be published.
    pub fn finish_file(&mut self) -> Result<()> {
        let Some(f) = self.current.take() else {
            return Ok(());
        };
        f.encoder.finish_stream().at(&f.partial)?;
        let (hasher, stored) = {
            let st = f.hash.lock().expect("hash state");
            (st.0.clone(), st.1)
        };
        let done = DataFile {
            path: f.relative,
            rows: f.rows,
            raw_bytes: f.raw_bytes,
            stored_bytes: stored,
            sha256: hex::encode(hasher.finalize()),
            expected_warnings: f.expected_warnings,
            rows_digest: Some(f.digest.to_hex()),
        };
        // Synced through the open handle, wherever publishing moved the file.
        if let (Some(queue), Some(file)) = (&self.syncer, f.sync_handle) {
            queue
                .send(Some((file, f.partial.clone())))
                .map_err(|_| Error::Internal("the file syncing thread stopped".into()))?;
        }
        (self.publish)(&f.partial, &done)?;
        self.done.push(done);
        Ok(())
    }

    /// Completes the last file and returns every file written, in order.
    pub fn finish(mut self) -> Result<Vec<DataFile>> {
        self.finish_file()?;
        Ok(self.done)
    }

    fn open_next(&mut self) -> Result<OpenFile> {
        let relative = (self.name_of_part)(self.next_part);
        self.next_part += 1;
        let partial = self.spool.join(format!("{relative}{PARTIAL_SUFFIX}"));
        let file = super::layout::create_private_file(&partial).at(&partial)?;
        let sync_handle = match self.syncer {
            Some(_) => Some(file.try_clone().at(&partial)?),
            None => None,
        };
        let hash = std::sync::Arc::new(std::sync::Mutex::new((Sha256::new(), 0)));
        let sink = HashingWriter {
            file: BufWriter::with_capacity(256 * 1024, file),
            state: hash.clone(),
        };
        let encoder = self
            .codec
            .encoder(self.level, sink)
            .map_err(|e| Error::io(&partial, e))?;
        Ok(OpenFile {
            relative,
            partial,
            sync_handle,
            encoder,
            hash,
            rows: 0,
            raw_bytes: 0,
            expected_warnings: 0,
            digest: RowsDigest::default(),
        })
    }
}

/// sha256 and size of a file on disk, read in a stream.
#[cfg(test)]
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = super::layout::open_data_file(path).at(path)?;
    let mut hasher = Sha256::new();
    let n = io::copy(&mut file, &mut hasher).at(path)?;
    Ok((hex::encode(hasher.finalize()), n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn files_appear_only_when_finished_and_hashes_match_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let moved_to = out.path().to_path_buf();
        let publish: Publish = std::sync::Arc::new(move |partial: &Path, f: &DataFile| {
            let dest = moved_to.join(&f.path);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::rename(partial, dest).unwrap();
            Ok(())
        });
        let mut w = DataFileWriter::new(
            dir.path(),
            publish,
            Codec::Gzip,
            6,
            0,
            Box::new(|n| format!("data/t.{n:05}.tsv.gz")),
        );
        w.write_rows(b"1\ta\n2\tb\n", 2, 0, RowsDigest(1)).unwrap();
        assert!(!out.path().join("data/t.00000.tsv.gz").exists());
        assert!(dir.path().join("data/t.00000.tsv.gz.partial").exists());
        w.finish_file().unwrap();
        w.write_rows(b"3\tc\n", 1, 0, RowsDigest(2)).unwrap();
        let files = w.finish().unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].rows, files[0].raw_bytes), (2, 8));
        for f in &files {
            let path = out.path().join(&f.path);
            let (sha, size) = hash_file(&path).unwrap();
            assert_eq!((sha.as_str(), size), (f.sha256.as_str(), f.stored_bytes));
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(out.path().join(&files[1].path)).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "3\tc\n");
    }
}
