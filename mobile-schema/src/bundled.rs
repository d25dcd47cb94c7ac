//! The program's own forms (`forms/*.json`, compiled in) and, for each form kind, the
//! answer keys the server's record extraction reads. An admin may publish a new version
//! of a kind only while those keys are still there with the same types.

use std::sync::OnceLock;

use crate::definition::{Field, FieldType, FormDefinition, FormKind};
use crate::parse::parse_definition;
use crate::typed::{kind_keys, AnswerKey};

/// The bundled form documents, by file name.
const SOURCES: [(&str, &str); 4] = [
    (
        "outreach_visit.json",
        include_str!("../forms/outreach_visit.json"),
    ),
    (
        "referral_handoff.json",
        include_str!("../forms/referral_handoff.json"),
    ),
    (
        "group_session.json",
        include_str!("../forms/group_session.json"),
    ),
    (
        "support_visit.json",
        include_str!("../forms/support_visit.json"),
    ),
];

/// The four bundled forms (version 1 of each kind), parsed and validated.
///
/// A bundled form that failed to parse would be left out; the unit tests prove all four
/// parse and validate, so in a built crate the list is always complete.
pub fn bundled_forms() -> Vec<FormDefinition> {
    static FORMS: OnceLock<Vec<FormDefinition>> = OnceLock::new();
    FORMS
        .get_or_init(|| {
            SOURCES
                .iter()
                .filter_map(|(_, source)| parse_definition(source).ok())
                .collect()
        })
        .clone()
}

/// The keys the server's extraction reads for `kind`, as paths (`contacts[].uic`: the
/// `uic` child of the `contacts` repeat), with the type each must have and whether it
/// must stay required and always shown: those of the kind's typed answers
/// ([`crate::typed`]).
pub fn required_keys(kind: FormKind) -> &'static [AnswerKey] {
    kind_keys(kind)
}

/// The paths of `required_keys(def.kind)` that `def` lacks, gives another type, or (for
/// a key every submission must have) makes optional or conditional.
pub fn missing_required_keys(def: &FormDefinition) -> Vec<String> {
    required_keys(def.kind)
        .iter()
        .filter(|key| {
            find(&def.fields, key.path).is_none_or(|f| {
                f.field_type != key.field_type
                    || (key.always && (!f.required || f.show_if.is_some()))
            })
        })
        .map(|key| key.path.to_owned())
        .collect()
}

