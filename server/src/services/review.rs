//! The review workflow. States and moves, exactly:
//! `submitted` → `approved` | `rejected` | `changes_requested` (a reviewer's decision);
//! `changes_requested` → `submitted` (the author's new revision);
//! `approved` | `rejected` → `submitted` (an admin reopens, with a comment).
//! Every move is a conditional update on the state it leaves, so two reviewers racing
//! cannot both move the same submission, and every move is an event, never rewritten.
//! Approval is what reports count: it writes the visit's contacts as report facts and
//! completes the referral a handoff confirms; reopening undoes both.

use chrono::{NaiveDate, Utc};
use mobile_schema::FormKind;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use shared_models::{
    BulkReviewIn, BulkReviewItemOut, BulkReviewOut, FieldError, Page, QueueFilter, ReferralStatus,
    ReopenIn, ReviewDecision, ReviewIn, ReviewStatus, RevisionOut, Role, SubmissionIn,
    SubmissionOut, SubmissionSummaryOut,
};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{
    approved_contacts, client_keys, commodity_distributions, contacts, group_sessions, handoffs,
    referrals, submission_revisions, submissions, support_actions,
};
use crate::error::{ApiError, ApiResult};
use crate::services::submissions::{self as intake, status_of, Origin, Prepared};
use crate::services::sync;
use crate::services::{audit, rollup};
use crate::state::AppState;

fn illegal_move(current: ReviewStatus, wanted: &str) -> ApiError {
    ApiError::Conflict {
        detail: format!(
            "the submission is `{}`; it cannot {wanted} from there",
            current.as_str()
        ),
        errors: vec![FieldError::new(
            "status",
            "illegal_transition",
            format!("current state: {}", current.as_str()),
        )],
    }
}

/// Moves a submission from `from` to `to` if it is still in `from` at `revision`;
/// answers whether it moved (false: someone else moved it first). The row lock this
/// takes also keeps a racing reviewer waiting until this transaction ends.
async fn move_state(
    txn: &DatabaseTransaction,
    m: &submissions::Model,
    from: ReviewStatus,
    to: ReviewStatus,
) -> ApiResult<bool> {
    let moved = submissions::Entity::update_many()
        .col_expr(submissions::Column::Status, Expr::value(to.as_str()))
        .col_expr(
            submissions::Column::UpdatedAt,
            Expr::value(intake::now_micros()),
        )
        .filter(submissions::Column::Id.eq(m.id))
        .filter(submissions::Column::Status.eq(from.as_str()))
        .filter(submissions::Column::Revision.eq(m.revision))
        .exec(txn)
        .await?
        .rows_affected;
    Ok(moved == 1)
}

/// The digests the answers name that have not arrived.
async fn missing_photos<C: ConnectionTrait>(
    db: &C,
    m: &submissions::Model,
) -> ApiResult<Vec<String>> {
    let named: Vec<String> = serde_json::from_value(m.photo_digests.clone())
        .map_err(|e| ApiError::Internal(e.into()))?;
    let stored = crate::services::photos::stored_digests(db, m.id).await?;
    Ok(named.into_iter().filter(|d| !stored.contains(d)).collect())
}

/// A reviewer's decision on one submission.
pub async fn review(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    input: &ReviewIn,
) -> ApiResult<SubmissionOut> {
    let comment = input
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let m = intake::scoped(&state.db, actor, id).await?;
    if m.author_id == actor.user_id {
        return Err(ApiError::Forbidden(
            "you cannot review your own submission".into(),
        ));
    }
    let current = status_of(&m.status)?;
    if current != ReviewStatus::Submitted {
        return Err(illegal_move(current, "be reviewed"));
    }
    if comment.is_none() && input.decision != ReviewDecision::Approve {
        return Err(ApiError::invalid(
            "comment",
            "required",
            "say why, so the author knows what to change",
        ));
    }
    if input.decision == ReviewDecision::Approve {
        let missing = missing_photos(&state.db, &m).await?;
        if !missing.is_empty() {
            return Err(ApiError::Conflict {
                detail: format!(
                    "{} named photo(s) have not arrived yet; approve once they have",
                    missing.len()
                ),
                errors: missing
                    .into_iter()
                    .map(|d| FieldError::new("photos", "photo_missing", d))
                    .collect(),
            });
        }
    }

    let target = input.decision.target();
    let txn = state.db.begin().await?;
    if !move_state(&txn, &m, ReviewStatus::Submitted, target).await? {
        txn.rollback().await?;
        let now = intake::scoped(&state.db, actor, id).await?;
        return Err(illegal_move(status_of(&now.status)?, "be reviewed"));
    }
    let touched = if target == ReviewStatus::Approved {
        on_approve(&txn, &m).await?
    } else {
        Vec::new()
    };
    let now = Utc::now();
    intake::record_event(
        &txn,
        m.id,
        m.revision,
        actor.user_id,
        Some(ReviewStatus::Submitted),
        target,
        comment,
        now,
    )
    .await?;
    sync::stamp(&txn, &[m.id], &touched, &[]).await?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "submission.review",
        "submission",
        Some(m.id.to_string()),
        serde_json::json!({ "decision": target.as_str(), "revision": m.revision }),
    )
    .await?;
    let stored = submissions::Entity::find_by_id(m.id)
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("submission"))?;
    let out = intake::detail(&txn, stored).await?;
    txn.commit().await?;
    crate::metrics::review_decision(match input.decision {
        ReviewDecision::Approve => "approve",
        ReviewDecision::Reject => "reject",
        ReviewDecision::RequestChanges => "request_changes",
    });
    tracing::info!(submission.id = %m.id, review.decision = target.as_str(), "reviewed");
    Ok(out)
}

