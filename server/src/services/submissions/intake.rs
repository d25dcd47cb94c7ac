//! Taking a submission in: the form and the caller's right to it, answer validation, the
//! place, UIC hashing, and one idempotent transaction per visit.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use mobile_schema::typed::KindAnswers;
use mobile_schema::FormDefinition;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    TransactionTrait,
};
use shared_models::{
    FieldError, PhotoStatusOut, ReferralOut, ReviewStatus, SubmissionEventOut, SubmissionIn,
    SubmissionOut, SubmissionSource, SubmissionSummaryOut,
};
use uuid::Uuid;

use super::extraction::{extract, insert_referrals, Issuing, Revision};
use super::reading::detail;
use super::{hmac_hex, now_micros, to_micros, uic_hash, MAX_CLOCK_AHEAD};
use crate::auth::Principal;
use crate::db::entities::{
    forms, hotspots, odk_files, odk_instances, org_units, referrals, submission_events, submissions,
};
use crate::db::scope::Scope;
use crate::error::{ApiError, ApiResult};
use crate::services::forms as form_service;
use crate::services::sync;
use crate::state::AppState;

/// Where a submission came from, and what ODK Collect adds to it.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// The JSON API.
    App,
    /// ODK Collect: the instance is recorded with the submission, in its transaction.
    OdkCollect(&'a OdkReceipt),
}

impl Origin<'_> {
    pub fn source(self) -> SubmissionSource {
        match self {
            Origin::App => SubmissionSource::App,
            Origin::OdkCollect(_) => SubmissionSource::OdkCollect,
        }
    }
}

/// An ODK Collect instance as received: its id, the phone, the keyed digest of its XML
/// and the digest each attachment file name stands for in the answers.
#[derive(Debug, Clone)]
pub struct OdkReceipt {
    pub instance_id: Uuid,
    pub device_id: Uuid,
    pub xml_fingerprint: String,
    pub files: Vec<(String, String)>,
}

