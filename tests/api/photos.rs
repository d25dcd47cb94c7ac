//! Photo evidence as phones upload it over weak networks: ask first (HEAD), upload once,
//! retry for free, never store the same photo of a visit twice, refuse what is not the
//! named photo, strip location metadata, read only within scope, and survive the store
//! going away (503, nothing recorded) and coming back.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use server::config::BlobStoreConfig;
use server::db::entities::submission_photos;
use server::storage::BlobBody;
use sha2::{Digest, Sha256};
use shared_models::Role;
use uuid::Uuid;

use crate::garage::OwnGarage;
use crate::helpers::{faults, problem, spawn_with, Actor, Backend, TestApp};
use crate::intake::{contact, outreach_visit, submit};
use crate::on_both;

on_both!(
    upload_once_retry_free_and_read_back,
    concurrent_identical_uploads_store_one_object,
    the_same_photo_in_two_visits_is_two_objects,
    refused_uploads_keep_nothing,
    photos_are_read_only_within_scope_and_audited,
    gps_metadata_is_stripped_and_the_photo_still_opens,
    orphaned_objects_are_swept,
);

/// A small real JPEG, different for each `seed`.
pub fn jpeg(seed: u8, width: u16, height: u16) -> Vec<u8> {
    let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height) * 3)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encode jpeg");
    out
}

/// An EXIF APP1 segment carrying a GPS latitude of 21°1'30" N (Hà Nội).
fn exif_gps_segment() -> Vec<u8> {
    let mut tiff: Vec<u8> = b"MM\x00\x2A".to_vec();
    tiff.extend_from_slice(&8u32.to_be_bytes());
    // IFD0: one entry, GPSInfo → offset 26.
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0x88, 0x25, 0x00, 0x04]);
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&26u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    // GPS IFD: latitude ref "N" and latitude (3 rationals at offset 56).
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x00, 0x01, 0x00, 0x02]);
    tiff.extend_from_slice(&2u32.to_be_bytes());
    tiff.extend_from_slice(b"N\0\0\0");
    tiff.extend_from_slice(&[0x00, 0x02, 0x00, 0x05]);
    tiff.extend_from_slice(&3u32.to_be_bytes());
    tiff.extend_from_slice(&56u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    for (n, d) in [(21u32, 1u32), (1, 1), (3000, 100)] {
        tiff.extend_from_slice(&n.to_be_bytes());
        tiff.extend_from_slice(&d.to_be_bytes());
    }
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(&payload);
    seg
}

/// The JPEG with the GPS segment right after its start-of-image marker.
pub fn with_gps(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&exif_gps_segment());
    out.extend_from_slice(&jpeg[2..]);
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An outreach visit naming these photo digests.
pub fn visit_with_photos(unit: Uuid, digests: &[&str]) -> Value {
    let mut body = outreach_visit(unit, vec![contact("PHOTO-1990-F", &[])]);
    body["answers"]["photos"] = json!(digests
        .iter()
        .map(|d| json!({ "photo": d }))
        .collect::<Vec<_>>());
    body
}

fn photo_path(id: &Value, sha: &str) -> String {
    format!(
        "/api/v1/submissions/{}/photos/{sha}",
        id.as_str().expect("id")
    )
}

async fn put(
    app: &TestApp,
    who: &Actor,
    path: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .bearer_auth(who.token())
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("put")
}

async fn head(app: &TestApp, who: &Actor, path: &str) -> StatusCode {
    app.send(Method::HEAD, path, Some(who.token()), None)
        .await
        .status()
}

async fn objects_of(app: &TestApp, id: &Value) -> usize {
    app.state
        .blobs
        .list(&format!("submissions/{}/", id.as_str().expect("id")))
        .await
        .expect("list objects")
        .len()
}

async fn rows_of(app: &TestApp, id: &Value) -> u64 {
    let id: Uuid = serde_json::from_value(id.clone()).expect("id");
    submission_photos::Entity::find()
        .filter(submission_photos::Column::SubmissionId.eq(id))
        .count(&app.state.db)
        .await
        .expect("count")
}

