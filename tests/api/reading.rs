//! Reading what was submitted: who sees which submissions (their own, their subtree,
//! everything), filters and paging, audited detail reads, hotspots by area, forms with
//! ETags and publishing, and the sync feed a phone polls.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_models::Role;

use crate::helpers::{faults, problem, TestApp};
use crate::intake::{contact, outreach_visit, submit, support_visit};
use crate::on_both;

on_both!(
    each_role_sees_what_its_scope_allows,
    submission_filters_and_cursor_pages,
    detail_reads_are_audited,
    hotspots_are_managed_within_a_subtree,
    forms_are_listed_by_role_with_etags,
    admins_publish_versions_that_keep_their_kinds_keys,
    sync_delivers_changes_once_and_refuses_foreign_cursors,
    sync_pages_never_split_one_submissions_changes,
);

async fn json_ok(app: &TestApp, path: &str, token: &str) -> Value {
    let res = app.get(path, token).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    serde_json::from_str(&text).expect("json")
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

async fn each_role_sees_what_its_scope_allows(app: TestApp) {
    let dd = app.unit("006").await;
    let hk = app.unit("002").await;
    let peer_a = app.actor(Role::PeerEducator, "006").await;
    let peer_b = app.actor(Role::PeerEducator, "006").await;
    let peer_hk = app.actor(Role::PeerEducator, "002").await;
    let sup_dd = app.actor(Role::Supervisor, "006").await;
    let admin = app.admin().await;

    let a = submit(
        &app,
        &peer_a,
        &outreach_visit(dd, vec![contact("AAAA-1990-F", &[])]),
        StatusCode::CREATED,
    )
    .await;
    let b = submit(
        &app,
        &peer_b,
        &outreach_visit(dd, vec![contact("BBBB-1990-F", &[])]),
        StatusCode::CREATED,
    )
    .await;
    let h = submit(
        &app,
        &peer_hk,
        &outreach_visit(hk, vec![contact("CCCC-1990-F", &[])]),
        StatusCode::CREATED,
    )
    .await;
    let id = |v: &Value| v["id"].as_str().expect("id").to_string();

    let mine = json_ok(&app, "/api/v1/submissions", peer_a.token()).await;
    assert_eq!(ids(&mine), vec![id(&a)]);
    problem(
        app.get(&format!("/api/v1/submissions/{}", id(&b)), peer_a.token())
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let mut dd_ids = ids(&json_ok(&app, "/api/v1/submissions", sup_dd.token()).await);
    dd_ids.sort();
    let mut want = vec![id(&a), id(&b)];
    want.sort();
    assert_eq!(dd_ids, want, "Đống Đa's supervisor sees Đống Đa only");
    problem(
        app.get(&format!("/api/v1/submissions/{}", id(&h)), sup_dd.token())
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get(
            &format!("/api/v1/submissions?org_unit_id={hk}"),
            sup_dd.token(),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let detail = json_ok(
        &app,
        &format!("/api/v1/submissions/{}", id(&b)),
        sup_dd.token(),
    )
    .await;
    assert_eq!(detail["answers"]["contacts"][0]["age_band"], "25_34");

    assert_eq!(
        ids(&json_ok(&app, "/api/v1/submissions", admin.token()).await).len(),
        3
    );
    let hk_only = json_ok(
        &app,
        &format!("/api/v1/submissions?org_unit_id={hk}"),
        admin.token(),
    )
    .await;
    assert_eq!(ids(&hk_only), vec![id(&h)]);
}

async fn submission_filters_and_cursor_pages(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let mut sent = Vec::new();
    for i in 0..5 {
        let mut body = outreach_visit(dd, vec![contact(&format!("PAGE-{i}-1990-F"), &[])]);
        body["answers"]["visit_date"] = json!(format!("2026-10-0{}", i + 1));
        sent.push(submit(&app, &peer, &body, StatusCode::CREATED).await["id"].clone());
    }
    submit(
        &app,
        &volunteer,
        &support_visit(dd, "SUPP-1970-M"),
        StatusCode::CREATED,
    )
    .await;

    // Pages of two, newest first, no overlap, nothing lost.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/submissions?form_id=outreach_visit&limit=2&cursor={c}"),
            None => "/api/v1/submissions?form_id=outreach_visit&limit=2".to_string(),
        };
        let page = json_ok(&app, &path, sup.token()).await;
        assert!(page["items"].as_array().expect("items").len() <= 2);
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    let mut want: Vec<String> = sent
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect();
    want.reverse();
    assert_eq!(seen, want);

    let period = json_ok(
        &app,
        "/api/v1/submissions?form_id=outreach_visit&from=2026-10-02&to=2026-10-03",
        sup.token(),
    )
    .await;
    assert_eq!(ids(&period).len(), 2);
    let by_author = json_ok(
        &app,
        &format!("/api/v1/submissions?author_id={}", volunteer.user.id),
        sup.token(),
    )
    .await;
    assert_eq!(ids(&by_author).len(), 1);
    let submitted = json_ok(&app, "/api/v1/submissions?status=submitted", sup.token()).await;
    assert_eq!(ids(&submitted).len(), 6);
    let approved = json_ok(&app, "/api/v1/submissions?status=approved", sup.token()).await;
    assert_eq!(ids(&approved).len(), 0);

    for (query, field) in [
        ("status=lost", "status"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
        ("from=2026-13-01", "from"),
        ("from=2026-10-05&to=2026-10-01", "to"),
        ("colour=red", "colour"),
    ] {
        let p = problem(
            app.get(&format!("/api/v1/submissions?{query}"), sup.token())
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(faults(&p)[0].0, field, "{query}: {p}");
    }
}

async fn detail_reads_are_audited(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let admin = app.admin().await;
    let s = submit(
        &app,
        &peer,
        &outreach_visit(dd, vec![contact("AUDIT-1990-F", &[])]),
        StatusCode::CREATED,
    )
    .await;
    let id = s["id"].as_str().expect("id");
    json_ok(&app, &format!("/api/v1/submissions/{id}"), sup.token()).await;
    let log = json_ok(
        &app,
        &format!(
            "/api/v1/audit?action=submission.read&actor_id={}",
            sup.user.id
        ),
        admin.token(),
    )
    .await;
    let entries = log["items"].as_array().expect("items");
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["target_id"], id);
    // Nothing of the answers goes into the audit log.
    assert!(!entries[0]["detail"].to_string().contains("contacts"));
}

async fn hotspots_are_managed_within_a_subtree(app: TestApp) {
    let dd = app.unit("006").await;
    let hk = app.unit("002").await;
    let sup_dd = app.actor(Role::Supervisor, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let peer = app.actor(Role::PeerEducator, "006").await;

    let res = app
        .post(
            "/api/v1/hotspots",
            Some(sup_dd.token()),
            &json!({"code": "DD-KAR-01", "type": "karaoke", "org_unit_id": dd, "estimated_size": 12}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let spot: Value = res.json().await.expect("hotspot");
    assert_eq!(spot["active"], true);
    let spot_id = spot["id"].as_str().expect("id").to_string();

    problem(
        app.post(
            "/api/v1/hotspots",
            Some(sup_dd.token()),
            &json!({"code": "HK-01", "type": "street", "org_unit_id": hk}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.post(
            "/api/v1/hotspots",
            Some(peer.token()),
            &json!({"code": "DD-02", "type": "street", "org_unit_id": dd}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let p = problem(
        app.post(
            "/api/v1/hotspots",
            Some(sup_dd.token()),
            &json!({"code": "DD-KAR-01", "type": "massage", "org_unit_id": dd}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(faults(&p)[0].0, "code");
    let p = problem(
        app.post(
            "/api/v1/hotspots",
            Some(sup_dd.token()),
            &json!({"code": "DD-03", "type": "spaceship", "org_unit_id": dd}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&p)[0].0, "type");

    // The peer educator reads the area's hotspots; Hoàn Kiếm's supervisor does not see it.
    let list = json_ok(&app, "/api/v1/hotspots", peer.token()).await;
    assert_eq!(ids(&list), vec![spot_id.clone()]);
    problem(
        app.get(&format!("/api/v1/hotspots/{spot_id}"), sup_hk.token())
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.patch(
            &format!("/api/v1/hotspots/{spot_id}"),
            sup_hk.token(),
            &json!({"active": false}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // A visit at the hotspot lands in its unit; once inactive, it is refused.
    let mut body = outreach_visit(dd, vec![contact("SPOT-1990-F", &[])]);
    body.as_object_mut().expect("obj").remove("org_unit_id");
    body["hotspot_code"] = json!("DD-KAR-01");
    let stored = submit(&app, &peer, &body, StatusCode::CREATED).await;
    assert_eq!(stored["hotspot_id"], json!(spot_id));
    assert_eq!(stored["org_unit_id"], json!(dd));

    let res = app
        .patch(
            &format!("/api/v1/hotspots/{spot_id}"),
            sup_dd.token(),
            &json!({"active": false, "estimated_size": null}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let updated: Value = res.json().await.expect("hotspot");
    assert_eq!(
        (updated["active"].clone(), updated["estimated_size"].clone()),
        (json!(false), Value::Null)
    );
    let mut again = outreach_visit(dd, vec![contact("SPOT-1990-F", &[])]);
    again.as_object_mut().expect("obj").remove("org_unit_id");
    again["hotspot_code"] = json!("DD-KAR-01");
    let p = problem(
        app.post("/api/v1/submissions", Some(peer.token()), &again)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![("hotspot_code".into(), "inactive_hotspot".into())]
    );
    // The phone that stored its visit before the hotspot closed and never heard the
    // answer retries it: still the stored record, not a refusal.
    let retried = submit(&app, &peer, &body, StatusCode::OK).await;
    assert_eq!(retried, stored);
}

fn form_ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .expect("forms")
        .iter()
        .map(|f| f["form_id"].as_str().expect("form_id").to_string())
        .collect();
    ids.sort();
    ids
}

async fn forms_are_listed_by_role_with_etags(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;

    let res = app.get("/api/v1/forms", peer.token()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("etag")
        .to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    let list: Value = res.json().await.expect("forms");
    assert_eq!(
        form_ids(&list),
        ["group_session", "outreach_visit", "referral_handoff"]
    );
    let outreach = list
        .as_array()
        .expect("forms")
        .iter()
        .find(|f| f["form_id"] == "outreach_visit")
        .expect("outreach_visit");
    assert_eq!(outreach["version"], 1);
    assert!(outreach["definition"]["title"]["vi"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    let res = app
        .client
        .get(app.url("/api/v1/forms"))
        .bearer_auth(peer.token())
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        res.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    assert!(res.bytes().await.expect("body").is_empty());

    let vol = json_ok(&app, "/api/v1/forms", volunteer.token()).await;
    assert_eq!(form_ids(&vol), ["group_session", "support_visit"]);
    let all = json_ok(&app, "/api/v1/forms", sup.token()).await;
    assert_eq!(all.as_array().map(Vec::len), Some(4));

    let schema = json_ok(&app, "/api/v1/forms/outreach_visit/schema", peer.token()).await;
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["properties"]["contacts"]["type"], "array");
    let v1 = json_ok(
        &app,
        "/api/v1/forms/outreach_visit/versions/1",
        peer.token(),
    )
    .await;
    assert_eq!(v1["version"], 1);
    problem(
        app.get("/api/v1/forms/outreach_visit/versions/9", peer.token())
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/api/v1/forms/no_such_form", peer.token()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let p = problem(
        app.get("/api/v1/forms/outreach_visit/versions/latest", peer.token())
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&p)[0].0, "version");
}

async fn admins_publish_versions_that_keep_their_kinds_keys(app: TestApp) {
    let admin = app.admin().await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let v1 = json_ok(&app, "/api/v1/forms/group_session", admin.token()).await;
    let res = app.get("/api/v1/forms", peer.token()).await;
    let etag_before = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("etag")
        .to_string();

    let mut v2 = v1["definition"].clone();
    v2["version"] = json!(2);
    v2["title"]["en"] = json!("Group communication session");
    let res = app.post("/api/v1/forms", Some(admin.token()), &v2).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let published: Value = res.json().await.expect("form");
    assert_eq!(published["version"], 2);
    // Publishing the same content again changes nothing.
    let res = app.post("/api/v1/forms", Some(admin.token()), &v2).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The same version with other content is a conflict: versions are immutable.
    let mut other = v2.clone();
    other["title"]["en"] = json!("Something else");
    let p = problem(
        app.post("/api/v1/forms", Some(admin.token()), &other).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        faults(&p)[0],
        ("version".into(), "version_published".into())
    );

    // The phone's cached list is stale now.
    let res = app
        .client
        .get(app.url("/api/v1/forms"))
        .bearer_auth(peer.token())
        .header("If-None-Match", &etag_before)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.expect("forms");
    let gs = list
        .as_array()
        .expect("forms")
        .iter()
        .find(|f| f["form_id"] == "group_session")
        .expect("gs");
    assert_eq!(gs["version"], 2);

    // A version that drops a key its kind's extraction reads is refused, naming it.
    let mut v3 = v2.clone();
    v3["version"] = json!(3);
    let fields = v3["fields"].as_array_mut().expect("fields");
    fields.retain(|f| f["key"] != "participants");
    let p = problem(
        app.post("/api/v1/forms", Some(admin.token()), &v3).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["code"] == "missing_required_key"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("participants"))),
        "{p}"
    );
    // An invalid definition is refused with the path of each fault.
    let mut bad = v2.clone();
    bad["version"] = json!(3);
    bad["fields"][0]["key"] = json!("Bad Key");
    let p = problem(
        app.post("/api/v1/forms", Some(admin.token()), &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(faults(&p).iter().any(|(f, _)| f == "fields[0].key"), "{p}");
    // Not newer than the latest.
    let mut old = v2.clone();
    old["version"] = json!(1);
    old["title"]["en"] = json!("Rewritten history");
    let p = problem(
        app.post("/api/v1/forms", Some(admin.token()), &old).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(faults(&p)[0].0, "version");
    // Supervisors do not publish; a non-JSON body is 415.
    problem(
        app.post("/api/v1/forms", Some(sup.token()), &v2).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let res = app
        .client
        .post(app.url("/api/v1/forms"))
        .bearer_auth(admin.token())
        .header("content-type", "text/plain")
        .body("form")
        .send()
        .await
        .expect("request");
    problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let res = app
        .client
        .post(app.url("/api/v1/forms"))
        .bearer_auth(admin.token())
        .header("content-type", "application/json")
        .body("{\"form_id\": ")
        .send()
        .await
        .expect("request");
    problem(res, StatusCode::BAD_REQUEST).await;
}

async fn sync_delivers_changes_once_and_refuses_foreign_cursors(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let other = app.actor(Role::PeerEducator, "006").await;
    let admin = app.admin().await;

    let first = json_ok(&app, "/api/v1/sync", peer.token()).await;
    assert_eq!(first["submissions"], json!([]));
    assert_eq!(first["has_more"], false);
    let mut forms: Vec<&str> = first["forms"]
        .as_array()
        .expect("forms")
        .iter()
        .filter_map(|f| f["form_id"].as_str())
        .collect();
    forms.sort();
    assert_eq!(
        forms,
        ["group_session", "outreach_visit", "referral_handoff"]
    );
    let cursor = first["cursor"].as_str().expect("cursor").to_string();

    let nothing = json_ok(&app, &format!("/api/v1/sync?since={cursor}"), peer.token()).await;
    assert_eq!(
        (
            nothing["submissions"].clone(),
            nothing["forms"].clone(),
            nothing["referrals"].clone()
        ),
        (json!([]), json!([]), json!([]))
    );

    let s = submit(
        &app,
        &peer,
        &outreach_visit(dd, vec![contact("SYNC-1990-F", &["hiv_test"])]),
        StatusCode::CREATED,
    )
    .await;
    submit(
        &app,
        &other,
        &outreach_visit(dd, vec![contact("SYNC-1991-F", &["prep"])]),
        StatusCode::CREATED,
    )
    .await;
    let mut v2 =
        json_ok(&app, "/api/v1/forms/referral_handoff", admin.token()).await["definition"].clone();
    v2["version"] = json!(2);
    assert_eq!(
        app.post("/api/v1/forms", Some(admin.token()), &v2)
            .await
            .status(),
        StatusCode::CREATED
    );

    let changes = json_ok(&app, &format!("/api/v1/sync?since={cursor}"), peer.token()).await;
    let subs = changes["submissions"].as_array().expect("submissions");
    assert_eq!(subs.len(), 1, "only my own submissions: {changes}");
    assert_eq!(subs[0]["id"], s["id"]);
    assert_eq!(subs[0]["status"], "submitted");
    assert_eq!(subs[0]["last_review"], Value::Null);
    let refs = changes["referrals"].as_array().expect("referrals");
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["code"], s["referrals"][0]["code"]);
    assert_eq!(refs[0]["status"], "issued");
    let forms = changes["forms"].as_array().expect("forms");
    assert_eq!(forms.len(), 1);
    assert_eq!(
        (forms[0]["form_id"].clone(), forms[0]["version"].clone()),
        (json!("referral_handoff"), json!(2))
    );

    // Small pages: everything arrives once, in order, across pages.
    let mut since: Option<String> = None;
    let mut seen = 0;
    for _ in 0..20 {
        let path = match &since {
            Some(c) => format!("/api/v1/sync?limit=1&since={c}"),
            None => "/api/v1/sync?limit=1".into(),
        };
        let page = json_ok(&app, &path, peer.token()).await;
        seen += page["submissions"].as_array().map_or(0, Vec::len)
            + page["forms"].as_array().map_or(0, Vec::len)
            + page["referrals"].as_array().map_or(0, Vec::len);
        since = page["cursor"].as_str().map(str::to_string);
        if page["has_more"] == false {
            break;
        }
    }
    // 3 bundled forms + 1 new version + 1 submission + 1 referral.
    assert_eq!(seen, 6);

    // Another user's cursor, a forged one, garbage: 400 naming `since`.
    let mine = changes["cursor"].as_str().expect("cursor").to_string();
    for bad in [mine.as_str(), "bm90LWEtY3Vyc29y", "%%%"] {
        let p = problem(
            app.get(&format!("/api/v1/sync?since={bad}"), other.token())
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(faults(&p)[0].0, "since");
    }
    use base64::Engine;
    let ahead = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("y1.{}.999999999", peer.user.id));
    problem(
        app.get(&format!("/api/v1/sync?since={ahead}"), peer.token())
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // Sync is for phones.
    problem(
        app.send(Method::GET, "/api/v1/sync", Some(admin.token()), None)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn sync_pages_never_split_one_submissions_changes(app: TestApp) {
    // One visit issuing 32 referrals is one change of 33 items: small pages deliver all
    // of it, once, and the cursor moves past it.
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let start = json_ok(&app, "/api/v1/sync", peer.token()).await;
    let mut since = start["cursor"].as_str().expect("cursor").to_string();
    let services = ["hiv_test", "sti_exam", "prep", "other"];
    let contacts: Vec<Value> = (0..8)
        .map(|i| {
            let mut c = contact(&format!("MANY-{i}-1990-F"), &services);
            c["referral_other"] = json!("harm reduction service");
            c
        })
        .collect();
    let s = submit(
        &app,
        &peer,
        &outreach_visit(dd, contacts),
        StatusCode::CREATED,
    )
    .await;
    let mut codes: Vec<String> = s["referrals"]
        .as_array()
        .expect("referrals")
        .iter()
        .map(|r| r["code"].as_str().expect("code").to_string())
        .collect();
    assert_eq!(codes.len(), 32);
    let second = submit(
        &app,
        &peer,
        &outreach_visit(dd, vec![contact("MANY-X-1990-F", &["prep"])]),
        StatusCode::CREATED,
    )
    .await;
    codes.push(
        second["referrals"][0]["code"]
            .as_str()
            .expect("code")
            .to_string(),
    );

    let mut got_codes = Vec::new();
    let mut got_subs = Vec::new();
    for _ in 0..10 {
        let page = json_ok(
            &app,
            &format!("/api/v1/sync?limit=5&since={since}"),
            peer.token(),
        )
        .await;
        got_codes.extend(
            page["referrals"]
                .as_array()
                .expect("referrals")
                .iter()
                .map(|r| r["code"].as_str().expect("code").to_string()),
        );
        got_subs.extend(
            page["submissions"]
                .as_array()
                .expect("submissions")
                .iter()
                .map(|r| r["id"].as_str().expect("id").to_string()),
        );
        let next = page["cursor"].as_str().expect("cursor").to_string();
        if page["has_more"] == false {
            break;
        }
        assert_ne!(next, since, "the cursor moves on every page");
        since = next;
    }
    got_codes.sort();
    codes.sort();
    assert_eq!(got_codes, codes, "every referral once");
    assert_eq!(got_subs.len(), 2, "{got_subs:?}");
}

// PostgreSQL only: SQLite has one writer at a time, so nothing commits out of order.
crate::on_postgres!(a_cursor_never_passes_a_change_still_being_written);

/// A transaction takes its change number (here: a review re-stamping visit A) and is
/// slow to commit; meanwhile visit B is sent. A phone syncing while A is open must not be
/// given a cursor past A's number, or it would never see A. A plain sequence read up to
/// its highest committed value fails this (B commits with a higher number while A's is
/// not yet visible); the counter row makes B wait for A's commit.
async fn a_cursor_never_passes_a_change_still_being_written(app: TestApp) {
    use sea_orm::TransactionTrait;
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let a = submit(
        &app,
        &peer,
        &outreach_visit(dd, vec![contact("LATE-A-1990-F", &[])]),
        StatusCode::CREATED,
    )
    .await;
    let a_id: uuid::Uuid = serde_json::from_value(a["id"].clone()).expect("id");
    let start = json_ok(&app, "/api/v1/sync", peer.token()).await;
    let c0 = start["cursor"].as_str().expect("cursor").to_string();

    // A's change: numbered, written, not committed.
    let slow = app.state.db.begin().await.expect("begin");
    let a_seq = server::services::sync::stamp(&slow, &[a_id], &[], &[])
        .await
        .expect("stamp");

    // B is sent meanwhile (it may commit or wait; either way it comes after A), and the
    // phone syncs while A is still open; then A commits.
    let b_body = outreach_visit(dd, vec![contact("LATE-B-1990-F", &[])]);
    let b_id = b_body["id"].as_str().expect("id").to_string();
    let observe = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let middle = json_ok(&app, &format!("/api/v1/sync?since={c0}"), peer.token()).await;
        slow.commit().await.expect("commit");
        middle
    };
    let (_, middle) = tokio::join!(submit(&app, &peer, &b_body, StatusCode::CREATED), observe);
    let seen: Vec<&str> = middle["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(
        !seen.contains(&b_id.as_str()),
        "B was delivered while A (number {a_seq:?}) was open: the cursor passed A: {middle}"
    );
    let c1 = middle["cursor"].as_str().expect("cursor").to_string();

    let after = json_ok(&app, &format!("/api/v1/sync?since={c1}"), peer.token()).await;
    let seen: Vec<String> = after["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    assert!(
        seen.contains(&a_id.to_string()),
        "A's change, committed late, was skipped: {after}"
    );
    assert!(seen.contains(&b_id), "B is delivered once A is in: {after}");
}

// PostgreSQL only: SQLite has one writer at a time by design.
crate::on_postgres!(writers_for_different_phones_do_not_wait_for_each_other);

/// Peer P's change (a review re-stamping P's visit A) is numbered and slow to commit;
/// peer Q sends a visit meanwhile. Each phone reads its own feed, so Q's visit is
/// answered, and is in Q's sync, while P's transaction is still open (with one counter
/// for everyone, Q's visit waited for P's commit); P's own sync in the middle still
/// does not pass A, and has A once it commits.
async fn writers_for_different_phones_do_not_wait_for_each_other(app: TestApp) {
    use sea_orm::TransactionTrait;
    use server::services::sync::stamp;
    let dd = app.unit("006").await;
    let p = app.actor(Role::PeerEducator, "006").await;
    let q = app.actor(Role::PeerEducator, "006").await;
    let a = submit(
        &app,
        &p,
        &outreach_visit(dd, vec![contact("FEED-A-1990-F", &[])]),
        StatusCode::CREATED,
    )
    .await;
    let a_id: uuid::Uuid = serde_json::from_value(a["id"].clone()).expect("id");
    let p0 = json_ok(&app, "/api/v1/sync", p.token()).await["cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let q0 = json_ok(&app, "/api/v1/sync", q.token()).await["cursor"]
        .as_str()
        .expect("cursor")
        .to_string();

    let slow = app.state.db.begin().await.expect("begin");
    stamp(&slow, &[a_id], &[], &[]).await.expect("stamp");

    let q_body = outreach_visit(dd, vec![contact("FEED-Q-1990-F", &[])]);
    let q_id = q_body["id"].as_str().expect("id").to_string();
    // Generous: a visit takes well under a second; only waiting for P's commit takes this.
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        submit(&app, &q, &q_body, StatusCode::CREATED),
    )
    .await;
    let q_mid = json_ok(&app, &format!("/api/v1/sync?since={q0}"), q.token()).await;
    let p_mid = json_ok(&app, &format!("/api/v1/sync?since={p0}"), p.token()).await;
    slow.commit().await.expect("commit");

    assert!(
        answered.is_ok(),
        "Q's visit waited for P's open transaction"
    );
    let ids = |page: &Value| -> Vec<String> {
        page["submissions"]
            .as_array()
            .expect("submissions")
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        ids(&q_mid),
        vec![q_id],
        "Q's sync while P's change is open: {q_mid}"
    );
    assert_eq!(
        ids(&p_mid),
        Vec::<String>::new(),
        "P's change is not in yet: {p_mid}"
    );
    let p1 = p_mid["cursor"].as_str().expect("cursor");
    let p_after = json_ok(&app, &format!("/api/v1/sync?since={p1}"), p.token()).await;
    assert_eq!(
        ids(&p_after),
        vec![a_id.to_string()],
        "P's change once committed: {p_after}"
    );
}
