//! A repository of snapshots over a store. It knows snapshots, not rows: a snapshot is a
//! dump's manifest (`manifests/<id>.json`, the same format as a dump directory's) and its
//! data files, stored once each under their content's sha256 (`data/<ab>/<sha256>`), and
//! committed by one small index object written last (`snapshots/<id>.json`): a snapshot
//! whose index exists is complete; one being written or abandoned has none and is never
//! listed. Indexes hold what `list` shows and which objects a snapshot needs, so that
//! listing many snapshots reads small objects only.
//!
//! Layout (FORMAT.md §8): `config`, `snapshots/<id>.json`, `manifests/<id>.json`,
//! `data/<ab>/<sha256>`, `verified/<id>/<time>.json`, `locks/<name>.json`.

pub mod lock;
pub mod retention;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::manifest::{BinlogCoordinates, DataFile, Manifest};
use crate::store::{LocalStore, Store};
pub use retention::Policy;

/// Identifies a repository's config; anything else is not a repository.
pub const FORMAT_NAME: &str = "mysnap-repository";
/// The repository layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A repository's `config` object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] when created.
    pub version: u32,
    /// When it was created, RFC 3339 UTC.
    pub created: String,
    /// The retention `forget` applies when given no policy.
    pub retention: Policy,
}

/// What `list` shows of a snapshot, and what it needs: its index object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotIndex {
    /// Short hex id.
    pub id: String,
    /// When the snapshot was taken, RFC 3339 UTC.
    pub created: String,
    /// When it was committed, RFC 3339 UTC to the nanosecond: orders snapshots taken
    /// within the same second.
    pub committed: String,
    /// Seconds the dump took.
    pub duration_seconds: f64,
    /// Databases dumped.
    pub databases: Vec<String>,
    /// Operator's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `user@host:port` of the source.
    pub source: String,
    /// Binary log coordinates of the snapshot.
    pub binlog: BinlogCoordinates,
    /// Tables, rows and raw bytes.
    pub tables: u64,
    /// Rows.
    pub rows: u64,
    /// Uncompressed bytes of its data.
    pub raw_bytes: u64,
    /// Bytes its objects take (shared ones counted in each snapshot that uses them).
    pub stored_bytes: u64,
    /// The manifest's sha256 and size.
    pub manifest_sha256: String,
    /// See `manifest_sha256`.
    pub manifest_bytes: u64,
    /// Every data object it needs, with its size.
    pub objects: Vec<ObjectRef>,
}

impl SnapshotIndex {
    /// Oldest first: by when taken, then when committed.
    pub fn order(&self) -> (&str, &str, &str) {
        (&self.created, &self.committed, &self.id)
    }
}

/// An object a snapshot needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Object name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The last verification of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verified {
    /// When, RFC 3339 UTC.
    pub time: String,
    /// Whether every object was as recorded.
    pub ok: bool,
    /// The first problem found.
    pub problem: Option<String>,
    /// Whether it was restored into a scratch database and every table read back.
    #[serde(default)]
    pub restored: bool,
}

/// A snapshot as `list` shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its index.
    pub index: SnapshotIndex,
    /// Whether it can be restored: complete, every object present with its size, and its
    /// last verification (if any) found nothing wrong.
    pub restorable: bool,
    /// Why not, when not.
    pub problem: Option<String>,
    /// Its last verification.
    pub verified: Option<Verified>,
}

/// A repository over a store.
pub struct Repository {
    store: Arc<dyn Store>,
    local: Option<Arc<LocalStore>>,
    config: Config,
}

/// The object holding a snapshot's index.
pub fn index_object(id: &str) -> String {
    format!("snapshots/{id}.json")
}

/// The object holding a snapshot's manifest.
pub fn manifest_object(id: &str) -> String {
    format!("manifests/{id}.json")
}

/// The object marking a snapshot protected from retention.
pub fn protected_object(id: &str) -> String {
    format!("protected/{id}")
}

