//! What the ODK tests share: finding ODK Validate's jar (and so JavaRosa) and a JDK,
//! skipping outside CI when they are missing, compiling and running the repository's
//! JavaRosa filler (`tests/odk/Filler.java`), and definitions that between them use
//! every field type, every constraint and every kind of `show_if`.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mobile_schema::{parse_definition, FormDefinition};
use serde_json::{json, Value};

/// Whether a missing tool must fail the run rather than skip (CI, or the test command).
fn tools_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("DONGHANH_TEST_REQUIRE_SERVICES").is_ok()
}

fn missing<T>(what: &str) -> Option<T> {
    if tools_required() {
        panic!("{what}: the ODK tests need it (set DONGHANH_TEST_ODK_VALIDATE_JAR to ODK_Validate.jar, with a JDK on PATH)");
    }
    eprintln!("skipping: {what}");
    None
}

/// ODK Validate's jar, or `None` (skip) outside CI when it is not configured.
pub fn validate_jar() -> Option<PathBuf> {
    match std::env::var_os("DONGHANH_TEST_ODK_VALIDATE_JAR") {
        Some(jar) if Path::new(&jar).is_file() => Some(PathBuf::from(jar)),
        Some(jar) => missing(&format!(
            "DONGHANH_TEST_ODK_VALIDATE_JAR={} is not a file",
            Path::new(&jar).display()
        )),
        None => missing("DONGHANH_TEST_ODK_VALIDATE_JAR is not set"),
    }
}

fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("-version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The jar and the directory holding the compiled filler, or `None` (skip) outside CI
/// when the jar, `java` or `javac` is missing.
pub fn filler() -> Option<(PathBuf, PathBuf)> {
    let jar = validate_jar()?;
    for program in ["java", "javac"] {
        if !runs(program) {
            return missing(&format!("`{program}` is not on PATH"));
        }
    }
    static CLASSES: OnceLock<tempfile::TempDir> = OnceLock::new();
    let classes = CLASSES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let source = manifest_dir().join("../tests/odk/Filler.java");
        let out = Command::new("javac")
            .arg("-cp")
            .arg(&jar)
            .arg("-d")
            .arg(dir.path())
            .arg(&source)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "javac {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    });
    Some((jar, classes.path().to_owned()))
}

/// The places a test form offers, as the server would serve `places.csv`.
pub const PLACES_CSV: &str = "name,label\nhk_01,Hoàn Kiếm 01\nbd_02,Ba Đình 02\n";

/// What the filler made of one fill: the submission, or its exit code and messages.
pub enum Filled {
    Submitted(String),
    Refused { code: Option<i32>, stderr: String },
}

/// Fills `xform` with `answers` (the filler's `path=value` lines) as Collect would in
/// Hanoi (+07:00), with `places.csv` in the media directory; `extra` are more options.
pub fn fill(filler: &(PathBuf, PathBuf), xform: &str, answers: &str, extra: &[&str]) -> Filled {
    let (jar, classes) = filler;
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("form-media");
    std::fs::create_dir(&media).unwrap();
    std::fs::write(media.join(mobile_schema::PLACES_FILE), PLACES_CSV).unwrap();
    let form = dir.path().join("form.xml");
    std::fs::write(&form, xform).unwrap();
    let answers_file = dir.path().join("answers.txt");
    std::fs::write(&answers_file, answers).unwrap();
    let out_file = dir.path().join("submission.xml");
    let classpath = format!("{}:{}", jar.display(), classes.display());
    let out = Command::new("java")
        .arg("-Duser.timezone=Asia/Ho_Chi_Minh")
        .arg("-cp")
        .arg(classpath)
        .arg("Filler")
        .arg(&form)
        .arg(&answers_file)
        .arg("-o")
        .arg(&out_file)
        .arg("--media")
        .arg(&media)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Filled::Submitted(std::fs::read_to_string(&out_file).unwrap())
    } else {
        Filled::Refused {
            code: out.status.code(),
            stderr,
        }
    }
}

