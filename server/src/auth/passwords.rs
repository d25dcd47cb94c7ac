//! Password hashing with argon2id. Hashing and verifying are CPU-heavy, so they run on
//! the blocking pool; an unknown username is verified against a dummy hash so that it
//! costs the same time as a wrong password.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distributions::{Alphanumeric, DistString};

use crate::error::ApiError;

/// Hashes a password into a PHC string (argon2id, default parameters).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing password: {e}")))
}

/// Whether `password` matches the PHC string `hash`; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// `hash_password` on the blocking pool.
pub async fn hash_password_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing task: {e}")))?
}

/// `verify_password` on the blocking pool.
pub async fn verify_password_blocking(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("verifying task: {e}")))
}

/// A random password for generated accounts (first admin, demo users): 20 alphanumerics.
pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash_password("correct horse battery").expect("hash");
        let b = hash_password("correct horse battery").expect("hash");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("wrong", &a));
        assert!(!verify_password("anything", "not a phc string"));
        assert_eq!(random_password().len(), 20);
    }
}
