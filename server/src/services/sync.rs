//! What changed for a phone since it last synced. Every change a phone syncs carries a
//! `change_seq` taken from the one-row `sync_counter` inside the writing transaction:
//! the row lock makes sequence order commit order, so a cursor (the highest sequence
//! seen) never skips a change that committed late. The cursor also carries the
//! database's epoch (`sync_counter.epoch`, new after `donghanh restore`), so a cursor
//! from before a restore is refused rather than read against wound-back numbers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use shared_models::{SyncOut, SyncQuery, SyncSubmissionOut};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{forms, referrals, submission_events, submissions, sync_counter};
use crate::error::{ApiError, ApiResult};
use crate::services::{forms as form_service, submissions as submission_service};

const DEFAULT_SYNC_LIMIT: u64 = 100;
const MAX_SYNC_LIMIT: u64 = 200;
const CURSOR_PREFIX: &str = "y2.";
const CURSOR_PREFIX_V1: &str = "y1.";

fn counter_missing() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("sync_counter row is missing"))
}

/// The number of every change this transaction makes. Call it inside the writing
/// transaction, as late as possible: the counter row stays locked until commit.
pub async fn change_seq<C: ConnectionTrait>(db: &C) -> ApiResult<i64> {
    let backend = db.get_database_backend();
    let stmt = Query::update()
        .table(sync_counter::Entity)
        .value(
            sync_counter::Column::Value,
            Expr::col(sync_counter::Column::Value).add(1),
        )
        .and_where(Expr::col(sync_counter::Column::Id).eq(1))
        .returning_col(sync_counter::Column::Value)
        .to_owned();
    let row = db
        .query_one(backend.build(&stmt))
        .await?
        .ok_or_else(counter_missing)?;
    Ok(row.try_get("", "value")?)
}

/// The counter: every change numbered up to its value has committed; and the epoch
/// cursors must carry.
async fn counter<C: ConnectionTrait>(db: &C) -> ApiResult<sync_counter::Model> {
    sync_counter::Entity::find_by_id(1)
        .one(db)
        .await?
        .ok_or_else(counter_missing)
}

/// Gives everything one transaction changed the same sync number: these submissions,
/// these referrals, and every referral of `referrals_of`. Call it last before commit:
/// the counter row stays locked until then, and only the commit itself should wait.
pub async fn stamp<C: ConnectionTrait>(
    txn: &C,
    submission_ids: &[Uuid],
    referral_ids: &[Uuid],
    referrals_of: &[Uuid],
) -> ApiResult<i64> {
    let seq = change_seq(txn).await?;
    if !submission_ids.is_empty() {
        submissions::Entity::update_many()
            .col_expr(submissions::Column::ChangeSeq, Expr::value(seq))
            .filter(submissions::Column::Id.is_in(submission_ids.iter().copied()))
            .exec(txn)
            .await?;
    }
    if !referral_ids.is_empty() {
        referrals::Entity::update_many()
            .col_expr(referrals::Column::ChangeSeq, Expr::value(seq))
            .filter(referrals::Column::Id.is_in(referral_ids.iter().copied()))
            .exec(txn)
            .await?;
    }
    if !referrals_of.is_empty() {
        referrals::Entity::update_many()
            .col_expr(referrals::Column::ChangeSeq, Expr::value(seq))
            .filter(referrals::Column::SubmissionId.is_in(referrals_of.iter().copied()))
            .exec(txn)
            .await?;
    }
    Ok(seq)
}

/// The cursor after `seq` for this user in this epoch. It names the user so it cannot
/// be replayed by another (a foreign cursor is refused, not silently read as someone
/// else's), and the epoch so that one issued before a restore is refused.
fn encode_cursor(user_id: Uuid, epoch: i64, seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{user_id}.{epoch}.{seq}"))
}

/// The sequence number a cursor names. Cursors of the first format (`y1.`, before
/// epochs) belong to epoch 0, the epoch of a database never restored.
fn decode_cursor(cursor: &str, user_id: Uuid, counter: &sync_counter::Model) -> ApiResult<i64> {
    let bad = |message: &str| ApiError::bad_param("since", "invalid_cursor", message);
    let foreign = || bad("not a sync cursor this server issued");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| foreign())?;
    let text = std::str::from_utf8(&raw).map_err(|_| foreign())?;
    let (user, epoch, seq) = if let Some(rest) = text.strip_prefix(CURSOR_PREFIX) {
        let mut parts = rest.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(user), Some(epoch), Some(seq), None) => (user, epoch, seq),
            _ => return Err(foreign()),
        }
    } else if let Some(rest) = text.strip_prefix(CURSOR_PREFIX_V1) {
        let (user, seq) = rest.rsplit_once('.').ok_or_else(foreign)?;
        (user, "0", seq)
    } else {
        return Err(foreign());
    };
    let user = Uuid::parse_str(user).map_err(|_| foreign())?;
    let epoch: i64 = epoch.parse().map_err(|_| foreign())?;
    let seq: i64 = seq.parse().map_err(|_| foreign())?;
    if user != user_id {
        return Err(bad(
            "this cursor belongs to another user; sync from the start",
        ));
    }
    if epoch != counter.epoch {
        return Err(bad(
            "the server was restored from a backup after this cursor was issued; sync \
             from the start",
        ));
    }
    if !(0..=counter.value).contains(&seq) {
        return Err(bad(
            "this cursor is ahead of the server; sync from the start",
        ));
    }
    Ok(seq)
}

enum Change {
    Submission(submissions::Model),
    Form(forms::Model),
    Referral(referrals::Model),
}

