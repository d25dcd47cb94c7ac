//! `donghanh migrate status`: which migrations the database has, as a table on stdout
//! (sea-orm-migration's own `status` only logs, and the default log filter hides it).

use chrono::{DateTime, Utc};
use migrations::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;

/// One migration as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub name: String,
    /// When it was applied; `None` while pending.
    pub applied_at: Option<DateTime<Utc>>,
}

/// Every migration of this build, in order, with when each was applied; an error
/// names any migration the database has that this build does not know (a newer one).
pub async fn status(db: &impl ConnectionTrait) -> Result<Vec<MigrationState>, sea_orm::DbErr> {
    let mut applied: std::collections::HashMap<String, i64> = Migrator::get_migration_models(db)
        .await?
        .into_iter()
        .map(|m| (m.version, m.applied_at))
        .collect();
    let states: Vec<MigrationState> = Migrator::migrations()
        .iter()
        .map(|m| MigrationState {
            name: m.name().to_string(),
            applied_at: applied
                .remove(m.name())
                .map(|secs| DateTime::from_timestamp(secs, 0).unwrap_or_default()),
        })
        .collect();
    if !applied.is_empty() {
        let mut unknown: Vec<String> = applied.into_keys().collect();
        unknown.sort();
        return Err(sea_orm::DbErr::Custom(format!(
            "the database has migrations this donghanh does not know (a newer version applied them): {}",
            unknown.join(", ")
        )));
    }
    Ok(states)
}

/// The status as a plain-text table with a closing count.
pub fn render(states: &[MigrationState]) -> String {
    let width = states
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .max("MIGRATION".len());
    let mut out = format!(
        "{:<width$}  {:<8}  APPLIED AT (UTC)\n",
        "MIGRATION", "STATUS"
    );
    for s in states {
        let (status, at) = match s.applied_at {
            Some(t) => ("Applied", t.format("%Y-%m-%d %H:%M:%S").to_string()),
            None => ("Pending", "-".to_string()),
        };
        out.push_str(&format!("{:<width$}  {status:<8}  {at}\n", s.name));
    }
    let pending = states.iter().filter(|s| s.applied_at.is_none()).count();
    out.push_str(&format!(
        "{} applied, {pending} pending\n",
        states.len() - pending
    ));
    out
}
