//! Report cells: the indicators report, precomputed when submissions are approved or
//! reopened, so a city-year report reads a few thousand cells instead of scanning
//! millions of facts.
//!
//! A `reach` cell covers one unit path and one day (or one calendar month): the client
//! keys reached there, as a compressed bitmap, and the additive figures (contact
//! events, commodities, referrals issued and completed by service, group sessions and
//! participants by audience, support actions and loan amounts). A `first` cell (path
//! `""`) holds the clients whose first approved contact in the whole program fell on that
//! day (or month). A report over any period takes the month cells of the whole months it
//! covers and the day cells of the days at its edges, unions the bitmaps (people are
//! counted once) and adds the figures; people new in the period are the reached ones
//! whose first contact falls inside it.
//!
//! Cells are derived data. A day cell is always recomputed whole from the facts (the
//! approved contacts, referrals, sessions and support actions of its unit and day) and a
//! month cell from its day cells, so a cell cannot drift from the facts; `first` cells
//! move a client between days exactly when its first approved day changes. On
//! PostgreSQL a writer holds an advisory lock per cell (taken in one global order, so
//! writers cannot deadlock on them) and a shared lock that a full rebuild takes
//! exclusively; SQLite serialises writers anyway. [`rebuild`] recomputes every cell from
//! the facts: run at start-up when the layout version changed, and by
//! `donghanh rebuild-reports`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Months, NaiveDate, Utc};
use futures::TryStreamExt;
use roaring::RoaringTreemap;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, QueryResult,
    StreamTrait, TransactionTrait, Value,
};
use sha2::{Digest, Sha256};

use crate::db::sql;
use crate::error::{ApiError, ApiResult};

/// The layout of the cells; a server finding another version built rebuilds them.
pub const LAYOUT_VERSION: i32 = 1;

const REACH: &str = "reach";
const FIRST: &str = "first";
const DAY: &str = "day";
const MONTH: &str = "month";

/// Advisory lock every cell writer holds shared and a rebuild exclusively (PostgreSQL).
const REBUILD_LOCK: i64 = 0x646f_6e67_6861_6e68; // "donghanh"

/// What one cell holds: the client keys reached and the additive figures (zeros left
/// out), by indicator key as the report names them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub clients: RoaringTreemap,
    pub figures: BTreeMap<String, i64>,
}

impl Cell {
    fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.figures.values().all(|v| *v == 0)
    }

    fn add(&mut self, key: impl Into<String>, value: i64) {
        if value != 0 {
            *self.figures.entry(key.into()).or_insert(0) += value;
        }
    }

    /// Adds another cell in: clients once, figures summed.
    pub fn absorb(&mut self, other: &Cell) {
        self.clients |= &other.clients;
        for (k, v) in &other.figures {
            self.add(k.clone(), *v);
        }
    }

    fn encode(&self) -> ApiResult<(Vec<u8>, String)> {
        let mut bytes = Vec::with_capacity(self.clients.serialized_size());
        self.clients
            .serialize_into(&mut bytes)
            .map_err(|e| ApiError::Internal(e.into()))?;
        let figures =
            serde_json::to_string(&self.figures).map_err(|e| ApiError::Internal(e.into()))?;
        Ok((bytes, figures))
    }

    fn decode(row: &QueryResult) -> ApiResult<Cell> {
        let bytes: Vec<u8> = row.try_get("", "clients")?;
        let figures: String = row.try_get("", "figures")?;
        Ok(Cell {
            clients: RoaringTreemap::deserialize_from(&bytes[..])
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("report cell bitmap: {e}")))?,
            figures: serde_json::from_str(&figures)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("report cell figures: {e}")))?,
        })
    }
}

/// The first day of a day's month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn month_end(month: NaiveDate) -> NaiveDate {
    month
        .checked_add_months(Months::new(1))
        .and_then(|m| m.pred_opt())
        .unwrap_or(month)
}

