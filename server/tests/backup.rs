//! Backups and restores of the embedded default as an operator meets them: the real
//! `donghanh` binary on a data directory of its own, phones submitting over HTTP while
//! `donghanh backup` runs, `backup --verify` on damaged copies, `restore` into a fresh
//! directory and a server started on it, and the data directory's permissions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sea_orm::sqlx::{self, ConnectOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

mod common;
use common::{clean_command, donghanh, png, text, Node};

const PEER: &str = "peer.backup";
const PEER_PASSWORD: &str = "peer-password-123";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `donghanh backup --to dir` on the data directory `data`.
fn backup_to(work: &Path, data: &Path, dir: &Path) -> Output {
    let dir = dir.to_str().expect("utf8");
    donghanh(work, data, &["backup", "--to", dir], common::NO_ENV)
}

/// `donghanh restore --from dir` into the data directory `data`.
fn restore_from(work: &Path, data: &Path, dir: &Path) -> Output {
    let dir = dir.to_str().expect("utf8");
    donghanh(work, data, &["restore", "--from", dir], common::NO_ENV)
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "{}", text(out));
}

fn assert_exit_2(out: &Output) {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
}

async fn login(node: &Node, username: &str, password: &str) -> String {
    let res = common::client()
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 200, "login of {username}");
    let pair: Value = res.json().await.expect("pair");
    pair["access_token"].as_str().expect("token").to_string()
}

/// The first admin creates a peer educator in Đống Đa; answers its unit and token.
async fn peer(node: &Node) -> (String, String) {
    let admin = login(
        node,
        "admin",
        node.admin_password.as_deref().expect("admin"),
    )
    .await;
    let units: Value = common::client()
        .get(node.url("/api/v1/org-units?limit=200"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("units")
        .json()
        .await
        .expect("json");
    let unit = units["items"]
        .as_array()
        .and_then(|items| items.iter().find(|u| u["code"] == "006"))
        .and_then(|u| u["id"].as_str())
        .expect("Đống Đa")
        .to_string();
    let res = common::client()
        .post(node.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({
            "username": PEER, "password": PEER_PASSWORD,
            "role": "peer_educator", "org_unit_id": unit,
        }))
        .send()
        .await
        .expect("create peer");
    assert_eq!(res.status(), 201);
    (unit, login(node, PEER, PEER_PASSWORD).await)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One visit as a phone sends it, naming one photo.
fn visit(unit: &str, uic: &str, photo_sha: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "id": Uuid::new_v4(),
        "form_id": "outreach_visit",
        "form_version": 1,
        "started_at": (now - chrono::Duration::minutes(20)).to_rfc3339(),
        "completed_at": (now - chrono::Duration::minutes(5)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": {
            "visit_date": now.date_naive().to_string(),
            "place_type": "karaoke",
            "contacts": [{
                "uic": uic, "age_band": "25_34", "condoms_male": 10, "condoms_female": 2,
                "lubricant": 5, "self_test_kits": 1, "counselled": true, "referrals": ["hiv_test"],
            }],
            "photos": [{ "photo": photo_sha }],
        },
    })
}

/// A visit a writer sent: when it and its photo were acknowledged.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    photo_sha: String,
    photo: Vec<u8>,
    visit_acked: Instant,
    photo_acked: Option<Instant>,
}

