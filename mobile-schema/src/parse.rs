//! Reading a form definition from JSON text, the way an admin's upload arrives: shape
//! errors become `malformed` faults at the path where serde stopped, then the
//! definition is validated, so the admin sees as much as can be found in one answer.

use serde_json::Value;

use crate::definition::FormDefinition;
use crate::fault::{Fault, FaultCode};

/// Parses and validates a form definition; every fault found, or the definition.
///
/// A shape error (unknown key, wrong JSON type, missing attribute) stops parsing and is
/// reported as one `malformed` fault with its path. Negative lengths and counts, and a
/// version below 1, are reported as `bad_range`/`bad_version` (not `malformed`) together
/// with the other definition faults.
pub fn parse_definition(json: &str) -> Result<FormDefinition, Vec<Fault>> {
    let mut raw: Value = serde_json::from_str(json).map_err(|err| {
        vec![Fault::new(
            "",
            FaultCode::Malformed,
            format!("not valid JSON: {err}"),
        )]
    })?;
    let mut faults = Vec::new();
    take_out_of_type_numbers(&mut raw, &mut faults);
    let parsed = if faults.is_empty() {
        // From the text, so that a key given twice is refused rather than overwritten.
        let mut de = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(&mut de).map_err(shape_fault)
    } else {
        serde_path_to_error::deserialize(&raw).map_err(shape_fault)
    };
    let definition: FormDefinition = parsed.map_err(|fault| vec![fault])?;
    if let Err(found) = definition.validate() {
        faults.extend(found);
    }
    if faults.is_empty() {
        Ok(definition)
    } else {
        Err(faults)
    }
}

fn shape_fault(err: serde_path_to_error::Error<serde_json::Error>) -> Fault {
    // For a key given twice serde stops at the object holding it; point at the key.
    let (path, message) = error_path(&err, "duplicate field `");
    Fault::new(path, FaultCode::Malformed, message)
}

/// Where a serde error happened, as a fault path (`fields[2].key`, empty for the whole
/// document), and serde's message. Errors whose message starts with `keyed` (such as
/// "duplicate field `" or "missing field `") stop at the object holding the key they
/// name: the path then points at that key.
pub(crate) fn error_path(
    err: &serde_path_to_error::Error<serde_json::Error>,
    keyed: &str,
) -> (String, String) {
    let mut path = err.path().to_string();
    if path == "." {
        path.clear();
    }
    let message = err.inner().to_string();
    if let Some(key) = message
        .strip_prefix(keyed)
        .and_then(|rest| rest.split('`').next())
    {
        path = if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        };
    }
    (path, message)
}

/// Takes out the negative numbers that the typed definition cannot hold (it uses `u32`),
/// turning each into the definition fault it stands for.
fn take_out_of_type_numbers(raw: &mut Value, faults: &mut Vec<Fault>) {
    let Some(form) = raw.as_object_mut() else {
        return;
    };
    if let Some(version) = form.get("version").and_then(Value::as_f64) {
        if version < 0.0 {
            faults.push(Fault::new(
                "version",
                FaultCode::BadVersion,
                "version must be 1 or more",
            ));
            form.insert("version".into(), Value::from(1));
        }
    }
    if let Some(fields) = form.get_mut("fields") {
        take_negative_bounds(fields, "fields", faults);
    }
}

