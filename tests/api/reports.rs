//! The indicators report against figures this test computes itself from what it
//! submitted and what it approved: a seeded random program of outreach visits, group
//! sessions, support visits and referral handoffs in two districts and a commune of
//! one of them (before the July 2025 reorganisation) and in three wards (after it),
//! reviewed by each area's supervisor, then every cell of the city, district and ward
//! reports (calendar quarters, a span across the reorganisation, the fiscal year, the
//! national quarter) and of their children compared with the expectation, before and
//! after an admin reopens approved submissions. Also: targets, bad queries, scope, the
//! CSV export against the JSON report, and the audit of report reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Duration, NaiveDate};
use futures::future::join_all;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_models::Role;
use uuid::Uuid;

use crate::helpers::{faults, problem, Actor, TestApp};
use crate::on_both;
use crate::photos::{jpeg, sha256_hex};

on_both!(
    indicators_match_an_independent_count_of_approved_work,
    targets_sit_beside_their_indicator_for_that_unit_and_period,
    bad_report_queries_name_their_field,
    reports_keep_to_the_readers_scope,
    concurrent_approvals_count_every_person_once,
    csv_export_equals_the_json_report_and_reads_are_audited,
    start_up_rebuilds_cells_of_another_layout_and_only_then,
);

/// The seed of the generated program; printed in every assertion about it.
const SEED: u64 = 20_250_701;

const SERVICES: [&str; 4] = ["hiv_test", "sti_exam", "prep", "other"];
const AUDIENCES: [&str; 3] = ["establishment_owners", "workers", "community"];
const ACTIONS: [&str; 6] = [
    "counselling",
    "job_referral",
    "vocational_training",
    "loan",
    "health_insurance",
    "rehab_persuasion",
];
const TOPICS: [&str; 6] = [
    "hiv_prevention",
    "condom_use",
    "sti",
    "drug_harm_reduction",
    "legal_rights",
    "other",
];

/// Every indicator of the report, written out here (not taken from the server), and
/// whether it counts people (and so is suppressed at 1 to 4).
fn indicators() -> Vec<(String, bool)> {
    let mut keys: Vec<(String, bool)> = [
        ("people_reached", true),
        ("people_new", true),
        ("people_returning", true),
        ("contact_events", false),
        ("condoms_male", false),
        ("condoms_female", false),
        ("lubricant", false),
        ("self_test_kits", false),
    ]
    .iter()
    .map(|(k, p)| (k.to_string(), *p))
    .collect();
    for s in SERVICES {
        keys.push((format!("referrals_issued.{s}"), true));
        keys.push((format!("referrals_completed.{s}"), true));
    }
    keys.push(("group_sessions".into(), false));
    for a in AUDIENCES {
        keys.push((format!("group_participants.{a}"), false));
    }
    for a in ACTIONS {
        keys.push((format!("support.{a}"), true));
    }
    keys.push(("support.loan_amount_vnd".into(), true));
    keys
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a calendar day")
}

// --- request bodies ------------------------------------------------------------------

