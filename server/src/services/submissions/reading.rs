//! Reading submissions in the caller's scope: details, filtered lists and the review
//! queue, paged by cursor.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select,
};
use shared_models::{
    Page, PhotoStatusOut, ReferralOut, ReviewStatus, Role, SubmissionEventOut, SubmissionFilter,
    SubmissionOut, SubmissionSummaryOut,
};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{referrals, submission_events, submissions};
use crate::db::scope::Scope;
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::services::audit;
use crate::state::AppState;

/// Which photos the answers name, and whether each has arrived.
async fn photo_status<C: ConnectionTrait>(
    db: &C,
    m: &submissions::Model,
) -> ApiResult<Vec<PhotoStatusOut>> {
    let digests: Vec<String> = serde_json::from_value(m.photo_digests.clone())
        .map_err(|e| ApiError::Internal(e.into()))?;
    let stored = crate::services::photos::stored_digests(db, m.id).await?;
    Ok(digests
        .into_iter()
        .map(|sha256| PhotoStatusOut {
            present: stored.contains(&sha256),
            sha256,
        })
        .collect())
}

/// A submission in full, as its author or a reviewer sees it.
pub async fn detail<C: ConnectionTrait>(db: &C, m: submissions::Model) -> ApiResult<SubmissionOut> {
    let referrals = referrals::Entity::find()
        .filter(referrals::Column::SubmissionId.eq(m.id))
        .order_by_asc(referrals::Column::ContactPosition)
        .order_by_asc(referrals::Column::Service)
        .all(db)
        .await?
        .into_iter()
        .map(ReferralOut::try_from)
        .collect::<ApiResult<Vec<_>>>()?;
    let events = submission_events::Entity::find()
        .filter(submission_events::Column::SubmissionId.eq(m.id))
        .order_by_asc(submission_events::Column::At)
        .order_by_asc(submission_events::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(SubmissionEventOut::try_from)
        .collect::<ApiResult<Vec<_>>>()?;
    let photos = photo_status(db, &m).await?;
    Ok(SubmissionOut {
        summary: SubmissionSummaryOut::try_from(&m)?,
        answers: m.answers,
        referrals,
        photos,
        events,
    })
}

/// The condition selecting the submissions a caller may see: field workers their own,
/// supervisors their subtree, admins all.
pub fn visible_to(actor: &Principal) -> Condition {
    match actor.role {
        Role::PeerEducator | Role::Volunteer => {
            Condition::all().add(submissions::Column::AuthorId.eq(actor.user_id))
        }
        Role::Supervisor | Role::Admin => match actor.scope() {
            Scope::All => Condition::all(),
            Scope::Subtree(prefix) => {
                Condition::all().add(submissions::Column::OrgPath.starts_with(prefix.as_str()))
            }
        },
    }
}

/// A submission the caller may see; 404 otherwise (existence is not leaked).
pub async fn scoped<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    id: Uuid,
) -> ApiResult<submissions::Model> {
    submissions::Entity::find_by_id(id)
        .filter(visible_to(actor))
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("submission"))
}

/// Reads one submission in full; the read is audited.
pub async fn get<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    id: Uuid,
) -> ApiResult<SubmissionOut> {
    let m = scoped(db, actor, id).await?;
    audit::record(
        db,
        Some(actor.user_id),
        "submission.read",
        "submission",
        Some(id.to_string()),
        serde_json::json!({ "form_id": m.form_id, "status": m.status }),
    )
    .await?;
    detail(db, m).await
}

const LIST_CURSOR_PREFIX: &str = "s1:";

const QUEUE_CURSOR_PREFIX: &str = "q1:";

fn encode_cursor_with(prefix: &str, m: &submissions::Model) -> String {
    paging::seal(
        prefix,
        format_args!("{}:{}", m.received_at.timestamp_micros(), m.id),
    )
}

