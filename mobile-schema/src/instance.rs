//! Reading an ODK Collect submission (the instance XML it posts as
//! `xml_submission_file`) back into the answers JSON the rest of the server takes, for a
//! form exported by `to_xform`.
//!
//! Two steps, so the server can pick the definition before reading the answers:
//! [`instance_header`] reads only what names the form and the submission, then
//! [`parse_instance`] reads everything against that definition. `parse_instance`
//! reports what keeps a value from becoming its JSON value (an unparseable number, a
//! value that is not a choice, a date that is not a date, an element the form does not
//! have), each at its answer path; the answer rules (`required`, bounds, `show_if`, ...)
//! stay with `validate_answers`, which the server runs next, exactly as for the JSON API.
//!
//! How JavaRosa writes an instance, and so how it is read: a question that is not
//! relevant is left out (so its answer is absent), an unanswered one is an empty element
//! (absent too), a group is an element holding its fields (an object, even when empty),
//! a repeat is one element per entry (an array of objects; no entry, no element), a
//! `select_multiple` is its values joined by spaces, a geopoint is `lat lon altitude
//! accuracy` (only `lat` and `lon` are kept), a date-time is
//! `2025-07-14T09:30:00.000+07:00` (already RFC 3339, kept as written), a photo is the
//! file name of the attachment. Element names are compared without their namespace
//! prefix, as ODK Central does.
//!
//! The XML is untrusted: a DTD is refused (so no entity can expand), the document may
//! hold at most [`MAX_INSTANCE_NODES`] nodes, and at most [`DEFAULT_FAULT_LIMIT`] faults
//! are listed.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset};
use roxmltree::{Document, Node, ParsingOptions};
use serde_json::{Map, Value};

use crate::answers::{is_date, join, DEFAULT_FAULT_LIMIT};
use crate::definition::{Field, FieldType, FormDefinition};
use crate::fault::{Fault, FaultCode, FaultSink};
use crate::xform::{has_count_node, COUNT_PREFIX, END_FIELD, PLACE_FIELD, START_FIELD};

/// Most XML nodes (elements, texts, comments) an instance may have: ten times an
/// outreach visit with its 50 contacts fully answered, and far below what would strain
/// memory.
pub const MAX_INSTANCE_NODES: u32 = 100_000;

/// What names a submission: enough to pick the definition and to check idempotency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHeader {
    /// The form, from the root's `id` attribute.
    pub form_id: String,
    /// The form version, from the root's `version` attribute.
    pub version: u32,
    /// `meta/instanceID` as sent (`uuid:…`): the submission's identity.
    pub instance_id: String,
    /// `meta/deprecatedID` as sent, when the submission is an edit of that one.
    pub deprecated_id: Option<String>,
}

/// A submission read against its definition.
#[derive(Debug, Clone, PartialEq)]
pub struct XformInstance {
    /// The form, from the root's `id` attribute.
    pub form_id: String,
    /// The form version, from the root's `version` attribute.
    pub version: u32,
    /// `meta/instanceID` as sent (`uuid:…`).
    pub instance_id: String,
    /// `meta/deprecatedID` as sent, for an edit.
    pub deprecated_id: Option<String>,
    /// When the worker opened the form (`dh_start`), by the phone's clock.
    pub started_at: Option<DateTime<FixedOffset>>,
    /// When the worker finalized the form (`dh_end`), by the phone's clock.
    pub completed_at: Option<DateTime<FixedOffset>>,
    /// The chosen place's value from the places file (`dh_place`).
    pub place: Option<String>,
    /// The answers, in the shape the JSON API takes; photos still hold file names.
    pub answers: Value,
}

fn malformed(path: impl Into<String>, message: impl Into<String>) -> Fault {
    Fault::new(path, FaultCode::Malformed, message)
}

fn parse_xml(xml: &str) -> Result<Document<'_>, Fault> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_INSTANCE_NODES,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(xml, options).map_err(|err| match err {
        roxmltree::Error::DtdDetected => malformed("", "a DTD is not allowed in a submission"),
        roxmltree::Error::NodesLimitReached => malformed(
            "",
            format!("the submission has more than {MAX_INSTANCE_NODES} XML nodes"),
        ),
        other => malformed("", format!("not well-formed XML: {other}")),
    })
}

