//! `donghanh move --to-database postgres://… [--to-s3]`: moves an embedded pilot (SQLite
//! under `DATA_DIR` and the disk blob store) onto PostgreSQL and, with `--to-s3`, the
//! S3 bucket the usual `S3_*` settings name, so that the same phones and accounts go on
//! against a server on the new database.
//!
//! What makes that true:
//! - Every row is copied as it is: ids, times (to the microsecond PostgreSQL keeps),
//!   refresh-token hashes, revisions, events, the audit log, the report cells, and the
//!   one-row `sync_counter`, so the numbers in the phones' sync cursors stay valid and
//!   new changes get higher ones. The access tokens keep working because the operator
//!   starts the new servers with the same key (the command prints where it is).
//! - The copy is generic: the tables come from the source's `sqlite_master` in
//!   foreign-key order (rows of a table that refers to itself, such as `org_units`,
//!   parents first), each column converted by the PostgreSQL type `information_schema`
//!   gives it. A table or column one side has and the other lacks, or a type the move
//!   does not know, stops it before anything is written, so a new migration can never
//!   be skipped silently.
//! - The target must be empty: a new database, or one only migrated (the rows the
//!   migrations seed, [`MIGRATION_SEEDED`], are replaced by the source's). A database
//!   holding anything else is refused, except a move of the same source that did not
//!   finish, which is resumed.
//! - Resuming is cheap and safe: the move records itself in a table of its own
//!   ([`PROGRESS_TABLE`]), rows go in by `INSERT … ON CONFLICT DO NOTHING` table by
//!   table, and an object already in the bucket with the right SHA-256 is not sent again.
//! - Everything is checked at the end: each table's rows (count and an order-free digest
//!   of every value, read back from PostgreSQL), each object read back and hashed
//!   against the digest its photo row stores, the report cells against a rebuild (the
//!   logic of `rebuild-reports --check`), and the source's counts against a second look,
//!   so a server still writing to it is noticed.
//!
//! A server running on the source would go on taking visits the copy never sees: the
//! move takes the data directory's `server.lock` exclusively (every server holds it
//! shared) and is refused while one runs; a server of an older version, which does not
//! lock, is still caught by the second look (row counts and SQLite's `data_version`).
//!
//! The source is opened read-only (never `immutable`: a server that was killed leaves
//! committed rows in the WAL) and read inside one transaction, so the copy is one
//! consistent snapshot. Photo objects without a row (left by a crash; the sweeper would
//! remove them) are not moved.
//!
//! For tests only: `DONGHANH_MOVE_STOP_AFTER_OBJECTS=N` ends the process (exit status 3,
//! no clean-up, as a kill would) once N objects have been sent, to test resuming.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};
use futures::{StreamExt, TryStreamExt};
use migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::postgres::{PgPool, PgRow};
use sea_orm::sqlx::sqlite::{SqliteConnection, SqliteRow};
use sea_orm::sqlx::{self, Connection, Row};
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::files::digest_file;
use super::sqlite::{self, PhotoRow};
use super::OpsError;
use crate::config::{Config, DataLayout, DatabaseUrl, S3Config, JWT_KEY_FILE, UIC_KEY_FILE};
use crate::storage::{BlobBody, BlobError, BlobStore, DiskStore, S3Store};

/// The target's record of the move: which source, when it began, whether it finished.
pub const PROGRESS_TABLE: &str = "donghanh_move";

/// The tables the migrations fill by themselves (the Hanoi units with ids of their own,
/// the sync counter at 0): on the target their rows are replaced by the source's.
pub const MIGRATION_SEEDED: &[&str] = &["org_units", "sync_counter"];

/// sea-orm's own bookkeeping: written by running the migrations on the target.
const MIGRATIONS_TABLE: &str = "seaql_migrations";

/// Objects sent at once.
const OBJECT_CONCURRENCY: usize = 4;

/// PostgreSQL takes at most 65535 parameters a statement.
const MAX_PARAMS: usize = 30_000;
const MAX_BATCH_ROWS: usize = 500;

/// The test-only hook (see the module documentation).
const STOP_AFTER_OBJECTS: &str = "DONGHANH_MOVE_STOP_AFTER_OBJECTS";

/// Where the embedded default moves to.
#[derive(Debug, Clone)]
pub struct Target {
    pub database_url: DatabaseUrl,
    /// `None`: the photos stay in the disk blob store (PostgreSQL with `BLOB_STORE=disk`).
    pub s3: Option<S3Config>,
}

/// Where the new servers find the keys the embedded default signs and hashes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file of the data directory (base64).
    File(PathBuf),
    /// The variable was set in the environment; it must be set the same again.
    Environment,
}

/// What the source is and where its keys are.
#[derive(Debug, Clone)]
pub struct Source {
    pub layout: DataLayout,
    pub database: PathBuf,
    pub blob_root: PathBuf,
    pub jwt_key: KeySource,
    pub uic_key: KeySource,
}

impl Source {
    /// The embedded default the environment describes; refuses anything else.
    pub fn from_env(layout: DataLayout) -> Result<Source, OpsError> {
        let (Some(database), Some(blob_root)) = (layout.database.clone(), layout.blob_root.clone())
        else {
            return Err(OpsError::Refused(
                "move copies the embedded default (SQLite and a disk blob store): run it with \
                 the DATA_DIR (and DATABASE_URL/BLOB_DIR, if set) of the pilot, without \
                 BLOB_STORE=s3 or a PostgreSQL DATABASE_URL"
                    .into(),
            ));
        };
        if !database.is_file() {
            return Err(OpsError::Refused(format!(
                "no database at {}: nothing to move (is DATA_DIR right?)",
                database.display()
            )));
        }
        let key = |var: &str, file: &str| -> Result<KeySource, OpsError> {
            if std::env::var(var).is_ok_and(|v| !v.trim().is_empty()) {
                return Ok(KeySource::Environment);
            }
            let path = absolute(&layout.data_dir.join(file));
            if path.is_file() {
                Ok(KeySource::File(path))
            } else {
                Err(OpsError::Refused(format!(
                    "no {var} in the environment and no key file {}: without the key the \
                     pilot used, its tokens and UICs cannot be recognised (is DATA_DIR right?)",
                    path.display()
                )))
            }
        };
        let jwt_key = key("JWT_KEYS", JWT_KEY_FILE)?;
        let uic_key = key("UIC_HMAC_KEY", UIC_KEY_FILE)?;
        Ok(Source {
            database: absolute(&database),
            blob_root: absolute(&blob_root),
            layout,
            jwt_key,
            uic_key,
        })
    }
}

