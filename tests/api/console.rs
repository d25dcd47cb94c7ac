//! The console over HTTP, as a browser meets it: the sign-in and its cookie, CSRF on
//! every form (token and Origin), the security headers, who may sign in, a supervisor's
//! area (404 outside it, photos included), no raw client code on any page, and every
//! page's HTML well formed. The same flows in a real Chromium are in `tests/browser`.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;
use shared_models::Role;
use uuid::Uuid;

use crate::helpers::{spawn_with, Actor, Backend, TestApp};
use crate::intake::{contact, dump_database, outreach_visit, submit};
use crate::on_both;
use crate::photos::jpeg;

on_both!(
    sign_in_sets_a_safe_cookie_and_every_form_needs_its_csrf_token,
    field_roles_cannot_sign_in_and_failures_are_throttled,
    a_supervisor_sees_their_area_only,
    no_raw_client_code_on_any_page_and_every_page_parses,
    bulk_approval_shows_each_result_and_refusals_in_words,
    passwords_end_console_sessions_and_ones_own_page_changes_only_the_password,
);

/// A browser: its cookies, no automatic redirects (the tests look at them).
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    origin: String,
}

/// An answer, read whole.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let doc = scraper::Html::parse_document(&self.body);
        let sel = scraper::Selector::parse("input[name=csrf]").expect("selector");
        doc.select(&sel)
            .next()
            .and_then(|e| e.value().attr("value"))
            .expect("a csrf field")
            .to_string()
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Browser<'a> {
        Browser {
            app,
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
            origin: app.base.clone(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, res: reqwest::Response) -> Page {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.expect("body");
        for c in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            if let Some((name, rest)) = c.split_once('=') {
                let value = rest.split(';').next().unwrap_or("");
                if value.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let res = self
            .client
            .get(self.app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("get");
        self.keep(res).await
    }

    /// A form post from a page of `origin` (None: no Origin or Referer header at all).
    async fn post_from(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let body = encode_form(fields);
        let mut req = self
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.expect("post");
        self.keep(res).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = self.origin.clone();
        self.post_from(path, fields, Some(&origin)).await
    }

    /// Signs in through the form; answers the post's answer.
    async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        self.post(
            "/console/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
                ("next", "/console/"),
            ],
        )
        .await
    }
}

fn encode_form(fields: &[(&str, &str)]) -> String {
    let mut s = url_encode::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

mod url_encode {
    /// `application/x-www-form-urlencoded`, as a browser writes a form.
    pub struct Serializer(String);
    impl Serializer {
        pub fn new(s: String) -> Self {
            Serializer(s)
        }
        pub fn append_pair(&mut self, k: &str, v: &str) {
            if !self.0.is_empty() {
                self.0.push('&');
            }
            self.0.push_str(&enc(k));
            self.0.push('=');
            self.0.push_str(&enc(v));
        }
        pub fn finish(self) -> String {
            self.0
        }
    }
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                b => format!("%{b:02X}"),
            })
            .collect()
    }
}

/// A visit of Đống Đa by `peer`, with its one photo uploaded; answers its id.
async fn visit_with_photo(app: &TestApp, peer: &Actor, uics: &[&str]) -> (Uuid, String) {
    let mut body = outreach_visit(
        app.unit("006").await,
        uics.iter().map(|u| contact(u, &["hiv_test"])).collect(),
    );
    let photo = jpeg(uics.len() as u8, 32, 24);
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&photo));
    body["answers"]["photos"] = json!([{ "photo": digest }]);
    let stored = submit(app, peer, &body, StatusCode::CREATED).await;
    let id: Uuid = serde_json::from_value(stored["id"].clone()).expect("id");
    let res = app
        .client
        .put(app.url(&format!("/api/v1/submissions/{id}/photos/{digest}")))
        .bearer_auth(peer.token())
        .header("content-type", "image/jpeg")
        .body(photo)
        .send()
        .await
        .expect("photo");
    assert_eq!(res.status(), StatusCode::CREATED);
    (id, digest)
}

async fn status_of(app: &TestApp, who: &Actor, id: Uuid) -> String {
    let res = app
        .get(&format!("/api/v1/submissions/{id}"), who.token())
        .await;
    let body: serde_json::Value = res.json().await.expect("detail");
    body["status"].as_str().unwrap_or("").to_string()
}

