//! The indicators report and the submissions export. Everything counts APPROVED data
//! only, in the unit's subtree, by the day the visit or session happened. Unique people
//! are counted by client key (the keyed UIC hash), each once per unit and period; a
//! person is "new" when their first approved contact anywhere in the program falls in
//! the period. Person counts of 1 to 4 are suppressed so nobody can be singled out.
//! The report reads the cells approval keeps (see [`crate::services::rollup`]).

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate, Utc};
use roaring::RoaringTreemap;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use shared_models::{
    IndicatorQuery, IndicatorReportOut, IndicatorValueOut, TargetIn, TargetOut, UnitIndicatorsOut,
};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{org_units, targets};
use crate::error::{ApiError, ApiResult};
use crate::services::audit;
use crate::services::rollup::{self, Cell, Kind};

/// Counts of people below this are suppressed.
pub const SUPPRESS_BELOW: i64 = 5;

/// Referral services, as the outreach form names them.
pub const SERVICES: [&str; 4] = ["hiv_test", "sti_exam", "prep", "other"];
/// Group-session audiences.
pub const AUDIENCES: [&str; 3] = ["establishment_owners", "workers", "community"];
/// Support-visit actions.
pub const SUPPORT_ACTIONS: [&str; 6] = [
    "counselling",
    "job_referral",
    "vocational_training",
    "loan",
    "health_insurance",
    "rehab_persuasion",
];

/// Every indicator key, in report order, and whether it counts people (suppressible).
pub fn indicator_keys() -> Vec<(String, bool)> {
    let mut keys: Vec<(String, bool)> = vec![
        ("people_reached".into(), true),
        ("people_new".into(), true),
        ("people_returning".into(), true),
        ("contact_events".into(), false),
        ("condoms_male".into(), false),
        ("condoms_female".into(), false),
        ("lubricant".into(), false),
        ("self_test_kits".into(), false),
    ];
    for s in SERVICES {
        keys.push((format!("referrals_issued.{s}"), true));
        keys.push((format!("referrals_completed.{s}"), true));
    }
    keys.push(("group_sessions".into(), false));
    for a in AUDIENCES {
        keys.push((format!("group_participants.{a}"), false));
    }
    for a in SUPPORT_ACTIONS {
        keys.push((format!("support.{a}"), true));
    }
    keys.push(("support.loan_amount_vnd".into(), true));
    keys
}

fn bad_period(message: &str) -> ApiError {
    ApiError::bad_param("period", "bad_period", message)
}

/// A named period as days, inclusive: `2024` (year), `2024Q3` (calendar quarter),
/// `FY2025` (October 2024 – September 2025), `VN2024Q3` (the national quarter: the
/// 15th of the month before the quarter to the 14th of its last month).
pub fn parse_period(raw: &str) -> Option<(NaiveDate, NaiveDate)> {
    let p = raw.trim().to_ascii_uppercase();
    let year = |s: &str| -> Option<i32> {
        (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
            .filter(|y| (2000..=2100).contains(y))
    };
    let quarter = |s: &str| -> Option<(i32, u32)> {
        let (y, q) = s.split_once('Q')?;
        let q: u32 = q.parse().ok().filter(|q| (1..=4).contains(q))?;
        Some((year(y)?, q))
    };
    let last_day = |y: i32, m: u32| -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, 1)?
            .checked_add_months(Months::new(1))?
            .pred_opt()
    };
    if let Some(rest) = p.strip_prefix("FY") {
        let y = year(rest)?;
        return Some((
            NaiveDate::from_ymd_opt(y - 1, 10, 1)?,
            NaiveDate::from_ymd_opt(y, 9, 30)?,
        ));
    }
    if let Some(rest) = p.strip_prefix("VN") {
        let (y, q) = quarter(rest)?;
        let first_month = NaiveDate::from_ymd_opt(y, 3 * q - 2, 15)?;
        let from = first_month.checked_sub_months(Months::new(1))?;
        let to = NaiveDate::from_ymd_opt(y, 3 * q, 14)?;
        return Some((from, to));
    }
    if p.contains('Q') {
        let (y, q) = quarter(&p)?;
        return Some((
            NaiveDate::from_ymd_opt(y, 3 * q - 2, 1)?,
            last_day(y, 3 * q)?,
        ));
    }
    let y = year(&p)?;
    Some((
        NaiveDate::from_ymd_opt(y, 1, 1)?,
        NaiveDate::from_ymd_opt(y, 12, 31)?,
    ))
}

