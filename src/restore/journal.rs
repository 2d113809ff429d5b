//! The restore journal: a table on the target, `mysnap.restore_journal`, with one row per
//! data file whose load has committed. The row is written in the same transaction as
//! the file's rows, so that a file is either loaded and recorded, or neither, whatever
//! stops the restore (a killed process, a dropped connection, a restarted server).
//! `--resume` skips the recorded files. The rows of a restore are deleted when it
//! completes, and the table and schema too when nothing else is recorded.

use std::collections::HashSet;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sha2::{Digest, Sha256};

use crate::error::{Result, SqlContext};

/// The schema holding the journal on the target.
pub const SCHEMA: &str = "mysnap";
const TABLE: &str = "`mysnap`.`restore_journal`";
/// The journal item marking that a restore has begun creating objects.
pub const STARTED: &str = "started";

/// One restore's entries in the journal.
#[derive(Debug, Clone)]
pub struct Journal {
    restore_id: String,
    /// The dump's identity (its manifest's sha256), recorded so that `--restart` can find
    /// every interrupted restore of this dump, whatever its selection.
    dump_id: String,
}

impl Journal {
    /// The journal of restoring the manifest of this sha256 with this selection.
    pub fn new(manifest_sha256: &str, selection: &str) -> Self {
        let mut h = Sha256::new();
        h.update(manifest_sha256.as_bytes());
        h.update(selection.as_bytes());
        Journal {
            restore_id: hex::encode(h.finalize()),
            dump_id: manifest_sha256.to_string(),
        }
    }

    /// The item that marks a restore's entries as those of this dump.
    pub fn dump_item(&self) -> String {
        format!("dump:{}", self.dump_id)
    }

    /// The items recorded for this restore; none when the journal does not exist. Reads
    /// only, so that a restore refused later has written nothing.
    pub async fn read(&self, conn: &mut Conn) -> Result<HashSet<String>> {
        if !self.exists(conn).await? {
            return Ok(HashSet::new());
        }
        let items: Vec<String> = conn
            .exec(
                format!("SELECT item FROM {TABLE} WHERE restore_id = ?"),
                (&self.restore_id,),
            )
            .await
            .ctx(|| "reading the restore journal".into())?;
        Ok(items.into_iter().collect())
    }

    /// Creates the journal table if needed.
    pub async fn create(&self, conn: &mut Conn) -> Result<()> {
        let ctx =
            || "creating the restore journal `mysnap`.`restore_journal` on the target".to_string();
        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{SCHEMA}`"))
            .await
            .ctx(ctx)?;
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (restore_id CHAR(64) CHARACTER SET ascii NOT NULL, \
             item VARCHAR(700) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
             done_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
             PRIMARY KEY (restore_id, item)) ENGINE=InnoDB"
        ))
        .await
        .ctx(ctx)
    }

    /// The statement that records `item`, to run inside the transaction that did it.
    pub fn record_sql(&self, item: &str) -> String {
        format!(
            "INSERT INTO {TABLE} (restore_id, item) VALUES ('{}', {})",
            self.restore_id,
            crate::sql::string(item)
        )
    }

    /// The statement that records a load about to start (non-transactional tables, whose
    /// rows stay even when the load does not finish); a second record of it is no error.
    pub fn begin_sql(&self, path: &str) -> String {
        self.record_sql(&begin_item(path))
            .replacen("INSERT INTO", "INSERT IGNORE INTO", 1)
    }

    /// Deletes the record of every interrupted restore of this dump (any selection) and
    /// of this restore. Returns how many loaded files they recorded.
    pub async fn discard(&self, conn: &mut Conn) -> Result<u64> {
        if !self.exists(conn).await? {
            return Ok(0);
        }
        let ctx = || "discarding the restore journal's record".to_string();
        let of_this_dump = format!(
            "(restore_id = ? OR restore_id IN (SELECT restore_id FROM (SELECT restore_id FROM {TABLE} WHERE item = ?) AS d))"
        );
        let files: Option<u64> = conn
            .exec_first(
                format!("SELECT COUNT(*) FROM {TABLE} WHERE item LIKE 'file:%' AND {of_this_dump}"),
                (&self.restore_id, self.dump_item()),
            )
            .await
            .ctx(ctx)?;
        conn.exec_drop(
            format!("DELETE FROM {TABLE} WHERE {of_this_dump}"),
            (&self.restore_id, self.dump_item()),
        )
        .await
        .ctx(ctx)?;
        Ok(files.unwrap_or(0))
    }

    async fn exists(&self, conn: &mut Conn) -> Result<bool> {
        let exists: Option<u64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{SCHEMA}' AND TABLE_NAME = 'restore_journal'"
            ))
            .await
            .ctx(|| "looking for the restore journal".into())?;
        Ok(exists == Some(1))
    }

    /// Records `item` on its own.
    pub async fn record(&self, conn: &mut Conn, item: &str) -> Result<()> {
        conn.query_drop(self.record_sql(item))
            .await
            .ctx(|| format!("recording '{item}' in the restore journal"))
    }

    /// Forgets `items` (a non-transactional table about to be reloaded whole).
    pub async fn forget(&self, conn: &mut Conn, items: &[String]) -> Result<()> {
        for item in items {
            conn.exec_drop(
                format!("DELETE FROM {TABLE} WHERE restore_id = ? AND item = ?"),
                (&self.restore_id, item),
            )
            .await
            .ctx(|| "updating the restore journal".into())?;
        }
        Ok(())
    }

    /// Removes this restore's entries; drops the journal when nothing else is in it.
    pub async fn finish(&self, conn: &mut Conn) -> Result<()> {
        let ctx = || "clearing the restore journal".to_string();
        conn.exec_drop(
            format!("DELETE FROM {TABLE} WHERE restore_id = ?"),
            (&self.restore_id,),
        )
        .await
        .ctx(ctx)?;
        self.tidy(conn).await
    }

    /// Drops the journal (and mysnap's schema) when no restore is recorded in it: what a
    /// restore killed between clearing its entries and dropping the table leaves.
    pub async fn tidy(&self, conn: &mut Conn) -> Result<()> {
        let ctx = || "clearing the restore journal".to_string();
        let left: Option<u64> = match conn
            .query_first(format!("SELECT COUNT(*) FROM {TABLE}"))
            .await
        {
            // No journal at all: nothing to tidy.
            Err(mysql_async::Error::Server(e)) if e.code == 1146 => return Ok(()),
            other => other.ctx(ctx)?,
        };
        if left == Some(0) {
            conn.query_drop(format!("DROP TABLE {TABLE}"))
                .await
                .ctx(ctx)?;
            let others: Option<u64> = conn
                .query_first(format!(
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{SCHEMA}'"
                ))
                .await
                .ctx(ctx)?;
            if others == Some(0) {
                conn.query_drop(format!("DROP DATABASE `{SCHEMA}`"))
                    .await
                    .ctx(ctx)?;
            }
        }
        Ok(())
    }
}

/// The journal item of a data file, loaded.
pub fn file_item(path: &str) -> String {
    format!("file:{path}")
}

/// The journal item of a data file whose load (into a non-transactional table) began.
pub fn begin_item(path: &str) -> String {
    format!("begin:{path}")
}