/// A submission of `form_id` made in `unit`, finished on the phone on `on`.
fn envelope(form_id: &str, unit: Uuid, on: NaiveDate, answers: Value) -> Value {
    let start = on.and_hms_opt(2, 0, 0).expect("time").and_utc();
    json!({
        "id": Uuid::new_v4(),
        "form_id": form_id,
        "form_version": 1,
        "started_at": start.to_rfc3339(),
        "completed_at": (start + Duration::minutes(40)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": answers,
    })
}

/// One person met in an outreach visit, and what they were given.
#[derive(Debug, Clone)]
struct Contact {
    person: usize,
    uic: String,
    condoms_male: i64,
    condoms_female: i64,
    lubricant: i64,
    self_test_kits: i64,
    referrals: Vec<&'static str>,
}

fn contact_answers(c: &Contact) -> Value {
    let mut v = json!({
        "uic": c.uic,
        "age_band": "25_34",
        "condoms_male": c.condoms_male,
        "condoms_female": c.condoms_female,
        "lubricant": c.lubricant,
        "self_test_kits": c.self_test_kits,
        "counselled": true,
        "referrals": c.referrals,
    });
    if c.referrals.contains(&"other") {
        v["referral_other"] = json!("Trung tâm y tế phường");
    }
    v
}

fn outreach_body(unit: Uuid, on: NaiveDate, contacts: &[Contact]) -> Value {
    envelope(
        "outreach_visit",
        unit,
        on,
        json!({
            "visit_date": on.to_string(),
            "place_type": "karaoke",
            "contacts": contacts.iter().map(contact_answers).collect::<Vec<_>>(),
        }),
    )
}

/// A visit of the secondary tests: each contact given 10 male condoms, 1 female condom,
/// 2 sachets of lubricant and 1 self-test kit.
fn simple_visit(unit: Uuid, on: NaiveDate, contacts: &[(&str, &[&'static str])]) -> Value {
    let contacts: Vec<Contact> = contacts
        .iter()
        .map(|(uic, referrals)| Contact {
            person: 0,
            uic: uic.to_string(),
            condoms_male: 10,
            condoms_female: 1,
            lubricant: 2,
            self_test_kits: 1,
            referrals: referrals.to_vec(),
        })
        .collect();
    outreach_body(unit, on, &contacts)
}

// --- the generated program and what it should add up to -------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Approve,
    Reject,
    RequestChanges,
    Leave,
}

impl Fate {
    fn decision(self) -> Option<&'static str> {
        match self {
            Fate::Approve => Some("approve"),
            Fate::Reject => Some("reject"),
            Fate::RequestChanges => Some("request_changes"),
            Fate::Leave => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Visit {
    id: Uuid,
    area: usize,
    day: NaiveDate,
    contacts: Vec<Contact>,
    /// The referral codes the server printed: (code, service).
    codes: Vec<(String, String)>,
    fate: Fate,
    approved: bool,
}

#[derive(Debug, Clone)]
struct Session {
    id: Uuid,
    area: usize,
    day: NaiveDate,
    audience: &'static str,
    participants: i64,
    fate: Fate,
    approved: bool,
}

#[derive(Debug, Clone)]
struct Support {
    id: Uuid,
    area: usize,
    day: NaiveDate,
    actions: Vec<&'static str>,
    loan: Option<i64>,
    fate: Fate,
    approved: bool,
}

/// Everything the test submitted, and what became of it.
#[derive(Debug, Default, Clone)]
struct World {
    visits: Vec<Visit>,
    sessions: Vec<Session>,
    supports: Vec<Support>,
    /// Referral codes whose handoff is approved.
    completed: BTreeSet<String>,
}

fn add(raw: &mut BTreeMap<String, i64>, key: &str, n: i64) {
    *raw.get_mut(key)
        .unwrap_or_else(|| panic!("{key} is not an indicator")) += n;
}

impl World {
    /// Each person's first approved contact anywhere in the program.
    fn first_approved(&self) -> HashMap<usize, NaiveDate> {
        let mut first: HashMap<usize, NaiveDate> = HashMap::new();
        for v in self.visits.iter().filter(|v| v.approved) {
            for c in &v.contacts {
                let d = first.entry(c.person).or_insert(v.day);
                *d = (*d).min(v.day);
            }
        }
        first
    }

    /// The raw figures of the areas `in_scope` says are in the unit's subtree.
    fn figures(
        &self,
        in_scope: impl Fn(usize) -> bool,
        from: NaiveDate,
        to: NaiveDate,
    ) -> BTreeMap<String, i64> {
        let counts = |area: usize, d: NaiveDate| in_scope(area) && from <= d && d <= to;
        let first = self.first_approved();
        let mut raw: BTreeMap<String, i64> =
            indicators().into_iter().map(|(k, _)| (k, 0)).collect();
        let mut reached = BTreeSet::new();
        for v in self
            .visits
            .iter()
            .filter(|v| v.approved && counts(v.area, v.day))
        {
            for c in &v.contacts {
                reached.insert(c.person);
                add(&mut raw, "contact_events", 1);
                add(&mut raw, "condoms_male", c.condoms_male);
                add(&mut raw, "condoms_female", c.condoms_female);
                add(&mut raw, "lubricant", c.lubricant);
                add(&mut raw, "self_test_kits", c.self_test_kits);
                for s in &c.referrals {
                    add(&mut raw, &format!("referrals_issued.{s}"), 1);
                }
            }
            for (code, service) in &v.codes {
                if self.completed.contains(code) {
                    add(&mut raw, &format!("referrals_completed.{service}"), 1);
                }
            }
        }
        let new = reached
            .iter()
            .filter(|p| first.get(p).is_some_and(|d| *d >= from))
            .count() as i64;
        add(&mut raw, "people_reached", reached.len() as i64);
        add(&mut raw, "people_new", new);
        add(&mut raw, "people_returning", reached.len() as i64 - new);
        for s in self
            .sessions
            .iter()
            .filter(|s| s.approved && counts(s.area, s.day))
        {
            add(&mut raw, "group_sessions", 1);
            add(
                &mut raw,
                &format!("group_participants.{}", s.audience),
                s.participants,
            );
        }
        for s in self
            .supports
            .iter()
            .filter(|s| s.approved && counts(s.area, s.day))
        {
            for a in &s.actions {
                add(&mut raw, &format!("support.{a}"), 1);
            }
            if let Some(amount) = s.loan {
                add(&mut raw, "support.loan_amount_vnd", amount);
            }
        }
        raw
    }
}

/// A cell as the report should show it: (value, suppressed).
type Cells = BTreeMap<String, (Option<i64>, bool)>;

/// Person counts of 1 to 4 are suppressed; the loan total goes with the loan count.
fn suppress(raw: &BTreeMap<String, i64>) -> Cells {
    let small = |n: i64| (1..=4).contains(&n);
    let loans = raw.get("support.loan").copied().unwrap_or(0);
    indicators()
        .into_iter()
        .map(|(key, people)| {
            let value = raw.get(&key).copied().unwrap_or(0);
            let suppressed =
                (people && small(value)) || (key == "support.loan_amount_vnd" && small(loans));
            (
                key,
                (if suppressed { None } else { Some(value) }, suppressed),
            )
        })
        .collect()
}

// --- the org-unit tree as the admin lists it -------------------------------------------

#[derive(Debug, Clone)]
struct Unit {
    id: Uuid,
    code: String,
    name: String,
    parent: Option<Uuid>,
    valid_from: Option<NaiveDate>,
    valid_to: Option<NaiveDate>,
}

async fn catalogue(app: &TestApp, admin: &Actor) -> Vec<Unit> {
    let page = json_ok(app, "/api/v1/org-units?limit=200", admin.token()).await;
    assert!(page["next_cursor"].is_null(), "one page of units: {page}");
    let date = |v: &Value| {
        v.as_str()
            .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date"))
    };
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| Unit {
            id: serde_json::from_value(u["id"].clone()).expect("id"),
            code: u["code"].as_str().expect("code").to_string(),
            name: u["name"].as_str().expect("name").to_string(),
            parent: u["parent_id"]
                .as_str()
                .map(|p| p.parse().expect("parent id")),
            valid_from: date(&u["valid_from"]),
            valid_to: date(&u["valid_to"]),
        })
        .collect()
}

/// Whether `unit` is `ancestor` or lies below it.
fn within(units: &[Unit], unit: Uuid, ancestor: Uuid) -> bool {
    let mut at = Some(unit);
    while let Some(id) = at {
        if id == ancestor {
            return true;
        }
        at = units.iter().find(|u| u.id == id).and_then(|u| u.parent);
    }
    false
}

#[derive(Debug, Clone, PartialEq)]
struct Block {
    id: Uuid,
    code: String,
    name: String,
    cells: Cells,
}

#[derive(Debug, Clone, PartialEq)]
struct Expected {
    unit: Block,
    children: Vec<Block>,
}

/// What the report of `unit` over `from..=to` should say: the unit with its subtree,
/// then each child unit whose validity overlaps the period, by code.
fn expect_report(
    world: &World,
    units: &[Unit],
    area_units: &[Uuid],
    unit: Uuid,
    (from, to): (NaiveDate, NaiveDate),
) -> Expected {
    let block = |u: &Unit| Block {
        id: u.id,
        code: u.code.clone(),
        name: u.name.clone(),
        cells: suppress(&world.figures(|a| within(units, area_units[a], u.id), from, to)),
    };
    let me = units.iter().find(|u| u.id == unit).expect("the unit");
    let mut children: Vec<&Unit> = units
        .iter()
        .filter(|u| {
            u.parent == Some(unit)
                && u.valid_from.is_none_or(|f| f <= to)
                && u.valid_to.is_none_or(|t| t >= from)
        })
        .collect();
    children.sort_by(|a, b| a.code.cmp(&b.code));
    Expected {
        unit: block(me),
        children: children.into_iter().map(block).collect(),
    }
}

/// Compares one unit block of a report with the expectation, cell by cell.
fn compare_block(label: &str, got: &Value, want: &Block, out: &mut Vec<String>) {
    let at = format!("{label} / {}", want.code);
    if got["code"] != want.code.as_str() {
        out.push(format!("{at}: code {} instead", got["code"]));
    }
    if got["org_unit_id"] != json!(want.id) {
        out.push(format!("{at}: org_unit_id {}", got["org_unit_id"]));
    }
    if got["name"] != want.name.as_str() {
        out.push(format!(
            "{at}: name {} instead of {}",
            got["name"], want.name
        ));
    }
    let mut seen: BTreeMap<String, &Value> = BTreeMap::new();
    for c in got["indicators"].as_array().into_iter().flatten() {
        let key = c["indicator"].as_str().unwrap_or("?").to_string();
        if seen.insert(key.clone(), c).is_some() {
            out.push(format!("{at}: indicator {key} appears twice"));
        }
    }
    for key in seen.keys().filter(|k| !want.cells.contains_key(*k)) {
        out.push(format!("{at}: unexpected indicator {key}"));
    }
    for (key, (value, suppressed)) in &want.cells {
        let Some(c) = seen.get(key) else {
            out.push(format!("{at}: indicator {key} is missing"));
            continue;
        };
        let got_value = c["value"].as_i64();
        let got_suppressed = c["suppressed"].as_bool();
        let value_ok = got_value.is_some() || c["value"].is_null();
        if !value_ok || (got_value, got_suppressed) != (*value, Some(*suppressed)) {
            out.push(format!(
                "{at}: {key} expected value {value:?} suppressed {suppressed}, got value {} suppressed {}",
                c["value"], c["suppressed"]
            ));
        }
        if !c["target"].is_null() {
            out.push(format!(
                "{at}: {key} has a target {} no one set",
                c["target"]
            ));
        }
    }
}

/// One report the main test reads and checks.
struct Ask {
    label: String,
    unit: Uuid,
    /// `period=…` or `from=…&to=…`.
    query: String,
    period: Option<&'static str>,
    days: (NaiveDate, NaiveDate),
    token: String,
}

/// Reads each report and compares it with the expectation; answers the mismatches and
/// the expectations.
async fn check_reports(
    app: &TestApp,
    world: &World,
    units: &[Unit],
    area_units: &[Uuid],
    asks: &[Ask],
    phase: &str,
) -> (Vec<String>, Vec<Expected>) {
    let mut out = Vec::new();
    let mut expectations = Vec::new();
    for ask in asks {
        let label = format!("{phase}: {}", ask.label);
        let got = json_ok(
            app,
            &format!(
                "/api/v1/reports/indicators?org_unit={}&{}",
                ask.unit, ask.query
            ),
            &ask.token,
        )
        .await;
        let want = expect_report(world, units, area_units, ask.unit, ask.days);
        if got["from"] != ask.days.0.to_string() || got["to"] != ask.days.1.to_string() {
            out.push(format!(
                "{label}: days {}..{} instead of {}..{}",
                got["from"], got["to"], ask.days.0, ask.days.1
            ));
        }
        if got["period"] != json!(ask.period) {
            out.push(format!(
                "{label}: period {} instead of {:?}",
                got["period"], ask.period
            ));
        }
        compare_block(&label, &got["unit"], &want.unit, &mut out);
        let children = got["children"].as_array().cloned().unwrap_or_default();
        let got_codes: Vec<&str> = children
            .iter()
            .map(|c| c["code"].as_str().unwrap_or("?"))
            .collect();
        let want_codes: Vec<&str> = want.children.iter().map(|c| c.code.as_str()).collect();
        if got_codes != want_codes {
            out.push(format!(
                "{label}: children {got_codes:?} instead of {want_codes:?}"
            ));
        }
        for w in &want.children {
            match children.iter().find(|c| c["code"] == w.code.as_str()) {
                Some(c) => compare_block(&label, c, w, &mut out),
                None => out.push(format!("{label}: child {} is missing", w.code)),
            }
        }
        expectations.push(want);
    }
    (out, expectations)
}

// --- people and their codes as peer educators type them --------------------------------

const FATHERS: [(&str, &str); 10] = [
    ("Hùng", "HUNG"),
    ("Đức", "DUC"),
    ("Dũng", "DUNG"),
    ("Tuấn", "TUAN"),
    ("Quang", "QUANG"),
    ("Bình", "BINH"),
    ("Sơn", "SON"),
    ("Thắng", "THANG"),
    ("Cường", "CUONG"),
    ("Việt", "VIET"),
];
const MOTHERS: [(&str, &str); 6] = [
    ("Hoa", "HOA"),
    ("Lan", "LAN"),
    ("Mai", "MAI"),
    ("Hương", "HUONG"),
    ("Thủy", "THUY"),
    ("Đào", "DAO"),
];

#[derive(Debug, Clone, Copy)]
struct Person {
    father: usize,
    mother: usize,
    year: u32,
    sex: char,
}

impl Person {
    /// The one spelling every variant stands for.
    fn canonical(&self) -> String {
        format!(
            "{}{}{}{}",
            FATHERS[self.father].1, MOTHERS[self.mother].1, self.year, self.sex
        )
    }
}

/// The ASCII name with combining accents after some vowels (a decomposed keyboard).
fn decomposed(ascii: &str, rng: &mut StdRng) -> String {
    let marks = ['\u{0300}', '\u{0301}', '\u{0303}', '\u{0309}', '\u{0323}'];
    let mut out = String::new();
    for c in ascii.chars() {
        out.push(c);
        if "AEIOUY".contains(c) && rng.gen_bool(0.5) {
            out.push(*marks.choose(rng).expect("a mark"));
        }
    }
    out
}

/// One way of typing the person's code: with or without diacritics (precomposed or
/// not), in any case, with spaces or hyphens or nothing between the parts.
fn spelling(p: &Person, rng: &mut StdRng) -> String {
    let (fv, fa) = FATHERS[p.father];
    let (mv, ma) = MOTHERS[p.mother];
    let (f, m) = match rng.gen_range(0..6) {
        0 | 1 => (fv.to_string(), mv.to_string()),
        2 | 3 => (fa.to_string(), ma.to_string()),
        4 => (fv.to_string(), ma.to_string()),
        _ => (decomposed(fa, rng), decomposed(ma, rng)),
    };
    let parts = [f, m, p.year.to_string(), p.sex.to_string()];
    let seps = ["", " ", "-", " - ", "  "];
    let mut raw = String::new();
    if rng.gen_bool(0.1) {
        raw.push(' ');
    }
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            raw.push_str(seps.choose(rng).expect("a separator"));
        }
        raw.push_str(part);
    }
    let casing = rng.gen_range(0..3);
    raw.chars()
        .flat_map(|c| {
            let upper = match casing {
                0 => true,
                1 => false,
                _ => rng.gen_bool(0.5),
            };
            if upper {
                c.to_uppercase().collect::<Vec<_>>()
            } else {
                c.to_lowercase().collect::<Vec<_>>()
            }
        })
        .collect()
}

// --- small HTTP helpers ----------------------------------------------------------------

async fn json_ok(app: &TestApp, path: &str, token: &str) -> Value {
    let res = app.get(path, token).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    serde_json::from_str(&text).expect("json")
}

async fn submit_ok(app: &TestApp, who: &Actor, body: &Value) -> Value {
    let res = app
        .post("/api/v1/submissions", Some(who.token()), body)
        .await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::CREATED, "submission: {text}");
    serde_json::from_str(&text).expect("json")
}

/// One decision for many submissions; every one must succeed.
async fn decide(app: &TestApp, who: &Actor, ids: &[Uuid], decision: &str) {
    for chunk in ids.chunks(100) {
        let mut body = json!({ "ids": chunk, "decision": decision });
        if decision != "approve" {
            body["comment"] = json!("Thiếu thông tin, đề nghị kiểm tra lại");
        }
        let res = app.post("/api/v1/reviews", Some(who.token()), &body).await;
        let status = res.status();
        let text = res.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "bulk {decision}: {text}");
        let out: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            (out["succeeded"].as_u64(), out["failed"].as_u64()),
            (Some(chunk.len() as u64), Some(0)),
            "bulk {decision} (seed {SEED}): {out}"
        );
    }
}

