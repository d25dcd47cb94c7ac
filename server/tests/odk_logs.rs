//! An enrolled phone's token is its password: it must never reach the logs, even at
//! `RUST_LOG=debug`, though it is in every OpenRosa URL.

use serde_json::{json, Value};

mod common;
use common::{client, login, Server};

#[tokio::test]
async fn the_openrosa_token_is_not_logged() {
    let server = Server::start(&[("RUST_LOG", "debug")]);
    let admin = login(&server, "admin", &server.admin_password).await;
    let user =
        common::peer_educator(&server, &admin, "006", "peer.logs", "peer-password-123").await;
    let enrolment: Value = client()
        .post(server.url(&format!(
            "/api/v1/users/{}/devices",
            user["id"].as_str().unwrap_or("")
        )))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .expect("enrol")
        .json()
        .await
        .expect("json");
    let url = enrolment["odk_server_url"]
        .as_str()
        .expect("url")
        .to_string();
    let token = url.rsplit('/').next().expect("token").to_string();
    let code = enrolment["sign_in_code"]
        .as_str()
        .expect("code")
        .to_string();
    for path in [
        "/formList",
        "/forms/outreach_visit/1/form.xml",
        "/submission",
        "/nowhere",
    ] {
        let res = client()
            .get(format!("{url}{path}?deviceID=collect:x"))
            .send()
            .await
            .expect("get");
        assert!(res.status().as_u16() < 500, "{path}: {}", res.status());
    }
    let res = client()
        .post(server.url("/api/v1/auth/enrol"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 200);
    let logs = server.stop();
    assert!(logs.len() > 10, "debug logging is on");
    assert!(
        logs.iter().any(|l| l.contains("/odk/{token}/formList")),
        "the route is logged, by its pattern"
    );
    for (what, secret) in [("device token", &token), ("sign-in code", &code)] {
        let hit = logs.iter().find(|l| l.contains(secret.as_str()));
        assert!(hit.is_none(), "the {what} is in the logs: {hit:?}");
    }
}
