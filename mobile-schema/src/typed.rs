//! Validated answers read into one struct per form kind: the fields the server extracts
//! records from (contacts, handoffs, group sessions, support actions), so that it reads
//! fields rather than walking JSON with fallbacks.
//!
//! Each struct's [`FormAnswers::KEYS`] are the answer keys it reads, with their types;
//! they are what a new version of the kind must keep ([`crate::required_keys`]), so the
//! two cannot drift: the unit tests below check every list against its struct's serde
//! fields. A key whose struct field is not an `Option` must also stay required and
//! always shown (no `show_if`), because validated answers then always carry it; an
//! optional one only has to keep its key and type.

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::definition::{FieldType, FormKind};

/// One answer key a kind's extraction reads: its path (`contacts[].uic`: the `uic`
/// child of the `contacts` repeat), its type, and whether every submission has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerKey {
    /// The key path, `a[].b` for the child `b` of repeat `a`.
    pub path: &'static str,
    /// The type the field must have.
    pub field_type: FieldType,
    /// Whether the field must be required and always shown (its struct field is not an
    /// `Option`).
    pub always: bool,
}

const fn always(path: &'static str, field_type: FieldType) -> AnswerKey {
    AnswerKey {
        path,
        field_type,
        always: true,
    }
}

const fn optional(path: &'static str, field_type: FieldType) -> AnswerKey {
    AnswerKey {
        path,
        field_type,
        always: false,
    }
}

/// The typed answers of one form kind.
pub trait FormAnswers: Serialize + DeserializeOwned {
    /// The kind whose answers these are.
    const KIND: FormKind;
    /// Every answer key the struct reads, in the form's order.
    const KEYS: &'static [AnswerKey];
    /// The day the visit or session happened.
    fn occurred_on(&self) -> NaiveDate;
}

/// An outreach visit: the people met, what each was given, where each was referred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutreachVisit {
    /// The day of the visit.
    pub visit_date: NaiveDate,
    /// The people met, in the order the worker entered them.
    pub contacts: Vec<Contact>,
}

/// One person met on an outreach visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The client code as the answers hold it: raw from the phone, the server's keyed
    /// hash once the server has replaced it.
    pub uic: String,
    /// The age band's choice value (`18_24`).
    pub age_band: String,
    /// Male condoms given.
    pub condoms_male: i32,
    /// Female condoms given.
    pub condoms_female: i32,
    /// Sachets of lubricant given.
    pub lubricant: i32,
    /// HIV self-test kits given.
    pub self_test_kits: i32,
    /// Leaflets and other IEC materials given; the form may leave it out.
    pub iec_materials: Option<i32>,
    /// Whether the person was counselled.
    pub counselled: bool,
    /// The services the person was referred to (choice values), if any.
    pub referrals: Option<Vec<String>>,
}

/// A referred client's arrival at a facility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralHandoff {
    /// The code on the referral slip (`AB2C-XY9Z`).
    pub referral_code: String,
    /// The facility the client arrived at.
    pub facility: String,
    /// The day the client arrived.
    pub arrived_on: NaiveDate,
    /// The service's choice value.
    pub service: String,
    /// The outcome's choice value.
    pub outcome: String,
}

/// A behaviour-change communication session with a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSession {
    /// The day of the session.
    pub session_date: NaiveDate,
    /// The audience's choice value.
    pub audience: String,
    /// How many people took part.
    pub participants: i32,
    /// The topic's choice value.
    pub topic: String,
}

/// A volunteer's support visit to a person after drug rehabilitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportVisit {
    /// The day of the visit.
    pub visit_date: NaiveDate,
    /// The person's client code (raw, or the server's keyed hash; see [`Contact::uic`]).
    pub person_uic: String,
    /// The kinds of support given (choice values).
    pub support: Vec<String>,
    /// The loan's amount in đồng, when a loan was given.
    pub loan_amount_vnd: Option<i64>,
}

impl FormAnswers for OutreachVisit {
    const KIND: FormKind = FormKind::OutreachVisit;
    const KEYS: &'static [AnswerKey] = &[
        always("visit_date", FieldType::Date),
        always("contacts", FieldType::Repeat),
        always("contacts[].uic", FieldType::Uic),
        always("contacts[].age_band", FieldType::SelectOne),
        always("contacts[].condoms_male", FieldType::Integer),
        always("contacts[].condoms_female", FieldType::Integer),
        always("contacts[].lubricant", FieldType::Integer),
        always("contacts[].self_test_kits", FieldType::Integer),
        optional("contacts[].iec_materials", FieldType::Integer),
        always("contacts[].counselled", FieldType::Boolean),
        optional("contacts[].referrals", FieldType::SelectMultiple),
    ];

    fn occurred_on(&self) -> NaiveDate {
        self.visit_date
    }
}

