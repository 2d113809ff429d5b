//! Binary-log events as raw bytes: the 19-byte header, and the few bodies the archive
//! needs to read (format description, rotate, GTID and GTID list of both flavors, query,
//! XID). Everything else is kept as received and never parsed, so that event types a
//! parser does not know (MariaDB's 160-171, MySQL's newer ones) pass through unchanged.

use crate::error::{Error, Result};

/// Bytes of the common header: timestamp, type, server id, size, next position, flags.
pub(crate) const HEADER_LEN: usize = 19;
/// The four bytes that open a binlog file.
pub(crate) const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// Event types the archive acts on (numbers from both servers' `log_event.h`).
pub(crate) mod kind {
    pub const QUERY: u8 = 2;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const HEARTBEAT: u8 = 27;
    /// MySQL: a GTID, and the one written when GTIDs are off.
    pub const MYSQL_GTID: u8 = 33;
    pub const MYSQL_ANONYMOUS_GTID: u8 = 34;
    pub const MYSQL_PREVIOUS_GTIDS: u8 = 35;
    /// Both: the end of an XA transaction's first phase.
    pub const XA_PREPARE: u8 = 38;
    /// MariaDB.
    pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
}

/// Set on a file's format description while the server writes the file.
pub(crate) const FLAG_IN_USE: u16 = 0x1;
/// Set on events the server made up for the stream (a fake rotate), not in any file.
const FLAG_ARTIFICIAL: u16 = 0x20;

/// MariaDB GTID event flags.
const MARIADB_FL_STANDALONE: u8 = 1;
const MARIADB_FL_GROUP_COMMIT_ID: u8 = 2;

/// The common header of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub timestamp: u32,
    pub kind: u8,
    pub server_id: u32,
    pub size: u32,
    /// Position just after this event in its file (0 for events made up for the stream).
    pub log_pos: u32,
    pub flags: u16,
}

impl Header {
    /// Reads the header of a whole event.
    pub(crate) fn read(event: &[u8]) -> Result<Header> {
        if event.len() < HEADER_LEN {
            return Err(damaged(format!(
                "an event of {} bytes, shorter than its header",
                event.len()
            )));
        }
        let h = Header {
            timestamp: u32_at(event, 0),
            kind: event[4],
            server_id: u32_at(event, 5),
            size: u32_at(event, 9),
            log_pos: u32_at(event, 13),
            flags: u16::from_le_bytes([event[17], event[18]]),
        };
        if h.size as usize != event.len() {
            return Err(damaged(format!(
                "an event of type {} says it has {} bytes but has {}",
                h.kind,
                h.size,
                event.len()
            )));
        }
        Ok(h)
    }

    /// Made up by the server for this stream (not in its file).
    pub(crate) fn artificial(&self) -> bool {
        self.flags & FLAG_ARTIFICIAL != 0 || self.log_pos == 0
    }

    /// Where the event starts in its file.
    pub(crate) fn start(&self) -> u64 {
        u64::from(self.log_pos).saturating_sub(u64::from(self.size))
    }
}