async fn sign_in_sets_a_safe_cookie_and_every_form_needs_its_csrf_token(app: TestApp) {
    let supervisor = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let (visit, _) = visit_with_photo(&app, &peer, &["HOA-MAI-1990-F"]).await;
    let mut browser = Browser::new(&app);

    // The sign-in form: the security headers, and a CSRF cookie for the form.
    let form = browser.get("/console/login").await;
    assert_eq!(form.status, StatusCode::OK);
    let csp = form
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(
        form.headers.get("x-frame-options").map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );
    assert!(
        form.body.contains("lang=\"vi\"") && form.body.contains("Đăng nhập"),
        "Vietnamese by default"
    );
    let csrf = form.csrf();
    let sign_in = |csrf: &str| {
        vec![
            ("csrf".to_string(), csrf.to_string()),
            ("username".into(), supervisor.user.username.clone()),
            ("password".into(), supervisor.password.clone()),
        ]
    };
    let fields = |v: &Vec<(String, String)>| {
        v.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    // Without the token, with another token, or from another site: refused, no session.
    for (what, token, origin) in [
        ("no token", "", Some(app.base.as_str())),
        ("a forged token", "forged-token", Some(app.base.as_str())),
        ("another site", csrf.as_str(), Some("https://evil.example")),
        ("no origin at all", csrf.as_str(), None),
    ] {
        let f = fields(&sign_in(token));
        let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let res = browser.post_from("/console/login", &refs, origin).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{what}");
        assert!(!browser.cookies.contains_key("dh_session"), "{what}");
    }
    // The real thing: 303 to the queue and a cookie no script can read or send cross-site.
    let f = fields(&sign_in(&csrf));
    let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let res = browser.post("/console/login", &refs).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), "/console/");
    let cookie = res
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("dh_session="))
        .expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    // Opaque, and stored only hashed.
    let token = browser.cookies["dh_session"].clone();
    assert!(token.len() >= 40);
    assert!(!dump_database(&app).await.contains(&token));

    // A decision without the token, or from another site, changes nothing.
    let page = browser.get(&format!("/console/visits/{visit}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let path = format!("/console/visits/{visit}/decision");
    for (token, origin) in [
        ("", Some(app.base.as_str())),
        ("x", Some(app.base.as_str())),
        (csrf.as_str(), Some("http://localhost:1")),
    ] {
        let res = browser
            .post_from(&path, &[("csrf", token), ("decision", "approve")], origin)
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(status_of(&app, &supervisor, visit).await, "submitted");
    }
    let res = browser
        .post(&path, &[("csrf", &csrf), ("decision", "approve")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(status_of(&app, &supervisor, visit).await, "approved");

    // English one click away, remembered.
    let res = browser.get("/console/lang?to=en&back=/console/").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let queue = browser.get("/console/").await;
    assert!(queue.body.contains("lang=\"en\"") && queue.body.contains("Review queue"));

    // Signing out ends the session: the old cookie leads back to the sign-in page.
    let queue_csrf = queue.csrf();
    let res = browser
        .post("/console/logout", &[("csrf", &queue_csrf)])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    browser.cookies.insert("dh_session".into(), token);
    let res = browser.get("/console/").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(
        res.location().starts_with("/console/login"),
        "{}",
        res.location()
    );

    // Behind a TLS proxy the cookie is Secure; an idle session ends.
    let Some(tls) = spawn_with(Backend::Sqlite, |c| {
        c.trust_proxy_headers = true;
        c.console_idle_timeout = std::time::Duration::from_secs(600);
    })
    .await
    else {
        return;
    };
    let sup = tls.actor(Role::Supervisor, "006").await;
    let mut b = Browser::new(&tls);
    let form = b.get("/console/login").await;
    let csrf = form.csrf();
    let res = b
        .client
        .post(tls.url("/console/login"))
        .header("cookie", b.cookie_header())
        .header("origin", &tls.base)
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&[
            ("csrf", &csrf),
            ("username", &sup.user.username),
            ("password", &sup.password),
        ]))
        .send()
        .await
        .expect("post");
    let res = b.keep(res).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(res
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("dh_session=") && c.contains("; Secure")));
    assert_eq!(b.get("/console/").await.status, StatusCode::OK);
    // Ten minutes and a second pass without a request (aged in the database, not slept
    // through, so a busy machine cannot end the session early).
    {
        use sea_orm::sea_query::Expr;
        use sea_orm::EntityTrait;
        use server::db::entities::console_sessions;
        let long_ago = chrono::Utc::now() - chrono::Duration::seconds(601);
        let aged = console_sessions::Entity::update_many()
            .col_expr(console_sessions::Column::LastSeenAt, Expr::value(long_ago))
            .exec(&tls.state.db)
            .await
            .expect("age the session");
        assert_eq!(aged.rows_affected, 1);
    }
    let res = b.get("/console/").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "the idle session ended");
    assert!(res.location().contains("expired=1"));
}

