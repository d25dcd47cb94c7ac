//! Login, token refresh, logout and the caller's profile.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use shared_models::{EnrolIn, LoginIn, MeOut, Problem, RefreshIn, TokenPairOut};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::{ClientAddr, ValidatedJson};
use crate::services::{accounts, devices, sessions};
use crate::state::AppState;

/// Exchanges a username and password for an access token and a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginIn,
    responses(
        (status = 200, description = "logged in", body = TokenPairOut),
        (status = 401, description = "invalid username or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many failed logins; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post_login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ValidatedJson(input): ValidatedJson<LoginIn>,
) -> ApiResult<Json<TokenPairOut>> {
    Ok(Json(sessions::login(&state, input, addr).await?))
}

/// Exchanges an enrolled phone's one-time sign-in code for tokens bound to that phone.
#[utoipa::path(post, path = "/api/v1/auth/enrol", tag = "auth", request_body = EnrolIn,
    responses(
        (status = 200, description = "signed in", body = TokenPairOut),
        (status = 401, description = "unknown, expired, used or revoked code", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many failed attempts from this address; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post_enrol(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ValidatedJson(input): ValidatedJson<EnrolIn>,
) -> ApiResult<Json<TokenPairOut>> {
    let now = chrono::Utc::now();
    Ok(Json(
        devices::sign_in(&state, &input.code, addr, now).await?,
    ))
}

/// Spends a refresh token for a new pair; a token presented twice revokes its session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshIn,
    responses(
        (status = 200, description = "rotated", body = TokenPairOut),
        (status = 401, description = "invalid, expired, revoked or reused token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post_refresh(
    State(state): State<AppState>,
    ValidatedJson(input): ValidatedJson<RefreshIn>,
) -> ApiResult<Json<TokenPairOut>> {
    Ok(Json(sessions::refresh(&state, &input.refresh_token).await?))
}

/// Revokes the session of a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshIn,
    responses(
        (status = 204, description = "logged out"),
        (status = 401, description = "unknown token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post_logout(
    State(state): State<AppState>,
    ValidatedJson(input): ValidatedJson<RefreshIn>,
) -> ApiResult<StatusCode> {
    sessions::logout(&state, &input.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's profile, role and org unit.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = MeOut),
        (status = 401, description = "not logged in", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_me(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<MeOut>> {
    Ok(Json(accounts::me(&state, &principal).await?))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(post_login))
        .route("/api/v1/auth/refresh", post(post_refresh))
        .route("/api/v1/auth/enrol", post(post_enrol))
        .route("/api/v1/auth/logout", post(post_logout))
        .route("/api/v1/me", get(get_me))
}