/// The cells of every referral the submission issued: a revision can leave a completed
/// or expired referral at its old day and unit, so they are not always the visit's own.
async fn referral_cells(
    txn: &DatabaseTransaction,
    m: &submissions::Model,
    changes: &mut rollup::Changes,
) -> ApiResult<()> {
    let cells: Vec<(String, NaiveDate)> = referrals::Entity::find()
        .select_only()
        .column(referrals::Column::OrgPath)
        .column(referrals::Column::IssuedOn)
        .filter(referrals::Column::SubmissionId.eq(m.id))
        .distinct()
        .into_tuple()
        .all(txn)
        .await?;
    for (path, day) in cells {
        changes.day(&path, day);
    }
    Ok(())
}

/// What approval makes true: the visit's contacts become report facts; a handoff
/// completes its referral (a referral completed already is a conflict).
async fn on_approve(txn: &DatabaseTransaction, m: &submissions::Model) -> ApiResult<Vec<Uuid>> {
    let mut touched = Vec::new();
    let mut changes = rollup::Changes::default();
    changes.day(&m.org_path, m.occurred_on);
    referral_cells(txn, m, &mut changes).await?;
    match FormKind::ALL.into_iter().find(|k| k.as_str() == m.kind) {
        Some(FormKind::OutreachVisit) => {
            // In hash order, so concurrent approvals lock client keys in one order.
            let mut rows = contacts::Entity::find()
                .filter(contacts::Column::SubmissionId.eq(m.id))
                .all(txn)
                .await?;
            rows.sort_by(|a, b| {
                a.uic_hash
                    .cmp(&b.uic_hash)
                    .then(a.position.cmp(&b.position))
            });
            for c in rows {
                let client_id = client_key(txn, &c.uic_hash, m.occurred_on, &mut changes).await?;
                approved_contacts::Entity::insert(approved_contacts::ActiveModel {
                    submission_id: Set(m.id),
                    position: Set(c.position),
                    client_id: Set(client_id),
                    org_path: Set(m.org_path.clone()),
                    occurred_on: Set(m.occurred_on),
                    condoms_male: Set(c.condoms_male),
                    condoms_female: Set(c.condoms_female),
                    lubricant: Set(c.lubricant),
                    self_test_kits: Set(c.self_test_kits),
                })
                .exec_without_returning(txn)
                .await?;
            }
        }
        Some(FormKind::ReferralHandoff) => {
            let handoff = handoffs::Entity::find_by_id(m.id)
                .one(txn)
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("handoff without its row")))?;
            let referral = referrals::Entity::find()
                .filter(referrals::Column::Code.eq(handoff.referral_code.as_str()))
                .one(txn)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid(
                        "answers.referral_code",
                        "unknown_referral",
                        "no such referral",
                    )
                })?;
            let status = ReferralStatus::parse(&referral.status);
            if matches!(
                status,
                Some(ReferralStatus::Completed | ReferralStatus::Declined)
            ) {
                return Err(ApiError::Conflict {
                    detail: format!(
                        "referral {} is already {}; this handoff cannot complete it again",
                        referral.code, referral.status
                    ),
                    errors: vec![FieldError::new(
                        "answers.referral_code",
                        "referral_closed",
                        format!("the referral is {}", referral.status),
                    )],
                });
            }
            touched.push(referral.id);
            changes.day(&referral.org_path, referral.issued_on);
            referrals::Entity::update_many()
                .col_expr(
                    referrals::Column::Status,
                    Expr::value(ReferralStatus::Completed.as_str()),
                )
                .col_expr(
                    referrals::Column::Outcome,
                    Expr::value(handoff.outcome.clone()),
                )
                .col_expr(
                    referrals::Column::CompletedOn,
                    Expr::value(handoff.arrived_on),
                )
                .col_expr(referrals::Column::CompletedBySubmission, Expr::value(m.id))
                .col_expr(referrals::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(referrals::Column::Id.eq(referral.id))
                .exec(txn)
                .await?;
        }
        _ => {}
    }
    rollup::apply(txn, &changes).await?;
    Ok(touched)
}

