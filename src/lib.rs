//! mysnap: consistent, parallel, compressed logical snapshots of MySQL and MariaDB
//! databases, and restores of them.
//!
//! The engine is a library; the `mysnap` binary is a thin command line over it.
//! - [`snapshot`] opens N sessions inside one read view and records its binlog coordinates;
//! - [`catalog`] and [`plan`] read what to dump and split tables into key ranges;
//! - [`dump`] streams ranges through workers into compressed data files and a manifest;
//! - [`restore`] verifies a dump and loads it back;
//! - [`format`] is the on-disk format, independent of any connection.

pub mod accounts;
pub mod catalog;
pub mod connect;
pub mod dump;
pub mod error;
pub mod filter;
pub mod format;
pub mod optionfile;
pub mod plan;
pub mod progress;
pub mod restore;
pub mod snapshot;
pub mod sql;

pub use error::{Error, Result};