/// Submits a visit and uploads its photo, as a phone does.
async fn submit_with_photo(
    client: &reqwest::Client,
    node_url: &str,
    token: &str,
    unit: &str,
    seed: u64,
) -> (Sent, Duration) {
    let photo = png(seed);
    let sha = sha256_hex(&photo);
    let body = visit(unit, &format!("UIC-{seed}-1990-F"), &sha);
    let id = body["id"].as_str().expect("id").to_string();
    let started = Instant::now();
    let res = client
        .post(format!("{node_url}/api/v1/submissions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("submit");
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let visit_acked = Instant::now();
    let mut slowest = visit_acked - started;
    let res = client
        .put(format!("{node_url}/api/v1/submissions/{id}/photos/{sha}"))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(photo.clone())
        .send()
        .await
        .expect("put photo");
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let photo_acked = Instant::now();
    slowest = slowest.max(photo_acked - visit_acked);
    (
        Sent {
            id,
            photo_sha: sha,
            photo,
            visit_acked,
            photo_acked: Some(photo_acked),
        },
        slowest,
    )
}

/// A data directory with a few visits and photos, its server stopped.
async fn populated(work: &Path, visits: u64) -> (PathBuf, Vec<Sent>) {
    let data = work.join("data");
    let node = Node::start(work, &data, common::NO_ENV, true);
    let (unit, token) = peer(&node).await;
    let client = common::client();
    let mut sent = Vec::new();
    for seed in 0..visits {
        sent.push(
            submit_with_photo(&client, &node.url(""), &token, &unit, seed)
                .await
                .0,
        );
    }
    node.stop();
    (data, sent)
}

async fn open(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .expect("open database")
}

async fn tables(conn: &mut SqliteConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(conn)
    .await
    .expect("tables")
}

/// Rows of each table of `a` that `b` lacks (or holds with other values). The sync
/// counter's epoch is left out: a restore gives it a new one (checked on its own).
async fn rows_missing(a: &Path, b: &Path) -> BTreeMap<String, i64> {
    let mut conn = open(a).await;
    sqlx::query("ATTACH DATABASE ? AS other")
        .bind(b.to_str().expect("utf8"))
        .execute(&mut conn)
        .await
        .expect("attach");
    let mut missing = BTreeMap::new();
    for table in tables(&mut conn).await {
        let columns = if table == "sync_counter" {
            "id, value"
        } else {
            "*"
        };
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM (SELECT {columns} FROM main.\"{table}\" EXCEPT SELECT {columns} FROM other.\"{table}\")"
        ))
        .fetch_one(&mut conn)
        .await
        .expect("compare");
        if n > 0 {
            missing.insert(table, n);
        }
    }
    missing
}

/// Every file under `dir` (relative path → SHA-256), directories left out.
fn files(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
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
                out.insert(rel.to_string_lossy().into_owned(), sha256_hex(&bytes));
            }
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn object_path(backup: &Path, s: &Sent) -> PathBuf {
    backup.join(format!(
        "blobs/objects/submissions/{}/{}",
        s.id, s.photo_sha
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_eight_phones_submit_restores_every_acknowledged_visit() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let data = work.join("data");
    let node = Node::start(work, &data, common::NO_ENV, true);
    let (unit, token) = peer(&node).await;

    // Eight phones submit visits with a photo each, without pause, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..8u64 {
        let (stop, url, token, unit) = (stop.clone(), node.url(""), token.clone(), unit.clone());
        writers.push(tokio::spawn(async move {
            let client = common::client();
            let mut sent = Vec::new();
            let mut seed = writer * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                seed += 1;
                let (s, slowest) = submit_with_photo(&client, &url, &token, &unit, seed).await;
                sent.push((s, slowest));
            }
            sent
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let backup = work.join("backup");
    let backup_started = Instant::now();
    let out = {
        let (work, data, backup) = (work.to_path_buf(), data.clone(), backup.clone());
        tokio::task::spawn_blocking(move || backup_to(&work, &data, &backup))
            .await
            .expect("backup")
    };
    let backup_ended = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    let mut slowest = Duration::ZERO;
    for w in writers {
        for (s, d) in w.await.expect("writer") {
            if s.visit_acked >= backup_started {
                slowest = slowest.max(d);
            }
            sent.push(s);
        }
    }
    assert_ok(&out);
    let before: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.visit_acked < backup_started)
        .collect();
    println!(
        "{} visits sent, {} before the backup; backup took {:.2} s; slowest request during it {:.2} s\n{}",
        sent.len(),
        before.len(),
        (backup_ended - backup_started).as_secs_f64(),
        slowest.as_secs_f64(),
        text(&out)
    );
    assert!(
        before.len() >= 8,
        "the phones sent too little: {}",
        before.len()
    );
    // Intake went on while the backup ran: no request waited for it.
    assert!(
        slowest < Duration::from_secs(5),
        "a request waited {slowest:?}"
    );

    assert_ok(&donghanh(
        work,
        &data,
        &["backup", "--verify", backup.to_str().expect("utf8")],
        common::NO_ENV,
    ));

    // Restore into a fresh directory; its reports need no repair; a server starts on it.
    let restored = work.join("restored");
    let out = restore_from(work, &restored, &backup);
    assert_ok(&out);
    let check = donghanh(
        work,
        &restored,
        &["rebuild-reports", "--check"],
        common::NO_ENV,
    );
    assert_ok(&check);
    assert!(String::from_utf8_lossy(&check.stdout).contains("report cells match"));

    // Every row restored is a row of the source, as it is now (the phones stopped).
    let source_db = data.join("donghanh.db");
    let restored_db = restored.join("donghanh.db");
    let changed = rows_missing(&restored_db, &source_db).await;
    // Only the sync numbers move on in place while phones submit: each phone's feed
    // (and the forms' counter, whose epoch the restore renews).
    let updated_in_place = ["sync_counter", "sync_feeds"];
    for (table, n) in &changed {
        assert!(
            updated_in_place.contains(&table.as_str()),
            "{n} restored rows of {table} are not in the source"
        );
    }
    // Every restored object is the source's object, byte for byte.
    let source_objects = files(&data.join("blobs/objects"));
    let restored_objects = files(&restored.join("blobs/objects"));
    let photos_before = before
        .iter()
        .filter(|s| s.photo_acked.is_some_and(|t| t < backup_started))
        .count();
    // Each object has its content-type file beside it.
    assert!(
        restored_objects.len() >= photos_before * 2,
        "{} objects restored, {photos_before} photos acknowledged before the backup",
        restored_objects.len() / 2
    );
    for (key, digest) in &restored_objects {
        assert_eq!(source_objects.get(key), Some(digest), "object {key}");
    }
    // The keys came along: the same files, still private.
    for key in ["secrets/jwt_signing.key", "secrets/uic_hmac.key"] {
        assert_eq!(
            std::fs::read(data.join(key)).expect("source key"),
            std::fs::read(restored.join(key)).expect("restored key"),
            "{key}"
        );
        assert_eq!(mode(&restored.join(key)), 0o600, "{key}");
    }

    // A server on the restored directory: the phone's token (same signing key) still
    // works, and every visit acknowledged before the backup began is there with its photo.
    let second = Node::start(work, &restored, common::NO_ENV, false);
    let client = common::client();
    for s in &before {
        let res = client
            .get(second.url(&format!("/api/v1/submissions/{}", s.id)))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get visit");
        assert_eq!(
            res.status(),
            200,
            "visit {} acknowledged before the backup",
            s.id
        );
        if s.photo_acked.is_some_and(|t| t < backup_started) {
            let res = client
                .get(second.url(&format!(
                    "/api/v1/submissions/{}/photos/{}",
                    s.id, s.photo_sha
                )))
                .bearer_auth(&token)
                .send()
                .await
                .expect("get photo");
            assert_eq!(res.status(), 200, "photo of {}", s.id);
            assert_eq!(res.bytes().await.expect("bytes").as_ref(), &s.photo[..]);
        }
    }
    login(&second, PEER, PEER_PASSWORD).await;
    second.stop();

    // Now that the phones are quiet, a second backup restores to exactly the source:
    // every row of every table both ways, and every object.
    node.stop();
    let quiet = work.join("backup-quiet");
    assert_ok(&backup_to(work, &data, &quiet));
    let again = work.join("restored-quiet");
    assert_ok(&restore_from(work, &again, &quiet));
    let again_db = again.join("donghanh.db");
    assert_eq!(rows_missing(&source_db, &again_db).await, BTreeMap::new());
    assert_eq!(rows_missing(&again_db, &source_db).await, BTreeMap::new());
    let epoch = |path: PathBuf| async move {
        let mut conn = open(&path).await;
        let e: i64 = sqlx::query_scalar("SELECT epoch FROM sync_counter")
            .fetch_one(&mut conn)
            .await
            .expect("epoch");
        e
    };
    assert_ne!(
        epoch(again_db.clone()).await,
        epoch(source_db.clone()).await,
        "the restore kept the epoch: phones' cursors from after the backup would be read"
    );
    let mut conn = open(&again_db).await;
    let visits: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(visits as usize, sent.len());
    assert_eq!(files(&again.join("blobs/objects")), source_objects);
}

#[tokio::test]
async fn verify_names_a_missing_object_a_changed_object_a_missing_row_and_a_bad_manifest() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let (data, sent) = populated(work, 3).await;
    let backup = work.join("backup");
    assert_ok(&backup_to(work, &data, &backup));
    let verify = |dir: &Path| {
        donghanh(
            work,
            &data,
            &["backup", "--verify", dir.to_str().expect("utf8")],
            common::NO_ENV,
        )
    };
    let out = verify(&backup);
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 objects"),
        "{}",
        text(&out)
    );

    let variant = |name: &str| {
        let dir = work.join(name);
        copy_tree(&backup, &dir);
        dir
    };

    // One object gone.
    let dir = variant("missing-object");
    std::fs::remove_file(object_path(&dir, &sent[0])).expect("rm");
    let out = verify(&dir);
    assert_exit_2(&out);
    assert!(
        stderr(&out).contains(&format!(
            "object submissions/{}/{} is missing",
            sent[0].id, sent[0].photo_sha
        )),
        "{}",
        text(&out)
    );

    // One byte flipped in one object.
    let dir = variant("changed-object");
    let path = object_path(&dir, &sent[1]);
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");
    let out = verify(&dir);
    assert_exit_2(&out);
    assert!(
        stderr(&out).contains(&format!(
            "object submissions/{}/{} is damaged",
            sent[1].id, sent[1].photo_sha
        )),
        "{}",
        text(&out)
    );

    // One row gone from the database.
    let dir = variant("missing-row");
    {
        let mut conn = SqliteConnectOptions::new()
            .filename(dir.join("donghanh.db"))
            .connect()
            .await
            .expect("open");
        sqlx::query("DELETE FROM audit_log WHERE rowid = (SELECT MIN(rowid) FROM audit_log)")
            .execute(&mut conn)
            .await
            .expect("delete a row");
    }
    let out = verify(&dir);
    assert_exit_2(&out);
    let err = stderr(&out);
    assert!(err.contains("table audit_log: "), "{}", text(&out));
    assert!(
        err.contains("donghanh.db differs from the manifest"),
        "{}",
        text(&out)
    );

    // The manifest gone: an incomplete backup.
    let dir = variant("no-manifest");
    std::fs::remove_file(dir.join("manifest.json")).expect("rm");
    let out = verify(&dir);
    assert_exit_2(&out);
    assert!(stderr(&out).contains("incomplete"), "{}", text(&out));

    // The manifest altered: a count, and an object's digest.
    let dir = variant("altered-manifest");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("read"))
            .expect("json");
    manifest["tables"]["submissions"] = json!(4);
    manifest["objects"][2]["sha256"] = json!("0".repeat(64));
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write");
    let out = verify(&dir);
    assert_exit_2(&out);
    let err = stderr(&out);
    assert!(
        err.contains("table submissions: 3 rows, the manifest says 4"),
        "{}",
        text(&out)
    );
    let key = manifest["objects"][2]["key"].as_str().expect("key");
    assert!(
        err.contains(&format!("object {key} is damaged")),
        "{}",
        text(&out)
    );

    // A manifest that is not one.
    let dir = variant("garbled-manifest");
    std::fs::write(dir.join("manifest.json"), b"{\"format\": ").expect("write");
    let out = verify(&dir);
    assert_exit_2(&out);
    assert!(
        stderr(&out).contains("not a backup manifest"),
        "{}",
        text(&out)
    );

    // Restore refuses a damaged backup and leaves the target as it was.
    let target = work.join("target");
    let out = donghanh(
        work,
        &target,
        &[
            "restore",
            "--from",
            work.join("changed-object").to_str().expect("utf8"),
        ],
        common::NO_ENV,
    );
    assert_exit_2(&out);
    assert!(!target.exists(), "restore created {}", target.display());
}

#[tokio::test]
async fn a_target_that_is_not_empty_is_refused_and_nothing_changes() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let (data, _) = populated(work, 1).await;
    let source_before = files(&data);
    let target = work.join("used");
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::write(target.join("notes.txt"), b"last month's backup").expect("write");

    let out = backup_to(work, &data, &target);
    assert_exit_2(&out);
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{}", text(&out));
    assert!(err.contains("not empty"), "{}", text(&out));
    assert_eq!(
        files(&target).into_keys().collect::<Vec<_>>(),
        vec!["notes.txt".to_string()]
    );
    assert_eq!(files(&data), source_before, "the source changed");

    // A file in the way is refused the same way.
    let out = donghanh(
        work,
        &data,
        &[
            "backup",
            "--to",
            target.join("notes.txt").to_str().expect("utf8"),
        ],
        common::NO_ENV,
    );
    assert_exit_2(&out);
    // No data directory: nothing to back up, and none is created.
    let nowhere = work.join("nowhere");
    let out = donghanh(
        work,
        &nowhere,
        &["backup", "--to", work.join("b").to_str().expect("utf8")],
        common::NO_ENV,
    );
    assert_exit_2(&out);
    assert!(!nowhere.exists() && !work.join("b").exists());
}

