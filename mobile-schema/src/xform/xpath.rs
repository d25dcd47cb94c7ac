//! The XPath of the XForm: `relevant` from `show_if`, `constraint` from bounds, lengths,
//! patterns and the UIC rule, each written so JavaRosa decides exactly what
//! `validate_answers` decides.
//!
//! Where the obvious XPath would disagree with the server, the XForm says it otherwise:
//! - lengths are `regex(., '(?s).{a,b}')`, because `string-length()` counts UTF-16 units
//!   in JavaRosa and the server counts characters (an emoji is 2 there, 1 here);
//! - a `show_if` also requires its target to be relevant, because JavaRosa keeps the
//!   value of a question that became hidden and would still compare it, while the
//!   server reads a hidden value as absent;
//! - paths are absolute (`/data/contacts/uic`): inside a repeat JavaRosa contextualises
//!   them to the current entry, so they name the field of the nearest enclosing object,
//!   as `show_if` does.

use serde_json::Value;

use crate::definition::{Condition, Field, FieldType, ShowIf};
use crate::pattern;
use crate::uic;

/// An XPath 1.0 string literal for `text` (XPath has no escapes: pick the quote, or
/// `concat` the pieces when the text holds both).
pub(super) fn literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let pieces: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", pieces.join(", \"'\", "))
    }
}

/// An XPath number: Rust writes `f64` without an exponent, which XPath 1.0 cannot read.
pub(super) fn number(n: f64) -> String {
    if n.is_finite() {
        n.to_string()
    } else {
        // Only an invalid definition has one; NaN compares false with everything.
        "number('NaN')".to_owned()
    }
}

/// One level of fields on the way down, with the XForm path of the object holding them
/// and the position of the field being written.
pub(super) struct Level<'a> {
    pub(super) fields: &'a [Field],
    pub(super) path: String,
    pub(super) position: usize,
}

