//! The test harness: `spawn_app(backend)` starts the real router on 127.0.0.1:0 with a
//! configuration built in code, a fresh database (SQLite temp file, or
//! `CREATE DATABASE test_<uuid>` on the PostgreSQL that `scripts/test.sh` started), and a
//! fresh key prefix in the Garage bucket. It returns a client and helpers to act as each role.

use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::{Method, Response, StatusCode};
use sea_orm::{ColumnTrait, ConnectionTrait, Database, EntityTrait, QueryFilter};
use serde_json::Value;
use server::config::{BlobStoreConfig, S3Config};
use server::db::entities::org_units;
use server::services::accounts;
use server::{AppState, Config};
use shared_models::{Role, TokenPairOut, UserOut};
use uuid::Uuid;

/// Which database an app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether missing services are a failure (CI, `scripts/test.sh`) rather than a skip.
pub fn services_required() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
        || std::env::var("DONGHANH_TEST_REQUIRE_SERVICES").is_ok()
}

/// The PostgreSQL admin URL, or `None` (skip) outside CI when it is not configured.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var("DONGHANH_TEST_PG_URL") {
        Ok(url) => Some(url),
        Err(_) if services_required() => {
            panic!("DONGHANH_TEST_PG_URL is not set: run the tests with scripts/test.sh")
        }
        Err(_) => {
            eprintln!("skipping: DONGHANH_TEST_PG_URL is not set (run scripts/test.sh)");
            None
        }
    }
}

/// The Garage bucket under a fresh prefix, or `None` outside CI when not configured.
pub fn s3_config(prefix: &str) -> Option<S3Config> {
    let var = |k: &str| std::env::var(k).ok();
    match (
        var("DONGHANH_TEST_S3_ENDPOINT"),
        var("DONGHANH_TEST_S3_BUCKET"),
        var("DONGHANH_TEST_S3_ACCESS_KEY_ID"),
        var("DONGHANH_TEST_S3_SECRET_ACCESS_KEY"),
    ) {
        (Some(endpoint), Some(bucket), Some(key), Some(secret)) => Some(S3Config {
            endpoint: Some(endpoint),
            region: var("DONGHANH_TEST_S3_REGION").unwrap_or_else(|| "garage".into()),
            bucket,
            access_key_id: key,
            secret_access_key: secret.into(),
            force_path_style: true,
            prefix: prefix.to_string(),
        }),
        _ if services_required() => {
            panic!("DONGHANH_TEST_S3_* are not set: run the tests with scripts/test.sh")
        }
        _ => None,
    }
}

/// A fresh PostgreSQL database, dropped when this guard goes.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// Creates `test_<uuid>` on the test server.
    pub async fn create(admin_url: &str) -> PgDatabase {
        let name = format!("test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(admin_url)
            .await
            .expect("connect to PostgreSQL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(admin_url);
        PgDatabase {
            url: format!("{base}/{name}"),
            admin_url: admin_url.to_string(),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // The test's runtime is going away: drop the database from a runtime of our own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            })
        })
        .join();
        drop(dropped);
    }
}

/// A running application and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    /// The private metrics listener (`METRICS_ADDR`), when the config keeps metrics.
    pub metrics_base: Option<String>,
    pub client: reqwest::Client,
    pub state: AppState,
    pub jwt_key: Vec<u8>,
    pub admin_username: String,
    pub admin_password: String,
    counter: AtomicU32,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _pg: Option<PgDatabase>,
    _tmp: tempfile::TempDir,
}

/// Starts an app on `backend`; `None` means the backend is not configured here (skip).
pub async fn try_spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, |_| {}).await
}

/// Starts an app, letting the test adjust the configuration first.
pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let jwt_key: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
    let uic_key: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
    let mut config = Config::embedded(tmp.path(), jwt_key.clone(), uic_key);
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let db = PgDatabase::create(&pg_admin_url()?).await;
            config.database_url = server::config::DatabaseUrl::new(db.url.clone());
            Some(db)
        }
    };
    if let Some(s3) = s3_config(&format!("test-{}/", Uuid::new_v4().simple())) {
        config.blob_store = BlobStoreConfig::S3(s3);
    }
    // Every app keeps metrics, on a port of its own; a test may turn them off.
    config.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    adjust(&mut config);
    let state = AppState::build(config).await.expect("build app state");
    server::startup::prepare(&state)
        .await
        .expect("prepare the database");
    let (admin, admin_password) =
        accounts::create_account(&state, "admin", Role::Admin, None, None)
            .await
            .expect("create admin");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let metrics = match state.config.metrics_addr {
        Some(at) => Some(tokio::net::TcpListener::bind(at).await.expect("bind")),
        None => None,
    };
    let metrics_base = metrics
        .as_ref()
        .map(|l| format!("http://{}", l.local_addr().expect("local addr")));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve_state = state.clone();
    tokio::spawn(async move {
        server::serve_with_metrics(listener, metrics, serve_state, async {
            let _ = rx.await;
        })
        .await
        .expect("server");
    });
    Some(TestApp {
        base: format!("http://{addr}"),
        metrics_base,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        state,

        jwt_key,
        admin_username: admin.username,
        admin_password,
        counter: AtomicU32::new(0),
        shutdown: Some(tx),
        _pg: pg,
        _tmp: tmp,
    })
}

