//! `binlog archive`: streams the source's binary log over the replication protocol, as a
//! replica does, and writes it into the repository as segments.
//!
//! It resumes exactly after the last archived event (the last segment's file and end),
//! so a stop of any kind (SIGTERM, kill -9, a lost connection, a server restart) leaves
//! neither a gap nor a duplicate: what was received but not yet written is asked for
//! again. A segment is written at the first transaction boundary half a second after
//! its first event (the recovery point: at most about half a second of committed
//! transactions received but not yet stored), at a rotate, and when it reaches its size limit.
//! Before it streams, it checks that the source is the archive's and that the file to
//! resume from is still there and is the same file (`RESET MASTER` makes a new one of
//! the same name); when not, it stops and says so, unless told to go on after a gap.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;

use crate::connect::{Connector, Flavor, ServerInfo};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::Repository;

use super::event::{self, kind, Boundaries, Header, Step};
use super::gtid::GtidState;
use super::{Archive, ArchiverStatus, SegmentHeader, SourceIdentity};

/// Called with the archiver's status each time it is written.
pub type StatusHook = Arc<dyn Fn(&ArchiverStatus) + Send + Sync>;

/// How `binlog archive` runs.
#[derive(Clone)]
pub struct ArchiveOptions {
    /// The replica server id it registers with (unique among the source's replicas).
    pub server_id: Option<u32>,
    /// Archive what the source has, then exit.
    pub once: bool,
    /// Go on after a gap (purged binlogs, a recreated file, another server), recording it.
    pub after_gap: bool,
    /// Longest time a received transaction waits before it is written.
    pub flush_interval: Duration,
    /// A segment is written when it reaches this many bytes of events.
    pub max_segment_bytes: usize,
    /// Called each time the archiver writes its status (every second).
    pub on_status: Option<StatusHook>,
}

impl std::fmt::Debug for ArchiveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveOptions")
            .field("server_id", &self.server_id)
            .field("once", &self.once)
            .field("after_gap", &self.after_gap)
            .field("flush_interval", &self.flush_interval)
            .finish_non_exhaustive()
    }
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            server_id: None,
            once: false,
            after_gap: false,
            flush_interval: Duration::from_millis(500),
            max_segment_bytes: 64 << 20,
            on_status: None,
        }
    }
}

/// What a run archived.
#[derive(Debug, Clone, Default)]
pub struct ArchiveReport {
    /// Segments written, and what they hold.
    pub segments: u64,
    /// See `segments`.
    pub events: u64,
    /// See `segments`.
    pub transactions: u64,
    /// See `segments`.
    pub raw_bytes: u64,
    /// See `segments`.
    pub stored_bytes: u64,
    /// Archived up to here (file, position), or `None` when nothing is archived.
    pub until: Option<(String, u64)>,
    /// Times the stream was reopened after a lost connection.
    pub reconnects: u32,
}

/// Where the next event must come from, and what is known there.
#[derive(Debug, Clone)]
struct Cursor {
    file: String,
    pos: u64,
    /// The format description's timestamp of `file`, when known (to tell a file made
    /// again by `RESET MASTER` from the one archived).
    file_created: Option<u32>,
    gtid: GtidState,
    /// Timestamp of the last archived event.
    time: u32,
    /// Why the next segment does not continue the last one, when it does not.
    gap: Option<String>,
    /// The file the source finished before moving on to `file` (no rotate event).
    after_end_of: Option<String>,
}

/// The segment being filled.
struct Open {
    file: String,
    start: u64,
    file_created: u32,
    fde: Vec<u8>,
    events_bytes: Vec<u8>,
    first_time: u32,
    last_time: u32,
    first_gtid: Option<String>,
    last_gtid: Option<String>,
    events: u64,
    transactions: u64,
    opened: Instant,
    next_file: Option<String>,
    gap: Option<String>,
    after_end_of: Option<String>,
    /// The last transaction boundary in `events_bytes`: its length, end position, time,
    /// GTIDs and counts there.
    cut: Option<Cut>,
}

impl Open {
    /// The segment as it stands, ending at `at`.
    fn cut_at(&self, at: &Cursor) -> Cut {
        Cut {
            len: self.events_bytes.len(),
            end: at.pos,
            last_time: self.last_time,
            last_gtid: self.last_gtid.clone(),
            gtid: at.gtid.clone(),
            events: self.events,
            transactions: self.transactions,
            next_file: self.next_file.clone(),
        }
    }
}

