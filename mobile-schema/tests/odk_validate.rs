//! ODK Validate (the JavaRosa parser ODK tools run on every form) accepts the XForm of
//! every bundled form and of definitions using every field type and constraint, and
//! refuses a broken one, so a pass here means something.
//!
//! Needs `DONGHANH_TEST_ODK_VALIDATE_JAR` (ODK_Validate.jar) and `java`; skipped without
//! them, except in CI or under `DONGHANH_TEST_REQUIRE_SERVICES`, where that fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mobile_schema::bundled_forms;

fn validate(jar: &Path, file: &Path) -> Output {
    Command::new("java")
        .arg("-Djava.awt.headless=true")
        .arg("-jar")
        .arg(jar)
        .arg(file)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, xml: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, xml).unwrap();
    file
}

#[test]
fn every_generated_xform_is_valid() {
    let Some(jar) = common::validate_jar() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let forms: Vec<_> = bundled_forms()
        .into_iter()
        .chain(common::coverage_forms())
        .collect();
    assert_eq!(forms.len(), 6);
    for form in forms {
        let file = write(
            dir.path(),
            &format!("{}.xml", form.form_id),
            &form.to_xform(),
        );
        let out = validate(&jar, &file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains(">> Xform is valid!"),
            "{}: {}\n{stdout}\n{stderr}",
            form.form_id,
            out.status
        );
        // JavaRosa warns on stderr about what it ignores (an unknown attribute, a
        // hint where none is read): the XForm should give it nothing to ignore.
        assert!(
            !stderr.to_lowercase().contains("warning"),
            "{}: {stderr}",
            form.form_id
        );
    }
}

#[test]
fn a_broken_xform_is_refused() {
    let Some(jar) = common::validate_jar() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let good = common::show_if_form().to_xform();
    // A relevance that is not XPath (Validate does not notice a path to no node).
    let broken = good.replacen(
        "relevant=\"/data/topic = ",
        "relevant=\"/data/topic = = ",
        1,
    );
    assert_ne!(good, broken);
    let out = validate(&jar, &write(dir.path(), "broken.xml", &broken));
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let unclosed = write(dir.path(), "unclosed.xml", &good[..good.len() - 20]);
    assert!(!validate(&jar, &unclosed).status.success());
}
