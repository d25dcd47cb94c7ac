//! Every malformed or hostile request gets a precise problem+json answer, never a 500,
//! and nothing is written.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_models::Role;

use crate::helpers::{faults, problem, TestApp};
use crate::on_both;

on_both!(
    malformed_bodies_get_precise_problems,
    oversized_and_mistyped_bodies_are_refused,
    bad_paths_queries_and_methods,
    nul_characters_are_refused_where_they_are,
);

async fn users_named(app: &TestApp, token: &str, name: &str) -> usize {
    let page: Value = app
        .get("/api/v1/users?limit=200", token)
        .await
        .json()
        .await
        .expect("list");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|u| u["username"] == name)
        .count()
}

async fn post_raw(
    app: &TestApp,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/users"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

async fn malformed_bodies_get_precise_problems(app: TestApp) {
    let admin = app.admin().await;
    let unit = app.unit("006").await;
    let t = admin.token();

    let body = problem(
        post_raw(
            &app,
            t,
            "application/json",
            b"{\"username\": \"x\",".to_vec(),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["type"], "/problems/malformed-json");

    let unknown = json!({ "username": "newbie", "password": "a-long-enough-password", "role": "volunteer",
        "org_unit_id": unit, "full_name": "Nguyễn Văn A" });
    let body = problem(
        app.post("/api/v1/users", Some(t), &unknown).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&body),
        vec![("full_name".to_string(), "unknown_field".to_string())]
    );

    let wrong_type = json!({ "username": 42, "password": "a-long-enough-password", "role": "volunteer", "org_unit_id": unit });
    let body = problem(
        app.post("/api/v1/users", Some(t), &wrong_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&body),
        vec![("username".to_string(), "invalid_type".to_string())]
    );

    let missing = json!({ "username": "newbie", "role": "volunteer", "org_unit_id": unit });
    let body = problem(
        app.post("/api/v1/users", Some(t), &missing).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&body),
        vec![("password".to_string(), "required".to_string())]
    );

    let bad_role = json!({ "username": "newbie", "password": "a-long-enough-password", "role": "root", "org_unit_id": unit });
    let body = problem(
        app.post("/api/v1/users", Some(t), &bad_role).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&body),
        vec![("role".to_string(), "not_a_choice".to_string())]
    );

    let bad_uuid = json!({ "username": "newbie", "password": "a-long-enough-password", "role": "volunteer", "org_unit_id": "006" });
    let body = problem(
        app.post("/api/v1/users", Some(t), &bad_uuid).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&body)[0].0, "org_unit_id");

    // Rule violations are all reported at once, each with its field.
    let rules = json!({ "username": "Nguyễn Văn A", "password": "short", "role": "volunteer", "org_unit_id": unit });
    let body = problem(
        app.post("/api/v1/users", Some(t), &rules).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut got = faults(&body);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("password".to_string(), "length".to_string()),
            ("username".to_string(), "bad_username".to_string())
        ]
    );

    let nested = json!({ "code": "X1", "name": "n", "level": "ward", "type": "phuong", "parent_id": unit, "valid_from": "2025-13-40" });
    let body = problem(
        app.post("/api/v1/org-units", Some(t), &nested).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&body)[0].0, "valid_from");

    assert_eq!(
        users_named(&app, t, "newbie").await,
        0,
        "nothing half-written"
    );
}

