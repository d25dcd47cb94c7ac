//! `contacts`: one contact event of an outreach visit.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub submission_id: Uuid,
    /// Index of the contact in the visit's `contacts` (0-based).
    pub position: i32,
    pub uic_hash: String,
    /// Whether the program had never met this client before this visit arrived.
    pub is_new: bool,
    pub age_band: String,
    pub condoms_male: i32,
    pub condoms_female: i32,
    pub lubricant: i32,
    pub self_test_kits: i32,
    pub iec_materials: i32,
    pub counselled: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
