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

/// The UIC rule as a regular expression over the raw value, in the syntax Java's and
/// Rust's engines read alike, for ODK Collect's `regex()` (whole-value match): any number
/// of separators (Unicode whitespace, `-`, `_`, `.`, combining marks) around 6 to 20
/// letters or digits that fold to `[A-Z0-9]`. Exactly the values [`normalize_uic`] takes.
pub(crate) fn portable_pattern() -> String {
    // Rust's `char::is_whitespace` is Unicode's White_Space, listed out because Java's
    // `\s` means only ASCII whitespace.
    let separators = "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\-_.\\x{300}-\\x{36F}";
    let mut folded: Vec<u32> = FOLDS
        .iter()
        .flat_map(|(_, letters)| letters.chars())
        .map(u32::from)
        .collect();
    folded.sort_unstable();
    // Runs of consecutive code points as ranges: most of them sit in U+1EA0..U+1EF9.
    let mut letters = String::from("A-Za-z0-9");
    let mut i = 0;
    while let Some(&start) = folded.get(i) {
        let mut end = start;
        while folded.get(i + 1) == Some(&(end + 1)) {
            end += 1;
            i += 1;
        }
        if end > start {
            letters.push_str(&format!("\\x{{{start:X}}}-\\x{{{end:X}}}"));
        } else {
            letters.push_str(&format!("\\x{{{start:X}}}"));
        }
        i += 1;
    }
    format!("(?:[{separators}]*[{letters}]){{{UIC_MIN_LEN},{UIC_MAX_LEN}}}[{separators}]*")
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
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn the_portable_pattern_takes_exactly_what_normalizes() {
        let pattern = regex::Regex::new(&format!("^(?:{})$", portable_pattern())).unwrap();
        let mut samples: Vec<String> = [
            "Nguyễn Thị-Đào 1990 F",
            "hoa.lan_85-m",
            "  Lê Văn 1985 M ",
            "ab-1",
            "",
            "A1B2C",
            "A1B2C3",
            "Müller 1990",
            "ABC/1990",
            "NGUYEN😀1990",
            "Nguye\u{0302}\u{0303}n 1990",
            "ABC\u{3000}123",
            "ABC\u{200B}123",
            "ABC\u{85}123\n",
            "ABC'123",
            "ǅABC123",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        samples.push("A".repeat(20));
        samples.push("A".repeat(21));
        samples.push(format!("{} {}", "A".repeat(10), "9".repeat(10)));
        // Every character of the Basic Multilingual Plane, in the middle of a good code.
        for c in (0..=0xFFFF_u32).filter_map(char::from_u32) {
            samples.push(format!("ABC{c}123"));
        }
        for sample in &samples {
            assert_eq!(
                pattern.is_match(sample),
                normalize_uic(sample).is_some(),
                "{sample:?}"
            );
        }
    }
}
