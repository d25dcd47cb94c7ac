//! Submission intake and reading. A submission arrives with the id the phone made, so a
//! retry over a flaky link is answered from what is stored; the submission and every
//! record extracted from it (contacts, distributions, referrals, handoffs, sessions,
//! support actions) commit in one transaction. Raw UICs never reach the database: they
//! are normalised and replaced by their keyed hash before anything is written.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use mobile_schema::typed::KindAnswers;
use mobile_schema::FormDefinition;
use rand::Rng;
use sea_orm::sea_query::{Condition, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, TransactionTrait,
};
use sha2::Sha256;
use shared_models::{
    FieldError, Page, PhotoStatusOut, ReferralOut, ReferralStatus, ReviewStatus, Role,
    SubmissionEventOut, SubmissionFilter, SubmissionIn, SubmissionOut, SubmissionSource,
    SubmissionSummaryOut,
};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{
    clients, commodity_distributions, contacts, forms, group_sessions, handoffs, hotspots,
    odk_files, odk_instances, org_units, referrals, submission_events, submissions,
    support_actions,
};
use crate::db::scope::Scope;
use crate::error::{ApiError, ApiResult};
use crate::services::sync;
use crate::services::{audit, forms as form_service};
use crate::state::AppState;

/// Letters and digits a person cannot misread on a paper slip (no I, O, 0, 1).
pub const REFERRAL_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Device clocks drift; a completion time further ahead than this is refused.
const MAX_CLOCK_AHEAD: Duration = Duration::hours(24);

/// A fresh referral code, `XXXX-XXXX` from [`REFERRAL_ALPHABET`]: random, never derived
/// from the person (40 bits, so collisions are rare and retried).
pub fn new_referral_code() -> String {
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let idx = rng.gen_range(0..REFERRAL_ALPHABET.len());
        code.push(char::from(REFERRAL_ALPHABET[idx]));
    }
    code
}

fn hmac_hex(key: &[u8], data: &[u8]) -> ApiResult<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("HMAC key: {e}")))?;
    mac.update(data);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// The keyed hash of a normalised UIC: what the database keeps instead of the code.
pub fn uic_hash(key: &[u8], normalized: &str) -> ApiResult<String> {
    hmac_hex(key, format!("uic:v1:{normalized}").as_bytes())
}

/// The time now, to the microsecond: what both databases keep, so a cursor made from a
/// stored time compares equal to it (SQLite would otherwise keep nanoseconds as text).
pub fn now_micros() -> DateTime<Utc> {
    to_micros(Utc::now())
}

/// A time to the microsecond, as PostgreSQL keeps it (and, so that both databases hold
/// the same, as SQLite is given it).
pub fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::DurationRound;
    at.duration_trunc(Duration::microseconds(1)).unwrap_or(at)
}

/// Parses a stored status.
pub fn status_of(s: &str) -> ApiResult<ReviewStatus> {
    ReviewStatus::parse(s)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unknown review status {s:?}")))
}

/// The wire shape of a review event.
pub fn event_out(e: submission_events::Model) -> ApiResult<SubmissionEventOut> {
    Ok(SubmissionEventOut {
        at: e.at,
        actor_id: e.actor_id,
        from_status: e.from_status.as_deref().map(status_of).transpose()?,
        to_status: status_of(&e.to_status)?,
        revision: e.revision.max(0) as u32,
        comment: e.comment,
    })
}

/// The wire shape of a referral.
pub fn referral_out(r: referrals::Model) -> ApiResult<ReferralOut> {
    Ok(ReferralOut {
        status: ReferralStatus::parse(&r.status).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("unknown referral status {:?}", r.status))
        })?,
        code: r.code,
        service: r.service,
        issued_on: r.issued_on,
        submission_id: r.submission_id,
        contact_index: r.contact_position.max(0) as u32,
        outcome: r.outcome,
        completed_on: r.completed_on,
        updated_at: r.updated_at,
    })
}

