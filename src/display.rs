//! The progress front ends on stderr: indicatif bars on a terminal, a line every few
//! seconds for logs, a JSON object per line for machines, notes only, or nothing. The
//! engine reports through `mysnap::progress::Progress`; these decide how it looks.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mysnap::progress::{Forecast, Progress, RecentRate, Silent};

/// How progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Bars when stderr is a terminal, else lines.
    Auto,
    /// indicatif bars.
    Bars,
    /// A summary line every 10 s on stderr.
    Lines,
    /// A JSON object per line every 2 s on stderr.
    Json,
    /// No progress, but notes and warnings (`--progress none`).
    NotesOnly,
    /// Nothing but errors (`-q`).
    Quiet,
}

/// A size in units that fit: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

/// `1 table`, `2 tables`: a count and its noun, singular or plural.
/// Seconds since the epoch as RFC 3339 UTC, to the second.
pub fn utc(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

pub fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// Builds the front end for this process's stderr.
/// `every` overrides the interval of lines (10 s) and JSON (2 s).
pub fn for_stderr(display: Display, every: Option<Duration>) -> Box<dyn Progress> {
    match display {
        Display::Quiet => Box::new(Silent),
        Display::NotesOnly => Box::new(NotesOnly),
        Display::Bars => Box::new(Bars::new()),
        Display::Auto if std::io::stderr().is_terminal() => Box::new(Bars::new()),
        Display::Auto | Display::Lines => Box::new(Periodic::new(
            every.unwrap_or(Duration::from_secs(10)),
            false,
        )),
        Display::Json => Box::new(Periodic::new(every.unwrap_or(Duration::from_secs(2)), true)),
    }
}

/// Prints notes and warnings, nothing of the progress.
pub struct NotesOnly;

impl Progress for NotesOnly {
    fn begin(&self, _: &str, _: u64, _: u64, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
    fn table_done(&self) {}
    fn note(&self, line: &str) {
        eprintln!("{line}");
    }
    fn end(&self) {}
}

/// Counters shared by the front ends, and the byte-based estimate.
#[derive(Default)]
pub struct Counters {
    total_bytes: AtomicU64,
    start_bytes: AtomicU64,
    bytes: AtomicU64,
    rows: AtomicU64,
    tables: AtomicU64,
    total_tables: AtomicU64,
    recent: Mutex<RecentRate>,
    forecast: Mutex<Option<Arc<dyn Forecast>>>,
}

/// One reading of the counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Work done, including what an earlier run did.
    pub done_bytes: u64,
    /// All the work; never below `done_bytes`.
    pub total_bytes: u64,
    /// Rows done in this run.
    pub rows: u64,
    /// Tables complete.
    pub tables: u64,
    /// Tables in all.
    pub total_tables: u64,
    /// Bytes per second in this run.
    pub rate: f64,
    /// Seconds to go at that rate, when there is a rate.
    pub eta: Option<f64>,
}

impl Counters {
    fn reset(&self, total: u64, done: u64, tables: u64) {
        self.total_bytes.store(total, Ordering::Relaxed);
        self.start_bytes.store(done, Ordering::Relaxed);
        self.bytes.store(done, Ordering::Relaxed);
        self.rows.store(0, Ordering::Relaxed);
        self.tables.store(0, Ordering::Relaxed);
        self.total_tables.store(tables, Ordering::Relaxed);
        *self.recent.lock().expect("rate") = RecentRate::default();
        *self.forecast.lock().expect("forecast") = None;
    }

    fn read(&self, elapsed: Duration) -> Snapshot {
        let done = self.bytes.load(Ordering::Relaxed);
        let total = self.total_bytes.load(Ordering::Relaxed).max(done);
        let this_run = done - self.start_bytes.load(Ordering::Relaxed).min(done);
        let secs = elapsed.as_secs_f64();
        let average = if secs > 0.0 {
            this_run as f64 / secs
        } else {
            0.0
        };
        let rate = match self.recent.lock().expect("rate").observe(secs, done) {
            Some(r) if r > 0.0 => r,
            _ => average,
        };
        let forecast = self.forecast.lock().expect("forecast").clone();
        let by_bytes = (rate > 0.0).then(|| (total - done) as f64 / rate);
        Snapshot {
            done_bytes: done,
            total_bytes: total,
            rows: self.rows.load(Ordering::Relaxed),
            tables: self.tables.load(Ordering::Relaxed),
            total_tables: self.total_tables.load(Ordering::Relaxed),
            rate,
            eta: if done >= total {
                Some(0.0)
            } else {
                forecast.and_then(|f| f.remaining_secs()).or(by_bytes)
            },
        }
    }
}

/// An indicatif bar: bytes of the total, rows, tables, rate and ETA from bytes.
pub struct Bars {
    bar: ProgressBar,
    counters: Arc<Counters>,
}

impl Bars {
    fn new() -> Self {
        let counters = Arc::new(Counters::default());
        // Hidden until a phase begins, so that no empty bar is drawn before.
        let bar = ProgressBar::hidden();
        // The rate and ETA are ours (a restore's ETA comes from its forecast), not
        // indicatif's, and are worked out at each redraw, so that they move on during an
        // index build.
        let for_eta = counters.clone();
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {rate_and_eta} {msg}",
            )
            .expect("progress template")
            .with_key(
                "rate_and_eta",
                move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let s = for_eta.read(state.elapsed());
                    let _ = write!(w, "{}/s ETA ", indicatif::BinaryBytes(s.rate as u64));
                    let _ = match s.eta {
                        Some(e) => write!(
                            w,
                            "{:#}",
                            indicatif::HumanDuration(Duration::from_secs_f64(e))
                        ),
                        None => write!(w, "-"),
                    };
                },
            )
            .progress_chars("=> "),
        );
        Bars { bar, counters }
    }

    fn refresh_message(&self) {
        let c = &self.counters;
        self.bar.set_message(format!(
            "{} rows, tables {}/{}",
            c.rows.load(Ordering::Relaxed),
            c.tables.load(Ordering::Relaxed),
            c.total_tables.load(Ordering::Relaxed)
        ));
    }
}