impl FormAnswers for ReferralHandoff {
    const KIND: FormKind = FormKind::ReferralHandoff;
    const KEYS: &'static [AnswerKey] = &[
        always("referral_code", FieldType::Text),
        always("facility", FieldType::Text),
        always("arrived_on", FieldType::Date),
        always("service", FieldType::SelectOne),
        always("outcome", FieldType::SelectOne),
    ];

    fn occurred_on(&self) -> NaiveDate {
        self.arrived_on
    }
}

impl FormAnswers for GroupSession {
    const KIND: FormKind = FormKind::GroupSession;
    const KEYS: &'static [AnswerKey] = &[
        always("session_date", FieldType::Date),
        always("audience", FieldType::SelectOne),
        always("participants", FieldType::Integer),
        always("topic", FieldType::SelectOne),
    ];

    fn occurred_on(&self) -> NaiveDate {
        self.session_date
    }
}

impl FormAnswers for SupportVisit {
    const KIND: FormKind = FormKind::SupportVisit;
    const KEYS: &'static [AnswerKey] = &[
        always("visit_date", FieldType::Date),
        always("person_uic", FieldType::Uic),
        always("support", FieldType::SelectMultiple),
        optional("loan_amount_vnd", FieldType::Integer),
    ];

    fn occurred_on(&self) -> NaiveDate {
        self.visit_date
    }
}

/// Validated answers read into the struct of their form's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindAnswers {
    /// See [`OutreachVisit`].
    OutreachVisit(OutreachVisit),
    /// See [`ReferralHandoff`].
    ReferralHandoff(ReferralHandoff),
    /// See [`GroupSession`].
    GroupSession(GroupSession),
    /// See [`SupportVisit`].
    SupportVisit(SupportVisit),
}

/// Validated answers that do not fit their kind's struct. The definition check keeps
/// this from happening to a version published with it (every non-optional key required
/// and always shown); it names the answer that did not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the answer at `{path}` does not fit a {kind} record: {message}")]
pub struct UnfitAnswer {
    /// The form kind being read.
    pub kind: FormKind,
    /// The answer path (`contacts[2].condoms_male`); empty for the answers as a whole.
    pub path: String,
    /// What did not fit, in serde's words.
    pub message: String,
}

impl KindAnswers {
    /// Reads validated answers of a form of `kind`.
    pub fn read(kind: FormKind, answers: &Value) -> Result<KindAnswers, UnfitAnswer> {
        Ok(match kind {
            FormKind::OutreachVisit => KindAnswers::OutreachVisit(read_as(answers)?),
            FormKind::ReferralHandoff => KindAnswers::ReferralHandoff(read_as(answers)?),
            FormKind::GroupSession => KindAnswers::GroupSession(read_as(answers)?),
            FormKind::SupportVisit => KindAnswers::SupportVisit(read_as(answers)?),
        })
    }

    /// The day the visit or session happened.
    pub fn occurred_on(&self) -> NaiveDate {
        match self {
            KindAnswers::OutreachVisit(a) => a.occurred_on(),
            KindAnswers::ReferralHandoff(a) => a.occurred_on(),
            KindAnswers::GroupSession(a) => a.occurred_on(),
            KindAnswers::SupportVisit(a) => a.occurred_on(),
        }
    }
}

/// The answer keys the struct of `kind` reads.
pub fn kind_keys(kind: FormKind) -> &'static [AnswerKey] {
    match kind {
        FormKind::OutreachVisit => OutreachVisit::KEYS,
        FormKind::ReferralHandoff => ReferralHandoff::KEYS,
        FormKind::GroupSession => GroupSession::KEYS,
        FormKind::SupportVisit => SupportVisit::KEYS,
    }
}