/// The field at a key path: `a.b` goes into group `a`, `a[].b` into repeat `a`.
fn find<'a>(fields: &'a [Field], path: &str) -> Option<&'a Field> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let (key, container) = match head.strip_suffix("[]") {
        Some(key) => (key, FieldType::Repeat),
        None => (head, FieldType::Group),
    };
    let field = fields.iter().find(|f| f.key == key)?;
    match rest {
        None => Some(field),
        Some(rest) if field.field_type == container => find(field.children(), rest),
        Some(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_bundled_form_parses_and_validates() {
        for (file, source) in SOURCES {
            let def = parse_definition(source).unwrap_or_else(|faults| {
                panic!("{file} does not parse: {faults:#?}");
            });
            assert_eq!(def.validate(), Ok(()), "{file}");
            assert_eq!(format!("{}.json", def.form_id), file);
            assert_eq!(def.version, 1);
        }
        let forms = bundled_forms();
        let kinds: Vec<_> = forms.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, FormKind::ALL);
        for form in &forms {
            assert_eq!(form.kind.as_str(), form.form_id);
        }
    }

    #[test]
    fn bundled_forms_have_every_required_key() {
        for form in bundled_forms() {
            assert_eq!(
                missing_required_keys(&form),
                Vec::<String>::new(),
                "{}",
                form.form_id
            );
        }
    }

    #[test]
    fn missing_or_retyped_keys_are_named() {
        let mut outreach = bundled_forms().remove(0);
        assert_eq!(outreach.kind, FormKind::OutreachVisit);
        outreach.fields.retain(|f| f.key != "visit_date");
        let contacts = outreach
            .fields
            .iter_mut()
            .find(|f| f.key == "contacts")
            .unwrap();
        let children = contacts.fields.as_mut().unwrap();
        children.retain(|f| f.key != "lubricant");
        children
            .iter_mut()
            .find(|f| f.key == "counselled")
            .unwrap()
            .field_type = FieldType::Text;
        assert_eq!(
            missing_required_keys(&outreach),
            [
                "visit_date",
                "contacts[].lubricant",
                "contacts[].counselled"
            ]
        );

        // A repeat turned into a group loses every key below it.
        let contacts = outreach
            .fields
            .iter_mut()
            .find(|f| f.key == "contacts")
            .unwrap();
        contacts.field_type = FieldType::Group;
        assert_eq!(missing_required_keys(&outreach).len(), 11);
    }

    #[test]
    fn every_extracted_key_is_required_of_a_new_version() {
        for (kind, key) in [
            (FormKind::OutreachVisit, "iec_materials"),
            (FormKind::ReferralHandoff, "facility"),
            (FormKind::GroupSession, "topic"),
        ] {
            let mut def = form(kind);
            def.fields.retain(|f| f.key != key);
            for f in &mut def.fields {
                if let Some(children) = f.fields.as_mut() {
                    children.retain(|f| f.key != key);
                }
            }
            let missing = missing_required_keys(&def);
            assert_eq!(missing.len(), 1, "{kind}: {missing:?}");
            assert!(missing[0].ends_with(key), "{kind}: {missing:?}");
        }
    }

    #[test]
    fn keys_every_submission_has_stay_required_and_always_shown() {
        let mut session = form(FormKind::GroupSession);
        session
            .fields
            .iter_mut()
            .find(|f| f.key == "participants")
            .unwrap()
            .required = false;
        session
            .fields
            .iter_mut()
            .find(|f| f.key == "topic")
            .unwrap()
            .show_if = Some(crate::definition::ShowIf {
            field: "audience".into(),
            condition: crate::definition::Condition::Equals(json!("workers")),
        });
        assert_eq!(missing_required_keys(&session), ["participants", "topic"]);

        // An optional key may be conditional: the loan amount is shown only for a loan.
        let support = form(FormKind::SupportVisit);
        assert!(support.field("loan_amount_vnd").unwrap().show_if.is_some());
        assert_eq!(missing_required_keys(&support), Vec::<String>::new());
    }

    #[test]
    fn bundled_forms_round_trip_to_their_files() {
        for (file, source) in SOURCES {
            let written: serde_json::Value = serde_json::from_str(source).unwrap();
            let def = parse_definition(source).unwrap();
            assert_eq!(serde_json::to_value(&def).unwrap(), written, "{file}");
        }
    }

    fn form(kind: FormKind) -> FormDefinition {
        bundled_forms()
            .into_iter()
            .find(|f| f.kind == kind)
            .unwrap()
    }

    fn faults(def: &FormDefinition, answers: &serde_json::Value) -> Vec<(String, &'static str)> {
        def.validate_answers(answers)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.path, f.code.as_str()))
            .collect()
    }

    #[test]
    fn outreach_visit_answers() {
        let def = form(FormKind::OutreachVisit);
        let contact = json!({
            "uic": "Nguyễn Thị-Đào 1990 F", "age_band": "18_24", "condoms_male": 10,
            "condoms_female": 0, "lubricant": 5, "self_test_kits": 1, "counselled": true,
        });
        let mut answers = json!({
            "visit_date": "2025-07-14",
            "place_type": "karaoke",
            "contacts": [contact.clone(), contact.clone(), contact.clone()],
            "photos": [{"photo": "0".repeat(64)}],
        });
        assert_eq!(def.validate_answers(&answers), Ok(()));

        answers["contacts"][2]["condoms_male"] = json!(501);
        answers["contacts"][1]["referrals"] = json!(["hiv_test", "other"]);
        answers["contacts"][0]["referral_other"] = json!("Tư vấn");
        answers["notes"] = json!("free text is not collected");
        assert_eq!(
            faults(&def, &answers),
            [
                (
                    "contacts[0].referral_other".to_owned(),
                    "hidden_field_present"
                ),
                ("contacts[1].referral_other".to_owned(), "required"),
                ("contacts[2].condoms_male".to_owned(), "out_of_range"),
                ("notes".to_owned(), "unknown_field"),
            ]
        );
        assert_eq!(
            def.uic_paths(&answers),
            ["contacts[0].uic", "contacts[1].uic", "contacts[2].uic"]
        );
        assert_eq!(def.photo_digests(&answers), ["0".repeat(64)]);
    }

    #[test]
    fn referral_handoff_and_support_visit_answers() {
        let handoff = form(FormKind::ReferralHandoff);
        let mut answers = json!({
            "referral_code": "AB2C-XY9Z", "facility": "Trạm Y tế phường Hoàn Kiếm",
            "arrived_on": "2025-07-20", "service": "hiv_test", "outcome": "hiv_negative",
            "slip_photo": "f".repeat(64),
        });
        assert_eq!(handoff.validate_answers(&answers), Ok(()));
        answers["referral_code"] = json!("AB1C-XY9Z");
        assert_eq!(
            faults(&handoff, &answers),
            [("referral_code".to_owned(), "pattern_mismatch")]
        );

        let support = form(FormKind::SupportVisit);
        let mut answers = json!({
            "visit_date": "2025-07-14", "person_uic": "LEVAN1985M",
            "support": ["counselling", "loan"],
        });
        assert_eq!(
            faults(&support, &answers),
            [("loan_amount_vnd".to_owned(), "required")]
        );
        answers["loan_amount_vnd"] = json!(5_000_000);
        assert_eq!(support.validate_answers(&answers), Ok(()));
        answers["support"] = json!([]);
        assert_eq!(
            faults(&support, &answers),
            [
                ("loan_amount_vnd".to_owned(), "hidden_field_present"),
                ("support".to_owned(), "too_few"),
            ]
        );
    }
}
