//! Definition validation: whether a well-shaped `FormDefinition` also makes sense (slugs,
//! unique keys, attributes that fit their type, bounds that can be met, patterns that
//! compile, `show_if`s that point back at a usable field). An admin publishing a form
//! gets every fault at once, each at its path (`fields[3].fields[0].key`).
//!
//! Some rules exist because every form is also served to ODK Collect as an XForm
//! (`xform.rs`): keys starting with `dh_` are the XForm's own, `select_multiple` values
//! cannot hold spaces (XForms joins selections with them), patterns stay within what
//! Java's regex engine reads the same way, and a `show_if` does not test a date-time or
//! a geopoint (the phone's XPath cannot compare them the way the server does).

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::answers::scalar_faults;
use crate::definition::{Condition, Field, FieldType, FormDefinition, Localized, ShowIf};
use crate::fault::{Fault, FaultCode, FaultSink};
use crate::pattern;

/// Field keys starting with this are reserved for the XForm's own nodes.
pub(crate) const RESERVED_KEY_PREFIX: &str = "dh_";

/// The roles a form may name, as `shared-models` spells them.
pub const ROLES: [&str; 4] = ["peer_educator", "volunteer", "supervisor", "admin"];

fn form_id_syntax() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new("^[a-z][a-z0-9_]{1,63}$").ok())
        .as_ref()
}

fn key_syntax() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new("^[a-z][a-z0-9_]{0,63}$").ok())
        .as_ref()
}

/// Whether `form_id` is a valid form slug (`^[a-z][a-z0-9_]{1,63}$`).
pub fn is_form_id(form_id: &str) -> bool {
    form_id_syntax().is_some_and(|re| re.is_match(form_id))
}

/// Whether `key` is a valid field key (`^[a-z][a-z0-9_]{0,63}$`).
pub fn is_field_key(key: &str) -> bool {
    key_syntax().is_some_and(|re| re.is_match(key))
}

impl FormDefinition {
    /// Checks the definition and returns every fault at once, in document order.
    pub fn validate(&self) -> Result<(), Vec<Fault>> {
        let mut faults = Vec::new();
        if !is_form_id(&self.form_id) {
            faults.push(Fault::new(
                "form_id",
                FaultCode::BadSlug,
                "form_id must match ^[a-z][a-z0-9_]{1,63}$",
            ));
        }
        if self.version < 1 {
            faults.push(Fault::new(
                "version",
                FaultCode::BadVersion,
                "version must be 1 or more",
            ));
        }
        check_localized(&self.title, "title", &mut faults);
        check_roles(&self.roles, &mut faults);
        if self.fields.is_empty() {
            faults.push(Fault::new(
                "fields",
                FaultCode::Empty,
                "a form needs at least one field",
            ));
        }
        check_level(&self.fields, "fields", &mut Vec::new(), &mut faults);
        if faults.is_empty() {
            Ok(())
        } else {
            Err(faults)
        }
    }
}

fn check_localized(text: &Localized, path: &str, faults: &mut Vec<Fault>) {
    for (lang, value) in [("vi", &text.vi), ("en", &text.en)] {
        if value.trim().is_empty() {
            faults.push(Fault::new(
                format!("{path}.{lang}"),
                FaultCode::Empty,
                "text must not be empty",
            ));
        }
    }
}

fn check_roles(roles: &[String], faults: &mut Vec<Fault>) {
    if roles.is_empty() {
        faults.push(Fault::new(
            "roles",
            FaultCode::Empty,
            "at least one role must be allowed to submit",
        ));
    }
    let mut seen = HashSet::new();
    for (i, role) in roles.iter().enumerate() {
        if !ROLES.contains(&role.as_str()) {
            faults.push(Fault::new(
                format!("roles[{i}]"),
                FaultCode::BadRole,
                format!("unknown role; expected one of {}", ROLES.join(", ")),
            ));
        } else if !seen.insert(role.as_str()) {
            faults.push(Fault::new(
                format!("roles[{i}]"),
                FaultCode::BadRole,
                "role listed twice",
            ));
        }
    }
}

/// One level of fields on the way down: its siblings and where the descent left them.
struct Level<'a> {
    fields: &'a [Field],
    position: usize,
}

