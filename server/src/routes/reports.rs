//! Reports: indicators against targets (JSON or CSV), targets, and the streamed
//! submissions export.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use sea_orm::TransactionTrait;
use shared_models::{IndicatorQuery, IndicatorReportOut, Problem, TargetIn, TargetOut};

use crate::auth::{Admin, Supervisor};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Query, ValidatedJson};
use crate::services::reports::{self, ExportQuery};
use crate::state::AppState;

fn csv_response(
    stream: impl futures::Stream<Item = Result<String, std::io::Error>> + Send + 'static,
    name: &str,
) -> ApiResult<Response> {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Indicators of a unit's subtree and of each child unit, from approved data, beside
/// their targets; counts of 1–4 people are suppressed. `format=csv` streams CSV.
#[utoipa::path(get, path = "/api/v1/reports/indicators", tag = "reports", security(("bearer" = [])), params(IndicatorQuery),
    responses(
        (status = 200, description = "the report (or CSV with `format=csv`)", body = IndicatorReportOut),
        (status = 400, description = "bad period, dates or format", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "field roles", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "org unit outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn indicators_report(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Query(q): Query<IndicatorQuery>,
) -> ApiResult<Response> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::bad_param(
                "format",
                "bad_format",
                "expected `json` or `csv`",
            ))
        }
    };
    let report = reports::indicators(&state.db, &p, &q).await?;
    if csv {
        let lines = reports::indicators_csv(&report);
        let name = format!(
            "indicators-{}-{}-{}.csv",
            report.unit.code, report.from, report.to
        );
        return csv_response(futures::stream::iter(lines.into_iter().map(Ok)), &name);
    }
    Ok(Json(report).into_response())
}

/// Sets a target for a unit, indicator and period (replacing an earlier one).
#[utoipa::path(put, path = "/api/v1/targets", tag = "reports", security(("bearer" = [])), request_body = TargetIn,
    responses(
        (status = 200, description = "the target as stored", body = TargetOut),
        (status = 403, description = "admins only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such org unit", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "unknown indicator or period", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_target(
    State(state): State<AppState>,
    Admin(p): Admin,
    ValidatedJson(input): ValidatedJson<TargetIn>,
) -> ApiResult<Json<TargetOut>> {
    // The target and its audit entry commit together.
    let txn = state.db.begin().await?;
    let out = reports::put_target(&txn, &p, &input).await?;
    txn.commit().await?;
    Ok(Json(out))
}

/// Every submission in scope matching the filters, as CSV streamed in batches (client
/// codes appear only as their keyed hash). Audited.
#[utoipa::path(get, path = "/api/v1/exports/submissions", tag = "reports", security(("bearer" = [])), params(ExportQuery),
    responses(
        (status = 200, description = "CSV, one row per submission", body = String, content_type = "text/csv"),
        (status = 400, description = "bad filter", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "field roles", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "org unit outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export_submissions(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let cond = reports::export_condition(&state.db, &p, &q).await?;
    csv_response(
        reports::export_stream(state.db.clone(), cond),
        "submissions.csv",
    )
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports/indicators", get(indicators_report))
        .route("/api/v1/targets", put(put_target))
        .route("/api/v1/exports/submissions", get(export_submissions))
}
