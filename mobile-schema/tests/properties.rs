//! Property tests over the bundled forms: answers generated from a definition (honouring
//! `show_if`, bounds, choices and patterns) validate, and each single mutation of valid
//! answers yields its fault at exactly the mutated path.
#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;

use chrono::{Days, NaiveDate};
use mobile_schema::{
    bundled_forms, json_pointer, normalize_uic, Condition, Field, FieldType, FormDefinition,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;
use serde_json::{Map, Value};

static FORMS: LazyLock<Vec<FormDefinition>> = LazyLock::new(bundled_forms);

/// Repeats get at most this many generated items, to keep each case quick.
const MAX_GENERATED_ITEMS: u32 = 12;

/// The referral code alphabet: capital letters and digits without I, O, 0 and 1.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Valid answers for one of the bundled forms, with the form's index.
fn any_valid_answers() -> BoxedStrategy<(usize, Value)> {
    Union::new(
        FORMS
            .iter()
            .enumerate()
            .map(|(i, form)| object(&form.fields).prop_map(move |a| (i, a)).boxed()),
    )
    .boxed()
}

/// An object of answers for `fields`: every required field gets a value, optional ones
/// maybe; then, in field order, hidden fields are dropped as the phone would.
fn object(fields: &[Field]) -> BoxedStrategy<Value> {
    let candidates: Vec<BoxedStrategy<Option<Value>>> = fields
        .iter()
        .map(|field| {
            let value = value(field);
            if field.required {
                value.prop_map(Some).boxed()
            } else {
                proptest::option::of(value).boxed()
            }
        })
        .collect();
    let fields = fields.to_vec();
    candidates
        .prop_map(move |values| {
            let mut map = Map::new();
            for (field, value) in fields.iter().zip(values) {
                let shown = field
                    .show_if
                    .as_ref()
                    .is_none_or(|s| holds(&s.condition, map.get(&s.field)));
                if let (true, Some(value)) = (shown, value) {
                    map.insert(field.key.clone(), value);
                }
            }
            Value::Object(map)
        })
        .boxed()
}

/// The `show_if` semantics, for same-level references (all the bundled forms use).
fn holds(condition: &Condition, value: Option<&Value>) -> bool {
    let Some(value) = value else { return false };
    let selected: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    match condition {
        Condition::Equals(expected) => selected.contains(&expected),
        Condition::In(options) => selected.iter().any(|s| options.contains(*s)),
        Condition::GreaterThan(n) => value.as_f64().is_some_and(|v| v > *n),
    }
}

fn value(field: &Field) -> BoxedStrategy<Value> {
    match field.field_type {
        FieldType::Text => text(field),
        FieldType::Integer => {
            let min = field.min.map_or(-1000, |m| m.ceil() as i64);
            let max = field.max.map_or(1000, |m| m.floor() as i64);
            (min..=max).prop_map(Value::from).boxed()
        }
        FieldType::Decimal => {
            let min = field.min.unwrap_or(-1000.0);
            let max = field.max.unwrap_or(1000.0);
            (min..=max).prop_map(Value::from).boxed()
        }
        FieldType::Boolean => any::<bool>().prop_map(Value::from).boxed(),
        FieldType::Date => date().prop_map(Value::from).boxed(),
        FieldType::Datetime => (date(), 0..24u32, 0..60u32)
            .prop_map(|(d, h, m)| Value::from(format!("{d}T{h:02}:{m:02}:00+07:00")))
            .boxed(),
        FieldType::SelectOne => {
            let values = choice_values(field);
            proptest::sample::select(values)
                .prop_map(Value::from)
                .boxed()
        }
        FieldType::SelectMultiple => {
            let values = choice_values(field);
            let min = field.min.map_or(0, |m| m as usize);
            let max = field
                .max
                .map_or(values.len(), |m| m as usize)
                .min(values.len());
            proptest::sample::subsequence(values, min..=max)
                .prop_map(Value::from)
                .boxed()
        }
        FieldType::Uic => "[A-Z0-9]{6,20}".prop_map(Value::from).boxed(),
        FieldType::Photo => "[0-9a-f]{64}".prop_map(Value::from).boxed(),
        FieldType::Geopoint => (-90.0..=90.0f64, -180.0..=180.0f64)
            .prop_map(|(lat, lon)| serde_json::json!({"lat": lat, "lon": lon}))
            .boxed(),
        FieldType::Group => object(field.children()),
        FieldType::Repeat => {
            let min = field.min_count.unwrap_or(0);
            let max = field
                .max_count
                .unwrap_or(MAX_GENERATED_ITEMS)
                .min(MAX_GENERATED_ITEMS)
                .max(min);
            proptest::collection::vec(object(field.children()), min as usize..=max as usize)
                .prop_map(Value::from)
                .boxed()
        }
        FieldType::Note => Just(Value::Null).boxed(),
    }
}

fn text(field: &Field) -> BoxedStrategy<Value> {
    match field.pattern.as_deref() {
        None => {
            let min = field.min_length.unwrap_or(0) as usize;
            let max = field.max_length.map_or(min + 40, |m| m as usize);
            proptest::collection::vec(
                proptest::sample::select(
                    "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạềểễếệ ,.-"
                        .chars()
                        .collect::<Vec<_>>(),
                ),
                min..=max,
            )
            .prop_map(|chars| Value::from(chars.into_iter().collect::<String>()))
            .boxed()
        }
        Some("[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}") => {
            let letter = proptest::sample::select(CODE_ALPHABET.to_vec());
            proptest::collection::vec(letter, 8)
                .prop_map(|code| {
                    let code = String::from_utf8(code).unwrap();
                    Value::from(format!("{}-{}", &code[..4], &code[4..]))
                })
                .boxed()
        }
        Some(other) => panic!("no generator for pattern {other}; add one"),
    }
}

fn date() -> impl Strategy<Value = String> {
    let start = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    (0u64..15_000).prop_map(move |days| (start + Days::new(days)).format("%Y-%m-%d").to_string())
}

fn choice_values(field: &Field) -> Vec<String> {
    field
        .choices
        .iter()
        .flatten()
        .map(|c| c.value.clone())
        .collect()
}

/// A place in a set of answers a mutation can act on.
enum Site {
    /// A present value of `field` at `path`.
    Value { path: String, field: &'static Field },
    /// An object of answers (the document, a group, a repeat item).
    Object { path: String },
}

fn sites(fields: &'static [Field], object: &Value, prefix: &str, out: &mut Vec<Site>) {
    out.push(Site::Object {
        path: prefix.to_owned(),
    });
    let Some(map) = object.as_object() else {
        return;
    };
    for field in fields {
        let Some(value) = map.get(&field.key) else {
            continue;
        };
        let path = if prefix.is_empty() {
            field.key.clone()
        } else {
            format!("{prefix}.{}", field.key)
        };
        match (field.field_type, value) {
            (FieldType::Group, _) => sites(field.children(), value, &path, out),
            (FieldType::Repeat, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    sites(field.children(), item, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
        out.push(Site::Value { path, field });
    }
}

fn all_sites(form: usize, answers: &Value) -> Vec<Site> {
    let mut out = Vec::new();
    sites(&FORMS[form].fields, answers, "", &mut out);
    out
}

fn faults_at(form: usize, answers: &Value, path: &str) -> Vec<&'static str> {
    FORMS[form]
        .validate_answers(answers)
        .err()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f.path == path)
        .map(|f| f.code.as_str())
        .collect()
}

fn pointer_mut<'a>(answers: &'a mut Value, path: &str) -> &'a mut Value {
    answers.pointer_mut(&json_pointer(path)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn generated_answers_validate((form, answers) in any_valid_answers()) {
        prop_assert_eq!(FORMS[form].validate_answers(&answers), Ok(()));
    }

    #[test]
    fn uic_paths_and_photo_digests_find_what_was_generated((form, answers) in any_valid_answers()) {
        let def = &FORMS[form];
        let mut uics = 0;
        let mut photos = Vec::new();
        for site in all_sites(form, &answers) {
            if let Site::Value { path, field } = site {
                let value = answers.pointer(&json_pointer(&path)).unwrap();
                match field.field_type {
                    FieldType::Uic => uics += 1,
                    FieldType::Photo => {
                        let digest = value.as_str().unwrap().to_owned();
                        if !photos.contains(&digest) {
                            photos.push(digest);
                        }
                    }
                    _ => {}
                }
            }
        }
        let paths = def.uic_paths(&answers);
        prop_assert_eq!(paths.len(), uics);
        for path in paths {
            let raw = answers.pointer(&json_pointer(&path)).unwrap().as_str().unwrap();
            prop_assert!(normalize_uic(raw).is_some());
        }
        let mut digests = def.photo_digests(&answers);
        digests.sort();
        photos.sort();
        prop_assert_eq!(digests, photos);
    }

    #[test]
    fn removing_a_required_value_is_required_at_its_path(
        (form, answers) in any_valid_answers(),
        pick in any::<Index>(),
    ) {
        let targets: Vec<String> = all_sites(form, &answers)
            .into_iter()
            .filter_map(|site| match site {
                Site::Value { path, field } if field.required => Some(path),
                _ => None,
            })
            .collect();
        prop_assume!(!targets.is_empty());
        let path = pick.get(&targets);
        let mut mutated = answers.clone();
        let (parent, key) = match path.rsplit_once('.') {
            Some((parent, key)) => (parent, key),
            None => ("", path.as_str()),
        };
        pointer_mut(&mut mutated, parent)
            .as_object_mut()
            .unwrap()
            .remove(key);
        prop_assert!(faults_at(form, &mutated, path).contains(&"required"), "{path}");
    }

    #[test]
    fn an_integer_out_of_range_is_out_of_range_at_its_path(
        (form, answers) in any_valid_answers(),
        pick in any::<Index>(),
        above in any::<bool>(),
    ) {
        let targets: Vec<(String, &Field)> = all_sites(form, &answers)
            .into_iter()
            .filter_map(|site| match site {
                Site::Value { path, field }
                    if field.field_type == FieldType::Integer
                        && (field.min.is_some() || field.max.is_some()) =>
                {
                    Some((path, field))
                }
                _ => None,
            })
            .collect();
        prop_assume!(!targets.is_empty());
        let (path, field) = pick.get(&targets);
        let outside = match (field.min, field.max, above) {
            (_, Some(max), true) | (None, Some(max), false) => max as i64 + 1,
            (Some(min), _, _) => min as i64 - 1,
            (None, None, _) => unreachable!(),
        };
        let mut mutated = answers.clone();
        *pointer_mut(&mut mutated, path) = Value::from(outside);
        prop_assert!(faults_at(form, &mutated, path).contains(&"out_of_range"), "{path} = {outside}");
    }

    #[test]
    fn a_select_value_off_the_list_is_not_a_choice_at_its_path(
        (form, answers) in any_valid_answers(),
        pick in any::<Index>(),
        item in any::<Index>(),
    ) {
        let targets: Vec<String> = all_sites(form, &answers)
            .into_iter()
            .filter_map(|site| match site {
                Site::Value { path, field } if field.field_type == FieldType::SelectOne => {
                    Some(path)
                }
                Site::Value { path, field } if field.field_type == FieldType::SelectMultiple => {
                    let count = answers.pointer(&json_pointer(&path))?.as_array()?.len();
                    (count > 0).then(|| format!("{path}[{}]", item.index(count)))
                }
                _ => None,
            })
            .collect();
        prop_assume!(!targets.is_empty());
        let path = pick.get(&targets);
        let mut mutated = answers.clone();
        *pointer_mut(&mut mutated, path) = Value::from("not_on_the_list");
        prop_assert!(faults_at(form, &mutated, path).contains(&"not_a_choice"), "{path}");
    }

    #[test]
    fn an_extra_key_is_an_unknown_field_at_its_path(
        (form, answers) in any_valid_answers(),
        pick in any::<Index>(),
        extra in "zz_[a-z]{1,8}",
    ) {
        let objects: Vec<String> = all_sites(form, &answers)
            .into_iter()
            .filter_map(|site| match site {
                Site::Object { path } => Some(path),
                Site::Value { .. } => None,
            })
            .collect();
        let parent = pick.get(&objects);
        let mut mutated = answers.clone();
        pointer_mut(&mut mutated, parent)
            .as_object_mut()
            .unwrap()
            .insert(extra.clone(), Value::from(1));
        let path = if parent.is_empty() { extra } else { format!("{parent}.{extra}") };
        prop_assert_eq!(faults_at(form, &mutated, &path), vec!["unknown_field"]);
    }
}