/// The client key row of a hash, locked until the transaction ends (PostgreSQL; SQLite
/// serialises writers), so its first approved day is read and moved by one writer at a time.
async fn locked_client_key(
    txn: &DatabaseTransaction,
    filter: sea_orm::Condition,
) -> ApiResult<Option<client_keys::Model>> {
    let mut query = client_keys::Entity::find().filter(filter);
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query.one(txn).await?)
}

/// The integer key of a client hash, creating it; keeps the first approved day (and
/// tells the report cells when it moves).
async fn client_key(
    txn: &DatabaseTransaction,
    uic_hash: &str,
    occurred_on: NaiveDate,
    changes: &mut rollup::Changes,
) -> ApiResult<i64> {
    let by_hash = || sea_orm::Condition::all().add(client_keys::Column::UicHash.eq(uic_hash));
    let key = match locked_client_key(txn, by_hash()).await? {
        Some(key) => key,
        None => {
            client_keys::Entity::insert(client_keys::ActiveModel {
                uic_hash: Set(uic_hash.to_string()),
                first_approved_on: Set(None),
                ..Default::default()
            })
            .on_conflict(
                OnConflict::column(client_keys::Column::UicHash)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            locked_client_key(txn, by_hash())
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("client key vanished")))?
        }
    };
    let first = match key.first_approved_on {
        Some(day) if day <= occurred_on => day,
        _ => occurred_on,
    };
    if key.first_approved_on != Some(first) {
        client_keys::Entity::update_many()
            .col_expr(client_keys::Column::FirstApprovedOn, Expr::value(first))
            .filter(client_keys::Column::Id.eq(key.id))
            .exec(txn)
            .await?;
        changes.first_moved(key.id, key.first_approved_on, Some(first))?;
    }
    Ok(key.id)
}

