//! `manifest.json`: what a backup holds, so it can be checked without the server.
//! Written last (to a temporary name, synced, then renamed), so its presence means the
//! rest was written whole.
//!
//! ```json
//! {
//!   "format": "donghanh-backup/1",
//!   "tool_version": "0.1.0",
//!   "created_at": "2026-12-20T03:04:05Z",
//!   "finished_at": "2026-12-20T03:04:09Z",
//!   "schema_version": "m20261202_000008_console_sessions",
//!   "database": { "path": "donghanh.db", "sha256": "…", "size": 1234 },
//!   "tables": { "submissions": 42, … },
//!   "objects": [ { "key": "submissions/…/…", "sha256": "…", "size": 5678, "content_type": "image/jpeg" } ],
//!   "keys": [ { "path": "secrets/uic_hmac.key", "sha256": "…", "size": 44 } ]
//! }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::files::{sync_dir, write_private};
use super::{IoAt, OpsError, MANIFEST_FILE};

/// The format this version writes and reads.
pub const FORMAT: &str = "donghanh-backup/1";

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The `donghanh` version that wrote it.
    pub tool_version: String,
    /// When the database snapshot was taken: every record committed before is in it.
    pub created_at: DateTime<Utc>,
    /// When the backup was complete.
    pub finished_at: DateTime<Utc>,
    /// The latest migration applied to the snapshot.
    pub schema_version: String,
    /// The database file.
    pub database: FileEntry,
    /// Rows per table in the snapshot.
    pub tables: BTreeMap<String, u64>,
    /// Every photo object the snapshot's rows name, by key.
    pub objects: Vec<ObjectEntry>,
    /// The key files.
    pub keys: Vec<FileEntry>,
}

/// A file of the backup, by its path relative to the backup directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// A blob object of the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectEntry {
    pub key: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
}

impl Manifest {
    /// Total rows over all tables.
    pub fn rows(&self) -> u64 {
        self.tables.values().sum()
    }

    /// Total bytes of the objects.
    pub fn object_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }

    /// Writes the manifest into `dir` as its last step: a temporary name, synced,
    /// renamed into place, the directory synced.
    pub fn write_last(&self, dir: &Path) -> Result<(), OpsError> {
        let text = serde_json::to_vec_pretty(self)?;
        let tmp = dir.join(format!("{MANIFEST_FILE}.partial"));
        write_private(&tmp, &text)?;
        let path = dir.join(MANIFEST_FILE);
        std::fs::rename(&tmp, &path).at(&path)?;
        sync_dir(dir)
    }
}
