//! The `donghanh` binary as an operator meets it: `--help`, a bad setting (one line,
//! exit code 2), and the embedded default (no environment at all) serving a ready API
//! with a first admin whose printed password logs in.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_donghanh");

fn clean_command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

#[test]
fn help_lists_the_commands() {
    let out = Command::new(BIN).arg("--help").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "serve",
        "migrate",
        "create-admin",
        "seed-demo",
        "sweep-photos",
        "expire-referrals",
        "rebuild-reports",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from --help:\n{text}");
    }
}

#[test]
fn create_admin_refuses_a_username_nobody_could_log_in_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = clean_command(dir.path())
        .args(["create-admin", "--username", "Chief.Admin"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lowercase"), "{stderr}");
    let out = clean_command(dir.path())
        .args(["create-admin", "--username", "chief.admin"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("password:"));
}

#[test]
fn report_cells_rebuild_and_check_on_the_embedded_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, said) in [
        (&["rebuild-reports"][..], "report cells rebuilt"),
        (&["rebuild-reports", "--check"][..], "report cells match"),
    ] {
        let out = clean_command(dir.path()).args(args).output().expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(said), "{args:?}: {stdout}");
    }
}

#[test]
fn a_bad_setting_is_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (var, value) in [
        ("BIND_ADDR", "not-an-address"),
        ("S3_FORCE_PATH_STYLE", "maybe"),
        ("LOG_FORMAT", "xml"),
    ] {
        let mut cmd = clean_command(dir.path());
        cmd.arg("serve").env(var, value);
        if var == "S3_FORCE_PATH_STYLE" {
            cmd.env("BLOB_STORE", "s3")
                .env("S3_BUCKET", "b")
                .env("S3_ACCESS_KEY_ID", "k")
                .env("S3_SECRET_ACCESS_KEY", "very-secret-value");
        }
        let out = cmd.output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(
            !stderr.contains("very-secret-value") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn the_embedded_default_serves_and_its_first_admin_logs_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = clean_command(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(("out".into(), line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(("err".into(), line));
        }
    });
    let mut password = None;
    let mut address = None;
    let mut logs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (password.is_none() || address.is_none()) && Instant::now() < deadline {
        let Ok((stream, line)) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if stream == "out" {
            if let Some(p) = line.trim().strip_prefix("password: ") {
                password = Some(p.to_string());
            }
        } else {
            if let Some(rest) = line.split("address=").nth(1) {
                let addr: String = rest
                    .chars()
                    .filter(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                address = Some(addr);
            }
            logs.push(line);
        }
    }
    let (Some(password), Some(address)) = (password, address) else {
        let _ = child.kill();
        panic!("server did not start: {logs:#?}");
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let ready = client
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let login = client
        .post(format!("http://{address}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "admin", "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let pair: serde_json::Value = login.json().await.expect("pair");
    let access = pair["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let refresh = pair["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let me = client
        .get(format!("http://{address}/api/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200);

    // The generated secrets are private files under ./data.
    for f in [
        "data/secrets/jwt_signing.key",
        "data/secrets/uic_hmac.key",
        "data/donghanh.db",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/secrets/uic_hmac.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Logs never carry passwords or tokens.
    let _ = child.kill();
    let _ = child.wait();
    while let Ok((stream, line)) = rx.recv_timeout(Duration::from_millis(200)) {
        if stream == "err" {
            logs.push(line);
        }
    }
    assert!(!logs.is_empty(), "the server logged something");
    for (what, secret) in [
        ("password", &password),
        ("access token", &access),
        ("refresh token", &refresh),
    ] {
        assert!(
            !logs.iter().any(|l| l.contains(secret.as_str())),
            "{what} in logs"
        );
    }
}
