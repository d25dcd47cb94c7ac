//! The real `donghanh` binary as a child process on its embedded default, for tests
//! that look at the process itself (its logs, memory, open connections).
//! `DONGHANH_BIN` points the tests at another build (the release binary, for figures).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> String {
    std::env::var("DONGHANH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_donghanh").to_string())
}

/// No environment beyond `DATA_DIR`, for [`donghanh`] and [`Node::start`].
pub const NO_ENV: &[(&str, &str)] = &[];

/// Runs `donghanh ARGS` in `work` on `data_dir` with `env` and returns what it did.
pub fn donghanh<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
    work: &std::path::Path,
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(K, V)],
) -> std::process::Output {
    let mut cmd = clean_command(work);
    cmd.env("DATA_DIR", data_dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run donghanh")
}

/// A finished command's status and output, for assertion messages.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The binary with an empty environment (but `PATH`), run in `dir`.
pub fn clean_command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// A `donghanh serve` child on 127.0.0.1 and a free port, killed on drop.
pub struct Server {
    pub child: Child,
    /// `host:port`.
    pub address: String,
    /// The first admin's password, as printed once at start.
    pub admin_password: String,
    lines: Receiver<(bool, String)>,
    /// What it wrote to stderr (the logs) so far; `drain_logs` adds the rest.
    pub logs: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with these extra environment variables and waits until it listens.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = clean_command(dir.path());
        cmd.args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn donghanh");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send((false, line));
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx2.send((true, line));
            }
        });
        let mut password = None;
        let mut address = None;
        let mut logs = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        while (password.is_none() || address.is_none()) && Instant::now() < deadline {
            let Ok((is_log, line)) = rx.recv_timeout(Duration::from_secs(1)) else {
                continue;
            };
            if !is_log {
                if let Some(p) = line.trim().strip_prefix("password: ") {
                    password = Some(p.to_string());
                }
                continue;
            }
            if let Some(rest) = line.split("address=").nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                address = Some(addr);
            }
            logs.push(line);
        }
        let (Some(admin_password), Some(address)) = (password, address) else {
            let _ = child.kill();
            panic!("server did not start: {logs:#?}");
        };
        Server {
            child,
            address,
            admin_password,
            lines: rx,
            logs,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The data directory the server runs in (`./data` under its working directory).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    /// Resident memory of the server process, in bytes (`VmRSS`).
    pub fn rss(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmRSS:") * 1024
    }

    /// Highest resident memory the process has had, in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmHWM:") * 1024
    }

    /// TCP sockets the process holds open (its file descriptors that are sockets,
    /// the listener included).
    pub fn open_sockets(&self) -> usize {
        let dir = format!("/proc/{}/fd", self.child.id());
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| {
                        std::fs::read_link(e.path())
                            .map(|t| t.to_string_lossy().starts_with("socket:"))
                            .unwrap_or(false)
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// Stops the server and returns every log line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain_logs();
        std::mem::take(&mut self.logs)
    }

    fn drain_logs(&mut self) {
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok((true, line)) => self.logs.push(line),
                Ok((false, _)) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A reqwest client that never uses a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Logs in and returns the access token.
pub async fn login(server: &Server, username: &str, password: &str) -> String {
    let res = client()
        .post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 200, "login of {username}");
    let pair: serde_json::Value = res.json().await.expect("pair");
    pair["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

/// The id of the seeded org unit with this code (`006` Đống Đa), as an admin reads it.
pub async fn unit_id(server: &Server, admin_token: &str, code: &str) -> String {
    let units: serde_json::Value = client()
        .get(server.url("/api/v1/org-units?limit=200"))
        .bearer_auth(admin_token)
        .send()
        .await
        .expect("org units")
        .json()
        .await
        .expect("json");
    units["items"]
        .as_array()
        .and_then(|items| items.iter().find(|u| u["code"] == code))
        .and_then(|u| u["id"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no org unit {code}"))
}

/// A peer educator in the unit with `code`, created by the admin; answers the user.
pub async fn peer_educator(
    server: &Server,
    admin_token: &str,
    code: &str,
    username: &str,
    password: &str,
) -> serde_json::Value {
    let unit = unit_id(server, admin_token, code).await;
    let res = client()
        .post(server.url("/api/v1/users"))
        .bearer_auth(admin_token)
        .json(&serde_json::json!({
            "username": username, "password": password,
            "role": "peer_educator", "org_unit_id": unit,
        }))
        .send()
        .await
        .expect("create user");
    assert_eq!(res.status(), 201, "creating {username}");
    res.json().await.expect("user")
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

/// The Garage bucket as `S3_*` variables under a fresh prefix, or `None` (skip)
/// outside CI when it is not configured.
pub fn s3_env(prefix: &str) -> Option<Vec<(String, String)>> {
    let var = |k: &str| std::env::var(k).ok();
    match (
        var("DONGHANH_TEST_S3_ENDPOINT"),
        var("DONGHANH_TEST_S3_BUCKET"),
        var("DONGHANH_TEST_S3_ACCESS_KEY_ID"),
        var("DONGHANH_TEST_S3_SECRET_ACCESS_KEY"),
    ) {
        (Some(endpoint), Some(bucket), Some(key), Some(secret)) => Some(vec![
            ("S3_ENDPOINT".into(), endpoint),
            (
                "S3_REGION".into(),
                var("DONGHANH_TEST_S3_REGION").unwrap_or_else(|| "garage".into()),
            ),
            ("S3_BUCKET".into(), bucket),
            ("S3_ACCESS_KEY_ID".into(), key),
            ("S3_SECRET_ACCESS_KEY".into(), secret),
            ("S3_PREFIX".into(), prefix.to_string()),
        ]),
        _ if services_required() => {
            panic!("DONGHANH_TEST_S3_* are not set: run the tests with scripts/test.sh")
        }
        _ => {
            eprintln!("skipping: DONGHANH_TEST_S3_* are not set (run scripts/test.sh)");
            None
        }
    }
}

/// A fresh PostgreSQL database on the test server, dropped when this guard goes.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// Creates `test_<uuid>`.
    pub async fn create(admin_url: &str) -> PgDatabase {
        use sea_orm::ConnectionTrait;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(admin_url)
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
                use sea_orm::ConnectionTrait;
                if let Ok(admin) = sea_orm::Database::connect(&admin_url).await {
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

/// `donghanh serve` on a data directory and environment the test chooses; killed on drop.
pub struct Node {
    pub child: Child,
    pub address: String,
    /// The first admin's password, when this start created one.
    pub admin_password: Option<String>,
}

impl Node {
    /// Starts a server with `DATA_DIR=data_dir` and `env`, and waits until it listens;
    /// `first` says whether it must create (and print) a first admin.
    pub fn start<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
        work: &std::path::Path,
        data_dir: &std::path::Path,
        env: &[(K, V)],
        first: bool,
    ) -> Node {
        let mut cmd = clean_command(work);
        cmd.env("DATA_DIR", data_dir)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn donghanh serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send((false, line));
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx2.send((true, line));
            }
        });
        let (mut password, mut address) = (None, None);
        let mut logs = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while (address.is_none() || (first && password.is_none())) && Instant::now() < deadline {
            let Ok((is_log, line)) = rx.recv_timeout(Duration::from_secs(1)) else {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("server exited with {status}: {logs:#?}");
                }
                continue;
            };
            if !is_log {
                if let Some(p) = line.trim().strip_prefix("password: ") {
                    password = Some(p.to_string());
                }
            } else if let Some(rest) = line.split("address=").nth(1) {
                address = Some(
                    rest.chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect::<String>(),
                );
            } else {
                logs.push(line);
            }
        }
        let Some(address) = address else {
            let _ = child.kill();
            panic!("server did not start: {logs:#?}");
        };
        assert!(!first || password.is_some(), "no first admin password");
        Node {
            child,
            address,
            admin_password: password,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Kills the server (as a power cut would: the WAL stays as it is).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir` with its SHA-256, by relative path.
pub fn file_digests(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    let mut out = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.map(|e| e.expect("entry")) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir");
                let bytes = std::fs::read(&path).expect("read");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    hex::encode(sha2::Sha256::digest(&bytes)),
                );
            }
        }
    }
    out
}

/// A small real PNG, different for each seed.
pub fn png(seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 8, 8);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().expect("png header");
        let bytes = seed.to_le_bytes();
        let pixels: Vec<u8> = (0..8 * 8 * 3)
            .map(|i| bytes[i % 8].wrapping_add(i as u8))
            .collect();
        writer.write_image_data(&pixels).expect("png data");
    }
    out
}

/// Syncs from `since` to the end as a phone does: every page, and the last cursor; or the
/// first refusal's status and body.
#[allow(dead_code)]
pub async fn sync_pages(
    node: &Node,
    token: &str,
    since: Option<&str>,
) -> Result<(Vec<serde_json::Value>, String), (u16, String)> {
    let mut cursor = since.map(str::to_string);
    let mut pages = Vec::new();
    loop {
        let mut url = node.url("/api/v1/sync?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&since={c}"));
        }
        let res = client()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("sync");
        let status = res.status().as_u16();
        let body = res.text().await.expect("body");
        if status != 200 {
            return Err((status, body));
        }
        let page: serde_json::Value = serde_json::from_str(&body).expect("json");
        cursor = page["cursor"].as_str().map(str::to_string);
        let more = page["has_more"] == serde_json::json!(true);
        pages.push(page);
        if !more {
            return Ok((pages, cursor.expect("cursor")));
        }
    }
}
