//! The form definition document: its Rust types and their JSON shape. A definition is
//! what an admin publishes and what the phone renders; the types here only describe the
//! shape (serde refuses unknown keys), while `check.rs` decides whether a well-shaped
//! definition also makes sense.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One version of one form: what the phone renders and what the server validates against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FormDefinition {
    /// Stable slug naming the form across versions (`^[a-z][a-z0-9_]{1,63}$`).
    pub form_id: String,
    /// Version number, 1 or more; a published version never changes.
    pub version: u32,
    /// Which typed records the server extracts from submissions of this form.
    pub kind: FormKind,
    /// The form's name in Vietnamese and English.
    pub title: Localized,
    /// The roles allowed to submit it (`peer_educator`, `volunteer`, `supervisor`, `admin`).
    pub roles: Vec<String>,
    /// The top-level fields, in the order the phone shows them.
    pub fields: Vec<Field>,
}

/// What a form records, and so which records the server extracts from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormKind {
    /// A peer educator's outreach visit: contacts, commodities, referrals.
    OutreachVisit,
    /// Confirmation that a referred client arrived at a facility.
    ReferralHandoff,
    /// A behaviour-change communication session with a group.
    GroupSession,
    /// A volunteer's support visit to a person after drug rehabilitation.
    SupportVisit,
}

impl FormKind {
    /// Every kind, in declaration order.
    pub const ALL: [FormKind; 4] = [
        FormKind::OutreachVisit,
        FormKind::ReferralHandoff,
        FormKind::GroupSession,
        FormKind::SupportVisit,
    ];

    /// The snake_case wire name, the same string serde writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            FormKind::OutreachVisit => "outreach_visit",
            FormKind::ReferralHandoff => "referral_handoff",
            FormKind::GroupSession => "group_session",
            FormKind::SupportVisit => "support_visit",
        }
    }
}

impl std::fmt::Display for FormKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text in Vietnamese (`vi`) and English (`en`); both must be non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Localized {
    /// Vietnamese, with its diacritics.
    pub vi: String,
    /// English.
    pub en: String,
}

/// One question (or a group, a repeat, a note) of a form.
///
/// Which attributes a type takes: `min`/`max` on `integer` and `decimal` (value bounds)
/// and on `select_multiple` (how many choices); `min_length`/`max_length`/`pattern` on
/// `text`; `choices` on the two selects; `min_count`/`max_count` on `repeat`; `fields`
/// on `group` and `repeat`. Any type may have `show_if` and `hint`; a note is never
/// `required` and never has a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The answer key (`^[a-z][a-z0-9_]{0,63}$`), unique among its siblings.
    pub key: String,
    /// What kind of value the field takes.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The question as the phone shows it.
    pub label: Localized,
    /// Whether a visible field must have a value (a hidden field never must).
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Lowest value (numbers) or fewest selected choices (`select_multiple`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_number"
    )]
    pub min: Option<f64>,
    /// Highest value (numbers) or most selected choices (`select_multiple`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_number"
    )]
    pub max: Option<f64>,
    /// Fewest characters of a text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Most characters of a text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// A regular expression a text must match as a whole (it is anchored for you), in
    /// the syntax Rust's and Java's engines read alike (ODK Collect checks it too):
    /// literals, `.`, flat bracket classes, groups, `|`, repetitions, `^` and `$`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The options of a `select_one` or `select_multiple`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Choice>>,
    /// Fewest items of a repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
    /// Most items of a repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
    /// The children of a group or repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<Field>>,
    /// When the field is shown; a hidden field must have no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_if: Option<ShowIf>,
    /// Extra help shown under the question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<Localized>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Writes a whole number without a fraction (`500`, not `500.0`), so a definition that
/// went through this type reads as it was written.
fn number<S: Serializer>(n: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serializer.serialize_i64(*n as i64)
    } else {
        serializer.serialize_f64(*n)
    }
}

fn optional_number<S: Serializer>(n: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match n {
        Some(n) => number(n, serializer),
        None => serializer.serialize_none(),
    }
}

/// The kind of value a field takes, and so how its answer is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A string, counted in characters.
    Text,
    /// A JSON integer (1.0 is not one).
    Integer,
    /// Any JSON number.
    Decimal,
    /// `true` or `false`.
    Boolean,
    /// `YYYY-MM-DD`, a real day.
    Date,
    /// RFC 3339 with an offset.
    Datetime,
    /// One choice value, as a string.
    SelectOne,
    /// An array of distinct choice values.
    SelectMultiple,
    /// A client's unique identifier code, raw as typed; the server hashes it.
    Uic,
    /// The SHA-256 of a photo, 64 lowercase hex characters; the bytes are uploaded apart.
    Photo,
    /// `{"lat": .., "lon": ..}`.
    Geopoint,
    /// A nested object of child fields.
    Group,
    /// An array of objects of child fields.
    Repeat,
    /// Text shown to the worker; carries no value.
    Note,
}

