//! What changed for a phone since it last synced.
//!
//! A phone syncs its own submissions, the referrals it issued, and the forms of its role.
//! Each submission and referral therefore has one reader (its author, its issuer), and
//! every change to one carries a `change_seq` from that reader's row of `sync_feeds`,
//! taken inside the writing transaction: the row lock, held to commit, makes one feed's
//! number order its commit order, so a cursor (the highest number seen) never skips a
//! change that committed late. Writers for different people take different rows and
//! commit side by side. Forms, which every phone reads, are numbered by the one-row
//! `sync_counter` the same way. A cursor therefore holds two numbers (the feed's and the
//! forms'), and also the database's epoch (`sync_counter.epoch`, new after `donghanh
//! restore`), so a cursor from before a restore is refused rather than read against
//! wound-back numbers.

use sea_orm::sea_query::{Alias, CaseStatement, Expr, OnConflict, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use shared_models::{ReferralOut, SubmissionEventOut, SyncOut, SyncQuery, SyncSubmissionOut};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{
    forms, referrals, submission_events, submissions, sync_counter, sync_feeds,
};
use crate::error::{ApiError, ApiResult};
use crate::services::{forms as form_service, submissions as submission_service};

const DEFAULT_SYNC_LIMIT: u64 = 100;
const MAX_SYNC_LIMIT: u64 = 200;
const CURSOR_PREFIX: &str = "y3.";
const CURSOR_PREFIX_V2: &str = "y2.";
const CURSOR_PREFIX_V1: &str = "y1.";

fn counter_missing() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("sync_counter row is missing"))
}

/// The number of a form change (forms are read by every phone, so they are numbered by
/// the global counter). Call it inside the writing transaction, as late as possible: the
/// counter row stays locked until commit.
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

/// The next number of `user`'s feed, its row locked until commit (made on first use).
async fn feed_seq<C: ConnectionTrait>(db: &C, user: Uuid) -> ApiResult<i64> {
    let backend = db.get_database_backend();
    let stmt = Query::insert()
        .into_table(sync_feeds::Entity)
        .columns([sync_feeds::Column::UserId, sync_feeds::Column::Value])
        .values_panic([user.into(), 1i64.into()])
        .on_conflict(
            OnConflict::column(sync_feeds::Column::UserId)
                .value(
                    sync_feeds::Column::Value,
                    Expr::col((sync_feeds::Entity, sync_feeds::Column::Value)).add(1),
                )
                .to_owned(),
        )
        .returning_col(sync_feeds::Column::Value)
        .to_owned();
    let row = db
        .query_one(backend.build(&stmt))
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("sync_feeds upsert returned no row")))?;
    Ok(row.try_get("", "value")?)
}

/// The next number of `user`'s feed, for a transaction that changes rows only this user
/// reads (a new submission by them, its referrals): take it first, before writing the
/// rows it numbers, and write them with it, so nothing needs renumbering before commit.
/// The feed row stays locked until the transaction ends, which orders this feed's
/// commits by number and makes the same user's other writers wait here, before they
/// hold anything (so a transaction that takes a feed first takes no other feed later).
pub async fn take<C: ConnectionTrait>(txn: &C, user: Uuid) -> ApiResult<i64> {
    feed_seq(txn, user).await
}

