//! Compiled `pattern` regular expressions, anchored so they match a whole value, and
//! cached: the server checks the same few patterns on every submission, and compiling
//! one costs far more than matching it.
//!
//! Also the portable subset: ODK Collect checks the same `pattern` on the phone with
//! JavaRosa's `regex()`, which is `java.util.regex.Pattern.matches` (whole value, like
//! our anchoring). The two engines agree only on a subset of the syntax (`\d` is every
//! Unicode digit here and `[0-9]` in Java, `.` stops at `\r` in Java and not here, ...),
//! so a definition may only use that subset, and the XForm carries a Java spelling of
//! the pattern printed from its syntax tree, not the admin's text.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};

use regex::Regex;
use regex_syntax::ast::{
    self, Assertion, AssertionKind, Ast, ClassBracketed, ClassSet, ClassSetItem, GroupKind,
    RepetitionKind, RepetitionRange,
};

/// Past this many distinct patterns the cache starts over, so admin-written patterns
/// cannot grow it without bound.
const CACHE_LIMIT: usize = 256;

static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();

/// `pattern` wrapped so it must match the whole value: `^(?:pattern)$`.
pub(crate) fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// The anchored, compiled form of a field's `pattern`, from the cache when possible.
pub(crate) fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(regex) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
    {
        return Ok(regex.clone());
    }
    let regex = Regex::new(&anchored(pattern))?;
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(pattern.to_owned(), regex.clone());
    Ok(regex)
}

/// `pattern` written for `java.util.regex`, meaning there what it means here; `Err`
/// says, for the admin, what to write instead. The result is not anchored, because
/// JavaRosa's `regex()` uses `Pattern.matches`, which already matches the whole value.
///
/// Only ASCII letters, digits, `_` and the space are written as themselves: every other
/// character is escaped (`\-`, `\x{27}` for a quote), so the text is safe inside an
/// XPath string literal and nothing depends on Java's rules for unescaped punctuation.
pub(crate) fn to_java(pattern: &str) -> Result<String, String> {
    let ast = ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|err| format!("pattern does not parse: {}", err.kind()))?;
    let mut out = String::with_capacity(pattern.len() * 2);
    print(&ast, pattern, &mut out)?;
    Ok(out)
}

/// The part of `pattern` a span covers, for messages.
fn snippet(pattern: &str, span: &ast::Span) -> String {
    pattern
        .get(span.start.offset..span.end.offset)
        .unwrap_or(pattern)
        .to_owned()
}

fn print(node: &Ast, pattern: &str, out: &mut String) -> Result<(), String> {
    match node {
        Ast::Empty(_) => {}
        Ast::Literal(literal) => push_literal(literal.c, out),
        // Rust's `.` is anything but `\n`; Java's also stops at `\r`, U+0085, U+2028 and
        // U+2029, so spell out Rust's meaning.
        Ast::Dot(_) => out.push_str("[^\\n]"),
        Ast::Assertion(assertion) => print_assertion(assertion, pattern, out)?,
        Ast::ClassPerl(class) => return Err(perl_class_advice(&snippet(pattern, &class.span))),
        Ast::ClassUnicode(class) => {
            return Err(format!(
                "`{}`: Unicode classes differ between the server and the phone; list the \
                 characters or ranges instead, e.g. [a-zà-ỹ]",
                snippet(pattern, &class.span)
            ))
        }
        Ast::ClassBracketed(class) => print_class(class, pattern, out)?,
        Ast::Repetition(repetition) => {
            out.push_str("(?:");
            print(&repetition.ast, pattern, out)?;
            out.push(')');
            match &repetition.op.kind {
                RepetitionKind::ZeroOrOne => out.push('?'),
                RepetitionKind::ZeroOrMore => out.push('*'),
                RepetitionKind::OneOrMore => out.push('+'),
                RepetitionKind::Range(RepetitionRange::Exactly(n)) => {
                    let _ = write!(out, "{{{n}}}");
                }
                RepetitionKind::Range(RepetitionRange::AtLeast(n)) => {
                    let _ = write!(out, "{{{n},}}");
                }
                RepetitionKind::Range(RepetitionRange::Bounded(n, m)) => {
                    let _ = write!(out, "{{{n},{m}}}");
                }
            }
            if !repetition.greedy {
                out.push('?');
            }
        }
        Ast::Group(group) => {
            if let GroupKind::NonCapturing(flags) = &group.kind {
                if !flags.items.is_empty() {
                    return Err(flags_advice(&snippet(pattern, &flags.span)));
                }
            }
            // Captures mean nothing to a yes/no match: every group is written `(?:..)`.
            out.push_str("(?:");
            print(&group.ast, pattern, out)?;
            out.push(')');
        }
        Ast::Flags(flags) => return Err(flags_advice(&snippet(pattern, &flags.span))),
        Ast::Alternation(alternation) => {
            for (i, branch) in alternation.asts.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                print(branch, pattern, out)?;
            }
        }
        Ast::Concat(concat) => {
            for part in &concat.asts {
                print(part, pattern, out)?;
            }
        }
    }
    Ok(())
}