/// Checks the fields of one level; `enclosing` holds the levels above, outermost first.
fn check_level<'a>(
    fields: &'a [Field],
    path: &str,
    enclosing: &mut Vec<Level<'a>>,
    faults: &mut Vec<Fault>,
) {
    let mut keys = HashSet::new();
    for (i, field) in fields.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if !is_field_key(&field.key) {
            faults.push(Fault::new(
                format!("{at}.key"),
                FaultCode::BadSlug,
                "key must match ^[a-z][a-z0-9_]{0,63}$",
            ));
        }
        if field.key.starts_with(RESERVED_KEY_PREFIX) {
            faults.push(Fault::new(
                format!("{at}.key"),
                FaultCode::ReservedKey,
                format!("keys starting with `{RESERVED_KEY_PREFIX}` are reserved for the ODK form's own fields"),
            ));
        }
        if !keys.insert(field.key.as_str()) {
            faults.push(Fault::new(
                format!("{at}.key"),
                FaultCode::DuplicateKey,
                format!(
                    "another field at this level already has key `{}`",
                    field.key
                ),
            ));
        }
        check_field(field, &at, faults);
        enclosing.push(Level {
            fields,
            position: i,
        });
        if let Some(show_if) = &field.show_if {
            check_show_if(show_if, &format!("{at}.show_if"), enclosing, faults);
        }
        if field.field_type.has_children() {
            if let Some(children) = field.fields.as_deref().filter(|c| !c.is_empty()) {
                check_level(children, &format!("{at}.fields"), enclosing, faults);
            }
        }
        enclosing.pop();
    }
}

/// Everything about one field except its key's uniqueness, its `show_if` and its children.
fn check_field(field: &Field, at: &str, faults: &mut Vec<Fault>) {
    let t = field.field_type;
    check_localized(&field.label, &format!("{at}.label"), faults);
    if let Some(hint) = &field.hint {
        check_localized(hint, &format!("{at}.hint"), faults);
    }
    if t == FieldType::Note && field.required {
        faults.push(Fault::new(
            format!("{at}.required"),
            FaultCode::RequiredNote,
            "a note carries no value and cannot be required",
        ));
    }

    let takes_bounds = t.is_numeric() || t == FieldType::SelectMultiple;
    let attributes = [
        ("min", field.min.is_some(), takes_bounds),
        ("max", field.max.is_some(), takes_bounds),
        (
            "min_length",
            field.min_length.is_some(),
            t == FieldType::Text,
        ),
        (
            "max_length",
            field.max_length.is_some(),
            t == FieldType::Text,
        ),
        ("pattern", field.pattern.is_some(), t == FieldType::Text),
        ("choices", field.choices.is_some(), t.is_select()),
        (
            "min_count",
            field.min_count.is_some(),
            t == FieldType::Repeat,
        ),
        (
            "max_count",
            field.max_count.is_some(),
            t == FieldType::Repeat,
        ),
        ("fields", field.fields.is_some(), t.has_children()),
    ];
    for (name, present, allowed) in attributes {
        if present && !allowed {
            faults.push(Fault::new(
                format!("{at}.{name}"),
                FaultCode::UnexpectedAttribute,
                format!("a {t} field takes no `{name}`"),
            ));
        }
    }

    match t {
        FieldType::Integer | FieldType::Decimal => {
            if let (Some(min), Some(max)) = (field.min, field.max) {
                if min > max {
                    faults.push(Fault::new(
                        format!("{at}.min"),
                        FaultCode::BadRange,
                        "min is greater than max",
                    ));
                }
            }
        }
        FieldType::SelectOne | FieldType::SelectMultiple => {
            check_choices(field, at, faults);
            if t == FieldType::SelectMultiple {
                check_choice_counts(field, at, faults);
            }
        }
        FieldType::Text => check_text(field, at, faults),
        FieldType::Repeat | FieldType::Group => {
            if t == FieldType::Repeat {
                check_counts(field, at, faults);
            }
            if field.fields.as_ref().is_none_or(|c| c.is_empty()) {
                faults.push(Fault::new(
                    format!("{at}.fields"),
                    FaultCode::MissingChildren,
                    format!("a {t} needs at least one child field"),
                ));
            }
        }
        _ => {}
    }
}

