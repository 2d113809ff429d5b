//! The binary-log archive of a repository: segments of the source's binary log, kept
//! as the source wrote them, so that a restore can roll a snapshot forward to any moment
//! the archive covers.
//!
//! A segment is one object, `binlog/segments/<seq>.seg`, written once with a conditional
//! create (so two archivers of one repository cannot both write segment `seq`):
//! an 8-byte magic, a little-endian u32 length, a JSON [`SegmentHeader`], then a zstd
//! frame holding a binlog file fragment: `\xfebin`, the file's format description
//! event, and the segment's events byte for byte as the source's file has them (a
//! `mariadb-binlog`/`mysqlbinlog` can read it once decompressed). Segments follow each
//! other without a hole: each starts where the one before ended, in the same file or at
//! the start of the file its rotate event named, unless its header records a gap.

pub(crate) mod archive;
pub(crate) mod event;
pub(crate) mod gtid;
pub mod replay;
pub(crate) mod serve;
pub(crate) mod target;

use std::io::Read;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::repo::Repository;

pub use archive::{archive, ArchiveOptions, ArchiveReport};

/// Opens a segment object.
const MAGIC: &[u8; 8] = b"MSNPBLG1";
/// Where segments live in a repository.
const SEGMENTS: &str = "binlog/segments/";
/// What a running archiver last said about itself.
const ARCHIVER_STATUS: &str = "binlog/archiver.json";
/// The largest header mysnap reads (a header is a few hundred bytes).
const MAX_HEADER: u32 = 1 << 20;

/// The source server an archive follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// `MariaDB` or `MySQL`.
    pub flavor: String,
    /// `@@server_id`.
    pub server_id: u64,
    /// `@@server_uuid` (MySQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_uuid: Option<String>,
    /// `@@hostname`.
    pub hostname: String,
}

/// What a segment holds: its place in the source's binary log, its times and GTIDs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentHeader {
    /// Its number in the archive, from 1, without holes.
    pub seq: u64,
    /// The source it came from.
    pub source: SourceIdentity,
    /// The binlog file its events are in.
    pub file: String,
    /// Position of its first event in that file.
    pub start: u64,
    /// Position just after its last event.
    pub end: u64,
    /// When it ends with the file's rotate event: the next file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_file: Option<String>,
    /// The file's format description event's timestamp: a file of the same name made
    /// again (`RESET MASTER`) has another.
    pub file_created: u32,
    /// Timestamps (seconds since the epoch) of its first and last events.
    pub first_time: u32,
    /// See `first_time`.
    pub last_time: u32,
    /// The GTID of its first and last transactions, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_gtid: Option<String>,
    /// See `first_gtid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_gtid: Option<String>,
    /// The source's GTID position after its last event (MariaDB form or MySQL set).
    pub gtid_after: String,
    /// Events and whole transactions in it.
    pub events: u64,
    /// See `events`.
    pub transactions: u64,
    /// Whether it ends between transactions (a segment cut inside a very large
    /// transaction does not).
    pub ends_between: bool,
    /// Bytes of binlog events (without the file header and format description).
    pub raw_bytes: u64,
    /// Bytes of the compressed fragment, and its sha256.
    pub stored_bytes: u64,
    /// See `stored_bytes`.
    pub sha256: String,
    /// When written, RFC 3339 UTC.
    pub archived: String,
    /// Set when this segment does not continue the one before: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_before: Option<String>,
    /// Set when it starts a file the source moved on to after the end of this one, with
    /// no rotate event (the server stopped or crashed, and started a new file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_end_of: Option<String>,
}

impl SegmentHeader {
    /// Where the next segment starts: after this one in its file, or at the start of the
    /// next file.
    pub fn resume_at(&self) -> (String, u64) {
        match &self.next_file {
            Some(next) => (next.clone(), 4),
            None => (self.file.clone(), self.end),
        }
    }