#[tokio::test]
async fn a_backup_cut_off_half_way_is_incomplete_and_a_new_one_works() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let (data, _) = populated(work, 12).await;

    // Killed while it runs (or, on a fast machine, just after it finished).
    let cut = work.join("cut");
    let mut child = clean_command(work)
        .env("DATA_DIR", &data)
        .args(["backup", "--to", cut.to_str().expect("utf8")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn backup");
    std::thread::sleep(Duration::from_millis(60));
    let _ = child.kill();
    let _ = child.wait();
    let out = donghanh(
        work,
        &data,
        &["backup", "--verify", cut.to_str().expect("utf8")],
        common::NO_ENV,
    );
    if cut.join("manifest.json").exists() {
        assert_ok(&out);
    } else {
        assert_exit_2(&out);
        assert!(
            stderr(&out).contains("incomplete") || stderr(&out).contains("not a directory"),
            "{}",
            text(&out)
        );
    }

    // The same, certain: a whole backup whose manifest never got written.
    let half = work.join("half");
    assert_ok(&backup_to(work, &data, &half));
    std::fs::remove_file(half.join("manifest.json")).expect("rm");
    let out = donghanh(
        work,
        &data,
        &["backup", "--verify", half.to_str().expect("utf8")],
        common::NO_ENV,
    );
    assert_exit_2(&out);
    assert!(stderr(&out).contains("incomplete"), "{}", text(&out));
    // Restore will not use it.
    let out = donghanh(
        work,
        &work.join("never"),
        &["restore", "--from", half.to_str().expect("utf8")],
        common::NO_ENV,
    );
    assert_exit_2(&out);
    assert!(!work.join("never").exists());
    // Running it again into the same directory is refused; into a new one it works.
    let out = backup_to(work, &data, &half);
    assert_exit_2(&out);
    let fresh = work.join("fresh");
    assert_ok(&backup_to(work, &data, &fresh));
    assert_ok(&donghanh(
        work,
        &data,
        &["backup", "--verify", fresh.to_str().expect("utf8")],
        common::NO_ENV,
    ));
}

#[tokio::test]
async fn restore_refuses_a_data_directory_that_is_not_empty() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let (data, _) = populated(work, 1).await;
    let backup = work.join("backup");
    assert_ok(&backup_to(work, &data, &backup));

    let busy = work.join("busy");
    std::fs::create_dir_all(&busy).expect("mkdir");
    std::fs::write(busy.join("donghanh.db"), b"someone's database").expect("write");
    let out = restore_from(work, &busy, &backup);
    assert_exit_2(&out);
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", text(&out));
    assert!(stderr(&out).contains("not empty"), "{}", text(&out));
    assert_eq!(
        std::fs::read(busy.join("donghanh.db")).expect("read"),
        b"someone's database"
    );
    assert_eq!(files(&busy).len(), 1);

    // The source data directory itself is not empty either.
    let out = restore_from(work, &data, &backup);
    assert_exit_2(&out);

    // An empty directory is fine, and a server starts on the result.
    let empty = work.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    assert_ok(&restore_from(work, &empty, &backup));
    let node = Node::start(work, &empty, common::NO_ENV, false);
    login(&node, PEER, PEER_PASSWORD).await;
    node.stop();
}