/// Records an ODK Collect instance as revision `revision` of `submission_id`.
pub(crate) async fn record_odk<C: ConnectionTrait>(
    txn: &C,
    origin: Origin<'_>,
    submission_id: Uuid,
    revision: i32,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let Origin::OdkCollect(receipt) = origin else {
        return Ok(());
    };
    odk_instances::Entity::insert(odk_instances::ActiveModel {
        instance_id: Set(receipt.instance_id),
        submission_id: Set(submission_id),
        revision: Set(revision),
        device_id: Set(receipt.device_id),
        xml_fingerprint: Set(receipt.xml_fingerprint.clone()),
        received_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    if !receipt.files.is_empty() {
        odk_files::Entity::insert_many(receipt.files.iter().map(|(filename, sha256)| {
            odk_files::ActiveModel {
                instance_id: Set(receipt.instance_id),
                filename: Set(filename.clone()),
                submission_id: Set(submission_id),
                sha256: Set(sha256.clone()),
            }
        }))
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

/// Where a submission happened, resolved from its hotspot or named unit.
pub(crate) struct Place {
    pub org_unit: org_units::Model,
    pub hotspot_id: Option<Uuid>,
}

async fn resolve_place<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    input: &SubmissionIn,
    faults: &mut Vec<FieldError>,
) -> ApiResult<Option<Place>> {
    let own_area = Scope::Subtree(actor.org_unit_path.clone());
    let hotspot = match &input.hotspot_code {
        Some(code) => {
            let found = hotspots::Entity::find()
                .filter(hotspots::Column::Code.eq(code.as_str()))
                .one(db)
                .await?
                .filter(|h| own_area.contains_path(&h.org_path));
            match found {
                None => {
                    faults.push(FieldError::new(
                        "hotspot_code",
                        "unknown_hotspot",
                        "no hotspot with this code in your area",
                    ));
                    return Ok(None);
                }
                Some(h) if !h.active => {
                    faults.push(FieldError::new(
                        "hotspot_code",
                        "inactive_hotspot",
                        "this hotspot is no longer active",
                    ));
                    return Ok(None);
                }
                Some(h) => Some(h),
            }
        }
        None => None,
    };
    let unit_id = match (&hotspot, input.org_unit_id) {
        (Some(h), Some(unit)) if h.org_unit_id != unit => {
            faults.push(FieldError::new(
                "org_unit_id",
                "place_mismatch",
                "the hotspot lies in another unit; send one of the two",
            ));
            return Ok(None);
        }
        (Some(h), _) => h.org_unit_id,
        (None, Some(unit)) => unit,
        (None, None) => {
            faults.push(FieldError::new(
                "hotspot_code",
                "required",
                "name the hotspot (`hotspot_code`) or the ward (`org_unit_id`) where it happened",
            ));
            return Ok(None);
        }
    };
    let unit = org_units::Entity::find_by_id(unit_id)
        .one(db)
        .await?
        .filter(|u| own_area.contains_path(&u.path));
    match unit {
        Some(org_unit) => Ok(Some(Place {
            org_unit,
            hotspot_id: hotspot.map(|h| h.id),
        })),
        None => {
            faults.push(FieldError::new(
                "org_unit_id",
                "outside_your_area",
                "no such unit in your area",
            ));
            Ok(None)
        }
    }
}

/// Reads validated answers into their kind's typed record. Answers that validated but
/// do not fit mean a form version was published that the kind check would now refuse
/// (a key extraction needs made optional, or a number past what the record holds):
/// a 422 naming the answer, so the worker can fill it in, rather than a 500 that a
/// phone would retry forever.
pub(crate) fn typed_answers(
    def: &FormDefinition,
    answers: &serde_json::Value,
) -> ApiResult<KindAnswers> {
    KindAnswers::read(def.kind, answers).map_err(|unfit| {
        tracing::warn!(
            form.id = %def.form_id,
            form.version = def.version,
            answer.path = %unfit.path,
            "validated answers do not fit their kind's record: {}",
            unfit.message
        );
        let field = if unfit.path.is_empty() {
            "answers".to_owned()
        } else {
            format!("answers.{}", unfit.path)
        };
        ApiError::invalid(
            field,
            "unfit_answer",
            format!(
                "this answer validated but a {} record cannot be made from it: {}",
                def.kind, unfit.message
            ),
        )
    })
}

/// The keyed digest of a submission as sent: identical retries have the same one.
/// Keyed, because the body carries raw client codes.
pub(crate) fn fingerprint_of(state: &AppState, input: &SubmissionIn) -> ApiResult<String> {
    let as_sent = serde_json::to_value(input).map_err(|e| ApiError::Internal(e.into()))?;
    hmac_hex(
        state.config.uic_hmac_key.expose(),
        format!("submission:v1:{}", form_service::canonical_json(&as_sent)).as_bytes(),
    )
}

/// A submission checked and ready to write: its form, place, hashed answers.
pub(crate) struct Prepared {
    pub def: Arc<FormDefinition>,
    pub place: Place,
    pub answers: serde_json::Value,
    pub occurred_on: NaiveDate,
    pub photos: Vec<String>,
    /// The answers read into their kind's types, for extraction.
    pub typed: KindAnswers,
}

/// Checks a submission as the phone sent it (form version, role, answers, place,
/// referral codes) and hashes its client codes; every fault at once.
pub(crate) async fn prepare(
    state: &AppState,
    actor: &Principal,
    input: &SubmissionIn,
) -> ApiResult<Prepared> {
    let db = &state.reader;
    let def = form_definition(state, input).await?;
    if !form_service::role_may_submit(&def.roles, actor.role) {
        return Err(ApiError::Forbidden(format!(
            "the role {} may not submit {}",
            actor.role.as_str(),
            def.form_id
        )));
    }

    let mut faults = Vec::new();
    if input.completed_at < input.started_at {
        faults.push(FieldError::new(
            "completed_at",
            "before_started_at",
            "the form cannot be finished before it was started",
        ));
    }
    if input.completed_at > Utc::now() + MAX_CLOCK_AHEAD {
        faults.push(FieldError::new(
            "completed_at",
            "in_the_future",
            "more than a day ahead of the server's clock; check the phone's date",
        ));
    }
    let max_faults = state.config.max_faults;
    let mut omitted = 0;
    if let Err(list) = def.validate_answers_within(&input.answers, max_faults) {
        faults.extend(form_service::to_field_errors("answers", list.faults));
        omitted = list.omitted;
    }
    let place = resolve_place(db, actor, input, &mut faults).await?;
    let Some(place) = place.filter(|_| faults.is_empty()) else {
        return Err(ApiError::validation_within(faults, omitted, max_faults));
    };
    let answers = hash_uics(
        state.config.uic_hmac_key.expose(),
        &def,
        input.answers.clone(),
    )?;
    let typed = typed_answers(&def, &answers)?;
    if let KindAnswers::ReferralHandoff(handoff) = &typed {
        // Only referrals issued in the author's own area: codes elsewhere do not exist
        // for them (and cannot be probed).
        let known = referrals::Entity::find()
            .filter(referrals::Column::Code.eq(handoff.referral_code.as_str()))
            .filter(referrals::Column::OrgPath.starts_with(actor.org_unit_path.as_str()))
            .one(db)
            .await?;
        if known.is_none() {
            return Err(ApiError::validation_within(
                vec![FieldError::new(
                    "answers.referral_code",
                    "unknown_referral",
                    "no referral with this code was issued in your area",
                )],
                0,
                max_faults,
            ));
        }
    }
    let occurred_on = typed.occurred_on();
    let photos = def.photo_digests(&answers);
    Ok(Prepared {
        def,
        place,
        answers,
        occurred_on,
        photos,
        typed,
    })
}

/// Submits a finished form. Answers `true` when it was stored now, `false` when the
/// same submission was already stored (an identical retry).
pub async fn submit(
    state: &AppState,
    actor: &Principal,
    input: SubmissionIn,
    origin: Origin<'_>,
) -> ApiResult<(SubmissionOut, bool)> {
    use crate::metrics::SubmissionOutcome as Outcome;
    let form_id = input.form_id.clone();
    let result = store(state, actor, input, origin).await;
    let (outcome, form) = match &result {
        Ok((out, true)) => (Outcome::Accepted, out.summary.form_id.clone()),
        Ok((out, false)) => (Outcome::Replayed, out.summary.form_id.clone()),
        Err(e) => {
            // Only a published form's id becomes a label: a client may send any string.
            let published = forms::Entity::find()
                .filter(forms::Column::FormId.eq(form_id.as_str()))
                .one(&state.db)
                .await;
            let form = match published {
                Ok(Some(_)) => form_id,
                _ => "unknown".to_string(),
            };
            if e.status().is_server_error() {
                (Outcome::Failed, form)
            } else {
                (Outcome::Refused, form)
            }
        }
    };
    crate::metrics::submission(&form, origin.source(), outcome);
    result
}

async fn store(
    state: &AppState,
    actor: &Principal,
    input: SubmissionIn,
    origin: Origin<'_>,
) -> ApiResult<(SubmissionOut, bool)> {
    let db = &state.db;
    let fingerprint = fingerprint_of(state, &input)?;
    // A new visit is the common case: no read first, the insert below finds a stored
    // one. An answer the server would refuse now (a hotspot closed since, a form
    // withdrawn) may still be a retry of a visit stored before: that one is replayed.
    let prepared = match prepare(state, actor, &input).await {
        Ok(prepared) => prepared,
        Err(refused) => {
            return match submissions::Entity::find_by_id(input.id)
                .one(&state.reader)
                .await?
            {
                Some(existing) => replay(db, actor, existing, &fingerprint).await,
                None => Err(refused),
            };
        }
    };
    let Prepared {
        def,
        place,
        answers,
        occurred_on,
        photos,
        typed,
    } = &prepared;

    let txn = db.begin().await?;
    // The author's feed number first: every row this visit writes carries it, so
    // nothing is renumbered before commit (see `sync::take`).
    let seq = sync::take(&txn, actor.user_id).await?;
    let now = now_micros();
    let row = submissions::Model {
        id: input.id,
        form_id: def.form_id.clone(),
        form_version: def.version as i32,
        kind: def.kind.as_str().to_string(),
        author_id: actor.user_id,
        org_unit_id: place.org_unit.id,
        org_path: place.org_unit.path.clone(),
        hotspot_id: place.hotspot_id,
        status: ReviewStatus::Submitted.as_str().to_string(),
        revision: 1,
        fingerprint: fingerprint.clone(),
        answers: answers.clone(),
        photo_digests: serde_json::json!(photos),
        occurred_on: *occurred_on,
        started_at: to_micros(input.started_at),
        completed_at: to_micros(input.completed_at),
        received_at: now,
        updated_at: now,
        change_seq: seq,
        source: origin.source().as_str().to_string(),
    };
    let inserted = submissions::Entity::insert(row.clone().into_active_model())
        .on_conflict(
            OnConflict::column(submissions::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    if inserted == 0 {
        // Stored before, or by a concurrent request that won the race: a retry.
        txn.rollback().await?;
        let existing = submissions::Entity::find_by_id(input.id)
            .one(db)
            .await?
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("submission vanished after a conflict"))
            })?;
        return replay(db, actor, existing, &fingerprint).await;
    }
    let event = record_event(
        &txn,
        input.id,
        1,
        actor.user_id,
        None,
        ReviewStatus::Submitted,
        None,
        now,
    )
    .await?;
    let issued = extract(&txn, input.id, typed, Revision::First).await?;
    let issuing = Issuing {
        submission_id: input.id,
        issued_on: *occurred_on,
        issued_by: actor.user_id,
        org_unit: &place.org_unit,
        change_seq: seq,
        now,
    };
    let mut referrals = insert_referrals(&txn, &issuing, &issued).await?;
    record_odk(&txn, origin, input.id, 1, now).await?;
    txn.commit().await?;
    // The answer is what was written: no photo can be stored before its submission is.
    referrals
        .sort_by(|a, b| (a.contact_position, &a.service).cmp(&(b.contact_position, &b.service)));
    let out = SubmissionOut {
        summary: SubmissionSummaryOut::try_from(&row)?,
        photos: photos
            .iter()
            .map(|sha256| PhotoStatusOut {
                sha256: sha256.clone(),
                present: false,
            })
            .collect(),
        answers: row.answers,
        referrals: referrals
            .into_iter()
            .map(ReferralOut::try_from)
            .collect::<ApiResult<_>>()?,
        events: vec![SubmissionEventOut::try_from(event)?],
    };
    tracing::info!(
        submission.id = %input.id,
        form.id = %def.form_id,
        form.version = def.version,
        "submission stored"
    );
    Ok((out, true))
}

/// Records one move of a submission through review; answers the event as written.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_event<C: ConnectionTrait>(
    txn: &C,
    submission_id: Uuid,
    revision: i32,
    actor_id: Uuid,
    from: Option<ReviewStatus>,
    to: ReviewStatus,
    comment: Option<String>,
    at: DateTime<Utc>,
) -> ApiResult<submission_events::Model> {
    let event = submission_events::Model {
        id: Uuid::now_v7(),
        submission_id,
        revision,
        actor_id,
        from_status: from.map(|s| s.as_str().to_string()),
        to_status: to.as_str().to_string(),
        comment,
        at,
    };
    submission_events::Entity::insert(event.clone().into_active_model())
        .exec_without_returning(txn)
        .await?;
    Ok(event)
}

/// The definition of the form version a submission names (parsed once per process).
async fn form_definition(state: &AppState, input: &SubmissionIn) -> ApiResult<Arc<FormDefinition>> {
    if let Some(def) =
        form_service::published_definition(state, &input.form_id, input.form_version).await?
    {
        return Ok(def);
    }
    let any_version = forms::Entity::find()
        .filter(forms::Column::FormId.eq(input.form_id.as_str()))
        .one(&state.db)
        .await?;
    Err(match any_version {
        None => ApiError::invalid(
            "form_id",
            "unknown_form",
            "no form with this id is published",
        ),
        Some(_) => ApiError::invalid(
            "form_version",
            "unknown_form_version",
            "this version of the form is not published",
        ),
    })
}

/// An id seen before: the same author with the same body gets the stored record;
/// anything else is a conflict (and tells nothing about the stored one).
async fn replay<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    existing: submissions::Model,
    fingerprint: &str,
) -> ApiResult<(SubmissionOut, bool)> {
    if existing.author_id != actor.user_id || existing.fingerprint != fingerprint {
        return Err(ApiError::conflict_on(
            "id",
            "id_conflict",
            "a different submission with this id is already stored; make a new id for a new submission",
        ));
    }
    Ok((detail(db, existing).await?, false))
}

/// Replaces every UIC in the answers by its keyed hash.
fn hash_uics(
    key: &[u8],
    def: &FormDefinition,
    mut answers: serde_json::Value,
) -> ApiResult<serde_json::Value> {
    for path in def.uic_paths(&answers) {
        let pointer = mobile_schema::json_pointer(&path);
        let Some(slot) = answers.pointer_mut(&pointer) else {
            continue;
        };
        let raw = slot.as_str().unwrap_or_default();
        let normalized = mobile_schema::normalize_uic(raw).ok_or_else(|| {
            ApiError::invalid(
                format!("answers.{path}"),
                "bad_uic",
                "not a valid client code",
            )
        })?;
        *slot = serde_json::Value::String(uic_hash(key, &normalized)?);
    }
    Ok(answers)
}
