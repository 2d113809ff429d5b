//! Point-in-time restore: which snapshot, which archived events, and their replay onto
//! the target by the target's own replication applier, which mysnap feeds as a primary
//! (see `serve`), up to the exact end of the last transaction the target asks for.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mysql_async::prelude::Queryable;

use crate::connect::{Connector, ServerInfo};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::{Repository, SnapshotIndex};

use super::event::{self, kind, Boundaries, Header, Step};
use super::gtid::GtidState;
use super::serve::{self, Feed};
use super::target::{Dialect, CONNECTION};
use super::{Archive, SegmentHeader};

/// Bytes of binary log per second a `--dry-run` predicts the replay with: what the
/// target's applier did with sysbench write transactions in bench/pitr.sh on a 2-core
/// machine (410 MiB in 22 to 27 s), rounded down.
pub const ASSUMED_RATE: f64 = 15.0 * 1024.0 * 1024.0;

/// Up to where a restore rolls forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// Every transaction committed in or before this second (seconds since the epoch).
    Time(u64),
    /// Every transaction up to the one that makes the position reach this GTID position.
    Gtid(String),
    /// Every transaction that ends at or before this file and position.
    Position(String, u64),
}

impl Until {
    /// Parses `--until`: RFC 3339 with an offset or `Z`, or `YYYY-MM-DD HH:MM:SS` in the
    /// host's time zone. A fraction of a second is dropped (the binlog has whole seconds).
    pub fn time(text: &str) -> Result<Until> {
        let bad = || {
            Error::Invalid(format!(
                "--until {text:?}: expected RFC 3339 (2026-12-02T02:14:00Z, or with an offset like +01:00) or 'YYYY-MM-DD HH:MM:SS' in this host's time zone"
            ))
        };
        let t = text.trim();
        let has_zone = t.ends_with('Z')
            || t.ends_with('z')
            || t.get(t.len().saturating_sub(6)..).is_some_and(|z| {
                (z.starts_with('+') || z.starts_with('-')) && z.as_bytes()[3] == b':'
            });
        let secs = if has_zone {
            let normalized = t.replacen(' ', "T", 1);
            chrono_like_rfc3339(&normalized).ok_or_else(bad)?
        } else {
            local_time(t).ok_or_else(bad)?
        };
        Ok(Until::Time(secs))
    }

    /// Parses `--until-position FILE:POS`.
    pub fn position(text: &str) -> Result<Until> {
        let (file, pos) = text
            .rsplit_once(':')
            .and_then(|(f, p)| Some((f, p.parse::<u64>().ok()?)))
            .filter(|(f, _)| !f.is_empty() && !f.contains('/'))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "--until-position {text:?}: expected FILE:POSITION, e.g. mysql-bin.000042:1234"
                ))
            })?;
        Ok(Until::Position(file.to_string(), pos))
    }

    /// Parses `--until-gtid`.
    pub fn gtid(text: &str) -> Result<Until> {
        let state = GtidState::parse(text)?;
        if state == GtidState::Unknown {
            return Err(Error::Invalid("--until-gtid needs a GTID position".into()));
        }
        Ok(Until::Gtid(state.to_string()))
    }

    /// For people.
    pub fn describe(&self) -> String {
        match self {
            Until::Time(t) => format!("{} (UTC)", rfc3339(*t)),
            Until::Gtid(g) => format!("GTID {g}"),
            Until::Position(f, p) => format!("{f}:{p}"),
        }
    }
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
}

/// Seconds since the epoch of an RFC 3339 time with a zone (fraction dropped).
fn chrono_like_rfc3339(t: &str) -> Option<u64> {
    // Split the zone off, read the rest as UTC, then apply the offset.
    let (base, offset) = if let Some(b) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        (b, 0i64)
    } else {
        let (b, z) = t.split_at(t.len() - 6);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let h: i64 = z[1..3].parse().ok()?;
        let m: i64 = z[4..6].parse().ok()?;
        (b, sign * (h * 3600 + m * 60))
    };
    let base = base.split('.').next()?;
    let utc = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    let secs = utc.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
    u64::try_from(secs - offset).ok()
}