/// Undoes what approval made true (an admin reopened it).
async fn on_unapprove(txn: &DatabaseTransaction, m: &submissions::Model) -> ApiResult<Vec<Uuid>> {
    let mut changes = rollup::Changes::default();
    changes.day(&m.org_path, m.occurred_on);
    referral_cells(txn, m, &mut changes).await?;
    let facts = approved_contacts::Entity::find()
        .filter(approved_contacts::Column::SubmissionId.eq(m.id))
        .all(txn)
        .await?;
    approved_contacts::Entity::delete_many()
        .filter(approved_contacts::Column::SubmissionId.eq(m.id))
        .exec(txn)
        .await?;
    // In hash order, as approvals lock them, so the two cannot deadlock on them.
    let clients: Vec<i64> = client_keys::Entity::find()
        .select_only()
        .column(client_keys::Column::Id)
        .filter(client_keys::Column::Id.is_in(facts.iter().map(|f| f.client_id)))
        .order_by_asc(client_keys::Column::UicHash)
        .into_tuple()
        .all(txn)
        .await?;
    for client_id in clients {
        let key = locked_client_key(
            txn,
            sea_orm::Condition::all().add(client_keys::Column::Id.eq(client_id)),
        )
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("client key vanished")))?;
        let first: Option<NaiveDate> = approved_contacts::Entity::find()
            .select_only()
            .column_as(approved_contacts::Column::OccurredOn.min(), "first")
            .filter(approved_contacts::Column::ClientId.eq(client_id))
            .into_tuple::<Option<NaiveDate>>()
            .one(txn)
            .await?
            .flatten();
        if first != key.first_approved_on {
            client_keys::Entity::update_many()
                .col_expr(client_keys::Column::FirstApprovedOn, Expr::value(first))
                .filter(client_keys::Column::Id.eq(client_id))
                .exec(txn)
                .await?;
            changes.first_moved(client_id, key.first_approved_on, first)?;
        }
    }
    let completed = referrals::Entity::find()
        .filter(referrals::Column::CompletedBySubmission.eq(m.id))
        .all(txn)
        .await?;
    let mut touched = Vec::new();
    for r in completed {
        touched.push(r.id);
        changes.day(&r.org_path, r.issued_on);
        referrals::Entity::update_many()
            .col_expr(
                referrals::Column::Status,
                Expr::value(ReferralStatus::Issued.as_str()),
            )
            .col_expr(
                referrals::Column::Outcome,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                referrals::Column::CompletedOn,
                Expr::value(Option::<NaiveDate>::None),
            )
            .col_expr(
                referrals::Column::CompletedBySubmission,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(referrals::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(referrals::Column::Id.eq(r.id))
            .exec(txn)
            .await?;
    }
    rollup::apply(txn, &changes).await?;
    Ok(touched)
}

/// One decision for many submissions; each id is its own transaction, so one bad id
/// does not undo the others.
pub async fn review_many(
    state: &AppState,
    actor: &Principal,
    input: &BulkReviewIn,
) -> ApiResult<BulkReviewOut> {
    let single = ReviewIn {
        decision: input.decision,
        comment: input.comment.clone(),
    };
    let mut items = Vec::with_capacity(input.ids.len());
    for id in &input.ids {
        let item = match review(state, actor, *id, &single).await {
            Ok(out) => BulkReviewItemOut {
                id: *id,
                status: 200,
                review_status: Some(out.summary.status),
                problem: None,
            },
            Err(e @ (ApiError::Db(_) | ApiError::Internal(_))) => return Err(e),
            Err(e) => {
                let review_status = match intake::scoped(&state.db, actor, *id).await {
                    Ok(m) => Some(status_of(&m.status)?),
                    Err(_) => None,
                };
                BulkReviewItemOut {
                    id: *id,
                    status: e.status().as_u16(),
                    review_status,
                    problem: Some(e.problem()),
                }
            }
        };
        items.push(item);
    }
    let succeeded = items.iter().filter(|i| i.status == 200).count() as u32;
    Ok(BulkReviewOut {
        failed: items.len() as u32 - succeeded,
        succeeded,
        items,
    })
}

/// An admin sends a final submission back to review, saying why.
pub async fn reopen(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    input: &ReopenIn,
) -> ApiResult<SubmissionOut> {
    let comment = input.comment.trim().to_string();
    if comment.is_empty() {
        return Err(ApiError::invalid(
            "comment",
            "required",
            "say why it is reopened",
        ));
    }
    let m = intake::scoped(&state.db, actor, id).await?;
    let current = status_of(&m.status)?;
    if !matches!(current, ReviewStatus::Approved | ReviewStatus::Rejected) {
        return Err(illegal_move(
            current,
            "be reopened (only approved or rejected ones can)",
        ));
    }
    let txn = state.db.begin().await?;
    if !move_state(&txn, &m, current, ReviewStatus::Submitted).await? {
        txn.rollback().await?;
        let now = intake::scoped(&state.db, actor, id).await?;
        return Err(illegal_move(status_of(&now.status)?, "be reopened"));
    }
    let touched = if current == ReviewStatus::Approved {
        on_unapprove(&txn, &m).await?
    } else {
        Vec::new()
    };
    intake::record_event(
        &txn,
        m.id,
        m.revision,
        actor.user_id,
        Some(current),
        ReviewStatus::Submitted,
        Some(comment),
        Utc::now(),
    )
    .await?;
    sync::stamp(&txn, &[m.id], &touched, &[]).await?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "submission.reopen",
        "submission",
        Some(m.id.to_string()),
        serde_json::json!({ "from": current.as_str() }),
    )
    .await?;
    let stored = submissions::Entity::find_by_id(m.id)
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("submission"))?;
    let out = intake::detail(&txn, stored).await?;
    txn.commit().await?;
    crate::metrics::review_decision("reopen");
    Ok(out)
}

