//! The manifest: a versioned, self-describing JSON description of a dump, written last
//! and atomically, so that a dump directory with a readable manifest is a finished dump.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::MANIFEST;
use crate::connect::ServerInfo;
use crate::error::{Error, IoContext, Result};

/// Identifies the file format; readers refuse anything else.
pub const FORMAT_NAME: &str = "mysnap-dump";
/// The version of the format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Everything a restore needs to know, and everything an operator wants to see.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] at the time of writing.
    pub format_version: u32,
    /// The program that wrote the dump.
    pub tool: Tool,
    /// UTC time the snapshot was taken, RFC 3339.
    pub snapshot_time: String,
    /// UTC time the dump finished, RFC 3339.
    pub finished_time: String,
    /// Wall-clock duration of the dump in seconds.
    pub duration_seconds: f64,
    /// The source server.
    pub server: ServerInfo,
    /// How the snapshot was made consistent.
    pub consistency: Consistency,
    /// Binary log coordinates of the snapshot (fields null when there is no binary log).
    pub binlog: BinlogCoordinates,
    /// Whether point-in-time recovery from this dump is possible, and if not, why.
    pub point_in_time: PointInTime,
    /// The options the dump ran with (never the password).
    pub options: DumpOptionsRecord,
    /// The session settings data files were written under and must be loaded under.
    pub session: SessionSettings,
    /// Every dumped database with its objects.
    pub databases: Vec<Database>,
    /// Views of all databases, in an order in which each can be created.
    pub view_order: Vec<ObjectName>,
    /// Totals over all data files.
    pub totals: Totals,
    /// Accounts (users and roles) with their grants, in a whole-instance dump or with
    /// `--users`; restored only with `restore --users`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<Account>,
}

/// A user or role as the server shows it: the statement that creates it (with its
/// password hash, authentication plugin, TLS requirements, resource limits and lock
/// state) and the statements that grant it privileges, roles and its default role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// User or role name.
    pub user: String,
    /// Host part; `None` for a MariaDB role (which has none).
    pub host: Option<String>,
    /// Whether it is a role.
    pub role: bool,
    /// `SHOW CREATE USER` (or `CREATE ROLE` for a MariaDB role).
    pub create_sql: String,
    /// Its own lines of `SHOW GRANTS FOR`: `GRANT ... TO` it, and `SET DEFAULT ROLE ... FOR` it.
    pub grants: Vec<String>,
}

impl Account {
    /// `` `user`@`host` `` (or `` `role` ``), quoted for statements and messages alike.
    pub fn name(&self) -> String {
        let user = crate::sql::ident(&self.user);
        match &self.host {
            Some(h) => format!("{user}@{}", crate::sql::ident(h)),
            None => user,
        }
    }
}

/// The writing program.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    /// "mysnap".
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// How the snapshot was obtained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consistency {
    /// The method used, e.g. `mariadb-consistent-snapshot` (no lock),
    /// `backup-stage-block-commit`, `flush-tables-with-read-lock`.
    pub method: String,
    /// How long a global lock (blocking writes) was held, in milliseconds; 0 without one.
    pub global_lock_ms: f64,
    /// Whether `LOCK INSTANCE FOR BACKUP` (MySQL) blocked DDL for the whole dump.
    pub backup_lock: bool,
    /// How many attempts the lock-free method took (0 when not tried).
    pub attempts: u32,
    /// Sessions sharing the snapshot.
    pub sessions: u32,
    /// Whether non-transactional tables (MyISAM, Aria...) are consistent with the rest.
    pub nontransactional_consistent: bool,
    /// Non-transactional tables in the dump, as `db.table`.
    pub nontransactional_tables: Vec<String>,
    /// Plain-language notes an operator should read.
    pub notes: Vec<String>,
}

/// Binary-log coordinates of the snapshot itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BinlogCoordinates {
    /// Binary log file name.
    pub file: Option<String>,
    /// Position in that file.
    pub position: Option<u64>,
    /// GTID position (MariaDB `gtid_binlog_pos` form) or executed GTID set (MySQL).
    pub gtid: Option<String>,
}

