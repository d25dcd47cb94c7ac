//! The `donghanh` binary as an operator meets it: `--help`, a bad setting (one line,
//! exit code 2), and the embedded default (no environment at all) serving a ready API
//! with a first admin whose printed password logs in.

use std::process::Command;

mod common;
use common::{clean_command, Server};

#[test]
fn help_lists_the_commands() {
    let out = Command::new(common::bin())
        .arg("--help")
        .output()
        .expect("run");
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
    let server = Server::start(&[]);
    let client = common::client();
    let ready = client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let password = server.admin_password.clone();
    let login = client
        .post(server.url("/api/v1/auth/login"))
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
        .get(server.url("/api/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200);

    // The same admin signs in to the console, as a browser does: the form's CSRF cookie
    // and field, then a post from the console's own origin.
    let browser = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = browser
        .get(server.url("/console/login"))
        .send()
        .await
        .expect("console");
    assert_eq!(form.status(), 200);
    let cookies: Vec<String> = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next().map(str::to_string))
        .collect();
    let page = form.text().await.expect("page");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field")
        .to_string();
    let signed_in = browser
        .post(server.url("/console/login"))
        .header("cookie", cookies.join("; "))
        .header("origin", format!("http://{}", server.address))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "admin"),
            ("password", password.as_str()),
            ("next", "/console/"),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(
        signed_in.status(),
        303,
        "the printed admin signs in to the console"
    );
    assert_eq!(
        signed_in
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/console/")
    );

    // The generated secrets are private files under ./data.
    let data = server.data_dir();
    for f in [
        "secrets/jwt_signing.key",
        "secrets/uic_hmac.key",
        "donghanh.db",
    ] {
        assert!(data.join(f).exists(), "{f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("secrets/uic_hmac.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Logs never carry passwords or tokens.
    let logs = server.stop();
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