/// The period a report query names.
fn resolve_period(q: &IndicatorQuery) -> ApiResult<(NaiveDate, NaiveDate, Option<String>)> {
    match (&q.period, q.from, q.to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::bad_param(
            "period",
            "ambiguous",
            "give either `period` or `from` and `to`, not both",
        )),
        (Some(p), None, None) => {
            let (from, to) = parse_period(p)
                .ok_or_else(|| bad_period("expected 2024, 2024Q3, FY2025 or VN2024Q3"))?;
            Ok((from, to, Some(p.trim().to_ascii_uppercase())))
        }
        (None, Some(from), Some(to)) if from <= to => Ok((from, to, None)),
        (None, Some(_), Some(_)) => Err(ApiError::bad_param(
            "to",
            "before_from",
            "`to` is before `from`",
        )),
        (None, None, _) => Err(ApiError::bad_param(
            "from",
            "required",
            "give `period`, or `from` and `to`",
        )),
        (None, Some(_), None) => Err(ApiError::bad_param(
            "to",
            "required",
            "give `to` with `from`",
        )),
    }
}

/// Raw figures of one unit: the cell's additive figures, and its people counted from
/// the clients reached (`first`: the clients first met in the program in the period).
fn raw_figures(cell: &Cell, first: &RoaringTreemap) -> BTreeMap<String, i64> {
    let mut raw = cell.figures.clone();
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let people = count(cell.clients.len());
    let new = count(cell.clients.intersection_len(first));
    raw.insert("people_reached".into(), people);
    raw.insert("people_new".into(), new);
    raw.insert("people_returning".into(), people - new);
    raw
}

/// The unit's figures over the period, and those of each child path (a path of
/// `child_len` characters), from the report cells.
async fn figures<C: ConnectionTrait>(
    db: &C,
    prefix: &str,
    from: NaiveDate,
    to: NaiveDate,
    child_len: Option<usize>,
) -> ApiResult<(
    BTreeMap<String, i64>,
    BTreeMap<String, BTreeMap<String, i64>>,
)> {
    let mut whole = Cell::default();
    let mut children: BTreeMap<String, Cell> = BTreeMap::new();
    for (path, cell) in rollup::read(db, Kind::Reach, prefix, from, to).await? {
        if let Some(child) = child_len.and_then(|n| path.get(..n)) {
            children.entry(child.to_string()).or_default().absorb(&cell);
        }
        whole.absorb(&cell);
    }
    // Read after the reach cells: an approval committing in between has its first day
    // here too, so someone it reached for the first time cannot read as returning.
    let mut first = RoaringTreemap::new();
    for (_, cell) in rollup::read(db, Kind::First, "", from, to).await? {
        first |= cell.clients;
    }
    let children = children
        .into_iter()
        .map(|(path, cell)| (path, raw_figures(&cell, &first)))
        .collect();
    Ok((raw_figures(&whole, &first), children))
}

/// The indicator cells of one unit, suppressed and beside their targets.
fn cells(
    raw: Option<&BTreeMap<String, i64>>,
    targets: &BTreeMap<String, i64>,
) -> Vec<IndicatorValueOut> {
    let keys = indicator_keys();
    let loans = raw
        .and_then(|r| r.get("support.loan"))
        .copied()
        .unwrap_or(0);
    keys.into_iter()
        .map(|(key, counts_people)| {
            let value = raw.and_then(|r| r.get(&key)).copied().unwrap_or(0);
            let small = |n: i64| (1..SUPPRESS_BELOW).contains(&n);
            // The loan total of fewer than five people would point at them as well.
            let suppressed = (counts_people && small(value))
                || (key == "support.loan_amount_vnd" && small(loans));
            IndicatorValueOut {
                target: targets.get(&key).copied(),
                value: (!suppressed).then_some(value),
                suppressed,
                indicator: key,
            }
        })
        .collect()
}

