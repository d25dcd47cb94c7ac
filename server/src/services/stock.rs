//! The commodity stock ledger per peer educator and item, and its reconciliation.
//! Supervisors record what they issue to a peer educator, what comes back and what is
//! lost; what the peer hands out comes from their approved outreach visits only. The
//! report adds these up in a few grouped queries and flags, never refuses, a balance
//! that went below zero: visits are recorded offline and arrive late.

use std::collections::{BTreeMap, HashMap};

use chrono::{Days, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait, TransactionTrait,
};
use shared_models::{
    Commodity, PeerStockOut, ReviewStatus, Role, StockLineOut, StockMovementIn, StockMovementKind,
    StockMovementOut, StockReportOut, StockReportQuery,
};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{
    commodity_distributions, org_units, stock_movements, submissions, users,
};
use crate::error::{ApiError, ApiResult};
use crate::services::audit;

fn movement_out(row: stock_movements::Model) -> ApiResult<StockMovementOut> {
    let unknown = |what: &str| {
        ApiError::Internal(anyhow::anyhow!(
            "stock movement {} has an unknown {what}",
            row.id
        ))
    };
    Ok(StockMovementOut {
        id: row.id,
        peer_id: row.peer_id,
        item: Commodity::parse(&row.item).ok_or_else(|| unknown("item"))?,
        kind: StockMovementKind::parse(&row.kind).ok_or_else(|| unknown("kind"))?,
        quantity: row.quantity.max(0) as u32,
        occurred_on: row.occurred_on,
        note: row.note,
        recorded_by: row.recorded_by,
        created_at: row.created_at,
    })
}

/// A user and their org unit, inside the scope; 404 when absent or outside.
async fn scoped_user<C: ConnectionTrait>(
    db: &C,
    within: &crate::db::scope::Scope,
    id: Uuid,
) -> ApiResult<(users::Model, org_units::Model)> {
    let (user, unit) = users::Entity::find_by_id(id)
        .find_also_related(org_units::Entity)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    let unit = unit
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("user {} has no org unit", user.id)))?;
    if !within.contains_path(&unit.path) {
        return Err(ApiError::NotFound("user"));
    }
    Ok((user, unit))
}

/// Records stock issued to, returned by or lost by a peer educator of the caller's subtree.
pub async fn record_movement<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    actor: &Principal,
    input: StockMovementIn,
) -> ApiResult<StockMovementOut> {
    // Hanoi is seven hours ahead of UTC: its evening is already tomorrow there.
    let latest = Utc::now().date_naive() + Days::new(1);
    if input.occurred_on > latest {
        return Err(ApiError::invalid(
            "occurred_on",
            "in_the_future",
            "a movement cannot be recorded for a day that has not come yet",
        ));
    }
    let (peer, unit) = scoped_user(db, &actor.scope(), input.peer_id).await?;
    if peer.role != Role::PeerEducator.as_str() {
        return Err(ApiError::invalid(
            "peer_id",
            "not_a_peer_educator",
            "stock is held by peer educators only",
        ));
    }
    let note = input
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let txn = db.begin().await?;
    let row = stock_movements::ActiveModel {
        id: Set(Uuid::now_v7()),
        peer_id: Set(peer.id),
        item: Set(input.item.as_str().to_string()),
        kind: Set(input.kind.as_str().to_string()),
        quantity: Set(input.quantity as i32),
        occurred_on: Set(input.occurred_on),
        org_unit_id: Set(unit.id),
        org_path: Set(unit.path),
        recorded_by: Set(actor.user_id),
        note: Set(note),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "stock.movement",
        "user",
        Some(peer.id.to_string()),
        serde_json::json!({
            "movement_id": row.id,
            "item": row.item,
            "kind": row.kind,
            "quantity": row.quantity,
            "occurred_on": row.occurred_on,
        }),
    )
    .await?;
    txn.commit().await?;
    movement_out(row)
}

/// What moved in or out of one peer's stock of one item (over a day, or before the period).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Flow {
    received: i64,
    distributed: i64,
    returned: i64,
    lost: i64,
}

impl Flow {
    fn net(&self) -> i64 {
        self.received - self.distributed - self.returned - self.lost
    }

    fn add(&mut self, other: &Flow) {
        self.received += other.received;
        self.distributed += other.distributed;
        self.returned += other.returned;
        self.lost += other.lost;
    }

