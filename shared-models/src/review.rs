//! Review decisions, bulk review, revisions and reopening, referrals, targets and the
//! indicators report.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use crate::{Problem, ReferralStatus, ReviewStatus};

/// What a reviewer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Approve,
    Reject,
    RequestChanges,
}

impl ReviewDecision {
    /// The state this decision moves a submission to.
    pub fn target(self) -> ReviewStatus {
        match self {
            ReviewDecision::Approve => ReviewStatus::Approved,
            ReviewDecision::Reject => ReviewStatus::Rejected,
            ReviewDecision::RequestChanges => ReviewStatus::ChangesRequested,
        }
    }
}

/// `POST /api/v1/submissions/{id}/review`.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewIn {
    pub decision: ReviewDecision,
    /// Required to reject or to request changes; the author reads it on the phone.
    #[validate(length(max = 2000))]
    pub comment: Option<String>,
}

/// `POST /api/v1/reviews`: one decision for many submissions.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkReviewIn {
    #[validate(length(min = 1, max = 200))]
    pub ids: Vec<Uuid>,
    pub decision: ReviewDecision,
    #[validate(length(max = 2000))]
    pub comment: Option<String>,
}

/// What happened to one id of a bulk review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulkReviewItemOut {
    pub id: Uuid,
    /// The HTTP status the single review would have answered (200, 403, 404, 409, 422).
    pub status: u16,
    /// The submission's state after this item (absent when it was not found).
    pub review_status: Option<ReviewStatus>,
    /// Why it did not happen, as the single review would have said.
    pub problem: Option<Problem>,
}

/// The answer of a bulk review: one item per id, in the order given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulkReviewOut {
    pub items: Vec<BulkReviewItemOut>,
    pub succeeded: u32,
    pub failed: u32,
}

/// `POST /api/v1/submissions/{id}/reopen` (admin): a final submission back to review.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenIn {
    #[validate(length(min = 1, max = 2000))]
    pub comment: String,
}

/// An earlier revision of a submission, as it was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RevisionOut {
    pub revision: u32,
    pub form_version: u32,
    pub occurred_on: NaiveDate,
    pub received_at: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = Object)]
    pub answers: serde_json::Value,
}

/// Filters for `GET /api/v1/referrals`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReferralFilter {
    #[param(value_type = Option<ReferralStatus>)]
    pub status: Option<ReferralStatus>,
    /// `hiv_test`, `sti_exam`, `prep`, `other`.
    pub service: Option<String>,
    /// Only referrals issued in this unit's subtree.
    pub org_unit_id: Option<Uuid>,
    /// First day of issue (inclusive).
    pub from: Option<NaiveDate>,
    /// Last day of issue (inclusive).
    pub to: Option<NaiveDate>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

/// `PUT /api/v1/targets`: a target for one unit, indicator and period.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetIn {
    pub org_unit_id: Uuid,
    /// An indicator key of the report (e.g. `people_reached`, `condoms_male`).
    #[validate(length(min = 1, max = 64))]
    pub indicator: String,
    /// `2025Q3`, `FY2025`, `VN2025Q3` or `2025`.
    #[validate(length(min = 4, max = 16))]
    pub period: String,
    #[validate(range(min = 0, max = 1_000_000_000))]
    pub value: i64,
}

/// A stored target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TargetOut {
    pub org_unit_id: Uuid,
    pub indicator: String,
    pub period: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub value: i64,
}

/// `GET /api/v1/reports/indicators`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IndicatorQuery {
    /// The unit whose subtree is reported (default: the caller's unit).
    pub org_unit: Option<Uuid>,
    /// `2024Q3` (calendar quarter), `2024` (year), `FY2025` (October–September),
    /// `VN2024Q3` (national quarter: 15th of the month before to the 14th of its last month).
    pub period: Option<String>,
    /// First day (inclusive), with `to`, instead of `period`.
    pub from: Option<NaiveDate>,
    /// Last day (inclusive).
    pub to: Option<NaiveDate>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// One indicator of one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IndicatorValueOut {
    /// Stable key, e.g. `people_reached`, `referrals_issued.hiv_test`.
    pub indicator: String,
    /// Absent when suppressed (a count of 1 to 4 people).
    pub value: Option<i64>,
    pub suppressed: bool,
    pub target: Option<i64>,
}

/// The indicators of one unit (with its subtree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnitIndicatorsOut {
    pub org_unit_id: Uuid,
    pub code: String,
    pub name: String,
    pub indicators: Vec<IndicatorValueOut>,
}

/// The indicators report: the unit, then each child unit that existed in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IndicatorReportOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub period: Option<String>,
    /// When the server computed the report (RFC 3339, UTC).
    pub generated_at: DateTime<Utc>,
    pub unit: UnitIndicatorsOut,
    pub children: Vec<UnitIndicatorsOut>,
}