/// Whether binlog replay from this dump can reach a later point in time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointInTime {
    /// True when coordinates were recorded.
    pub possible: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// The options of the dump, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DumpOptionsRecord {
    /// `user@host:port`, never a password.
    pub source: String,
    /// Databases dumped.
    pub databases: Vec<String>,
    /// Whether the dump took every database of the server (`--all-databases`, or no
    /// `--database`), so that a restore knows it is a whole instance.
    #[serde(default)]
    pub all_databases: bool,
    /// `--include` and `--exclude` patterns, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// See `include`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Worker sessions.
    pub threads: usize,
    /// Compression codec.
    pub compression: super::Codec,
    /// Compression level.
    pub compression_level: i32,
    /// Target raw size of one data file in bytes.
    pub chunk_bytes: u64,
}

/// Session settings for reading and loading data files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionSettings {
    /// `time_zone` (always `+00:00`: TIMESTAMP values are in UTC).
    pub time_zone: String,
    /// Character set of the data files (`binary`: each column's own bytes).
    pub character_set: String,
}

/// A database and everything in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Database {
    /// Name.
    pub name: String,
    /// Default character set.
    pub charset: String,
    /// Default collation.
    pub collation: String,
    /// `SHOW CREATE DATABASE`.
    pub create_sql: String,
    /// Base tables, with their data.
    pub tables: Vec<Table>,
    /// Sequences (MariaDB).
    pub sequences: Vec<Sequence>,
    /// Views (created in the order of `Manifest::view_order`).
    pub views: Vec<StoredObject>,
    /// Procedures and functions.
    pub routines: Vec<StoredObject>,
    /// Triggers, in their action order.
    pub triggers: Vec<StoredObject>,
    /// Events.
    pub events: Vec<StoredObject>,
}

/// A base table, its definition and its data files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    /// Name.
    pub name: String,
    /// Storage engine.
    pub engine: String,
    /// Whether the engine is transactional (read inside the snapshot).
    pub transactional: bool,
    /// `SHOW CREATE TABLE`, including partitions, comments and `AUTO_INCREMENT`.
    pub create_sql: String,
    /// The columns in data files, in file order.
    pub columns: Vec<DataColumn>,
    /// Whether data files hold the full history of a system-versioned table.
    pub history: bool,
    /// Rows over all data files.
    pub rows: u64,
    /// Raw (uncompressed) bytes over all data files.
    pub raw_bytes: u64,
    /// The server's estimate of the table's index size, for the restore's ETA.
    #[serde(default)]
    pub index_bytes: u64,
    /// The key the table was split on, if any.
    pub chunk_key: Vec<String>,
    /// Data files, in key order.
    pub files: Vec<DataFile>,
}

/// A column as it appears in data files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataColumn {
    /// Column name.
    pub name: String,
    /// How the value is written and must be read back.
    pub encoding: ColumnEncoding,
}

/// How a column's value is written in data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnEncoding {
    /// The server's own text (or bytes) for the value, unconverted.
    Raw,
    /// BIT as an unsigned decimal number (`col+0`).
    BitNumber,
    /// FLOAT widened to DOUBLE so that its text round-trips exactly.
    FloatAsDouble,
    /// MySQL's native JSON, as utf8mb4 text.
    JsonText,
    /// A value the server prints as text but stores in binary (MariaDB UUID, INET4,
    /// INET6): loaded as a character string, not as raw bytes.
    TypedText,
    /// ENUM as its index (`col+0`): exact whatever the labels' bytes, and index 0 keeps the
    /// invalid-value entry (`''`) apart from a real `''` member.
    EnumIndex,
}

/// One data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path relative to the dump directory.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Uncompressed bytes.
    pub raw_bytes: u64,
    /// Bytes on disk.
    pub stored_bytes: u64,
    /// sha256 of the bytes on disk, lower-case hex.
    pub sha256: String,
    /// Warnings loading this file must raise: one per ENUM invalid-value entry (index 0),
    /// which the server stores only with a "data truncated" warning.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expected_warnings: u64,
    /// Digest of its rows (see [`super::digest`]): order-independent, so that a table's
    /// is the sum of its files'. Absent in dumps taken before digests were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_digest: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A sequence (MariaDB) and the value it resumes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sequence {
    /// Name.
    pub name: String,
    /// `SHOW CREATE SEQUENCE`.
    pub create_sql: String,
    /// `next_not_cached_value` at the snapshot.
    pub next_value: String,
}