impl Target {
    /// The target database, and with `to_s3` the bucket the `S3_*` variables name (read
    /// and checked by the same code as the server's, so what is moved into is what the
    /// new servers will read).
    pub fn from_env(database_url: &str, to_s3: bool) -> Result<Target, OpsError> {
        let database_url = DatabaseUrl::new(database_url);
        if !database_url.is_postgres() {
            return Err(OpsError::Refused(
                "--to-database expects a postgres:// URL".into(),
            ));
        }
        let s3 = if to_s3 {
            // Only the S3 settings are taken from this configuration: the keys are stood
            // in, so that no key file is read or created, and the source stays as it was.
            let stand_in = "c3RhbmQtaW4ta2V5LW5ldmVyLXVzZWQtZm9yLWFueXRoaW5n";
            let config = Config::from_lookup(|k| match k {
                "BLOB_STORE" => Some("s3".into()),
                "DATABASE_URL" => None,
                "JWT_KEYS" => Some(format!("unused:{stand_in}")),
                "UIC_HMAC_KEY" => Some(stand_in.into()),
                other => std::env::var(other).ok(),
            })
            .map_err(|e| OpsError::Refused(format!("--to-s3 reads the S3_* settings: {e}")))?;
            match config.blob_store {
                crate::config::BlobStoreConfig::S3(s3) => Some(s3),
                crate::config::BlobStoreConfig::Disk { .. } => None,
            }
        } else {
            None
        };
        Ok(Target { database_url, s3 })
    }
}

/// What a finished move did.
#[derive(Debug, Clone)]
pub struct MoveReport {
    /// Rows per table, as copied and checked.
    pub tables: BTreeMap<String, u64>,
    /// Rows written now (the others were there from an earlier, cut-off run).
    pub rows_written: u64,
    pub objects: usize,
    /// Objects already in the bucket with the right digest.
    pub objects_already_there: usize,
    pub object_bytes: u64,
    /// Whether this run went on with a move cut off before.
    pub resumed: bool,
    pub total_secs: f64,
}

/// A PostgreSQL column type the move knows how to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uuid,
    Timestamptz,
    Timestamp,
    Date,
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Json,
    Jsonb,
    Bytes,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "uuid" => Kind::Uuid,
            "timestamp with time zone" => Kind::Timestamptz,
            "timestamp without time zone" => Kind::Timestamp,
            "date" => Kind::Date,
            "boolean" => Kind::Bool,
            "smallint" => Kind::Int2,
            "integer" => Kind::Int4,
            "bigint" => Kind::Int8,
            "real" => Kind::Float4,
            "double precision" => Kind::Float8,
            "numeric" => Kind::Numeric,
            "character varying" | "text" | "character" => Kind::Text,
            "json" => Kind::Json,
            "jsonb" => Kind::Jsonb,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }

    /// Sent as text and cast by PostgreSQL (no exact Rust type on both sides).
    fn cast(self) -> Option<&'static str> {
        match self {
            Kind::Numeric => Some("numeric"),
            Kind::Json => Some("json"),
            Kind::Jsonb => Some("jsonb"),
            _ => None,
        }
    }
}

/// One value, in the form both databases agree on (times to the microsecond).
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Uuid(Uuid),
    Time(DateTime<Utc>),
    Naive(NaiveDateTime),
    Date(NaiveDate),
    Json(serde_json::Value),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
}

/// A table to copy: its columns as the target has them, and what it refers to.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    columns: Vec<Column>,
    /// `(column, referenced column)` pairs pointing into the table itself.
    self_refs: Vec<(usize, usize)>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn one_line(text: impl std::fmt::Display) -> String {
    text.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn source_fault(path: &Path) -> impl Fn(sqlx::Error) -> OpsError + '_ {
    move |source| OpsError::Database {
        path: path.to_path_buf(),
        source,
    }
}

/// A fault of the target database, as one line the operator can act on.
fn target_fault(url: &DatabaseUrl) -> impl Fn(sqlx::Error) -> OpsError + '_ {
    move |e| {
        OpsError::Refused(one_line(format!(
            "the target database {} failed: {e}; what was copied is kept, run the same \
             move again to go on",
            url.redacted()
        )))
    }
}

/// The source's tables in the order their foreign keys need (referenced tables first),
/// with their columns; every table but SQLite's own and the migrations' bookkeeping.
pub async fn copy_order(conn: &mut SqliteConnection, path: &Path) -> Result<Vec<String>, OpsError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(source_fault(path))?;
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| n != MIGRATIONS_TABLE)
        .collect();
    let mut refers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in &names {
        let parents: Vec<String> =
            sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_list(?)")
                .bind(name)
                .fetch_all(&mut *conn)
                .await
                .map_err(source_fault(path))?;
        refers.insert(
            name.clone(),
            parents
                .into_iter()
                .filter(|p| p != name && names.contains(p))
                .collect(),
        );
    }
    let mut order: Vec<String> = Vec::with_capacity(names.len());
    while order.len() < names.len() {
        let ready: Vec<String> = refers
            .iter()
            .filter(|(n, parents)| !order.contains(n) && parents.iter().all(|p| order.contains(p)))
            .map(|(n, _)| n.clone())
            .collect();
        if ready.is_empty() {
            let left: Vec<&String> = names.iter().filter(|n| !order.contains(n)).collect();
            return Err(OpsError::Refused(format!(
                "the foreign keys of these tables form a cycle the move cannot order: {left:?}"
            )));
        }
        order.extend(ready);
    }
    Ok(order)
}