fn damaged(what: String) -> Error {
    Error::Damaged(format!("binary log: {what}"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Whether events after this format description carry a CRC32 (MariaDB and MySQL both
/// end the description with the algorithm byte and its own checksum).
pub(crate) fn fde_has_checksum(event: &[u8]) -> bool {
    // The algorithm byte sits before the 4-byte checksum; 1 is CRC32, 0 off.
    event.len() >= HEADER_LEN + 5 && event[event.len() - 5] == 1
}

/// Checks an event's CRC32 when the stream has them.
pub(crate) fn check_crc(event: &[u8], checksums: bool) -> Result<()> {
    if !checksums || event.len() < HEADER_LEN + 4 {
        return Ok(());
    }
    let (body, tail) = event.split_at(event.len() - 4);
    let want = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let got = crc32fast::hash(body);
    // A file's format description carries an in-use flag the server clears when it
    // closes the file, and its checksum is taken without it.
    let in_use_cleared = || {
        let mut b = body.to_vec();
        b[17] &= !FLAG_IN_USE as u8;
        crc32fast::hash(&b)
    };
    if want != got && !(event[4] == kind::FORMAT_DESCRIPTION && want == in_use_cleared()) {
        let h = Header::read(event)?;
        return Err(damaged(format!(
            "event of type {} ending at position {} fails its checksum (read {want:08x}, computed {got:08x})",
            h.kind, h.log_pos
        )));
    }
    Ok(())
}

/// The body of an event, without header and (when present) checksum.
pub(crate) fn body(event: &[u8], checksums: bool) -> &[u8] {
    let end = if checksums && event.len() >= HEADER_LEN + 4 {
        event.len() - 4
    } else {
        event.len()
    };
    &event[HEADER_LEN.min(end)..end]
}

/// A rotate event's next file and position.
pub(crate) fn rotate(event: &[u8], checksums: bool) -> Result<(String, u64)> {
    let b = body(event, checksums);
    if b.len() < 8 {
        return Err(damaged("a rotate event too short".into()));
    }
    let name = std::str::from_utf8(&b[8..])
        .map_err(|_| damaged("a rotate event whose file name is not UTF-8".into()))?;
    Ok((name.to_string(), u64_at(b, 0)))
}

/// One transaction's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gtid {
    /// MariaDB `domain-server-seq`; `standalone` when no COMMIT or XID follows (DDL).
    MariaDb {
        domain: u32,
        server: u32,
        seq: u64,
        standalone: bool,
    },
    /// MySQL `uuid:gno` (`None` for an anonymous transaction).
    MySql { uuid: Option<String>, gno: u64 },
}

impl std::fmt::Display for Gtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gtid::MariaDb {
                domain,
                server,
                seq,
                ..
            } => write!(f, "{domain}-{server}-{seq}"),
            Gtid::MySql { uuid: Some(u), gno } => write!(f, "{u}:{gno}"),
            Gtid::MySql { uuid: None, gno } => write!(f, "ANONYMOUS:{gno}"),
        }
    }
}

/// Reads a MariaDB GTID event (type 162).
pub(crate) fn mariadb_gtid(event: &[u8], checksums: bool) -> Result<Gtid> {
    let h = Header::read(event)?;
    let b = body(event, checksums);
    if b.len() < 13 {
        return Err(damaged("a GTID event too short".into()));
    }
    let flags = b[12];
    if flags & MARIADB_FL_GROUP_COMMIT_ID != 0 && b.len() < 21 {
        return Err(damaged("a GTID event too short for its commit id".into()));
    }
    Ok(Gtid::MariaDb {
        seq: u64_at(b, 0),
        domain: u32_at(b, 8),
        server: h.server_id,
        standalone: flags & MARIADB_FL_STANDALONE != 0,
    })
}

/// A 16-byte server uuid as MySQL writes it (8-4-4-4-12 hex digits).
pub(crate) fn uuid_text(sid: &[u8]) -> String {
    let x = hex::encode(sid);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Reads a MySQL GTID event (type 33, or 34 for anonymous).
pub(crate) fn mysql_gtid(event: &[u8], checksums: bool) -> Result<Gtid> {
    let h = Header::read(event)?;
    let b = body(event, checksums);
    if b.len() < 25 {
        return Err(damaged("a GTID event too short".into()));
    }
    let sid = &b[1..17];
    let uuid = (h.kind == kind::MYSQL_GTID).then(|| uuid_text(sid));
    Ok(Gtid::MySql {
        uuid,
        gno: u64_at(b, 17),
    })
}

/// A MariaDB GTID list event (type 163): the binlog state at the start of a file.
pub(crate) fn mariadb_gtid_list(event: &[u8], checksums: bool) -> Result<Vec<(u32, u32, u64)>> {
    let b = body(event, checksums);
    if b.len() < 4 {
        return Err(damaged("a GTID list event too short".into()));
    }
    let count = (u32_at(b, 0) & 0x0fff_ffff) as usize;
    if b.len() < 4 + count * 16 {
        return Err(damaged(format!(
            "a GTID list event of {count} entries too short"
        )));
    }
    Ok((0..count)
        .map(|i| {
            let at = 4 + i * 16;
            (u32_at(b, at), u32_at(b, at + 4), u64_at(b, at + 8))
        })
        .collect())
}

/// A query event's default database and statement text (as bytes: the statement is in
/// the session's character set).
pub(crate) fn query(event: &[u8], checksums: bool) -> Result<(Vec<u8>, Vec<u8>)> {
    let b = body(event, checksums);
    // Post-header: thread id 4, exec time 4, db length 1, error code 2, status vars length 2.
    if b.len() < 13 {
        return Err(damaged("a query event too short".into()));
    }
    let db_len = b[8] as usize;
    let vars_len = u16::from_le_bytes([b[11], b[12]]) as usize;
    let db_at = 13 + vars_len;
    if b.len() < db_at + db_len + 1 {
        return Err(damaged(
            "a query event shorter than its database name".into(),
        ));
    }
    let db = b[db_at..db_at + db_len].to_vec();
    let text = b[db_at + db_len + 1..].to_vec();
    Ok((db, text))
}

/// How an event moves a transaction along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Begins a transaction (a GTID event).
    Begin,
    /// Inside one.
    Inside,
    /// Ends the transaction it belongs to.
    End,
    /// Outside any transaction (rotate, format description, GTID list, checkpoint...).
    Outside,
}