#[tokio::test]
async fn the_data_directory_is_private_from_the_first_start_and_kept_so() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let (data, sent) = populated(work, 1).await;

    let object = data.join(format!(
        "blobs/objects/submissions/{}/{}",
        sent[0].id, sent[0].photo_sha
    ));
    let mut ct = object.clone().into_os_string();
    ct.push(".ct");
    for (path, want) in [
        (data.clone(), 0o700),
        (data.join("secrets"), 0o700),
        (data.join("tmp"), 0o700),
        (data.join("secrets/jwt_signing.key"), 0o600),
        (data.join("secrets/uic_hmac.key"), 0o600),
        (data.join("donghanh.db"), 0o600),
        (data.join("blobs"), 0o700),
        (data.join("blobs/objects/submissions"), 0o700),
        (object.parent().expect("dir").to_path_buf(), 0o700),
        (object.clone(), 0o600),
        (PathBuf::from(ct), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    for suffix in ["-wal", "-shm"] {
        let p = data.join(format!("donghanh.db{suffix}"));
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }

    // Loosened by hand (a copy made with the wrong umask): tightened at the next start,
    // with a warning naming each.
    set_mode(&data, 0o755);
    set_mode(&data.join("donghanh.db"), 0o644);
    set_mode(&data.join("secrets/uic_hmac.key"), 0o644);
    set_mode(&data.join("blobs"), 0o755);
    let out = donghanh(work, &data, &["migrate", "status"], common::NO_ENV);
    assert_ok(&out);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("donghanh.db")), 0o600);
    assert_eq!(mode(&data.join("secrets/uic_hmac.key")), 0o600);
    assert_eq!(mode(&data.join("blobs")), 0o700);
    let err = stderr(&out);
    assert_eq!(err.matches("tightened").count(), 4, "{}", text(&out));
    assert!(err.contains("uic_hmac.key"), "{}", text(&out));
}