fn decode_cursor_with(prefix: &str, cursor: &str) -> ApiResult<(DateTime<Utc>, Uuid)> {
    let bad = || ApiError::bad_param("cursor", "invalid", "not a cursor this server issued");
    let text = paging::open(cursor).ok_or_else(bad)?;
    let rest = text.strip_prefix(prefix).ok_or_else(bad)?;
    let (micros, id) = rest.split_once(':').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// The filters a list, the queue and an export share.
#[derive(Debug, Clone, Copy, Default)]
pub struct Narrowing<'a> {
    pub form_id: Option<&'a str>,
    pub author_id: Option<Uuid>,
    pub org_unit_id: Option<Uuid>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// The condition selecting the submissions the caller may see, narrowed; a unit
/// outside the caller's scope is a 404 and `to` before `from` a 400.
pub async fn narrowed<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    n: &Narrowing<'_>,
) -> ApiResult<Condition> {
    if let (Some(from), Some(to)) = (n.from, n.to) {
        if from > to {
            return Err(ApiError::bad_param(
                "to",
                "before_from",
                "`to` is before `from`",
            ));
        }
    }
    let mut cond = visible_to(actor);
    if let Some(form_id) = n.form_id {
        cond = cond.add(submissions::Column::FormId.eq(form_id));
    }
    if let Some(author) = n.author_id {
        cond = cond.add(submissions::Column::AuthorId.eq(author));
    }
    if let Some(unit_id) = n.org_unit_id {
        let unit = actor.scope().org_unit(db, unit_id).await?;
        cond = cond.add(submissions::Column::OrgPath.starts_with(unit.path.as_str()));
    }
    if let Some(from) = n.from {
        cond = cond.add(submissions::Column::OccurredOn.gte(from));
    }
    if let Some(to) = n.to {
        cond = cond.add(submissions::Column::OccurredOn.lte(to));
    }
    Ok(cond)
}

/// Submissions the caller may see, newest received first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    filter: &SubmissionFilter,
) -> ApiResult<Page<SubmissionSummaryOut>> {
    let narrowing = Narrowing {
        form_id: filter.form_id.as_deref(),
        author_id: filter.author_id,
        org_unit_id: filter.org_unit_id,
        from: filter.from,
        to: filter.to,
    };
    let mut query = submissions::Entity::find().filter(narrowed(db, actor, &narrowing).await?);
    if let Some(status) = filter.status {
        query = query.filter(submissions::Column::Status.eq(status.as_str()));
    }
    let cursor = filter.cursor.as_deref();
    by_received(
        db,
        query,
        Order::Desc,
        LIST_CURSOR_PREFIX,
        cursor,
        filter.limit,
    )
    .await
}

/// Submissions in one state the caller may see, oldest received first (the review queue).
pub async fn list_in_order(
    state: &AppState,
    actor: &Principal,
    status: ReviewStatus,
    narrowing: &Narrowing<'_>,
    cursor: Option<&str>,
    limit: Option<u64>,
) -> ApiResult<Page<SubmissionSummaryOut>> {
    let query = submissions::Entity::find()
        .filter(narrowed(&state.db, actor, narrowing).await?)
        .filter(submissions::Column::Status.eq(status.as_str()));
    by_received(
        &state.db,
        query,
        Order::Asc,
        QUEUE_CURSOR_PREFIX,
        cursor,
        limit,
    )
    .await
}

/// One page of `query` by time received (then id), in `order`, after the row `cursor`
/// (written with `prefix`) names.
async fn by_received<C: ConnectionTrait>(
    db: &C,
    mut query: Select<submissions::Entity>,
    order: Order,
    prefix: &str,
    cursor: Option<&str>,
    limit: Option<u64>,
) -> ApiResult<Page<SubmissionSummaryOut>> {
    let limit = paging::page_limit(limit)?;
    if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
        let (at, id) = decode_cursor_with(prefix, cursor)?;
        let (at_past, id_past) = match order {
            Order::Desc => (
                submissions::Column::ReceivedAt.lt(at),
                submissions::Column::Id.lt(id),
            ),
            _ => (
                submissions::Column::ReceivedAt.gt(at),
                submissions::Column::Id.gt(id),
            ),
        };
        query = query.filter(
            Condition::any().add(at_past).add(
                Condition::all()
                    .add(submissions::Column::ReceivedAt.eq(at))
                    .add(id_past),
            ),
        );
    }
    let rows = query
        .order_by(submissions::Column::ReceivedAt, order.clone())
        .order_by(submissions::Column::Id, order)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = paging::split(
        rows,
        limit,
        |m| encode_cursor_with(prefix, m),
        |m| SubmissionSummaryOut::try_from(&m),
    );
    Ok(Page {
        items: page.items.into_iter().collect::<ApiResult<Vec<_>>>()?,
        next_cursor: page.next_cursor,
    })
}
