//! The review queue in order: `status = 'submitted'` oldest first by `(received_at, id)`.
//! With only `(status, occurred_on)` to go by, SQLite took every submitted row and sorted
//! them (165 ms for the queue's first page with 99,000 visits waiting; PostgreSQL 7.5 ms,
//! `scripts/bench-console.sh`); this index walks them in the queue's own order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Submissions {
    Table,
    Status,
    ReceivedAt,
    Id,
}

const INDEX: &str = "idx_submissions_status_received";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Submissions::Table)
                    .col(Submissions::Status)
                    .col(Submissions::ReceivedAt)
                    .col(Submissions::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(Submissions::Table)
                    .to_owned(),
            )
            .await
    }
}
