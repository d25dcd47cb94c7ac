//! Database access: sea-orm entities (no serde: the wire types live in shared-models),
//! connection set-up, and the scoped finders every query starts from.

pub mod entities;
pub mod scope;

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    RuntimeErr, SqlxPostgresConnector, SqlxSqliteConnector, Statement, Value,
};

use crate::config::DatabaseUrl;

/// Connects to the database and applies pending migrations.
pub async fn connect_and_migrate(url: &DatabaseUrl) -> Result<DatabaseConnection, DbErr> {
    let db = connect(url).await?;
    migrate_up(url, &db).await?;
    Ok(db)
}

/// Session advisory lock held while migrating PostgreSQL ("dhmigrat").
const MIGRATION_LOCK: i64 = 0x6468_6d69_6772_6174;

/// Applies pending migrations. On PostgreSQL, servers starting at the same moment would
/// race to apply the same step (and all but one fail): each holds a session advisory
/// lock on a connection of its own while it migrates, so the others wait and then find
/// nothing pending. SQLite has one writer and one process.
pub async fn migrate_up(url: &DatabaseUrl, db: &DatabaseConnection) -> Result<(), DbErr> {
    if !url.is_postgres() {
        return Migrator::up(db, None).await;
    }
    let mut options = ConnectOptions::new(url.expose().to_string());
    options
        .sqlx_logging(false)
        .max_connections(1)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10));
    let lock = Database::connect(options).await?;
    lock.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .await?;
    let migrated = Migrator::up(db, None).await;
    let unlocked = lock
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await;
    // Closing the session releases the lock as well, should the unlock have failed.
    lock.close().await?;
    migrated?;
    unlocked.map(|_| ())
}

/// Connects to the database without touching the schema.
///
/// The pools are built with sqlx directly (sea-orm's options would ping every
/// connection each time it is handed out: one more round trip per read and per
/// transaction). A connection is pinged only when it has been idle for
/// [`PING_IF_IDLE`], long enough for PostgreSQL to have gone away meanwhile; one found
/// dead is dropped and another taken.
pub async fn connect(url: &DatabaseUrl) -> Result<DatabaseConnection, DbErr> {
    if url.is_postgres() {
        let options = url
            .expose()
            .parse::<PgConnectOptions>()
            .map_err(conn_err)?
            .disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(conn_err)?;
        return Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool));
    }
    // SQLite allows one writer; a single connection serialises writers cleanly
    // instead of failing with "database is locked" under concurrent intake.
    let options = url
        .expose()
        .parse::<SqliteConnectOptions>()
        .map_err(conn_err)?;
    let db = sqlite_pool(options, 1).await?;
    db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;")
        .await?;
    Ok(db)
}

/// How long a request waits for a free connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// A pooled PostgreSQL connection idle this long is pinged before it is used.
pub const PING_IF_IDLE: Duration = Duration::from_secs(15);

fn conn_err(e: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(e))
}

/// Read-only connections to SQLite beside its one writer (WAL lets readers run while a
/// transaction is open), so that an account check or a place lookup does not queue
/// behind another request's transaction. Only for reads that need nothing the caller
/// has not committed. On PostgreSQL, and for an in-memory SQLite database (which a
/// second pool would not see), the one pool serves reads as well.
pub async fn connect_readers(
    url: &DatabaseUrl,
    writer: &DatabaseConnection,
) -> Result<DatabaseConnection, DbErr> {
    if url.is_postgres() || url.sqlite_path().is_none() {
        return Ok(writer.clone());
    }
    let options = url
        .expose()
        .parse::<SqliteConnectOptions>()
        .map_err(conn_err)?
        .read_only(true)
        .create_if_missing(false);
    sqlite_pool(options, SQLITE_READERS).await
}

/// A pool of up to `max` connections to a SQLite file. A file in this process does not
/// go away: no ping.
async fn sqlite_pool(options: SqliteConnectOptions, max: u32) -> Result<DatabaseConnection, DbErr> {
    let pool = SqlitePoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .connect_with(options.disable_statement_logging())
        .await
        .map_err(conn_err)?;
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

/// Read-only SQLite connections: a few are plenty on the machines it runs on.
const SQLITE_READERS: u32 = 4;

/// A statement from SQL written with `?` placeholders, for either database (PostgreSQL
/// numbers them `$1`, `$2`, ...). For the few queries sea-query cannot say well.
pub fn sql(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DatabaseBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}
