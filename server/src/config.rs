//! Configuration: defaults in code, overridden by environment variables, checked once
//! at start-up. A bad value is reported as one line naming the variable; secrets are
//! wrapped so they never reach `Debug` output or logs.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// Smallest accepted length of a signing or HMAC key, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Where the embedded default keeps its generated JWT signing key, under `DATA_DIR`.
pub const JWT_KEY_FILE: &str = "secrets/jwt_signing.key";

/// Where the embedded default keeps its generated UIC HMAC key, under `DATA_DIR`.
pub const UIC_KEY_FILE: &str = "secrets/uic_hmac.key";

/// A fault in the configuration, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn fault(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// The whole server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds (`BIND_ADDR`, default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// Address of the private listener serving `GET /metrics` (`METRICS_ADDR`, e.g.
    /// `127.0.0.1:9100`); unset, the server keeps no metrics.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the embedded default keeps its database, blobs and generated keys (`DATA_DIR`, default `./data`).
    pub data_dir: PathBuf,
    /// The database (`DATABASE_URL`, default a SQLite file in `DATA_DIR`).
    pub database_url: DatabaseUrl,
    /// Where photo evidence is stored.
    pub blob_store: BlobStoreConfig,
    /// Keys that sign and verify access tokens.
    pub jwt: JwtKeyConfig,
    /// The HMAC key under which UICs are hashed (`UIC_HMAC_KEY`).
    pub uic_hmac_key: SecretKey,
    /// Lifetime of access tokens (`ACCESS_TOKEN_TTL_SECS`, default 900).
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (`REFRESH_TOKEN_TTL_DAYS`, default 90: phones stay offline for weeks).
    pub refresh_token_ttl: Duration,
    /// Time a connection has to send a request's headers, counted from its opening or
    /// its previous answer; bounds slow headers and idle kept-alive connections alike
    /// (`HEADER_READ_TIMEOUT_SECS`, default 30).
    pub header_read_timeout: Duration,
    /// Time from a request's headers to its answer, body upload included; past it, 408
    /// (`REQUEST_TIMEOUT_SECS`, default 300: a 15 MB photo over a slow link).
    pub request_timeout: Duration,
    /// Connections held open at once; past it, new ones wait to be accepted
    /// (`MAX_CONNECTIONS`, default 1024).
    pub max_connections: usize,
    /// Behind a reverse proxy: take the client's address from the last
    /// `X-Forwarded-For` entry and the scheme from `X-Forwarded-Proto`
    /// (`TRUST_PROXY_HEADERS`, default `false`; never set it without a proxy that
    /// overwrites those headers).
    pub trust_proxy_headers: bool,
    /// The address phones and browsers reach this server at (`PUBLIC_URL`, e.g.
    /// `https://donghanh.example.vn`); it goes into the OpenRosa addresses of enrolled
    /// phones. Unset: taken from each request's `Host` (and, with
    /// `TRUST_PROXY_HEADERS`, `X-Forwarded-Proto`).
    pub public_url: Option<String>,
    /// A console session unused this long ends (`CONSOLE_IDLE_TIMEOUT_MINS`, default 60).
    pub console_idle_timeout: Duration,
    /// Largest JSON body accepted (`JSON_BODY_LIMIT_BYTES`, default 1 MiB).
    pub json_body_limit: usize,
    /// Largest photo accepted (`PHOTO_BODY_LIMIT_BYTES`, default 15 MB).
    pub photo_body_limit: usize,
    /// Largest ODK Collect submission POST (XML and photos); Collect splits a larger one
    /// over several POSTs (`ODK_MAX_SUBMISSION_BYTES`, default 100000000, what it is told
    /// as `X-OpenRosa-Accept-Content-Length`).
    pub odk_max_submission_bytes: usize,
    /// Most faults listed in one 422 answer; the others are only counted
    /// (`MAX_FAULTS`, default 100).
    pub max_faults: usize,
    /// Failed logins for one username within the window before 429 (`LOGIN_MAX_FAILURES`, default 5).
    pub login_max_failures: u32,
    /// The failed-login window (`LOGIN_WINDOW_SECS`, default 900).
    pub login_window: Duration,
    /// Failed logins from one source address within the window before 429
    /// (`LOGIN_MAX_FAILURES_PER_ADDRESS`, default 100: phones behind a carrier's NAT
    /// share addresses, so this is a ceiling for floods, not for typos).
    pub login_max_failures_per_address: u32,
    /// How long a login or password change waits for a free password-hashing slot
    /// (one per core) before 503 (`PASSWORD_QUEUE_WAIT_MS`, default 5000).
    pub password_queue_wait: Duration,
    /// `text` or `json` (`LOG_FORMAT`, default `text`).
    pub log_format: LogFormat,
    /// Answer photo reads on S3 with a redirect to a presigned URL valid 60 s instead of
    /// streaming through the server (`PHOTO_PRESIGNED_REDIRECT`, default `false`).
    pub photo_presigned_redirect: bool,
    /// How often each server looks for stored photos without their row
    /// (`PHOTO_SWEEP_INTERVAL_SECS`, default 3600; 0 turns the sweeper off).
    pub photo_sweep_interval: Duration,
    /// How old such an orphan must be before it is removed, so uploads in flight are
    /// never touched (`PHOTO_SWEEP_GRACE_SECS`, default 3600).
    pub photo_sweep_grace: Duration,
    /// Days a referral may wait for its handoff before it expires
    /// (`REFERRAL_EXPIRY_DAYS`, default 30).
    pub referral_expiry_days: u32,
    /// How often each server expires overdue referrals
    /// (`REFERRAL_EXPIRY_INTERVAL_SECS`, default 3600; 0 turns it off).
    pub referral_expiry_interval: Duration,
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where blobs go.
#[derive(Debug, Clone)]
pub enum BlobStoreConfig {
    /// A directory on local disk (`BLOB_STORE=disk`, `BLOB_DIR`, default `DATA_DIR/blobs`).
    Disk { root: PathBuf },
    /// An S3-compatible object store (`BLOB_STORE=s3`).
    S3(S3Config),
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `S3_ENDPOINT`, e.g. `http://127.0.0.1:3900`; absent for AWS itself.
    pub endpoint: Option<String>,
    /// `S3_REGION` (default `us-east-1`).
    pub region: String,
    /// `S3_BUCKET`.
    pub bucket: String,
    /// `S3_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `S3_SECRET_ACCESS_KEY`.
    pub secret_access_key: SecretString,
    /// `S3_FORCE_PATH_STYLE` (default `true`, as most self-hosted stores need).
    pub force_path_style: bool,
    /// `S3_PREFIX`: a key prefix inside the bucket (default empty).
    pub prefix: String,
}

