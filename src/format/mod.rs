//! The on-disk format of a dump: the manifest, the row text of data files, compression
//! and file naming. Nothing here knows about connections.

pub(crate) mod chunkfile;
pub(crate) mod codec;
pub(crate) mod definition;
pub(crate) mod digest;
pub(crate) mod layout;
pub mod manifest;
pub(crate) mod rowtext;
pub(crate) mod script;
pub(crate) mod validate;

#[cfg(test)]
mod fuzz;

pub use codec::Codec;
pub use manifest::Manifest;
pub use script::schema_sql;
