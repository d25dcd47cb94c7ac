//! Answer validation, with the same semantics as the phone: which fields are visible
//! (`show_if`), which must be present, and whether each value fits its field. Also the
//! walks the server needs over valid answers: the photo digests a submission names and
//! the paths of its UICs (which the server replaces by their keyed hash).
//!
//! Answers are a JSON object keyed by field key; a group is a nested object, a repeat an
//! array of objects, a note has no value. `null` counts as absent everywhere. Paths look
//! like `visit_date`, `support.loan_amount`, `contacts[2].condoms_male`; the empty path
//! is the answers document itself.

use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Value};

use crate::definition::{Condition, Field, FieldType, FormDefinition, ShowIf};
use crate::fault::{Fault, FaultCode, FaultList, FaultSink};
use crate::pattern;
use crate::uic::normalize_uic;

/// How many faults [`FormDefinition::validate_answers`] keeps.
pub const DEFAULT_FAULT_LIMIT: usize = 100;

impl FormDefinition {
    /// Checks `answers` against this definition and returns its faults at once (the
    /// first [`DEFAULT_FAULT_LIMIT`]), sorted by path (indices compared as numbers) and
    /// then code.
    pub fn validate_answers(&self, answers: &Value) -> Result<(), Vec<Fault>> {
        self.validate_answers_within(answers, DEFAULT_FAULT_LIMIT)
            .map_err(|list| list.faults)
    }

    /// Checks `answers` like [`validate_answers`](Self::validate_answers), keeping at most
    /// `limit` faults and counting the others. The work is linear in the size of the
    /// answers: a repeat or a selection past its maximum is one fault and its items are
    /// not walked, so a body cannot multiply into more work than its own length.
    pub fn validate_answers_within(&self, answers: &Value, limit: usize) -> Result<(), FaultList> {
        let mut faults = FaultSink::new(limit);
        match answers.as_object() {
            Some(map) => check_object(&self.fields, map, "", &mut Vec::new(), &mut faults),
            None => faults.push(Fault::new(
                "",
                FaultCode::NotAnObject,
                "answers must be a JSON object",
            )),
        }
        if faults.is_empty() {
            Ok(())
        } else {
            Err(faults.finish())
        }
    }

    /// Every photo digest the answers name, walking groups and repeats, without
    /// duplicates, in first-seen order; values that are not 64 lowercase hex characters
    /// are skipped (validation reports them).
    pub fn photo_digests(&self, answers: &Value) -> Vec<String> {
        let mut digests: Vec<String> = Vec::new();
        walk(&self.fields, answers, "", &mut |field, value, _| {
            if field.field_type == FieldType::Photo {
                if let Some(digest) = value.as_str().filter(|d| is_sha256_hex(d)) {
                    if !digests.iter().any(|d| d == digest) {
                        digests.push(digest.to_owned());
                    }
                }
            }
        });
        digests
    }

    /// The path (`photos[0].photo`) of every present, non-null `photo` value, in document
    /// order: an ODK Collect submission names its photos by file name, and the server
    /// replaces each by the digest of the file it received (see `json_pointer`).
    pub fn photo_paths(&self, answers: &Value) -> Vec<String> {
        let mut paths = Vec::new();
        walk(&self.fields, answers, "", &mut |field, _, path| {
            if field.field_type == FieldType::Photo {
                paths.push(path.to_owned());
            }
        });
        paths
    }

    /// The path (`contacts[2].uic`) of every present, non-null `uic` value, valid or not,
    /// in document order, so the server can replace each by its hash before storing.
    pub fn uic_paths(&self, answers: &Value) -> Vec<String> {
        let mut paths = Vec::new();
        walk(&self.fields, answers, "", &mut |field, _, path| {
            if field.field_type == FieldType::Uic {
                paths.push(path.to_owned());
            }
        });
        paths
    }
}

/// Turns an answer path (`contacts[2].uic`) into a JSON Pointer (`/contacts/2/uic`), for
/// `serde_json::Value::pointer_mut`.
pub fn json_pointer(path: &str) -> String {
    let mut pointer = String::with_capacity(path.len() + 1);
    let mut segment = String::new();
    let flush = |segment: &mut String, pointer: &mut String| {
        if !segment.is_empty() {
            pointer.push('/');
            pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
            segment.clear();
        }
    };
    for c in path.chars() {
        match c {
            '.' | '[' | ']' => flush(&mut segment, &mut pointer),
            _ => segment.push(c),
        }
    }
    flush(&mut segment, &mut pointer);
    pointer
}