/// A tag: what an operator types, and what fits in a list.
fn check_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 64
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "--tag '{}': a tag is 1 to 64 letters, digits and . _ - : @",
            tag.escape_debug()
        )))
    }
}

/// The object holding a data file, named by its content.
pub fn data_object(file: &DataFile) -> String {
    format!("data/{}/{}", &file.sha256[..2], file.sha256)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Repository {
    /// Creates an empty repository at `location` (a directory, made if missing), with the
    /// retention `forget` applies by default. A place that holds anything is refused.
    pub fn init(location: &Path, retention: Policy) -> Result<Self> {
        match std::fs::read_dir(location) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    let what = if location.join("config").is_file() {
                        "is a repository already"
                    } else {
                        "is not empty"
                    };
                    return Err(Error::Invalid(format!(
                        "{} {what}: a repository is created in a new or empty directory",
                        location.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::format::layout::create_private_dir(location)
                    .map_err(|e| Error::io(location, e))?;
            }
            Err(e) => return Err(Error::io(location, e)),
        }
        let local = Arc::new(LocalStore::open(location)?);
        let config = Config {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            created: now_rfc3339(),
            retention,
        };
        let bytes = serde_json::to_vec_pretty(&config)
            .map_err(|e| Error::Internal(format!("cannot encode the repository config: {e}")))?;
        if !local.create_bytes("config", &bytes)? {
            return Err(Error::Invalid(format!(
                "{} is a repository already",
                location.display()
            )));
        }
        local.flush()?;
        Ok(Repository {
            store: local.clone(),
            local: Some(local),
            config,
        })
    }

    /// Opens the repository at `location`; a place that is not one, or one of a newer
    /// layout, is refused with one line saying so.
    pub fn open(location: &Path) -> Result<Self> {
        let not_one = || {
            Error::Invalid(format!(
                "{0} is not a mysnap repository (no config); create one with: mysnap init --repo {0}",
                location.display()
            ))
        };
        if !location.is_dir() {
            return Err(not_one());
        }
        let local = Arc::new(LocalStore::open(location)?);
        if local.stat("config")?.is_none() {
            return Err(not_one());
        }
        let bytes = local.read_all("config")?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_one())?;
        if value.get("format").and_then(|v| v.as_str()) != Some(FORMAT_NAME) {
            return Err(not_one());
        }
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != u64::from(FORMAT_VERSION) {
            return Err(Error::Invalid(format!(
                "{} is a repository of layout version {version}; this mysnap reads version {FORMAT_VERSION}",
                location.display()
            )));
        }
        let config: Config = serde_json::from_value(value)
            .map_err(|e| Error::Damaged(format!("{}/config: {e}", location.display())))?;
        Ok(Repository {
            store: local.clone(),
            local: Some(local),
            config,
        })
    }

    /// The store it is over.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Its config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where it is.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// A private directory to build a dump in before it is committed; on the repository's
    /// filesystem when it is local, so that committing moves files rather than copies them.
    pub fn staging(&self) -> Result<tempfile::TempDir> {
        match &self.local {
            Some(local) => local.staging(),
            None => tempfile::Builder::new()
                .prefix("mysnap-staging-")
                .tempdir()
                .map_err(|e| Error::io(std::env::temp_dir(), e)),
        }
    }

    /// A new snapshot id, not used yet: 8 hex digits.
    pub fn new_id(&self) -> Result<String> {
        use sha2::{Digest, Sha256};
        let used: HashSet<String> = self.ids()?.into_iter().collect();
        for attempt in 0u32.. {
            let mut h = Sha256::new();
            h.update(format!("{:?}", SystemTime::now()));
            h.update(std::process::id().to_le_bytes());
            h.update(attempt.to_le_bytes());
            let id = hex::encode(&h.finalize()[..4]);
            if !used.contains(&id) {
                return Ok(id);
            }
        }
        unreachable!("an unused id among 2^32")
    }

    /// The ids of the committed snapshots.
    pub fn ids(&self) -> Result<Vec<String>> {
        Ok(self
            .store
            .list("snapshots/")?
            .into_iter()
            .filter_map(|(name, _)| {
                name.strip_prefix("snapshots/")
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_string)
            })
            .collect())
    }

    /// The id an operator named: a unique prefix of one, or `latest`.
    pub fn resolve(&self, wanted: &str) -> Result<String> {
        if wanted == "latest" {
            let mut all = self.indexes()?;
            all.sort_by(|a, b| a.order().cmp(&b.order()));
            return all.pop().map(|i| i.id).ok_or_else(|| {
                Error::Invalid(format!("{} holds no snapshot yet", self.location()))
            });
        }
        if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "'{}' is not a snapshot id (hex digits, or latest)",
                wanted.escape_debug()
            )));
        }
        let wanted = wanted.to_ascii_lowercase();
        let mut found: Vec<String> = self
            .ids()?
            .into_iter()
            .filter(|id| id.starts_with(&wanted))
            .collect();
        found.sort();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(Error::Invalid(format!(
                "no snapshot {wanted} in {} (mysnap list --repo shows them)",
                self.location()
            ))),
            n => Err(Error::Invalid(format!(
                "snapshot id {wanted} is ambiguous: {n} snapshots start with it ({}); give more digits",
                found.join(", ")
            ))),
        }
    }

    /// A snapshot's index.
    pub fn index(&self, id: &str) -> Result<SnapshotIndex> {
        let bytes = self.store.read_all(&index_object(id))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Damaged(format!("snapshot {id}: its index is damaged ({e})")))
    }

    /// Every committed snapshot's index, oldest first.
    pub fn indexes(&self) -> Result<Vec<SnapshotIndex>> {
        let mut out = Vec::new();
        for id in self.ids()? {
            out.push(self.index(&id)?);
        }
        out.sort_by(|a, b| a.order().cmp(&b.order()));
        Ok(out)
    }

    /// A snapshot's manifest, checked as any manifest is, and its sha256 checked against
    /// the index's.
    pub fn manifest(&self, id: &str) -> Result<Manifest> {
        let index = self.index(id)?;
        let bytes = self.store.read_all(&manifest_object(id)).map_err(|e| {
            Error::Damaged(format!("snapshot {id}: its manifest cannot be read ({e})"))
        })?;
        let digest = crate::format::manifest::digest(&bytes);
        if digest != index.manifest_sha256 {
            return Err(Error::Damaged(format!(
                "snapshot {id}: its manifest's sha256 is {digest}, its index says {}",
                index.manifest_sha256
            )));
        }
        Manifest::parse(&bytes).map_err(|e| Error::Damaged(format!("snapshot {id}: {e}")))
    }

    /// Every snapshot, oldest first, with whether it can be restored: one listing of the
    /// data objects answers for all of them.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let present: HashMap<String, u64> = self.store.list("data/")?.into_iter().collect();
        let manifests: HashMap<String, u64> = self.store.list("manifests/")?.into_iter().collect();
        let verified = self.verifications()?;
        let mut out = Vec::new();
        for index in self.indexes()? {
            let mut problem = match manifests.get(&manifest_object(&index.id)) {
                Some(&size) if size == index.manifest_bytes => None,
                Some(&size) => Some(format!(
                    "its manifest has {size} bytes, {} recorded",
                    index.manifest_bytes
                )),
                None => Some("its manifest is missing".to_string()),
            };
            if problem.is_none() {
                problem = index
                    .objects
                    .iter()
                    .find_map(|o| match present.get(&o.name) {
                        Some(&size) if size == o.size => None,
                        Some(&size) => {
                            Some(format!("{} has {size} bytes, {} recorded", o.name, o.size))
                        }
                        None => Some(format!("{} is missing", o.name)),
                    });
            }
            let last = verified.get(&index.id).cloned();
            if problem.is_none() {
                if let Some(v) = last.as_ref().filter(|v| !v.ok) {
                    problem = Some(format!(
                        "its last verify ({}) failed: {}",
                        v.time,
                        v.problem.clone().unwrap_or_default()
                    ));
                }
            }
            out.push(Listed {
                restorable: problem.is_none(),
                problem,
                verified: last,
                index,
            });
        }
        Ok(out)
    }

    /// The last verification of each snapshot.
    fn verifications(&self) -> Result<HashMap<String, Verified>> {
        let mut names: Vec<String> = self
            .store
            .list("verified/")?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        // verified/<id>/<time>.json: in name order, the last of an id is its latest.
        names.sort();
        let mut out = HashMap::new();
        for name in names {
            let Some(id) = name.split('/').nth(1) else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<Verified>(&self.store.read_all(&name)?) {
                out.insert(id.to_string(), v);
            }
        }
        Ok(out)
    }

    /// Records a verification of a snapshot.
    pub fn record_verification(
        &self,
        id: &str,
        ok: bool,
        problem: Option<String>,
        restored: bool,
    ) -> Result<()> {
        let v = Verified {
            time: now_rfc3339(),
            ok,
            problem,
            restored,
        };
        let stamp = humantime::format_rfc3339_nanos(SystemTime::now())
            .to_string()
            .replace(':', "-");
        let bytes = serde_json::to_vec_pretty(&v)
            .map_err(|e| Error::Internal(format!("cannot encode a verification: {e}")))?;
        self.store
            .put_bytes(&format!("verified/{id}/{stamp}.json"), &bytes)?;
        self.store.flush()
    }

    /// Starts a new snapshot: takes a shared lock (so that no prune removes an object it
    /// is about to rely on), picks its id and makes its spool directory. Its data files
    /// are published one by one as they are finished; [`NewSnapshot::commit`] writes its
    /// manifest and, last, its index. Dropped uncommitted, it is never listed: what it
    /// stored goes with the next prune.
    pub fn begin(self: &Arc<Self>, tags: Vec<String>, keep_forever: bool) -> Result<NewSnapshot> {
        for tag in &tags {
            check_tag(tag)?;
        }
        let lock = lock::Lock::take(self.store.clone(), lock::Kind::Shared, "dump")?;
        let id = self.new_id()?;
        let spool = self.staging()?;
        Ok(NewSnapshot {
            repo: self.clone(),
            id,
            tags,
            keep_forever,
            spool,
            objects: std::sync::Mutex::new((Vec::new(), HashSet::new())),
            lock,
        })
    }

    /// Removes a snapshot from the list, then what only it used: first its index (from
    /// then on it is not listed, so never taken for restorable), then its manifest,
    /// verifications and protection. Its data objects go with the next prune, which also
    /// finishes a removal that was interrupted.
    pub fn remove_snapshot(&self, id: &str) -> Result<()> {
        self.store.delete(&index_object(id))?;
        self.store.flush()?;
        self.store.delete(&manifest_object(id))?;
        self.store.delete(&protected_object(id))?;
        for (name, _) in self.store.list(&format!("verified/{id}/"))? {
            self.store.delete(&name)?;
        }
        self.store.flush()
    }

    /// Protects a snapshot from every retention policy (or lifts that, `on` false).
    pub fn protect(&self, id: &str, on: bool) -> Result<()> {
        if on {
            self.store.put_bytes(&protected_object(id), b"{}\n")?;
        } else {
            self.store.delete(&protected_object(id))?;
        }
        self.store.flush()
    }

    /// The ids of the protected snapshots.
    pub fn protected(&self) -> Result<HashSet<String>> {
        Ok(self
            .store
            .list("protected/")?
            .into_iter()
            .filter_map(|(n, _)| n.strip_prefix("protected/").map(str::to_string))
            .collect())
    }

    /// Applies a retention policy: which snapshots it keeps and why, and with `apply`
    /// removes the others from the list (their data goes with the next prune).
    pub fn forget(
        &self,
        policy: &Policy,
        now: SystemTime,
        apply: bool,
    ) -> Result<Vec<retention::Decision>> {
        let _lock = match apply {
            true => Some(lock::Lock::take(
                self.store.clone(),
                lock::Kind::Shared,
                "forget",
            )?),
            false => None,
        };
        let decisions = retention::decide(&self.indexes()?, &self.protected()?, policy, now);
        if apply {
            for d in decisions.iter().filter(|d| !d.keep) {
                self.remove_snapshot(&d.id)?;
            }
        }
        Ok(decisions)
    }

    /// Removes one snapshot from the list (its data goes with the next prune).
    pub fn delete(&self, id: &str) -> Result<()> {
        let _lock = lock::Lock::take(self.store.clone(), lock::Kind::Shared, "delete")?;
        self.remove_snapshot(id)
    }

    /// Deletes what no snapshot needs, under an exclusive lock; `Busy` (nothing deleted)
    /// while a dump, restore or verify holds the repository.
    pub fn prune(&self) -> Result<PruneOutcome> {
        match lock::Lock::take(self.store.clone(), lock::Kind::Exclusive, "prune") {
            Ok(held) => Ok(PruneOutcome::Done(self.prune_locked(&held)?)),
            Err(Error::Conflict(why)) => Ok(PruneOutcome::Busy(why)),
            Err(e) => Err(e),
        }
    }

    /// Deletes every object no committed snapshot needs: data objects no index names,
    /// manifests and verifications without an index, stale locks, and the staging
    /// directories dumps that were killed left. Runs under an exclusive lock, so that
    /// no dump adds a snapshot (and references) meanwhile.
    fn prune_locked(&self, _exclusive: &lock::Lock) -> Result<PruneReport> {
        let indexes = self.indexes()?;
        let ids: HashSet<&str> = indexes.iter().map(|i| i.id.as_str()).collect();
        let needed: HashSet<&str> = indexes
            .iter()
            .flat_map(|i| i.objects.iter().map(|o| o.name.as_str()))
            .collect();
        let mut report = PruneReport::default();
        for (name, size) in self.store.list("data/")? {
            if !needed.contains(name.as_str()) {
                self.store.delete(&name)?;
                report.objects += 1;
                report.bytes += size;
            }
        }
        for prefix in ["manifests/", "verified/", "protected/"] {
            for (name, _) in self.store.list(prefix)? {
                let id = name[prefix.len()..]
                    .split(['/', '.'])
                    .next()
                    .unwrap_or_default();
                if !ids.contains(id) {
                    self.store.delete(&name)?;
                    report.leftovers += 1;
                }
            }
        }
        let archive = crate::binlog::Archive::in_store(self.store.clone(), self.location());
        (report.binlog_segments, report.binlog_bytes) = archive.prune(&indexes)?;
        report.locks = lock::remove_stale(&*self.store)?;
        if let Some(local) = &self.local {
            report.leftovers += remove_old_staging(local.root())?;
        }
        self.store.flush()?;
        Ok(report)
    }
}

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneOutcome {
    /// It ran.
    Done(PruneReport),
    /// It did not: the repository is in use (what holds it).
    Busy(String),
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Data objects no snapshot needed.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Manifests, verifications and staging directories left by removed or abandoned
    /// snapshots.
    pub leftovers: usize,
    /// Stale locks.
    pub locks: usize,
    /// Archived binlog segments older than every kept snapshot, and their bytes.
    pub binlog_segments: u64,
    /// See `binlog_segments`.
    pub binlog_bytes: u64,
}

