//! The archive served as a primary: a listener that speaks enough of the server side of
//! the MySQL protocol for a replica's I/O thread (handshake with a one-time password,
//! the queries it asks before it streams, `COM_REGISTER_SLAVE`, `COM_BINLOG_DUMP`) and
//! sends the archived events from the asked position up to the replay's stop point,
//! then heartbeats. The target's own replication applier does the rest: row, statement
//! and mixed formats, temporary tables, `LOAD DATA`, session context, filters and
//! parallel apply are the server's, not a re-implementation of them.

use std::sync::Arc;
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result};

use super::event::{self, kind, FLAG_IN_USE, HEADER_LEN};
use super::{Archive, SegmentHeader};

/// What to serve: segments `headers`, from where the replica asks up to `stop`.
pub(crate) struct Feed {
    pub archive: Arc<Archive>,
    pub headers: Vec<SegmentHeader>,
    pub stop: (String, u64),
    /// The server id the served primary says it has.
    pub server_id: u32,
    /// Rewrite the events' server id to `server_id` (the target has the source's own id,
    /// and a replica skips events of its own id).
    pub rewrite_server_id: bool,
    /// `VERSION()` as the primary answers it.
    pub version: String,
    /// The replica's account on the served primary.
    pub user: String,
    /// Its one-time password.
    pub password: String,
    /// Whether the archived events carry CRC32 checksums.
    pub checksums: bool,
    /// The source's `@@server_uuid` (MySQL), which a MySQL replica asks for.
    pub server_uuid: Option<String>,
    /// Whether the archive's transactions have GTIDs (MySQL's `@@GLOBAL.GTID_MODE`).
    pub gtid_mode: bool,
}

/// A running primary: its port, and the task serving it.
pub(crate) struct Served {
    pub port: u16,
    pub task: tokio::task::JoinHandle<Result<()>>,
}

/// Listens on `address` (port 0: any free one) and serves `feed` to each replica that
/// connects with the right password, one at a time.
pub(crate) async fn serve(address: &str, feed: Feed) -> Result<Served> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| Error::io(format!("listening on {address} for the replay"), e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io(address, e))?
        .port();
    let feed = Arc::new(feed);
    let task = tokio::spawn(async move {
        loop {
            let (socket, peer) = listener
                .accept()
                .await
                .map_err(|e| Error::io("accepting the target's replica connection", e))?;
            let feed = feed.clone();
            tokio::spawn(async move {
                if let Err(e) = Session::new(socket, &feed).run().await {
                    tracing::debug!("replica session from {peer}: {e}");
                }
            });
        }
    });
    Ok(Served { port, task })
}

struct Session<'a> {
    socket: TcpStream,
    seq: u8,
    feed: &'a Feed,
    checksums: bool,
}

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_LONG_FLAG: u32 = 4;
const CLIENT_CONNECT_WITH_DB: u32 = 8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x20000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x200000;

const CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC;

/// `mysql_native_password`: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
pub(crate) fn native_token(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    let h1 = Sha1::digest(password);
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(h2);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

fn lenenc_int(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => out.push(n as u8),
        251..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x10000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    lenenc_int(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn read_lenenc(b: &[u8], at: &mut usize) -> Option<u64> {
    let first = *b.get(*at)?;
    *at += 1;
    let n = match first {
        0..=250 => u64::from(first),
        0xfc => {
            let v = u16::from_le_bytes(b.get(*at..*at + 2)?.try_into().ok()?);
            *at += 2;
            u64::from(v)
        }
        0xfd => {
            let s = b.get(*at..*at + 3)?;
            *at += 3;
            u64::from(s[0]) | u64::from(s[1]) << 8 | u64::from(s[2]) << 16
        }
        0xfe => {
            let v = u64::from_le_bytes(b.get(*at..*at + 8)?.try_into().ok()?);
            *at += 8;
            v
        }
        _ => return None,
    };
    Some(n)
}

/// A replica's handshake response: user and auth token.
pub(crate) fn parse_handshake_response(b: &[u8]) -> Option<(String, Vec<u8>)> {
    let caps = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?);
    let mut at = 32;
    let end = at + b.get(at..)?.iter().position(|&c| c == 0)?;
    let user = String::from_utf8_lossy(&b[at..end]).into_owned();
    at = end + 1;
    let token = if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        let n = read_lenenc(b, &mut at)? as usize;
        let t = b.get(at..at + n)?.to_vec();
        t
    } else if caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = *b.get(at)? as usize;
        b.get(at + 1..at + 1 + n)?.to_vec()
    } else {
        let end = at + b.get(at..)?.iter().position(|&c| c == 0)?;
        b[at..end].to_vec()
    };
    Some((user, token))
}