/// Calls `visit(field, value, path)` for every present, non-null value, depth first.
fn walk<'a>(
    fields: &'a [Field],
    object: &'a Value,
    prefix: &str,
    visit: &mut dyn FnMut(&'a Field, &'a Value, &str),
) {
    let Some(map) = object.as_object() else {
        return;
    };
    for field in fields {
        let Some(value) = map.get(&field.key).filter(|v| !v.is_null()) else {
            continue;
        };
        let path = join(prefix, &field.key);
        visit(field, value, &path);
        match (field.field_type, value) {
            (FieldType::Group, _) => walk(field.children(), value, &path, visit),
            (FieldType::Repeat, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    walk(field.children(), item, &format!("{path}[{i}]"), visit);
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// One object of answers on the way down, with the visibility of each of its fields.
struct Scope<'a> {
    fields: &'a [Field],
    map: &'a Map<String, Value>,
    visible: Vec<bool>,
}

/// Checks one object (the answers, a group, a repeat item); `outer` holds the enclosing
/// objects, outermost first, for `show_if` lookups.
fn check_object<'a>(
    fields: &'a [Field],
    map: &'a Map<String, Value>,
    prefix: &str,
    outer: &mut Vec<Scope<'a>>,
    faults: &mut FaultSink,
) {
    // Visibility first, in field order: a show_if looks only backwards (or outwards), so
    // every value it reads has its own visibility settled already.
    outer.push(Scope {
        fields,
        map,
        visible: Vec::with_capacity(fields.len()),
    });
    for field in fields {
        let shown = field
            .show_if
            .as_ref()
            .is_none_or(|show_if| condition_holds(show_if, outer));
        if let Some(scope) = outer.last_mut() {
            scope.visible.push(shown);
        }
    }
    let visible = outer.last().map(|s| s.visible.clone()).unwrap_or_default();

    for (field, shown) in fields.iter().zip(visible) {
        let path = join(prefix, &field.key);
        let value = map.get(&field.key).filter(|v| !v.is_null());
        if field.field_type == FieldType::Note {
            if value.is_some() {
                faults.push(Fault::new(
                    path,
                    FaultCode::UnknownField,
                    "a note carries no value",
                ));
            }
            continue;
        }
        match (value, shown) {
            (Some(_), false) => faults.push(Fault::new(
                path,
                FaultCode::HiddenFieldPresent,
                format!(
                    "must be absent while its show_if on `{}` is false",
                    field.show_if.as_ref().map_or("", |s| s.field.as_str())
                ),
            )),
            (None, true) if field.required => {
                faults.push(Fault::new(path, FaultCode::Required, "a value is required"));
            }
            (Some(value), true) => check_value(field, value, &path, outer, faults),
            (None, _) => {}
        }
    }
    for key in map.keys() {
        if !fields.iter().any(|f| &f.key == key) {
            faults.push(Fault::new(
                join(prefix, key),
                FaultCode::UnknownField,
                "the form has no such field here",
            ));
        }
    }
    outer.pop();
}

fn check_value<'a>(
    field: &'a Field,
    value: &'a Value,
    path: &str,
    outer: &mut Vec<Scope<'a>>,
    faults: &mut FaultSink,
) {
    match field.field_type {
        FieldType::Group => match value.as_object() {
            Some(map) => check_object(field.children(), map, path, outer, faults),
            None => faults.push(Fault::new(
                path,
                FaultCode::NotAnObject,
                "a group's answers must be an object",
            )),
        },
        FieldType::Repeat => {
            let Some(items) = value.as_array() else {
                faults.push(Fault::new(
                    path,
                    FaultCode::WrongType,
                    "a repeat's answers must be an array of objects",
                ));
                return;
            };
            if !check_count(
                field.min_count,
                field.max_count,
                items.len(),
                "items",
                path,
                faults,
            ) {
                // Past its maximum a repeat is one fault: its items are not walked.
                return;
            }
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                match item.as_object() {
                    Some(map) => check_object(field.children(), map, &item_path, outer, faults),
                    None => faults.push(Fault::new(
                        item_path,
                        FaultCode::NotAnObject,
                        "each item of a repeat must be an object",
                    )),
                }
            }
        }
        _ => scalar_faults(field, value, path, faults),
    }
}

