//! Submission intake as a phone on a bad network uses it: retries, duplicates, fifty
//! copies at once, wrong forms, wrong roles, faulty answers, other districts' places;
//! and the privacy rule that no raw client code (UIC) is ever stored.

use chrono::{Duration, Utc};
use futures::future::join_all;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Statement};
use serde_json::{json, Value};
use server::db::entities::{
    commodity_distributions, contacts, group_sessions, handoffs, referrals, submissions,
    support_actions,
};
use shared_models::Role;
use uuid::Uuid;

use crate::helpers::{faults, problem, Actor, TestApp};
use crate::on_both;

on_both!(
    outreach_visit_is_stored_with_its_records,
    identical_retry_answers_the_stored_record_and_writes_nothing,
    same_id_with_another_body_is_a_conflict,
    fifty_concurrent_copies_leave_one_record,
    unknown_form_or_version_is_422,
    a_role_the_form_does_not_allow_is_403,
    answer_faults_come_all_at_once_with_their_paths,
    places_outside_the_authors_area_are_refused,
    returning_clients_are_recognised_across_spellings,
    raw_uics_are_stored_nowhere,
    handoff_needs_a_known_referral_code,
    group_session_and_support_visit_extract_their_records,
    concurrent_visits_meeting_the_same_people_all_succeed,
    faults_past_the_limit_are_counted,
);

/// A contact of an outreach visit; `referrals` are services referred to.
pub fn contact(uic: &str, referrals: &[&str]) -> Value {
    json!({
        "uic": uic,
        "age_band": "25_34",
        "condoms_male": 10,
        "condoms_female": 2,
        "lubricant": 5,
        "self_test_kits": 1,
        "counselled": true,
        "referrals": referrals,
    })
}

/// A complete outreach visit by the phone, with a fresh id.
pub fn outreach_visit(unit: Uuid, contacts: Vec<Value>) -> Value {
    let now = Utc::now();
    json!({
        "id": Uuid::new_v4(),
        "form_id": "outreach_visit",
        "form_version": 1,
        "started_at": (now - Duration::minutes(20)).to_rfc3339(),
        "completed_at": (now - Duration::minutes(5)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": {
            "visit_date": now.date_naive().to_string(),
            "place_type": "karaoke",
            "contacts": contacts,
        },
    })
}

/// Submits and asserts the status; answers the body.
pub async fn submit(app: &TestApp, who: &Actor, body: &Value, status: StatusCode) -> Value {
    let res = app
        .post("/api/v1/submissions", Some(who.token()), body)
        .await;
    let got = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(got, status, "submission answered {got}: {text}");
    serde_json::from_str(&text).expect("json body")
}

async fn count<E>(app: &TestApp, _e: E) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    E::find().count(&app.state.db).await.expect("count")
}

