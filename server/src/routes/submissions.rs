//! Submissions: intake from the phones (idempotent by the phone's id), lists and
//! details for authors and reviewers, and the sync feed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use shared_models::{
    Page, Problem, SubmissionFilter, SubmissionIn, SubmissionOut, SubmissionSummaryOut, SyncOut,
    SyncQuery,
};
use uuid::Uuid;

use crate::auth::{FieldWorker, Principal};
use crate::error::ApiResult;
use crate::extract::{Path, Query, ValidatedJson};
use crate::services::{submissions, sync};
use crate::state::AppState;

/// Submits a finished form. The phone's id makes retries safe: the same id and body
/// again is 200 with the stored record, the same id with another body is 409.
#[utoipa::path(post, path = "/api/v1/submissions", tag = "submissions", security(("bearer" = [])), request_body = SubmissionIn,
    responses(
        (status = 201, description = "stored", body = SubmissionOut),
        (status = 200, description = "already stored (an identical retry); nothing written", body = SubmissionOut),
        (status = 403, description = "the form does not allow the caller's role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "another submission has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "unknown form version, bad place, or answer faults (all of them, with their paths)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_submission(
    State(state): State<AppState>,
    p: Principal,
    ValidatedJson(input): ValidatedJson<SubmissionIn>,
) -> ApiResult<(StatusCode, Json<SubmissionOut>)> {
    let (out, created) = submissions::submit(&state, &p, input, submissions::Origin::App).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)))
}

/// Submissions the caller may see (field workers: their own; supervisors: their
/// subtree; admins: all), newest received first.
#[utoipa::path(get, path = "/api/v1/submissions", tag = "submissions", security(("bearer" = [])), params(SubmissionFilter),
    responses(
        (status = 200, description = "a page of submissions", body = Page<SubmissionSummaryOut>),
        (status = 400, description = "bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "org unit outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_submissions(
    State(state): State<AppState>,
    p: Principal,
    Query(filter): Query<SubmissionFilter>,
) -> ApiResult<Json<Page<SubmissionSummaryOut>>> {
    Ok(Json(submissions::list(&state.db, &p, &filter).await?))
}

/// One submission in full; the read is written to the audit log.
#[utoipa::path(get, path = "/api/v1/submissions/{id}", tag = "submissions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "submission id")),
    responses(
        (status = 200, description = "the submission", body = SubmissionOut),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_submission(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<SubmissionOut>> {
    Ok(Json(submissions::get(&state.db, &p, id).await?))
}

/// What changed for the caller since a cursor: their submissions' status and review
/// comments, their referrals' status, new form versions.
#[utoipa::path(get, path = "/api/v1/sync", tag = "submissions", security(("bearer" = [])), params(SyncQuery),
    responses(
        (status = 200, description = "the changes and the next cursor", body = SyncOut),
        (status = 400, description = "a bad or foreign cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "field roles only", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sync_changes(
    State(state): State<AppState>,
    FieldWorker(p): FieldWorker,
    Query(query): Query<SyncQuery>,
) -> ApiResult<Json<SyncOut>> {
    Ok(Json(sync::changes(&state.db, &p, &query).await?))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/submissions",
            get(list_submissions).post(create_submission),
        )
        .route(
            "/api/v1/submissions/{id}",
            get(get_submission).put(super::review::revise_submission),
        )
        .route("/api/v1/sync", get(sync_changes))
}
