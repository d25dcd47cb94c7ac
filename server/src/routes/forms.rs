//! Field forms: what phones download (with ETags, so an unchanged list costs a 304)
//! and what admins publish.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use shared_models::{FormOut, Problem};

use crate::auth::{Admin, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBytes, Path};
use crate::services::forms;
use crate::state::AppState;

/// A strong validator for a JSON body: the SHA-256 of its bytes.
fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(body)))
}

/// Whether `If-None-Match` already names `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

const JSON: &str = "application/json";
/// The media type of a JSON Schema document (JSON Schema 2020-12, section 14.1).
const JSON_SCHEMA_TYPE: &str = "application/schema+json";

/// A JSON answer (of `content_type`) with a strong ETag; `304 Not Modified` (no body)
/// when the client has it.
fn with_etag(
    headers: &HeaderMap,
    value: &impl serde::Serialize,
    content_type: &'static str,
) -> ApiResult<Response> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::Internal(e.into()))?;
    let etag = etag_of(&body);
    let etag_header = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.into()))?;
    if not_modified(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    Ok((
        [
            (header::ETAG, etag_header),
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        ],
        body,
    )
        .into_response())
}

/// The latest published version of each form the caller may submit (supervisors and
/// admins: every form).
#[utoipa::path(get, path = "/api/v1/forms", tag = "forms", security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "the ETag of the list the phone has")),
    responses(
        (status = 200, description = "the forms, with a strong `ETag`", body = Vec<FormOut>),
        (status = 304, description = "the phone's list is current"),
        (status = 401, description = "not logged in", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_forms(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let forms = forms::list_latest(&state.db, p.role).await?;
    with_etag(&headers, &forms, JSON)
}

/// The latest published version of a form.
#[utoipa::path(get, path = "/api/v1/forms/{form_id}", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path, description = "the form's slug")),
    responses(
        (status = 200, description = "the definition", body = FormOut),
        (status = 404, description = "no such form", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_form(
    State(state): State<AppState>,
    _p: Principal,
    headers: HeaderMap,
    Path(form_id): Path<String>,
) -> ApiResult<Response> {
    let row = forms::get_version(&state.db, &form_id, None).await?;
    with_etag(&headers, &forms::form_out(row)?, JSON)
}

/// One version of a form.
#[utoipa::path(get, path = "/api/v1/forms/{form_id}/versions/{version}", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path, description = "the form's slug"), ("version" = u32, Path, description = "the version")),
    responses(
        (status = 200, description = "the definition", body = FormOut),
        (status = 404, description = "no such form or version", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_form_version(
    State(state): State<AppState>,
    _p: Principal,
    headers: HeaderMap,
    Path((form_id, version)): Path<(String, u32)>,
) -> ApiResult<Response> {
    let row = forms::get_version(&state.db, &form_id, Some(version)).await?;
    with_etag(&headers, &forms::form_out(row)?, JSON)
}

/// The JSON Schema (draft 2020-12) of the latest version's answers, for offline checks.
#[utoipa::path(get, path = "/api/v1/forms/{form_id}/schema", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path, description = "the form's slug")),
    responses(
        (status = 200, description = "the JSON Schema of the answers", body = Object, content_type = "application/schema+json"),
        (status = 404, description = "no such form", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_form_schema(
    State(state): State<AppState>,
    _p: Principal,
    headers: HeaderMap,
    Path(form_id): Path<String>,
) -> ApiResult<Response> {
    let row = forms::get_version(&state.db, &form_id, None).await?;
    with_etag(
        &headers,
        &forms::definition_of(&row)?.json_schema(),
        JSON_SCHEMA_TYPE,
    )
}

/// The JSON Schema of one version's answers.
#[utoipa::path(get, path = "/api/v1/forms/{form_id}/versions/{version}/schema", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path, description = "the form's slug"), ("version" = u32, Path, description = "the version")),
    responses(
        (status = 200, description = "the JSON Schema of the answers", body = Object, content_type = "application/schema+json"),
        (status = 404, description = "no such form or version", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_form_version_schema(
    State(state): State<AppState>,
    _p: Principal,
    headers: HeaderMap,
    Path((form_id, version)): Path<(String, u32)>,
) -> ApiResult<Response> {
    let row = forms::get_version(&state.db, &form_id, Some(version)).await?;
    with_etag(
        &headers,
        &forms::definition_of(&row)?.json_schema(),
        JSON_SCHEMA_TYPE,
    )
}

/// Publishes a new form, or a new version of one, after validating the definition.
/// Publishing a version again with the same content answers 200; with other content 409.
#[utoipa::path(post, path = "/api/v1/forms", tag = "forms", security(("bearer" = [])),
    request_body(content = Object, description = "a form definition (see mobile-schema)"),
    responses(
        (status = 201, description = "published", body = FormOut),
        (status = 200, description = "this exact version was already published", body = FormOut),
        (status = 403, description = "admins only", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "this version is published with other content", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "the definition is invalid, not newer, or drops a key its kind needs", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn publish_form(
    State(state): State<AppState>,
    Admin(p): Admin,
    JsonBytes(body): JsonBytes,
) -> ApiResult<(StatusCode, Json<FormOut>)> {
    let (form, created) = forms::publish(&state.db, &p, &body, state.config.max_faults).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(form)))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/forms", get(list_forms).post(publish_form))
        .route("/api/v1/forms/{form_id}", get(get_form))
        .route("/api/v1/forms/{form_id}/schema", get(get_form_schema))
        .route(
            "/api/v1/forms/{form_id}/versions/{version}",
            get(get_form_version),
        )
        .route(
            "/api/v1/forms/{form_id}/versions/{version}/schema",
            get(get_form_version_schema),
        )
}
