//! Faults: what is wrong with a form definition or with a set of answers, where, and in
//! which stable, machine-readable code. The server turns them into the `errors` of a
//! problem response and the phone maps the codes to its own messages, so the codes are a
//! contract: add new ones, never rename old ones.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// One thing wrong, at one path (`contacts[2].condoms_male`, `fields[1].choices[0].value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{path}: {message} ({code})")]
pub struct Fault {
    /// Where: dotted keys and `[index]`; the empty string is the document itself.
    pub path: String,
    /// What kind of fault, stable across versions.
    pub code: FaultCode,
    /// A short English explanation for logs and developers, not for end users.
    pub message: String,
}

impl Fault {
    /// A fault at `path` with `code` and a short English `message`.
    pub fn new(path: impl Into<String>, code: FaultCode, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            code,
            message: message.into(),
        }
    }
}

/// The stable codes of definition faults and answer faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultCode {
    // Definition faults.
    /// The definition is not JSON of the right shape (reported by `parse_definition`).
    Malformed,
    /// A `form_id` or field key that is not a slug.
    BadSlug,
    /// Two fields with the same key at one level.
    DuplicateKey,
    /// A select field without choices.
    MissingChoices,
    /// The same choice twice: in a definition's choices, or in a `select_multiple` answer.
    DuplicateChoice,
    /// An attribute that the field's type does not take (`choices` on an integer, ...).
    UnexpectedAttribute,
    /// Bounds that contradict each other or can never be met.
    BadRange,
    /// A `pattern` that does not compile.
    BadPattern,
    /// A group or repeat without child fields.
    MissingChildren,
    /// A `show_if` that refers to no usable earlier field or to a value that cannot occur.
    BadShowIf,
    /// A role that is not one of the four, or a role listed twice.
    BadRole,
    /// An empty title, label, hint, choice value, role list or field list.
    Empty,
    /// A version below 1.
    BadVersion,
    /// A note marked required: notes carry no value.
    RequiredNote,

    // Answer faults.
    /// The answers, a group or a repeat item is not a JSON object.
    NotAnObject,
    /// A required, visible field is absent or null.
    Required,
    /// A key the definition does not have at that level (or a value for a note).
    UnknownField,
    /// A value for a field whose `show_if` is false.
    HiddenFieldPresent,
    /// A JSON value of the wrong type (a string for an integer, 1.0 for an integer, ...).
    WrongType,
    /// A number outside `min`/`max`.
    OutOfRange,
    /// A text shorter than `min_length` characters.
    TooShort,
    /// A text longer than `max_length` characters.
    TooLong,
    /// A text that does not match the field's `pattern` as a whole.
    PatternMismatch,
    /// A select value that is not one of the field's choices.
    NotAChoice,
    /// Fewer repeat items than `min_count`, or fewer selected choices than `min`.
    TooFew,
    /// More repeat items than `max_count`, or more selected choices than `max`.
    TooMany,
    /// A date that is not `YYYY-MM-DD` or not a real day.
    BadDate,
    /// A date-time that is not RFC 3339 with an offset.
    BadDatetime,
    /// A UIC that does not normalize (see `normalize_uic`).
    BadUic,
    /// A photo value that is not 64 lowercase hex characters.
    BadSha256,
    /// A geopoint that is not exactly `{"lat": -90..90, "lon": -180..180}`.
    BadGeopoint,

    // Definition faults added with the ODK Collect XForms.
    /// A `pattern` outside the syntax that means the same on the server and in ODK Collect.
    NonPortablePattern,
    /// A field key starting with `dh_`, which the XForm keeps for its own nodes.
    ReservedKey,
    /// A `select_multiple` choice value with whitespace: XForms joins selections with spaces.
    SpaceInChoice,
}

impl FaultCode {
    /// Every code, in declaration order.
    pub const ALL: [FaultCode; 34] = [
        FaultCode::Malformed,
        FaultCode::BadSlug,
        FaultCode::DuplicateKey,
        FaultCode::MissingChoices,
        FaultCode::DuplicateChoice,
        FaultCode::UnexpectedAttribute,
        FaultCode::BadRange,
        FaultCode::BadPattern,
        FaultCode::MissingChildren,
        FaultCode::BadShowIf,
        FaultCode::BadRole,
        FaultCode::Empty,
        FaultCode::BadVersion,
        FaultCode::RequiredNote,
        FaultCode::NotAnObject,
        FaultCode::Required,
        FaultCode::UnknownField,
        FaultCode::HiddenFieldPresent,
        FaultCode::WrongType,
        FaultCode::OutOfRange,
        FaultCode::TooShort,
        FaultCode::TooLong,
        FaultCode::PatternMismatch,
        FaultCode::NotAChoice,
        FaultCode::TooFew,
        FaultCode::TooMany,
        FaultCode::BadDate,
        FaultCode::BadDatetime,
        FaultCode::BadUic,
        FaultCode::BadSha256,
        FaultCode::BadGeopoint,
        FaultCode::NonPortablePattern,
        FaultCode::ReservedKey,
        FaultCode::SpaceInChoice,
    ];

