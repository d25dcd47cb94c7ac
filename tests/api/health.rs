//! Probes, request ids and the OpenAPI document.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{problem, spawn_with, Backend, TestApp};
use crate::on_both;

on_both!(probes_answer, openapi_covers_every_route);

async fn probes_answer(app: TestApp) {
    let res = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(res.status(), StatusCode::OK);
    let id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("request id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // A request id the client sends is kept.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "phone-req-42")
        .send()
        .await
        .expect("healthz");
    assert_eq!(
        res.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("phone-req-42")
    );
}

/// `/readyz` is 503 when the blob store is unreachable.
#[tokio::test]
async fn readyz_is_503_when_the_blob_store_is_down() {
    let app = spawn_with(Backend::Sqlite, |config| {
        // Nothing listens on port 9 of loopback.
        config.blob_store = server::config::BlobStoreConfig::S3(server::config::S3Config {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: "garage".into(),
            bucket: "nowhere".into(),
            access_key_id: "x".into(),
            secret_access_key: "y".to_string().into(),
            force_path_style: true,
            prefix: String::new(),
        });
    })
    .await
    .expect("sqlite is always available");
    let res = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert!(res.headers().get("retry-after").is_some());
    let body = problem(res, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("blob store")));
    // Liveness does not depend on it.
    let res = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status(), StatusCode::OK);
}

const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/enrol"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("patch", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}/devices/{device_id}"),
    ("get", "/api/v1/users/{id}/devices"),
    ("post", "/api/v1/users/{id}/devices"),
    ("get", "/api/v1/org-units"),
    ("post", "/api/v1/org-units"),
    ("get", "/api/v1/org-units/{id}"),
    ("patch", "/api/v1/org-units/{id}"),
    ("get", "/api/v1/teams"),
    ("post", "/api/v1/teams"),
    ("get", "/api/v1/forms"),
    ("post", "/api/v1/forms"),
    ("get", "/api/v1/forms/{form_id}"),
    ("get", "/api/v1/forms/{form_id}/schema"),
    ("get", "/api/v1/forms/{form_id}/versions/{version}"),
    ("get", "/api/v1/forms/{form_id}/versions/{version}/schema"),
    ("get", "/api/v1/hotspots"),
    ("post", "/api/v1/hotspots"),
    ("get", "/api/v1/hotspots/{id}"),
    ("patch", "/api/v1/hotspots/{id}"),
    ("post", "/api/v1/submissions"),
    ("get", "/api/v1/submissions"),
    ("get", "/api/v1/submissions/{id}"),
    ("get", "/api/v1/sync"),
    ("head", "/api/v1/submissions/{id}/photos/{sha256}"),
    ("put", "/api/v1/submissions/{id}/photos/{sha256}"),
    ("get", "/api/v1/submissions/{id}/photos/{sha256}"),
    ("put", "/api/v1/submissions/{id}"),
    ("post", "/api/v1/submissions/{id}/review"),
    ("post", "/api/v1/submissions/{id}/reopen"),
    ("get", "/api/v1/submissions/{id}/revisions"),
    ("post", "/api/v1/reviews"),
    ("get", "/api/v1/reviews/queue"),
    ("get", "/api/v1/referrals"),
    ("get", "/api/v1/referrals/{code}"),
    ("get", "/api/v1/reports/indicators"),
    ("put", "/api/v1/targets"),
    ("get", "/api/v1/exports/submissions"),
    ("post", "/api/v1/stock/movements"),
    ("get", "/api/v1/reports/stock"),
    ("get", "/api/v1/audit"),
];

async fn openapi_covers_every_route(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in ROUTES {
        let op = &paths.get(*path).unwrap_or_else(|| panic!("{path} missing"))[*method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
    }
    let documented: usize = paths
        .values()
        .map(|p| p.as_object().map(|o| o.len()).unwrap_or(0))
        .sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "every documented operation is in ROUTES"
    );

    // The contract is snapshotted: a change to it is a visible diff.
    let snapshot_path = crate::helpers::manifest_dir().join("snapshots/openapi.json");
    let pretty = serde_json::to_string_pretty(&doc).expect("pretty") + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&snapshot_path, &pretty).expect("write snapshot");
    }
    let stored = std::fs::read_to_string(&snapshot_path)
        .expect("tests/snapshots/openapi.json (create it with UPDATE_SNAPSHOTS=1)");
    assert!(
        stored == pretty,
        "the OpenAPI document changed; review and re-run with UPDATE_SNAPSHOTS=1"
    );
}
