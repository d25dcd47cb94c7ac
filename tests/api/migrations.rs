//! Every migration runs up, down and up again, on SQLite and on PostgreSQL.

use migrations::{Migrator, MigratorTrait, TABLES};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::helpers::{pg_admin_url, PgDatabase};

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table'"
        }
        _ => "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'",
    };
    let rows = db
        .query_all(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("list tables");
    rows.iter()
        .map(|r| r.try_get::<String>("", "t").expect("name"))
        .collect()
}

async fn org_unit_count(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM org_units",
        ))
        .await
        .expect("count")
        .expect("row");
    row.try_get::<i64>("", "n").expect("n")
}

async fn up_down_up(db: &DatabaseConnection) {
    Migrator::up(db, None).await.expect("up");
    let present = tables(db).await;
    for t in TABLES {
        assert!(
            present.contains(&t.to_string()),
            "{t} after up: {present:?}"
        );
    }
    assert_eq!(org_unit_count(db).await, 31, "Hanoi and its 30 districts");
    // Up again is a no-op.
    Migrator::up(db, None).await.expect("up twice");
    assert_eq!(org_unit_count(db).await, 31);

    Migrator::down(db, None).await.expect("down");
    let present = tables(db).await;
    for t in TABLES {
        assert!(
            !present.contains(&t.to_string()),
            "{t} after down: {present:?}"
        );
    }
    Migrator::up(db, None).await.expect("up after down");
    assert_eq!(org_unit_count(db).await, 31);
}

#[tokio::test]
async fn migrations_up_down_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let db = Database::connect(&url).await.expect("sqlite");
    up_down_up(&db).await;
}

#[tokio::test]
async fn migrations_up_down_on_postgres() {
    let Some(admin) = pg_admin_url() else { return };
    let pg = PgDatabase::create(&admin).await;
    let db = Database::connect(&pg.url).await.expect("postgres");
    up_down_up(&db).await;
    db.close().await.ok();
}

/// Servers starting at the same moment on a new PostgreSQL database: one applies the
/// migrations while the others wait for it, and every one starts.
#[tokio::test]
async fn servers_starting_together_migrate_once_on_postgres() {
    let Some(admin) = pg_admin_url() else { return };
    let pg = PgDatabase::create(&admin).await;
    let url = server::config::DatabaseUrl::new(pg.url.clone());
    let starts = (0..4).map(|_| server::db::connect_and_migrate(&url));
    let dbs: Vec<DatabaseConnection> = futures::future::join_all(starts)
        .await
        .into_iter()
        .map(|r| r.expect("every server starts"))
        .collect();
    let db = &dbs[0];
    assert_eq!(org_unit_count(db).await, 31, "seeded once");
    let applied = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(applied, Migrator::migrations().len() as i64);
    for db in dbs {
        db.close().await.ok();
    }
}