fn rand_byte() -> u8 {
    Uuid::new_v4().as_bytes()[0]
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A user made for a test, with a fresh session.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: UserOut,
    pub password: String,
    pub tokens: TokenPairOut,
}

impl Actor {
    pub fn token(&self) -> &str {
        &self.tokens.access_token
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The id of the seeded org unit with this code (`01` Hà Nội, `006` Đống Đa, `002` Hoàn Kiếm…).
    pub async fn unit(&self, code: &str) -> Uuid {
        org_units::Entity::find()
            .filter(org_units::Column::Code.eq(code))
            .one(&self.state.db)
            .await
            .expect("query org unit")
            .unwrap_or_else(|| panic!("no org unit {code}"))
            .id
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// Logs in over HTTP; panics unless it answers 200.
    pub async fn login(&self, username: &str, password: &str) -> TokenPairOut {
        let res = self
            .post(
                "/api/v1/auth/login",
                None,
                &serde_json::json!({ "username": username, "password": password, "device_id": "test-phone" }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "login of {username}");
        res.json().await.expect("token pair")
    }

    /// The seeded admin, logged in.
    pub async fn admin(&self) -> Actor {
        let tokens = self.login(&self.admin_username, &self.admin_password).await;
        Actor {
            user: tokens.user.clone(),
            password: self.admin_password.clone(),
            tokens,
        }
    }

    /// A new user of `role` in the unit with `unit_code`, logged in.
    pub async fn actor(&self, role: Role, unit_code: &str) -> Actor {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let username = format!("{}.{}.{n}", role.as_str().replace('_', "-"), unit_code);
        let (user, password) =
            accounts::create_account(&self.state, &username, role, Some(unit_code), None)
                .await
                .expect("create user");
        let tokens = self.login(&user.username, &password).await;
        Actor {
            user,
            password,
            tokens,
        }
    }

    /// Signs an access token with the app's own key (for crafting expired tokens and the like).
    pub fn sign(&self, kid: &str, claims: &Value, key: &[u8]) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .expect("sign")
    }
}

/// Asserts a problem+json answer with this status, and returns its body.
pub async fn problem(res: Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(ct, "application/problem+json", "content type");
    let body: Value = res.json().await.expect("problem body");
    assert_eq!(body["status"], status.as_u16(), "status in body");
    assert!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "type: {body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "title: {body}"
    );
    body
}

/// The `(field, code)` pairs of a problem's `errors`.
pub fn faults(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or("").to_string(),
                        e["code"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One `#[tokio::test]` named `$backend` that runs `super::$name` on that backend (or
/// skips when it is not configured, which `scripts/test.sh` never allows).
#[macro_export]
macro_rules! backend_test {
    ($name:ident, $backend:ident, $kind:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $backend() {
            if let Some(app) = $crate::helpers::try_spawn_app($crate::helpers::Backend::$kind).await
            {
                super::$name(app).await
            }
        }
    };
}

/// Runs a test body on SQLite and on PostgreSQL: `on_both!(name, …)` makes `name::sqlite`
/// and `name::postgres` from `async fn name(app: TestApp)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                $crate::backend_test!($name, sqlite, Sqlite);
                $crate::backend_test!($name, postgres, Postgres);
            }
        )*
    };
}

/// Runs a test body on PostgreSQL only (what it proves needs concurrent sessions or
/// PostgreSQL's own behaviour): `on_postgres!(name, …)` makes `name::postgres`.
#[macro_export]
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                $crate::backend_test!($name, postgres, Postgres);
            }
        )*
    };
}

/// This crate's directory, as the test runner says at run time: a test binary built in
/// another checkout that shares the target directory (CI's clean clone) carries that
/// checkout's path at compile time.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