    /// Whether it takes over exactly where `prev` ended: at its resume point, or at the
    /// start of the file the source went on to after the end of `prev`'s file.
    pub fn continues(&self, prev: &SegmentHeader) -> bool {
        let (file, pos) = prev.resume_at();
        self.gap_before.is_none()
            && ((self.file == file && self.start == pos)
                || (self.start == 4 && self.after_end_of.as_deref() == Some(file.as_str())))
    }
}

/// What a running archiver says about itself, rewritten every second.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiverStatus {
    /// Host and process.
    pub host: String,
    /// See `host`.
    pub pid: u32,
    /// `user@host:port` of the source.
    pub source: String,
    /// When written, RFC 3339 UTC.
    pub updated: String,
    /// Archived up to here (file, position).
    pub archived_file: String,
    /// See `archived_file`.
    pub archived_position: u64,
    /// Timestamp of the newest archived event.
    pub archived_time: u32,
    /// Where the source's binary log ended when it last said (file, position).
    pub source_file: Option<String>,
    /// See `source_file`.
    pub source_position: Option<u64>,
    /// Seconds between the newest event the source has and the newest archived one (0
    /// when caught up).
    pub lag_seconds: f64,
}

/// A repository's binary-log archive.
pub struct Archive {
    store: Arc<dyn crate::store::Store>,
    location: String,
}

/// A segment's object name.
fn segment_object(seq: u64) -> String {
    format!("{SEGMENTS}{seq:012}.seg")
}

fn seq_of(name: &str) -> Option<u64> {
    name.strip_prefix(SEGMENTS)?
        .strip_suffix(".seg")
        .filter(|s| s.len() == 12)?
        .parse()
        .ok()
}

impl Archive {
    /// The archive of a repository (empty until an archiver writes to it).
    pub fn new(repo: Arc<Repository>) -> Self {
        Self::in_store(repo.store().clone(), repo.location())
    }

    /// The archive kept in `store` (a repository's), named `location` in messages.
    pub(crate) fn in_store(store: Arc<dyn crate::store::Store>, location: String) -> Self {
        Archive { store, location }
    }