/// The element children of `node`.
fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// The text directly inside `node` (all its text children, joined).
fn own_text(node: Node<'_, '_>) -> String {
    node.children()
        .filter(Node::is_text)
        .filter_map(|t| t.text())
        .collect()
}

/// Reads the form id, version, instanceID and deprecatedID of a submission.
pub fn instance_header(xml: &str) -> Result<InstanceHeader, Fault> {
    let doc = parse_xml(xml)?;
    header(&doc)
}

fn header(doc: &Document<'_>) -> Result<InstanceHeader, Fault> {
    let root = doc.root_element();
    let form_id = root
        .attribute("id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| malformed("", "the instance's root element has no `id` attribute"))?;
    let version = root
        .attribute("version")
        .and_then(|v| v.parse::<u32>().ok().filter(|n| n.to_string() == v))
        .ok_or_else(|| {
            malformed(
                "",
                "the instance's root element needs a `version` attribute, a whole number",
            )
        })?;
    let meta = elements(root).find(|e| e.tag_name().name() == "meta");
    let meta_value = |name: &str| {
        meta.and_then(|m| elements(m).find(|e| e.tag_name().name() == name))
            .map(|e| own_text(e).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let instance_id = meta_value("instanceID")
        .ok_or_else(|| malformed("meta.instanceID", "the instance has no meta/instanceID"))?;
    Ok(InstanceHeader {
        form_id: form_id.to_owned(),
        version,
        instance_id,
        deprecated_id: meta_value("deprecatedID"),
    })
}

/// Reads a submission of `def` into its answers; every fault at once (at most
/// [`DEFAULT_FAULT_LIMIT`]), sorted by path.
///
/// ```
/// use mobile_schema::{bundled_forms, instance_header, parse_instance};
///
/// let xml = "<data id=\"group_session\" version=\"1\"><dh_place>hk_01</dh_place>\
///     <session_date>2025-07-01</session_date><audience>workers</audience>\
///     <participants>12</participants><topic>sti</topic><topic_other />\
///     <meta><instanceID>uuid:0f8e2b1c</instanceID></meta></data>";
/// let header = instance_header(xml).unwrap();
/// let def = bundled_forms()
///     .into_iter()
///     .find(|f| f.form_id == header.form_id && f.version == header.version)
///     .unwrap();
/// let visit = parse_instance(&def, xml).unwrap();
/// assert_eq!(visit.place.as_deref(), Some("hk_01"));
/// assert_eq!(visit.answers["participants"], 12);
/// assert!(visit.answers.get("topic_other").is_none());
/// assert!(def.validate_answers(&visit.answers).is_ok());
/// ```
pub fn parse_instance(def: &FormDefinition, xml: &str) -> Result<XformInstance, Vec<Fault>> {
    let doc = parse_xml(xml).map_err(|fault| vec![fault])?;
    let header = header(&doc).map_err(|fault| vec![fault])?;
    if header.form_id != def.form_id || header.version != def.version {
        return Err(vec![malformed(
            "",
            format!(
                "the instance is of form `{}` version {}, not `{}` version {}",
                header.form_id, header.version, def.form_id, def.version
            ),
        )]);
    }
    let mut faults = FaultSink::new(DEFAULT_FAULT_LIMIT);
    let mut reader = Reader {
        faults: &mut faults,
        started_at: None,
        completed_at: None,
        place: None,
    };
    let answers = reader.object(&def.fields, doc.root_element(), "", true);
    let (started_at, completed_at, place) = (reader.started_at, reader.completed_at, reader.place);
    if !faults.is_empty() {
        return Err(faults.finish().faults);
    }
    Ok(XformInstance {
        form_id: header.form_id,
        version: header.version,
        instance_id: header.instance_id,
        deprecated_id: header.deprecated_id,
        started_at,
        completed_at,
        place,
        answers: Value::Object(answers),
    })
}

/// Whether `name` is one of the XForm's own elements at the instance root.
fn is_own_node(name: &str) -> bool {
    matches!(name, "meta" | START_FIELD | END_FIELD | PLACE_FIELD)
}

/// One walk over the instance, collecting the answers and the XForm's own nodes.
struct Reader<'f> {
    faults: &'f mut FaultSink,
    started_at: Option<DateTime<FixedOffset>>,
    completed_at: Option<DateTime<FixedOffset>>,
    place: Option<String>,
}

impl Reader<'_> {
    /// The answers of one object (the instance root, a group, a repeat entry).
    fn object(
        &mut self,
        fields: &[Field],
        element: Node<'_, '_>,
        prefix: &str,
        root: bool,
    ) -> Map<String, Value> {
        let mut map = Map::new();
        if !own_text(element).trim().is_empty() {
            self.faults.push(Fault::new(
                prefix,
                FaultCode::WrongType,
                "a group or repeat entry holds fields, not text",
            ));
        }
        // A set, not a list: a hostile object can hold tens of thousands of elements.
        let mut seen: HashSet<&str> = HashSet::new();
        for child in elements(element) {
            let name = child.tag_name().name();
            let path = join(prefix, name);
            let field = fields.iter().find(|f| f.key == name);
            let repeat = field.is_some_and(|f| f.field_type == FieldType::Repeat);
            if !repeat && !seen.insert(name) {
                self.faults
                    .push(malformed(path, "the element appears twice"));
                continue;
            }
            match field {
                Some(field) => self.field(field, child, &path, prefix, &mut map),
                None if root && is_own_node(name) => self.own_node(name, child, &path),
                None => self.count_node(fields, name, &path),
            }
        }
        map
    }

    /// An element of the instance root that is not a field: the XForm's own nodes.
    fn own_node(&mut self, name: &str, element: Node<'_, '_>, path: &str) {
        match name {
            // Read by `header`; only its children are checked here.
            "meta" => {
                for child in elements(element) {
                    let name = child.tag_name().name();
                    if !matches!(name, "instanceID" | "deprecatedID" | "instanceName") {
                        self.faults.push(Fault::new(
                            format!("meta.{name}"),
                            FaultCode::UnknownField,
                            "the form has no such meta field",
                        ));
                    }
                }
            }
            START_FIELD | END_FIELD => {
                let text = own_text(element);
                let text = text.trim();
                if text.is_empty() {
                    return;
                }
                match DateTime::parse_from_rfc3339(text) {
                    Ok(time) if name == START_FIELD => self.started_at = Some(time),
                    Ok(time) => self.completed_at = Some(time),
                    Err(_) => self.faults.push(Fault::new(
                        path,
                        FaultCode::BadDatetime,
                        "expected an RFC 3339 date-time with an offset",
                    )),
                }
            }
            PLACE_FIELD => {
                let text = own_text(element);
                let text = text.trim();
                if !text.is_empty() {
                    self.place = Some(text.to_owned());
                }
            }
            _ => {}
        }
    }

    /// The count question after a repeat (see `xform.rs`) is known and skipped: the
    /// repeat's own entries carry the count.
    fn count_node(&mut self, fields: &[Field], name: &str, path: &str) {
        let counted = name
            .strip_prefix(COUNT_PREFIX)
            .and_then(|key| fields.iter().find(|f| f.key == key))
            .is_some_and(has_count_node);
        if !counted {
            self.faults.push(Fault::new(
                path,
                FaultCode::UnknownField,
                "the form has no such field here",
            ));
        }
    }

    fn field(
        &mut self,
        field: &Field,
        element: Node<'_, '_>,
        path: &str,
        prefix: &str,
        map: &mut Map<String, Value>,
    ) {
        match field.field_type {
            FieldType::Group => {
                let object = self.object(field.children(), element, path, false);
                map.insert(field.key.clone(), Value::Object(object));
            }
            FieldType::Repeat => {
                let entries = map
                    .entry(field.key.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let index = entries.as_array().map_or(0, Vec::len);
                let entry_path = format!("{}[{index}]", join(prefix, &field.key));
                let object = self.object(field.children(), element, &entry_path, false);
                if let Some(entries) = map.get_mut(&field.key).and_then(Value::as_array_mut) {
                    entries.push(Value::Object(object));
                }
            }
            _ => {
                if elements(element).next().is_some() {
                    self.faults.push(Fault::new(
                        path,
                        FaultCode::WrongType,
                        "expected a value, not elements",
                    ));
                    return;
                }
                let text = own_text(element);
                if field.field_type == FieldType::Note {
                    if !text.trim().is_empty() {
                        self.faults.push(Fault::new(
                            path,
                            FaultCode::UnknownField,
                            "a note carries no value",
                        ));
                    }
                    return;
                }
                if let Some(value) = self.value(field, &text, path) {
                    map.insert(field.key.clone(), value);
                }
            }
        }
    }

    /// The JSON value of a question's text; `None` when it is empty or faulty.
    fn value(&mut self, field: &Field, text: &str, path: &str) -> Option<Value> {
        let wrong_type = |message: String| Fault::new(path, FaultCode::WrongType, message);
        // What a worker typed is kept as typed; everything else JavaRosa writes itself.
        if matches!(field.field_type, FieldType::Text | FieldType::Uic) {
            return (!text.is_empty()).then(|| Value::String(text.to_owned()));
        }
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let value = match field.field_type {
            FieldType::Integer => match text.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    self.faults
                        .push(wrong_type(format!("expected an integer, got `{text}`")));
                    return None;
                }
            },
            FieldType::Decimal => match number(text) {
                Some(n) => n,
                None => {
                    self.faults
                        .push(wrong_type(format!("expected a number, got `{text}`")));
                    return None;
                }
            },
            FieldType::Boolean => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    self.faults
                        .push(wrong_type(format!("expected true or false, got `{text}`")));
                    return None;
                }
            },
            FieldType::Date => {
                if !is_date(text) {
                    self.faults.push(Fault::new(
                        path,
                        FaultCode::BadDate,
                        "expected a real day as YYYY-MM-DD",
                    ));
                    return None;
                }
                Value::String(text.to_owned())
            }
            FieldType::Datetime => {
                // JavaRosa writes `2025-07-14T09:30:00.000+07:00` (or `...Z`): RFC 3339
                // already, kept as written.
                if DateTime::parse_from_rfc3339(text).is_err() {
                    self.faults.push(Fault::new(
                        path,
                        FaultCode::BadDatetime,
                        "expected an RFC 3339 date-time with an offset",
                    ));
                    return None;
                }
                Value::String(text.to_owned())
            }
            FieldType::SelectOne => {
                if !field.has_choice(text) {
                    self.faults.push(Fault::new(
                        path,
                        FaultCode::NotAChoice,
                        format!("`{text}` is not one of the field's choices"),
                    ));
                    return None;
                }
                Value::String(text.to_owned())
            }
            FieldType::SelectMultiple => {
                let mut selected = Vec::new();
                let mut bad = false;
                for (k, choice) in text.split_whitespace().enumerate() {
                    if !field.has_choice(choice) {
                        bad = true;
                        self.faults.push(Fault::new(
                            format!("{path}[{k}]"),
                            FaultCode::NotAChoice,
                            format!("`{choice}` is not one of the field's choices"),
                        ));
                    }
                    selected.push(Value::String(choice.to_owned()));
                }
                if bad {
                    return None;
                }
                Value::Array(selected)
            }
            FieldType::Geopoint => match geopoint(text) {
                Some(point) => point,
                None => {
                    self.faults.push(wrong_type(format!(
                        "expected `latitude longitude [altitude [accuracy]]`, got `{text}`"
                    )));
                    return None;
                }
            },
            FieldType::Photo => Value::String(text.to_owned()),
            FieldType::Text
            | FieldType::Uic
            | FieldType::Note
            | FieldType::Group
            | FieldType::Repeat => return None,
        };
        Some(value)
    }
}

