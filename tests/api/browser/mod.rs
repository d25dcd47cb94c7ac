//! The console in a real browser: Debian's Chromium driven through its chromedriver, on
//! PostgreSQL with photos in Garage, as a Đống Đa supervisor meets it one morning. Signs
//! in with the keyboard alone, opens the queue and a visit, sees its photo decoded,
//! approves it and sees it leave the queue, sends another back with a comment that the
//! phone's `/api/v1/sync` then carries, bulk-approves three, and reads the indicators
//! (chart and figures, which must be the API's, from approved visits only). Then the same
//! on a 360 px phone screen, where no page may scroll sideways. axe-core runs on every
//! page; a serious or critical violation fails the test once every page was seen.
//!
//! Screenshots of every page are written on every run to `DONGHANH_TEST_SCREENSHOTS`
//! (`scripts/test.sh` sets it under the cache); with `DONGHANH_UPDATE_SCREENSHOTS=1` the
//! main ones are also copied to `docs/screenshots/`, which the README shows.
//!
//! A browser that cannot be started fails the test, in CI and anywhere else: it never
//! skips.

mod axe;
mod webdriver;

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_models::Role;
use uuid::Uuid;

use crate::helpers::{try_spawn_app, Actor, Backend, TestApp};
use crate::intake::{contact, outreach_visit, submit};
use crate::photos::jpeg;
use axe::{Axe, Findings};
use webdriver::{BrowserPaths, Driver, Screen, Session, ENTER, TAB};

/// Where this run's screenshots go, and whether the README's copies are refreshed.
struct Shots {
    dir: PathBuf,
    update_docs: bool,
}

/// The screenshots committed under `docs/screenshots/` (the README shows them).
const DOC_SHOTS: &[&str] = &[
    "desktop-1-login",
    "desktop-2-queue",
    "desktop-3-visit",
    "desktop-5-bulk",
    "desktop-6-indicators",
    "phone-2-queue",
    "phone-3-visit",
];

impl Shots {
    fn from_env() -> Shots {
        let dir = std::env::var_os("DONGHANH_TEST_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"));
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        Shots {
            dir,
            update_docs: std::env::var("DONGHANH_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1"),
        }
    }

    async fn take(&self, session: &Session, name: &str) {
        let png = session.full_screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let path = self.dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).expect("write screenshot");
        if self.update_docs && DOC_SHOTS.contains(&name) {
            let docs = crate::helpers::manifest_dir().join("../docs/screenshots");
            std::fs::create_dir_all(&docs).expect("docs/screenshots");
            std::fs::write(docs.join(format!("{name}.png")), &png).expect("write docs screenshot");
        }
    }
}

/// Everything the scenario made before the browser opened.
struct World {
    app: TestApp,
    supervisor: Actor,
    peer: Actor,
    ward_a: (Uuid, String),
    ward_b: (Uuid, String),
    /// A Hoàn Kiếm visit: never on a Đống Đa supervisor's pages.
    elsewhere: Uuid,
}

