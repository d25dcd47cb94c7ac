//! `donghanh backup --verify DIR`: re-checks a backup without the server. The manifest
//! must be there (a backup cut off half way has none), the database must open, pass
//! SQLite's integrity check and hold the rows the manifest counts, every photo row must
//! name an object the manifest lists, and every object and key file must be present
//! with its digest. Each problem is named; nothing is changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use futures::StreamExt;

use super::files::{digest_file, mode_of, Digest256};
use super::manifest::{FileEntry, Manifest, ObjectEntry, FORMAT};
use super::{sqlite, OpsError, BLOBS_DIR, DATABASE_FILE, MANIFEST_FILE};
use crate::config::UIC_KEY_FILE;
use crate::storage::{BlobStore, DiskStore};

/// Objects hashed at once.
const HASH_CONCURRENCY: usize = 4;

/// A backup that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    /// Findings that do not make the backup wrong (a key file others may read).
    pub warnings: Vec<String>,
}

/// Checks the backup in `dir`; `Err(OpsError::Damaged)` lists every problem found.
pub async fn verify(dir: &Path) -> Result<Verified, OpsError> {
    let damaged = |problems: Vec<String>| OpsError::Damaged {
        what: format!("backup {} failed verification", dir.display()),
        problems,
    };
    let manifest = read_manifest(dir).map_err(|p| damaged(vec![p]))?;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();

    if manifest.database.path != DATABASE_FILE {
        problems.push(format!(
            "the manifest names the database {:?}; a backup's is {DATABASE_FILE:?}",
            manifest.database.path
        ));
    } else {
        check_database(dir, &manifest, &mut problems).await?;
    }
    check_objects(dir, &manifest.objects, &mut problems).await?;
    check_keys(dir, &manifest.keys, &mut problems, &mut warnings);

    if problems.is_empty() {
        Ok(Verified { manifest, warnings })
    } else {
        Err(damaged(problems))
    }
}

fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(if dir.is_dir() {
                format!(
                    "{MANIFEST_FILE} is missing: the backup is incomplete (cut off before it \
                     finished) or {} is not a backup; make a new one",
                    dir.display()
                )
            } else {
                format!("{} is not a directory", dir.display())
            });
        }
        Err(e) => return Err(format!("{MANIFEST_FILE} cannot be read: {e}")),
    };
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| format!("{MANIFEST_FILE} is not a backup manifest: {e}"))?;
    if manifest.format != FORMAT {
        return Err(format!(
            "{MANIFEST_FILE} has format {:?}; this donghanh reads {FORMAT:?}",
            manifest.format
        ));
    }
    Ok(manifest)
}

fn file_problem(name: &str, want: &FileEntry, got: std::io::Result<Digest256>) -> Option<String> {
    match got {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!("{name} is missing")),
        Err(e) => Some(format!("{name} cannot be read: {e}")),
        Ok(d) if d.sha256 != want.sha256 || d.size != want.size => Some(format!(
            "{name} differs from the manifest: SHA-256 {} ({} bytes), the manifest says {} ({} bytes)",
            d.sha256, d.size, want.sha256, want.size
        )),
        Ok(_) => None,
    }
}

async fn check_database(
    dir: &Path,
    manifest: &Manifest,
    problems: &mut Vec<String>,
) -> Result<(), OpsError> {
    let path = dir.join(DATABASE_FILE);
    let got = digest_blocking(&path).await?;
    let missing = matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    problems.extend(file_problem(DATABASE_FILE, &manifest.database, got));
    if missing {
        return Ok(());
    }
    // Even when the digest differs, say what differs: rows are what an operator lost.
    let mut conn = match sqlite::open_read_only(&path).await {
        Ok(conn) => conn,
        Err(e) => {
            problems.push(format!("{DATABASE_FILE} does not open: {e}"));
            return Ok(());
        }
    };
    let checked = async {
        if let Some(fault) = sqlite::integrity_fault(&mut conn, &path).await? {
            problems.push(format!(
                "{DATABASE_FILE} fails SQLite's integrity check: {fault}"
            ));
        }
        let counts = sqlite::table_counts(&mut conn, &path).await?;
        compare_counts(&counts, &manifest.tables, problems);
        match sqlite::schema_version(&mut conn, &path).await? {
            Some(v) if v == manifest.schema_version => {}
            other => problems.push(format!(
                "{DATABASE_FILE} is at schema {}, the manifest says {}",
                other.as_deref().unwrap_or("(none)"),
                manifest.schema_version
            )),
        }
        let listed: HashMap<&str, &ObjectEntry> = manifest
            .objects
            .iter()
            .map(|o| (o.key.as_str(), o))
            .collect();
        for row in sqlite::photo_rows(&mut conn, &path).await? {
            match listed.get(row.object_key.as_str()) {
                None => problems.push(format!(
                    "a photo row names object {}, which the manifest does not list",
                    row.object_key
                )),
                Some(o) if o.sha256 != row.stored_sha256 => problems.push(format!(
                    "object {}: the photo row records SHA-256 {}, the manifest {}",
                    row.object_key, row.stored_sha256, o.sha256
                )),
                Some(_) => {}
            }
        }
        Ok::<(), OpsError>(())
    }
    .await;
    if let Err(e) = checked {
        problems.push(format!("{DATABASE_FILE} cannot be read: {e}"));
    }
    Ok(())
}