/// The answer to a replica's query: `None` for an OK, or one row of named columns.
/// What the served primary says about itself when a replica asks.
pub(crate) struct Identity<'a> {
    pub server_id: u32,
    pub version: &'a str,
    pub checksums: bool,
    pub domain: u32,
    pub server_uuid: Option<&'a str>,
    pub gtid_mode: bool,
}

pub(crate) fn answer(query: &str, me: &Identity) -> Option<(Vec<String>, Vec<Option<String>>)> {
    let (feed_server_id, version, checksums, domain) =
        (me.server_id, me.version, me.checksums, me.domain);
    let q = query.trim().trim_end_matches(';').trim();
    let lower = q.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("show variables like ")
        .or_else(|| lower.strip_prefix("show global variables like "))
    {
        let name = rest.trim_matches(|c| c == '\'' || c == '"' || c == ' ');
        let value = match name {
            "server_id" => Some(feed_server_id.to_string()),
            "server_uuid" => me.server_uuid.map(str::to_string),
            _ => None,
        };
        return Some((
            vec!["Variable_name".into(), "Value".into()],
            vec![Some(name.to_string()), value],
        ));
    }
    let expr = lower.strip_prefix("select ")?;
    let value = match expr.trim() {
        "unix_timestamp()" => Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string(),
        ),
        "@@global.server_id" | "@@server_id" => Some(feed_server_id.to_string()),
        "@master_binlog_checksum" | "@source_binlog_checksum" => {
            Some(if checksums { "CRC32" } else { "NONE" }.to_string())
        }
        "@@global.gtid_domain_id" | "@@gtid_domain_id" => Some(domain.to_string()),
        "version()" | "@@version" => Some(version.to_string()),
        "@@global.binlog_checksum" => Some(if checksums { "CRC32" } else { "NONE" }.to_string()),
        // MySQL replicas: the source's GTID mode and identity.
        "@@global.gtid_mode" => Some(if me.gtid_mode { "ON" } else { "OFF" }.to_string()),
        "@@global.server_uuid" | "@@server_uuid" => me.server_uuid.map(str::to_string),
        _ => None,
    };
    Some((vec![q["select ".len()..].trim().to_string()], vec![value]))
}

impl<'a> Session<'a> {
    fn new(socket: TcpStream, feed: &'a Feed) -> Self {
        Session {
            socket,
            seq: 0,
            feed,
            checksums: feed.checksums,
        }
    }

    async fn write_packet(&mut self, payload: &[u8]) -> std::io::Result<()> {
        // Payloads of 16 MiB and more go in pieces, the last one shorter than that.
        let mut rest = payload;
        loop {
            let n = rest.len().min(0xff_ffff);
            let mut head = (n as u32).to_le_bytes();
            head[3] = self.seq;
            self.seq = self.seq.wrapping_add(1);
            self.socket.write_all(&head).await?;
            self.socket.write_all(&rest[..n]).await?;
            rest = &rest[n..];
            if n < 0xff_ffff {
                return Ok(());
            }
        }
    }