    /// Segment numbers, in order.
    pub fn segments(&self) -> Result<Vec<u64>> {
        let mut seqs: Vec<u64> = self
            .store
            .list(SEGMENTS)?
            .iter()
            .filter_map(|(name, _)| seq_of(name))
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Reads a segment's header (not its events).
    pub fn header(&self, seq: u64) -> Result<SegmentHeader> {
        let name = segment_object(seq);
        let store = &self.store;
        let mut head = [0u8; 12];
        store
            .get_range(&name, 0, 12)?
            .read_exact(&mut head)
            .map_err(|e| Error::Io {
                object: name.clone(),
                cause: e,
            })?;
        let len = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        if &head[..8] != MAGIC || len > MAX_HEADER {
            return Err(Error::Damaged(format!(
                "{name}: not a binlog segment of mysnap's (bad magic or header length)"
            )));
        }
        let mut json = vec![0u8; len as usize];
        store
            .get_range(&name, 12, u64::from(len))?
            .read_exact(&mut json)
            .map_err(|e| Error::Io {
                object: name.clone(),
                cause: e,
            })?;
        let header: SegmentHeader = serde_json::from_slice(&json)
            .map_err(|e| Error::Damaged(format!("{name}: its header cannot be read: {e}")))?;
        if header.seq != seq {
            return Err(Error::Damaged(format!(
                "{name}: its header says it is segment {}",
                header.seq
            )));
        }
        Ok(header)
    }

    /// Every segment's header, in order.
    pub fn headers(&self) -> Result<Vec<SegmentHeader>> {
        self.segments()?
            .into_iter()
            .map(|s| self.header(s))
            .collect()
    }

    /// A segment's events, checked against its header's size and sha256: the binlog
    /// fragment (file header, format description, events).
    pub fn fragment(&self, header: &SegmentHeader) -> Result<Vec<u8>> {
        use sha2::{Digest, Sha256};
        let name = segment_object(header.seq);
        let all = self.store.read_all(&name)?;
        let len = u32::from_le_bytes(all[8..12].try_into().expect("4 bytes")) as usize;
        let body = &all[12 + len..];
        let sha = hex::encode(Sha256::digest(body));
        if body.len() as u64 != header.stored_bytes || sha != header.sha256 {
            return Err(Error::Damaged(format!(
                "{name}: its events are not what was archived ({} bytes with sha256 {sha}, recorded {} bytes with {})",
                body.len(),
                header.stored_bytes,
                header.sha256
            )));
        }
        zstd::decode_all(body)
            .map_err(|e| Error::Damaged(format!("{name}: its events cannot be decompressed: {e}")))
    }

    /// A segment's events, each checked (size, CRC32 when the source writes them):
    /// the file's format description and the segment's events, byte for byte as in the
    /// source's file.
    pub fn events(&self, header: &SegmentHeader) -> Result<SegmentEvents> {
        let fragment = self.fragment(header)?;
        let name = segment_object(header.seq);
        let bad = |what: &str| Error::Damaged(format!("{name}: {what}"));
        if fragment.get(..4) != Some(&event::MAGIC[..]) {
            return Err(bad("its events do not open with a binlog file header"));
        }
        let mut at = 4;
        let mut events = Vec::new();
        while at < fragment.len() {
            let size = fragment
                .get(at + 9..at + 13)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                .ok_or_else(|| bad("an event cut short"))?;
            let e = fragment
                .get(at..at + size)
                .filter(|_| size >= event::HEADER_LEN)
                .ok_or_else(|| bad("an event cut short"))?;
            events.push(e.to_vec());
            at += size;
        }
        let Some(fde) = events.first().cloned() else {
            return Err(bad("no format description event"));
        };
        if event::Header::read(&fde)?.kind != event::kind::FORMAT_DESCRIPTION {
            return Err(bad("its first event is not a format description"));
        }
        let checksums = event::fde_has_checksum(&fde);
        for e in &events {
            event::check_crc(e, checksums).map_err(|err| bad(&err.to_string()))?;
        }
        if header.start != 4 {
            events.remove(0);
        }
        let got: u64 = events.iter().map(|e| e.len() as u64).sum();
        if got != header.raw_bytes || events.len() as u64 != header.events {
            return Err(bad(&format!(
                "{} events of {got} bytes where its header records {} of {}",
                events.len(),
                header.events,
                header.raw_bytes
            )));
        }
        Ok(SegmentEvents { fde, events })
    }

    /// Writes a segment, unless one with its number exists (another archiver's): then
    /// fails, and nothing is written.
    pub(crate) fn write_segment(&self, header: &SegmentHeader, compressed: &[u8]) -> Result<()> {
        let json = serde_json::to_vec(header)
            .map_err(|e| Error::Internal(format!("cannot encode a segment header: {e}")))?;
        let mut object = Vec::with_capacity(12 + json.len() + compressed.len());
        object.extend_from_slice(MAGIC);
        object.extend_from_slice(&(json.len() as u32).to_le_bytes());
        object.extend_from_slice(&json);
        object.extend_from_slice(compressed);
        let store = &self.store;
        if !store.create_bytes(&segment_object(header.seq), &object)? {
            return Err(Error::Conflict(format!(
                "binlog segment {} was written by another archiver of {}: only one archiver may write to a repository",
                header.seq,
                self.location
            )));
        }
        store.flush()
    }

    /// What a running archiver last said, if any did.
    pub fn archiver_status(&self) -> Result<Option<ArchiverStatus>> {
        let store = &self.store;
        if store.stat(ARCHIVER_STATUS)?.is_none() {
            return Ok(None);
        }
        let bytes = store.read_all(ARCHIVER_STATUS)?;
        Ok(serde_json::from_slice(&bytes).ok())
    }

    pub(crate) fn put_archiver_status(&self, status: &ArchiverStatus) -> Result<()> {
        let bytes = serde_json::to_vec(status)
            .map_err(|e| Error::Internal(format!("cannot encode the archiver status: {e}")))?;
        self.store.put_bytes(ARCHIVER_STATUS, &bytes)
    }

    /// For each snapshot with binlog coordinates the archive holds: up to when it can be
    /// rolled forward (seconds since the epoch), and the gap that ends its window, if any.
    pub fn windows(&self, snapshots: &[crate::repo::SnapshotIndex]) -> Result<Vec<Window>> {
        let headers = self.headers()?;
        // The last segment of the run without a gap that each segment belongs to.
        let mut run_end: Vec<usize> = (0..headers.len()).collect();
        for i in (0..headers.len().saturating_sub(1)).rev() {
            if headers[i + 1].continues(&headers[i]) {
                run_end[i] = run_end[i + 1];
            }
        }
        let end = self.covered_until(&headers);
        Ok(snapshots
            .iter()
            .map(|s| {
                let at = s
                    .binlog
                    .file
                    .as_ref()
                    .zip(s.binlog.position)
                    .and_then(|(f, p)| {
                        headers
                            .iter()
                            .position(|h| h.file == *f && h.start <= p && p <= h.end)
                    });
                match at {
                    None => Window {
                        id: s.id.clone(),
                        until: None,
                        gap: None,
                    },
                    Some(i) => {
                        let last = run_end[i];
                        let h = &headers[last];
                        let gap = headers.get(last + 1).map(|next| {
                            format!(
                                "binary log missing from {}:{} to {}:{}{}",
                                h.resume_at().0,
                                h.resume_at().1,
                                next.file,
                                next.start,
                                next.gap_before
                                    .as_deref()
                                    .map(|g| format!(" ({g})"))
                                    .unwrap_or_default()
                            )
                        });
                        Window {
                            id: s.id.clone(),
                            until: Some(if gap.is_none() {
                                end
                            } else {
                                u64::from(h.last_time)
                            }),
                            gap,
                        }
                    }
                }
            })
            .collect())
    }

    /// Deletes the segments no kept snapshot can use: those before the oldest segment a
    /// kept snapshot's coordinates fall in, oldest first (an interruption leaves the
    /// archive whole from some segment on). Nothing goes when no kept snapshot is in the
    /// archive, and never the last segment, where the archiver resumes. Returns the
    /// segments and bytes removed.
    pub(crate) fn prune(&self, kept: &[crate::repo::SnapshotIndex]) -> Result<(u64, u64)> {
        let seqs = self.segments()?;
        let mut headers = Vec::with_capacity(seqs.len());
        for &seq in &seqs {
            headers.push(self.header(seq)?);
        }
        let oldest_needed = kept
            .iter()
            .filter_map(|s| {
                let (f, p) = (s.binlog.file.as_ref()?, s.binlog.position?);
                headers
                    .iter()
                    .position(|h| h.file == *f && h.start <= p && p <= h.end)
            })
            .min();
        let Some(first_kept) = oldest_needed else {
            return Ok((0, 0));
        };
        let first_kept = first_kept.min(headers.len().saturating_sub(1));
        let (mut n, mut bytes) = (0, 0);
        for h in &headers[..first_kept] {
            self.store.delete(&segment_object(h.seq))?;
            n += 1;
            bytes += h.stored_bytes;
        }
        if n > 0 {
            self.store.flush()?;
        }
        Ok((n, bytes))
    }

    /// When the archive is known to hold everything the source wrote: its last event's
    /// time, or later, when the archiver last said it was caught up with the source.
    pub(crate) fn covered_until(&self, headers: &[SegmentHeader]) -> u64 {
        let last = headers.last().map_or(0, |h| u64::from(h.last_time));
        let said = self.archiver_status().ok().flatten().and_then(|s| {
            let end = headers.last()?.resume_at();
            let caught_up =
                s.lag_seconds == 0.0 && (s.archived_file.clone(), s.archived_position) == end;
            let updated = humantime::parse_rfc3339(&s.updated).ok()?;
            let secs = updated
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .ok()?
                .as_secs();
            caught_up.then_some(secs)
        });
        last.max(said.unwrap_or(0))
    }

    /// The archive as `binlog status` shows it.
    pub fn status(&self) -> Result<Status> {
        let headers = self.headers()?;
        let mut status = Status {
            segments: headers.len() as u64,
            ..Status::default()
        };
        let mut prev: Option<&SegmentHeader> = None;
        for h in &headers {
            status.stored_bytes += h.stored_bytes;
            status.raw_bytes += h.raw_bytes;
            status.events += h.events;
            status.transactions += h.transactions;
            let why = match (prev, &h.gap_before) {
                (_, Some(why)) => Some(why.clone()),
                (Some(p), None) if !h.continues(p) => Some(format!(
                    "segment {} starts at {}:{} but the one before ends at {}:{}",
                    h.seq,
                    h.file,
                    h.start,
                    p.resume_at().0,
                    p.resume_at().1
                )),
                _ => None,
            };
            if let (Some(p), Some(why)) = (prev, why) {
                status.gaps.push(Gap {
                    after_file: p.file.clone(),
                    after_position: p.end,
                    after_time: p.last_time,
                    resumes_file: h.file.clone(),
                    resumes_position: h.start,
                    resumes_time: h.first_time,
                    reason: why,
                });
            }
            prev = Some(h);
        }
        status.first = headers.first().map(|h| Point {
            time: h.first_time,
            file: h.file.clone(),
            position: h.start,
            gtid: h.first_gtid.clone(),
        });
        status.last = headers.last().map(|h| Point {
            time: h.last_time,
            file: h.file.clone(),
            position: h.end,
            gtid: (!h.gtid_after.is_empty()).then(|| h.gtid_after.clone()),
        });
        status.source = headers.last().map(|h| h.source.clone());
        status.archiver = self.archiver_status()?;
        Ok(status)
    }
}

/// How far a snapshot can be rolled forward.
#[derive(Debug, Clone)]
pub struct Window {
    /// The snapshot.
    pub id: String,
    /// Up to when (seconds since the epoch), or `None` when the archive does not hold
    /// its coordinates.
    pub until: Option<u64>,
    /// The gap that ends the window before the archive's end, if one does.
    pub gap: Option<String>,
}

/// A segment's events, as the source's file holds them.
#[derive(Debug, Clone)]
pub struct SegmentEvents {
    /// The file's format description event.
    pub fde: Vec<u8>,
    /// The segment's events, in order (the description first when the segment starts
    /// the file).
    pub events: Vec<Vec<u8>>,
}

/// A place in the archive.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The event's timestamp, seconds since the epoch.
    pub time: u32,
    /// Binlog file and position.
    pub file: String,
    /// See `file`.
    pub position: u64,
    /// The GTID there, if any.
    pub gtid: Option<String>,
}

