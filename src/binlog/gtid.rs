//! GTID positions of both flavors: MariaDB's per-domain `domain-server-seq` list and
//! MySQL's `uuid:intervals` set. The archive records one after every segment, and a
//! restore's `--until-gtid` is compared against them.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

use super::event::Gtid;

/// Where a server's binary log stands in GTID terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum GtidState {
    /// Nothing known yet.
    #[default]
    Unknown,
    /// MariaDB: the last GTID of each domain.
    MariaDb(BTreeMap<u32, (u32, u64)>),
    /// MySQL: the executed set, per source uuid, as inclusive intervals.
    MySql(BTreeMap<String, Vec<(u64, u64)>>),
}

impl GtidState {
    /// Parses a MariaDB position (`0-1-10,1-2-5`) or a MySQL set
    /// (`3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7`); the empty string is `Unknown`.
    pub(crate) fn parse(text: &str) -> Result<GtidState> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(GtidState::Unknown);
        }
        let bad = || {
            Error::Invalid(format!(
                "{text:?} is not a GTID position: expected MariaDB's domain-server-sequence (0-1-1234, several separated by commas) or MySQL's uuid:interval set"
            ))
        };
        if text.contains(':') {
            let mut set: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
            for part in text.split(',') {
                let mut pieces = part.trim().split(':');
                let uuid = pieces.next().ok_or_else(bad)?.to_ascii_lowercase();
                if uuid.len() != 36 || !uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                    return Err(bad());
                }
                let ranges = set.entry(uuid).or_default();
                let mut any = false;
                for iv in pieces {
                    any = true;
                    let (a, b) = match iv.split_once('-') {
                        Some((a, b)) => {
                            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)
                        }
                        None => {
                            let n = iv.parse().map_err(|_| bad())?;
                            (n, n)
                        }
                    };
                    if a == 0 || b < a {
                        return Err(bad());
                    }
                    ranges.push((a, b));
                }
                if !any {
                    return Err(bad());
                }
            }
            for ranges in set.values_mut() {
                normalize(ranges);
            }
            Ok(GtidState::MySql(set))
        } else {
            let mut pos = BTreeMap::new();
            for part in text.split(',') {
                let n: Vec<&str> = part.trim().split('-').collect();
                let [d, s, q] = n[..] else {
                    return Err(bad());
                };
                let (d, s, q) = (
                    d.parse().map_err(|_| bad())?,
                    s.parse().map_err(|_| bad())?,
                    q.parse().map_err(|_| bad())?,
                );
                if pos.insert(d, (s, q)).is_some() {
                    return Err(Error::Invalid(format!(
                        "{text:?} names GTID domain {d} twice"
                    )));
                }
            }
            Ok(GtidState::MariaDb(pos))
        }
    }

    /// Takes one more transaction into account.
    pub(crate) fn add(&mut self, gtid: &Gtid) {
        match gtid {
            Gtid::MariaDb {
                domain,
                server,
                seq,
                ..
            } => {
                if !matches!(self, GtidState::MariaDb(_)) {
                    *self = GtidState::MariaDb(BTreeMap::new());
                }
                if let GtidState::MariaDb(m) = self {
                    m.insert(*domain, (*server, *seq));
                }
            }
            Gtid::MySql { uuid: None, .. } => {}
            Gtid::MySql {
                uuid: Some(uuid),
                gno,
            } => {
                if !matches!(self, GtidState::MySql(_)) {
                    *self = GtidState::MySql(BTreeMap::new());
                }
                if let GtidState::MySql(m) = self {
                    let r = m.entry(uuid.clone()).or_default();
                    r.push((*gno, *gno));
                    normalize(r);
                }
            }
        }
    }

    /// Whether `self` has reached `target`: every domain at or past the target's
    /// sequence (MariaDB), or every transaction of the target's set executed (MySQL).
    #[allow(dead_code)] // for the restore's --until-gtid
    pub(crate) fn reached(&self, target: &GtidState) -> bool {
        match (self, target) {
            (_, GtidState::Unknown) => true,
            (GtidState::MariaDb(have), GtidState::MariaDb(want)) => want
                .iter()
                .all(|(d, (_, seq))| have.get(d).is_some_and(|(_, s)| s >= seq)),
            (GtidState::MySql(have), GtidState::MySql(want)) => want.iter().all(|(u, ranges)| {
                let h = have.get(u).map(Vec::as_slice).unwrap_or_default();
                ranges
                    .iter()
                    .all(|&(a, b)| h.iter().any(|&(x, y)| x <= a && b <= y))
            }),
            _ => false,
        }
    }
}