/// `YYYY-MM-DD HH:MM:SS` in the host's time zone.
fn local_time(t: &str) -> Option<u64> {
    let t = t.replacen('T', " ", 1);
    let (date, time) = t.split_once(' ')?;
    let d: Vec<i32> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let time = time.split('.').next()?;
    let c: Vec<i32> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, mo, da], [h, mi, s]) = (<[i32; 3]>::try_from(d).ok()?, <[i32; 3]>::try_from(c).ok()?);
    // SAFETY: mktime reads a fully initialised tm and the process's time zone.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = da;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    let secs = unsafe { libc::mktime(&mut tm) };
    // mktime normalises out-of-range fields: a date that does not exist is refused.
    if secs < 0 || tm.tm_mday != da || tm.tm_mon != mo - 1 || tm.tm_min != mi || tm.tm_sec != s {
        return None;
    }
    u64::try_from(secs).ok()
}

/// What a point-in-time restore will do.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    /// The snapshot loaded first.
    pub snapshot: String,
    /// Where replay starts (the snapshot's coordinates) and stops (just after the last
    /// transaction included).
    pub start: (String, u64),
    /// See `start`.
    pub stop: (String, u64),
    /// The last included transaction's time and GTID, if any.
    pub stop_time: Option<u32>,
    /// See `stop_time`.
    pub stop_gtid: Option<String>,
    /// What is replayed.
    pub transactions: u64,
    /// See `transactions`.
    pub events: u64,
    /// See `transactions`.
    pub bytes: u64,
    /// The segments replay reads, from the snapshot's to the stop's.
    pub segments: Vec<SegmentHeader>,
    /// Whether the archived events carry checksums.
    pub checksums: bool,
}

