//! The audit log, for admins.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use shared_models::{AuditEntryOut, AuditFilter, Page, Problem};

use crate::auth::Admin;
use crate::error::ApiResult;
use crate::extract::Query;
use crate::services::audit;
use crate::state::AppState;

/// Audit entries, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])), params(AuditFilter),
    responses(
        (status = 200, description = "a page of audit entries", body = Page<AuditEntryOut>),
        (status = 403, description = "admins only", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_audit(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Query(filter): Query<AuditFilter>,
) -> ApiResult<Json<Page<AuditEntryOut>>> {
    Ok(Json(audit::list(&state.db, &filter).await?))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list_audit))
}
