//! Commodity stock: movements and the reconciliation report. Supervisors record stock
//! moving to and from the peer educators of their subtree and read its reconciliation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use shared_models::{Problem, StockMovementIn, StockMovementOut, StockReportOut, StockReportQuery};

use crate::auth::Supervisor;
use crate::error::ApiResult;
use crate::extract::{Query, ValidatedJson};
use crate::services::stock;
use crate::state::AppState;

/// Records stock issued to, returned by or lost by a peer educator of the caller's subtree.
#[utoipa::path(post, path = "/api/v1/stock/movements", tag = "stock", security(("bearer" = [])), request_body = StockMovementIn,
    responses(
        (status = 201, description = "recorded", body = StockMovementOut),
        (status = 403, description = "supervisors and admins only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "peer absent or outside the caller's subtree", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body, a day still to come, or the user is not a peer educator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn record_stock_movement(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    ValidatedJson(input): ValidatedJson<StockMovementIn>,
) -> ApiResult<(StatusCode, Json<StockMovementOut>)> {
    Ok((
        StatusCode::CREATED,
        Json(stock::record_movement(&state.db, &p, input).await?),
    ))
}

/// The stock reconciliation of the peer educators of a subtree over a period; balances
/// that went below zero are flagged.
#[utoipa::path(get, path = "/api/v1/reports/stock", tag = "stock", security(("bearer" = [])), params(StockReportQuery),
    responses(
        (status = 200, description = "one line per peer educator and commodity, and the totals", body = StockReportOut),
        (status = 400, description = "missing or bad parameter, `to` before `from`, or `peer_id` is not a peer educator", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "supervisors and admins only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "org unit or peer outside the caller's subtree", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stock_report(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Query(query): Query<StockReportQuery>,
) -> ApiResult<Json<StockReportOut>> {
    Ok(Json(stock::report(&state.db, &p, &query).await?))
}

/// The stock routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/stock/movements", post(record_stock_movement))
        .route("/api/v1/reports/stock", get(stock_report))
}