fn print_assertion(assertion: &Assertion, pattern: &str, out: &mut String) -> Result<(), String> {
    match assertion.kind {
        // Without the multi-line flag `^` is the start of the text in both engines.
        AssertionKind::StartLine => out.push('^'),
        // Rust's `$` is the very end; Java's `$` also matches before a final line break.
        AssertionKind::EndLine => out.push_str("\\z"),
        AssertionKind::StartText | AssertionKind::EndText => {
            return Err(format!(
                "`{}`: write ^ or $ instead (or nothing: a pattern always matches the whole value)",
                snippet(pattern, &assertion.span)
            ))
        }
        _ => {
            return Err(format!(
                "`{}`: word boundaries differ between the server and the phone; a pattern \
                 already matches the whole value, so describe the whole value instead",
                snippet(pattern, &assertion.span)
            ))
        }
    }
    Ok(())
}

fn print_class(class: &ClassBracketed, pattern: &str, out: &mut String) -> Result<(), String> {
    out.push('[');
    if class.negated {
        out.push('^');
    }
    match &class.kind {
        ClassSet::Item(item) => print_class_item(item, pattern, out)?,
        ClassSet::BinaryOp(op) => {
            return Err(format!(
                "`{}`: class operations (&&, --, ~~) are not portable; write one flat class \
                 listing the characters you mean",
                snippet(pattern, &op.span)
            ))
        }
    }
    out.push(']');
    Ok(())
}

fn print_class_item(item: &ClassSetItem, pattern: &str, out: &mut String) -> Result<(), String> {
    match item {
        ClassSetItem::Empty(_) => {}
        ClassSetItem::Literal(literal) => push_literal(literal.c, out),
        ClassSetItem::Range(range) => {
            push_literal(range.start.c, out);
            out.push('-');
            push_literal(range.end.c, out);
        }
        ClassSetItem::Union(union) => {
            for item in &union.items {
                print_class_item(item, pattern, out)?;
            }
        }
        ClassSetItem::Perl(class) => return Err(perl_class_advice(&snippet(pattern, &class.span))),
        ClassSetItem::Ascii(class) => {
            return Err(format!(
                "`{}`: POSIX classes are not portable; write the range instead, e.g. [A-Za-z] \
                 for [[:alpha:]] or [0-9] for [[:digit:]]",
                snippet(pattern, &class.span)
            ))
        }
        ClassSetItem::Unicode(class) => {
            return Err(format!(
                "`{}`: Unicode classes differ between the server and the phone; list the \
                 characters or ranges instead, e.g. [a-zà-ỹ]",
                snippet(pattern, &class.span)
            ))
        }
        ClassSetItem::Bracketed(class) => {
            return Err(format!(
                "`{}`: a class inside a class is not portable; write one flat class",
                snippet(pattern, &class.span)
            ))
        }
    }
    Ok(())
}

