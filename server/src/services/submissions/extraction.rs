//! The records a submission's typed answers stand for (contacts, distributions,
//! referrals, handoffs, sessions, support actions), written in its transaction.

use chrono::{DateTime, NaiveDate, Utc};
use mobile_schema::typed::KindAnswers;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryTrait,
};
use shared_models::ReferralStatus;
use uuid::Uuid;

use super::new_referral_code;
use crate::db::entities::{
    clients, commodity_distributions, contacts, group_sessions, handoffs, org_units, referrals,
    support_actions,
};
use crate::error::{ApiError, ApiResult};

/// Which revision of a submission is being extracted: it decides how the clients it met
/// first are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revision {
    /// A new submission: the clients it met first are those its own insert added.
    First,
    /// A later revision: an earlier one may have met them first.
    Later,
}

/// Extracts the typed records of a submission's kind. Answers the referrals to issue
/// (contact position, service, client hash): they are written last, with sync numbers.
pub(crate) async fn extract<C: ConnectionTrait>(
    txn: &C,
    submission_id: Uuid,
    typed: &KindAnswers,
    revision: Revision,
) -> ApiResult<Vec<IssuedPair>> {
    let mut issued = Vec::new();
    match typed {
        KindAnswers::OutreachVisit(visit) => {
            let contacts = &visit.contacts;
            // Client rows are locked in hash order, so two visits meeting the same
            // people in another order cannot deadlock each other.
            let mut hashes: Vec<&str> = contacts.iter().map(|c| c.uic.as_str()).collect();
            hashes.sort_unstable();
            hashes.dedup();
            // One statement: its rows are inserted (and locked) in the order given. It
            // answers the rows it added: the clients this visit met first.
            let first_seen_at = Utc::now();
            let mut first_met_here: Vec<String> = Vec::new();
            if !hashes.is_empty() {
                first_met_here = insert_new(
                    txn,
                    hashes.iter().map(|hash| clients::ActiveModel {
                        uic_hash: Set((*hash).to_string()),
                        first_submission_id: Set(submission_id),
                        first_seen_at: Set(first_seen_at),
                    }),
                    clients::Column::UicHash,
                    clients::Column::UicHash,
                )
                .await?;
            }
            if revision == Revision::Later && !hashes.is_empty() {
                // Also those an earlier revision of this visit met first.
                first_met_here = clients::Entity::find()
                    .filter(clients::Column::UicHash.is_in(hashes.iter().copied()))
                    .filter(clients::Column::FirstSubmissionId.eq(submission_id))
                    .all(txn)
                    .await?
                    .into_iter()
                    .map(|c| c.uic_hash)
                    .collect();
            }
            let mut totals = [0i64; 4];
            let mut rows = Vec::with_capacity(contacts.len());
            for (position, c) in contacts.iter().enumerate() {
                // New when this visit (or an earlier revision of it) first met the
                // client; the first contact of that visit only, if met twice in it.
                let is_new = first_met_here.contains(&c.uic)
                    && !contacts[..position]
                        .iter()
                        .any(|earlier| earlier.uic == c.uic);
                let position = position as i32;
                let quantities = [
                    c.condoms_male,
                    c.condoms_female,
                    c.lubricant,
                    c.self_test_kits,
                ];
                for (total, q) in totals.iter_mut().zip(quantities) {
                    *total += i64::from(q);
                }
                rows.push(contacts::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    submission_id: Set(submission_id),
                    position: Set(position),
                    uic_hash: Set(c.uic.clone()),
                    is_new: Set(is_new),
                    age_band: Set(c.age_band.clone()),
                    condoms_male: Set(c.condoms_male),
                    condoms_female: Set(c.condoms_female),
                    lubricant: Set(c.lubricant),
                    self_test_kits: Set(c.self_test_kits),
                    // None given when the worker left the optional count out.
                    iec_materials: Set(c.iec_materials.unwrap_or(0)),
                    counselled: Set(c.counselled),
                });
                for service in c.referrals.iter().flatten() {
                    issued.push((position, service.clone(), c.uic.clone()));
                }
            }
            if !rows.is_empty() {
                contacts::Entity::insert_many(rows)
                    .exec_without_returning(txn)
                    .await?;
            }
            let handed_out: Vec<commodity_distributions::ActiveModel> =
                crate::services::COMMODITIES
                    .iter()
                    .zip(totals)
                    .filter(|(_, total)| *total > 0)
                    .map(|(item, total)| commodity_distributions::ActiveModel {
                        submission_id: Set(submission_id),
                        item: Set((*item).to_string()),
                        quantity: Set(total as i32),
                    })
                    .collect();
            if !handed_out.is_empty() {
                commodity_distributions::Entity::insert_many(handed_out)
                    .exec_without_returning(txn)
                    .await?;
            }
        }
        KindAnswers::ReferralHandoff(handoff) => {
            handoffs::Entity::insert(handoffs::ActiveModel {
                submission_id: Set(submission_id),
                referral_code: Set(handoff.referral_code.clone()),
                facility: Set(handoff.facility.clone()),
                arrived_on: Set(handoff.arrived_on),
                service: Set(handoff.service.clone()),
                outcome: Set(handoff.outcome.clone()),
            })
            .exec_without_returning(txn)
            .await?;
        }
        KindAnswers::GroupSession(session) => {
            group_sessions::Entity::insert(group_sessions::ActiveModel {
                submission_id: Set(submission_id),
                audience: Set(session.audience.clone()),
                participants: Set(session.participants),
                topic: Set(session.topic.clone()),
            })
            .exec_without_returning(txn)
            .await?;
        }
        KindAnswers::SupportVisit(visit) => {
            for action in &visit.support {
                let loan = visit.loan_amount_vnd.filter(|_| action == "loan");
                support_actions::Entity::insert(support_actions::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    submission_id: Set(submission_id),
                    person_uic_hash: Set(visit.person_uic.clone()),
                    action: Set(action.clone()),
                    loan_amount_vnd: Set(loan),
                })
                .exec_without_returning(txn)
                .await?;
            }
        }
    }
    Ok(issued)
}

