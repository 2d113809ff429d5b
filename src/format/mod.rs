//! The on-disk format of a dump: the manifest, the row text of data files, compression
//! and file naming. Nothing here knows about connections.

pub mod chunkfile;
pub mod codec;
pub mod definition;
pub mod layout;
pub mod manifest;
pub mod rowtext;
pub mod script;
pub mod validate;

#[cfg(test)]
mod fuzz;

pub use codec::Codec;
pub use manifest::Manifest;
