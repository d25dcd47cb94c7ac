//! ODK Collect end to end, as a district meets it: a supervisor enrols a peer
//! educator's phone, the phone reads the QR settings, the form list and the XForm over
//! OpenRosa, JavaRosa itself (the engine inside Collect, `tests/odk/Filler.java`) fills
//! the form, and the phone sends it with its photos, once split over two POSTs, once
//! again identically, and once as an edit after the supervisor asked for changes. The
//! JSON API then shows one record per visit, with its contacts, referrals, hashed UICs
//! and photos stored once and without GPS; approved, it counts in the indicators report.
//! And every bad input gets a precise 4xx in an OpenRosa envelope, with nothing written.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;
use shared_models::Role;

use crate::helpers::{problem, services_required, spawn_with, Actor, Backend, TestApp};
use crate::intake::dump_database;
use crate::on_both;
use crate::photos::{jpeg, with_gps};

on_both!(
    collect_enrols_fills_sends_and_the_supervisor_approves,
    bad_input_gets_a_precise_openrosa_answer_and_nothing_is_written,
);

// --- JavaRosa ---------------------------------------------------------------------

/// ODK Validate's jar (JavaRosa) and the compiled filler; `None` (skip) outside the test
/// command when they are missing, a failure inside it.
fn filler() -> Option<&'static (PathBuf, PathBuf)> {
    static FILLER: OnceLock<Option<(PathBuf, PathBuf, tempfile::TempDir)>> = OnceLock::new();
    let built = FILLER.get_or_init(|| {
        let jar = match std::env::var_os("DONGHANH_TEST_ODK_VALIDATE_JAR") {
            Some(jar) if Path::new(&jar).is_file() => PathBuf::from(jar),
            _ if services_required() => {
                panic!("DONGHANH_TEST_ODK_VALIDATE_JAR is not set: run scripts/test.sh")
            }
            _ => {
                eprintln!("skipping: no ODK_Validate.jar (run scripts/test.sh)");
                return None;
            }
        };
        let classes = tempfile::tempdir().expect("tempdir");
        let source = crate::helpers::manifest_dir().join("odk/Filler.java");
        let out = Command::new("javac")
            .arg("-cp")
            .arg(&jar)
            .arg("-d")
            .arg(classes.path())
            .arg(&source)
            .output()
            .expect("javac (a JDK is needed: scripts/test.sh installs one)");
        assert!(
            out.status.success(),
            "javac: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = classes.path().to_path_buf();
        Some((jar, dir, classes))
    });
    static PAIR: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    PAIR.get_or_init(|| built.as_ref().map(|(j, d, _)| (j.clone(), d.clone())))
        .as_ref()
}

/// Fills `xform` with the filler's `path=value` lines as a worker in Hà Nội would,
/// with the `places.csv` the server served; answers the instance XML Collect would send.
fn fill(xform: &[u8], places_csv: &[u8], answers: &str, extra: &[&str]) -> String {
    let (jar, classes) = filler().expect("filler");
    let dir = tempfile::tempdir().expect("tempdir");
    let media = dir.path().join("form-media");
    std::fs::create_dir(&media).expect("media dir");
    std::fs::write(media.join("places.csv"), places_csv).expect("places");
    std::fs::write(dir.path().join("form.xml"), xform).expect("form");
    std::fs::write(dir.path().join("answers.txt"), answers).expect("answers");
    let out = Command::new("java")
        .arg("-Duser.timezone=Asia/Ho_Chi_Minh")
        .arg("-cp")
        .arg(format!("{}:{}", jar.display(), classes.display()))
        .arg("Filler")
        .arg(dir.path().join("form.xml"))
        .arg(dir.path().join("answers.txt"))
        .arg("-o")
        .arg(dir.path().join("submission.xml"))
        .arg("--media")
        .arg(&media)
        .args(extra)
        .output()
        .expect("java");
    assert!(
        out.status.success(),
        "the filler refused:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.path().join("submission.xml")).expect("submission")
}

// --- a phone speaking OpenRosa ----------------------------------------------------------

/// What Collect knows after scanning the QR code: the server address.
struct Phone {
    base: String,
    client: reqwest::Client,
}

/// One OpenRosa answer.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The OpenRosa headers every answer carries.
    fn assert_openrosa(&self) {
        assert_eq!(self.header("x-openrosa-version"), "1.0", "{}", self.text());
        assert!(
            self.header("x-openrosa-accept-content-length")
                .parse::<u64>()
                .is_ok_and(|n| n > 1_000_000),
            "accept-content-length {:?}",
            self.header("x-openrosa-accept-content-length")
        );
    }

    /// An error in an OpenRosa envelope, with this status; answers its message.
    fn assert_refused(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        self.assert_openrosa();
        assert_eq!(self.header("content-type"), "text/xml; charset=utf-8");
        let doc = self.text();
        let xml = roxmltree::Document::parse(&doc).expect("an XML envelope");
        let root = xml.root_element();
        assert_eq!(root.tag_name().name(), "OpenRosaResponse");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://openrosa.org/http/response")
        );
        let message = root
            .children()
            .find(|n| n.has_tag_name(("http://openrosa.org/http/response", "message")))
            .expect("message");
        assert_eq!(message.attribute("nature"), Some("error"));
        message.text().unwrap_or_default().to_string()
    }
}

