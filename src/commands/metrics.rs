//! `--metrics-file PATH`: Prometheus text exposition for node_exporter's textfile
//! collector, written to a temporary file beside PATH and renamed over it, so that a
//! scrape never sees half a file. The file holds no secret (names, counts, times) and
//! is made readable by others (0644), since the exporter runs as another user.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

/// One value, with its help line.
struct Sample {
    name: &'static str,
    help: &'static str,
    labels: Vec<(&'static str, String)>,
    value: f64,
}

/// What a run reports, written when it ends (and, for the archiver, as it goes).
pub struct Metrics {
    path: Option<PathBuf>,
    command: &'static str,
    started: Instant,
    samples: Mutex<Vec<Sample>>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Metrics {
    /// Metrics of `command` for `path` (none: nothing is written).
    pub fn new(path: Option<PathBuf>, command: &'static str) -> Self {
        Metrics {
            path,
            command,
            started: Instant::now(),
            samples: Mutex::new(Vec::new()),
        }
    }

    /// Sets a value (replacing one of the same name and labels).
    pub fn set(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        let labels: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let mut s = self.samples.lock().expect("metrics");
        s.retain(|x| !(x.name == name && x.labels == labels));
        s.push(Sample {
            name,
            help,
            labels,
            value,
        });
    }

    /// Writes the file: the run's outcome and duration, then every value set. A failed
    /// run keeps the last success time the file had.
    pub fn write(&self, success: bool) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let label = format!("command=\"{}\"", self.command);
        let last_success = if success {
            Some(now())
        } else {
            previous_success(path, &label)
        };
        let mut out = String::new();
        let mut metric = |name: &str, help: &str, lines: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        metric(
            "mysnap_last_run_success",
            "Whether the command's last run succeeded (1) or failed (0).",
            vec![(label.clone(), if success { 1.0 } else { 0.0 })],
        );
        metric(
            "mysnap_last_run_timestamp_seconds",
            "When the command's last run ended, seconds since the epoch.",
            vec![(label.clone(), now().floor())],
        );
        if let Some(t) = last_success {
            metric(
                "mysnap_last_success_timestamp_seconds",
                "When the command last succeeded, seconds since the epoch.",
                vec![(label.clone(), t.floor())],
            );
        }
        metric(
            "mysnap_last_run_duration_seconds",
            "How long the command's last run took.",
            vec![(
                label.clone(),
                (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            )],
        );
        let samples = self.samples.lock().expect("metrics");
        let mut names: Vec<&'static str> = samples.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let of: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
            let lines = of
                .iter()
                .map(|s| {
                    let mut l = vec![label.clone()];
                    l.extend(
                        s.labels
                            .iter()
                            .map(|(k, v)| format!("{k}=\"{}\"", escape(v))),
                    );
                    (l.join(","), s.value)
                })
                .collect();
            metric(name, of[0].help, lines);
        }
        write_atomically(path, out.as_bytes())
    }
}

/// A label value as the exposition format escapes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The last success time a metrics file holds for this command, if any.
fn previous_success(path: &Path, label: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let prefix = format!("mysnap_last_success_timestamp_seconds{{{label}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".mysnap-metrics-")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot write the metrics file there", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("{}: cannot set its mode", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("{}: cannot write the metrics file", path.display()))?;
    Ok(())
}
