//! The S3-compatible blob store (aws-sdk-s3): AWS, Garage, MinIO, Ceph… Every put
//! sends `x-amz-checksum-sha256`, so the store itself refuses bytes that do not match.

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::{check_key, check_prefix, BlobBody, BlobError, BlobMeta, BlobObject, BlobStore};
use crate::config::S3Config;

/// An S3 bucket, optionally under a key prefix.
#[derive(Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable<E, R>(err: SdkError<E, R>) -> BlobError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let is_checksum = err
        .as_service_error()
        .and_then(|e| e.code())
        .map(|c| {
            matches!(
                c,
                "BadDigest"
                    | "InvalidDigest"
                    | "XAmzContentChecksumMismatch"
                    | "XAmzContentSHA256Mismatch"
            )
        })
        .unwrap_or(false);
    if is_checksum {
        BlobError::ChecksumMismatch
    } else {
        BlobError::Unavailable(DisplayErrorContext(err).to_string())
    }
}

impl S3Store {
    /// A client for the configured bucket (no request is made until first use).
    pub fn new(cfg: &S3Config) -> Self {
        let creds = Credentials::new(
            cfg.access_key_id.clone(),
            cfg.secret_access_key.expose_secret().to_string(),
            None,
            None,
            "donghanh-config",
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(creds)
            .force_path_style(cfg.force_path_style)
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let prefix = if cfg.prefix.is_empty() || cfg.prefix.ends_with('/') {
            cfg.prefix.clone()
        } else {
            format!("{}/", cfg.prefix)
        };
        S3Store {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            bucket: cfg.bucket.clone(),
            prefix,
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    async fn put(
        &self,
        key: &str,
        body: BlobBody,
        sha256: [u8; 32],
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        check_key(key)?;
        let (stream, size) = match body {
            BlobBody::Bytes(bytes) => {
                // Check here too: not every S3-compatible store verifies checksums.
                if Sha256::digest(&bytes).as_slice() != sha256 {
                    return Err(BlobError::ChecksumMismatch);
                }
                let size = bytes.len() as u64;
                (ByteStream::from(bytes), size)
            }
            BlobBody::File(path) => {
                if super::sha256_of_file(&path).await? != sha256 {
                    return Err(BlobError::ChecksumMismatch);
                }
                let size = tokio::fs::metadata(&path).await?.len();
                let stream = ByteStream::from_path(&path)
                    .await
                    .map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
                (stream, size)
            }
        };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_type(content_type)
            .content_length(size as i64)
            .checksum_sha256(STANDARD.encode(sha256))
            .body(stream)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(BlobMeta {
            key: key.to_string(),
            size,
            content_type: Some(content_type.to_string()),
            last_modified: Some(chrono::Utc::now()),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError> {
        check_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(out) => Ok(Some(BlobMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                content_type: out.content_type().map(str::to_string),
                last_modified: out.last_modified().and_then(to_chrono),
            })),
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_not_found())
                    .unwrap_or(false) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<BlobObject>, BlobError> {
        check_key(key)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(out) => {
                let meta = BlobMeta {
                    key: key.to_string(),
                    size: out.content_length().unwrap_or(0).max(0) as u64,
                    content_type: out.content_type().map(str::to_string),
                    last_modified: out.last_modified().and_then(to_chrono),
                };
                let reader = out.body.into_async_read();
                let stream =
                    tokio_util::io::ReaderStream::new(reader).map_err(std::io::Error::other);
                Ok(Some(BlobObject {
                    meta,
                    body: Box::pin(stream),
                }))
            }
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_no_such_key())
                    .unwrap_or(false) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        check_prefix(prefix)?;
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full_key(prefix))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(unavailable)?;
            for obj in page.contents() {
                let Some(full) = obj.key() else { continue };
                let Some(key) = full.strip_prefix(self.prefix.as_str()) else {
                    continue;
                };
                out.push(BlobMeta {
                    key: key.to_string(),
                    size: obj.size().unwrap_or(0).max(0) as u64,
                    content_type: None,
                    last_modified: obj.last_modified().and_then(to_chrono),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, BlobError> {
        check_key(key)?;
        let presign = PresigningConfig::expires_in(ttl)
            .map_err(|e| BlobError::Unavailable(format!("presigning config: {e}")))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .presigned(presign)
            .await
            .map_err(unavailable)?;
        Ok(Some(req.uri().to_string()))
    }

    async fn check(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The SDK's timestamp as a chrono one.
fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
