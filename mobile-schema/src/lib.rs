//! The form language of Đồng Hành: form definitions and their checks, answer
//! validation with the same semantics as the phone, JSON Schema export so the phone can
//! check offline, the UIC's normal form, and the program's four bundled forms.
//!
//! For ODK Collect, the same definitions as XForms ([`FormDefinition::to_xform`]) and
//! Collect's submissions read back into the same answers JSON ([`instance_header`] to
//! pick the definition, then [`parse_instance`]); the server validates those answers
//! with [`FormDefinition::validate_answers`] like any other.
//!
//! Validated answers are read into one struct per form kind ([`typed::KindAnswers`]);
//! those structs also say which keys a new version of a kind must keep
//! ([`required_keys`]).
//!
//! This crate is the contract the phone team reads: it depends on no web framework, no
//! database and no other crate of the workspace (`shared-models` depends on it).
//!
//! ```
//! use mobile_schema::{bundled_forms, FormKind};
//! use serde_json::json;
//!
//! let forms = bundled_forms();
//! let group_session = forms.iter().find(|f| f.kind == FormKind::GroupSession).unwrap();
//! let answers = json!({
//!     "session_date": "2025-07-01",
//!     "audience": "workers",
//!     "participants": 12,
//!     "topic": "condom_use",
//! });
//! assert!(group_session.validate_answers(&answers).is_ok());
//! ```

mod answers;
mod bundled;
mod check;
mod definition;
mod fault;
mod instance;
mod json_schema;
mod parse;
mod pattern;
pub mod typed;

mod uic;
mod xform;

/// This crate's directory for tests that read or write files in it (the snapshots): as
/// the test runner says at run time, since a test binary built in another checkout
/// sharing the target directory (CI's clean clone) carries that checkout's path.
#[cfg(test)]
pub(crate) fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

pub use answers::{is_sha256_hex, json_pointer, DEFAULT_FAULT_LIMIT};
pub use bundled::{bundled_forms, missing_required_keys, required_keys};
pub use check::{is_field_key, is_form_id, ROLES};
pub use definition::{
    Choice, Condition, Field, FieldType, FormDefinition, FormKind, Localized, ShowIf,
};
pub use fault::{Fault, FaultCode, FaultList};
pub use instance::{
    instance_header, parse_instance, InstanceHeader, XformInstance, MAX_INSTANCE_NODES,
};
pub use json_schema::JSON_SCHEMA_DIALECT;
pub use parse::parse_definition;
pub use typed::AnswerKey;
pub use uic::{normalize_uic, UIC_MAX_LEN, UIC_MIN_LEN};
pub use xform::{END_FIELD, PLACES_FILE, PLACE_FIELD, START_FIELD};