fn perl_class_advice(text: &str) -> String {
    let instead = match text.chars().nth(1).map(|c| c.to_ascii_lowercase()) {
        Some('d') => "[0-9] (or [^0-9])",
        Some('w') => "[A-Za-z0-9_] (or the letters you mean, e.g. [A-Za-zà-ỹ0-9_])",
        _ => "a space, or [ \\t] for a space or a tab",
    };
    format!(
        "`{text}` means more characters on the server than on the phone; write {instead} instead"
    )
}

fn flags_advice(text: &str) -> String {
    format!(
        "`{text}`: inline flags are not portable; for case-insensitivity list both cases, \
         e.g. [Aa]"
    )
}

/// One character for Java, outside or inside a class.
fn push_literal(c: char, out: &mut String) {
    if c.is_ascii_alphanumeric() || c == '_' || c == ' ' {
        out.push(c);
    } else if c.is_ascii_graphic() && c != '\'' && c != '"' {
        // Java: a backslash before any non-letter is that character itself.
        out.push('\\');
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_the_whole_value() {
        let code = compile("[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}").unwrap();
        assert!(code.is_match("AB2C-XY9Z"));
        assert!(!code.is_match("xAB2C-XY9Z"));
        assert!(!code.is_match("AB2C-XY9Zx"));
        // Alternation stays inside the anchors.
        let alt = compile("a|b").unwrap();
        assert!(alt.is_match("a") && !alt.is_match("ab"));
        assert!(compile("(unclosed").is_err());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod portable_tests {
    use super::*;

    #[test]
    fn the_portable_subset_prints_for_java() {
        for (rust, java) in [
            (
                "[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}",
                "(?:[A-HJ-NP-Z2-9]){4}\\-(?:[A-HJ-NP-Z2-9]){4}",
            ),
            ("a|b", "a|b"),
            ("0[0-9]{9}", "0(?:[0-9]){9}"),
            (
                "(ab)+?c*d{2,}e{1,3}?",
                "(?:(?:ab))+?(?:c)*(?:d){2,}(?:e){1,3}?",
            ),
            ("^a.b$", "^a[^\\n]b\\z"),
            ("[^a-c-]", "[^a-c\\-]"),
            ("it's \"x\"", "it\\x{27}s \\x{22}x\\x{22}"),
            ("[a-zà-ỹ]+", "(?:[a-z\\x{E0}-\\x{1EF9}])+"),
            ("\\.\\x{41}\\n", "\\.A\\x{A}"),
            ("(?P<code>[0-9])", "(?:[0-9])"),
            ("", ""),
        ] {
            assert_eq!(to_java(rust).as_deref(), Ok(java), "{rust}");
            // The printed form still means the same to Rust's engine.
            let printed = Regex::new(&format!("^(?:{})$", java.replace("\\z", "$"))).unwrap();
            let original = compile(rust).unwrap();
            for sample in [
                "AB2C-XY9Z",
                "a",
                "b",
                "ab",
                "0912345678",
                "abcdd",
                "a\nb",
                "axb",
                "it's \"x\"",
                "hoà",
                ".A\n",
                "7",
            ] {
                assert_eq!(
                    printed.is_match(sample),
                    original.is_match(sample),
                    "{rust} on {sample:?}"
                );
            }
        }
    }

    #[test]
    fn the_rest_is_refused_with_advice() {
        for (pattern, advice) in [
            ("\\d{4}", "[0-9]"),
            ("[\\d-]", "[0-9]"),
            ("\\w+", "[A-Za-z0-9_]"),
            ("a\\sb", "a space"),
            ("\\bword\\b", "word boundaries"),
            ("\\p{L}+", "Unicode classes"),
            ("[\\pL]", "Unicode classes"),
            ("[[:alpha:]]", "POSIX"),
            ("[a-z&&[^aeiou]]", "class operations"),
            ("[a[bc]]", "class inside a class"),
            ("(?i)abc", "inline flags"),
            ("(?i:a)b", "inline flags"),
            ("\\Aabc\\z", "write ^ or $"),
            ("(unclosed", "does not parse"),
        ] {
            let err = to_java(pattern).unwrap_err();
            assert!(err.contains(advice), "{pattern}: {err}");
        }
    }
}
