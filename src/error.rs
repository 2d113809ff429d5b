//! The library's error type: what went wrong, with the object it concerns. Each message
//! already carries its cause, so the CLI prints one line without walking a chain.

use std::path::PathBuf;

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
    /// A file or directory could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The dump directory is not a complete, intact mysnap dump.
    #[error("{0}")]
    Dump(String),
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
    /// The target already holds an object the restore would overwrite.
    #[error("{0}")]
    Conflict(String),
    /// The operation was interrupted (Ctrl-C or a signal).
    #[error("interrupted")]
    Interrupted,
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
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
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
