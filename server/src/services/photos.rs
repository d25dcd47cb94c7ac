//! Photo evidence. A phone uploads each photo its answers name, by digest; the server
//! hashes while it spools the body to a temporary file (never the whole photo in
//! memory), checks digest, format and size, removes location metadata, stores the
//! object under `submissions/{id}/{sha256}` and only then writes the row: a row always
//! means the bytes are there. Objects are per visit, so evidence never links visits.
//! An object left without its row (a crash between the two writes) is removed by the
//! sweeper once it is older than the grace period.

use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use chrono::Utc;
use futures::StreamExt;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::submission_photos;
use crate::error::{ApiError, ApiResult};
use crate::services::{audit, submissions};
use crate::state::AppState;
use crate::storage::image_meta::{strip_metadata, ImageKind, SNIFF_LEN};
use crate::storage::{BlobBody, BlobError, BlobObject};

/// The longest a presigned photo URL is valid.
pub const PRESIGNED_TTL: Duration = Duration::from_secs(60);

/// What a phone is told to wait before retrying when the store is down.
const RETRY_AFTER_SECS: u64 = 30;

/// Bytes of a refused body read and dropped so the phone sees the answer, not a reset.
const DRAIN_CAP: usize = 1024 * 1024;

/// The object key of a photo of a submission.
pub fn object_key(submission_id: Uuid, sha256: &str) -> String {
    format!("submissions/{submission_id}/{sha256}")
}

/// Checks a digest from a path: 64 lowercase hex characters.
pub fn parse_digest(raw: &str) -> ApiResult<String> {
    if raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::bad_param(
            "sha256",
            "bad_sha256",
            "expected the SHA-256 of the photo as 64 lowercase hex characters",
        ))
    }
}

fn store_fault(e: BlobError) -> ApiError {
    match e {
        BlobError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "blob store unavailable");
            ApiError::Unavailable {
                retry_after_secs: RETRY_AFTER_SECS,
                detail: "the photo store is unreachable; retry later".into(),
            }
        }
        other => ApiError::Internal(anyhow::anyhow!("blob store: {other}")),
    }
}

fn named_digests(m: &crate::db::entities::submissions::Model) -> ApiResult<Vec<String>> {
    serde_json::from_value(m.photo_digests.clone()).map_err(|e| ApiError::Internal(e.into()))
}

async fn stored_row(
    state: &AppState,
    submission_id: Uuid,
    sha256: &str,
) -> ApiResult<Option<submission_photos::Model>> {
    Ok(submission_photos::Entity::find()
        .filter(submission_photos::Column::SubmissionId.eq(submission_id))
        .filter(submission_photos::Column::Sha256.eq(sha256))
        .one(&state.db)
        .await?)
}

/// Whether a named photo is stored (`HEAD`): `Ok` if so, 404 when named but not yet
/// uploaded, not named, or the submission is outside the caller's scope.
pub async fn head(state: &AppState, actor: &Principal, id: Uuid, sha256: &str) -> ApiResult<()> {
    let sha256 = parse_digest(sha256)?;
    submissions::scoped(&state.db, actor, id).await?;
    stored_row(state, id, &sha256)
        .await?
        .map(|_| ())
        .ok_or(ApiError::NotFound("photo"))
}

/// Which digests of a submission are stored.
pub async fn stored_digests(
    db: &impl sea_orm::ConnectionTrait,
    submission_id: Uuid,
) -> ApiResult<Vec<String>> {
    Ok(submission_photos::Entity::find()
        .filter(submission_photos::Column::SubmissionId.eq(submission_id))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.sha256)
        .collect())
}

/// A temporary file holding a spooled body, removed when dropped.
struct Spool {
    file: tempfile::NamedTempFile,
}

impl Spool {
    fn new(dir: &std::path::Path) -> ApiResult<Spool> {
        std::fs::create_dir_all(dir).map_err(|e| ApiError::Internal(e.into()))?;
        let file = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(dir)
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Spool { file })
    }

    fn path(&self) -> &std::path::Path {
        self.file.path()
    }
}

/// A photo spooled to a temporary file: its kind (by its magic bytes) and the SHA-256
/// of the bytes as received.
pub struct Spooled {
    spool: Spool,
    pub kind: ImageKind,
    pub sha256: String,
}

/// Streams the body to a temporary file, hashing as it goes; stops at the first sign
/// the body is refused (not an image of the declared type, or over the limit).
async fn spool_body(state: &AppState, declared: ImageKind, body: Body) -> ApiResult<Spooled> {
    let mut stream = body.into_data_stream();
    match spool_stream(state, Some(declared), &mut stream).await {
        Err(ApiError::PayloadTooLarge) => {
            crate::extract::drain(stream, DRAIN_CAP).await;
            Err(ApiError::PayloadTooLarge)
        }
        other => other,
    }
}