    fn movement(kind: StockMovementKind, quantity: i64) -> Flow {
        match kind {
            StockMovementKind::Issued => Flow {
                received: quantity,
                ..Flow::default()
            },
            StockMovementKind::Returned => Flow {
                returned: quantity,
                ..Flow::default()
            },
            StockMovementKind::Lost => Flow {
                lost: quantity,
                ..Flow::default()
            },
        }
    }

    fn distribution(quantity: i64) -> Flow {
        Flow {
            distributed: quantity,
            ..Flow::default()
        }
    }
}

/// The reconciliation of one item: the opening balance, then each day of the period in
/// date order. A day's receipts come before its distributions, returns and losses, so
/// its lowest point is its end.
fn line(item: Commodity, opening: i64, days: Option<&BTreeMap<NaiveDate, Flow>>) -> StockLineOut {
    let mut period = Flow::default();
    let mut balance = opening;
    let mut lowest = opening;
    for day in days.into_iter().flat_map(|d| d.values()) {
        period.add(day);
        balance += day.net();
        lowest = lowest.min(balance);
    }
    StockLineOut {
        item,
        opening,
        received: period.received,
        distributed: period.distributed,
        returned: period.returned,
        lost: period.lost,
        closing: balance,
        lowest_balance: lowest,
        went_negative: lowest < 0,
    }
}

/// Per item, the sums over the peers; the lowest balance is the lowest of any peer's.
fn totals(peers: &[PeerStockOut]) -> Vec<StockLineOut> {
    Commodity::ALL
        .into_iter()
        .map(|item| {
            let lines: Vec<&StockLineOut> = peers
                .iter()
                .flat_map(|p| p.items.iter().filter(move |l| l.item == item))
                .collect();
            StockLineOut {
                item,
                opening: lines.iter().map(|l| l.opening).sum(),
                received: lines.iter().map(|l| l.received).sum(),
                distributed: lines.iter().map(|l| l.distributed).sum(),
                returned: lines.iter().map(|l| l.returned).sum(),
                lost: lines.iter().map(|l| l.lost).sum(),
                closing: lines.iter().map(|l| l.closing).sum(),
                lowest_balance: lines.iter().map(|l| l.lowest_balance).min().unwrap_or(0),
                went_negative: lines.iter().any(|l| l.went_negative),
            }
        })
        .collect()
}

/// The peer educators whose stock is reported: those of the unit's subtree, or one of them.
fn peers_condition(unit_path: &str, peer: Option<Uuid>) -> Condition {
    let mut cond = Condition::all()
        .add(users::Column::Role.eq(Role::PeerEducator.as_str()))
        .add(org_units::Column::Path.starts_with(unit_path));
    if let Some(id) = peer {
        cond = cond.add(users::Column::Id.eq(id));
    }
    cond
}

/// Which days of the ledger a grouped query reads.
#[derive(Debug, Clone, Copy)]
enum Window {
    /// Everything before this day, summed (the opening balance).
    Before(NaiveDate),
    /// These days (inclusive), summed per day.
    Within(NaiveDate, NaiveDate),
}

