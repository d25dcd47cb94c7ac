//! Login, throttling, refresh rotation and reuse detection, logout, and every kind of
//! bad access token.

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_models::{Role, TokenPairOut};

use crate::helpers::{problem, spawn_with, Backend, TestApp};
use crate::on_both;

on_both!(
    login_works,
    wrong_password_and_unknown_user_look_the_same,
    sixth_bad_login_is_throttled,
    refresh_rotates_and_reuse_kills_the_family,
    logout_revokes_the_session,
    bad_access_tokens_are_refused,
    deactivated_user_is_cut_off_at_once,
    device_revocation_ends_that_phones_session,
);

async fn login_works(app: TestApp) {
    let res = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({ "username": app.admin_username, "password": app.admin_password, "device_id": "phone-1" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let pair: TokenPairOut = res.json().await.expect("pair");
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    assert_eq!(pair.user.role, Role::Admin);
    assert_ne!(pair.refresh_token, pair.access_token);

    let me: Value = app
        .get("/api/v1/me", &pair.access_token)
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me["user"]["username"], "admin");
    assert_eq!(me["user"]["role"], "admin");
    assert_eq!(me["org_unit"]["code"], "01");

    // Usernames are case-insensitive at login.
    let upper = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({ "username": "ADMIN", "password": app.admin_password }),
        )
        .await;
    assert_eq!(upper.status(), StatusCode::OK);

    let none = app.send(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(
        none.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    problem(none, StatusCode::UNAUTHORIZED).await;
}

async fn wrong_password_and_unknown_user_look_the_same(app: TestApp) {
    let attempt = |username: String, password: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            let res = app
                .post(
                    "/api/v1/auth/login",
                    None,
                    &json!({ "username": username, "password": password }),
                )
                .await;
            let elapsed = started.elapsed();
            (problem(res, StatusCode::UNAUTHORIZED).await, elapsed)
        }
    };
    let (wrong, _) = attempt(app.admin_username.clone(), "not-the-password").await;
    let (unknown, _) = attempt("nobody-by-this-name".into(), "not-the-password").await;
    assert_eq!(wrong, unknown, "the two answers must not differ");

    // Both do the same argon2 work: an unknown user must not answer markedly faster.
    let mut wrong_times = Vec::new();
    let mut unknown_times = Vec::new();
    for i in 0..3 {
        let user = app.actor(Role::Volunteer, "006").await;
        wrong_times.push(
            attempt(user.user.username.clone(), "wrong-password")
                .await
                .1,
        );
        unknown_times.push(attempt(format!("ghost-{i}"), "wrong-password").await.1);
    }
    let fastest_wrong = wrong_times.iter().min().copied().unwrap_or_default();
    let fastest_unknown = unknown_times.iter().min().copied().unwrap_or_default();
    assert!(
        fastest_unknown * 4 >= fastest_wrong,
        "unknown user answered in {fastest_unknown:?}, wrong password in {fastest_wrong:?}"
    );
}

async fn sixth_bad_login_is_throttled(app: TestApp) {
    let user = app.actor(Role::PeerEducator, "006").await;
    for i in 1..=5 {
        let res = app
            .post(
                "/api/v1/auth/login",
                None,
                &json!({ "username": user.user.username, "password": format!("wrong-{i}") }),
            )
            .await;
        problem(res, StatusCode::UNAUTHORIZED).await;
    }
    let sixth = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({ "username": user.user.username, "password": "wrong-6" }),
        )
        .await;
    let retry: u64 = sixth
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    assert!((1..=900).contains(&retry), "retry after {retry}");
    problem(sixth, StatusCode::TOO_MANY_REQUESTS).await;

    // Even the right password waits out the window.
    let right = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({ "username": user.user.username, "password": user.password }),
        )
        .await;
    problem(right, StatusCode::TOO_MANY_REQUESTS).await;

    // Another username is not affected.
    app.login(&app.admin_username, &app.admin_password).await;
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/refresh",
        None,
        &json!({ "refresh_token": token }),
    )
    .await
}

