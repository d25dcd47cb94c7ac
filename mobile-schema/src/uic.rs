//! The client's unique identifier code (UIC) as the phone builds it from parents' given
//! names, birth year and sex, and its one normal form. The server hashes only the
//! normal form, so "Nguyễn Thị-Đào 1990 F" and "NGUYEN THI DAO 1990 F" count as the
//! same person; this module owns that folding and nothing else (no hashing here).

/// Shortest normalized UIC.
pub const UIC_MIN_LEN: usize = 6;
/// Longest normalized UIC.
pub const UIC_MAX_LEN: usize = 20;

/// Every precomposed Vietnamese letter with a diacritic, lower and upper case, by the
/// ASCII letter it folds to.
const FOLDS: [(char, &str); 7] = [
    ('A', "àáảãạăằắẳẵặâầấẩẫậÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ"),
    ('E', "èéẻẽẹêềếểễệÈÉẺẼẸÊỀẾỂỄỆ"),
    ('I', "ìíỉĩịÌÍỈĨỊ"),
    ('O', "òóỏõọôồốổỗộơờớởỡợÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ"),
    ('U', "ùúủũụưừứửữựÙÚỦŨỤƯỪỨỬỮỰ"),
    ('Y', "ỳýỷỹỵỲÝỶỸỴ"),
    ('D', "đĐ"),
];

/// Normalizes a raw UIC: uppercase, Vietnamese diacritics folded (`Đ`/`đ` → `D`),
/// spaces, `-`, `_` and `.` dropped; `None` unless 6 to 20 characters of `[A-Z0-9]` remain.
///
/// Combining marks (U+0300–U+036F) are dropped too, so a decomposed (NFD) input from a
/// keyboard that sends base letter + accent folds the same as the precomposed one.
pub fn normalize_uic(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_whitespace() || matches!(c, '-' | '_' | '.') || is_combining_mark(c) {
            continue;
        }
        let folded = if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            fold(c)?
        };
        out.push(folded);
        if out.len() > UIC_MAX_LEN {
            return None;
        }
    }
    (out.len() >= UIC_MIN_LEN).then_some(out)
}

fn fold(c: char) -> Option<char> {
    FOLDS
        .iter()
        .find(|(_, letters)| letters.contains(c))
        .map(|(base, _)| *base)
}

fn is_combining_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_a_typical_code() {
        assert_eq!(
            normalize_uic("Nguyễn Thị-Đào 1990 F").as_deref(),
            Some("NGUYENTHIDAO1990F")
        );
        assert_eq!(normalize_uic("hoa.lan_85-m").as_deref(), Some("HOALAN85M"));
        assert_eq!(
            normalize_uic("  Lê Văn 1985 M ").as_deref(),
            Some("LEVAN1985M")
        );
    }

    #[test]
    fn d_with_stroke_folds_to_d() {
        assert_eq!(normalize_uic("đđđ111").as_deref(), Some("DDD111"));
        assert_eq!(normalize_uic("ĐĐĐ111").as_deref(), Some("DDD111"));
    }

    #[test]
    fn decomposed_input_folds_like_precomposed() {
        // "Nguyễn" with e + circumflex + tilde as combining marks.
        assert_eq!(
            normalize_uic("Nguye\u{0302}\u{0303}n 1990"),
            normalize_uic("Nguyễn 1990")
        );
    }

    #[test]
    fn refuses_too_short_too_long_and_foreign_letters() {
        assert_eq!(normalize_uic("ab-1"), None);
        assert_eq!(normalize_uic(""), None);
        assert_eq!(normalize_uic("A1B2C"), None);
        assert_eq!(normalize_uic("A1B2C3").as_deref(), Some("A1B2C3"));
        assert_eq!(
            normalize_uic(&"A".repeat(20)).as_deref(),
            Some(&*"A".repeat(20))
        );
        assert_eq!(normalize_uic(&"A".repeat(21)), None);
        assert_eq!(normalize_uic("Müller 1990"), None);
        assert_eq!(normalize_uic("ABC/1990"), None);
        assert_eq!(normalize_uic("NGUYEN😀1990"), None);
    }

    #[test]
    fn all_134_diacritic_letters_fold_to_their_base() {
        let lower_vowels: [(char, &str); 6] = [
            ('A', "àáảãạăằắẳẵặâầấẩẫậ"),
            ('E', "èéẻẽẹêềếểễệ"),
            ('I', "ìíỉĩị"),
            ('O', "òóỏõọôồốổỗộơờớởỡợ"),
            ('U', "ùúủũụưừứửữự"),
            ('Y', "ỳýỷỹỵ"),
        ];
        let mut seen = 0;
        for (base, letters) in lower_vowels {
            for lower in letters.chars() {
                let upper: String = lower.to_uppercase().collect();
                assert_ne!(upper, lower.to_string(), "{lower} has an upper case");
                for letter in [lower.to_string(), upper] {
                    let folded = normalize_uic(&format!("{letter}{letter}{letter}123"));
                    assert_eq!(folded, Some(format!("{base}{base}{base}123")), "{letter}");
                    seen += 1;
                }
            }
        }
        for letter in ["đ", "Đ"] {
            assert_eq!(
                normalize_uic(&format!("{letter}{letter}{letter}123")).as_deref(),
                Some("DDD123")
            );
            seen += 1;
        }
        assert_eq!(seen, 134);
    }
}