async fn create_unit(
    app: &TestApp,
    admin: &Actor,
    (code, name): (&str, &str),
    parent: Uuid,
    valid_from: Option<&str>,
    valid_to: Option<&str>,
) -> Uuid {
    let res = app
        .post(
            "/api/v1/org-units",
            Some(admin.token()),
            &json!({
                "code": code, "name": name, "level": "ward", "type": "phuong",
                "parent_id": parent, "valid_from": valid_from, "valid_to": valid_to,
            }),
        )
        .await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::CREATED, "create unit {code}: {text}");
    let unit: Value = serde_json::from_str(&text).expect("json");
    serde_json::from_value(unit["id"].clone()).expect("id")
}

async fn put_photo(app: &TestApp, who: &Actor, id: Uuid, bytes: Vec<u8>) {
    let sha = sha256_hex(&bytes);
    let res = app
        .client
        .put(app.url(&format!("/api/v1/submissions/{id}/photos/{sha}")))
        .bearer_auth(who.token())
        .header("content-type", "image/jpeg")
        .body(bytes)
        .send()
        .await
        .expect("put photo");
    assert_eq!(res.status(), StatusCode::CREATED, "photo of {id}");
}

async fn reopen(app: &TestApp, admin: &Actor, id: Uuid) {
    let res = app
        .post(
            &format!("/api/v1/submissions/{id}/reopen"),
            Some(admin.token()),
            &json!({ "comment": "Số liệu cần xác minh lại" }),
        )
        .await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "reopen {id}: {text}");
    let out: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(out["status"], "submitted", "{out}");
}

// --- the main test -----------------------------------------------------------------------

/// A place where field work happens in the generated program.
struct Area {
    code: &'static str,
    unit: Uuid,
    days: (NaiveDate, NaiveDate),
    /// Days some of its visits fall on for sure (period edges).
    edges: Vec<NaiveDate>,
    visits: usize,
    sessions: usize,
    supports: usize,
    /// The people its peer educators meet.
    pool: Vec<usize>,
    peers: Vec<Actor>,
    volunteer: Option<Actor>,
    reviewer: Actor,
}

fn any_day(rng: &mut StdRng, (first, last): (NaiveDate, NaiveDate)) -> NaiveDate {
    first + Duration::days(rng.gen_range(0..=(last - first).num_days()))
}

fn fate(rng: &mut StdRng) -> Fate {
    match rng.gen_range(0..100) {
        0..=59 => Fate::Approve,
        60..=74 => Fate::Reject,
        75..=81 => Fate::RequestChanges,
        _ => Fate::Leave,
    }
}