fn check_choices(field: &Field, at: &str, faults: &mut Vec<Fault>) {
    let Some(choices) = field.choices.as_deref().filter(|c| !c.is_empty()) else {
        faults.push(Fault::new(
            format!("{at}.choices"),
            FaultCode::MissingChoices,
            "a select needs at least one choice",
        ));
        return;
    };
    let mut seen = HashSet::new();
    for (j, choice) in choices.iter().enumerate() {
        let path = format!("{at}.choices[{j}]");
        if choice.value.trim().is_empty() {
            faults.push(Fault::new(
                format!("{path}.value"),
                FaultCode::Empty,
                "a choice value must not be empty",
            ));
        } else if !seen.insert(choice.value.as_str()) {
            faults.push(Fault::new(
                format!("{path}.value"),
                FaultCode::DuplicateChoice,
                format!("choice `{}` appears twice", choice.value),
            ));
        }
        if field.field_type == FieldType::SelectMultiple
            && choice.value.contains(char::is_whitespace)
        {
            faults.push(Fault::new(
                format!("{path}.value"),
                FaultCode::SpaceInChoice,
                "a select_multiple choice value cannot contain spaces: ODK Collect sends the \
                 selected values joined by spaces; use `_` instead",
            ));
        }
        check_localized(&choice.label, &format!("{path}.label"), faults);
    }
}

/// `min`/`max` of a `select_multiple` count choices: whole, not negative, reachable.
fn check_choice_counts(field: &Field, at: &str, faults: &mut Vec<Fault>) {
    let available = field.choices.as_ref().map_or(0, Vec::len) as f64;
    for (name, bound) in [("min", field.min), ("max", field.max)] {
        let Some(bound) = bound else { continue };
        let problem = if bound < 0.0 || bound.fract() != 0.0 {
            Some("a count of choices must be a whole number, 0 or more")
        } else if name == "max" && bound < 1.0 {
            Some("max 0 would allow no choice at all")
        } else if name == "min" && available > 0.0 && bound > available {
            Some("min is more than the number of choices")
        } else {
            None
        };
        if let Some(message) = problem {
            faults.push(Fault::new(
                format!("{at}.{name}"),
                FaultCode::BadRange,
                message,
            ));
        }
    }
    if let (Some(min), Some(max)) = (field.min, field.max) {
        if min > max {
            faults.push(Fault::new(
                format!("{at}.min"),
                FaultCode::BadRange,
                "min is greater than max",
            ));
        }
    }
}

fn check_text(field: &Field, at: &str, faults: &mut Vec<Fault>) {
    if let (Some(min), Some(max)) = (field.min_length, field.max_length) {
        if min > max {
            faults.push(Fault::new(
                format!("{at}.min_length"),
                FaultCode::BadRange,
                "min_length is greater than max_length",
            ));
        }
    }
    if field.max_length == Some(0) {
        faults.push(Fault::new(
            format!("{at}.max_length"),
            FaultCode::BadRange,
            "max_length 0 would allow only the empty text",
        ));
    }
    if let Some(p) = &field.pattern {
        if let Err(err) = pattern::compile(p) {
            faults.push(Fault::new(
                format!("{at}.pattern"),
                FaultCode::BadPattern,
                format!("pattern does not compile: {}", first_line(&err.to_string())),
            ));
        } else if let Err(advice) = pattern::to_java(p) {
            faults.push(Fault::new(
                format!("{at}.pattern"),
                FaultCode::NonPortablePattern,
                format!("ODK Collect would read this pattern differently: {advice}"),
            ));
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .rfind(|l| l.starts_with("error:"))
        .unwrap_or_else(|| text.lines().next().unwrap_or(text))
}

fn check_counts(field: &Field, at: &str, faults: &mut Vec<Fault>) {
    if let (Some(min), Some(max)) = (field.min_count, field.max_count) {
        if min > max {
            faults.push(Fault::new(
                format!("{at}.min_count"),
                FaultCode::BadRange,
                "min_count is greater than max_count",
            ));
        }
    }
    if field.max_count == Some(0) {
        faults.push(Fault::new(
            format!("{at}.max_count"),
            FaultCode::BadRange,
            "max_count 0 would allow no item at all",
        ));
    }
}

/// Where a `show_if` key leads, following the phone's lookup: the nearest level that has
/// a field with that key, however far along that level the field is.
enum Target<'a> {
    Found(&'a Field),
    Itself,
    Later,
    Missing,
}

fn resolve<'a>(key: &str, levels: &[Level<'a>]) -> Target<'a> {
    let innermost = levels.len().saturating_sub(1);
    for (depth, level) in levels.iter().enumerate().rev() {
        let Some(j) = level.fields.iter().position(|f| f.key == key) else {
            continue;
        };
        return if depth == innermost && j == level.position {
            Target::Itself
        } else if j > level.position {
            Target::Later
        } else {
            // Before this field, or (j == position, an enclosing level) its own group or
            // repeat, which the type check then refuses with a clearer message.
            level.fields.get(j).map_or(Target::Missing, Target::Found)
        };
    }
    Target::Missing
}

