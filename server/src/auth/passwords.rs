//! Password hashing with argon2id, in a bounded pool.
//!
//! Each hash or check fills 19 MiB of argon2 memory. Run without a bound, a burst of
//! failed logins for random usernames (which no per-username throttle sees) makes one
//! buffer per blocking thread, and the allocator keeps them: the server grew to 2.4 GB
//! and stayed there. Here at most one hash runs per core, each in a buffer allocated
//! once and reused, so memory stays flat whatever the load; a login that cannot get a
//! turn within [`PasswordHasher::wait`] answers 503 with `Retry-After`.
//!
//! An unknown username is checked against a real hash of a random password, through
//! the same pool, so that it costs the same time as a wrong password.

use std::sync::Mutex;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::distributions::{Alphanumeric, DistString};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The largest argon2 memory a stored hash may ask for (64 MiB): a hash with more is
/// treated as not matching rather than allowed to allocate without bound.
const MAX_BLOCKS: usize = 64 * 1024;

/// Seconds a caller is told to wait when every hashing slot stayed busy.
const BUSY_RETRY_AFTER_SECS: u64 = 2;

/// The bounded argon2id pool: one slot per core, one reused buffer per slot.
pub struct PasswordHasher {
    slots: Semaphore,
    buffers: Mutex<Vec<Vec<Block>>>,
    params: Params,
    wait: Duration,
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("slots", &self.slots.available_permits())
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A pool of `slots` concurrent hashes (at least one) with argon2id's default
    /// parameters; callers wait at most `wait` for a slot.
    pub fn new(slots: usize, wait: Duration) -> Result<Self, ApiError> {
        let slots = slots.max(1);
        let params = Params::default();
        let mut buffer = vec![Block::default(); params.block_count()];
        let dummy_hash = hash_with(&params, &random_password(), &mut buffer)?;
        Ok(PasswordHasher {
            slots: Semaphore::new(slots),
            buffers: Mutex::new(vec![buffer]),
            params,
            wait,
            dummy_hash,
        })
    }

    /// A pool with one slot per core the process may use.
    pub fn per_core(wait: Duration) -> Result<Self, ApiError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, wait)
    }

    /// How long a caller waits for a free slot before 503.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Hashes a password into a PHC string (argon2id, default parameters).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.run(move |buffer| hash_with(&params, &password, buffer))
            .await?
    }

    /// Whether `password` matches the PHC string `hash`; a malformed hash never matches.
    /// `None` checks against the pool's own dummy hash (an unknown username): the same
    /// work as a wrong password, and never a match.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .run(move |buffer| verify_with(&password, &hash, buffer))
            .await?;
        Ok(known && matches)
    }

    /// Runs `work` on the blocking pool with a slot and a buffer, waiting at most
    /// `self.wait` for the slot.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _slot = tokio::time::timeout(self.wait, self.slots.acquire())
            .await
            .map_err(|_| ApiError::Unavailable {
                retry_after_secs: BUSY_RETRY_AFTER_SECS,
                detail: "the server is busy checking passwords; retry shortly".into(),
            })?
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("password pool closed: {e}")))?;
        let mut buffer = self.take_buffer();
        let (result, buffer) = tokio::task::spawn_blocking(move || {
            let result = work(&mut buffer);
            // Nothing derived from a password stays in memory between two checks.
            buffer.fill(Block::default());
            (result, buffer)
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("password task: {e}")))?;
        self.return_buffer(buffer);
        Ok(result)
    }

    fn take_buffer(&self) -> Vec<Block> {
        let pooled = self.buffers.lock().ok().and_then(|mut b| b.pop());
        pooled.unwrap_or_else(|| vec![Block::default(); self.params.block_count()])
    }

    fn return_buffer(&self, buffer: Vec<Block>) {
        if let Ok(mut buffers) = self.buffers.lock() {
            buffers.push(buffer);
        }
    }
}

/// Hashes with a fresh salt in `buffer` (grown to the parameters' size if needed).
fn hash_with(params: &Params, password: &str, buffer: &mut Vec<Block>) -> Result<String, ApiError> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        ApiError::Internal(anyhow::anyhow!("hashing password ({what}): {e}"))
    };
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| internal("salt", &e))?;
    let blocks = params.block_count();
    if buffer.len() < blocks {
        buffer.resize(blocks, Block::default());
    }
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            &mut buffer[..blocks],
        )
        .map_err(|e| internal("argon2", &e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| internal("params", &e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| internal("output", &e))?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a PHC string in `buffer`; any fault in the string is a
/// mismatch. The final comparison is constant-time (`Output`'s equality).
fn verify_with(password: &str, phc: &str, buffer: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if buffer.len() < blocks {
        buffer.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            &mut buffer[..blocks],
        )
        .is_err()
    {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// A random password for generated accounts (first admin, demo users): 20 alphanumerics.
pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let pool = PasswordHasher::new(2, Duration::from_secs(5)).expect("pool");
        let a = pool
            .hash("correct horse battery".into())
            .await
            .expect("hash");
        let b = pool
            .hash("correct horse battery".into())
            .await
            .expect("hash");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        let yes = |h: &str| pool.verify("correct horse battery".into(), Some(h.to_string()));
        assert!(yes(&a).await.expect("verify"));
        assert!(!pool
            .verify("wrong".into(), Some(a.clone()))
            .await
            .expect("verify"));
        assert!(!pool
            .verify("anything".into(), Some("not a phc string".into()))
            .await
            .expect("verify"));
        // The dummy hash never matches, even for an empty password.
        assert!(!pool.verify(String::new(), None).await.expect("verify"));
        assert_eq!(random_password().len(), 20);
    }

    #[tokio::test]
    async fn hashes_are_interchangeable_with_the_argon2_crate() {
        // Hashes stored before the pool existed (and by other tools) still verify, and
        // the crate's own verifier accepts ours.
        let legacy = {
            use argon2::PasswordHasher as _;
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(b"s3cret pass", &salt)
                .expect("hash")
                .to_string()
        };
        let pool = PasswordHasher::new(1, Duration::from_secs(5)).expect("pool");
        assert!(pool
            .verify("s3cret pass".into(), Some(legacy))
            .await
            .expect("verify"));
        let ours = pool.hash("s3cret pass".into()).await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(Argon2::default()
            .verify_password(b"s3cret pass", &parsed)
            .is_ok());
    }

    #[tokio::test]
    async fn a_hash_asking_for_unbounded_memory_is_refused() {
        let pool = PasswordHasher::new(1, Duration::from_secs(5)).expect("pool");
        let greedy = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$\
                      AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!pool
            .verify("x".into(), Some(greedy.into()))
            .await
            .expect("verify"));
    }

    #[tokio::test]
    async fn a_caller_that_cannot_get_a_slot_in_time_gets_503() {
        let pool = PasswordHasher::new(1, Duration::from_millis(50)).expect("pool");
        let held = pool.slots.acquire().await.expect("slot");
        match pool.verify("x".into(), None).await {
            Err(e @ ApiError::Unavailable { .. }) => {
                assert_eq!(e.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE)
            }
            other => panic!("expected 503, got {other:?}"),
        }
        drop(held);
        assert!(!pool.verify("x".into(), None).await.expect("a free slot"));
    }
}
