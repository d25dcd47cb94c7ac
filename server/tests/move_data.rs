//! `donghanh move` as an operator meets it: a pilot filled over HTTP on the embedded
//! default (its server then killed, as a power cut would leave it), moved with the real
//! binary into a fresh database on the test PostgreSQL and a fresh prefix of the Garage
//! bucket, and a server started there with the same keys: the rows and objects are the
//! source's, the phone's tokens, sync cursor and pending photo go on where they were.
//! The pilot holds every form kind, photos, reviews, a revision, referrals issued,
//! completed and expired, a stock movement, a target and the audit log. Faults: a
//! target holding data, wrong credentials, an unreachable object store, a move killed
//! half way (then run again), a server still running on the source (refused) and a
//! writer that does not lock (noticed); and a move that keeps the photos on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::Timelike;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sea_orm::sqlx::{self, ConnectOptions, Connection};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

mod common;
use common::{donghanh, png, text, Node, PgDatabase};

const PEER: &str = "peer.move";
const SUPERVISOR: &str = "supervisor.move";
const VOLUNTEER: &str = "volunteer.move";
const PASSWORD: &str = "move-password-123";

/// Exit status 2 and one line from donghanh on stderr; answers that line.
fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{}", text(out));
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("donghanh:"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", text(out));
    lines[0].to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The source's files that a move must leave as they are (SQLite may touch the
/// shared-memory index of the WAL even when reading).
fn source_files(data: &Path) -> BTreeMap<String, String> {
    let mut files = common::file_digests(data);
    files.retain(|name, _| !name.ends_with("-shm"));
    files
}

/// A photo a phone sent (or still has to send).
#[derive(Debug, Clone)]
struct Photo {
    submission: String,
    sha: String,
    bytes: Vec<u8>,
}

/// A pilot on the embedded default, its server killed, and what its phone holds.
struct Pilot {
    work: tempfile::TempDir,
    data: PathBuf,
    access_token: String,
    refresh_token: String,
    cursor: String,
    unit: String,
    stored: Vec<Photo>,
    /// Photos uploaded (every one has an object to move).
    objects: usize,
    /// A referral a clinic confirmed (its handoff approved) and one that expired.
    completed: String,
    expired: String,
    /// Named by a handoff's answers, never uploaded.
    pending: Photo,
    /// The supervisor's access token, and what they read before the move: the year's
    /// indicators and every visit's details, to be read the same after it.
    supervisor_token: String,
    report: Value,
    details: Vec<Value>,
    /// The supervisor's referral list, read before the move.
    referrals: Value,
}

/// `value` with every RFC 3339 time's fraction cut to six digits.
fn to_microseconds(value: &Value) -> Value {
    match value {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) if s.contains('.') => {
                let t = t.with_timezone(&chrono::Utc);
                let micros = t.timestamp_subsec_micros();
                json!(t
                    .with_nanosecond(micros * 1000)
                    .expect("a valid time")
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
            _ => value.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(to_microseconds).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), to_microseconds(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What the supervisor reads: the year's indicators report (without the time it was
/// made) and the details of each submission in `ids`.
async fn supervisor_reads(node: &Node, token: &str, ids: &[String]) -> (Value, Vec<Value>, Value) {
    let get = |path: String| {
        common::client()
            .get(node.url(&path))
            .bearer_auth(token)
            .send()
    };
    let year = chrono::Datelike::year(&chrono::Utc::now());
    let mut report = expect(
        get(format!("/api/v1/reports/indicators?period={year}"))
            .await
            .expect("report"),
        200,
    )
    .await;
    report
        .as_object_mut()
        .expect("report object")
        .remove("generated_at");
    let mut details = Vec::new();
    for id in ids {
        details.push(
            expect(
                get(format!("/api/v1/submissions/{id}"))
                    .await
                    .expect("detail"),
                200,
            )
            .await,
        );
    }
    let referrals = expect(
        get("/api/v1/referrals?limit=200".to_string())
            .await
            .expect("referrals"),
        200,
    )
    .await;
    (report, details, referrals)
}

async fn post(url: String, token: &str, body: &Value) -> reqwest::Response {
    common::client()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("post")
}

async fn put(url: String, token: &str, body: &Value) -> reqwest::Response {
    common::client()
        .put(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("put")
}

async fn expect(res: reqwest::Response, status: u16) -> Value {
    let got = res.status();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(got.as_u16(), status, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

async fn login_pair(node: &Node, username: &str, password: &str) -> Value {
    let res = common::client()
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login");
    expect(res, 200).await
}

fn visit(unit: &str, uic: &str, photo_sha: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "id": Uuid::new_v4(),
        "form_id": "outreach_visit",
        "form_version": 1,
        "started_at": (now - chrono::Duration::minutes(20)).to_rfc3339(),
        "completed_at": (now - chrono::Duration::minutes(5)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": {
            "visit_date": now.date_naive().to_string(),
            "place_type": "karaoke",
            "contacts": [
                {
                    "uic": uic, "age_band": "25_34", "condoms_male": 10, "condoms_female": 2,
                    "lubricant": 5, "self_test_kits": 1, "counselled": true,
                    "referrals": ["hiv_test"],
                },
                {
                    "uic": format!("{uic}-B"), "age_band": "18_24", "condoms_male": 4,
                    "condoms_female": 0, "lubricant": 1, "self_test_kits": 0,
                    "counselled": false, "referrals": [],
                },
            ],
            "photos": [{ "photo": photo_sha }],
        },
    })
}

async fn put_photo(node: &Node, token: &str, photo: &Photo) -> reqwest::Response {
    common::client()
        .put(node.url(&format!(
            "/api/v1/submissions/{}/photos/{}",
            photo.submission, photo.sha
        )))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(photo.bytes.clone())
        .send()
        .await
        .expect("put photo")
}

/// Each photo reads back from the server byte for byte.
async fn read_back<'a>(node: &Node, token: &str, photos: impl IntoIterator<Item = &'a Photo>) {
    for photo in photos {
        let res = common::client()
            .get(node.url(&format!(
                "/api/v1/submissions/{}/photos/{}",
                photo.submission, photo.sha
            )))
            .bearer_auth(token)
            .send()
            .await
            .expect("photo");
        assert_eq!(res.status(), 200);
        assert_eq!(res.bytes().await.expect("bytes").to_vec(), photo.bytes);
    }
}

/// Syncs from `since` to the end; answers every change seen and the last cursor.
async fn sync_all(node: &Node, token: &str, since: Option<&str>) -> (Vec<Value>, String) {
    let (pages, cursor) = common::sync_pages(node, token, since)
        .await
        .unwrap_or_else(|(status, body)| panic!("sync answered {status}: {body}"));
    let mut changes = Vec::new();
    for page in &pages {
        for kind in ["submissions", "referrals", "forms"] {
            for item in page[kind].as_array().expect("changes") {
                changes.push(json!({ "kind": kind, "item": item }));
            }
        }
    }
    (changes, cursor)
}

/// Fills a pilot: a supervisor and a peer, `visits` visits with two contacts and a
/// photo each, a referral handed off (its slip photo still on the phone), an approval,
/// a stock movement; the phone syncs once and keeps its tokens. Then the server is killed.
async fn pilot(visits: u64) -> Pilot {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let node = Node::start(work.path(), &data, common::NO_ENV, true);
    let admin = login_pair(
        &node,
        "admin",
        node.admin_password.as_deref().expect("admin"),
    )
    .await;
    let admin = admin["access_token"].as_str().expect("token").to_string();
    let units: Value = common::client()
        .get(node.url("/api/v1/org-units?limit=200"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("units")
        .json()
        .await
        .expect("json");
    let unit = units["items"]
        .as_array()
        .and_then(|items| items.iter().find(|u| u["code"] == "006"))
        .and_then(|u| u["id"].as_str())
        .expect("Đống Đa")
        .to_string();
    let mut peer_id = String::new();
    for (username, role) in [
        (SUPERVISOR, "supervisor"),
        (PEER, "peer_educator"),
        (VOLUNTEER, "volunteer"),
    ] {
        let user = expect(
            post(
                node.url("/api/v1/users"),
                &admin,
                &json!({
                    "username": username, "password": PASSWORD,
                    "role": role, "org_unit_id": unit,
                }),
            )
            .await,
            201,
        )
        .await;
        if role == "peer_educator" {
            peer_id = user["id"].as_str().expect("id").to_string();
        }
    }
    let pair = login_pair(&node, PEER, PASSWORD).await;
    let peer = pair["access_token"].as_str().expect("token").to_string();
    let supervisor = login_pair(&node, SUPERVISOR, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_string();

    let mut stored = Vec::new();
    let mut bodies = Vec::new();
    let mut codes = Vec::new();
    for seed in 0..visits {
        let bytes = png(seed);
        let sha = sha256_hex(&bytes);
        let body = visit(&unit, &format!("MOVE-{seed}-1990-F"), &sha);
        let made = expect(
            post(node.url("/api/v1/submissions"), &peer, &body).await,
            201,
        )
        .await;
        if let Some(code) = made["referrals"][0]["code"].as_str() {
            codes.push(code.to_string());
        }
        let photo = Photo {
            submission: body["id"].as_str().expect("id").to_string(),
            sha,
            bytes,
        };
        expect(put_photo(&node, &peer, &photo).await, 201).await;
        stored.push(photo);
        bodies.push(body);
    }

    // A referral handed off; its slip photo is named but not yet uploaded.
    let slip = png(10_000);
    let slip_sha = sha256_hex(&slip);
    let now = chrono::Utc::now();
    let handoff = json!({
        "id": Uuid::new_v4(),
        "form_id": "referral_handoff",
        "form_version": 1,
        "started_at": (now - chrono::Duration::minutes(10)).to_rfc3339(),
        "completed_at": (now - chrono::Duration::minutes(2)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": {
            "referral_code": codes.first().expect("a referral code"),
            "facility": "Phòng khám ngoại trú Đống Đa",
            "arrived_on": now.date_naive().to_string(),
            "service": "hiv_test",
            "outcome": "hiv_negative",
            "slip_photo": slip_sha,
        },
    });
    expect(
        post(node.url("/api/v1/submissions"), &peer, &handoff).await,
        201,
    )
    .await;
    let pending = Photo {
        submission: handoff["id"].as_str().expect("id").to_string(),
        sha: slip_sha,
        bytes: slip,
    };

    // A review decision and a stock movement.
    expect(
        post(
            node.url(&format!(
                "/api/v1/submissions/{}/review",
                stored[0].submission
            )),
            &supervisor,
            &json!({ "decision": "approve" }),
        )
        .await,
        200,
    )
    .await;
    expect(
        post(
            node.url("/api/v1/stock/movements"),
            &supervisor,
            &json!({
                "peer_id": peer_id, "item": "male_condom", "kind": "issued",
                "quantity": 50, "occurred_on": now.date_naive().to_string(),
            }),
        )
        .await,
        201,
    )
    .await;

    let today = now.date_naive();
    let review = |id: &str, decision: &str, comment: Option<&str>| {
        let body = match comment {
            Some(c) => json!({ "decision": decision, "comment": c }),
            None => json!({ "decision": decision }),
        };
        let url = node.url(&format!("/api/v1/submissions/{id}/review"));
        let token = supervisor.clone();
        async move { post(url, &token, &body).await }
    };

    // A revision: changes requested on the second visit, the phone sends revision 2,
    // the supervisor approves it.
    let revised = &stored[1].submission;
    expect(
        review(revised, "request_changes", Some("sửa số bao cao su")).await,
        200,
    )
    .await;
    let mut corrected = bodies[1].clone();
    corrected["answers"]["contacts"][0]["condoms_male"] = json!(12);
    let made = expect(
        put(
            node.url(&format!("/api/v1/submissions/{revised}")),
            &peer,
            &corrected,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(made["revision"], 2, "{made}");
    expect(review(revised, "approve", None).await, 200).await;

    // A referral the clinic confirmed: a handoff with its slip, approved.
    let slip2 = png(10_001);
    let mut confirmed = handoff.clone();
    confirmed["id"] = json!(Uuid::new_v4());
    confirmed["answers"]["referral_code"] = json!(codes[1]);
    confirmed["answers"]["slip_photo"] = json!(sha256_hex(&slip2));
    expect(
        post(node.url("/api/v1/submissions"), &peer, &confirmed).await,
        201,
    )
    .await;
    let slip2 = Photo {
        submission: confirmed["id"].as_str().expect("id").to_string(),
        sha: sha256_hex(&slip2),
        bytes: slip2,
    };
    expect(put_photo(&node, &peer, &slip2).await, 201).await;
    expect(review(&slip2.submission, "approve", None).await, 200).await;

    // A referral left to expire: a visit 45 days ago (expired below, once stopped).
    let old_photo = png(30_000);
    let mut old = visit(&unit, "MOVE-OLD-1985-M", &sha256_hex(&old_photo));
    old["answers"]["visit_date"] = json!((today - chrono::Duration::days(45)).to_string());
    let made = expect(
        post(node.url("/api/v1/submissions"), &peer, &old).await,
        201,
    )
    .await;
    let expired = made["referrals"][0]["code"]
        .as_str()
        .expect("a referral code")
        .to_string();
    let old_photo = Photo {
        submission: old["id"].as_str().expect("id").to_string(),
        sha: sha256_hex(&old_photo),
        bytes: old_photo,
    };
    expect(put_photo(&node, &peer, &old_photo).await, 201).await;

    // A volunteer's group session and support visit, both approved.
    let volunteer = login_pair(&node, VOLUNTEER, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let envelope = |form: &str, answers: Value| {
        json!({
            "id": Uuid::new_v4(),
            "form_id": form,
            "form_version": 1,
            "started_at": (now - chrono::Duration::hours(2)).to_rfc3339(),
            "completed_at": (now - chrono::Duration::hours(1)).to_rfc3339(),
            "org_unit_id": unit,
            "answers": answers,
        })
    };
    for body in [
        envelope(
            "group_session",
            json!({
                "session_date": today.to_string(), "audience": "establishment_owners",
                "participants": 14, "topic": "condom_use",
            }),
        ),
        envelope(
            "support_visit",
            json!({
                "visit_date": today.to_string(), "person_uic": "MOVE-SUPPORT-1980-M",
                "support": ["counselling", "loan"], "loan_amount_vnd": 5_000_000,
            }),
        ),
    ] {
        expect(
            post(node.url("/api/v1/submissions"), &volunteer, &body).await,
            201,
        )
        .await;
        expect(
            review(body["id"].as_str().expect("id"), "approve", None).await,
            200,
        )
        .await;
    }

    // The unit's target for the year.
    let year = chrono::Datelike::year(&now);
    expect(
        put(
            node.url("/api/v1/targets"),
            &admin,
            &json!({
                "org_unit_id": unit, "indicator": "people_reached",
                "period": year.to_string(), "value": 400,
            }),
        )
        .await,
        200,
    )
    .await;

    node.stop();

    // The old visit's referral expires (the command a timer runs), then the supervisor's
    // reading is taken on a server started again.
    let out = donghanh(work.path(), &data, &["expire-referrals"], common::NO_ENV);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("expired 1 referrals"),
        "{}",
        text(&out)
    );
    let node = Node::start(work.path(), &data, common::NO_ENV, false);
    let ids: Vec<String> = stored.iter().map(|p| p.submission.clone()).collect();
    let (report, details, referrals) = supervisor_reads(&node, &supervisor, &ids).await;
    let status_of = |code: &str| {
        referrals["items"]
            .as_array()
            .and_then(|items| items.iter().find(|r| r["code"] == code))
            .map(|r| r["status"].clone())
    };
    assert_eq!(
        status_of(&codes[1]),
        Some(json!("completed")),
        "{referrals}"
    );
    assert_eq!(status_of(&expired), Some(json!("expired")), "{referrals}");
    assert!(
        report["unit"]["indicators"].as_array().is_some_and(|a| a
            .iter()
            .any(|c| c["indicator"] == "people_reached" && c["target"] == 400)),
        "the target is in the report: {report}"
    );

    // The phone syncs once and keeps its cursor and refresh token.
    let (changes, cursor) = sync_all(&node, &peer, None).await;
    assert!(
        changes.iter().any(|c| c["kind"] == "submissions"),
        "{changes:#?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c["kind"] == "referrals" && c["item"]["status"] == "expired"),
        "the expired referral reaches the phone: {changes:#?}"
    );

    node.stop();
    let objects = stored.len() + 2;
    Pilot {
        work,
        data,
        access_token: peer,
        refresh_token: pair["refresh_token"].as_str().expect("refresh").to_string(),
        cursor,
        unit,
        stored,
        objects,
        completed: codes[1].clone(),
        expired,
        pending,
        supervisor_token: supervisor,
        report,
        details,
        referrals,
    }
}

/// The test services, or `None` to skip.
fn services() -> Option<(String, Vec<(String, String)>)> {
    let pg = common::pg_admin_url()?;
    let s3 = common::s3_env(&format!("move-test-{}", Uuid::new_v4().simple()))?;
    Some((pg, s3))
}

fn with(env: &[(String, String)], more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !more.iter().any(|(m, _)| m == k))
        .cloned()
        .collect();
    out.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

fn move_to(pilot: &Pilot, url: &str, s3: &[(String, String)]) -> Output {
    donghanh(
        pilot.work.path(),
        &pilot.data,
        &["move", "--to-database", url, "--to-s3"],
        s3,
    )
}

/// The environment of a server on the moved data: the printed settings, the keys read
/// from the files the move named.
fn moved_env(pilot: &Pilot, url: &str, s3: &[(String, String)]) -> Vec<(String, String)> {
    let key = |name: &str| {
        std::fs::read_to_string(pilot.data.join("secrets").join(name))
            .expect("key file")
            .trim()
            .to_string()
    };
    let mut env = s3.to_vec();
    env.push(("DATABASE_URL".into(), url.into()));
    env.push(("BLOB_STORE".into(), "s3".into()));
    env.push((
        "JWT_KEYS".into(),
        format!("local:{}", key("jwt_signing.key")),
    ));
    env.push(("UIC_HMAC_KEY".into(), key("uic_hmac.key")));
    env
}

/// `rebuild-reports --check` on the moved data finds nothing; then a server on it.
fn checked_server(pilot: &Pilot, env: &[(String, String)]) -> Node {
    let pg_data = pilot.work.path().join("pg-node");
    let out = donghanh(
        pilot.work.path(),
        &pg_data,
        &["rebuild-reports", "--check"],
        env,
    );
    assert!(out.status.success(), "{}", text(&out));
    Node::start(pilot.work.path(), &pg_data, env, false)
}

async fn sqlite(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .expect("open source")
}

async fn pg(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect target")
}

/// Rows per table on both sides (the target without the migrations' and the move's
/// own bookkeeping).
async fn counts(source: &Path, url: &str) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let mut src = sqlite(source).await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> 'seaql_migrations' ORDER BY name",
    )
    .fetch_all(&mut src)
    .await
    .expect("tables");
    let mut a = BTreeMap::new();
    for name in &names {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{name}\""))
            .fetch_one(&mut src)
            .await
            .expect("count");
        a.insert(name.clone(), n);
    }
    let mut dst = pg(url).await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name NOT IN ('seaql_migrations', 'donghanh_move')",
    )
    .fetch_all(&mut dst)
    .await
    .expect("tables");
    let mut b = BTreeMap::new();
    for name in &names {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{name}\""))
            .fetch_one(&mut dst)
            .await
            .expect("count");
        b.insert(name.clone(), n);
    }
    (a, b)
}

fn uuid_of(bytes: Vec<u8>) -> Uuid {
    Uuid::from_slice(&bytes).expect("uuid")
}

/// Compares the rows that carry what phones and reports rely on, value by value.
async fn same_key_rows(source: &Path, url: &str) {
    let mut src = sqlite(source).await;
    let mut dst = pg(url).await;

    let a: Vec<(Vec<u8>, i64, String)> =
        sqlx::query_as("SELECT id, change_seq, status FROM submissions")
            .fetch_all(&mut src)
            .await
            .expect("submissions");
    let mut a: Vec<(Uuid, i64, String)> =
        a.into_iter().map(|(i, s, t)| (uuid_of(i), s, t)).collect();
    a.sort();
    let mut b: Vec<(Uuid, i64, String)> =
        sqlx::query_as("SELECT id, change_seq, status FROM submissions")
            .fetch_all(&mut dst)
            .await
            .expect("submissions");
    b.sort();
    assert_eq!(a, b, "submissions");

    let a: i64 = sqlx::query_scalar("SELECT value FROM sync_counter WHERE id = 1")
        .fetch_one(&mut src)
        .await
        .expect("counter");
    let b: i64 = sqlx::query_scalar("SELECT value FROM sync_counter WHERE id = 1")
        .fetch_one(&mut dst)
        .await
        .expect("counter");
    assert_eq!(a, b, "sync counter");

    let a: Vec<(Vec<u8>, String, String)> =
        sqlx::query_as("SELECT id, username, password_hash FROM users")
            .fetch_all(&mut src)
            .await
            .expect("users");
    let mut a: Vec<(Uuid, String, String)> =
        a.into_iter().map(|(i, u, p)| (uuid_of(i), u, p)).collect();
    a.sort();
    let mut b: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT id, username, password_hash FROM users")
            .fetch_all(&mut dst)
            .await
            .expect("users");
    b.sort();
    assert_eq!(a, b, "users");

    let a: Vec<Vec<u8>> = sqlx::query_scalar("SELECT id FROM org_units")
        .fetch_all(&mut src)
        .await
        .expect("units");
    let mut a: Vec<Uuid> = a.into_iter().map(uuid_of).collect();
    a.sort();
    let mut b: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM org_units")
        .fetch_all(&mut dst)
        .await
        .expect("units");
    b.sort();
    assert_eq!(a, b, "org units");

    let a: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM client_keys")
        .fetch_one(&mut src)
        .await
        .expect("client keys");
    let next: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END \
         FROM client_keys_id_seq",
    )
    .fetch_one(&mut dst)
    .await
    .expect("sequence");
    assert!(
        next > a,
        "the client_keys sequence ({next}) is not past {a}"
    );
}

/// Every photo row's object is in the bucket with the digest its row stores.
async fn objects_in_bucket(source: &Path, s3: &[(String, String)]) -> usize {
    let mut src = sqlite(source).await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT object_key, stored_sha256 FROM submission_photos")
            .fetch_all(&mut src)
            .await
            .expect("photos");
    let store = bucket(s3);
    use server::storage::BlobStore;
    for (key, sha) in &rows {
        let object = store
            .get(key)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{key} is not in the bucket"));
        let mut body = object.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = futures::TryStreamExt::try_next(&mut body)
            .await
            .expect("body")
        {
            bytes.extend_from_slice(&chunk);
        }
        assert_eq!(&sha256_hex(&bytes), sha, "{key}");
    }
    rows.len()
}

fn bucket(s3: &[(String, String)]) -> server::storage::S3Store {
    let var = |k: &str| {
        s3.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    server::storage::S3Store::new(&server::config::S3Config {
        endpoint: Some(var("S3_ENDPOINT")),
        region: var("S3_REGION"),
        bucket: var("S3_BUCKET"),
        access_key_id: var("S3_ACCESS_KEY_ID"),
        secret_access_key: var("S3_SECRET_ACCESS_KEY").into(),
        force_path_style: true,
        prefix: var("S3_PREFIX"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_pilot_keeps_its_rows_photos_tokens_cursors_and_pending_uploads() {
    let Some((admin_url, s3)) = services() else {
        return;
    };
    let pilot = pilot(3).await;
    let db = PgDatabase::create(&admin_url).await;
    let before = source_files(&pilot.data);

    let out = move_to(&pilot, &db.url, &s3);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    let jwt_file = pilot.data.join("secrets/jwt_signing.key");
    let jwt_file = std::path::absolute(&jwt_file).expect("absolute");
    assert!(
        stdout.contains(&format!("JWT_KEYS=\"local:$(cat {})\"", jwt_file.display())),
        "{stdout}"
    );
    assert!(stdout.contains("BLOB_STORE=s3"), "{stdout}");
    assert!(stdout.contains("UIC_HMAC_KEY=\"$(cat "), "{stdout}");
    let key = std::fs::read_to_string(&jwt_file).expect("key");
    assert!(!stdout.contains(key.trim()), "the key is printed: {stdout}");
    let secret = &s3
        .iter()
        .find(|(k, _)| k == "S3_SECRET_ACCESS_KEY")
        .expect("s")
        .1;
    assert!(
        !stdout.contains(secret.as_str()),
        "the S3 secret is printed"
    );
    assert_eq!(
        source_files(&pilot.data),
        before,
        "the move changed the source"
    );

    // Every table, every row that phones and reports rely on, every object.
    let (a, b) = counts(&pilot.data.join("donghanh.db"), &db.url).await;
    assert_eq!(a, b, "rows per table");
    for table in migrations::TABLES {
        assert!(a.contains_key(*table), "{table} is not in the source");
    }
    for table in [
        "users",
        "submissions",
        "contacts",
        "submission_photos",
        "referrals",
        "handoffs",
        "submission_events",
        "audit_log",
        "refresh_tokens",
        "stock_movements",
        "report_cells",
        "client_keys",
        "group_sessions",
        "support_actions",
        "submission_revisions",
        "approved_contacts",
        "targets",
    ] {
        assert!(a[table] > 0, "the pilot has no {table} rows to move");
    }
    same_key_rows(&pilot.data.join("donghanh.db"), &db.url).await;
    assert_eq!(
        objects_in_bucket(&pilot.data.join("donghanh.db"), &s3).await,
        pilot.objects
    );

    // A server on the new database (its report check finds nothing): the phone goes
    // on where it was.
    let node = checked_server(&pilot, &moved_env(&pilot, &db.url, &s3));
    let res = common::client()
        .get(node.url("/api/v1/me"))
        .bearer_auth(&pilot.access_token)
        .send()
        .await
        .expect("me");
    assert_eq!(expect(res, 200).await["user"]["username"], PEER);
    let res = common::client()
        .post(node.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": pilot.refresh_token }))
        .send()
        .await
        .expect("refresh");
    let pair = expect(res, 200).await;
    let token = pair["access_token"].as_str().expect("token").to_string();

    // The supervisor reads the same report and the same visits.
    let ids: Vec<String> = pilot.stored.iter().map(|p| p.submission.clone()).collect();
    let (report, details, referrals) = supervisor_reads(&node, &pilot.supervisor_token, &ids).await;
    assert_eq!(report, pilot.report, "the indicators report after the move");
    assert!(
        report["unit"]["indicators"].as_array().is_some_and(|a| a
            .iter()
            .any(|c| c["indicator"] == "contact_events" && c["value"] == 4)),
        "the two approved visits' four contacts count (the revised one as revised): {report}"
    );
    assert_eq!(
        to_microseconds(&referrals),
        to_microseconds(&pilot.referrals),
        "the referrals (issued, completed {}, expired {}) after the move",
        pilot.completed,
        pilot.expired
    );
    // PostgreSQL keeps times to the microsecond, SQLite to the nanosecond: the move cuts
    // the digits past the sixth, nothing else may differ.
    assert_eq!(
        details,
        pilot
            .details
            .iter()
            .map(to_microseconds)
            .collect::<Vec<_>>(),
        "the visits' details after the move"
    );

    let (changes, cursor) = sync_all(&node, &token, Some(&pilot.cursor)).await;
    assert!(
        changes.is_empty(),
        "nothing changed since the cursor: {changes:#?}"
    );

    // A photo the phone still held uploads to the new server; a moved one reads back.
    expect(put_photo(&node, &token, &pilot.pending).await, 201).await;
    read_back(&node, &token, [&pilot.stored[1], &pilot.pending]).await;

    // A visit after the move reaches the phone from its old cursor, and only it.
    let bytes = png(20_000);
    let body = visit(&pilot.unit, "AFTER-MOVE-1991-M", &sha256_hex(&bytes));
    expect(
        post(node.url("/api/v1/submissions"), &token, &body).await,
        201,
    )
    .await;
    let (changes, _) = sync_all(&node, &token, Some(&pilot.cursor)).await;
    let ids: Vec<&Value> = changes
        .iter()
        .filter(|c| c["kind"] == "submissions")
        .map(|c| &c["item"]["id"])
        .collect();
    assert!(ids.contains(&&body["id"]), "{changes:#?}");
    assert!(
        !ids.iter()
            .any(|id| pilot.stored.iter().any(|p| json!(p.submission) == **id)),
        "old visits came again: {changes:#?}"
    );
    let (changes, _) = sync_all(&node, &token, Some(&cursor)).await;
    assert!(
        changes.iter().any(|c| c["item"]["id"] == body["id"]),
        "{changes:#?}"
    );
    node.stop();
    assert_eq!(source_files(&pilot.data), before, "the source changed");
}

#[tokio::test]
async fn a_target_that_holds_data_is_refused_and_the_source_is_unchanged() {
    let Some((admin_url, s3)) = services() else {
        return;
    };
    let pilot = pilot(2).await;
    let before = source_files(&pilot.data);

    // A database someone already uses.
    let db = PgDatabase::create(&admin_url).await;
    let mut conn = pg(&db.url).await;
    sqlx::query("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        .execute(&mut conn)
        .await
        .expect("create");
    sqlx::query("INSERT INTO notes VALUES (1, 'kept')")
        .execute(&mut conn)
        .await
        .expect("insert");
    let line = refused(&move_to(&pilot, &db.url, &s3));
    assert!(
        line.contains("not empty") && line.contains("notes"),
        "{line}"
    );
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("tables");
    assert_eq!(tables, 1, "the refused move created tables");
    drop(conn);

    // A database a finished move went into: nothing to do, said as a refusal.
    let done = PgDatabase::create(&admin_url).await;
    let out = move_to(&pilot, &done.url, &s3);
    assert!(out.status.success(), "{}", text(&out));
    let line = refused(&move_to(&pilot, &done.url, &s3));
    assert!(line.contains("already holds the finished move"), "{line}");

    // Another pilot's half-finished move is not resumed with this one.
    let other = another_pilot(&pilot).await;
    let line = refused(&donghanh(
        pilot.work.path(),
        &other,
        &["move", "--to-database", &done.url, "--to-s3"],
        &s3,
    ));
    assert!(line.contains("another data directory"), "{line}");
    assert_eq!(source_files(&pilot.data), before, "the source changed");
}

/// A second, fresh pilot (its org units have ids of their own).
async fn another_pilot(pilot: &Pilot) -> PathBuf {
    let data = pilot.work.path().join("other");
    let node = Node::start(pilot.work.path(), &data, common::NO_ENV, true);
    node.stop();
    data
}

#[tokio::test]
async fn wrong_credentials_and_an_unreachable_database_are_one_line_and_exit_2() {
    let Some((admin_url, s3)) = services() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let node = Node::start(work.path(), &data, common::NO_ENV, true);
    node.stop();
    let before = source_files(&data);
    let (host, _) = admin_url
        .rsplit_once('@')
        .map(|(_, rest)| (rest.split('/').next().unwrap_or_default(), ()))
        .expect("host in the admin URL");
    let wrong = format!("postgres://nobody_at_all:not-the-password@{host}/postgres");
    let line = refused(&donghanh(
        work.path(),
        &data,
        &["move", "--to-database", &wrong, "--to-s3"],
        &s3,
    ));
    assert!(
        line.contains("cannot connect to the target database"),
        "{line}"
    );
    assert!(
        !line.contains("not-the-password"),
        "the password is shown: {line}"
    );

    let unreachable = "postgres://donghanh:secret@127.0.0.1:1/donghanh";
    let line = refused(&donghanh(
        work.path(),
        &data,
        &["move", "--to-database", unreachable, "--to-s3"],
        &s3,
    ));
    assert!(
        line.contains("cannot connect to the target database"),
        "{line}"
    );
    assert!(!line.contains("secret"), "the password is shown: {line}");

    let line = refused(&donghanh(
        work.path(),
        &data,
        &["move", "--to-database", "mysql://x/y"],
        common::NO_ENV,
    ));
    assert!(line.contains("postgres://"), "{line}");
    assert_eq!(source_files(&data), before, "the source changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_cut_off_by_the_object_store_and_by_a_kill_resumes_and_ends_verified() {
    let Some((admin_url, s3)) = services() else {
        return;
    };
    let pilot = pilot(6).await;
    let db = PgDatabase::create(&admin_url).await;
    let before = source_files(&pilot.data);

    // The object store cannot be reached: the rows are in, the objects not.
    let down = with(&s3, &[("S3_ENDPOINT", "http://127.0.0.1:1")]);
    let line = refused(&move_to(&pilot, &db.url, &down));
    assert!(
        line.contains("object store") && line.contains("run the same move again"),
        "{line}"
    );

    // Killed after two objects (the test-only hook ends the process as a kill would).
    let stopping = with(&s3, &[("DONGHANH_MOVE_STOP_AFTER_OBJECTS", "2")]);
    let out = move_to(&pilot, &db.url, &stopping);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let mut conn = pg(&db.url).await;
    let finished: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT finished_at FROM donghanh_move")
            .fetch_one(&mut conn)
            .await
            .expect("progress");
    assert!(finished.is_none(), "a cut-off move looks finished");
    drop(conn);

    // Run again: it goes on, skips what is there, and checks everything.
    let out = move_to(&pilot, &db.url, &s3);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("resumed"), "{stdout}");
    assert!(stdout.contains("(0 written now)"), "{stdout}");
    let (a, b) = counts(&pilot.data.join("donghanh.db"), &db.url).await;
    assert_eq!(a, b, "rows per table");
    same_key_rows(&pilot.data.join("donghanh.db"), &db.url).await;
    assert_eq!(
        objects_in_bucket(&pilot.data.join("donghanh.db"), &s3).await,
        pilot.objects
    );
    assert_eq!(source_files(&pilot.data), before, "the source changed");

    let env = moved_env(&pilot, &db.url, &s3);
    let out = donghanh(
        pilot.work.path(),
        &pilot.work.path().join("pg-node"),
        &["rebuild-reports", "--check"],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_is_refused_while_a_server_runs_and_notices_a_writer_that_does_not_lock() {
    let Some((admin_url, s3)) = services() else {
        return;
    };
    let pilot = pilot(2).await;
    let db = PgDatabase::create(&admin_url).await;

    // A server is running on the pilot: refused before anything is written.
    let node = Node::start(pilot.work.path(), &pilot.data, common::NO_ENV, false);
    let line = refused(&move_to(&pilot, &db.url, &s3));
    assert!(line.contains("a server is running"), "{line}");
    let mut conn = pg(&db.url).await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("tables");
    assert_eq!(tables, 0, "the refused move created tables");
    node.stop();

    // Something that does not take the lock (a server of an older version) writes all
    // through the move, changing rows but not their number: the second look notices.
    let path = pilot.data.join("donghanh.db");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut conn = SqliteConnectOptions::new()
                .filename(&path)
                .busy_timeout(std::time::Duration::from_secs(10))
                .connect()
                .await
                .expect("open");
            let mut writes = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A real change (SQLite does not count a write of the same value).
                sqlx::query("UPDATE users SET updated_at = ? WHERE username = ?")
                    .bind(chrono::Utc::now().to_rfc3339())
                    .bind(PEER)
                    .execute(&mut conn)
                    .await
                    .expect("write");
                writes += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            writes
        })
    };
    let out = {
        let (work, data, url, s3) = (
            pilot.work.path().to_path_buf(),
            pilot.data.clone(),
            db.url.clone(),
            s3.clone(),
        );
        tokio::task::spawn_blocking(move || {
            donghanh(
                &work,
                &data,
                &["move", "--to-database", &url, "--to-s3"],
                &s3,
            )
        })
        .await
        .expect("move")
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.expect("writer");
    assert!(writes > 1, "the writer wrote {writes} times");
    let line = refused(&out);
    assert!(
        line.contains("the source changed while it was moved (rows were updated)"),
        "{line}"
    );
    let finished: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT finished_at FROM donghanh_move")
            .fetch_one(&mut conn)
            .await
            .expect("progress");
    assert!(
        finished.is_none(),
        "a move of a changing source looks finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_without_s3_keeps_the_photos_on_disk_and_the_server_serves_them() {
    let Some((admin_url, _)) = services() else {
        return;
    };
    let pilot = pilot(2).await;
    let db = PgDatabase::create(&admin_url).await;
    let before = source_files(&pilot.data);
    let out = donghanh(
        pilot.work.path(),
        &pilot.data,
        &["move", "--to-database", &db.url],
        common::NO_ENV,
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("BLOB_STORE=disk"), "{stdout}");
    let blob_dir = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("BLOB_DIR="))
        .expect("BLOB_DIR in the next steps")
        .to_string();
    assert_eq!(
        source_files(&pilot.data),
        before,
        "the move changed the source"
    );
    let (a, b) = counts(&pilot.data.join("donghanh.db"), &db.url).await;
    assert_eq!(a, b, "rows per table");

    // A server on PostgreSQL with the photos where they were.
    let mut env = moved_env(&pilot, &db.url, &[]);
    env.retain(|(k, _)| k != "BLOB_STORE");
    env.push(("BLOB_STORE".into(), "disk".into()));
    env.push(("BLOB_DIR".into(), blob_dir));
    let node = checked_server(&pilot, &env);
    let res = common::client()
        .post(node.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": pilot.refresh_token }))
        .send()
        .await
        .expect("refresh");
    let token = expect(res, 200).await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    expect(put_photo(&node, &token, &pilot.pending).await, 201).await;
    read_back(&node, &token, pilot.stored.iter().chain([&pilot.pending])).await;
    let ids: Vec<String> = pilot.stored.iter().map(|p| p.submission.clone()).collect();
    let (report, _, referrals) = supervisor_reads(&node, &pilot.supervisor_token, &ids).await;
    assert_eq!(report, pilot.report, "the indicators report after the move");
    assert_eq!(
        to_microseconds(&referrals),
        to_microseconds(&pilot.referrals)
    );
    node.stop();
}
