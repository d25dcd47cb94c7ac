//! `referrals`: referrals issued in outreach visits, by their printed code.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "referrals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub code: String,
    pub submission_id: Uuid,
    pub contact_position: i32,
    pub uic_hash: String,
    pub service: String,
    pub status: String,
    pub issued_on: Date,
    pub issued_by: Uuid,
    pub org_unit_id: Uuid,
    pub org_path: String,
    pub outcome: Option<String>,
    pub completed_on: Option<Date>,
    pub completed_by_submission: Option<Uuid>,
    pub change_seq: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
