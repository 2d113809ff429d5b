//! Tables and data files named by their position in the (selected, renamed) manifest:
//! the keys of the restore's maps, sets and work queue.

use crate::format::manifest::{DataFile, Database, Table};
use crate::format::Manifest;

/// A table: its database's index in the manifest, and its index in that database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableKey {
    /// Index in `Manifest::databases`.
    pub db: usize,
    /// Index in that database's `tables`.
    pub table: usize,
}

impl TableKey {
    /// The key of table `table` of database `db`.
    pub fn new(db: usize, table: usize) -> Self {
        TableKey { db, table }
    }

    /// The table's database and the table.
    pub fn of(self, manifest: &Manifest) -> (&Database, &Table) {
        let db = &manifest.databases[self.db];
        (db, &db.tables[self.table])
    }

    /// Every table of `manifest` with its key and database, in manifest order.
    pub fn all(manifest: &Manifest) -> impl Iterator<Item = (TableKey, &Database, &Table)> {
        manifest.databases.iter().enumerate().flat_map(|(d, db)| {
            db.tables
                .iter()
                .enumerate()
                .map(move |(t, table)| (TableKey::new(d, t), db, table))
        })
    }
}

/// A data file: its table, and its index in that table's `files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    /// The table the file holds rows of.
    pub table: TableKey,
    /// Index in the table's `files`.
    pub file: usize,
}

impl FileKey {
    /// The file's database, table and file.
    pub fn of(self, manifest: &Manifest) -> (&Database, &Table, &DataFile) {
        let (db, table) = self.table.of(manifest);
        (db, table, &table.files[self.file])
    }
}
