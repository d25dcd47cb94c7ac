//! What the XForm says to the field worker in words, in Vietnamese and English: the
//! labels of the XForm's own questions and every constraint message. Collect shows a
//! constraint message when a value is refused, so each one says what a good value is,
//! in the worker's terms, never an XPath expression.

use crate::definition::{Field, FieldType, Localized};
use crate::uic::{UIC_MAX_LEN, UIC_MIN_LEN};

fn localized(vi: impl Into<String>, en: impl Into<String>) -> Localized {
    Localized {
        vi: vi.into(),
        en: en.into(),
    }
}

/// The default translation's name in Collect's language menu.
pub(super) const VI: &str = "Tiếng Việt (vi)";
/// The other translation's name.
pub(super) const EN: &str = "English (en)";

/// The label of the place question every form starts with.
pub(super) fn place_label() -> Localized {
    localized("Nơi diễn ra", "Where it happened")
}

/// The hint of the place question.
pub(super) fn place_hint() -> Localized {
    localized(
        "Điểm nóng hoặc phường, xã nơi diễn ra (không dùng vị trí GPS)",
        "The hotspot or ward where it happened (not the phone's GPS position)",
    )
}

/// What Collect says when a required question is left empty.
pub(super) fn required() -> Localized {
    localized(
        "Câu hỏi này cần được trả lời",
        "This question needs an answer",
    )
}

/// The two answers of a `boolean` field.
pub(super) fn yes() -> Localized {
    localized("Có", "Yes")
}

/// See [`yes`].
pub(super) fn no() -> Localized {
    localized("Không", "No")
}

/// The label of the read-only question that counts a repeat's entries.
pub(super) fn count_label(repeat: &Field) -> Localized {
    localized(
        format!("Số mục «{}» đã nhập", repeat.label.vi),
        format!("Entries in “{}” so far", repeat.label.en),
    )
}

/// A whole number as people read it (`1.000.000` in Vietnamese, `1,000,000` in
/// English); other numbers as Rust writes them, which never uses an exponent.
fn number(n: f64, thousands: char) -> String {
    if n.fract() != 0.0 || n.abs() >= 1e15 {
        return n.to_string();
    }
    let digits = format!("{:.0}", n.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0.0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(thousands);
        }
        out.push(d);
    }
    out
}

fn vi_number(n: f64) -> String {
    number(n, '.')
}

fn en_number(n: f64) -> String {
    number(n, ',')
}

/// The rule of a number field with bounds.
pub(super) fn number_rule(field: &Field) -> Option<Localized> {
    let (vi_kind, en_kind) = if field.field_type == FieldType::Integer {
        ("số nguyên", "a whole number")
    } else {
        ("số", "a number")
    };
    let (vi, en) = match (field.min, field.max) {
        (Some(a), Some(b)) => (
            format!("từ {} đến {}", vi_number(a), vi_number(b)),
            format!("from {} to {}", en_number(a), en_number(b)),
        ),
        (Some(a), None) => (
            format!("không nhỏ hơn {}", vi_number(a)),
            format!("of at least {}", en_number(a)),
        ),
        (None, Some(b)) => (
            format!("không lớn hơn {}", vi_number(b)),
            format!("of at most {}", en_number(b)),
        ),
        (None, None) => return None,
    };
    Some(localized(
        format!("Nhập {vi_kind} {vi}"),
        format!("Enter {en_kind} {en}"),
    ))
}

