//! `submission_photos`: photos stored for a submission, by the digest its answers name.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "submission_photos")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub submission_id: Uuid,
    /// The digest the phone computed and the answers name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub sha256: String,
    /// The digest of the object as stored (after location metadata was removed).
    pub stored_sha256: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub object_key: String,
    pub uploaded_by: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
