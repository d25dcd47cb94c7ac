//! Failed logins by time: every failed login now also removes all records past the
//! throttle window, whoever they were for (a flood of random usernames left one row per
//! name forever), so that delete needs an index on `at` alone.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    At,
}

const INDEX: &str = "idx_login_failures_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(LoginFailures::Table)
                    .col(LoginFailures::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(LoginFailures::Table)
                    .to_owned(),
            )
            .await
    }
}
