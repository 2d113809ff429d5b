//! Where bytes live. A store holds named objects, each written whole or not at all and
//! never changed afterwards; it can give an object back as a stream or a range, say
//! whether one exists and how big it is, list the objects under a prefix, and delete one.
//! Nothing outside this module knows which kind of store is in use: a directory on a
//! local disk (`local`), later an S3-compatible bucket. The trait asks nothing an object
//! store cannot do: no rename, no directory, no listing order, no partial overwrite, no
//! lock; creating an object only if it does not exist is the one conditional write (S3's
//! `If-None-Match: *`).
//!
//! Object names are relative, `/`-separated, of the characters `[A-Za-z0-9._%-]` in each
//! part, none starting with a dot: a name read from a manifest cannot lead out of the
//! store, and a store may keep its own files under dotted names.

mod local;

use std::io::Read;
use std::path::Path;

pub use local::LocalStore;

use crate::error::{Error, Result};

/// A place that holds named objects.
pub trait Store: Send + Sync {
    /// Where it is, for messages: a path or a URL.
    fn location(&self) -> String;

    /// Makes the finished local file `file` the object `name`, whole or not at all; the
    /// file is consumed. An object of that name that already exists is replaced (objects
    /// named by their content are the same bytes).
    fn put_file(&self, name: &str, file: &Path) -> Result<()>;

    /// Writes `bytes` as the object `name`, whole or not at all, replacing any.
    fn put_bytes(&self, name: &str, bytes: &[u8]) -> Result<()>;

    /// Writes `bytes` as the object `name` only if no object has that name; false when
    /// one has (nothing is written then). Whole or not at all.
    fn create_bytes(&self, name: &str, bytes: &[u8]) -> Result<bool>;

    /// The object as a stream.
    fn get(&self, name: &str) -> Result<Box<dyn Read + Send>>;

    /// `len` bytes of the object from `offset`.
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Box<dyn Read + Send>>;

    /// The object's size, or `None` when there is no such object.
    fn stat(&self, name: &str) -> Result<Option<u64>>;

    /// Every object whose name starts with `prefix`, with its size, in no given order.
    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>>;

    /// Deletes the object; one that is not there is no error.
    fn delete(&self, name: &str) -> Result<()>;

    /// Makes what `put_file`, `put_bytes` and `delete` did durable (a local store syncs
    /// the directories it changed; an object store has nothing to do).
    fn flush(&self) -> Result<()>;

    /// The whole object, for small ones (manifests, indexes, locks).
    fn read_all(&self, name: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.get(name)?
            .read_to_end(&mut out)
            .map_err(|e| Error::Io {
                object: format!("{} ({})", name, self.location()),
                cause: e,
            })?;
        Ok(out)
    }
}

/// Checks an object name: relative, `/`-separated parts of `[A-Za-z0-9._%-]`, none empty
/// or starting with a dot.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 1024
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'%'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Damaged(format!(
            "'{}' is not an object name a store holds",
            name.escape_debug()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_cannot_leave_the_store() {
        for good in [
            "config",
            "data/ab/abcdef",
            "snapshots/1a2b3c4d.json",
            "data/d.t-0001.00000.0000.tsv.zst",
        ] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "data/../x",
            "./x",
            "a//b",
            "a/",
            "x\0y",
            "data/\u{e9}",
            "a\\b",
            ".tmp/x",
            "data/.hidden",
        ] {
            assert!(check_name(bad).is_err(), "accepted {bad:?}");
        }
    }
}
