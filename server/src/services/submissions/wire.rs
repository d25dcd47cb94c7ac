//! Stored rows as the wire types the API answers with: every conversion from an entity
//! to a wire type is a `TryFrom` here (a stored status or source this build does not
//! know is an internal error, not a guess).

use shared_models::{
    ReferralOut, ReferralStatus, SubmissionEventOut, SubmissionSource, SubmissionSummaryOut,
};

use super::status_of;
use crate::db::entities::{referrals, submission_events, submissions};
use crate::error::{ApiError, ApiResult};

/// The wire shape of a review event.
impl TryFrom<submission_events::Model> for SubmissionEventOut {
    type Error = ApiError;

    fn try_from(e: submission_events::Model) -> ApiResult<Self> {
        Ok(SubmissionEventOut {
            at: e.at,
            actor_id: e.actor_id,
            from_status: e.from_status.as_deref().map(status_of).transpose()?,
            to_status: status_of(&e.to_status)?,
            revision: e.revision.max(0) as u32,
            comment: e.comment,
        })
    }
}

/// The wire shape of a referral.
impl TryFrom<referrals::Model> for ReferralOut {
    type Error = ApiError;

    fn try_from(r: referrals::Model) -> ApiResult<Self> {
        Ok(ReferralOut {
            status: ReferralStatus::parse(&r.status).ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("unknown referral status {:?}", r.status))
            })?,
            code: r.code,
            service: r.service,
            issued_on: r.issued_on,
            submission_id: r.submission_id,
            contact_index: r.contact_position.max(0) as u32,
            outcome: r.outcome,
            completed_on: r.completed_on,
            updated_at: r.updated_at,
        })
    }
}

/// The wire shape of a submission without its answers.
impl TryFrom<&submissions::Model> for SubmissionSummaryOut {
    type Error = ApiError;

    fn try_from(m: &submissions::Model) -> ApiResult<Self> {
        Ok(SubmissionSummaryOut {
            id: m.id,
            form_id: m.form_id.clone(),
            form_version: m.form_version.max(0) as u32,
            kind: m.kind.clone(),
            status: status_of(&m.status)?,
            revision: m.revision.max(0) as u32,
            author_id: m.author_id,
            org_unit_id: m.org_unit_id,
            hotspot_id: m.hotspot_id,
            occurred_on: m.occurred_on,
            started_at: m.started_at,
            completed_at: m.completed_at,
            received_at: m.received_at,
            updated_at: m.updated_at,
            source: SubmissionSource::parse(&m.source).ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("unknown submission source {:?}", m.source))
            })?,
        })
    }
}
