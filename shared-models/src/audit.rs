//! The audit log as the API shows it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// One audited action: who did what to which record, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryOut {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// The user who acted; absent for the system itself.
    pub actor_id: Option<Uuid>,
    /// What was done, e.g. `user.create`, `user.deactivate`, `org_unit.create`.
    pub action: String,
    /// The kind of record acted on, e.g. `user`.
    pub target_type: String,
    pub target_id: Option<String>,
    /// Non-identifying details of the change (never passwords, tokens or UICs).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Filters for `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    /// Entries at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this instant.
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}
