//! `targets`: targets per org unit, indicator and period.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "targets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_unit_id: Uuid,
    pub indicator: String,
    /// The period as given (`2025Q3`, `FY2025`, `VN2025Q3`, `2025`).
    pub period: String,
    pub period_from: Date,
    pub period_to: Date,
    pub value: i64,
    pub updated_by: Uuid,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