/// Staging directories dumps left (killed, or on a full disk): under the exclusive lock no
/// live dump holds one (a dump takes its shared lock before it makes its staging).
fn remove_old_staging(root: &Path) -> Result<usize> {
    let tmp = root.join(".tmp");
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        gone.map_err(|e| Error::io(&path, e))?;
        removed += 1;
    }
    Ok(removed)
}

/// A snapshot being written: see [`Repository::begin`].
pub struct NewSnapshot {
    repo: Arc<Repository>,
    id: String,
    tags: Vec<String>,
    keep_forever: bool,
    spool: tempfile::TempDir,
    /// The objects it needs, in publishing order, and their names.
    objects: std::sync::Mutex<(Vec<ObjectRef>, HashSet<String>)>,
    lock: lock::Lock,
}

impl NewSnapshot {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the dump writes files before they are published.
    pub fn spool(&self) -> &Path {
        self.spool.path()
    }

    /// Where it goes, for messages.
    pub fn location(&self) -> String {
        self.repo.location()
    }

    /// Stores a finished data file (the local file `partial`, consumed) as the object of
    /// its content; one the repository holds already with that size is not stored again.
    pub fn publish(&self, partial: &Path, file: &DataFile) -> Result<()> {
        let name = data_object(file);
        let fresh = {
            let mut objects = self.objects.lock().expect("objects");
            if objects.1.insert(name.clone()) {
                objects.0.push(ObjectRef {
                    name: name.clone(),
                    size: file.stored_bytes,
                });
                true
            } else {
                false
            }
        };
        if fresh && self.repo.store.stat(&name)? != Some(file.stored_bytes) {
            return self.repo.store.put_file(&name, partial);
        }
        std::fs::remove_file(partial).map_err(|e| Error::io(partial, e))
    }

