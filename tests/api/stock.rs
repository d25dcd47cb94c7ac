//! The stock ledger and its reconciliation, through HTTP: supervisors record what they
//! issue, what comes back and what is lost; approved outreach visits, and only those,
//! debit the peer educator; the report reconciles exactly across periods, flags (never
//! refuses) a balance that went below zero, and keeps to the caller's subtree.

use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};
use server::db::entities::stock_movements;
use shared_models::Role;
use uuid::Uuid;

use crate::helpers::{faults, problem, Actor, TestApp};
use crate::intake::{contact, outreach_visit, submit};
use crate::on_both;

on_both!(
    movements_and_approved_visits_reconcile_across_two_periods,
    only_approved_visits_debit_the_peer,
    a_distribution_beyond_the_balance_is_flagged_not_refused,
    other_districts_are_not_found,
    peer_educators_may_not_use_the_ledger,
    bad_input_names_the_field,
    only_peer_educators_hold_stock,
);

/// Records a movement and answers the response.
async fn record(
    app: &TestApp,
    who: &Actor,
    peer: &Actor,
    item: &str,
    kind: &str,
    quantity: u32,
    day: &str,
) -> reqwest::Response {
    app.post(
        "/api/v1/stock/movements",
        Some(who.token()),
        &json!({
            "peer_id": peer.user.id,
            "item": item,
            "kind": kind,
            "quantity": quantity,
            "occurred_on": day,
        }),
    )
    .await
}

/// Records a movement that must be accepted.
async fn recorded(
    app: &TestApp,
    who: &Actor,
    peer: &Actor,
    item: &str,
    kind: &str,
    quantity: u32,
    day: &str,
) -> Value {
    let res = record(app, who, peer, item, kind, quantity, day).await;
    let status = res.status();
    let body = res.text().await.expect("body");
    assert_eq!(status, StatusCode::CREATED, "movement answered {body}");
    serde_json::from_str(&body).expect("json")
}

/// An outreach visit by `peer` on `day` with `contacts` contacts (each hands out 10 male
/// condoms, 2 female condoms, 5 lubricant, 1 self-test kit), submitted; answers its id.
async fn visit(app: &TestApp, peer: &Actor, day: &str, contacts: usize) -> String {
    let unit = app.unit("006").await;
    let list = (0..contacts)
        .map(|i| contact(&format!("HOA-MAI-{}-F", 1980 + i), &[]))
        .collect();
    let mut body = outreach_visit(unit, list);
    body["answers"]["visit_date"] = json!(day);
    let stored = submit(app, peer, &body, StatusCode::CREATED).await;
    stored["id"].as_str().expect("id").to_string()
}

/// Reviews a submission; the decision must be taken.
async fn review(app: &TestApp, who: &Actor, id: &str, decision: &str) {
    let res = app
        .post(
            &format!("/api/v1/submissions/{id}/review"),
            Some(who.token()),
            &json!({ "decision": decision, "comment": "checked against the paper log" }),
        )
        .await;
    let status = res.status();
    let body = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "review answered {body}");
}

/// An approved visit.
async fn approved_visit(app: &TestApp, peer: &Actor, sup: &Actor, day: &str, contacts: usize) {
    let id = visit(app, peer, day, contacts).await;
    review(app, sup, &id, "approve").await;
}

/// The report for `query`; it must answer 200, and every line must reconcile.
async fn report(app: &TestApp, who: &Actor, query: &str) -> Value {
    let res = app
        .get(&format!("/api/v1/reports/stock?{query}"), who.token())
        .await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "report answered {text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    let peers = body["peers"].as_array().expect("peers");
    let lines = peers
        .iter()
        .flat_map(|p| p["items"].as_array().expect("items").iter())
        .chain(body["totals"].as_array().expect("totals").iter());
    for l in lines {
        let n = |k: &str| l[k].as_i64().unwrap_or_else(|| panic!("{k} in {l}"));
        assert_eq!(
            n("closing"),
            n("opening") + n("received") - n("distributed") - n("returned") - n("lost"),
            "{l}"
        );
    }
    body
}

