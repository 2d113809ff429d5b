//! mysnap: consistent, parallel, compressed logical snapshots of MySQL and MariaDB
//! databases, and restores of them.
//!
//! The engine is a library; the `mysnap` binary is a thin command line over it. Its
//! public surface:
//! - [`dump::run`] takes a consistent dump ([`dump::DumpOptions`]) into a directory;
//! - [`restore::prepare`], [`restore::run`] and [`restore::dry_run`] check and load one
//!   ([`restore::RestoreOptions`]); [`restore::verify_dump`] checks one with no server;
//! - [`format::Manifest`] is what a dump holds, and [`format::schema_sql`] its schema as SQL;
//! - [`connect`] turns connection flags, environment and [`optionfile`] settings into a
//!   [`connect::Connector`];
//! - [`progress::Progress`] is how the engine reports; [`Error`] how it fails.
//!
//! Inside, one module per stage: `snapshot` opens N sessions in one read view, `catalog`
//! and `plan` read and split the tables, `dump`'s workers write the data files, `format`
//! is the on-disk format with no connection, `restore`'s steps load it back.

pub(crate) mod accounts;
pub mod binlog;
pub(crate) mod catalog;
pub mod connect;
pub mod dump;
pub mod error;
pub mod filter;
pub mod format;
pub mod optionfile;
pub(crate) mod plan;
pub mod progress;
pub mod repo;
pub mod restore;
pub(crate) mod snapshot;
pub(crate) mod sql;
pub mod store;

pub use error::{Error, Result};