/// Reports a count outside `min..=max`; answers `false` when it is past the maximum.
fn check_count(
    min: Option<u32>,
    max: Option<u32>,
    count: usize,
    what: &str,
    path: &str,
    faults: &mut FaultSink,
) -> bool {
    if let Some(min) = min.filter(|min| count < *min as usize) {
        faults.push(Fault::new(
            path,
            FaultCode::TooFew,
            format!("needs at least {min} {what}, has {count}"),
        ));
    }
    if let Some(max) = max.filter(|max| count > *max as usize) {
        faults.push(Fault::new(
            path,
            FaultCode::TooMany,
            format!("allows at most {max} {what}, has {count}"),
        ));
        return false;
    }
    true
}

/// Checks a non-null value of any type but group and repeat (which hold fields).
pub(crate) fn scalar_faults(field: &Field, value: &Value, path: &str, faults: &mut FaultSink) {
    let wrong_type = |expected: &str| Fault::new(path, FaultCode::WrongType, expected);
    match field.field_type {
        FieldType::Text => {
            let Some(text) = value.as_str() else {
                faults.push(wrong_type("expected a string"));
                return;
            };
            check_text(field, text, path, faults);
        }
        FieldType::Integer => {
            if !(value.is_i64() || value.is_u64()) {
                faults.push(wrong_type(
                    "expected an integer (no fraction, no decimal point)",
                ));
                return;
            }
            check_bounds(field, value, path, faults);
        }
        FieldType::Decimal => {
            if !value.is_number() {
                faults.push(wrong_type("expected a number"));
                return;
            }
            check_bounds(field, value, path, faults);
        }
        FieldType::Boolean => {
            if !value.is_boolean() {
                faults.push(wrong_type("expected true or false"));
            }
        }
        FieldType::Date => match value.as_str() {
            None => faults.push(wrong_type("expected a date string")),
            Some(text) if !is_date(text) => faults.push(Fault::new(
                path,
                FaultCode::BadDate,
                "expected a real day as YYYY-MM-DD",
            )),
            Some(_) => {}
        },
        FieldType::Datetime => match value.as_str() {
            None => faults.push(wrong_type("expected a date-time string")),
            Some(text) if DateTime::parse_from_rfc3339(text).is_err() => {
                faults.push(Fault::new(
                    path,
                    FaultCode::BadDatetime,
                    "expected an RFC 3339 date-time with an offset",
                ));
            }
            Some(_) => {}
        },
        FieldType::SelectOne => match value.as_str() {
            None => faults.push(wrong_type("expected a choice value (a string)")),
            Some(choice) if !field.has_choice(choice) => faults.push(Fault::new(
                path,
                FaultCode::NotAChoice,
                "not one of the field's choices",
            )),
            Some(_) => {}
        },
        FieldType::SelectMultiple => check_selection(field, value, path, faults),
        FieldType::Uic => match value.as_str() {
            None => faults.push(wrong_type("expected a UIC string")),
            Some(raw) if normalize_uic(raw).is_none() => faults.push(Fault::new(
                path,
                FaultCode::BadUic,
                "a UIC must leave 6 to 20 letters and digits once folded",
            )),
            Some(_) => {}
        },
        FieldType::Photo => match value.as_str() {
            None => faults.push(wrong_type("expected a SHA-256 hex string")),
            Some(digest) if !is_sha256_hex(digest) => faults.push(Fault::new(
                path,
                FaultCode::BadSha256,
                "expected 64 lowercase hex characters",
            )),
            Some(_) => {}
        },
        FieldType::Geopoint => match value.as_object() {
            None => faults.push(wrong_type("expected an object {\"lat\": .., \"lon\": ..}")),
            Some(point) if !is_geopoint(point) => faults.push(Fault::new(
                path,
                FaultCode::BadGeopoint,
                "expected exactly {\"lat\": -90..90, \"lon\": -180..180}",
            )),
            Some(_) => {}
        },
        FieldType::Note => faults.push(Fault::new(
            path,
            FaultCode::UnknownField,
            "a note carries no value",
        )),
        FieldType::Group | FieldType::Repeat => faults.push(wrong_type(
            "a group or repeat holds fields, not a single value",
        )),
    }
}

fn check_text(field: &Field, text: &str, path: &str, faults: &mut FaultSink) {
    let length = text.chars().count();
    if let Some(min) = field.min_length.filter(|min| length < *min as usize) {
        faults.push(Fault::new(
            path,
            FaultCode::TooShort,
            format!("needs at least {min} characters, has {length}"),
        ));
    }
    if let Some(max) = field.max_length.filter(|max| length > *max as usize) {
        faults.push(Fault::new(
            path,
            FaultCode::TooLong,
            format!("allows at most {max} characters, has {length}"),
        ));
    }
    // A pattern that does not compile is a definition fault, reported by `validate`.
    if let Some(Ok(regex)) = field.pattern.as_deref().map(pattern::compile) {
        if !regex.is_match(text) {
            faults.push(Fault::new(
                path,
                FaultCode::PatternMismatch,
                "does not match the field's pattern",
            ));
        }
    }
}

