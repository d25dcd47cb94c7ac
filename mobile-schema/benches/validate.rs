//! How long the server spends checking one outreach visit: 8 contacts, each with
//! referrals (one with "other" and its free text), and two evidence photos. Criterion's
//! time per iteration is the time per visit.

use criterion::{criterion_group, criterion_main, Criterion};
use mobile_schema::{bundled_forms, FormDefinition, FormKind};
use serde_json::{json, Value};
use std::hint::black_box;

fn outreach_visit() -> Option<FormDefinition> {
    bundled_forms()
        .into_iter()
        .find(|f| f.kind == FormKind::OutreachVisit)
}

fn visit_with_eight_contacts() -> Value {
    let contacts: Vec<Value> = (0..8)
        .map(|i| {
            let mut contact = json!({
                "uic": format!("Nguyễn Thị Đào {} F", 1980 + i),
                "age_band": "25_34",
                "condoms_male": 10 + i,
                "condoms_female": 2,
                "lubricant": 10,
                "self_test_kits": 1,
                "iec_materials": 3,
                "counselled": i % 2 == 0,
                "referrals": ["hiv_test", "prep"],
            });
            if i == 7 {
                contact["referrals"] = json!(["sti_exam", "other"]);
                contact["referral_other"] = json!("Tư vấn pháp lý");
            }
            contact
        })
        .collect();
    json!({
        "visit_date": "2025-07-14",
        "place_type": "karaoke",
        "contacts": contacts,
        "photos": [{"photo": "a".repeat(64)}, {"photo": "b".repeat(64)}],
    })
}

fn validate(c: &mut Criterion) {
    let (Some(form), answers) = (outreach_visit(), visit_with_eight_contacts()) else {
        panic!("the bundled outreach_visit form is missing");
    };
    assert_eq!(form.validate_answers(&answers), Ok(()));
    c.bench_function("validate_answers/outreach_visit_8_contacts", |b| {
        b.iter(|| black_box(&form).validate_answers(black_box(&answers)))
    });
}

criterion_group!(benches, validate);
criterion_main!(benches);
