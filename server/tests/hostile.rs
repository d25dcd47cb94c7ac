//! The server as an attacker on the internet meets it: the release-shaped binary on its
//! embedded default, measured from outside (answer sizes, the process's resident memory,
//! its open sockets, how long a slow connection lives). Each attack here once cost the
//! server hundreds of megabytes or a connection held forever.
//!
//! Figures are printed (`cargo test -p server --test hostile -- --nocapture`); set
//! `DONGHANH_BIN=target/release/donghanh` to measure the release build.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{client, login, Server};

const MIB: u64 = 1024 * 1024;

/// Đống Đa's id and a peer educator there, logged in.
async fn peer_educator(server: &Server) -> (String, String) {
    let admin = login(server, "admin", &server.admin_password).await;
    let password = "peer-password-123";
    let user = common::peer_educator(server, &admin, "006", "peer.dongda", password).await;
    let unit = user["org_unit_id"].as_str().expect("unit").to_string();
    (unit, login(server, "peer.dongda", password).await)
}

#[tokio::test]
async fn a_body_of_300000_empty_contacts_is_one_small_answer() {
    let server = Server::start(&[]);
    let (unit, token) = peer_educator(&server).await;
    let now = chrono::Utc::now();
    // 300,000 `{}` in a body under the 1 MiB limit: once 2,100,001 faults, 205 MB.
    let contacts = vec![json!({}); 300_000];
    let body = json!({
        "id": uuid::Uuid::new_v4(),
        "form_id": "outreach_visit",
        "form_version": 1,
        "started_at": (now - chrono::Duration::minutes(20)).to_rfc3339(),
        "completed_at": (now - chrono::Duration::minutes(5)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": {
            "visit_date": now.date_naive().to_string(),
            "place_type": "karaoke",
            "contacts": contacts,
        },
    });
    let bytes = serde_json::to_vec(&body).expect("encode");
    assert!(bytes.len() < 1024 * 1024, "{} bytes", bytes.len());
    let before = server.rss();
    let started = Instant::now();
    let res = client()
        .post(server.url("/api/v1/submissions"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(bytes.clone())
        .send()
        .await
        .expect("submit");
    assert_eq!(res.status(), 422);
    let answer = res.bytes().await.expect("answer");
    let took = started.elapsed();
    let after = server.peak_rss();
    let problem: Value = serde_json::from_slice(&answer).expect("problem");
    let errors = problem["errors"].as_array().expect("errors");
    // (Never print the whole list: it was once 205 MB.)
    assert_eq!(
        errors.len(),
        1,
        "one fault for the whole repeat; the first of {}: {}",
        errors.len(),
        errors[0]
    );
    assert_eq!(errors[0]["field"], "answers.contacts");
    assert_eq!(errors[0]["code"], "too_many");
    assert!(answer.len() < 4096, "{} bytes", answer.len());
    eprintln!(
        "300,000 empty contacts ({} bytes): 422 of {} bytes in {:.2} s; RSS {} MiB -> peak {} MiB",
        bytes.len(),
        answer.len(),
        took.as_secs_f64(),
        before / MIB,
        after / MIB
    );
    // Parsing the body itself costs a few tens of MiB; the old walk cost 700.
    assert!(
        after < before + 150 * MIB,
        "RSS grew from {} MiB to {} MiB",
        before / MIB,
        after / MIB
    );
    // Nothing was stored.
    let list: Value = client()
        .get(server.url("/api/v1/submissions"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_flood_of_failed_logins_leaves_memory_flat() {
    // Every login from 127.0.0.1 runs argon2: the per-address ceiling is lifted here so
    // the flood reaches the hashing pool.
    let server = Server::start(&[("LOGIN_MAX_FAILURES_PER_ADDRESS", "100000")]);
    let client = client();
    // Warm up: one login so the pool's buffers exist.
    let _ = login(&server, "admin", &server.admin_password).await;
    let before = server.rss();
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _round in 0..2 {
        let attempts = (0..128).map(|_| {
            let client = client.clone();
            let url = server.url("/api/v1/auth/login");
            tokio::spawn(async move {
                let res = client
                    .post(url)
                    .json(&json!({
                        "username": format!("nobody-{}", uuid::Uuid::new_v4().simple()),
                        "password": "wrong-password-x",
                    }))
                    .send()
                    .await
                    .expect("login");
                let retry_after = res.headers().contains_key("retry-after");
                (res.status().as_u16(), retry_after)
            })
        });
        for attempt in futures::future::join_all(attempts).await {
            let (status, retry_after) = attempt.expect("task");
            assert!(
                status == 401 || (status == 503 && retry_after),
                "a failed login answered {status}"
            );
            *statuses.entry(status).or_default() += 1;
        }
    }
    let took = started.elapsed();
    let after = server.rss();
    let peak = server.peak_rss();
    eprintln!(
        "256 failed logins, 128 in flight: {statuses:?} in {:.1} s; RSS {} MiB -> {} MiB (peak {} MiB)",
        took.as_secs_f64(),
        before / MIB,
        after / MIB,
        peak / MIB
    );
    assert!(statuses.get(&401).copied().unwrap_or(0) > 0);
    // One 19 MiB argon2 buffer per core at most, reused: once +2.4 GB, kept.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let bound = before + cores * 20 * MIB + 64 * MIB;
    assert!(
        peak < bound,
        "peak RSS {} MiB past {} MiB",
        peak / MIB,
        bound / MIB
    );
}

#[tokio::test]
async fn logins_past_the_hashing_queue_get_503_with_retry_after() {
    let server = Server::start(&[
        ("LOGIN_MAX_FAILURES_PER_ADDRESS", "100000"),
        ("PASSWORD_QUEUE_WAIT_MS", "1"),
    ]);
    let client = client();
    let attempts = (0..64).map(|i| {
        let client = client.clone();
        let url = server.url("/api/v1/auth/login");
        tokio::spawn(async move {
            let res = client
                .post(url)
                .json(&json!({ "username": format!("nobody-{i}"), "password": "wrong-password-x" }))
                .send()
                .await
                .expect("login");
            let status = res.status().as_u16();
            let retry = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let kind = res.headers().get("content-type").cloned();
            (status, retry, kind)
        })
    });
    let mut busy = 0;
    for attempt in futures::future::join_all(attempts).await {
        let (status, retry, kind) = attempt.expect("task");
        match status {
            401 => {}
            503 => {
                busy += 1;
                assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1)));
                assert_eq!(
                    kind.as_ref().and_then(|k| k.to_str().ok()),
                    Some("application/problem+json")
                );
            }
            other => panic!("a login answered {other}"),
        }
    }
    assert!(busy > 0, "64 logins at once never found the pool busy");
}

/// Opens a connection and sends `bytes` one at a time, one a second, until the server
/// closes it or `give_up` passes; answers how long the connection lived.
fn drip(address: &str, bytes: &[u8], give_up: Duration) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut buf = [0u8; 1024];
    for byte in bytes.iter().cycle() {
        if started.elapsed() > give_up {
            break;
        }
        if stream.write_all(&[*byte]).is_err() {
            return started.elapsed();
        }
        let second = Instant::now();
        while second.elapsed() < Duration::from_secs(1) {
            match stream.read(&mut buf) {
                Ok(0) => return started.elapsed(),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return started.elapsed(),
            }
        }
    }
    started.elapsed()
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    let server = Server::start(&[("HEADER_READ_TIMEOUT_SECS", "3")]);
    let baseline = server.open_sockets();
    // 20 slowloris connections, one header byte a second, and 200 idle ones.
    let address = server.address.clone();
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let address = address.clone();
            std::thread::spawn(move || {
                drip(
                    &address,
                    b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    Duration::from_secs(60),
                )
            })
        })
        .collect();
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(&address).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let held = server.open_sockets();
    assert!(
        held >= baseline + 200,
        "the server holds {held} sockets, {baseline} before"
    );
    let lived: Vec<Duration> = slow
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let longest = lived.iter().max().copied().unwrap_or_default();
    eprintln!(
        "slowloris closed after {:.1} s at most (timeout 3 s); {} sockets held at the height",
        longest.as_secs_f64(),
        held
    );
    assert!(
        longest < Duration::from_secs(30),
        "a slowloris connection lived {longest:?}"
    );
    // The idle ones went too: each reads end-of-stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.open_sockets() > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        server.open_sockets() <= baseline,
        "{} sockets still open, {baseline} before",
        server.open_sockets()
    );
    for mut conn in idle {
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        assert!(matches!(conn.read(&mut buf), Ok(0) | Err(_)));
    }
    // And the server still answers.
    let res = client()
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408() {
    let server = Server::start(&[("REQUEST_TIMEOUT_SECS", "2")]);
    let mut stream = TcpStream::connect(&server.address).expect("connect");
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait() {
    let server = Server::start(&[("MAX_CONNECTIONS", "4"), ("HEADER_READ_TIMEOUT_SECS", "60")]);
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&server.address).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // A fifth connection is not served while the four are held...
    let url = server.url("/healthz");
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let res = client().get(url).send().await.expect("healthz");
        (res.status().as_u16(), started.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!waiting.is_finished(), "served past the cap");
    // ...and is as soon as they go.
    drop(idle);
    let (status, _) = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("served after the cap freed")
        .expect("task");
    assert_eq!(status, 200);
}
