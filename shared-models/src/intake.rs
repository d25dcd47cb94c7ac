//! Field forms, hotspots, submissions and sync: what the phones download and send.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

/// A published form version. `definition` is the form as `mobile-schema` defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FormOut {
    pub form_id: String,
    pub version: u32,
    /// Which typed records the server extracts: `outreach_visit`, `referral_handoff`,
    /// `group_session`, `support_visit`.
    pub kind: String,
    /// Roles allowed to submit it.
    pub roles: Vec<String>,
    /// SHA-256 of the canonical definition: two equal digests mean the same form.
    pub content_sha256: String,
    pub published_at: DateTime<Utc>,
    /// The full definition (fields, labels in `vi` and `en`, constraints, `show_if`).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
}

/// Review states of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Submitted,
    Approved,
    Rejected,
    ChangesRequested,
}

impl ReviewStatus {
    /// Every status.
    pub const ALL: [ReviewStatus; 4] = [
        ReviewStatus::Submitted,
        ReviewStatus::Approved,
        ReviewStatus::Rejected,
        ReviewStatus::ChangesRequested,
    ];

    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Submitted => "submitted",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected => "rejected",
            ReviewStatus::ChangesRequested => "changes_requested",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<ReviewStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Which front end a submission came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionSource {
    /// The JSON API (`POST /api/v1/submissions`).
    App,
    /// ODK Collect, through OpenRosa.
    OdkCollect,
}

impl SubmissionSource {
    /// Every source.
    pub const ALL: [SubmissionSource; 2] = [SubmissionSource::App, SubmissionSource::OdkCollect];

    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionSource::App => "app",
            SubmissionSource::OdkCollect => "odk_collect",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<SubmissionSource> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    Issued,
    Completed,
    Expired,
    Declined,
}

impl ReferralStatus {
    /// Every status.
    pub const ALL: [ReferralStatus; 4] = [
        ReferralStatus::Issued,
        ReferralStatus::Completed,
        ReferralStatus::Expired,
        ReferralStatus::Declined,
    ];

    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::Issued => "issued",
            ReferralStatus::Completed => "completed",
            ReferralStatus::Expired => "expired",
            ReferralStatus::Declined => "declined",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<ReferralStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The kind of place a hotspot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HotspotType {
    Street,
    Karaoke,
    Massage,
    Guesthouse,
    BarRestaurant,
    Online,
    Other,
}

impl HotspotType {
    /// Every type.
    pub const ALL: [HotspotType; 7] = [
        HotspotType::Street,
        HotspotType::Karaoke,
        HotspotType::Massage,
        HotspotType::Guesthouse,
        HotspotType::BarRestaurant,
        HotspotType::Online,
        HotspotType::Other,
    ];

    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            HotspotType::Street => "street",
            HotspotType::Karaoke => "karaoke",
            HotspotType::Massage => "massage",
            HotspotType::Guesthouse => "guesthouse",
            HotspotType::BarRestaurant => "bar_restaurant",
            HotspotType::Online => "online",
            HotspotType::Other => "other",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<HotspotType> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// An outreach place: no name, no coordinates, only a code, a type and its ward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HotspotOut {
    pub id: Uuid,
    pub code: String,
    #[serde(rename = "type")]
    pub hotspot_type: HotspotType,
    /// The ward or commune (or, before 2025-07, district) it lies in.
    pub org_unit_id: Uuid,
    /// Estimated number of people reachable there.
    pub estimated_size: Option<u32>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates a hotspot in the caller's subtree.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HotspotIn {
    #[validate(
        length(min = 1, max = 32),
        custom(function = "crate::org_unit::validate_code")
    )]
    pub code: String,
    #[serde(rename = "type")]
    pub hotspot_type: HotspotType,
    pub org_unit_id: Uuid,
    #[validate(range(max = 100_000))]
    pub estimated_size: Option<u32>,
    /// Defaults to `true`.
    pub active: Option<bool>,
}

/// Changes a hotspot; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HotspotPatch {
    #[serde(rename = "type")]
    pub hotspot_type: Option<HotspotType>,
    /// `null` clears the estimate.
    #[serde(default, with = "crate::org_unit::double_option")]
    #[schema(value_type = Option<u32>)]
    pub estimated_size: Option<Option<u32>>,
    pub active: Option<bool>,
}

/// Filters for `GET /api/v1/hotspots`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HotspotFilter {
    /// Only hotspots in this unit's subtree.
    pub org_unit_id: Option<Uuid>,
    pub active: Option<bool>,
    #[serde(rename = "type")]
    #[param(value_type = Option<HotspotType>)]
    pub hotspot_type: Option<HotspotType>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