async fn upload_once_retry_free_and_read_back(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let photo = jpeg(1, 32, 24);
    let other = jpeg(2, 32, 24);
    let (sha, other_sha) = (sha256_hex(&photo), sha256_hex(&other));
    // The same photo named twice in one visit is still one photo.
    let body = visit_with_photos(app.unit("006").await, &[&sha, &other_sha, &sha]);
    let s = submit(&app, &peer, &body, StatusCode::CREATED).await;
    let path = photo_path(&s["id"], &sha);
    assert_eq!(
        s["photos"],
        json!([{"sha256": sha, "present": false}, {"sha256": other_sha, "present": false}])
    );

    assert_eq!(head(&app, &peer, &path).await, StatusCode::NOT_FOUND);
    assert_eq!(
        put(&app, &peer, &path, "image/jpeg", photo.clone())
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(head(&app, &peer, &path).await, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            put(&app, &peer, &path, "image/jpeg", photo.clone())
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(objects_of(&app, &s["id"]).await, 1);
    assert_eq!(rows_of(&app, &s["id"]).await, 1);

    let res = app.get(&path, peer.token()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let etag = res.headers()["etag"].to_str().expect("etag").to_string();
    let got = res.bytes().await.expect("bytes");
    // No metadata to strip here: the bytes come back as sent.
    assert_eq!(&got[..], &photo[..]);
    assert_eq!(etag, format!("\"{sha}\""));
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(peer.token())
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    let detail: Value = app
        .get(
            &format!("/api/v1/submissions/{}", s["id"].as_str().expect("id")),
            peer.token(),
        )
        .await
        .json()
        .await
        .expect("detail");
    assert_eq!(
        detail["photos"],
        json!([{"sha256": sha, "present": true}, {"sha256": other_sha, "present": false}])
    );
}

async fn concurrent_identical_uploads_store_one_object(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let photo = jpeg(3, 64, 48);
    let sha = sha256_hex(&photo);
    let s = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    let path = photo_path(&s["id"], &sha);
    let statuses: Vec<StatusCode> =
        join_all((0..6).map(|_| put(&app, &peer, &path, "image/jpeg", photo.clone())))
            .await
            .iter()
            .map(|r| r.status())
            .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(objects_of(&app, &s["id"]).await, 1);
    assert_eq!(rows_of(&app, &s["id"]).await, 1);
}

async fn the_same_photo_in_two_visits_is_two_objects(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let photo = jpeg(4, 16, 16);
    let sha = sha256_hex(&photo);
    let unit = app.unit("006").await;
    let a = submit(
        &app,
        &peer,
        &visit_with_photos(unit, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    let b = submit(
        &app,
        &peer,
        &visit_with_photos(unit, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    for s in [&a, &b] {
        assert_eq!(
            put(
                &app,
                &peer,
                &photo_path(&s["id"], &sha),
                "image/jpeg",
                photo.clone()
            )
            .await
            .status(),
            StatusCode::CREATED
        );
        assert_eq!(objects_of(&app, &s["id"]).await, 1);
    }
    let all = app.state.blobs.list("submissions/").await.expect("list");
    assert_eq!(all.iter().filter(|m| m.key.ends_with(&sha)).count(), 2);
}

async fn refused_uploads_keep_nothing(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let photo = jpeg(5, 16, 16);
    let sha = sha256_hex(&photo);
    let s = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    let path = photo_path(&s["id"], &sha);

    // Bytes whose digest is not the one in the path.
    let p = problem(
        put(&app, &peer, &path, "image/jpeg", jpeg(6, 16, 16)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        faults(&p),
        vec![("sha256".into(), "digest_mismatch".into())]
    );
    // A digest the answers do not name.
    let stray = jpeg(7, 16, 16);
    let p = problem(
        put(
            &app,
            &peer,
            &photo_path(&s["id"], &sha256_hex(&stray)),
            "image/jpeg",
            stray,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(faults(&p), vec![("sha256".into(), "not_named".into())]);
    // Not an image by its bytes, whatever the header says; or another image type than declared.
    let pdf = b"%PDF-1.7\n% a document, not a photo\n".repeat(10);
    let named = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha256_hex(&pdf), &sha]),
        StatusCode::CREATED,
    )
    .await;
    problem(
        put(
            &app,
            &peer,
            &photo_path(&named["id"], &sha256_hex(&pdf)),
            "image/jpeg",
            pdf,
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    problem(
        put(&app, &peer, &path, "image/png", photo.clone()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    problem(
        put(
            &app,
            &peer,
            &path,
            "application/octet-stream",
            photo.clone(),
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    // A path digest that is not a digest.
    let p = problem(
        put(
            &app,
            &peer,
            &photo_path(&s["id"], "ABC"),
            "image/jpeg",
            photo.clone(),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(faults(&p)[0].0, "sha256");

    for id in [&s["id"], &named["id"]] {
        assert_eq!(objects_of(&app, id).await, 0);
        assert_eq!(rows_of(&app, id).await, 0);
    }
    assert_eq!(head(&app, &peer, &path).await, StatusCode::NOT_FOUND);
    // Temporary spool files are gone too.
    let tmp = app.state.config.data_dir.join("tmp");
    let leftovers = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "spool files left in {}", tmp.display());
}

async fn photos_are_read_only_within_scope_and_audited(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let colleague = app.actor(Role::PeerEducator, "006").await;
    let sup_dd = app.actor(Role::Supervisor, "006").await;
    let sup_hk = app.actor(Role::Supervisor, "002").await;
    let admin = app.admin().await;
    let photo = jpeg(8, 16, 16);
    let sha = sha256_hex(&photo);
    let s = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    let path = photo_path(&s["id"], &sha);

    // Only the author uploads: a colleague does not see the visit; the supervisor may not write.
    problem(
        put(&app, &colleague, &path, "image/jpeg", photo.clone()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        put(&app, &sup_dd, &path, "image/jpeg", photo.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        put(&app, &sup_hk, &path, "image/jpeg", photo.clone()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        put(&app, &peer, &path, "image/jpeg", photo.clone())
            .await
            .status(),
        StatusCode::CREATED
    );

    problem(
        app.get(&path, colleague.token()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(app.get(&path, sup_hk.token()).await, StatusCode::NOT_FOUND).await;
    assert_eq!(head(&app, &sup_hk, &path).await, StatusCode::NOT_FOUND);
    for reader in [&peer, &sup_dd, &admin] {
        let res = app.get(&path, reader.token()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(&res.bytes().await.expect("bytes")[..], &photo[..]);
    }
    let log: Value = app
        .get("/api/v1/audit?action=photo.read", admin.token())
        .await
        .json()
        .await
        .expect("audit");
    let readers: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["actor_id"].as_str())
        .collect();
    assert_eq!(readers.len(), 3, "{log}");
    for who in [&peer, &sup_dd, &admin] {
        assert!(readers.contains(&who.user.id.to_string().as_str()));
    }
}

async fn gps_metadata_is_stripped_and_the_photo_still_opens(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let clean = jpeg(9, 40, 30);
    let tagged = with_gps(&clean);
    assert!(tagged.windows(6).any(|w| w == b"Exif\0\0"));
    let sha = sha256_hex(&tagged);
    let s = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    let path = photo_path(&s["id"], &sha);
    assert_eq!(
        put(&app, &peer, &path, "image/jpeg", tagged.clone())
            .await
            .status(),
        StatusCode::CREATED
    );

    let res = app.get(&path, peer.token()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().expect("etag").to_string();
    let stored = res.bytes().await.expect("bytes").to_vec();
    assert!(
        !stored.windows(6).any(|w| w == b"Exif\0\0"),
        "EXIF still there"
    );
    assert!(
        !stored.windows(4).any(|w| w == b"MM\x00\x2A"),
        "TIFF header still there"
    );
    // Not re-encoded: exactly the image without the segment.
    assert_eq!(stored, clean);
    let mut decoder = jpeg_decoder::Decoder::new(&stored[..]);
    let pixels = decoder.decode().expect("the stripped photo still opens");
    let info = decoder.info().expect("info");
    assert_eq!((info.width, info.height), (40, 30));
    assert_eq!(pixels.len(), 40 * 30 * 3);
    // The stored object's own digest is recorded beside the phone's.
    let id: Uuid = serde_json::from_value(s["id"].clone()).expect("id");
    let row = submission_photos::Entity::find()
        .filter(submission_photos::Column::SubmissionId.eq(id))
        .one(&app.state.db)
        .await
        .expect("q")
        .expect("row");
    assert_eq!(row.sha256, sha);
    assert_eq!(row.stored_sha256, sha256_hex(&stored));
    assert_ne!(row.stored_sha256, row.sha256);
    assert_eq!(etag, format!("\"{}\"", row.stored_sha256));
    assert_eq!(row.size_bytes as usize, stored.len());
}

async fn orphaned_objects_are_swept(app: TestApp) {
    let peer = app.actor(Role::PeerEducator, "006").await;
    let photo = jpeg(10, 16, 16);
    let sha = sha256_hex(&photo);
    let s = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        put(
            &app,
            &peer,
            &photo_path(&s["id"], &sha),
            "image/jpeg",
            photo.clone()
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    // A crash between storing the object and writing its row leaves this behind.
    let orphan_bytes = jpeg(11, 16, 16);
    let orphan_key = format!(
        "submissions/{}/{}",
        s["id"].as_str().expect("id"),
        sha256_hex(&orphan_bytes)
    );
    let digest: [u8; 32] = Sha256::digest(&orphan_bytes).into();
    app.state
        .blobs
        .put(
            &orphan_key,
            BlobBody::Bytes(orphan_bytes.into()),
            digest,
            "image/jpeg",
        )
        .await
        .expect("put orphan");
    assert_eq!(objects_of(&app, &s["id"]).await, 2);

    // A young orphan may be an upload in flight: left alone.
    let report =
        server::services::photos::sweep_orphans(&app.state, std::time::Duration::from_secs(3600))
            .await
            .expect("sweep");
    assert_eq!(report.removed, 0);
    assert_eq!(objects_of(&app, &s["id"]).await, 2);

    // Two servers sweeping at once remove it, and only it.
    let (a, b) = tokio::join!(
        server::services::photos::sweep_orphans(&app.state, std::time::Duration::ZERO),
        server::services::photos::sweep_orphans(&app.state, std::time::Duration::ZERO),
    );
    let removed = a.expect("sweep a").removed + b.expect("sweep b").removed;
    assert!((1..=2).contains(&removed), "{removed}");
    let left = app
        .state
        .blobs
        .list(&format!("submissions/{}/", s["id"].as_str().expect("id")))
        .await
        .expect("list");
    assert_eq!(left.len(), 1);
    assert!(left[0].key.ends_with(&sha));
    let res = app.get(&photo_path(&s["id"], &sha), peer.token()).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_store_serves_the_same_flow() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.blob_store = BlobStoreConfig::Disk {
            root: c.data_dir.join("blobs"),
        };
    })
    .await
    .expect("sqlite is always available");
    let peer = app.actor(Role::PeerEducator, "006").await;
    let tagged = with_gps(&jpeg(12, 24, 24));
    let sha = sha256_hex(&tagged);
    let s = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    let path = photo_path(&s["id"], &sha);
    assert_eq!(
        put(&app, &peer, &path, "image/jpeg", tagged.clone())
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        put(&app, &peer, &path, "image/jpeg", tagged.clone())
            .await
            .status(),
        StatusCode::OK
    );
    let got = app
        .get(&path, peer.token())
        .await
        .bytes()
        .await
        .expect("bytes");
    assert!(!got.windows(6).any(|w| w == b"Exif\0\0"));
    assert_eq!(objects_of(&app, &s["id"]).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_is_413_and_cut_off() {
    let app = spawn_with(Backend::Sqlite, |c| c.photo_body_limit = 64 * 1024)
        .await
        .expect("sqlite is always available");
    let peer = app.actor(Role::PeerEducator, "006").await;
    let big = jpeg(13, 400, 300);
    assert!(big.len() > 64 * 1024, "{}", big.len());
    let sha = sha256_hex(&big);
    let s = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    let p = problem(
        put(&app, &peer, &photo_path(&s["id"], &sha), "image/jpeg", big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(p["detail"].is_string() || p["title"].is_string());
    assert_eq!(objects_of(&app, &s["id"]).await, 0);
    assert_eq!(rows_of(&app, &s["id"]).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_reads_expire_within_a_minute() {
    let Some(app) = spawn_with(Backend::Sqlite, |c| c.photo_presigned_redirect = true).await else {
        return;
    };
    if !matches!(app.state.config.blob_store, BlobStoreConfig::S3(_)) {
        assert!(
            !crate::helpers::services_required(),
            "S3 must be configured in CI"
        );
        return;
    }
    let peer = app.actor(Role::PeerEducator, "006").await;
    let photo = jpeg(14, 16, 16);
    let sha = sha256_hex(&photo);
    let s = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    let path = photo_path(&s["id"], &sha);
    assert_eq!(
        put(&app, &peer, &path, "image/jpeg", photo.clone())
            .await
            .status(),
        StatusCode::CREATED
    );
    let no_follow = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = no_follow
        .get(app.url(&path))
        .bearer_auth(peer.token())
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(location.contains("X-Amz-Expires=60"), "{location}");
    let direct = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(&location)
        .send()
        .await
        .expect("presigned get");
    assert_eq!(direct.status(), StatusCode::OK);
    assert_eq!(&direct.bytes().await.expect("bytes")[..], &photo[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_is_503_then_the_retry_succeeds() {
    let Some(mut garage) = OwnGarage::start().await else {
        return;
    };
    let s3 = garage.s3.clone();
    let app = spawn_with(Backend::Sqlite, move |c| {
        c.blob_store = BlobStoreConfig::S3(s3)
    })
    .await
    .expect("sqlite is always available");
    let peer = app.actor(Role::PeerEducator, "006").await;
    let photo = jpeg(15, 32, 32);
    let sha = sha256_hex(&photo);
    let s = submit(
        &app,
        &peer,
        &visit_with_photos(app.unit("006").await, &[&sha]),
        StatusCode::CREATED,
    )
    .await;
    let path = photo_path(&s["id"], &sha);
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        StatusCode::OK
    );

    garage.stop();
    let res = put(&app, &peer, &path, "image/jpeg", photo.clone()).await;
    assert!(res.headers().get("retry-after").is_some(), "Retry-After");
    problem(res, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(rows_of(&app, &s["id"]).await, 0, "nothing recorded");
    assert_eq!(head(&app, &peer, &path).await, StatusCode::NOT_FOUND);
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Accepted submissions are not lost while the store is away.
    assert_eq!(
        app.get(
            &format!("/api/v1/submissions/{}", s["id"].as_str().expect("id")),
            peer.token()
        )
        .await
        .status(),
        StatusCode::OK
    );

    garage.resume().await;
    assert_eq!(
        put(&app, &peer, &path, "image/jpeg", photo.clone())
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(rows_of(&app, &s["id"]).await, 1);
    assert_eq!(objects_of(&app, &s["id"]).await, 1);
    let got = app
        .get(&path, peer.token())
        .await
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&got[..], &photo[..]);
}
