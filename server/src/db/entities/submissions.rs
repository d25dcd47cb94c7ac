//! `submissions`: finished forms as the phones sent them (client codes replaced by their keyed hash).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "submissions")]
pub struct Model {
    /// Made by the phone.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub form_id: String,
    pub form_version: i32,
    pub kind: String,
    pub author_id: Uuid,
    pub org_unit_id: Uuid,
    /// The materialized path of `org_unit_id`, for subtree scoping.
    pub org_path: String,
    pub hotspot_id: Option<Uuid>,
    pub status: String,
    pub revision: i32,
    /// Keyed digest of the request as sent: an identical retry has the same one.
    pub fingerprint: String,
    pub answers: Json,
    /// JSON array of the photo digests the answers name.
    pub photo_digests: Json,
    pub occurred_on: Date,
    pub started_at: DateTimeUtc,
    pub completed_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub change_seq: i64,
    /// `app` (the JSON API) or `odk_collect`.
    pub source: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
