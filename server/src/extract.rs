//! Request extractors that turn every malformed input into a precise problem answer:
//! JSON bodies (content type, size, syntax, unknown/missing/mistyped fields with their
//! path, then `validator` rules), query strings, path parameters, and cursor paging.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use bytes::BytesMut;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use shared_models::FieldError;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body, deserialized with field paths in its errors and then validated.
#[derive(Debug, Clone)]
pub struct ValidatedJson<T>(pub T);

impl<T> FromRequest<AppState> for ValidatedJson<T>
where
    T: DeserializeOwned + Validate,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        let value: T = parse_json(&bytes)?;
        value
            .validate()
            .map_err(|e| ApiError::validation(validation_faults(&e)))?;
        Ok(ValidatedJson(value))
    }
}

/// A JSON body's bytes, checked for content type and size but not yet parsed: for
/// handlers that parse with their own fault reporting (form definitions).
#[derive(Debug, Clone)]
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let essence = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json"
                    || (essence.starts_with("application/") && essence.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "expected `Content-Type: application/json`".into(),
            ));
        }
        Ok(JsonBytes(
            read_limited(req.into_body(), state.config.json_body_limit).await?,
        ))
    }
}

/// How much of an oversized body is read and discarded so that the client, still
/// sending, receives the 413 instead of a reset connection.
const DRAIN_FACTOR: usize = 8;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a body of at most `limit` bytes; a larger one is a 413.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::MalformedJson(format!("could not read the body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            drain(stream, limit.saturating_mul(DRAIN_FACTOR)).await;
            return Err(ApiError::PayloadTooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Discards what remains of a refused body, up to `cap` bytes or `DRAIN_TIMEOUT`.
pub async fn drain(mut stream: axum::body::BodyDataStream, cap: usize) {
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > cap {
                break;
            }
        }
    })
    .await;
}

/// Deserializes JSON, telling syntax faults (400) from content faults (422 with a path).
/// A string holding U+0000 is refused at its path: PostgreSQL cannot store one, and no
/// field of ours means it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Only a body spelling `\u0000` can hold one; the walk runs on those alone.
    if bytes.windows(6).any(|w| w == br"\u0000") {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
            if let Some(path) = nul_path(&value, String::new()) {
                return Err(ApiError::invalid(
                    path,
                    "nul_character",
                    "text may not contain the NUL character (U+0000)",
                ));
            }
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    ApiError::validation(vec![data_fault(&path, &inner.to_string())])
                }
                _ => ApiError::MalformedJson(inner.to_string()),
            });
        }
    };
    de.end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// The path (`answers.contacts[2].uic`) of the first string or key holding U+0000.
fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                return Some(at);
            }
            nul_path(item, at)
        }),
        _ => None,
    }
}

/// Turns a serde data error into a field fault with a stable code.
fn data_fault(path: &str, message: &str) -> FieldError {
    // serde's messages: "unknown field `x`, expected …", "missing field `x`", "invalid type: …".
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_string();
    let named = message.split('`').nth(1).map(str::to_string);
    let base = if path == "." { "" } else { path };
    let join = |name: &str| {
        if base.is_empty() || base.ends_with(name) {
            if base.is_empty() {
                name.to_string()
            } else {
                base.to_string()
            }
        } else {
            format!("{base}.{name}")
        }
    };
    let (field, code) = if message.starts_with("unknown field") {
        (
            named.as_deref().map(join).unwrap_or_else(|| base.into()),
            "unknown_field",
        )
    } else if message.starts_with("missing field") {
        (
            named.as_deref().map(join).unwrap_or_else(|| base.into()),
            "required",
        )
    } else if message.starts_with("unknown variant") {
        (base.to_string(), "not_a_choice")
    } else if message.starts_with("invalid type") {
        (base.to_string(), "invalid_type")
    } else {
        (base.to_string(), "invalid")
    };
    FieldError::new(field, code, message)
}

/// Flattens `validator` errors into field faults with dotted/indexed paths.
pub fn validation_faults(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect_faults("", errors, &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn collect_faults(prefix: &str, errors: &ValidationErrors, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let message = e
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| describe_rule(e));
                    out.push(FieldError::new(path.clone(), e.code.to_string(), message));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect_faults(&path, inner, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    collect_faults(&format!("{path}[{i}]"), inner, out);
                }
            }
        }
    }
}

fn describe_rule(e: &validator::ValidationError) -> String {
    let min = e.params.get("min").map(|v| v.to_string());
    let max = e.params.get("max").map(|v| v.to_string());
    match (e.code.as_ref(), min, max) {
        ("length", Some(min), Some(max)) => format!("length must be between {min} and {max}"),
        ("length", Some(min), None) => format!("length must be at least {min}"),
        ("length", None, Some(max)) => format!("length must be at most {max}"),
        ("range", Some(min), Some(max)) => format!("must be between {min} and {max}"),
        (code, _, _) => format!("fails the `{code}` rule"),
    }
}

