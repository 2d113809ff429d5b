//! Lock objects, so that deleting data never races a dump that needs it. A dump (and a
//! verify) holds a shared lock; removing objects (`forget --prune`, `delete`) an exclusive
//! one. A lock is an object `locks/<kind>-<host>-<pid>-<nonce>.json`, written, then
//! checked against the others: a taker that finds a conflicting live lock removes its own
//! and gives up, so two conflicting takers can both give up but never both go on. This
//! needs no rename, no flock and no conditional write, so it holds on an object store.
//!
//! A lock is refreshed every minute while held; one not refreshed for ten minutes, or
//! whose process on this host has gone, is stale and ignored (a dump killed with -9
//! leaves one behind).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Store;

/// How often a held lock is rewritten.
const REFRESH: Duration = Duration::from_secs(60);
/// How long a shared taker waits for an exclusive holder (a prune) to finish: a prune
/// is short and never waits itself (it gives up at once, and runs another time).
const SHARED_WAIT: Duration = Duration::from_secs(60);
/// How long a lock may go unrefreshed before it is stale.
const STALE: Duration = Duration::from_secs(600);

/// What a lock lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Add snapshots or read them: many at once.
    Shared,
    /// Remove objects: alone.
    Exclusive,
}

/// A lock object's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    /// Shared or exclusive.
    pub kind: Kind,
    /// What holds it (`dump`, `prune`...).
    pub purpose: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// When it was taken, seconds since the epoch.
    pub created: u64,
    /// When it was last refreshed, seconds since the epoch.
    pub refreshed: u64,
}

impl LockInfo {
    fn is_stale(&self, now: u64) -> bool {
        if now.saturating_sub(self.refreshed) > STALE.as_secs() {
            return true;
        }
        // A holder on this host that is gone will never release it.
        self.host == host_name() && !process_alive(self.pid)
    }

    fn describe(&self) -> String {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(self.created);
        format!(
            "{} on {} (pid {}) since {}",
            self.purpose,
            self.host,
            self.pid,
            humantime::format_rfc3339_seconds(since)
        )
    }
}

/// A held lock: refreshed by a thread of its own, removed when dropped.
pub struct Lock {
    store: Arc<dyn Store>,
    name: String,
    stop: Option<std::sync::mpsc::Sender<()>>,
    /// Set when a refresh found the lock object gone (removed as stale by another
    /// process): what it protected may have been removed meanwhile.
    lost: Arc<AtomicBool>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This host's name, as locks record it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn process_alive(pid: u32) -> bool {
    // Signal 0 checks that the process exists; EPERM means it does, under another user.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl Lock {
    /// Takes a lock of `kind` for `purpose`, or fails naming what holds a conflicting one.
    pub fn take(store: Arc<dyn Store>, kind: Kind, purpose: &str) -> Result<Lock> {
        let patience = match kind {
            Kind::Shared => SHARED_WAIT,
            Kind::Exclusive => Duration::ZERO,
        };
        Self::take_within(store, kind, purpose, patience)
    }

    /// Takes a lock, waiting up to `patience` for conflicting holders to go.
    fn take_within(
        store: Arc<dyn Store>,
        kind: Kind,
        purpose: &str,
        patience: Duration,
    ) -> Result<Lock> {
        let info = LockInfo {
            kind,
            purpose: purpose.into(),
            host: host_name(),
            pid: std::process::id(),
            created: now_secs(),
            refreshed: now_secs(),
        };
        let nonce = format!(
            "{:x}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let name = format!(
            "locks/{}-{}-{}-{nonce}.json",
            match kind {
                Kind::Shared => "shared",
                Kind::Exclusive => "exclusive",
            },
            sanitize(&info.host),
            info.pid
        );
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            write(&*store, &name, &info)?;
            store.flush()?;
            let Some(other) = conflicting(&*store, &name, kind)? else {
                break;
            };
            let _ = store.delete(&name);
            if started.elapsed() + pause <= patience {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
            return Err(Error::Conflict(format!(
                "the repository is in use by {}: {}; try again when it is done (a lock left by a killed process goes stale within {} minutes)",
                other.describe(),
                match kind {
                    Kind::Shared => "snapshots cannot be added while objects are being removed",
                    Kind::Exclusive => "objects cannot be removed while it may need them",
                },
                STALE.as_secs() / 60
            )));
        }
        // Dropping the sender wakes the refresher at once: releasing never waits.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let lost = Arc::new(AtomicBool::new(false));
        let refresher = {
            let (store, name, lost, mut info) = (store.clone(), name.clone(), lost.clone(), info);
            std::thread::spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(REFRESH)
                {
                    if matches!(store.stat(&name), Ok(None)) {
                        // Not written again: whoever removed it went on without it.
                        lost.store(true, Ordering::Relaxed);
                        break;
                    }
                    info.refreshed = now_secs();
                    let _ = write(&*store, &name, &info);
                }
            })
        };
        Ok(Lock {
            store,
            name,
            stop: Some(stop),
            lost,
            refresher: Some(refresher),
        })
    }

    /// Fails when the lock was lost: its object removed by another process that took it
    /// for stale (this one stalled for longer than the stale time).
    pub fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::Relaxed) || self.store.stat(&self.name)?.is_none() {
            return Err(Error::Conflict(format!(
                "this process lost its lock on the repository ({} was removed as stale by another process, after more than {} minutes without a refresh); nothing was committed",
                self.name,
                STALE.as_secs() / 60
            )));
        }
        Ok(())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.store.delete(&self.name);
        let _ = self.store.flush();
    }
}

