//! Round trips through JavaRosa, the engine inside ODK Collect: each form's XForm is
//! filled by `tests/odk/Filler.java` as a worker would fill it in Collect, the
//! submission it writes is read back with `parse_instance`, and the answers must be
//! exactly the expected JSON and pass `validate_answers`. Hidden questions must come
//! back absent; the phone must refuse what the server would refuse (repeat entry
//! counts at finalization, patterns, UICs, lengths, selection counts).
//!
//! Needs `DONGHANH_TEST_ODK_VALIDATE_JAR` (ODK_Validate.jar, which bundles JavaRosa),
//! `java` and `javac`; skipped without them, except in CI or under
//! `DONGHANH_TEST_REQUIRE_SERVICES`, where that fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{fill, Filled};
use mobile_schema::{
    bundled_forms, instance_header, json_pointer, parse_instance, FormDefinition, FormKind,
    XformInstance,
};
use serde_json::{json, Value};

fn bundled(kind: FormKind) -> FormDefinition {
    bundled_forms()
        .into_iter()
        .find(|f| f.kind == kind)
        .unwrap()
}

/// Fills `def`'s XForm, expecting a submission; reads it back and checks the answers.
fn round_trip(
    filler: &(std::path::PathBuf, std::path::PathBuf),
    def: &FormDefinition,
    answers: &str,
    extra: &[&str],
    expected: Value,
) -> XformInstance {
    let xml = match fill(filler, &def.to_xform(), answers, extra) {
        Filled::Submitted(xml) => xml,
        Filled::Refused { code, stderr } => {
            panic!("{}: the filler refused ({code:?}):\n{stderr}", def.form_id)
        }
    };
    let parsed = parse_instance(def, &xml)
        .unwrap_or_else(|faults| panic!("{}: {faults:#?}\n{xml}", def.form_id));
    assert_eq!(parsed.answers, expected, "{}\n{xml}", def.form_id);
    assert_eq!(parsed.form_id, def.form_id);
    assert_eq!(parsed.version, def.version);
    assert!(
        parsed.instance_id.starts_with("uuid:"),
        "{}",
        parsed.instance_id
    );
    assert_eq!(parsed.place.as_deref(), Some("hk_01"));
    // Collect's start and end timestamps, in the phone's zone.
    let (start, end) = (parsed.started_at.unwrap(), parsed.completed_at.unwrap());
    assert!(start <= end);
    assert_eq!(start.offset().local_minus_utc(), 7 * 3600);
    // The server swaps each photo's file name for its digest, then validates.
    let mut answers = parsed.answers.clone();
    for (i, path) in def.photo_paths(&answers).iter().enumerate() {
        *answers.pointer_mut(&json_pointer(path)).unwrap() = json!(format!("{i:064x}"));
    }
    assert_eq!(def.validate_answers(&answers), Ok(()), "{}", def.form_id);
    parsed
}

/// Fills `def`'s XForm, expecting the filler to refuse with `message` (Collect's words).
fn refused(
    filler: &(std::path::PathBuf, std::path::PathBuf),
    def: &FormDefinition,
    answers: &str,
    message: &str,
) {
    match fill(filler, &def.to_xform(), answers, &[]) {
        Filled::Submitted(xml) => panic!("{}: accepted, expected {message:?}:\n{xml}", def.form_id),
        Filled::Refused { code, stderr } => {
            assert_eq!(code, Some(2), "{stderr}");
            assert!(
                stderr.contains(message),
                "expected {message:?} in:\n{stderr}"
            );
        }
    }
}

fn contact_lines(n: usize, counselled: bool) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "contacts[{i}]/uic=Nguyễn Thị {} F\ncontacts[{i}]/age_band=25_34\n\
                 contacts[{i}]/condoms_male=2\ncontacts[{i}]/condoms_female=0\n\
                 contacts[{i}]/lubricant=1\ncontacts[{i}]/self_test_kits=0\n\
                 contacts[{i}]/counselled={counselled}\n",
                1950 + i
            )
        })
        .collect()
}

const OUTREACH_HEAD: &str = "dh_place=hk_01\nvisit_date=2025-07-14\nplace_type=karaoke\n";