/// Follows transaction boundaries through a stream of events of either flavor.
#[derive(Debug, Default)]
pub(crate) struct Boundaries {
    /// Inside a group; `Some(true)` when its first event closes it (MariaDB standalone,
    /// or MySQL until a BEGIN says otherwise).
    open: Option<bool>,
    /// Events seen since the group began.
    inside: u32,
    /// A MySQL group: its first event decides whether it is standalone.
    mysql: bool,
}

impl Boundaries {
    /// Whether the stream is between transactions.
    pub(crate) fn between(&self) -> bool {
        self.open.is_none()
    }

    /// Classifies the next event.
    pub(crate) fn step(&mut self, event: &[u8], checksums: bool) -> Result<Step> {
        let h = Header::read(event)?;
        match h.kind {
            kind::MARIADB_GTID => {
                let Gtid::MariaDb { standalone, .. } = mariadb_gtid(event, checksums)? else {
                    unreachable!("a MariaDB GTID")
                };
                self.open = Some(standalone);
                self.inside = 0;
                self.mysql = false;
                return Ok(Step::Begin);
            }
            kind::MYSQL_GTID | kind::MYSQL_ANONYMOUS_GTID => {
                self.open = Some(true);
                self.inside = 0;
                self.mysql = true;
                return Ok(Step::Begin);
            }
            _ => {}
        }
        let Some(standalone) = self.open else {
            return Ok(Step::Outside);
        };
        self.inside += 1;
        let ends = match h.kind {
            kind::XID | kind::XA_PREPARE => true,
            kind::QUERY => {
                let (_, text) = query(event, checksums)?;
                let t = text.trim_ascii();
                if self.mysql && self.inside == 1 && t.eq_ignore_ascii_case(b"BEGIN") {
                    self.open = Some(false);
                    false
                } else {
                    standalone
                        || t.eq_ignore_ascii_case(b"COMMIT")
                        || t.eq_ignore_ascii_case(b"ROLLBACK")
                        || (t.len() >= 6 && t[..6].eq_ignore_ascii_case(b"XA END"))
                }
            }
            // An annotation or table map opens the statement that follows; the first
            // event of a standalone group that is not a statement does not end it.
            kind::MARIADB_ANNOTATE_ROWS => false,
            _ => standalone && !self.mysql,
        };
        if ends {
            self.open = None;
            Ok(Step::End)
        } else {
            Ok(Step::Inside)
        }
    }
}