fn snapshot_time(index: &SnapshotIndex) -> u64 {
    humantime::parse_rfc3339(&index.created)
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Chooses the snapshot and finds the stop point: with `id`, that snapshot; without, the
/// newest restorable one before the target whose coordinates the archive covers without
/// a gap up to it.
pub fn plan(repo: &Arc<Repository>, until: &Until, id: Option<&str>) -> Result<ReplayPlan> {
    let archive = Archive::new(repo.clone());
    let headers = archive.headers()?;
    if headers.is_empty() {
        return Err(Error::Invalid(format!(
            "no binary log is archived in {}: a point-in-time restore needs `mysnap binlog archive` running from the first snapshot on",
            repo.location()
        )));
    }
    let mut candidates: Vec<SnapshotIndex> = match id {
        Some(id) => vec![repo.index(&repo.resolve(id)?)?],
        None => {
            let mut l: Vec<_> = repo
                .list()?
                .into_iter()
                .filter(|l| l.restorable)
                .map(|l| l.index)
                .collect();
            l.sort_by(|a, b| b.order().cmp(&a.order()));
            l
        }
    };
    if let Until::Time(t) = until {
        if id.is_none() {
            candidates.retain(|c| snapshot_time(c) <= *t);
        }
    }
    let mut why_not = Vec::new();
    for c in &candidates {
        match plan_from(&archive, &headers, c, until) {
            Ok(p) => return Ok(p),
            // Not from this snapshot: an older one may do, unless one was named.
            Err(Refusal::Snapshot(why)) if id.is_none() => why_not.push(format!("{}: {why}", c.id)),
            Err(Refusal::Snapshot(why)) | Err(Refusal::Target(why)) => {
                return Err(Error::Invalid(why))
            }
            Err(Refusal::Error(e)) => return Err(e),
        }
    }
    let first = headers.first().expect("not empty");
    Err(Error::Invalid(match why_not.first() {
        None => format!(
            "no restorable snapshot of {} was taken before {} (the archive starts at {}, {}:{})",
            repo.location(),
            until.describe(),
            rfc3339(u64::from(first.first_time)),
            first.file,
            first.start
        ),
        Some(w) => format!(
            "no snapshot can be rolled forward to {}: {w}",
            until.describe()
        ),
    }))
}

/// Why a replay cannot be planned from a snapshot.
enum Refusal {
    /// Not from this snapshot (another may do).
    Snapshot(String),
    /// Not to this target, from any snapshot.
    Target(String),
    /// A failure reading the archive.
    Error(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Error(e)
    }
}

/// The replay of the archive from snapshot `c` up to `until`.
fn plan_from(
    archive: &Archive,
    headers: &[SegmentHeader],
    c: &SnapshotIndex,
    until: &Until,
) -> std::result::Result<ReplayPlan, Refusal> {
    let (Some(file), Some(pos)) = (c.binlog.file.clone(), c.binlog.position) else {
        return Err(Refusal::Snapshot(format!(
            "snapshot {} has no binlog coordinates (the source's binary log was off)",
            c.id
        )));
    };
    let Some(first) = headers
        .iter()
        .position(|h| h.file == file && h.start <= pos && pos <= h.end)
    else {
        return Err(Refusal::Snapshot(format!(
            "the archive does not hold snapshot {}'s coordinates {file}:{pos} (it runs from {}:{})",
            c.id, headers[0].file, headers[0].start
        )));
    };
    let mut gtid =
        GtidState::parse(c.binlog.gtid.as_deref().unwrap_or_default()).unwrap_or_default();
    let target_gtid = match until {
        Until::Gtid(g) => Some(GtidState::parse(g)?),
        _ => None,
    };
    match until {
        Until::Time(t) if snapshot_time(c) > *t => {
            return Err(Refusal::Snapshot(format!(
                "snapshot {} was taken at {}, after {}",
                c.id,
                c.created,
                until.describe()
            )))
        }
        Until::Gtid(_) if gtid.reached(target_gtid.as_ref().expect("a GTID target")) => {
            return Err(Refusal::Snapshot(format!(
                "snapshot {} (GTID {gtid}) is already at or past {}",
                c.id,
                until.describe()
            )))
        }
        Until::Position(f, p) if *f == file && *p < pos => {
            return Err(Refusal::Snapshot(format!(
                "snapshot {} ({file}:{pos}) is already past {}",
                c.id,
                until.describe()
            )))
        }
        _ => {}
    }
    let mut plan = ReplayPlan {
        snapshot: c.id.clone(),
        start: (file.clone(), pos),
        stop: (file.clone(), pos),
        stop_time: None,
        stop_gtid: None,
        transactions: 0,
        events: 0,
        bytes: 0,
        segments: Vec::new(),
        checksums: true,
    };
    let (mut events, mut bytes) = (0u64, 0u64);
    let mut boundaries = Boundaries::default();
    let mut last_gtid: Option<String> = None;
    for (i, h) in headers.iter().enumerate().skip(first) {
        if i > first && !h.continues(&headers[i - 1]) {
            return Err(Refusal::Target(format!(
                "{} lies beyond a gap in the archive (after {}:{}, resumed at {}:{}{})",
                until.describe(),
                headers[i - 1].file,
                headers[i - 1].end,
                h.file,
                h.start,
                h.gap_before
                    .as_deref()
                    .map(|g| format!(": {g}"))
                    .unwrap_or_default()
            )));
        }
        let segment = archive.events(h)?;
        plan.checksums = event::fde_has_checksum(&segment.fde);
        plan.segments.push(h.clone());
        for e in &segment.events {
            let head = Header::read(e)?;
            if i == first && head.start() < pos {
                continue;
            }
            if let Until::Position(f, p) = until {
                if *f == h.file && head.start() == *p && boundaries.between() {
                    return Ok(plan);
                }
                if *f == h.file && head.start() < *p && *p < u64::from(head.log_pos) {
                    return Err(Refusal::Target(format!(
                        "{f}:{p} is not between two events of the archive; give a position between transactions, as SHOW MASTER STATUS or a snapshot records it"
                    )));
                }
            }
            let g = match head.kind {
                kind::MARIADB_GTID => Some(event::mariadb_gtid(e, plan.checksums)?),
                kind::MYSQL_GTID => Some(event::mysql_gtid(e, plan.checksums)?),
                _ => None,
            };
            if let Some(g) = g {
                last_gtid = Some(g.to_string());
                gtid.add(&g);
            }
            let step = boundaries.step(e, plan.checksums)?;
            if step == Step::End {
                if let Until::Time(t) = until {
                    // The first transaction committed after the target second is not in.
                    if u64::from(head.timestamp) > *t {
                        return Ok(plan);
                    }
                }
            }
            events += 1;
            bytes += e.len() as u64;
            if boundaries.between() {
                plan.stop = (h.file.clone(), u64::from(head.log_pos));
                plan.events = events;
                plan.bytes = bytes;
            }
            if step == Step::End {
                plan.transactions += 1;
                plan.stop_time = Some(head.timestamp);
                plan.stop_gtid = last_gtid.clone();
                if target_gtid.as_ref().is_some_and(|t| gtid.reached(t)) {
                    return Ok(plan);
                }
            }
            if let Until::Position(f, p) = until {
                if boundaries.between()
                    && (h.file.as_str(), u64::from(head.log_pos)) == (f.as_str(), *p)
                {
                    return Ok(plan);
                }
            }
        }
    }
    let last = headers.last().expect("not empty");
    match until {
        Until::Time(t) if *t <= archive.covered_until(headers) => Ok(plan),
        Until::Time(_) => Err(Refusal::Target(format!(
            "{} is after the end of the archive (its last event is at {}, {}:{}; is the archiver running?)",
            until.describe(),
            rfc3339(u64::from(last.last_time)),
            last.file,
            last.end
        ))),
        _ => Err(Refusal::Target(format!(
            "{} is not in the archive (it ends at {}:{}, GTID {})",
            until.describe(),
            last.file,
            last.end,
            last.gtid_after
        ))),
    }
}

impl ReplayPlan {
    /// Each segment's part of the replay, in positions of its file: (file, from, to).
    fn spans(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        let mut stopped = false;
        self.segments.iter().enumerate().filter_map(move |(k, h)| {
            if stopped {
                return None;
            }
            let lo = if k == 0 { self.start.1 } else { h.start };
            let hi = if h.file == self.stop.0 && h.start <= self.stop.1 && self.stop.1 <= h.end {
                stopped = true;
                self.stop.1
            } else {
                h.end
            };
            Some((h.file.as_str(), lo, hi.max(lo)))
        })
    }

    /// How much of the replay lies before `file:pos`, in bytes of the source's binary
    /// log, and how much there is in all.
    fn progress_at(&self, file: &str, pos: u64) -> (u64, u64) {
        let mut done = None;
        let mut total = 0;
        for (f, lo, hi) in self.spans() {
            if done.is_none() && f == file && lo <= pos && pos <= hi {
                done = Some(total + (pos - lo));
            }
            total += hi - lo;
        }
        (done.unwrap_or(0), total)
    }
}

/// What the replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Transactions and bytes applied.
    pub transactions: u64,
    /// See `transactions`.
    pub bytes: u64,
    /// Seconds it took.
    pub seconds: f64,
}