#[test]
fn migrate_status_prints_its_table_whatever_rust_log_says() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let data = work.join("data");
    let names = [
        "m20261123_000001_foundation",
        "m20261202_000008_console_sessions",
    ];
    for rust_log in [None, Some("error"), Some("off")] {
        let env: Vec<(&str, &str)> = rust_log.map(|v| ("RUST_LOG", v)).into_iter().collect();
        let out = donghanh(work, &data, &["migrate", "status"], &env);
        assert_ok(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        for name in names {
            assert!(stdout.contains(name), "{rust_log:?}: {}", text(&out));
        }
        assert!(stdout.contains("MIGRATION"), "{}", text(&out));
    }
    let out = donghanh(work, &data, &["migrate", "status"], common::NO_ENV);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 applied"));
    assert_ok(&donghanh(work, &data, &["migrate"], common::NO_ENV));
    let out = donghanh(work, &data, &["migrate", "status"], &[("RUST_LOG", "off")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" Applied "), "{}", text(&out));
    assert!(!stdout.contains(" Pending "), "{}", text(&out));
    assert!(stdout.contains(", 0 pending"), "{}", text(&out));
}

/// The submission ids a phone's sync from `since` reads, and its last cursor.
async fn sync_ids(
    node: &Node,
    token: &str,
    since: Option<&str>,
) -> Result<(Vec<String>, String), (u16, String)> {
    let (pages, cursor) = common::sync_pages(node, token, since).await?;
    let ids = pages
        .iter()
        .flat_map(|p| p["submissions"].as_array().cloned().unwrap_or_default())
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    Ok((ids, cursor))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_synced_after_the_backup_reads_the_restored_data_from_the_start() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let data = work.join("data");
    let node = Node::start(work, &data, common::NO_ENV, true);
    let (unit, token) = peer(&node).await;
    let client = common::client();
    let kept = submit_with_photo(&client, &node.url(""), &token, &unit, 1)
        .await
        .0;
    let backup = work.join("backup");
    assert_ok(&backup_to(work, &data, &backup));
    // After the backup: two more visits the phone syncs, so its cursor is past the
    // backup's counter. Then the office PC's disk dies.
    let mut lost = Vec::new();
    for seed in 2..4 {
        lost.push(
            submit_with_photo(&client, &node.url(""), &token, &unit, seed)
                .await
                .0
                .id,
        );
    }
    let (ids, phone_cursor) = sync_ids(&node, &token, None).await.expect("sync");
    assert_eq!(ids.len(), 3, "{ids:?}");
    node.stop();

    let restored = work.join("restored");
    assert_ok(&restore_from(work, &restored, &backup));
    let node = Node::start(work, &restored, common::NO_ENV, false);
    // Visits arrive again (the counter passes the phone's cursor), then the phone syncs.
    let mut after = Vec::new();
    for seed in 10..14 {
        after.push(
            submit_with_photo(&client, &node.url(""), &token, &unit, seed)
                .await
                .0
                .id,
        );
    }
    let (status, body) = sync_ids(&node, &token, Some(&phone_cursor))
        .await
        .expect_err("a cursor from before the restore is read as if nothing was lost");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("\"since\"") && body.contains("restored from a backup"),
        "{body}"
    );
    // From the start the phone reads the restored truth: the kept visit and the new
    // ones, not the two the restore lost.
    let (ids, cursor) = sync_ids(&node, &token, None).await.expect("sync");
    assert!(ids.contains(&kept.id), "{ids:?}");
    for id in &after {
        assert!(ids.contains(id), "{id} missing from {ids:?}");
    }
    for id in &lost {
        assert!(!ids.contains(id), "{id} was lost by the restore: {ids:?}");
    }
    // The new cursor goes on as usual.
    let newest = submit_with_photo(&client, &node.url(""), &token, &unit, 20)
        .await
        .0;
    let (ids, _) = sync_ids(&node, &token, Some(&cursor)).await.expect("sync");
    assert_eq!(ids, vec![newest.id], "only the change after the cursor");
    node.stop();
}