#[test]
fn outreach_visit_with_two_contacts_a_hidden_field_and_a_photo() {
    let Some(filler) = common::filler() else {
        return;
    };
    let def = bundled(FormKind::OutreachVisit);
    let answers = format!(
        "{OUTREACH_HEAD}\
         contacts[1]/uic=Nguyễn Thị-Đào 1990 F\ncontacts[1]/age_band=18_24\n\
         contacts[1]/condoms_male=10\ncontacts[1]/condoms_female=0\ncontacts[1]/lubricant=5\n\
         contacts[1]/self_test_kits=1\ncontacts[1]/iec_materials=3\ncontacts[1]/counselled=true\n\
         contacts[1]/referrals=hiv_test other\ncontacts[1]/referral_other=Tư vấn tâm lý\n\
         contacts[2]/uic=LEVAN1985M\ncontacts[2]/age_band=50_plus\ncontacts[2]/condoms_male=0\n\
         contacts[2]/condoms_female=2\ncontacts[2]/lubricant=0\ncontacts[2]/self_test_kits=0\n\
         contacts[2]/counselled=false\ncontacts[2]/referrals=prep\n\
         # hidden: no `other` referral, so the phone never asks\n\
         contacts[2]/referral_other=never asked\n\
         photos[1]/photo=1718000000000.jpg\n"
    );
    let parsed = round_trip(
        &filler,
        &def,
        &answers,
        &[],
        json!({
            "visit_date": "2025-07-14",
            "place_type": "karaoke",
            "contacts": [
                {"uic": "Nguyễn Thị-Đào 1990 F", "age_band": "18_24", "condoms_male": 10,
                 "condoms_female": 0, "lubricant": 5, "self_test_kits": 1, "iec_materials": 3,
                 "counselled": true, "referrals": ["hiv_test", "other"],
                 "referral_other": "Tư vấn tâm lý"},
                {"uic": "LEVAN1985M", "age_band": "50_plus", "condoms_male": 0,
                 "condoms_female": 2, "lubricant": 0, "self_test_kits": 0,
                 "counselled": false, "referrals": ["prep"]},
            ],
            "photos": [{"photo": "1718000000000.jpg"}],
        }),
    );
    assert_eq!(def.photo_paths(&parsed.answers), ["photos[0].photo"]);
    assert_eq!(
        def.uic_paths(&parsed.answers),
        ["contacts[0].uic", "contacts[1].uic"]
    );
}

#[test]
fn repeat_entry_counts_are_enforced_when_finalizing() {
    let Some(filler) = common::filler() else {
        return;
    };
    let def = bundled(FormKind::OutreachVisit);
    // contacts: required, 1 to 50 entries.
    refused(&filler, &def, OUTREACH_HEAD, "Cần có từ 1 đến 50 mục");
    refused(
        &filler,
        &def,
        &format!("{OUTREACH_HEAD}{}", contact_lines(51, true)),
        "/data/dh_count_contacts",
    );
    let fifty = round_trip(
        &filler,
        &def,
        &format!("{OUTREACH_HEAD}{}", contact_lines(50, true)),
        &[],
        {
            let contact = |i: usize| {
                json!({"uic": format!("Nguyễn Thị {} F", 1950 + i), "age_band": "25_34",
                       "condoms_male": 2, "condoms_female": 0, "lubricant": 1,
                       "self_test_kits": 0, "counselled": true})
            };
            json!({
                "visit_date": "2025-07-14",
                "place_type": "karaoke",
                "contacts": (1..=50).map(contact).collect::<Vec<_>>(),
            })
        },
    );
    assert_eq!(fifty.answers["contacts"].as_array().unwrap().len(), 50);

    // photos: at most 5; in English, Collect says so in English.
    let photos = |n: usize| -> String {
        (1..=n)
            .map(|i| format!("photos[{i}]/photo=p{i}.jpg\n"))
            .collect()
    };
    let base = format!("{OUTREACH_HEAD}{}", contact_lines(1, false));
    match fill(
        &filler,
        &def.to_xform(),
        &format!("{base}{}", photos(6)),
        &["--lang", "English (en)"],
    ) {
        Filled::Refused { code, stderr } => {
            assert_eq!(code, Some(2));
            assert!(stderr.contains("Allows at most 5 entries"), "{stderr}");
        }
        Filled::Submitted(xml) => panic!("6 photos accepted:\n{xml}"),
    }
    let five = round_trip(&filler, &def, &format!("{base}{}", photos(5)), &[], {
        json!({
            "visit_date": "2025-07-14",
            "place_type": "karaoke",
            "contacts": [{"uic": "Nguyễn Thị 1951 F", "age_band": "25_34", "condoms_male": 2,
                          "condoms_female": 0, "lubricant": 1, "self_test_kits": 0,
                          "counselled": false}],
            "photos": (1..=5).map(|i| json!({"photo": format!("p{i}.jpg")})).collect::<Vec<_>>(),
        })
    });
    assert_eq!(five.answers["photos"].as_array().unwrap().len(), 5);

    // A nested repeat's bounds and a minimum above one, in the coverage form.
    let every = common::every_type_form();
    let one_visit = format!("{EVERY_HEAD}visits[1]/on=2025-07-01\n");
    refused(&filler, &every, &one_visit, "Cần có từ 2 đến 3 mục");
    let three_items = format!(
        "{EVERY_HEAD}visits[1]/on=2025-07-01\nvisits[2]/on=2025-07-02\n\
         visits[2]/items[1]/what=a\nvisits[2]/items[2]/what=b\nvisits[2]/items[3]/what=c\n"
    );
    refused(
        &filler,
        &every,
        &three_items,
        "/data/visits[2]/dh_count_items",
    );
}

