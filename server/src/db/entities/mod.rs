//! sea-orm entities, one per table. Hand-written to match `migrations`; they never
//! derive serde: the API's shapes are the `…Out` types of shared-models.

pub mod audit_log;
pub mod login_failures;
pub mod org_units;
pub mod refresh_tokens;
pub mod teams;
pub mod users;
