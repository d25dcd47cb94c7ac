//! Intake: published forms, hotspots, submissions with their review events, and the
//! typed records extracted from them (contacts, commodity distributions, referrals,
//! handoffs, group sessions, support actions), plus the change counter sync reads.
//!
//! `sync_counter` is a single row bumped inside every transaction that changes what a
//! phone syncs. The row lock orders those transactions by commit, so a sync cursor (the
//! highest `change_seq` a phone has seen) never skips a change committed late.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SyncCounter {
    Table,
    Id,
    Value,
}

#[derive(DeriveIden)]
enum Forms {
    Table,
    Id,
    FormId,
    Version,
    Kind,
    TitleVi,
    TitleEn,
    Roles,
    Definition,
    ContentSha256,
    ChangeSeq,
    PublishedBy,
    PublishedAt,
}

#[derive(DeriveIden)]
enum Hotspots {
    Table,
    Id,
    Code,
    HotspotType,
    OrgUnitId,
    OrgPath,
    EstimatedSize,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Submissions {
    Table,
    Id,
    FormId,
    FormVersion,
    Kind,
    AuthorId,
    OrgUnitId,
    OrgPath,
    HotspotId,
    Status,
    Revision,
    Fingerprint,
    Answers,
    PhotoDigests,
    OccurredOn,
    StartedAt,
    CompletedAt,
    ReceivedAt,
    UpdatedAt,
    ChangeSeq,
}

#[derive(DeriveIden)]
enum SubmissionEvents {
    Table,
    Id,
    SubmissionId,
    Revision,
    ActorId,
    FromStatus,
    ToStatus,
    Comment,
    At,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    UicHash,
    FirstSubmissionId,
    FirstSeenAt,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    SubmissionId,
    Position,
    UicHash,
    IsNew,
    AgeBand,
    CondomsMale,
    CondomsFemale,
    Lubricant,
    SelfTestKits,
    IecMaterials,
    Counselled,
}

#[derive(DeriveIden)]
enum CommodityDistributions {
    Table,
    SubmissionId,
    Item,
    Quantity,
}

#[derive(DeriveIden)]
enum Referrals {
    Table,
    Id,
    Code,
    SubmissionId,
    ContactPosition,
    UicHash,
    Service,
    Status,
    IssuedOn,
    IssuedBy,
    OrgUnitId,
    OrgPath,
    Outcome,
    CompletedOn,
    CompletedBySubmission,
    ChangeSeq,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Handoffs {
    Table,
    SubmissionId,
    ReferralCode,
    Facility,
    ArrivedOn,
    Service,
    Outcome,
}

#[derive(DeriveIden)]
enum GroupSessions {
    Table,
    SubmissionId,
    Audience,
    Participants,
    Topic,
}

#[derive(DeriveIden)]
enum SupportActions {
    Table,
    Id,
    SubmissionId,
    PersonUicHash,
    Action,
    LoanAmountVnd,
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

fn fk(
    name: &str,
    from: (impl IntoIden + 'static, impl IntoIden + 'static),
    to: (impl IntoIden + 'static, impl IntoIden + 'static),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .to_owned()
}

fn cascade(
    name: &str,
    from: (impl IntoIden + 'static, impl IntoIden + 'static),
    to: (impl IntoIden + 'static, impl IntoIden + 'static),
) -> ForeignKeyCreateStatement {
    fk(name, from, to)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
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
                    .table(SyncCounter::Table)
                    .col(integer(SyncCounter::Id).primary_key())
                    .col(big_integer(SyncCounter::Value))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(SyncCounter::Table)
                    .columns([SyncCounter::Id, SyncCounter::Value])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Forms::Table)
                    .col(pk_uuid(Forms::Id))
                    .col(string_len(Forms::FormId, 64))
                    .col(integer(Forms::Version))
                    .col(string_len(Forms::Kind, 32))
                    .col(string_len(Forms::TitleVi, 200))
                    .col(string_len(Forms::TitleEn, 200))
                    .col(json_binary(Forms::Roles))
                    .col(json_binary(Forms::Definition))
                    .col(string_len(Forms::ContentSha256, 64))
                    .col(big_integer(Forms::ChangeSeq))
                    .col(uuid_null(Forms::PublishedBy))
                    .col(timestamp_with_time_zone(Forms::PublishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_forms_form_id_version")
                    .table(Forms::Table)
                    .col(Forms::FormId)
                    .col(Forms::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_forms_change_seq",
            Forms::Table,
            vec![Forms::ChangeSeq.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Hotspots::Table)
                    .col(pk_uuid(Hotspots::Id))
                    .col(string_len_uniq(Hotspots::Code, 32))
                    .col(string_len(Hotspots::HotspotType, 32))
                    .col(uuid(Hotspots::OrgUnitId))
                    .col(string_len(Hotspots::OrgPath, 1024))
                    .col(integer_null(Hotspots::EstimatedSize))
                    .col(boolean(Hotspots::Active))
                    .col(timestamp_with_time_zone(Hotspots::CreatedAt))
                    .col(timestamp_with_time_zone(Hotspots::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_hotspots_org_unit",
                        (Hotspots::Table, Hotspots::OrgUnitId),
                        (OrgUnits::Table, OrgUnits::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_hotspots_org_path",
            Hotspots::Table,
            vec![Hotspots::OrgPath.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Submissions::Table)
                    .col(pk_uuid(Submissions::Id))
                    .col(string_len(Submissions::FormId, 64))
                    .col(integer(Submissions::FormVersion))
                    .col(string_len(Submissions::Kind, 32))
                    .col(uuid(Submissions::AuthorId))
                    .col(uuid(Submissions::OrgUnitId))
                    .col(string_len(Submissions::OrgPath, 1024))
                    .col(uuid_null(Submissions::HotspotId))
                    .col(string_len(Submissions::Status, 32))
                    .col(integer(Submissions::Revision))
                    .col(string_len(Submissions::Fingerprint, 64))
                    .col(json_binary(Submissions::Answers))
                    .col(json_binary(Submissions::PhotoDigests))
                    .col(date(Submissions::OccurredOn))
                    .col(timestamp_with_time_zone(Submissions::StartedAt))
                    .col(timestamp_with_time_zone(Submissions::CompletedAt))
                    .col(timestamp_with_time_zone(Submissions::ReceivedAt))
                    .col(timestamp_with_time_zone(Submissions::UpdatedAt))
                    .col(big_integer(Submissions::ChangeSeq))
                    .foreign_key(&mut fk(
                        "fk_submissions_author",
                        (Submissions::Table, Submissions::AuthorId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_submissions_org_unit",
                        (Submissions::Table, Submissions::OrgUnitId),
                        (OrgUnits::Table, OrgUnits::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_submissions_hotspot",
                        (Submissions::Table, Submissions::HotspotId),
                        (Hotspots::Table, Hotspots::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_submissions_author_seq",
            Submissions::Table,
            vec![
                Submissions::AuthorId.into_iden(),
                Submissions::ChangeSeq.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_submissions_org_path",
            Submissions::Table,
            vec![Submissions::OrgPath.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_submissions_received",
            Submissions::Table,
            vec![
                Submissions::ReceivedAt.into_iden(),
                Submissions::Id.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_submissions_status_occurred",
            Submissions::Table,
            vec![
                Submissions::Status.into_iden(),
                Submissions::OccurredOn.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SubmissionEvents::Table)
                    .col(pk_uuid(SubmissionEvents::Id))
                    .col(uuid(SubmissionEvents::SubmissionId))
                    .col(integer(SubmissionEvents::Revision))
                    .col(uuid(SubmissionEvents::ActorId))
                    .col(string_len_null(SubmissionEvents::FromStatus, 32))
                    .col(string_len(SubmissionEvents::ToStatus, 32))
                    .col(text_null(SubmissionEvents::Comment))
                    .col(timestamp_with_time_zone(SubmissionEvents::At))
                    .foreign_key(&mut cascade(
                        "fk_submission_events_submission",
                        (SubmissionEvents::Table, SubmissionEvents::SubmissionId),
                        (Submissions::Table, Submissions::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_submission_events_submission",
            SubmissionEvents::Table,
            vec![
                SubmissionEvents::SubmissionId.into_iden(),
                SubmissionEvents::At.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .col(string_len(Clients::UicHash, 64).primary_key())
                    .col(uuid(Clients::FirstSubmissionId))
                    .col(timestamp_with_time_zone(Clients::FirstSeenAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .col(pk_uuid(Contacts::Id))
                    .col(uuid(Contacts::SubmissionId))
                    .col(integer(Contacts::Position))
                    .col(string_len(Contacts::UicHash, 64))
                    .col(boolean(Contacts::IsNew))
                    .col(string_len(Contacts::AgeBand, 32))
                    .col(integer(Contacts::CondomsMale))
                    .col(integer(Contacts::CondomsFemale))
                    .col(integer(Contacts::Lubricant))
                    .col(integer(Contacts::SelfTestKits))
                    .col(integer(Contacts::IecMaterials))
                    .col(boolean(Contacts::Counselled))
                    .foreign_key(&mut cascade(
                        "fk_contacts_submission",
                        (Contacts::Table, Contacts::SubmissionId),
                        (Submissions::Table, Submissions::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_contacts_submission",
            Contacts::Table,
            vec![Contacts::SubmissionId.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_contacts_uic_hash",
            Contacts::Table,
            vec![Contacts::UicHash.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CommodityDistributions::Table)
                    .col(uuid(CommodityDistributions::SubmissionId))
                    .col(string_len(CommodityDistributions::Item, 32))
                    .col(integer(CommodityDistributions::Quantity))
                    .primary_key(
                        Index::create()
                            .col(CommodityDistributions::SubmissionId)
                            .col(CommodityDistributions::Item),
                    )
                    .foreign_key(&mut cascade(
                        "fk_distributions_submission",
                        (
                            CommodityDistributions::Table,
                            CommodityDistributions::SubmissionId,
                        ),
                        (Submissions::Table, Submissions::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Referrals::Table)
                    .col(pk_uuid(Referrals::Id))
                    .col(string_len_uniq(Referrals::Code, 16))
                    .col(uuid(Referrals::SubmissionId))
                    .col(integer(Referrals::ContactPosition))
                    .col(string_len(Referrals::UicHash, 64))
                    .col(string_len(Referrals::Service, 32))
                    .col(string_len(Referrals::Status, 32))
                    .col(date(Referrals::IssuedOn))
                    .col(uuid(Referrals::IssuedBy))
                    .col(uuid(Referrals::OrgUnitId))
                    .col(string_len(Referrals::OrgPath, 1024))
                    .col(string_len_null(Referrals::Outcome, 64))
                    .col(date_null(Referrals::CompletedOn))
                    .col(uuid_null(Referrals::CompletedBySubmission))
                    .col(big_integer(Referrals::ChangeSeq))
                    .col(timestamp_with_time_zone(Referrals::CreatedAt))
                    .col(timestamp_with_time_zone(Referrals::UpdatedAt))
                    .foreign_key(&mut cascade(
                        "fk_referrals_submission",
                        (Referrals::Table, Referrals::SubmissionId),
                        (Submissions::Table, Submissions::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_referrals_submission",
            Referrals::Table,
            vec![Referrals::SubmissionId.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_referrals_issued_by_seq",
            Referrals::Table,
            vec![
                Referrals::IssuedBy.into_iden(),
                Referrals::ChangeSeq.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_referrals_org_path",
            Referrals::Table,
            vec![Referrals::OrgPath.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Handoffs::Table)
                    .col(uuid(Handoffs::SubmissionId).primary_key())
                    .col(string_len(Handoffs::ReferralCode, 16))
                    .col(string_len(Handoffs::Facility, 200))
                    .col(date(Handoffs::ArrivedOn))
                    .col(string_len(Handoffs::Service, 32))
                    .col(string_len(Handoffs::Outcome, 64))
                    .foreign_key(&mut cascade(
                        "fk_handoffs_submission",
                        (Handoffs::Table, Handoffs::SubmissionId),
                        (Submissions::Table, Submissions::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_handoffs_referral_code",
            Handoffs::Table,
            vec![Handoffs::ReferralCode.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(GroupSessions::Table)
                    .col(uuid(GroupSessions::SubmissionId).primary_key())
                    .col(string_len(GroupSessions::Audience, 32))
                    .col(integer(GroupSessions::Participants))
                    .col(string_len(GroupSessions::Topic, 32))
                    .foreign_key(&mut cascade(
                        "fk_group_sessions_submission",
                        (GroupSessions::Table, GroupSessions::SubmissionId),
                        (Submissions::Table, Submissions::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SupportActions::Table)
                    .col(pk_uuid(SupportActions::Id))
                    .col(uuid(SupportActions::SubmissionId))
                    .col(string_len(SupportActions::PersonUicHash, 64))
                    .col(string_len(SupportActions::Action, 32))
                    .col(big_integer_null(SupportActions::LoanAmountVnd))
                    .foreign_key(&mut cascade(
                        "fk_support_actions_submission",
                        (SupportActions::Table, SupportActions::SubmissionId),
                        (Submissions::Table, Submissions::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_support_actions_submission",
            SupportActions::Table,
            vec![SupportActions::SubmissionId.into_iden()],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SupportActions::Table.into_iden(),
            GroupSessions::Table.into_iden(),
            Handoffs::Table.into_iden(),
            Referrals::Table.into_iden(),
            CommodityDistributions::Table.into_iden(),
            Contacts::Table.into_iden(),
            Clients::Table.into_iden(),
            SubmissionEvents::Table.into_iden(),
            Submissions::Table.into_iden(),
            Hotspots::Table.into_iden(),
            Forms::Table.into_iden(),
            SyncCounter::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