impl Progress for Bars {
    fn begin(&self, phase: &str, total_bytes: u64, done_bytes: u64, total_tables: u64) {
        self.counters.reset(total_bytes, done_bytes, total_tables);
        self.bar.reset();
        self.bar.set_length(total_bytes.max(done_bytes));
        self.bar.set_position(done_bytes);
        self.bar.set_prefix(phase.to_string());
        self.refresh_message();
        self.bar.set_draw_target(ProgressDrawTarget::stderr());
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }
    fn advance(&self, bytes: u64, rows: u64) {
        let done = self.counters.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.counters.rows.fetch_add(rows, Ordering::Relaxed);
        // A dump's total is the server's estimate: grow it rather than pass 100%.
        if done > self.bar.length().unwrap_or(0) {
            self.bar.set_length(done);
        }
        self.bar.set_position(done);
        self.refresh_message();
    }
    fn rewind(&self, bytes: u64) {
        let done = self.counters.bytes.fetch_sub(bytes, Ordering::Relaxed) - bytes;
        self.bar.set_position(done);
    }
    fn table_done(&self) {
        self.counters.tables.fetch_add(1, Ordering::Relaxed);
        self.refresh_message();
    }
    fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }
    fn end(&self) {
        self.bar.finish_and_clear();
    }
    fn set_forecast(&self, forecast: Arc<dyn Forecast>) {
        *self.counters.forecast.lock().expect("forecast") = Some(forecast);
    }
}

/// A line (text or JSON) on stderr every `every`, and at the end of each phase. A ticker
/// thread prints even while nothing advances (an index build), so logs show the wait.
pub struct Periodic {
    shared: Arc<PeriodicState>,
}

struct PeriodicState {
    counters: Counters,
    phase: Mutex<(String, Instant)>,
    every: Duration,
    json: bool,
    /// Bumped at each phase start and end; a ticker stops when it changes.
    generation: AtomicU64,
}

impl Periodic {
    fn new(every: Duration, json: bool) -> Self {
        Periodic {
            shared: Arc::new(PeriodicState {
                counters: Counters::default(),
                phase: Mutex::new((String::new(), Instant::now())),
                every,
                json,
                generation: AtomicU64::new(0),
            }),
        }
    }
}

impl PeriodicState {
    fn print(&self) {
        let (phase, started) = self.phase.lock().expect("phase").clone();
        let elapsed = started.elapsed();
        let s = self.counters.read(elapsed);
        if self.json {
            let line = serde_json::json!({
                "phase": phase,
                "elapsed_s": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
                "done_bytes": s.done_bytes,
                "total_bytes": s.total_bytes,
                "rows": s.rows,
                "tables_done": s.tables,
                "tables_total": s.total_tables,
                "bytes_per_s": s.rate.round(),
                "eta_s": s.eta.map(|e| (e * 10.0).round() / 10.0),
            });
            eprintln!("{line}");
            return;
        }
        let pct = if s.total_bytes > 0 {
            s.done_bytes as f64 * 100.0 / s.total_bytes as f64
        } else {
            100.0
        };
        eprintln!(
            "{phase}: {} of {} ({pct:.0}%), {} rows, tables {}/{}, {}/s, ETA {}",
            bytes(s.done_bytes),
            bytes(s.total_bytes),
            s.rows,
            s.tables,
            s.total_tables,
            bytes(s.rate as u64),
            s.eta.map_or("-".to_string(), |e| format!("{e:.0}s"))
        );
    }
}