/// Movements of the peers, summed per peer, item, kind and (within the period) day.
async fn movement_sums<C: ConnectionTrait>(
    db: &C,
    peers: Condition,
    days: Window,
) -> ApiResult<Vec<(Uuid, Commodity, Option<NaiveDate>, Flow)>> {
    let items: Vec<&str> = Commodity::ALL.iter().map(|c| c.as_str()).collect();
    let kinds: Vec<&str> = StockMovementKind::ALL.iter().map(|k| k.as_str()).collect();
    let query = stock_movements::Entity::find()
        .select_only()
        .column(stock_movements::Column::PeerId)
        .column(stock_movements::Column::Item)
        .column(stock_movements::Column::Kind)
        .column_as(
            Expr::col((stock_movements::Entity, stock_movements::Column::Quantity)).sum(),
            "total",
        )
        .join(
            JoinType::InnerJoin,
            stock_movements::Entity::belongs_to(users::Entity)
                .from(stock_movements::Column::PeerId)
                .to(users::Column::Id)
                .into(),
        )
        .join(JoinType::InnerJoin, users::Relation::OrgUnit.def())
        .filter(peers)
        .filter(stock_movements::Column::Item.is_in(items))
        .filter(stock_movements::Column::Kind.is_in(kinds))
        .group_by(stock_movements::Column::PeerId)
        .group_by(stock_movements::Column::Item)
        .group_by(stock_movements::Column::Kind);
    let rows: Vec<(Uuid, String, String, Option<NaiveDate>, i64)> = match days {
        Window::Before(from) => query
            .filter(stock_movements::Column::OccurredOn.lt(from))
            .into_tuple::<(Uuid, String, String, i64)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(p, i, k, n)| (p, i, k, None, n))
            .collect(),
        Window::Within(from, to) => query
            .column(stock_movements::Column::OccurredOn)
            .filter(stock_movements::Column::OccurredOn.between(from, to))
            .group_by(stock_movements::Column::OccurredOn)
            .into_tuple::<(Uuid, String, String, i64, NaiveDate)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(p, i, k, n, d)| (p, i, k, Some(d), n))
            .collect(),
    };
    // Items and kinds were filtered in SQL, so every row parses.
    Ok(rows
        .into_iter()
        .filter_map(|(peer, item, kind, day, n)| {
            let item = Commodity::parse(&item)?;
            let kind = StockMovementKind::parse(&kind)?;
            Some((peer, item, day, Flow::movement(kind, n)))
        })
        .collect())
}

/// What the peers handed out in their approved visits, summed per author, item and
/// (within the period) day.
async fn distribution_sums<C: ConnectionTrait>(
    db: &C,
    peers: Condition,
    days: Window,
) -> ApiResult<Vec<(Uuid, Commodity, Option<NaiveDate>, Flow)>> {
    let items: Vec<&str> = Commodity::ALL.iter().map(|c| c.as_str()).collect();
    let query = commodity_distributions::Entity::find()
        .select_only()
        .column(submissions::Column::AuthorId)
        .column(commodity_distributions::Column::Item)
        .column_as(
            Expr::col((
                commodity_distributions::Entity,
                commodity_distributions::Column::Quantity,
            ))
            .sum(),
            "total",
        )
        .join(
            JoinType::InnerJoin,
            commodity_distributions::Entity::belongs_to(submissions::Entity)
                .from(commodity_distributions::Column::SubmissionId)
                .to(submissions::Column::Id)
                .into(),
        )
        .join(
            JoinType::InnerJoin,
            submissions::Entity::belongs_to(users::Entity)
                .from(submissions::Column::AuthorId)
                .to(users::Column::Id)
                .into(),
        )
        .join(JoinType::InnerJoin, users::Relation::OrgUnit.def())
        .filter(peers)
        .filter(submissions::Column::Status.eq(ReviewStatus::Approved.as_str()))
        .filter(commodity_distributions::Column::Item.is_in(items))
        .group_by(submissions::Column::AuthorId)
        .group_by(commodity_distributions::Column::Item);
    let rows: Vec<(Uuid, String, Option<NaiveDate>, i64)> = match days {
        Window::Before(from) => query
            .filter(submissions::Column::OccurredOn.lt(from))
            .into_tuple::<(Uuid, String, i64)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(p, i, n)| (p, i, None, n))
            .collect(),
        Window::Within(from, to) => query
            .column(submissions::Column::OccurredOn)
            .filter(submissions::Column::OccurredOn.between(from, to))
            .group_by(submissions::Column::OccurredOn)
            .into_tuple::<(Uuid, String, i64, NaiveDate)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(p, i, n, d)| (p, i, Some(d), n))
            .collect(),
    };
    Ok(rows
        .into_iter()
        .filter_map(|(peer, item, day, n)| {
            Some((peer, Commodity::parse(&item)?, day, Flow::distribution(n)))
        })
        .collect())
}