/// Streams a photo to a temporary file, hashing as it goes; refuses it at the first
/// sign it is not an image (of the `declared` kind, when one is declared) or past the
/// photo size limit (413, the rest of the stream left unread).
pub(crate) async fn spool_stream<S, E>(
    state: &AppState,
    declared: Option<ImageKind>,
    stream: &mut S,
) -> ApiResult<Spooled>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let spool = Spool::new(&state.config.data_dir.join("tmp"))?;
    let std_file = spool
        .file
        .reopen()
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(std_file));
    let limit = state.config.photo_body_limit;
    let mut kind = declared;
    let mut hasher = Sha256::new();
    let mut size = 0usize;
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
    let mut sniffed = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_param(
                "body",
                "interrupted",
                format!("the upload was interrupted: {e}"),
            )
        })?;
        size += chunk.len();
        if size > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        if !sniffed {
            let need = SNIFF_LEN - head.len();
            head.extend_from_slice(&chunk[..need.min(chunk.len())]);
            if head.len() >= SNIFF_LEN {
                sniffed = true;
                kind = Some(check_kind(kind, &head)?);
            }
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let kind = match (sniffed, kind) {
        (true, Some(kind)) => kind,
        _ => check_kind(kind, &head)?,
    };
    out.flush()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Spooled {
        spool,
        kind,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// The kind the first bytes show, if it is an image (of the declared kind, if any).
fn check_kind(declared: Option<ImageKind>, head: &[u8]) -> ApiResult<ImageKind> {
    match (ImageKind::sniff(head), declared) {
        (Some(kind), None) => Ok(kind),
        (Some(kind), Some(declared)) if kind == declared => Ok(kind),
        (Some(kind), Some(declared)) => Err(ApiError::UnsupportedMediaType(format!(
            "the bytes are {}, not {}",
            kind.content_type(),
            declared.content_type()
        ))),
        (None, _) => Err(ApiError::UnsupportedMediaType(
            "the bytes are not a JPEG, PNG, WebP or HEIC image".into(),
        )),
    }
}

/// Copies the spooled photo without its location metadata; answers the copy and its
/// digest.
async fn strip(state: &AppState, spooled: &Spooled) -> ApiResult<(Spool, [u8; 32])> {
    let clean = Spool::new(&state.config.data_dir.join("tmp"))?;
    let src = spooled.spool.path().to_path_buf();
    let dst = clean.path().to_path_buf();
    let kind = spooled.kind;
    let stripped = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut input = std::io::BufReader::new(std::fs::File::open(&src)?);
        let out = std::fs::OpenOptions::new().write(true).open(&dst)?;
        let mut writer = std::io::BufWriter::new(out);
        strip_metadata(kind, &mut input, &mut writer)?;
        writer.flush()
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    // WebP's size fix-up seeks back, so the digest is taken over the finished file.
    let result = match stripped {
        Ok(()) => crate::storage::sha256_of_file(clean.path()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(digest) => Ok((clean, digest)),
        Err(e)
            if e.kind() == std::io::ErrorKind::InvalidData
                || e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Err(ApiError::invalid(
                "body",
                "malformed_image",
                format!("the {} is not well formed: {e}", kind.content_type()),
            ))
        }
        Err(e) => Err(ApiError::Internal(e.into())),
    }
}

/// Stores a photo of a submission. Answers `true` when it was stored now, `false` when
/// it was already there (nothing is written again).
pub async fn upload(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    sha256: &str,
    content_type: Option<&str>,
    body: Body,
) -> ApiResult<bool> {
    let refuse = |body: Body, err: ApiError| async move {
        crate::extract::drain(body.into_data_stream(), DRAIN_CAP).await;
        Err(err)
    };
    let sha256 = match parse_digest(sha256) {
        Ok(s) => s,
        Err(e) => return refuse(body, e).await,
    };
    let submission = match submissions::scoped(&state.db, actor, id).await {
        Ok(s) => s,
        Err(e) => return refuse(body, e).await,
    };
    if submission.author_id != actor.user_id {
        return refuse(
            body,
            ApiError::Forbidden("only the submission's author uploads its photos".into()),
        )
        .await;
    }
    if !named_digests(&submission)?.contains(&sha256) {
        return refuse(
            body,
            ApiError::invalid(
                "sha256",
                "not_named",
                "the submission's answers do not name this photo",
            ),
        )
        .await;
    }
    if stored_row(state, id, &sha256).await?.is_some() {
        crate::extract::drain(body.into_data_stream(), DRAIN_CAP).await;
        crate::metrics::photo_deduplicated();
        return Ok(false);
    }
    let Some(declared) = content_type.and_then(ImageKind::from_content_type) else {
        return refuse(
            body,
            ApiError::UnsupportedMediaType(
                "expected `Content-Type: image/jpeg`, `image/png`, `image/webp` or `image/heic`"
                    .into(),
            ),
        )
        .await;
    };

    let spooled = spool_body(state, declared, body).await?;
    if spooled.sha256 != sha256 {
        return Err(ApiError::invalid(
            "sha256",
            "digest_mismatch",
            "the SHA-256 of the bytes received differs from the one in the path; nothing was kept",
        ));
    }
    store_spooled(state, id, &sha256, spooled, actor.user_id).await
}

/// Stores a spooled photo of a submission as the photo its answers name `name` (the
/// digest of the bytes, or for a file ODK Collect had not sent yet the digest the
/// answers hold for its file name): location metadata removed, the object written
/// whole, then its row. Answers `true` when stored now, `false` when it already was.
pub(crate) async fn store_spooled(
    state: &AppState,
    id: Uuid,
    name: &str,
    spooled: Spooled,
    uploaded_by: Uuid,
) -> ApiResult<bool> {
    let (clean, stored_digest) = strip(state, &spooled).await?;
    let kind = spooled.kind;
    drop(spooled);
    let key = object_key(id, name);
    let meta = state
        .blobs
        .put(
            &key,
            BlobBody::File(clean.path().to_path_buf()),
            stored_digest,
            kind.content_type(),
        )
        .await
        .map_err(store_fault)?;
    drop(clean);
    let inserted = submission_photos::Entity::insert(submission_photos::ActiveModel {
        submission_id: Set(id),
        sha256: Set(name.to_string()),
        stored_sha256: Set(hex::encode(stored_digest)),
        content_type: Set(kind.content_type().to_string()),
        size_bytes: Set(meta.size as i64),
        object_key: Set(key),
        uploaded_by: Set(uploaded_by),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        // No conflict target: a concurrent upload of the same photo collides on the
        // key and on the object key's unique index alike, and either means "stored".
        OnConflict::new().do_nothing().to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    tracing::info!(submission.id = %id, photo.size = meta.size, "photo stored");
    match inserted {
        1 => crate::metrics::photo_stored(meta.size),
        _ => crate::metrics::photo_deduplicated(),
    }
    Ok(inserted == 1)
}

/// A photo read: streamed bytes, or where to fetch them.
pub enum PhotoRead {
    Stream {
        object: BlobObject,
        content_type: String,
        etag: String,
    },
    NotModified {
        etag: String,
    },
    Redirect(String),
}

/// Reads a stored photo for its author or a reviewer in scope; every read is audited.
/// With `may_redirect` (and `PHOTO_PRESIGNED_REDIRECT` on S3) the answer may be where
/// to fetch it; the console streams, since its pages load images from itself only.
pub async fn read(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    sha256: &str,
    if_none_match: Option<&str>,
    may_redirect: bool,
) -> ApiResult<PhotoRead> {
    let sha256 = parse_digest(sha256)?;
    submissions::scoped(&state.db, actor, id).await?;
    let row = stored_row(state, id, &sha256)
        .await?
        .ok_or(ApiError::NotFound("photo"))?;
    audit::record(
        &state.db,
        Some(actor.user_id),
        "photo.read",
        "submission",
        Some(id.to_string()),
        serde_json::json!({ "sha256": sha256 }),
    )
    .await?;
    let etag = format!("\"{}\"", row.stored_sha256);
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return Ok(PhotoRead::NotModified { etag });
    }
    if may_redirect && state.config.photo_presigned_redirect {
        if let Some(url) = state
            .blobs
            .presigned_get(&row.object_key, PRESIGNED_TTL)
            .await
            .map_err(store_fault)?
        {
            return Ok(PhotoRead::Redirect(url));
        }
    }
    let object = state
        .blobs
        .get(&row.object_key)
        .await
        .map_err(store_fault)?
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "photo row without its object: {}",
                row.object_key
            ))
        })?;
    Ok(PhotoRead::Stream {
        object,
        content_type: row.content_type,
        etag,
    })
}