/// The authors of `submission_ids` and the issuers of `referral_ids` and of the
/// referrals of `referrals_of`, in one read.
async fn find_readers<C: ConnectionTrait>(
    txn: &C,
    submission_ids: &[Uuid],
    referral_ids: &[Uuid],
    referrals_of: &[Uuid],
) -> ApiResult<Vec<Uuid>> {
    #[derive(FromQueryResult)]
    struct Reader {
        user_id: Uuid,
    }
    let backend = txn.get_database_backend();
    let mut users = Vec::new();
    // Each part only when it names something: an empty `IN ()` is written as a
    // parameter comparison that a prepared plan cannot fold away, so it scans the table.
    if !submission_ids.is_empty() {
        let select = Query::select()
            .expr_as(
                Expr::col(submissions::Column::AuthorId),
                Alias::new("user_id"),
            )
            .from(submissions::Entity)
            .and_where(Expr::col(submissions::Column::Id).is_in(submission_ids.iter().copied()))
            .to_owned();
        users.extend(
            Reader::find_by_statement(backend.build(&select))
                .all(txn)
                .await?,
        );
    }
    if let Some(which) = referrals_named(referral_ids, referrals_of) {
        let select = Query::select()
            .distinct()
            .expr_as(
                Expr::col(referrals::Column::IssuedBy),
                Alias::new("user_id"),
            )
            .from(referrals::Entity)
            .cond_where(which)
            .to_owned();
        users.extend(
            Reader::find_by_statement(backend.build(&select))
                .all(txn)
                .await?,
        );
    }
    Ok(users.into_iter().map(|r| r.user_id).collect())
}

/// The referrals with these ids and those of these submissions, or `None` when both
/// lists are empty; an empty list is left out of the condition (see [`find_readers`]).
fn referrals_named(referral_ids: &[Uuid], referrals_of: &[Uuid]) -> Option<sea_orm::Condition> {
    let mut which = sea_orm::Condition::any();
    if !referral_ids.is_empty() {
        which = which.add(referrals::Column::Id.is_in(referral_ids.iter().copied()));
    }
    if !referrals_of.is_empty() {
        which = which.add(referrals::Column::SubmissionId.is_in(referrals_of.iter().copied()));
    }
    (!which.is_empty()).then_some(which)
}

/// `CASE column WHEN reader THEN number … END`, with no ELSE: a row of a reader not in
/// `numbers` gets NULL, which the NOT NULL column refuses.
fn number_of(
    column: impl sea_orm::sea_query::IntoColumnRef + Copy,
    numbers: &[(Uuid, i64)],
) -> SimpleExpr {
    let mut case = CaseStatement::new();
    for (user, seq) in numbers {
        case = case.case(Expr::col(column).eq(*user), Expr::val(*seq));
    }
    case.into()
}

/// Gives everything one transaction changed its readers' next numbers: these
/// submissions, these referrals, and every referral of `referrals_of`, their readers
/// (authors, issuers) looked up from the rows. Within one feed, everything the
/// transaction changed shares one number. Call it last before commit: the feed rows
/// stay locked until then (taken in user-id order, so two transactions touching the
/// same two feeds cannot deadlock on them). Answers the number each reader's feed gave.
pub async fn stamp<C: ConnectionTrait>(
    txn: &C,
    submission_ids: &[Uuid],
    referral_ids: &[Uuid],
    referrals_of: &[Uuid],
) -> ApiResult<Vec<(Uuid, i64)>> {
    if submission_ids.is_empty() && referral_ids.is_empty() && referrals_of.is_empty() {
        return Ok(Vec::new());
    }
    let mut users = find_readers(txn, submission_ids, referral_ids, referrals_of).await?;
    users.sort_unstable();
    users.dedup();
    let mut numbers = Vec::with_capacity(users.len());
    for user in users {
        numbers.push((user, feed_seq(txn, user).await?));
    }
    renumber(txn, &numbers, submission_ids, referral_ids, referrals_of).await?;
    Ok(numbers)
}

