//! `approved_contacts`: the contacts of approved outreach visits: the facts indicator reports read.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "approved_contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub submission_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub client_id: i64,
    pub org_path: String,
    pub occurred_on: Date,
    pub condoms_male: i32,
    pub condoms_female: i32,
    pub lubricant: i32,
    pub self_test_kits: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
