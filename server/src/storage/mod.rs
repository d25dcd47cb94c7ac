//! Blob storage for photo evidence: one `BlobStore` trait, a local-disk store for the
//! embedded default and an S3-compatible store for production. Every `put` carries the
//! SHA-256 the caller expects; a store refuses bytes that do not match it, and an
//! object becomes visible only once stored whole.

mod disk;
pub mod image_meta;
mod measured;
mod s3;

pub use disk::DiskStore;
pub use measured::MeasuredStore;
pub use s3::S3Store;

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;

/// A stream of an object's bytes.
pub type BlobStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// What to store: bytes in memory, or a file spooled to disk (large photos).
#[derive(Debug, Clone)]
pub enum BlobBody {
    Bytes(Bytes),
    File(PathBuf),
}

/// A stored object's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
    pub content_type: Option<String>,
    /// When the object was last written, where the store tells (lists and heads do).
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// A stored object with its bytes as a stream.
pub struct BlobObject {
    pub meta: BlobMeta,
    pub body: BlobStream,
}

/// Faults of a blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The bytes' SHA-256 is not the one the caller named; nothing was stored.
    #[error("checksum mismatch: the body's SHA-256 differs from the expected digest")]
    ChecksumMismatch,
    /// The key is not acceptable (empty, `..`, absolute…).
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    /// The store cannot be reached or answered with a fault; the caller may retry.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// A local I/O fault.
    #[error("blob store I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// An object store keyed by `/`-separated keys such as `submissions/{id}/{sha256}`.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `body` under `key` if its SHA-256 equals `sha256`; otherwise stores nothing.
    async fn put(
        &self,
        key: &str,
        body: BlobBody,
        sha256: [u8; 32],
        content_type: &str,
    ) -> Result<BlobMeta, BlobError>;

    /// The object's metadata, or `None` when absent.
    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError>;

    /// The object as a stream, or `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<BlobObject>, BlobError>;

    /// Removes the object; removing an absent object is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError>;

    /// A URL that fetches the object without credentials for `ttl`; `None` where the
    /// store cannot make one (the disk store: reads go through the API).
    async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, BlobError>;

    /// Whether the store is reachable and usable (for `/readyz`).
    async fn check(&self) -> Result<(), BlobError>;
}

/// The SHA-256 of a file, read in chunks.
pub(crate) async fn sha256_of_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Refuses keys that could escape a prefix or a directory.
pub(crate) fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && !key.starts_with('/')
        && key.len() <= 512
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.to_string()))
    }
}

/// Prefixes are keys, or empty (everything).
pub(crate) fn check_prefix(prefix: &str) -> Result<(), BlobError> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_key(prefix.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        assert!(check_key("submissions/abc/def").is_ok());
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "a/./b", "a b", "a\\b"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("submissions/").is_ok());
        assert!(check_prefix("../").is_err());
    }
}