async fn indicators_match_an_independent_count_of_approved_work(app: TestApp) {
    let started = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(SEED);
    let admin = app.admin().await;
    let city = app.unit("01").await;
    let dong_da = app.unit("006").await;
    let hoan_kiem = app.unit("002").await;

    // A commune of Đống Đa (gone with the districts), and three wards from July 2025.
    let van_mieu = create_unit(
        &app,
        &admin,
        ("00217", "Phường Quốc Tử Giám"),
        dong_da,
        None,
        Some("2025-06-30"),
    )
    .await;
    let mut wards = Vec::new();
    for (code, name) in [
        ("00070", "Phường Hoàn Kiếm"),
        ("00190", "Phường Văn Miếu - Quốc Tử Giám"),
        ("00004", "Phường Ba Đình"),
    ] {
        wards.push(create_unit(&app, &admin, (code, name), city, Some("2025-07-01"), None).await);
    }

    let sup_dd = app.actor(Role::Supervisor, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let sup_w1 = app.actor(Role::Supervisor, "00070").await;
    let q2 = (day(2025, 4, 1), day(2025, 6, 30));
    let q3 = (day(2025, 7, 1), day(2025, 9, 30));
    let q2_edges = [(4, 1), (5, 31), (6, 1), (6, 14), (6, 15), (6, 30)]
        .map(|(m, d)| day(2025, m, d))
        .to_vec();
    let q3_edges = [(7, 1), (7, 31), (8, 1), (9, 14), (9, 15), (9, 30)]
        .map(|(m, d)| day(2025, m, d))
        .to_vec();
    let peers = |code: &'static str, n: usize| {
        let app = &app;
        async move {
            let mut out = Vec::new();
            for _ in 0..n {
                out.push(app.actor(Role::PeerEducator, code).await);
            }
            out
        }
    };
    let areas = [
        Area {
            code: "006",
            unit: dong_da,
            days: q2,
            edges: q2_edges.clone(),
            visits: 90,
            sessions: 10,
            supports: 10,
            pool: (0..35).collect(),
            peers: peers("006", 3).await,
            volunteer: Some(app.actor(Role::Volunteer, "006").await),
            reviewer: sup_dd.clone(),
        },
        Area {
            code: "00217",
            unit: van_mieu,
            days: q2,
            edges: vec![day(2025, 6, 30)],
            visits: 25,
            sessions: 0,
            supports: 0,
            pool: (25..45).collect(),
            peers: peers("00217", 1).await,
            volunteer: None,
            reviewer: sup_dd.clone(),
        },
        Area {
            code: "002",
            unit: hoan_kiem,
            days: q2,
            edges: q2_edges,
            visits: 60,
            sessions: 8,
            supports: 7,
            pool: (30..55).collect(),
            peers: peers("002", 2).await,
            volunteer: Some(app.actor(Role::Volunteer, "002").await),
            reviewer: sup_hk.clone(),
        },
        Area {
            code: "00070",
            unit: wards[0],
            days: q3,
            edges: q3_edges.clone(),
            visits: 55,
            sessions: 7,
            supports: 8,
            pool: (0..20).chain(45..60).collect(),
            peers: peers("00070", 2).await,
            volunteer: Some(app.actor(Role::Volunteer, "00070").await),
            reviewer: sup_w1.clone(),
        },
        Area {
            code: "00190",
            unit: wards[1],
            days: q3,
            edges: q3_edges,
            visits: 25,
            sessions: 5,
            supports: 5,
            pool: (50..57).collect(),
            peers: peers("00190", 1).await,
            volunteer: Some(app.actor(Role::Volunteer, "00190").await),
            reviewer: admin.clone(),
        },
        // A ward with hardly any work: its people counts are small enough to hide.
        Area {
            code: "00004",
            unit: wards[2],
            days: q3,
            edges: vec![],
            visits: 2,
            sessions: 0,
            supports: 0,
            pool: vec![57, 58, 59],
            peers: peers("00004", 1).await,
            volunteer: None,
            reviewer: admin.clone(),
        },
    ];
    let area_units: Vec<Uuid> = areas.iter().map(|a| a.unit).collect();

    // Sixty people, each typed many ways.
    let people: Vec<Person> = (0..60)
        .map(|i| Person {
            father: i % 10,
            mother: i / 10,
            year: rng.gen_range(1970..2005),
            sex: if rng.gen_bool(0.7) { 'F' } else { 'M' },
        })
        .collect();
    let canonical: BTreeSet<String> = people.iter().map(Person::canonical).collect();
    assert_eq!(canonical.len(), people.len(), "sixty different people");

    // The program: visits, sessions and support visits, each with what becomes of it.
    let mut world = World::default();
    // Each planned submission: its author, its body, what it is, and its visit if it is one.
    let mut planned: Vec<(&Actor, Value, String, Option<usize>)> = Vec::new();
    for (a, area) in areas.iter().enumerate() {
        for n in 0..area.visits {
            let edge = area.edges.get(n).copied();
            let on = edge.unwrap_or_else(|| any_day(&mut rng, area.days));
            let k = rng.gen_range(1..=4).min(area.pool.len());
            let met: Vec<usize> = area.pool.choose_multiple(&mut rng, k).copied().collect();
            let referral_odds = if a >= 3 {
                [0.2, 0.1, 0.04, 0.01]
            } else {
                [0.3, 0.12, 0.05, 0.015]
            };
            let contacts: Vec<Contact> = met
                .into_iter()
                .map(|person| Contact {
                    person,
                    uic: spelling(&people[person], &mut rng),
                    condoms_male: rng.gen_range(0..=30),
                    condoms_female: rng.gen_range(0..=5),
                    lubricant: rng.gen_range(0..=15),
                    self_test_kits: rng.gen_range(0..=2),
                    referrals: SERVICES
                        .iter()
                        .zip(referral_odds)
                        .filter(|(_, p)| rng.gen_bool(*p))
                        .map(|(s, _)| *s)
                        .collect(),
                })
                .collect();
            let body = outreach_body(area.unit, on, &contacts);
            // Period edges and the tiny ward are approved for sure.
            let f = if edge.is_some() || area.visits < 5 {
                Fate::Approve
            } else {
                fate(&mut rng)
            };
            world.visits.push(Visit {
                id: serde_json::from_value(body["id"].clone()).expect("id"),
                area: a,
                day: on,
                contacts,
                codes: Vec::new(),
                fate: f,
                approved: false,
            });
            let peer = &area.peers[n % area.peers.len()];
            planned.push((
                peer,
                body,
                format!("{} visit {n}", area.code),
                Some(world.visits.len() - 1),
            ));
        }
        for _ in 0..area.sessions {
            let on = any_day(&mut rng, area.days);
            let audience = *AUDIENCES.choose(&mut rng).expect("audience");
            let participants = rng.gen_range(1..=40);
            let topic = *TOPICS.choose(&mut rng).expect("topic");
            let mut answers = json!({
                "session_date": on.to_string(),
                "audience": audience,
                "participants": participants,
                "topic": topic,
            });
            if topic == "other" {
                answers["topic_other"] = json!("Phòng chống bạo lực giới");
            }
            let body = envelope("group_session", area.unit, on, answers);
            world.sessions.push(Session {
                id: serde_json::from_value(body["id"].clone()).expect("id"),
                area: a,
                day: on,
                audience,
                participants,
                fate: fate(&mut rng),
                approved: false,
            });
            let volunteer = area.volunteer.as_ref().expect("volunteer");
            planned.push((volunteer, body, format!("{} session", area.code), None));
        }
        for _ in 0..area.supports {
            let on = any_day(&mut rng, area.days);
            let odds = [0.7, 0.3, 0.2, 0.3, 0.3, 0.1];
            let mut actions: Vec<&'static str> = ACTIONS
                .iter()
                .zip(odds)
                .filter(|(_, p)| rng.gen_bool(*p))
                .map(|(s, _)| *s)
                .collect();
            if actions.is_empty() {
                actions.push("counselling");
            }
            let loan = actions
                .contains(&"loan")
                .then(|| rng.gen_range(1..=50_i64) * 1_000_000);
            let managed = &people[rng.gen_range(0..people.len())];
            let mut answers = json!({
                "visit_date": on.to_string(),
                "person_uic": format!("{} {} {} {}", MOTHERS[managed.mother].0, FATHERS[managed.father].0, managed.year, managed.sex),
                "support": actions,
            });
            if let Some(amount) = loan {
                answers["loan_amount_vnd"] = json!(amount);
            }
            let body = envelope("support_visit", area.unit, on, answers);
            world.supports.push(Support {
                id: serde_json::from_value(body["id"].clone()).expect("id"),
                area: a,
                day: on,
                actions,
                loan,
                fate: fate(&mut rng),
                approved: false,
            });
            let volunteer = area.volunteer.as_ref().expect("volunteer");
            planned.push((
                volunteer,
                body,
                format!("{} support visit", area.code),
                None,
            ));
        }
    }

    // Sent as phones coming back online do: sixteen at a time. A phone whose upload
    // fails on the server's side sends the same submission again; such failures are
    // kept, and fail the test once the reports have been checked.
    let mut server_errors: Vec<String> = Vec::new();
    for chunk in planned.chunks(16) {
        let answers = join_all(
            chunk
                .iter()
                .map(|(who, body, _, _)| app.post("/api/v1/submissions", Some(who.token()), body)),
        )
        .await;
        for ((who, body, label, visit), res) in chunk.iter().zip(answers) {
            let mut status = res.status();
            let mut text = res.text().await.expect("body");
            if status.is_server_error() {
                server_errors.push(format!("{label}: {status} {text}"));
                let res = app
                    .post("/api/v1/submissions", Some(who.token()), body)
                    .await;
                status = res.status();
                text = res.text().await.expect("body");
            }
            assert_eq!(status, StatusCode::CREATED, "seed {SEED}: {label}: {text}");
            if let Some(i) = visit {
                let stored: Value = serde_json::from_str(&text).expect("json");
                let visit = &mut world.visits[*i];
                let mut printed = BTreeSet::new();
                for r in stored["referrals"].as_array().expect("referrals") {
                    let code = r["code"].as_str().expect("code").to_string();
                    let service = r["service"].as_str().expect("service").to_string();
                    let index = r["contact_index"].as_u64().expect("contact index") as usize;
                    printed.insert((index, service.clone()));
                    visit.codes.push((code, service));
                }
                let asked: BTreeSet<(usize, String)> = visit
                    .contacts
                    .iter()
                    .enumerate()
                    .flat_map(|(i, c)| c.referrals.iter().map(move |s| (i, s.to_string())))
                    .collect();
                assert_eq!(
                    printed, asked,
                    "seed {SEED}: one code per referral asked for"
                );
                assert_eq!(visit.codes.len(), asked.len(), "seed {SEED}");
            }
        }
    }

    // Each area's reviewer decides, many at once.
    let mut batches: BTreeMap<(usize, &'static str), Vec<Uuid>> = BTreeMap::new();
    let decisions = world
        .visits
        .iter()
        .map(|v| (v.area, v.fate, v.id))
        .chain(world.sessions.iter().map(|s| (s.area, s.fate, s.id)))
        .chain(world.supports.iter().map(|s| (s.area, s.fate, s.id)));
    for (area, f, id) in decisions {
        if let Some(d) = f.decision() {
            batches.entry((area, d)).or_default().push(id);
        }
    }
    for ((area, decision), ids) in &batches {
        decide(&app, &areas[*area].reviewer, ids, decision).await;
    }
    for v in &mut world.visits {
        v.approved = v.fate == Fate::Approve;
    }
    for s in &mut world.sessions {
        s.approved = s.fate == Fate::Approve;
    }
    for s in &mut world.supports {
        s.approved = s.fate == Fate::Approve;
    }

    // Clients arrive at clinics: handoffs for a few referrals of each service from
    // approved visits, two from visits that were not approved (their referrals do not
    // count), and one handoff nobody approves.
    let mut from_approved: Vec<(usize, usize)> = Vec::new();
    let mut from_others: Vec<(usize, usize)> = Vec::new();
    for (vi, v) in world.visits.iter().enumerate() {
        for ci in 0..v.codes.len() {
            if v.approved {
                from_approved.push((vi, ci));
            } else {
                from_others.push((vi, ci));
            }
        }
    }
    from_approved.shuffle(&mut rng);
    from_others.shuffle(&mut rng);
    let mut per_service: HashMap<String, usize> = HashMap::new();
    let mut handoffs: Vec<(usize, usize, bool)> = Vec::new();
    for &(vi, ci) in &from_approved {
        let service = world.visits[vi].codes[ci].1.clone();
        let most = match service.as_str() {
            "hiv_test" => 7,
            "sti_exam" => 3,
            _ => 2,
        };
        let n = per_service.entry(service).or_insert(0);
        if *n < most {
            *n += 1;
            handoffs.push((vi, ci, true));
        }
    }
    let unconfirmed = from_approved
        .iter()
        .find(|(vi, ci)| !handoffs.iter().any(|(v, c, _)| v == vi && c == ci))
        .copied()
        .expect("a referral left without a confirmed handoff");
    handoffs.push((unconfirmed.0, unconfirmed.1, false));
    handoffs.extend(from_others.iter().take(2).map(|&(vi, ci)| (vi, ci, true)));
    let mut approved_handoffs: Vec<(Uuid, String)> = Vec::new();
    for (n, &(vi, ci, approve)) in handoffs.iter().enumerate() {
        let visit = &world.visits[vi];
        let (area, visit_day, visit_approved) = (&areas[visit.area], visit.day, visit.approved);
        let (code, service) = visit.codes[ci].clone();
        let slip = jpeg(n as u8, 16, 16);
        let arrived = visit_day + Duration::days(rng.gen_range(0..10));
        let body = envelope(
            "referral_handoff",
            area.unit,
            arrived,
            json!({
                "referral_code": code,
                "facility": "Phòng khám ngoại trú",
                "arrived_on": arrived.to_string(),
                "service": service,
                "outcome": "service_received",
                "slip_photo": sha256_hex(&slip),
            }),
        );
        let peer = &area.peers[0];
        submit_ok(&app, peer, &body).await;
        let id: Uuid = serde_json::from_value(body["id"].clone()).expect("id");
        put_photo(&app, peer, id, slip).await;
        if approve {
            decide(&app, &area.reviewer, &[id], "approve").await;
            world.completed.insert(code.clone());
            if visit_approved {
                approved_handoffs.push((id, code));
            }
        }
    }

    let units = catalogue(&app, &admin).await;
    assert_eq!(
        units.len(),
        35,
        "the city, 30 districts, a commune, 3 wards"
    );
    let ask = |label: &str,
               unit: Uuid,
               token: &Actor,
               period: Option<&'static str>,
               days: (NaiveDate, NaiveDate)| Ask {
        label: label.to_string(),
        unit,
        query: match period {
            Some(p) => format!("period={p}"),
            None => format!("from={}&to={}", days.0, days.1),
        },
        period,
        days,
        token: token.token().to_string(),
    };
    let asks = vec![
        ask("city 2025Q2", city, &admin, Some("2025Q2"), q2),
        ask("city 2025Q3", city, &admin, Some("2025Q3"), q3),
        ask(
            "city 2025-06-01..2025-07-31",
            city,
            &admin,
            None,
            (day(2025, 6, 1), day(2025, 7, 31)),
        ),
        // The two days either side of the reorganisation: both shapes of the city.
        ask(
            "city 2025-06-30..2025-07-01",
            city,
            &admin,
            None,
            (day(2025, 6, 30), day(2025, 7, 1)),
        ),
        ask(
            "city FY2025",
            city,
            &admin,
            Some("FY2025"),
            (day(2024, 10, 1), day(2025, 9, 30)),
        ),
        ask(
            "city VN2025Q3",
            city,
            &admin,
            Some("VN2025Q3"),
            (day(2025, 6, 15), day(2025, 9, 14)),
        ),
        ask("Đống Đa 2025Q2", dong_da, &sup_dd, Some("2025Q2"), q2),
        ask(
            "Hoàn Kiếm VN2025Q3",
            hoan_kiem,
            &sup_hk,
            Some("VN2025Q3"),
            (day(2025, 6, 15), day(2025, 9, 14)),
        ),
        ask("ward 00070 2025Q3", wards[0], &sup_w1, Some("2025Q3"), q3),
    ];
    let (before, expected_before) =
        check_reports(&app, &world, &units, &area_units, &asks, "approved").await;

    // The city's children follow the reorganisation: districts until 2025-06-30, wards
    // from 2025-07-01, both in a period across it.
    let child_codes = |label: &str| -> Vec<String> {
        let at = asks.iter().position(|a| a.label == label).expect("asked");
        expected_before[at]
            .children
            .iter()
            .map(|c| c.code.clone())
            .collect()
    };
    let wards_only = vec!["00004", "00070", "00190"];
    let q2_children = child_codes("city 2025Q2");
    assert_eq!(q2_children.len(), 30, "{q2_children:?}");
    assert!(q2_children.iter().all(|c| c.len() == 3), "{q2_children:?}");
    assert_eq!(child_codes("city 2025Q3"), wards_only);
    for label in [
        "city 2025-06-01..2025-07-31",
        "city 2025-06-30..2025-07-01",
        "city FY2025",
        "city VN2025Q3",
    ] {
        let codes = child_codes(label);
        assert_eq!(codes.len(), 33, "{label}: {codes:?}");
        for code in ["006", "002", "00004", "00070", "00190"] {
            assert!(codes.iter().any(|c| c == code), "{label}: {code}");
        }
    }

    // The program is rich enough for every rule to matter.
    let all_cells: Vec<(&String, &(Option<i64>, bool))> = expected_before
        .iter()
        .flat_map(|e| std::iter::once(&e.unit).chain(e.children.iter()))
        .flat_map(|b| b.cells.iter())
        .collect();
    let some = |what: &str, f: &dyn Fn(&str, Option<i64>, bool) -> bool| {
        assert!(
            all_cells.iter().any(|(k, (v, s))| f(k, *v, *s)),
            "seed {SEED}: no expected cell is {what}"
        );
    };
    some("a suppressed people_reached", &|k, _, s| {
        k == "people_reached" && s
    });
    some("a suppressed referrals_completed", &|k, _, s| {
        k.starts_with("referrals_completed.") && s
    });
    some("a suppressed support action", &|k, _, s| {
        k.starts_with("support.") && s
    });
    some("a people count of 0", &|k, v, _| {
        k.starts_with("people_") && v == Some(0)
    });
    some("a visible people_new above 4", &|k, v, _| {
        k == "people_new" && v.is_some_and(|v| v > 4)
    });
    some("a visible people_returning above 4", &|k, v, _| {
        k == "people_returning" && v.is_some_and(|v| v > 4)
    });
    some("a visible referrals_completed", &|k, v, _| {
        k.starts_with("referrals_completed.") && v.is_some_and(|v| v > 4)
    });
    let mut spellings: HashMap<usize, BTreeSet<&str>> = HashMap::new();
    for v in world.visits.iter().filter(|v| v.approved) {
        for c in &v.contacts {
            spellings
                .entry(c.person)
                .or_default()
                .insert(c.uic.as_str());
        }
    }
    assert!(
        spellings.values().filter(|s| s.len() >= 3).count() >= 20,
        "seed {SEED}: people are typed many ways"
    );

    // An admin reopens an approved Q2 visit that holds the first contact of someone met
    // again in Q3 (who becomes new there), and an approved handoff.
    let q3_new = |w: &World| w.figures(|_| true, q3.0, q3.1)["people_new"];
    let now_new = q3_new(&world);
    let mut candidates: Vec<usize> = (0..world.visits.len())
        .filter(|&i| world.visits[i].approved && world.visits[i].day <= q2.1)
        .collect();
    candidates.shuffle(&mut rng);
    let reopened = candidates
        .into_iter()
        .find(|&i| {
            let mut w = world.clone();
            w.visits[i].approved = false;
            q3_new(&w) != now_new
        })
        .unwrap_or_else(|| panic!("seed {SEED}: no Q2 visit holds a Q3 client's first contact"));
    let (handoff_id, handoff_code) = approved_handoffs
        .iter()
        .find(|(_, code)| !world.visits[reopened].codes.iter().any(|(c, _)| c == code))
        .cloned()
        .expect("an approved handoff of another visit");
    reopen(&app, &admin, world.visits[reopened].id).await;
    reopen(&app, &admin, handoff_id).await;
    world.visits[reopened].approved = false;
    world.completed.remove(&handoff_code);
    let (after, expected_after) =
        check_reports(&app, &world, &units, &area_units, &asks, "after reopening").await;
    assert_ne!(
        expected_before, expected_after,
        "seed {SEED}: reopening changes the expected figures"
    );

    // What approvals and reopenings kept in the report cells is exactly what a rebuild
    // from the facts makes; and a rebuild changes no report.
    let drift = server::services::rollup::verify(&app.state.db)
        .await
        .expect("verify the report cells");
    assert!(
        drift.is_empty(),
        "seed {SEED}: {} report cells differ from a rebuild:\n{}",
        drift.len(),
        drift.join("\n")
    );
    server::services::rollup::rebuild(&app.state.db, true)
        .await
        .expect("rebuild the report cells");
    let (rebuilt, _) =
        check_reports(&app, &world, &units, &area_units, &asks, "after a rebuild").await;

    let mismatches: Vec<&String> = before
        .iter()
        .chain(after.iter())
        .chain(rebuilt.iter())
        .collect();
    let shown: Vec<&&String> = mismatches.iter().take(80).collect();
    assert!(
        mismatches.is_empty(),
        "seed {SEED}: {} differences from the independent count of {} visits, {} sessions, {} support visits ({} approved visits):\n{}",
        mismatches.len(),
        world.visits.len(),
        world.sessions.len(),
        world.supports.len(),
        world.visits.iter().filter(|v| v.approved).count(),
        shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    assert!(
        server_errors.is_empty(),
        "seed {SEED}: {} of {} submissions sent sixteen at a time answered a server error \
         (each went through when sent again):\n{}",
        server_errors.len(),
        planned.len(),
        server_errors.join("\n")
    );
    eprintln!(
        "indicators: {} submissions, {} reports checked twice, in {:?}",
        planned.len() + handoffs.len(),
        asks.len(),
        started.elapsed()
    );
}

// --- targets -------------------------------------------------------------------------------

async fn put_target(app: &TestApp, who: &Actor, body: Value) -> reqwest::Response {
    app.send(
        Method::PUT,
        "/api/v1/targets",
        Some(who.token()),
        Some(&body),
    )
    .await
}

/// The targets a unit block shows, by indicator.
fn targets_in(block: &Value) -> BTreeMap<String, i64> {
    block["indicators"]
        .as_array()
        .expect("indicators")
        .iter()
        .filter(|c| !c["target"].is_null())
        .map(|c| {
            (
                c["indicator"].as_str().expect("indicator").to_string(),
                c["target"].as_i64().expect("a whole target"),
            )
        })
        .collect()
}

fn cell<'a>(block: &'a Value, key: &str) -> &'a Value {
    block["indicators"]
        .as_array()
        .expect("indicators")
        .iter()
        .find(|c| c["indicator"] == key)
        .unwrap_or_else(|| panic!("no {key} in {block}"))
}

