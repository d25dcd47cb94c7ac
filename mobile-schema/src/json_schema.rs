//! JSON Schema (draft 2020-12) export of a form's `answers`, so the phone can check a
//! visit offline with any stock validator. The schema follows `validate_answers` as
//! closely as JSON Schema can; where it cannot, it is looser or stricter in the ways
//! listed on `FormDefinition::json_schema`, and the server's check stays authoritative.

use serde_json::{json, Map, Value};

use crate::definition::{Condition, Field, FieldType, FormDefinition, ShowIf};
use crate::pattern;

/// The dialect every exported schema declares.
pub const JSON_SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

impl FormDefinition {
    /// The JSON Schema (draft 2020-12) of this form's `answers` document.
    ///
    /// Where it differs from [`FormDefinition::validate_answers`], which is authoritative:
    /// - a `show_if` that refers to a field of an *enclosing* level is left out: such a
    ///   field is simply optional in the schema;
    /// - JSON Schema counts `1.0` as an integer; the server does not;
    /// - a `null` value is refused by the schema, while the server reads it as absent;
    /// - a UIC is only checked for length (at least 6 characters), not normalized;
    /// - a `pattern` is a Rust `regex`, which agrees with ECMA-262 on the common syntax.
    pub fn json_schema(&self) -> Value {
        let mut schema = object_schema(&self.fields);
        if let Value::Object(map) = &mut schema {
            map.insert("$schema".into(), json!(JSON_SCHEMA_DIALECT));
            map.insert(
                "$id".into(),
                json!(format!(
                    "https://donghanh.invalid/forms/{}/v{}/answers.schema.json",
                    self.form_id, self.version
                )),
            );
            map.insert("title".into(), json!(self.title.en));
            map.insert("description".into(), json!(self.title.vi));
        }
        schema
    }
}

/// The schema of one object of answers (the document, a group, a repeat item).
fn object_schema(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut conditionals = Vec::new();
    for field in fields {
        // A note has no property: with `additionalProperties: false` it must be absent.
        if field.field_type == FieldType::Note {
            continue;
        }
        properties.insert(field.key.clone(), field_schema(field));
        match &field.show_if {
            None if field.required => required.push(json!(field.key)),
            None => {}
            Some(show_if) => {
                if let Some(rule) = conditional(field, show_if, fields) {
                    conditionals.push(rule);
                }
            }
        }
    }
    let mut schema = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    if let Value::Object(map) = &mut schema {
        if !required.is_empty() {
            map.insert("required".into(), Value::Array(required));
        }
        if !conditionals.is_empty() {
            map.insert("allOf".into(), Value::Array(conditionals));
        }
    }
    schema
}

/// `if` the condition holds `then` the field is required (when it is), `else` absent.
/// `None` when the referenced field is not at this level (see `json_schema`).
fn conditional(field: &Field, show_if: &ShowIf, siblings: &[Field]) -> Option<Value> {
    let target = siblings
        .iter()
        .take_while(|f| f.key != field.key)
        .find(|f| f.key == show_if.field)?;
    let many = target.field_type == FieldType::SelectMultiple;
    let test = match &show_if.condition {
        Condition::Equals(value) if many => json!({"contains": {"const": value}}),
        Condition::Equals(value) => json!({"const": value}),
        Condition::In(values) if many => json!({"contains": {"enum": values}}),
        Condition::In(values) => json!({"enum": values}),
        Condition::GreaterThan(n) => json!({"type": "number", "exclusiveMinimum": number(*n)}),
    };
    let mut rule = json!({
        "if": {
            "required": [target.key],
            "properties": {target.key.clone(): test},
        },
        "else": {"not": {"required": [field.key]}},
    });
    if field.required {
        if let Value::Object(map) = &mut rule {
            map.insert("then".into(), json!({"required": [field.key]}));
        }
    }
    Some(rule)
}