#[test]
fn referral_handoff_and_its_pattern() {
    let Some(filler) = common::filler() else {
        return;
    };
    let def = bundled(FormKind::ReferralHandoff);
    let answers = "dh_place=hk_01\nreferral_code=AB2C-XY9Z\nfacility=Trạm Y tế phường Hoàn Kiếm\n\
                   arrived_on=2025-07-20\nservice=hiv_test\noutcome=hiv_negative\n\
                   slip_photo=slip-2025.jpg\n";
    round_trip(
        &filler,
        &def,
        answers,
        &[],
        json!({
            "referral_code": "AB2C-XY9Z", "facility": "Trạm Y tế phường Hoàn Kiếm",
            "arrived_on": "2025-07-20", "service": "hiv_test", "outcome": "hiv_negative",
            "slip_photo": "slip-2025.jpg",
        }),
    );
    // 1 and I are not in the code alphabet; the message carries the field's hint.
    refused(
        &filler,
        &def,
        &answers.replace("AB2C-XY9Z", "AB1C-XY9Z"),
        "đúng định dạng quy định (Mã in trên phiếu, ví dụ ABCD-2345)",
    );
    refused(
        &filler,
        &def,
        &answers.replace("AB2C-XY9Z", "xAB2C-XY9Z"),
        "định dạng",
    );
    refused(
        &filler,
        &def,
        &answers.replace("AB2C-XY9Z", "AB2C-XY9Zx"),
        "định dạng",
    );
    // Without the photo, Collect will not finalize.
    refused(
        &filler,
        &def,
        &answers.replace("slip_photo=slip-2025.jpg\n", ""),
        "required question unanswered: /data/slip_photo: Câu hỏi này cần được trả lời",
    );
}

#[test]
fn group_session_and_support_visit_with_and_without_their_hidden_fields() {
    let Some(filler) = common::filler() else {
        return;
    };
    let session = bundled(FormKind::GroupSession);
    let head = "dh_place=hk_01\nsession_date=2025-07-01\naudience=workers\nparticipants=12\n";
    round_trip(
        &filler,
        &session,
        &format!("{head}topic=other\ntopic_other=Bạo lực giới\nphotos[1]/photo=a.jpg\nphotos[2]/photo=b.jpg\n"),
        &[],
        json!({"session_date": "2025-07-01", "audience": "workers", "participants": 12,
               "topic": "other", "topic_other": "Bạo lực giới",
               "photos": [{"photo": "a.jpg"}, {"photo": "b.jpg"}]}),
    );
    round_trip(
        &filler,
        &session,
        &format!("{head}topic=condom_use\ntopic_other=never asked\n"),
        &[],
        json!({"session_date": "2025-07-01", "audience": "workers", "participants": 12,
               "topic": "condom_use"}),
    );
    refused(
        &filler,
        &session,
        &format!("{head}topic=sti\n").replace("=12", "=0"),
        "Nhập số nguyên từ 1 đến 500",
    );

    let support = bundled(FormKind::SupportVisit);
    let head = "dh_place=hk_01\nvisit_date=2025-07-14\nperson_uic=Lê Văn 1985 M\n";
    round_trip(
        &filler,
        &support,
        &format!("{head}support=counselling loan\nloan_amount_vnd=5000000\n"),
        &[],
        json!({"visit_date": "2025-07-14", "person_uic": "Lê Văn 1985 M",
               "support": ["counselling", "loan"], "loan_amount_vnd": 5_000_000}),
    );
    round_trip(
        &filler,
        &support,
        &format!("{head}support=job_referral\nloan_amount_vnd=5000000\n"),
        &[],
        json!({"visit_date": "2025-07-14", "person_uic": "Lê Văn 1985 M",
               "support": ["job_referral"]}),
    );
    refused(
        &filler,
        &support,
        &format!("{head}support=loan\nloan_amount_vnd=0\n"),
        "từ 1 đến 1.000.000.000",
    );
    refused(
        &filler,
        &support,
        &head.replace("Lê Văn 1985 M", "Lê/1985"),
        "Mã UIC được tạo từ tên bố, tên mẹ",
    );
    // The server's own rule for the same value: the phone is no looser.
    assert!(mobile_schema::normalize_uic("Lê/1985").is_none());
}

