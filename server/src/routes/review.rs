//! Review: decisions one at a time or in bulk, the queue, reopening, and the author's
//! revisions while changes are requested.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use shared_models::{
    BulkReviewIn, BulkReviewOut, Page, Problem, QueueFilter, ReopenIn, ReviewIn, RevisionOut,
    SubmissionIn, SubmissionOut, SubmissionSummaryOut,
};
use uuid::Uuid;

use crate::auth::{Admin, Principal, Supervisor};
use crate::error::ApiResult;
use crate::extract::{Path, Query, ValidatedJson};
use crate::services::{review, submissions};
use crate::state::AppState;

/// A reviewer's decision: `approve`, `reject` or `request_changes` (the last two need a comment).
#[utoipa::path(post, path = "/api/v1/submissions/{id}/review", tag = "review", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "submission id")), request_body = ReviewIn,
    responses(
        (status = 200, description = "moved; the submission with its new state and history", body = SubmissionOut),
        (status = 403, description = "field roles, or reviewing one's own submission", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "illegal move (names the current state), photos missing (lists them), or the referral is already completed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a comment is required", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn review_submission(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<ReviewIn>,
) -> ApiResult<Json<SubmissionOut>> {
    Ok(Json(review::review(&state, &p, id, &input).await?))
}

/// The same decision for many submissions; the answer says, per id, what happened.
#[utoipa::path(post, path = "/api/v1/reviews", tag = "review", security(("bearer" = [])), request_body = BulkReviewIn,
    responses(
        (status = 200, description = "one item per id, each with the status a single review would have answered", body = BulkReviewOut),
        (status = 403, description = "field roles", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn review_submissions(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    ValidatedJson(input): ValidatedJson<BulkReviewIn>,
) -> ApiResult<Json<BulkReviewOut>> {
    Ok(Json(review::review_many(&state, &p, &input).await?))
}

/// Submissions waiting for review in the caller's scope, oldest first.
#[utoipa::path(get, path = "/api/v1/reviews/queue", tag = "review", security(("bearer" = [])), params(QueueFilter),
    responses(
        (status = 200, description = "a page of the queue", body = Page<SubmissionSummaryOut>),
        (status = 400, description = "bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "field roles", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn review_queue(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Query(filter): Query<QueueFilter>,
) -> ApiResult<Json<Page<SubmissionSummaryOut>>> {
    Ok(Json(review::queue(&state, &p, &filter).await?))
}

/// An admin reopens an approved or rejected submission, with a comment.
#[utoipa::path(post, path = "/api/v1/submissions/{id}/reopen", tag = "review", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "submission id")), request_body = ReopenIn,
    responses(
        (status = 200, description = "back in review", body = SubmissionOut),
        (status = 403, description = "admins only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "absent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not in a final state", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a comment is required", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reopen_submission(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<ReopenIn>,
) -> ApiResult<Json<SubmissionOut>> {
    Ok(Json(review::reopen(&state, &p, id, &input).await?))
}

/// The author's new revision while changes are requested (the whole submission again,
/// same id); it goes back to review. Sending the same revision again answers it as stored.
#[utoipa::path(put, path = "/api/v1/submissions/{id}", tag = "review", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "submission id")), request_body = SubmissionIn,
    responses(
        (status = 200, description = "the new revision, submitted", body = SubmissionOut),
        (status = 403, description = "not the author", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "absent or not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "changes were not requested (names the current state)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "faults in the revision, all of them", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revise_submission(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<SubmissionIn>,
) -> ApiResult<Json<SubmissionOut>> {
    Ok(Json(
        review::revise(&state, &p, id, input, submissions::Origin::App).await?,
    ))
}

/// Earlier revisions of a submission, oldest first (the read is audited).
#[utoipa::path(get, path = "/api/v1/submissions/{id}/revisions", tag = "review", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "submission id")),
    responses(
        (status = 200, description = "the revisions before the current one", body = Vec<RevisionOut>),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_revisions(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<RevisionOut>>> {
    Ok(Json(review::revisions(&state, &p, id).await?))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/submissions/{id}/review", post(review_submission))
        .route("/api/v1/submissions/{id}/reopen", post(reopen_submission))
        .route("/api/v1/submissions/{id}/revisions", get(list_revisions))
        .route("/api/v1/reviews", post(review_submissions))
        .route("/api/v1/reviews/queue", get(review_queue))
}
