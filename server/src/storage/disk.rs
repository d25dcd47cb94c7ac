//! The local-disk blob store of the embedded default: objects are files under a root
//! directory, written to a temporary file first and renamed into place once their
//! digest is checked, so a reader never sees half an object. Photos are key-population
//! data: directories are created 0700 and files 0600, readable by the server's user only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{check_key, check_prefix, BlobBody, BlobError, BlobMeta, BlobObject, BlobStore};

const TMP_DIR: &str = ".tmp";

/// Objects as files under `root` (content type kept in a `.ct` sidecar file).
#[derive(Debug, Clone)]
pub struct DiskStore {
    root: PathBuf,
}

impl DiskStore {
    /// A store rooted at `root`, created if missing.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        create_private_dir_all(&root.join(TMP_DIR)).await?;
        Ok(DiskStore { root })
    }

    /// A store rooted at `root` as it is, creating nothing (for reading a backup).
    pub fn existing(root: impl Into<PathBuf>) -> Self {
        DiskStore { root: root.into() }
    }

    /// The file holding `key`'s bytes, whether or not it exists: backups copy objects
    /// as files.
    pub fn object_file(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.object_path(key))
    }

    fn object_path(&self, key: &str) -> PathBuf {
        self.root.join("objects").join(key)
    }

    fn type_path(&self, key: &str) -> PathBuf {
        let mut p = self.object_path(key).into_os_string();
        p.push(".ct");
        PathBuf::from(p)
    }

    async fn meta_of(&self, key: &str, path: &Path) -> Result<Option<BlobMeta>, BlobError> {
        match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => {
                let content_type = tokio::fs::read_to_string(self.type_path(key)).await.ok();
                Ok(Some(BlobMeta {
                    key: key.to_string(),
                    size: m.len(),
                    content_type,
                    last_modified: m.modified().ok().map(chrono::DateTime::<chrono::Utc>::from),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// `create_dir_all` with every new directory 0700.
async fn create_private_dir_all(path: &Path) -> std::io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path).await
}

/// A new (or truncated) file, 0600 when created.
async fn create_private_file(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

/// Writes the `.ct` sidecar (0600 when created).
async fn write_content_type(path: &Path, content_type: &str) -> std::io::Result<()> {
    let mut file = create_private_file(path).await?;
    file.write_all(content_type.as_bytes()).await?;
    file.flush().await
}

#[async_trait::async_trait]
impl BlobStore for DiskStore {
    async fn put(
        &self,
        key: &str,
        body: BlobBody,
        sha256: [u8; 32],
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        check_key(key)?;
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(uuid::Uuid::new_v4().to_string());
        let result = async {
            let mut hasher = Sha256::new();
            let mut out = create_private_file(&tmp).await?;
            let mut size = 0u64;
            match body {
                BlobBody::Bytes(bytes) => {
                    hasher.update(&bytes);
                    out.write_all(&bytes).await?;
                    size = bytes.len() as u64;
                }
                BlobBody::File(path) => {
                    let mut input = tokio::fs::File::open(&path).await?;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = input.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                        out.write_all(&buf[..n]).await?;
                        size += n as u64;
                    }
                }
            }
            out.sync_all().await?;
            drop(out);
            if hasher.finalize().as_slice() != sha256 {
                return Err(BlobError::ChecksumMismatch);
            }
            let dest = self.object_path(key);
            if let Some(dir) = dest.parent() {
                create_private_dir_all(dir).await?;
            }
            write_content_type(&self.type_path(key), content_type).await?;
            tokio::fs::rename(&tmp, &dest).await?;
            Ok(BlobMeta {
                key: key.to_string(),
                size,
                content_type: Some(content_type.to_string()),
                last_modified: Some(chrono::Utc::now()),
            })
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError> {
        check_key(key)?;
        self.meta_of(key, &self.object_path(key)).await
    }

    async fn get(&self, key: &str) -> Result<Option<BlobObject>, BlobError> {
        check_key(key)?;
        let Some(meta) = self.head(key).await? else {
            return Ok(None);
        };
        let file = match tokio::fs::File::open(self.object_path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(BlobObject {
            meta,
            body: Box::pin(tokio_util::io::ReaderStream::new(file)),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        for path in [self.object_path(key), self.type_path(key)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        check_prefix(prefix)?;
        let base = self.root.join("objects");
        let mut out = Vec::new();
        let mut pending = vec![base.clone()];
        while let Some(dir) = pending.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            while let Some(entry) = entries.next_entry().await? {
                let path = entry.path();
                if entry.file_type().await?.is_dir() {
                    pending.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&base) else {
                    continue;
                };
                let key = rel.to_string_lossy().replace('\\', "/");
                if key.ends_with(".ct") || !key.starts_with(prefix) {
                    continue;
                }
                if let Some(meta) = self.meta_of(&key, &path).await? {
                    out.push(meta);
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn presigned_get(&self, key: &str, _ttl: Duration) -> Result<Option<String>, BlobError> {
        check_key(key)?;
        Ok(None)
    }

    async fn check(&self) -> Result<(), BlobError> {
        let probe = self
            .root
            .join(TMP_DIR)
            .join(format!("ready-{}", uuid::Uuid::new_v4()));
        let mut file = create_private_file(&probe).await?;
        file.write_all(b"ok").await?;
        drop(file);
        tokio::fs::remove_file(&probe).await?;
        Ok(())
    }
}
