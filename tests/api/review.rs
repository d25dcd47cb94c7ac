//! The review workflow and the referral loop, through HTTP: reviewers' decisions and who
//! may make them, every illegal move, comments, photos before approval, bulk review, the
//! queue, the author's revision loop as the phone sees it through sync, admins reopening,
//! and referral codes from issue through handoff to completion or expiry.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate, Utc};
use futures::future::join_all;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use shared_models::Role;
use uuid::Uuid;

use crate::helpers::{faults, problem, Actor, TestApp};
use crate::intake::{contact, outreach_visit, referral_handoff, submit};
use crate::on_both;
use crate::photos::{jpeg, sha256_hex, visit_with_photos};

on_both!(
    decisions_move_the_state_and_record_the_event,
    reject_and_request_changes_need_a_comment,
    every_illegal_move_is_a_conflict_naming_the_state,
    admins_reopen_final_submissions_with_a_reason,
    reviewers_cannot_review_their_own_submission,
    concurrent_reviewers_move_a_submission_once,
    approval_waits_for_every_named_photo,
    bulk_review_answers_per_id_and_keeps_what_succeeded,
    the_queue_lists_what_waits_in_scope_oldest_first,
    the_revision_loop_reaches_the_phone_and_back,
    referrals_are_seen_within_scope,
    an_approved_handoff_completes_its_referral_once,
    referrals_expire_once_after_the_window,
);

// --- helpers -----------------------------------------------------------------

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn json_ok(app: &TestApp, path: &str, token: &str) -> Value {
    let res = app.get(path, token).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    serde_json::from_str(&text).expect("json")
}

/// Asserts the status of a response and answers its JSON body.
async fn expect_json(res: Response, status: StatusCode, what: &str) -> Value {
    let got = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(got, status, "{what} answered {got}: {text}");
    serde_json::from_str(&text).expect("json body")
}

async fn review(
    app: &TestApp,
    who: &Actor,
    id: &str,
    decision: &str,
    comment: Option<&str>,
) -> Response {
    let mut body = json!({ "decision": decision });
    if let Some(c) = comment {
        body["comment"] = json!(c);
    }
    app.post(
        &format!("/api/v1/submissions/{id}/review"),
        Some(who.token()),
        &body,
    )
    .await
}

/// A decision that must succeed; answers the submission.
async fn reviewed(
    app: &TestApp,
    who: &Actor,
    id: &str,
    decision: &str,
    comment: Option<&str>,
) -> Value {
    expect_json(
        review(app, who, id, decision, comment).await,
        StatusCode::OK,
        &format!("{decision} of {id}"),
    )
    .await
}

async fn reopen(app: &TestApp, who: &Actor, id: &str, comment: &str) -> Response {
    app.post(
        &format!("/api/v1/submissions/{id}/reopen"),
        Some(who.token()),
        &json!({ "comment": comment }),
    )
    .await
}

async fn revise(app: &TestApp, who: &Actor, id: &str, body: &Value) -> Response {
    app.send(
        Method::PUT,
        &format!("/api/v1/submissions/{id}"),
        Some(who.token()),
        Some(body),
    )
    .await
}

/// The submission as the admin reads it.
async fn stored(app: &TestApp, admin: &Actor, id: &str) -> Value {
    json_ok(app, &format!("/api/v1/submissions/{id}"), admin.token()).await
}

async fn status_now(app: &TestApp, admin: &Actor, id: &str) -> String {
    stored(app, admin, id).await["status"]
        .as_str()
        .expect("status")
        .to_string()
}

/// Asserts a 409 whose errors say the move is illegal from `current`.
async fn assert_illegal(res: Response, current: &str, what: &str) {
    assert_eq!(res.status(), StatusCode::CONFLICT, "{what}");
    let p = problem(res, StatusCode::CONFLICT).await;
    let errors = p["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["field"] == "status"
            && e["code"] == "illegal_transition"
            && e["message"].as_str().is_some_and(|m| m.contains(current))),
        "{what}: expected an illegal_transition naming `{current}`: {p}"
    );
}

async fn sync(app: &TestApp, who: &Actor, since: Option<&str>) -> Value {
    let path = match since {
        Some(c) => format!("/api/v1/sync?since={c}"),
        None => "/api/v1/sync".to_string(),
    };
    json_ok(app, &path, who.token()).await
}

fn cursor_of(sync: &Value) -> String {
    sync["cursor"].as_str().expect("cursor").to_string()
}

/// The entry for `id` in a sync answer's `submissions`.
fn synced_submission(sync: &Value, id: &str) -> Option<Value> {
    sync["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
}

/// The entry for `code` in a sync answer's `referrals`.
fn synced_referral(sync: &Value, code: &str) -> Option<Value> {
    sync["referrals"]
        .as_array()
        .expect("referrals")
        .iter()
        .find(|r| r["code"] == code)
        .cloned()
}

fn item_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id_of)
        .collect()
}

fn codes(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["code"].as_str().expect("code").to_string())
        .collect()
}

async fn put_photo(app: &TestApp, who: &Actor, id: &str, bytes: Vec<u8>) -> StatusCode {
    let sha = sha256_hex(&bytes);
    app.client
        .put(app.url(&format!("/api/v1/submissions/{id}/photos/{sha}")))
        .bearer_auth(who.token())
        .header("content-type", "image/jpeg")
        .body(bytes)
        .send()
        .await
        .expect("put photo")
        .status()
}