/// Moves the embedded default `source` into `target` (see the module documentation).
pub async fn run(source: &Source, target: &Target) -> Result<MoveReport, OpsError> {
    let started = Instant::now();
    let src_path = source.database.as_path();
    // A second connection that only watches: SQLite's `data_version` moves on it when
    // any other connection commits, so a write the counts would not show (an update) is
    // noticed too.
    let mut watch = open_source(src_path).await?;
    let version_before = data_version(&mut watch, src_path).await?;
    let mut conn = open_source(src_path).await?;
    let mut snapshot = conn.begin().await.map_err(source_fault(src_path))?;

    // The source's schema must be the one this build migrates the target to.
    let version = sqlite::schema_version(&mut snapshot, src_path).await?;
    let latest = Migrator::migrations()
        .last()
        .map(|m| m.name().to_string())
        .unwrap_or_default();
    if version.as_deref() != Some(latest.as_str()) {
        return Err(OpsError::Refused(format!(
            "the source's schema is {} but this donghanh's is {latest}: move with the \
             donghanh that last ran the pilot (or start it once with this one first)",
            version.as_deref().unwrap_or("empty")
        )));
    }
    let order = copy_order(&mut snapshot, src_path).await?;
    let fingerprint = fingerprint(&mut snapshot, src_path).await?;

    let db = connect_target(&target.database_url).await?;
    let pool = db.get_postgres_connection_pool().clone();
    let url = &target.database_url;
    let resumed = prepare_target(&db, &pool, url, source, &fingerprint).await?;
    if resumed {
        tracing::info!(source = %source.database.display(), "resuming a move cut off before");
    }

    let tables = describe_tables(&mut snapshot, &pool, url, src_path, &order).await?;

    // 1. Rows, table by table in foreign-key order, then their check.
    let mut counts = BTreeMap::new();
    let mut digests = BTreeMap::new();
    let mut rows_written = 0;
    for table in &tables {
        let copied = copy_table(&mut snapshot, &pool, url, src_path, table).await?;
        tracing::info!(
            table = %table.name,
            rows = copied.rows,
            written = copied.written,
            "table copied"
        );
        rows_written += copied.written;
        counts.insert(table.name.clone(), copied.rows);
        digests.insert(table.name.clone(), copied.digest);
    }
    let mut problems = Vec::new();
    for table in &tables {
        let (rows, digest) = target_digest(&pool, url, table).await?;
        let expected = counts.get(&table.name).copied().unwrap_or_default();
        if rows != expected {
            problems.push(format!(
                "table {}: {expected} rows in the source, {rows} in the target",
                table.name
            ));
        } else if digests.get(&table.name) != Some(&digest) {
            problems.push(format!(
                "table {}: {rows} rows on both sides but their values differ",
                table.name
            ));
        }
    }
    if !problems.is_empty() {
        return Err(OpsError::Damaged {
            what: format!(
                "the rows in {} are not the source's (was the target written to, or the \
                 source changed since the first run? then drop and re-create the target \
                 database and move again)",
                url.redacted()
            ),
            problems,
        });
    }
    set_sequences(&pool, url).await?;

    // 2. Objects: to the bucket, or (staying on disk) checked where they are.
    let photos = sqlite::photo_rows(&mut snapshot, src_path).await?;
    let object_bytes: u64 = photos
        .iter()
        .map(|p| u64::try_from(p.size_bytes).unwrap_or_default())
        .sum();
    let objects_already_there = match &target.s3 {
        Some(s3) => move_objects(&source.blob_root, s3, &photos).await?,
        None => check_disk_objects(&source.blob_root, &photos).await?,
    };

    // 3. Report cells, as `rebuild-reports --check` compares them.
    let drift = crate::services::rollup::verify(&db)
        .await
        .map_err(|e| OpsError::Refused(one_line(format!("checking the report cells: {e}"))))?;
    if !drift.is_empty() {
        return Err(OpsError::Damaged {
            what: "the moved report cells differ from the moved approved data".into(),
            problems: drift,
        });
    }

    // 4. The source, looked at again: a server still writing to it would have changed
    //    rows the snapshot did not see.
    snapshot.rollback().await.map_err(source_fault(src_path))?;
    conn.close().await.map_err(source_fault(src_path))?;
    let mut again = open_source(src_path).await?;
    let now = sqlite::table_counts(&mut again, src_path).await?;
    drop(again);
    let version_after = data_version(&mut watch, src_path).await?;
    drop(watch);
    let changed: Vec<&String> = counts
        .iter()
        .filter(|(t, n)| now.get(*t) != Some(n))
        .map(|(t, _)| t)
        .collect();
    if !changed.is_empty() || version_after != version_before {
        let what = if changed.is_empty() {
            "rows were updated".to_string()
        } else {
            format!("tables {changed:?}")
        };
        return Err(OpsError::Refused(format!(
            "the source changed while it was moved ({what}): is a server still \
             running on {}? Stop it, drop and re-create the target database and the bucket \
             prefix, and move again",
            source.layout.data_dir.display()
        )));
    }

    sqlx::query(&format!(
        "UPDATE {} SET finished_at = now() WHERE id = 1",
        quote(PROGRESS_TABLE)
    ))
    .execute(&pool)
    .await
    .map_err(target_fault(url))?;
    db.close()
        .await
        .map_err(|e| OpsError::Refused(one_line(e)))?;
    Ok(MoveReport {
        tables: counts,
        rows_written,
        objects: photos.len(),
        objects_already_there,
        object_bytes,
        resumed,
        total_secs: started.elapsed().as_secs_f64(),
    })
}

/// The source database, read-only. Not `immutable`: the WAL a killed server left holds
/// committed rows, and SQLite reads it only when it may look at the WAL index.
/// SQLite's count of commits by other connections, as this connection sees it.
async fn data_version(conn: &mut SqliteConnection, path: &Path) -> Result<i64, OpsError> {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(&mut *conn)
        .await
        .map_err(source_fault(path))
}

async fn open_source(path: &Path) -> Result<SqliteConnection, OpsError> {
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    use sea_orm::sqlx::ConnectOptions;
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30))
        .disable_statement_logging()
        .connect()
        .await
        .map_err(source_fault(path))
}