/// One visit in the queue, with what the test knows about it.
#[derive(Clone)]
struct Visit {
    id: Uuid,
    ward: usize,
    people: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reviews_a_morning_in_chromium() {
    let paths =
        BrowserPaths::from_env().unwrap_or_else(|e| panic!("cannot start the browser: {e}"));
    let axe = Axe::from_env().unwrap_or_else(|e| panic!("cannot run axe-core: {e}"));
    let driver = Driver::start(&paths)
        .await
        .unwrap_or_else(|e| panic!("cannot start chromedriver: {e}"));
    let app = try_spawn_app(Backend::Postgres)
        .await
        .expect("PostgreSQL for the browser test (scripts/test.sh starts one)");
    let world = World::build(app).await;
    let shots = Shots::from_env();
    let mut findings = Findings::default();

    // Night one's visits: five in Đống Đa's two wards, three people each.
    let mut night = Vec::new();
    for n in 0..5 {
        night.push(world.visit(n, n % 2).await);
    }
    let desktop = driver
        .session(Screen::Desktop {
            width: 1280,
            height: 1000,
        })
        .await
        .unwrap_or_else(|e| panic!("cannot start Chromium: {e}"));
    morning(
        &world,
        &desktop,
        &night,
        "desktop",
        &shots,
        &axe,
        &mut findings,
        false,
    )
    .await;
    let approved_people: usize = night.iter().take(4).map(|v| v.people).sum();
    indicators(
        &world,
        &desktop,
        &night[..4],
        approved_people,
        "desktop",
        &shots,
        &axe,
        &mut findings,
    )
    .await;
    other_pages(
        &world,
        &desktop,
        "desktop",
        &shots,
        &axe,
        &mut findings,
        false,
    )
    .await;
    desktop.close().await;

    // Night two, read on a phone's 360 px screen.
    let mut second = Vec::new();
    for n in 5..10 {
        second.push(world.visit(n, n % 2).await);
    }
    let phone = driver
        .session(Screen::Phone {
            width: 360,
            height: 740,
        })
        .await
        .unwrap_or_else(|e| panic!("cannot start Chromium as a phone: {e}"));
    morning(
        &world,
        &phone,
        &second,
        "phone",
        &shots,
        &axe,
        &mut findings,
        true,
    )
    .await;
    let approved: Vec<Visit> = night[..4].iter().chain(&second[..4]).cloned().collect();
    let people: usize = approved.iter().map(|v| v.people).sum();
    indicators(
        &world,
        &phone,
        &approved,
        people,
        "phone",
        &shots,
        &axe,
        &mut findings,
    )
    .await;
    other_pages(&world, &phone, "phone", &shots, &axe, &mut findings, true).await;
    phone.close().await;

    eprintln!("axe-core findings:\n{}", findings.report());
    eprintln!("screenshots in {}", shots.dir.display());
    assert_eq!(
        findings.blocking(),
        0,
        "serious or critical accessibility violations:\n{}",
        findings.report()
    );
}

impl World {
    async fn build(app: TestApp) -> World {
        let admin = app.admin().await;
        let dong_da = app.unit("006").await;
        let mut wards = Vec::new();
        for (code, name) in [("00601", "Phường Láng Hạ"), ("00602", "Phường Ô Chợ Dừa")]
        {
            let res = app
                .post(
                    "/api/v1/org-units",
                    Some(admin.token()),
                    &json!({ "code": code, "name": name, "level": "ward", "type": "phuong",
                             "parent_id": dong_da, "valid_from": "2025-07-01" }),
                )
                .await;
            assert_eq!(res.status(), StatusCode::CREATED, "ward {code}");
            let body: Value = res.json().await.expect("ward");
            let id: Uuid = serde_json::from_value(body["id"].clone()).expect("ward id");
            wards.push((id, name.to_string()));
        }
        let supervisor = app.actor(Role::Supervisor, "006").await;
        let peer = app.actor(Role::PeerEducator, "006").await;
        let other = app.actor(Role::PeerEducator, "002").await;
        let body = outreach_visit(
            app.unit("002").await,
            vec![contact("HOAN-KIEM-1991-F", &[])],
        );
        let stored = submit(&app, &other, &body, StatusCode::CREATED).await;
        let elsewhere = serde_json::from_value(stored["id"].clone()).expect("id");
        let ward_b = wards.pop().expect("ward");
        let ward_a = wards.pop().expect("ward");
        World {
            app,
            supervisor,
            peer,
            ward_a,
            ward_b,
            elsewhere,
        }
    }

    fn ward(&self, i: usize) -> &(Uuid, String) {
        if i == 0 {
            &self.ward_a
        } else {
            &self.ward_b
        }
    }

    /// Visit `n` of the peer educator, in ward `ward`: three new people, one referred,
    /// and one photo uploaded as the phone does.
    async fn visit(&self, n: usize, ward: usize) -> Visit {
        let contacts = (0..3)
            .map(|k| {
                contact(
                    &format!("DONG-DA-{n:02}{k}-19{:02}-F", 80 + k),
                    if k == 0 { &["hiv_test"] } else { &[] },
                )
            })
            .collect();
        let mut body = outreach_visit(self.ward(ward).0, contacts);
        let photo = jpeg(n as u8, 320, 240);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&photo));
        body["answers"]["photos"] = json!([{ "photo": digest }]);
        let stored = submit(&self.app, &self.peer, &body, StatusCode::CREATED).await;
        let id: Uuid = serde_json::from_value(stored["id"].clone()).expect("id");
        let res = self
            .app
            .client
            .put(
                self.app
                    .url(&format!("/api/v1/submissions/{id}/photos/{digest}")),
            )
            .bearer_auth(self.peer.token())
            .header("content-type", "image/jpeg")
            .body(photo)
            .send()
            .await
            .expect("photo");
        assert_eq!(res.status(), StatusCode::CREATED, "photo of visit {n}");
        Visit {
            id,
            ward,
            people: 3,
        }
    }

    async fn status(&self, id: Uuid) -> String {
        let res = self
            .app
            .get(
                &format!("/api/v1/submissions/{id}"),
                self.supervisor.token(),
            )
            .await;
        let body: Value = res.json().await.expect("detail");
        body["status"].as_str().unwrap_or_default().to_string()
    }

    /// The phone's sync, from `since`.
    async fn sync(&self, since: Option<&str>) -> Value {
        let path = since.map_or("/api/v1/sync".to_string(), |c| {
            format!("/api/v1/sync?since={c}")
        });
        let res = self.app.get(&path, self.peer.token()).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.expect("sync")
    }
}