/// The author sends a new revision while changes are requested: validated like a new
/// submission, the earlier revision kept, the extracted records replaced, and the
/// submission back in review. The same revision sent again is answered as stored.
pub async fn revise(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    input: SubmissionIn,
    origin: Origin<'_>,
) -> ApiResult<SubmissionOut> {
    if input.id != id {
        return Err(ApiError::invalid(
            "id",
            "id_mismatch",
            "the body's id must be the submission's id in the path",
        ));
    }
    let m = intake::scoped(&state.db, actor, id).await?;
    if m.author_id != actor.user_id {
        return Err(ApiError::Forbidden(
            "only the author sends a new revision".into(),
        ));
    }
    if input.form_id != m.form_id {
        return Err(ApiError::invalid(
            "form_id",
            "form_changed",
            format!("a revision stays a {} submission", m.form_id),
        ));
    }
    let fingerprint = intake::fingerprint_of(state, &input)?;
    let current = status_of(&m.status)?;
    if current != ReviewStatus::ChangesRequested {
        if current == ReviewStatus::Submitted && m.fingerprint == fingerprint {
            // The phone's retry of the revision it already sent.
            return intake::detail(&state.db, m).await;
        }
        return Err(illegal_move(
            current,
            "take a new revision (changes were not requested)",
        ));
    }
    let prepared = intake::prepare(state, actor, &input).await?;
    let Prepared {
        def,
        place,
        answers,
        occurred_on,
        photos,
        typed,
    } = &prepared;

    let txn = state.db.begin().await?;
    submission_revisions::Entity::insert(submission_revisions::ActiveModel {
        id: Set(Uuid::now_v7()),
        submission_id: Set(m.id),
        revision: Set(m.revision),
        form_version: Set(m.form_version),
        author_id: Set(m.author_id),
        org_unit_id: Set(m.org_unit_id),
        org_path: Set(m.org_path.clone()),
        hotspot_id: Set(m.hotspot_id),
        fingerprint: Set(m.fingerprint.clone()),
        answers: Set(m.answers.clone()),
        photo_digests: Set(m.photo_digests.clone()),
        occurred_on: Set(m.occurred_on),
        started_at: Set(m.started_at),
        completed_at: Set(m.completed_at),
        received_at: Set(m.received_at),
    })
    .on_conflict(
        OnConflict::columns([
            submission_revisions::Column::SubmissionId,
            submission_revisions::Column::Revision,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    let now = intake::now_micros();
    let next = m.revision + 1;
    let moved = submissions::Entity::update_many()
        .col_expr(
            submissions::Column::Status,
            Expr::value(ReviewStatus::Submitted.as_str()),
        )
        .col_expr(submissions::Column::Revision, Expr::value(next))
        .col_expr(
            submissions::Column::FormVersion,
            Expr::value(def.version as i32),
        )
        .col_expr(
            submissions::Column::OrgUnitId,
            Expr::value(place.org_unit.id),
        )
        .col_expr(
            submissions::Column::OrgPath,
            Expr::value(place.org_unit.path.clone()),
        )
        .col_expr(
            submissions::Column::HotspotId,
            Expr::value(place.hotspot_id),
        )
        .col_expr(submissions::Column::Fingerprint, Expr::value(fingerprint))
        .col_expr(submissions::Column::Answers, Expr::value(answers.clone()))
        .col_expr(
            submissions::Column::PhotoDigests,
            Expr::value(serde_json::json!(photos)),
        )
        .col_expr(submissions::Column::OccurredOn, Expr::value(*occurred_on))
        .col_expr(
            submissions::Column::StartedAt,
            Expr::value(intake::to_micros(input.started_at)),
        )
        .col_expr(
            submissions::Column::CompletedAt,
            Expr::value(intake::to_micros(input.completed_at)),
        )
        .col_expr(submissions::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            submissions::Column::Source,
            Expr::value(origin.source().as_str()),
        )
        .filter(submissions::Column::Id.eq(m.id))
        .filter(submissions::Column::Status.eq(ReviewStatus::ChangesRequested.as_str()))
        .filter(submissions::Column::Revision.eq(m.revision))
        .exec(&txn)
        .await?
        .rows_affected;
    if moved != 1 {
        txn.rollback().await?;
        let now = intake::scoped(&state.db, actor, id).await?;
        return Err(illegal_move(status_of(&now.status)?, "take a new revision"));
    }
    // The author's feed number, taken once the submission's row is ours (reviews lock
    // the row first and a feed after it, so this order cannot deadlock with them).
    let seq = sync::take(&txn, m.author_id).await?;
    // Replace what was extracted from the earlier revision.
    contacts::Entity::delete_many()
        .filter(contacts::Column::SubmissionId.eq(m.id))
        .exec(&txn)
        .await?;
    commodity_distributions::Entity::delete_many()
        .filter(commodity_distributions::Column::SubmissionId.eq(m.id))
        .exec(&txn)
        .await?;
    group_sessions::Entity::delete_by_id(m.id)
        .exec(&txn)
        .await?;
    handoffs::Entity::delete_by_id(m.id).exec(&txn).await?;
    support_actions::Entity::delete_many()
        .filter(support_actions::Column::SubmissionId.eq(m.id))
        .exec(&txn)
        .await?;
    let issued = intake::extract(&txn, m.id, typed, intake::Revision::Later).await?;

    // Referral codes already printed stay with their (contact, service); new pairs get
    // new codes; pairs gone from the revision are withdrawn unless already completed.
    let existing = referrals::Entity::find()
        .filter(referrals::Column::SubmissionId.eq(m.id))
        .all(&txn)
        .await?;
    for r in &existing {
        let kept = issued
            .iter()
            .any(|(p, s, _)| *p == r.contact_position && *s == r.service);
        if !kept && r.status == ReferralStatus::Issued.as_str() {
            referrals::Entity::delete_by_id(r.id).exec(&txn).await?;
        }
    }
    let mut new_pairs = Vec::new();
    for (position, service, hash) in issued {
        match existing
            .iter()
            .find(|r| r.contact_position == position && r.service == service)
        {
            Some(r) => {
                referrals::Entity::update_many()
                    .col_expr(referrals::Column::UicHash, Expr::value(hash))
                    .col_expr(referrals::Column::IssuedOn, Expr::value(*occurred_on))
                    .col_expr(referrals::Column::OrgUnitId, Expr::value(place.org_unit.id))
                    .col_expr(
                        referrals::Column::OrgPath,
                        Expr::value(place.org_unit.path.clone()),
                    )
                    .col_expr(referrals::Column::UpdatedAt, Expr::value(now))
                    .filter(referrals::Column::Id.eq(r.id))
                    .exec(&txn)
                    .await?;
            }
            None => new_pairs.push((position, service, hash)),
        }
    }
    let issuing = intake::Issuing {
        submission_id: m.id,
        issued_on: *occurred_on,
        issued_by: actor.user_id,
        org_unit: &place.org_unit,
        change_seq: seq,
        now,
    };
    intake::insert_referrals(&txn, &issuing, &new_pairs).await?;
    intake::record_event(
        &txn,
        m.id,
        next,
        actor.user_id,
        Some(ReviewStatus::ChangesRequested),
        ReviewStatus::Submitted,
        None,
        now,
    )
    .await?;
    intake::record_odk(&txn, origin, m.id, next, now).await?;
    sync::renumber(&txn, &[(m.author_id, seq)], &[m.id], &[], &[m.id]).await?;
    let stored = submissions::Entity::find_by_id(m.id)
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("submission"))?;
    let out = intake::detail(&txn, stored).await?;
    txn.commit().await?;
    Ok(out)
}

/// Earlier revisions of a submission the caller may see (the read is audited).
pub async fn revisions(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
) -> ApiResult<Vec<RevisionOut>> {
    let m = intake::scoped(&state.db, actor, id).await?;
    audit::record(
        &state.db,
        Some(actor.user_id),
        "submission.read_revisions",
        "submission",
        Some(m.id.to_string()),
        serde_json::json!({}),
    )
    .await?;
    Ok(submission_revisions::Entity::find()
        .filter(submission_revisions::Column::SubmissionId.eq(m.id))
        .order_by_asc(submission_revisions::Column::Revision)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|r| RevisionOut {
            revision: r.revision.max(0) as u32,
            form_version: r.form_version.max(0) as u32,
            occurred_on: r.occurred_on,
            received_at: r.received_at,
            answers: r.answers,
        })
        .collect())
}

/// The review queue: `submitted` submissions in the caller's scope, oldest first.
pub async fn queue(
    state: &AppState,
    actor: &Principal,
    filter: &QueueFilter,
) -> ApiResult<Page<SubmissionSummaryOut>> {
    if !matches!(actor.role, Role::Supervisor | Role::Admin) {
        return Err(ApiError::Forbidden("only reviewers have a queue".into()));
    }
    let narrowing = intake::Narrowing {
        form_id: filter.form_id.as_deref(),
        author_id: filter.author_id,
        org_unit_id: filter.org_unit_id,
        from: filter.from,
        to: filter.to,
    };
    intake::list_in_order(
        state,
        actor,
        ReviewStatus::Submitted,
        &narrowing,
        filter.cursor.as_deref(),
        filter.limit,
    )
    .await
}
