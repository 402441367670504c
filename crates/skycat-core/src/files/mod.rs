//! Catalog files as tables: the Parquet / Arrow IPC side of the `skycat_files` foreign-data
//! wrapper and of `skycat.write_parquet`.
//!
//! - [`paths`]: expanding a table's `files` glob under the server's `root`, refusing anything
//!   that would leave it (`..`, absolute patterns, symlinks), and hive-style partition values.
//! - [`prune`]: deciding from min/max/null-count statistics whether a file or row group can
//!   hold a row matching the pushed-down comparisons.
//! - [`reader`]: opening a file, its schema, per-row-group statistics, and a streaming reader of
//!   the projected columns of the selected row groups.
//! - [`writer`]: a Parquet writer (zstd, statistics) that writes to a temporary name and renames
//!   on success, so a failed export never leaves a half-written file under the final name.
//!
//! The arrow and parquet crates are re-exported so the extension crate uses the same versions.

pub mod paths;
pub mod prune;
pub mod reader;
pub mod types;
pub mod writer;

pub use arrow;
pub use parquet;

use std::fmt;

/// What went wrong with a file or a path, always naming it.
#[derive(Debug, Clone, PartialEq)]
pub enum FilesError {
    /// A `files` glob or `root` that is not acceptable (syntax, `..`, absolute).
    InvalidPattern(String),
    /// A matched path that resolves outside the server's root (through a symlink).
    OutsideRoot { path: String },
    /// The file could not be opened or read at the operating-system level.
    Io { path: String, message: String, not_found: bool },
    /// The file is not a readable Parquet / Arrow IPC file (truncated, corrupt, wrong magic).
    Corrupt { path: String, message: String },
    /// The file's schema does not fit the table (missing column, type a column cannot hold).
    Schema { path: String, message: String },
}

impl fmt::Display for FilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilesError::InvalidPattern(m) => write!(f, "{m}"),
            FilesError::OutsideRoot { path } => {
                write!(f, "file \"{path}\" resolves outside the server's root")
            }
            FilesError::Io { path, message, .. } => write!(f, "could not read file \"{path}\": {message}"),
            FilesError::Corrupt { path, message } => {
                write!(f, "file \"{path}\" is not a valid Parquet/Arrow file: {message}")
            }
            FilesError::Schema { path, message } => write!(f, "file \"{path}\": {message}"),
        }
    }
}

impl std::error::Error for FilesError {}

pub type FilesResult<T> = Result<T, FilesError>;

pub(crate) fn io_error(path: &std::path::Path, e: &std::io::Error) -> FilesError {
    FilesError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
        not_found: e.kind() == std::io::ErrorKind::NotFound,
    }
}
