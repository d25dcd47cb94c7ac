//! Referrals: the codes printed on slips, and where each stands.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use shared_models::{Page, Problem, ReferralFilter, ReferralOut};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::{Path, Query};
use crate::services::referrals;
use crate::state::AppState;

/// Referrals the caller may see (field workers: those they issued; supervisors: their
/// subtree), filtered by status, service, unit and day of issue.
#[utoipa::path(get, path = "/api/v1/referrals", tag = "referrals", security(("bearer" = [])), params(ReferralFilter),
    responses(
        (status = 200, description = "a page of referrals", body = Page<ReferralOut>),
        (status = 400, description = "bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "org unit outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_referrals(
    State(state): State<AppState>,
    p: Principal,
    Query(filter): Query<ReferralFilter>,
) -> ApiResult<Json<Page<ReferralOut>>> {
    Ok(Json(referrals::list(&state.db, &p, &filter).await?))
}

/// One referral by its code.
#[utoipa::path(get, path = "/api/v1/referrals/{code}", tag = "referrals", security(("bearer" = [])),
    params(("code" = String, Path, description = "the printed code, e.g. `K7QM-3XRP`")),
    responses(
        (status = 200, description = "the referral", body = ReferralOut),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_referral(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
) -> ApiResult<Json<ReferralOut>> {
    Ok(Json(referrals::get(&state.db, &p, &code).await?))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/referrals", get(list_referrals))
        .route("/api/v1/referrals/{code}", get(get_referral))
}
