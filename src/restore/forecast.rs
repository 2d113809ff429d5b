//! The restore's ETA, drawn from the loaders' schedule (`schedule.rs`).
//!
//! Remaining bytes over the byte rate mispredicts the end of a restore: index builds run
//! on one session each, beside loads or alone, and a big table's build at the end runs
//! alone while the other sessions sit idle. So the forecast plays the rest of the schedule
//! forward the way the loaders will take it: each session finishes what it is doing,
//! takes the next file off the queue (largest first), and builds a table's indexes when it
//! loaded that table's last file. Loads go at this run's recent data rate shared among
//! the sessions; builds at the rate measured on this run's finished builds, or at first
//! at a multiple of the per-session load rate.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::progress::Forecast;

use super::keys::TableKey;
use super::schedule::{Activity, Schedule, State};

/// Index work units a session builds per second, as a multiple of the bytes per second
/// it loads, until this run has timed a build of its own. Measured with 2 sessions on
/// 2 cores (MariaDB 10.11): 1.5 on 8 sysbench tables of 500k rows, 1.7 to 2.4 on one of
/// 3M rows loaded by both sessions at once.
const BUILD_TO_LOAD_RATE: f64 = 1.7;

/// A file's cost beyond its bytes (a statement, a journal commit), in seconds.
const FILE_OVERHEAD_S: f64 = 0.003;

impl Forecast for Schedule {
    fn remaining_secs(&self) -> Option<f64> {
        let now = Instant::now();
        let secs = now.duration_since(self.started).as_secs_f64();
        let done = self.data_bytes.load(Ordering::Relaxed);
        let s = self.state.lock().expect("schedule");
        let loading_us = (s.loading_secs(now) * 1e6) as u64;
        let load_rate = {
            let mut rate = self.rate.lock().expect("rate");
            let bytes_per_s = rate.bytes.observe(secs, done);
            let loading_per_s = rate.loading_us.observe(secs, loading_us);
            if let (Some(b), Some(l)) = (bytes_per_s, loading_per_s) {
                if b > 0.0 && l > 0.0 {
                    rate.last = Some(b / (l / 1e6));
                }
            }
            rate.last?
        };
        let build_rate = if s.built.1 > 0.0 {
            s.built.0 as f64 / s.built.1
        } else {
            load_rate * BUILD_TO_LOAD_RATE
        };
        let secs_left = play_forward(&s, now, load_rate, build_rate);
        tracing::debug!(
            load_rate,
            build_rate,
            queued = s.queue.len(),
            sessions = ?s.sessions,
            secs_left,
            "forecast"
        );
        Some(secs_left)
    }
}