/// A secret byte string.
#[derive(Clone)]
pub struct SecretKey(std::sync::Arc<SecretBox<Vec<u8>>>);

impl SecretKey {
    /// Wraps key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretKey(std::sync::Arc::new(SecretBox::new(Box::new(bytes))))
    }

    /// The key bytes, for the code that signs or hashes with them.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

/// HS256 keys by `kid`: the first signs, all verify (so keys can rotate).
#[derive(Debug, Clone)]
pub struct JwtKeyConfig {
    pub keys: Vec<(String, SecretKey)>,
}

/// A database URL whose `Debug` and `Display` hide any password.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(SecretString::from(url.into()))
    }

    /// The URL, for the code that connects.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether this is a PostgreSQL URL.
    pub fn is_postgres(&self) -> bool {
        let u = self.expose();
        u.starts_with("postgres://") || u.starts_with("postgresql://")
    }

    /// The file of a SQLite URL (`sqlite://path?…` or `sqlite:path`); `None` for
    /// PostgreSQL and in-memory databases.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let url = self.expose();
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            None
        } else {
            Some(PathBuf::from(path))
        }
    }

    /// The URL with any `user:password@` replaced, safe to print.
    pub fn redacted(&self) -> String {
        let url = self.expose();
        match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                format!("{}://[REDACTED]@{}", &url[..s], &url[at + 1..])
            }
            _ => url.split('?').next().unwrap_or(url).to_string(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// Where the files of a data directory live, read from the same variables as
/// [`Config`] but without reading or creating any key: what `restore` (which must find
/// the directory empty) and the start-up permission check need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    /// `DATA_DIR`.
    pub data_dir: PathBuf,
    /// The SQLite file; `None` with PostgreSQL.
    pub database: Option<PathBuf>,
    /// The disk blob store's root; `None` with S3.
    pub blob_root: Option<PathBuf>,
}

