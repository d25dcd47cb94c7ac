//! `donghanh backup --to DIR`: a consistent copy of the embedded default, taken while
//! the server runs and phones submit.
//!
//! Consistency comes from the order of the steps. The database is copied first, as one
//! snapshot (`VACUUM INTO`, a single read transaction; in WAL mode the server's writers
//! go on meanwhile, so intake is never held up). Then the objects the snapshot's photo
//! rows name are copied from the blob store: a row is written only after its object is
//! stored whole, and nothing deletes an object a row names, so each is there. Objects
//! uploaded after the snapshot are left out, as their rows are. Then the keys, then the
//! manifest, last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};

use super::files::{
    create_private_dir_all, create_private_file, digest_file, is_missing_or_empty, write_private,
};
use super::manifest::{FileEntry, Manifest, ObjectEntry, FORMAT};
use super::sqlite::{self, PhotoRow};
use super::{IoAt, OpsError, BLOBS_DIR, DATABASE_FILE};
use crate::config::{Config, DataLayout, JWT_KEY_FILE, UIC_KEY_FILE};
use crate::storage::{BlobBody, BlobError, BlobStore, DiskStore};

/// Objects copied at once: enough to keep a disk busy, few enough for two cores.
const COPY_CONCURRENCY: usize = 4;

/// What a finished backup holds.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub manifest: Manifest,
    /// How long the database snapshot took (the only step inside a transaction).
    pub snapshot_secs: f64,
    /// How long the whole backup took.
    pub total_secs: f64,
}

/// Checks, before anything is read or created, that a backup of `layout` into `dir`
/// can be made: the embedded default, a database to copy, an empty or new target.
pub fn preflight(layout: &DataLayout, dir: &Path) -> Result<(), OpsError> {
    let (Some(database), Some(_)) = (&layout.database, &layout.blob_root) else {
        return Err(OpsError::Refused(
            "backup covers the embedded default (SQLite and a disk blob store); with \
             PostgreSQL use pg_dump or base backups, with S3 bucket versioning, and keep \
             JWT_KEYS and UIC_HMAC_KEY"
                .into(),
        ));
    };
    if !database.is_file() {
        return Err(OpsError::Refused(format!(
            "no database at {}: nothing to back up (is DATA_DIR right?)",
            database.display()
        )));
    }
    if !is_missing_or_empty(dir)? {
        return Err(OpsError::Refused(format!(
            "backup target {} exists and is not empty; give a new or empty directory",
            dir.display()
        )));
    }
    Ok(())
}

/// Writes a backup of the data directory `config` describes into `dir` (new or empty).
pub async fn run(config: &Config, dir: &Path) -> Result<BackupReport, OpsError> {
    let started = Instant::now();
    let layout = DataLayout::of(config);
    preflight(&layout, dir)?;
    let (Some(live_db), Some(blob_root)) = (layout.database, layout.blob_root) else {
        return Err(OpsError::Refused("not the embedded default".into()));
    };
    create_private_dir_all(dir)?;

    // 1. The database, as one snapshot (into an empty file made private first).
    let snapshot_path = dir.join(DATABASE_FILE);
    drop(create_private_file(&snapshot_path)?);
    let created_at = Utc::now();
    let snapshot_started = Instant::now();
    sqlite::snapshot(&live_db, &snapshot_path).await?;
    let snapshot_secs = snapshot_started.elapsed().as_secs_f64();
    tracing::info!(
        seconds = format!("{snapshot_secs:.2}"),
        "database snapshot taken"
    );

    let mut conn = sqlite::open_read_only(&snapshot_path).await?;
    let tables = sqlite::table_counts(&mut conn, &snapshot_path).await?;
    let schema_version = sqlite::schema_version(&mut conn, &snapshot_path)
        .await?
        .ok_or_else(|| {
            OpsError::Refused(format!(
                "{} has no migrations applied: start the server once first",
                live_db.display()
            ))
        })?;
    let photos = sqlite::photo_rows(&mut conn, &snapshot_path).await?;
    drop(conn);
    let database = entry(dir, DATABASE_FILE)?;

    // 2. The objects the snapshot names.
    let objects = copy_objects(&blob_root, &dir.join(BLOBS_DIR), photos).await?;

    // 3. The keys in effect (from the key files or the environment), as the files the
    //    embedded default reads.
    let keys = write_keys(config, dir)?;

    // 4. The manifest, last.
    let manifest = Manifest {
        format: FORMAT.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created_at,
        finished_at: Utc::now(),
        schema_version,
        database,
        tables,
        objects,
        keys,
    };
    manifest.write_last(dir)?;
    Ok(BackupReport {
        manifest,
        snapshot_secs,
        total_secs: started.elapsed().as_secs_f64(),
    })
}