async fn field_roles_cannot_sign_in_and_failures_are_throttled(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let mut browser = Browser::new(&app);
    for who in [&peer, &volunteer] {
        let res = browser.sign_in(&who.user.username, &who.password).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert!(res.body.contains("điện thoại"), "{}", res.body);
        assert!(!browser.cookies.contains_key("dh_session"));
    }
    // The same throttle as the API's login: five failures, then 429 even with the password.
    let admin = app.admin().await;
    for _ in 0..5 {
        let res = browser
            .sign_in(&admin.user.username, "not-the-password")
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let res = browser.sign_in(&admin.user.username, &admin.password).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    // And an unsigned browser is sent to the sign-in page, from every page.
    let mut anonymous = Browser::new(&app);
    for path in [
        "/console/",
        "/console/indicators",
        "/console/people",
        "/console/audit",
    ] {
        let res = anonymous.get(path).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
        assert!(res.location().starts_with("/console/login?next="), "{path}");
    }
}

async fn a_supervisor_sees_their_area_only(app: TestApp) {
    let dong_da = app.actor(Role::Supervisor, "006").await;
    let hoan_kiem = app.actor(Role::Supervisor, "002").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let (visit, digest) = visit_with_photo(&app, &peer, &["HOA-MAI-1990-F"]).await;
    let mut hk = Browser::new(&app);
    assert_eq!(
        hk.sign_in(&hoan_kiem.user.username, &hoan_kiem.password)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    for path in [
        format!("/console/visits/{visit}"),
        format!("/console/visits/{visit}/photos/{digest}"),
        format!("/console/people/{}", peer.user.id),
    ] {
        let res = hk.get(&path).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!res.body.contains("HOA"), "{path}");
    }
    let queue = hk.get("/console/").await;
    assert!(
        !queue.body.contains(&visit.to_string()),
        "another district's visit in the queue"
    );
    // A decision posted for it is a 404 too, and nothing moves.
    let csrf = queue.csrf();
    let res = hk
        .post(
            &format!("/console/visits/{visit}/decision"),
            &[("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&app, &dong_da, visit).await, "submitted");
    // Admin pages are the city office's.
    for path in [
        "/console/units",
        "/console/targets",
        "/console/forms",
        "/console/audit",
    ] {
        assert_eq!(hk.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }

    let mut dd = Browser::new(&app);
    assert_eq!(
        dd.sign_in(&dong_da.user.username, &dong_da.password)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let page = dd.get(&format!("/console/visits/{visit}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains(&format!("/console/visits/{visit}/photos/{digest}")));
    let res = dd
        .client
        .get(app.url(&format!("/console/visits/{visit}/photos/{digest}")))
        .header("cookie", dd.cookie_header())
        .send()
        .await
        .expect("photo");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"image/jpeg"[..])
    );
    let bytes = res.bytes().await.expect("bytes");
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    // Reading the visit and its photo is audited, as through the API.
    let admin = app.admin().await;
    let audit: serde_json::Value = app
        .get(
            &format!("/api/v1/audit?actor_id={}", dong_da.user.id),
            admin.token(),
        )
        .await
        .json()
        .await
        .expect("audit");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"submission.read") && actions.contains(&"photo.read"),
        "{actions:?}"
    );
}

async fn no_raw_client_code_on_any_page_and_every_page_parses(app: TestApp) {
    let supervisor = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let raw = [
        "Nguyễn Thị Hoa 1991 F",
        "TRAN-BINH-1988-M",
        "quynh-anh-2001-f",
        "Lê Văn Tám 1979 M",
        "Đỗ Thu 1995 F",
    ];
    let normalized = [
        "NGUYENTHIHOA1991F",
        "TRANBINH1988M",
        "QUYNHANH2001F",
        "LEVANTAM1979M",
        "DOTHU1995F",
    ];
    let (first, _) = visit_with_photo(&app, &peer, &raw).await;
    let (second, _) = visit_with_photo(&app, &peer, &raw[..2]).await;
    let mut browser = Browser::new(&app);
    assert_eq!(
        browser
            .sign_in(&supervisor.user.username, &supervisor.password)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    // Send one back so its history and a revision exist.
    let page = browser.get(&format!("/console/visits/{second}")).await;
    let csrf = page.csrf();
    let res = browser
        .post(
            &format!("/console/visits/{second}/decision"),
            &[
                ("csrf", &csrf),
                ("decision", "request_changes"),
                ("comment", "Thiếu ảnh phiếu"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let mut pages = vec![
        "/console/".to_string(),
        format!("/console/visits/{first}"),
        format!("/console/visits/{second}"),
        "/console/referrals".into(),
        "/console/indicators".into(),
        "/console/indicators?kind=year&year=2026&chart=contact_events".into(),
        "/console/indicators?kind=vn_quarter&year=2026&quarter=4".into(),
        "/console/indicators?kind=pepfar_year&year=2027".into(),
        "/console/stock".into(),
        "/console/people".into(),
        format!("/console/people/{}", peer.user.id),
        "/console/login".into(),
    ];
    let admin = app.admin().await;
    let mut admin_browser = Browser::new(&app);
    assert_eq!(
        admin_browser
            .sign_in(&admin.user.username, &admin.password)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let mut bodies = Vec::new();
    for path in pages.drain(..) {
        let res = browser.get(&path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        bodies.push((path, res.body));
    }
    for path in [
        "/console/units",
        "/console/targets",
        "/console/forms",
        "/console/audit",
        "/console/",
    ] {
        let res = admin_browser.get(path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        bodies.push((format!("admin {path}"), res.body));
    }
    for (path, body) in &bodies {
        let upper = body.to_uppercase();
        for code in raw.iter().chain(normalized.iter()) {
            assert!(
                !upper.contains(&code.to_uppercase()),
                "{path} shows the client code {code:?}"
            );
        }
        let doc = scraper::Html::parse_document(body);
        assert!(
            doc.errors.is_empty(),
            "{path}: HTML errors {:?}",
            doc.errors
        );
        assert!(body.starts_with("<!DOCTYPE html>"), "{path}");
        // Every form control has a label (or an aria-label).
        let controls = scraper::Selector::parse("input:not([type=hidden]), select, textarea")
            .expect("selector");
        for control in doc.select(&controls) {
            let id = control.value().attr("id");
            let wrapped = control
                .ancestors()
                .any(|n| n.value().as_element().is_some_and(|e| e.name() == "label"));
            let labelled = wrapped
                || control.value().attr("aria-label").is_some()
                || id.is_some_and(|id| body.contains(&format!("for=\"{id}\"")));
            assert!(
                labelled,
                "{path}: an unlabelled control {:?}",
                control.value()
            );
        }
    }
    // The visit page shows the clients by a short prefix of their keyed hash.
    let (_, visit_page) = &bodies[1];
    assert!(
        visit_page.contains("<code class=\"client\""),
        "clients by hash prefix"
    );
    assert!(
        visit_page.contains("Nhóm tuổi") || visit_page.contains("25"),
        "the form's own labels"
    );
}

async fn bulk_approval_shows_each_result_and_refusals_in_words(app: TestApp) {
    let supervisor = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let mut ids = Vec::new();
    for uic in ["HOA-MAI-1990-F", "LAN-HUNG-1985-M"] {
        ids.push(visit_with_photo(&app, &peer, &[uic]).await.0);
    }
    // One visit whose photo never came: it cannot be approved yet.
    let mut waiting = outreach_visit(
        app.unit("006").await,
        vec![contact("TRAN-BINH-1988-M", &[])],
    );
    waiting["answers"]["photos"] = json!([{ "photo": "a".repeat(64) }]);
    let stored = submit(&app, &peer, &waiting, StatusCode::CREATED).await;
    let missing: Uuid = serde_json::from_value(stored["id"].clone()).expect("id");
    let mut browser = Browser::new(&app);
    assert_eq!(
        browser
            .sign_in(&supervisor.user.username, &supervisor.password)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let queue = browser.get("/console/").await;
    for id in ids.iter().chain([&missing]) {
        assert!(
            queue.body.contains(&format!("value=\"{id}\"")),
            "{id} in the queue"
        );
    }
    let csrf = queue.csrf();
    let (a, b, m) = (ids[0].to_string(), ids[1].to_string(), missing.to_string());
    let res = browser
        .post(
            "/console/queue/approve",
            &[("csrf", &csrf), ("ids", &a), ("ids", &b), ("ids", &m)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(
        res.body.contains("đã duyệt: 2") && res.body.contains("không duyệt được: 1"),
        "{}",
        res.body
    );
    assert!(
        res.body.contains("ảnh chưa được gửi lên"),
        "the refusal in words: {}",
        res.body
    );
    assert_eq!(status_of(&app, &supervisor, ids[0]).await, "approved");
    assert_eq!(status_of(&app, &supervisor, missing).await, "submitted");
    // Nothing selected is said so; a second approval of an approved visit is explained.
    let res = browser
        .post("/console/queue/approve", &[("csrf", &csrf)])
        .await;
    assert!(res.body.contains("Chưa chọn"), "{}", res.body);
    let page = browser.get(&format!("/console/visits/{}", ids[0])).await;
    assert!(
        page.body.contains("đã có quyết định cuối cùng"),
        "no decision form on a final visit"
    );
    let res = browser
        .post(
            &format!("/console/visits/{}/decision", ids[0]),
            &[("csrf", &csrf), ("decision", "reject"), ("comment", "x")],
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(res.body.contains("Đã duyệt"), "{}", res.body);
    // Rejecting without a comment is explained and changes nothing.
    let res = browser
        .post(
            &format!("/console/visits/{missing}/decision"),
            &[("csrf", &csrf), ("decision", "reject"), ("comment", " ")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("Cần ghi nhận xét"), "{}", res.body);
    assert_eq!(status_of(&app, &supervisor, missing).await, "submitted");
}

async fn passwords_end_console_sessions_and_ones_own_page_changes_only_the_password(app: TestApp) {
    let admin = app.admin().await;
    let supervisor = app.actor(Role::Supervisor, "006").await;
    let mut browser = Browser::new(&app);
    let res = browser
        .sign_in(&supervisor.user.username, &supervisor.password)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);

    // Their own page, linked from the header: a password field, no unit or status to
    // change (those are not one's own to change).
    let queue = browser.get("/console/").await;
    let own = format!("/console/people/{}", supervisor.user.id);
    assert!(
        queue.body.contains(&format!("href=\"{own}\"")),
        "the header links to one's own page"
    );
    let page = browser.get(&own).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"password\""));
    assert!(page.body.contains("name=\"current_password\""));
    assert!(!page.body.contains("name=\"org_unit_id\"") && !page.body.contains("name=\"active\""));
    // Without the current password nothing changes, and the page says which field.
    let csrf = page.csrf();
    let res = browser
        .post(
            &own,
            &[("csrf", &csrf), ("password", "a-new-password-for-me")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert!(res.body.contains("current_password"), "{}", res.body);
    // A form that sends unit and status anyway changes the password and nothing else.
    let res = browser
        .post(
            &own,
            &[
                ("csrf", &csrf),
                ("current_password", &supervisor.password),
                ("password", "a-new-password-for-me"),
                ("active", "false"),
                ("org_unit_id", ""),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(res.location().ends_with("?saved=1"), "{}", res.location());
    let me = app
        .get(
            &format!("/api/v1/users/{}", supervisor.user.id),
            admin.token(),
        )
        .await;
    let me: serde_json::Value = me.json().await.expect("user");
    assert_eq!(me["active"], true);
    let mut again = Browser::new(&app);
    let res = again
        .sign_in(&supervisor.user.username, "a-new-password-for-me")
        .await;
    assert_eq!(
        res.status,
        StatusCode::SEE_OTHER,
        "the new password signs in"
    );

    // An admin resetting it ends every console session at once, as it does the phone's.
    let res = app
        .patch(
            &format!("/api/v1/users/{}", supervisor.user.id),
            admin.token(),
            &json!({ "password": "reset-by-the-admin-1" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    for b in [&mut browser, &mut again] {
        let res = b.get("/console/").await;
        assert_eq!(
            res.status,
            StatusCode::SEE_OTHER,
            "a session outlived the reset"
        );
        assert!(res.location().starts_with("/console/login"));
    }
}
