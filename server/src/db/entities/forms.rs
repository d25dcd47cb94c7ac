//! `forms`: published form versions; a row is never changed once written.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "forms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub form_id: String,
    pub version: i32,
    pub kind: String,
    pub title_vi: String,
    pub title_en: String,
    /// JSON array of role names allowed to submit.
    pub roles: Json,
    pub definition: Json,
    pub content_sha256: String,
    pub change_seq: i64,
    pub published_by: Option<Uuid>,
    pub published_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