    async fn read_packet(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut head = [0u8; 4];
            self.socket.read_exact(&mut head).await?;
            let n = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
            self.seq = head[3].wrapping_add(1);
            let at = out.len();
            out.resize(at + n, 0);
            self.socket.read_exact(&mut out[at..]).await?;
            if n < 0xff_ffff {
                return Ok(out);
            }
        }
    }

    async fn ok(&mut self) -> std::io::Result<()> {
        self.write_packet(&[0, 0, 0, 2, 0, 0, 0]).await
    }

    async fn err(&mut self, code: u16, message: &str) -> std::io::Result<()> {
        let mut p = vec![0xff];
        p.extend_from_slice(&code.to_le_bytes());
        p.extend_from_slice(b"#HY000");
        p.extend_from_slice(message.as_bytes());
        self.write_packet(&p).await
    }

    async fn eof(&mut self) -> std::io::Result<()> {
        self.write_packet(&[0xfe, 0, 0, 2, 0]).await
    }

    async fn result_set(
        &mut self,
        columns: &[String],
        row: &[Option<String>],
    ) -> std::io::Result<()> {
        let mut count = Vec::new();
        lenenc_int(&mut count, columns.len() as u64);
        self.write_packet(&count).await?;
        for c in columns {
            let mut d = Vec::new();
            for s in [&b"def"[..], b"", b"", b"", c.as_bytes(), c.as_bytes()] {
                lenenc_str(&mut d, s);
            }
            d.push(0x0c);
            d.extend_from_slice(&33u16.to_le_bytes());
            d.extend_from_slice(&1024u32.to_le_bytes());
            d.push(0xfd); // VAR_STRING
            d.extend_from_slice(&0u16.to_le_bytes());
            d.push(0);
            d.extend_from_slice(&[0, 0]);
            self.write_packet(&d).await?;
        }
        self.eof().await?;
        let mut r = Vec::new();
        for v in row {
            match v {
                Some(v) => lenenc_str(&mut r, v.as_bytes()),
                None => r.push(0xfb),
            }
        }
        self.write_packet(&r).await?;
        self.eof().await
    }

    async fn run(mut self) -> Result<()> {
        let io = |e: std::io::Error| Error::io("the replay's replica connection", e);
        // Handshake v10 with a fresh scramble.
        let scramble: [u8; 20] = random_printable()?;
        let mut hs = vec![10u8];
        hs.extend_from_slice(self.feed.version.as_bytes());
        hs.push(0);
        hs.extend_from_slice(&1u32.to_le_bytes());
        hs.extend_from_slice(&scramble[..8]);
        hs.push(0);
        hs.extend_from_slice(&(CAPABILITIES as u16).to_le_bytes());
        hs.push(33);
        hs.extend_from_slice(&2u16.to_le_bytes());
        hs.extend_from_slice(&((CAPABILITIES >> 16) as u16).to_le_bytes());
        hs.push(21);
        hs.extend_from_slice(&[0; 10]);
        hs.extend_from_slice(&scramble[8..]);
        hs.push(0);
        hs.extend_from_slice(b"mysql_native_password\0");
        self.seq = 0;
        self.write_packet(&hs).await.map_err(io)?;
        let response = self.read_packet().await.map_err(io)?;
        let Some((user, token)) = parse_handshake_response(&response) else {
            self.err(1043, "bad handshake").await.map_err(io)?;
            return Err(Error::Server(
                "a bad handshake on the replay's listener".into(),
            ));
        };
        let want = native_token(self.feed.password.as_bytes(), &scramble);
        if user != self.feed.user || token != want {
            self.err(1045, "access denied").await.map_err(io)?;
            return Err(Error::Server(format!(
                "the replay's listener refused a login as {user:?}"
            )));
        }
        self.ok().await.map_err(io)?;
        let domain = self.domain();
        loop {
            let packet = match self.read_packet().await {
                Ok(p) => p,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(io(e)),
            };
            let Some((&command, body)) = packet.split_first() else {
                continue;
            };
            match command {
                // COM_QUIT
                0x01 => return Ok(()),
                // COM_QUERY
                0x03 => {
                    let q = String::from_utf8_lossy(body).into_owned();
                    tracing::debug!("replica asks: {q}");
                    let me = Identity {
                        server_id: self.feed.server_id,
                        version: &self.feed.version,
                        checksums: self.checksums,
                        domain,
                        server_uuid: self.feed.server_uuid.as_deref(),
                        gtid_mode: self.feed.gtid_mode,
                    };
                    match answer(&q, &me) {
                        Some((cols, row)) => self.result_set(&cols, &row).await.map_err(io)?,
                        None => self.ok().await.map_err(io)?,
                    }
                }
                // COM_PING, COM_REGISTER_SLAVE
                0x0e | 0x15 => self.ok().await.map_err(io)?,
                // COM_BINLOG_DUMP
                0x12 => {
                    if body.len() < 10 {
                        self.err(1236, "bad COM_BINLOG_DUMP").await.map_err(io)?;
                        continue;
                    }
                    let pos = u64::from(u32::from_le_bytes(body[0..4].try_into().expect("4")));
                    let file = String::from_utf8_lossy(&body[10..])
                        .trim_end_matches('\0')
                        .to_string();
                    return self.stream(file, pos).await;
                }
                _ => self.err(1047, "unknown command").await.map_err(io)?,
            }
        }
    }

    /// The GTID domain of the archive's newest segment (what the replica asks for).
    fn domain(&self) -> u32 {
        self.feed
            .headers
            .last()
            .and_then(|h| h.gtid_after.split('-').next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Builds an event the served primary makes up (rotate, heartbeat).
    fn artificial(&self, kind: u8, log_pos: u32, body: &[u8]) -> Vec<u8> {
        let size = (HEADER_LEN + body.len() + if self.checksums { 4 } else { 0 }) as u32;
        let mut e = Vec::with_capacity(size as usize);
        e.extend_from_slice(&0u32.to_le_bytes());
        e.push(kind);
        e.extend_from_slice(&self.feed.server_id.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&log_pos.to_le_bytes());
        e.extend_from_slice(&0x20u16.to_le_bytes());
        e.extend_from_slice(body);
        if self.checksums {
            let crc = crc32fast::hash(&e);
            e.extend_from_slice(&crc.to_le_bytes());
        }
        e
    }

    async fn send_event(&mut self, e: &[u8]) -> std::io::Result<()> {
        let mut p = Vec::with_capacity(e.len() + 1);
        p.push(0);
        p.extend_from_slice(e);
        self.write_packet(&p).await
    }

    /// An archived event as sent: the in-use flag of a description cleared, the server
    /// id rewritten when asked, the checksum made again where anything changed.
    fn prepare(&self, e: &[u8], zero_log_pos: bool) -> Vec<u8> {
        let mut e = e.to_vec();
        let mut changed = false;
        if e[4] == kind::FORMAT_DESCRIPTION {
            e[17] &= !(FLAG_IN_USE as u8);
            changed = true;
            if zero_log_pos {
                e[13..17].copy_from_slice(&0u32.to_le_bytes());
            }
        }
        if self.feed.rewrite_server_id {
            e[5..9].copy_from_slice(&self.feed.server_id.to_le_bytes());
            changed = true;
        }
        if changed && self.checksums {
            let n = e.len();
            let crc = crc32fast::hash(&e[..n - 4]);
            e[n - 4..].copy_from_slice(&crc.to_le_bytes());
        }
        e
    }

    async fn stream(mut self, file: String, pos: u64) -> Result<()> {
        let io = |e: std::io::Error| Error::io("the replay's replica connection", e);
        let feed = self.feed;
        // Where the asked position is in the archive.
        let Some(first) = feed
            .headers
            .iter()
            .position(|h| h.file == file && h.start <= pos && pos <= h.end)
        else {
            self.err(
                1236,
                &format!("{file}:{pos} is not in the archive being replayed"),
            )
            .await
            .map_err(io)?;
            return Ok(());
        };
        let mut rotate = (pos).to_le_bytes().to_vec();
        rotate.extend_from_slice(file.as_bytes());
        let r = self.artificial(kind::ROTATE, 0, &rotate);
        self.send_event(&r).await.map_err(io)?;
        let mut current = (file.clone(), pos);
        let mut described = false;
        'segments: for (i, h) in feed.headers.iter().enumerate().skip(first) {
            let segment = feed.archive.events(h)?;
            if i > first && h.start == 4 && h.file != current.0 {
                // A new file the source went on to without a rotate event (it stopped).
                let mut body = 4u64.to_le_bytes().to_vec();
                body.extend_from_slice(h.file.as_bytes());
                let r = self.artificial(kind::ROTATE, 0, &body);
                self.send_event(&r).await.map_err(io)?;
                described = false;
            }
            if !described && h.start != 4 {
                // Mid-file: the file's description first, marked as not in the file.
                let fde = self.prepare(&segment.fde, true);
                self.send_event(&fde).await.map_err(io)?;
            }
            described = true;
            for e in &segment.events {
                let header = event::Header::read(e)?;
                if h.file == file && header.start() < pos && i == first {
                    continue;
                }
                let out = self.prepare(e, false);
                self.send_event(&out).await.map_err(io)?;
                current = (h.file.clone(), u64::from(header.log_pos));
                if header.kind == kind::ROTATE {
                    let (next, p) = event::rotate(e, self.checksums)?;
                    current = (next, p);
                    described = false;
                }
                if current == feed.stop {
                    break 'segments;
                }
            }
        }
        // Nothing more to send: heartbeats keep the replica from taking the silence for a
        // lost primary, until it disconnects.
        loop {
            let hb = self.artificial(kind::HEARTBEAT, current.1 as u32, current.0.as_bytes());
            if self.send_event(&hb).await.is_err() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Random printable bytes (no NUL: some clients read the scramble as a C string).
pub(crate) fn random_printable<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Internal(format!("no random bytes from the system: {e}")))?;
    for x in b.iter_mut() {
        *x = b'0' + (*x % 75);
        if *x == b'\\' || *x == b'\'' {
            *x = b'x';
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_password_token_is_what_a_client_computes() {
        // A client's token XORed back with SHA1(scramble + SHA1(SHA1(pw))) gives SHA1(pw),
        // whose SHA1 is the stored hash.
        let scramble = b"abcdefghijklmnopqrst";
        let t = native_token(b"secret", scramble);
        let h2 = Sha1::digest(Sha1::digest(b"secret"));
        let mut h = Sha1::new();
        h.update(scramble);
        h.update(h2);
        let x: Vec<u8> = t
            .iter()
            .zip(h.finalize().iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(Sha1::digest(&x).as_slice(), h2.as_slice());
        assert_ne!(native_token(b"other", scramble), t);
    }

    #[test]
    fn a_recorded_handshake_response_gives_user_and_token() {
        // As a MariaDB replica sends it: caps, max packet, charset, 23 zeros, user,
        // length-prefixed token, plugin name.
        let mut b = (CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH)
            .to_le_bytes()
            .to_vec();
        b.extend_from_slice(&(1u32 << 24).to_le_bytes());
        b.push(33);
        b.extend_from_slice(&[0; 23]);
        b.extend_from_slice(b"mysnap\0");
        b.push(20);
        b.extend_from_slice(&[7; 20]);
        b.extend_from_slice(b"mysql_native_password\0");
        assert_eq!(
            parse_handshake_response(&b),
            Some(("mysnap".into(), vec![7; 20]))
        );
        assert_eq!(parse_handshake_response(&b[..30]), None);
    }

    #[test]
    fn the_replica_s_questions_get_the_served_primary_s_answers() {
        let me = Identity {
            server_id: 77,
            version: "10.11.19-MariaDB-log",
            checksums: true,
            domain: 0,
            server_uuid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562"),
            gtid_mode: true,
        };
        let a = |q: &str| answer(q, &me);
        assert_eq!(
            a("SELECT @@GLOBAL.SERVER_ID").unwrap().1,
            vec![Some("77".into())]
        );
        assert_eq!(
            a("SELECT @master_binlog_checksum").unwrap().1,
            vec![Some("CRC32".into())]
        );
        assert_eq!(
            a("SHOW VARIABLES LIKE 'SERVER_ID'").unwrap().1,
            vec![Some("server_id".into()), Some("77".into())]
        );
        assert_eq!(
            a("SELECT @@GLOBAL.gtid_domain_id").unwrap().1,
            vec![Some("0".into())]
        );
        assert!(a("SET @master_heartbeat_period= 1000000000").is_none());
        // What a MySQL 8 replica asks as its I/O thread sets up.
        assert_eq!(
            a("SELECT @@GLOBAL.GTID_MODE").unwrap().1,
            vec![Some("ON".into())]
        );
        assert_eq!(
            a("SELECT @@GLOBAL.SERVER_UUID").unwrap().1,
            vec![Some("3e11fa47-71ca-11e1-9e33-c80aa9429562".into())]
        );
        assert_eq!(
            a("SELECT @source_binlog_checksum").unwrap().1,
            vec![Some("CRC32".into())]
        );
        assert!(a("SET @replica_uuid= 'cd111826-0a1e-11e8-98c3-88787342351a'").is_none());
        assert!(a("SELECT UNIX_TIMESTAMP()").unwrap().1[0]
            .as_ref()
            .unwrap()
            .parse::<u64>()
            .is_ok());
    }
}
