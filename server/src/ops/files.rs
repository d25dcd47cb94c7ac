//! Private files for backups and restores: directories 0700, files 0600 created new,
//! copies hashed as they go and synced before anyone relies on them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{IoAt, OpsError};

/// What a file held: its SHA-256 (lowercase hex) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest256 {
    pub sha256: String,
    pub size: u64,
}

/// Creates `path` and its missing parents, each new one 0700.
pub fn create_private_dir_all(path: &Path) -> Result<(), OpsError> {
    crate::config::create_private_dir_all(path).at(path)
}

/// A new file (refusing one that exists), 0600.
pub fn create_private_file(path: &Path) -> Result<File, OpsError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).at(path)
}

/// Writes a new private file and syncs it.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), OpsError> {
    let mut file = create_private_file(path)?;
    file.write_all(contents).at(path)?;
    file.sync_all().at(path)
}

/// Copies `from` into a new private file `to`, syncs it, and tells what it copied.
pub fn copy_private(from: &Path, to: &Path) -> Result<Digest256, OpsError> {
    let mut input = File::open(from).at(from)?;
    let mut output = create_private_file(to)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf).at(from)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n]).at(to)?;
        size += n as u64;
    }
    output.sync_all().at(to)?;
    Ok(Digest256 {
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

/// The SHA-256 and size of a file.
pub fn digest_file(path: &Path) -> std::io::Result<Digest256> {
    let mut input = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Digest256 {
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

/// Whether `path` is missing or an empty directory; an existing file is not empty.
pub fn is_missing_or_empty(path: &Path) -> Result<bool, OpsError> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(OpsError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Syncs a directory, so the names just created or renamed in it survive a crash.
pub fn sync_dir(path: &Path) -> Result<(), OpsError> {
    #[cfg(unix)]
    File::open(path).and_then(|d| d.sync_all()).at(path)?;
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The permission bits of a path (`None` off Unix).
pub fn mode_of(path: &Path) -> std::io::Result<Option<u32>> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(Some(meta.permissions().mode() & 0o7777))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(None)
    }
}