impl DataLayout {
    /// The layout the process environment describes.
    pub fn from_env() -> Result<DataLayout, ConfigError> {
        DataLayout::from_lookup(|k| std::env::var(k).ok())
    }

    /// The layout any variable lookup describes (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<DataLayout, ConfigError> {
        let var = |name: &'static str| get(name).filter(|v| !v.trim().is_empty());
        let (data_dir, database_url, blob_store) = locations(&var)?;
        Ok(DataLayout::new(data_dir, &database_url, &blob_store))
    }

    /// The layout of a configuration.
    pub fn of(config: &Config) -> DataLayout {
        DataLayout::new(
            config.data_dir.clone(),
            &config.database_url,
            &config.blob_store,
        )
    }

    fn new(data_dir: PathBuf, url: &DatabaseUrl, blobs: &BlobStoreConfig) -> DataLayout {
        DataLayout {
            data_dir,
            database: url.sqlite_path(),
            blob_root: match blobs {
                BlobStoreConfig::Disk { root } => Some(root.clone()),
                BlobStoreConfig::S3(_) => None,
            },
        }
    }

    /// Whether this is the embedded default: a SQLite file and a disk blob store.
    pub fn is_embedded(&self) -> bool {
        self.database.is_some() && self.blob_root.is_some()
    }

    /// The directory of the generated key files.
    pub fn secrets_dir(&self) -> PathBuf {
        self.data_dir.join("secrets")
    }
}

/// `LOG_FORMAT` alone, for the commands that read no other setting.
pub fn log_format_from_env() -> Result<LogFormat, ConfigError> {
    parse_log_format(
        std::env::var("LOG_FORMAT")
            .ok()
            .filter(|v| !v.trim().is_empty()),
    )
}

fn parse_log_format(value: Option<String>) -> Result<LogFormat, ConfigError> {
    match value.as_deref().unwrap_or("text") {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(fault(
            "LOG_FORMAT",
            format!("expected `text` or `json`, got {other:?}"),
        )),
    }
}