/// What tells this source from any other: the ids its migrations gave the org units
/// (random at its first start, and copied with the rows).
async fn fingerprint(conn: &mut SqliteConnection, path: &Path) -> Result<String, OpsError> {
    let rows = sqlx::query("SELECT id FROM org_units ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .map_err(source_fault(path))?;
    let mut hasher = Sha256::new();
    for row in rows {
        let cell = source_cell(&row, 0, Kind::Uuid, "org_units.id")?;
        if let Cell::Uuid(id) = cell {
            hasher.update(id.as_bytes());
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

async fn connect_target(url: &DatabaseUrl) -> Result<DatabaseConnection, OpsError> {
    crate::db::connect(url).await.map_err(|e| {
        OpsError::Refused(one_line(format!(
            "cannot connect to the target database {}: {e}",
            url.redacted()
        )))
    })
}

/// Makes the target ready: refuses one that holds data, migrates an empty one and
/// records the move in it; answers whether a move of this source is being resumed.
async fn prepare_target(
    db: &DatabaseConnection,
    pool: &PgPool,
    url: &DatabaseUrl,
    source: &Source,
    fingerprint: &str,
) -> Result<bool, OpsError> {
    let tables = target_tables(pool, url).await?;
    if tables.iter().any(|t| t == PROGRESS_TABLE) {
        let (from, print, finished): (String, String, Option<DateTime<Utc>>) =
            sqlx::query_as(&format!(
                "SELECT source, fingerprint, finished_at FROM {} WHERE id = 1",
                quote(PROGRESS_TABLE)
            ))
            .fetch_one(pool)
            .await
            .map_err(target_fault(url))?;
        if print != fingerprint {
            return Err(OpsError::Refused(format!(
                "the target database {} holds a move from another data directory ({from}); \
                 give an empty database",
                url.redacted()
            )));
        }
        if let Some(at) = finished {
            return Err(OpsError::Refused(format!(
                "the target database {} already holds the finished move from {from} ({}); \
                 nothing to do",
                url.redacted(),
                at.format("%Y-%m-%d %H:%M:%S UTC")
            )));
        }
        crate::db::migrate_up(url, db)
            .await
            .map_err(|e| OpsError::Refused(one_line(format!("migrating the target: {e}"))))?;
        return Ok(true);
    }

    let holding = tables_holding_data(pool, url, &tables).await?;
    if !holding.is_empty() {
        return Err(OpsError::Refused(format!(
            "the target database {} is not empty ({}); give a new, empty database \
             (CREATE DATABASE …)",
            url.redacted(),
            holding.join(", ")
        )));
    }
    crate::db::migrate_up(url, db)
        .await
        .map_err(|e| OpsError::Refused(one_line(format!("migrating the target: {e}"))))?;
    let tables = target_tables(pool, url).await?;
    let holding = tables_holding_data(pool, url, &tables).await?;
    if !holding.is_empty() {
        return Err(OpsError::Refused(format!(
            "the migrations left rows the move does not expect ({}); this donghanh's \
             MIGRATION_SEEDED needs updating",
            holding.join(", ")
        )));
    }

    // The record and the removal of the seeded rows commit together: cut off before,
    // the target is still empty; after, it is a move to resume.
    let mut txn = pool.begin().await.map_err(target_fault(url))?;
    sqlx::query(&format!(
        "CREATE TABLE {} (id smallint PRIMARY KEY CHECK (id = 1), source text NOT NULL, \
         fingerprint text NOT NULL, started_at timestamptz NOT NULL DEFAULT now(), \
         finished_at timestamptz)",
        quote(PROGRESS_TABLE)
    ))
    .execute(&mut *txn)
    .await
    .map_err(target_fault(url))?;
    sqlx::query(&format!(
        "INSERT INTO {} (id, source, fingerprint) VALUES (1, $1, $2)",
        quote(PROGRESS_TABLE)
    ))
    .bind(source.database.display().to_string())
    .bind(fingerprint)
    .execute(&mut *txn)
    .await
    .map_err(target_fault(url))?;
    for table in MIGRATION_SEEDED.iter().rev() {
        sqlx::query(&format!("DELETE FROM {}", quote(table)))
            .execute(&mut *txn)
            .await
            .map_err(target_fault(url))?;
    }
    txn.commit().await.map_err(target_fault(url))?;
    Ok(false)
}

async fn target_tables(pool: &PgPool, url: &DatabaseUrl) -> Result<Vec<String>, OpsError> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .map_err(target_fault(url))
}

/// The tables of the target that hold something beyond what the migrations seed.
async fn tables_holding_data(
    pool: &PgPool,
    url: &DatabaseUrl,
    tables: &[String],
) -> Result<Vec<String>, OpsError> {
    let mut holding = Vec::new();
    for table in tables {
        if table == MIGRATIONS_TABLE {
            continue;
        }
        let data = if table == "sync_counter" {
            format!("SELECT COUNT(*) FROM {} WHERE value <> 0", quote(table))
        } else if MIGRATION_SEEDED.contains(&table.as_str()) {
            continue;
        } else {
            format!("SELECT COUNT(*) FROM {}", quote(table))
        };
        let n: i64 = sqlx::query_scalar(&data)
            .fetch_one(pool)
            .await
            .map_err(target_fault(url))?;
        if n > 0 {
            holding.push(format!("{table}: {n} rows"));
        }
    }
    Ok(holding)
}

/// Each table's columns as the target types them, checked against the source's.
async fn describe_tables(
    conn: &mut SqliteConnection,
    pool: &PgPool,
    url: &DatabaseUrl,
    src_path: &Path,
    order: &[String],
) -> Result<Vec<Table>, OpsError> {
    let target: BTreeSet<String> = target_tables(pool, url)
        .await?
        .into_iter()
        .filter(|t| t != MIGRATIONS_TABLE && t != PROGRESS_TABLE)
        .collect();
    let source: BTreeSet<String> = order.iter().cloned().collect();
    if source != target {
        return Err(OpsError::Refused(format!(
            "the tables differ: only in the source {:?}, only in the target {:?}",
            source.difference(&target).collect::<Vec<_>>(),
            target.difference(&source).collect::<Vec<_>>()
        )));
    }
    let mut tables = Vec::with_capacity(order.len());
    for name in order {
        let typed: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(name)
        .fetch_all(pool)
        .await
        .map_err(target_fault(url))?;
        let mut columns = Vec::with_capacity(typed.len());
        for (column, data_type) in typed {
            let kind = Kind::of(&data_type).ok_or_else(|| {
                OpsError::Refused(format!(
                    "{name}.{column} has the PostgreSQL type {data_type}, which the move \
                     does not know how to copy"
                ))
            })?;
            columns.push(Column { name: column, kind });
        }
        let in_source: BTreeSet<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
                .bind(name)
                .fetch_all(&mut *conn)
                .await
                .map_err(source_fault(src_path))?
                .into_iter()
                .collect();
        let in_target: BTreeSet<String> = columns.iter().map(|c| c.name.clone()).collect();
        if in_source != in_target {
            return Err(OpsError::Refused(format!(
                "the columns of {name} differ: only in the source {:?}, only in the target {:?}",
                in_source.difference(&in_target).collect::<Vec<_>>(),
                in_target.difference(&in_source).collect::<Vec<_>>()
            )));
        }
        let refs: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT \"from\", \"to\" FROM pragma_foreign_key_list(?) WHERE \"table\" = ?",
        )
        .bind(name)
        .bind(name)
        .fetch_all(&mut *conn)
        .await
        .map_err(source_fault(src_path))?;
        let position = |c: &str| columns.iter().position(|col| col.name == c);
        let mut self_refs = Vec::new();
        for (from, to) in refs {
            let to = to.unwrap_or_else(|| "id".into());
            if let (Some(f), Some(t)) = (position(&from), position(&to)) {
                self_refs.push((f, t));
            }
        }
        tables.push(Table {
            name: name.clone(),
            columns,
            self_refs,
        });
    }
    Ok(tables)
}

/// Reads column `i` of a source row as `kind` wants it.
fn source_cell(row: &SqliteRow, i: usize, kind: Kind, what: &str) -> Result<Cell, OpsError> {
    use sea_orm::sqlx::ValueRef;
    let bad = |e: &dyn std::fmt::Display| {
        OpsError::Refused(one_line(format!(
            "the source's {what} holds a value the move cannot read as {kind:?}: {e}"
        )))
    };
    let raw = row.try_get_raw(i).map_err(|e| bad(&e))?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    Ok(match kind {
        Kind::Uuid => {
            let bytes: Vec<u8> = row.try_get_unchecked(i).map_err(|e| bad(&e))?;
            let id = if bytes.len() == 16 {
                Uuid::from_slice(&bytes).map_err(|e| bad(&e))?
            } else {
                let text = std::str::from_utf8(&bytes).map_err(|e| bad(&e))?;
                Uuid::parse_str(text.trim()).map_err(|e| bad(&e))?
            };
            Cell::Uuid(id)
        }
        Kind::Timestamptz => {
            let t: DateTime<Utc> = row.try_get_unchecked(i).map_err(|e| bad(&e))?;
            Cell::Time(to_micros(t))
        }
        Kind::Timestamp => {
            let t: NaiveDateTime = row.try_get_unchecked(i).map_err(|e| bad(&e))?;
            Cell::Naive(t.with_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t))
        }
        Kind::Date => Cell::Date(row.try_get_unchecked(i).map_err(|e| bad(&e))?),
        Kind::Bool => Cell::Bool(row.try_get_unchecked(i).map_err(|e| bad(&e))?),
        Kind::Int2 | Kind::Int4 | Kind::Int8 => {
            let n: i64 = row.try_get_unchecked(i).map_err(|e| bad(&e))?;
            let fits = match kind {
                Kind::Int2 => i16::try_from(n).is_ok(),
                Kind::Int4 => i32::try_from(n).is_ok(),
                _ => true,
            };
            if !fits {
                return Err(bad(&format!("{n} is out of range")));
            }
            Cell::Int(n)
        }
        Kind::Float4 => {
            let f: f64 = row.try_get_unchecked(i).map_err(|e| bad(&e))?;
            Cell::Float(f64::from(f as f32))
        }
        Kind::Float8 => Cell::Float(row.try_get_unchecked(i).map_err(|e| bad(&e))?),
        Kind::Numeric => {
            let text = match raw.type_info().to_string().as_str() {
                "INTEGER" => row.try_get_unchecked::<i64, _>(i).map(|n| n.to_string()),
                "REAL" => row.try_get_unchecked::<f64, _>(i).map(|n| n.to_string()),
                _ => row.try_get_unchecked::<String, _>(i),
            }
            .map_err(|e| bad(&e))?;
            Cell::Text(text)
        }
        Kind::Text => Cell::Text(row.try_get_unchecked(i).map_err(|e| bad(&e))?),
        Kind::Json | Kind::Jsonb => {
            let text: String = row.try_get_unchecked(i).map_err(|e| bad(&e))?;
            Cell::Json(serde_json::from_str(&text).map_err(|e| bad(&e))?)
        }
        Kind::Bytes => Cell::Bytes(row.try_get_unchecked(i).map_err(|e| bad(&e))?),
    })
}

/// Reads column `i` of a target row (numeric and JSON selected as text).
fn target_cell(row: &PgRow, i: usize, kind: Kind, what: &str) -> Result<Cell, OpsError> {
    let bad = |e: sqlx::Error| {
        OpsError::Refused(one_line(format!(
            "reading back {what} from the target: {e}"
        )))
    };
    let cell = match kind {
        Kind::Uuid => row.try_get::<Option<Uuid>, _>(i).map(|v| v.map(Cell::Uuid)),
        Kind::Timestamptz => row
            .try_get::<Option<DateTime<Utc>>, _>(i)
            .map(|v| v.map(Cell::Time)),
        Kind::Timestamp => row
            .try_get::<Option<NaiveDateTime>, _>(i)
            .map(|v| v.map(Cell::Naive)),
        Kind::Date => row
            .try_get::<Option<NaiveDate>, _>(i)
            .map(|v| v.map(Cell::Date)),
        Kind::Bool => row.try_get::<Option<bool>, _>(i).map(|v| v.map(Cell::Bool)),
        Kind::Int2 => row
            .try_get::<Option<i16>, _>(i)
            .map(|v| v.map(|n| Cell::Int(n.into()))),
        Kind::Int4 => row
            .try_get::<Option<i32>, _>(i)
            .map(|v| v.map(|n| Cell::Int(n.into()))),
        Kind::Int8 => row.try_get::<Option<i64>, _>(i).map(|v| v.map(Cell::Int)),
        Kind::Float4 => row
            .try_get::<Option<f32>, _>(i)
            .map(|v| v.map(|n| Cell::Float(n.into()))),
        Kind::Float8 => row.try_get::<Option<f64>, _>(i).map(|v| v.map(Cell::Float)),
        Kind::Numeric | Kind::Text => row
            .try_get::<Option<String>, _>(i)
            .map(|v| v.map(Cell::Text)),
        Kind::Json | Kind::Jsonb => {
            let text = row.try_get::<Option<String>, _>(i).map_err(bad)?;
            return match text {
                None => Ok(Cell::Null),
                Some(t) => serde_json::from_str(&t)
                    .map(Cell::Json)
                    .map_err(|e| OpsError::Refused(one_line(format!("reading back {what}: {e}")))),
            };
        }
        Kind::Bytes => row
            .try_get::<Option<Vec<u8>>, _>(i)
            .map(|v| v.map(Cell::Bytes)),
    };
    Ok(cell.map_err(bad)?.unwrap_or(Cell::Null))
}

fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}

