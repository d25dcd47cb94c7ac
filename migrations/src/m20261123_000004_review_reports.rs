//! Review, referrals' loop, stock and reports: superseded revisions of submissions,
//! integer keys for clients (so reports count unique people fast), the contacts of
//! approved visits as report facts, targets, and the commodity stock ledger.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SubmissionRevisions {
    Table,
    Id,
    SubmissionId,
    Revision,
    FormVersion,
    AuthorId,
    OrgUnitId,
    OrgPath,
    HotspotId,
    Fingerprint,
    Answers,
    PhotoDigests,
    OccurredOn,
    StartedAt,
    CompletedAt,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum ClientKeys {
    Table,
    Id,
    UicHash,
    FirstApprovedOn,
}

#[derive(DeriveIden)]
enum ApprovedContacts {
    Table,
    SubmissionId,
    Position,
    ClientId,
    OrgPath,
    OccurredOn,
    CondomsMale,
    CondomsFemale,
    Lubricant,
    SelfTestKits,
}

#[derive(DeriveIden)]
enum Targets {
    Table,
    Id,
    OrgUnitId,
    Indicator,
    Period,
    PeriodFrom,
    PeriodTo,
    Value,
    UpdatedBy,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StockMovements {
    Table,
    Id,
    PeerId,
    Item,
    Kind,
    Quantity,
    OccurredOn,
    OrgUnitId,
    OrgPath,
    RecordedBy,
    Note,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Submissions {
    Table,
    Id,
    Kind,
    OccurredOn,
}

#[derive(DeriveIden)]
enum OrgUnits {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + 'static,
    cols: Vec<DynIden>,
) -> Result<(), DbErr> {
    let mut stmt = Index::create().name(name).table(table).to_owned();
    for col in cols {
        stmt.col(col);
    }
    manager.create_index(stmt).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SubmissionRevisions::Table)
                    .col(pk_uuid(SubmissionRevisions::Id))
                    .col(uuid(SubmissionRevisions::SubmissionId))
                    .col(integer(SubmissionRevisions::Revision))
                    .col(integer(SubmissionRevisions::FormVersion))
                    .col(uuid(SubmissionRevisions::AuthorId))
                    .col(uuid(SubmissionRevisions::OrgUnitId))
                    .col(string_len(SubmissionRevisions::OrgPath, 1024))
                    .col(uuid_null(SubmissionRevisions::HotspotId))
                    .col(string_len(SubmissionRevisions::Fingerprint, 64))
                    .col(json_binary(SubmissionRevisions::Answers))
                    .col(json_binary(SubmissionRevisions::PhotoDigests))
                    .col(date(SubmissionRevisions::OccurredOn))
                    .col(timestamp_with_time_zone(SubmissionRevisions::StartedAt))
                    .col(timestamp_with_time_zone(SubmissionRevisions::CompletedAt))
                    .col(timestamp_with_time_zone(SubmissionRevisions::ReceivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_submission_revisions_submission")
                            .from(
                                SubmissionRevisions::Table,
                                SubmissionRevisions::SubmissionId,
                            )
                            .to(Submissions::Table, Submissions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_submission_revisions")
                    .table(SubmissionRevisions::Table)
                    .col(SubmissionRevisions::SubmissionId)
                    .col(SubmissionRevisions::Revision)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClientKeys::Table)
                    .col(big_integer(ClientKeys::Id).auto_increment().primary_key())
                    .col(string_len_uniq(ClientKeys::UicHash, 64))
                    .col(date_null(ClientKeys::FirstApprovedOn))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApprovedContacts::Table)
                    .col(uuid(ApprovedContacts::SubmissionId))
                    .col(integer(ApprovedContacts::Position))
                    .col(big_integer(ApprovedContacts::ClientId))
                    .col(string_len(ApprovedContacts::OrgPath, 1024))
                    .col(date(ApprovedContacts::OccurredOn))
                    .col(integer(ApprovedContacts::CondomsMale))
                    .col(integer(ApprovedContacts::CondomsFemale))
                    .col(integer(ApprovedContacts::Lubricant))
                    .col(integer(ApprovedContacts::SelfTestKits))
                    .primary_key(
                        Index::create()
                            .col(ApprovedContacts::SubmissionId)
                            .col(ApprovedContacts::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_approved_contacts_submission")
                            .from(ApprovedContacts::Table, ApprovedContacts::SubmissionId)
                            .to(Submissions::Table, Submissions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_approved_contacts_occurred",
            ApprovedContacts::Table,
            vec![
                ApprovedContacts::OccurredOn.into_iden(),
                ApprovedContacts::OrgPath.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_approved_contacts_client",
            ApprovedContacts::Table,
            vec![ApprovedContacts::ClientId.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_submissions_kind_occurred",
            Submissions::Table,
            vec![
                Submissions::Kind.into_iden(),
                Submissions::OccurredOn.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Targets::Table)
                    .col(pk_uuid(Targets::Id))
                    .col(uuid(Targets::OrgUnitId))
                    .col(string_len(Targets::Indicator, 64))
                    .col(string_len(Targets::Period, 32))
                    .col(date(Targets::PeriodFrom))
                    .col(date(Targets::PeriodTo))
                    .col(big_integer(Targets::Value))
                    .col(uuid(Targets::UpdatedBy))
                    .col(timestamp_with_time_zone(Targets::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_targets_org_unit")
                            .from(Targets::Table, Targets::OrgUnitId)
                            .to(OrgUnits::Table, OrgUnits::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_targets")
                    .table(Targets::Table)
                    .col(Targets::OrgUnitId)
                    .col(Targets::Indicator)
                    .col(Targets::PeriodFrom)
                    .col(Targets::PeriodTo)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(StockMovements::Table)
                    .col(pk_uuid(StockMovements::Id))
                    .col(uuid(StockMovements::PeerId))
                    .col(string_len(StockMovements::Item, 32))
                    .col(string_len(StockMovements::Kind, 16))
                    .col(integer(StockMovements::Quantity))
                    .col(date(StockMovements::OccurredOn))
                    .col(uuid(StockMovements::OrgUnitId))
                    .col(string_len(StockMovements::OrgPath, 1024))
                    .col(uuid(StockMovements::RecordedBy))
                    .col(string_len_null(StockMovements::Note, 200))
                    .col(timestamp_with_time_zone(StockMovements::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_stock_movements_peer")
                            .from(StockMovements::Table, StockMovements::PeerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_stock_movements_peer",
            StockMovements::Table,
            vec![
                StockMovements::PeerId.into_iden(),
                StockMovements::OccurredOn.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_stock_movements_org_path",
            StockMovements::Table,
            vec![StockMovements::OrgPath.into_iden()],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_submissions_kind_occurred")
                    .table(Submissions::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            StockMovements::Table.into_iden(),
            Targets::Table.into_iden(),
            ApprovedContacts::Table.into_iden(),
            ClientKeys::Table.into_iden(),
            SubmissionRevisions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