/// `DATA_DIR`, `DATABASE_URL` and the blob store, with their defaults.
fn locations(
    var: &impl Fn(&'static str) -> Option<String>,
) -> Result<(PathBuf, DatabaseUrl, BlobStoreConfig), ConfigError> {
    let data_dir = PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "./data".into()));
    let database_url = match var("DATABASE_URL") {
        Some(url) => {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(fault(
                    "DATABASE_URL",
                    "expected a sqlite: or postgres:// URL",
                ));
            }
            DatabaseUrl::new(url)
        }
        None => DatabaseUrl::new(format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("donghanh.db").display()
        )),
    };

    let blob_store = match var("BLOB_STORE").as_deref().unwrap_or("disk") {
        "disk" => BlobStoreConfig::Disk {
            root: var("BLOB_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("blobs")),
        },
        "s3" => {
            let required = |name: &'static str| {
                var(name).ok_or_else(|| fault(name, "required when BLOB_STORE=s3"))
            };
            BlobStoreConfig::S3(S3Config {
                endpoint: var("S3_ENDPOINT"),
                region: var("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                bucket: required("S3_BUCKET")?,
                access_key_id: required("S3_ACCESS_KEY_ID")?,
                secret_access_key: SecretString::from(required("S3_SECRET_ACCESS_KEY")?),
                force_path_style: parse_bool(
                    "S3_FORCE_PATH_STYLE",
                    var("S3_FORCE_PATH_STYLE"),
                    true,
                )?,
                prefix: var("S3_PREFIX").unwrap_or_default(),
            })
        }
        other => {
            return Err(fault(
                "BLOB_STORE",
                format!("expected `disk` or `s3`, got {other:?}"),
            ))
        }
    };
    Ok((data_dir, database_url, blob_store))
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration from any variable lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &'static str| get(name).filter(|v| !v.trim().is_empty());

        let bind = match var("BIND_ADDR") {
            Some(v) => v
                .parse()
                .map_err(|_| fault("BIND_ADDR", format!("expected host:port, got {v:?}")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let metrics_addr = match var("METRICS_ADDR") {
            Some(v) => Some(v.trim().parse().map_err(|_| {
                fault(
                    "METRICS_ADDR",
                    format!("expected host:port, e.g. 127.0.0.1:9100, got {v:?}"),
                )
            })?),
            None => None,
        };
        let (data_dir, database_url, blob_store) = locations(&var)?;

        // A cluster of stateless servers must share its keys: with PostgreSQL they come
        // from the environment; the embedded default generates them once under DATA_DIR.
        let shared_keys_required = database_url.is_postgres();
        let jwt =
            match var("JWT_KEYS") {
                Some(spec) => parse_jwt_keys(&spec)?,
                None if shared_keys_required => return Err(fault(
                    "JWT_KEYS",
                    "required with a PostgreSQL DATABASE_URL (every server must share the keys)",
                )),
                None => JwtKeyConfig {
                    keys: vec![(
                        "local".into(),
                        load_or_create_key(&data_dir.join(JWT_KEY_FILE), "JWT_KEYS")?,
                    )],
                },
            };
        let uic_hmac_key = match var("UIC_HMAC_KEY") {
            Some(b64) => decode_key("UIC_HMAC_KEY", &b64)?,
            None if shared_keys_required => {
                return Err(fault(
                    "UIC_HMAC_KEY",
                    "required with a PostgreSQL DATABASE_URL (every server must share the key)",
                ))
            }
            None => load_or_create_key(&data_dir.join(UIC_KEY_FILE), "UIC_HMAC_KEY")?,
        };

        let log_format = parse_log_format(var("LOG_FORMAT"))?;

        Ok(Config {
            bind,
            metrics_addr,
            data_dir,
            database_url,
            blob_store,
            jwt,
            uic_hmac_key,
            access_token_ttl: Duration::from_secs(parse_num(
                "ACCESS_TOKEN_TTL_SECS",
                var("ACCESS_TOKEN_TTL_SECS"),
                900,
                60..=86_400,
            )?),
            refresh_token_ttl: Duration::from_secs(
                86_400
                    * parse_num(
                        "REFRESH_TOKEN_TTL_DAYS",
                        var("REFRESH_TOKEN_TTL_DAYS"),
                        90,
                        1..=3650,
                    )?,
            ),
            header_read_timeout: Duration::from_secs(parse_num(
                "HEADER_READ_TIMEOUT_SECS",
                var("HEADER_READ_TIMEOUT_SECS"),
                30,
                1..=3600,
            )?),
            request_timeout: Duration::from_secs(parse_num(
                "REQUEST_TIMEOUT_SECS",
                var("REQUEST_TIMEOUT_SECS"),
                300,
                1..=86_400,
            )?),
            max_connections: parse_num(
                "MAX_CONNECTIONS",
                var("MAX_CONNECTIONS"),
                1024,
                1..=1_000_000,
            )? as usize,
            trust_proxy_headers: parse_bool(
                "TRUST_PROXY_HEADERS",
                var("TRUST_PROXY_HEADERS"),
                false,
            )?,
            public_url: match var("PUBLIC_URL") {
                None => None,
                Some(url) => {
                    let url = url.trim().trim_end_matches('/').to_string();
                    let host = url
                        .strip_prefix("https://")
                        .or_else(|| url.strip_prefix("http://"))
                        .unwrap_or_default();
                    if host.is_empty() || url.contains(['?', '#', ' ']) {
                        return Err(fault(
                            "PUBLIC_URL",
                            "expected http(s)://host[:port][/path], e.g. https://donghanh.example.vn",
                        ));
                    }
                    Some(url)
                }
            },
            console_idle_timeout: Duration::from_secs(
                60 * parse_num(
                    "CONSOLE_IDLE_TIMEOUT_MINS",
                    var("CONSOLE_IDLE_TIMEOUT_MINS"),
                    60,
                    1..=24 * 60,
                )?,
            ),
            json_body_limit: parse_num(
                "JSON_BODY_LIMIT_BYTES",
                var("JSON_BODY_LIMIT_BYTES"),
                1024 * 1024,
                1024..=64 * 1024 * 1024,
            )? as usize,
            photo_body_limit: parse_num(
                "PHOTO_BODY_LIMIT_BYTES",
                var("PHOTO_BODY_LIMIT_BYTES"),
                15_000_000,
                1024..=1024 * 1024 * 1024,
            )? as usize,
            odk_max_submission_bytes: parse_num(
                "ODK_MAX_SUBMISSION_BYTES",
                var("ODK_MAX_SUBMISSION_BYTES"),
                100_000_000,
                1_000_000..=1_000_000_000,
            )? as usize,
            max_faults: parse_num("MAX_FAULTS", var("MAX_FAULTS"), 100, 1..=10_000)? as usize,
            login_max_failures: parse_num(
                "LOGIN_MAX_FAILURES",
                var("LOGIN_MAX_FAILURES"),
                5,
                1..=1000,
            )? as u32,
            login_window: Duration::from_secs(parse_num(
                "LOGIN_WINDOW_SECS",
                var("LOGIN_WINDOW_SECS"),
                900,
                1..=86_400,
            )?),
            login_max_failures_per_address: parse_num(
                "LOGIN_MAX_FAILURES_PER_ADDRESS",
                var("LOGIN_MAX_FAILURES_PER_ADDRESS"),
                100,
                1..=1_000_000,
            )? as u32,
            password_queue_wait: Duration::from_millis(parse_num(
                "PASSWORD_QUEUE_WAIT_MS",
                var("PASSWORD_QUEUE_WAIT_MS"),
                5000,
                1..=60_000,
            )?),
            log_format,
            photo_presigned_redirect: parse_bool(
                "PHOTO_PRESIGNED_REDIRECT",
                var("PHOTO_PRESIGNED_REDIRECT"),
                false,
            )?,
            photo_sweep_interval: Duration::from_secs(parse_num(
                "PHOTO_SWEEP_INTERVAL_SECS",
                var("PHOTO_SWEEP_INTERVAL_SECS"),
                3600,
                0..=7 * 86_400,
            )?),
            photo_sweep_grace: Duration::from_secs(parse_num(
                "PHOTO_SWEEP_GRACE_SECS",
                var("PHOTO_SWEEP_GRACE_SECS"),
                3600,
                60..=30 * 86_400,
            )?),
            referral_expiry_days: parse_num(
                "REFERRAL_EXPIRY_DAYS",
                var("REFERRAL_EXPIRY_DAYS"),
                30,
                1..=3650,
            )? as u32,
            referral_expiry_interval: Duration::from_secs(parse_num(
                "REFERRAL_EXPIRY_INTERVAL_SECS",
                var("REFERRAL_EXPIRY_INTERVAL_SECS"),
                3600,
                0..=7 * 86_400,
            )?),
        })
    }

    /// The embedded default under `data_dir` with the given keys: what tests start from.
    pub fn embedded(data_dir: &Path, jwt_key: Vec<u8>, uic_key: Vec<u8>) -> Config {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: None,
            data_dir: data_dir.to_path_buf(),
            database_url: DatabaseUrl::new(format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("donghanh.db").display()
            )),
            blob_store: BlobStoreConfig::Disk {
                root: data_dir.join("blobs"),
            },
            jwt: JwtKeyConfig {
                keys: vec![("test".into(), SecretKey::new(jwt_key))],
            },
            uic_hmac_key: SecretKey::new(uic_key),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(90 * 86_400),
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(300),
            max_connections: 1024,
            trust_proxy_headers: false,
            public_url: None,
            console_idle_timeout: Duration::from_secs(3600),
            json_body_limit: 1024 * 1024,
            photo_body_limit: 15_000_000,
            odk_max_submission_bytes: 100_000_000,
            max_faults: 100,
            login_max_failures: 5,
            login_window: Duration::from_secs(900),
            login_max_failures_per_address: 100,
            password_queue_wait: Duration::from_secs(5),
            log_format: LogFormat::Text,
            photo_presigned_redirect: false,
            photo_sweep_interval: Duration::ZERO,
            photo_sweep_grace: Duration::from_secs(3600),
            referral_expiry_days: 30,
            referral_expiry_interval: Duration::ZERO,
        }
    }
}

