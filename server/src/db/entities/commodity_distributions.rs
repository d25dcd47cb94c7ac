//! `commodity_distributions`: what one visit handed out, per commodity.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "commodity_distributions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub submission_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub item: String,
    pub quantity: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
