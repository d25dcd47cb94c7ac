//! sea-orm entities, one per table. Hand-written to match `migrations`; they never
//! derive serde: the API's shapes are the `…Out` types of shared-models.

pub mod approved_contacts;
pub mod audit_log;
pub mod client_keys;
pub mod clients;
pub mod commodity_distributions;
pub mod console_sessions;
pub mod contacts;
pub mod devices;
pub mod forms;
pub mod group_sessions;
pub mod handoffs;
pub mod hotspots;
pub mod login_failures;
pub mod odk_files;
pub mod odk_instances;
pub mod org_units;
pub mod referrals;
pub mod refresh_tokens;
pub mod stock_movements;
pub mod submission_events;
pub mod submission_photos;
pub mod submission_revisions;
pub mod submissions;
pub mod support_actions;
pub mod sync_counter;
pub mod sync_feeds;
pub mod targets;
pub mod teams;
pub mod users;