/// A query string deserialized strictly: unknown or mistyped parameters are a 400 naming them.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        if let Some((key, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::bad_param(
                key.replace('\0', ""),
                "nul_character",
                "may not contain the NUL character (%00)",
            ));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.inner().to_string();
                let named = message.split('`').nth(1).unwrap_or("").to_string();
                let (field, code) = if message.starts_with("unknown field") {
                    (named, "unknown_field")
                } else if message.starts_with("missing field") {
                    (named, "required")
                } else {
                    (if path == "." { String::new() } else { path }, "invalid")
                };
                ApiError::BadRequest {
                    detail: format!("invalid query string: {message}"),
                    errors: vec![FieldError::new(field, code, message)],
                }
            })
    }
}

/// Path parameters; a value of the wrong shape (say, not a UUID) is a 400 naming the parameter.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(params) = axum::extract::RawPathParams::from_request_parts(parts, state).await {
            if let Some((key, _)) = params.iter().find(|(_, v)| v.contains('\0')) {
                return Err(ApiError::bad_param(
                    key,
                    "nul_character",
                    "may not contain the NUL character (%00)",
                ));
            }
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let field = match e.kind() {
                    axum::extract::path::ErrorKind::ParseErrorAtKey { key, .. }
                    | axum::extract::path::ErrorKind::DeserializeError { key, .. }
                    | axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                    // A tuple's error names the position; the route names the parameter.
                    axum::extract::path::ErrorKind::ParseErrorAtIndex { index, .. } => {
                        let index = *index;
                        match axum::extract::RawPathParams::from_request_parts(parts, state).await {
                            Ok(params) => params
                                .iter()
                                .nth(index)
                                .map(|(k, _)| k.to_string())
                                .unwrap_or_default(),
                            Err(_) => String::new(),
                        }
                    }
                    // A lone parameter's error does not name it; the route does.
                    _ => match axum::extract::RawPathParams::from_request_parts(parts, state).await
                    {
                        Ok(params) if params.iter().count() == 1 => params
                            .iter()
                            .next()
                            .map(|(k, _)| k.to_string())
                            .unwrap_or_default(),
                        _ => String::new(),
                    },
                };
                Err(ApiError::bad_param(field, "invalid", e.body_text()))
            }
            Err(other) => Err(ApiError::Internal(anyhow::anyhow!(
                "path extraction: {other}"
            ))),
        }
    }
}

/// The client's address, for the per-address login throttle: the peer of the
/// connection, or with `TRUST_PROXY_HEADERS` the last `X-Forwarded-For` entry (the one
/// the operator's own proxy appended; entries before it are the client's word).
/// `None` when neither is known. IPv6 addresses are cut to their /64, the block one
/// subscriber holds.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .config
            .trust_proxy_headers
            .then(|| {
                parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .next_back()
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit(',').next())
                    .and_then(|v| v.trim().parse::<IpAddr>().ok())
            })
            .flatten();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientAddr(forwarded.or(peer).map(subscriber_block)))
    }
}

/// The public origin of this server as the caller reached it (`https://host[:port]`,
/// with any path of `PUBLIC_URL`), for addresses the server hands out: `PUBLIC_URL`
/// when set; else the request's `Host`, over `https` only when a trusted proxy says so
/// in `X-Forwarded-Proto`.
#[derive(Debug, Clone)]
pub struct RequestOrigin(pub String);

impl FromRequestParts<AppState> for RequestOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(url) = &state.config.public_url {
            return Ok(RequestOrigin(url.clone()));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                    })
            })
            .ok_or_else(|| {
                ApiError::bad_param("Host", "invalid", "a valid Host header is needed here")
            })?;
        let https = state.config.trust_proxy_headers
            && parts
                .headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        let scheme = if https { "https" } else { "http" };
        Ok(RequestOrigin(format!("{scheme}://{host}")))
    }
}

/// An IPv4 address as it is; an IPv6 address with its interface half zeroed.
fn subscriber_block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn fault(body: &str) -> FieldError {
        match parse_json::<Outer>(body.as_bytes()) {
            Err(ApiError::Validation { mut errors, .. }) => errors.remove(0),
            other => panic!("expected a validation fault, got {other:?}"),
        }
    }

    #[test]
    fn data_faults_name_their_path() {
        let f = fault(r#"{"name":"a","inner":{"count":"x"}}"#);
        assert_eq!(
            (f.field.as_str(), f.code.as_str()),
            ("inner.count", "invalid_type")
        );
        let f = fault(r#"{"name":"a","inner":{}}"#);
        assert_eq!(
            (f.field.as_str(), f.code.as_str()),
            ("inner.count", "required")
        );
        let f = fault(r#"{"name":"a","inner":{"count":1},"extra":1}"#);
        assert_eq!(
            (f.field.as_str(), f.code.as_str()),
            ("extra", "unknown_field")
        );
        let f = fault(r#"{"inner":{"count":1}}"#);
        assert_eq!((f.field.as_str(), f.code.as_str()), ("name", "required"));
    }

    #[test]
    fn syntax_faults_are_malformed_json() {
        assert!(matches!(
            parse_json::<Outer>(b"{\"name\":"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_json::<Outer>(b"{\"name\":\"a\",\"inner\":{\"count\":1}} trailing"),
            Err(ApiError::MalformedJson(_))
        ));
    }
}
