//! Where a restore reads a dump from: a dump directory, or a snapshot of a repository.
//! Either way through a store: a directory is a store whose objects are named by the
//! files' paths (`manifest.json`, `data/<name>`), a repository one whose data objects are
//! named by their content (`data/<ab>/<sha256>`). Nothing else in the restore knows
//! which, nor where bytes live.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::layout::MANIFEST;
use crate::format::manifest::DataFile;
use crate::format::Manifest;
use crate::repo::lock::{Kind, Lock};
use crate::repo::{self, Repository};
use crate::store::{LocalStore, Store};

/// A dump to read.
#[derive(Clone)]
pub struct Source {
    store: Arc<dyn Store>,
    /// The manifest's object.
    manifest: String,
    /// Data objects named by content (a repository) rather than by path (a directory).
    by_content: bool,
    /// The dump directory, whose `data/` must hold only the manifest's files.
    dir: Option<PathBuf>,
    /// For messages: the directory, or `snapshot <id> of <repo>`.
    label: String,
    /// A repository snapshot's id, whose index vouches for the manifest.
    snapshot: Option<(Arc<Repository>, String)>,
    /// A repository's shared lock, held while the source is in use, so that no prune
    /// removes what is being read.
    _lock: Option<Arc<Lock>>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

impl Source {
    /// A dump directory.
    pub fn directory(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Damaged(format!(
                "{}: no such dump directory",
                dir.display()
            )));
        }
        Ok(Source {
            store: Arc::new(LocalStore::open(dir)?),
            manifest: MANIFEST.into(),
            by_content: false,
            dir: Some(dir.to_path_buf()),
            label: dir.display().to_string(),
            snapshot: None,
            _lock: None,
        })
    }

    /// Snapshot `id` of a repository, held with a shared lock while in use (a repository
    /// that cannot be written to, a read-only mount, is read without one).
    pub fn snapshot(repo: Arc<Repository>, id: &str) -> Result<Self> {
        let lock = read_lock(&repo, "restore")?;
        Ok(Source {
            store: repo.store().clone(),
            manifest: repo::manifest_object(id),
            by_content: true,
            dir: None,
            label: format!("snapshot {id} of {}", repo.location()),
            snapshot: Some((repo, id.to_string())),
            _lock: lock,
        })
    }

    /// The data objects of a repository, for checking objects shared by snapshots once.
    pub(crate) fn objects(repo: &Arc<Repository>, lock: Option<Arc<Lock>>) -> Self {
        Source {
            store: repo.store().clone(),
            manifest: String::new(),
            by_content: true,
            dir: None,
            label: repo.location(),
            snapshot: None,
            _lock: lock,
        }
    }

    /// What the restore reads, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The manifest, checked, with the sha256 of its bytes.
    pub fn manifest(&self) -> Result<(Manifest, String)> {
        if let Some((repo, id)) = &self.snapshot {
            let manifest = repo.manifest(id)?;
            return Ok((manifest, repo.index(id)?.manifest_sha256));
        }
        let bytes = match self.store.stat(&self.manifest)? {
            Some(_) => self.store.read_all(&self.manifest)?,
            None => {
                return Err(Error::Damaged(format!(
                    "{}: no {MANIFEST}; this is not a finished mysnap dump (an interrupted dump has none)",
                    self.label
                )))
            }
        };
        let manifest = Manifest::parse(&bytes)
            .map_err(|e| Error::Damaged(format!("{}: {e}", self.manifest_name())))?;
        Ok((manifest, crate::format::manifest::digest(&bytes)))
    }

    /// The manifest's name in messages.
    pub(crate) fn manifest_name(&self) -> String {
        match &self.dir {
            Some(dir) => dir.join(MANIFEST).display().to_string(),
            None => format!("{}: {}", self.label, self.manifest),
        }
    }

    /// A data file to load: named for messages, opened through the store (again on a retry).
    pub(crate) fn input(&self, f: &DataFile) -> super::load::Input {
        let (source, file) = (self.clone(), f.clone());
        super::load::Input {
            name: PathBuf::from(self.name(f)),
            open: Arc::new(move || {
                source
                    .open(&file)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            }),
        }
    }

    /// Checks what the place holds besides the manifest's files: a dump directory's
    /// `data/` must hold those and nothing else.
    pub(crate) fn check_layout(&self, manifest: &Manifest) -> Result<()> {
        match &self.dir {
            Some(dir) => super::check_data_directory(dir, manifest),
            None => Ok(()),
        }
    }

    /// The object a data file is stored as.
    fn object(&self, f: &DataFile) -> String {
        if self.by_content {
            repo::data_object(f)
        } else {
            f.path.clone()
        }
    }

    /// A data file's bytes, as stored.
    pub(crate) fn open(&self, f: &DataFile) -> Result<Box<dyn Read + Send>> {
        self.store.get(&self.object(f)).map_err(|e| {
            Error::Damaged(format!(
                "{}: {}; the dump is incomplete",
                self.name(f),
                cause(&e)
            ))
        })
    }

    /// A data file's stored size, `None` when it is missing.
    pub(crate) fn stat(&self, f: &DataFile) -> Result<Option<u64>> {
        self.store.stat(&self.object(f))
    }

    /// How a data file is named in messages: the file's path in a directory, or the
    /// snapshot and object of a repository.
    pub(crate) fn name(&self, f: &DataFile) -> String {
        match &self.dir {
            Some(dir) => dir.join(&f.path).display().to_string(),
            None => format!("{}: {} ({})", self.label, self.object(f), f.path),
        }
    }
}

/// A shared lock for reading a repository: a conflict (a prune running) is the error; a
/// repository that cannot be written to is read without one.
pub(crate) fn read_lock(repo: &Repository, purpose: &str) -> Result<Option<Arc<Lock>>> {
    match Lock::take(repo.store().clone(), Kind::Shared, purpose) {
        Ok(lock) => Ok(Some(Arc::new(lock))),
        Err(Error::Io { object, cause }) => {
            tracing::warn!(
                "reading {} without a lock: {object}: {cause}",
                repo.location()
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn cause(e: &Error) -> String {
    match e {
        Error::Io { cause, .. } => cause.to_string(),
        other => other.to_string(),
    }
}