/// A finished form as the phone sends it. The phone makes `id` when the form is
/// finished, so sending it again over a flaky link is safe.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmissionIn {
    pub id: Uuid,
    #[validate(length(min = 1, max = 64))]
    pub form_id: String,
    #[validate(range(min = 1))]
    pub form_version: u32,
    /// Device time the form was opened.
    pub started_at: DateTime<Utc>,
    /// Device time the form was finished.
    pub completed_at: DateTime<Utc>,
    /// The hotspot where it happened (outreach), or…
    #[validate(length(min = 1, max = 32))]
    pub hotspot_code: Option<String>,
    /// …the ward or commune where it happened. One of the two is required; never GPS.
    pub org_unit_id: Option<Uuid>,
    /// The answers, keyed by field key, validated against exactly `form_id`/`form_version`.
    #[schema(value_type = Object)]
    pub answers: serde_json::Value,
}

/// One move of a submission through review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubmissionEventOut {
    pub at: DateTime<Utc>,
    pub actor_id: Uuid,
    /// Absent for the first submission.
    pub from_status: Option<ReviewStatus>,
    pub to_status: ReviewStatus,
    pub revision: u32,
    pub comment: Option<String>,
}

/// A photo the answers name, and whether its bytes have arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PhotoStatusOut {
    pub sha256: String,
    pub present: bool,
}

/// A referral: the code printed on the slip the client takes to the clinic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReferralOut {
    pub code: String,
    /// `hiv_test`, `sti_exam`, `prep`, `other`.
    pub service: String,
    pub status: ReferralStatus,
    pub issued_on: NaiveDate,
    /// The outreach visit that issued it.
    pub submission_id: Uuid,
    /// Which contact of that visit (0-based).
    pub contact_index: u32,
    pub outcome: Option<String>,
    pub completed_on: Option<NaiveDate>,
    pub updated_at: DateTime<Utc>,
}

/// A submission in a list (no answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubmissionSummaryOut {
    pub id: Uuid,
    pub form_id: String,
    pub form_version: u32,
    pub kind: String,
    pub status: ReviewStatus,
    pub revision: u32,
    pub author_id: Uuid,
    pub org_unit_id: Uuid,
    pub hotspot_id: Option<Uuid>,
    /// The day of the visit or session, from the answers.
    pub occurred_on: NaiveDate,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    /// Server time of receipt.
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The front end its latest revision came through.
    pub source: SubmissionSource,
}

/// A submission in full: answers (client codes replaced by their keyed hash), the
/// referral codes it issued, its photos and its review history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubmissionOut {
    #[serde(flatten)]
    pub summary: SubmissionSummaryOut,
    #[schema(value_type = Object)]
    pub answers: serde_json::Value,
    pub referrals: Vec<ReferralOut>,
    pub photos: Vec<PhotoStatusOut>,
    pub events: Vec<SubmissionEventOut>,
}

/// Filters for `GET /api/v1/submissions`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubmissionFilter {
    #[param(value_type = Option<ReviewStatus>)]
    pub status: Option<ReviewStatus>,
    pub form_id: Option<String>,
    pub author_id: Option<Uuid>,
    /// Only submissions made in this unit's subtree.
    pub org_unit_id: Option<Uuid>,
    /// First day of the visit (inclusive).
    pub from: Option<NaiveDate>,
    /// Last day of the visit (inclusive).
    pub to: Option<NaiveDate>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

/// `GET /api/v1/reviews/queue`: the submitted visits in scope, oldest first, narrowed.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QueueFilter {
    pub form_id: Option<String>,
    pub author_id: Option<Uuid>,
    /// Only submissions made in this unit's subtree.
    pub org_unit_id: Option<Uuid>,
    /// First day of the visit (inclusive).
    pub from: Option<NaiveDate>,
    /// Last day of the visit (inclusive).
    pub to: Option<NaiveDate>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

/// `GET /api/v1/sync?since=&limit=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SyncQuery {
    /// The `cursor` of the previous sync; absent the first time.
    pub since: Option<String>,
    /// Changes per answer, 1 to 200 (default 100).
    pub limit: Option<u64>,
}

/// A submission of mine whose state changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncSubmissionOut {
    pub id: Uuid,
    pub form_id: String,
    pub status: ReviewStatus,
    pub revision: u32,
    pub updated_at: DateTime<Utc>,
    /// The latest review move (decision and comment), absent while never reviewed.
    pub last_review: Option<SubmissionEventOut>,
}

/// What changed for the caller since a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncOut {
    /// Pass as `since` next time.
    pub cursor: String,
    /// More changes wait: sync again at once with the new cursor.
    pub has_more: bool,
    pub submissions: Vec<SyncSubmissionOut>,
    /// New form versions the caller may submit.
    pub forms: Vec<FormOut>,
    pub referrals: Vec<ReferralOut>,
}