impl FieldType {
    /// The snake_case wire name, the same string serde writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::SelectOne => "select_one",
            FieldType::SelectMultiple => "select_multiple",
            FieldType::Uic => "uic",
            FieldType::Photo => "photo",
            FieldType::Geopoint => "geopoint",
            FieldType::Group => "group",
            FieldType::Repeat => "repeat",
            FieldType::Note => "note",
        }
    }

    /// Whether the type holds child fields (`group`, `repeat`).
    pub const fn has_children(self) -> bool {
        matches!(self, FieldType::Group | FieldType::Repeat)
    }

    /// Whether the type is one of the two selects.
    pub const fn is_select(self) -> bool {
        matches!(self, FieldType::SelectOne | FieldType::SelectMultiple)
    }

    /// Whether the type is a number (`integer`, `decimal`).
    pub const fn is_numeric(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Decimal)
    }
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One option of a select: the value stored in the answers and its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// What the answers carry (`hiv_test`, `18_24`).
    pub value: String,
    /// What the phone shows.
    pub label: Localized,
}

/// `{"field": "x", "equals": ..}`, `{"field": "x", "in": [..]}` or
/// `{"field": "x", "greater_than": n}`: the field is shown only while this holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ShowIfWire")]
pub struct ShowIf {
    /// The key of an earlier field, at the same level or an enclosing one.
    pub field: String,
    /// What the referenced value must satisfy.
    #[serde(flatten)]
    pub condition: Condition,
}

/// The test a `show_if` applies to the referenced value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The value equals this (for `select_multiple`: this is among the selected).
    Equals(Value),
    /// The value is one of these (for `select_multiple`: any selected one is).
    In(Vec<Value>),
    /// The value is a number greater than this.
    #[serde(serialize_with = "number")]
    GreaterThan(f64),
}

/// The JSON shape of a `show_if`, so that "exactly one condition" and "no other keys"
/// are refused at parse time with a clear message (serde's `flatten` would take the
/// first condition it meets and ignore the rest).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowIfWire {
    field: String,
    #[serde(default, deserialize_with = "present")]
    equals: Option<Value>,
    #[serde(default, rename = "in")]
    in_: Option<Vec<Value>>,
    #[serde(default)]
    greater_than: Option<f64>,
}

/// Keeps an explicit `null` as `Some(Value::Null)`, apart from an absent key.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl TryFrom<ShowIfWire> for ShowIf {
    type Error = String;

    fn try_from(wire: ShowIfWire) -> Result<Self, Self::Error> {
        let condition = match (wire.equals, wire.in_, wire.greater_than) {
            (Some(value), None, None) => Condition::Equals(value),
            (None, Some(values), None) => Condition::In(values),
            (None, None, Some(n)) => Condition::GreaterThan(n),
            _ => {
                return Err(
                    "show_if needs exactly one of `equals`, `in`, `greater_than`".to_owned(),
                )
            }
        };
        Ok(ShowIf {
            field: wire.field,
            condition,
        })
    }
}

impl FormDefinition {
    /// The top-level field with this key, if any.
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }
}

impl Field {
    /// The child fields of a group or repeat (empty for other types).
    pub fn children(&self) -> &[Field] {
        self.fields.as_deref().unwrap_or(&[])
    }

    /// Whether `value` is one of this select's choice values.
    pub fn has_choice(&self, value: &str) -> bool {
        self.choices
            .as_deref()
            .is_some_and(|choices| choices.iter().any(|c| c.value == value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn show_if_round_trips_each_condition() {
        for raw in [
            json!({"field": "topic", "equals": "other"}),
            json!({"field": "referrals", "in": ["prep", "other"]}),
            json!({"field": "participants", "greater_than": 3}),
            json!({"field": "ratio", "greater_than": 0.5}),
        ] {
            let show_if: ShowIf = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(serde_json::to_value(&show_if).unwrap(), raw);
        }
    }

    #[test]
    fn show_if_refuses_two_conditions_none_or_extra_keys() {
        for raw in [
            json!({"field": "a", "equals": 1, "greater_than": 0}),
            json!({"field": "a"}),
            json!({"field": "a", "equals": 1, "colour": "red"}),
        ] {
            assert!(serde_json::from_value::<ShowIf>(raw).is_err());
        }
        let null: ShowIf = serde_json::from_value(json!({"field": "a", "equals": null})).unwrap();
        assert_eq!(null.condition, Condition::Equals(Value::Null));
    }

    #[test]
    fn kinds_and_types_use_their_wire_names() {
        for kind in FormKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        let t: FieldType = serde_json::from_value(json!("select_multiple")).unwrap();
        assert_eq!(t, FieldType::SelectMultiple);
        assert_eq!(
            serde_json::to_value(FieldType::Geopoint).unwrap(),
            json!("geopoint")
        );
    }
}