async fn refresh_rotates_and_reuse_kills_the_family(app: TestApp) {
    let first = app.login(&app.admin_username, &app.admin_password).await;
    let res = refresh(&app, &first.refresh_token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let second: TokenPairOut = res.json().await.expect("pair");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(
        app.get("/api/v1/me", &second.access_token).await.status(),
        StatusCode::OK
    );

    let res = refresh(&app, &second.refresh_token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let third: TokenPairOut = res.json().await.expect("pair");

    // A session on another device is a separate family and survives.
    let other_device = app.login(&app.admin_username, &app.admin_password).await;

    // Replaying an already rotated token: refused, and the whole family dies.
    problem(
        refresh(&app, &first.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        refresh(&app, &third.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let res = refresh(&app, &other_device.refresh_token).await;
    assert_eq!(res.status(), StatusCode::OK, "other family untouched");

    problem(refresh(&app, "not-a-token").await, StatusCode::UNAUTHORIZED).await;
}

async fn logout_revokes_the_session(app: TestApp) {
    let pair = app.login(&app.admin_username, &app.admin_password).await;
    let res = app
        .post(
            "/api/v1/auth/logout",
            None,
            &json!({ "refresh_token": pair.refresh_token }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        refresh(&app, &pair.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let again = app
        .post(
            "/api/v1/auth/logout",
            None,
            &json!({ "refresh_token": "unknown-token" }),
        )
        .await;
    problem(again, StatusCode::UNAUTHORIZED).await;
}

async fn bad_access_tokens_are_refused(app: TestApp) {
    let admin = app.admin().await;
    let now = chrono::Utc::now().timestamp();
    // Issued 900 s (the configured lifetime) before it expires, as the server does.
    let claims = |exp: i64| {
        json!({
            "sub": admin.user.id, "role": "admin", "org_unit": admin.user.org_unit_id,
            "iat": exp - 900, "exp": exp, "jti": uuid::Uuid::new_v4(),
        })
    };
    // Sanity: a token the harness signs with the app's key and a live expiry works.
    let good = app.sign("test", &claims(now + 600), &app.jwt_key);
    assert_eq!(app.get("/api/v1/me", &good).await.status(), StatusCode::OK);

    let expired = app.sign("test", &claims(now - 3600), &app.jwt_key);
    let forged = app.sign("test", &claims(now + 600), &[9u8; 32]);
    let unknown_kid = app.sign("other", &claims(now + 600), &app.jwt_key);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"test"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(now + 600).to_string());
    let alg_none = format!("{header}.{payload}.");
    // Signed with the real key, but nothing this server would issue: issued a year
    // ahead, or valid for ten years.
    let with_times = |iat: i64, exp: i64| {
        let claims = json!({
            "sub": admin.user.id, "role": "admin", "org_unit": admin.user.org_unit_id,
            "iat": iat, "exp": exp, "jti": uuid::Uuid::new_v4(),
        });
        app.sign("test", &claims, &app.jwt_key)
    };
    let year = 365 * 86_400;
    let future_iat = with_times(now + year, now + year + 900);
    let ten_years = with_times(now, now + 10 * year);
    for (what, token) in [
        ("issued a year ahead", future_iat),
        ("ten-year lifetime", ten_years),
        ("expired", expired),
        ("forged signature", forged),
        ("unknown kid", unknown_kid),
        ("alg none", alg_none),
        ("garbage", "abc.def.ghi".to_string()),
    ] {
        let res = app.get("/api/v1/me", &token).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        problem(res, StatusCode::UNAUTHORIZED).await;
    }
}

async fn deactivated_user_is_cut_off_at_once(app: TestApp) {
    let admin = app.admin().await;
    let volunteer = app.actor(Role::Volunteer, "006").await;
    assert_eq!(
        app.get("/api/v1/me", volunteer.token()).await.status(),
        StatusCode::OK
    );

    let res = app
        .patch(
            &format!("/api/v1/users/{}", volunteer.user.id),
            admin.token(),
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("user");
    assert_eq!(body["active"], false);

    // The access token has not expired, yet the very next request is refused.
    problem(
        app.get("/api/v1/me", volunteer.token()).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        refresh(&app, &volunteer.tokens.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({ "username": volunteer.user.username, "password": volunteer.password }),
        )
        .await;
    problem(login, StatusCode::UNAUTHORIZED).await;

    // The deactivation is audited.
    let audit: Value = app
        .get(
            &format!(
                "/api/v1/audit?action=user.deactivate&actor_id={}",
                admin.user.id
            ),
            admin.token(),
        )
        .await
        .json()
        .await
        .expect("audit");
    let items = audit["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["target_id"], volunteer.user.id.to_string());

    // Reactivated, they log in again (their old sessions stay revoked).
    let res = app
        .patch(
            &format!("/api/v1/users/{}", volunteer.user.id),
            admin.token(),
            &json!({ "active": true }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    problem(
        refresh(&app, &volunteer.tokens.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    app.login(&volunteer.user.username, &volunteer.password)
        .await;
}

async fn device_revocation_ends_that_phones_session(app: TestApp) {
    let supervisor = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await; // logged in on "test-phone"
    let tablet: TokenPairOut = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({ "username": peer.user.username, "password": peer.password, "device_id": "tablet" }),
        )
        .await
        .json()
        .await
        .expect("pair");
    let res = app
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{}/devices/test-phone", peer.user.id),
            Some(supervisor.token()),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        refresh(&app, &peer.tokens.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        refresh(&app, &tablet.refresh_token).await.status(),
        StatusCode::OK
    );

    // A Hoàn Kiếm supervisor cannot reach this peer at all.
    let other = app.actor(Role::Supervisor, "002").await;
    let res = app
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{}/devices/tablet", peer.user.id),
            Some(other.token()),
            None,
        )
        .await;
    problem(res, StatusCode::NOT_FOUND).await;
}

/// A login attempt that a proxy forwarded for `forwarded` (an `X-Forwarded-For` value).
async fn login_via(
    app: &TestApp,
    forwarded: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login")
}

/// A flood of random usernames from one address: no username's count sees it, the
/// address's does. Behind a trusted proxy the address is the forwarded one.
async fn random_usernames_from_one_address_are_throttled(backend: Backend) {
    let Some(app) = spawn_with(backend, |c| {
        c.login_max_failures_per_address = 3;
        c.trust_proxy_headers = true;
    })
    .await
    else {
        return;
    };
    let wrong = "not-the-password";
    for i in 0..3 {
        let res = login_via(
            &app,
            "198.51.100.7, 203.0.113.9",
            &format!("nobody-{i}"),
            wrong,
        )
        .await;
        problem(res, StatusCode::UNAUTHORIZED).await;
    }
    // The fourth, for yet another name, is throttled; so is a right password from there.
    let fourth = login_via(&app, "10.0.0.1, 203.0.113.9", "nobody-3", wrong).await;
    assert!(fourth.headers().contains_key("retry-after"));
    problem(fourth, StatusCode::TOO_MANY_REQUESTS).await;
    let right = login_via(
        &app,
        "203.0.113.9",
        &app.admin_username,
        &app.admin_password,
    )
    .await;
    problem(right, StatusCode::TOO_MANY_REQUESTS).await;
    // Another address is not affected; and for IPv6 the /64 is one address.
    app.login(&app.admin_username, &app.admin_password).await;
    for i in 0..3 {
        let res = login_via(
            &app,
            &format!("2001:db8:1:2::{i}"),
            &format!("six-{i}"),
            wrong,
        )
        .await;
        problem(res, StatusCode::UNAUTHORIZED).await;
    }
    let res = login_via(&app, "2001:db8:1:2:ffff::1", "six-x", wrong).await;
    problem(res, StatusCode::TOO_MANY_REQUESTS).await;
}

/// Without `TRUST_PROXY_HEADERS` a client cannot pick its own address.
async fn a_forged_forwarded_header_is_ignored_without_a_proxy(backend: Backend) {
    let Some(app) = spawn_with(backend, |c| c.login_max_failures_per_address = 2).await else {
        return;
    };
    let wrong = "not-the-password";
    for i in 0..2 {
        let res = login_via(&app, &format!("192.0.2.{i}"), &format!("nobody-{i}"), wrong).await;
        problem(res, StatusCode::UNAUTHORIZED).await;
    }
    let res = login_via(&app, "192.0.2.99", "nobody-x", wrong).await;
    problem(res, StatusCode::TOO_MANY_REQUESTS).await;
}

mod per_address {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn random_usernames_sqlite() {
        random_usernames_from_one_address_are_throttled(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn random_usernames_postgres() {
        random_usernames_from_one_address_are_throttled(Backend::Postgres).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forged_forwarded_sqlite() {
        a_forged_forwarded_header_is_ignored_without_a_proxy(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forged_forwarded_postgres() {
        a_forged_forwarded_header_is_ignored_without_a_proxy(Backend::Postgres).await
    }
}