/// Writes numbers already taken (by [`take`] or [`stamp`]) onto these submissions,
/// these referrals and every referral of `referrals_of`: each row gets its reader's
/// number. A row whose reader has no number in `numbers` makes the update fail (its
/// number would be NULL) rather than be numbered on a wrong feed.
pub async fn renumber<C: ConnectionTrait>(
    txn: &C,
    numbers: &[(Uuid, i64)],
    submission_ids: &[Uuid],
    referral_ids: &[Uuid],
    referrals_of: &[Uuid],
) -> ApiResult<()> {
    if !submission_ids.is_empty() {
        submissions::Entity::update_many()
            .col_expr(
                submissions::Column::ChangeSeq,
                number_of(submissions::Column::AuthorId, numbers),
            )
            .filter(submissions::Column::Id.is_in(submission_ids.iter().copied()))
            .exec(txn)
            .await?;
    }
    if let Some(which) = referrals_named(referral_ids, referrals_of) {
        referrals::Entity::update_many()
            .col_expr(
                referrals::Column::ChangeSeq,
                number_of(referrals::Column::IssuedBy, numbers),
            )
            .filter(which)
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Where a phone stands: its feed's number and the forms' number, and the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    feed: i64,
    forms: i64,
}

/// The counters as this phone reads them, in one read: every change numbered up to
/// them has committed.
#[derive(Debug, FromQueryResult)]
struct Counters {
    epoch: i64,
    forms: i64,
    feed: Option<i64>,
}

impl Counters {
    fn upto(&self) -> Position {
        Position {
            feed: self.feed.unwrap_or(0),
            forms: self.forms,
        }
    }
}

async fn counters<C: ConnectionTrait>(db: &C, user: Uuid) -> ApiResult<Counters> {
    let c = Alias::new("c");
    let f = Alias::new("f");
    let select = Query::select()
        .expr_as(
            Expr::col((c.clone(), sync_counter::Column::Epoch)),
            Alias::new("epoch"),
        )
        .expr_as(
            Expr::col((c.clone(), sync_counter::Column::Value)),
            Alias::new("forms"),
        )
        .expr_as(
            Expr::col((f.clone(), sync_feeds::Column::Value)),
            Alias::new("feed"),
        )
        .from_as(sync_counter::Entity, c.clone())
        .join_as(
            sea_orm::JoinType::LeftJoin,
            sync_feeds::Entity,
            f.clone(),
            sea_orm::Condition::all()
                .add(Expr::col((f.clone(), sync_feeds::Column::UserId)).eq(user)),
        )
        .and_where(Expr::col((c, sync_counter::Column::Id)).eq(1))
        .to_owned();
    let backend = db.get_database_backend();
    Counters::find_by_statement(backend.build(&select))
        .one(db)
        .await?
        .ok_or_else(counter_missing)
}

/// The cursor after `at` for this user in this epoch. It names the user so it cannot
/// be replayed by another (a foreign cursor is refused, not silently read as someone
/// else's), and the epoch so that one issued before a restore is refused.
fn encode_cursor(user_id: Uuid, epoch: i64, at: Position) -> String {
    crate::paging::seal(
        CURSOR_PREFIX,
        format_args!("{user_id}.{epoch}.{}.{}", at.feed, at.forms),
    )
}

/// The position a cursor names. Cursors of the earlier formats held one number of the
/// one global counter (`y2.` with an epoch, `y1.` before epochs: epoch 0, the epoch of a
/// database never restored); it stands for both, since every feed started at the
/// global counter's value (migration 000011).
fn decode_cursor(cursor: &str, user_id: Uuid, counters: &Counters) -> ApiResult<Position> {
    let bad = |message: &str| ApiError::bad_param("since", "invalid_cursor", message);
    let foreign = || bad("not a sync cursor this server issued");
    let text = crate::paging::open(cursor).ok_or_else(foreign)?;
    let number = |s: &str| s.parse::<i64>().map_err(|_| foreign());
    let (user, epoch, at) = if let Some(rest) = text.strip_prefix(CURSOR_PREFIX) {
        let parts: Vec<&str> = rest.split('.').collect();
        let [user, epoch, feed, forms] = parts[..] else {
            return Err(foreign());
        };
        let at = Position {
            feed: number(feed)?,
            forms: number(forms)?,
        };
        (user, number(epoch)?, at)
    } else if let Some(rest) = text.strip_prefix(CURSOR_PREFIX_V2) {
        let parts: Vec<&str> = rest.split('.').collect();
        let [user, epoch, seq] = parts[..] else {
            return Err(foreign());
        };
        let seq = number(seq)?;
        (
            user,
            number(epoch)?,
            Position {
                feed: seq,
                forms: seq,
            },
        )
    } else if let Some(rest) = text.strip_prefix(CURSOR_PREFIX_V1) {
        let (user, seq) = rest.rsplit_once('.').ok_or_else(foreign)?;
        let seq = number(seq)?;
        (
            user,
            0,
            Position {
                feed: seq,
                forms: seq,
            },
        )
    } else {
        return Err(foreign());
    };
    let user = Uuid::parse_str(user).map_err(|_| foreign())?;
    if user != user_id {
        return Err(bad(
            "this cursor belongs to another user; sync from the start",
        ));
    }
    if epoch != counters.epoch {
        return Err(bad(
            "the server was restored from a backup after this cursor was issued; sync \
             from the start",
        ));
    }
    let upto = counters.upto();
    if !(0..=upto.feed).contains(&at.feed) || !(0..=upto.forms).contains(&at.forms) {
        return Err(bad(
            "this cursor is ahead of the server; sync from the start",
        ));
    }
    Ok(at)
}

enum Change {
    Submission(submissions::Model),
    Referral(referrals::Model),
}

impl Change {
    fn seq(&self) -> i64 {
        match self {
            Change::Submission(m) => m.change_seq,
            Change::Referral(m) => m.change_seq,
        }
    }
}

/// Everything that changed for `actor` after `query.since`: new forms first (oldest
/// first), then the phone's own submissions and referrals, oldest change first.
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
    let counters = counters(db, actor.user_id).await?;
    let upto = counters.upto();
    let since = match query.since.as_deref() {
        None | Some("") => Position { feed: 0, forms: 0 },
        Some(c) => decode_cursor(c, actor.user_id, &counters)?,
    };

    // Forms are few; filter by role here rather than inside JSON in SQL.
    let mut forms = Vec::new();
    for row in forms::Entity::find()
        .filter(forms::Column::ChangeSeq.gt(since.forms))
        .filter(forms::Column::ChangeSeq.lte(upto.forms))
        .order_by_asc(forms::Column::ChangeSeq)
        .all(db)
        .await?
    {
        let roles: Vec<String> = serde_json::from_value(row.roles.clone()).unwrap_or_default();
        if form_service::visible_to(&roles, actor.role) {
            forms.push(row);
        }
    }
    // One transaction's changes share a number: a page never splits them, so it ends
    // after every change with the last number it includes (and may exceed `limit`).
    let mut at = Position {
        feed: since.feed,
        forms: upto.forms,
    };
    let mut changes: Vec<Change> = Vec::new();
    let has_more = if forms.len() as u64 > limit {
        // A page of forms only; the phone's own changes come on the pages after.
        let cutoff = forms[limit as usize - 1].change_seq;
        forms.retain(|f| f.change_seq <= cutoff);
        at.forms = cutoff;
        true
    } else {
        let budget = (limit - forms.len() as u64).max(1);
        let (feed, more, feed_at) =
            feed_changes(db, actor.user_id, since.feed, upto.feed, budget).await?;
        changes = feed;
        at.feed = feed_at;
        more
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
        cursor: encode_cursor(actor.user_id, counters.epoch, at),
        has_more,
        submissions: Vec::new(),
        forms: forms
            .into_iter()
            .map(form_service::form_out)
            .collect::<ApiResult<_>>()?,
        referrals: Vec::new(),
    };
    for change in changes {
        match change {
            Change::Submission(m) => {
                let last_review = reviews
                    .iter()
                    .find(|e| e.submission_id == m.id)
                    .map(|e| SubmissionEventOut::try_from(e.clone()))
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
            Change::Referral(m) => out.referrals.push(ReferralOut::try_from(m)?),
        }
    }
    Ok(out)
}

/// About `budget` of `user`'s own changes numbered in (`since`, `upto`] of the feed,
/// oldest first and never splitting one number; whether more follow; and the feed
/// number the cursor moves to.
async fn feed_changes<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    since: i64,
    upto: i64,
    budget: u64,
) -> ApiResult<(Vec<Change>, bool, i64)> {
    let take = budget + 1;
    let mut changes: Vec<Change> = Vec::new();
    changes.extend(
        submissions::Entity::find()
            .filter(submissions::Column::AuthorId.eq(user))
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
            .filter(referrals::Column::IssuedBy.eq(user))
            .filter(referrals::Column::ChangeSeq.gt(since))
            .filter(referrals::Column::ChangeSeq.lte(upto))
            .order_by_asc(referrals::Column::ChangeSeq)
            .limit(take)
            .all(db)
            .await?
            .into_iter()
            .map(Change::Referral),
    );
    changes.sort_by_key(Change::seq);
    if changes.len() as u64 <= budget {
        return Ok((changes, false, upto));
    }
    let cutoff = changes[budget as usize - 1].seq();
    if referrals_saturated(&changes, take) {
        let have: Vec<Uuid> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Referral(r) => Some(r.id),
                _ => None,
            })
            .collect();
        for r in referrals::Entity::find()
            .filter(referrals::Column::IssuedBy.eq(user))
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
    Ok((changes, true, cutoff))
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

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;

    fn counters(epoch: i64, forms: i64, feed: Option<i64>) -> Counters {
        Counters { epoch, forms, feed }
    }

    fn raw(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    #[test]
    fn cursors_round_trip_and_old_ones_stand_for_both_numbers() {
        let user = Uuid::new_v4();
        let now = counters(7, 40, Some(90));
        let at = Position {
            feed: 85,
            forms: 12,
        };
        assert_eq!(
            decode_cursor(&encode_cursor(user, 7, at), user, &now).expect("y3"),
            at
        );
        // Issued before migration 000011, when one counter numbered everything.
        let v2 = raw(&format!("y2.{user}.7.30"));
        assert_eq!(
            decode_cursor(&v2, user, &now).expect("y2"),
            Position {
                feed: 30,
                forms: 30
            }
        );
        let v1 = raw(&format!("y1.{user}.30"));
        let never_restored = counters(0, 40, Some(90));
        assert_eq!(
            decode_cursor(&v1, user, &never_restored).expect("y1"),
            Position {
                feed: 30,
                forms: 30
            }
        );
    }

    #[test]
    fn cursors_of_another_user_epoch_or_ahead_are_refused() {
        let user = Uuid::new_v4();
        let now = counters(7, 40, Some(90));
        let refused = |cursor: String, counters: &Counters| {
            decode_cursor(&cursor, user, counters).expect_err("refused")
        };
        let at = Position {
            feed: 10,
            forms: 10,
        };
        refused(encode_cursor(Uuid::new_v4(), 7, at), &now);
        refused(encode_cursor(user, 8, at), &now);
        refused(
            encode_cursor(user, 7, Position { feed: 91, forms: 1 }),
            &now,
        );
        refused(
            encode_cursor(user, 7, Position { feed: 1, forms: 41 }),
            &now,
        );
        // A user whose feed has no row yet is at 0.
        refused(
            encode_cursor(user, 7, Position { feed: 1, forms: 1 }),
            &counters(7, 40, None),
        );
        for text in [
            format!("y3.{user}.7.1"),
            format!("y3.{user}.7.1.2.3"),
            format!("y3.{user}.7.x.2"),
            format!("y2.{user}.7.1.2"),
            format!("y9.{user}.7.1.2"),
        ] {
            refused(raw(&text), &now);
        }
        refused("%%%".into(), &now);
    }
}
