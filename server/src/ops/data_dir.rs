//! The data directory holds key-population data (visits, UIC hashes, photos) and the
//! keys that make UICs recognisable. Before any command runs on it, it is made private:
//! created 0700 when new, with its photo spool `tmp/` (the SQLite file created empty at
//! 0600 first, so SQLite's WAL and shared-memory files take the same mode), and an existing directory, database or
//! key file that other local users could read is tightened (group and other bits
//! cleared) with a warning naming it.
//!
//! Fixing rather than only warning: there is no reading of these files by another
//! local account that the server needs (backups are taken by `donghanh backup` as the
//! server's user), a warning scrolls by unseen on a district office PC while the
//! exposure stays, and clearing bits only ever narrows access. Where the process may
//! not change a mode (another owner), it warns and goes on rather than leaving phones
//! without a server.

use std::path::{Path, PathBuf};

use super::files::{create_private_dir_all, create_private_file, mode_of};
use super::restore::RESTORE_MARKER;
use super::OpsError;
use crate::config::DataLayout;

/// A path whose mode was tightened at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tightened {
    pub path: PathBuf,
    pub was: u32,
    pub now: u32,
}

/// Creates the data directory if missing and makes it private (see the module
/// documentation); refuses a data directory a restore did not finish.
pub fn secure(layout: &DataLayout) -> Result<Vec<Tightened>, OpsError> {
    let marker = layout.data_dir.join(RESTORE_MARKER);
    if marker.exists() {
        return Err(OpsError::Refused(format!(
            "{} holds a restore that did not finish; empty it and run `donghanh restore` again",
            layout.data_dir.display()
        )));
    }
    if let Some(database) = &layout.database {
        // `tmp` is where photos are spooled while they are hashed.
        create_private_dir_all(&layout.data_dir.join("tmp"))?;
        let parent_exists = database
            .parent()
            .is_none_or(|p| p.as_os_str().is_empty() || p.is_dir());
        if parent_exists && !database.exists() {
            drop(create_private_file(database)?);
        }
    }

    let mut paths = vec![
        layout.data_dir.clone(),
        layout.secrets_dir(),
        layout.data_dir.join("tmp"),
    ];
    if let Ok(entries) = std::fs::read_dir(layout.secrets_dir()) {
        paths.extend(entries.filter_map(Result::ok).map(|e| e.path()));
    }
    if let Some(database) = &layout.database {
        paths.push(database.clone());
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = database.as_os_str().to_owned();
            p.push(suffix);
            paths.push(PathBuf::from(p));
        }
    }
    if let Some(root) = &layout.blob_root {
        paths.push(root.clone());
    }

    let mut tightened = Vec::new();
    for path in paths {
        if let Some(t) = tighten(&path) {
            tightened.push(t);
        }
    }
    Ok(tightened)
}

/// Clears the group and other bits of `path` if any is set; logs what it did.
fn tighten(path: &Path) -> Option<Tightened> {
    let was = match mode_of(path) {
        Ok(Some(mode)) => mode,
        _ => return None,
    };
    if was & 0o077 == 0 {
        return None;
    }
    let now = was & !0o077;
    match set_mode(path, now) {
        Ok(()) => {
            tracing::warn!(
                path = %path.display(),
                was = format!("{was:o}"),
                now = format!("{now:o}"),
                "other local users could read the data directory; tightened"
            );
            Some(Tightened {
                path: path.to_path_buf(),
                was,
                now,
            })
        }
        Err(e) => {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{was:o}"),
                error = %e,
                "other local users can read the data directory and its mode cannot be changed"
            );
            None
        }
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// The file servers lock in the data directory: shared by every server running on it,
/// exclusive while `donghanh move` copies it.
pub const SERVER_LOCK: &str = "server.lock";

/// Held by a running server (a shared lock: several servers on PostgreSQL may share a
/// data directory for their keys); the lock goes with the process, also when killed.
#[derive(Debug)]
pub struct ServerLock(#[allow(dead_code)] std::fs::File);

fn lock_file(layout: &DataLayout) -> Result<(PathBuf, std::fs::File), OpsError> {
    use std::os::unix::fs::OpenOptionsExt;
    create_private_dir_all(&layout.data_dir)?;
    let path = layout.data_dir.join(SERVER_LOCK);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|source| OpsError::Io {
            path: path.clone(),
            source,
        })?;
    Ok((path, file))
}

/// Takes a server's shared lock; refused while a move holds the directory.
pub fn lock_for_server(layout: &DataLayout) -> Result<ServerLock, OpsError> {
    take_lock(layout, std::fs::File::try_lock_shared, || {
        format!(
            "`donghanh move` is copying {}; start the server when it has finished",
            layout.data_dir.display()
        )
    })
}

/// Takes the directory for a move: refused while any server runs on it, so that no
/// visit can arrive after the copy began and be left behind.
pub fn lock_for_move(layout: &DataLayout) -> Result<ServerLock, OpsError> {
    take_lock(layout, std::fs::File::try_lock, || {
        format!(
            "a server is running on {}: stop it before moving (phones keep their visits \
             and send them to the new server); `donghanh backup` is the command that runs \
             beside a server",
            layout.data_dir.display()
        )
    })
}

fn take_lock(
    layout: &DataLayout,
    try_lock: fn(&std::fs::File) -> Result<(), std::fs::TryLockError>,
    held: impl FnOnce() -> String,
) -> Result<ServerLock, OpsError> {
    let (path, file) = lock_file(layout)?;
    match try_lock(&file) {
        Ok(()) => Ok(ServerLock(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpsError::Refused(held())),
        Err(std::fs::TryLockError::Error(source)) => Err(OpsError::Io { path, source }),
    }
}
