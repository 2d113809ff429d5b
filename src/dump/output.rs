//! Where a dump goes: a new directory, or a new snapshot of a repository. Either way the
//! workers write each data file into a local spool and hand it, finished, to a store
//! (`publish`); the manifest is written through the store last. Nothing here knows how a
//! store keeps bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::layout::{self, DATA_DIR, MANIFEST};
use crate::format::manifest::DataFile;
use crate::format::Manifest;
use crate::repo::{NewSnapshot, Repository, SnapshotIndex};
use crate::store::{LocalStore, Store};

/// Where the dump goes.
#[derive(Clone)]
pub enum Destination {
    /// A new (or empty) directory.
    Directory(PathBuf),
    /// A new snapshot of a repository, with its tags, protected from retention or not.
    Repository {
        /// The repository.
        repo: Arc<Repository>,
        /// Operator's tags.
        tags: Vec<String>,
        /// Protected from every retention policy.
        keep_forever: bool,
    },
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Directory(dir) => write!(f, "directory {}", dir.display()),
            Destination::Repository { repo, .. } => write!(f, "repository {}", repo.location()),
        }
    }
}

impl Destination {
    /// Checks the destination before any connection is opened.
    pub(crate) fn check(&self) -> Result<()> {
        match self {
            Destination::Directory(dir) => check_output_dir(dir),
            Destination::Repository { .. } => Ok(()),
        }
    }
}

/// Hands a finished data file (its local spool file, consumed) to where the dump goes.
pub(crate) type Publisher = Arc<dyn Fn(&Path, &DataFile) -> Result<()> + Send + Sync>;

/// An open destination.
pub(crate) enum Output {
    Directory {
        store: Arc<LocalStore>,
        spool: tempfile::TempDir,
        guard: OutputGuard,
    },
    Snapshot(Arc<NewSnapshot>),
}

impl Output {
    /// Opens the destination: creates the directory, or begins the snapshot (taking the
    /// repository's shared lock).
    pub(crate) fn open(destination: &Destination) -> Result<Output> {
        let output = match destination {
            Destination::Directory(dir) => {
                let guard = create_output_dir(dir)?;
                let store = Arc::new(LocalStore::open(dir)?);
                let spool = store.staging()?;
                Output::Directory {
                    store,
                    spool,
                    guard,
                }
            }
            Destination::Repository {
                repo,
                tags,
                keep_forever,
            } => Output::Snapshot(Arc::new(repo.begin(tags.clone(), *keep_forever)?)),
        };
        let data = output.spool().join(DATA_DIR);
        layout::create_private_dir(&data).map_err(|e| Error::io(&data, e))?;
        Ok(output)
    }

    /// The local directory the workers write data files into (under `data/`).
    pub(crate) fn spool(&self) -> &Path {
        match self {
            Output::Directory { spool, .. } => spool.path(),
            Output::Snapshot(s) => s.spool(),
        }
    }

    /// Where finished files go.
    pub(crate) fn publisher(&self) -> Publisher {
        match self {
            Output::Directory { store, .. } => {
                let store = store.clone();
                Arc::new(move |partial, file| store.put_file(&file.path, partial))
            }
            Output::Snapshot(s) => {
                let s = s.clone();
                Arc::new(move |partial, file| s.publish(partial, file))
            }
        }
    }

    /// Forgets the files a failed start wrote: a directory's are removed; a snapshot's
    /// objects may be shared with others, so they stay for the next prune.
    pub(crate) fn restart(&self) -> Result<()> {
        clear_dir(&self.spool().join(DATA_DIR))?;
        if let Output::Directory { store, .. } = self {
            for (name, _) in store.list(&format!("{DATA_DIR}/"))? {
                store.delete(&name)?;
            }
        }
        Ok(())
    }

    /// Writes the manifest, once every data file is durable: the dump is complete from
    /// then on. Returns the manifest's sha256 and, for a repository, the new snapshot.
    pub(crate) fn finish(self, manifest: &Manifest) -> Result<(String, Option<SnapshotIndex>)> {
        let bytes = manifest.to_bytes()?;
        let digest = crate::format::manifest::digest(&bytes);
        match self {
            Output::Directory {
                store,
                spool,
                mut guard,
            } => {
                store.flush()?;
                store.put_bytes(MANIFEST, &bytes)?;
                store.flush()?;
                guard.finished = true;
                drop(spool);
                // The spool's parent, empty now, is no part of a dump.
                let _ = std::fs::remove_dir(store.root().join(".tmp"));
                Ok((digest, None))
            }
            Output::Snapshot(s) => {
                let s = Arc::try_unwrap(s)
                    .map_err(|_| Error::Internal("a worker still holds the new snapshot".into()))?;
                let index = s.commit(manifest, &bytes)?;
                Ok((digest, Some(index)))
            }
        }
    }
}

/// The output must not exist, or be an empty directory: a dump never mixes with other files.
fn check_output_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                let started = dir.join(DATA_DIR).is_dir() || dir.join(".tmp").is_dir();
                if started && !dir.join(MANIFEST).exists() {
                    return Err(Error::Invalid(format!(
                        "output directory {} holds an interrupted dump (no {MANIFEST}, so it is not a dump); delete it (rm -r) or choose a new directory",
                        dir.display()
                    )));
                }
                return Err(Error::Invalid(format!(
                    "output directory {} exists and is not empty; choose a new directory",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory && dir.exists() => {
            Err(Error::Invalid(format!(
                "output {} exists and is not a directory",
                dir.display()
            )))
        }
        // A parent is a file: creating the directory will say so, naming the path.
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Removes what a dump wrote unless it finished: a failed or interrupted dump leaves no
/// half-written directory behind to fill the disk or block the next run. Dropped with the
/// dump's future, so Ctrl-C and SIGTERM clean up too (kill -9 cannot: the next run then
/// says the directory holds an interrupted dump).
pub(crate) struct OutputGuard {
    dir: PathBuf,
    /// mysnap created the output directory itself (else it existed, empty).
    created: bool,
    finished: bool,
}

impl Drop for OutputGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if self.created {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            let _ = std::fs::remove_dir_all(self.dir.join(DATA_DIR));
            let _ = std::fs::remove_dir_all(self.dir.join(".tmp"));
        }
    }
}

fn create_output_dir(dir: &Path) -> Result<OutputGuard> {
    let created = !dir.exists();
    let guard = OutputGuard {
        dir: dir.to_path_buf(),
        created,
        finished: false,
    };
    let made = if created {
        layout::create_private_dir(dir)
    } else {
        Ok(())
    };
    made.and_then(|_| layout::create_private_dir(&dir.join(DATA_DIR)))
        .map_err(|e| {
            Error::Invalid(format!(
                "cannot create output directory {}: {e}",
                dir.display()
            ))
        })?;
    // Creating a directory can succeed where writing a file cannot (read-only mounts).
    let probe = dir.join(".mysnap-write-test");
    std::fs::write(&probe, b"").map_err(|e| {
        Error::Invalid(format!(
            "cannot write to output directory {}: {e}",
            dir.display()
        ))
    })?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))?;
    Ok(guard)
}

/// Empties a directory of the files a failed attempt wrote.
fn clear_dir(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}