impl Phone {
    fn new(base: &str) -> Phone {
        Phone {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        }
    }

    /// A request as Collect makes it: its headers, `?deviceID=` on every URL.
    async fn send(&self, method: Method, url: &str, form: Option<Form>) -> Answer {
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut req = self
            .client
            .request(
                method,
                format!("{url}{sep}deviceID=collect:Q2xZ8sT0aLmN3pRk"),
            )
            .header("X-OpenRosa-Version", "1.0")
            .header(
                "User-Agent",
                "org.odk.collect.android/v2025.2.3 Dalvik/2.1.0",
            )
            // Collect's own, which is not a valid HTTP date (12-hour clock).
            .header("Date", "Tue, 02 Dec 2026 07:15:00 GMT+07:00");
        if let Some(form) = form {
            req = req.multipart(form);
        }
        let res = req.send().await.expect("request");
        Answer {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.bytes().await.expect("body").to_vec(),
        }
    }

    async fn get(&self, url: &str) -> Answer {
        self.send(Method::GET, url, None).await
    }

    async fn submit(&self, form: Form) -> Answer {
        self.send(
            Method::POST,
            &format!("{}/submission", self.base),
            Some(form),
        )
        .await
    }
}

/// A multipart submission: the instance XML and files named by their file names.
fn submission(xml: &str, files: &[(&str, &[u8])], incomplete: bool) -> Form {
    let mut form = Form::new().part(
        "xml_submission_file",
        Part::bytes(xml.as_bytes().to_vec())
            .file_name("Lượt tiếp cận_2026-12-02_07-15-00.xml")
            .mime_str("text/xml")
            .expect("mime"),
    );
    for (name, bytes) in files {
        form = form.part(
            name.to_string(),
            Part::bytes(bytes.to_vec())
                .file_name(name.to_string())
                .mime_str("image/jpeg")
                .expect("mime"),
        );
    }
    if incomplete {
        form = form.text("*isIncomplete*", "yes");
    }
    form
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(md5::Md5::digest(bytes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The text of the first descendant element with this local name.
fn element<'a>(doc: &'a roxmltree::Document, name: &str) -> Option<&'a str> {
    doc.descendants()
        .find(|n| n.tag_name().name() == name)
        .and_then(|n| n.text())
}

/// The UUID of a submitted instance (its `meta/instanceID`).
fn instance_uuid(xml: &str) -> uuid::Uuid {
    let doc = roxmltree::Document::parse(xml).expect("instance");
    let id = element(&doc, "instanceID").expect("instanceID");
    uuid::Uuid::parse_str(id.trim_start_matches("uuid:")).expect("uuid")
}

// --- the JSON API side ------------------------------------------------------------------

async fn enrol(app: &TestApp, by: &Actor, user: &Actor) -> Value {
    let res = app
        .post(
            &format!("/api/v1/users/{}/devices", user.user.id),
            Some(by.token()),
            &json!({ "label": "Samsung A14" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.expect("enrolment")
}

async fn count(app: &TestApp, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.state.db;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("row");
    row.try_get::<i64>("", "n").expect("n")
}

async fn detail(app: &TestApp, who: &Actor, id: uuid::Uuid) -> Value {
    let res = app
        .get(&format!("/api/v1/submissions/{id}"), who.token())
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("detail")
}

async fn review(app: &TestApp, who: &Actor, id: uuid::Uuid, decision: &str) -> StatusCode {
    app.post(
        &format!("/api/v1/submissions/{id}/review"),
        Some(who.token()),
        &json!({ "decision": decision, "comment": "Ảnh phiếu bị mờ, chụp lại giúp em" }),
    )
    .await
    .status()
}

/// The XForm, the places file and the list entry of one form, as Collect fetches them.
struct Downloaded {
    xform: Vec<u8>,
    places: Vec<u8>,
}

async fn download(phone: &Phone, form_id: &str) -> Downloaded {
    let list = phone.get(&format!("{}/formList", phone.base)).await;
    assert_eq!(list.status, StatusCode::OK);
    let text = list.text();
    let doc = roxmltree::Document::parse(&text).expect("form list XML");
    let xform = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "xform")
        .find(|n| {
            n.children()
                .any(|c| c.tag_name().name() == "formID" && c.text() == Some(form_id))
        })
        .expect("the form is listed");
    let child = |name: &str| {
        xform
            .children()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .unwrap_or_default()
            .to_string()
    };
    let form = phone.get(&child("downloadUrl")).await;
    assert_eq!(form.status, StatusCode::OK);
    form.assert_openrosa();
    assert_eq!(
        child("hash"),
        format!("md5:{}", md5_hex(&form.body)),
        "the listed hash is the MD5 of the bytes served"
    );
    let manifest = phone.get(&child("manifestUrl")).await;
    assert_eq!(manifest.status, StatusCode::OK);
    manifest.assert_openrosa();
    assert_eq!(manifest.header("content-type"), "text/xml; charset=utf-8");
    let mtext = manifest.text();
    let mdoc = roxmltree::Document::parse(&mtext).expect("manifest");
    assert_eq!(
        mdoc.root_element().tag_name().namespace(),
        Some("http://openrosa.org/xforms/xformsManifest")
    );
    assert_eq!(element(&mdoc, "filename"), Some("places.csv"));
    let places = phone
        .get(element(&mdoc, "downloadUrl").expect("media url"))
        .await;
    assert_eq!(places.status, StatusCode::OK);
    assert_eq!(
        element(&mdoc, "hash").map(str::to_string),
        Some(format!("md5:{}", md5_hex(&places.body)))
    );
    Downloaded {
        xform: form.body,
        places: places.body,
    }
}

/// A night's outreach visit at the hotspot: five people, the first referred for an HIV
/// test, two photos.
fn outreach_answers(today: &str, condoms_first: u32, photos: &[&str]) -> String {
    let mut lines = format!("dh_place=h:DD-K01\nvisit_date={today}\nplace_type=karaoke\n");
    let people = [
        "Nguyễn Thị-Đào 1990 F",
        "Lê Văn Hùng 1985 M",
        "Trần Thu Hà 1998 F",
        "Phạm Minh Anh 2001 F",
        "Đỗ Thị Lan 1979 F",
    ];
    for (i, uic) in people.iter().enumerate() {
        let n = i + 1;
        let condoms = if i == 0 { condoms_first } else { 2 };
        lines.push_str(&format!(
            "contacts[{n}]/uic={uic}\ncontacts[{n}]/age_band=25_34\ncontacts[{n}]/condoms_male={condoms}\n\
             contacts[{n}]/condoms_female=0\ncontacts[{n}]/lubricant=1\ncontacts[{n}]/self_test_kits=0\n\
             contacts[{n}]/iec_materials=1\ncontacts[{n}]/counselled=true\n"
        ));
        if i == 0 {
            lines.push_str("contacts[1]/referrals=hiv_test\n");
        }
    }
    for (i, photo) in photos.iter().enumerate() {
        lines.push_str(&format!("photos[{}]/photo={photo}\n", i + 1));
    }
    lines
}

async fn collect_enrols_fills_sends_and_the_supervisor_approves(app: TestApp) {
    if filler().is_none() {
        return;
    }
    let supervisor = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let unit = app.unit("006").await;
    let res = app
        .post(
            "/api/v1/hotspots",
            Some(supervisor.token()),
            &json!({ "code": "DD-K01", "type": "karaoke", "org_unit_id": unit, "estimated_size": 30 }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // The supervisor enrols the phone; the QR code holds Collect's settings.
    let enrolment = enrol(&app, &supervisor, &peer).await;
    let server_url = enrolment["odk_server_url"]
        .as_str()
        .expect("url")
        .to_string();
    assert!(
        server_url.starts_with(&format!("{}/odk/", app.base)),
        "{server_url}"
    );
    let settings = &enrolment["odk_settings"];
    assert_eq!(settings["general"]["server_url"], server_url.as_str());
    assert_eq!(settings["general"]["username"], peer.user.username.as_str());
    assert_eq!(settings["general"]["app_language"], "vi");
    assert!(settings["admin"].is_object());
    let payload = enrolment["odk_settings_payload"].as_str().expect("payload");
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .expect("base64");
    assert_eq!(
        &compressed[..2],
        &[0x78, 0x9c],
        "zlib framing, as Collect reads it"
    );
    let mut json_text = String::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .read_to_string(&mut json_text)
        .expect("inflate");
    assert_eq!(
        &serde_json::from_str::<Value>(&json_text).expect("settings"),
        settings
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(enrolment["odk_settings_qr_png"].as_str().expect("png"))
        .expect("png base64");
    assert_eq!(decode_qr(&png), payload, "the QR code holds the payload");
    // The token is in the address, and nowhere in the database.
    let token = server_url.rsplit('/').next().expect("token").to_string();
    assert_eq!(token.len(), 43);
    assert!(!dump_database(&app).await.contains(&token));

    let phone = Phone::new(&server_url);
    // The form list: what a peer educator may submit, Collect's headers on the answer.
    let list = phone.get(&format!("{server_url}/formList")).await;
    assert_eq!(list.status, StatusCode::OK);
    list.assert_openrosa();
    assert_eq!(list.header("content-type"), "text/xml; charset=utf-8");
    let text = list.text();
    let doc = roxmltree::Document::parse(&text).expect("form list");
    assert_eq!(
        doc.root_element().tag_name().namespace(),
        Some("http://openrosa.org/xforms/xformsList")
    );
    let mut listed: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "formID")
        .filter_map(|n| n.text())
        .collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        ["group_session", "outreach_visit", "referral_handoff"]
    );
    let outreach = download(&phone, "outreach_visit").await;
    let places = String::from_utf8(outreach.places.clone()).expect("csv");
    assert!(places.starts_with("name,label\n"), "{places}");
    assert!(places.contains("h:DD-K01,"), "{places}");
    assert!(places.contains(&format!("u:{unit},")), "{places}");

    // Collect's pre-flight.
    let head = phone
        .send(Method::HEAD, &format!("{server_url}/submission"), None)
        .await;
    assert_eq!(head.status, StatusCode::NO_CONTENT);
    head.assert_openrosa();

    // A night's visit, filled by JavaRosa, sent with two photos (one with GPS EXIF).
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).expect("+7"))
        .date_naive()
        .to_string();
    let photo_a = with_gps(&jpeg(11, 64, 48));
    let photo_b = jpeg(12, 48, 64);
    let xml = fill(
        &outreach.xform,
        &outreach.places,
        &outreach_answers(&today, 10, &["1764659700123.jpg", "1764659800456.jpg"]),
        &[],
    );
    let visit = instance_uuid(&xml);
    let files: [(&str, &[u8]); 2] = [
        ("1764659700123.jpg", &photo_a),
        ("1764659800456.jpg", &photo_b),
    ];
    let sent = phone.submit(submission(&xml, &files, false)).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text());
    sent.assert_openrosa();
    assert!(sent.text().contains("Đã nhận"), "{}", sent.text());
    let counts = (
        count(&app, "submissions").await,
        count(&app, "submission_photos").await,
    );
    assert_eq!(counts, (1, 2));
    // A resend over a flaky link: 201 again, nothing written.
    for _ in 0..2 {
        let again = phone.submit(submission(&xml, &files, false)).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    }
    assert_eq!(
        (
            count(&app, "submissions").await,
            count(&app, "submission_photos").await
        ),
        counts
    );

    // What the supervisor sees through the JSON API: the same records as the app's.
    let stored = detail(&app, &supervisor, visit).await;
    assert_eq!(stored["source"], "odk_collect");
    assert_eq!(stored["status"], "submitted");
    assert_eq!(stored["author_id"], json!(peer.user.id));
    assert_eq!(stored["org_unit_id"], json!(unit));
    assert!(stored["hotspot_id"].is_string());
    assert_eq!(
        stored["answers"]["contacts"].as_array().map(Vec::len),
        Some(5)
    );
    let uic = stored["answers"]["contacts"][0]["uic"]
        .as_str()
        .expect("uic");
    assert!(
        uic.len() == 64 && uic.bytes().all(|b| b.is_ascii_hexdigit()),
        "{uic}"
    );
    assert_eq!(stored["referrals"].as_array().map(Vec::len), Some(1));
    assert_eq!(stored["referrals"][0]["service"], "hiv_test");
    let digests: Vec<(String, bool)> = stored["photos"]
        .as_array()
        .expect("photos")
        .iter()
        .map(|p| {
            (
                p["sha256"].as_str().unwrap_or("").to_string(),
                p["present"] == true,
            )
        })
        .collect();
    assert_eq!(
        digests,
        [(sha256_hex(&photo_a), true), (sha256_hex(&photo_b), true)]
    );
    assert_eq!(count(&app, "contacts").await, 5);
    // Stored once each, and without the GPS block.
    let read = app
        .get(
            &format!(
                "/api/v1/submissions/{visit}/photos/{}",
                sha256_hex(&photo_a)
            ),
            supervisor.token(),
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let bytes = read.bytes().await.expect("photo");
    assert!(!bytes.windows(6).any(|w| w == b"Exif\0\0"), "GPS EXIF kept");
    assert!(jpeg_decoder::Decoder::new(&bytes[..]).decode().is_ok());
    // No raw client code anywhere in the database.
    let dump = dump_database(&app).await.to_uppercase();
    for raw in [
        "Nguyễn Thị-Đào 1990 F",
        "NGUYENTHIDAO1990F",
        "LEVANHUNG1985M",
    ] {
        assert!(!dump.contains(&raw.to_uppercase()), "{raw} stored");
    }

    // A second visit split over two POSTs, as Collect does past its size limit.
    let photo_c = jpeg(13, 40, 40);
    let photo_d = jpeg(14, 40, 40);
    let xml2 = fill(
        &outreach.xform,
        &outreach.places,
        &outreach_answers(&today, 4, &["c.jpg", "d.jpg"]),
        &[],
    );
    let second = instance_uuid(&xml2);
    let part1 = phone
        .submit(submission(&xml2, &[("c.jpg", &photo_c)], true))
        .await;
    assert_eq!(part1.status, StatusCode::CREATED, "{}", part1.text());
    let half = detail(&app, &supervisor, second).await;
    let present: Vec<bool> = half["photos"]
        .as_array()
        .expect("photos")
        .iter()
        .map(|p| p["present"] == true)
        .collect();
    assert_eq!(present, [true, false], "the second photo is still missing");
    // Approval waits for every photo.
    assert_eq!(
        review(&app, &supervisor, second, "approve").await,
        StatusCode::CONFLICT
    );
    let part2 = phone
        .submit(submission(&xml2, &[("d.jpg", &photo_d)], false))
        .await;
    assert_eq!(part2.status, StatusCode::CREATED, "{}", part2.text());
    let whole = detail(&app, &supervisor, second).await;
    assert!(whole["photos"]
        .as_array()
        .expect("photos")
        .iter()
        .all(|p| p["present"] == true));
    assert_eq!(count(&app, "submissions").await, 2);
    assert_eq!(count(&app, "submission_photos").await, 4);

    // The supervisor sends the first back; the worker edits it in Collect.
    assert_eq!(
        review(&app, &supervisor, visit, "request_changes").await,
        StatusCode::OK
    );
    let edit = fill(
        &outreach.xform,
        &outreach.places,
        &outreach_answers(&today, 20, &["1764659700123.jpg", "1764659800456.jpg"]),
        &["--deprecated-id", &format!("uuid:{visit}")],
    );
    assert_ne!(instance_uuid(&edit), visit);
    let sent = phone.submit(submission(&edit, &files, false)).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text());
    let revised = detail(&app, &supervisor, visit).await;
    assert_eq!(revised["revision"], 2);
    assert_eq!(revised["status"], "submitted");
    assert_eq!(revised["source"], "odk_collect");
    assert_eq!(revised["answers"]["contacts"][0]["condoms_male"], 20);
    assert_eq!(count(&app, "submissions").await, 2);
    // The edit's photos are the same bytes: still one object each.
    assert_eq!(count(&app, "submission_photos").await, 4);
    // The same edit again is a resend; an edit of a visit not sent back is refused.
    let again = phone.submit(submission(&edit, &files, false)).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    assert_eq!(detail(&app, &supervisor, visit).await["revision"], 2);
    let stray_edit = fill(
        &outreach.xform,
        &outreach.places,
        &outreach_answers(&today, 30, &[]),
        &["--deprecated-id", &format!("uuid:{second}")],
    );
    let refused = phone.submit(submission(&stray_edit, &[], false)).await;
    refused.assert_refused(StatusCode::CONFLICT);

    // Approved, both visits count in the indicators report (ten contacts, five people).
    for id in [visit, second] {
        assert_eq!(
            review(&app, &supervisor, id, "approve").await,
            StatusCode::OK
        );
    }
    let report: Value = app
        .get(
            &format!("/api/v1/reports/indicators?org_unit={unit}&from={today}&to={today}"),
            supervisor.token(),
        )
        .await
        .json()
        .await
        .expect("report");
    let value = |key: &str| {
        report["unit"]["indicators"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["indicator"] == key))
            .map(|i| i["value"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(value("people_reached"), json!(5), "{report}");
    assert_eq!(value("contact_events"), json!(10), "{report}");

    // The JSON app signs in with the one-time code, once.
    let code = enrolment["sign_in_code"].as_str().expect("code");
    let res = app
        .post(
            "/api/v1/auth/enrol",
            None,
            &json!({ "code": code.to_lowercase() }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let pair: Value = res.json().await.expect("tokens");
    let reused = app
        .post("/api/v1/auth/enrol", None, &json!({ "code": code }))
        .await;
    problem(reused, StatusCode::UNAUTHORIZED).await;

    // Revoking the phone cuts Collect and the app off at once.
    let device_id = enrolment["device_id"].as_str().expect("device id");
    let res = app
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{}/devices/{device_id}", peer.user.id),
            Some(supervisor.token()),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    phone
        .get(&format!("{server_url}/formList"))
        .await
        .assert_refused(StatusCode::FORBIDDEN);
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({ "refresh_token": pair["refresh_token"] }),
        )
        .await;
    problem(refresh, StatusCode::UNAUTHORIZED).await;
}

/// Decodes the QR code in a greyscale PNG.
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(png_bytes);
    let mut reader = decoder.read_info().expect("png");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    let (_, content) = grids[0].decode().expect("decode");
    content
}

async fn bad_input_gets_a_precise_openrosa_answer_and_nothing_is_written(app: TestApp) {
    if filler().is_none() {
        return;
    }
    let supervisor = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let volunteer = app.actor(Role::Volunteer, "006").await;
    let enrolment = enrol(&app, &supervisor, &peer).await;
    let server_url = enrolment["odk_server_url"]
        .as_str()
        .expect("url")
        .to_string();
    let phone = Phone::new(&server_url);
    let outreach = download(&phone, "outreach_visit").await;
    let today = chrono::Utc::now().date_naive().to_string();
    let mut answers = outreach_answers(&today, 3, &["p.jpg"]);
    answers = answers.replace(
        "dh_place=h:DD-K01",
        &format!("dh_place=u:{}", app.unit("006").await),
    );
    let xml = fill(&outreach.xform, &outreach.places, &answers, &[]);
    let photo = jpeg(21, 32, 32);

    let cases: Vec<(&str, Form, StatusCode, &str)> = vec![
        (
            "truncated XML",
            submission(&xml[..xml.len() / 2], &[], false),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            "an entity bomb",
            submission(
                &format!(
                    "<?xml version=\"1.0\"?><!DOCTYPE data [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}",
                    xml.split_once("?>").map_or(xml.as_str(), |(_, rest)| rest).replacen("<visit_date>", "<visit_date>&b;", 1)
                ),
                &[],
                false,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            "another form",
            submission(&xml.replacen("id=\"outreach_visit\"", "id=\"no_such_form\"", 1), &[], false),
            StatusCode::NOT_FOUND,
            "biểu mẫu",
        ),
        (
            "an unknown version",
            submission(&xml.replacen("version=\"1\"", "version=\"99\"", 1), &[], false),
            StatusCode::NOT_FOUND,
            "phiên bản",
        ),
        (
            "an element the form does not have",
            submission(&xml.replacen("<visit_date>", "<favourite_colour>đỏ</favourite_colour><visit_date>", 1), &[], false),
            StatusCode::UNPROCESSABLE_ENTITY,
            "favourite_colour",
        ),
        (
            "a mistyped value",
            submission(&xml.replacen("<condoms_male>3</condoms_male>", "<condoms_male>ba</condoms_male>", 1), &[], false),
            StatusCode::UNPROCESSABLE_ENTITY,
            "condoms_male",
        ),
        (
            "an attachment the XML does not name",
            submission(&xml, &[("p.jpg", &photo), ("stray.jpg", &photo)], false),
            StatusCode::UNPROCESSABLE_ENTITY,
            "stray.jpg",
        ),
        (
            "an attachment that is not an image",
            submission(&xml, &[("p.jpg", b"%PDF-1.4 not a photo at all, just text")], false),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "p.jpg",
        ),
        (
            "no XML part",
            Form::new().part("p.jpg", Part::bytes(photo.clone()).file_name("p.jpg")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "xml_submission_file",
        ),
    ];
    for (what, form, status, needle) in cases {
        let answer = phone.submit(form).await;
        let message = answer.assert_refused(status);
        assert!(message.contains(needle), "{what}: {message}");
        assert_eq!(
            count(&app, "submissions").await,
            0,
            "{what} wrote a submission"
        );
        assert_eq!(count(&app, "odk_instances").await, 0, "{what}");
    }
    // Not multipart at all.
    let res = phone
        .client
        .post(format!("{server_url}/submission"))
        .header("content-type", "text/xml")
        .body(xml.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Past the photo limit: 413, nothing kept.
    let small = spawn_with(Backend::Sqlite, |c| c.photo_body_limit = 64 * 1024).await;
    if let Some(small) = small {
        let sup = small.actor(Role::Supervisor, "006").await;
        let worker = small.actor(Role::PeerEducator, "006").await;
        let e = enrol(&small, &sup, &worker).await;
        let p = Phone::new(e["odk_server_url"].as_str().expect("url"));
        let big = jpeg(22, 400, 400);
        assert!(big.len() > 64 * 1024, "{}", big.len());
        p.submit(submission(&xml, &[("p.jpg", &big)], false))
            .await
            .assert_refused(StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(count(&small, "submissions").await, 0);
    }

    // A volunteer's phone may not send an outreach visit (nor is it listed to it).
    let volunteer_phone = Phone::new(
        enrol(&app, &supervisor, &volunteer).await["odk_server_url"]
            .as_str()
            .expect("url"),
    );
    let list = volunteer_phone
        .get(&format!("{}/formList", volunteer_phone.base))
        .await;
    assert!(!list.text().contains("outreach_visit"), "{}", list.text());
    volunteer_phone
        .submit(submission(&xml, &[("p.jpg", &photo)], false))
        .await
        .assert_refused(StatusCode::FORBIDDEN);
    volunteer_phone
        .get(&format!(
            "{}/forms/outreach_visit/1/form.xml",
            volunteer_phone.base
        ))
        .await
        .assert_refused(StatusCode::NOT_FOUND);
    // Unknown and malformed tokens.
    for token in [
        "A".repeat(43),
        "short".to_string(),
        "bad%20token%00".to_string(),
    ] {
        Phone::new(&format!("{}/odk/{token}", app.base))
            .get(&format!("{}/odk/{token}/formList", app.base))
            .await
            .assert_refused(StatusCode::FORBIDDEN);
    }
    assert_eq!(count(&app, "submissions").await, 0);

    // The well-formed one is accepted; then the worker is deactivated and the phone
    // is refused on its very next request.
    let sent = phone
        .submit(submission(&xml, &[("p.jpg", &photo)], false))
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text());
    // Other XML under the same instanceID is a conflict.
    let other = xml.replacen(
        "<condoms_male>3</condoms_male>",
        "<condoms_male>4</condoms_male>",
        1,
    );
    phone
        .submit(submission(&other, &[("p.jpg", &photo)], false))
        .await
        .assert_refused(StatusCode::CONFLICT);
    let res = app
        .patch(
            &format!("/api/v1/users/{}", peer.user.id),
            supervisor.token(),
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let head = phone
        .send(Method::HEAD, &format!("{server_url}/submission"), None)
        .await;
    assert_eq!(head.status, StatusCode::FORBIDDEN);
    phone
        .get(&format!("{server_url}/formList"))
        .await
        .assert_refused(StatusCode::FORBIDDEN);
    assert_eq!(count(&app, "submissions").await, 1);
}
