//! Compiled `pattern` regular expressions, anchored so they match a whole value, and
//! cached: the server checks the same few patterns on every submission, and compiling
//! one costs far more than matching it.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use regex::Regex;

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