/// The bytes a row is hashed by: the same for equal rows on either side.
fn encode_row(cells: &[Cell]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cells.len() * 16);
    for cell in cells {
        encode_cell(cell, &mut out);
    }
    out
}

fn encode_cell(cell: &Cell, out: &mut Vec<u8>) {
    let mut bytes = |tag: u8, b: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    };
    match cell {
        Cell::Null => bytes(0, &[]),
        Cell::Bool(b) => bytes(1, &[u8::from(*b)]),
        Cell::Int(n) => bytes(2, &n.to_le_bytes()),
        Cell::Float(f) => bytes(3, &f.to_bits().to_le_bytes()),
        Cell::Text(s) => bytes(4, s.as_bytes()),
        Cell::Uuid(u) => bytes(5, u.as_bytes()),
        Cell::Time(t) => bytes(6, &t.timestamp_micros().to_le_bytes()),
        Cell::Naive(t) => bytes(7, &t.and_utc().timestamp_micros().to_le_bytes()),
        Cell::Date(d) => bytes(8, d.to_string().as_bytes()),
        Cell::Json(v) => {
            let mut text = String::new();
            canonical_json(v, &mut text);
            bytes(9, text.as_bytes())
        }
        Cell::Bytes(b) => bytes(10, b),
    }
}

