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
}

impl Journal {
    /// The journal of restoring this manifest (its exact bytes) with this selection.
    pub fn new(manifest_bytes: &[u8], selection: &str) -> Self {
        let mut h = Sha256::new();
        h.update(manifest_bytes);
        h.update(selection.as_bytes());
        Journal {
            restore_id: hex::encode(h.finalize()),
        }
    }

    /// The items recorded for this restore; none when the journal does not exist. Reads
    /// only, so that a restore refused later has written nothing.
    pub async fn read(&self, conn: &mut Conn) -> Result<HashSet<String>> {
        let exists: Option<u64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{SCHEMA}' AND TABLE_NAME = 'restore_journal'"
            ))
            .await
            .ctx(|| "looking for the restore journal".into())?;
        if exists != Some(1) {
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
        let left: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM {TABLE}"))
            .await
            .ctx(ctx)?;
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

/// The journal item of a data file.
pub fn file_item(path: &str) -> String {
    format!("file:{path}")
}
