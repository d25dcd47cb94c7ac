//! The keys a form kind requires of a new version: those its typed answers read. A
//! version that drops one (`iec_materials`, `facility`, `topic` were read but not
//! required before the answers were typed), or makes one every submission must carry
//! optional, is refused with a fault naming the key.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, TestApp};
use crate::on_both;

on_both!(
    a_new_outreach_visit_without_iec_materials_is_refused,
    a_new_referral_handoff_without_facility_is_refused,
    a_new_group_session_without_topic_is_refused,
    a_new_version_making_an_extracted_key_optional_is_refused,
);

/// The latest definition of `form_id`, as version 2 with the fields `keys` left out
/// (at the top level and inside repeats).
async fn version_2_without(app: &TestApp, token: &str, form_id: &str, keys: &[&str]) -> Value {
    let res = app.get(&format!("/api/v1/forms/{form_id}"), token).await;
    assert_eq!(res.status(), StatusCode::OK, "GET {form_id}");
    let mut def = res.json::<Value>().await.expect("form")["definition"].clone();
    def["version"] = json!(2);
    let fields = def["fields"].as_array_mut().expect("fields");
    fields.retain(|f| !keys.iter().any(|k| f["key"] == *k));
    for field in fields.iter_mut() {
        if let Some(children) = field.get_mut("fields").and_then(Value::as_array_mut) {
            children.retain(|f| !keys.iter().any(|k| f["key"] == *k));
        }
    }
    def
}

/// Publishes `def` and asserts it is refused with exactly one fault, naming `key`.
async fn assert_refused_naming(app: &TestApp, token: &str, def: &Value, key: &str) {
    let p = problem(
        app.post("/api/v1/forms", Some(token), def).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let errors = p["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{p}");
    assert_eq!(errors[0]["field"], "fields", "{p}");
    assert_eq!(errors[0]["code"], "missing_required_key", "{p}");
    let message = errors[0]["message"].as_str().expect("message");
    assert!(message.contains(&format!("`{key}`")), "{p}");

    // Nothing was published: the form is still at version 1.
    let form_id = def["form_id"].as_str().expect("form_id");
    let res = app.get(&format!("/api/v1/forms/{form_id}"), token).await;
    assert_eq!(
        res.json::<Value>().await.expect("form")["version"],
        1,
        "{form_id}"
    );
}

async fn a_new_outreach_visit_without_iec_materials_is_refused(app: TestApp) {
    let admin = app.admin().await;
    let def = version_2_without(&app, admin.token(), "outreach_visit", &["iec_materials"]).await;
    assert_refused_naming(&app, admin.token(), &def, "contacts[].iec_materials").await;
}

async fn a_new_referral_handoff_without_facility_is_refused(app: TestApp) {
    let admin = app.admin().await;
    let def = version_2_without(&app, admin.token(), "referral_handoff", &["facility"]).await;
    assert_refused_naming(&app, admin.token(), &def, "facility").await;
}

async fn a_new_group_session_without_topic_is_refused(app: TestApp) {
    let admin = app.admin().await;
    // `topic_other` is shown by `topic`, so it goes too: the only fault left is the key.
    let def = version_2_without(
        &app,
        admin.token(),
        "group_session",
        &["topic", "topic_other"],
    )
    .await;
    assert_refused_naming(&app, admin.token(), &def, "topic").await;
}

async fn a_new_version_making_an_extracted_key_optional_is_refused(app: TestApp) {
    let admin = app.admin().await;
    let mut def = version_2_without(&app, admin.token(), "group_session", &[]).await;
    let participants = def["fields"]
        .as_array_mut()
        .expect("fields")
        .iter_mut()
        .find(|f| f["key"] == "participants")
        .expect("participants");
    participants["required"] = json!(false);
    assert_refused_naming(&app, admin.token(), &def, "participants").await;

    // Unchanged, the same version 2 is published.
    let def = version_2_without(&app, admin.token(), "group_session", &[]).await;
    let res = app.post("/api/v1/forms", Some(admin.token()), &def).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}