/// Reads one row's column by name.
fn column(row: &mysql_async::Row, name: &str) -> Option<String> {
    let i = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str() == name)?;
    row.get_opt::<Option<String>, _>(i)?.ok().flatten()
}

/// The replay connection's status row, or `None` when there is no such connection.
async fn status_row(conn: &mut mysql_async::Conn, d: Dialect) -> Option<mysql_async::Row> {
    conn.query_first(d.status()).await.ok().flatten()
}

/// Where an interrupted replay's applier stands on the target (its connection stopped
/// first, so that the position is a transaction boundary), or `None` when there is none.
async fn interrupted_at(conn: &mut mysql_async::Conn, d: Dialect) -> Result<Option<(String, u64)>> {
    if status_row(conn, d).await.is_none() {
        return Ok(None);
    }
    conn.query_drop(d.stop())
        .await
        .map_err(|e| Error::sql("stopping the interrupted replay", e))?;
    let row = status_row(conn, d).await;
    Ok(row
        .and_then(|row| d.applied(&|n| column(&row, n)))
        .map(|a| (a.file, a.pos)))
}

/// Whether the target holds an interrupted replay (its snapshot is then fully loaded:
/// the replay starts only after the load).
pub async fn interrupted(connector: &Connector) -> Result<bool> {
    let mut conn = connector.connect(&[]).await?;
    let server = ServerInfo::detect(&mut conn).await?;
    let d = Dialect::of(&server)?;
    Ok(status_row(&mut conn, d).await.is_some())
}