fn compare_counts(
    got: &BTreeMap<String, u64>,
    want: &BTreeMap<String, u64>,
    problems: &mut Vec<String>,
) {
    let names: BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    for name in names {
        match (got.get(name), want.get(name)) {
            (Some(g), Some(w)) if g != w => {
                problems.push(format!("table {name}: {g} rows, the manifest says {w}"))
            }
            (None, Some(w)) => problems.push(format!(
                "table {name} ({w} rows in the manifest) is missing from {DATABASE_FILE}"
            )),
            (Some(g), None) => {
                problems.push(format!("table {name} ({g} rows) is not in the manifest"))
            }
            _ => {}
        }
    }
}

async fn check_objects(
    dir: &Path,
    objects: &[ObjectEntry],
    problems: &mut Vec<String>,
) -> Result<(), OpsError> {
    let store = DiskStore::existing(dir.join(BLOBS_DIR));
    let mut found: Vec<String> = futures::stream::iter(objects.iter().cloned())
        .map(|object| {
            let path = store.object_file(&object.key);
            async move {
                let path = match path {
                    Ok(p) => p,
                    Err(_) => {
                        return Ok(Some(format!(
                            "the manifest names an invalid object key {:?}",
                            object.key
                        )))
                    }
                };
                let got = digest_blocking(&path).await?;
                Ok::<_, OpsError>(match got {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Some(format!("object {} is missing", object.key))
                    }
                    Err(e) => Some(format!("object {} cannot be read: {e}", object.key)),
                    Ok(d) if d.sha256 != object.sha256 || d.size != object.size => Some(format!(
                        "object {} is damaged: SHA-256 {} ({} bytes), the manifest says {} ({} bytes)",
                        object.key, d.sha256, d.size, object.sha256, object.size
                    )),
                    Ok(_) => None,
                })
            }
        })
        .buffer_unordered(HASH_CONCURRENCY)
        .filter_map(|r| async move { r.transpose() })
        .collect::<Vec<Result<String, OpsError>>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    found.sort();
    problems.append(&mut found);

    let listed: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    match store.list("").await {
        Ok(present) => {
            for meta in present {
                if !listed.contains(meta.key.as_str()) {
                    problems.push(format!("object {} is not in the manifest", meta.key));
                }
            }
        }
        Err(e) => problems.push(format!("{BLOBS_DIR} cannot be listed: {e}")),
    }
    Ok(())
}

fn check_keys(
    dir: &Path,
    keys: &[FileEntry],
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    if !keys.iter().any(|k| k.path == UIC_KEY_FILE) {
        problems.push(format!(
            "the backup holds no UIC key ({UIC_KEY_FILE}): without it the same person \
             can no longer be recognised"
        ));
    }
    for key in keys {
        let Some(path) = inside(dir, &key.path) else {
            problems.push(format!(
                "the manifest names a key file outside the backup: {:?}",
                key.path
            ));
            continue;
        };
        if let Some(p) = file_problem(&key.path, key, digest_file(&path)) {
            problems.push(p);
            continue;
        }
        if let Ok(Some(mode)) = mode_of(&path) {
            if mode & 0o077 != 0 {
                warnings.push(format!(
                    "{} may be read by other users (mode {mode:o}); `chmod 600` it",
                    key.path
                ));
            }
        }
    }
}

/// `dir/relative` if `relative` stays inside `dir`.
fn inside(dir: &Path, relative: &str) -> Option<PathBuf> {
    let rel = Path::new(relative);
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| dir.join(rel))
}

/// [`digest_file`] off the async threads (objects can be large and many).
async fn digest_blocking(path: &Path) -> Result<std::io::Result<Digest256>, OpsError> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || digest_file(&owned))
        .await
        .map_err(|e| OpsError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })
}