/// Sorts and merges touching intervals.
fn normalize(ranges: &mut Vec<(u64, u64)>) {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(a, b) in ranges.iter() {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *ranges = out;
}

impl std::fmt::Display for GtidState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GtidState::Unknown => Ok(()),
            GtidState::MariaDb(m) => {
                let parts: Vec<String> =
                    m.iter().map(|(d, (s, q))| format!("{d}-{s}-{q}")).collect();
                f.write_str(&parts.join(","))
            }
            GtidState::MySql(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(u, r)| {
                        let iv: Vec<String> = r
                            .iter()
                            .map(|&(a, b)| {
                                if a == b {
                                    a.to_string()
                                } else {
                                    format!("{a}-{b}")
                                }
                            })
                            .collect();
                        format!("{u}:{}", iv.join(":"))
                    })
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

/// Reads a MySQL Previous_gtids event body (the executed set before a file's first
/// transaction): sid count, then per sid its uuid, interval count and intervals
/// (start, end exclusive).
pub(crate) fn mysql_previous_gtids(body: &[u8]) -> Result<GtidState> {
    let short = || Error::Damaged("binary log: a Previous_gtids event too short".into());
    let u64_at = |at: usize| -> Result<u64> {
        let s = body.get(at..at + 8).ok_or_else(short)?;
        Ok(u64::from_le_bytes(s.try_into().expect("8 bytes")))
    };
    let mut set = BTreeMap::new();
    let sids = u64_at(0)?;
    let mut at = 8;
    for _ in 0..sids {
        let sid = body.get(at..at + 16).ok_or_else(short)?;
        let uuid = super::event::uuid_text(sid);
        let n = u64_at(at + 16)?;
        at += 24;
        let mut ranges = Vec::new();
        for _ in 0..n {
            let (a, b) = (u64_at(at)?, u64_at(at + 8)?);
            if b > a {
                ranges.push((a, b - 1));
            }
            at += 16;
        }
        normalize(&mut ranges);
        set.insert(uuid, ranges);
    }
    Ok(GtidState::MySql(set))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_positions_parse_print_advance_and_compare() {
        let mut p = GtidState::parse("1-2-5, 0-1-10").unwrap();
        assert_eq!(p.to_string(), "0-1-10,1-2-5");
        p.add(&Gtid::MariaDb {
            domain: 0,
            server: 3,
            seq: 11,
            standalone: false,
        });
        assert_eq!(p.to_string(), "0-3-11,1-2-5");
        assert!(p.reached(&GtidState::parse("0-1-11").unwrap()));
        assert!(!p.reached(&GtidState::parse("0-1-12").unwrap()));
        assert!(
            !p.reached(&GtidState::parse("2-1-1").unwrap()),
            "a domain it never saw"
        );
        assert!(p.reached(&GtidState::Unknown));
        for bad in ["0-1", "a-b-c", "0-1-2,0-1-3", "0-1-2-3"] {
            assert!(GtidState::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mysql_sets_parse_merge_and_compare() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let mut s = GtidState::parse(&format!("{u}:1-5:7")).unwrap();
        assert_eq!(s.to_string(), format!("{u}:1-5:7"));
        s.add(&Gtid::MySql {
            uuid: Some(u.into()),
            gno: 6,
        });
        assert_eq!(s.to_string(), format!("{u}:1-7"));
        assert!(s.reached(&GtidState::parse(&format!("{u}:3-7")).unwrap()));
        assert!(!s.reached(&GtidState::parse(&format!("{u}:8")).unwrap()));
        assert!(
            !s.reached(&GtidState::parse("0-1-1").unwrap()),
            "another flavor"
        );
        for bad in [
            format!("{u}:"),
            format!("{u}:5-3"),
            "xyz:1".into(),
            format!("{u}:0"),
        ] {
            assert!(GtidState::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_recorded_previous_gtids_body_reads_as_a_set() {
        // Two sids: one with intervals [1,6) and [7,8), one with [1,3); as MySQL 8.0
        // writes them (sid count, then per sid: uuid, count, start and exclusive end).
        let mut b = 2u64.to_le_bytes().to_vec();
        b.extend_from_slice(&[
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ]);
        b.extend_from_slice(&2u64.to_le_bytes());
        for (a, e) in [(1u64, 6u64), (7, 8)] {
            b.extend_from_slice(&a.to_le_bytes());
            b.extend_from_slice(&e.to_le_bytes());
        }
        b.extend_from_slice(&[0xaa; 16]);
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&3u64.to_le_bytes());
        let s = mysql_previous_gtids(&b).unwrap();
        assert_eq!(
            s.to_string(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa:1-2"
        );
        assert!(mysql_previous_gtids(&b[..30]).is_err());
    }
}