/// Builds an event from its parts (tests, and the stream served to a replica).
#[cfg(test)]
pub(crate) fn build(
    kind: u8,
    server_id: u32,
    timestamp: u32,
    log_pos: u32,
    body: &[u8],
) -> Vec<u8> {
    let size = (HEADER_LEN + body.len() + 4) as u32;
    let mut e = Vec::with_capacity(size as usize);
    e.extend_from_slice(&timestamp.to_le_bytes());
    e.push(kind);
    e.extend_from_slice(&server_id.to_le_bytes());
    e.extend_from_slice(&size.to_le_bytes());
    e.extend_from_slice(&log_pos.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(body);
    let crc = crc32fast::hash(&e);
    e.extend_from_slice(&crc.to_le_bytes());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_event(text: &str) -> Vec<u8> {
        let mut b = vec![0u8; 13];
        b[8] = 1; // db length
        b.extend_from_slice(b"d\0");
        b.extend_from_slice(text.as_bytes());
        build(kind::QUERY, 1, 100, 500, &b)
    }

    fn mariadb_gtid_event(seq: u64, domain: u32, flags: u8) -> Vec<u8> {
        let mut b = seq.to_le_bytes().to_vec();
        b.extend_from_slice(&domain.to_le_bytes());
        b.push(flags);
        build(kind::MARIADB_GTID, 7, 100, 400, &b)
    }

    #[test]
    fn headers_checksums_and_bodies_are_read_from_raw_bytes() {
        let e = query_event("COMMIT");
        let h = Header::read(&e).unwrap();
        assert_eq!(
            (h.kind, h.server_id, h.log_pos, h.size as usize),
            (2, 1, 500, e.len())
        );
        assert_eq!(h.start(), 500 - e.len() as u64);
        check_crc(&e, true).unwrap();
        let mut bad = e.clone();
        bad[25] ^= 1;
        assert!(check_crc(&bad, true)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        assert_eq!(
            query(&e, true).unwrap(),
            (b"d".to_vec(), b"COMMIT".to_vec())
        );
        assert!(Header::read(&e[..10]).is_err());
        assert!(Header::read(&e[..e.len() - 1]).is_err(), "size disagrees");
        let g = mariadb_gtid(&mariadb_gtid_event(42, 3, 0), true).unwrap();
        assert_eq!(g.to_string(), "3-7-42");
        let mut rot = 4u64.to_le_bytes().to_vec();
        rot.extend_from_slice(b"bin.000002");
        let r = build(kind::ROTATE, 1, 0, 0, &rot);
        assert_eq!(rotate(&r, true).unwrap(), ("bin.000002".into(), 4));
        assert!(Header::read(&r).unwrap().artificial());
        let mut list = 2u32.to_le_bytes().to_vec();
        for (d, s, n) in [(0u32, 1u32, 10u64), (1, 2, 5)] {
            list.extend_from_slice(&d.to_le_bytes());
            list.extend_from_slice(&s.to_le_bytes());
            list.extend_from_slice(&n.to_le_bytes());
        }
        let l = build(kind::MARIADB_GTID_LIST, 1, 0, 300, &list);
        assert_eq!(
            mariadb_gtid_list(&l, true).unwrap(),
            vec![(0, 1, 10), (1, 2, 5)]
        );
    }

    #[test]
    fn a_mysql_gtid_reads_as_uuid_and_number() {
        let mut b = vec![1u8];
        b.extend_from_slice(&[
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ]);
        b.extend_from_slice(&23u64.to_le_bytes());
        let e = build(kind::MYSQL_GTID, 1, 0, 200, &b);
        assert_eq!(
            mysql_gtid(&e, true).unwrap().to_string(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"
        );
    }

    #[test]
    fn transactions_end_where_each_flavor_ends_them() {
        let xid = build(kind::XID, 1, 0, 600, &7u64.to_le_bytes());
        let rows = build(30, 1, 0, 550, &[0; 10]);
        // MariaDB: a transaction ends at its XID; a standalone DDL at its statement.
        let mut b = Boundaries::default();
        assert!(b.between());
        assert_eq!(
            b.step(&mariadb_gtid_event(1, 0, 0), true).unwrap(),
            Step::Begin
        );
        assert_eq!(b.step(&rows, true).unwrap(), Step::Inside);
        assert!(!b.between());
        assert_eq!(b.step(&xid, true).unwrap(), Step::End);
        assert!(b.between());
        assert_eq!(
            b.step(&mariadb_gtid_event(2, 0, MARIADB_FL_STANDALONE), true)
                .unwrap(),
            Step::Begin
        );
        assert_eq!(
            b.step(&query_event("CREATE TABLE t (a INT)"), true)
                .unwrap(),
            Step::End
        );
        // A non-transactional table's statement ends with COMMIT.
        b.step(&mariadb_gtid_event(3, 0, 0), true).unwrap();
        assert_eq!(
            b.step(&query_event("INSERT INTO m VALUES (1)"), true)
                .unwrap(),
            Step::Inside
        );
        assert_eq!(b.step(&query_event("COMMIT"), true).unwrap(), Step::End);
        assert_eq!(b.step(&query_event("FLUSH"), true).unwrap(), Step::Outside);
        // MySQL: BEGIN opens a transaction, otherwise the statement stands alone.
        let mut g = vec![1u8];
        g.extend_from_slice(&[1; 16]);
        g.extend_from_slice(&9u64.to_le_bytes());
        let gtid = build(kind::MYSQL_GTID, 1, 0, 200, &g);
        let mut m = Boundaries::default();
        m.step(&gtid, true).unwrap();
        assert_eq!(m.step(&query_event("BEGIN"), true).unwrap(), Step::Inside);
        assert_eq!(m.step(&rows, true).unwrap(), Step::Inside);
        assert_eq!(m.step(&xid, true).unwrap(), Step::End);
        m.step(&gtid, true).unwrap();
        assert_eq!(
            m.step(&query_event("DROP TABLE t"), true).unwrap(),
            Step::End
        );
    }
}
