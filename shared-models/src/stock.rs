//! Commodity stock: movements recorded by supervisors and the reconciliation report.
//! Each peer educator holds a stock of condoms, female condoms, lubricant and self-test
//! kits; supervisors record what they issue, what comes back and what is lost, approved
//! outreach visits record what was handed out, and the report reconciles the four.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

/// A commodity handed out in outreach.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Commodity {
    MaleCondom,
    FemaleCondom,
    Lubricant,
    SelfTestKit,
}

impl Commodity {
    /// Every commodity, in the order of the visit form's columns.
    pub const ALL: [Commodity; 4] = [
        Commodity::MaleCondom,
        Commodity::FemaleCondom,
        Commodity::Lubricant,
        Commodity::SelfTestKit,
    ];

    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Commodity::MaleCondom => "male_condom",
            Commodity::FemaleCondom => "female_condom",
            Commodity::Lubricant => "lubricant",
            Commodity::SelfTestKit => "self_test_kit",
        }
    }

    /// Parses the stable name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Commodity> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How stock moves between a supervisor and a peer educator (distribution to clients
/// is not a movement: it comes from approved outreach visits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StockMovementKind {
    /// Handed to the peer educator: their stock grows.
    Issued,
    /// Handed back by the peer educator: their stock shrinks.
    Returned,
    /// Lost, stolen or spoiled while the peer educator held it.
    Lost,
}

impl StockMovementKind {
    /// Every kind.
    pub const ALL: [StockMovementKind; 3] = [
        StockMovementKind::Issued,
        StockMovementKind::Returned,
        StockMovementKind::Lost,
    ];

    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            StockMovementKind::Issued => "issued",
            StockMovementKind::Returned => "returned",
            StockMovementKind::Lost => "lost",
        }
    }

    /// Parses the stable name; `None` for anything else.
    pub fn parse(s: &str) -> Option<StockMovementKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// `POST /api/v1/stock/movements`: a supervisor records stock moving to or from a peer educator.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockMovementIn {
    /// The peer educator whose stock moves.
    pub peer_id: Uuid,
    pub item: Commodity,
    pub kind: StockMovementKind,
    /// Pieces (condoms, sachets, kits), not boxes.
    #[validate(range(min = 1, max = 100_000))]
    pub quantity: u32,
    /// The day it happened; at most one day ahead of today (UTC), for Hanoi's evening.
    pub occurred_on: NaiveDate,
    /// A blank note is dropped.
    #[validate(length(max = 200))]
    pub note: Option<String>,
}

/// A recorded stock movement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StockMovementOut {
    pub id: Uuid,
    pub peer_id: Uuid,
    pub item: Commodity,
    pub kind: StockMovementKind,
    pub quantity: u32,
    pub occurred_on: NaiveDate,
    pub note: Option<String>,
    /// The supervisor or admin who recorded it.
    pub recorded_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Parameters of `GET /api/v1/reports/stock`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StockReportQuery {
    /// The peer educators of this unit's subtree; defaults to the caller's own unit.
    pub org_unit_id: Option<Uuid>,
    /// Only this peer educator (who must lie in the unit's subtree).
    pub peer_id: Option<Uuid>,
    /// First day of the period (inclusive).
    pub from: NaiveDate,
    /// Last day of the period (inclusive); not before `from`.
    pub to: NaiveDate,
}

/// The reconciliation of one commodity over the period:
/// `closing = opening + received − distributed − returned − lost`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StockLineOut {
    pub item: Commodity,
    /// The balance before `from`: everything received, less everything distributed, returned and lost.
    pub opening: i64,
    /// Issued to the peer educator in the period.
    pub received: i64,
    /// Handed out in approved outreach visits of the period.
    pub distributed: i64,
    /// Handed back in the period.
    pub returned: i64,
    /// Lost in the period.
    pub lost: i64,
    /// The balance at the end of `to`.
    pub closing: i64,
    /// The lowest balance reached: the opening, then each day's end (a day's receipts
    /// count before its distributions, returns and losses). In totals: the lowest of any peer's.
    pub lowest_balance: i64,
    /// The balance fell below zero: more went out than had come in. Flagged, never
    /// refused, since phones record visits offline. In totals: any peer's did.
    pub went_negative: bool,
}

/// One peer educator's stock, one line per commodity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerStockOut {
    pub peer_id: Uuid,
    pub username: String,
    /// The peer educator's current org unit.
    pub org_unit_id: Uuid,
    pub items: Vec<StockLineOut>,
}

/// The stock reconciliation of the peer educators of a subtree over a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StockReportOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The unit whose subtree was reported.
    pub org_unit_id: Uuid,
    /// Every peer educator of the subtree (or the one asked for), by username.
    pub peers: Vec<PeerStockOut>,
    /// Per commodity, the sums over the listed peers.
    pub totals: Vec<StockLineOut>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Commodity::ALL {
            assert_eq!(Commodity::parse(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_value(c).expect("serialize"),
                serde_json::json!(c.as_str())
            );
        }
        for k in StockMovementKind::ALL {
            assert_eq!(StockMovementKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).expect("serialize"),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(Commodity::parse("condom"), None);
        assert_eq!(StockMovementKind::parse("distributed"), None);
    }
}