/// Where the archive does not continue.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    /// The last archived place before it.
    pub after_file: String,
    /// See `after_file`.
    pub after_position: u64,
    /// See `after_file`.
    pub after_time: u32,
    /// Where archiving resumed.
    pub resumes_file: String,
    /// See `resumes_file`.
    pub resumes_position: u64,
    /// See `resumes_file`.
    pub resumes_time: u32,
    /// Why.
    pub reason: String,
}

/// The archive in numbers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The first and last archived events.
    pub first: Option<Point>,
    /// See `first`.
    pub last: Option<Point>,
    /// Segments, events, transactions, bytes.
    pub segments: u64,
    /// See `segments`.
    pub events: u64,
    /// See `segments`.
    pub transactions: u64,
    /// See `segments`.
    pub raw_bytes: u64,
    /// See `segments`.
    pub stored_bytes: u64,
    /// Holes in the archive.
    pub gaps: Vec<Gap>,
    /// The source of the newest segment.
    pub source: Option<SourceIdentity>,
    /// What the archiver last said.
    pub archiver: Option<ArchiverStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_by_number_and_nothing_else_is_one() {
        assert_eq!(segment_object(42), "binlog/segments/000000000042.seg");
        assert_eq!(seq_of("binlog/segments/000000000042.seg"), Some(42));
        assert_eq!(seq_of("binlog/segments/42.seg"), None);
        assert_eq!(seq_of("binlog/segments/000000000042.tmp"), None);
        assert_eq!(seq_of("data/000000000042.seg"), None);
    }
}