/// JSON with object keys sorted, whatever order either database kept them in.
fn canonical_json(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (n, key) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    canonical_json(v, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// An order-free digest of a table: the sorted row digests, hashed.
fn table_digest(mut rows: Vec<[u8; 32]>) -> String {
    rows.sort_unstable();
    let mut hasher = Sha256::new();
    for row in &rows {
        hasher.update(row);
    }
    hex::encode(hasher.finalize())
}

struct Copied {
    rows: u64,
    written: u64,
    digest: String,
}

/// Copies one table (rows already there are left as they are) and digests the source's rows.
async fn copy_table(
    conn: &mut SqliteConnection,
    pool: &PgPool,
    url: &DatabaseUrl,
    src_path: &Path,
    table: &Table,
) -> Result<Copied, OpsError> {
    let columns: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    let select = format!("SELECT {} FROM {}", columns.join(", "), quote(&table.name));
    let batch_rows = (MAX_PARAMS / table.columns.len().max(1)).clamp(1, MAX_BATCH_ROWS);
    let mut txn = pool.begin().await.map_err(target_fault(url))?;
    let mut row_digests = Vec::new();
    let mut written = 0u64;
    let mut batch: Vec<Vec<Cell>> = Vec::with_capacity(batch_rows);

    let read = |row: &SqliteRow| -> Result<Vec<Cell>, OpsError> {
        table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| source_cell(row, i, c.kind, &format!("{}.{}", table.name, c.name)))
            .collect()
    };

    if table.self_refs.is_empty() {
        let mut rows = sqlx::query(&select).fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.map_err(source_fault(src_path))? {
            let cells = read(&row)?;
            row_digests.push(Sha256::digest(encode_row(&cells)).into());
            batch.push(cells);
            if batch.len() == batch_rows {
                written += insert_batch(&mut txn, url, table, &batch).await?;
                batch.clear();
            }
        }
    } else {
        // Rows that name another row of their table go in after it.
        let mut all = Vec::new();
        let mut rows = sqlx::query(&select).fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.map_err(source_fault(src_path))? {
            all.push(read(&row)?);
        }
        drop(rows);
        for cells in parents_first(table, all)? {
            row_digests.push(Sha256::digest(encode_row(&cells)).into());
            batch.push(cells);
            if batch.len() == batch_rows {
                written += insert_batch(&mut txn, url, table, &batch).await?;
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        written += insert_batch(&mut txn, url, table, &batch).await?;
    }
    txn.commit().await.map_err(target_fault(url))?;
    Ok(Copied {
        rows: row_digests.len() as u64,
        written,
        digest: table_digest(row_digests),
    })
}

/// Orders the rows of a table that refers to itself so every row comes after the rows
/// it names (each batch is its own statement, checked as it ends).
fn parents_first(table: &Table, rows: Vec<Vec<Cell>>) -> Result<Vec<Vec<Cell>>, OpsError> {
    let key = |cell: &Cell| {
        let mut out = Vec::new();
        encode_cell(cell, &mut out);
        out
    };
    let mut placed: HashSet<Vec<u8>> = HashSet::new();
    let mut ordered = Vec::with_capacity(rows.len());
    let mut left = rows;
    while !left.is_empty() {
        let before = left.len();
        let mut waiting = Vec::new();
        for row in left {
            let ready = table.self_refs.iter().all(|&(from, to)| {
                let parent = &row[from];
                *parent == Cell::Null || placed.contains(&key(parent)) || *parent == row[to]
            });
            if ready {
                for &(_, to) in &table.self_refs {
                    placed.insert(key(&row[to]));
                }
                ordered.push(row);
            } else {
                waiting.push(row);
            }
        }
        if waiting.len() == before {
            return Err(OpsError::Refused(format!(
                "{} rows of {} name rows of their table that are not there",
                waiting.len(),
                table.name
            )));
        }
        left = waiting;
    }
    Ok(ordered)
}

/// One `INSERT … ON CONFLICT DO NOTHING` of a batch; answers the rows it wrote.
async fn insert_batch(
    txn: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    url: &DatabaseUrl,
    table: &Table,
    rows: &[Vec<Cell>],
) -> Result<u64, OpsError> {
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        quote(&table.name),
        table
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut n = 0usize;
    for r in 0..rows.len() {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (c, column) in table.columns.iter().enumerate() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            match column.kind.cast() {
                Some(cast) => {
                    let _ = write!(sql, "${n}::{cast}");
                }
                None => {
                    let _ = write!(sql, "${n}");
                }
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    let mut query = sqlx::query(&sql);
    for row in rows {
        for (cell, column) in row.iter().zip(&table.columns) {
            query = bind(query, column.kind, cell);
        }
    }
    let done = query.execute(&mut **txn).await.map_err(|e| {
        OpsError::Refused(one_line(format!(
            "copying {} into {}: {e}",
            table.name,
            url.redacted()
        )))
    })?;
    Ok(done.rows_affected())
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds a value with the column's type (NULL typed too, as PostgreSQL wants).
fn bind<'q>(query: PgQuery<'q>, kind: Kind, cell: &Cell) -> PgQuery<'q> {
    match (kind, cell) {
        (Kind::Uuid, Cell::Uuid(u)) => query.bind(Some(*u)),
        (Kind::Uuid, _) => query.bind(None::<Uuid>),
        (Kind::Timestamptz, Cell::Time(t)) => query.bind(Some(*t)),
        (Kind::Timestamptz, _) => query.bind(None::<DateTime<Utc>>),
        (Kind::Timestamp, Cell::Naive(t)) => query.bind(Some(*t)),
        (Kind::Timestamp, _) => query.bind(None::<NaiveDateTime>),
        (Kind::Date, Cell::Date(d)) => query.bind(Some(*d)),
        (Kind::Date, _) => query.bind(None::<NaiveDate>),
        (Kind::Bool, Cell::Bool(b)) => query.bind(Some(*b)),
        (Kind::Bool, _) => query.bind(None::<bool>),
        // In range: checked as the source was read.
        (Kind::Int2, Cell::Int(n)) => query.bind(i16::try_from(*n).ok()),
        (Kind::Int2, _) => query.bind(None::<i16>),
        (Kind::Int4, Cell::Int(n)) => query.bind(i32::try_from(*n).ok()),
        (Kind::Int4, _) => query.bind(None::<i32>),
        (Kind::Int8, Cell::Int(n)) => query.bind(Some(*n)),
        (Kind::Int8, _) => query.bind(None::<i64>),
        (Kind::Float4, Cell::Float(f)) => query.bind(Some(*f as f32)),
        (Kind::Float4, _) => query.bind(None::<f32>),
        (Kind::Float8, Cell::Float(f)) => query.bind(Some(*f)),
        (Kind::Float8, _) => query.bind(None::<f64>),
        (Kind::Numeric | Kind::Text, Cell::Text(s)) => query.bind(Some(s.clone())),
        (Kind::Json | Kind::Jsonb, Cell::Json(v)) => query.bind(Some(v.to_string())),
        (Kind::Numeric | Kind::Text | Kind::Json | Kind::Jsonb, _) => query.bind(None::<String>),
        (Kind::Bytes, Cell::Bytes(b)) => query.bind(Some(b.clone())),
        (Kind::Bytes, _) => query.bind(None::<Vec<u8>>),
    }
}

/// A table's rows and digest as the target holds them.
async fn target_digest(
    pool: &PgPool,
    url: &DatabaseUrl,
    table: &Table,
) -> Result<(u64, String), OpsError> {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.kind.cast() {
            Some(_) => format!("{}::text", quote(&c.name)),
            None => quote(&c.name),
        })
        .collect();
    let sql = format!("SELECT {} FROM {}", columns.join(", "), quote(&table.name));
    let mut rows = sqlx::query(&sql).fetch(pool);
    let mut digests = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(target_fault(url))? {
        let cells: Vec<Cell> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| target_cell(&row, i, c.kind, &format!("{}.{}", table.name, c.name)))
            .collect::<Result<_, _>>()?;
        digests.push(Sha256::digest(encode_row(&cells)).into());
    }
    Ok((digests.len() as u64, table_digest(digests)))
}

/// Sets every sequence of the target past the ids copied into its column.
async fn set_sequences(pool: &PgPool, url: &DatabaseUrl) -> Result<(), OpsError> {
    let owned: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, \
                pg_get_serial_sequence(quote_ident(table_name), column_name)::text \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() \
           AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .map_err(target_fault(url))?;
    for (table, column, sequence) in owned {
        sqlx::query(&format!(
            "SELECT setval($1::regclass, COALESCE((SELECT MAX({}) FROM {}), 0) + 1, false)",
            quote(&column),
            quote(&table)
        ))
        .bind(&sequence)
        .execute(pool)
        .await
        .map_err(target_fault(url))?;
    }
    Ok(())
}

fn decode_sha256(hex_digest: &str) -> Option<[u8; 32]> {
    hex::decode(hex_digest).ok()?.try_into().ok()
}

/// How one object went.
enum Sent {
    AlreadyThere,
    Copied,
    /// A fault of the source object itself (named), not of the store.
    Problem(String),
}

/// Sends every photo's object to the bucket (skipping those already there whole) and
/// reads each back; answers how many were already there.
async fn move_objects(
    blob_root: &Path,
    s3: &S3Config,
    photos: &[PhotoRow],
) -> Result<usize, OpsError> {
    let source = DiskStore::existing(blob_root);
    let target = S3Store::new(s3);
    let stop_after: Option<usize> = std::env::var(STOP_AFTER_OBJECTS)
        .ok()
        .and_then(|v| v.trim().parse().ok());
    let sent = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let total = photos.len();
    let (source, target, sent, done) = (&source, &target, &sent, &done);
    let outcomes: Vec<Result<Sent, BlobError>> = futures::stream::iter(photos)
        .map(move |photo| async move {
            let outcome = move_object(source, target, photo).await;
            done.fetch_add(1, Ordering::Relaxed);
            if let Ok(Sent::Copied) = outcome {
                let n = sent.fetch_add(1, Ordering::SeqCst) + 1;
                if stop_after == Some(n) {
                    eprintln!(
                        "donghanh: stopping after {n} objects ({STOP_AFTER_OBJECTS}, for tests)"
                    );
                    std::process::exit(3);
                }
            }
            outcome
        })
        .buffer_unordered(OBJECT_CONCURRENCY)
        .collect()
        .await;
    let mut already = 0;
    let mut problems = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(Sent::AlreadyThere) => already += 1,
            Ok(Sent::Copied) => {}
            Ok(Sent::Problem(p)) => problems.push(p),
            Err(e) => {
                return Err(OpsError::Refused(one_line(format!(
                    "the object store s3://{}/{} failed ({} of {total} objects handled): {e}; \
                     the rows and the objects sent so far are kept, run the same move again \
                     to go on",
                    s3.bucket,
                    s3.prefix,
                    done.load(Ordering::Relaxed)
                ))))
            }
        }
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(OpsError::Damaged {
            what: format!(
                "the blob store {} does not hold what the database names; the move is not finished",
                blob_root.display()
            ),
            problems,
        });
    }
    Ok(already)
}