fn check_show_if(show_if: &ShowIf, at: &str, levels: &[Level<'_>], faults: &mut Vec<Fault>) {
    let bad = |path: String, message: String| Fault::new(path, FaultCode::BadShowIf, message);
    let key = &show_if.field;
    let target = match resolve(key, levels) {
        Target::Found(target) => target,
        Target::Itself => {
            faults.push(bad(
                format!("{at}.field"),
                "show_if refers to its own field".into(),
            ));
            return;
        }
        Target::Later => {
            faults.push(bad(
                format!("{at}.field"),
                format!("show_if refers to `{key}`, which does not come before this field"),
            ));
            return;
        }
        Target::Missing => {
            faults.push(bad(
                format!("{at}.field"),
                format!("no field `{key}` at this level or an enclosing one"),
            ));
            return;
        }
    };
    let t = target.field_type;
    if matches!(
        t,
        FieldType::Group
            | FieldType::Repeat
            | FieldType::Note
            | FieldType::Photo
            | FieldType::Datetime
            | FieldType::Geopoint
    ) {
        faults.push(bad(
            format!("{at}.field"),
            format!("show_if cannot test a {t} field"),
        ));
        return;
    }
    match &show_if.condition {
        Condition::Equals(value) => {
            if let Some(message) = unfit_value(target, value) {
                faults.push(bad(format!("{at}.equals"), message));
            }
        }
        Condition::In(values) => {
            if values.is_empty() {
                faults.push(bad(
                    format!("{at}.in"),
                    "an empty `in` list is never true".into(),
                ));
            }
            for (k, value) in values.iter().enumerate() {
                if let Some(message) = unfit_value(target, value) {
                    faults.push(bad(format!("{at}.in[{k}]"), message));
                }
            }
        }
        Condition::GreaterThan(_) => {
            if !t.is_numeric() {
                faults.push(bad(
                    format!("{at}.greater_than"),
                    format!("greater_than needs an integer or decimal field, `{key}` is {t}"),
                ));
            }
        }
    }
}

/// Why `value` can never be the referenced field's value (or one of its selections).
fn unfit_value(target: &Field, value: &Value) -> Option<String> {
    if target.field_type.is_select() {
        return match value.as_str() {
            Some(v) if target.has_choice(v) => None,
            _ => Some(format!("{value} is not a choice of `{}`", target.key)),
        };
    }
    let mut faults = FaultSink::new(1);
    scalar_faults(target, value, "", &mut faults);
    faults.first().map(|f| {
        format!(
            "{value} can never be a value of `{}`: {}",
            target.key, f.message
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(fields: Value) -> FormDefinition {
        serde_json::from_value(json!({
            "form_id": "test_form",
            "version": 1,
            "kind": "outreach_visit",
            "title": {"vi": "Thử", "en": "Test"},
            "roles": ["peer_educator"],
            "fields": fields,
        }))
        .unwrap()
    }

    fn faults_of(def: &FormDefinition) -> Vec<(String, &'static str)> {
        def.validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.path, f.code.as_str()))
            .collect()
    }

    fn label() -> Value {
        json!({"vi": "Nhãn", "en": "Label"})
    }

    fn has(faults: &[(String, &str)], path: &str, code: &str) -> bool {
        faults.iter().any(|(p, c)| p == path && *c == code)
    }

    #[test]
    fn a_sound_definition_passes() {
        let def = definition(json!([
            {"key": "n", "type": "integer", "label": label(), "min": 0, "max": 5},
            {"key": "g", "type": "group", "label": label(), "fields": [
                {"key": "t", "type": "text", "label": label(), "show_if": {"field": "n", "greater_than": 2}},
            ]},
        ]));
        assert_eq!(def.validate(), Ok(()));
    }

    #[test]
    fn form_level_faults() {
        let mut def = definition(json!([{"key": "a", "type": "boolean", "label": label()}]));
        def.form_id = "Bad-Id".into();
        def.version = 0;
        def.title.vi = " ".into();
        def.roles = vec!["volunteer".into(), "client".into(), "volunteer".into()];
        let faults = faults_of(&def);
        assert!(has(&faults, "form_id", "bad_slug"));
        assert!(has(&faults, "version", "bad_version"));
        assert!(has(&faults, "title.vi", "empty"));
        assert!(has(&faults, "roles[1]", "bad_role"));
        assert!(has(&faults, "roles[2]", "bad_role"));
        assert_eq!(faults.len(), 5, "{faults:?}");

        def.roles.clear();
        def.fields.clear();
        let faults = faults_of(&def);
        assert!(has(&faults, "roles", "empty"));
        assert!(has(&faults, "fields", "empty"));
    }

    #[test]
    fn field_level_faults_each_at_its_path() {
        let def = definition(json!([
            {"key": "Visit", "type": "date", "label": {"vi": "", "en": "Date"}},
            {"key": "a", "type": "integer", "label": label(), "choices": [], "min": 5, "max": 1, "min_length": 1},
            {"key": "a", "type": "text", "label": label(), "min_length": 5, "max_length": 2,
             "pattern": "(unclosed", "fields": [], "min": 1},
            {"key": "s", "type": "select_one", "label": label()},
            {"key": "m", "type": "select_multiple", "label": label(), "min": 3, "max": 0, "choices": [
                {"value": "x", "label": label()},
                {"value": "x", "label": {"vi": "X", "en": ""}},
                {"value": "", "label": label()},
            ]},
            {"key": "r", "type": "repeat", "label": label(), "min_count": 3, "max_count": 2},
            {"key": "r2", "type": "repeat", "label": label(), "max_count": 0, "fields": [
                {"key": "ok", "type": "boolean", "label": label(), "min_count": 1},
            ]},
            {"key": "g", "type": "group", "label": label(), "fields": []},
            {"key": "n", "type": "note", "label": label(), "required": true,
             "hint": {"vi": "Gợi ý", "en": " "}},
        ]));
        let faults = faults_of(&def);
        let expected = [
            ("fields[0].key", "bad_slug"),
            ("fields[0].label.vi", "empty"),
            ("fields[1].choices", "unexpected_attribute"),
            ("fields[1].min_length", "unexpected_attribute"),
            ("fields[1].min", "bad_range"),
            ("fields[2].key", "duplicate_key"),
            ("fields[2].fields", "unexpected_attribute"),
            ("fields[2].min", "unexpected_attribute"),
            ("fields[2].min_length", "bad_range"),
            ("fields[2].pattern", "bad_pattern"),
            ("fields[3].choices", "missing_choices"),
            ("fields[4].choices[1].value", "duplicate_choice"),
            ("fields[4].choices[1].label.en", "empty"),
            ("fields[4].choices[2].value", "empty"),
            ("fields[4].min", "bad_range"),
            ("fields[4].max", "bad_range"),
            ("fields[5].min_count", "bad_range"),
            ("fields[5].fields", "missing_children"),
            ("fields[6].max_count", "bad_range"),
            ("fields[6].fields[0].min_count", "unexpected_attribute"),
            ("fields[7].fields", "missing_children"),
            ("fields[8].required", "required_note"),
            ("fields[8].hint.en", "empty"),
        ];
        for (path, code) in expected {
            assert!(
                has(&faults, path, code),
                "missing {code} at {path}: {faults:?}"
            );
        }
        assert_eq!(faults.len(), expected.len(), "{faults:?}");
    }

    #[test]
    fn show_if_faults() {
        let choices =
            json!([{"value": "yes", "label": label()}, {"value": "no", "label": label()}]);
        let def = definition(json!([
            {"key": "pick", "type": "select_one", "label": label(), "choices": choices},
            {"key": "count", "type": "integer", "label": label(), "min": 0, "max": 10},
            {"key": "when", "type": "date", "label": label()},
            {"key": "pic", "type": "photo", "label": label()},
            {"key": "a", "type": "text", "label": label(), "show_if": {"field": "later", "equals": 1}},
            {"key": "b", "type": "text", "label": label(), "show_if": {"field": "b", "equals": "x"}},
            {"key": "c", "type": "text", "label": label(), "show_if": {"field": "nowhere", "equals": "x"}},
            {"key": "d", "type": "text", "label": label(), "show_if": {"field": "pic", "equals": "x"}},
            {"key": "e", "type": "text", "label": label(), "show_if": {"field": "pick", "equals": "maybe"}},
            {"key": "f", "type": "text", "label": label(), "show_if": {"field": "pick", "in": ["yes", "perhaps"]}},
            {"key": "g", "type": "text", "label": label(), "show_if": {"field": "when", "greater_than": 3}},
            {"key": "h", "type": "text", "label": label(), "show_if": {"field": "count", "equals": "three"}},
            {"key": "i", "type": "text", "label": label(), "show_if": {"field": "count", "equals": 11}},
            {"key": "j", "type": "text", "label": label(), "show_if": {"field": "pick", "in": []}},
            {"key": "grp", "type": "group", "label": label(), "fields": [
                {"key": "k", "type": "text", "label": label(), "show_if": {"field": "grp", "equals": "x"}},
                {"key": "l", "type": "text", "label": label(), "show_if": {"field": "later", "equals": 2}},
                {"key": "m", "type": "text", "label": label(), "show_if": {"field": "count", "greater_than": 3}},
            ]},
            {"key": "later", "type": "integer", "label": label()},
        ]));
        let faults = faults_of(&def);
        let expected = [
            "fields[4].show_if.field",
            "fields[5].show_if.field",
            "fields[6].show_if.field",
            "fields[7].show_if.field",
            "fields[8].show_if.equals",
            "fields[9].show_if.in[1]",
            "fields[10].show_if.greater_than",
            "fields[11].show_if.equals",
            "fields[12].show_if.equals",
            "fields[13].show_if.in",
            "fields[14].fields[0].show_if.field",
            "fields[14].fields[1].show_if.field",
        ];
        for path in expected {
            assert!(
                has(&faults, path, "bad_show_if"),
                "missing at {path}: {faults:?}"
            );
        }
        assert_eq!(faults.len(), expected.len(), "{faults:?}");
    }

    #[test]
    fn odk_faults_reserved_keys_spaced_choices_unportable_patterns() {
        let choices =
            json!([{"value": "two words", "label": label()}, {"value": "ok", "label": label()}]);
        let def = definition(json!([
            {"key": "dh_place", "type": "text", "label": label()},
            {"key": "g", "type": "group", "label": label(), "fields": [
                {"key": "dh_x", "type": "text", "label": label()},
            ]},
            {"key": "many", "type": "select_multiple", "label": label(), "choices": choices},
            {"key": "one", "type": "select_one", "label": label(), "choices": choices},
            {"key": "digits", "type": "text", "label": label(), "pattern": "\\d{4}"},
            {"key": "fine", "type": "text", "label": label(), "pattern": "[0-9]{4}"},
            {"key": "when", "type": "datetime", "label": label()},
            {"key": "where", "type": "geopoint", "label": label()},
            {"key": "a", "type": "text", "label": label(), "show_if": {"field": "when", "equals": "2025-01-01T00:00:00Z"}},
            {"key": "b", "type": "text", "label": label(), "show_if": {"field": "where", "equals": {"lat": 1, "lon": 2}}},
        ]));
        let faults = faults_of(&def);
        let expected = [
            ("fields[0].key", "reserved_key"),
            ("fields[1].fields[0].key", "reserved_key"),
            ("fields[2].choices[0].value", "space_in_choice"),
            ("fields[4].pattern", "non_portable_pattern"),
            ("fields[8].show_if.field", "bad_show_if"),
            ("fields[9].show_if.field", "bad_show_if"),
        ];
        for (path, code) in expected {
            assert!(
                has(&faults, path, code),
                "missing {code} at {path}: {faults:?}"
            );
        }
        assert_eq!(faults.len(), expected.len(), "{faults:?}");
        let message = &def.validate().unwrap_err()[3].message;
        assert!(message.contains("[0-9]"), "{message}");
    }
}
