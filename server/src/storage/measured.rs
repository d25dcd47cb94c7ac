//! A blob store that counts its store's faults (`donghanh_blob_store_errors_total`).
//! It holds its registry rather than relying on a request's scope, since the photo
//! sweeper calls the store outside any request. A refusal of the caller's input (a
//! checksum mismatch, a bad key) is not a fault of the store and is not counted.

use std::sync::Arc;
use std::time::Duration;

use super::{BlobBody, BlobError, BlobMeta, BlobObject, BlobStore};
use crate::metrics::{self, Metrics};

/// Wraps a store, counting its faults in `metrics`.
pub struct MeasuredStore {
    inner: Arc<dyn BlobStore>,
    metrics: Metrics,
}

impl MeasuredStore {
    /// Counts the faults of `inner` in `metrics`.
    pub fn new(inner: Arc<dyn BlobStore>, metrics: Metrics) -> MeasuredStore {
        MeasuredStore { inner, metrics }
    }

    fn count<T>(
        &self,
        operation: &'static str,
        result: Result<T, BlobError>,
    ) -> Result<T, BlobError> {
        if let Err(BlobError::Unavailable(_) | BlobError::Io(_)) = &result {
            self.metrics.record(|| metrics::blob_store_error(operation));
        }
        result
    }
}

#[async_trait::async_trait]
impl BlobStore for MeasuredStore {
    async fn put(
        &self,
        key: &str,
        body: BlobBody,
        sha256: [u8; 32],
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        let result = self.inner.put(key, body, sha256, content_type).await;
        self.count("put", result)
    }

    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError> {
        let result = self.inner.head(key).await;
        self.count("head", result)
    }

    async fn get(&self, key: &str) -> Result<Option<BlobObject>, BlobError> {
        let result = self.inner.get(key).await;
        self.count("get", result)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let result = self.inner.delete(key).await;
        self.count("delete", result)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        let result = self.inner.list(prefix).await;
        self.count("list", result)
    }

    async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, BlobError> {
        let result = self.inner.presigned_get(key, ttl).await;
        self.count("presigned_get", result)
    }

    async fn check(&self) -> Result<(), BlobError> {
        let result = self.inner.check().await;
        self.count("check", result)
    }
}