/// Inserts `rows` in one statement, skipping each whose `unique` column is already
/// taken, and answers the `answer` column of the rows it added.
async fn insert_new<C, A, T>(
    txn: &C,
    rows: impl IntoIterator<Item = A>,
    unique: <A::Entity as EntityTrait>::Column,
    answer: <A::Entity as EntityTrait>::Column,
) -> ApiResult<Vec<T>>
where
    C: ConnectionTrait,
    A: sea_orm::ActiveModelTrait,
    T: sea_orm::TryGetable,
{
    let insert = <A::Entity as EntityTrait>::insert_many(rows)
        .on_conflict(OnConflict::column(unique).do_nothing().to_owned())
        .into_query()
        .returning_col(answer)
        .to_owned();
    let backend = txn.get_database_backend();
    let mut added = Vec::new();
    for row in txn.query_all(backend.build(&insert)).await? {
        added.push(row.try_get("", sea_orm::IdenStatic::as_str(&answer))?);
    }
    Ok(added)
}

/// One referral a visit issues: the contact's position, the service, the contact's
/// UIC hash (as [`extract`] answers them).
pub(crate) type IssuedPair = (i32, String, String);

/// What every referral of one visit (or revision) shares when it is issued.
pub(crate) struct Issuing<'a> {
    pub(crate) submission_id: Uuid,
    pub(crate) issued_on: NaiveDate,
    pub(crate) issued_by: Uuid,
    pub(crate) org_unit: &'a org_units::Model,
    pub(crate) change_seq: i64,
    pub(crate) now: DateTime<Utc>,
}

impl Issuing<'_> {
    /// The referral `pair` becomes under `code`.
    fn model(&self, (position, service, uic_hash): &IssuedPair, code: String) -> referrals::Model {
        referrals::Model {
            id: Uuid::now_v7(),
            code,
            submission_id: self.submission_id,
            contact_position: *position,
            uic_hash: uic_hash.clone(),
            service: service.clone(),
            status: ReferralStatus::Issued.as_str().to_string(),
            issued_on: self.issued_on,
            issued_by: self.issued_by,
            org_unit_id: self.org_unit.id,
            org_path: self.org_unit.path.clone(),
            outcome: None,
            completed_on: None,
            completed_by_submission: None,
            change_seq: self.change_seq,
            created_at: self.now,
            updated_at: self.now,
        }
    }
}

/// Inserts these referrals under fresh random codes in one statement, drawing again
/// for the rare code already taken (up to 8 rounds). Answers the referrals as stored.
pub(crate) async fn insert_referrals<C: ConnectionTrait>(
    txn: &C,
    issuing: &Issuing<'_>,
    pairs: &[IssuedPair],
) -> ApiResult<Vec<referrals::Model>> {
    let mut stored = Vec::with_capacity(pairs.len());
    let mut pending: Vec<&IssuedPair> = pairs.iter().collect();
    for _ in 0..8 {
        if pending.is_empty() {
            return Ok(stored);
        }
        let tries: Vec<referrals::Model> = pending
            .iter()
            .map(|pair| issuing.model(pair, new_referral_code()))
            .collect();
        let added: Vec<Uuid> = insert_new(
            txn,
            tries
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
            referrals::Column::Code,
            referrals::Column::Id,
        )
        .await?;
        let mut again = Vec::new();
        for (pair, tried) in pending.into_iter().zip(tries) {
            if added.contains(&tried.id) {
                stored.push(tried);
            } else {
                again.push(pair);
            }
        }
        pending = again;
    }
    if pending.is_empty() {
        return Ok(stored);
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "could not draw unused referral codes in 8 tries"
    )))
}
