//! User management and scope: supervisors manage field workers in their own subtree
//! only, field workers manage nobody, and what is outside a scope does not exist (404).

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_models::Role;

use crate::helpers::{faults, problem, TestApp};
use crate::on_both;

on_both!(
    dongda_supervisor_creates_in_dongda_not_in_hoan_kiem,
    supervisors_cannot_create_or_promote_to_supervisor,
    field_workers_cannot_manage_users,
    supervisor_sees_only_their_subtree,
    duplicate_username_is_a_conflict,
    users_list_pages_with_a_cursor,
    user_changes_are_audited,
    nobody_changes_their_own_role_or_deactivates_themselves,
    changing_ones_own_password_asks_for_the_current_one,
);

fn new_user(username: &str, role: &str, unit: uuid::Uuid) -> Value {
    json!({ "username": username, "password": "a-long-enough-password", "role": role, "org_unit_id": unit })
}

async fn dongda_supervisor_creates_in_dongda_not_in_hoan_kiem(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let dong_da = app.unit("006").await;
    let hoan_kiem = app.unit("002").await;

    let res = app
        .post(
            "/api/v1/users",
            Some(sup.token()),
            &new_user("vol.dd.1", "volunteer", dong_da),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.expect("user");
    assert_eq!(created["role"], "volunteer");
    assert_eq!(created["org_unit_id"], dong_da.to_string());
    assert_eq!(created["active"], true);
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());
    // The new volunteer can log in.
    app.login("vol.dd.1", "a-long-enough-password").await;

    let res = app
        .post(
            "/api/v1/users",
            Some(sup.token()),
            &new_user("vol.hk.1", "volunteer", hoan_kiem),
        )
        .await;
    problem(res, StatusCode::NOT_FOUND).await;
    let res = app
        .post(
            "/api/v1/users",
            Some(sup.token()),
            &new_user("vol.x.1", "volunteer", uuid::Uuid::now_v7()),
        )
        .await;
    problem(res, StatusCode::NOT_FOUND).await;

    // Nothing was written for the refused requests.
    let admin = app.admin().await;
    let all: Value = app
        .get("/api/v1/users?limit=200", admin.token())
        .await
        .json()
        .await
        .expect("list");
    let names: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert!(names.contains(&"vol.dd.1"));
    assert!(!names.contains(&"vol.hk.1") && !names.contains(&"vol.x.1"));
}