fn label(vi: &str, en: &str) -> Value {
    json!({"vi": vi, "en": en})
}

fn choices(values: &[&str]) -> Value {
    Value::Array(
        values
            .iter()
            .map(
                |v| json!({"value": v, "label": label(&format!("Chọn {v}"), &format!("Pick {v}"))}),
            )
            .collect(),
    )
}

fn form(form_id: &str, fields: Value) -> FormDefinition {
    let text = json!({
        "form_id": form_id,
        "version": 7,
        "kind": "support_visit",
        "title": label("Thử nghiệm ODK", "ODK test"),
        "roles": ["volunteer"],
        "fields": fields,
    })
    .to_string();
    parse_definition(&text).unwrap_or_else(|faults| panic!("{form_id}: {faults:#?}"))
}

/// Every field type and every constraint, groups and nested repeats included.
pub fn every_type_form() -> FormDefinition {
    form(
        "odk_every_type",
        json!([
            {"key": "intro", "type": "note", "label": label("Giới thiệu", "Introduction"),
             "hint": label("Đọc trước", "Read first")},
            {"key": "name", "type": "text", "label": label("Tên gọi", "Name"), "required": true,
             "min_length": 2, "max_length": 10, "pattern": "[A-Za-zà-ỹ ]+",
             "hint": label("Chỉ chữ cái", "Letters only")},
            {"key": "code", "type": "text", "label": label("Mã", "Code"), "pattern": "(AB|CD)-[0-9]{2,3}"},
            {"key": "comment", "type": "text", "label": label("Ghi chú", "Comment"), "max_length": 5},
            {"key": "age", "type": "integer", "label": label("Tuổi", "Age"), "required": true, "min": 18, "max": 99},
            {"key": "ratio", "type": "decimal", "label": label("Tỉ lệ", "Ratio"), "min": 0, "max": 1},
            {"key": "quarter_note", "type": "text", "label": label("Một phần tư", "A quarter"),
             "show_if": {"field": "ratio", "equals": 0.25}},
            {"key": "consent", "type": "boolean", "label": label("Đồng ý", "Consent"), "required": true},
            {"key": "visit_date", "type": "date", "label": label("Ngày", "Date"), "required": true},
            {"key": "met_at", "type": "datetime", "label": label("Lúc gặp", "Met at")},
            {"key": "same_day", "type": "text", "label": label("Cùng ngày", "Same day"),
             "show_if": {"field": "visit_date", "equals": "2025-07-14"}},
            {"key": "place_kind", "type": "select_one", "label": label("Loại nơi", "Place kind"),
             "choices": choices(&["street", "bar's"])},
            {"key": "bar_note", "type": "text", "label": label("Về quán", "About the bar"),
             "show_if": {"field": "place_kind", "equals": "bar's"}},
            {"key": "support", "type": "select_multiple", "label": label("Hỗ trợ", "Support"),
             "min": 1, "max": 2, "choices": choices(&["counselling", "loan", "job"])},
            {"key": "person_uic", "type": "uic", "label": label("Mã UIC", "UIC"), "required": true},
            {"key": "slip", "type": "photo", "label": label("Ảnh phiếu", "Slip photo")},
            {"key": "spot", "type": "geopoint", "label": label("Vị trí", "Spot")},
            {"key": "household", "type": "group", "label": label("Hộ gia đình", "Household"), "fields": [
                {"key": "members", "type": "integer", "label": label("Số người", "Members"), "min": 1},
                {"key": "members_note", "type": "text", "label": label("Ghi chú", "Note"),
                 "show_if": {"field": "members", "greater_than": 3}},
                {"key": "has_kids", "type": "boolean", "label": label("Có con", "Has kids")},
            ]},
            {"key": "visits", "type": "repeat", "label": label("Các lần thăm", "Visits"),
             "hint": label("Mỗi lần một mục", "One entry per visit"),
             "min_count": 2, "max_count": 3, "fields": [
                {"key": "on", "type": "date", "label": label("Ngày", "On"), "required": true},
                {"key": "kind", "type": "select_one", "label": label("Loại", "Kind"),
                 "choices": choices(&["home", "other"])},
                {"key": "other_kind", "type": "text", "label": label("Loại khác", "Other kind"), "required": true,
                 "show_if": {"field": "kind", "equals": "other"}},
                {"key": "hours", "type": "integer", "label": label("Số giờ", "Hours"),
                 "show_if": {"field": "age", "greater_than": 60}},
                {"key": "items", "type": "repeat", "label": label("Đồ dùng", "Items"), "max_count": 2, "fields": [
                    {"key": "what", "type": "text", "label": label("Gì", "What"), "required": true},
                    {"key": "picture", "type": "photo", "label": label("Ảnh", "Picture")},
                    // From a nested repeat, the `kind` of the entry holding this one.
                    {"key": "why", "type": "text", "label": label("Vì sao", "Why"),
                     "show_if": {"field": "kind", "equals": "other"}},
                ]},
            ]},
        ]),
    )
}

