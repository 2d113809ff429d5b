//! A store in a local directory: an object is a file under the root, named by its object
//! name. Writes are made whole or not at all by writing a temporary file, syncing it and
//! renaming it into place; `create_bytes` links the temporary file to its name, which
//! fails when the name exists. The directories a write changed are synced by `flush`.
//! Files are private (0600, directories 0700), whatever the umask.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{check_name, Store};
use crate::error::{Error, Result};
use crate::format::layout::{create_private_dir, open_data_file};

/// Where a local store keeps its temporary files (never an object: object names do not
/// start with a dot).
const TMP: &str = ".tmp";

/// A directory holding objects.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    /// Directories changed since the last `flush`.
    dirty: Mutex<HashSet<PathBuf>>,
}

impl LocalStore {
    /// The store rooted at `root` (which must exist).
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: no such directory",
                root.display()
            )));
        }
        Ok(LocalStore {
            root: root.to_path_buf(),
            dirty: Mutex::new(HashSet::new()),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A private temporary directory on the store's filesystem, for files to put: putting
    /// them is then a rename.
    pub fn staging(&self) -> Result<tempfile::TempDir> {
        let tmp = self.root.join(TMP);
        create_private_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        tempfile::Builder::new()
            .prefix("staging-")
            .tempdir_in(&tmp)
            .map_err(|e| Error::io(&tmp, e))
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.root.join(name))
    }

    fn io(&self, name: &str, e: std::io::Error) -> Error {
        Error::io(self.root.join(name), e)
    }

    /// Creates the object's directory and notes it for `flush`.
    fn prepare_dir(&self, path: &Path) -> Result<()> {
        let dir = path.parent().expect("an object is under the root");
        if !dir.is_dir() {
            create_private_dir(dir).map_err(|e| Error::io(dir, e))?;
            // The new directory's own entry must be durable too.
            self.mark(dir.parent().unwrap_or(&self.root));
        }
        self.mark(dir);
        Ok(())
    }

    fn mark(&self, dir: &Path) {
        self.dirty
            .lock()
            .expect("dirty directories")
            .insert(dir.to_path_buf());
    }

    /// A synced temporary file holding `bytes`.
    fn temp_with(&self, bytes: &[u8]) -> Result<tempfile::TempPath> {
        let tmp = self.root.join(TMP);
        create_private_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let file = tempfile::Builder::new()
            .prefix("put-")
            .tempfile_in(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        let (mut f, path) = file.into_parts();
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn put_file(&self, name: &str, file: &Path) -> Result<()> {
        let dest = self.path(name)?;
        self.prepare_dir(&dest)?;
        match fs::rename(file, &dest) {
            Ok(()) => Ok(()),
            // Another filesystem: copy, sync, then rename into place.
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                let mut bytes = Vec::new();
                File::open(file)
                    .and_then(|mut f| f.read_to_end(&mut bytes))
                    .map_err(|e| Error::io(file, e))?;
                self.put_bytes(name, &bytes)?;
                fs::remove_file(file).map_err(|e| Error::io(file, e))
            }
            Err(e) => Err(self.io(name, e)),
        }
    }

    fn put_bytes(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path(name)?;
        self.prepare_dir(&dest)?;
        let temp = self.temp_with(bytes)?;
        temp.persist(&dest).map_err(|e| self.io(name, e.error))?;
        Ok(())
    }

    fn create_bytes(&self, name: &str, bytes: &[u8]) -> Result<bool> {
        let dest = self.path(name)?;
        self.prepare_dir(&dest)?;
        let temp = self.temp_with(bytes)?;
        // A link fails when the name exists: the one conditional write a store offers.
        match fs::hard_link(&temp, &dest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.io(name, e)),
        }
    }

    fn get(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        let path = self.path(name)?;
        let file = open_data_file(&path).map_err(|e| self.io(name, e))?;
        Ok(Box::new(file))
    }

    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Box<dyn Read + Send>> {
        let path = self.path(name)?;
        let mut file = open_data_file(&path).map_err(|e| self.io(name, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| self.io(name, e))?;
        Ok(Box::new(file.take(len)))
    }

    fn stat(&self, name: &str) -> Result<Option<u64>> {
        let path = self.path(name)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            // A link or a directory planted under an object's name is no object.
            Ok(_) => Err(Error::Damaged(format!(
                "{}: not a regular file (a link or a directory); a store's objects are plain files",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(name, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        // Walk the deepest directory the prefix names, then filter by the prefix.
        let dir_part = prefix.rsplit_once('/').map_or("", |(d, _)| d);
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path(dir_part)?
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                let file_name = entry.file_name();
                let Some(part) = file_name.to_str() else {
                    continue;
                };
                if part.starts_with('.') {
                    continue;
                }
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    // Removed between the listing and the stat (a lock released by
                    // another process): not there, as an object store would list it.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(entry.path(), e)),
                };
                let path = entry.path();
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() {
                    let rel = path
                        .strip_prefix(&self.root)
                        .expect("under the root")
                        .to_string_lossy()
                        .into_owned();
                    if rel.starts_with(prefix) {
                        out.push((rel, meta.len()));
                    }
                }
            }
        }
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                self.mark(path.parent().expect("under the root"));
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(name, e)),
        }
    }

    fn flush(&self) -> Result<()> {
        let dirs: Vec<PathBuf> = self
            .dirty
            .lock()
            .expect("dirty directories")
            .drain()
            .collect();
        for dir in dirs {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::layout::create_private_file;

    #[test]
    fn objects_are_written_whole_created_once_listed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.put_bytes("snapshots/a.json", b"{}").unwrap();
        assert!(store.create_bytes("locks/x", b"1").unwrap());
        assert!(
            !store.create_bytes("locks/x", b"2").unwrap(),
            "created twice"
        );
        assert_eq!(store.read_all("locks/x").unwrap(), b"1");
        let staging = store.staging().unwrap();
        let f = staging.path().join("f");
        create_private_file(&f)
            .unwrap()
            .write_all(b"0123456789")
            .unwrap();
        store.put_file("data/ab/abcd", &f).unwrap();
        assert!(!f.exists());
        store.flush().unwrap();
        let mut range = String::new();
        store
            .get_range("data/ab/abcd", 3, 4)
            .unwrap()
            .read_to_string(&mut range)
            .unwrap();
        assert_eq!(range, "3456");
        assert_eq!(store.stat("data/ab/abcd").unwrap(), Some(10));
        assert_eq!(store.stat("data/ab/none").unwrap(), None);
        let mut all = store.list("").unwrap();
        all.sort();
        assert_eq!(
            all,
            [
                ("data/ab/abcd".to_string(), 10),
                ("locks/x".to_string(), 1),
                ("snapshots/a.json".to_string(), 2)
            ],
            "temporary files are never listed"
        );
        assert_eq!(store.list("snapshots/").unwrap().len(), 1);
        assert_eq!(store.list("data/a").unwrap().len(), 1);
        store.delete("locks/x").unwrap();
        store.delete("locks/x").unwrap();
        assert_eq!(store.stat("locks/x").unwrap(), None);
        assert!(store.get("../etc/passwd").is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("data/ab/abcd"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_listing_skips_objects_removed_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(LocalStore::open(dir.path()).unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("locks/l-{}.json", i % 512);
                    store.put_bytes(&name, b"{}").unwrap();
                    store.delete(&name).unwrap();
                    i += 1;
                }
            })
        };
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(1) {
            store.list("locks/").expect("a listing racing removals");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
    }
}