/// An outreach visit on `day` with one contact referred to an HIV test.
fn referring_visit(unit: Uuid, uic: &str, day: NaiveDate) -> Value {
    let mut body = outreach_visit(unit, vec![contact(uic, &["hiv_test"])]);
    body["answers"]["visit_date"] = json!(day.to_string());
    body
}

/// A handoff of `code` whose slip photo is `slip` (a real JPEG), the client having
/// arrived on `arrived_on` with this `outcome`.
fn handoff(unit: Uuid, code: &str, slip: &[u8], arrived_on: NaiveDate, outcome: &str) -> Value {
    let mut body = referral_handoff(unit, code);
    body["answers"]["slip_photo"] = json!(sha256_hex(slip));
    body["answers"]["arrived_on"] = json!(arrived_on.to_string());
    body["answers"]["outcome"] = json!(outcome);
    body
}

async fn referral(app: &TestApp, who: &Actor, code: &str) -> Value {
    json_ok(app, &format!("/api/v1/referrals/{code}"), who.token()).await
}

// --- decisions ---------------------------------------------------------------

async fn decisions_move_the_state_and_record_the_event(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let sup_city = app.actor(Role::Supervisor, "01").await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let body = outreach_visit(dd, vec![contact(&format!("DECI-{i}-1990-F"), &[])]);
        ids.push(id_of(
            &submit(&app, &peer, &body, StatusCode::CREATED).await,
        ));
    }

    // Field roles do not review; another district does not see it (404, not 403).
    for who in [&peer, &volunteer] {
        problem(
            review(&app, who, &ids[0], "approve", None).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    problem(
        review(&app, &sup_hk, &ids[0], "approve", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        review(&app, &sup_hk, &ids[1], "reject", Some("không rõ")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        review(&app, &sup, &Uuid::new_v4().to_string(), "approve", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(status_now(&app, &admin, &ids[0]).await, "submitted");
    assert_eq!(
        stored(&app, &admin, &ids[0]).await["events"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "refused reviews leave no event"
    );

    // Approve, no comment needed.
    let out = reviewed(&app, &sup, &ids[0], "approve", None).await;
    assert_eq!(out["id"], ids[0].as_str());
    assert_eq!(out["status"], "approved");
    assert_eq!(out["revision"], 1);
    let events = out["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{out}");
    assert_eq!(events[0]["from_status"], Value::Null);
    assert_eq!(events[0]["to_status"], "submitted");
    assert_eq!(events[0]["actor_id"], json!(peer.user.id));
    assert_eq!(events[1]["actor_id"], json!(sup.user.id));
    assert_eq!(events[1]["from_status"], "submitted");
    assert_eq!(events[1]["to_status"], "approved");
    assert_eq!(events[1]["comment"], Value::Null);
    assert_eq!(events[1]["revision"], 1);
    assert!(events[1]["at"].as_str().is_some_and(|t| !t.is_empty()));

    // Reject, with the reason kept for the author.
    let out = reviewed(
        &app,
        &sup,
        &ids[1],
        "reject",
        Some("Ảnh mờ, không đọc được"),
    )
    .await;
    assert_eq!(out["status"], "rejected");
    let last = out["events"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("event");
    assert_eq!(
        (
            last["from_status"].clone(),
            last["to_status"].clone(),
            last["comment"].clone(),
            last["actor_id"].clone()
        ),
        (
            json!("submitted"),
            json!("rejected"),
            json!("Ảnh mờ, không đọc được"),
            json!(sup.user.id)
        )
    );
    let seen_by_author = json_ok(
        &app,
        &format!("/api/v1/submissions/{}", ids[1]),
        peer.token(),
    )
    .await;
    assert_eq!(seen_by_author["status"], "rejected");
    assert_eq!(seen_by_author["events"], out["events"]);

    // An admin reviews anywhere; a city-level supervisor too.
    let out = reviewed(
        &app,
        &admin,
        &ids[2],
        "request_changes",
        Some("Thiếu nhóm tuổi"),
    )
    .await;
    assert_eq!(out["status"], "changes_requested");
    let last = out["events"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("event");
    assert_eq!(last["actor_id"], json!(admin.user.id));
    assert_eq!(last["to_status"], "changes_requested");
    assert_eq!(last["comment"], "Thiếu nhóm tuổi");
    let out = reviewed(&app, &sup_city, &ids[3], "approve", Some("tốt")).await;
    assert_eq!(out["status"], "approved");
    assert_eq!(out["events"][1]["comment"], "tốt");

    // What the answers said, the stored states.
    for (id, want) in ids
        .iter()
        .zip(["approved", "rejected", "changes_requested", "approved"])
    {
        assert_eq!(status_now(&app, &admin, id).await, want, "{id}");
    }

    // Every review is in the audit log, under its reviewer.
    let log = json_ok(
        &app,
        &format!(
            "/api/v1/audit?action=submission.review&actor_id={}",
            sup.user.id
        ),
        admin.token(),
    )
    .await;
    let mut targets: Vec<String> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["target_id"].as_str().unwrap_or("").to_string())
        .collect();
    targets.sort();
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(targets, want, "{log}");
}

async fn reject_and_request_changes_need_a_comment(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let admin = app.admin().await;
    let id = id_of(
        &submit(
            &app,
            &peer,
            &outreach_visit(dd, vec![contact("COMM-1990-F", &[])]),
            StatusCode::CREATED,
        )
        .await,
    );
    for decision in ["reject", "request_changes"] {
        for comment in [None, Some(""), Some("   \n\t")] {
            let p = problem(
                review(&app, &sup, &id, decision, comment).await,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
            assert_eq!(
                faults(&p),
                vec![("comment".to_string(), "required".to_string())],
                "{decision} with {comment:?}"
            );
        }
    }
    let now = stored(&app, &admin, &id).await;
    assert_eq!(now["status"], "submitted");
    assert_eq!(now["events"].as_array().map(Vec::len), Some(1));

    // Approval needs no comment.
    let out = reviewed(&app, &sup, &id, "approve", None).await;
    assert_eq!(out["status"], "approved");
}

async fn every_illegal_move_is_a_conflict_naming_the_state(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let admin = app.admin().await;
    let mut bodies = Vec::new();
    for i in 0..4 {
        let body = outreach_visit(dd, vec![contact(&format!("ILLE-{i}-1990-F"), &[])]);
        submit(&app, &peer, &body, StatusCode::CREATED).await;
        bodies.push(body);
    }
    let ids: Vec<String> = bodies.iter().map(id_of).collect();
    let (approved, rejected, changes, submitted) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    reviewed(&app, &sup, approved, "approve", None).await;
    reviewed(&app, &sup, rejected, "reject", Some("trùng lặp")).await;
    reviewed(&app, &sup, changes, "request_changes", Some("sửa số lượng")).await;

    // Review of a submission that is not `submitted`, whatever the decision.
    for (id, state) in [
        (approved, "approved"),
        (rejected, "rejected"),
        (changes, "changes_requested"),
    ] {
        for decision in ["approve", "reject", "request_changes"] {
            assert_illegal(
                review(&app, &sup, id, decision, Some("lần nữa")).await,
                state,
                &format!("{decision} of a {state} submission"),
            )
            .await;
        }
    }

    // A new revision while changes were not requested.
    let corrected = |body: &Value| {
        let mut b = body.clone();
        b["answers"]["contacts"][0]["condoms_male"] = json!(3);
        b
    };
    for (i, state) in [(3, "submitted"), (0, "approved"), (1, "rejected")] {
        assert_illegal(
            revise(&app, &peer, &ids[i], &corrected(&bodies[i])).await,
            state,
            &format!("a revision of a {state} submission"),
        )
        .await;
    }

    // Reopening what is not final.
    for (id, state) in [(submitted, "submitted"), (changes, "changes_requested")] {
        assert_illegal(
            reopen(&app, &admin, id, "mở lại").await,
            state,
            &format!("reopening a {state} submission"),
        )
        .await;
    }
    // Only admins reopen.
    for who in [&sup, &peer] {
        problem(
            reopen(&app, who, approved, "mở lại").await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            reopen(&app, who, rejected, "mở lại").await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }

    // Nothing moved and nothing was recorded.
    for (id, state, events) in [
        (approved, "approved", 2),
        (rejected, "rejected", 2),
        (changes, "changes_requested", 2),
        (submitted, "submitted", 1),
    ] {
        let now = stored(&app, &admin, id).await;
        assert_eq!(now["status"], state, "{id}");
        assert_eq!(now["revision"], 1, "{id}");
        assert_eq!(
            now["events"].as_array().map(Vec::len),
            Some(events),
            "{id}: {now}"
        );
        assert_eq!(
            now["answers"]["contacts"][0]["condoms_male"], 10,
            "the refused revision changed nothing"
        );
    }
    let revisions = json_ok(
        &app,
        &format!("/api/v1/submissions/{submitted}/revisions"),
        admin.token(),
    )
    .await;
    assert_eq!(revisions, json!([]));
}

async fn admins_reopen_final_submissions_with_a_reason(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..2 {
        let body = outreach_visit(dd, vec![contact(&format!("REOP-{i}-1990-F"), &[])]);
        ids.push(id_of(
            &submit(&app, &peer, &body, StatusCode::CREATED).await,
        ));
    }
    reviewed(&app, &sup, &ids[0], "approve", None).await;
    reviewed(&app, &sup, &ids[1], "reject", Some("sai địa bàn")).await;

    // A reason is required.
    let p = problem(
        reopen(&app, &admin, &ids[0], "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&p)[0].0, "comment", "{p}");
    let p = problem(
        reopen(&app, &admin, &ids[0], "   ").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![("comment".to_string(), "required".to_string())]
    );
    assert_eq!(status_now(&app, &admin, &ids[0]).await, "approved");
    problem(
        reopen(&app, &admin, &Uuid::new_v4().to_string(), "mở lại").await,
        StatusCode::NOT_FOUND,
    )
    .await;

    for (id, from) in [(&ids[0], "approved"), (&ids[1], "rejected")] {
        let out = expect_json(
            reopen(&app, &admin, id, "Kiểm tra lại theo yêu cầu của thành phố").await,
            StatusCode::OK,
            "reopen",
        )
        .await;
        assert_eq!(out["status"], "submitted");
        let events = out["events"].as_array().expect("events");
        assert_eq!(events.len(), 3, "history is kept, not rewritten: {out}");
        assert_eq!(events[1]["to_status"], from);
        let last = &events[2];
        assert_eq!(last["actor_id"], json!(admin.user.id));
        assert_eq!(last["from_status"], from);
        assert_eq!(last["to_status"], "submitted");
        assert_eq!(last["comment"], "Kiểm tra lại theo yêu cầu của thành phố");
    }
    // Back in review: it can be decided again.
    let out = reviewed(&app, &sup, &ids[0], "reject", Some("không đủ minh chứng")).await;
    assert_eq!(out["status"], "rejected");
    assert_eq!(out["events"].as_array().map(Vec::len), Some(4));
    let out = reviewed(&app, &sup, &ids[1], "approve", None).await;
    assert_eq!(out["status"], "approved");
}

async fn reviewers_cannot_review_their_own_submission(app: TestApp) {
    let dd = app.unit("006").await;
    let admin = app.admin().await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let colleague = app.actor(Role::Supervisor, "006").await;

    // A version of the group session form that supervisors may submit too.
    let mut v2 =
        json_ok(&app, "/api/v1/forms/group_session", admin.token()).await["definition"].clone();
    v2["version"] = json!(2);
    v2["roles"] = json!(["peer_educator", "volunteer", "supervisor"]);
    expect_json(
        app.post("/api/v1/forms", Some(admin.token()), &v2).await,
        StatusCode::CREATED,
        "publishing group_session v2",
    )
    .await;
    let now = Utc::now();
    let session = json!({
        "id": Uuid::new_v4(),
        "form_id": "group_session",
        "form_version": 2,
        "started_at": (now - Duration::hours(2)).to_rfc3339(),
        "completed_at": (now - Duration::hours(1)).to_rfc3339(),
        "org_unit_id": dd,
        "answers": {
            "session_date": now.date_naive().to_string(),
            "audience": "community",
            "participants": 12,
            "topic": "hiv_prevention",
        },
    });
    let own = submit(&app, &sup, &session, StatusCode::CREATED).await;
    assert_eq!(own["author_id"], json!(sup.user.id));
    let id = id_of(&own);

    for (decision, comment) in [
        ("approve", None),
        ("reject", Some("tự từ chối")),
        ("request_changes", Some("tự sửa")),
    ] {
        problem(
            review(&app, &sup, &id, decision, comment).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let bulk = expect_json(
        app.post(
            "/api/v1/reviews",
            Some(sup.token()),
            &json!({ "ids": [id], "decision": "approve" }),
        )
        .await,
        StatusCode::OK,
        "bulk self-review",
    )
    .await;
    assert_eq!(bulk["items"][0]["status"], 403, "{bulk}");
    assert_eq!(bulk["succeeded"], 0);
    let still = stored(&app, &admin, &id).await;
    assert_eq!(still["status"], "submitted");
    assert_eq!(still["events"].as_array().map(Vec::len), Some(1));

    // Another supervisor of the same area may.
    let out = reviewed(&app, &colleague, &id, "approve", None).await;
    assert_eq!(out["status"], "approved");
    assert_eq!(out["events"][1]["actor_id"], json!(colleague.user.id));
}

async fn concurrent_reviewers_move_a_submission_once(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let sup_a = app.actor(Role::Supervisor, "006").await;
    let sup_b = app.actor(Role::Supervisor, "006").await;
    let admin = app.admin().await;
    let id = id_of(
        &submit(
            &app,
            &peer,
            &outreach_visit(dd, vec![contact("RACE-1990-F", &["hiv_test"])]),
            StatusCode::CREATED,
        )
        .await,
    );
    let reviewers = [&sup_a, &sup_b, &sup_a, &sup_b, &sup_a, &sup_b];
    let answers = join_all(reviewers.iter().enumerate().map(|(i, who)| {
        let decision = if i % 2 == 0 { "approve" } else { "reject" };
        review(&app, who, &id, decision, Some("đồng thời"))
    }))
    .await;
    let statuses: Vec<StatusCode> = answers.iter().map(Response::status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let now = stored(&app, &admin, &id).await;
    let events = now["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "exactly one decision recorded: {now}");
    assert_eq!(events[1]["to_status"], now["status"]);
    for res in answers {
        if res.status() == StatusCode::CONFLICT {
            let state = now["status"].as_str().expect("status").to_string();
            assert_illegal(res, &state, "the losing reviewer").await;
        }
    }
}

async fn approval_waits_for_every_named_photo(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let admin = app.admin().await;
    let (one, two) = (jpeg(41, 24, 16), jpeg(42, 24, 16));
    let (sha_one, sha_two) = (sha256_hex(&one), sha256_hex(&two));
    let id = id_of(
        &submit(
            &app,
            &peer,
            &visit_with_photos(dd, &[&sha_one, &sha_two]),
            StatusCode::CREATED,
        )
        .await,
    );

    let missing = |p: &Value| -> BTreeSet<(String, String, String)> {
        p["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| {
                (
                    e["field"].as_str().unwrap_or("").to_string(),
                    e["code"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let p = problem(
        review(&app, &sup, &id, "approve", None).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        missing(&p),
        BTreeSet::from([
            ("photos".into(), "photo_missing".into(), sha_one.clone()),
            ("photos".into(), "photo_missing".into(), sha_two.clone()),
        ]),
        "{p}"
    );

    assert_eq!(put_photo(&app, &peer, &id, one).await, StatusCode::CREATED);
    let p = problem(
        review(&app, &sup, &id, "approve", None).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        missing(&p),
        BTreeSet::from([("photos".into(), "photo_missing".into(), sha_two.clone())]),
        "{p}"
    );
    let now = stored(&app, &admin, &id).await;
    assert_eq!(now["status"], "submitted");
    assert_eq!(now["events"].as_array().map(Vec::len), Some(1));

    assert_eq!(put_photo(&app, &peer, &id, two).await, StatusCode::CREATED);
    let out = reviewed(&app, &sup, &id, "approve", None).await;
    assert_eq!(out["status"], "approved");
    assert_eq!(
        out["photos"],
        json!([{"sha256": sha_one, "present": true}, {"sha256": sha_two, "present": true}])
    );
}

async fn bulk_review_answers_per_id_and_keeps_what_succeeded(app: TestApp) {
    let dd = app.unit("006").await;
    let hk = app.unit("002").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let peer_hk = app.actor(Role::PeerEducator, "002").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let admin = app.admin().await;
    let good = id_of(
        &submit(
            &app,
            &peer,
            &outreach_visit(dd, vec![contact("BULK-1990-F", &[])]),
            StatusCode::CREATED,
        )
        .await,
    );
    let done = id_of(
        &submit(
            &app,
            &peer,
            &outreach_visit(dd, vec![contact("BULK-1991-F", &[])]),
            StatusCode::CREATED,
        )
        .await,
    );
    let elsewhere = id_of(
        &submit(
            &app,
            &peer_hk,
            &outreach_visit(hk, vec![contact("BULK-1992-F", &[])]),
            StatusCode::CREATED,
        )
        .await,
    );
    let unknown = Uuid::new_v4().to_string();
    reviewed(&app, &sup, &done, "approve", None).await;

    let body = json!({ "ids": [good, elsewhere, done, unknown], "decision": "approve" });
    problem(
        app.post("/api/v1/reviews", Some(peer.token()), &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let out = expect_json(
        app.post("/api/v1/reviews", Some(sup.token()), &body).await,
        StatusCode::OK,
        "bulk review",
    )
    .await;
    let items = out["items"].as_array().expect("items");
    assert_eq!(items.len(), 4, "{out}");
    let got: Vec<(Value, Value, Value)> = items
        .iter()
        .map(|i| {
            (
                i["id"].clone(),
                i["status"].clone(),
                i["review_status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (json!(good), json!(200), json!("approved")),
            (json!(elsewhere), json!(404), Value::Null),
            (json!(done), json!(409), json!("approved")),
            (json!(unknown), json!(404), Value::Null),
        ],
        "{out}"
    );
    assert_eq!(items[0]["problem"], Value::Null);
    for (i, status) in [(1, 404), (2, 409), (3, 404)] {
        assert_eq!(items[i]["problem"]["status"], status, "{out}");
        assert!(
            items[i]["problem"]["title"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{out}"
        );
    }
    assert!(
        items[2]["problem"]["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["field"] == "status"
                && e["code"] == "illegal_transition"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("approved"))),
        "{out}"
    );
    assert_eq!(
        (out["succeeded"].clone(), out["failed"].clone()),
        (json!(1), json!(3))
    );

    // The good one stays approved, by this reviewer; the others are as they were.
    let now = stored(&app, &admin, &good).await;
    assert_eq!(now["status"], "approved");
    assert_eq!(now["events"][1]["actor_id"], json!(sup.user.id));
    assert_eq!(now["events"][1]["to_status"], "approved");
    assert_eq!(status_now(&app, &admin, &elsewhere).await, "submitted");
    assert_eq!(
        stored(&app, &admin, &done).await["events"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // The comment rule holds per id too.
    let third = id_of(
        &submit(
            &app,
            &peer,
            &outreach_visit(dd, vec![contact("BULK-1993-F", &[])]),
            StatusCode::CREATED,
        )
        .await,
    );
    let out = expect_json(
        app.post(
            "/api/v1/reviews",
            Some(sup.token()),
            &json!({ "ids": [third], "decision": "reject" }),
        )
        .await,
        StatusCode::OK,
        "bulk reject without comment",
    )
    .await;
    assert_eq!(out["items"][0]["status"], 422, "{out}");
    assert_eq!(out["items"][0]["review_status"], "submitted", "{out}");
    assert_eq!(status_now(&app, &admin, &third).await, "submitted");
}

async fn the_queue_lists_what_waits_in_scope_oldest_first(app: TestApp) {
    let dd = app.unit("006").await;
    let hk = app.unit("002").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let peer_hk = app.actor(Role::PeerEducator, "002").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let admin = app.admin().await;
    let mut dd_ids = Vec::new();
    let mut hk_id = String::new();
    for i in 0..4 {
        let body = outreach_visit(dd, vec![contact(&format!("QUEU-{i}-1990-F"), &[])]);
        dd_ids.push(id_of(
            &submit(&app, &peer, &body, StatusCode::CREATED).await,
        ));
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        if i == 1 {
            let body = outreach_visit(hk, vec![contact("QUEU-HK-1990-F", &[])]);
            hk_id = id_of(&submit(&app, &peer_hk, &body, StatusCode::CREATED).await);
            tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        }
    }
    // Decided ones are not waiting.
    reviewed(&app, &sup, &dd_ids[3], "request_changes", Some("sửa")).await;

    // Pages of two, oldest first, nothing repeated, nothing lost.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/reviews/queue?limit=2&cursor={c}"),
            None => "/api/v1/reviews/queue?limit=2".to_string(),
        };
        let page = json_ok(&app, &path, sup.token()).await;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2, "{page}");
        assert!(items.iter().all(|s| s["status"] == "submitted"), "{page}");
        seen.extend(item_ids(&page));
        pages += 1;
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() || pages > 5 {
            break;
        }
    }
    assert_eq!(
        seen,
        dd_ids[..3].to_vec(),
        "Đống Đa's waiting submissions, oldest first"
    );
    assert_eq!(pages, 2);

    // Approved ones leave it; another district's never appear in it.
    reviewed(&app, &sup, &dd_ids[0], "approve", None).await;
    let queue = json_ok(&app, "/api/v1/reviews/queue", sup.token()).await;
    assert_eq!(item_ids(&queue), dd_ids[1..3].to_vec());
    assert_eq!(queue["next_cursor"], Value::Null);
    let queue = json_ok(&app, "/api/v1/reviews/queue", sup_hk.token()).await;
    assert_eq!(item_ids(&queue), vec![hk_id.clone()]);
    let queue = json_ok(&app, "/api/v1/reviews/queue", admin.token()).await;
    assert_eq!(
        item_ids(&queue),
        vec![dd_ids[1].clone(), hk_id.clone(), dd_ids[2].clone()]
    );

    problem(
        app.get("/api/v1/reviews/queue", peer.token()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let p = problem(
        app.get("/api/v1/reviews/queue?cursor=not-a-cursor", sup.token())
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&p)[0].0, "cursor");
}

async fn the_revision_loop_reaches_the_phone_and_back(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let other = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let first = outreach_visit(dd, vec![contact("REVI-1990-F", &["hiv_test"])]);
    let sent = submit(&app, &peer, &first, StatusCode::CREATED).await;
    let id = id_of(&sent);
    let code = sent["referrals"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let before = cursor_of(&sync(&app, &peer, None).await);

    let comment = "Thiếu khách hàng thứ hai, bổ sung giúp";
    let out = reviewed(&app, &sup, &id, "request_changes", Some(comment)).await;
    assert_eq!(out["status"], "changes_requested");

    // The phone learns of it, with the comment.
    let changes = sync(&app, &peer, Some(&before)).await;
    let mine = synced_submission(&changes, &id).expect("the submission in sync");
    assert_eq!(mine["status"], "changes_requested", "{changes}");
    assert_eq!(mine["revision"], 1);
    assert_eq!(mine["last_review"]["comment"], comment, "{changes}");
    assert_eq!(mine["last_review"]["to_status"], "changes_requested");
    assert_eq!(mine["last_review"]["actor_id"], json!(sup.user.id));
    let after_review = cursor_of(&changes);

    // Wrong senders of a revision.
    let mut corrected = first.clone();
    corrected["answers"]["contacts"] = json!([
        contact("REVI-1990-F", &["hiv_test"]),
        contact("REVI-1985-M", &[]),
    ]);
    problem(
        revise(&app, &other, &id, &corrected).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let mut wrong_id = corrected.clone();
    wrong_id["id"] = json!(Uuid::new_v4());
    let p = problem(
        revise(&app, &peer, &id, &wrong_id).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&p)[0].0, "id", "{p}");

    // The author's corrected revision goes back to review.
    let revised = expect_json(
        revise(&app, &peer, &id, &corrected).await,
        StatusCode::OK,
        "the revision",
    )
    .await;
    assert_eq!(revised["id"], id.as_str());
    assert_eq!(revised["status"], "submitted");
    assert_eq!(revised["revision"], 2);
    assert_eq!(
        revised["answers"]["contacts"].as_array().map(Vec::len),
        Some(2)
    );
    assert_ne!(revised["answers"], sent["answers"]);
    assert_eq!(
        revised["answers"]["contacts"][0]["uic"],
        sent["answers"]["contacts"][0]["uic"]
    );
    assert_eq!(
        revised["referrals"][0]["code"], code,
        "the printed code stays with its contact and service"
    );
    let last = revised["events"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("event");
    assert_eq!(
        (
            last["from_status"].clone(),
            last["to_status"].clone(),
            last["revision"].clone(),
            last["actor_id"].clone()
        ),
        (
            json!("changes_requested"),
            json!("submitted"),
            json!(2),
            json!(peer.user.id)
        )
    );
    // The phone's retry of the same revision is answered as stored.
    let again = expect_json(
        revise(&app, &peer, &id, &corrected).await,
        StatusCode::OK,
        "the retried revision",
    )
    .await;
    assert_eq!(again["revision"], 2);
    assert_eq!(again["status"], "submitted");
    assert_eq!(again["answers"], revised["answers"]);
    assert_eq!(again["events"], revised["events"]);
    // Another change now is not a retry: changes are not requested any more.
    let mut third = corrected.clone();
    third["answers"]["place_type"] = json!("street");
    assert_illegal(
        revise(&app, &peer, &id, &third).await,
        "submitted",
        "a second, different revision",
    )
    .await;

    // The earlier revision is kept as it was.
    let revisions = json_ok(
        &app,
        &format!("/api/v1/submissions/{id}/revisions"),
        sup.token(),
    )
    .await;
    let revisions = revisions.as_array().expect("revisions");
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(revisions[0]["revision"], 1);
    assert_eq!(revisions[0]["answers"], sent["answers"]);
    assert_eq!(
        revisions[0]["answers"]["contacts"].as_array().map(Vec::len),
        Some(1)
    );
    problem(
        app.get(
            &format!("/api/v1/submissions/{id}/revisions"),
            other.token(),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Approved at last, and the phone hears of it.
    let out = reviewed(&app, &sup, &id, "approve", None).await;
    assert_eq!(
        (out["status"].clone(), out["revision"].clone()),
        (json!("approved"), json!(2))
    );
    let changes = sync(&app, &peer, Some(&after_review)).await;
    let mine = synced_submission(&changes, &id).expect("the submission in sync");
    assert_eq!(mine["status"], "approved", "{changes}");
    assert_eq!(mine["revision"], 2);
    assert_eq!(mine["last_review"]["to_status"], "approved", "{changes}");
    assert_eq!(mine["last_review"]["revision"], 2);
}

// --- referrals ---------------------------------------------------------------

async fn referrals_are_seen_within_scope(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let colleague = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let admin = app.admin().await;
    let visit = submit(
        &app,
        &peer,
        &outreach_visit(dd, vec![contact("REFS-1990-F", &["hiv_test"])]),
        StatusCode::CREATED,
    )
    .await;
    let issued = visit["referrals"].as_array().expect("referrals");
    assert_eq!(issued.len(), 1, "{visit}");
    assert_eq!(issued[0]["service"], "hiv_test");
    assert_eq!(issued[0]["status"], "issued");
    assert_eq!(issued[0]["submission_id"], visit["id"]);
    let code = issued[0]["code"].as_str().expect("code").to_string();

    // A referral issued in Hoàn Kiếm, which Đống Đa does not see.
    let peer_hk = app.actor(Role::PeerEducator, "002").await;
    let hk_visit = submit(
        &app,
        &peer_hk,
        &outreach_visit(
            app.unit("002").await,
            vec![contact("REFS-HK-1990-F", &["prep"])],
        ),
        StatusCode::CREATED,
    )
    .await;
    let hk_code = hk_visit["referrals"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();

    for who in [&peer, &sup] {
        let page = json_ok(&app, "/api/v1/referrals", who.token()).await;
        assert_eq!(codes(&page), vec![code.clone()], "{}", who.user.username);
    }
    let mut all = codes(&json_ok(&app, "/api/v1/referrals", admin.token()).await);
    all.sort();
    let mut want = vec![code.clone(), hk_code.clone()];
    want.sort();
    assert_eq!(all, want);
    for who in [&peer, &sup, &admin] {
        let one = referral(&app, who, &code).await;
        assert_eq!(one["code"], code.as_str());
        assert_eq!(one["status"], "issued");
        assert_eq!(one["service"], "hiv_test");
        assert_eq!(one["contact_index"], 0);
        assert_eq!(one["submission_id"], visit["id"]);
        assert_eq!(one["issued_on"], visit["occurred_on"]);
        assert_eq!(one["outcome"], Value::Null);
        assert_eq!(one["completed_on"], Value::Null);
    }
    for who in [&colleague, &sup_hk] {
        let page = json_ok(&app, "/api/v1/referrals", who.token()).await;
        assert!(
            !codes(&page).contains(&code),
            "{} sees a referral outside their scope",
            who.user.username
        );
        problem(
            app.get(&format!("/api/v1/referrals/{code}"), who.token())
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    assert_eq!(
        codes(&json_ok(&app, "/api/v1/referrals", sup_hk.token()).await),
        vec![hk_code.clone()]
    );
    problem(
        app.get(&format!("/api/v1/referrals/{hk_code}"), sup.token())
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/api/v1/referrals/ZZZZ-ZZZZ", admin.token()).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // A handoff must name a code that was issued.
    let slip = jpeg(50, 16, 16);
    let p = problem(
        app.post(
            "/api/v1/submissions",
            Some(peer.token()),
            &handoff(
                dd,
                "ZZZZ-ZZZZ",
                &slip,
                Utc::now().date_naive(),
                "hiv_negative",
            ),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![(
            "answers.referral_code".to_string(),
            "unknown_referral".to_string()
        )]
    );
}

async fn an_approved_handoff_completes_its_referral_once(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let colleague = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let admin = app.admin().await;
    let today = Utc::now().date_naive();
    let visit = submit(
        &app,
        &peer,
        &referring_visit(dd, "HAND-1990-F", today - Duration::days(5)),
        StatusCode::CREATED,
    )
    .await;
    let code = visit["referrals"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let before = cursor_of(&sync(&app, &peer, None).await);

    // A colleague confirms the client came; the slip photo must be there first.
    let arrived = today - Duration::days(2);
    let slip = jpeg(51, 20, 20);
    let first = submit(
        &app,
        &colleague,
        &handoff(dd, &code, &slip, arrived, "hiv_positive_linked"),
        StatusCode::CREATED,
    )
    .await;
    let first_id = id_of(&first);
    let p = problem(
        review(&app, &sup, &first_id, "approve", None).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![("photos".to_string(), "photo_missing".to_string())]
    );
    assert_eq!(referral(&app, &peer, &code).await["status"], "issued");
    assert_eq!(
        put_photo(&app, &colleague, &first_id, slip).await,
        StatusCode::CREATED
    );
    let out = reviewed(&app, &sup, &first_id, "approve", None).await;
    assert_eq!(out["status"], "approved");

    let done = referral(&app, &peer, &code).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["outcome"], "hiv_positive_linked");
    assert_eq!(done["completed_on"], arrived.to_string());
    assert_eq!(referral(&app, &sup, &code).await, done);

    // The issuing peer's phone hears of it.
    let changes = sync(&app, &peer, Some(&before)).await;
    let synced = synced_referral(&changes, &code).expect("the referral in sync");
    assert_eq!(synced["status"], "completed", "{changes}");
    assert_eq!(synced["outcome"], "hiv_positive_linked");
    assert_eq!(synced["completed_on"], arrived.to_string());
    let after_completion = cursor_of(&changes);

    // A second handoff for the same code is taken in, but cannot complete it again.
    let slip2 = jpeg(52, 20, 20);
    let second = submit(
        &app,
        &peer,
        &handoff(dd, &code, &slip2, today, "not_received"),
        StatusCode::CREATED,
    )
    .await;
    let second_id = id_of(&second);
    assert_eq!(
        put_photo(&app, &peer, &second_id, slip2).await,
        StatusCode::CREATED
    );
    let p = problem(
        review(&app, &sup, &second_id, "approve", None).await,
        StatusCode::CONFLICT,
    )
    .await;
    let fs = faults(&p);
    assert!(
        fs.iter().any(|(f, _)| f == "answers.referral_code"),
        "the conflict names the referral: {p}"
    );
    assert!(
        !fs.iter().any(|(f, _)| f == "photos" || f == "status"),
        "{p}"
    );
    let still = stored(&app, &admin, &second_id).await;
    assert_eq!(still["status"], "submitted");
    assert_eq!(still["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        referral(&app, &peer, &code).await,
        done,
        "the refused approval left the referral as the first handoff made it"
    );

    // The admin reopens the first handoff: the referral is open again.
    let reopened = expect_json(
        reopen(&app, &admin, &first_id, "Phiếu không có dấu xác nhận").await,
        StatusCode::OK,
        "reopen the handoff",
    )
    .await;
    assert_eq!(reopened["status"], "submitted");
    let open = referral(&app, &peer, &code).await;
    assert_eq!(open["status"], "issued", "{open}");
    assert_eq!(open["outcome"], Value::Null);
    assert_eq!(open["completed_on"], Value::Null);
    let changes = sync(&app, &peer, Some(&after_completion)).await;
    assert_eq!(
        synced_referral(&changes, &code).expect("the referral in sync")["status"],
        "issued",
        "{changes}"
    );

    // Now the second handoff may complete it, with its own outcome.
    reviewed(&app, &sup, &second_id, "approve", None).await;
    let done = referral(&app, &peer, &code).await;
    assert_eq!(
        (
            done["status"].clone(),
            done["outcome"].clone(),
            done["completed_on"].clone()
        ),
        (
            json!("completed"),
            json!("not_received"),
            json!(today.to_string())
        )
    );
}

async fn referrals_expire_once_after_the_window(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let d0 = Utc::now().date_naive() - Duration::days(90);
    let code_of = |v: &Value| {
        v["referrals"][0]["code"]
            .as_str()
            .expect("code")
            .to_string()
    };
    // Due at d0 + 31: `due`. Issued 10 days before that day: `recent`. Completed: `done`.
    // Due only later (d0 + 36): `later`.
    let due = code_of(
        &submit(
            &app,
            &peer,
            &referring_visit(dd, "EXPA-1990-F", d0),
            StatusCode::CREATED,
        )
        .await,
    );
    let recent = code_of(
        &submit(
            &app,
            &peer,
            &referring_visit(dd, "EXPB-1990-F", d0 + Duration::days(21)),
            StatusCode::CREATED,
        )
        .await,
    );
    let done = code_of(
        &submit(
            &app,
            &peer,
            &referring_visit(dd, "EXPC-1990-F", d0),
            StatusCode::CREATED,
        )
        .await,
    );
    let later = code_of(
        &submit(
            &app,
            &peer,
            &referring_visit(dd, "EXPD-1990-F", d0 + Duration::days(5)),
            StatusCode::CREATED,
        )
        .await,
    );
    let slip = jpeg(53, 16, 16);
    let h = submit(
        &app,
        &peer,
        &handoff(dd, &done, &slip, d0 + Duration::days(3), "service_received"),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        put_photo(&app, &peer, &id_of(&h), slip).await,
        StatusCode::CREATED
    );
    reviewed(&app, &sup, &id_of(&h), "approve", None).await;
    assert_eq!(referral(&app, &peer, &done).await["status"], "completed");
    let before = cursor_of(&sync(&app, &peer, None).await);

    let db = &app.state.db;
    let first_day = d0 + Duration::days(31);
    let expired = server::services::referrals::expire(db, 30, first_day)
        .await
        .expect("expire");
    assert_eq!(expired, 1, "exactly the one referral past the window");
    let again = server::services::referrals::expire(db, 30, first_day)
        .await
        .expect("expire again");
    assert_eq!(again, 0, "running it again changes nothing");
    for (code, want) in [
        (&due, "expired"),
        (&recent, "issued"),
        (&done, "completed"),
        (&later, "issued"),
    ] {
        assert_eq!(referral(&app, &peer, code).await["status"], want, "{code}");
    }
    let expired_page = json_ok(&app, "/api/v1/referrals?status=expired", sup.token()).await;
    assert_eq!(codes(&expired_page), vec![due.clone()]);

    // The issuing peer's phone hears of the expiry, and of nothing else.
    let changes = sync(&app, &peer, Some(&before)).await;
    let synced = synced_referral(&changes, &due).expect("the expired referral in sync");
    assert_eq!(synced["status"], "expired", "{changes}");
    assert!(synced_referral(&changes, &recent).is_none(), "{changes}");
    assert!(synced_referral(&changes, &done).is_none(), "{changes}");

    // Two servers expiring at once expire the one due referral once.
    let second_day = d0 + Duration::days(36);
    let (a, b) = tokio::join!(
        server::services::referrals::expire(db, 30, second_day),
        server::services::referrals::expire(db, 30, second_day),
    );
    assert_eq!(
        a.expect("expire a") + b.expect("expire b"),
        1,
        "concurrent runs together expire it once"
    );
    assert_eq!(referral(&app, &peer, &later).await["status"], "expired");
    assert_eq!(referral(&app, &peer, &recent).await["status"], "issued");
    assert_eq!(referral(&app, &peer, &done).await["status"], "completed");
    assert_eq!(
        server::services::referrals::expire(db, 30, second_day)
            .await
            .expect("expire"),
        0
    );
}