async fn oversized_and_mistyped_bodies_are_refused(app: TestApp) {
    let admin = app.admin().await;
    let t = admin.token();
    let huge = format!("{{\"username\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let body = problem(
        post_raw(&app, t, "application/json", huge.into_bytes()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(body["type"], "/problems/payload-too-large");

    let body = problem(
        post_raw(&app, t, "text/plain", b"{}".to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("application/json")));
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .body("{\"username\":\"admin\",\"password\":\"x\"}")
        .send()
        .await
        .expect("request");
    problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    // A charset parameter is fine.
    let ok = post_raw(
        &app,
        t,
        "application/json; charset=utf-8",
        serde_json::to_vec(
            &json!({ "username": "charset.ok", "password": "a-long-enough-password",
            "role": "volunteer", "org_unit_id": app.unit("006").await }),
        )
        .expect("json"),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
}

async fn bad_paths_queries_and_methods(app: TestApp) {
    let admin = app.admin().await;
    let t = admin.token();
    let body = problem(
        app.get("/api/v1/users/not-a-uuid", t).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&body)[0].0, "id");
    // Two parameters: the faulty one is named, not `""`.
    let sha = "a".repeat(64);
    let body = problem(
        app.get(&format!("/api/v1/submissions/not-a-uuid/photos/{sha}"), t)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&body)[0].0, "id");
    let body = problem(
        app.send(
            Method::DELETE,
            "/api/v1/users/xyz/devices/phone-1",
            Some(t),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&body)[0].0, "id");
    let body = problem(
        app.get("/api/v1/forms/outreach_visit/versions/abc", t)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&body)[0].0, "version");
    let body = problem(
        app.get("/api/v1/users?colour=red", t).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        faults(&body),
        vec![("colour".to_string(), "unknown_field".to_string())]
    );
    let body = problem(
        app.get("/api/v1/users?limit=0", t).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&body)[0].0, "limit");
    let body = problem(
        app.get("/api/v1/users?active=perhaps", t).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&body)[0].0, "active");
    problem(
        app.get("/api/v1/nothing-here", t).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.send(Method::DELETE, "/api/v1/me", Some(t), None).await,
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    let missing = format!("/api/v1/users/{}", uuid::Uuid::now_v7());
    problem(app.get(&missing, t).await, StatusCode::NOT_FOUND).await;
    // Wrong roles are a 403, before any body is read.
    let volunteer = app.actor(Role::Volunteer, "006").await;
    problem(
        app.post("/api/v1/org-units", Some(volunteer.token()), &json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

/// PostgreSQL cannot store U+0000 (a login with one in its username once answered 500):
/// every way in refuses it, naming where it was.
async fn nul_characters_are_refused_where_they_are(app: TestApp) {
    let admin = app.admin().await;
    let t = admin.token();
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"username": "ad\u0000min", "password": "whatever-it-is"}"#)
        .send()
        .await
        .expect("login");
    let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(faults(&body), [("username".into(), "nul_character".into())]);
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"username": "{}", "password": "{}", "device_id": "phone\u0000"}}"#,
            app.admin_username, app.admin_password
        ))
        .send()
        .await
        .expect("login");
    let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        faults(&body),
        [("device_id".into(), "nul_character".into())]
    );
    // An escaped backslash before `u0000` is ordinary text, not a NUL.
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"username": "nobody\\u0000", "password": "whatever-it-is"}"#)
        .send()
        .await
        .expect("login");
    problem(res, StatusCode::UNAUTHORIZED).await;
    // Deep in a submission's answers.
    let peer = app.actor(Role::PeerEducator, "006").await;
    let mut visit = crate::intake::outreach_visit(
        app.unit("006").await,
        vec![crate::intake::contact("HOA-MAI-1990-F", &[])],
    );
    visit["answers"]["contacts"][0]["uic"] = json!("HOA\u{0}MAI1990");
    let res = app
        .post("/api/v1/submissions", Some(peer.token()), &visit)
        .await;
    let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        faults(&body),
        [("answers.contacts[0].uic".into(), "nul_character".into())]
    );
    // In a query string and in a path.
    let body = problem(
        app.get("/api/v1/users?username=a%00b", t).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&body)[0].1, "nul_character");
    let body = problem(
        app.get("/api/v1/forms/outreach%00visit", t).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&body), [("form_id".into(), "nul_character".into())]);
}

crate::on_postgres!(a_database_restart_costs_a_retry_not_a_500);

/// PostgreSQL drops every session (a restart, a failover): the pooled connections the
/// server holds are dead. A request that meets one is answered 503 with `Retry-After`
/// (not 500), the dead connection is let go, and the phone's retry is stored: one
/// record, as for any retry.
async fn a_database_restart_costs_a_retry_not_a_500(app: TestApp) {
    use crate::intake::{contact, outreach_visit};
    use futures::future::join_all;
    use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};

    let peer = app.actor(Role::PeerEducator, "006").await;
    let dd = app.unit("006").await;
    // Several requests at once, so that the pool holds several connections.
    let warm = (0..8).map(|_| app.get("/api/v1/submissions", peer.token()));
    for res in join_all(warm).await {
        assert_eq!(res.status(), StatusCode::OK);
    }
    let killed = app
        .state
        .db
        .query_all(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ))
        .await
        .expect("terminate the server's other sessions");
    assert!(!killed.is_empty(), "the pool held other connections");

    let body = outreach_visit(dd, vec![contact("RESTART-1990-F", &["hiv_test"])]);
    let mut answers = Vec::new();
    for _ in 0..30 {
        let res = app
            .post("/api/v1/submissions", Some(peer.token()), &body)
            .await;
        let status = res.status();
        answers.push(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(res.headers().contains_key("retry-after"));
            let p = problem(res, StatusCode::SERVICE_UNAVAILABLE).await;
            assert_eq!(p["type"], "/problems/unavailable");
            continue;
        }
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{answers:?}"
        );
        break;
    }
    assert!(
        matches!(
            answers.last(),
            Some(&StatusCode::CREATED) | Some(&StatusCode::OK)
        ),
        "the retries got through: {answers:?}"
    );
    assert!(
        answers.len() <= 21,
        "at most one failed answer per pooled connection (20): {answers:?}"
    );
    let stored = server::db::entities::submissions::Entity::find()
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(stored, 1, "{answers:?}");
    // And the server is whole again.
    for res in join_all((0..8).map(|_| app.get("/api/v1/submissions", peer.token()))).await {
        assert_eq!(res.status(), StatusCode::OK);
    }
}