async fn move_object(
    source: &DiskStore,
    target: &S3Store,
    photo: &PhotoRow,
) -> Result<Sent, BlobError> {
    let key = &photo.object_key;
    let Some(sha) = decode_sha256(&photo.stored_sha256) else {
        return Ok(Sent::Problem(format!(
            "photo row for object {key} records a malformed SHA-256 {:?}",
            photo.stored_sha256
        )));
    };
    if stored_digest(target, key).await? == Some(sha) {
        return Ok(Sent::AlreadyThere);
    }
    let path = source.object_file(key)?;
    match target
        .put(key, BlobBody::File(path), sha, &photo.content_type)
        .await
    {
        Ok(_) => {}
        Err(BlobError::ChecksumMismatch) => {
            return Ok(Sent::Problem(format!(
                "object {key} differs from the SHA-256 its photo row records"
            )))
        }
        Err(BlobError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Sent::Problem(format!(
                "object {key} is missing from the blob store"
            )))
        }
        Err(e) => return Err(e),
    }
    match stored_digest(target, key).await? {
        Some(d) if d == sha => Ok(Sent::Copied),
        _ => Ok(Sent::Problem(format!(
            "object {key} read back from the bucket differs from what was sent"
        ))),
    }
}

/// The SHA-256 of an object as the store gives it back, `None` when absent.
async fn stored_digest(store: &S3Store, key: &str) -> Result<Option<[u8; 32]>, BlobError> {
    let Some(mut object) = store.get(key).await? else {
        return Ok(None);
    };
    let mut hasher = Sha256::new();
    while let Some(chunk) = object.body.try_next().await? {
        hasher.update(&chunk);
    }
    Ok(Some(hasher.finalize().into()))
}

/// Photos staying on disk: checks each object there against its row.
async fn check_disk_objects(blob_root: &Path, photos: &[PhotoRow]) -> Result<usize, OpsError> {
    let store = DiskStore::existing(blob_root);
    let mut problems = Vec::new();
    for photo in photos {
        let path = store.object_file(&photo.object_key)?;
        let digest = tokio::task::spawn_blocking(move || digest_file(&path))
            .await
            .map_err(|e| OpsError::Refused(one_line(e)))?;
        match digest {
            Ok(d) if d.sha256 == photo.stored_sha256 => {}
            Ok(_) => problems.push(format!(
                "object {} differs from the SHA-256 its photo row records",
                photo.object_key
            )),
            Err(e) => problems.push(format!("object {}: {e}", photo.object_key)),
        }
    }
    if !problems.is_empty() {
        return Err(OpsError::Damaged {
            what: format!(
                "the blob store {} does not hold what the database names",
                blob_root.display()
            ),
            problems,
        });
    }
    Ok(photos.len())
}

