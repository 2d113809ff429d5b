//! File names inside a dump directory.

/// The manifest's name; its presence marks a finished dump.
pub const MANIFEST: &str = "manifest.json";
/// The directory holding data files.
pub const DATA_DIR: &str = "data";
/// Suffix of files still being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Creates a directory (and missing parents) that only its owner can read: a dump holds
/// every row of the source. The mode is set exactly, whatever the umask.
pub fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// Creates (or truncates) a file only its owner can read or write, whatever the umask.
pub fn create_private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Opens a dump's data file for reading. Its name was checked to be a plain file name in
/// `data/` (`validate::data_file_path`); here the file itself must be a regular file, not
/// a link planted in its place that would lead out of the dump.
pub fn open_data_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other("is a symbolic link; a dump's data files are plain files")
            } else {
                e
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(
            "is not a regular file; a dump's data files are plain files",
        ));
    }
    Ok(file)
}

/// A file-name-safe form of an identifier: ASCII letters, digits, `_` and `-` kept, every
/// other byte as `%XX`, cut to 60 characters. Uniqueness comes from the table number the
/// caller adds, not from this form (`Tab` and `tab` differ only in case).
pub fn safe_name(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if out.len() >= 60 {
            break;
        }
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `data/<db>.<table>-<table number>.<range>.<part>.tsv<codec suffix>`: a table's files
/// sort in key order.
pub fn data_file(
    db: &str,
    table: &str,
    table_no: usize,
    range: usize,
    part: usize,
    ext: &str,
) -> String {
    format!(
        "{DATA_DIR}/{}.{}-{table_no:04}.{range:05}.{part:04}.tsv{ext}",
        safe_name(db),
        safe_name(table)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_collide_as_files_get_distinct_paths() {
        assert_eq!(safe_name("a/b"), "a%2Fb");
        assert_eq!(safe_name("a_b"), "a_b");
        assert_eq!(safe_name("données"), "donn%C3%A9es");
        assert_ne!(
            data_file("d", "Tab", 1, 0, 0, ".gz"),
            data_file("d", "tab", 2, 0, 0, ".gz")
        );
        assert!(safe_name(&"x".repeat(64)).len() <= 60);
    }
}
