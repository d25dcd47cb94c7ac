//! Submission intake and reading. A submission arrives with the id the phone made, so a
//! retry over a flaky link is answered from what is stored; the submission and every
//! record extracted from it (contacts, distributions, referrals, handoffs, sessions,
//! support actions) commit in one transaction. Raw UICs never reach the database: they
//! are normalised and replaced by their keyed hash before anything is written.
//!
//! `intake` takes a submission in (validation, the place, the idempotent store),
//! `extraction` writes the records a submission's typed answers stand for, `reading`
//! answers lists and details in the caller's scope, and `wire` turns stored rows into
//! the wire types.

mod extraction;
mod intake;
mod reading;
mod wire;

pub(crate) use extraction::*;
pub use intake::*;
pub use reading::*;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use shared_models::ReviewStatus;

use crate::error::{ApiError, ApiResult};

/// Letters and digits a person cannot misread on a paper slip (no I, O, 0, 1).
pub const REFERRAL_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Device clocks drift; a completion time further ahead than this is refused.
pub(super) const MAX_CLOCK_AHEAD: Duration = Duration::hours(24);

/// A fresh referral code, `XXXX-XXXX` from [`REFERRAL_ALPHABET`]: random, never derived
/// from the person (40 bits, so collisions are rare and retried).
pub fn new_referral_code() -> String {
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let idx = rng.gen_range(0..REFERRAL_ALPHABET.len());
        code.push(char::from(REFERRAL_ALPHABET[idx]));
    }
    code
}

pub(super) fn hmac_hex(key: &[u8], data: &[u8]) -> ApiResult<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("HMAC key: {e}")))?;
    mac.update(data);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// The keyed hash of a normalised UIC: what the database keeps instead of the code.
pub fn uic_hash(key: &[u8], normalized: &str) -> ApiResult<String> {
    hmac_hex(key, format!("uic:v1:{normalized}").as_bytes())
}

/// The time now, to the microsecond: what both databases keep, so a cursor made from a
/// stored time compares equal to it (SQLite would otherwise keep nanoseconds as text).
pub fn now_micros() -> DateTime<Utc> {
    to_micros(Utc::now())
}

/// A time to the microsecond, as PostgreSQL keeps it (and, so that both databases hold
/// the same, as SQLite is given it).
pub fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::DurationRound;
    at.duration_trunc(Duration::microseconds(1)).unwrap_or(at)
}

/// Parses a stored status.
pub fn status_of(s: &str) -> ApiResult<ReviewStatus> {
    ReviewStatus::parse(s)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unknown review status {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referral_codes_use_the_unambiguous_alphabet() {
        for _ in 0..200 {
            let code = new_referral_code();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert!(code
                .chars()
                .filter(|c| *c != '-')
                .all(|c| REFERRAL_ALPHABET.contains(&(c as u8))));
        }
    }

    #[test]
    fn uic_hash_is_keyed() {
        let a = uic_hash(b"key-one-0123456789abcdef01234567", "NGTHDA90F").expect("hash");
        let b = uic_hash(b"key-two-0123456789abcdef01234567", "NGTHDA90F").expect("hash");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }
}
