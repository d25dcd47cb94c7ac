//! What a database needs before this server answers its first request, apart from the
//! schema (migrations run when the state connects, since every query depends on them):
//! the bundled forms installed, and the report cells built for this release's layout.
//!
//! Kept out of [`AppState::build`] so that building a state only connects: commands
//! that create an admin, expire referrals or sweep photos neither need nor wait for
//! this work, and a test can build a state and decide for itself.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::services::{forms, rollup};
use crate::AppState;

/// What [`prepare`] did, for the caller's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// The report cells were (re)built: a new database, or a release that changed
    /// their layout. `None` if they were already current.
    pub report_cells_rebuilt: Option<Duration>,
}

/// Installs the bundled forms that are not there yet and rebuilds the report cells if
/// they were built with another layout (or never). Idempotent: on a prepared database
/// it is a few reads. The rebuild takes an advisory lock and checks again under it, so
/// of several servers starting at once on PostgreSQL one rebuilds.
pub async fn prepare(state: &AppState) -> anyhow::Result<Prepared> {
    forms::install_bundled(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("installing the bundled forms")?;
    let started = Instant::now();
    let rebuilt = rollup::ensure_current(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("building the report cells")?;
    let report_cells_rebuilt = rebuilt.then(|| started.elapsed());
    if let Some(took) = report_cells_rebuilt {
        state
            .metrics
            .record(|| crate::metrics::report_cells_rebuilt("all", took));
    }
    Ok(Prepared {
        report_cells_rebuilt,
    })
}