/// What one sweep found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub objects: usize,
    pub removed: usize,
}

/// Removes stored photos that have no row and are older than `grace`. Safe to run on
/// several servers at once: it only deletes what no row names, deleting twice is
/// harmless, and an object is re-checked (age and row) just before it is deleted.
pub async fn sweep_orphans(state: &AppState, grace: Duration) -> ApiResult<SweepReport> {
    let grace = chrono::Duration::from_std(grace).map_err(|e| ApiError::Internal(e.into()))?;
    let objects = state
        .blobs
        .list("submissions/")
        .await
        .map_err(store_fault)?;
    let mut report = SweepReport {
        objects: objects.len(),
        removed: 0,
    };
    for meta in objects {
        let Some((submission, sha256)) = meta
            .key
            .strip_prefix("submissions/")
            .and_then(|rest| rest.split_once('/'))
        else {
            continue;
        };
        let Ok(submission_id) = Uuid::parse_str(submission) else {
            continue;
        };
        let young =
            |m: &crate::storage::BlobMeta| m.last_modified.is_none_or(|t| Utc::now() - t < grace);
        if young(&meta) || stored_row(state, submission_id, sha256).await?.is_some() {
            continue;
        }
        // Re-check just before deleting: a retry may have rewritten it meanwhile.
        match state.blobs.head(&meta.key).await.map_err(store_fault)? {
            Some(fresh) if !young(&fresh) => {}
            _ => continue,
        }
        if stored_row(state, submission_id, sha256).await?.is_some() {
            continue;
        }
        state.blobs.delete(&meta.key).await.map_err(store_fault)?;
        tracing::info!(submission.id = %submission_id, "orphaned photo object removed");
        report.removed += 1;
    }
    Ok(report)
}
