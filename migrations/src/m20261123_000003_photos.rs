//! Photo evidence: one row per photo stored for a submission. The row is written only
//! after the object is stored whole, so a row always means "the bytes are there".

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SubmissionPhotos {
    Table,
    SubmissionId,
    Sha256,
    StoredSha256,
    ContentType,
    SizeBytes,
    ObjectKey,
    UploadedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Submissions {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SubmissionPhotos::Table)
                    .col(uuid(SubmissionPhotos::SubmissionId))
                    .col(string_len(SubmissionPhotos::Sha256, 64))
                    .col(string_len(SubmissionPhotos::StoredSha256, 64))
                    .col(string_len(SubmissionPhotos::ContentType, 32))
                    .col(big_integer(SubmissionPhotos::SizeBytes))
                    .col(string_len(SubmissionPhotos::ObjectKey, 256))
                    .col(uuid(SubmissionPhotos::UploadedBy))
                    .col(timestamp_with_time_zone(SubmissionPhotos::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(SubmissionPhotos::SubmissionId)
                            .col(SubmissionPhotos::Sha256),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_submission_photos_submission")
                            .from(SubmissionPhotos::Table, SubmissionPhotos::SubmissionId)
                            .to(Submissions::Table, Submissions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_submission_photos_object_key")
                    .table(SubmissionPhotos::Table)
                    .col(SubmissionPhotos::ObjectKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SubmissionPhotos::Table).to_owned())
            .await
    }
}