    /// Commits the snapshot: its manifest (`manifest_bytes`, the bytes of `manifest`),
    /// then its index, once every object it needs is durable. Returns the index.
    pub fn commit(self, manifest: &Manifest, manifest_bytes: &[u8]) -> Result<SnapshotIndex> {
        let store = &self.repo.store;
        self.lock.check()?;
        let (objects, _) = std::mem::take(&mut *self.objects.lock().expect("objects"));
        // An object found already stored must still be there: only a prune removes
        // objects, and none runs while the lock is held; checked rather than trusted.
        let present: HashMap<String, u64> = store.list("data/")?.into_iter().collect();
        if let Some(o) = objects
            .iter()
            .find(|o| present.get(&o.name) != Some(&o.size))
        {
            return Err(Error::Conflict(format!(
                "{} of the new snapshot is missing from {}: was the repository pruned from elsewhere without a lock? The snapshot was not committed",
                o.name,
                self.repo.location()
            )));
        }
        // Created, not replaced: two dumps that drew the same id cannot mix.
        if !store.create_bytes(&manifest_object(&self.id), manifest_bytes)? {
            return Err(Error::Conflict(format!(
                "snapshot id {} was drawn by another dump at the same time; run the dump again",
                self.id
            )));
        }
        if self.keep_forever {
            store.put_bytes(&protected_object(&self.id), b"{}\n")?;
        }
        let index = SnapshotIndex {
            id: self.id.clone(),
            created: manifest.snapshot_time.clone(),
            committed: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            duration_seconds: manifest.duration_seconds,
            databases: manifest.databases.iter().map(|d| d.name.clone()).collect(),
            tags: self.tags.clone(),
            source: manifest.options.source.clone(),
            binlog: manifest.binlog.clone(),
            tables: manifest.totals.tables,
            rows: manifest.totals.rows,
            raw_bytes: manifest.totals.raw_bytes,
            stored_bytes: manifest.totals.stored_bytes,
            manifest_sha256: crate::format::manifest::digest(manifest_bytes),
            manifest_bytes: manifest_bytes.len() as u64,
            objects,
        };
        // Every object the index names must be durable before the index is.
        store.flush()?;
        let bytes = serde_json::to_vec_pretty(&index)
            .map_err(|e| Error::Internal(format!("cannot encode a snapshot index: {e}")))?;
        if !store.create_bytes(&index_object(&self.id), &bytes)? {
            return Err(Error::Internal(format!(
                "snapshot id {} was taken meanwhile",
                self.id
            )));
        }
        store.flush()?;
        Ok(index)
    }
}