async fn supervisors_cannot_create_or_promote_to_supervisor(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let dong_da = app.unit("006").await;
    for role in ["supervisor", "admin"] {
        let res = app
            .post(
                "/api/v1/users",
                Some(sup.token()),
                &new_user("climber", role, dong_da),
            )
            .await;
        problem(res, StatusCode::FORBIDDEN).await;
    }
    let peer = app.actor(Role::PeerEducator, "006").await;
    let res = app
        .patch(
            &format!("/api/v1/users/{}", peer.user.id),
            sup.token(),
            &json!({ "role": "supervisor" }),
        )
        .await;
    problem(res, StatusCode::FORBIDDEN).await;
    // A supervisor may switch a field worker between the field roles.
    let res = app
        .patch(
            &format!("/api/v1/users/{}", peer.user.id),
            sup.token(),
            &json!({ "role": "volunteer" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // An admin may create a supervisor.
    let admin = app.admin().await;
    let res = app
        .post(
            "/api/v1/users",
            Some(admin.token()),
            &new_user("sup.dd.2", "supervisor", dong_da),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

async fn field_workers_cannot_manage_users(app: TestApp) {
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let dong_da = app.unit("006").await;
    problem(
        app.get("/api/v1/users", volunteer.token()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let res = app
        .post(
            "/api/v1/users",
            Some(volunteer.token()),
            &new_user("friend", "volunteer", dong_da),
        )
        .await;
    problem(res, StatusCode::FORBIDDEN).await;
    problem(
        app.get("/api/v1/org-units", volunteer.token()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get("/api/v1/audit", volunteer.token()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // They can read their own profile.
    assert_eq!(
        app.get("/api/v1/me", volunteer.token()).await.status(),
        StatusCode::OK
    );
}

async fn supervisor_sees_only_their_subtree(app: TestApp) {
    let sup_dd = app.actor(Role::Supervisor, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let peer_dd = app.actor(Role::PeerEducator, "006").await;
    let peer_hk = app.actor(Role::PeerEducator, "002").await;

    let list: Value = app
        .get("/api/v1/users", sup_dd.token())
        .await
        .json()
        .await
        .expect("list");
    let ids: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(ids.contains(&peer_dd.user.id.to_string()));
    assert!(ids.contains(&sup_dd.user.id.to_string()));
    assert!(
        !ids.contains(&peer_hk.user.id.to_string()),
        "Hoàn Kiếm leaked: {list}"
    );
    assert!(!ids.contains(&sup_hk.user.id.to_string()));
    let admin_id = app.admin().await.user.id.to_string();
    assert!(!ids.contains(&admin_id), "city admin leaked");

    let hk_path = format!("/api/v1/users/{}", peer_hk.user.id);
    problem(
        app.get(&hk_path, sup_dd.token()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.patch(&hk_path, sup_dd.token(), &json!({ "active": false }))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Filtering by another district's unit is also a 404, not an empty list.
    let hoan_kiem = app.unit("002").await;
    problem(
        app.get(
            &format!("/api/v1/users?org_unit_id={hoan_kiem}"),
            sup_dd.token(),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Moving a Đống Đa peer to Hoàn Kiếm is out of scope too.
    let res = app
        .patch(
            &format!("/api/v1/users/{}", peer_dd.user.id),
            sup_dd.token(),
            &json!({ "org_unit_id": hoan_kiem }),
        )
        .await;
    problem(res, StatusCode::NOT_FOUND).await;
    // The Hoàn Kiếm peer is untouched.
    let admin = app.admin().await;
    let hk: Value = app
        .get(&hk_path, admin.token())
        .await
        .json()
        .await
        .expect("user");
    assert_eq!(hk["active"], true);
    assert_eq!(
        app.get(
            &format!("/api/v1/users/{}", peer_dd.user.id),
            sup_dd.token()
        )
        .await
        .status(),
        StatusCode::OK
    );
}

async fn duplicate_username_is_a_conflict(app: TestApp) {
    let admin = app.admin().await;
    let dong_da = app.unit("006").await;
    let res = app
        .post(
            "/api/v1/users",
            Some(admin.token()),
            &new_user("twin", "volunteer", dong_da),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post(
            "/api/v1/users",
            Some(admin.token()),
            &new_user("twin", "peer_educator", dong_da),
        )
        .await;
    let body = problem(res, StatusCode::CONFLICT).await;
    assert_eq!(
        faults(&body),
        vec![("username".to_string(), "already_exists".to_string())]
    );
}

async fn users_list_pages_with_a_cursor(app: TestApp) {
    let admin = app.admin().await;
    for _ in 0..5 {
        app.actor(Role::Volunteer, "009").await;
    }
    let thanh_xuan = app.unit("009").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?org_unit_id={thanh_xuan}&limit=2&cursor={c}"),
            None => format!("/api/v1/users?org_unit_id={thanh_xuan}&limit=2"),
        };
        let page: Value = app
            .get(&path, admin.token())
            .await
            .json()
            .await
            .expect("page");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|u| u["id"].as_str().unwrap_or("").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(unique.len(), 5);
    let res = app.get("/api/v1/users?cursor=forged", admin.token()).await;
    let body = problem(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(faults(&body)[0].0, "cursor");
}

async fn user_changes_are_audited(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let dong_da = app.unit("006").await;
    let res = app
        .post(
            "/api/v1/users",
            Some(sup.token()),
            &new_user("audited", "peer_educator", dong_da),
        )
        .await;
    let created: Value = res.json().await.expect("user");
    let id = created["id"].as_str().expect("id").to_string();
    let res = app
        .patch(
            &format!("/api/v1/users/{id}"),
            sup.token(),
            &json!({ "password": "another-long-password" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let admin = app.admin().await;
    let audit: Value = app
        .get(
            &format!("/api/v1/audit?actor_id={}", sup.user.id),
            admin.token(),
        )
        .await
        .json()
        .await
        .expect("audit");
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["target_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![("user.update", id.as_str()), ("user.create", id.as_str())]
    );
    let text = audit.to_string();
    assert!(!text.contains("another-long-password") && !text.contains("a-long-enough-password"));
}

async fn nobody_changes_their_own_role_or_deactivates_themselves(app: TestApp) {
    let admin = app.admin().await;
    let me = format!("/api/v1/users/{}", admin.user.id);
    problem(
        app.patch(&me, admin.token(), &json!({ "active": false }))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.patch(&me, admin.token(), &json!({ "role": "volunteer" }))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Changing one's own password is fine, and the current session keeps working.
    let res = app
        .patch(
            &me,
            admin.token(),
            &json!({ "password": "a-brand-new-password", "current_password": app.admin_password }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.login(&app.admin_username, "a-brand-new-password").await;
    let res = app
        .patch(
            &me,
            admin.token(),
            &json!({ "password": "and-another-one-1" }),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the session keeps working"
    );
}

/// A stolen access token must not be enough to take the account over: changing one's
/// own password asks for the current one, and wrong guesses count as failed logins.
async fn changing_ones_own_password_asks_for_the_current_one(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let me = format!("/api/v1/users/{}", sup.user.id);
    // One's own change to "taken-over-password", giving `current` (or nothing).
    let change = |token: String, current: Option<&str>| {
        let mut body = json!({ "password": "taken-over-password" });
        if let Some(current) = current {
            body["current_password"] = json!(current);
        }
        let (app, me) = (&app, &me);
        async move { app.patch(me, &token, &body).await }
    };
    let sign_in = |password: &str| {
        let body = json!({ "username": sup.user.username, "password": password });
        let app = &app;
        async move { app.post("/api/v1/auth/login", None, &body).await.status() }
    };

    for (current, code) in [
        (None, "required"),
        (Some("a-guess-at-it"), "wrong_password"),
    ] {
        let body = problem(
            change(sup.token().to_string(), current).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            faults(&body),
            vec![("current_password".to_string(), code.to_string())]
        );
    }
    // Nothing changed: the old password still signs in, the new one does not.
    assert_eq!(sign_in(&sup.password).await, StatusCode::OK);
    assert_eq!(
        sign_in("taken-over-password").await,
        StatusCode::UNAUTHORIZED
    );

    // Whoever manages a user sets their password without knowing the old one.
    let admin = app.admin().await;
    let res = app
        .patch(
            &me,
            admin.token(),
            &json!({ "password": "set-by-the-admin-1" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // A sign-in that succeeds clears the username's failures: a clean slate.
    let tokens = app.login(&sup.user.username, "set-by-the-admin-1").await;

    // Guesses share the login throttle of the username (5 failures by default): after
    // five wrong ones even the right password is turned away, here and at the login,
    // until the window has passed.
    for i in 0..5 {
        let guess = format!("guess-{i}");
        let res = change(tokens.access_token.clone(), Some(&guess)).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "guess {i}");
    }
    let res = change(tokens.access_token.clone(), Some("set-by-the-admin-1")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(
        sign_in("set-by-the-admin-1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