fn check_bounds(field: &Field, value: &Value, path: &str, faults: &mut FaultSink) {
    let Some(number) = value.as_f64() else {
        return;
    };
    let below = field.min.filter(|min| number < *min);
    let above = field.max.filter(|max| number > *max);
    if below.is_some() || above.is_some() {
        let message = match (field.min, field.max) {
            (Some(min), Some(max)) => format!("must be between {} and {}", num(min), num(max)),
            (Some(min), None) => format!("must be at least {}", num(min)),
            (None, Some(max)) => format!("must be at most {}", num(max)),
            (None, None) => String::new(),
        };
        faults.push(Fault::new(path, FaultCode::OutOfRange, message));
    }
}

/// A bound as people write it: `500`, not `500.0`.
fn num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        n.to_string()
    }
}

fn check_selection(field: &Field, value: &Value, path: &str, faults: &mut FaultSink) {
    let Some(selected) = value.as_array() else {
        faults.push(Fault::new(
            path,
            FaultCode::WrongType,
            "expected an array of choice values",
        ));
        return;
    };
    // More selections than the field has choices can never be valid: one fault, and the
    // items are not compared with each other (that walk is quadratic).
    let choices = field.choices.as_ref().map_or(0, Vec::len);
    if selected.len() > choices {
        faults.push(Fault::new(
            path,
            FaultCode::TooMany,
            format!(
                "has {} selections but the field has only {choices} choices",
                selected.len()
            ),
        ));
        return;
    }
    for (k, item) in selected.iter().enumerate() {
        let item_path = format!("{path}[{k}]");
        match item.as_str() {
            None => faults.push(Fault::new(
                item_path,
                FaultCode::WrongType,
                "expected a choice value (a string)",
            )),
            Some(choice) if !field.has_choice(choice) => faults.push(Fault::new(
                item_path,
                FaultCode::NotAChoice,
                "not one of the field's choices",
            )),
            Some(_) if selected[..k].contains(item) => faults.push(Fault::new(
                item_path,
                FaultCode::DuplicateChoice,
                "selected twice",
            )),
            Some(_) => {}
        }
    }
    // Counts of choices: the definition check keeps these whole and non-negative.
    let bound = |b: Option<f64>| b.map(|b| b.max(0.0).min(f64::from(u32::MAX)) as u32);
    check_count(
        bound(field.min),
        bound(field.max),
        selected.len(),
        "choices",
        path,
        faults,
    );
}

pub(crate) fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    shape && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// Whether `text` is a SHA-256 digest as the API spells it: 64 lowercase hex characters.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_geopoint(point: &Map<String, Value>) -> bool {
    let within = |key: &str, limit: f64| {
        point
            .get(key)
            .and_then(Value::as_f64)
            .is_some_and(|x| (-limit..=limit).contains(&x))
    };
    point.len() == 2 && within("lat", 90.0) && within("lon", 180.0)
}

/// Whether a `show_if` holds; false when the referenced field is absent, null, hidden
/// or unknown.
fn condition_holds(show_if: &ShowIf, scopes: &[Scope<'_>]) -> bool {
    let Some((field, value)) = referenced_value(&show_if.field, scopes) else {
        return false;
    };
    let selection = match (field.field_type, value) {
        (FieldType::SelectMultiple, Value::Array(selected)) => Some(selected),
        _ => None,
    };
    match &show_if.condition {
        Condition::Equals(expected) => match selection {
            Some(selected) => selected.iter().any(|s| same(s, expected)),
            None => same(value, expected),
        },
        Condition::In(options) => match selection {
            Some(selected) => selected
                .iter()
                .any(|s| options.iter().any(|option| same(s, option))),
            None => options.iter().any(|option| same(value, option)),
        },
        Condition::GreaterThan(limit) => value.as_f64().is_some_and(|n| n > *limit),
    }
}

/// The value a `show_if` reads: the field with that key in the nearest enclosing object
/// whose definition has it, if that field is visible and its value present.
fn referenced_value<'a>(key: &str, scopes: &[Scope<'a>]) -> Option<(&'a Field, &'a Value)> {
    for scope in scopes.iter().rev() {
        let Some(index) = scope.fields.iter().position(|f| f.key == key) else {
            continue;
        };
        // A field whose visibility is not settled yet (a forward reference in a definition
        // that `validate` would refuse) counts as hidden.
        let shown = scope.visible.get(index).copied().unwrap_or(false);
        let field = scope.fields.get(index)?;
        if !shown || field.field_type == FieldType::Note {
            return None;
        }
        return scope
            .map
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| (field, v));
    }
    None
}

