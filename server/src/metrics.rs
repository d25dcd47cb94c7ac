//! Prometheus metrics: what an operator watches (requests, intake outcomes, photos,
//! faults, the pool, review decisions, report-cell work), rendered as the text format on
//! `METRICS_ADDR` only, never on the API port.
//!
//! Each `AppState` owns its own registry, a `PrometheusRecorder` that is never installed
//! as the process-wide recorder: a test process runs hundreds of apps at once, and each
//! must read exactly its own numbers (a shared global registry would only allow "at least"
//! comparisons that other tests could satisfy). The `metrics` macros write to the
//! *current* recorder, so [`Metrics::scope`] makes this registry current while a future
//! is polled; the HTTP layer wraps every request in it, and services record with the
//! functions below without carrying a handle. Work outside a scope records nothing (the
//! CLI commands), and so does work moved to another task or thread: code that runs on
//! its own (the blob store wrapper, used by the photo sweeper too) holds a [`Metrics`]
//! and records through [`Metrics::record`].
//!
//! Labels never carry ids, usernames, tokens or UICs: routes are axum's matched templates
//! (`/odk/{token}/formList`, never the path itself), methods come from a fixed list, and
//! a form label is a published form's id.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};
use shared_models::SubmissionSource;

/// The Prometheus text format's media type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets of requests, in seconds: phones on 3G up to a photo's slow upload.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Buckets of report-cell work: an approval's few cells up to a full rebuild.
const REPORT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0,
];

/// One server's registry, or nothing when `METRICS_ADDR` is unset (then every record is
/// skipped). Cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<PrometheusRecorder>>);

/// What became of a submission sent to the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionOutcome {
    /// Stored now.
    Accepted,
    /// An identical retry of one already stored: nothing written.
    Replayed,
    /// Refused as the sender's fault (a 4xx: invalid, forbidden, an id conflict).
    Refused,
    /// Not stored because of a fault of the server (a 5xx).
    Failed,
}

impl SubmissionOutcome {
    fn as_str(self) -> &'static str {
        match self {
            SubmissionOutcome::Accepted => "accepted",
            SubmissionOutcome::Replayed => "replayed",
            SubmissionOutcome::Refused => "refused",
            SubmissionOutcome::Failed => "failed",
        }
    }
}

impl Metrics {
    /// No registry: nothing is recorded.
    pub fn off() -> Metrics {
        Metrics(None)
    }

    /// A fresh registry with the build version recorded.
    pub fn new() -> anyhow::Result<Metrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets(HTTP_BUCKETS)?
            .set_buckets_for_metric(
                Matcher::Prefix("donghanh_report_cells".into()),
                REPORT_BUCKETS,
            )?
            .build_recorder();
        let metrics = Metrics(Some(Arc::new(recorder)));
        metrics.record(describe);
        Ok(metrics)
    }

    /// Whether this server keeps metrics.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Runs `f` with this registry current.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        let recorder = self.0.as_deref()?;
        Some(metrics::with_local_recorder(recorder, f))
    }

    /// Polls `future` with this registry current at every poll.
    pub async fn scope<F: Future>(&self, future: F) -> F::Output {
        let Some(recorder) = self.0.as_deref() else {
            return future.await;
        };
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            metrics::with_local_recorder(recorder, || future.as_mut().poll(cx))
        })
        .await
    }

    /// The registry in the Prometheus text format, the pool's gauges read now; `None`
    /// when metrics are off.
    pub fn render(&self, db: &DatabaseConnection) -> Option<String> {
        let recorder = self.0.as_deref()?;
        let (size, idle) = match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DatabaseBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DatabaseBackend::MySql => (0, 0),
        };
        let in_use = f64::from(size) - idle as f64;
        metrics::with_local_recorder(recorder, || {
            gauge!("donghanh_db_pool_connections", "state" => "in_use").set(in_use.max(0.0));
            gauge!("donghanh_db_pool_connections", "state" => "idle").set(idle as f64);
        });
        Some(recorder.handle().render())
    }

    /// Folds recorded histogram samples into their buckets, so memory stays bounded
    /// between scrapes (run every few seconds while the metrics listener is up).
    pub fn run_upkeep(&self) {
        if let Some(recorder) = self.0.as_deref() {
            recorder.handle().run_upkeep();
        }
    }
}

fn describe() {
    gauge!("donghanh_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    describe_gauge!(
        "donghanh_build_info",
        "The running server's version (always 1)."
    );
    describe_counter!(
        "donghanh_http_requests_total",
        "HTTP requests answered, by method, matched route and status."
    );
    describe_histogram!(
        "donghanh_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a request's arrival to its answer's headers."
    );
    describe_counter!(
        "donghanh_submissions_total",
        "Submissions sent to the intake, by form, source and outcome."
    );
    describe_counter!(
        "donghanh_photos_stored_total",
        "Photos stored (location metadata removed)."
    );
    describe_counter!(
        "donghanh_photos_deduplicated_total",
        "Photo uploads of a photo already stored: nothing written again."
    );
    describe_counter!(
        "donghanh_photo_bytes_stored_total",
        metrics::Unit::Bytes,
        "Bytes of the photos stored."
    );
    describe_counter!(
        "donghanh_blob_store_errors_total",
        "Faults of the blob store (unreachable, I/O), by operation."
    );
    describe_counter!(
        "donghanh_database_errors_total",
        "Database faults answered to a caller: contention (503, retried) or other (500)."
    );
    describe_gauge!(
        "donghanh_db_pool_connections",
        "Database pool connections in use and idle, read at scrape time."
    );
    describe_counter!(
        "donghanh_review_decisions_total",
        "Review decisions taken, by decision (and admins' reopenings)."
    );
    describe_histogram!(
        "donghanh_report_cells_rebuild_seconds",
        metrics::Unit::Seconds,
        "Time spent recomputing report cells: an approval's changed cells, or all of them."
    );
}