/// The cells that cover `from..=to`: whole months as month cells, the rest as days.
#[derive(Debug, PartialEq)]
struct Span {
    /// First and last month (their first days), if the period covers a whole month.
    months: Option<(NaiveDate, NaiveDate)>,
    /// Ranges of days, inclusive, outside those months.
    days: Vec<(NaiveDate, NaiveDate)>,
}

fn span(from: NaiveDate, to: NaiveDate) -> Span {
    let first_full = if from.day() == 1 {
        Some(from)
    } else {
        month_of(from).checked_add_months(Months::new(1))
    };
    let last_full_end = if month_end(month_of(to)) == to {
        Some(to)
    } else {
        month_of(to).pred_opt()
    };
    match (first_full, last_full_end) {
        (Some(a), Some(b)) if a <= b => {
            let mut days = Vec::new();
            if from < a {
                days.push((from, a.pred_opt().unwrap_or(a)));
            }
            if b < to {
                days.push((b.succ_opt().unwrap_or(b), to));
            }
            Span {
                months: Some((a, month_of(b))),
                days,
            }
        }
        _ => Span {
            months: None,
            days: vec![(from, to)],
        },
    }
}

/// The cells of `kind` under paths starting with `prefix` that together cover
/// `from..=to` exactly once, with each cell's path.
pub async fn read<C: ConnectionTrait>(
    db: &C,
    kind: Kind,
    prefix: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<Vec<(String, Cell)>> {
    let span = span(from, to);
    let mut ors = Vec::new();
    let mut values: Vec<Value> = vec![kind.as_str().into(), format!("{prefix}%").into()];
    if let Some((a, b)) = span.months {
        ors.push("(grain = ? AND starts_on >= ? AND starts_on <= ?)");
        values.extend([MONTH.into(), a.into(), b.into()]);
    }
    for (a, b) in span.days {
        ors.push("(grain = ? AND starts_on >= ? AND starts_on <= ?)");
        values.extend([DAY.into(), a.into(), b.into()]);
    }
    let q = format!(
        "SELECT org_path, clients, figures FROM report_cells \
         WHERE kind = ? AND org_path LIKE ? AND ({})",
        ors.join(" OR ")
    );
    let rows = db
        .query_all(sql(db.get_database_backend(), &q, values))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("", "org_path")?, Cell::decode(row)?)))
        .collect()
}

/// The two kinds of cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Clients reached and figures, per unit path.
    Reach,
    /// Clients first met in the program (path `""`).
    First,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Reach => REACH,
            Kind::First => FIRST,
        }
    }
}

/// What an approval or a reopening changed, for [`apply`].
#[derive(Debug, Default)]
pub struct Changes {
    days: BTreeSet<(String, NaiveDate)>,
    first_moves: Vec<(u64, Option<NaiveDate>, Option<NaiveDate>)>,
}

impl Changes {
    /// The facts of this unit and day changed.
    pub fn day(&mut self, org_path: &str, day: NaiveDate) {
        self.days.insert((org_path.to_string(), day));
    }

