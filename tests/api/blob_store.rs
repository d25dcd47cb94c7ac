//! The blob-store contract: the same cases against the disk store and against Garage.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use server::storage::{BlobBody, BlobError, BlobStore, DiskStore, S3Store};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::s3_config;

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

async fn read_all(store: &dyn BlobStore, key: &str) -> Option<Vec<u8>> {
    let obj = store.get(key).await.expect("get")?;
    let chunks: Vec<Bytes> = obj.body.try_collect().await.expect("stream");
    Some(chunks.concat())
}

async fn contract(store: Arc<dyn BlobStore>, presigns: bool) {
    store.check().await.expect("reachable");
    let visit = Uuid::now_v7();
    let key = format!("submissions/{visit}/{}", hex::encode(digest(b"photo-1")));
    let photo = Bytes::from_static(b"photo-1");

    assert_eq!(store.head(&key).await.expect("head"), None);
    assert!(store.get(&key).await.expect("get").is_none());

    let meta = store
        .put(
            &key,
            BlobBody::Bytes(photo.clone()),
            digest(&photo),
            "image/jpeg",
        )
        .await
        .expect("put");
    assert_eq!(meta.size, 7);
    let head = store.head(&key).await.expect("head").expect("present");
    assert_eq!(head.size, 7);
    assert_eq!(head.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        read_all(store.as_ref(), &key).await.as_deref(),
        Some(&b"photo-1"[..])
    );

    // Putting the same object again is harmless.
    store
        .put(
            &key,
            BlobBody::Bytes(photo.clone()),
            digest(&photo),
            "image/jpeg",
        )
        .await
        .expect("put again");

    // A body whose digest differs is refused and nothing is stored.
    let bad_key = format!("submissions/{visit}/{}", hex::encode(digest(b"other")));
    let err = store
        .put(
            &bad_key,
            BlobBody::Bytes(Bytes::from_static(b"tampered")),
            digest(b"other"),
            "image/jpeg",
        )
        .await
        .expect_err("checksum must be refused");
    assert!(matches!(err, BlobError::ChecksumMismatch), "{err:?}");
    assert_eq!(store.head(&bad_key).await.expect("head"), None);

    // Large bodies come from a spooled file; the same checks apply.
    let dir = tempfile::tempdir().expect("tempdir");
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let path = dir.path().join("big.jpg");
    std::fs::write(&path, &big).expect("write");
    let big_key = format!("submissions/{visit}/{}", hex::encode(digest(&big)));
    store
        .put(
            &big_key,
            BlobBody::File(path.clone()),
            digest(&big),
            "image/jpeg",
        )
        .await
        .expect("put file");
    assert_eq!(
        read_all(store.as_ref(), &big_key).await.map(|b| b.len()),
        Some(big.len())
    );
    assert!(read_all(store.as_ref(), &big_key).await.expect("big") == big);
    let err = store
        .put(
            &format!("submissions/{visit}/wrong"),
            BlobBody::File(path),
            [0u8; 32],
            "image/jpeg",
        )
        .await
        .expect_err("file checksum refused");
    assert!(matches!(err, BlobError::ChecksumMismatch), "{err:?}");

    // Listing is by prefix, and only sees this visit.
    let other_visit = Uuid::now_v7();
    let other_key = format!("submissions/{other_visit}/{}", hex::encode(digest(&photo)));
    store
        .put(
            &other_key,
            BlobBody::Bytes(photo.clone()),
            digest(&photo),
            "image/png",
        )
        .await
        .expect("put other");
    let listed = store
        .list(&format!("submissions/{visit}/"))
        .await
        .expect("list");
    let mut expected = vec![key.clone(), big_key.clone()];
    expected.sort();
    assert_eq!(
        listed.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        store
            .list(&format!("submissions/{other_visit}/"))
            .await
            .expect("list")
            .len(),
        1
    );

    // Presigned reads (S3 only).
    let url = store
        .presigned_get(&key, Duration::from_secs(60))
        .await
        .expect("presign");
    if presigns {
        let url = url.expect("S3 presigns");
        let body = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(&url)
            .send()
            .await
            .expect("fetch")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(&body[..], b"photo-1");
    } else {
        assert!(url.is_none());
    }

    // Delete, and delete again.
    store.delete(&key).await.expect("delete");
    store.delete(&key).await.expect("delete absent");
    assert_eq!(store.head(&key).await.expect("head"), None);
    assert_eq!(
        store
            .list(&format!("submissions/{visit}/"))
            .await
            .expect("list")
            .len(),
        1
    );

    // Keys that could escape are refused.
    for bad in ["../etc/passwd", "/abs", "a//b", ""] {
        assert!(
            matches!(store.head(bad).await, Err(BlobError::InvalidKey(_))),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn disk_store_honours_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DiskStore::open(dir.path()).await.expect("open");
    contract(Arc::new(store), false).await;
}

#[tokio::test]
async fn s3_store_on_garage_honours_the_contract() {
    let Some(cfg) = s3_config(&format!("contract-{}/", Uuid::new_v4().simple())) else {
        eprintln!("skipping: no S3 configured");
        return;
    };
    contract(Arc::new(S3Store::new(&cfg)), true).await;
}

#[tokio::test]
async fn s3_store_reports_an_unreachable_server() {
    let Some(mut cfg) = s3_config("unreachable/") else {
        return;
    };
    cfg.endpoint = Some("http://127.0.0.1:9".into());
    let store = S3Store::new(&cfg);
    assert!(matches!(
        store.check().await,
        Err(BlobError::Unavailable(_))
    ));
    let err = store
        .put(
            "a/b",
            BlobBody::Bytes(Bytes::from_static(b"x")),
            digest(b"x"),
            "image/jpeg",
        )
        .await
        .expect_err("down");
    assert!(matches!(err, BlobError::Unavailable(_)), "{err:?}");
}