impl Progress for Periodic {
    fn begin(&self, phase: &str, total_bytes: u64, done_bytes: u64, total_tables: u64) {
        let state = &self.shared;
        state.counters.reset(total_bytes, done_bytes, total_tables);
        *state.phase.lock().expect("phase") = (phase.to_string(), Instant::now());
        let generation = state.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let state = self.shared.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(state.every);
            if state.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            state.print();
        });
    }
    fn advance(&self, bytes: u64, rows: u64) {
        let c = &self.shared.counters;
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        c.rows.fetch_add(rows, Ordering::Relaxed);
    }
    fn rewind(&self, bytes: u64) {
        self.shared
            .counters
            .bytes
            .fetch_sub(bytes, Ordering::Relaxed);
    }
    fn table_done(&self) {
        self.shared.counters.tables.fetch_add(1, Ordering::Relaxed);
    }
    fn note(&self, line: &str) {
        if self.shared.json {
            eprintln!("{}", serde_json::json!({ "note": line }));
        } else {
            eprintln!("{line}");
        }
    }
    fn end(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        // The phase is over: its last line says 100 %, whatever the estimate of its total.
        let c = &self.shared.counters;
        c.total_bytes
            .store(c.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        self.shared.print();
    }
    fn set_forecast(&self, forecast: Arc<dyn Forecast>) {
        *self.shared.counters.forecast.lock().expect("forecast") = Some(forecast);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_follows_a_rate_that_changes() {
        let c = Counters::default();
        c.reset(1000, 0, 1);
        // 10 B/s for 6 s, then 50 B/s: the rate over the last third is the fast one.
        for t in 1..=9u64 {
            let done = if t <= 6 { 10 * t } else { 60 + 50 * (t - 6) };
            c.bytes.store(done, Ordering::Relaxed);
            let s = c.read(Duration::from_secs(t));
            if t == 9 {
                assert_eq!(s.rate, 50.0);
                assert_eq!(s.eta, Some((1000.0 - 210.0) / 50.0));
            }
        }
    }

    struct Fixed(Option<f64>);
    impl Forecast for Fixed {
        fn remaining_secs(&self) -> Option<f64> {
            self.0
        }
    }

    #[test]
    fn a_forecast_replaces_the_byte_estimate_while_it_has_one() {
        let c = Counters::default();
        c.reset(1000, 0, 1);
        c.bytes.store(100, Ordering::Relaxed);
        *c.forecast.lock().unwrap() = Some(Arc::new(Fixed(Some(42.0))));
        assert_eq!(c.read(Duration::from_secs(1)).eta, Some(42.0));
        // Without an answer, remaining bytes over the rate: 900 at 100 B/s.
        *c.forecast.lock().unwrap() = Some(Arc::new(Fixed(None)));
        assert_eq!(c.read(Duration::from_secs(1)).eta, Some(9.0));
        // Done is done, whatever the forecast says; a new phase drops it.
        *c.forecast.lock().unwrap() = Some(Arc::new(Fixed(Some(42.0))));
        c.bytes.store(1000, Ordering::Relaxed);
        assert_eq!(c.read(Duration::from_secs(2)).eta, Some(0.0));
        c.reset(1000, 0, 1);
        assert!(c.forecast.lock().unwrap().is_none());
    }

    #[test]
    fn eta_comes_from_this_run_bytes_and_never_passes_the_total() {
        let c = Counters::default();
        c.reset(1000, 400, 3);
        c.bytes.fetch_add(300, Ordering::Relaxed);
        let s = c.read(Duration::from_secs(3));
        // 300 bytes in 3 s is 100 B/s, not (700 / 3): resumed bytes do not count.
        assert_eq!(s.rate, 100.0);
        assert_eq!(s.eta, Some(3.0));
        c.bytes.fetch_add(900, Ordering::Relaxed);
        let s = c.read(Duration::from_secs(4));
        assert_eq!(s.total_bytes, s.done_bytes);
        assert_eq!(s.eta, Some(0.0));
    }
}
