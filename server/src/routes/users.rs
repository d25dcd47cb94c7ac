//! User management: admins everywhere, supervisors for field workers in their subtree.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use shared_models::{
    DeviceEnrolmentOut, DeviceIn, DeviceOut, Page, Problem, UserFilter, UserIn, UserOut, UserPatch,
};
use uuid::Uuid;

use crate::auth::Supervisor;
use crate::error::ApiResult;
use crate::extract::{Path, Query, RequestOrigin, ValidatedJson};
use crate::services::{accounts, devices};
use crate::state::AppState;

/// Users in the caller's subtree.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(UserFilter),
    responses(
        (status = 200, description = "a page of users", body = Page<UserOut>),
        (status = 400, description = "bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "field roles may not list users", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "org unit outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Query(filter): Query<UserFilter>,
) -> ApiResult<Json<Page<UserOut>>> {
    Ok(Json(accounts::list_users(&state, &p, &filter).await?))
}

/// Creates a user; supervisors create peer educators and volunteers in their subtree.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = UserIn,
    responses(
        (status = 201, description = "created", body = UserOut),
        (status = 403, description = "role not allowed to create that role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "org unit outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "username taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    ValidatedJson(input): ValidatedJson<UserIn>,
) -> ApiResult<(StatusCode, Json<UserOut>)> {
    Ok((
        StatusCode::CREATED,
        Json(accounts::create_user(&state, &p, input).await?),
    ))
}

/// One user in the caller's subtree.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    responses(
        (status = 200, description = "the user", body = UserOut),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<UserOut>> {
    Ok(Json(accounts::get_user(&state, &p, id).await?))
}

/// Edits a user: password, role, org unit, team, active (deactivation revokes all tokens).
/// Users changing their own password give the current one as `current_password`.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")), request_body = UserPatch,
    responses(
        (status = 200, description = "updated", body = UserOut),
        (status = 403, description = "not allowed to make this change", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body, or one's own password changed without the right `current_password`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many wrong current passwords for this username; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Path(id): Path<Uuid>,
    ValidatedJson(patch): ValidatedJson<UserPatch>,
) -> ApiResult<Json<UserOut>> {
    Ok(Json(accounts::update_user(&state, &p, id, patch).await?))
}

/// Revokes a user's sessions on one device (a lost phone).
#[utoipa::path(delete, path = "/api/v1/users/{id}/devices/{device_id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id"), ("device_id" = String, Path, description = "the device id given at login")),
    responses(
        (status = 204, description = "the device's sessions are revoked"),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_device(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Path((id, device_id)): Path<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    accounts::revoke_device(&state, &p, id, &device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enrols a phone for a field worker: the ODK Collect address and settings (with their
/// QR code) and a one-time sign-in code for the JSON app. The secrets are shown once.
#[utoipa::path(post, path = "/api/v1/users/{id}/devices", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the field worker's user id")),
    request_body = DeviceIn,
    responses(
        (status = 201, description = "enrolled; the token and code are not shown again", body = DeviceEnrolmentOut),
        (status = 403, description = "only supervisors and admins enrol phones", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "not a field worker, deactivated, or an invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn enrol_device(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<DeviceIn>,
) -> ApiResult<(StatusCode, Json<DeviceEnrolmentOut>)> {
    let out = devices::enrol(&state, &p, id, input, &origin).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// The enrolled phones of a field worker, newest first.
#[utoipa::path(get, path = "/api/v1/users/{id}/devices", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the field worker's user id")),
    responses(
        (status = 200, description = "the phones", body = Vec<DeviceOut>),
        (status = 403, description = "only supervisors and admins", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "not a field worker", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_devices(
    State(state): State<AppState>,
    Supervisor(p): Supervisor,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<DeviceOut>>> {
    Ok(Json(devices::list(&state, &p, id).await?))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}", get(get_user).patch(update_user))
        .route(
            "/api/v1/users/{id}/devices",
            get(list_devices).post(enrol_device),
        )
        .route(
            "/api/v1/users/{id}/devices/{device_id}",
            delete(revoke_device),
        )
}
