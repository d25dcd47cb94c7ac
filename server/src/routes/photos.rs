//! Photo evidence of a submission: `HEAD` (is it there?), `PUT` (the raw bytes, by the
//! author) and `GET` (the author and reviewers in scope; every read audited).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use shared_models::Problem;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::services::photos::{self, PhotoRead};
use crate::state::AppState;

fn header_value(v: &str) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(v).map_err(|e| ApiError::Internal(e.into()))
}

/// Whether a named photo is already stored, so the phone never sends it twice.
#[utoipa::path(head, path = "/api/v1/submissions/{id}/photos/{sha256}", tag = "photos", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "submission id"), ("sha256" = String, Path, description = "the photo's SHA-256, lowercase hex")),
    responses(
        (status = 200, description = "stored"),
        (status = 404, description = "not uploaded yet, not named, or outside the caller's scope"),
    ))]
pub async fn head_photo(
    State(state): State<AppState>,
    p: Principal,
    Path((id, sha256)): Path<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    photos::head(&state, &p, id, &sha256).await?;
    Ok(StatusCode::OK)
}

/// Uploads a photo the submission's answers name, as raw bytes.
#[utoipa::path(put, path = "/api/v1/submissions/{id}/photos/{sha256}", tag = "photos", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "submission id"), ("sha256" = String, Path, description = "the photo's SHA-256, lowercase hex")),
    request_body(content = Vec<u8>, description = "the image bytes", content_type = "image/jpeg"),
    responses(
        (status = 201, description = "stored"),
        (status = 200, description = "already stored; nothing written"),
        (status = 403, description = "only the author uploads", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "absent or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "not a JPEG, PNG, WebP or HEIC image (by its bytes)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "digest differs from the path, or not named by the answers", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the photo store is unreachable; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_photo(
    State(state): State<AppState>,
    p: Principal,
    Path((id, sha256)): Path<(Uuid, String)>,
    request: Request,
) -> ApiResult<StatusCode> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let created = photos::upload(
        &state,
        &p,
        id,
        &sha256,
        content_type.as_deref(),
        request.into_body(),
    )
    .await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

/// The photo's bytes (or, with `PHOTO_PRESIGNED_REDIRECT`, a redirect to a URL valid 60 s).
#[utoipa::path(get, path = "/api/v1/submissions/{id}/photos/{sha256}", tag = "photos", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "submission id"), ("sha256" = String, Path, description = "the photo's SHA-256, lowercase hex")),
    responses(
        (status = 200, description = "the image, with its `ETag`", body = Vec<u8>, content_type = "image/jpeg"),
        (status = 304, description = "the caller has it"),
        (status = 307, description = "fetch it from the presigned `Location` within 60 s"),
        (status = 404, description = "not stored, or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the photo store is unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_photo(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    Path((id, sha256)): Path<(Uuid, String)>,
) -> ApiResult<Response> {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let private = HeaderValue::from_static("private, no-store");
    Ok(
        match photos::read(&state, &p, id, &sha256, if_none_match, true).await? {
            PhotoRead::NotModified { etag } => (
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, header_value(&etag)?)],
            )
                .into_response(),
            PhotoRead::Redirect(url) => (
                StatusCode::TEMPORARY_REDIRECT,
                [
                    (header::LOCATION, header_value(&url)?),
                    (header::CACHE_CONTROL, private),
                ],
            )
                .into_response(),
            PhotoRead::Stream {
                object,
                content_type,
                etag,
            } => (
                [
                    (header::CONTENT_TYPE, header_value(&content_type)?),
                    (header::ETAG, header_value(&etag)?),
                    (
                        header::CONTENT_LENGTH,
                        header_value(&object.meta.size.to_string())?,
                    ),
                    (header::CACHE_CONTROL, private),
                ],
                Body::from_stream(object.body),
            )
                .into_response(),
        },
    )
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/submissions/{id}/photos/{sha256}",
        get(get_photo).head(head_photo).put(put_photo),
    )
}