/// Which replayed events the target applies, and where: the restore's selection as
/// the target's replication filters, in the names the target has.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Databases restored (their names on the target): `replicate_wild_do_table`.
    pub databases: Vec<String>,
    /// Tables of those the selection left out: `replicate_ignore_table` (checked before
    /// the wildcard rule, so it wins).
    pub ignore_tables: Vec<(String, String)>,
    /// `--rename` pairs: `replicate_rewrite_db`, applied before the rules above.
    pub rewrites: Vec<(String, String)>,
}

impl ReplayFilter {
    /// The filter that replays what `selection` restored of the dump `manifest` (as
    /// the dump has it, before selection).
    pub fn of(manifest: &crate::format::Manifest, selection: &crate::restore::Selection) -> Self {
        let mut f = ReplayFilter {
            rewrites: selection.renames().to_vec(),
            ..ReplayFilter::default()
        };
        for db in &manifest.databases {
            if !selection.may_want_database(&db.name) {
                continue;
            }
            let target = selection.target(&db.name);
            for t in &db.tables {
                if !selection.wants(&db.name, &t.name) {
                    f.ignore_tables.push((target.clone(), t.name.clone()));
                }
            }
            f.databases.push(target);
        }
        f
    }
}

/// A statement-format event that names a renamed database explicitly (`src.t`): the
/// target's rewrite rule changes only default databases and row events, so the
/// statement would reach the old name. The restore refuses rather than lose it.
fn check_renames(archive: &Archive, plan: &ReplayPlan, renames: &[(String, String)]) -> Result<()> {
    if renames.is_empty() {
        return Ok(());
    }
    for (h, (_, lo, hi)) in plan.segments.iter().zip(plan.spans()) {
        for e in archive.events(h)?.events {
            let head = Header::read(&e)?;
            // Only what the replay sends: from the snapshot's coordinates to the stop.
            if e[4] != kind::QUERY || head.start() < lo || u64::from(head.log_pos) > hi {
                continue;
            }
            let (_, text) = event::query(&e, plan.checksums)?;
            let text = String::from_utf8_lossy(&text);
            for (from, _) in renames {
                if text.contains(&format!("{from}.")) || text.contains(&format!("`{from}`.")) {
                    return Err(Error::Invalid(format!(
                        "--rename {from}=...: the archived statement at {}:{} names database {from} explicitly, which the target's replication cannot rename; restore without --rename, or to a time before it",
                        h.file,
                        head.start()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Checks, before anything is loaded, that the replay can apply the selection: names
/// the target's filters can hold, and no statement the rename cannot follow.
pub fn check(repo: &Arc<Repository>, plan: &ReplayPlan, filter: &ReplayFilter) -> Result<()> {
    // Both dialects refuse the same names.
    Dialect::MariaDb.filters(filter)?;
    check_renames(&Archive::new(repo.clone()), plan, &filter.rewrites)
}

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// What the target applies.
    pub filter: ReplayFilter,
    /// Where mysnap listens for the target's replica connection (`HOST:PORT`, port 0
    /// for any free one).
    pub listen: String,
    /// The target's parallel applier threads (1: one).
    pub threads: usize,
    /// Continue a replay that was interrupted.
    pub resume: bool,
}

/// Replays `plan` onto the target through its replication applier.
pub async fn replay(
    connector: &Connector,
    repo: &Arc<Repository>,
    plan: &ReplayPlan,
    options: &ReplayOptions,
    progress: &dyn Progress,
) -> Result<ReplayReport> {
    let (listen, threads, resume) = (options.listen.as_str(), options.threads, options.resume);
    let started = Instant::now();
    let mut conn = connector.connect(&[]).await?;
    let target = ServerInfo::detect(&mut conn).await?;
    let d = Dialect::of(&target)?;
    let filters = d.filters(&options.filter)?;
    let source = plan.segments.first().map(|h| h.source.clone());
    let source_id = source.as_ref().map_or(0, |s| s.server_id);
    let rewrite = source_id == target.server_id;
    if rewrite && d == Dialect::MySql {
        return Err(Error::Invalid(
            "a point-in-time replay into the MySQL server the archive came from (same server_id and server_uuid) is not supported: its own GTIDs would be skipped; restore into another server".into(),
        ));
    }
    // The served primary's own id: the source's, unless the target has that one.
    let served_id = if rewrite {
        (target.server_id as u32).wrapping_add(1).max(1)
    } else {
        source_id as u32
    };
    for sql in d.session_setup() {
        conn.query_drop(sql.as_str())
            .await
            .map_err(|e| Error::sql("setting up the replay session", e))?;
    }
    // An interrupted replay left its connection: continue from where the target's
    // applier stands (it records that position as it commits each transaction).
    let mut start = plan.start.clone();
    if let Some((file, pos)) = interrupted_at(&mut conn, d).await? {
        if !resume {
            return Err(Error::Conflict(format!(
                "an interrupted replay left the replication connection '{CONNECTION}' on the target (applied up to {file}:{pos}): run the same restore with --resume to finish it, or remove it with {}; {}",
                d.stop(),
                d.reset()
            )));
        }
        let (done, _) = plan.progress_at(&file, pos);
        if done == 0 && (file.clone(), pos) != plan.start {
            return Err(Error::Conflict(format!(
                "the interrupted replay on the target stands at {file}:{pos}, outside this restore's replay ({}:{} to {}:{}): it was another restore's",
                plan.start.0, plan.start.1, plan.stop.0, plan.stop.1
            )));
        }
        progress.note(&format!("resuming the replay from {file}:{pos}"));
        start = (file, pos);
    }
    let password: String = serve::random_printable::<24>()?
        .iter()
        .map(|&b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(b) % 36]))
        .collect();
    let archive = Arc::new(Archive::new(repo.clone()));
    let (host, _) = listen.rsplit_once(':').unwrap_or((listen, "0"));
    let served = serve::serve(
        listen,
        Feed {
            archive,
            headers: plan.segments.clone(),
            stop: plan.stop.clone(),
            server_id: served_id,
            rewrite_server_id: rewrite,
            version: target.version.clone(),
            user: "mysnap".into(),
            password: password.clone(),
            checksums: plan.checksums,
            server_uuid: source.as_ref().and_then(|s| s.server_uuid.clone()),
            gtid_mode: plan.segments.iter().any(|h| {
                h.last_gtid
                    .as_deref()
                    .is_some_and(|g| g.contains(':') && !g.starts_with("ANONYMOUS"))
            }),
        },
    )
    .await?;
    // What a failing statement is called in messages: never with its password.
    let what = |sql: &str| {
        sql.split(" MASTER_PASSWORD")
            .next()
            .and_then(|s| s.split(" SOURCE_PASSWORD").next())
            .unwrap_or(sql)
            .to_string()
    };
    // The applier in parallel (in the source's commit order: MariaDB's optimistic mode,
    // MySQL's replica_preserve_commit_order), when no other replication runs on the
    // target: the thread count is global and can change only while every replica thread
    // is stopped. Set back afterwards.
    let mut parallel_before: Option<u64> = None;
    if threads > 1 {
        let others: Vec<mysql_async::Row> = conn
            .query(d.all_status())
            .await
            .map_err(|e| Error::sql("reading the target's replication", e))?;
        if others.is_empty() {
            let var = d.parallel_variable();
            let now: Option<u64> = conn
                .query_first(format!("SELECT @@GLOBAL.{var}"))
                .await
                .map_err(|e| Error::sql(format!("reading {var}"), e))?;
            if conn
                .query_drop(format!("SET GLOBAL {var} = {threads}"))
                .await
                .is_ok()
            {
                parallel_before = now;
            }
        }
    }
    let mut statements = vec![d.change_source(host, served.port, &password, &start.0, start.1)];
    statements.extend(filters);
    statements.push(d.start());
    let result = async {
        for sql in &statements {
            conn.query_drop(sql.as_str()).await.map_err(|e| {
                let e = Error::sql(
                    format!("setting up the replay on the target ({})", what(sql)),
                    e,
                );
                match e.server_code() {
                    Some(1227) => Error::Invalid(format!(
                        "{e} (the replay needs {} on the target)",
                        d.privileges()
                    )),
                    _ => e,
                }
            })?;
        }
        let (_, total) = plan.progress_at("", 0);
        progress.begin("replay", total, 0, 0);
        let mut reported = 0u64;
        loop {
            let Some(row) = status_row(&mut conn, d).await else {
                return Err(Error::Server(
                    "the replay's replication connection is gone".into(),
                ));
            };
            let Some(a) = d.applied(&|n| column(&row, n)) else {
                return Err(Error::Server(
                    "the target's replication status has no applied position".into(),
                ));
            };
            if !a.sql_error.is_empty() {
                return Err(Error::Server(format!(
                    "the target's applier stopped at {}:{}: {}",
                    a.file, a.pos, a.sql_error
                )));
            }
            let (done, _) = plan.progress_at(&a.file, a.pos);
            if done > reported {
                progress.advance(done - reported, 0);
                reported = done;
            }
            if (a.file.clone(), a.pos) == plan.stop {
                break;
            }
            if !a.io_error.is_empty() && !a.io_running {
                return Err(Error::Server(format!(
                    "the target could not read the replayed events: {}",
                    a.io_error
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        progress.end();
        Ok(())
    }
    .await;
    // Whatever happened, the connection goes (its relay logs with it).
    let _ = conn.query_drop(d.stop()).await;
    let _ = conn.query_drop(d.reset()).await;
    if let Some(n) = parallel_before {
        let _ = conn
            .query_drop(format!("SET GLOBAL {} = {n}", d.parallel_variable()))
            .await;
    }
    served.task.abort();
    result?;
    Ok(ReplayReport {
        transactions: plan.transactions,
        bytes: plan.bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_in_every_accepted_form_and_refuse_the_rest() {
        assert_eq!(
            Until::time("2026-12-02T02:14:00Z").unwrap(),
            Until::Time(1_796_177_640)
        );
        assert_eq!(
            Until::time("2026-12-02T03:14:00+01:00").unwrap(),
            Until::Time(1_796_177_640)
        );
        assert_eq!(
            Until::time("2026-12-02 02:14:00.750Z").unwrap(),
            Until::Time(1_796_177_640)
        );
        assert_eq!(
            Until::time("2026-12-01T21:14:00-05:00").unwrap(),
            Until::Time(1_796_177_640)
        );
        assert!(Until::time("2026-12-02 02:14:00").is_ok(), "local time");
        for bad in [
            "yesterday",
            "2026-13-01 00:00:00",
            "2026-02-30 10:00:00",
            "2026-12-02T25:00:00Z",
            "",
        ] {
            assert!(Until::time(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Until::position("mysql-bin.000042:1234").unwrap(),
            Until::Position("mysql-bin.000042".into(), 1234)
        );
        for bad in ["mysql-bin.000042", ":12", "a:b", "../x:4"] {
            assert!(Until::position(bad).is_err(), "{bad}");
        }
        assert_eq!(Until::gtid("0-1-10").unwrap(), Until::Gtid("0-1-10".into()));
        assert!(Until::gtid("").is_err());
        assert!(Until::gtid("x").is_err());
    }
}
