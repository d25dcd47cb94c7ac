//! Referrals and their lifecycle: `issued` at an outreach visit, `completed` when a
//! handoff confirming the client came is approved, `expired` when the program's window
//! passes first. Expiry runs on every server now and then; it is a conditional update
//! on `issued`, so running it twice, or on several servers at once, changes nothing more.

use chrono::{Duration, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use shared_models::{Page, ReferralFilter, ReferralOut, ReferralStatus, Role};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::referrals;
use crate::db::scope::Scope;
use crate::error::{ApiError, ApiResult};
use crate::paging::PageRequest;
use crate::services::sync;

/// The condition selecting the referrals a caller may see: field workers those they
/// issued, supervisors those issued in their subtree, admins all.
fn visible_to(actor: &Principal) -> sea_orm::Condition {
    match actor.role {
        Role::PeerEducator | Role::Volunteer => {
            sea_orm::Condition::all().add(referrals::Column::IssuedBy.eq(actor.user_id))
        }
        Role::Supervisor | Role::Admin => match actor.scope() {
            Scope::All => sea_orm::Condition::all(),
            Scope::Subtree(prefix) => sea_orm::Condition::all()
                .add(referrals::Column::OrgPath.starts_with(prefix.as_str())),
        },
    }
}

/// The referrals a filter selects among those the caller may see (the status aside);
/// a unit outside the caller's scope is a 404.
async fn narrowed<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    filter: &ReferralFilter,
) -> ApiResult<sea_orm::Condition> {
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to {
            return Err(ApiError::bad_param(
                "to",
                "before_from",
                "`to` is before `from`",
            ));
        }
    }
    let mut cond = visible_to(actor);
    if let Some(service) = &filter.service {
        cond = cond.add(referrals::Column::Service.eq(service.as_str()));
    }
    if let Some(unit_id) = filter.org_unit_id {
        let unit = actor.scope().org_unit(db, unit_id).await?;
        cond = cond.add(referrals::Column::OrgPath.starts_with(unit.path.as_str()));
    }
    if let Some(from) = filter.from {
        cond = cond.add(referrals::Column::IssuedOn.gte(from));
    }
    if let Some(to) = filter.to {
        cond = cond.add(referrals::Column::IssuedOn.lte(to));
    }
    Ok(cond)
}

/// Referrals the caller may see, oldest issued first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    filter: &ReferralFilter,
) -> ApiResult<Page<ReferralOut>> {
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    let mut query = referrals::Entity::find().filter(narrowed(db, actor, filter).await?);
    if let Some(status) = filter.status {
        query = query.filter(referrals::Column::Status.eq(status.as_str()));
    }
    if let Some(after) = page.after {
        query = query.filter(referrals::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(referrals::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    let page = page.finish(rows, |r| r.id, ReferralOut::try_from);
    Ok(Page {
        items: page.items.into_iter().collect::<ApiResult<Vec<_>>>()?,
        next_cursor: page.next_cursor,
    })
}

/// How many referrals a filter selects, by service and status (the filter's own status
/// aside): what the completion rate (completed ÷ issued) is computed from.
pub async fn counts<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    filter: &ReferralFilter,
) -> ApiResult<Vec<(String, ReferralStatus, i64)>> {
    let rows: Vec<(String, String, i64)> = referrals::Entity::find()
        .select_only()
        .column(referrals::Column::Service)
        .column(referrals::Column::Status)
        .column_as(referrals::Column::Id.count(), "n")
        .filter(narrowed(db, actor, filter).await?)
        .group_by(referrals::Column::Service)
        .group_by(referrals::Column::Status)
        .order_by_asc(referrals::Column::Service)
        .into_tuple()
        .all(db)
        .await?;
    rows.into_iter()
        .map(|(service, status, n)| {
            let status = ReferralStatus::parse(&status).ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("unknown referral status {status:?}"))
            })?;
            Ok((service, status, n))
        })
        .collect()
}

/// One referral by its printed code, if the caller may see it.
pub async fn get<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    code: &str,
) -> ApiResult<ReferralOut> {
    let code = code.trim().to_ascii_uppercase();
    referrals::Entity::find()
        .filter(referrals::Column::Code.eq(code.as_str()))
        .filter(visible_to(actor))
        .one(db)
        .await?
        .map(ReferralOut::try_from)
        .transpose()?
        .ok_or(ApiError::NotFound("referral"))
}

/// Marks `issued` referrals older than `window_days` (issued before `today − window`)
/// `expired`. Answers how many this call expired.
pub async fn expire<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    window_days: u32,
    today: NaiveDate,
) -> ApiResult<u64> {
    let cutoff = today - Duration::days(i64::from(window_days));
    let due: Vec<Uuid> = referrals::Entity::find()
        .select_only()
        .column(referrals::Column::Id)
        .filter(referrals::Column::Status.eq(ReferralStatus::Issued.as_str()))
        .filter(referrals::Column::IssuedOn.lt(cutoff))
        .into_tuple()
        .all(db)
        .await?;
    let mut expired = 0;
    for batch in due.chunks(500) {
        let txn = db.begin().await?;
        let mut done = Vec::new();
        for id in batch {
            let n = referrals::Entity::update_many()
                .col_expr(
                    referrals::Column::Status,
                    Expr::value(ReferralStatus::Expired.as_str()),
                )
                .col_expr(referrals::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(referrals::Column::Id.eq(*id))
                .filter(referrals::Column::Status.eq(ReferralStatus::Issued.as_str()))
                .exec(&txn)
                .await?
                .rows_affected;
            if n == 1 {
                done.push(*id);
            }
        }
        if !done.is_empty() {
            sync::stamp(&txn, &[], &done, &[]).await?;
        }
        expired += done.len() as u64;
        txn.commit().await?;
    }
    if expired > 0 {
        tracing::info!(referrals.expired = expired, "referrals expired");
    }
    Ok(expired)
}
