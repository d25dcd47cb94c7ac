//! The shared application state handed to every handler: the database pool, the blob
//! store, the configuration and the token keys. It holds nothing another server
//! instance would need: all state lives in the database and the object store.

use std::sync::Arc;

use anyhow::Context;
use sea_orm::DatabaseConnection;

use crate::auth::passwords::PasswordHasher;
use crate::auth::tokens::TokenKeys;
use crate::config::{BlobStoreConfig, Config};
use crate::db;
use crate::metrics::Metrics;
use crate::storage::{BlobStore, DiskStore, MeasuredStore, S3Store};

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// For reads that need nothing uncommitted: the account behind a token, the place
    /// and form a submission names. The same pool as `db` on PostgreSQL; read-only
    /// connections beside the one writer on SQLite (see [`db::connect_readers`]).
    pub reader: DatabaseConnection,
    pub blobs: Arc<dyn BlobStore>,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenKeys>,
    /// The bounded argon2id pool every password hash and check goes through.
    pub passwords: Arc<PasswordHasher>,
    /// XForms generated from the published form versions (pure functions of them).
    pub xforms: Arc<crate::services::odk::XformCache>,
    /// Parsed definitions of the published form versions, for intake.
    pub definitions: Arc<crate::services::forms::VersionCache<mobile_schema::FormDefinition>>,
    /// This server's metrics registry; off unless `METRICS_ADDR` is set.
    pub metrics: Metrics,
}

impl AppState {
    /// Connects to the database (applying migrations) and opens the blob store. It only
    /// connects: the work a serving database needs first (bundled forms, report cells)
    /// is [`crate::startup::prepare`].
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        let metrics = match config.metrics_addr {
            Some(_) => Metrics::new()?,
            None => Metrics::off(),
        };
        let db = db::connect_and_migrate(&config.database_url)
            .await
            .with_context(|| format!("database {}", config.database_url.redacted()))?;
        let reader = db::connect_readers(&config.database_url, &db)
            .await
            .with_context(|| format!("database {} (readers)", config.database_url.redacted()))?;
        let blobs: Arc<dyn BlobStore> = match &config.blob_store {
            BlobStoreConfig::Disk { root } => Arc::new(
                DiskStore::open(root.clone())
                    .await
                    .with_context(|| format!("blob directory {}", root.display()))?,
            ),
            BlobStoreConfig::S3(s3) => Arc::new(S3Store::new(s3)),
        };
        let blobs: Arc<dyn BlobStore> = Arc::new(MeasuredStore::new(blobs, metrics.clone()));
        let tokens = TokenKeys::new(&config.jwt, config.access_token_ttl)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let passwords = PasswordHasher::per_core(config.password_queue_wait)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(AppState {
            db,
            reader,
            blobs,
            config: Arc::new(config),
            tokens: Arc::new(tokens),
            passwords: Arc::new(passwords),
            xforms: Arc::default(),
            definitions: Arc::default(),
            metrics,
        })
    }
}
