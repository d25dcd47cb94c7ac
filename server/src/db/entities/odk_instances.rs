//! `odk_instances`: each ODK Collect instance received, the submission and revision it
//! became, and the keyed digest of its XML (an identical resend is recognised by it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "odk_instances")]
pub struct Model {
    /// The UUID of Collect's `meta/instanceID`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub instance_id: Uuid,
    pub submission_id: Uuid,
    pub revision: i32,
    pub device_id: Uuid,
    pub xml_fingerprint: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
