//! RFC 9457 problem details: the one shape every error answer takes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of every error answer.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An error answer (RFC 9457).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// One entry per faulty field, for validation problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// How many further faults were found but not listed in `errors` (absent when none):
    /// a body with thousands of faults is answered with the first ones only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One fault in a request, located by its field path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `org_unit_id` or `contacts[2].condoms_male`; empty for the body itself.
    pub field: String,
    /// A stable machine code a client can map to a message, e.g. `required`, `unknown_field`.
    pub code: String,
    /// An English explanation.
    pub message: String,
}

impl FieldError {
    /// Builds a field error from its three parts.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}