impl Change {
    fn seq(&self) -> i64 {
        match self {
            Change::Submission(m) => m.change_seq,
            Change::Form(m) => m.change_seq,
            Change::Referral(m) => m.change_seq,
        }
    }
}

/// Everything that changed for `actor` after `query.since`, oldest change first.
pub async fn changes<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    query: &SyncQuery,
) -> ApiResult<SyncOut> {
    let limit = query.limit.unwrap_or(DEFAULT_SYNC_LIMIT);
    if !(1..=MAX_SYNC_LIMIT).contains(&limit) {
        return Err(ApiError::bad_param(
            "limit",
            "out_of_range",
            format!("must be between 1 and {MAX_SYNC_LIMIT}"),
        ));
    }
    // Everything up to `upto` is committed (see the module docs); read no further.
    let counter = counter(db).await?;
    let upto = counter.value;
    let since = match query.since.as_deref() {
        None | Some("") => 0,
        Some(c) => decode_cursor(c, actor.user_id, &counter)?,
    };
    let take = limit + 1;
    let mut changes: Vec<Change> = Vec::new();
    changes.extend(
        submissions::Entity::find()
            .filter(submissions::Column::AuthorId.eq(actor.user_id))
            .filter(submissions::Column::ChangeSeq.gt(since))
            .filter(submissions::Column::ChangeSeq.lte(upto))
            .order_by_asc(submissions::Column::ChangeSeq)
            .limit(take)
            .all(db)
            .await?
            .into_iter()
            .map(Change::Submission),
    );
    changes.extend(
        referrals::Entity::find()
            .filter(referrals::Column::IssuedBy.eq(actor.user_id))
            .filter(referrals::Column::ChangeSeq.gt(since))
            .filter(referrals::Column::ChangeSeq.lte(upto))
            .order_by_asc(referrals::Column::ChangeSeq)
            .limit(take)
            .all(db)
            .await?
            .into_iter()
            .map(Change::Referral),
    );
    // Forms are few; filter by role here rather than inside JSON in SQL.
    for row in forms::Entity::find()
        .filter(forms::Column::ChangeSeq.gt(since))
        .filter(forms::Column::ChangeSeq.lte(upto))
        .order_by_asc(forms::Column::ChangeSeq)
        .all(db)
        .await?
    {
        let roles: Vec<String> = serde_json::from_value(row.roles.clone()).unwrap_or_default();
        if form_service::visible_to(&roles, actor.role) {
            changes.push(Change::Form(row));
        }
    }
    changes.sort_by_key(Change::seq);
    // One transaction's changes share a number: a page never splits them, so it ends
    // after every change with the last number it includes (and may exceed `limit`).
    let has_more = changes.len() as u64 > limit;
    let cursor_seq = if has_more {
        let cutoff = changes[limit as usize - 1].seq();
        if referrals_saturated(&changes, take) {
            let have: Vec<Uuid> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Referral(r) => Some(r.id),
                    _ => None,
                })
                .collect();
            for r in referrals::Entity::find()
                .filter(referrals::Column::IssuedBy.eq(actor.user_id))
                .filter(referrals::Column::ChangeSeq.eq(cutoff))
                .all(db)
                .await?
            {
                if !have.contains(&r.id) {
                    changes.push(Change::Referral(r));
                }
            }
            changes.sort_by_key(Change::seq);
        }
        changes.retain(|c| c.seq() <= cutoff);
        cutoff
    } else {
        upto
    };

    let submission_ids: Vec<Uuid> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Submission(m) => Some(m.id),
            _ => None,
        })
        .collect();
    let reviews = latest_reviews(db, &submission_ids).await?;
    let mut out = SyncOut {
        cursor: encode_cursor(actor.user_id, counter.epoch, cursor_seq),
        has_more,
        submissions: Vec::new(),
        forms: Vec::new(),
        referrals: Vec::new(),
    };
    for change in changes {
        match change {
            Change::Submission(m) => {
                let last_review = reviews
                    .iter()
                    .find(|e| e.submission_id == m.id)
                    .map(|e| submission_service::event_out(e.clone()))
                    .transpose()?;
                out.submissions.push(SyncSubmissionOut {
                    id: m.id,
                    form_id: m.form_id,
                    status: submission_service::status_of(&m.status)?,
                    revision: m.revision as u32,
                    updated_at: m.updated_at,
                    last_review,
                });
            }
            Change::Form(m) => out.forms.push(form_service::form_out(m)?),
            Change::Referral(m) => out.referrals.push(submission_service::referral_out(m)?),
        }
    }
    Ok(out)
}

/// Whether the referral query filled its page (more rows may share its last number).
fn referrals_saturated(changes: &[Change], take: u64) -> bool {
    changes
        .iter()
        .filter(|c| matches!(c, Change::Referral(_)))
        .count() as u64
        >= take
}

/// The latest review move of each submission: a reviewer's decision or an admin's reopening.
async fn latest_reviews<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> ApiResult<Vec<submission_events::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let events = submission_events::Entity::find()
        .filter(submission_events::Column::SubmissionId.is_in(ids.iter().copied()))
        .filter(submission_events::Column::FromStatus.is_not_null())
        .order_by_desc(submission_events::Column::At)
        .order_by_desc(submission_events::Column::Id)
        .all(db)
        .await?;
    let mut latest: Vec<submission_events::Model> = Vec::new();
    // The author's own new revision (changes_requested → submitted) is not a review.
    let is_revision = |e: &submission_events::Model| {
        e.from_status.as_deref() == Some("changes_requested") && e.to_status == "submitted"
    };
    for e in events.into_iter().filter(|e| !is_revision(e)) {
        if !latest.iter().any(|l| l.submission_id == e.submission_id) {
            latest.push(e);
        }
    }
    Ok(latest)
}