/// Copies each photo's object through the backup's own disk store, which checks the
/// digest the row recorded; an object missing or different at the source fails the
/// backup (naming each), as a backup with a hole must not look whole.
async fn copy_objects(
    source_root: &Path,
    dest_root: &Path,
    photos: Vec<PhotoRow>,
) -> Result<Vec<ObjectEntry>, OpsError> {
    let source = DiskStore::existing(source_root);
    let dest = DiskStore::open(dest_root).await?;
    let results: Vec<Result<ObjectEntry, String>> = futures::stream::iter(photos)
        .map(|row| copy_object(&source, &dest, row))
        .buffer_unordered(COPY_CONCURRENCY)
        .try_collect()
        .await?;
    let mut objects = Vec::with_capacity(results.len());
    let mut problems = Vec::new();
    for result in results {
        match result {
            Ok(object) => objects.push(object),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(OpsError::Damaged {
            what: format!(
                "the blob store {} does not hold what the database names; no backup written",
                source_root.display()
            ),
            problems,
        });
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// One object: `Ok(Err(problem))` for a fault of the source object itself.
async fn copy_object(
    source: &DiskStore,
    dest: &DiskStore,
    row: PhotoRow,
) -> Result<Result<ObjectEntry, String>, OpsError> {
    let key = row.object_key;
    let Some(sha) = decode_sha256(&row.stored_sha256) else {
        return Ok(Err(format!(
            "photo row for object {key} records a malformed SHA-256 {:?}",
            row.stored_sha256
        )));
    };
    let path: PathBuf = source.object_file(&key)?;
    match dest
        .put(&key, BlobBody::File(path), sha, &row.content_type)
        .await
    {
        Ok(meta) if i64::try_from(meta.size).ok() == Some(row.size_bytes) => Ok(Ok(ObjectEntry {
            key,
            sha256: row.stored_sha256,
            size: meta.size,
            content_type: row.content_type,
        })),
        Ok(meta) => Ok(Err(format!(
            "object {key} has {} bytes, its photo row says {}",
            meta.size, row.size_bytes
        ))),
        Err(BlobError::ChecksumMismatch) => Ok(Err(format!(
            "object {key} differs from the SHA-256 its photo row records"
        ))),
        Err(BlobError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Err(format!("object {key} is missing from the blob store")))
        }
        Err(e) => Err(e.into()),
    }
}

fn decode_sha256(hex_digest: &str) -> Option<[u8; 32]> {
    hex::decode(hex_digest).ok()?.try_into().ok()
}

/// Writes the JWT signing key and the UIC key in effect as the embedded default's key
/// files (base64, 0600). Verifying-only JWT keys of a rotation are not kept: losing
/// them costs an access token at most (15 minutes); refresh tokens are rows.
fn write_keys(config: &Config, dir: &Path) -> Result<Vec<FileEntry>, OpsError> {
    let mut entries = Vec::new();
    let signing = config.jwt.keys.first().map(|(_, key)| key);
    for (name, key) in [
        (JWT_KEY_FILE, signing),
        (UIC_KEY_FILE, Some(&config.uic_hmac_key)),
    ] {
        let Some(key) = key else { continue };
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            create_private_dir_all(parent)?;
        }
        write_private(&path, STANDARD.encode(key.expose()).as_bytes())?;
        entries.push(entry(dir, name)?);
    }
    Ok(entries)
}

/// The manifest entry of a file already written under `dir`.
fn entry(dir: &Path, name: &str) -> Result<FileEntry, OpsError> {
    let path = dir.join(name);
    let digest = digest_file(&path).at(&path)?;
    Ok(FileEntry {
        path: name.into(),
        sha256: digest.sha256,
        size: digest.size,
    })
}

/// Rows per table in a form fit for one line.
pub fn summary(tables: &BTreeMap<String, u64>) -> String {
    let rows: u64 = tables.values().sum();
    format!("{rows} rows in {} tables", tables.len())
}