const EVERY_HEAD: &str =
    "dh_place=hk_01\nname=Lê Lan\nage=65\nconsent=true\nvisit_date=2025-07-14\n\
                          person_uic=Nguyễn Văn 1985 M\n";

#[test]
fn every_field_type_round_trips() {
    let Some(filler) = common::filler() else {
        return;
    };
    let def = common::every_type_form();
    let answers = format!(
        "{EVERY_HEAD}\
         intro=a note takes no answer\n\
         code=CD-123\ncomment=😀😀😀😀😀\nratio=0.25\nquarter_note=¼\nmet_at=2025-07-14T09:30:00+07:00\n\
         same_day=có\n\
         place_kind=bar's\nbar_note=quán \"Hà\"\nsupport=counselling loan\nslip=slip.jpg\n\
         spot=21.0285 105.8542 12.5 4\n\
         household/members=5\nhousehold/members_note=đông\nhousehold/has_kids=false\n\
         visits[1]/on=2025-07-01\nvisits[1]/kind=other\nvisits[1]/other_kind=chợ\nvisits[1]/hours=3\n\
         visits[1]/items[1]/what=gạo\nvisits[1]/items[1]/picture=rice.jpg\nvisits[1]/items[1]/why=cần\n\
         visits[1]/items[2]/what=dầu\n\
         visits[2]/on=2025-07-02\nvisits[2]/kind=home\nvisits[2]/other_kind=never asked\nvisits[2]/hours=4\n\
         visits[2]/items[1]/what=nước\nvisits[2]/items[1]/why=never asked\n"
    );
    round_trip(
        &filler,
        &def,
        &answers,
        &[],
        json!({
            "name": "Lê Lan", "code": "CD-123", "comment": "😀😀😀😀😀", "age": 65, "ratio": 0.25,
            "quarter_note": "¼", "consent": true, "visit_date": "2025-07-14",
            "met_at": "2025-07-14T09:30:00.000+07:00", "same_day": "có",
            "place_kind": "bar's", "bar_note": "quán \"Hà\"", "support": ["counselling", "loan"],
            "person_uic": "Nguyễn Văn 1985 M", "slip": "slip.jpg",
            "spot": {"lat": 21.0285, "lon": 105.8542},
            "household": {"members": 5, "members_note": "đông", "has_kids": false},
            "visits": [
                {"on": "2025-07-01", "kind": "other", "other_kind": "chợ", "hours": 3,
                 "items": [{"what": "gạo", "picture": "rice.jpg", "why": "cần"}, {"what": "dầu"}]},
                {"on": "2025-07-02", "kind": "home", "hours": 4, "items": [{"what": "nước"}]},
            ],
        }),
    );

    // The least the form takes: hidden fields absent, an empty group an object, and a
    // show_if from inside a repeat on a field outside it (age 30: no hours asked).
    let least = EVERY_HEAD
        .replace("age=65", "age=30")
        .replace("visit_date=2025-07-14", "visit_date=2025-07-15")
        + "same_day=x\nquarter_note=x\n\
           visits[1]/on=2025-07-01\nvisits[1]/hours=9\nvisits[2]/on=2025-07-02\n";
    round_trip(
        &filler,
        &def,
        &least,
        &["--lang", "English (en)"],
        json!({
            "name": "Lê Lan", "age": 30, "consent": true, "visit_date": "2025-07-15",
            "person_uic": "Nguyễn Văn 1985 M", "household": {},
            "visits": [{"on": "2025-07-01"}, {"on": "2025-07-02"}],
        }),
    );

    // What the server refuses, the phone refuses too.
    let two_visits = "visits[1]/on=2025-07-01\nvisits[2]/on=2025-07-02\n";
    for (field, value, message) in [
        ("comment", "😀😀😀😀😀😀", "Cần có tối đa 5 ký tự."),
        ("code", "EF-12", "Cần đúng định dạng quy định."),
        ("code", "AB-1234", "Cần đúng định dạng quy định."),
        (
            "name",
            "L",
            "Cần có từ 2 đến 10 ký tự và đúng định dạng quy định (Chỉ chữ cái).",
        ),
        ("name", "Lan 2", "(Chỉ chữ cái)"),
        ("age", "17", "Nhập số nguyên từ 18 đến 99"),
        ("ratio", "1.5", "Nhập số từ 0 đến 1"),
        ("support", "counselling loan job", "Chọn từ 1 đến 2 mục"),
        ("household/members", "0", "Nhập số nguyên không nhỏ hơn 1"),
        ("person_uic", "Nguyễn/1985", "Mã UIC"),
    ] {
        let mut answers: String = EVERY_HEAD
            .lines()
            .filter(|l| !l.starts_with(&format!("{field}=")))
            .map(|l| format!("{l}\n"))
            .collect();
        answers.push_str(&format!("{field}={value}\n{two_visits}"));
        refused(&filler, &def, &answers, message);
    }
}

