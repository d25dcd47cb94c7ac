//! Operating the embedded default for years: `backup` (a consistent copy taken while
//! the server runs), `backup --verify` (re-checking one without the server), `restore`
//! (rebuilding an empty data directory from one), the start-up check that keeps the
//! data directory private, and `migrate status`.
//!
//! A backup directory has the shape of a data directory, so restoring is copying back:
//!
//! ```text
//! DIR/donghanh.db        the database, as one consistent snapshot (SQLite VACUUM INTO)
//! DIR/blobs/objects/…    the photo objects the snapshot's rows name (copied, never moved)
//! DIR/secrets/*.key      the JWT signing key and the UIC HMAC key in effect (0600)
//! DIR/manifest.json      counts, digests and versions; written last
//! ```
//!
//! The manifest is written last and renamed into place, so a backup cut off half way
//! has none and `--verify` calls it incomplete; it never looks whole.

pub mod backup;
pub mod data_dir;
mod files;
pub mod manifest;
pub mod move_data;
pub mod restore;
pub mod schema;
mod sqlite;
pub mod verify;

use std::path::{Path, PathBuf};

use crate::storage::BlobError;

/// The database file in a backup.
pub const DATABASE_FILE: &str = "donghanh.db";
/// The blob store's root in a backup.
pub const BLOBS_DIR: &str = "blobs";
/// The manifest in a backup; its presence is what makes a backup whole.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Faults of the operator commands. `Refused` and `Damaged` are the operator's to act
/// on (exit status 2); the others are faults of the machine (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The command will not run on what it was given; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// Checks failed; each problem is one line.
    #[error("{what}: {} problem(s)", problems.len())]
    Damaged { what: String, problems: Vec<String> },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A database could not be opened or read.
    #[error("database {}: {source}", path.display())]
    Database {
        path: PathBuf,
        source: sea_orm::sqlx::Error,
    },
    /// The migrations could not be read.
    #[error("migrations: {0}")]
    Migrations(#[from] sea_orm::DbErr),
    /// The blob store failed.
    #[error("{0}")]
    Blob(#[from] BlobError),
    /// A manifest could not be written.
    #[error("manifest: {0}")]
    Manifest(#[from] serde_json::Error),
}

impl OpsError {
    /// The process exit status for this fault.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::Refused(_) | OpsError::Damaged { .. } => 2,
            _ => 1,
        }
    }

    /// The problems to list, one a line, before the summary.
    pub fn problems(&self) -> &[String] {
        match self {
            OpsError::Damaged { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// Attaches a path to an I/O fault.
pub(crate) trait IoAt<T> {
    fn at(self, path: &Path) -> Result<T, OpsError>;
}

impl<T> IoAt<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T, OpsError> {
        self.map_err(|source| OpsError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