/// The page's URL on the test server.
fn at(world: &World, path: &str) -> String {
    world.app.url(path)
}

/// Screenshot, axe, and on a phone the check that nothing is wider than the screen.
#[allow(clippy::too_many_arguments)]
async fn look(
    session: &Session,
    screen: &str,
    name: &str,
    shots: &Shots,
    axe: &Axe,
    findings: &mut Findings,
    phone: bool,
) {
    shots.take(session, &format!("{screen}-{name}")).await;
    axe.check(session, &format!("{screen} {name}"), findings)
        .await;
    if phone {
        let widths = session
            .exec(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                json!([]),
            )
            .await;
        let (scroll, client) = (
            widths[0].as_i64().unwrap_or(0),
            widths[1].as_i64().unwrap_or(0),
        );
        assert!(
            scroll <= client + 1,
            "{name} scrolls sideways on a {client} px screen: {scroll} px wide"
        );
    }
}

/// Visit ids linked from the queue's table, in the order shown.
async fn queue_ids(session: &Session) -> Vec<String> {
    let ids = session
        .exec(
            "return Array.from(document.querySelectorAll('tbody a[href^=\"/console/visits/\"]'))
               .map(a => a.getAttribute('href').split('/').pop());",
            json!([]),
        )
        .await;
    ids.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Sign in (keyboard only on the desktop: the page focuses the username field), the
/// queue, a visit with its photo approved, another sent back with a comment, three
/// approved at once.
#[allow(clippy::too_many_arguments)]
async fn morning(
    world: &World,
    session: &Session,
    visits: &[Visit],
    screen: &str,
    shots: &Shots,
    axe: &Axe,
    findings: &mut Findings,
    phone: bool,
) {
    let sup = &world.supervisor;
    session.goto(&at(world, "/console/")).await;
    // Not signed in: the sign-in page, in Vietnamese.
    session
        .find("form[action='/console/login'] #username")
        .await;
    assert!(session.url().await.contains("/console/login"));
    let lang = session
        .exec("return document.documentElement.lang;", json!([]))
        .await;
    assert_eq!(lang, "vi");
    look(session, screen, "1-login", shots, axe, findings, phone).await;
    if phone {
        let user = session.find("#username").await;
        session.type_into(&user, &sup.user.username).await;
        let pass = session.find("#password").await;
        session.type_into(&pass, &sup.password).await;
        session
            .click_css("form[action='/console/login'] button[type=submit]")
            .await;
    } else {
        let focused = session
            .exec(
                "return document.activeElement && document.activeElement.id;",
                json!([]),
            )
            .await;
        assert_eq!(
            focused, "username",
            "the sign-in page focuses the username field"
        );
        session
            .keyboard(&format!(
                "{}{TAB}{}{ENTER}",
                sup.user.username, sup.password
            ))
            .await;
    }
    session.wait_for_page("/console/").await;

    // The queue: this night's visits, oldest first, nothing from Hoàn Kiếm.
    let shown = queue_ids(session).await;
    let expected: Vec<String> = visits.iter().map(|v| v.id.to_string()).collect();
    assert_eq!(
        shown, expected,
        "the queue shows the night's visits oldest first"
    );
    assert!(!shown.contains(&world.elsewhere.to_string()));
    let heading = session.text_of("h1").await;
    assert_eq!(heading, "Hàng chờ duyệt", "Vietnamese with its diacritics");
    look(session, screen, "2-queue", shots, axe, findings, phone).await;

    // A visit: its answers, and its photo decoded by the browser.
    let first = &visits[0];
    session
        .click_css(&format!("tbody a[href='/console/visits/{}']", first.id))
        .await;
    session
        .wait_for_page(&format!("/console/visits/{}", first.id))
        .await;
    let facts = session.text_of("dl.facts").await;
    assert!(
        facts.contains(&world.ward(first.ward).1),
        "the place is named: {facts}"
    );
    session
        .exec(
            "const i = document.querySelector('ul.photos img'); if (i) i.scrollIntoView(); return !!i;",
            json!([]),
        )
        .await;
    session
        .wait_for(
            "the photo to be decoded",
            "const i = document.querySelector('ul.photos img');
             return !!i && i.complete && i.naturalWidth > 0;",
            json!([]),
        )
        .await;
    let width = session
        .exec(
            "return document.querySelector('ul.photos img').naturalWidth;",
            json!([]),
        )
        .await;
    assert_eq!(width, 320, "the photo as uploaded");
    session
        .exec("window.scrollTo(0, 0); return true;", json!([]))
        .await;
    look(session, screen, "3-visit", shots, axe, findings, phone).await;

    // Approve it (the default choice): it leaves the queue.
    session.click_css("form.decision button[type=submit]").await;
    session
        .wait_for_page(&format!("/console/visits/{}?done=1", first.id))
        .await;
    assert_eq!(world.status(first.id).await, "approved");
    session.goto(&at(world, "/console/")).await;
    let shown = queue_ids(session).await;
    assert!(
        !shown.contains(&first.id.to_string()),
        "approved visit left the queue"
    );
    assert_eq!(shown.len(), visits.len() - 1);

    // Send the last one back with a comment: the phone's next sync carries it.
    let cursor = world.sync(None).await["cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let back = &visits[visits.len() - 1];
    let comment = format!("Thiếu ảnh biển hiệu ({screen})");
    session
        .click_css(&format!("tbody a[href='/console/visits/{}']", back.id))
        .await;
    session
        .wait_for_page(&format!("/console/visits/{}", back.id))
        .await;
    session
        .click_css("form.decision input[name=decision][value=request_changes]")
        .await;
    let textarea = session.find("#comment").await;
    session.type_into(&textarea, &comment).await;
    session.click_css("form.decision button[type=submit]").await;
    session
        .wait_for_page(&format!("/console/visits/{}?done=1", back.id))
        .await;
    let history = session.text_of("ol.history").await;
    assert!(
        history.contains(&comment),
        "the comment in the history: {history}"
    );
    assert_eq!(world.status(back.id).await, "changes_requested");
    let synced = world.sync(Some(&cursor)).await;
    let entry = synced["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .find(|s| s["id"] == json!(back.id))
        .cloned()
        .unwrap_or_else(|| panic!("the sent-back visit is not in the phone's sync: {synced}"));
    assert_eq!(entry["status"], "changes_requested");
    assert_eq!(entry["last_review"]["comment"], json!(comment));
    look(session, screen, "4-sent-back", shots, axe, findings, phone).await;

    // Three at once.
    session.goto(&at(world, "/console/")).await;
    let three = &visits[1..4];
    for v in three {
        session.click_css(&format!("#pick-{}", v.id)).await;
    }
    session
        .click_css("form[action='/console/queue/approve'] .bulk-bar button[type=submit]")
        .await;
    session.wait_for_page("/console/queue/approve").await;
    let ok = session
        .exec(
            "return document.querySelectorAll('tbody .badge.approved').length;",
            json!([]),
        )
        .await;
    assert_eq!(ok, 3, "three results, each approved");
    for v in three {
        assert_eq!(world.status(v.id).await, "approved");
    }
    look(session, screen, "5-bulk", shots, axe, findings, phone).await;
    session.goto(&at(world, "/console/")).await;
    let left = queue_ids(session).await;
    assert!(
        left.is_empty(),
        "nothing of this night is left in the queue: {left:?}"
    );
}

/// The indicators page for the supervisor's district this quarter: the chart, the table
/// beside it and every figure equal to the API's, which counts approved visits only.
#[allow(clippy::too_many_arguments)]
async fn indicators(
    world: &World,
    session: &Session,
    approved: &[Visit],
    people: usize,
    screen: &str,
    shots: &Shots,
    axe: &Axe,
    findings: &mut Findings,
) {
    session.goto(&at(world, "/console/indicators")).await;
    session.find("figure.chart svg").await;
    let title = session
        .exec(
            "return document.querySelector('figure.chart svg > title').textContent;",
            json!([]),
        )
        .await;
    assert!(
        title.as_str().is_some_and(|t| !t.trim().is_empty()),
        "the chart has a title"
    );
    let bars = session
        .exec(
            "return document.querySelectorAll('figure.chart svg rect.bar').length;",
            json!([]),
        )
        .await;
    assert_eq!(bars, 2, "one bar per ward");

    let today = chrono::Utc::now().date_naive();
    let quarter = (chrono::Datelike::month(&today) - 1) / 3 + 1;
    let period = format!("{}Q{quarter}", chrono::Datelike::year(&today));
    let res = world
        .app
        .get(
            &format!("/api/v1/reports/indicators?period={period}"),
            world.supervisor.token(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let api: Value = res.json().await.expect("report");
    let value = |unit: &Value, key: &str| {
        unit["indicators"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["indicator"] == key))
            .and_then(|c| c["value"].as_i64())
    };
    // Approved visits only: the sent-back one is not counted.
    assert_eq!(value(&api["unit"], "people_reached"), Some(people as i64));
    let condoms: i64 = approved.iter().map(|v| v.people as i64 * 10).sum();
    assert_eq!(value(&api["unit"], "condoms_male"), Some(condoms));

    // The page's table says the same, cell by cell.
    let cells = session
        .exec(
            "const t = document.querySelector('main table');
             return Array.from(t.querySelectorAll('tbody tr')).map(r => r.querySelector('td').textContent.trim());",
            json!([]),
        )
        .await;
    let cells: Vec<String> = serde_json::from_value(cells).expect("cells");
    let expected = api["unit"]["indicators"].as_array().expect("indicators");
    assert_eq!(cells.len(), expected.len(), "one row per indicator");
    for (cell, want) in cells.iter().zip(expected) {
        match want["value"].as_i64() {
            Some(v) if !want["suppressed"].as_bool().unwrap_or(false) => {
                assert_eq!(
                    cell.replace('.', ""),
                    v.to_string(),
                    "{}",
                    want["indicator"]
                )
            }
            _ => assert!(
                cell.parse::<i64>().is_err(),
                "{} must not show a number: {cell}",
                want["indicator"]
            ),
        }
    }
    // The breakdown beside the chart: each ward's people, as the API has them.
    let rows = session
        .exec(
            "const t = document.querySelectorAll('main table')[1];
             return Array.from(t.querySelectorAll('tbody tr')).map(r => [r.querySelector('th').textContent.trim(), r.querySelector('td').textContent.trim()]);",
            json!([]),
        )
        .await;
    let rows: Vec<(String, String)> = serde_json::from_value(rows).expect("rows");
    for w in 0..2 {
        let name = &world.ward(w).1;
        let want: usize = approved
            .iter()
            .filter(|v| v.ward == w)
            .map(|v| v.people)
            .sum();
        let api_child = api["children"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == json!(name)))
            .cloned()
            .expect("ward in the API's breakdown");
        assert_eq!(value(&api_child, "people_reached"), Some(want as i64));
        assert!(
            rows.iter()
                .any(|(n, v)| n == name && v.replace('.', "") == want.to_string()),
            "{name} with {want} people in {rows:?}"
        );
    }
    look(
        session,
        screen,
        "6-indicators",
        shots,
        axe,
        findings,
        screen == "phone",
    )
    .await;
}

/// The supervisor's other pages, each looked at: referrals, stock, people, their own page.
async fn other_pages(
    world: &World,
    session: &Session,
    screen: &str,
    shots: &Shots,
    axe: &Axe,
    findings: &mut Findings,
    phone: bool,
) {
    let own = format!("/console/people/{}", world.supervisor.user.id);
    for (n, path, name) in [
        (7, "/console/referrals", "referrals"),
        (8, "/console/stock", "stock"),
        (9, "/console/people", "people"),
        (10, own.as_str(), "own-page"),
    ] {
        session.goto(&at(world, path)).await;
        session.wait_for_page(path).await;
        let h1 = session.text_of("h1").await;
        assert!(!h1.is_empty(), "{path} has a heading");
        let text = session.text_of("main").await;
        assert!(!text.contains("HOAN-KIEM"), "{path}");
        look(
            session,
            screen,
            &format!("{n}-{name}"),
            shots,
            axe,
            findings,
            phone,
        )
        .await;
    }
    // One's own page asks for the current password beside the new one.
    session.goto(&at(world, &own)).await;
    session.find("#e-current").await;
    session.find("#e-pass").await;
    // The peer educator appears among the people in scope.
    session.goto(&at(world, "/console/people")).await;
    let text = session.text_of("main").await;
    assert!(
        text.contains(&world.peer.user.username),
        "the peer educator is listed"
    );
}