fn targets(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

async fn targets_sit_beside_their_indicator_for_that_unit_and_period(app: TestApp) {
    let admin = app.admin().await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let dd = app.unit("006").await;
    let city = app.unit("01").await;

    // Two people reached in Đống Đa: the count is hidden, its target is not.
    let visit = simple_visit(
        dd,
        day(2025, 5, 10),
        &[("HOA-MAI-1990-F", &[]), ("LAN-HUNG-1985-M", &[])],
    );
    submit_ok(&app, &peer, &visit).await;
    let id: Uuid = serde_json::from_value(visit["id"].clone()).expect("id");
    decide(&app, &sup, &[id], "approve").await;

    let res = put_target(
        &app,
        &admin,
        json!({"org_unit_id": dd, "indicator": "people_reached", "period": "2025Q2", "value": 120}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let stored: Value = res.json().await.expect("target");
    assert_eq!(
        stored,
        json!({"org_unit_id": dd, "indicator": "people_reached", "period": "2025Q2",
               "from": "2025-04-01", "to": "2025-06-30", "value": 120})
    );
    // Set again: replaced, not added.
    let res = put_target(
        &app,
        &admin,
        json!({"org_unit_id": dd, "indicator": "people_reached", "period": "2025Q2", "value": 150}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    for (unit, indicator, period, value, from, to) in [
        (
            dd,
            "condoms_male",
            "2025q2",
            5000,
            "2025-04-01",
            "2025-06-30",
        ),
        (
            city,
            "people_reached",
            "FY2025",
            900,
            "2024-10-01",
            "2025-09-30",
        ),
        (
            dd,
            "referrals_completed.prep",
            "VN2025Q3",
            7,
            "2025-06-15",
            "2025-09-14",
        ),
    ] {
        let res = put_target(
            &app,
            &admin,
            json!({"org_unit_id": unit, "indicator": indicator, "period": period, "value": value}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{indicator} {period}");
        let stored: Value = res.json().await.expect("target");
        assert_eq!(
            (
                &stored["period"],
                &stored["from"],
                &stored["to"],
                &stored["value"]
            ),
            (
                &json!(period.to_uppercase()),
                &json!(from),
                &json!(to),
                &json!(value)
            ),
            "{stored}"
        );
    }

    // Refused: unknown indicators, bad periods, other roles, negative values, no unit.
    for (body, field) in [
        (
            json!({"org_unit_id": dd, "indicator": "people_touched", "period": "2025Q2", "value": 1}),
            "indicator",
        ),
        (
            json!({"org_unit_id": dd, "indicator": "referrals_issued.condoms", "period": "2025Q2", "value": 1}),
            "indicator",
        ),
        (
            json!({"org_unit_id": dd, "indicator": "people_reached", "period": "2025Q5", "value": 1}),
            "period",
        ),
        (
            json!({"org_unit_id": dd, "indicator": "people_reached", "period": "FY25", "value": 1}),
            "period",
        ),
        (
            json!({"org_unit_id": dd, "indicator": "people_reached", "period": "2025Q2", "value": -1}),
            "value",
        ),
    ] {
        let p = problem(
            put_target(&app, &admin, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            faults(&p).iter().any(|(f, _)| f == field),
            "{body}: expected a fault on {field}: {p}"
        );
    }
    let valid =
        json!({"org_unit_id": dd, "indicator": "people_reached", "period": "2025Q2", "value": 1});
    problem(
        put_target(&app, &sup, valid.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(put_target(&app, &peer, valid).await, StatusCode::FORBIDDEN).await;
    problem(
        put_target(
            &app,
            &admin,
            json!({"org_unit_id": Uuid::new_v4(), "indicator": "people_reached", "period": "2025Q2", "value": 1}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Đống Đa, 2025Q2: its two targets, beside its (hidden) figures.
    let report = |token: String, unit: Uuid, query: &'static str| {
        let app = &app;
        async move {
            json_ok(
                app,
                &format!("/api/v1/reports/indicators?org_unit={unit}&{query}"),
                &token,
            )
            .await
        }
    };
    let r = report(sup.token().to_string(), dd, "period=2025Q2").await;
    assert_eq!(
        targets_in(&r["unit"]),
        targets(&[("people_reached", 150), ("condoms_male", 5000)])
    );
    assert_eq!(
        cell(&r["unit"], "people_reached"),
        &json!({"indicator": "people_reached", "value": null, "suppressed": true, "target": 150})
    );
    assert_eq!(cell(&r["unit"], "condoms_male")["value"], 20);
    assert_eq!(cell(&r["unit"], "contact_events")["value"], 2);

    // The city, 2025Q2: none of its own; Đống Đa's beside Đống Đa's row only.
    let r = report(admin.token().to_string(), city, "period=2025Q2").await;
    assert_eq!(targets_in(&r["unit"]), BTreeMap::new());
    let children = r["children"].as_array().expect("children");
    assert_eq!(children.len(), 30, "the districts of 2025Q2");
    for child in children {
        let want = if child["code"] == "006" {
            targets(&[("people_reached", 150), ("condoms_male", 5000)])
        } else {
            BTreeMap::new()
        };
        assert_eq!(targets_in(child), want, "{}", child["code"]);
    }

    // The city, FY2025: its own target, nobody else's.
    let r = report(admin.token().to_string(), city, "period=FY2025").await;
    assert_eq!(targets_in(&r["unit"]), targets(&[("people_reached", 900)]));
    for child in r["children"].as_array().expect("children") {
        assert_eq!(targets_in(child), BTreeMap::new(), "{}", child["code"]);
    }

    // Đống Đa in other periods: only the national-quarter target, in the national quarter.
    let r = report(sup.token().to_string(), dd, "period=VN2025Q3").await;
    assert_eq!(
        targets_in(&r["unit"]),
        targets(&[("referrals_completed.prep", 7)])
    );
    for query in [
        "period=2025Q3",
        "period=2025",
        "from=2025-04-01&to=2025-05-31",
    ] {
        let r = report(sup.token().to_string(), dd, query).await;
        assert_eq!(targets_in(&r["unit"]), BTreeMap::new(), "{query}");
    }
}

// --- bad queries and scope -------------------------------------------------------------------

async fn bad_report_queries_name_their_field(app: TestApp) {
    let admin = app.admin().await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let dd = app.unit("006").await;
    let cases: Vec<(String, &str)> = vec![
        (format!("org_unit={dd}&period=2024Q5"), "period"),
        (format!("org_unit={dd}&period=2024Q0"), "period"),
        (format!("org_unit={dd}&period=FY25"), "period"),
        (format!("org_unit={dd}&period=VN2024"), "period"),
        (format!("org_unit={dd}&period=1999"), "period"),
        (format!("org_unit={dd}&from=2025-07-01&to=2025-06-30"), "to"),
        (
            format!("org_unit={dd}&period=2025Q2&from=2025-04-01"),
            "period",
        ),
        (
            format!("org_unit={dd}&period=2025Q2&to=2025-06-30"),
            "period",
        ),
        (
            format!("org_unit={dd}&period=2025Q2&from=2025-04-01&to=2025-06-30"),
            "period",
        ),
        (format!("org_unit={dd}"), "from"),
        (String::new(), "from"),
        (format!("org_unit={dd}&from=2025-04-01"), "to"),
        (format!("org_unit={dd}&period=2025Q2&format=xml"), "format"),
        (
            format!("org_unit={dd}&from=2025-02-30&to=2025-03-31"),
            "from",
        ),
        ("org_unit=not-a-unit&period=2025Q2".to_string(), "org_unit"),
        (format!("org_unit={dd}&period=2025Q2&colour=red"), "colour"),
    ];
    for (query, field) in &cases {
        for who in [&sup, &admin] {
            let p = problem(
                app.get(&format!("/api/v1/reports/indicators?{query}"), who.token())
                    .await,
                StatusCode::BAD_REQUEST,
            )
            .await;
            assert_eq!(
                faults(&p).first().map(|(f, _)| f.as_str()),
                Some(*field),
                "?{query}: {p}"
            );
        }
    }
    // A refused query is no read: nothing is audited until a good one.
    let audited = |who: &Actor| {
        let path = format!("/api/v1/audit?action=report.read&actor_id={}", who.user.id);
        let app = &app;
        let token = admin.token().to_string();
        async move {
            json_ok(app, &path, &token).await["items"]
                .as_array()
                .expect("items")
                .len()
        }
    };
    assert_eq!(audited(&sup).await, 0);
    // One day is a period; so is a lowercase name.
    let r = json_ok(
        &app,
        &format!("/api/v1/reports/indicators?org_unit={dd}&from=2025-04-01&to=2025-04-01"),
        sup.token(),
    )
    .await;
    assert_eq!(
        (&r["from"], &r["to"]),
        (&json!("2025-04-01"), &json!("2025-04-01"))
    );
    assert!(r["period"].is_null(), "{r}");
    let r = json_ok(
        &app,
        &format!("/api/v1/reports/indicators?org_unit={dd}&period=vn2025q1"),
        sup.token(),
    )
    .await;
    assert_eq!(
        (&r["from"], &r["to"], &r["period"]),
        (
            &json!("2024-12-15"),
            &json!("2025-03-14"),
            &json!("VN2025Q1")
        )
    );
    assert_eq!(audited(&sup).await, 2);
}

async fn reports_keep_to_the_readers_scope(app: TestApp) {
    let admin = app.admin().await;
    let city = app.unit("01").await;
    let dd = app.unit("006").await;
    let hk = app.unit("002").await;
    let ward = create_unit(
        &app,
        &admin,
        ("00070", "Phường Hoàn Kiếm"),
        city,
        Some("2025-07-01"),
        None,
    )
    .await;
    let sup_dd = app.actor(Role::Supervisor, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let sup_ward = app.actor(Role::Supervisor, "00070").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let volunteer = app.actor(Role::Volunteer, "006").await;

    // Six people reached in Đống Đa: visible to Đống Đa, and nowhere in Hoàn Kiếm.
    let visit = simple_visit(
        dd,
        day(2025, 5, 2),
        &[
            ("AN-BINH-1990-F", &[]),
            ("CHI-DUNG-1991-F", &[]),
            ("GIANG-HA-1992-F", &[]),
            ("KHANH-LINH-1993-F", &[]),
            ("MINH-NGA-1994-F", &[]),
            ("PHUONG-QUYNH-1995-F", &[]),
        ],
    );
    submit_ok(&app, &peer, &visit).await;
    let id: Uuid = serde_json::from_value(visit["id"].clone()).expect("id");
    decide(&app, &sup_dd, &[id], "approve").await;

    let path = |unit: Uuid| format!("/api/v1/reports/indicators?org_unit={unit}&period=2025Q2");
    let mine = json_ok(&app, &path(dd), sup_dd.token()).await;
    assert_eq!(cell(&mine["unit"], "people_reached")["value"], 6);
    assert_eq!(cell(&mine["unit"], "contact_events")["value"], 6);

    // Outside one's subtree the unit does not exist; an unknown unit reads the same.
    let unknown = problem(
        app.get(&path(Uuid::new_v4()), sup_hk.token()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    for (who, unit) in [
        (&sup_hk, dd),
        (&sup_hk, city),
        (&sup_hk, ward),
        (&sup_ward, dd),
        (&sup_dd, hk),
    ] {
        let p = problem(
            app.get(&path(unit), who.token()).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(
            (&p["title"], &p["detail"]),
            (&unknown["title"], &unknown["detail"]),
            "a unit out of scope reads like no unit"
        );
        let csv = format!("{}&format=csv", path(unit));
        problem(app.get(&csv, who.token()).await, StatusCode::NOT_FOUND).await;
    }

    // Without a unit, a supervisor reads their own; Hoàn Kiếm saw none of Đống Đa's work.
    let own = json_ok(
        &app,
        "/api/v1/reports/indicators?period=2025Q2",
        sup_hk.token(),
    )
    .await;
    assert_eq!(own["unit"]["code"], "002");
    assert_eq!(own["unit"]["org_unit_id"], json!(hk));
    assert_eq!(cell(&own["unit"], "people_reached")["value"], 0);
    assert_eq!(cell(&own["unit"], "contact_events")["value"], 0);
    let own = json_ok(&app, &path(ward), sup_ward.token()).await;
    assert_eq!(own["unit"]["code"], "00070");
    assert_eq!(own["children"], json!([]));

    // Field roles do not read reports at all; nor does anyone without a token.
    for who in [&peer, &volunteer] {
        problem(app.get(&path(dd), who.token()).await, StatusCode::FORBIDDEN).await;
        problem(
            app.get(&format!("{}&format=csv", path(dd)), who.token())
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let res = app.send(Method::GET, &path(dd), None, None).await;
    problem(res, StatusCode::UNAUTHORIZED).await;
}

/// Approvals racing on the same unit and days (and so on the same report cells and
/// client keys) lose nobody and count nobody twice; the cells they leave are exactly
/// what a rebuild from the facts makes.
async fn concurrent_approvals_count_every_person_once(app: TestApp) {
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let mut supervisors = Vec::new();
    for _ in 0..4 {
        supervisors.push(app.actor(Role::Supervisor, "006").await);
    }
    let uic = |i: usize| {
        format!(
            "{}-{}-{}-F",
            MOTHERS[i % MOTHERS.len()].1,
            FATHERS[(i / MOTHERS.len()) % FATHERS.len()].1,
            1950 + i
        )
    };
    // Twelve people met again and again (their approvals also meet on the client keys),
    // and visits whose people nobody else met (they meet on the report cells only).
    let people: Vec<String> = (0..12).map(uic).collect();
    let mut rng = StdRng::seed_from_u64(SEED);
    let days = [day(2025, 5, 2), day(2025, 5, 3)];
    let mut ids = Vec::new();
    let mut met: BTreeMap<NaiveDate, BTreeSet<String>> = BTreeMap::new();
    let mut events = 0;
    for i in 0..32 {
        let chosen: Vec<String> = if i % 4 == 0 {
            let n = rng.gen_range(3..=6);
            people.choose_multiple(&mut rng, n).cloned().collect()
        } else {
            (0..3).map(|k| uic(12 + 3 * i + k)).collect()
        };
        let on = days[i % 2];
        let contacts: Vec<(&str, &[&'static str])> =
            chosen.iter().map(|p| (p.as_str(), &[][..])).collect();
        let visit = simple_visit(dd, on, &contacts);
        submit_ok(&app, &peer, &visit).await;
        ids.push(serde_json::from_value::<Uuid>(visit["id"].clone()).expect("id"));
        events += chosen.len() as i64;
        met.entry(on).or_default().extend(chosen);
    }
    let approvals = ids.iter().enumerate().map(|(i, id)| {
        let who = &supervisors[i % supervisors.len()];
        let path = format!("/api/v1/submissions/{id}/review");
        let app = &app;
        async move {
            let res = app
                .post(&path, Some(who.token()), &json!({ "decision": "approve" }))
                .await;
            (res.status(), res.text().await.unwrap_or_default())
        }
    });
    for (status, text) in join_all(approvals).await {
        assert_eq!(status, StatusCode::OK, "approval: {text}");
    }

    let sup = &supervisors[0];
    let report = |q: String| {
        let app = &app;
        async move {
            json_ok(
                app,
                &format!("/api/v1/reports/indicators?org_unit={dd}&{q}"),
                sup.token(),
            )
            .await
        }
    };
    let everyone: BTreeSet<&String> = met.values().flatten().collect();
    let quarter = report("period=2025Q2".into()).await;
    assert_eq!(
        cell(&quarter["unit"], "people_reached")["value"],
        everyone.len()
    );
    assert_eq!(
        cell(&quarter["unit"], "people_new")["value"],
        everyone.len()
    );
    assert_eq!(cell(&quarter["unit"], "contact_events")["value"], events);
    assert_eq!(cell(&quarter["unit"], "condoms_male")["value"], 10 * events);
    let first_day = report(format!("from={0}&to={0}", days[0])).await;
    assert_eq!(
        cell(&first_day["unit"], "people_reached")["value"],
        met[&days[0]].len()
    );
    assert_eq!(
        cell(&first_day["unit"], "people_new")["value"],
        met[&days[0]].len()
    );
    // The second day: everyone met then, new only if not met the day before.
    let second_day = report(format!("from={0}&to={0}", days[1])).await;
    let only_second = met[&days[1]].difference(&met[&days[0]]).count();
    assert_eq!(
        cell(&second_day["unit"], "people_reached")["value"],
        met[&days[1]].len()
    );
    let new_second = &cell(&second_day["unit"], "people_new")["value"];
    if (1..5).contains(&only_second) {
        assert_eq!(*new_second, Value::Null, "suppressed");
    } else {
        assert_eq!(*new_second, only_second);
    }
    let drift = server::services::rollup::verify(&app.state.db)
        .await
        .expect("verify the report cells");
    assert!(
        drift.is_empty(),
        "cells differ from a rebuild:\n{}",
        drift.join("\n")
    );
}

/// `startup::prepare` (what `serve` runs before listening) leaves current cells and
/// installed forms alone, and rebuilds cells written for another layout (a release that
/// changed it) from the approved data, to the same report.
async fn start_up_rebuilds_cells_of_another_layout_and_only_then(app: TestApp) {
    use sea_orm::{ConnectionTrait, Statement};
    let dd = app.unit("006").await;
    let peer = app.actor(Role::PeerEducator, "006").await;
    let sup = app.actor(Role::Supervisor, "006").await;
    let on = day(2025, 5, 2);
    let mut ids = Vec::new();
    for i in 0..3 {
        let uics = [
            format!("LA-HU-{}-F", 1980 + i),
            format!("MA-TU-{}-M", 1990 + i),
        ];
        let visit = simple_visit(dd, on, &[(&uics[0], &[]), (&uics[1], &["hiv_test"])]);
        submit_ok(&app, &peer, &visit).await;
        ids.push(serde_json::from_value::<Uuid>(visit["id"].clone()).expect("id"));
    }
    decide(&app, &sup, &ids, "approve").await;
    let path = format!("/api/v1/reports/indicators?org_unit={dd}&period=2025Q2");
    let before = json_ok(&app, &path, sup.token()).await;
    assert_eq!(cell(&before["unit"], "contact_events")["value"], 6);

    let db = &app.state.db;
    let backend = db.get_database_backend();
    let count = |q: &'static str| async move {
        let row = db
            .query_one(Statement::from_string(backend, q))
            .await
            .expect("count")
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("count")
    };
    let forms = count("SELECT COUNT(*) FROM forms").await;
    assert!(forms > 0, "the bundled forms are installed");
    let again = server::startup::prepare(&app.state).await.expect("prepare");
    assert_eq!(again.report_cells_rebuilt, None, "current cells are kept");
    assert_eq!(count("SELECT COUNT(*) FROM forms").await, forms);

    // What an older release left: cells of another layout (here: none at all).
    for q in [
        "UPDATE report_state SET version = version - 1",
        "DELETE FROM report_cells",
    ] {
        db.execute(Statement::from_string(backend, q))
            .await
            .expect(q);
    }
    assert_eq!(count("SELECT COUNT(*) FROM report_cells").await, 0);
    let prepared = server::startup::prepare(&app.state).await.expect("prepare");
    assert!(prepared.report_cells_rebuilt.is_some(), "{prepared:?}");
    assert!(count("SELECT COUNT(*) FROM report_cells").await > 0);
    let after = json_ok(&app, &path, sup.token()).await;
    assert_eq!(
        after["unit"], before["unit"],
        "the same report from rebuilt cells"
    );
    let drift = server::services::rollup::verify(db).await.expect("verify");
    assert!(drift.is_empty(), "{}", drift.join("\n"));
    let third = server::startup::prepare(&app.state).await.expect("prepare");
    assert_eq!(third.report_cells_rebuilt, None);
}

// --- CSV and audit -----------------------------------------------------------------------------

/// The fields of one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Reads a report as JSON and as CSV and checks that they say the same; answers the JSON.
async fn json_and_csv_agree(app: &TestApp, who: &Actor, query: &str) -> Value {
    let path = format!("/api/v1/reports/indicators?{query}");
    let report = json_ok(app, &path, who.token()).await;
    let res = app.get(&format!("{path}&format=csv"), who.token()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"]
        .to_str()
        .expect("content type")
        .to_string();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let text = res.text().await.expect("csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("org_unit_code,org_unit_name,indicator,value,suppressed,target,from,to")
    );
    let mut rows: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields = csv_fields(line);
        assert_eq!(fields.len(), 8, "{line}");
        let key = (fields[0].clone(), fields[2].clone());
        assert!(rows.insert(key, fields).is_none(), "twice: {line}");
    }
    let mut want: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let units =
        std::iter::once(&report["unit"]).chain(report["children"].as_array().expect("children"));
    let text_of = |v: &Value| v.as_i64().map(|n| n.to_string()).unwrap_or_default();
    for unit in units {
        for c in unit["indicators"].as_array().expect("indicators") {
            let code = unit["code"].as_str().expect("code").to_string();
            let indicator = c["indicator"].as_str().expect("indicator").to_string();
            want.insert(
                (code.clone(), indicator.clone()),
                vec![
                    code,
                    unit["name"].as_str().expect("name").to_string(),
                    indicator,
                    text_of(&c["value"]),
                    c["suppressed"].as_bool().expect("suppressed").to_string(),
                    text_of(&c["target"]),
                    report["from"].as_str().expect("from").to_string(),
                    report["to"].as_str().expect("to").to_string(),
                ],
            );
        }
    }
    assert_eq!(
        want.len(),
        indicators().len() * (1 + report["children"].as_array().map_or(0, Vec::len))
    );
    assert_eq!(rows, want, "the CSV says what the JSON says");
    report
}

async fn csv_export_equals_the_json_report_and_reads_are_audited(app: TestApp) {
    let admin = app.admin().await;
    let city = app.unit("01").await;
    let dd = app.unit("006").await;
    let hk = app.unit("002").await;
    let sup_dd = app.actor(Role::Supervisor, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let peer_dd = app.actor(Role::PeerEducator, "006").await;
    let peer_hk = app.actor(Role::PeerEducator, "002").await;

    // Seven people in Đống Đa (three sent for an HIV test), two in Hoàn Kiếm.
    let dd_visits = [
        simple_visit(
            dd,
            day(2025, 4, 3),
            &[("Đào Hùng 1990 F", &["hiv_test"]), ("MAI-LAN-1999-F", &[])],
        ),
        simple_visit(
            dd,
            day(2025, 5, 20),
            &[
                ("dao-hung-1990-f", &[]),
                ("Thu Hà 1995 F", &["hiv_test"]),
                ("BICH-NGOC-1988-F", &[]),
                ("Kim Oanh 2000 F", &["hiv_test", "sti_exam"]),
            ],
        ),
        simple_visit(
            dd,
            day(2025, 6, 30),
            &[("Hồng Nhung 1993 F", &[]), ("Lệ Quyên 1997 F", &[])],
        ),
    ];
    let mut ids = Vec::new();
    for v in &dd_visits {
        submit_ok(&app, &peer_dd, v).await;
        ids.push(serde_json::from_value(v["id"].clone()).expect("id"));
    }
    decide(&app, &sup_dd, &ids, "approve").await;
    let hk_visit = simple_visit(
        hk,
        day(2025, 6, 2),
        &[("Tuyết Mai 1992 F", &[]), ("Ánh Dương 1994 F", &[])],
    );
    submit_ok(&app, &peer_hk, &hk_visit).await;
    let id: Uuid = serde_json::from_value(hk_visit["id"].clone()).expect("id");
    decide(&app, &sup_hk, &[id], "approve").await;
    let res = put_target(
        &app,
        &admin,
        json!({"org_unit_id": dd, "indicator": "people_reached", "period": "2025Q2", "value": 40}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    let report = json_and_csv_agree(&app, &admin, &format!("org_unit={city}&period=2025Q2")).await;
    // What the two agree on is not empty: figures, hidden counts and a target.
    assert_eq!(cell(&report["unit"], "people_reached")["value"], 9);
    assert_eq!(cell(&report["unit"], "contact_events")["value"], 10);
    assert_eq!(cell(&report["unit"], "condoms_male")["value"], 100);
    assert_eq!(
        cell(&report["unit"], "referrals_issued.hiv_test"),
        &json!({"indicator": "referrals_issued.hiv_test", "value": null, "suppressed": true, "target": null})
    );
    let children = report["children"].as_array().expect("children");
    let child = |code: &str| {
        children
            .iter()
            .find(|c| c["code"] == code)
            .unwrap_or_else(|| panic!("child {code}"))
    };
    assert_eq!(
        cell(child("006"), "people_reached"),
        &json!({"indicator": "people_reached", "value": 7, "suppressed": false, "target": 40})
    );
    assert_eq!(
        cell(child("002"), "people_reached"),
        &json!({"indicator": "people_reached", "value": null, "suppressed": true, "target": null})
    );
    json_and_csv_agree(
        &app,
        &sup_dd,
        &format!("org_unit={dd}&from=2025-04-15&to=2025-06-30"),
    )
    .await;

    // Each read is in the audit log under its reader, the JSON as a read, the CSV as an
    // export; the supervisor's never under the admin, nor the other way round.
    let entries = |action: &str, who: &Actor| {
        let path = format!("/api/v1/audit?action={action}&actor_id={}", who.user.id);
        let app = &app;
        let token = admin.token().to_string();
        async move {
            json_ok(app, &path, &token).await["items"]
                .as_array()
                .expect("items")
                .clone()
        }
    };
    for (who, unit) in [(&admin, city), (&sup_dd, dd)] {
        for action in ["report.read", "report.export"] {
            let got = entries(action, who).await;
            assert_eq!(got.len(), 1, "{action} by {}: {got:?}", who.user.username);
            assert_eq!(got[0]["action"], action);
            assert_eq!(got[0]["actor_id"], json!(who.user.id));
            assert_eq!(got[0]["target_type"], "org_unit");
            assert_eq!(got[0]["target_id"], json!(unit.to_string()));
        }
    }
    assert_eq!(entries("report.read", &sup_hk).await.len(), 0);
}