fn take_negative_bounds(fields: &mut Value, path: &str, faults: &mut Vec<Fault>) {
    let Some(fields) = fields.as_array_mut() else {
        return;
    };
    for (i, field) in fields.iter_mut().enumerate() {
        let Some(field) = field.as_object_mut() else {
            continue;
        };
        for name in ["min_length", "max_length", "min_count", "max_count"] {
            if field
                .get(name)
                .and_then(Value::as_f64)
                .is_some_and(|n| n < 0.0)
            {
                field.remove(name);
                faults.push(Fault::new(
                    format!("{path}[{i}].{name}"),
                    FaultCode::BadRange,
                    format!("{name} must not be negative"),
                ));
            }
        }
        if let Some(children) = field.get_mut("fields") {
            take_negative_bounds(children, &format!("{path}[{i}].fields"), faults);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(fields: Value) -> String {
        json!({
            "form_id": "test_form",
            "version": 1,
            "kind": "support_visit",
            "title": {"vi": "Thử", "en": "Test"},
            "roles": ["volunteer"],
            "fields": fields,
        })
        .to_string()
    }

    fn codes(result: Result<FormDefinition, Vec<Fault>>) -> Vec<(String, &'static str)> {
        result
            .err()
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.code.as_str()))
            .collect()
    }

    fn label() -> Value {
        json!({"vi": "Nhãn", "en": "Label"})
    }

    #[test]
    fn parses_a_valid_definition_and_round_trips() {
        let text = form(json!([
            {"key": "note", "type": "note", "label": label()},
            {"key": "n", "type": "integer", "label": label(), "required": true, "min": 0.0},
        ]));
        let def = parse_definition(&text).unwrap();
        let again: FormDefinition =
            serde_json::from_value(serde_json::to_value(&def).unwrap()).unwrap();
        assert_eq!(def, again);
        let out = serde_json::to_value(&def).unwrap();
        assert_eq!(out["fields"][1]["min"], json!(0));
        assert!(out["fields"][1]["min"].is_i64());
        assert!(out["fields"][0].get("required").is_none());
        assert!(out["fields"][0].get("choices").is_none());
    }

    #[test]
    fn shape_errors_are_malformed_at_their_path() {
        let unknown =
            form(json!([{"key": "a", "type": "text", "label": label(), "colour": "red"}]));
        assert_eq!(
            codes(parse_definition(&unknown)),
            [("fields[0].colour".to_owned(), "malformed")]
        );
        let top = form(json!([])).replace("\"version\"", "\"colour\":1,\"version\"");
        assert_eq!(
            codes(parse_definition(&top)),
            [("colour".to_owned(), "malformed")]
        );
        let wrong = form(json!([{"key": "a", "type": "money", "label": label()}]));
        assert_eq!(
            codes(parse_definition(&wrong)),
            [("fields[0].type".to_owned(), "malformed")]
        );
        let deep = form(
            json!([{"key": "g", "type": "group", "label": label(), "fields": [
                {"key": "a", "type": "text", "label": {"vi": "x"}},
            ]}]),
        );
        assert_eq!(
            codes(parse_definition(&deep)),
            [("fields[0].fields[0].label".to_owned(), "malformed")]
        );
        let twice = r#"{"form_id": "a_b", "form_id": "c_d"}"#;
        assert_eq!(
            codes(parse_definition(twice)),
            [("form_id".to_owned(), "malformed")]
        );
        let twice_deep = form(json!([{"key": "a", "type": "text", "label": label()}]))
            .replace("\"key\":\"a\"", "\"key\":\"a\",\"key\":\"b\"");
        assert_eq!(
            codes(parse_definition(&twice_deep)),
            [("fields[0].key".to_owned(), "malformed")]
        );
        assert_eq!(codes(parse_definition("{")), [(String::new(), "malformed")]);
        assert_eq!(
            codes(parse_definition("[]")),
            [(String::new(), "malformed")]
        );
    }

    #[test]
    fn negative_lengths_and_versions_are_definition_faults() {
        let text = form(json!([
            {"key": "t", "type": "text", "label": label(), "min_length": -1},
            {"key": "r", "type": "repeat", "label": label(), "max_count": -2, "fields": [
                {"key": "u", "type": "text", "label": label(), "max_length": -3},
            ]},
            {"key": "Bad", "type": "boolean", "label": label()},
        ]))
        .replace("\"version\":1", "\"version\":-4");
        assert_eq!(
            codes(parse_definition(&text)),
            [
                ("version".to_owned(), "bad_version"),
                ("fields[0].min_length".to_owned(), "bad_range"),
                ("fields[1].max_count".to_owned(), "bad_range"),
                ("fields[1].fields[0].max_length".to_owned(), "bad_range"),
                ("fields[2].key".to_owned(), "bad_slug"),
            ]
        );
    }

    #[test]
    fn definition_faults_come_after_parsing() {
        let text = form(json!([{"key": "n", "type": "note", "label": label(), "required": true}]));
        assert_eq!(
            codes(parse_definition(&text)),
            [("fields[0].required".to_owned(), "required_note")]
        );
    }
}
