//! One error type for the library. Every variant names what the user has to
//! look at: a JSON path in the config, a file, a container id.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config is well-formed JSON but a field is unusable.
    #[error("{field}: {reason}")]
    InvalidSpec { field: String, reason: String },

    /// A file could not be read, written, opened or mounted.
    #[error("{context}: {cause}")]
    Io { context: String, cause: io::Error },

    #[error("container id {0:?} is invalid: {1}")]
    InvalidId(String, &'static str),

    #[error("container {0:?} does not exist")]
    NotFound(String),

    #[error("container {0:?} already exists")]
    AlreadyExists(String),

    /// The container is in a state that does not allow the operation.
    #[error("container {id:?} is {status}: {reason}")]
    WrongState {
        id: String,
        status: String,
        reason: String,
    },

    #[error("{kind} hook {path}: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// Container setup failed inside the child; the message comes from there.
    #[error("container init: {0}")]
    Init(String),

    /// Full isolation refused by the kernel where chroot isolation could
    /// still run the container (`--isolation auto` retries): `what` names
    /// the refusal (`a fresh proc mount`, `pivot_root`, ...), `message` is
    /// the whole error.
    #[error("{message}")]
    IsolationRefused { what: String, message: String },

    /// A command-line flag (of `rootcell sandbox`) is unusable: a usage
    /// error, exit code 2.
    #[error("{flag}: {reason}")]
    Usage { flag: String, reason: String },

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn usage(flag: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Usage {
            flag: flag.into(),
            reason: reason.into(),
        }
    }

    pub fn spec(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidSpec {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Attach a human context to an `io::Result`, in the spirit of `anyhow::Context`
/// but producing our typed error.
pub trait IoContext<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context().into(),
            cause: source,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: context().into(),
            cause: e.into(),
        })
    }
}

impl<T> IoContext<T> for std::result::Result<T, pathrs::error::Error> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: context().into(),
            cause: crate::fs::procfs::to_io(e),
        })
    }
}
