//! The SQLite side of backups: the snapshot (`VACUUM INTO`, one read transaction, so
//! writers in WAL mode go on while it runs) and reading a snapshot without changing it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sea_orm::sqlx::{self, ConnectOptions, Connection};

use super::OpsError;

/// A photo row of a snapshot: the object it names and what that object must be.
#[derive(Debug, Clone)]
pub struct PhotoRow {
    pub object_key: String,
    pub stored_sha256: String,
    pub size_bytes: i64,
    pub content_type: String,
}

fn db_fault(path: &Path) -> impl FnOnce(sqlx::Error) -> OpsError + '_ {
    move |source| OpsError::Database {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a consistent copy of the live database `live` into `dest` (which must be
/// missing or an empty file). `VACUUM INTO` reads inside one transaction: the copy
/// holds exactly what was committed when it began, and in WAL mode the server's
/// writers are not held up meanwhile.
pub async fn snapshot(live: &Path, dest: &Path) -> Result<(), OpsError> {
    let options = SqliteConnectOptions::new()
        .filename(live)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30))
        .disable_statement_logging();
    let mut conn = options.connect().await.map_err(db_fault(live))?;
    let target = dest.to_str().ok_or_else(|| {
        OpsError::Refused(format!(
            "the backup path {} is not valid UTF-8",
            dest.display()
        ))
    })?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .map_err(db_fault(live))?;
    conn.close().await.map_err(db_fault(live))?;

    // The copy keeps the source's journal mode in its header; a self-contained file in
    // rollback mode opens read-only anywhere (the server switches back to WAL).
    let options = SqliteConnectOptions::new()
        .filename(dest)
        .create_if_missing(false)
        .disable_statement_logging();
    let mut conn = options.connect().await.map_err(db_fault(dest))?;
    sqlx::query("PRAGMA journal_mode=DELETE")
        .execute(&mut conn)
        .await
        .map_err(db_fault(dest))?;
    conn.close().await.map_err(db_fault(dest))
}

/// Gives the (restored, not yet in use) database at `path` a new random sync epoch, so
/// the cursors phones hold from before the restore are refused rather than read against
/// numbers that were wound back (see migration 000010). Answers the new epoch.
pub async fn renew_sync_epoch(path: &Path) -> Result<i64, OpsError> {
    let epoch = rand::Rng::gen_range(&mut rand::rngs::OsRng, 1..i64::MAX);
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .disable_statement_logging()
        .connect()
        .await
        .map_err(db_fault(path))?;
    let done = sqlx::query("UPDATE sync_counter SET epoch = ? WHERE id = 1")
        .bind(epoch)
        .execute(&mut conn)
        .await
        .map_err(db_fault(path))?;
    conn.close().await.map_err(db_fault(path))?;
    if done.rows_affected() != 1 {
        return Err(OpsError::Refused(format!(
            "{}: the sync counter row is missing; the backup is damaged",
            path.display()
        )));
    }
    Ok(epoch)
}

/// A read-only, never-writing connection to a snapshot file.
pub async fn open_read_only(path: &Path) -> Result<SqliteConnection, OpsError> {
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true)
        .create_if_missing(false)
        .disable_statement_logging()
        .connect()
        .await
        .map_err(db_fault(path))
}

/// Rows per table, every table but SQLite's own.
pub async fn table_counts(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<BTreeMap<String, u64>, OpsError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_fault(path))?;
    let mut counts = BTreeMap::new();
    for name in names {
        let quoted = name.replace('"', "\"\"");
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{quoted}\""))
            .fetch_one(&mut *conn)
            .await
            .map_err(db_fault(path))?;
        counts.insert(name, u64::try_from(n).unwrap_or_default());
    }
    Ok(counts)
}

/// The latest migration applied (migration names sort by their date and number).
pub async fn schema_version(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<Option<String>, OpsError> {
    sqlx::query_scalar("SELECT MAX(version) FROM seaql_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_fault(path))
}

/// Every stored photo's row, by object key.
pub async fn photo_rows(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<Vec<PhotoRow>, OpsError> {
    let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT object_key, stored_sha256, size_bytes, content_type \
         FROM submission_photos ORDER BY object_key",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_fault(path))?;
    Ok(rows
        .into_iter()
        .map(
            |(object_key, stored_sha256, size_bytes, content_type)| PhotoRow {
                object_key,
                stored_sha256,
                size_bytes,
                content_type,
            },
        )
        .collect())
}

/// SQLite's own check of the file's structure: `None` when it is sound.
pub async fn integrity_fault(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<Option<String>, OpsError> {
    let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_fault(path))?;
    Ok(match lines.as_slice() {
        [ok] if ok == "ok" => None,
        other => Some(other.join("; ")),
    })
}
