//! The org-unit tree: Hanoi's seeded districts, admin-created wards, teams, and scope.

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_models::Role;

use crate::helpers::{faults, problem, TestApp};
use crate::on_both;

on_both!(
    hanoi_and_its_districts_are_seeded,
    admin_adds_post_2025_wards,
    supervisor_sees_their_subtree_only,
    teams_live_in_scope,
);

async fn all_units(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let page: Value = app
        .get(&format!("/api/v1/org-units?limit=200{query}"), token)
        .await
        .json()
        .await
        .expect("page");
    page["items"].as_array().expect("items").clone()
}

async fn hanoi_and_its_districts_are_seeded(app: TestApp) {
    let admin = app.admin().await;
    let units = all_units(&app, admin.token(), "").await;
    assert_eq!(units.len(), 31);
    let city = units.iter().find(|u| u["code"] == "01").expect("Hà Nội");
    assert_eq!(city["name"], "Thành phố Hà Nội");
    assert!(city["parent_id"].is_null());
    let dong_da = units.iter().find(|u| u["code"] == "006").expect("Đống Đa");
    assert_eq!(dong_da["name"], "Đống Đa");
    assert_eq!(dong_da["level"], "district");
    assert_eq!(dong_da["type"], "quan");
    assert_eq!(dong_da["parent_id"], city["id"]);
    assert_eq!(dong_da["valid_to"], "2025-06-30");
    assert!(units
        .iter()
        .filter(|u| u["level"] == "district")
        .all(|u| u["valid_to"] == "2025-06-30"));
    // On a day after the reorganisation only the city remains (until wards are added).
    let now = all_units(&app, admin.token(), "&valid_on=2025-07-01").await;
    assert_eq!(now.len(), 1);
    let then = all_units(&app, admin.token(), "&valid_on=2025-06-30").await;
    assert_eq!(then.len(), 31);
}

async fn admin_adds_post_2025_wards(app: TestApp) {
    let admin = app.admin().await;
    let city = app.unit("01").await;
    let ward = json!({
        "code": "00004", "name": "Phường Ba Đình", "level": "ward", "type": "phuong",
        "parent_id": city, "valid_from": "2025-07-01"
    });
    let res = app
        .post("/api/v1/org-units", Some(admin.token()), &ward)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.expect("unit");
    assert_eq!(created["parent_id"], city.to_string());
    let after = all_units(&app, admin.token(), "&valid_on=2025-07-01").await;
    assert_eq!(after.len(), 2);

    let again = app
        .post("/api/v1/org-units", Some(admin.token()), &ward)
        .await;
    let body = problem(again, StatusCode::CONFLICT).await;
    assert_eq!(faults(&body)[0].0, "code");

    let backwards = json!({
        "code": "00007", "name": "Phường X", "level": "ward", "type": "phuong",
        "parent_id": city, "valid_from": "2025-07-01", "valid_to": "2025-01-01"
    });
    let body = problem(
        app.post("/api/v1/org-units", Some(admin.token()), &backwards)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&body)[0].0, "valid_to");

    let sup = app.actor(Role::Supervisor, "006").await;
    let res = app.post("/api/v1/org-units", Some(sup.token()), &json!({
        "code": "00008", "name": "Phường Y", "level": "ward", "type": "phuong", "parent_id": app.unit("006").await
    })).await;
    problem(res, StatusCode::FORBIDDEN).await;

    // Closing a unit is a PATCH of its last day.
    let id = created["id"].as_str().expect("id");
    let res = app
        .patch(
            &format!("/api/v1/org-units/{id}"),
            admin.token(),
            &json!({ "valid_to": "2030-12-31" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let patched: Value = res.json().await.expect("unit");
    assert_eq!(patched["valid_to"], "2030-12-31");
    assert_eq!(patched["valid_from"], "2025-07-01");
}

async fn supervisor_sees_their_subtree_only(app: TestApp) {
    let admin = app.admin().await;
    let dong_da = app.unit("006").await;
    // A commune-level unit under Đống Đa.
    let res = app.post("/api/v1/org-units", Some(admin.token()), &json!({
        "code": "00199", "name": "Phường Văn Miếu", "level": "ward", "type": "phuong", "parent_id": dong_da
    })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let sup = app.actor(Role::Supervisor, "006").await;
    let units = all_units(&app, sup.token(), "").await;
    let mut codes: Vec<&str> = units.iter().filter_map(|u| u["code"].as_str()).collect();
    codes.sort();
    assert_eq!(codes, vec!["00199", "006"]);
    let hoan_kiem = app.unit("002").await;
    problem(
        app.get(&format!("/api/v1/org-units/{hoan_kiem}"), sup.token())
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let city = app.unit("01").await;
    problem(
        app.get(&format!("/api/v1/org-units/{city}"), sup.token())
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/v1/org-units/{dong_da}"), sup.token())
            .await
            .status(),
        StatusCode::OK
    );
}

async fn teams_live_in_scope(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let dong_da = app.unit("006").await;
    let hoan_kiem = app.unit("002").await;
    let res = app.post("/api/v1/teams", Some(sup.token()), &json!({
        "org_unit_id": dong_da, "code": "DD-PG-7", "name": "Nhóm đồng đẳng 7", "kind": "peer_group"
    })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let team: Value = res.json().await.expect("team");
    let res = app
        .post(
            "/api/v1/teams",
            Some(sup.token()),
            &json!({
                "org_unit_id": hoan_kiem, "code": "HK-PG-7", "name": "Nhóm HK", "kind": "peer_group"
            }),
        )
        .await;
    problem(res, StatusCode::NOT_FOUND).await;
    let res = app
        .post(
            "/api/v1/teams",
            Some(sup.token()),
            &json!({
                "org_unit_id": dong_da, "code": "DD-X", "name": "X", "kind": "gang"
            }),
        )
        .await;
    let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        faults(&body)[0],
        ("kind".to_string(), "not_a_choice".to_string())
    );

    // A user can join the team of their own unit only.
    let res = app.post("/api/v1/users", Some(sup.token()), &json!({
        "username": "peer.in.team", "password": "a-long-enough-password", "role": "peer_educator",
        "org_unit_id": dong_da, "team_id": team["id"]
    })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let admin = app.admin().await;
    let res = app.post("/api/v1/users", Some(admin.token()), &json!({
        "username": "peer.wrong.team", "password": "a-long-enough-password", "role": "peer_educator",
        "org_unit_id": hoan_kiem, "team_id": team["id"]
    })).await;
    let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        faults(&body)[0],
        ("team_id".to_string(), "team_not_in_org_unit".to_string())
    );

    let other = app.actor(Role::Supervisor, "002").await;
    let list: Value = app
        .get("/api/v1/teams", other.token())
        .await
        .json()
        .await
        .expect("teams");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
    let list: Value = app
        .get("/api/v1/teams", sup.token())
        .await
        .json()
        .await
        .expect("teams");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}