/// The `relevant` expression of the field at the innermost level's position, if it has
/// a `show_if`.
pub(super) fn relevance(levels: &[Level<'_>]) -> Option<String> {
    let level = levels.last()?;
    let field = level.fields.get(level.position)?;
    let show_if = field.show_if.as_ref()?;
    Some(condition(show_if, levels))
}

/// The `show_if` as XPath: its target's own relevance, and its test.
fn condition(show_if: &ShowIf, levels: &[Level<'_>]) -> String {
    let Some((depth, index)) = resolve(&show_if.field, levels) else {
        // No usable earlier field: the server reads the condition as false.
        return "false()".to_owned();
    };
    let (Some(level), Some(outer)) = (levels.get(depth), levels.get(..depth)) else {
        return "false()".to_owned();
    };
    let Some(target) = level.fields.get(index) else {
        return "false()".to_owned();
    };
    let path = format!("{}/{}", level.path, target.key);
    let test = test(target, &path, &show_if.condition);
    // The target's relevance is computed among the levels it lives in, with itself as
    // the current field; `resolve` only returns earlier fields, so this terminates.
    let mut target_levels: Vec<Level<'_>> = outer
        .iter()
        .map(|l| Level {
            fields: l.fields,
            path: l.path.clone(),
            position: l.position,
        })
        .collect();
    target_levels.push(Level {
        fields: level.fields,
        path: level.path.clone(),
        position: index,
    });
    match relevance(&target_levels) {
        Some(own) => format!("({own}) and ({test})"),
        None => test,
    }
}

/// The level and index of the field a `show_if` names: the nearest level that has the
/// key, and only if it comes before the current field there (what `validate` accepts).
fn resolve(key: &str, levels: &[Level<'_>]) -> Option<(usize, usize)> {
    for (depth, level) in levels.iter().enumerate().rev() {
        let Some(index) = level.fields.iter().position(|f| f.key == key) else {
            continue;
        };
        // At the innermost level the current field sits at `position`; at an enclosing
        // level that is the group or repeat holding it: either way, earlier is below.
        return (index < level.position).then_some((depth, index));
    }
    None
}

/// The test of a condition on the value at `path`.
fn test(target: &Field, path: &str, condition: &Condition) -> String {
    let many = target.field_type == FieldType::SelectMultiple;
    let one = |value: &Value| match value_literal(target, value) {
        Some(lit) if many => format!("selected({path}, {lit})"),
        Some(lit) => format!("{path} = {lit}"),
        None => "false()".to_owned(),
    };
    match condition {
        Condition::Equals(value) => one(value),
        Condition::In(values) if values.is_empty() => "false()".to_owned(),
        Condition::In(values) => {
            let tests: Vec<String> = values.iter().map(one).collect();
            format!("({})", tests.join(" or "))
        }
        Condition::GreaterThan(n) if target.field_type.is_numeric() => {
            format!("{path} > {}", number(*n))
        }
        Condition::GreaterThan(_) => "false()".to_owned(),
    }
}

/// The literal a value compares as: booleans as the `true`/`false` choice values of
/// their yes/no question, numbers as numbers, strings as strings.
fn value_literal(target: &Field, value: &Value) -> Option<String> {
    match (target.field_type, value) {
        (FieldType::Boolean, Value::Bool(b)) => Some(literal(if *b { "true" } else { "false" })),
        (FieldType::Boolean, _) => None,
        (FieldType::Integer | FieldType::Decimal, Value::Number(n)) => n.as_f64().map(number),
        (FieldType::Integer | FieldType::Decimal, _) => None,
        (_, Value::String(s)) => Some(literal(s)),
        _ => None,
    }
}

/// `regex(., '…')` with a Java pattern that holds no quote (the printers escape them).
fn regex(java: &str) -> String {
    format!("regex(., {})", literal(java))
}

/// The `constraint` of a field other than a group or repeat, if its type or attributes
/// restrict its values beyond what the control already does.
pub(super) fn constraint(field: &Field) -> Option<String> {
    let mut parts = Vec::new();
    match field.field_type {
        FieldType::Integer | FieldType::Decimal => {
            if let Some(min) = field.min {
                parts.push(format!(". >= {}", number(min)));
            }
            if let Some(max) = field.max {
                parts.push(format!(". <= {}", number(max)));
            }
        }
        FieldType::Text => {
            let lengths = match (field.min_length.filter(|n| *n > 0), field.max_length) {
                (Some(a), Some(b)) => Some(format!("{{{a},{b}}}")),
                (Some(a), None) => Some(format!("{{{a},}}")),
                (None, Some(b)) => Some(format!("{{0,{b}}}")),
                (None, None) => None,
            };
            if let Some(lengths) = lengths {
                // `(?s)`: every character counts, line breaks too.
                parts.push(regex(&format!("(?s).{lengths}")));
            }
            if let Some(Ok(java)) = field.pattern.as_deref().map(pattern::to_java) {
                parts.push(regex(&java));
            }
        }
        FieldType::Uic => parts.push(regex(&uic::portable_pattern())),
        FieldType::SelectMultiple => {
            if let Some(min) = field.min {
                parts.push(format!("count-selected(.) >= {}", number(min)));
            }
            if let Some(max) = field.max {
                parts.push(format!("count-selected(.) <= {}", number(max)));
            }
        }
        _ => {}
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// The entry count a repeat must have on the phone: `min_count`, raised to 1 when the
/// repeat is required (Collect cannot send an empty list, so required means one entry),
/// and `max_count`; `None` when nothing limits it.
pub(super) fn repeat_bounds(repeat: &Field) -> Option<(u32, Option<u32>)> {
    let min = repeat
        .min_count
        .unwrap_or(0)
        .max(u32::from(repeat.required));
    (min > 0 || repeat.max_count.is_some()).then_some((min, repeat.max_count))
}

/// The constraint of a repeat's count question (its value is `count(..)` of the entries).
pub(super) fn count_constraint(min: u32, max: Option<u32>) -> String {
    match (min, max) {
        (0, Some(max)) => format!(". <= {max}"),
        (_, Some(max)) => format!(". >= {min} and . <= {max}"),
        (_, None) => format!(". >= {min}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_pick_their_quotes() {
        assert_eq!(literal("other"), "'other'");
        assert_eq!(literal("it's"), "\"it's\"");
        assert_eq!(literal("it's \"x\""), "concat('it', \"'\", 's \"x\"')");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1e21), "1000000000000000000000");
        assert_eq!(number(-3.0), "-3");
    }
}
