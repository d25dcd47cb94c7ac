//! `/metrics` as an operator's Prometheus scrapes it: on its own listener only, counting
//! what phones and reviewers did, by route templates and published forms, and naming no
//! one. Each app keeps its own registry, so the numbers compared here are exactly this
//! test's, whatever runs beside it.

use reqwest::StatusCode;
use serde_json::json;
use shared_models::Role;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::intake::submit;
use crate::on_both;
use crate::photos::{jpeg, sha256_hex, visit_with_photos};

on_both!(metrics_count_what_happened_and_name_no_one);

async fn scrape(app: &TestApp) -> String {
    let base = app.metrics_base.as_ref().expect("the metrics listener");
    let res = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("content type")
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        res.headers()
    );
    res.text().await.expect("metrics text")
}

/// The sum of the samples of `name` carrying every one of `labels` (0 when none does).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, sample) = line.rsplit_once(' ')?;
            let (series_name, pairs) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let pairs: Vec<&str> = pairs.split(',').collect();
            let wanted = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str()));
            wanted.then(|| sample.parse::<f64>().ok()).flatten()
        })
        .sum()
}

async fn metrics_count_what_happened_and_name_no_one(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let supervisor = app.actor(Role::Supervisor, "006").await;
    let before = scrape(&app).await;

    let photo = jpeg(9, 32, 24);
    let sha = sha256_hex(&photo);
    let visit = visit_with_photos(app.unit("006").await, &[&sha]);
    let stored = submit(&app, &peer, &visit, StatusCode::CREATED).await;
    submit(&app, &peer, &visit, StatusCode::OK).await;
    let mut stray = visit_with_photos(app.unit("006").await, &[]);
    stray["form_id"] = json!("form_nobody_published");
    submit(&app, &peer, &stray, StatusCode::UNPROCESSABLE_ENTITY).await;

    let id = stored["id"].as_str().expect("id");
    let photo_path = format!("/api/v1/submissions/{id}/photos/{sha}");
    for expected in [StatusCode::CREATED, StatusCode::OK] {
        let res = app
            .client
            .put(app.url(&photo_path))
            .bearer_auth(peer.token())
            .header("content-type", "image/jpeg")
            .body(photo.clone())
            .send()
            .await
            .expect("put photo");
        assert_eq!(res.status(), expected);
    }
    let res = app
        .post(
            &format!("/api/v1/submissions/{id}/review"),
            Some(supervisor.token()),
            &json!({ "decision": "approve" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // A device token in a path must stay out of the labels, like any id.
    let device_token = format!("devtok{}", Uuid::new_v4().simple());
    app.client
        .get(app.url(&format!("/odk/{device_token}/formList")))
        .send()
        .await
        .expect("form list");

    // The API port has no /metrics.
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let after = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let visits = [("form", "outreach_visit"), ("source", "json_app")];
    let outcome = |o: &'static str| [visits[0], visits[1], ("outcome", o)];
    assert_eq!(
        moved("donghanh_submissions_total", &outcome("accepted")),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved("donghanh_submissions_total", &outcome("replayed")),
        1.0,
        "{after}"
    );
    let refused = [
        ("form", "unknown"),
        ("source", "json_app"),
        ("outcome", "refused"),
    ];
    assert_eq!(
        moved("donghanh_submissions_total", &refused),
        1.0,
        "{after}"
    );
    assert_eq!(moved("donghanh_photos_stored_total", &[]), 1.0, "{after}");
    assert_eq!(
        moved("donghanh_photos_deduplicated_total", &[]),
        1.0,
        "{after}"
    );
    // No metadata to strip: stored as sent.
    assert_eq!(
        moved("donghanh_photo_bytes_stored_total", &[]),
        photo.len() as f64,
        "{after}"
    );
    let approvals = [("decision", "approve")];
    assert_eq!(
        moved("donghanh_review_decisions_total", &approvals),
        1.0,
        "{after}"
    );
    let changed = [("cells", "changed")];
    assert_eq!(
        moved("donghanh_report_cells_rebuild_seconds_count", &changed),
        1.0,
        "{after}"
    );

    // The latency histogram of the matched route, by method and status.
    let created = [
        ("method", "POST"),
        ("route", "/api/v1/submissions"),
        ("status", "201"),
    ];
    assert_eq!(
        moved("donghanh_http_request_duration_seconds_count", &created),
        1.0,
        "{after}"
    );
    let mut slowest = created.to_vec();
    slowest.push(("le", "+Inf"));
    assert_eq!(
        moved("donghanh_http_request_duration_seconds_bucket", &slowest),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved("donghanh_http_requests_total", &created),
        1.0,
        "{after}"
    );
    let photos = [("route", "/api/v1/submissions/{id}/photos/{sha256}")];
    assert_eq!(
        moved("donghanh_http_requests_total", &photos),
        2.0,
        "{after}"
    );
    let odk = [("route", "/odk/{token}/formList")];
    assert_eq!(moved("donghanh_http_requests_total", &odk), 1.0, "{after}");
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(
        moved("donghanh_http_requests_total", &unmatched),
        1.0,
        "{after}"
    );

    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(
        value(&after, "donghanh_build_info", &version),
        1.0,
        "{after}"
    );
    assert!(
        after.contains("donghanh_db_pool_connections{state=\"in_use\"}")
            && after.contains("donghanh_db_pool_connections{state=\"idle\"}"),
        "{after}"
    );

    // Nobody is named: no id, username, token, UIC, photo digest or unpublished form id.
    let uic = visit["answers"]["contacts"][0]["uic"]
        .as_str()
        .expect("uic")
        .to_string();
    let forbidden = [
        id.to_string(),
        peer.user.id.to_string(),
        supervisor.user.id.to_string(),
        peer.user.username.clone(),
        supervisor.user.username.clone(),
        peer.tokens.access_token.clone(),
        peer.tokens.refresh_token.clone(),
        device_token,
        uic.clone(),
        uic.to_lowercase(),
        sha,
        "form_nobody_published".to_string(),
    ];
    for word in &forbidden {
        assert!(!after.contains(word.as_str()), "{word:?} in {after}");
    }
}
