//! Progress reporting: the engine reports through the [`Progress`] trait and never
//! prints. The front ends (a bar on a terminal, lines for logs, JSON for machines) are
//! the command line's. Every ETA comes from bytes: a restore's from its schedule played
//! forward at this run's byte rates (its [`Forecast`]), a dump's from remaining bytes
//! over this run's byte rate.

use std::collections::VecDeque;
use std::sync::Arc;

/// What the engine tells about its progress.
pub trait Progress: Send + Sync {
    /// A phase begins: `total_bytes` of work (raw data, plus index work on restore),
    /// `done_bytes` of it already done by an earlier run (resume), and tables to go.
    fn begin(&self, phase: &str, total_bytes: u64, done_bytes: u64, total_tables: u64);
    /// Bytes and rows done since the last call.
    fn advance(&self, bytes: u64, rows: u64);
    /// Bytes reported by an attempt that was rolled back and will be tried again.
    fn rewind(&self, _bytes: u64) {}
    /// A table is complete.
    fn table_done(&self);
    /// A line for the operator (warnings, notes).
    fn note(&self, line: &str);
    /// The phase is over.
    fn end(&self);
    /// From now until the next phase, ETAs come from `forecast` while it has one.
    fn set_forecast(&self, _forecast: Arc<dyn Forecast>) {}
}

/// A better prediction of the time left than remaining bytes over the byte rate: a
/// restore plays its own schedule forward (see `restore::forecast`).
pub trait Forecast: Send + Sync {
    /// Seconds to go, or `None` while it cannot tell yet.
    fn remaining_secs(&self) -> Option<f64>;
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: &str, _: u64, _: u64, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
    fn table_done(&self) {}
    fn note(&self, _: &str) {}
    fn end(&self) {}
}

/// Bytes per second over the last third of the run (at least the last second): a load
/// speeds up and slows down (caches warm, index builds come at the end), and the recent
/// rate predicts the rest better than the average since the start.
#[derive(Default)]
pub struct RecentRate {
    /// (seconds, bytes done) at each reading.
    history: VecDeque<(f64, u64)>,
}

impl RecentRate {
    /// Records a reading and gives the rate over the window, once the readings span half
    /// of it.
    pub fn observe(&mut self, secs: f64, done: u64) -> Option<f64> {
        let history = &mut self.history;
        history.push_back((secs, done));
        let window = (secs / 3.0).max(1.0);
        while history.len() > 2 && history[1].0 <= secs - window {
            history.pop_front();
        }
        let &(then, done_then) = history.front()?;
        (secs - then >= window * 0.5 && secs > then)
            .then(|| (done - done_then.min(done)) as f64 / (secs - then))
    }
}
