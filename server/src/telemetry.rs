//! Logging: `tracing` to stderr, as text or JSON lines. Request spans carry a request
//! id and the matched route (never the raw path, query, headers or body, which could
//! carry tokens or personal data).

use std::io::IsTerminal;

use axum::extract::MatchedPath;
use axum::http::Request;
use tower_http::request_id::RequestId;
use tracing::Span;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset: `info`, but only warnings from the database
/// drivers, the AWS SDK and hyper (a line per query or connection otherwise), while
/// sea-orm-migration says which migrations it applies (`sea_orm=warn` alone would
/// silence it too, as target filters match by prefix).
pub const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=info,aws=warn,hyper=warn";

/// Installs the global subscriber; `RUST_LOG` replaces [`DEFAULT_FILTER`].
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A subscriber may already be set (tests); that is fine.
    drop(result);
}

/// The span of one HTTP request.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
        .to_string();
    tracing::info_span!(
        "request",
        http.method = %request.method(),
        http.route = %route,
        request.id = %request_id,
        user.id = tracing::field::Empty,
        http.status = tracing::field::Empty,
    )
}