#[derive(Clone)]
struct Cut {
    len: usize,
    end: u64,
    last_time: u32,
    last_gtid: Option<String>,
    gtid: GtidState,
    events: u64,
    transactions: u64,
    next_file: Option<String>,
}

/// Where to go on after segment `h`.
fn resume_after(h: &SegmentHeader) -> Cursor {
    let (file, pos) = h.resume_at();
    Cursor {
        file_created: (h.next_file.is_none()).then_some(h.file_created),
        file,
        pos,
        gtid: GtidState::parse(&h.gtid_after).unwrap_or_default(),
        time: h.last_time,
        gap: None,
        after_end_of: None,
    }
}

/// The replica id to register with when none is given: the same for a repository, and
/// away from the small numbers servers are given by hand.
fn default_server_id(repo: &Repository) -> u32 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(repo.location().as_bytes());
    1_000_000_000 + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) % 1_000_000_000
}

fn identity(server: &ServerInfo) -> SourceIdentity {
    SourceIdentity {
        flavor: server.flavor.name().to_string(),
        server_id: server.server_id,
        server_uuid: server.server_uuid.clone(),
        hostname: server.hostname.clone(),
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Archives the source's binary log into `repo` until stopped (or, with `once`, until
/// it has what the source had when it started).
pub async fn archive(
    connector: &Connector,
    repo: Arc<Repository>,
    options: &ArchiveOptions,
    progress: &dyn Progress,
) -> Result<ArchiveReport> {
    let archive = Archive::new(repo.clone());
    let server_id = options
        .server_id
        .unwrap_or_else(|| default_server_id(&repo));
    let mut report = ArchiveReport::default();
    let last = match archive.segments()?.last() {
        Some(&seq) => Some(archive.header(seq)?),
        None => None,
    };
    let mut next_seq = last.as_ref().map_or(1, |h| h.seq + 1);
    let mut expected_source = last.as_ref().map(|h| h.source.clone());
    let mut cursor: Option<Cursor> = last.as_ref().map(resume_after);
    let mut backoff = Duration::from_secs(1);
    let mut failures = 0u32;
    loop {
        // Once a segment is written, the resume point is after it, whatever a failed
        // stream left in memory: what was received and not written is asked for again.
        if next_seq > 1 {
            let written_since = cursor.as_ref().is_none_or(|c| c.gap.is_none());
            if written_since {
                cursor = Some(resume_after(&archive.header(next_seq - 1)?));
            }
        }
        let outcome = stream_once(
            connector,
            &repo,
            &archive,
            options,
            server_id,
            progress,
            &mut cursor,
            &mut expected_source,
            &mut next_seq,
            &mut report,
        )
        .await;
        match outcome {
            Ok(Ended::Done) => return Ok(report),
            Ok(Ended::Progressed) => {
                failures = 0;
                backoff = Duration::from_secs(1);
            }
            Err(e) if e.retryable() || matches!(e, Error::Connect { .. }) => {
                failures += 1;
                if options.once && failures > 3 {
                    return Err(e);
                }
                progress.note(&format!(
                    "binlog archive: {e}; connecting again in {} s",
                    backoff.as_secs()
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                report.reconnects += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

enum Ended {
    /// Everything asked for is archived (`--once`).
    Done,
    /// The stream ended after making progress: open it again.
    Progressed,
}

/// One connection's worth of streaming.
#[allow(clippy::too_many_arguments)]
async fn stream_once(
    connector: &Connector,
    repo: &Repository,
    archive: &Archive,
    options: &ArchiveOptions,
    server_id: u32,
    progress: &dyn Progress,
    cursor: &mut Option<Cursor>,
    expected_source: &mut Option<SourceIdentity>,
    next_seq: &mut u64,
    report: &mut ArchiveReport,
) -> Result<Ended> {
    let mut conn = connector.connect(&[]).await?;
    let server = ServerInfo::detect(&mut conn).await?;
    let target = connector.options().describe();
    if !server.log_bin {
        return Err(Error::Invalid(format!(
            "the binary log is off on {target}: point-in-time restore needs it (start the server with log_bin)"
        )));
    }
    let me = identity(&server);
    if let Some(expected) = expected_source.as_ref() {
        let same = expected.server_id == me.server_id
            && expected.flavor == me.flavor
            && expected.server_uuid == me.server_uuid;
        if !same {
            let why = format!(
                "the source changed: the archive follows {} server_id {}{}, {target} is {} server_id {}{}",
                expected.flavor,
                expected.server_id,
                expected.server_uuid.as_deref().map(|u| format!(" ({u})")).unwrap_or_default(),
                me.flavor,
                me.server_id,
                me.server_uuid.as_deref().map(|u| format!(" ({u})")).unwrap_or_default(),
            );
            if !options.after_gap {
                return Err(Error::Invalid(format!(
                    "{why}; to follow it from now on (a new primary after a failover), run again with --after-gap, which records a gap"
                )));
            }
            let c = current_position(&mut conn, &server).await?;
            *cursor = Some(Cursor {
                gap: Some(why),
                ..c
            });
        }
    }
    *expected_source = Some(me.clone());
    let mut at = match cursor.take() {
        Some(c) => c,
        None => start_of_server(&mut conn, &server, repo, progress).await?,
    };
    // Until a segment is written, a retry starts from the same place.
    *cursor = Some(at.clone());
    // The file to resume from must still be on the source.
    if let Some(files) = binary_logs(&mut conn).await? {
        if !files.contains(&at.file) {
            let why = format!(
                "{}:{} is no longer on {target} (its oldest binary log is {}): the binary logs after it were purged before they were archived",
                at.file,
                at.pos,
                files.first().map_or("none", String::as_str)
            );
            if !options.after_gap {
                *cursor = Some(at);
                return Err(Error::Invalid(format!(
                    "cannot archive without a gap: {why}; run again with --after-gap to record the gap and go on from the oldest binary log (snapshots taken after it can be rolled forward)"
                )));
            }
            at = Cursor {
                file: files[0].clone(),
                pos: 4,
                file_created: None,
                gtid: GtidState::Unknown,
                time: at.time,
                gap: Some(why),
                after_end_of: None,
            };
        }
    }
    if server.flavor == Flavor::Mariadb {
        // Without it, MariaDB rewrites its GTID events for an old replica.
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .map_err(|e| Error::sql("setting up the binlog stream", e))?;
    }
    // A heartbeat every flush interval when idle: where the source's log ends.
    let period = options.flush_interval.as_nanos().max(1_000_000) as u64;
    conn.query_drop(format!("SET @master_heartbeat_period = {period}"))
        .await
        .map_err(|e| Error::sql("setting up the binlog stream", e))?;
    let mut request = BinlogStreamRequest::new(server_id)
        .with_filename(at.file.as_bytes())
        .with_pos(at.pos);
    if options.once {
        request = request.with_non_blocking();
    }
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(|e| classify_stream_error(e, &at, &target))?;
    progress.note(&format!(
        "archiving the binary log of {} from {}:{}",
        connector.connected_to(&server),
        at.file,
        at.pos
    ));

    let mut checksums = true;
    let mut boundaries = Boundaries::default();
    let mut open: Option<Open> = None;
    let mut fde: Option<(Vec<u8>, u32)> = None;
    let mut source_end: Option<(String, u64)> = None;
    let mut last_status = Instant::now() - Duration::from_secs(60);
    let mut progressed = false;
    let poll = (options.flush_interval / 4).max(Duration::from_millis(10));
    // Rewrites the archiver's status object (every second, or now).
    macro_rules! status {
        ($now:expr) => {
            write_status(
                archive,
                options.on_status.as_deref(),
                &at,
                &source_end,
                &target,
                &mut last_status,
                $now,
            )?
        };
    }
    loop {
        let next = tokio::time::timeout(poll, stream.next()).await.ok();
        let ev = match next {
            // Nothing for a while: write what waits, if it ends between transactions.
            None => {
                if let Some(o) = &open {
                    if o.opened.elapsed() >= options.flush_interval && boundaries.between() {
                        let o = open.take().expect("open");
                        progressed |= commit(archive, &me, o, &mut at, next_seq, report, progress)?;
                    }
                }
                status!(false);
                continue;
            }
            Some(None) => {
                // The source ended the stream: all it had (`--once`), or it is stopping.
                if let Some(o) = open.take() {
                    commit_to_cut(archive, &me, o, &mut at, next_seq, report, progress)?;
                }
                status!(true);
                return Ok(if options.once {
                    Ended::Done
                } else {
                    Ended::Progressed
                });
            }
            Some(Some(Err(e))) => {
                if let Some(o) = open.take() {
                    progressed |=
                        commit_to_cut(archive, &me, o, &mut at, next_seq, report, progress)?;
                }
                *cursor = Some(at.clone());
                let e = classify_stream_error(e, &at, &target);
                if progressed && e.retryable() {
                    return Ok(Ended::Progressed);
                }
                return Err(e);
            }
            Some(Some(Ok(ev))) => ev,
        };
        let mut raw = Vec::with_capacity(ev.header().event_size() as usize);
        ev.write(mysql_async::binlog::BinlogVersion::Version4, &mut raw)
            .map_err(|e| {
                Error::Server(format!(
                    "a binlog event from {target} cannot be re-encoded: {e}"
                ))
            })?;
        let h = Header::read(&raw)?;
        tracing::trace!(
            "event type {} at {}..{} ({} bytes, flags {:#x})",
            h.kind,
            h.start(),
            h.log_pos,
            h.size,
            h.flags
        );
        if h.kind == kind::FORMAT_DESCRIPTION {
            checksums = event::fde_has_checksum(&raw);
        }
        if checksums {
            // The checksum as sent, not as re-computed: the event's own bytes, checked.
            if let Some(sent) = ev.checksum() {
                let n = raw.len();
                raw[n - 4..].copy_from_slice(&sent);
            }
            event::check_crc(&raw, true).map_err(|e| {
                Error::Damaged(format!("{e} (from {target}, {}:{})", at.file, h.log_pos))
            })?;
        }
        match h.kind {
            kind::HEARTBEAT => {
                let name = String::from_utf8_lossy(
                    &raw[event::HEADER_LEN..raw.len() - if checksums { 4 } else { 0 }],
                )
                .into_owned();
                source_end = Some((name, u64::from(h.log_pos)));
                status!(false);
                continue;
            }
            kind::FORMAT_DESCRIPTION => {
                if let Some(created) = at.file_created {
                    if created != h.timestamp {
                        let why = format!(
                            "{} on the source is not the file archived under that name (created at {} rather than {}): the binary log was reset (RESET MASTER) or this is another server",
                            at.file, h.timestamp, created
                        );
                        if !options.after_gap {
                            *cursor = Some(at);
                            return Err(Error::Invalid(format!(
                                "cannot archive without a gap: {why}; run again with --after-gap to record the gap and go on"
                            )));
                        }
                        // Start this file again from its beginning, after a gap.
                        *cursor = Some(Cursor {
                            pos: 4,
                            file_created: Some(h.timestamp),
                            gtid: GtidState::Unknown,
                            gap: Some(why),
                            ..at
                        });
                        return Ok(Ended::Progressed);
                    }
                }
                at.file_created = Some(h.timestamp);
                fde = Some((raw.clone(), h.timestamp));
                // The description opens its file: archived when the stream starts there.
                if h.artificial() || h.start() != at.pos {
                    continue;
                }
            }
            kind::ROTATE if h.artificial() => {
                // The stream moves to another file: after the end of the one it was in
                // (a server that stopped or crashed starts a new file), or at the start.
                let (file, pos) = event::rotate(&raw, checksums)?;
                if file != at.file {
                    if !boundaries.between() {
                        // A file never ends inside a transaction: read it again.
                        if let Some(o) = open.take() {
                            commit_to_cut(archive, &me, o, &mut at, next_seq, report, progress)?;
                        }
                        *cursor = Some(at);
                        return Ok(Ended::Progressed);
                    }
                    if let Some(o) = open.take() {
                        progressed |= commit(archive, &me, o, &mut at, next_seq, report, progress)?;
                    }
                    let finished = (at.file_created.is_some() && pos == 4).then(|| at.file.clone());
                    at.file = file;
                    at.pos = pos;
                    at.file_created = None;
                    at.after_end_of = finished;
                }
                continue;
            }
            _ if h.artificial() => continue,
            _ => {}
        }
        // MariaDB sends a statement's Annotate_rows event (its SQL text, for people; a
        // replica does not apply it) only to a replica that asks with a dump flag the
        // driver does not offer: the one hole allowed is the one before a table map.
        let annotate_skipped = h.start() > at.pos
            && h.kind == kind::TABLE_MAP
            && server.flavor == Flavor::Mariadb
            && open
                .as_ref()
                .is_some_and(|o| o.events > 0 && !boundaries.between());
        if h.start() != at.pos && !annotate_skipped {
            *cursor = Some(at.clone());
            return Err(Error::Server(format!(
                "the binlog stream from {target} skipped: an event at {}:{} where {}:{} was expected",
                at.file,
                h.start(),
                at.file,
                at.pos
            )));
        }
        let Some((fde_raw, created)) = fde.as_ref() else {
            return Err(Error::Server(format!(
                "the binlog stream from {target} sent events before a format description"
            )));
        };
        let o = open.get_or_insert_with(|| Open {
            file: at.file.clone(),
            start: at.pos,
            file_created: *created,
            fde: fde_raw.clone(),
            events_bytes: Vec::new(),
            first_time: h.timestamp,
            last_time: h.timestamp,
            first_gtid: None,
            last_gtid: None,
            events: 0,
            transactions: 0,
            opened: Instant::now(),
            next_file: None,
            gap: at.gap.take(),
            after_end_of: at.after_end_of.take(),
            cut: None,
        });
        o.events_bytes.extend_from_slice(&raw);
        o.events += 1;
        o.last_time = h.timestamp;
        at.pos = u64::from(h.log_pos);
        match h.kind {
            kind::MARIADB_GTID => {
                let g = event::mariadb_gtid(&raw, checksums)?;
                o.first_gtid.get_or_insert_with(|| g.to_string());
                o.last_gtid = Some(g.to_string());
                at.gtid.add(&g);
            }
            kind::MYSQL_GTID => {
                let g = event::mysql_gtid(&raw, checksums)?;
                o.first_gtid.get_or_insert_with(|| g.to_string());
                o.last_gtid = Some(g.to_string());
                at.gtid.add(&g);
            }
            kind::MARIADB_GTID_LIST => {
                let list = event::mariadb_gtid_list(&raw, checksums)?;
                if at.gtid == GtidState::Unknown && !list.is_empty() {
                    at.gtid =
                        GtidState::MariaDb(list.into_iter().map(|(d, s, q)| (d, (s, q))).collect());
                }
            }
            kind::MYSQL_PREVIOUS_GTIDS if at.gtid == GtidState::Unknown => {
                at.gtid = super::gtid::mysql_previous_gtids(event::body(&raw, checksums))?;
            }
            kind::ROTATE => {
                let (next, _) = event::rotate(&raw, checksums)?;
                o.next_file = Some(next);
            }
            _ => {}
        }
        let step = boundaries.step(&raw, checksums)?;
        if step == Step::End {
            o.transactions += 1;
        }
        if boundaries.between() {
            o.cut = Some(o.cut_at(&at));
        }
        let rotated = o.next_file.is_some();
        let full = o.events_bytes.len() >= options.max_segment_bytes;
        let due = o.opened.elapsed() >= options.flush_interval;
        if (boundaries.between() && (rotated || full || due))
            || o.events_bytes.len() >= 2 * options.max_segment_bytes
        {
            let o = open.take().expect("open");
            progressed |= commit(archive, &me, o, &mut at, next_seq, report, progress)?;
        }
        status!(false);
    }
}

/// The first place to archive from on a source with no archive yet: the oldest
/// snapshot's coordinates, so that the window starts with the first snapshot, or the
/// source's current position when no snapshot has any.
async fn start_of_server(
    conn: &mut mysql_async::Conn,
    server: &ServerInfo,
    repo: &Repository,
    progress: &dyn Progress,
) -> Result<Cursor> {
    let mut indexes = repo.indexes()?;
    indexes.sort_by(|a, b| a.order().cmp(&b.order()));
    if let Some((file, pos, gtid)) = indexes.iter().find_map(|i| {
        Some((
            i.binlog.file.clone()?,
            i.binlog.position?,
            i.binlog.gtid.clone().unwrap_or_default(),
        ))
    }) {
        return Ok(Cursor {
            file,
            pos,
            file_created: None,
            gtid: GtidState::parse(&gtid).unwrap_or_default(),
            time: 0,
            gap: None,
            after_end_of: None,
        });
    }
    let c = current_position(conn, server).await?;
    progress.note(&format!(
        "no snapshot in the repository records binlog coordinates: archiving from the source's current position, {}:{}",
        c.file, c.pos
    ));
    Ok(c)
}

/// Where the source's binary log ends now.
async fn current_position(conn: &mut mysql_async::Conn, server: &ServerInfo) -> Result<Cursor> {
    let row: Option<mysql_async::Row> = conn
        .query_first(crate::snapshot::binlog_status_statement(server))
        .await
        .map_err(|e| match &e {
            mysql_async::Error::Server(s) if s.code == 1227 => privileges(&s.message),
            _ => Error::sql("reading the source's binary log position", e),
        })?;
    let Some(row) = row else {
        return Err(Error::Invalid(
            "the source reports no binary log position (is log_bin on?)".into(),
        ));
    };
    Ok(Cursor {
        file: row.get(0).unwrap_or_default(),
        pos: row.get(1).unwrap_or(4),
        file_created: None,
        gtid: GtidState::Unknown,
        time: 0,
        gap: None,
        after_end_of: None,
    })
}

/// The source's binary log files, oldest first; `None` when the account may not list
/// them (the stream then says whether the file is there).
async fn binary_logs(conn: &mut mysql_async::Conn) -> Result<Option<Vec<String>>> {
    match conn.query::<mysql_async::Row, _>("SHOW BINARY LOGS").await {
        Ok(rows) => Ok(Some(
            rows.into_iter()
                .filter_map(|r| r.get::<String, _>(0))
                .collect(),
        )),
        Err(mysql_async::Error::Server(e)) if matches!(e.code, 1227 | 1045 | 1142) => Ok(None),
        Err(e) => Err(Error::sql("listing the source's binary logs", e)),
    }
}

/// The account lacks what archiving needs.
fn privileges(what: &str) -> Error {
    Error::Invalid(format!(
        "{what} (archiving needs REPLICATION SLAVE, and BINLOG MONITOR on MariaDB or REPLICATION CLIENT on MySQL)"
    ))
}

/// A stream error as the operator should read it.
fn classify_stream_error(e: mysql_async::Error, at: &Cursor, target: &str) -> Error {
    if let mysql_async::Error::Server(s) = &e {
        // ER_MASTER_FATAL_ERROR_READING_BINLOG: the file is gone or the position wrong.
        if s.code == 1236 {
            return Error::Invalid(format!(
                "{target} cannot send its binary log from {}:{}: {} (purged before it was archived? run again with --after-gap to record the gap and go on)",
                at.file, at.pos, s.message
            ));
        }
        if matches!(s.code, 1227 | 1045) {
            return privileges(&format!(
                "{target} refused the binlog stream: {}",
                s.message
            ));
        }
    }
    Error::sql(format!("reading the binary log of {target}"), e)
}

/// Writes the whole open segment (it ends between transactions, or is too large to
/// wait for the end of one).
fn commit(
    archive: &Archive,
    source: &SourceIdentity,
    o: Open,
    at: &mut Cursor,
    next_seq: &mut u64,
    report: &mut ArchiveReport,
    progress: &dyn Progress,
) -> Result<bool> {
    let ends_between = o
        .cut
        .as_ref()
        .is_some_and(|c| c.len == o.events_bytes.len());
    let cut = o.cut_at(at);
    write(
        archive,
        source,
        o,
        cut,
        ends_between,
        at,
        next_seq,
        report,
        progress,
    )
}

/// Writes the open segment up to its last transaction boundary; what follows it is
/// asked for again on the next connection.
fn commit_to_cut(
    archive: &Archive,
    source: &SourceIdentity,
    o: Open,
    at: &mut Cursor,
    next_seq: &mut u64,
    report: &mut ArchiveReport,
    progress: &dyn Progress,
) -> Result<bool> {
    let Some(cut) = o.cut.clone() else {
        // Not one whole transaction: resume where the segment would have started.
        at.file = o.file.clone();
        at.pos = o.start;
        at.gap = o.gap;
        at.after_end_of = o.after_end_of;
        return Ok(false);
    };
    write(
        archive, source, o, cut, true, at, next_seq, report, progress,
    )
}

#[allow(clippy::too_many_arguments)]
fn write(
    archive: &Archive,
    source: &SourceIdentity,
    o: Open,
    cut: Cut,
    ends_between: bool,
    at: &mut Cursor,
    next_seq: &mut u64,
    report: &mut ArchiveReport,
    progress: &dyn Progress,
) -> Result<bool> {
    use sha2::{Digest, Sha256};
    let events = &o.events_bytes[..cut.len];
    // The fragment opens with the file header and the format description, unless its
    // first event is that description.
    let mut fragment = Vec::with_capacity(4 + o.fde.len() + events.len());
    fragment.extend_from_slice(&event::MAGIC);
    if o.start != 4 {
        fragment.extend_from_slice(&o.fde);
    }
    fragment.extend_from_slice(events);
    let compressed = zstd::bulk::compress(&fragment, 3)
        .map_err(|e| Error::Internal(format!("cannot compress a binlog segment: {e}")))?;
    let header = SegmentHeader {
        seq: *next_seq,
        source: source.clone(),
        file: o.file.clone(),
        start: o.start,
        end: cut.end,
        next_file: cut.next_file.clone(),
        file_created: o.file_created,
        first_time: o.first_time,
        last_time: cut.last_time,
        first_gtid: o.first_gtid.clone(),
        last_gtid: cut.last_gtid.clone(),
        gtid_after: cut.gtid.to_string(),
        events: cut.events,
        transactions: cut.transactions,
        ends_between,
        raw_bytes: events.len() as u64,
        stored_bytes: compressed.len() as u64,
        sha256: hex::encode(Sha256::digest(&compressed)),
        archived: now_rfc3339(),
        gap_before: o.gap.clone(),
        after_end_of: o.after_end_of.clone(),
    };
    archive.write_segment(&header, &compressed)?;
    tracing::debug!(
        "binlog segment {}: {}:{}..{}, {} events",
        header.seq,
        header.file,
        header.start,
        header.end,
        header.events
    );
    if let Some(gap) = &header.gap_before {
        progress.note(&format!(
            "binlog archive: a gap before segment {} ({}:{}): {gap}",
            header.seq, header.file, header.start
        ));
    }
    *next_seq += 1;
    report.segments += 1;
    report.events += header.events;
    report.transactions += header.transactions;
    report.raw_bytes += header.raw_bytes;
    report.stored_bytes += header.stored_bytes;
    let (file, pos) = header.resume_at();
    report.until = Some((file.clone(), pos));
    at.file = file;
    at.pos = pos;
    at.gtid = cut.gtid;
    if header.next_file.is_some() {
        at.file_created = None;
    }
    at.time = header.last_time;
    Ok(true)
}

/// Rewrites the archiver's status object at most every second (or now): while it is
/// caught up, that is what tells a restore the archive covers the time since its last
/// event.
fn write_status(
    archive: &Archive,
    notify: Option<&(dyn Fn(&ArchiverStatus) + Send + Sync)>,
    at: &Cursor,
    source_end: &Option<(String, u64)>,
    target: &str,
    last: &mut Instant,
    now: bool,
) -> Result<()> {
    if !now && last.elapsed() < Duration::from_secs(1) {
        return Ok(());
    }
    *last = Instant::now();
    let caught_up = source_end
        .as_ref()
        .is_some_and(|(f, p)| *f == at.file && *p <= at.pos);
    let status = ArchiverStatus {
        host: crate::repo::lock::host_name(),
        pid: std::process::id(),
        source: target.to_string(),
        updated: now_rfc3339(),
        archived_file: at.file.clone(),
        archived_position: at.pos,
        archived_time: at.time,
        source_file: source_end.as_ref().map(|(f, _)| f.clone()),
        source_position: source_end.as_ref().map(|(_, p)| *p),
        lag_seconds: if caught_up || at.time == 0 {
            0.0
        } else {
            now_secs().saturating_sub(u64::from(at.time)) as f64
        },
    };
    archive.put_archiver_status(&status)?;
    if let Some(f) = notify {
        f(&status);
    }
    Ok(())
}
