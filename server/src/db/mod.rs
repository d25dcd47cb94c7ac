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
    Migrator::up(&db, None).await?;
    Ok(db)
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