/// JSON equality, except that numbers compare by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            x.as_f64() == y.as_f64()
        }
        _ => a == b,
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

    fn definition(fields: Value) -> FormDefinition {
        let def: FormDefinition = serde_json::from_value(json!({
            "form_id": "test_form",
            "version": 1,
            "kind": "outreach_visit",
            "title": {"vi": "Thử", "en": "Test"},
            "roles": ["peer_educator"],
            "fields": fields,
        }))
        .unwrap();
        assert_eq!(def.validate(), Ok(()), "test definitions must be valid");
        def
    }

    fn faults(def: &FormDefinition, answers: Value) -> Vec<(String, &'static str)> {
        def.validate_answers(&answers)
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

    /// A small outreach-like form with one field of every type.
    fn every_type() -> FormDefinition {
        definition(json!([
            {"key": "visit_date", "type": "date", "label": label(), "required": true},
            {"key": "started", "type": "datetime", "label": label()},
            {"key": "place", "type": "select_one", "label": label(), "choices": choices(&["street", "bar"])},
            {"key": "name", "type": "text", "label": label(), "min_length": 2, "max_length": 5, "pattern": "[a-zà-ỹ]+"},
            {"key": "ratio", "type": "decimal", "label": label(), "min": 0, "max": 1},
            {"key": "ok", "type": "boolean", "label": label()},
            {"key": "spot", "type": "geopoint", "label": label()},
            {"key": "info", "type": "note", "label": label()},
            {"key": "contacts", "type": "repeat", "label": label(), "required": true, "min_count": 1, "max_count": 3, "fields": [
                {"key": "uic", "type": "uic", "label": label(), "required": true},
                {"key": "condoms_male", "type": "integer", "label": label(), "required": true, "min": 0, "max": 500},
                {"key": "referrals", "type": "select_multiple", "label": label(), "max": 2,
                 "choices": choices(&["hiv_test", "sti_exam", "prep", "other"])},
            ]},
            {"key": "support", "type": "group", "label": label(), "fields": [
                {"key": "photo", "type": "photo", "label": label()},
            ]},
        ]))
    }

    fn contact(condoms: Value) -> Value {
        json!({"uic": "Nguyễn Thị 1990 F", "condoms_male": condoms})
    }

    #[test]
    fn valid_answers_pass() {
        let def = every_type();
        let answers = json!({
            "visit_date": "2025-02-28",
            "started": "2025-02-28T21:15:00+07:00",
            "place": "bar",
            "name": "hoà",
            "ratio": 0.5,
            "ok": false,
            "spot": {"lat": 21.03, "lon": 105.85},
            "info": null,
            "contacts": [contact(json!(0)), {"uic": "ABC123", "condoms_male": 500, "referrals": ["prep", "other"]}],
            "support": {"photo": "a".repeat(64)},
        });
        assert_eq!(def.validate_answers(&answers), Ok(()));
    }

    #[test]
    fn every_answer_fault_at_its_path() {
        let def = every_type();
        let answers = json!({
            "visit_date": "2025-02-30",
            "started": "2025-02-28 21:15",
            "place": "karaoke",
            "name": "x1",
            "ratio": 1.5,
            "ok": "yes",
            "spot": {"lat": 21.0, "lon": 105.8, "alt": 3},
            "info": "hello",
            "contacts": [
                contact(json!(1)),
                contact(json!(1.0)),
                {"uic": "ab", "condoms_male": 501, "referrals": ["prep", "prep", "hug", 3], "name": "Lan"},
            ],
            "support": {"photo": "A".repeat(64)},
            "extra": 1,
        });
        assert_eq!(
            faults(&def, answers),
            pairs(&[
                ("contacts[1].condoms_male", "wrong_type"),
                ("contacts[2].condoms_male", "out_of_range"),
                ("contacts[2].name", "unknown_field"),
                ("contacts[2].referrals", "too_many"),
                ("contacts[2].referrals[1]", "duplicate_choice"),
                ("contacts[2].referrals[2]", "not_a_choice"),
                ("contacts[2].referrals[3]", "wrong_type"),
                ("contacts[2].uic", "bad_uic"),
                ("extra", "unknown_field"),
                ("info", "unknown_field"),
                ("name", "pattern_mismatch"),
                ("ok", "wrong_type"),
                ("place", "not_a_choice"),
                ("ratio", "out_of_range"),
                ("spot", "bad_geopoint"),
                ("started", "bad_datetime"),
                ("support.photo", "bad_sha256"),
                ("visit_date", "bad_date"),
            ])
        );
    }

    #[test]
    fn a_repeat_item_that_is_not_an_object() {
        let def = every_type();
        let answers = json!({
            "visit_date": "2025-02-03",
            "contacts": [contact(json!(1)), "not an object"],
        });
        assert_eq!(
            faults(&def, answers),
            pairs(&[("contacts[1]", "not_an_object")])
        );
    }

    #[test]
    fn a_repeat_past_its_maximum_is_one_fault_and_its_items_are_not_walked() {
        // 300,000 empty contacts once answered 2,100,001 faults (205 MB).
        let def = every_type();
        let answers = json!({
            "visit_date": "2025-02-03",
            "contacts": vec![json!({}); 300_000],
        });
        let list = def
            .validate_answers_within(&answers, 100)
            .expect_err("too many contacts");
        assert_eq!(list.omitted, 0);
        assert_eq!(
            list.faults
                .iter()
                .map(|f| (f.path.as_str(), f.code.as_str(), f.message.as_str()))
                .collect::<Vec<_>>(),
            [("contacts", "too_many", "allows at most 3 items, has 300000")]
        );
    }

    #[test]
    fn a_selection_longer_than_the_choices_is_one_fault() {
        // The duplicate check compares items pairwise: never on more than the choices.
        let def = every_type();
        let mut item = contact(json!(1));
        item["referrals"] = json!(vec!["prep"; 200_000]);
        let answers = json!({"visit_date": "2025-02-03", "contacts": [item]});
        assert_eq!(
            faults(&def, answers),
            pairs(&[("contacts[0].referrals", "too_many")])
        );
    }

    #[test]
    fn faults_past_the_limit_are_counted_not_kept() {
        let def = every_type();
        let mut answers = json!({"visit_date": "2025-02-03", "contacts": [contact(json!(1))]});
        for i in 0..5_000 {
            answers[format!("junk_{i}")] = json!(i);
        }
        let list = def
            .validate_answers_within(&answers, 100)
            .expect_err("unknown fields");
        assert_eq!(list.faults.len(), 100);
        assert_eq!(list.omitted, 4_900);
        assert!(list
            .faults
            .iter()
            .all(|f| f.code == FaultCode::UnknownField));
        // The kept ones are sorted like any fault list.
        let paths: Vec<&str> = list.faults.iter().map(|f| f.path.as_str()).collect();
        let mut sorted = list.faults.clone();
        crate::fault::sort_faults(&mut sorted);
        assert_eq!(
            paths,
            sorted.iter().map(|f| f.path.as_str()).collect::<Vec<_>>()
        );
        // The default limit is the same hundred.
        assert_eq!(
            def.validate_answers(&answers).expect_err("faults").len(),
            DEFAULT_FAULT_LIMIT
        );
    }

    #[test]
    fn required_too_few_too_short_too_long_and_not_an_object() {
        let def = every_type();
        assert_eq!(
            faults(
                &def,
                json!({"visit_date": null, "contacts": [], "name": "x", "support": []})
            ),
            pairs(&[
                ("contacts", "too_few"),
                ("name", "too_short"),
                ("support", "not_an_object"),
                ("visit_date", "required"),
            ])
        );
        assert_eq!(
            faults(&def, json!({"name": "abcdef", "contacts": [{}]})),
            pairs(&[
                ("contacts[0].condoms_male", "required"),
                ("contacts[0].uic", "required"),
                ("name", "too_long"),
                ("visit_date", "required"),
            ])
        );
        assert_eq!(faults(&def, json!([1, 2])), pairs(&[("", "not_an_object")]));
    }

    #[test]
    fn dates_and_datetimes() {
        let def = every_type();
        let base = json!({"contacts": [contact(json!(1))]});
        for (date, ok) in [
            ("2024-02-29", true),
            ("2025-02-29", false),
            ("2025-2-28", false),
            ("25-02-28", false),
            ("2025-02-28T00:00:00Z", false),
        ] {
            let mut answers = base.clone();
            answers["visit_date"] = json!(date);
            assert_eq!(def.validate_answers(&answers).is_ok(), ok, "{date}");
        }
        for (datetime, ok) in [
            ("2025-02-28T21:15:00Z", true),
            ("2025-02-28T21:15:00.123+07:00", true),
            ("2025-02-28T21:15:00", false),
            ("2025-02-28", false),
        ] {
            let mut answers = base.clone();
            answers["visit_date"] = json!("2025-02-28");
            answers["started"] = json!(datetime);
            assert_eq!(def.validate_answers(&answers).is_ok(), ok, "{datetime}");
        }
        let mut answers = base;
        answers["visit_date"] = json!(20250228);
        assert_eq!(
            faults(&def, answers),
            pairs(&[("visit_date", "wrong_type")])
        );
    }

    #[test]
    fn select_multiple_counts_use_min_and_max() {
        let def = definition(json!([
            {"key": "support", "type": "select_multiple", "label": label(), "required": true,
             "min": 1, "choices": choices(&["loan", "job"])},
        ]));
        assert_eq!(
            faults(&def, json!({"support": []})),
            pairs(&[("support", "too_few")])
        );
        assert_eq!(
            faults(&def, json!({"support": "loan"})),
            pairs(&[("support", "wrong_type")])
        );
        assert_eq!(
            faults(&def, json!({"support": ["job", "loan"]})),
            pairs(&[])
        );
    }

    fn show_if_form() -> FormDefinition {
        definition(json!([
            {"key": "topic", "type": "select_one", "label": label(), "required": true, "choices": choices(&["hiv", "other"])},
            {"key": "topic_other", "type": "text", "label": label(), "required": true,
             "show_if": {"field": "topic", "equals": "other"}},
            {"key": "support", "type": "select_multiple", "label": label(), "choices": choices(&["loan", "job", "rehab"])},
            {"key": "loan_amount", "type": "integer", "label": label(), "required": true, "min": 1,
             "show_if": {"field": "support", "equals": "loan"}},
            {"key": "work_note", "type": "text", "label": label(),
             "show_if": {"field": "support", "in": ["job", "rehab"]}},
            {"key": "participants", "type": "integer", "label": label()},
            {"key": "crowd", "type": "boolean", "label": label(), "required": true,
             "show_if": {"field": "participants", "greater_than": 20}},
            {"key": "contacts", "type": "repeat", "label": label(), "fields": [
                {"key": "counselled", "type": "boolean", "label": label(), "required": true},
                {"key": "why_not", "type": "text", "label": label(), "required": true,
                 "show_if": {"field": "counselled", "equals": false}},
                {"key": "loan_ok", "type": "boolean", "label": label(), "required": true,
                 "show_if": {"field": "loan_amount", "greater_than": 1000}},
            ]},
            {"key": "chained", "type": "text", "label": label(), "required": true,
             "show_if": {"field": "loan_amount", "greater_than": 0}},
        ]))
    }

    #[test]
    fn show_if_same_level_equals() {
        let def = show_if_form();
        // Hidden and required but absent: fine.
        assert_eq!(faults(&def, json!({"topic": "hiv"})), pairs(&[]));
        // Hidden and present: refused.
        assert_eq!(
            faults(&def, json!({"topic": "hiv", "topic_other": "x"})),
            pairs(&[("topic_other", "hidden_field_present")])
        );
        // Visible and required: needed.
        assert_eq!(
            faults(&def, json!({"topic": "other"})),
            pairs(&[("topic_other", "required")])
        );
        assert_eq!(
            faults(&def, json!({"topic": "other", "topic_other": "x"})),
            pairs(&[])
        );
    }

    #[test]
    fn show_if_on_select_multiple_equals_and_in() {
        let def = show_if_form();
        let base = json!({"topic": "hiv"});
        let with = |extra: Value| {
            let mut answers = base.clone();
            for (k, v) in extra.as_object().unwrap() {
                answers[k] = v.clone();
            }
            faults(&def, answers)
        };
        // `equals` on a select_multiple: the value is among the selected.
        assert_eq!(
            with(json!({"support": ["job", "loan"]})),
            pairs(&[("loan_amount", "required")])
        );
        assert_eq!(
            with(json!({"support": ["job"], "loan_amount": 5})),
            pairs(&[("loan_amount", "hidden_field_present")])
        );
        assert_eq!(
            with(json!({"support": ["loan"], "loan_amount": 5, "chained": "x"})),
            pairs(&[])
        );
        // `in` on a select_multiple: any selected value is in the list.
        assert_eq!(
            with(json!({"support": ["rehab"], "work_note": "x"})),
            pairs(&[])
        );
        assert_eq!(
            with(json!({"support": ["loan"], "loan_amount": 5, "chained": "x", "work_note": "x"})),
            pairs(&[("work_note", "hidden_field_present")])
        );
    }

    #[test]
    fn show_if_greater_than_and_hidden_values_count_as_absent() {
        let def = show_if_form();
        let base = json!({"topic": "hiv"});
        let mut answers = base.clone();
        answers["participants"] = json!(20);
        answers["crowd"] = json!(true);
        assert_eq!(
            faults(&def, answers),
            pairs(&[("crowd", "hidden_field_present")])
        );
        let mut answers = base.clone();
        answers["participants"] = json!(21);
        assert_eq!(faults(&def, answers), pairs(&[("crowd", "required")]));
        // loan_amount present but hidden (no loan selected): `chained` reads it as absent.
        let mut answers = base;
        answers["loan_amount"] = json!(5);
        assert_eq!(
            faults(&def, answers),
            pairs(&[("loan_amount", "hidden_field_present")])
        );
    }

    #[test]
    fn show_if_same_level_and_enclosing_level_inside_a_repeat() {
        let def = show_if_form();
        let answers = json!({
            "topic": "hiv",
            "support": ["loan"],
            "loan_amount": 5000,
            "chained": "x",
            "contacts": [
                {"counselled": true},
                {"counselled": false},
                {"counselled": true, "why_not": "x", "loan_ok": true},
            ],
        });
        assert_eq!(
            faults(&def, answers.clone()),
            pairs(&[
                ("contacts[0].loan_ok", "required"),
                ("contacts[1].loan_ok", "required"),
                ("contacts[1].why_not", "required"),
                ("contacts[2].why_not", "hidden_field_present"),
            ])
        );
        let mut small = answers;
        small["loan_amount"] = json!(500);
        small["contacts"] = json!([{"counselled": true, "loan_ok": false}]);
        assert_eq!(
            faults(&def, small),
            pairs(&[("contacts[0].loan_ok", "hidden_field_present")])
        );
    }

    #[test]
    fn photo_digests_walk_groups_and_repeats_without_duplicates() {
        let def = definition(json!([
            {"key": "slip", "type": "photo", "label": label()},
            {"key": "photos", "type": "repeat", "label": label(), "fields": [
                {"key": "photo", "type": "photo", "label": label()},
                {"key": "more", "type": "group", "label": label(), "fields": [
                    {"key": "photo", "type": "photo", "label": label()},
                ]},
            ]},
        ]));
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let answers = json!({
            "slip": b,
            "photos": [
                {"photo": a},
                {"photo": b, "more": {"photo": c}},
                {"photo": "NOT-HEX"},
                {"photo": null},
            ],
        });
        assert_eq!(def.photo_digests(&answers), vec![b, a, c]);
        assert!(def.photo_digests(&json!("nope")).is_empty());
    }

    #[test]
    fn uic_paths_name_every_present_uic() {
        let def = definition(json!([
            {"key": "person_uic", "type": "uic", "label": label()},
            {"key": "contacts", "type": "repeat", "label": label(), "fields": [
                {"key": "uic", "type": "uic", "label": label()},
            ]},
            {"key": "family", "type": "group", "label": label(), "fields": [
                {"key": "uic", "type": "uic", "label": label()},
            ]},
        ]));
        let answers = json!({
            "person_uic": "ABC123",
            "contacts": [{"uic": "X"}, {}, {"uic": null}, {"uic": "DEF456"}],
            "family": {"uic": "GHI789"},
        });
        let paths = def.uic_paths(&answers);
        assert_eq!(
            paths,
            [
                "person_uic",
                "contacts[0].uic",
                "contacts[3].uic",
                "family.uic"
            ]
        );
        let mut scrubbed = answers.clone();
        for path in &paths {
            *scrubbed.pointer_mut(&json_pointer(path)).unwrap() = json!("hash");
        }
        assert_eq!(scrubbed["contacts"][3]["uic"], "hash");
        assert_eq!(scrubbed["family"]["uic"], "hash");
    }

    #[test]
    fn json_pointer_from_paths() {
        assert_eq!(json_pointer("contacts[2].uic"), "/contacts/2/uic");
        assert_eq!(json_pointer("visit_date"), "/visit_date");
        assert_eq!(json_pointer("a.b[0][1]"), "/a/b/0/1");
        assert_eq!(json_pointer(""), "");
    }
}
