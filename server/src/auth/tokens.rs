//! Access tokens (HS256 JWT with `kid`, so keys can rotate) and refresh tokens (32
//! random bytes, handed out once and stored only as their SHA-256).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared_models::Role;
use uuid::Uuid;

use crate::config::JwtKeyConfig;
use crate::error::ApiError;

/// Seconds of clock difference tolerated between the server that signed a token and
/// the one that checks it (expiry and issue time).
pub const CLOCK_LEEWAY_SECS: i64 = 30;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    pub role: Role,
    pub org_unit: Uuid,
    pub exp: i64,
    pub iat: i64,
    pub jti: Uuid,
}

/// Signs with the first configured key; verifies with the key its `kid` names.
pub struct TokenKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: Vec<(String, DecodingKey)>,
    access_ttl_secs: i64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("signing_kid", &self.signing_kid)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Builds the key ring from configuration (which guarantees at least one key).
    pub fn new(cfg: &JwtKeyConfig, access_ttl: std::time::Duration) -> Result<Self, ApiError> {
        let (signing_kid, signing_key) = cfg
            .keys
            .first()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no JWT key configured")))?;
        Ok(TokenKeys {
            signing_kid: signing_kid.clone(),
            signing: EncodingKey::from_secret(signing_key.expose()),
            verifying: cfg
                .keys
                .iter()
                .map(|(kid, key)| (kid.clone(), DecodingKey::from_secret(key.expose())))
                .collect(),
            access_ttl_secs: access_ttl.as_secs() as i64,
        })
    }

    /// Seconds an access token lives.
    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs as u64
    }

    /// Signs an access token for this user.
    pub fn issue_access(
        &self,
        user_id: Uuid,
        role: Role,
        org_unit: Uuid,
    ) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            org_unit,
            iat: now,
            exp: now + self.access_ttl_secs,
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        encode(&header, &claims, &self.signing)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing token: {e}")))
    }

    /// Checks signature, algorithm and expiry, and refuses what this server never issues:
    /// an `iat` in the future (beyond [`CLOCK_LEEWAY_SECS`] of skew between servers) or a
    /// lifetime longer than the configured one. Any fault is the same 401.
    pub fn verify_access(&self, token: &str) -> Result<Claims, ApiError> {
        const INVALID: ApiError = ApiError::Unauthorized("invalid or expired access token");
        let header = decode_header(token).map_err(|_| INVALID)?;
        if header.alg != Algorithm::HS256 {
            return Err(INVALID);
        }
        let kid = header.kid.ok_or(INVALID)?;
        let key = self
            .verifying
            .iter()
            .find(|(k, _)| *k == kid)
            .map(|(_, key)| key)
            .ok_or(INVALID)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_LEEWAY_SECS as u64;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        let claims = decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|_| INVALID)?;
        let now = Utc::now().timestamp();
        if claims.iat > now + CLOCK_LEEWAY_SECS
            || claims.exp < claims.iat
            || claims.exp - claims.iat > self.access_ttl_secs
        {
            return Err(INVALID);
        }
        Ok(claims)
    }
}

/// A new refresh token: what the client gets, and the hash the database keeps.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// The SHA-256 (hex) under which a refresh token is stored.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretKey;

    fn keys(kids: &[(&str, u8)]) -> TokenKeys {
        let cfg = JwtKeyConfig {
            keys: kids
                .iter()
                .map(|(k, b)| (k.to_string(), SecretKey::new(vec![*b; 32])))
                .collect(),
        };
        TokenKeys::new(&cfg, std::time::Duration::from_secs(900)).expect("keys")
    }

    #[test]
    fn rotated_keys_still_verify_and_unknown_kids_do_not() {
        let old = keys(&[("old", 1)]);
        let token = old
            .issue_access(Uuid::now_v7(), Role::Volunteer, Uuid::now_v7())
            .expect("sign");
        let rotated = keys(&[("new", 2), ("old", 1)]);
        assert_eq!(
            rotated.verify_access(&token).expect("verifies").role,
            Role::Volunteer
        );
        let other = keys(&[("new", 2)]);
        assert!(other.verify_access(&token).is_err());
        let forged = keys(&[("old", 3)]);
        assert!(forged.verify_access(&token).is_err());
    }

    fn forge(keys: &TokenKeys, iat: i64, exp: i64) -> String {
        let claims = Claims {
            sub: Uuid::now_v7(),
            role: Role::Admin,
            org_unit: Uuid::now_v7(),
            iat,
            exp,
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.signing_kid.clone());
        encode(&header, &claims, &keys.signing).expect("sign")
    }

    #[test]
    fn tokens_this_server_would_never_issue_are_refused() {
        let keys = keys(&[("k", 1)]);
        let now = Utc::now().timestamp();
        let year = 365 * 86_400;
        // What the server issues, and a little clock skew, pass.
        assert!(keys.verify_access(&forge(&keys, now, now + 900)).is_ok());
        assert!(keys
            .verify_access(&forge(&keys, now + 10, now + 910))
            .is_ok());
        // Issued a year ahead, a ten-year lifetime, a lifetime one second too long,
        // expiring before it was issued.
        for (iat, exp) in [
            (now + year, now + year + 900),
            (now, now + 10 * year),
            (now - 100, now + 801),
            (now + 20, now + 10),
        ] {
            assert!(
                keys.verify_access(&forge(&keys, iat, exp)).is_err(),
                "iat {iat} exp {exp} accepted"
            );
        }
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, ha) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a), ha);
        assert_eq!(ha.len(), 64);
    }
}
