//! Hotspots: supervisors manage those of their subtree; field workers read them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::TransactionTrait;
use shared_models::{HotspotFilter, HotspotIn, HotspotOut, HotspotPatch, Page, Problem};
use uuid::Uuid;

use crate::auth::{Principal, Supervisor};
use crate::error::ApiResult;
use crate::extract::{Path, Query, ValidatedJson};
use crate::services::hotspots;
use crate::state::AppState;

/// Hotspots in the caller's area.
#[utoipa::path(get, path = "/api/v1/hotspots", tag = "hotspots", security(("bearer" = [])), params(HotspotFilter),
    responses(
        (status = 200, description = "a page of hotspots", body = Page<HotspotOut>),
        (status = 400, description = "bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "org unit outside the caller's area", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_hotspots(
    State(state): State<AppState>,
    p: Principal,
    Query(filter): Query<HotspotFilter>,
) -> ApiResult<Json<Page<HotspotOut>>> {
    Ok(Json(hotspots::list(&state.db, &p, &filter).await?))
}

/// Creates a hotspot in a unit of the caller's subtree.
#[utoipa::path(post, path = "/api/v1/hotspots", tag = "hotspots", security(("bearer" = [])), request_body = HotspotIn,
    responses(
        (status = 201, description = "created", body = HotspotOut),
        (status = 403, description = "supervisors and admins only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "org unit outside the caller's subtree", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "code taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_hotspot(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    ValidatedJson(input): ValidatedJson<HotspotIn>,
) -> ApiResult<(StatusCode, Json<HotspotOut>)> {
    // The hotspot and its audit entry commit together.
    let txn = state.db.begin().await?;
    let out = hotspots::create(&txn, &p, input).await?;
    txn.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// One hotspot in the caller's area.
#[utoipa::path(get, path = "/api/v1/hotspots/{id}", tag = "hotspots", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "hotspot id")),
    responses(
        (status = 200, description = "the hotspot", body = HotspotOut),
        (status = 404, description = "absent or outside the caller's area", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_hotspot(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<HotspotOut>> {
    Ok(Json(hotspots::get(&state.db, &p, id).await?))
}

/// Changes a hotspot's type, size estimate or active flag.
#[utoipa::path(patch, path = "/api/v1/hotspots/{id}", tag = "hotspots", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "hotspot id")), request_body = HotspotPatch,
    responses(
        (status = 200, description = "updated", body = HotspotOut),
        (status = 403, description = "supervisors and admins only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "absent or outside the caller's subtree", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_hotspot(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<HotspotPatch>,
) -> ApiResult<Json<HotspotOut>> {
    let txn = state.db.begin().await?;
    let out = hotspots::update(&txn, &p, id, patch).await?;
    txn.commit().await?;
    Ok(Json(out))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/hotspots", get(list_hotspots).post(create_hotspot))
        .route(
            "/api/v1/hotspots/{id}",
            get(get_hotspot).patch(update_hotspot),
        )
}