/// Targets set for these units over exactly this period.
async fn targets_of<C: ConnectionTrait>(
    db: &C,
    units: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<BTreeMap<Uuid, BTreeMap<String, i64>>> {
    let rows = targets::Entity::find()
        .filter(targets::Column::OrgUnitId.is_in(units.iter().copied()))
        .filter(targets::Column::PeriodFrom.eq(from))
        .filter(targets::Column::PeriodTo.eq(to))
        .all(db)
        .await?;
    let mut out: BTreeMap<Uuid, BTreeMap<String, i64>> = BTreeMap::new();
    for t in rows {
        out.entry(t.org_unit_id)
            .or_default()
            .insert(t.indicator, t.value);
    }
    Ok(out)
}

/// The indicators of a unit (default: the caller's) and of each child unit that
/// existed during the period; reading it is audited.
pub async fn indicators<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    q: &IndicatorQuery,
) -> ApiResult<IndicatorReportOut> {
    let (from, to, period) = resolve_period(q)?;
    let scope = actor.scope();
    let unit = scope
        .org_unit(db, q.org_unit.unwrap_or(actor.org_unit_id))
        .await?;
    let children = org_units::Entity::find()
        .filter(org_units::Column::ParentId.eq(unit.id))
        .filter(
            Condition::any()
                .add(org_units::Column::ValidFrom.is_null())
                .add(org_units::Column::ValidFrom.lte(to)),
        )
        .filter(
            Condition::any()
                .add(org_units::Column::ValidTo.is_null())
                .add(org_units::Column::ValidTo.gte(from)),
        )
        .all(db)
        .await?;
    let child_len = (!children.is_empty()).then_some(unit.path.len() + 37);
    let (whole, by_child) = figures(db, &unit.path, from, to, child_len).await?;
    let mut ids: Vec<Uuid> = children.iter().map(|c| c.id).collect();
    ids.push(unit.id);
    let targets = targets_of(db, &ids, from, to).await?;
    let none = BTreeMap::new();
    let mut children_out: Vec<UnitIndicatorsOut> = children
        .iter()
        .map(|c| UnitIndicatorsOut {
            org_unit_id: c.id,
            code: c.code.clone(),
            name: c.name.clone(),
            indicators: cells(by_child.get(&c.path), targets.get(&c.id).unwrap_or(&none)),
        })
        .collect();
    children_out.sort_by(|a, b| a.code.cmp(&b.code));
    audit::record(
        db,
        Some(actor.user_id),
        if q.format.as_deref() == Some("csv") {
            "report.export"
        } else {
            "report.read"
        },
        "org_unit",
        Some(unit.id.to_string()),
        serde_json::json!({ "from": from, "to": to, "report": "indicators" }),
    )
    .await?;
    Ok(IndicatorReportOut {
        from,
        to,
        period,
        generated_at: Utc::now(),
        unit: UnitIndicatorsOut {
            org_unit_id: unit.id,
            code: unit.code.clone(),
            name: unit.name.clone(),
            indicators: cells(Some(&whole), targets.get(&unit.id).unwrap_or(&none)),
        },
        children: children_out,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The report as CSV lines (header first): one row per unit and indicator.
pub fn indicators_csv(report: &IndicatorReportOut) -> Vec<String> {
    let mut lines =
        vec!["org_unit_code,org_unit_name,indicator,value,suppressed,target,from,to\n".to_string()];
    for unit in std::iter::once(&report.unit).chain(report.children.iter()) {
        for cell in &unit.indicators {
            lines.push(format!(
                "{},{},{},{},{},{},{},{}\n",
                csv_field(&unit.code),
                csv_field(&unit.name),
                cell.indicator,
                cell.value.map(|v| v.to_string()).unwrap_or_default(),
                cell.suppressed,
                cell.target.map(|v| v.to_string()).unwrap_or_default(),
                report.from,
                report.to,
            ));
        }
    }
    lines
}

/// Sets (or replaces) a target for a unit, indicator and period (admin).
pub async fn put_target<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    input: &TargetIn,
) -> ApiResult<TargetOut> {
    if !indicator_keys().iter().any(|(k, _)| *k == input.indicator) {
        return Err(ApiError::invalid(
            "indicator",
            "unknown_indicator",
            "not an indicator of the report",
        ));
    }
    let (from, to) = parse_period(&input.period).ok_or_else(|| {
        ApiError::invalid(
            "period",
            "bad_period",
            "expected 2024, 2024Q3, FY2025 or VN2024Q3",
        )
    })?;
    let unit = actor.scope().org_unit(db, input.org_unit_id).await?;
    let period = input.period.trim().to_ascii_uppercase();
    let existing = targets::Entity::find()
        .filter(targets::Column::OrgUnitId.eq(unit.id))
        .filter(targets::Column::Indicator.eq(input.indicator.as_str()))
        .filter(targets::Column::PeriodFrom.eq(from))
        .filter(targets::Column::PeriodTo.eq(to))
        .one(db)
        .await?;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    match existing {
        Some(t) => {
            let mut am: targets::ActiveModel = t.into();
            am.value = Set(input.value);
            am.period = Set(period.clone());
            am.updated_by = Set(actor.user_id);
            am.updated_at = Set(Utc::now());
            am.update(db).await?;
        }
        None => {
            targets::ActiveModel {
                id: Set(Uuid::now_v7()),
                org_unit_id: Set(unit.id),
                indicator: Set(input.indicator.clone()),
                period: Set(period.clone()),
                period_from: Set(from),
                period_to: Set(to),
                value: Set(input.value),
                updated_by: Set(actor.user_id),
                updated_at: Set(Utc::now()),
            }
            .insert(db)
            .await
            .map_err(|e| ApiError::from_db_unique(e, "period", "set at the same moment; retry"))?;
        }
    }
    audit::record(
        db,
        Some(actor.user_id),
        "target.set",
        "org_unit",
        Some(unit.id.to_string()),
        serde_json::json!({ "indicator": input.indicator, "period": period, "value": input.value }),
    )
    .await?;
    Ok(TargetOut {
        org_unit_id: unit.id,
        indicator: input.indicator.clone(),
        period,
        from,
        to,
        value: input.value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn periods_resolve_to_their_days() {
        assert_eq!(parse_period("2024"), Some((d(2024, 1, 1), d(2024, 12, 31))));
        assert_eq!(
            parse_period("2024Q1"),
            Some((d(2024, 1, 1), d(2024, 3, 31)))
        );
        assert_eq!(
            parse_period("2024q3"),
            Some((d(2024, 7, 1), d(2024, 9, 30)))
        );
        assert_eq!(
            parse_period("2024Q4"),
            Some((d(2024, 10, 1), d(2024, 12, 31)))
        );
        assert_eq!(
            parse_period("FY2025"),
            Some((d(2024, 10, 1), d(2025, 9, 30)))
        );
        assert_eq!(
            parse_period("VN2024Q3"),
            Some((d(2024, 6, 15), d(2024, 9, 14)))
        );
        assert_eq!(
            parse_period("VN2025Q1"),
            Some((d(2024, 12, 15), d(2025, 3, 14)))
        );
        for bad in [
            "", "2024Q5", "2024Q0", "FY25", "VN2024", "24Q1", "Q1", "2024-Q1", "1999",
        ] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
    }

    #[test]
    fn small_people_counts_are_suppressed() {
        let mut raw = BTreeMap::new();
        raw.insert("people_reached".to_string(), 4);
        raw.insert("people_new".to_string(), 0);
        raw.insert("contact_events".to_string(), 3);
        raw.insert("support.loan".to_string(), 2);
        raw.insert("support.loan_amount_vnd".to_string(), 9_000_000);
        let out = cells(Some(&raw), &BTreeMap::new());
        let cell = |k: &str| out.iter().find(|c| c.indicator == k).expect("cell").clone();
        assert_eq!(
            (
                cell("people_reached").value,
                cell("people_reached").suppressed
            ),
            (None, true)
        );
        assert_eq!(cell("people_new").value, Some(0));
        assert_eq!(cell("contact_events").value, Some(3));
        assert!(cell("support.loan").suppressed);
        assert!(cell("support.loan_amount_vnd").suppressed);
    }
}

/// Filters for the submissions export.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Only submissions made in this unit's subtree (default: the caller's scope).
    pub org_unit_id: Option<Uuid>,
    /// `submitted`, `approved`, `rejected`, `changes_requested` (default: all).
    #[param(value_type = Option<shared_models::ReviewStatus>)]
    pub status: Option<shared_models::ReviewStatus>,
    pub form_id: Option<String>,
    /// First day of the visit (inclusive).
    pub from: Option<NaiveDate>,
    /// Last day of the visit (inclusive).
    pub to: Option<NaiveDate>,
}

/// Rows fetched per query while streaming an export.
const EXPORT_BATCH: u64 = 1000;

/// The header of the submissions export.
pub const EXPORT_HEADER: &str = "id,form_id,form_version,kind,status,revision,author_id,org_unit_id,hotspot_id,occurred_on,received_at,answers\n";

/// Checks an export's filters and scope and audits it; answers the condition to stream.
pub async fn export_condition<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    q: &ExportQuery,
) -> ApiResult<Condition> {
    use crate::db::entities::submissions;
    let narrowing = crate::services::submissions::Narrowing {
        form_id: q.form_id.as_deref(),
        author_id: None,
        org_unit_id: q.org_unit_id,
        from: q.from,
        to: q.to,
    };
    let mut cond = crate::services::submissions::narrowed(db, actor, &narrowing).await?;
    if let Some(status) = q.status {
        cond = cond.add(submissions::Column::Status.eq(status.as_str()));
    }
    audit::record(
        db,
        Some(actor.user_id),
        "submissions.export",
        "org_unit",
        q.org_unit_id.map(|u| u.to_string()),
        serde_json::json!({ "status": q.status.map(|s| s.as_str()), "form_id": q.form_id, "from": q.from, "to": q.to }),
    )
    .await?;
    Ok(cond)
}

fn export_line(m: &crate::db::entities::submissions::Model) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{}\n",
        m.id,
        csv_field(&m.form_id),
        m.form_version,
        m.kind,
        m.status,
        m.revision,
        m.author_id,
        m.org_unit_id,
        m.hotspot_id.map(|h| h.to_string()).unwrap_or_default(),
        m.occurred_on,
        m.received_at.to_rfc3339(),
        csv_field(&m.answers.to_string()),
    )
}

/// The export as a stream of CSV chunks, fetched in batches by id (constant memory).
pub fn export_stream(
    db: sea_orm::DatabaseConnection,
    cond: Condition,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> + Send {
    use crate::db::entities::submissions;
    use sea_orm::{QueryOrder, QuerySelect};
    let header = futures::stream::once(async { Ok(EXPORT_HEADER.to_string()) });
    let body = futures::stream::try_unfold(Some(None::<Uuid>), move |after| {
        let db = db.clone();
        let cond = cond.clone();
        async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let mut query = submissions::Entity::find().filter(cond);
            if let Some(after) = after {
                query = query.filter(submissions::Column::Id.gt(after));
            }
            let rows = query
                .order_by_asc(submissions::Column::Id)
                .limit(EXPORT_BATCH)
                .all(&db)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "export batch failed");
                    std::io::Error::other("the export was interrupted")
                })?;
            if rows.is_empty() {
                return Ok(None);
            }
            let next = if rows.len() as u64 == EXPORT_BATCH {
                rows.last().map(|m| Some(m.id))
            } else {
                None
            };
            let chunk: String = rows.iter().map(export_line).collect();
            Ok(Some((chunk, next)))
        }
    });
    futures::StreamExt::chain(header, body)
}
