//! Liveness and readiness probes for load balancers and orchestrators.

use axum::routing::get;
use axum::{extract::State, Json, Router};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "alive", body = HealthOut)))]
pub async fn get_healthz() -> Json<HealthOut> {
    Json(HealthOut { status: "ok" })
}

/// The database and the blob store are reachable.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "ready", body = HealthOut),
        (status = 503, description = "a dependency is unreachable", body = shared_models::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_readyz(State(state): State<AppState>) -> ApiResult<Json<HealthOut>> {
    let db = state.db.execute_unprepared("SELECT 1").await;
    if let Err(e) = db {
        tracing::warn!(error = %e, "readiness: database unreachable");
        return Err(ApiError::Unavailable {
            retry_after_secs: 5,
            detail: "the database is unreachable".into(),
        });
    }
    if let Err(e) = state.blobs.check().await {
        tracing::warn!(error = %e, "readiness: blob store unreachable");
        return Err(ApiError::Unavailable {
            retry_after_secs: 5,
            detail: "the blob store is unreachable".into(),
        });
    }
    Ok(Json(HealthOut { status: "ready" }))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(get_healthz))
        .route("/readyz", get(get_readyz))
}