/// The rule of a text field with lengths and/or a pattern; the field's hint, when it
/// has one, is how the worker learns the pattern's format.
pub(super) fn text_rule(field: &Field) -> Option<Localized> {
    let mut vi = Vec::new();
    let mut en = Vec::new();
    match (field.min_length.filter(|n| *n > 0), field.max_length) {
        (Some(a), Some(b)) if a == b => {
            vi.push(format!("có đúng {a} ký tự"));
            en.push(format!("have exactly {a} characters"));
        }
        (Some(a), Some(b)) => {
            vi.push(format!("có từ {a} đến {b} ký tự"));
            en.push(format!("have {a} to {b} characters"));
        }
        (Some(a), None) => {
            vi.push(format!("có ít nhất {a} ký tự"));
            en.push(format!("have at least {a} characters"));
        }
        (None, Some(b)) => {
            vi.push(format!("có tối đa {b} ký tự"));
            en.push(format!("have at most {b} characters"));
        }
        (None, None) => {}
    }
    if field.pattern.is_some() {
        match &field.hint {
            Some(hint) => {
                vi.push(format!("đúng định dạng quy định ({})", hint.vi));
                en.push(format!("be in the required format ({})", hint.en));
            }
            None => {
                vi.push("đúng định dạng quy định".to_owned());
                en.push("be in the required format".to_owned());
            }
        }
    }
    if vi.is_empty() {
        return None;
    }
    Some(localized(
        format!("Cần {}.", vi.join(" và ")),
        format!("Must {}.", en.join(" and ")),
    ))
}

/// The rule of a `select_multiple` with a count of choices.
pub(super) fn selection_rule(field: &Field) -> Option<Localized> {
    let (vi, en) = match (field.min, field.max) {
        (Some(a), Some(b)) if a == b => (
            format!("Chọn đúng {} mục", vi_number(a)),
            format!("Choose exactly {}", en_number(a)),
        ),
        (Some(a), Some(b)) => (
            format!("Chọn từ {} đến {} mục", vi_number(a), vi_number(b)),
            format!("Choose {} to {} options", en_number(a), en_number(b)),
        ),
        (Some(a), None) => (
            format!("Chọn ít nhất {} mục", vi_number(a)),
            format!("Choose at least {}", en_number(a)),
        ),
        (None, Some(b)) => (
            format!("Chọn tối đa {} mục", vi_number(b)),
            format!("Choose at most {}", en_number(b)),
        ),
        (None, None) => return None,
    };
    Some(localized(vi, en))
}

/// The rule of a repeat's entry count (`min` already includes `required`).
pub(super) fn count_rule(min: u32, max: Option<u32>) -> Localized {
    let entries = |n: u32| if n == 1 { "entry" } else { "entries" };
    match (min, max) {
        (a, Some(b)) if a == b => localized(
            format!("Cần có đúng {a} mục"),
            format!("Needs exactly {a} {}", entries(a)),
        ),
        (0, Some(b)) => localized(
            format!("Chỉ được có tối đa {b} mục"),
            format!("Allows at most {b} {}", entries(b)),
        ),
        (a, Some(b)) => localized(
            format!("Cần có từ {a} đến {b} mục"),
            format!("Needs {a} to {b} entries"),
        ),
        (a, None) => localized(
            format!("Cần có ít nhất {a} mục"),
            format!("Needs at least {a} {}", entries(a)),
        ),
    }
}

/// What a UIC is and which values are refused.
pub(super) fn uic_rule() -> Localized {
    localized(
        format!(
            "Mã UIC được tạo từ tên bố, tên mẹ, năm sinh và giới tính: chỉ gồm chữ cái, chữ \
             số, dấu cách và các dấu - _ . , với {UIC_MIN_LEN} đến {UIC_MAX_LEN} chữ cái và \
             chữ số."
        ),
        format!(
            "A UIC is built from the parents' given names, birth year and sex: only letters, \
             digits, spaces and - _ . , with {UIC_MIN_LEN} to {UIC_MAX_LEN} letters and digits."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(vi_number(1_000_000_000.0), "1.000.000.000");
        assert_eq!(en_number(1_000_000_000.0), "1,000,000,000");
        assert_eq!(en_number(500.0), "500");
        assert_eq!(en_number(-1500.0), "-1,500");
        assert_eq!(en_number(0.25), "0.25");
    }
}