/// The HTTP layer: times each request by its matched route, with this registry current
/// while the request is handled.
pub async fn track_requests(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    if !metrics.is_on() {
        return next.run(req).await;
    }
    let started = Instant::now();
    let method = method_label(req.method());
    // The template, never the path: paths carry ids and device tokens.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = metrics.scope(next.run(req)).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics.record(|| {
        let labels = [
            ("method", method.to_string()),
            ("route", route),
            ("status", status),
        ];
        counter!("donghanh_http_requests_total", &labels).increment(1);
        histogram!("donghanh_http_request_duration_seconds", &labels).record(elapsed);
    });
    response
}

/// A method from a fixed list: a client may send any token as a method.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics` on the metrics listener.
pub async fn render_metrics(State(state): State<crate::AppState>) -> Response {
    match state.metrics.render(&state.db) {
        Some(text) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            text,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A submission's outcome. `form` must be a published form's id (or `unknown`).
pub fn submission(form: &str, source: SubmissionSource, outcome: SubmissionOutcome) {
    let source = match source {
        SubmissionSource::App => "json_app",
        SubmissionSource::OdkCollect => "odk_collect",
    };
    counter!(
        "donghanh_submissions_total",
        "form" => form.to_string(),
        "source" => source,
        "outcome" => outcome.as_str()
    )
    .increment(1);
}

/// A photo stored now, `bytes` long as stored.
pub fn photo_stored(bytes: u64) {
    counter!("donghanh_photos_stored_total").increment(1);
    counter!("donghanh_photo_bytes_stored_total").increment(bytes);
}

/// A photo sent again that was already stored.
pub fn photo_deduplicated() {
    counter!("donghanh_photos_deduplicated_total").increment(1);
}

/// A fault of the blob store in `operation` (`put`, `get`, …).
pub fn blob_store_error(operation: &'static str) {
    counter!("donghanh_blob_store_errors_total", "operation" => operation).increment(1);
}

/// A database fault answered to a caller: `contention` or `unavailable` (both 503),
/// `other` (500).
pub fn database_error(kind: &'static str) {
    counter!("donghanh_database_errors_total", "kind" => kind).increment(1);
}

/// A review decision (`approve`, `reject`, `request_changes`, or `reopen`).
pub fn review_decision(decision: &'static str) {
    counter!("donghanh_review_decisions_total", "decision" => decision).increment(1);
}

/// Report cells recomputed: `changed` (an approval's) or `all` (a rebuild).
pub fn report_cells_rebuilt(cells: &'static str, elapsed: Duration) {
    histogram!("donghanh_report_cells_rebuild_seconds", "cells" => cells)
        .record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{BlobBody, BlobError, BlobMeta, BlobObject, BlobStore, MeasuredStore};

    /// A store that is always unreachable.
    struct Down;

    #[async_trait::async_trait]
    impl BlobStore for Down {
        async fn put(
            &self,
            _: &str,
            _: BlobBody,
            _: [u8; 32],
            _: &str,
        ) -> Result<BlobMeta, BlobError> {
            Err(BlobError::Unavailable("down".into()))
        }
        async fn head(&self, _: &str) -> Result<Option<BlobMeta>, BlobError> {
            Err(BlobError::ChecksumMismatch)
        }
        async fn get(&self, _: &str) -> Result<Option<BlobObject>, BlobError> {
            Err(BlobError::Io(std::io::Error::other("disk")))
        }
        async fn delete(&self, _: &str) -> Result<(), BlobError> {
            Ok(())
        }
        async fn list(&self, _: &str) -> Result<Vec<BlobMeta>, BlobError> {
            Ok(vec![])
        }
        async fn presigned_get(&self, _: &str, _: Duration) -> Result<Option<String>, BlobError> {
            Ok(None)
        }
        async fn check(&self) -> Result<(), BlobError> {
            Err(BlobError::Unavailable("down".into()))
        }
    }

    fn text(metrics: &Metrics) -> String {
        metrics.0.as_deref().expect("metrics on").handle().render()
    }

    #[tokio::test]
    async fn store_and_database_faults_are_counted_in_their_own_registry() {
        let metrics = Metrics::new().expect("registry");
        let store = MeasuredStore::new(Arc::new(Down), metrics.clone());
        let _ = store
            .put(
                "k",
                BlobBody::Bytes(bytes::Bytes::new()),
                [0; 32],
                "image/jpeg",
            )
            .await;
        let _ = store.get("k").await;
        // A refusal of the caller's input is not a fault of the store.
        let _ = store.head("k").await;
        let _ = store.check().await;
        let answered = metrics
            .scope(async {
                crate::ApiError::Db(sea_orm::DbErr::Custom("gone".into())).into_response()
            })
            .await;
        assert_eq!(answered.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // Outside any scope nothing reaches this registry.
        drop(crate::ApiError::Db(sea_orm::DbErr::Custom("gone".into())).into_response());

        let text = text(&metrics);
        for line in [
            "donghanh_blob_store_errors_total{operation=\"put\"} 1",
            "donghanh_blob_store_errors_total{operation=\"get\"} 1",
            "donghanh_blob_store_errors_total{operation=\"check\"} 1",
            "donghanh_database_errors_total{kind=\"other\"} 1",
            "donghanh_build_info{version=\"",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
        assert!(!text.contains("operation=\"head\""), "{text}");
        assert!(!Metrics::off().is_on());
    }
}
