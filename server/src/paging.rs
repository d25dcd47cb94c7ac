//! Paging: the checked `limit` of every list, and the one codec every cursor the server
//! hands out goes through (base64url, no padding, of a versioned prefix and its
//! payload), so a cursor is opaque to clients and a forged one is a 400, not a guess.
//! Lists keyed by id page with [`PageRequest`]; the submission lists and the sync feed
//! carry their own payloads through [`seal`] and [`open`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use shared_models::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use uuid::Uuid;

use crate::error::ApiError;

/// The cursor for `payload` under `prefix` (such as `c1:`, `s1:`, `y3.`).
pub fn seal(prefix: &str, payload: std::fmt::Arguments<'_>) -> String {
    URL_SAFE_NO_PAD.encode(format!("{prefix}{payload}"))
}

/// The text a cursor made by [`seal`] carries, prefix included; `None` when it is not
/// base64url of UTF-8 (never one this server issued).
pub fn open(cursor: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(raw).ok()
}

/// Splits one extra row (fetched as `limit + 1`) off `rows`: the page, and the cursor
/// after its last row when there is more.
pub fn split<M, O>(
    mut rows: Vec<M>,
    limit: u64,
    cursor_of: impl Fn(&M) -> String,
    out: impl Fn(M) -> O,
) -> shared_models::Page<O> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    shared_models::Page {
        items: rows.into_iter().map(out).collect(),
        next_cursor,
    }
}

/// A checked `limit` of a list: absent means the default, outside 1..=200 is a 400.
pub fn page_limit(limit: Option<u64>) -> Result<u64, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
        return Err(ApiError::bad_param(
            "limit",
            "out_of_range",
            format!("must be between 1 and {MAX_PAGE_LIMIT}"),
        ));
    }
    Ok(limit)
}

/// A checked page request: the id after which to continue, and how many rows to return.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub after: Option<Uuid>,
    pub limit: u64,
}

impl PageRequest {
    /// Checks `cursor` and `limit` from a query string.
    pub fn parse(cursor: Option<&str>, limit: Option<u64>) -> Result<Self, ApiError> {
        let limit = page_limit(limit)?;
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                ApiError::bad_param("cursor", "invalid", "not a cursor this server issued")
            })?),
        };
        Ok(PageRequest { after, limit })
    }

    /// Splits one extra row (fetched as `limit + 1`) into the page and its next cursor.
    pub fn finish<M, O>(
        &self,
        rows: Vec<M>,
        id_of: impl Fn(&M) -> Uuid,
        out: impl Fn(M) -> O,
    ) -> shared_models::Page<O> {
        split(rows, self.limit, |m| encode_cursor(id_of(m)), out)
    }
}

const CURSOR_PREFIX: &str = "c1:";

/// An opaque cursor for the row with this id.
pub fn encode_cursor(id: Uuid) -> String {
    seal(CURSOR_PREFIX, format_args!("{id}"))
}

fn decode_cursor(cursor: &str) -> Option<Uuid> {
    Uuid::parse_str(open(cursor)?.strip_prefix(CURSOR_PREFIX)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let id = Uuid::now_v7();
        let page = PageRequest::parse(Some(&encode_cursor(id)), Some(10)).expect("valid cursor");
        assert_eq!(page.after, Some(id));
        assert!(PageRequest::parse(Some("garbage"), None).is_err());
        assert!(PageRequest::parse(None, Some(0)).is_err());
        assert!(PageRequest::parse(None, Some(MAX_PAGE_LIMIT + 1)).is_err());
    }

    #[test]
    fn cursors_keep_their_wire_form() {
        // Phones and consoles hold cursors across upgrades: the encoding must not move.
        let id = Uuid::nil();
        assert_eq!(
            encode_cursor(id),
            URL_SAFE_NO_PAD.encode(format!("c1:{id}"))
        );
        assert_eq!(
            open(&seal("s1:", format_args!("{}:{id}", 5))).as_deref(),
            Some(&*format!("s1:5:{id}"))
        );
        assert_eq!(open("not base64!"), None);
    }
}
