//! Teams (peer groups, volunteer teams) under org units.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use shared_models::{Page, Problem, TeamIn, TeamOut};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::auth::Supervisor;
use crate::error::ApiResult;
use crate::extract::{Query, ValidatedJson};
use crate::services::org_units;
use crate::state::AppState;

/// Filters for `GET /api/v1/teams`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TeamFilter {
    /// Teams of this unit's subtree.
    pub org_unit_id: Option<Uuid>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

/// Teams in the caller's subtree.
#[utoipa::path(get, path = "/api/v1/teams", tag = "org-units", security(("bearer" = [])), params(TeamFilter),
    responses(
        (status = 200, description = "a page of teams", body = Page<TeamOut>),
        (status = 404, description = "org unit outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_teams(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Query(filter): Query<TeamFilter>,
) -> ApiResult<Json<Page<TeamOut>>> {
    Ok(Json(
        org_units::list_teams(
            &state,
            &p,
            filter.org_unit_id,
            filter.cursor.as_deref(),
            filter.limit,
        )
        .await?,
    ))
}

/// Creates a team under an org unit of the caller's subtree.
#[utoipa::path(post, path = "/api/v1/teams", tag = "org-units", security(("bearer" = [])), request_body = TeamIn,
    responses(
        (status = 201, description = "created", body = TeamOut),
        (status = 404, description = "org unit outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "code taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_team(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    ValidatedJson(input): ValidatedJson<TeamIn>,
) -> ApiResult<(StatusCode, Json<TeamOut>)> {
    Ok((
        StatusCode::CREATED,
        Json(org_units::create_team(&state, &p, input).await?),
    ))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/teams", get(list_teams).post(create_team))
}
