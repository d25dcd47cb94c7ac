//! `sync_feeds`: one change counter per phone user, so that writers for different people
//! no longer queue on one row.
//!
//! Until now every transaction that changed something a phone syncs took its number from
//! the one-row `sync_counter`, and the row lock, held to commit, put every such commit in
//! the world behind the one before it (no group commit: one WAL flush at a time). What a
//! phone syncs is its own submissions and the referrals it issued, so each of those rows
//! has exactly one reader; its number now comes from that reader's feed row, locked the
//! same way, which keeps the cursor guarantee (a change numbered at or below a feed's
//! value has committed) per feed and serialises only one person's own changes. Forms,
//! which every phone reads, stay on `sync_counter`; so does the database's epoch.
//!
//! Every existing user's feed starts at the global counter's value, so an old cursor
//! (one number) is valid in both number spaces: rows numbered before this migration are
//! at or below it in both. A user created later gets a feed row with its first change.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SyncFeeds {
    Table,
    UserId,
    Value,
}

#[derive(DeriveIden)]
enum SyncCounter {
    Table,
    Id,
    Value,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncFeeds::Table)
                    .col(pk_uuid(SyncFeeds::UserId))
                    .col(big_integer(SyncFeeds::Value))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sync_feeds_user")
                            .from(SyncFeeds::Table, SyncFeeds::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        let global = Query::select()
            .column(SyncCounter::Value)
            .from(SyncCounter::Table)
            .and_where(Expr::col(SyncCounter::Id).eq(1))
            .to_owned();
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(SyncFeeds::Table)
                    .columns([SyncFeeds::UserId, SyncFeeds::Value])
                    .select_from(
                        Query::select()
                            .column(Users::Id)
                            .expr(SimpleExpr::SubQuery(
                                None,
                                Box::new(global.into_sub_query_statement()),
                            ))
                            .from(Users::Table)
                            .to_owned(),
                    )
                    .map_err(|e| DbErr::Migration(e.to_string()))?
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The global counter must stay ahead of every number a feed gave out, or changes
        // made after this migration would be numbered again.
        let highest = Query::select()
            .expr(Func::max(Expr::col(SyncFeeds::Value)))
            .from(SyncFeeds::Table)
            .to_owned();
        manager
            .exec_stmt(
                Query::update()
                    .table(SyncCounter::Table)
                    .value(
                        SyncCounter::Value,
                        Func::coalesce([
                            SimpleExpr::SubQuery(
                                None,
                                Box::new(highest.clone().into_sub_query_statement()),
                            ),
                            Expr::col(SyncCounter::Value).into(),
                        ]),
                    )
                    .and_where(Expr::col(SyncCounter::Id).eq(1))
                    .and_where(Expr::col(SyncCounter::Value).lt(SimpleExpr::SubQuery(
                        None,
                        Box::new(highest.into_sub_query_statement()),
                    )))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(SyncFeeds::Table).to_owned())
            .await
    }
}