    /// The snake_case wire name, the same string serde writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultCode::Malformed => "malformed",
            FaultCode::BadSlug => "bad_slug",
            FaultCode::DuplicateKey => "duplicate_key",
            FaultCode::MissingChoices => "missing_choices",
            FaultCode::DuplicateChoice => "duplicate_choice",
            FaultCode::UnexpectedAttribute => "unexpected_attribute",
            FaultCode::BadRange => "bad_range",
            FaultCode::BadPattern => "bad_pattern",
            FaultCode::MissingChildren => "missing_children",
            FaultCode::BadShowIf => "bad_show_if",
            FaultCode::BadRole => "bad_role",
            FaultCode::Empty => "empty",
            FaultCode::BadVersion => "bad_version",
            FaultCode::RequiredNote => "required_note",
            FaultCode::NotAnObject => "not_an_object",
            FaultCode::Required => "required",
            FaultCode::UnknownField => "unknown_field",
            FaultCode::HiddenFieldPresent => "hidden_field_present",
            FaultCode::WrongType => "wrong_type",
            FaultCode::OutOfRange => "out_of_range",
            FaultCode::TooShort => "too_short",
            FaultCode::TooLong => "too_long",
            FaultCode::PatternMismatch => "pattern_mismatch",
            FaultCode::NotAChoice => "not_a_choice",
            FaultCode::TooFew => "too_few",
            FaultCode::TooMany => "too_many",
            FaultCode::BadDate => "bad_date",
            FaultCode::BadDatetime => "bad_datetime",
            FaultCode::BadUic => "bad_uic",
            FaultCode::BadSha256 => "bad_sha256",
            FaultCode::BadGeopoint => "bad_geopoint",
            FaultCode::NonPortablePattern => "non_portable_pattern",
            FaultCode::ReservedKey => "reserved_key",
            FaultCode::SpaceInChoice => "space_in_choice",
        }
    }
}

impl std::fmt::Display for FaultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The faults of one set of answers: the first `limit` found, sorted, and how many more
/// there were. A hostile body can name millions of faults; only a bounded list is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultList {
    /// The faults kept, sorted by path (indices as numbers) and then code.
    pub faults: Vec<Fault>,
    /// How many further faults were found and not kept.
    pub omitted: usize,
}

/// Collects faults up to a limit and counts the rest without keeping them.
#[derive(Debug)]
pub(crate) struct FaultSink {
    kept: Vec<Fault>,
    limit: usize,
    omitted: usize,
}

impl FaultSink {
    pub(crate) fn new(limit: usize) -> Self {
        FaultSink {
            kept: Vec::new(),
            limit,
            omitted: 0,
        }
    }

    pub(crate) fn push(&mut self, fault: Fault) {
        if self.kept.len() < self.limit {
            self.kept.push(fault);
        } else {
            self.omitted += 1;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.omitted == 0
    }

    pub(crate) fn first(&self) -> Option<&Fault> {
        self.kept.first()
    }

    /// The kept faults, sorted, and the count of the others.
    pub(crate) fn finish(mut self) -> FaultList {
        sort_faults(&mut self.kept);
        FaultList {
            faults: self.kept,
            omitted: self.omitted,
        }
    }
}

/// Sorts faults by path, then code, then message; runs of digits in paths compare as
/// numbers, so `contacts[2]` comes before `contacts[10]`.
pub(crate) fn sort_faults(faults: &mut [Fault]) {
    faults.sort_by(|a, b| {
        natural_cmp(&a.path, &b.path)
            .then_with(|| a.code.as_str().cmp(b.code.as_str()))
            .then_with(|| a.message.cmp(&b.message))
    });
}

/// Compares two strings, treating each run of ASCII digits as one number.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (da, db) = (trim_zeros(&a[si..i]), trim_zeros(&b[sj..j]));
            let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            let ord = a[i].cmp(&b[j]);
            if ord != Ordering::Equal {
                return ord;
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|d| *d != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde_for_every_code() {
        for code in FaultCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
        }
    }

    #[test]
    fn paths_sort_with_numeric_indices() {
        let mut faults = vec![
            Fault::new("contacts[10].uic", FaultCode::BadUic, "x"),
            Fault::new("contacts[2].uic", FaultCode::Required, "x"),
            Fault::new("contacts[2].uic", FaultCode::BadUic, "x"),
            Fault::new("contacts", FaultCode::TooMany, "x"),
            Fault::new("visit_date", FaultCode::BadDate, "x"),
        ];
        sort_faults(&mut faults);
        let order: Vec<_> = faults
            .iter()
            .map(|f| format!("{} {}", f.path, f.code))
            .collect();
        assert_eq!(
            order,
            [
                "contacts too_many",
                "contacts[2].uic bad_uic",
                "contacts[2].uic required",
                "contacts[10].uic bad_uic",
                "visit_date bad_date",
            ]
        );
    }

    #[test]
    fn fault_serializes_with_snake_case_code() {
        let fault = Fault::new("visit_date", FaultCode::BadDate, "not a date");
        let json = serde_json::to_value(&fault).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"path": "visit_date", "code": "bad_date", "message": "not a date"})
        );
        assert_eq!(fault.to_string(), "visit_date: not a date (bad_date)");
    }
}
