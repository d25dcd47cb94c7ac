//! `submission_revisions`: earlier revisions of a submission, kept when the author sends a new one.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "submission_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub submission_id: Uuid,
    pub revision: i32,
    pub form_version: i32,
    pub author_id: Uuid,
    pub org_unit_id: Uuid,
    pub org_path: String,
    pub hotspot_id: Option<Uuid>,
    pub fingerprint: String,
    pub answers: Json,
    pub photo_digests: Json,
    pub occurred_on: Date,
    pub started_at: DateTimeUtc,
    pub completed_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
