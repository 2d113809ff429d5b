//! Restore rates measured per target, kept in the user's state directory
//! (`$XDG_STATE_HOME/mysnap/restore-rates.json`), so that `--dry-run` predicts a
//! duration from what this target actually did.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::connect::ServerInfo;

/// The rate used before any restore into a target was measured: about what a 2-core
/// MariaDB 10.11 loads sysbench tables at (bench/compare.sh), in bytes per second.
pub const DEFAULT_RATE: f64 = 40.0 * 1048576.0;

/// How a target is named in the rates file.
pub fn key(server: &ServerInfo) -> String {
    format!("{}:{}", server.hostname, server.port)
}

/// The rates file in the user's state directory: `$XDG_STATE_HOME` or `~/.local/state`
/// on Linux; `~/.local/state` too where the platform has no state directory (macOS).
fn path() -> Option<PathBuf> {
    let base = dirs::state_dir().or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))?;
    Some(base.join("mysnap").join("restore-rates.json"))
}

fn read() -> BTreeMap<String, f64> {
    path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The last measured rate into this target, bytes per second.
pub fn lookup(server: &ServerInfo) -> Option<f64> {
    read().get(&key(server)).copied()
}

/// Records a finished restore's rate. Best effort: a read-only home must not fail a restore.
pub fn record(server: &ServerInfo, work_bytes: u64, took: Duration) {
    let secs = took.as_secs_f64();
    if work_bytes < 1 << 20 || secs <= 0.0 {
        return;
    }
    let Some(p) = path() else { return };
    let mut rates = read();
    rates.insert(key(server), work_bytes as f64 / secs);
    if let (Some(dir), Ok(json)) = (p.parent(), serde_json::to_vec_pretty(&rates)) {
        let _ = crate::format::layout::create_private_dir(dir).and_then(|_| {
            use std::io::Write;
            crate::format::layout::create_private_file(&p)?.write_all(&json)
        });
    }
}
