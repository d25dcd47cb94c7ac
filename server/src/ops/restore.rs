//! `donghanh restore --from DIR`: rebuilds an empty data directory from a backup,
//! after verifying it. While it runs, a marker in the data directory says the restore
//! is unfinished, and every command refuses to start on it; the database file comes
//! last, renamed into place once whole, with a new sync epoch (phones' cursors from
//! before the restore are refused, so they sync the restored truth from the start).

use std::path::Path;

use migrations::{Migrator, MigratorTrait};

use super::files::{
    copy_private, create_private_dir_all, is_missing_or_empty, sync_dir, write_private,
};
use super::manifest::Manifest;
use super::verify::{verify, Verified};
use super::{IoAt, OpsError, BLOBS_DIR, DATABASE_FILE};
use crate::config::DataLayout;
use crate::storage::{BlobBody, BlobStore, DiskStore};

/// Present in a data directory while a restore into it has not finished.
pub const RESTORE_MARKER: &str = ".restore-unfinished";

/// Restores the backup in `from` into the empty data directory `layout` describes.
pub async fn run(layout: &DataLayout, from: &Path) -> Result<Verified, OpsError> {
    let (Some(database), Some(blob_root)) = (&layout.database, &layout.blob_root) else {
        return Err(OpsError::Refused(
            "restore rebuilds the embedded default (SQLite and a disk blob store); to \
             move onto PostgreSQL and S3, restore here and then use `donghanh move`"
                .into(),
        ));
    };
    for (what, path) in [
        ("DATA_DIR", &layout.data_dir),
        ("the blob directory", blob_root),
    ] {
        if !is_missing_or_empty(path)? {
            return Err(OpsError::Refused(format!(
                "{what} {} is not empty; restore only into an empty data directory",
                path.display()
            )));
        }
    }
    if database.exists() {
        return Err(OpsError::Refused(format!(
            "a database already exists at {}; restore only into an empty data directory",
            database.display()
        )));
    }

    let verified = verify(from).await?;
    let manifest = &verified.manifest;
    let known = Migrator::migrations()
        .iter()
        .any(|m| m.name() == manifest.schema_version);
    if !known {
        return Err(OpsError::Refused(format!(
            "the backup's schema {} is newer than this donghanh knows; restore it with \
             donghanh {} or later",
            manifest.schema_version, manifest.tool_version
        )));
    }

    create_private_dir_all(&layout.data_dir)?;
    let marker = layout.data_dir.join(RESTORE_MARKER);
    write_private(
        &marker,
        format!(
            "A restore from {} into this directory has not finished. Empty the directory and run `donghanh restore` again.\n",
            from.display()
        )
        .as_bytes(),
    )?;

    restore_keys(from, layout, manifest)?;
    restore_objects(from, blob_root, manifest).await?;
    restore_database(from, database, manifest).await?;

    std::fs::remove_file(&marker).at(&marker)?;
    sync_dir(&layout.data_dir)?;
    Ok(verified)
}

fn restore_keys(from: &Path, layout: &DataLayout, manifest: &Manifest) -> Result<(), OpsError> {
    for key in &manifest.keys {
        let source = from.join(&key.path);
        let dest = layout.data_dir.join(&key.path);
        if let Some(parent) = dest.parent() {
            create_private_dir_all(parent)?;
        }
        let copied = copy_private(&source, &dest)?;
        if copied.sha256 != key.sha256 {
            return Err(changed_meanwhile(&key.path));
        }
    }
    sync_dir(&layout.secrets_dir())
}

async fn restore_objects(
    from: &Path,
    blob_root: &Path,
    manifest: &Manifest,
) -> Result<(), OpsError> {
    let source = DiskStore::existing(from.join(BLOBS_DIR));
    let dest = DiskStore::open(blob_root).await?;
    for object in &manifest.objects {
        let sha: [u8; 32] = hex::decode(&object.sha256)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| changed_meanwhile(&object.key))?;
        let path = source.object_file(&object.key)?;
        dest.put(&object.key, BlobBody::File(path), sha, &object.content_type)
            .await
            .map_err(|e| match e {
                crate::storage::BlobError::ChecksumMismatch => changed_meanwhile(&object.key),
                other => other.into(),
            })?;
    }
    Ok(())
}

async fn restore_database(
    from: &Path,
    database: &Path,
    manifest: &Manifest,
) -> Result<(), OpsError> {
    if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir_all(parent)?;
    }
    let mut partial = database.as_os_str().to_owned();
    partial.push(".restoring");
    let partial = std::path::PathBuf::from(partial);
    let copied = copy_private(&from.join(DATABASE_FILE), &partial)?;
    if copied.sha256 != manifest.database.sha256 {
        return Err(changed_meanwhile(DATABASE_FILE));
    }
    // Phones that synced after the backup hold cursors past its counter: a new epoch
    // makes them sync from the start instead of skipping what was renumbered.
    super::sqlite::renew_sync_epoch(&partial).await?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .at(&partial)?;
    std::fs::rename(&partial, database).at(database)?;
    if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

fn changed_meanwhile(name: &str) -> OpsError {
    OpsError::Refused(format!(
        "{name} changed in the backup while it was being restored; empty the data \
         directory and run restore again"
    ))
}
