//! Phones enrolled by a supervisor, and what ODK Collect sent.
//!
//! - `devices`: a field worker's enrolled phone. Its long random token (in the OpenRosa
//!   URL Collect is set up with) and its one-time sign-in code (for the JSON app) are
//!   kept only as SHA-256. Revoking the device, or deactivating the worker, cuts it off.
//! - `odk_instances`: every Collect instance (`meta/instanceID`) received, with the
//!   submission and revision it became and the keyed digest of its XML, so an identical
//!   resend is recognised (201 again, nothing written) and another XML under the same
//!   instanceID is refused.
//! - `odk_files`: the attachment file names an instance named and the photo digest each
//!   stands for in the answers (split uploads deliver the files over several POSTs).
//! - `submissions.source`: `app` (the JSON API) or `odk_collect`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    UserId,
    Label,
    TokenHash,
    EnrolCodeHash,
    EnrolCodeExpiresAt,
    EnrolCodeUsedAt,
    CreatedBy,
    CreatedAt,
    RevokedAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum OdkInstances {
    Table,
    InstanceId,
    SubmissionId,
    Revision,
    DeviceId,
    XmlFingerprint,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum OdkFiles {
    Table,
    InstanceId,
    Filename,
    SubmissionId,
    Sha256,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Submissions {
    Table,
    Id,
    Source,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(pk_uuid(Devices::Id))
                    .col(uuid(Devices::UserId))
                    .col(string_len_null(Devices::Label, 100))
                    .col(string_len_uniq(Devices::TokenHash, 64))
                    .col(string_len_null(Devices::EnrolCodeHash, 64))
                    .col(timestamp_with_time_zone_null(Devices::EnrolCodeExpiresAt))
                    .col(timestamp_with_time_zone_null(Devices::EnrolCodeUsedAt))
                    .col(uuid(Devices::CreatedBy))
                    .col(timestamp_with_time_zone(Devices::CreatedAt))
                    .col(timestamp_with_time_zone_null(Devices::RevokedAt))
                    .col(timestamp_with_time_zone_null(Devices::LastSeenAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_devices_user")
                            .from(Devices::Table, Devices::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_user")
                    .table(Devices::Table)
                    .col(Devices::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_enrol_code")
                    .table(Devices::Table)
                    .col(Devices::EnrolCodeHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OdkInstances::Table)
                    .col(uuid(OdkInstances::InstanceId).primary_key())
                    .col(uuid(OdkInstances::SubmissionId))
                    .col(integer(OdkInstances::Revision))
                    .col(uuid(OdkInstances::DeviceId))
                    .col(string_len(OdkInstances::XmlFingerprint, 64))
                    .col(timestamp_with_time_zone(OdkInstances::ReceivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_odk_instances_submission")
                            .from(OdkInstances::Table, OdkInstances::SubmissionId)
                            .to(Submissions::Table, Submissions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_odk_instances_submission")
                    .table(OdkInstances::Table)
                    .col(OdkInstances::SubmissionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OdkFiles::Table)
                    .col(uuid(OdkFiles::InstanceId))
                    .col(string_len(OdkFiles::Filename, 255))
                    .col(uuid(OdkFiles::SubmissionId))
                    .col(string_len(OdkFiles::Sha256, 64))
                    .primary_key(
                        Index::create()
                            .col(OdkFiles::InstanceId)
                            .col(OdkFiles::Filename),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_odk_files_instance")
                            .from(OdkFiles::Table, OdkFiles::InstanceId)
                            .to(OdkInstances::Table, OdkInstances::InstanceId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Submissions::Table)
                    .add_column(string_len(Submissions::Source, 16).default("app"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Submissions::Table)
                    .drop_column(Submissions::Source)
                    .to_owned(),
            )
            .await?;
        for table in [
            OdkFiles::Table.into_iden(),
            OdkInstances::Table.into_iden(),
            Devices::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