/// One peer's lines, in the order of the commodities.
fn lines_of(report: &Value, peer: &Actor) -> Vec<Value> {
    report["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|p| p["peer_id"] == json!(peer.user.id))
        .unwrap_or_else(|| panic!("{} is not in {report}", peer.user.username))["items"]
        .as_array()
        .expect("items")
        .clone()
}

/// A line as expected: `[opening, received, distributed, returned, lost, closing, lowest]`.
fn line(item: &str, n: [i64; 7], went_negative: bool) -> Value {
    json!({
        "item": item,
        "opening": n[0],
        "received": n[1],
        "distributed": n[2],
        "returned": n[3],
        "lost": n[4],
        "closing": n[5],
        "lowest_balance": n[6],
        "went_negative": went_negative,
    })
}

fn peer_ids(report: &Value) -> Vec<Value> {
    report["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p["peer_id"].clone())
        .collect()
}

async fn audit_actions(app: &TestApp, action: &str) -> Vec<Value> {
    let admin = app.admin().await;
    let res = app
        .get(&format!("/api/v1/audit?action={action}"), admin.token())
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.expect("audit page");
    page["items"].as_array().expect("items").clone()
}

async fn movements_and_approved_visits_reconcile_across_two_periods(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let idle = app.actor(Role::PeerEducator, "006").await;
    let elsewhere = app.actor(Role::PeerEducator, "002").await;
    let admin = app.admin().await;

    // Before March: the opening stock.
    recorded(
        &app,
        &sup,
        &peer,
        "male_condom",
        "issued",
        100,
        "2025-02-20",
    )
    .await;
    recorded(
        &app,
        &sup,
        &peer,
        "female_condom",
        "issued",
        20,
        "2025-02-20",
    )
    .await;
    recorded(
        &app,
        &sup,
        &peer,
        "self_test_kit",
        "issued",
        10,
        "2025-02-20",
    )
    .await;
    // March.
    let first = app
        .post(
            "/api/v1/stock/movements",
            Some(sup.token()),
            &json!({
                "peer_id": peer.user.id,
                "item": "male_condom",
                "kind": "issued",
                "quantity": 200,
                "occurred_on": "2025-03-02",
                "note": "  box 14 from the district store  ",
            }),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("movement");
    assert_eq!(first["peer_id"], json!(peer.user.id));
    assert_eq!(first["item"], "male_condom");
    assert_eq!(first["kind"], "issued");
    assert_eq!(first["quantity"], 200);
    assert_eq!(first["occurred_on"], "2025-03-02");
    assert_eq!(first["note"], "box 14 from the district store");
    assert_eq!(first["recorded_by"], json!(sup.user.id));
    assert!(first["id"]
        .as_str()
        .is_some_and(|s| Uuid::parse_str(s).is_ok()));

    recorded(&app, &sup, &peer, "lubricant", "issued", 50, "2025-03-02").await;
    approved_visit(&app, &peer, &sup, "2025-03-05", 2).await;
    let returned = recorded(
        &app,
        &sup,
        &peer,
        "male_condom",
        "returned",
        30,
        "2025-03-10",
    )
    .await;
    assert_eq!(returned["kind"], "returned");
    let lost = recorded(&app, &sup, &peer, "lubricant", "lost", 5, "2025-03-15").await;
    assert_eq!(lost["kind"], "lost");
    // April, up to its last day; May is outside both periods.
    recorded(
        &app,
        &sup,
        &peer,
        "female_condom",
        "issued",
        10,
        "2025-04-03",
    )
    .await;
    approved_visit(&app, &peer, &sup, "2025-04-04", 1).await;
    recorded(&app, &sup, &peer, "male_condom", "lost", 7, "2025-04-30").await;
    recorded(
        &app,
        &sup,
        &peer,
        "male_condom",
        "issued",
        1000,
        "2025-05-01",
    )
    .await;
    // Hoàn Kiếm's ledger is not Đống Đa's business.
    recorded(
        &app,
        &admin,
        &elsewhere,
        "male_condom",
        "issued",
        500,
        "2025-03-01",
    )
    .await;

    let march = report(&app, &sup, "from=2025-03-01&to=2025-03-31").await;
    assert_eq!(march["from"], "2025-03-01");
    assert_eq!(march["to"], "2025-03-31");
    assert_eq!(march["org_unit_id"], json!(sup.user.org_unit_id));
    let mut expected_peers = vec![json!(peer.user.id), json!(idle.user.id)];
    expected_peers.sort_by_key(|id| {
        if *id == json!(peer.user.id) {
            peer.user.username.clone()
        } else {
            idle.user.username.clone()
        }
    });
    assert_eq!(
        peer_ids(&march),
        expected_peers,
        "by username, idle included"
    );
    let march_lines = vec![
        line("male_condom", [100, 200, 20, 30, 0, 250, 100], false),
        line("female_condom", [20, 0, 4, 0, 0, 16, 16], false),
        line("lubricant", [0, 50, 10, 0, 5, 35, 0], false),
        line("self_test_kit", [10, 0, 2, 0, 0, 8, 8], false),
    ];
    assert_eq!(lines_of(&march, &peer), march_lines);
    assert_eq!(
        lines_of(&march, &idle),
        ["male_condom", "female_condom", "lubricant", "self_test_kit"]
            .map(|item| line(item, [0; 7], false))
            .to_vec()
    );
    // Totals add the peers up; the lowest is the idle peer's zero.
    assert_eq!(
        march["totals"],
        json!([
            line("male_condom", [100, 200, 20, 30, 0, 250, 0], false),
            line("female_condom", [20, 0, 4, 0, 0, 16, 0], false),
            line("lubricant", [0, 50, 10, 0, 5, 35, 0], false),
            line("self_test_kit", [10, 0, 2, 0, 0, 8, 0], false),
        ])
    );

    // April opens where March closed.
    let april = report(&app, &sup, "from=2025-04-01&to=2025-04-30").await;
    let april_lines = lines_of(&april, &peer);
    for (m, a) in march_lines.iter().zip(&april_lines) {
        assert_eq!(a["opening"], m["closing"], "{a}");
    }
    assert_eq!(
        april_lines,
        vec![
            line("male_condom", [250, 0, 10, 0, 7, 233, 233], false),
            line("female_condom", [16, 10, 2, 0, 0, 24, 16], false),
            line("lubricant", [35, 0, 5, 0, 0, 30, 30], false),
            line("self_test_kit", [8, 0, 1, 0, 0, 7, 7], false),
        ]
    );

    // One day, and one peer.
    let one = report(
        &app,
        &sup,
        &format!("from=2025-03-05&to=2025-03-05&peer_id={}", peer.user.id),
    )
    .await;
    assert_eq!(peer_ids(&one), vec![json!(peer.user.id)]);
    assert_eq!(
        lines_of(&one, &peer)[0],
        line("male_condom", [300, 0, 20, 0, 0, 280, 280], false)
    );
    assert_eq!(one["totals"][0], lines_of(&one, &peer)[0]);

    // The admin sees the whole city, Hoàn Kiếm included.
    let city = report(&app, &admin, "from=2025-03-01&to=2025-03-31").await;
    let ids = peer_ids(&city);
    for who in [&peer, &idle, &elsewhere] {
        assert!(ids.contains(&json!(who.user.id)), "{}", who.user.username);
    }
    assert_eq!(
        lines_of(&city, &elsewhere)[0],
        line("male_condom", [0, 500, 0, 0, 0, 500, 0], false)
    );

    // Every movement and every reading is audited.
    let movements = audit_actions(&app, "stock.movement").await;
    assert_eq!(movements.len(), 11);
    assert!(movements
        .iter()
        .any(|e| e["target_id"] == json!(peer.user.id.to_string())
            && e["actor_id"] == json!(sup.user.id)));
    let readings = audit_actions(&app, "report.stock").await;
    assert_eq!(readings.len(), 4);
    assert!(readings
        .iter()
        .any(|e| e["target_id"] == json!(sup.user.org_unit_id.to_string())));
}

async fn only_approved_visits_debit_the_peer(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    recorded(
        &app,
        &sup,
        &peer,
        "male_condom",
        "issued",
        100,
        "2025-06-01",
    )
    .await;
    approved_visit(&app, &peer, &sup, "2025-06-02", 1).await;
    let waiting = visit(&app, &peer, "2025-06-03", 2).await;
    let rejected = visit(&app, &peer, "2025-06-04", 3).await;
    review(&app, &sup, &rejected, "reject").await;

    let june = report(&app, &sup, "from=2025-06-01&to=2025-06-30").await;
    assert_eq!(
        lines_of(&june, &peer),
        vec![
            line("male_condom", [0, 100, 10, 0, 0, 90, 0], false),
            line("female_condom", [0, 0, 2, 0, 0, -2, -2], true),
            line("lubricant", [0, 0, 5, 0, 0, -5, -5], true),
            line("self_test_kit", [0, 0, 1, 0, 0, -1, -1], true),
        ]
    );

    // Once approved, the waiting visit counts too, on its own day.
    review(&app, &sup, &waiting, "approve").await;
    let june = report(&app, &sup, "from=2025-06-01&to=2025-06-30").await;
    assert_eq!(
        lines_of(&june, &peer)[0],
        line("male_condom", [0, 100, 30, 0, 0, 70, 0], false)
    );
    let after = report(&app, &sup, "from=2025-06-04&to=2025-06-30").await;
    assert_eq!(
        lines_of(&after, &peer)[0],
        line("male_condom", [70, 0, 0, 0, 0, 70, 70], false)
    );
}

async fn a_distribution_beyond_the_balance_is_flagged_not_refused(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    recorded(&app, &sup, &peer, "male_condom", "issued", 5, "2025-07-01").await;
    // The phone was offline: the visit hands out more than the peer holds, and is
    // accepted and approved all the same.
    approved_visit(&app, &peer, &sup, "2025-07-02", 1).await;
    // A kit received on the visit's own day counts before the visit's.
    recorded(
        &app,
        &sup,
        &peer,
        "self_test_kit",
        "issued",
        1,
        "2025-07-02",
    )
    .await;
    recorded(&app, &sup, &peer, "male_condom", "issued", 20, "2025-07-03").await;

    let early = report(&app, &sup, "from=2025-07-01&to=2025-07-03").await;
    assert_eq!(
        lines_of(&early, &peer),
        vec![
            line("male_condom", [0, 25, 10, 0, 0, 15, -5], true),
            line("female_condom", [0, 0, 2, 0, 0, -2, -2], true),
            line("lubricant", [0, 0, 5, 0, 0, -5, -5], true),
            line("self_test_kit", [0, 1, 1, 0, 0, 0, 0], false),
        ]
    );
    assert_eq!(early["totals"][0]["went_negative"], true);
    assert_eq!(early["totals"][0]["lowest_balance"], -5);
    assert_eq!(early["totals"][3]["went_negative"], false);

    // The next period opens at 15 condoms (fine) and −2 female condoms (still flagged).
    let later = report(&app, &sup, "from=2025-07-04&to=2025-07-31").await;
    assert_eq!(
        lines_of(&later, &peer),
        vec![
            line("male_condom", [15, 0, 0, 0, 0, 15, 15], false),
            line("female_condom", [-2, 0, 0, 0, 0, -2, -2], true),
            line("lubricant", [-5, 0, 0, 0, 0, -5, -5], true),
            line("self_test_kit", [0, 0, 0, 0, 0, 0, 0], false),
        ]
    );

    // A return that takes the balance further below zero is recorded too, and flagged.
    recorded(&app, &sup, &peer, "lubricant", "returned", 3, "2025-07-05").await;
    let later = report(&app, &sup, "from=2025-07-04&to=2025-07-31").await;
    assert_eq!(
        lines_of(&later, &peer)[2],
        line("lubricant", [-5, 0, 0, 3, 0, -8, -8], true)
    );
}

async fn other_districts_are_not_found(app: TestApp) {
    let hoan_kiem = app.actor(Role::Supervisor, "002").await;
    let dong_da = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let dong_da_unit = app.unit("006").await;

    let res = record(
        &app,
        &hoan_kiem,
        &peer,
        "male_condom",
        "issued",
        10,
        "2025-03-01",
    )
    .await;
    let body = problem(res, StatusCode::NOT_FOUND).await;
    // An id that exists nowhere answers exactly the same.
    let ghost = app
        .post(
            "/api/v1/stock/movements",
            Some(hoan_kiem.token()),
            &json!({
                "peer_id": Uuid::new_v4(),
                "item": "male_condom",
                "kind": "issued",
                "quantity": 10,
                "occurred_on": "2025-03-01",
            }),
        )
        .await;
    assert_eq!(problem(ghost, StatusCode::NOT_FOUND).await, body);

    let res = app
        .get(
            &format!(
                "/api/v1/reports/stock?from=2025-03-01&to=2025-03-31&org_unit_id={dong_da_unit}"
            ),
            hoan_kiem.token(),
        )
        .await;
    problem(res, StatusCode::NOT_FOUND).await;
    let res = app
        .get(
            &format!(
                "/api/v1/reports/stock?from=2025-03-01&to=2025-03-31&peer_id={}",
                peer.user.id
            ),
            hoan_kiem.token(),
        )
        .await;
    problem(res, StatusCode::NOT_FOUND).await;
    // Hoàn Kiếm's own report does not list the Đống Đa peer.
    let own = report(&app, &hoan_kiem, "from=2025-03-01&to=2025-03-31").await;
    assert!(!peer_ids(&own).contains(&json!(peer.user.id)));

    // Nothing was written; Đống Đa's own supervisor may do both.
    assert_eq!(
        stock_movements::Entity::find()
            .count(&app.state.db)
            .await
            .expect("count"),
        0
    );
    recorded(
        &app,
        &dong_da,
        &peer,
        "male_condom",
        "issued",
        10,
        "2025-03-01",
    )
    .await;
    let theirs = report(
        &app,
        &dong_da,
        &format!("from=2025-03-01&to=2025-03-31&org_unit_id={dong_da_unit}"),
    )
    .await;
    assert_eq!(lines_of(&theirs, &peer)[0]["received"], 10);
}

async fn peer_educators_may_not_use_the_ledger(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let res = record(
        &app,
        &peer,
        &peer,
        "male_condom",
        "issued",
        10,
        "2025-03-01",
    )
    .await;
    problem(res, StatusCode::FORBIDDEN).await;
    let res = app
        .get(
            "/api/v1/reports/stock?from=2025-03-01&to=2025-03-31",
            peer.token(),
        )
        .await;
    problem(res, StatusCode::FORBIDDEN).await;
    assert_eq!(
        stock_movements::Entity::find()
            .count(&app.state.db)
            .await
            .expect("count"),
        0
    );
}

async fn bad_input_names_the_field(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let good = json!({
        "peer_id": peer.user.id,
        "item": "male_condom",
        "kind": "issued",
        "quantity": 10,
        "occurred_on": "2025-03-01",
    });
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let tomorrow_but_one = (chrono::Utc::now().date_naive() + chrono::Days::new(2)).to_string();
    let cases = [
        (with("quantity", json!(0)), "quantity", "range"),
        (with("quantity", json!(100_001)), "quantity", "range"),
        (with("item", json!("needle")), "item", "not_a_choice"),
        (with("kind", json!("distributed")), "kind", "not_a_choice"),
        (with("colour", json!("red")), "colour", "unknown_field"),
        (with("note", json!("x".repeat(201))), "note", "length"),
        (
            with("occurred_on", json!(tomorrow_but_one)),
            "occurred_on",
            "in_the_future",
        ),
    ];
    for (body, field, code) in cases {
        let res = app
            .post("/api/v1/stock/movements", Some(sup.token()), &body)
            .await;
        let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            faults(&p),
            vec![(field.to_string(), code.to_string())],
            "{body}"
        );
    }
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("quantity");
    let res = app
        .post("/api/v1/stock/movements", Some(sup.token()), &missing)
        .await;
    let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        faults(&p),
        vec![("quantity".to_string(), "required".to_string())]
    );
    assert_eq!(
        stock_movements::Entity::find()
            .count(&app.state.db)
            .await
            .expect("count"),
        0,
        "nothing faulty was stored"
    );
    // The largest quantity and the longest note are fine.
    let res = app
        .post(
            "/api/v1/stock/movements",
            Some(sup.token()),
            &with("quantity", json!(100_000)),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post(
            "/api/v1/stock/movements",
            Some(sup.token()),
            &with("note", json!("đ".repeat(200))),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let queries = [
        ("from=2025-03-31&to=2025-03-01", "to", "before_from"),
        ("to=2025-03-31", "from", "required"),
        ("from=2025-03-01", "to", "required"),
        (
            "from=2025-03-01&to=2025-03-31&colour=red",
            "colour",
            "unknown_field",
        ),
    ];
    for (query, field, code) in queries {
        let res = app
            .get(&format!("/api/v1/reports/stock?{query}"), sup.token())
            .await;
        let p = problem(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(
            faults(&p),
            vec![(field.to_string(), code.to_string())],
            "{query}"
        );
    }
    let res = app
        .get(
            "/api/v1/reports/stock?from=March&to=2025-03-31",
            sup.token(),
        )
        .await;
    let p = problem(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(faults(&p).len(), 1, "{p}");
    assert_eq!(faults(&p)[0].0, "from", "{p}");
}

async fn only_peer_educators_hold_stock(app: TestApp) {
    let sup = app.actor(Role::Supervisor, "006").await;
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let other_sup = app.actor(Role::Supervisor, "006").await;
    for who in [&volunteer, &other_sup] {
        let res = record(&app, &sup, who, "male_condom", "issued", 10, "2025-03-01").await;
        let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            faults(&p),
            vec![("peer_id".to_string(), "not_a_peer_educator".to_string())]
        );
    }
    assert_eq!(
        stock_movements::Entity::find()
            .count(&app.state.db)
            .await
            .expect("count"),
        0
    );
    let res = app
        .get(
            &format!(
                "/api/v1/reports/stock?from=2025-03-01&to=2025-03-31&peer_id={}",
                volunteer.user.id
            ),
            sup.token(),
        )
        .await;
    let p = problem(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        faults(&p),
        vec![("peer_id".to_string(), "not_a_peer_educator".to_string())]
    );
    // Neither the volunteer nor the supervisors are listed.
    let all = report(&app, &sup, "from=2025-03-01&to=2025-03-31").await;
    assert_eq!(peer_ids(&all), Vec::<Value>::new());
    assert_eq!(
        all["totals"],
        json!(
            ["male_condom", "female_condom", "lubricant", "self_test_kit"]
                .map(|item| line(item, [0; 7], false))
        )
    );
}
