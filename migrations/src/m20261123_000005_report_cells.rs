//! Report cells: the indicators report precomputed per org unit and day (and month), so
//! a city-year report reads a few thousand cells instead of millions of facts.
//!
//! A `reach` cell holds, for one unit path and one day or month, the client keys reached
//! there (a compressed bitmap) and the additive figures (contact events, commodities,
//! referrals, sessions, support actions) as a JSON object. A `first` cell (path '')
//! holds the clients whose first approved contact in the program fell on that day or
//! month. `report_state` records which version of the cells' layout was built, so the
//! server rebuilds them from the facts when the layout changes (or on a new database).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReportCells {
    Table,
    Kind,
    Grain,
    StartsOn,
    OrgPath,
    Clients,
    Figures,
}

#[derive(DeriveIden)]
enum ReportState {
    Table,
    Id,
    Version,
    BuiltAt,
}

#[derive(DeriveIden)]
enum Referrals {
    Table,
    IssuedOn,
    OrgPath,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReportCells::Table)
                    .col(string_len(ReportCells::Kind, 8))
                    .col(string_len(ReportCells::Grain, 8))
                    .col(date(ReportCells::StartsOn))
                    .col(string_len(ReportCells::OrgPath, 1024))
                    .col(binary(ReportCells::Clients))
                    .col(text(ReportCells::Figures))
                    .primary_key(
                        Index::create()
                            .col(ReportCells::Kind)
                            .col(ReportCells::Grain)
                            .col(ReportCells::StartsOn)
                            .col(ReportCells::OrgPath),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReportState::Table)
                    .col(integer(ReportState::Id).primary_key())
                    .col(integer(ReportState::Version))
                    .col(timestamp_with_time_zone(ReportState::BuiltAt))
                    .to_owned(),
            )
            .await?;
        // A day cell is recomputed from the referrals issued at its unit on its day.
        manager
            .create_index(
                Index::create()
                    .name("idx_referrals_issued_on_path")
                    .table(Referrals::Table)
                    .col(Referrals::IssuedOn)
                    .col(Referrals::OrgPath)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_referrals_issued_on_path")
                    .table(Referrals::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            ReportState::Table.into_iden(),
            ReportCells::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
