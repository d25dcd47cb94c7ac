//! The Đồng Hành server: the JSON API that outreach phones and supervisors use.
//!
//! `app(state)` builds the router with its layers; `serve(listener, state, shutdown)`
//! runs it on a listener the caller bound (tests bind port 0 first, so they need no
//! sleeps). Everything a request needs is in `AppState`; nothing lives only in memory.
//! `serve_with_metrics` adds the private `/metrics` listener ([`metrics`]) beside it.

pub mod auth;
pub mod config;
pub mod console;
pub mod db;
pub mod error;
pub mod extract;
pub mod listener;
pub mod metrics;
pub mod ops;
pub mod paging;
pub mod routes;
pub mod services;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;

use axum::extract::DefaultBodyLimit;
use axum::http::Response;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

pub use config::Config;
pub use error::{ApiError, ApiResult};
pub use state::AppState;

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let json_limit = state.config.json_body_limit;
    let request_timeout = state.config.request_timeout;
    let metrics = state.metrics.clone();
    routes::router(&state)
        .merge(console::router())
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    metrics,
                    metrics::track_requests,
                ))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(telemetry::request_span)
                        .on_request(())
                        .on_response(|res: &Response<_>, latency: Duration, span: &Span| {
                            span.record("http.status", res.status().as_u16());
                            tracing::info!(
                                http.status = res.status().as_u16(),
                                latency_ms = latency.as_millis() as u64,
                                "response"
                            );
                        })
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::from_fn(
                    move |req, next: Next| async move {
                        // Body upload included: a request that drips in gets 408.
                        match tokio::time::timeout(request_timeout, next.run(req)).await {
                            Ok(response) => response,
                            Err(_) => ApiError::RequestTimeout.into_response(),
                        }
                    },
                ))
                .layer(CatchPanicLayer::custom(|_panic| {
                    ApiError::Internal(anyhow::anyhow!("a handler panicked")).into_response()
                })),
        )
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` resolves, then drains in-flight
/// requests; connections are bounded as [`listener`] describes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = listener::ConnectionLimits {
        header_read_timeout: state.config.header_read_timeout,
        max_connections: state.config.max_connections,
    };
    listener::run(listener, app(state), limits, shutdown).await
}

/// The metrics listener's application: `GET /metrics` and nothing else (scrapes are not
/// counted as requests).
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render_metrics))
        .fallback(|| async { ApiError::NoRoute })
        .with_state(state)
}

/// [`serve`], and `/metrics` on `metrics` when given (the `METRICS_ADDR` listener), both
/// until `shutdown` resolves.
pub async fn serve_with_metrics(
    listener: TcpListener,
    metrics: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shutdown = shutdown.shared();
    let watch = {
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            let Some(metrics) = metrics else {
                return Ok(());
            };
            let limits = listener::ConnectionLimits {
                header_read_timeout: state.config.header_read_timeout,
                max_connections: 16,
            };
            let upkeep = {
                let (metrics, mut shutdown) = (state.metrics.clone(), shutdown.clone());
                async move {
                    let mut every = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        tokio::select! {
                            _ = every.tick() => metrics.run_upkeep(),
                            () = &mut shutdown => break,
                        }
                    }
                }
            };
            let (served, ()) = tokio::join!(
                listener::run(metrics, metrics_app(state), limits, shutdown),
                upkeep
            );
            served
        }
    };
    let (api, watched) = tokio::join!(serve(listener, state, shutdown), watch);
    api.and(watched)
}
