//! Database access: sea-orm entities (no serde: the wire types live in shared-models),
//! connection set-up, and the scoped finders every query starts from.

pub mod entities;
pub mod scope;

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    Statement, Value,
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
pub async fn connect(url: &DatabaseUrl) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.expose().to_string());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if url.is_postgres() {
        options.max_connections(20).min_connections(1);
    } else {
        // SQLite allows one writer; a single connection serialises writers cleanly
        // instead of failing with "database is locked" under concurrent intake.
        options.max_connections(1).min_connections(1);
    }
    let db = Database::connect(options).await?;
    if !url.is_postgres() {
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;")
            .await?;
    }
    Ok(db)
}

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
