//! The rows a file's load stored and the warnings it raised, checked against what the
//! dump recorded for the file, whichever way the rows were sent.

use std::path::Path;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{Error, Result, SqlContext};
use crate::format::manifest::DataFile;

/// Rows stored and warnings raised while loading one file (over one or many statements),
/// with a few warnings to show.
pub(super) struct Tally {
    /// The table loaded, `db`.`t`.
    table: String,
    rows: u64,
    warnings: u64,
    /// Rows skipped because their key already existed on the target (warning 1062).
    duplicates: u64,
    samples: Vec<String>,
}

impl Tally {
    /// A tally of loading into `table`.
    pub(super) fn new(table: String) -> Self {
        Tally {
            table,
            rows: 0,
            warnings: 0,
            duplicates: 0,
            samples: Vec::new(),
        }
    }

    /// Counts the statement just run. Fails at once on a warning other than an ENUM
    /// invalid-value entry (1265, which the server raises by design), or on more warnings
    /// than the dump counted: a warning means a value did not go in exactly.
    pub(super) async fn record(
        &mut self,
        conn: &mut Conn,
        path: &Path,
        file: &DataFile,
    ) -> Result<()> {
        self.rows += conn.affected_rows();
        let count = u64::from(conn.get_warnings());
        if count == 0 {
            return Ok(());
        }
        self.warnings += count;
        let mut warnings: Vec<(String, u32, String)> = conn
            .query("SHOW WARNINGS")
            .await
            .ctx(|| "reading load warnings".into())?;
        self.duplicates += warnings.iter().filter(|w| w.1 == 1062).count() as u64;
        // Unexpected codes first, so that the message shows them.
        warnings.sort_by_key(|w| w.1 == 1265);
        let unexpected = warnings.first().is_some_and(|w| w.1 != 1265);
        if unexpected {
            self.samples.clear();
        }
        let room = 3usize.saturating_sub(self.samples.len());
        self.samples.extend(
            warnings
                .into_iter()
                .take(room)
                .map(|w| format!("{} {}: {}", w.0, w.1, redact_values(&w.2))),
        );
        if unexpected || self.warnings > file.expected_warnings {
            return Err(self.changed_values(path, file));
        }
        Ok(())
    }

    /// The file's totals must be what the dump recorded: exactly its expected warnings
    /// and its rows. Returns the rows stored.
    pub(super) fn finish(&self, path: &Path, file: &DataFile) -> Result<u64> {
        if self.warnings != file.expected_warnings {
            return Err(self.changed_values(path, file));
        }
        if self.rows != file.rows {
            return Err(Error::Server(format!(
                "loading {} stored {} rows, the manifest says {}",
                path.display(),
                self.rows,
                file.rows
            )));
        }
        Ok(self.rows)
    }

    fn changed_values(&self, path: &Path, file: &DataFile) -> Error {
        if self.duplicates > 0 {
            return Error::Conflict(format!(
                "loading {} into {}: {} row(s) have a key that already exists in the table on the target, so they were not loaded; --existing=append only adds rows whose keys are new (remove the clashing rows, or restore into an empty table with --existing=drop)",
                path.display(),
                self.table,
                self.duplicates
            ));
        }
        Error::Server(format!(
            "loading {} into {} changed values ({} warnings, {} expected: {}); the target's definition or settings differ from the source",
            path.display(),
            self.table,
            self.warnings,
            file.expected_warnings,
            self.samples.join("; ")
        ))
    }
}

/// A server message without the data it quotes: "Incorrect integer value: '...' for
/// column" and "Duplicate entry '...' for key" carry a row's content, which an error
/// message must not show (a data file may hold anything, even a file's content).
fn redact_values(message: &str) -> String {
    let mut out = message.to_string();
    for opener in ["value: '", "entry '"] {
        if let Some(start) = out.find(opener).map(|i| i + opener.len()) {
            let end = out[start..]
                .rfind("' for ")
                .map_or(out.len(), |i| start + i);
            out.replace_range(start..end, "...");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_do_not_quote_row_content() {
        assert_eq!(
            redact_values("Incorrect integer value: 'root:x:0:0' for column `d`.`t`.`id` at row 1"),
            "Incorrect integer value: '...' for column `d`.`t`.`id` at row 1"
        );
        assert_eq!(
            redact_values("Duplicate entry 'secret' for key 'PRIMARY'"),
            "Duplicate entry '...' for key 'PRIMARY'"
        );
        assert_eq!(
            redact_values("Data truncated for column 'c' at row 3"),
            "Data truncated for column 'c' at row 3"
        );
    }
}