#[test]
fn every_kind_of_show_if_agrees_with_the_server() {
    let Some(filler) = common::filler() else {
        return;
    };
    let def = common::show_if_form();
    let all_shown = "dh_place=hk_01\ntopic=other\ntopic_other=ma túy\nsupport=loan job\n\
                     loan_amount=5000\nwork_note=w\ncrowd=false\ncrowd_note=c\nchained=ch\n\
                     where=b\nwhere_note=n\n\
                     contacts[1]/counselled=false\ncontacts[1]/why_not=bận\ncontacts[1]/loan_ok=true\n\
                     contacts[2]/counselled=true\ncontacts[2]/why_not=never asked\ncontacts[2]/loan_ok=false\n";
    round_trip(
        &filler,
        &def,
        all_shown,
        &[],
        json!({
            "topic": "other", "topic_other": "ma túy", "support": ["loan", "job"],
            "loan_amount": 5000, "work_note": "w", "crowd": false, "crowd_note": "c",
            "chained": "ch", "where": "b", "where_note": "n",
            "contacts": [
                {"counselled": false, "why_not": "bận", "loan_ok": true},
                {"counselled": true, "loan_ok": false},
            ],
        }),
    );
    // Everything conditional hidden; `chained` follows the hidden loan amount, and the
    // contacts' `loan_ok` reads it from outside the repeat.
    let all_hidden = "dh_place=hk_01\ntopic=hiv\ntopic_other=x\nsupport=rehab\nloan_amount=5000\n\
                      work_note=w\ncrowd=true\ncrowd_note=x\nchained=x\nwhere=a\nwhere_note=x\n\
                      contacts[1]/counselled=true\ncontacts[1]/loan_ok=true\n";
    round_trip(
        &filler,
        &def,
        all_hidden,
        &[],
        json!({
            "topic": "hiv", "support": ["rehab"], "work_note": "w", "crowd": true, "where": "a",
            "contacts": [{"counselled": true}],
        }),
    );
    // A small loan: shown, but not enough for the contacts' question.
    let small_loan =
        "dh_place=hk_01\ntopic=hiv\nsupport=loan\nloan_amount=500\nchained=ch\ncrowd=true\n\
                      contacts[1]/counselled=true\ncontacts[1]/loan_ok=true\n";
    round_trip(
        &filler,
        &def,
        small_loan,
        &[],
        json!({
            "topic": "hiv", "support": ["loan"], "loan_amount": 500, "chained": "ch",
            "crowd": true, "contacts": [{"counselled": true}],
        }),
    );
    // A required question that is shown must be answered.
    refused(
        &filler,
        &def,
        "dh_place=hk_01\ntopic=other\ncrowd=true\n",
        "required question unanswered: /data/topic_other",
    );
}

#[test]
fn an_edit_names_the_submission_it_replaces() {
    let Some(filler) = common::filler() else {
        return;
    };
    let def = bundled(FormKind::SupportVisit);
    let answers =
        "dh_place=hk_01\nvisit_date=2025-07-14\nperson_uic=LEVAN1985M\nsupport=counselling\n";
    let old = "uuid:6f1c1f3e-2b7a-4b7e-9d0a-1c2d3e4f5a6b";
    let parsed = round_trip(
        &filler,
        &def,
        answers,
        &["--deprecated-id", old],
        json!({"visit_date": "2025-07-14", "person_uic": "LEVAN1985M", "support": ["counselling"]}),
    );
    assert_eq!(parsed.deprecated_id.as_deref(), Some(old));
    assert_ne!(parsed.instance_id, old);
    let Filled::Submitted(xml) = fill(&filler, &def.to_xform(), answers, &["--deprecated-id", old])
    else {
        panic!("refused");
    };
    let header = instance_header(&xml).unwrap();
    assert_eq!(header.deprecated_id.as_deref(), Some(old));
    assert_eq!(
        (header.form_id.as_str(), header.version),
        ("support_visit", 1)
    );
    // Read with another form's definition, the same submission is refused.
    let other = bundled(FormKind::GroupSession);
    assert!(parse_instance(&other, &xml).is_err());
}