fn write(store: &dyn Store, name: &str, info: &LockInfo) -> Result<()> {
    let bytes = serde_json::to_vec(info)
        .map_err(|e| Error::Internal(format!("cannot encode a lock: {e}")))?;
    store.put_bytes(name, &bytes)
}

fn sanitize(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A live lock other than `own` that conflicts with taking one of `kind`.
fn conflicting(store: &dyn Store, own: &str, kind: Kind) -> Result<Option<LockInfo>> {
    let now = now_secs();
    for (name, _) in store.list("locks/")? {
        if name == own {
            continue;
        }
        let Ok(bytes) = store.read_all(&name) else {
            continue; // released meanwhile
        };
        let Ok(info) = serde_json::from_slice::<LockInfo>(&bytes) else {
            continue;
        };
        if info.is_stale(now) {
            continue;
        }
        if kind == Kind::Exclusive || info.kind == Kind::Exclusive {
            return Ok(Some(info));
        }
    }
    Ok(None)
}

/// Removes stale lock objects (their holders are gone); returns how many.
pub fn remove_stale(store: &dyn Store) -> Result<usize> {
    let now = now_secs();
    let mut removed = 0;
    for (name, _) in store.list("locks/")? {
        let bytes = match store.read_all(&name) {
            Ok(b) => b,
            // Released meanwhile; any other failure to read is no proof it is stale.
            Err(_) if store.stat(&name)?.is_none() => continue,
            Err(e) => return Err(e),
        };
        let stale = serde_json::from_slice::<LockInfo>(&bytes)
            .ok()
            .is_none_or(|i| i.is_stale(now));
        if stale {
            store.delete(&name)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path()).unwrap());
        let a = Lock::take(store.clone(), Kind::Shared, "dump").unwrap();
        let b = Lock::take(store.clone(), Kind::Shared, "dump").unwrap();
        let e = Lock::take(store.clone(), Kind::Exclusive, "prune")
            .err()
            .unwrap();
        assert!(e.to_string().contains("in use by dump"), "{e}");
        assert_eq!(
            store.list("locks/").unwrap().len(),
            2,
            "the refused lock is removed"
        );
        drop((a, b));
        let x = Lock::take(store.clone(), Kind::Exclusive, "prune").unwrap();
        assert!(Lock::take_within(store.clone(), Kind::Shared, "dump", Duration::ZERO).is_err());
        // Given time, a shared taker gets the lock once the exclusive holder is gone.
        let waiting = {
            let store = store.clone();
            std::thread::spawn(move || Lock::take(store, Kind::Shared, "dump").map(drop))
        };
        std::thread::sleep(Duration::from_millis(300));
        drop(x);
        waiting
            .join()
            .unwrap()
            .expect("the shared taker waited for the prune");
        assert!(store.list("locks/").unwrap().is_empty());
        // A lock left by a process that is gone is stale.
        let gone = LockInfo {
            kind: Kind::Exclusive,
            purpose: "prune".into(),
            host: host_name(),
            pid: 999_999_999,
            created: now_secs(),
            refreshed: now_secs(),
        };
        write(&*store, "locks/exclusive-x-1-1.json", &gone).unwrap();
        drop(Lock::take(store.clone(), Kind::Shared, "dump").unwrap());
        assert_eq!(remove_stale(&*store).unwrap(), 1);
    }
}
