//! The Đồng Hành schema, as sea-orm migrations: the only place the schema changes.
//!
//! Migrations build tables with sea-query so the same steps run on SQLite (the
//! embedded default) and PostgreSQL (production). They never import the server's
//! entities: a migration describes the schema as it was on its day.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_foundation;
mod m20261123_000002_intake;
mod m20261123_000003_photos;
mod m20261123_000004_review_reports;
mod m20261123_000005_report_cells;
mod m20261202_000006_login_failures_by_time;
mod m20261202_000007_devices_odk;
mod m20261202_000008_console_sessions;
mod m20261202_000009_queue_by_received;
mod m20261202_000010_sync_epoch;
mod m20261202_000011_sync_feeds;

/// Applies every migration of the project in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_foundation::Migration),
            Box::new(m20261123_000002_intake::Migration),
            Box::new(m20261123_000003_photos::Migration),
            Box::new(m20261123_000004_review_reports::Migration),
            Box::new(m20261123_000005_report_cells::Migration),
            Box::new(m20261202_000006_login_failures_by_time::Migration),
            Box::new(m20261202_000007_devices_odk::Migration),
            Box::new(m20261202_000008_console_sessions::Migration),
            Box::new(m20261202_000009_queue_by_received::Migration),
            Box::new(m20261202_000010_sync_epoch::Migration),
            Box::new(m20261202_000011_sync_feeds::Migration),
        ]
    }
}

/// The tables the migrations create, newest last; tests check each one appears and disappears.
pub const TABLES: &[&str] = &[
    "org_units",
    "teams",
    "users",
    "refresh_tokens",
    "login_failures",
    "audit_log",
    "sync_counter",
    "forms",
    "hotspots",
    "submissions",
    "submission_events",
    "clients",
    "contacts",
    "commodity_distributions",
    "referrals",
    "handoffs",
    "group_sessions",
    "support_actions",
    "submission_photos",
    "submission_revisions",
    "client_keys",
    "approved_contacts",
    "targets",
    "stock_movements",
    "report_cells",
    "report_state",
    "devices",
    "odk_instances",
    "odk_files",
    "console_sessions",
    "sync_feeds",
];