fn parse_bool(
    var: &'static str,
    value: Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(fault(var, format!("expected true or false, got {other:?}"))),
    }
}

fn parse_num(
    var: &'static str,
    value: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(v) = value else { return Ok(default) };
    let n: u64 = v
        .trim()
        .parse()
        .map_err(|_| fault(var, format!("expected a whole number, got {v:?}")))?;
    if !range.contains(&n) {
        return Err(fault(
            var,
            format!(
                "must be between {} and {}, got {n}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(n)
}

fn decode_key(var: &'static str, b64: &str) -> Result<SecretKey, ConfigError> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| fault(var, "expected base64"))?;
    if bytes.len() < MIN_KEY_BYTES {
        return Err(fault(
            var,
            format!(
                "key must be at least {MIN_KEY_BYTES} bytes, got {}",
                bytes.len()
            ),
        ));
    }
    Ok(SecretKey::new(bytes))
}

/// `kid1:base64,kid2:base64`: the first key signs, every key verifies.
fn parse_jwt_keys(spec: &str) -> Result<JwtKeyConfig, ConfigError> {
    let mut keys = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kid, b64) = part
            .split_once(':')
            .ok_or_else(|| fault("JWT_KEYS", "expected `kid:base64key[,kid:base64key…]`"))?;
        let kid = kid.trim();
        if kid.is_empty() || keys.iter().any(|(k, _)| k == kid) {
            return Err(fault(
                "JWT_KEYS",
                "every key needs a distinct, non-empty kid",
            ));
        }
        keys.push((kid.to_string(), decode_key("JWT_KEYS", b64)?));
    }
    if keys.is_empty() {
        return Err(fault("JWT_KEYS", "no key given"));
    }
    Ok(JwtKeyConfig { keys })
}

/// Reads a base64 key file, creating it (mode 0600, in directories made 0700) with 32
/// random bytes on first start.
fn load_or_create_key(path: &Path, var: &'static str) -> Result<SecretKey, ConfigError> {
    let io = |e: std::io::Error| fault(var, format!("key file {}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(var, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_private_dir_all(dir).map_err(io)?;
            }
            let mut bytes = vec![0u8; MIN_KEY_BYTES];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            write_private(path, STANDARD.encode(&bytes).as_bytes()).map_err(io)?;
            Ok(SecretKey::new(bytes))
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// `create_dir_all`, every directory it creates readable by its owner only (0700): the
/// data directory holds key-population data.
pub fn create_private_dir_all(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    fn key() -> String {
        STANDARD.encode([7u8; 32])
    }

    #[test]
    fn embedded_default_generates_private_keys_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_str().expect("utf8");
        let first = config(&[("DATA_DIR", d)]).expect("defaults are valid");
        let second = config(&[("DATA_DIR", d)]).expect("defaults are valid");
        assert_eq!(first.jwt.keys[0].1.expose(), second.jwt.keys[0].1.expose());
        assert_eq!(first.uic_hmac_key.expose(), second.uic_hmac_key.expose());
        assert_ne!(first.uic_hmac_key.expose(), first.jwt.keys[0].1.expose());
        assert_eq!(first.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(first.metrics_addr, None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets/jwt_signing.key"))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_str().expect("utf8");
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("BIND_ADDR", "nowhere")], "BIND_ADDR"),
            (&[("METRICS_ADDR", "9100")], "METRICS_ADDR"),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("BLOB_STORE", "ftp")], "BLOB_STORE"),
            (&[("BLOB_STORE", "s3")], "S3_BUCKET"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("PUBLIC_URL", "donghanh.example.vn")], "PUBLIC_URL"),
            (
                &[("ACCESS_TOKEN_TTL_SECS", "soon")],
                "ACCESS_TOKEN_TTL_SECS",
            ),
            (&[("JWT_KEYS", "nokid")], "JWT_KEYS"),
            (&[("UIC_HMAC_KEY", "c2hvcnQ=")], "UIC_HMAC_KEY"),
            (&[("DATABASE_URL", "postgres://u:p@h/db")], "JWT_KEYS"),
        ];
        for (vars, expected) in cases {
            let mut vars = vars.to_vec();
            vars.push(("DATA_DIR", d));
            let err = config(&vars).expect_err("must be refused");
            assert_eq!(err.var, *expected, "{vars:?}");
        }
    }

    #[test]
    fn the_layout_is_read_without_creating_anything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("data");
        let d = d.to_str().expect("utf8");
        let layout =
            DataLayout::from_lookup(|k| (k == "DATA_DIR").then(|| d.to_string())).expect("layout");
        assert!(layout.is_embedded());
        assert_eq!(layout.database, Some(Path::new(d).join("donghanh.db")));
        assert_eq!(layout.blob_root, Some(Path::new(d).join("blobs")));
        assert!(!Path::new(d).exists(), "the layout created {d}");
        let config = config(&[("DATA_DIR", d)]).expect("valid");
        assert_eq!(DataLayout::of(&config), layout);
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        for (url, path) in [
            (
                "sqlite://./data/donghanh.db?mode=rwc",
                Some("./data/donghanh.db"),
            ),
            (
                "sqlite:///var/lib/donghanh/db.sqlite",
                Some("/var/lib/donghanh/db.sqlite"),
            ),
            ("sqlite:relative.db", Some("relative.db")),
            ("sqlite::memory:", None),
            ("postgres://u:p@h/db", None),
        ] {
            assert_eq!(
                DatabaseUrl::new(url).sqlite_path(),
                path.map(PathBuf::from),
                "{url}"
            );
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let k = key();
        let spec = format!("a:{k}");
        let cfg = config(&[
            (
                "DATABASE_URL",
                "postgres://app:hunter2secret@db:5432/donghanh",
            ),
            ("JWT_KEYS", &spec),
            ("UIC_HMAC_KEY", &k),
            ("BLOB_STORE", "s3"),
            ("S3_BUCKET", "b"),
            ("S3_ACCESS_KEY_ID", "id"),
            ("S3_SECRET_ACCESS_KEY", "s3secretvalue"),
        ])
        .expect("valid");
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2secret"), "{debug}");
        assert!(!debug.contains("s3secretvalue"), "{debug}");
        assert!(!debug.contains(&k), "{debug}");
        assert!(debug.contains("db:5432/donghanh"), "{debug}");
    }
}