async fn outreach_visit_is_stored_with_its_records(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let unit = app.unit("006").await;
    let body = outreach_visit(
        unit,
        vec![
            contact("HOA-MAI-1990-F", &["hiv_test", "sti_exam"]),
            contact("LAN-HUNG-1985-M", &[]),
        ],
    );
    let stored = submit(&app, &peer, &body, StatusCode::CREATED).await;
    assert_eq!(stored["id"], body["id"]);
    assert_eq!(stored["status"], "submitted");
    assert_eq!(stored["revision"], 1);
    assert_eq!(stored["author_id"], json!(peer.user.id));
    assert_eq!(stored["org_unit_id"], json!(unit));
    assert_eq!(stored["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(stored["events"][0]["to_status"], "submitted");

    // Two referrals for the first contact, each with its own printed code.
    let issued = stored["referrals"].as_array().expect("referrals");
    assert_eq!(issued.len(), 2);
    let mut services: Vec<&str> = issued
        .iter()
        .filter_map(|r| r["service"].as_str())
        .collect();
    services.sort();
    assert_eq!(services, ["hiv_test", "sti_exam"]);
    for r in issued {
        let code = r["code"].as_str().expect("code");
        assert_eq!(code.len(), 9, "{code}");
        assert!(code
            .chars()
            .all(|c| c == '-' || "ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains(c)));
        assert_eq!(r["status"], "issued");
        assert_eq!(r["contact_index"], 0);
    }
    assert_ne!(issued[0]["code"], issued[1]["code"]);

    // The stored answers carry the keyed hash, not the code.
    let uic0 = stored["answers"]["contacts"][0]["uic"]
        .as_str()
        .expect("uic");
    assert_eq!(uic0.len(), 64);
    assert!(uic0.chars().all(|c| c.is_ascii_hexdigit()));

    let id: Uuid = serde_json::from_value(body["id"].clone()).expect("id");
    let rows = contacts::Entity::find()
        .filter(contacts::Column::SubmissionId.eq(id))
        .all(&app.state.db)
        .await
        .expect("contacts");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|c| c.is_new),
        "both clients are new to the program"
    );
    let dist = commodity_distributions::Entity::find()
        .filter(commodity_distributions::Column::SubmissionId.eq(id))
        .all(&app.state.db)
        .await
        .expect("distributions");
    let qty = |item: &str| dist.iter().find(|d| d.item == item).map(|d| d.quantity);
    assert_eq!(qty("male_condom"), Some(20));
    assert_eq!(qty("female_condom"), Some(4));
    assert_eq!(qty("lubricant"), Some(10));
    assert_eq!(qty("self_test_kit"), Some(2));
}

async fn identical_retry_answers_the_stored_record_and_writes_nothing(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let body = outreach_visit(
        app.unit("006").await,
        vec![contact("HOA-MAI-1990-F", &["prep"])],
    );
    let first = submit(&app, &peer, &body, StatusCode::CREATED).await;
    let before = (
        count(&app, submissions::Entity).await,
        count(&app, contacts::Entity).await,
        count(&app, referrals::Entity).await,
    );
    for _ in 0..4 {
        let again = submit(&app, &peer, &body, StatusCode::OK).await;
        assert_eq!(again, first, "a retry answers exactly the stored record");
    }
    // Keys in another order are the same submission.
    let mut reordered = serde_json::Map::new();
    let obj = body.as_object().expect("object");
    for k in obj.keys().rev() {
        reordered.insert(k.clone(), obj[k].clone());
    }
    submit(&app, &peer, &Value::Object(reordered), StatusCode::OK).await;
    let after = (
        count(&app, submissions::Entity).await,
        count(&app, contacts::Entity).await,
        count(&app, referrals::Entity).await,
    );
    assert_eq!(before, after);
    assert_eq!(after, (1, 1, 1));
}

async fn same_id_with_another_body_is_a_conflict(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let body = outreach_visit(app.unit("006").await, vec![contact("HOA-MAI-1990-F", &[])]);
    submit(&app, &peer, &body, StatusCode::CREATED).await;
    let mut changed = body.clone();
    changed["answers"]["contacts"][0]["condoms_male"] = json!(11);
    let res = app
        .post("/api/v1/submissions", Some(peer.token()), &changed)
        .await;
    let p = problem(res, StatusCode::CONFLICT).await;
    assert_eq!(
        faults(&p),
        vec![("id".to_string(), "id_conflict".to_string())]
    );

    // Another user reusing the id gets the same conflict, and learns nothing more.
    let other = app.actor(Role::PeerEducator, "006").await;
    let res = app
        .post("/api/v1/submissions", Some(other.token()), &body)
        .await;
    let p = problem(res, StatusCode::CONFLICT).await;
    assert!(p.get("answers").is_none());
    assert_eq!(count(&app, submissions::Entity).await, 1);
    let stored = submissions::Entity::find()
        .one(&app.state.db)
        .await
        .expect("q")
        .expect("row");
    assert_eq!(stored.answers["contacts"][0]["condoms_male"], 10);
}

async fn fifty_concurrent_copies_leave_one_record(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let body = outreach_visit(
        app.unit("006").await,
        (0..8)
            .map(|i| contact(&format!("CLIENT-{i:02}-1990-F"), &["hiv_test"]))
            .collect(),
    );
    let sends = (0..50).map(|_| app.post("/api/v1/submissions", Some(peer.token()), &body));
    let statuses: Vec<StatusCode> = join_all(sends).await.iter().map(|r| r.status()).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let replayed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((created, replayed), (1, 49), "{statuses:?}");
    assert_eq!(count(&app, submissions::Entity).await, 1);
    assert_eq!(count(&app, contacts::Entity).await, 8);
    assert_eq!(count(&app, referrals::Entity).await, 8);
    let new_clients = contacts::Entity::find()
        .filter(contacts::Column::IsNew.eq(true))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(new_clients, 8);
}

async fn unknown_form_or_version_is_422(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let mut body = outreach_visit(app.unit("006").await, vec![contact("HOA-MAI-1990-F", &[])]);
    body["form_version"] = json!(7);
    let p = problem(
        app.post("/api/v1/submissions", Some(peer.token()), &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![("form_version".into(), "unknown_form_version".into())]
    );
    body["form_id"] = json!("no_such_form");
    let p = problem(
        app.post("/api/v1/submissions", Some(peer.token()), &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&p), vec![("form_id".into(), "unknown_form".into())]);
    assert_eq!(count(&app, submissions::Entity).await, 0);
}

async fn a_role_the_form_does_not_allow_is_403(app: TestApp) {
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let body = outreach_visit(app.unit("006").await, vec![contact("HOA-MAI-1990-F", &[])]);
    problem(
        app.post("/api/v1/submissions", Some(volunteer.token()), &body)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let supervisor = app.actor(Role::Supervisor, "006").await;
    problem(
        app.post("/api/v1/submissions", Some(supervisor.token()), &body)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(count(&app, submissions::Entity).await, 0);
}

async fn answer_faults_come_all_at_once_with_their_paths(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let mut body = outreach_visit(
        app.unit("006").await,
        vec![
            contact("HOA-MAI-1990-F", &[]),
            contact("LAN-HUNG-1985-M", &[]),
            contact("X", &[]),
        ],
    );
    body["answers"]["contacts"][1]["condoms_male"] = json!(-3);
    body["answers"]["contacts"][0]["age_band"] = json!("ancient");
    body["answers"]["contacts"][0]["phone_number"] = json!("0912345678");
    body["answers"]["contacts"][1]
        .as_object_mut()
        .expect("obj")
        .remove("counselled");
    body["answers"]["contacts"][1]["referral_other"] = json!("a clinic");
    let p = problem(
        app.post("/api/v1/submissions", Some(peer.token()), &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let got = faults(&p);
    for expected in [
        ("answers.contacts[0].age_band", "not_a_choice"),
        ("answers.contacts[0].phone_number", "unknown_field"),
        ("answers.contacts[1].condoms_male", "out_of_range"),
        ("answers.contacts[1].counselled", "required"),
        ("answers.contacts[1].referral_other", "hidden_field_present"),
        ("answers.contacts[2].uic", "bad_uic"),
    ] {
        assert!(
            got.contains(&(expected.0.to_string(), expected.1.to_string())),
            "missing {expected:?} in {got:?}"
        );
    }
    assert_eq!(got.len(), 6, "{got:?}");
    assert_eq!(count(&app, submissions::Entity).await, 0);
    assert_eq!(count(&app, contacts::Entity).await, 0);

    // Envelope faults are reported beside answer faults.
    let mut body = outreach_visit(app.unit("006").await, vec![contact("HOA-MAI-1990-F", &[])]);
    body["completed_at"] = json!((Utc::now() - Duration::hours(3)).to_rfc3339());
    body["answers"]["place_type"] = json!("moon");
    let p = problem(
        app.post("/api/v1/submissions", Some(peer.token()), &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let got = faults(&p);
    assert!(
        got.contains(&("completed_at".into(), "before_started_at".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("answers.place_type".into(), "not_a_choice".into())),
        "{got:?}"
    );

    // The envelope itself: unknown field, missing field, wrong type.
    let mut body = outreach_visit(app.unit("006").await, vec![contact("HOA-MAI-1990-F", &[])]);
    body["gps"] = json!({"lat": 21.0, "lon": 105.8});
    let p = problem(
        app.post("/api/v1/submissions", Some(peer.token()), &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&p)[0].0, "gps");
}

async fn places_outside_the_authors_area_are_refused(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let hoan_kiem = app.unit("002").await;
    // A hotspot in Hoàn Kiếm, which a Đống Đa peer educator may not name.
    let res = app
        .post(
            "/api/v1/hotspots",
            Some(sup_hk.token()),
            &json!({"code": "HK-KAR-01", "type": "karaoke", "org_unit_id": hoan_kiem}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let body = outreach_visit(hoan_kiem, vec![contact("HOA-MAI-1990-F", &[])]);
    let p = problem(
        app.post("/api/v1/submissions", Some(peer.token()), &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![("org_unit_id".into(), "outside_your_area".into())]
    );

    let mut body = outreach_visit(app.unit("006").await, vec![contact("HOA-MAI-1990-F", &[])]);
    body.as_object_mut().expect("obj").remove("org_unit_id");
    body["hotspot_code"] = json!("HK-KAR-01");
    let p = problem(
        app.post("/api/v1/submissions", Some(peer.token()), &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![("hotspot_code".into(), "unknown_hotspot".into())]
    );

    body.as_object_mut().expect("obj").remove("hotspot_code");
    let p = problem(
        app.post("/api/v1/submissions", Some(peer.token()), &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&p), vec![("hotspot_code".into(), "required".into())]);
    assert_eq!(count(&app, submissions::Entity).await, 0);
}

async fn returning_clients_are_recognised_across_spellings(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let other = app.actor(Role::PeerEducator, "006").await;
    let unit = app.unit("006").await;
    let first = submit(
        &app,
        &peer,
        &outreach_visit(unit, vec![contact("Đào Hùng 1990 f", &[])]),
        StatusCode::CREATED,
    )
    .await;
    // The same person met by a colleague, the code typed differently.
    let second = submit(
        &app,
        &other,
        &outreach_visit(
            unit,
            vec![
                contact("DAO-HUNG-1990-F", &[]),
                contact("MAI-LAN-1999-F", &[]),
            ],
        ),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        first["answers"]["contacts"][0]["uic"],
        second["answers"]["contacts"][0]["uic"]
    );
    let id: Uuid = serde_json::from_value(second["id"].clone()).expect("id");
    let rows = contacts::Entity::find()
        .filter(contacts::Column::SubmissionId.eq(id))
        .all(&app.state.db)
        .await
        .expect("contacts");
    let by_position = |p: i32| rows.iter().find(|c| c.position == p).map(|c| c.is_new);
    assert_eq!(by_position(0), Some(false), "met before: returning");
    assert_eq!(by_position(1), Some(true), "never met: new");
}

/// Every byte the database holds, as text: PostgreSQL rows cast to text, or the SQLite
/// file and its write-ahead log read raw (freed pages included).
pub async fn dump_database(app: &TestApp) -> String {
    let db = &app.state.db;
    if app.state.config.database_url.is_postgres() {
        let mut out = String::new();
        for table in migrations::TABLES {
            let rows = db
                .query_all(Statement::from_string(
                    db.get_database_backend(),
                    format!("SELECT CAST(t AS TEXT) AS row FROM {table} AS t"),
                ))
                .await
                .expect("dump");
            for row in rows {
                let text: String = row.try_get("", "row").expect("row text");
                out.push_str(&text);
                out.push('\n');
            }
        }
        out
    } else {
        let url = app.state.config.database_url.expose().to_string();
        let path = url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .expect("path")
            .to_string();
        let mut out = String::new();
        for file in [path.clone(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                out.push_str(&String::from_utf8_lossy(&bytes).to_uppercase());
            }
        }
        assert!(out.len() > 10_000, "read the SQLite file at {path}");
        out
    }
}

async fn raw_uics_are_stored_nowhere(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let unit = app.unit("006").await;
    let raw = ["Nguyễn Hoa 1991 F", "TRAN-BINH-1988-M", "quynh-anh-2001-f"];
    let normalized = ["NGUYENHOA1991F", "TRANBINH1988M", "QUYNHANH2001F"];
    submit(
        &app,
        &peer,
        &outreach_visit(
            unit,
            raw.iter().map(|u| contact(u, &["hiv_test"])).collect(),
        ),
        StatusCode::CREATED,
    )
    .await;
    submit(
        &app,
        &volunteer,
        &support_visit(unit, raw[2]),
        StatusCode::CREATED,
    )
    .await;
    let dump = dump_database(&app).await;
    assert!(dump.len() > 1000);
    for code in raw.iter().chain(normalized.iter()) {
        assert!(
            !dump.to_uppercase().contains(&code.to_uppercase()),
            "the client code {code:?} is stored in the database"
        );
    }
}

/// A support visit by a volunteer.
pub fn support_visit(unit: Uuid, uic: &str) -> Value {
    let now = Utc::now();
    json!({
        "id": Uuid::new_v4(),
        "form_id": "support_visit",
        "form_version": 1,
        "started_at": (now - Duration::minutes(30)).to_rfc3339(),
        "completed_at": (now - Duration::minutes(1)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": {
            "visit_date": now.date_naive().to_string(),
            "person_uic": uic,
            "support": ["counselling", "loan"],
            "loan_amount_vnd": 5_000_000,
        },
    })
}

/// A handoff confirming a referral code.
pub fn referral_handoff(unit: Uuid, code: &str) -> Value {
    let now = Utc::now();
    json!({
        "id": Uuid::new_v4(),
        "form_id": "referral_handoff",
        "form_version": 1,
        "started_at": (now - Duration::minutes(10)).to_rfc3339(),
        "completed_at": (now - Duration::minutes(2)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": {
            "referral_code": code,
            "facility": "Phòng khám ngoại trú Đống Đa",
            "arrived_on": now.date_naive().to_string(),
            "service": "hiv_test",
            "outcome": "hiv_negative",
            "slip_photo": "a".repeat(64),
        },
    })
}

async fn handoff_needs_a_known_referral_code(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let unit = app.unit("006").await;
    let p = problem(
        app.post(
            "/api/v1/submissions",
            Some(peer.token()),
            &referral_handoff(unit, "ABCD-EFGH"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![("answers.referral_code".into(), "unknown_referral".into())]
    );

    let visit = submit(
        &app,
        &peer,
        &outreach_visit(unit, vec![contact("HOA-MAI-1990-F", &["hiv_test"])]),
        StatusCode::CREATED,
    )
    .await;
    let code = visit["referrals"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let handoff = submit(
        &app,
        &peer,
        &referral_handoff(unit, &code),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        handoff["photos"],
        json!([{"sha256": "a".repeat(64), "present": false}])
    );
    let id: Uuid = serde_json::from_value(handoff["id"].clone()).expect("id");
    let row = handoffs::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .expect("q")
        .expect("handoff row");
    assert_eq!(row.referral_code, code);
    assert_eq!(row.outcome, "hiv_negative");
}

async fn group_session_and_support_visit_extract_their_records(app: TestApp) {
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let unit = app.unit("006").await;
    let now = Utc::now();
    let session = json!({
        "id": Uuid::new_v4(),
        "form_id": "group_session",
        "form_version": 1,
        "started_at": (now - Duration::hours(2)).to_rfc3339(),
        "completed_at": (now - Duration::hours(1)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": {
            "session_date": now.date_naive().to_string(),
            "audience": "establishment_owners",
            "participants": 14,
            "topic": "condom_use",
        },
    });
    let stored = submit(&app, &volunteer, &session, StatusCode::CREATED).await;
    let id: Uuid = serde_json::from_value(stored["id"].clone()).expect("id");
    let row = group_sessions::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .expect("q")
        .expect("session row");
    assert_eq!(
        (row.audience.as_str(), row.participants),
        ("establishment_owners", 14)
    );

    let visit = support_visit(unit, "PHAM-TUAN-1980-M");
    let stored = submit(&app, &volunteer, &visit, StatusCode::CREATED).await;
    let id: Uuid = serde_json::from_value(stored["id"].clone()).expect("id");
    let mut actions = support_actions::Entity::find()
        .filter(support_actions::Column::SubmissionId.eq(id))
        .all(&app.state.db)
        .await
        .expect("actions");
    actions.sort_by(|a, b| a.action.cmp(&b.action));
    let got: Vec<(&str, Option<i64>)> = actions
        .iter()
        .map(|a| (a.action.as_str(), a.loan_amount_vnd))
        .collect();
    assert_eq!(got, vec![("counselling", None), ("loan", Some(5_000_000))]);
    assert_eq!(actions[0].person_uic_hash.len(), 64);

    // Without the loan, the amount is a hidden field and must be absent.
    let mut visit = support_visit(unit, "PHAM-TUAN-1980-M");
    visit["answers"]["support"] = json!(["job_referral"]);
    let p = problem(
        app.post("/api/v1/submissions", Some(volunteer.token()), &visit)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![(
            "answers.loan_amount_vnd".into(),
            "hidden_field_present".into()
        )]
    );
}

async fn concurrent_visits_meeting_the_same_people_all_succeed(app: TestApp) {
    // Sixteen phones sync at once, each having met the same four people in another
    // order: no visit may fail (a lock-order deadlock would answer 500).
    let peer = app.actor(Role::PeerEducator, "006").await;
    let unit = app.unit("006").await;
    let people = [
        "SAME-A-1990-F",
        "SAME-B-1991-F",
        "SAME-C-1992-F",
        "SAME-D-1993-F",
    ];
    for round in 0..4 {
        let bodies: Vec<Value> = (0..16)
            .map(|i| {
                let mut order: Vec<&str> = people.to_vec();
                order.rotate_left((i + round) % 4);
                if i % 2 == 1 {
                    order.reverse();
                }
                outreach_visit(unit, order.iter().map(|u| contact(u, &[])).collect())
            })
            .collect();
        let statuses: Vec<StatusCode> = join_all(
            bodies
                .iter()
                .map(|b| app.post("/api/v1/submissions", Some(peer.token()), b)),
        )
        .await
        .iter()
        .map(|r| r.status())
        .collect();
        assert!(
            statuses.iter().all(|s| *s == StatusCode::CREATED),
            "round {round}: {statuses:?}"
        );
    }
    assert_eq!(count(&app, submissions::Entity).await, 64);
    let new = contacts::Entity::find()
        .filter(contacts::Column::IsNew.eq(true))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(new, 4, "each person is new exactly once");
}

/// A body with thousands of faults answers the first hundred and counts the rest.
async fn faults_past_the_limit_are_counted(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let mut body = outreach_visit(app.unit("006").await, vec![contact("HOA-MAI-1990-F", &[])]);
    for i in 0..500 {
        body["answers"][format!("junk_{i}")] = json!(i);
    }
    let res = app
        .post("/api/v1/submissions", Some(peer.token()), &body)
        .await;
    let problem = crate::helpers::problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"].as_array().map(Vec::len), Some(100));
    assert_eq!(problem["errors_omitted"], 400);
    assert!(problem["errors"]
        .as_array()
        .is_some_and(|e| e.iter().all(|f| f["code"] == "unknown_field")));
}