/// What the operator sets next, without any secret: where each one is read from.
pub fn next_steps(source: &Source, target: &Target, report: &MoveReport) -> String {
    let rows: u64 = report.tables.values().sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "moved {} into {}{}: {rows} rows in {} tables ({} written now), {} photo objects \
         ({:.1} MB{}), in {:.1} s",
        source.layout.data_dir.display(),
        target.database_url.redacted(),
        match &target.s3 {
            Some(s3) => format!(" and s3://{}/{}", s3.bucket, s3.prefix),
            None => String::new(),
        },
        report.tables.len(),
        report.rows_written,
        report.objects,
        report.object_bytes as f64 / 1_000_000.0,
        if report.resumed {
            format!(", {} already there; resumed", report.objects_already_there)
        } else {
            String::new()
        },
        report.total_secs
    );
    let _ = writeln!(
        out,
        "verified: every table's rows, every object's SHA-256, the report cells; the source is unchanged"
    );
    let _ = writeln!(
        out,
        "\nStop every server on {} for good (keep the directory, untouched, as the fallback) \
         and start the new servers with:",
        source.layout.data_dir.display()
    );
    let _ = writeln!(
        out,
        "  DATABASE_URL=<the URL given to --to-database>   # {}",
        target.database_url.redacted()
    );
    match &source.jwt_key {
        KeySource::File(path) => {
            let _ = writeln!(out, "  JWT_KEYS=\"local:$(cat {})\"", path.display());
        }
        KeySource::Environment => {
            let _ = writeln!(out, "  JWT_KEYS=<the same value as now, first key first>");
        }
    }
    match &source.uic_key {
        KeySource::File(path) => {
            let _ = writeln!(out, "  UIC_HMAC_KEY=\"$(cat {})\"", path.display());
        }
        KeySource::Environment => {
            let _ = writeln!(out, "  UIC_HMAC_KEY=<the same value as now>");
        }
    }
    match &target.s3 {
        Some(s3) => {
            let _ = writeln!(out, "  BLOB_STORE=s3");
            if let Some(endpoint) = &s3.endpoint {
                let _ = writeln!(out, "  S3_ENDPOINT={endpoint}");
            }
            let _ = writeln!(out, "  S3_REGION={}", s3.region);
            let _ = writeln!(out, "  S3_BUCKET={}", s3.bucket);
            if !s3.prefix.is_empty() {
                let _ = writeln!(out, "  S3_PREFIX={}", s3.prefix);
            }
            let _ = writeln!(out, "  S3_FORCE_PATH_STYLE={}", s3.force_path_style);
            let _ = writeln!(out, "  S3_ACCESS_KEY_ID={}", s3.access_key_id);
            let _ = writeln!(out, "  S3_SECRET_ACCESS_KEY=<the same as for this move>");
        }
        None => {
            let _ = writeln!(out, "  BLOB_STORE=disk");
            let _ = writeln!(out, "  BLOB_DIR={}", source.blob_root.display());
        }
    }
    let _ = writeln!(
        out,
        "The keys must be exactly these: phones' access tokens are signed with the first, \
         and without the UIC key the same people cannot be recognised again. Keep both \
         with your production backups."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnectionTrait;

    /// A migrated SQLite file, as a pilot's first start leaves it.
    async fn migrated() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("donghanh.db");
        let url = DatabaseUrl::new(format!("sqlite://{}?mode=rwc", path.display()));
        let db = crate::db::connect_and_migrate(&url).await.expect("migrate");
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .expect("checkpoint");
        db.close().await.expect("close");
        (dir, path)
    }

    #[tokio::test]
    async fn every_table_of_the_migrations_is_copied_referenced_tables_first() {
        let (_dir, path) = migrated().await;
        let mut conn = open_source(&path).await.expect("open");
        let order = copy_order(&mut conn, &path).await.expect("order");
        for table in migrations::TABLES {
            assert!(order.iter().any(|t| t == table), "{table} is not copied");
        }
        let all: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )
        .fetch_all(&mut conn)
        .await
        .expect("tables");
        for table in all.iter().filter(|t| *t != MIGRATIONS_TABLE) {
            assert!(order.contains(table), "{table} is not copied");
        }
        let at = |t: &str| order.iter().position(|x| x == t).expect("present");
        assert!(at("org_units") < at("users"));
        assert!(at("users") < at("submissions"));
        assert!(at("submissions") < at("submission_photos"));
    }

    #[tokio::test]
    async fn the_migrations_seed_only_the_tables_the_move_replaces() {
        let (_dir, path) = migrated().await;
        let mut conn = open_source(&path).await.expect("open");
        let counts = sqlite::table_counts(&mut conn, &path)
            .await
            .expect("counts");
        let seeded: Vec<&str> = counts
            .iter()
            .filter(|(t, n)| **n > 0 && *t != MIGRATIONS_TABLE)
            .map(|(t, _)| t.as_str())
            .collect();
        let mut expected = MIGRATION_SEEDED.to_vec();
        expected.sort_unstable();
        assert_eq!(seeded, expected);
    }

    #[test]
    fn digests_ignore_row_order_and_json_key_order() {
        let a = vec![
            Cell::Json(serde_json::json!({"b": 1, "a": [true, null]})),
            Cell::Int(3),
        ];
        let b = vec![
            Cell::Json(serde_json::from_str(r#"{"a":[true,null],"b":1}"#).expect("json")),
            Cell::Int(3),
        ];
        assert_eq!(encode_row(&a), encode_row(&b));
        let r1: [u8; 32] = Sha256::digest(encode_row(&a)).into();
        let r2: [u8; 32] = Sha256::digest(encode_row(&[Cell::Null])).into();
        assert_eq!(table_digest(vec![r1, r2]), table_digest(vec![r2, r1]));
        assert_ne!(table_digest(vec![r1]), table_digest(vec![r1, r1]));
    }

    #[test]
    fn parents_come_before_their_children() {
        let id = |n: u8| Cell::Uuid(Uuid::from_bytes([n; 16]));
        let table = Table {
            name: "org_units".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    kind: Kind::Uuid,
                },
                Column {
                    name: "parent_id".into(),
                    kind: Kind::Uuid,
                },
            ],
            self_refs: vec![(1, 0)],
        };
        let rows = vec![
            vec![id(3), id(2)],
            vec![id(2), id(1)],
            vec![id(1), Cell::Null],
        ];
        let ordered = parents_first(&table, rows).expect("ordered");
        assert_eq!(ordered[0][0], id(1));
        assert_eq!(ordered[1][0], id(2));
        assert_eq!(ordered[2][0], id(3));
        let orphan = vec![vec![id(4), id(9)]];
        assert!(parents_first(&table, orphan).is_err());
    }
}
