//! The one error type of the API. Client faults become RFC 9457 problem bodies naming
//! the field that is wrong; internal faults are logged once, here, and answered with an
//! opaque 500 so nothing about the database or the store leaks to a caller.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, RuntimeErr, SqlErr};
use shared_models::{FieldError, Problem, PROBLEM_CONTENT_TYPE};

/// The result of every handler and service.
pub type ApiResult<T> = Result<T, ApiError>;

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not well-formed JSON (400).
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    /// A query parameter, path parameter or cursor is wrong (400).
    #[error("bad request: {detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The body is well-formed but its content is wrong (422): the faults listed, and
    /// how many more were found but not listed.
    #[error("validation failed")]
    Validation {
        errors: Vec<FieldError>,
        omitted: usize,
    },
    /// No valid credentials (401).
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Authenticated, but the role may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Absent, or outside the caller's scope: the two are never told apart (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No route for this path (404).
    #[error("no such route")]
    NoRoute,
    /// The route exists but not with this method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with the current state (409).
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The request took longer than the configured request timeout (408).
    #[error("request timeout")]
    RequestTimeout,
    /// The body exceeds the configured limit (413).
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body's media type is not accepted here (415).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Too many attempts; try again after the given seconds (429).
    #[error("too many requests")]
    TooManyRequests {
        retry_after_secs: u64,
        detail: String,
    },
    /// A dependency (database, blob store) is unreachable; retry later (503).
    #[error("service unavailable: {detail}")]
    Unavailable {
        retry_after_secs: u64,
        detail: String,
    },
    /// A database fault (500, logged).
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// Any other internal fault (500, logged).
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 422 with one faulty field.
    pub fn invalid(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        ApiError::validation(vec![FieldError::new(field, code, message)])
    }

    /// A 422 listing every one of these faults.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        ApiError::Validation { errors, omitted: 0 }
    }

    /// A 422 listing at most `limit` of these faults, counting `omitted` more beside
    /// those cut off here.
    pub fn validation_within(mut errors: Vec<FieldError>, omitted: usize, limit: usize) -> Self {
        let cut = errors.len().saturating_sub(limit);
        errors.truncate(limit);
        ApiError::Validation {
            errors,
            omitted: omitted + cut,
        }
    }

    /// A 400 with one faulty parameter.
    pub fn bad_param(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let field = field.into();
        ApiError::BadRequest {
            detail: format!("invalid parameter `{field}`: {message}"),
            errors: vec![FieldError::new(field, code, message)],
        }
    }

    /// A 409 naming the field whose value collides.
    pub fn conflict_on(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Conflict {
            detail: message.clone(),
            errors: vec![FieldError::new(field, code, message)],
        }
    }

    /// Maps a unique-constraint violation to a 409 on `field`, anything else to a 500.
    pub fn from_db_unique(err: DbErr, field: &str, message: &str) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                ApiError::conflict_on(field, "already_exists", message)
            }
            _ => ApiError::Db(err),
        }
    }

    /// Whether a database fault is transient contention (a deadlock or a serialization
    /// failure that the database resolved by aborting this transaction): worth a retry.
    fn is_contention(&self) -> bool {
        match self {
            ApiError::Db(e) => {
                let text = e.to_string();
                text.contains("deadlock detected")
                    || text.contains("could not serialize access")
                    || text.contains("database is locked")
            }
            _ => false,
        }
    }

    /// Whether a database fault is a lost or unobtainable connection (PostgreSQL
    /// restarted or shut down, the network dropped, every connection busy for the whole
    /// acquire timeout): nothing was decided, and a retry may well succeed. A visit whose
    /// commit was cut off is answered as a replay when the phone sends it again.
    fn is_connection_lost(&self) -> bool {
        fn lost(e: &sea_orm::sqlx::Error) -> bool {
            use sea_orm::sqlx::Error;
            match e {
                Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => {
                    true
                }
                // admin_shutdown, crash_shutdown, cannot_connect_now
                Error::Database(d) => {
                    matches!(d.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
                }
                _ => false,
            }
        }
        match self {
            ApiError::Db(DbErr::ConnectionAcquire(_)) => true,
            ApiError::Db(
                DbErr::Conn(RuntimeErr::SqlxError(e))
                | DbErr::Exec(RuntimeErr::SqlxError(e))
                | DbErr::Query(RuntimeErr::SqlxError(e)),
            ) => lost(e),
            _ => false,
        }
    }

    /// Whether this is a database fault worth retrying in a moment (503, `Retry-After`).
    fn is_transient(&self) -> bool {
        self.is_contention() || self.is_connection_lost()
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        if self.is_transient() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self {
            ApiError::MalformedJson(_) | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Db(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem body for this error (internal details never included).
    pub fn problem(&self) -> Problem {
        let (slug, title, detail, errors): (&str, &str, Option<String>, Vec<FieldError>) =
            match self {
                ApiError::MalformedJson(d) => {
                    ("malformed-json", "Malformed JSON", Some(d.clone()), vec![])
                }
                ApiError::BadRequest { detail, errors } => (
                    "bad-request",
                    "Bad request",
                    Some(detail.clone()),
                    errors.clone(),
                ),
                ApiError::Validation { errors, omitted } => (
                    "validation",
                    "Validation failed",
                    Some(match omitted {
                        0 => format!("{} field(s) are invalid", errors.len()),
                        n => format!(
                            "{} faults were found; the first {} are listed",
                            errors.len() + n,
                            errors.len()
                        ),
                    }),
                    errors.clone(),
                ),
                ApiError::Unauthorized(d) => {
                    ("unauthorized", "Unauthorized", Some((*d).into()), vec![])
                }
                ApiError::Forbidden(d) => ("forbidden", "Forbidden", Some(d.clone()), vec![]),
                ApiError::NotFound(what) => (
                    "not-found",
                    "Not found",
                    Some(format!("{what} not found")),
                    vec![],
                ),
                ApiError::NoRoute => (
                    "not-found",
                    "Not found",
                    Some("no such route".into()),
                    vec![],
                ),
                ApiError::MethodNotAllowed => (
                    "method-not-allowed",
                    "Method not allowed",
                    Some("this route does not accept that method".into()),
                    vec![],
                ),
                ApiError::Conflict { detail, errors } => {
                    ("conflict", "Conflict", Some(detail.clone()), errors.clone())
                }
                ApiError::RequestTimeout => (
                    "request-timeout",
                    "Request timeout",
                    Some("the request was not completed in time; send it again".into()),
                    vec![],
                ),
                ApiError::PayloadTooLarge => (
                    "payload-too-large",
                    "Payload too large",
                    Some("the request body exceeds the size limit".into()),
                    vec![],
                ),
                ApiError::UnsupportedMediaType(d) => (
                    "unsupported-media-type",
                    "Unsupported media type",
                    Some(d.clone()),
                    vec![],
                ),
                ApiError::TooManyRequests { detail, .. } => (
                    "too-many-requests",
                    "Too many requests",
                    Some(detail.clone()),
                    vec![],
                ),
                ApiError::Unavailable { detail, .. } => (
                    "unavailable",
                    "Service unavailable",
                    Some(detail.clone()),
                    vec![],
                ),
                ApiError::Db(_) if self.is_contention() => (
                    "unavailable",
                    "Service unavailable",
                    Some("the database was busy with a conflicting change; retry".into()),
                    vec![],
                ),
                ApiError::Db(_) if self.is_connection_lost() => (
                    "unavailable",
                    "Service unavailable",
                    Some("the database could not be reached; retry".into()),
                    vec![],
                ),
                ApiError::Db(_) | ApiError::Internal(_) => (
                    "internal",
                    "Internal server error",
                    Some("an internal error occurred; it has been logged".into()),
                    vec![],
                ),
            };
        let errors_omitted = match self {
            ApiError::Validation { omitted, .. } => *omitted as u64,
            _ => 0,
        };
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.into(),
            status: self.status().as_u16(),
            detail,
            errors,
            errors_omitted,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Db(_) = self {
            let kind = if self.is_contention() {
                "contention"
            } else if self.is_connection_lost() {
                "unavailable"
            } else {
                "other"
            };
            crate::metrics::database_error(kind);
        }
        if status.is_server_error() && !matches!(self, ApiError::Unavailable { .. }) {
            // The one place internal faults are logged.
            tracing::error!(error = %self, "request failed");
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if self.is_transient() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(1u32));
        }
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests {
                retry_after_secs, ..
            }
            | ApiError::Unavailable {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}