fn field_schema(field: &Field) -> Value {
    let mut schema = match field.field_type {
        FieldType::Text => {
            let mut s = json!({"type": "string"});
            set(&mut s, "minLength", field.min_length.map(Value::from));
            set(&mut s, "maxLength", field.max_length.map(Value::from));
            set(
                &mut s,
                "pattern",
                field
                    .pattern
                    .as_deref()
                    .map(|p| json!(pattern::anchored(p))),
            );
            s
        }
        FieldType::Integer | FieldType::Decimal => {
            let kind = if field.field_type == FieldType::Integer {
                "integer"
            } else {
                "number"
            };
            let mut s = json!({"type": kind});
            set(&mut s, "minimum", field.min.map(number));
            set(&mut s, "maximum", field.max.map(number));
            s
        }
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::Datetime => json!({"type": "string", "format": "date-time"}),
        FieldType::SelectOne => json!({"type": "string", "enum": choice_values(field)}),
        FieldType::SelectMultiple => {
            let mut s = json!({
                "type": "array",
                "items": {"type": "string", "enum": choice_values(field)},
                "uniqueItems": true,
            });
            set(&mut s, "minItems", field.min.map(number));
            set(&mut s, "maxItems", field.max.map(number));
            s
        }
        FieldType::Uic => json!({"type": "string", "minLength": 6}),
        FieldType::Photo => json!({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
        FieldType::Geopoint => json!({
            "type": "object",
            "properties": {
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
            },
            "required": ["lat", "lon"],
            "additionalProperties": false,
        }),
        FieldType::Group => object_schema(field.children()),
        FieldType::Repeat => {
            let mut s = json!({"type": "array", "items": object_schema(field.children())});
            set(&mut s, "minItems", field.min_count.map(Value::from));
            set(&mut s, "maxItems", field.max_count.map(Value::from));
            s
        }
        // Notes never reach here (`object_schema` skips them); `false` refuses any value.
        FieldType::Note => Value::Bool(false),
    };
    set(&mut schema, "title", Some(json!(field.label.en)));
    set(
        &mut schema,
        "description",
        field.hint.as_ref().map(|h| json!(h.en)),
    );
    schema
}

fn choice_values(field: &Field) -> Vec<Value> {
    field
        .choices
        .iter()
        .flatten()
        .map(|c| json!(c.value))
        .collect()
}

/// A bound as JSON: whole numbers without a fraction (`500`, not `500.0`).
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

fn set(schema: &mut Value, key: &str, value: Option<Value>) {
    if let (Value::Object(map), Some(value)) = (schema, value) {
        map.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn definition(fields: Value) -> FormDefinition {
        serde_json::from_value(json!({
            "form_id": "test_form",
            "version": 2,
            "kind": "group_session",
            "title": {"vi": "Thử", "en": "Test"},
            "roles": ["volunteer"],
            "fields": fields,
        }))
        .unwrap()
    }

    #[test]
    fn header_and_plain_fields() {
        let label = json!({"vi": "Nhãn", "en": "Label"});
        let def = definition(json!([
            {"key": "n", "type": "integer", "label": label, "required": true, "min": 1, "max": 500},
            {"key": "code", "type": "text", "label": label, "pattern": "[A-Z]{4}", "max_length": 9},
            {"key": "info", "type": "note", "label": label},
        ]));
        let schema = def.json_schema();
        assert_eq!(schema["$schema"], JSON_SCHEMA_DIALECT);
        assert_eq!(
            schema["$id"],
            "https://donghanh.invalid/forms/test_form/v2/answers.schema.json"
        );
        assert_eq!(schema["title"], "Test");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["n"]));
        assert_eq!(
            schema["properties"]["n"],
            json!({"type": "integer", "minimum": 1, "maximum": 500, "title": "Label"})
        );
        assert_eq!(schema["properties"]["code"]["pattern"], "^(?:[A-Z]{4})$");
        assert!(schema["properties"].get("info").is_none());
        assert!(schema.get("allOf").is_none());
    }

    #[test]
    fn show_if_becomes_if_then_else_at_the_same_level_only() {
        let label = json!({"vi": "Nhãn", "en": "Label"});
        let choices = json!([{"value": "loan", "label": label}, {"value": "job", "label": label}]);
        let def = definition(json!([
            {"key": "support", "type": "select_multiple", "label": label, "choices": choices},
            {"key": "amount", "type": "integer", "label": label, "required": true,
             "show_if": {"field": "support", "equals": "loan"}},
            {"key": "items", "type": "repeat", "label": label, "fields": [
                {"key": "why", "type": "text", "label": label, "required": true,
                 "show_if": {"field": "amount", "greater_than": 5}},
            ]},
        ]));
        let schema = def.json_schema();
        assert!(schema.get("required").is_none());
        assert_eq!(
            schema["allOf"],
            json!([{
                "if": {"required": ["support"], "properties": {"support": {"contains": {"const": "loan"}}}},
                "then": {"required": ["amount"]},
                "else": {"not": {"required": ["amount"]}},
            }])
        );
        let item = &schema["properties"]["items"]["items"];
        assert!(item.get("allOf").is_none());
        assert!(item.get("required").is_none());
    }

    /// Snapshots each bundled form's schema in `snapshots/`, so a contract change is a
    /// visible diff. `UPDATE_SNAPSHOTS=1` rewrites them.
    #[test]
    fn bundled_schemas_match_their_snapshots() {
        let dir = crate::manifest_dir().join("snapshots");
        let update = std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
        let mut problems = Vec::new();
        for form in crate::bundled_forms() {
            let name = format!("{}.v{}.schema.json", form.form_id, form.version);
            let file = dir.join(&name);
            let actual = serde_json::to_string_pretty(&form.json_schema()).unwrap() + "\n";
            match std::fs::read_to_string(&file) {
                Ok(expected) if expected == actual => {}
                Ok(_) if update => std::fs::write(&file, &actual).unwrap(),
                Ok(_) => problems.push(format!(
                    "{name} differs from the exported schema; if the change is intended, \
                     re-run with UPDATE_SNAPSHOTS=1 and commit the file"
                )),
                Err(_) => {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&file, &actual).unwrap();
                    if !update {
                        problems.push(format!(
                            "{name} was missing and has been written; re-run the tests \
                             and commit it"
                        ));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