/// The stock reconciliation of the peer educators of a unit's subtree over a period.
pub async fn report<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    query: &StockReportQuery,
) -> ApiResult<StockReportOut> {
    if query.from > query.to {
        return Err(ApiError::bad_param(
            "to",
            "before_from",
            "the period ends before it begins",
        ));
    }
    let scope = actor.scope();
    let unit = scope
        .org_unit(db, query.org_unit_id.unwrap_or(actor.org_unit_id))
        .await?;
    if let Some(peer_id) = query.peer_id {
        // Inside the caller's scope and the unit's subtree, or it does not exist.
        let within = crate::db::scope::Scope::Subtree(unit.path.clone());
        let (peer, _) = scoped_user(db, &within, peer_id).await?;
        if peer.role != Role::PeerEducator.as_str() {
            return Err(ApiError::bad_param(
                "peer_id",
                "not_a_peer_educator",
                "stock is held by peer educators only",
            ));
        }
    }
    let peers_of = || peers_condition(&unit.path, query.peer_id);

    let peers: Vec<(Uuid, String, Uuid)> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .column(users::Column::Username)
        .column(users::Column::OrgUnitId)
        .join(JoinType::InnerJoin, users::Relation::OrgUnit.def())
        .filter(peers_of())
        .order_by_asc(users::Column::Username)
        .into_tuple()
        .all(db)
        .await?;

    let mut opening: HashMap<(Uuid, Commodity), i64> = HashMap::new();
    let before = Window::Before(query.from);
    for (peer, item, _, flow) in movement_sums(db, peers_of(), before)
        .await?
        .into_iter()
        .chain(distribution_sums(db, peers_of(), before).await?)
    {
        *opening.entry((peer, item)).or_default() += flow.net();
    }

    let mut days: HashMap<(Uuid, Commodity), BTreeMap<NaiveDate, Flow>> = HashMap::new();
    let within = Window::Within(query.from, query.to);
    for (peer, item, day, flow) in movement_sums(db, peers_of(), within)
        .await?
        .into_iter()
        .chain(distribution_sums(db, peers_of(), within).await?)
    {
        let day = day.unwrap_or(query.from);
        days.entry((peer, item))
            .or_default()
            .entry(day)
            .or_default()
            .add(&flow);
    }

    let peers: Vec<PeerStockOut> = peers
        .into_iter()
        .map(|(peer_id, username, org_unit_id)| PeerStockOut {
            peer_id,
            username,
            org_unit_id,
            items: Commodity::ALL
                .into_iter()
                .map(|item| {
                    line(
                        item,
                        opening.get(&(peer_id, item)).copied().unwrap_or(0),
                        days.get(&(peer_id, item)),
                    )
                })
                .collect(),
        })
        .collect();

    audit::record(
        db,
        Some(actor.user_id),
        "report.stock",
        "org_unit",
        Some(unit.id.to_string()),
        serde_json::json!({
            "from": query.from,
            "to": query.to,
            "peer_id": query.peer_id,
            "peers": peers.len(),
        }),
    )
    .await?;
    Ok(StockReportOut {
        from: query.from,
        to: query.to,
        org_unit_id: unit.id,
        totals: totals(&peers),
        peers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("date")
    }

    #[test]
    fn a_days_receipts_come_before_its_distributions() {
        let mut days = BTreeMap::new();
        days.insert(
            day(2),
            Flow {
                received: 10,
                distributed: 12,
                ..Flow::default()
            },
        );
        days.insert(day(3), Flow::movement(StockMovementKind::Issued, 20));
        let l = line(Commodity::Lubricant, 1, Some(&days));
        assert_eq!((l.received, l.distributed, l.closing), (30, 12, 19));
        assert_eq!(l.lowest_balance, -1);
        assert!(l.went_negative);

        let l = line(Commodity::Lubricant, 2, Some(&days));
        assert_eq!(l.lowest_balance, 0);
        assert!(!l.went_negative);
    }

    #[test]
    fn a_negative_opening_is_flagged_and_totals_take_the_lowest() {
        let l = line(Commodity::MaleCondom, -3, None);
        assert_eq!(
            (l.closing, l.lowest_balance, l.went_negative),
            (-3, -3, true)
        );
        let peer = |items| PeerStockOut {
            peer_id: Uuid::nil(),
            username: String::new(),
            org_unit_id: Uuid::nil(),
            items,
        };
        let t = totals(&[
            peer(vec![l]),
            peer(vec![line(Commodity::MaleCondom, 10, None)]),
        ]);
        assert_eq!(t.len(), 4);
        assert_eq!(
            (
                t[0].opening,
                t[0].closing,
                t[0].lowest_balance,
                t[0].went_negative
            ),
            (7, 7, -3, true)
        );
        assert_eq!((t[1].lowest_balance, t[1].went_negative), (0, false));
    }
}
