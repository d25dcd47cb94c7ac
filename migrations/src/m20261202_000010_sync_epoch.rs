//! `sync_counter.epoch`: which life of the database a phone's sync cursor belongs to.
//!
//! Restoring an older backup winds the change numbers back: a phone that synced after
//! the backup holds a cursor past the restored counter, and once new changes number
//! past it again, the ones in between would be skipped without a word. `donghanh
//! restore` gives the restored database a new random epoch; a cursor of another epoch
//! is refused ("sync from the start"), so the phone reads the restored truth whole. A
//! move copies the epoch with the row: the phones' cursors go on.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SyncCounter {
    Table,
    Epoch,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SyncCounter::Table)
                    .add_column(
                        ColumnDef::new(SyncCounter::Epoch)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SyncCounter::Table)
                    .drop_column(SyncCounter::Epoch)
                    .to_owned(),
            )
            .await
    }
}