/// Every kind of `show_if`: equals, in, greater_than, on selects, booleans and numbers,
/// at the same level and from inside a repeat, and chained through a hidden field.
pub fn show_if_form() -> FormDefinition {
    form(
        "odk_show_if",
        json!([
            {"key": "topic", "type": "select_one", "label": label("Chủ đề", "Topic"), "required": true,
             "choices": choices(&["hiv", "other"])},
            {"key": "topic_other", "type": "text", "label": label("Chủ đề khác", "Other topic"), "required": true,
             "show_if": {"field": "topic", "equals": "other"}},
            {"key": "support", "type": "select_multiple", "label": label("Hỗ trợ", "Support"),
             "choices": choices(&["loan", "job", "rehab"])},
            {"key": "loan_amount", "type": "integer", "label": label("Số tiền", "Amount"), "required": true, "min": 1,
             "show_if": {"field": "support", "equals": "loan"}},
            {"key": "work_note", "type": "text", "label": label("Việc làm", "Work"),
             "show_if": {"field": "support", "in": ["job", "rehab"]}},
            {"key": "crowd", "type": "boolean", "label": label("Đông người", "Crowd"), "required": true},
            {"key": "crowd_note", "type": "text", "label": label("Vì sao", "Why"), "required": true,
             "show_if": {"field": "crowd", "equals": false}},
            {"key": "chained", "type": "text", "label": label("Nối tiếp", "Chained"), "required": true,
             "show_if": {"field": "loan_amount", "greater_than": 0}},
            {"key": "where", "type": "select_one", "label": label("Ở đâu", "Where"),
             "choices": choices(&["a", "b"])},
            {"key": "where_note", "type": "text", "label": label("Ghi chú", "Note"),
             "show_if": {"field": "where", "in": ["b"]}},
            {"key": "contacts", "type": "repeat", "label": label("Người", "People"), "fields": [
                {"key": "counselled", "type": "boolean", "label": label("Đã tư vấn", "Counselled"), "required": true},
                {"key": "why_not", "type": "text", "label": label("Vì sao không", "Why not"), "required": true,
                 "show_if": {"field": "counselled", "equals": false}},
                {"key": "loan_ok", "type": "boolean", "label": label("Vay được", "Loan ok"), "required": true,
                 "show_if": {"field": "loan_amount", "greater_than": 1000}},
            ]},
        ]),
    )
}

/// The definitions the ODK tests use besides the bundled forms.
pub fn coverage_forms() -> Vec<FormDefinition> {
    vec![every_type_form(), show_if_form()]
}

/// This crate's directory, as the test runner says at run time: a test binary built in
/// another checkout that shares the target directory (CI's clean clone) carries that
/// checkout's path at compile time.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