/// A view, routine, trigger or event with the session context it must be created in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredObject {
    /// `VIEW`, `PROCEDURE`, `FUNCTION`, `TRIGGER`, `EVENT`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// The statement that creates it, with DEFINER and SQL SECURITY.
    pub create_sql: String,
    /// `sql_mode` it was created under (views: none recorded).
    pub sql_mode: Option<String>,
    /// `character_set_client` at creation.
    pub character_set_client: String,
    /// `collation_connection` at creation.
    pub collation_connection: String,
    /// The database collation at creation (routines, triggers, events).
    pub database_collation: Option<String>,
    /// The time zone at creation (events).
    pub time_zone: Option<String>,
    /// The table a trigger belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

/// A database object named by its database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectName {
    /// Database.
    pub database: String,
    /// Object.
    pub name: String,
}

/// Totals over the dump.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Tables.
    pub tables: u64,
    /// Rows.
    pub rows: u64,
    /// Uncompressed bytes.
    pub raw_bytes: u64,
    /// Bytes on disk.
    pub stored_bytes: u64,
    /// Data files.
    pub files: u64,
}

impl Database {
    /// Its views, routines, triggers and events, to change them.
    pub fn stored_objects_mut(&mut self) -> impl Iterator<Item = &mut StoredObject> {
        self.views
            .iter_mut()
            .chain(self.routines.iter_mut())
            .chain(self.triggers.iter_mut())
            .chain(self.events.iter_mut())
    }

    /// Its views, routines, triggers and events, in that order.
    pub fn stored_objects(&self) -> impl Iterator<Item = &StoredObject> {
        self.views
            .iter()
            .chain(&self.routines)
            .chain(&self.triggers)
            .chain(&self.events)
    }
}

impl Manifest {
    /// Every data file with its table, in manifest order.
    pub fn data_files(&self) -> impl Iterator<Item = (&Database, &Table, &DataFile)> {
        self.databases.iter().flat_map(|db| {
            db.tables
                .iter()
                .flat_map(move |t| t.files.iter().map(move |f| (db, t, f)))
        })
    }

    /// The manifest as stored: pretty JSON and a newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Internal(format!("cannot encode the manifest: {e}")))?;
        json.push(b'\n');
        Ok(json)
    }

    /// Reads and checks the manifest of a dump directory.
    pub fn read(dir: &Path) -> Result<Self> {
        Ok(Self::read_with_digest(dir)?.0)
    }

    /// Reads and checks the manifest of a dump directory, with the sha256 of its exact
    /// bytes (read once: what is checked is what is hashed).
    pub fn read_with_digest(dir: &Path) -> Result<(Self, String)> {
        if !dir.is_dir() {
            return Err(Error::Damaged(format!(
                "{}: no such dump directory",
                dir.display()
            )));
        }
        let path = dir.join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Damaged(format!(
                    "{}: no {MANIFEST}; this is not a finished mysnap dump (an interrupted dump has none)",
                    dir.display()
                )))
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let manifest =
            Self::parse(&bytes).map_err(|e| Error::Damaged(format!("{}: {e}", path.display())))?;
        Ok((manifest, digest(&bytes)))
    }

    /// Parses manifest bytes, refusing other formats and newer versions.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("damaged manifest (not valid JSON: {e})"))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(format!(
                "not a mysnap manifest (no \"format\": \"{FORMAT_NAME}\")"
            ));
        }
        let version = value
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if version != u64::from(FORMAT_VERSION) {
            return Err(format!(
                "manifest format version {version} is not supported by this mysnap (reads version {FORMAT_VERSION})"
            ));
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| format!("damaged manifest: {e}"))?;
        super::validate::manifest(&manifest)
            .map_err(|e| format!("damaged or altered manifest: {e}"))?;
        Ok(manifest)
    }
}

/// The sha256 of a manifest's bytes, lower-case hex: what `dump` and `show` print, so that
/// an operator can keep it apart from the dump and `restore --manifest-sha256` can check it.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// fsyncs a directory so that a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