/// Seconds until the last session is done, if sessions load at `load_rate` bytes/s each
/// and build at `build_rate` units/s each.
fn play_forward(s: &State, now: Instant, load_rate: f64, build_rate: f64) -> f64 {
    let build_secs = |units: u64| {
        if units == 0 {
            0.0
        } else {
            FILE_OVERHEAD_S + units as f64 / build_rate
        }
    };
    let load_secs = |bytes: u64| FILE_OVERHEAD_S + bytes as f64 / load_rate;
    let mut left = s.left.clone();
    // Per session: when it is next free, and the table whose file it is loading then.
    let mut sessions: Vec<(f64, Option<TableKey>)> = s
        .sessions
        .iter()
        .map(|a| match *a {
            Activity::Idle => (0.0, None),
            Activity::Loading {
                table,
                raw_bytes,
                since,
            } => {
                let spent = now.saturating_duration_since(since).as_secs_f64();
                ((load_secs(raw_bytes) - spent).max(0.0), Some(table))
            }
            Activity::Building { units, since } => {
                let spent = now.saturating_duration_since(since).as_secs_f64();
                // A build past its estimate is taken to be nearly done.
                (
                    (build_secs(units) - spent).max(0.1 * build_secs(units)),
                    None,
                )
            }
        })
        .collect();
    let mut queue = s.queue.iter();
    let mut end: f64 = 0.0;
    // The session free first takes the next step, until none has one to take.
    while let Some(i) = (0..sessions.len())
        .filter(|&i| sessions[i].1.is_some() || queue.len() > 0)
        .min_by(|&a, &b| sessions[a].0.total_cmp(&sessions[b].0))
    {
        let (mut at, loading) = sessions[i];
        if let Some(table) = loading {
            let n = left.get_mut(&table).expect("table in the schedule");
            *n = n.saturating_sub(1);
            if *n == 0 {
                at += build_secs(s.units.get(&table).copied().unwrap_or(0));
            }
        }
        sessions[i] = match queue.next() {
            Some(&(key, raw_bytes)) => (at + load_secs(raw_bytes), Some(key.table)),
            None => {
                end = end.max(at);
                (f64::INFINITY, None)
            }
        };
    }
    sessions
        .iter()
        .map(|&(at, _)| at)
        .filter(|at| at.is_finite())
        .fold(end, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::keys::FileKey;
    use std::time::Duration;

    fn file(db: usize, table: usize, file: usize) -> FileKey {
        FileKey {
            table: TableKey::new(db, table),
            file,
        }
    }

    fn schedule(jobs: &[(FileKey, u64)], units: &[(TableKey, u64)], sessions: usize) -> State {
        Schedule::new(jobs.to_vec(), units.iter().copied().collect(), sessions)
            .state
            .into_inner()
            .unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.05
    }

    #[test]
    fn a_big_tables_build_at_the_end_runs_alone() {
        // One table of four 10 MB files and a 40 MB build, two sessions at 10 MB/s and
        // 20 MB/s of build: 2 s of loads side by side, then 2 s of build alone.
        let jobs: Vec<(FileKey, u64)> = (0..4).map(|f| (file(0, 0, f), 10_000_000)).collect();
        let s = schedule(&jobs, &[(TableKey::new(0, 0), 40_000_000)], 2);
        let secs = play_forward(&s, Instant::now(), 10e6, 20e6);
        assert!(close(secs, 4.0), "{secs}");
    }

    #[test]
    fn builds_of_many_tables_overlap_the_loads() {
        // Four tables of one 10 MB file each and a 10 MB build each, on two sessions:
        // each session loads and builds two tables, 1.5 s each.
        let jobs: Vec<(FileKey, u64)> = (0..4).map(|t| (file(0, t, 0), 10_000_000)).collect();
        let units: Vec<(TableKey, u64)> =
            (0..4).map(|t| (TableKey::new(0, t), 10_000_000)).collect();
        let s = schedule(&jobs, &units, 2);
        let secs = play_forward(&s, Instant::now(), 10e6, 20e6);
        assert!(close(secs, 3.0), "{secs}");
    }

    #[test]
    fn work_in_flight_counts_only_what_is_left_of_it() {
        let (t0, t1) = (TableKey::new(0, 0), TableKey::new(0, 1));
        let mut s = schedule(&[], &[(t0, 40_000_000), (t1, 0)], 2);
        s.left.insert(t0, 0);
        s.left.insert(t1, 1);
        let now = Instant::now();
        // A build of 2 s estimated, 1.5 s spent; a 10 MB load of 1 s, 0.5 s spent.
        s.sessions[0] = Activity::Building {
            units: 40_000_000,
            since: now - Duration::from_millis(1500),
        };
        s.sessions[1] = Activity::Loading {
            table: t1,
            raw_bytes: 10_000_000,
            since: now - Duration::from_millis(500),
        };
        let secs = play_forward(&s, now, 10e6, 20e6);
        assert!(close(secs, 0.5), "{secs}");
        // Past its estimate, a build is still given a tenth of it.
        s.sessions[1] = Activity::Idle;
        let later = now + Duration::from_secs(10);
        assert!(close(play_forward(&s, later, 10e6, 20e6), 0.2));
    }
}
