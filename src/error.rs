//! The library's error type: what went wrong, with the object it concerns. Each message
//! already carries its cause, so the CLI prints one line without walking a chain.

use std::path::Path;

/// Errors of the mysnap engine. Each message names the thing it is about, so that the
/// CLI can print it as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to {target}: {}", driver_message(cause))]
    Connect {
        target: String,
        cause: mysql_async::Error,
    },
    /// A statement failed; `context` says what mysnap was doing.
    #[error("{context}: {}", driver_message(cause))]
    Sql {
        context: String,
        cause: mysql_async::Error,
    },
    /// A file, directory or stored object could not be read or written.
    #[error("{object}: {cause}")]
    Io {
        /// The path, or the name of the object in its store.
        object: String,
        cause: std::io::Error,
    },
    /// The dump is incomplete, damaged or altered (its manifest or its files).
    #[error("{0}")]
    Damaged(String),
    /// The user's options do not make sense together, or name something that does not exist.
    #[error("{0}")]
    Invalid(String),
    /// The server answered something mysnap cannot work with.
    #[error("{0}")]
    Server(String),
    /// The source changed under the dump in a way it cannot read consistently (DDL while
    /// the dump started); running it again can help.
    #[error("{0}")]
    Changed(String),
    /// What a restore stored is not what the dump read (`--checksum`).
    #[error("{0}")]
    Mismatch(String),
    /// The target already holds an object the restore would overwrite.
    #[error("{0}")]
    Conflict(String),
    /// A fault inside mysnap (a thread that panicked or stopped): not the operator's doing.
    #[error("{0} (a fault of mysnap's own; please report it)")]
    Internal(String),
}

/// The driver's message without its repeated "Input/output error:" wrappers, and a
/// dropped connection said as such (the driver says "bytes remaining on stream").
fn driver_message(e: &mysql_async::Error) -> String {
    if connection_lost(e) {
        return "the connection to the server was lost (the server stopped or restarted, the session was killed, or the network failed)".into();
    }
    match e {
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => io.to_string(),
        other => other.to_string(),
    }
}

fn connection_lost(e: &mysql_async::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => {
            matches!(
                io.kind(),
                UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
            ) || io.to_string().contains("bytes remaining on stream")
        }
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => true,
        // ER_CONNECTION_KILLED (MariaDB 1927), ER_SERVER_SHUTDOWN (1053).
        mysql_async::Error::Server(s) => matches!(s.code, 1927 | 1053),
        _ => false,
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            object: path.as_ref().display().to_string(),
            cause: source,
        }
    }

    /// Whether running the same command again can help: the server went away or was not
    /// reachable, a lock wait or deadlock, DDL while the dump started.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Changed(_) => true,
            Error::Connect { cause, .. } => !matches!(cause, mysql_async::Error::Server(_)),
            Error::Sql { cause, .. } => {
                connection_lost(cause) || matches!(self.server_code(), Some(1205 | 1213))
            }
            Error::Io { cause, .. } => matches!(
                cause.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }

    /// A line saying what the operator can do, where the message itself does not.
    pub fn guidance(&self) -> Option<&'static str> {
        match self {
            Error::Connect {
                cause: mysql_async::Error::Server(s),
                ..
            } if s.code == 1045 => Some("check the user and password (flags, MYSQL_PWD, option files: see --print-defaults)"),
            Error::Connect { .. } => Some("check the host, port or socket, and that the server is running (see --print-defaults for what the option files say)"),
            Error::Sql { cause, .. } if connection_lost(cause) => {
                Some("run the command again once the server is back (a restore: with --resume)")
            }
            Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::StorageFull => {
                Some("free some space, or choose another place")
            }
            Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::PermissionDenied => {
                Some("check the permissions of that path for the user mysnap runs as")
            }
            _ => None,
        }
    }

    /// Wraps a driver error with what mysnap was doing.
    pub fn sql(context: impl Into<String>, source: mysql_async::Error) -> Self {
        Error::Sql {
            context: context.into(),
            cause: source,
        }
    }

    /// Whether a session's connection to the server was lost.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Sql { cause, .. } | Error::Connect { cause, .. } => connection_lost(cause),
            _ => false,
        }
    }

    /// The server's error code, when this is a server error.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            Error::Sql {
                cause: mysql_async::Error::Server(e),
                ..
            }
            | Error::Connect {
                cause: mysql_async::Error::Server(e),
                ..
            } => Some(e.code),
            _ => None,
        }
    }
}

/// Adds context to driver results.
pub(crate) trait SqlContext<T> {
    /// Attaches what mysnap was doing when the statement failed.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SqlContext<T> for std::result::Result<T, mysql_async::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sql(context(), e))
    }
}

/// Adds a path to I/O results.
pub(crate) trait IoContext<T> {
    /// Attaches the path the I/O concerned.
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_says_whether_a_retry_helps_and_what_to_do() {
        let lost = Error::sql(
            "reading `d`.`t`",
            mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "bytes remaining on stream",
            ))),
        );
        assert!(lost.is_connection_lost() && lost.retryable());
        assert!(
            lost.to_string()
                .contains("connection to the server was lost"),
            "{lost}"
        );
        assert!(lost.guidance().unwrap().contains("--resume"));
        assert!(Error::Changed("table altered".into()).retryable());
        assert!(!Error::Damaged("sha256 differs".into()).retryable());
        let full = Error::io(
            "/backups/x",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        );
        assert!(full.to_string().starts_with("/backups/x: "), "{full}");
        assert!(full.guidance().unwrap().contains("space"));
        assert!(Error::Internal("a thread panicked".into())
            .to_string()
            .contains("report"));
    }
}
