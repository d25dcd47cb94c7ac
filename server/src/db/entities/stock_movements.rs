//! `stock_movements`: commodity stock issued to, returned by or lost by a peer educator.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_movements")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub peer_id: Uuid,
    pub item: String,
    /// `issued`, `returned` or `lost`.
    pub kind: String,
    pub quantity: i32,
    pub occurred_on: Date,
    pub org_unit_id: Uuid,
    pub org_path: String,
    pub recorded_by: Uuid,
    pub note: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