/// Reads answers as `T`, naming the answer that does not fit.
pub fn read_as<T: FormAnswers>(answers: &Value) -> Result<T, UnfitAnswer> {
    serde_path_to_error::deserialize(answers).map_err(|err| {
        // For an absent key serde stops at the object that lacks it; point at the key.
        let (path, message) = crate::parse::error_path(&err, "missing field `");
        UnfitAnswer {
            kind: T::KIND,
            path,
            message,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{json, Map};

    use super::*;

    /// Answers holding every key of `keys` under `prefix`, each with a value of its type.
    fn sample(keys: &[AnswerKey], prefix: &str) -> Value {
        let mut object = Map::new();
        for key in keys {
            let Some(name) = key.path.strip_prefix(prefix) else {
                continue;
            };
            if name.contains('.') {
                continue;
            }
            let value = match key.field_type {
                FieldType::Date => json!("2025-07-14"),
                FieldType::Integer => json!(3),
                FieldType::Boolean => json!(true),
                FieldType::Text | FieldType::SelectOne | FieldType::Uic => json!("x"),
                FieldType::SelectMultiple => json!(["x"]),
                FieldType::Repeat => json!([sample(keys, &format!("{name}[]."))]),
                other => panic!("no sample for {other}"),
            };
            object.insert(name.to_owned(), value);
        }
        Value::Object(object)
    }

    /// Every key path in `value`, as `KEYS` writes them.
    fn paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        if let Value::Object(map) = value {
            for (key, child) in map {
                let path = format!("{prefix}{key}");
                if let Some(Value::Object(_)) = child.as_array().and_then(|a| a.first()) {
                    paths(&child[0], &format!("{path}[]."), out);
                }
                out.insert(path);
            }
        }
    }

    fn check_keys_match_fields<T: FormAnswers>() {
        let full = sample(T::KEYS, "");
        let typed: T = read_as(&full).unwrap_or_else(|e| panic!("{}: {e}", T::KIND));
        // A struct field missing from KEYS would be absent from the sample (refused, or
        // written back as null); a key without a field would not be written back.
        let written = serde_json::to_value(&typed).unwrap();
        assert_eq!(written, full, "{}", T::KIND);
        let mut found = BTreeSet::new();
        paths(&written, "", &mut found);
        let listed: BTreeSet<String> = T::KEYS.iter().map(|k| k.path.to_owned()).collect();
        assert_eq!(found, listed, "{}", T::KIND);

        // A key may be left out exactly when its field is an Option.
        for key in T::KEYS {
            let mut answers = full.clone();
            match key.path.split_once("[].") {
                Some((repeat, child)) => answers[repeat][0].as_object_mut().unwrap().remove(child),
                None => answers.as_object_mut().unwrap().remove(key.path),
            };
            let read = read_as::<T>(&answers);
            assert_eq!(read.is_err(), key.always, "{} {}", T::KIND, key.path);
            if let Err(unfit) = read {
                assert_eq!(unfit.path.replace("[0]", "[]"), key.path);
            }
        }
    }

    #[test]
    fn keys_are_the_structs_fields() {
        check_keys_match_fields::<OutreachVisit>();
        check_keys_match_fields::<ReferralHandoff>();
        check_keys_match_fields::<GroupSession>();
        check_keys_match_fields::<SupportVisit>();
        for kind in FormKind::ALL {
            let read = KindAnswers::read(kind, &sample(kind_keys(kind), "")).unwrap();
            assert_eq!(read.occurred_on().to_string(), "2025-07-14");
        }
    }

    #[test]
    fn absent_optional_answers_are_none_and_other_keys_are_ignored() {
        let answers = json!({
            "visit_date": "2025-07-14",
            "place_type": "karaoke",
            "contacts": [{
                "uic": "h", "age_band": "18_24", "condoms_male": 10, "condoms_female": 0,
                "lubricant": 5, "self_test_kits": 1, "counselled": false,
            }],
            "photos": [{"photo": "0".repeat(64)}],
        });
        let KindAnswers::OutreachVisit(visit) =
            KindAnswers::read(FormKind::OutreachVisit, &answers).unwrap()
        else {
            panic!("not an outreach visit");
        };
        assert_eq!(visit.contacts[0].iec_materials, None);
        assert_eq!(visit.contacts[0].referrals, None);
        assert_eq!(visit.contacts[0].condoms_male, 10);
    }

    #[test]
    fn unfit_answers_are_named() {
        let unfit = KindAnswers::read(
            FormKind::GroupSession,
            &json!({"session_date": "2025-07-14", "audience": "workers", "participants": 1}),
        )
        .unwrap_err();
        assert_eq!(unfit.path, "topic");
        let unfit = KindAnswers::read(
            FormKind::OutreachVisit,
            &json!({"visit_date": "2025-07-14", "contacts": [{
                "uic": "h", "age_band": "18_24", "condoms_male": 3_000_000_000_i64,
                "condoms_female": 0, "lubricant": 5, "self_test_kits": 1, "counselled": true,
            }]}),
        )
        .unwrap_err();
        assert_eq!(unfit.path, "contacts[0].condoms_male");
        assert_eq!(unfit.kind, FormKind::OutreachVisit);
    }
}
