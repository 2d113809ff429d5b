//! Progress reporting. The engine reports through the [`Progress`] trait; front ends are
//! indicatif bars on a terminal, a summary line every few seconds otherwise, or nothing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the engine tells about its progress.
pub trait Progress: Send + Sync {
    /// A phase begins with this many raw bytes and tables to go.
    fn begin(&self, phase: &str, total_bytes: u64, total_tables: u64);
    /// Raw bytes and rows done since the last call.
    fn advance(&self, bytes: u64, rows: u64);
    /// A table is complete.
    fn table_done(&self);
    /// A line for the operator (warnings, notes).
    fn note(&self, line: &str);
    /// The phase is over.
    fn end(&self);
}

/// Counters shared by the front ends.
#[derive(Default)]
struct Counters {
    total_bytes: AtomicU64,
    total_tables: AtomicU64,
    bytes: AtomicU64,
    rows: AtomicU64,
    tables: AtomicU64,
}

impl Counters {
    fn reset(&self, total_bytes: u64, total_tables: u64) {
        self.total_bytes.store(total_bytes, Ordering::Relaxed);
        self.total_tables.store(total_tables, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        self.rows.store(0, Ordering::Relaxed);
        self.tables.store(0, Ordering::Relaxed);
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Bars when stderr is a terminal, else periodic lines.
    Auto,
    /// Only errors.
    Quiet,
}

/// Builds the front end for this process's stderr.
pub fn for_stderr(display: Display) -> Box<dyn Progress> {
    match display {
        Display::Quiet => Box::new(Silent),
        Display::Auto if std::io::stderr().is_terminal() => Box::new(Bars::new()),
        Display::Auto => Box::new(Lines::new(Duration::from_secs(10))),
    }
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: &str, _: u64, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
    fn table_done(&self) {}
    fn note(&self, _: &str) {}
    fn end(&self) {}
}

/// An indicatif bar: bytes of the total, rows, tables, rate and ETA from bytes.
pub struct Bars {
    bar: ProgressBar,
    counters: Counters,
}

impl Bars {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("progress template")
            .progress_chars("=> "),
        );
        Bars {
            bar,
            counters: Counters::default(),
        }
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
    fn begin(&self, phase: &str, total_bytes: u64, total_tables: u64) {
        self.counters.reset(total_bytes, total_tables);
        self.bar.reset();
        self.bar.set_length(total_bytes);
        self.bar.set_prefix(phase.to_string());
        self.bar.enable_steady_tick(Duration::from_millis(200));
        self.refresh_message();
    }
    fn advance(&self, bytes: u64, rows: u64) {
        let done = self.counters.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.counters.rows.fetch_add(rows, Ordering::Relaxed);
        // The dump's total is the server's estimate: grow it rather than pass 100%.
        if done > self.bar.length().unwrap_or(0) {
            self.bar.set_length(done);
        }
        self.bar.set_position(done);
        self.refresh_message();
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
}

/// A line on stderr every `every`, and at the end of each phase.
pub struct Lines {
    counters: Counters,
    phase: Mutex<(String, Instant, Instant)>,
    every: Duration,
}

impl Lines {
    fn new(every: Duration) -> Self {
        let now = Instant::now();
        Lines {
            counters: Counters::default(),
            phase: Mutex::new((String::new(), now, now)),
            every,
        }
    }

    fn line(&self, phase: &str, started: Instant) -> String {
        let c = &self.counters;
        let bytes = c.bytes.load(Ordering::Relaxed);
        let total = c.total_bytes.load(Ordering::Relaxed).max(bytes);
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = bytes as f64 / secs;
        let eta = if rate > 0.0 && total > bytes {
            format!("{:.0}s", (total - bytes) as f64 / rate)
        } else {
            "-".into()
        };
        format!(
            "{phase}: {:.1}/{:.1} MiB ({:.0}%), {} rows, tables {}/{}, {:.1} MiB/s, ETA {eta}",
            bytes as f64 / 1048576.0,
            total as f64 / 1048576.0,
            if total > 0 {
                bytes as f64 * 100.0 / total as f64
            } else {
                100.0
            },
            c.rows.load(Ordering::Relaxed),
            c.tables.load(Ordering::Relaxed),
            c.total_tables.load(Ordering::Relaxed),
            rate / 1048576.0
        )
    }
}

impl Progress for Lines {
    fn begin(&self, phase: &str, total_bytes: u64, total_tables: u64) {
        self.counters.reset(total_bytes, total_tables);
        let now = Instant::now();
        *self.phase.lock().expect("phase") = (phase.to_string(), now, now);
    }
    fn advance(&self, bytes: u64, rows: u64) {
        self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.counters.rows.fetch_add(rows, Ordering::Relaxed);
        let mut p = self.phase.lock().expect("phase");
        if p.2.elapsed() >= self.every {
            p.2 = Instant::now();
            eprintln!("{}", self.line(&p.0, p.1));
        }
    }
    fn table_done(&self) {
        self.counters.tables.fetch_add(1, Ordering::Relaxed);
    }
    fn note(&self, line: &str) {
        eprintln!("{line}");
    }
    fn end(&self) {
        let p = self.phase.lock().expect("phase");
        eprintln!("{}", self.line(&p.0, p.1));
    }
}
