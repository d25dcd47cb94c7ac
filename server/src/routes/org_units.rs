//! The org-unit tree: supervisors read their subtree, admins read and change everything.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use shared_models::{OrgUnitFilter, OrgUnitIn, OrgUnitOut, OrgUnitPatch, Page, Problem};
use uuid::Uuid;

use crate::auth::{Admin, Supervisor};
use crate::error::ApiResult;
use crate::extract::{Path, Query, ValidatedJson};
use crate::services::org_units;
use crate::state::AppState;

/// Org units in the caller's subtree.
#[utoipa::path(get, path = "/api/v1/org-units", tag = "org-units", security(("bearer" = [])), params(OrgUnitFilter),
    responses(
        (status = 200, description = "a page of org units", body = Page<OrgUnitOut>),
        (status = 400, description = "bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "field roles may not list org units", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_org_units(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Query(filter): Query<OrgUnitFilter>,
) -> ApiResult<Json<Page<OrgUnitOut>>> {
    Ok(Json(org_units::list(&state, &p, &filter).await?))
}

/// Creates an org unit (a ward, a commune, …) under a parent.
#[utoipa::path(post, path = "/api/v1/org-units", tag = "org-units", security(("bearer" = [])), request_body = OrgUnitIn,
    responses(
        (status = 201, description = "created", body = OrgUnitOut),
        (status = 403, description = "admins only", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "code taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_org_unit(
    State(state): State<AppState>,
    Admin(p): Admin,
    ValidatedJson(input): ValidatedJson<OrgUnitIn>,
) -> ApiResult<(StatusCode, Json<OrgUnitOut>)> {
    Ok((
        StatusCode::CREATED,
        Json(org_units::create(&state, &p, input).await?),
    ))
}

/// One org unit in the caller's subtree.
#[utoipa::path(get, path = "/api/v1/org-units/{id}", tag = "org-units", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "org unit id")),
    responses(
        (status = 200, description = "the org unit", body = OrgUnitOut),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_org_unit(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<OrgUnitOut>> {
    Ok(Json(org_units::get(&state, &p, id).await?))
}

/// Renames an org unit or sets its validity dates.
#[utoipa::path(patch, path = "/api/v1/org-units/{id}", tag = "org-units", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "org unit id")), request_body = OrgUnitPatch,
    responses(
        (status = 200, description = "updated", body = OrgUnitOut),
        (status = 403, description = "admins only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "absent", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_org_unit(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<OrgUnitPatch>,
) -> ApiResult<Json<OrgUnitOut>> {
    Ok(Json(org_units::update(&state, &p, id, patch).await?))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/org-units",
            get(list_org_units).post(create_org_unit),
        )
        .route(
            "/api/v1/org-units/{id}",
            get(get_org_unit).patch(update_org_unit),
        )
}