/// A finite number as JSON (`NaN` and `Infinity` parse as `f64` but are no JSON number).
fn number(text: &str) -> Option<Value> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

/// `lat lon [alt [accuracy]]` as `{"lat", "lon"}`: the answers keep no altitude or
/// accuracy.
fn geopoint(text: &str) -> Option<Value> {
    let parts: Vec<Value> = text.split_whitespace().map(number).collect::<Option<_>>()?;
    match parts.as_slice() {
        [lat, lon] | [lat, lon, _] | [lat, lon, _, _] => {
            let mut point = Map::new();
            point.insert("lat".to_owned(), lat.clone());
            point.insert("lon".to_owned(), lon.clone());
            Some(Value::Object(point))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn label() -> Value {
        json!({"vi": "Nhãn", "en": "Label"})
    }

    fn choices(values: &[&str]) -> Value {
        Value::Array(
            values
                .iter()
                .map(|v| json!({"value": v, "label": label()}))
                .collect(),
        )
    }

    fn definition() -> FormDefinition {
        let def: FormDefinition = serde_json::from_value(json!({
            "form_id": "test_form",
            "version": 3,
            "kind": "outreach_visit",
            "title": {"vi": "Thử", "en": "Test"},
            "roles": ["peer_educator"],
            "fields": [
                {"key": "visit_date", "type": "date", "label": label(), "required": true},
                {"key": "started", "type": "datetime", "label": label()},
                {"key": "info", "type": "note", "label": label()},
                {"key": "n", "type": "integer", "label": label()},
                {"key": "ratio", "type": "decimal", "label": label()},
                {"key": "ok", "type": "boolean", "label": label()},
                {"key": "spot", "type": "geopoint", "label": label()},
                {"key": "place", "type": "select_one", "label": label(), "choices": choices(&["street", "bar"])},
                {"key": "name", "type": "text", "label": label()},
                {"key": "contacts", "type": "repeat", "label": label(), "max_count": 3, "fields": [
                    {"key": "uic", "type": "uic", "label": label()},
                    {"key": "referrals", "type": "select_multiple", "label": label(), "choices": choices(&["prep", "other"])},
                ]},
                {"key": "support", "type": "group", "label": label(), "fields": [
                    {"key": "photo", "type": "photo", "label": label()},
                ]},
            ],
        }))
        .unwrap();
        assert_eq!(def.validate(), Ok(()));
        def
    }

    /// An instance the way JavaRosa serializes one, with `body` inside the root.
    fn instance(body: &str) -> String {
        format!(
            "<?xml version='1.0' encoding='UTF-8' ?><data id=\"test_form\" version=\"3\" \
             xmlns:jr=\"http://openrosa.org/javarosa\"><dh_start>2025-07-14T09:30:00.000+07:00</dh_start>\
             <dh_end>2025-07-14T09:41:12.345+07:00</dh_end><dh_place>hk_01</dh_place>{body}\
             <meta><instanceID>uuid:6f1c1f3e-2b7a-4b7e-9d0a-1c2d3e4f5a6b</instanceID></meta></data>"
        )
    }

    fn faults(xml: &str) -> Vec<(String, &'static str)> {
        parse_instance(&definition(), xml)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.path, f.code.as_str()))
            .collect()
    }

    fn pairs(expected: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
        expected
            .iter()
            .map(|(p, c)| ((*p).to_owned(), *c))
            .collect()
    }

    #[test]
    fn a_javarosa_instance_becomes_answers() {
        let xml = instance(
            "<visit_date>2025-07-14</visit_date><started>2025-07-14T09:35:00.000Z</started>\
             <info /><n>-12</n><ratio>1.0E-7</ratio><ok>false</ok>\
             <spot>21.0285 105.8542 12.5 4.0</spot><place>bar</place><name> Lan </name>\
             <contacts><uic>Nguyễn Thị-Đào 1990 F</uic><referrals>prep other</referrals></contacts>\
             <contacts><uic>ABC123</uic><referrals /></contacts><dh_count_contacts>2</dh_count_contacts>\
             <support><photo>1718000000000.jpg</photo></support>",
        );
        let parsed = parse_instance(&definition(), &xml).unwrap();
        assert_eq!(parsed.form_id, "test_form");
        assert_eq!(parsed.version, 3);
        assert_eq!(
            parsed.instance_id,
            "uuid:6f1c1f3e-2b7a-4b7e-9d0a-1c2d3e4f5a6b"
        );
        assert_eq!(parsed.deprecated_id, None);
        assert_eq!(parsed.place.as_deref(), Some("hk_01"));
        assert_eq!(
            parsed.started_at.unwrap().to_rfc3339(),
            "2025-07-14T09:30:00+07:00"
        );
        assert_eq!(
            parsed.completed_at.unwrap().to_rfc3339(),
            "2025-07-14T09:41:12.345+07:00"
        );
        assert_eq!(
            parsed.answers,
            json!({
                "visit_date": "2025-07-14",
                "started": "2025-07-14T09:35:00.000Z",
                "n": -12,
                "ratio": 1.0e-7,
                "ok": false,
                "spot": {"lat": 21.0285, "lon": 105.8542},
                "place": "bar",
                "name": " Lan ",
                "contacts": [
                    {"uic": "Nguyễn Thị-Đào 1990 F", "referrals": ["prep", "other"]},
                    {"uic": "ABC123"},
                ],
                "support": {"photo": "1718000000000.jpg"},
            })
        );
        assert!(parsed.answers["n"].is_i64());
        let def = definition();
        assert_eq!(def.photo_paths(&parsed.answers), ["support.photo"]);
        // With the photo's digest swapped in, the answers pass the server's rules.
        let mut answers = parsed.answers;
        *answers.pointer_mut("/support/photo").unwrap() = json!("a".repeat(64));
        assert_eq!(def.validate_answers(&answers), Ok(()));
    }

    #[test]
    fn empty_and_missing_elements_are_absent_and_an_empty_group_is_an_object() {
        let parsed = parse_instance(
            &definition(),
            &instance("<visit_date>2025-07-14</visit_date><n /><support><photo /></support>"),
        )
        .unwrap();
        assert_eq!(
            parsed.answers,
            json!({"visit_date": "2025-07-14", "support": {}})
        );
    }

    #[test]
    fn the_header_names_the_form_and_the_submission() {
        let xml = instance("").replace(
            "</instanceID></meta>",
            "</instanceID><deprecatedID>uuid:old</deprecatedID></meta>",
        );
        assert_eq!(
            instance_header(&xml).unwrap(),
            InstanceHeader {
                form_id: "test_form".into(),
                version: 3,
                instance_id: "uuid:6f1c1f3e-2b7a-4b7e-9d0a-1c2d3e4f5a6b".into(),
                deprecated_id: Some("uuid:old".into()),
            }
        );
        let no_id = instance("").replace(" id=\"test_form\"", "");
        assert_eq!(
            instance_header(&no_id).unwrap_err().code,
            FaultCode::Malformed
        );
        let bad_version = instance("").replace("version=\"3\"", "version=\"03\"");
        assert_eq!(
            instance_header(&bad_version).unwrap_err().code,
            FaultCode::Malformed
        );
        let no_instance_id = instance("").replace(
            "<instanceID>uuid:6f1c1f3e-2b7a-4b7e-9d0a-1c2d3e4f5a6b</instanceID>",
            "<instanceID />",
        );
        assert_eq!(
            instance_header(&no_instance_id).unwrap_err().path,
            "meta.instanceID"
        );
    }

    #[test]
    fn another_forms_instance_is_refused() {
        let other = instance("").replace("id=\"test_form\"", "id=\"support_visit\"");
        assert_eq!(faults(&other), pairs(&[("", "malformed")]));
        let other_version = instance("").replace("version=\"3\"", "version=\"4\"");
        let err = parse_instance(&definition(), &other_version).unwrap_err();
        assert!(err[0].message.contains("version 4"), "{err:?}");
    }

    #[test]
    fn malformed_and_truncated_xml() {
        let whole = instance("<visit_date>2025-07-14</visit_date>");
        for xml in [
            "",
            "not xml",
            &whole[..whole.len() / 2],
            "<data id=\"test_form\" version=\"3\"><visit_date></data>",
            "<data id=\"test_form\" version=\"3\">&undefined;</data>",
        ] {
            assert_eq!(faults(xml), pairs(&[("", "malformed")]), "{xml}");
            assert!(instance_header(xml).is_err(), "{xml}");
        }
    }

    #[test]
    fn a_dtd_and_an_entity_bomb_are_refused_before_any_expansion() {
        let dtd = format!(
            "<!DOCTYPE data [<!ENTITY x \"1\">]>{}",
            instance("<n>&x;</n>").replace("<?xml version='1.0' encoding='UTF-8' ?>", "")
        );
        let bomb = format!(
            "<?xml version=\"1.0\"?><!DOCTYPE data [<!ENTITY a \"aaaaaaaaaa\">{}]><data id=\"test_form\" version=\"3\"><name>&j;</name></data>",
            (b'b'..=b'j')
                .map(|c| {
                    let prev = c - 1;
                    format!("<!ENTITY {} \"{}\">", c as char, format!("&{};", prev as char).repeat(10))
                })
                .collect::<String>()
        );
        for xml in [dtd, bomb] {
            let err = parse_instance(&definition(), &xml).unwrap_err();
            assert_eq!(err.len(), 1);
            assert_eq!(err[0].code, FaultCode::Malformed);
            assert!(err[0].message.contains("DTD"), "{err:?}");
        }
    }

    #[test]
    fn many_unknown_elements_are_read_in_linear_time() {
        // Just under the node limit, all in one object: a quadratic duplicate check
        // would take minutes here.
        let junk: String = (0..(MAX_INSTANCE_NODES as usize / 2 - 20))
            .map(|i| format!("<junk_{i}/>"))
            .collect();
        let started = std::time::Instant::now();
        let err = parse_instance(&definition(), &instance(&junk)).unwrap_err();
        assert_eq!(err.len(), DEFAULT_FAULT_LIMIT);
        assert!(started.elapsed().as_secs() < 3, "{:?}", started.elapsed());
    }

    #[test]
    fn too_many_nodes_are_refused() {
        let many = "<contacts><uic>ABC123</uic></contacts>".repeat(MAX_INSTANCE_NODES as usize / 2);
        let err = parse_instance(&definition(), &instance(&many)).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err[0].message.contains("XML nodes"), "{err:?}");
    }

    #[test]
    fn unknown_elements_and_wrong_types_at_their_paths() {
        let xml = instance(
            "<visit_date>2025-02-30</visit_date><started>2025-07-14 09:35</started>\
             <info>hello</info><n>abc</n><ratio>NaN</ratio><ok>yes</ok><spot>21.0</spot>\
             <place>karaoke</place><name><b>x</b></name><extra>1</extra><dh_count_support>1</dh_count_support>\
             <contacts><uic>ABC123</uic><referrals>prep hug</referrals><colour>red</colour></contacts>\
             <contacts>text<uic>X</uic></contacts><dh_count_contacts>2</dh_count_contacts>\
             <support><photo>a.jpg</photo><photo>b.jpg</photo></support><support />",
        )
        .replace("</instanceID></meta>", "</instanceID><audit>x</audit></meta>");
        assert_eq!(
            faults(&xml),
            pairs(&[
                ("contacts[0].colour", "unknown_field"),
                ("contacts[0].referrals[1]", "not_a_choice"),
                ("contacts[1]", "wrong_type"),
                ("dh_count_support", "unknown_field"),
                ("extra", "unknown_field"),
                ("info", "unknown_field"),
                ("meta.audit", "unknown_field"),
                ("n", "wrong_type"),
                ("name", "wrong_type"),
                ("ok", "wrong_type"),
                ("place", "not_a_choice"),
                ("ratio", "wrong_type"),
                ("spot", "wrong_type"),
                ("started", "bad_datetime"),
                ("support", "malformed"),
                ("support.photo", "malformed"),
                ("visit_date", "bad_date"),
            ])
        );
    }
}
