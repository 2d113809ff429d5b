//! The loaders' shared work queue: the files still to load, largest first, what each
//! loader session is doing, and the bytes streamed so far, from which the forecast
//! (`forecast.rs`) draws the restore's ETA.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::progress::{Progress, RecentRate};

use super::keys::{FileKey, TableKey};

/// Builds smaller than this are mostly a statement's fixed cost, and do not set the rate.
const TIMED_BUILD_UNITS: u64 = 4 << 20;

/// What one loader session is doing.
#[derive(Debug, Clone, Copy)]
pub(super) enum Activity {
    Idle,
    /// Loading a file of `table`.
    Loading {
        table: TableKey,
        raw_bytes: u64,
        since: Instant,
    },
    /// Building a table's deferred indexes, of `units` index work.
    Building {
        units: u64,
        since: Instant,
    },
}

/// The files still to load and what each session is doing.
pub struct Schedule {
    pub(super) state: Mutex<State>,
    /// Raw bytes loaded in this run, as the loaders stream them.
    pub(super) data_bytes: AtomicU64,
    pub(super) started: Instant,
    /// The forecast's measure of the load rate, kept between its calls.
    pub(super) rate: Mutex<LoadRate>,
}

/// The recent load rate of one session.
#[derive(Default)]
pub(super) struct LoadRate {
    /// Data bytes over the recent window.
    pub(super) bytes: RecentRate,
    /// Session-seconds spent loading over the same window, in microseconds: a session
    /// building indexes loads nothing meanwhile.
    pub(super) loading_us: RecentRate,
    /// The last rate the two gave, for when the window holds no loading (a build alone
    /// at the end).
    pub(super) last: Option<f64>,
}

/// The queue and the sessions, behind the schedule's lock.
pub(super) struct State {
    /// Files still queued, with their raw bytes.
    pub(super) queue: VecDeque<(FileKey, u64)>,
    /// Files not loaded yet (queued or in flight) per table.
    pub(super) left: HashMap<TableKey, usize>,
    /// Index work of each table whose indexes are built after its data.
    pub(super) units: HashMap<TableKey, u64>,
    /// What each session is doing, by session number.
    pub(super) sessions: Vec<Activity>,
    /// Session-seconds spent loading files that are done.
    loading_secs: f64,
    /// Units and seconds of this run's timed builds.
    pub(super) built: (u64, f64),
}

impl State {
    /// Session-seconds spent loading so far, files in flight included.
    pub(super) fn loading_secs(&self, now: Instant) -> f64 {
        self.loading_secs
            + self
                .sessions
                .iter()
                .map(|a| match a {
                    Activity::Loading { since, .. } => {
                        now.saturating_duration_since(*since).as_secs_f64()
                    }
                    _ => 0.0,
                })
                .sum::<f64>()
    }

    /// `session` moves on to `next`.
    fn switch(&mut self, session: usize, next: Activity) {
        if let Activity::Loading { since, .. } = self.sessions[session] {
            self.loading_secs += since.elapsed().as_secs_f64();
        }
        self.sessions[session] = next;
    }
}

impl Schedule {
    /// `jobs` in the order they are to be taken, with their raw bytes; `units` the index
    /// work of each table whose indexes are built after its data.
    pub fn new(jobs: Vec<(FileKey, u64)>, units: HashMap<TableKey, u64>, sessions: usize) -> Self {
        let mut left = HashMap::new();
        for &(key, _) in &jobs {
            *left.entry(key.table).or_insert(0) += 1;
        }
        Schedule {
            state: Mutex::new(State {
                queue: jobs.into(),
                left,
                units,
                sessions: vec![Activity::Idle; sessions],
                loading_secs: 0.0,
                built: (0, 0.0),
            }),
            data_bytes: AtomicU64::new(0),
            started: Instant::now(),
            rate: Mutex::default(),
        }
    }

    /// The next file for `session`, largest first.
    pub fn next(&self, session: usize) -> Option<FileKey> {
        let mut s = self.state.lock().expect("schedule");
        let job = s.queue.pop_front();
        let next = match job {
            Some((key, raw_bytes)) => Activity::Loading {
                table: key.table,
                raw_bytes,
                since: Instant::now(),
            },
            None => Activity::Idle,
        };
        s.switch(session, next);
        job.map(|(key, _)| key)
    }

    /// `session` loaded a file of `table`; true when it was the table's last, and the
    /// session now finishes the table.
    pub fn loaded(&self, session: usize, table: TableKey) -> bool {
        let mut s = self.state.lock().expect("schedule");
        let n = s.left.get_mut(&table).expect("table in the schedule");
        *n -= 1;
        let last = *n == 0;
        let next = if last {
            Activity::Building {
                units: s.units.get(&table).copied().unwrap_or(0),
                since: Instant::now(),
            }
        } else {
            Activity::Idle
        };
        s.switch(session, next);
        last
    }

    /// `session` finished `table`, whose indexes took `built`.
    pub fn finished(&self, session: usize, table: TableKey, built: Duration) {
        let mut s = self.state.lock().expect("schedule");
        let units = s.units.get(&table).copied().unwrap_or(0);
        if units >= TIMED_BUILD_UNITS {
            s.built.0 += units;
            s.built.1 += built.as_secs_f64();
        }
        s.switch(session, Activity::Idle);
    }

    /// Counts raw bytes streamed to the server (negative: rolled back for a retry).
    fn add_data(&self, bytes: i64) {
        if bytes >= 0 {
            self.data_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        } else {
            self.data_bytes
                .fetch_sub(bytes.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// A progress reporter for a loader session: it reports to `inner` and counts the
    /// data for the load rate.
    pub fn tally(self: &Arc<Self>, inner: Arc<dyn Progress>) -> Arc<dyn Progress> {
        Arc::new(Tally {
            schedule: self.clone(),
            inner,
        })
    }
}

/// A loader session's reporter: bytes go to the restore's progress and to the schedule.
struct Tally {
    schedule: Arc<Schedule>,
    inner: Arc<dyn Progress>,
}

impl Progress for Tally {
    fn begin(&self, phase: &str, total_bytes: u64, done_bytes: u64, total_tables: u64) {
        self.inner
            .begin(phase, total_bytes, done_bytes, total_tables);
    }
    fn advance(&self, bytes: u64, rows: u64) {
        self.schedule.add_data(bytes as i64);
        self.inner.advance(bytes, rows);
    }
    fn rewind(&self, bytes: u64) {
        self.schedule.add_data(-(bytes as i64));
        self.inner.rewind(bytes);
    }
    fn table_done(&self) {
        self.inner.table_done();
    }
    fn note(&self, line: &str) {
        self.inner.note(line);
    }
    fn end(&self) {
        self.inner.end();
    }
}