fn summary_out(m: &submissions::Model) -> ApiResult<SubmissionSummaryOut> {
    Ok(SubmissionSummaryOut {
        id: m.id,
        form_id: m.form_id.clone(),
        form_version: m.form_version.max(0) as u32,
        kind: m.kind.clone(),
        status: status_of(&m.status)?,
        revision: m.revision.max(0) as u32,
        author_id: m.author_id,
        org_unit_id: m.org_unit_id,
        hotspot_id: m.hotspot_id,
        occurred_on: m.occurred_on,
        started_at: m.started_at,
        completed_at: m.completed_at,
        received_at: m.received_at,
        updated_at: m.updated_at,
        source: SubmissionSource::parse(&m.source).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("unknown submission source {:?}", m.source))
        })?,
    })
}

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
        .map(referral_out)
        .collect::<ApiResult<Vec<_>>>()?;
    let events = submission_events::Entity::find()
        .filter(submission_events::Column::SubmissionId.eq(m.id))
        .order_by_asc(submission_events::Column::At)
        .order_by_asc(submission_events::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(event_out)
        .collect::<ApiResult<Vec<_>>>()?;
    let photos = photo_status(db, &m).await?;
    Ok(SubmissionOut {
        summary: summary_out(&m)?,
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
    URL_SAFE_NO_PAD.encode(format!(
        "{prefix}{}:{}",
        m.received_at.timestamp_micros(),
        m.id
    ))
}

fn decode_cursor_with(prefix: &str, cursor: &str) -> ApiResult<(DateTime<Utc>, Uuid)> {
    let bad = || ApiError::bad_param("cursor", "invalid", "not a cursor this server issued");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
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
    let limit = crate::extract::page_limit(filter.limit)?;
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
    if let Some(cursor) = filter.cursor.as_deref().filter(|c| !c.is_empty()) {
        let (at, id) = decode_cursor_with(LIST_CURSOR_PREFIX, cursor)?;
        query = query.filter(
            Condition::any()
                .add(submissions::Column::ReceivedAt.lt(at))
                .add(
                    Condition::all()
                        .add(submissions::Column::ReceivedAt.eq(at))
                        .add(submissions::Column::Id.lt(id)),
                ),
        );
    }
    let mut rows = query
        .order_by_desc(submissions::Column::ReceivedAt)
        .order_by_desc(submissions::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last()
            .map(|m| encode_cursor_with(LIST_CURSOR_PREFIX, m))
    } else {
        None
    };
    Ok(Page {
        items: rows
            .iter()
            .map(summary_out)
            .collect::<ApiResult<Vec<_>>>()?,
        next_cursor,
    })
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
    let limit = crate::extract::page_limit(limit)?;
    let mut query = submissions::Entity::find()
        .filter(narrowed(&state.db, actor, narrowing).await?)
        .filter(submissions::Column::Status.eq(status.as_str()));
    if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
        let (at, id) = decode_cursor_with(QUEUE_CURSOR_PREFIX, cursor)?;
        query = query.filter(
            Condition::any()
                .add(submissions::Column::ReceivedAt.gt(at))
                .add(
                    Condition::all()
                        .add(submissions::Column::ReceivedAt.eq(at))
                        .add(submissions::Column::Id.gt(id)),
                ),
        );
    }
    let mut rows = query
        .order_by_asc(submissions::Column::ReceivedAt)
        .order_by_asc(submissions::Column::Id)
        .limit(limit + 1)
        .all(&state.db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last()
            .map(|m| encode_cursor_with(QUEUE_CURSOR_PREFIX, m))
    } else {
        None
    };
    Ok(Page {
        items: rows
            .iter()
            .map(summary_out)
            .collect::<ApiResult<Vec<_>>>()?,
        next_cursor,
    })
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
        summary: summary_out(&row)?,
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
            .map(referral_out)
            .collect::<ApiResult<_>>()?,
        events: vec![event_out(event)?],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referral_codes_use_the_unambiguous_alphabet() {
        for _ in 0..200 {
            let code = new_referral_code();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert!(code
                .chars()
                .filter(|c| *c != '-')
                .all(|c| REFERRAL_ALPHABET.contains(&(c as u8))));
        }
    }

    #[test]
    fn uic_hash_is_keyed() {
        let a = uic_hash(b"key-one-0123456789abcdef01234567", "NGTHDA90F").expect("hash");
        let b = uic_hash(b"key-two-0123456789abcdef01234567", "NGTHDA90F").expect("hash");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }
}