    /// A client's first approved day moved (from `None`: new; to `None`: gone).
    pub fn first_moved(
        &mut self,
        client_id: i64,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> ApiResult<()> {
        if from != to {
            self.first_moves.push((client(client_id)?, from, to));
        }
        Ok(())
    }
}

fn client(id: i64) -> ApiResult<u64> {
    u64::try_from(id).map_err(|_| ApiError::Internal(anyhow::anyhow!("negative client key")))
}

/// A cell's identity, ordered as the locks are taken.
type Key = (Kind, &'static str, NaiveDate, String);

/// The two `first` cells a day falls in: its day and its month.
fn first_cells(day: NaiveDate) -> [Key; 2] {
    [
        (Kind::First, DAY, day, String::new()),
        (Kind::First, MONTH, month_of(day), String::new()),
    ]
}

/// A cell's primary key as statement values.
fn pk(key: &Key) -> Vec<Value> {
    vec![
        key.0.as_str().into(),
        key.1.into(),
        key.2.into(),
        key.3.clone().into(),
    ]
}

fn lock_id(key: &Key) -> i64 {
    let mut h = Sha256::new();
    h.update(format!("{}|{}|{}|{}", key.0.as_str(), key.1, key.2, key.3));
    let digest = h.finalize();
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(eight)
}

async fn advisory<C: ConnectionTrait>(db: &C, function: &str, id: i64) -> ApiResult<()> {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        db.execute(sql(
            DatabaseBackend::Postgres,
            &format!("SELECT {function}(?)"),
            vec![id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Brings the cells in line with what changed, inside the approving (or reopening)
/// transaction, after its facts are written.
pub async fn apply(txn: &DatabaseTransaction, changes: &Changes) -> ApiResult<()> {
    if changes.days.is_empty() && changes.first_moves.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let months: BTreeSet<(String, NaiveDate)> = changes
        .days
        .iter()
        .map(|(p, d)| (p.clone(), month_of(*d)))
        .collect();
    let mut first_keys: BTreeSet<Key> = BTreeSet::new();
    for (_, from, to) in &changes.first_moves {
        for day in [from, to].into_iter().flatten() {
            first_keys.extend(first_cells(*day));
        }
    }

    advisory(txn, "pg_advisory_xact_lock_shared", REBUILD_LOCK).await?;
    let mut locks: Vec<i64> = changes
        .days
        .iter()
        .map(|(p, d)| (Kind::Reach, DAY, *d, p.clone()))
        .chain(
            months
                .iter()
                .map(|(p, m)| (Kind::Reach, MONTH, *m, p.clone())),
        )
        .chain(first_keys.iter().cloned())
        .map(|k| lock_id(&k))
        .collect();
    locks.sort_unstable();
    locks.dedup();
    for id in locks {
        advisory(txn, "pg_advisory_xact_lock", id).await?;
    }

    for (path, day) in &changes.days {
        let mut cells = compute_days(txn, Facts::Cell(path, *day)).await?;
        let cell = cells.remove(&(path.clone(), *day)).unwrap_or_default();
        write(txn, &(Kind::Reach, DAY, *day, path.clone()), &cell).await?;
    }
    for (path, month) in &months {
        let cell = month_from_days(txn, path, *month).await?;
        write(txn, &(Kind::Reach, MONTH, *month, path.clone()), &cell).await?;
    }

    let mut firsts: BTreeMap<Key, Cell> = BTreeMap::new();
    for key in first_keys {
        let cell = load(txn, &key).await?.unwrap_or_default();
        firsts.insert(key, cell);
    }
    for (client, from, to) in &changes.first_moves {
        for key in from.iter().flat_map(|d| first_cells(*d)) {
            if let Some(cell) = firsts.get_mut(&key) {
                cell.clients.remove(*client);
            }
        }
        for key in to.iter().flat_map(|d| first_cells(*d)) {
            if let Some(cell) = firsts.get_mut(&key) {
                cell.clients.insert(*client);
            }
        }
    }
    for (key, cell) in &firsts {
        write(txn, key, cell).await?;
    }
    crate::metrics::report_cells_rebuilt("changed", started.elapsed());
    Ok(())
}

async fn load<C: ConnectionTrait>(db: &C, key: &Key) -> ApiResult<Option<Cell>> {
    let row = db
        .query_one(sql(
            db.get_database_backend(),
            "SELECT clients, figures FROM report_cells \
             WHERE kind = ? AND grain = ? AND starts_on = ? AND org_path = ?",
            pk(key),
        ))
        .await?;
    row.as_ref().map(Cell::decode).transpose()
}

/// Stores a cell, or removes it when nothing is left in it.
async fn write<C: ConnectionTrait>(db: &C, key: &Key, cell: &Cell) -> ApiResult<()> {
    let backend = db.get_database_backend();
    if cell.is_empty() {
        db.execute(sql(
            backend,
            "DELETE FROM report_cells \
             WHERE kind = ? AND grain = ? AND starts_on = ? AND org_path = ?",
            pk(key),
        ))
        .await?;
        return Ok(());
    }
    let (clients, figures) = cell.encode()?;
    let mut values = pk(key);
    values.extend([clients.into(), figures.into()]);
    db.execute(sql(
        backend,
        "INSERT INTO report_cells (kind, grain, starts_on, org_path, clients, figures) \
         VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (kind, grain, starts_on, org_path) \
         DO UPDATE SET clients = excluded.clients, figures = excluded.figures",
        values,
    ))
    .await?;
    Ok(())
}

/// A month cell: the union of its day cells.
async fn month_from_days<C: ConnectionTrait>(
    db: &C,
    path: &str,
    month: NaiveDate,
) -> ApiResult<Cell> {
    let rows = db
        .query_all(sql(
            db.get_database_backend(),
            "SELECT clients, figures FROM report_cells \
             WHERE kind = ? AND grain = ? AND starts_on >= ? AND starts_on <= ? AND org_path = ?",
            vec![
                REACH.into(),
                DAY.into(),
                month.into(),
                month_end(month).into(),
                path.into(),
            ],
        ))
        .await?;
    let mut out = Cell::default();
    for row in &rows {
        out.absorb(&Cell::decode(row)?);
    }
    Ok(out)
}

/// Which facts a computation reads.
#[derive(Debug, Clone, Copy)]
enum Facts<'a> {
    /// One unit path on one day.
    Cell(&'a str, NaiveDate),
    /// Every unit over these days, inclusive.
    Days(NaiveDate, NaiveDate),
}

impl Facts<'_> {
    /// The condition on a table's path and day columns, and its values.
    fn condition(&self, path_col: &str, day_col: &str) -> (String, Vec<Value>) {
        match *self {
            Facts::Cell(path, day) => (
                format!("{path_col} = ? AND {day_col} = ?"),
                vec![path.into(), day.into()],
            ),
            Facts::Days(a, b) => (
                format!("{day_col} >= ? AND {day_col} <= ?"),
                vec![a.into(), b.into()],
            ),
        }
    }
}

/// Day cells computed from the approved facts, by (unit path, day).
async fn compute_days<C: ConnectionTrait + StreamTrait>(
    db: &C,
    facts: Facts<'_>,
) -> ApiResult<BTreeMap<(String, NaiveDate), Cell>> {
    let backend = db.get_database_backend();
    let mut cells: BTreeMap<(String, NaiveDate), Cell> = BTreeMap::new();
    let key = |row: &QueryResult| -> ApiResult<(String, NaiveDate)> {
        Ok((row.try_get("", "p")?, row.try_get("", "d")?))
    };
    let num = |row: &QueryResult, col: &str| -> ApiResult<i64> {
        Ok(row.try_get::<Option<i64>>("", col)?.unwrap_or(0))
    };

    // Contacts, one row per client and cell.
    let (cond, values) = facts.condition("ac.org_path", "ac.occurred_on");
    let q = format!(
        "SELECT ac.org_path AS p, ac.occurred_on AS d, ac.client_id AS c, COUNT(*) AS n, \
         CAST(SUM(ac.condoms_male) AS BIGINT) AS cm, CAST(SUM(ac.condoms_female) AS BIGINT) AS cf, \
         CAST(SUM(ac.lubricant) AS BIGINT) AS lu, CAST(SUM(ac.self_test_kits) AS BIGINT) AS st \
         FROM approved_contacts ac WHERE {cond} \
         GROUP BY ac.org_path, ac.occurred_on, ac.client_id"
    );
    {
        let rows = db.stream(sql(backend, &q, values)).await?;
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = rows.try_next().await? {
            let cell = cells.entry(key(&row)?).or_default();
            cell.clients.insert(client(row.try_get("", "c")?)?);
            cell.add("contact_events", num(&row, "n")?);
            cell.add("condoms_male", num(&row, "cm")?);
            cell.add("condoms_female", num(&row, "cf")?);
            cell.add("lubricant", num(&row, "lu")?);
            cell.add("self_test_kits", num(&row, "st")?);
        }
    }

    // Referrals issued by approved visits, completed ones among them, by service.
    let (cond, values) = facts.condition("r.org_path", "r.issued_on");
    let q = format!(
        "SELECT r.org_path AS p, r.issued_on AS d, r.service AS service, COUNT(*) AS issued, \
         CAST(SUM(CASE WHEN r.status = 'completed' THEN 1 ELSE 0 END) AS BIGINT) AS completed \
         FROM referrals r JOIN submissions s ON s.id = r.submission_id \
         WHERE s.status = 'approved' AND {cond} GROUP BY r.org_path, r.issued_on, r.service"
    );
    for row in db.query_all(sql(backend, &q, values)).await? {
        let service: String = row.try_get("", "service")?;
        let cell = cells.entry(key(&row)?).or_default();
        cell.add(format!("referrals_issued.{service}"), num(&row, "issued")?);
        cell.add(
            format!("referrals_completed.{service}"),
            num(&row, "completed")?,
        );
    }

    // Group sessions and their participants, by audience.
    let (cond, values) = facts.condition("s.org_path", "s.occurred_on");
    let q = format!(
        "SELECT s.org_path AS p, s.occurred_on AS d, g.audience AS audience, COUNT(*) AS n, \
         CAST(SUM(g.participants) AS BIGINT) AS participants \
         FROM group_sessions g JOIN submissions s ON s.id = g.submission_id \
         WHERE s.status = 'approved' AND s.kind = 'group_session' AND {cond} \
         GROUP BY s.org_path, s.occurred_on, g.audience"
    );
    for row in db.query_all(sql(backend, &q, values)).await? {
        let audience: String = row.try_get("", "audience")?;
        let cell = cells.entry(key(&row)?).or_default();
        cell.add("group_sessions", num(&row, "n")?);
        cell.add(
            format!("group_participants.{audience}"),
            num(&row, "participants")?,
        );
    }

    // Support actions, and the amounts of loans.
    let (cond, values) = facts.condition("s.org_path", "s.occurred_on");
    let q = format!(
        "SELECT s.org_path AS p, s.occurred_on AS d, a.action AS action, COUNT(*) AS n, \
         CAST(SUM(a.loan_amount_vnd) AS BIGINT) AS amount \
         FROM support_actions a JOIN submissions s ON s.id = a.submission_id \
         WHERE s.status = 'approved' AND s.kind = 'support_visit' AND {cond} \
         GROUP BY s.org_path, s.occurred_on, a.action"
    );
    for row in db.query_all(sql(backend, &q, values)).await? {
        let action: String = row.try_get("", "action")?;
        let cell = cells.entry(key(&row)?).or_default();
        cell.add(format!("support.{action}"), num(&row, "n")?);
        if action == "loan" {
            cell.add("support.loan_amount_vnd", num(&row, "amount")?);
        }
    }
    Ok(cells)
}

/// Rebuilds the cells if they were built with another layout (or never): answers
/// whether it rebuilt. Called at start-up.
pub async fn ensure_current(db: &DatabaseConnection) -> ApiResult<bool> {
    if built_version(db).await? == Some(LAYOUT_VERSION) {
        return Ok(false);
    }
    rebuild(db, false).await
}

async fn built_version<C: ConnectionTrait>(db: &C) -> ApiResult<Option<i32>> {
    let row = db
        .query_one(sql(
            db.get_database_backend(),
            "SELECT version FROM report_state WHERE id = 1",
            vec![],
        ))
        .await?;
    Ok(row.map(|r| r.try_get("", "version")).transpose()?)
}

/// Recomputes every cell from the facts in one transaction (writers wait meanwhile);
/// without `force`, only if another instance has not just done it. Answers whether
/// it rebuilt.
pub async fn rebuild(db: &DatabaseConnection, force: bool) -> ApiResult<bool> {
    let txn = db.begin().await?;
    advisory(&txn, "pg_advisory_xact_lock", REBUILD_LOCK).await?;
    if !force && built_version(&txn).await? == Some(LAYOUT_VERSION) {
        txn.rollback().await?;
        return Ok(false);
    }
    let cells = rebuild_in(&txn).await?;
    let backend = txn.get_database_backend();
    txn.execute(sql(backend, "DELETE FROM report_state", vec![]))
        .await?;
    txn.execute(sql(
        backend,
        "INSERT INTO report_state (id, version, built_at) VALUES (1, ?, ?)",
        vec![LAYOUT_VERSION.into(), Utc::now().into()],
    ))
    .await?;
    txn.commit().await?;
    tracing::info!(report.cells = cells, "report cells rebuilt");
    Ok(true)
}

/// Compares the stored cells with what a rebuild from the facts would make, changing
/// nothing: answers one line per cell that differs (its kind, grain, day and path, and
/// how: never client keys). Empty means the cells are exactly the facts.
pub async fn verify(db: &DatabaseConnection) -> ApiResult<Vec<String>> {
    let txn = db.begin().await?;
    advisory(&txn, "pg_advisory_xact_lock", REBUILD_LOCK).await?;
    let stored = all_cells(&txn).await?;
    rebuild_in(&txn).await?;
    let rebuilt = all_cells(&txn).await?;
    txn.rollback().await?;
    let keys: BTreeSet<&(String, String, NaiveDate, String)> =
        stored.keys().chain(rebuilt.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let (kind, grain, day, path) = key;
        let what = match (stored.get(key), rebuilt.get(key)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => format!(
                "{} stored clients vs {} from the facts; figures {:?} vs {:?}",
                a.clients.len(),
                b.clients.len(),
                a.figures,
                b.figures
            ),
            (Some(_), None) => "stored, but the facts make no such cell".to_string(),
            (None, Some(_)) => "missing".to_string(),
            (None, None) => continue,
        };
        out.push(format!("{kind} {grain} {day} {path:?}: {what}"));
    }
    Ok(out)
}

async fn all_cells<C: ConnectionTrait + StreamTrait>(
    db: &C,
) -> ApiResult<BTreeMap<(String, String, NaiveDate, String), Cell>> {
    let rows = db
        .stream(sql(
            db.get_database_backend(),
            "SELECT kind, grain, starts_on, org_path, clients, figures FROM report_cells",
            vec![],
        ))
        .await?;
    let mut rows = std::pin::pin!(rows);
    let mut out = BTreeMap::new();
    while let Some(row) = rows.try_next().await? {
        out.insert(
            (
                row.try_get("", "kind")?,
                row.try_get("", "grain")?,
                row.try_get("", "starts_on")?,
                row.try_get("", "org_path")?,
            ),
            Cell::decode(&row)?,
        );
    }
    Ok(out)
}

/// Deletes every cell and writes them again from the facts; answers how many.
async fn rebuild_in(txn: &DatabaseTransaction) -> ApiResult<usize> {
    let backend = txn.get_database_backend();
    txn.execute(sql(backend, "DELETE FROM report_cells", vec![]))
        .await?;

    // The days any approved fact falls on.
    let bounds = txn
        .query_one(sql(
            backend,
            "SELECT MIN(d) AS lo, MAX(d) AS hi FROM ( \
               SELECT MIN(occurred_on) AS d FROM submissions WHERE status = 'approved' \
               UNION ALL SELECT MAX(occurred_on) FROM submissions WHERE status = 'approved' \
               UNION ALL SELECT MIN(issued_on) FROM referrals \
               UNION ALL SELECT MAX(issued_on) FROM referrals \
               UNION ALL SELECT MIN(occurred_on) FROM approved_contacts \
               UNION ALL SELECT MAX(occurred_on) FROM approved_contacts) b",
            vec![],
        ))
        .await?;
    let (lo, hi): (Option<NaiveDate>, Option<NaiveDate>) = match &bounds {
        Some(row) => (row.try_get("", "lo")?, row.try_get("", "hi")?),
        None => (None, None),
    };
    let mut cells = 0usize;
    if let (Some(lo), Some(hi)) = (lo, hi) {
        let mut month = month_of(lo);
        while month <= hi {
            let days = compute_days(txn, Facts::Days(month, month_end(month))).await?;
            let mut months: BTreeMap<String, Cell> = BTreeMap::new();
            for ((path, day), cell) in &days {
                months.entry(path.clone()).or_default().absorb(cell);
                write(txn, &(Kind::Reach, DAY, *day, path.clone()), cell).await?;
            }
            for (path, cell) in &months {
                write(txn, &(Kind::Reach, MONTH, month, path.clone()), cell).await?;
            }
            cells += days.len() + months.len();
            month = match month.checked_add_months(Months::new(1)) {
                Some(m) => m,
                None => break,
            };
        }
    }

    // First approved days.
    let mut firsts: BTreeMap<Key, Cell> = BTreeMap::new();
    {
        let mut rows = txn
            .stream(sql(
                backend,
                "SELECT id, first_approved_on FROM client_keys WHERE first_approved_on IS NOT NULL",
                vec![],
            ))
            .await?;
        while let Some(row) = rows.try_next().await? {
            let id = client(row.try_get("", "id")?)?;
            let day: NaiveDate = row.try_get("", "first_approved_on")?;
            for key in first_cells(day) {
                firsts.entry(key).or_default().clients.insert(id);
            }
        }
    }
    for (key, cell) in &firsts {
        write(txn, key, cell).await?;
    }
    cells += firsts.len();

    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn a_period_is_whole_months_and_edge_days() {
        assert_eq!(
            span(d(2024, 1, 1), d(2024, 12, 31)),
            Span {
                months: Some((d(2024, 1, 1), d(2024, 12, 1))),
                days: vec![]
            }
        );
        // The national quarter: 15 June to 14 September.
        assert_eq!(
            span(d(2024, 6, 15), d(2024, 9, 14)),
            Span {
                months: Some((d(2024, 7, 1), d(2024, 8, 1))),
                days: vec![
                    (d(2024, 6, 15), d(2024, 6, 30)),
                    (d(2024, 9, 1), d(2024, 9, 14))
                ]
            }
        );
        // Inside one month, or across a month boundary without a whole month.
        assert_eq!(
            span(d(2024, 2, 3), d(2024, 2, 29)),
            Span {
                months: None,
                days: vec![(d(2024, 2, 3), d(2024, 2, 29))]
            }
        );
        assert_eq!(
            span(d(2024, 1, 20), d(2024, 2, 10)),
            Span {
                months: None,
                days: vec![(d(2024, 1, 20), d(2024, 2, 10))]
            }
        );
        // A leap February, whole.
        assert_eq!(
            span(d(2024, 2, 1), d(2024, 2, 29)),
            Span {
                months: Some((d(2024, 2, 1), d(2024, 2, 1))),
                days: vec![]
            }
        );
        assert_eq!(
            span(d(2024, 3, 5), d(2024, 3, 5)),
            Span {
                months: None,
                days: vec![(d(2024, 3, 5), d(2024, 3, 5))]
            }
        );
    }

    #[test]
    fn cells_round_trip_and_absorb() {
        let mut a = Cell::default();
        a.clients.insert(3);
        a.clients.insert(1 << 40);
        a.add("contact_events", 2);
        a.add("lubricant", 0);
        let (bytes, figures) = a.encode().expect("encode");
        assert_eq!(figures, r#"{"contact_events":2}"#);
        let back = RoaringTreemap::deserialize_from(&bytes[..]).expect("decode");
        assert_eq!(back, a.clients);
        let mut b = Cell::default();
        b.clients.insert(3);
        b.clients.insert(4);
        b.add("contact_events", 5);
        b.absorb(&a);
        assert_eq!(b.clients.len(), 3);
        assert_eq!(b.figures.get("contact_events"), Some(&7));
        assert!(Cell::default().is_empty());
        assert!(!b.is_empty());
    }
}
