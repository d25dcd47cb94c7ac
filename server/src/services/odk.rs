//! ODK Collect's submissions, turned into the same intake as the JSON API's.
//!
//! A Collect submission is the instance XML plus one file per photo. The XML is parsed
//! by the form's own definition into the same answers JSON a phone would send
//! (`mobile_schema::parse_instance`); each photo file name in it is replaced by the
//! SHA-256 of the file as received, the place (`dh_place`) becomes the hotspot or unit,
//! and the result goes through the one intake (`submissions::submit`, or
//! `review::revise` for an edit naming a `deprecatedID`): one validation, one UIC
//! hashing, one extraction, one review queue.
//!
//! Idempotency is by `instanceID` (the submission's id is its UUID) and the keyed
//! digest of the XML: an identical resend answers as the first did and writes nothing
//! but the photos still missing; other XML under the same instanceID is refused.
//!
//! Collect may split a large submission over several POSTs, each with the same XML and
//! some of the files (`*isIncomplete*`). The first POST stores the submission; a file
//! it does not carry yet is named in the answers by a stand-in digest derived from the
//! instance and the file name (no image hashes to it), recorded in `odk_files`, shows
//! as missing, and blocks approval until a later POST brings the file, which is then
//! stored under that name. Every check runs before anything is written.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::Utc;
use hmac::{Hmac, Mac};
use mobile_schema::{FormDefinition, XformInstance};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use shared_models::{FieldError, SubmissionIn, SubmissionOut};
use uuid::Uuid;

use crate::db::entities::{odk_files, odk_instances};
use crate::error::{ApiError, ApiResult};
use crate::services::devices::EnrolledDevice;
use crate::services::photos::{self, Spooled};
use crate::services::submissions::{self, OdkReceipt, Origin};
use crate::services::{forms as form_service, review};
use crate::state::AppState;

/// One file of a Collect submission, spooled and hashed.
pub struct ReceivedFile {
    /// The part's file name, as the instance XML names it.
    pub filename: String,
    pub spooled: Spooled,
}

/// What one POST to `…/submission` carried.
pub struct OdkUpload {
    pub xml: Bytes,
    /// Collect's `*isIncomplete*=yes`: more POSTs with the same XML follow.
    pub incomplete: bool,
    pub files: Vec<ReceivedFile>,
}

/// What a POST became.
#[derive(Debug)]
pub struct OdkOutcome {
    pub submission: SubmissionOut,
    /// The form's Vietnamese title, for the message Collect shows.
    pub form_title: String,
    /// `false` for an identical resend (nothing but missing photos written).
    pub created: bool,
    /// Photos the answers name, and how many of them are stored now.
    pub photos_named: usize,
    pub photos_stored: usize,
}

/// The stand-in digest of a file Collect has not sent yet: derived from the instance
/// and the file name, so every POST of the instance names it alike.
pub fn pending_digest(instance_id: Uuid, filename: &str) -> String {
    hex::encode(Sha256::digest(
        format!("donghanh:odk-pending:{instance_id}:{filename}").as_bytes(),
    ))
}

/// The keyed digest of an instance's XML (keyed: it carries raw client codes).
fn xml_fingerprint(state: &AppState, xml: &[u8]) -> ApiResult<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(state.config.uic_hmac_key.expose())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("HMAC key: {e}")))?;
    mac.update(b"odk-instance:v1:");
    mac.update(xml);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// The UUID of an OpenRosa instance id (`uuid:…`, or a bare UUID).
fn instance_uuid(field: &str, raw: &str) -> ApiResult<Uuid> {
    let bare = raw.trim().strip_prefix("uuid:").unwrap_or(raw.trim());
    Uuid::parse_str(bare).map_err(|_| {
        ApiError::invalid(
            field,
            "bad_instance_id",
            "expected `uuid:` followed by a UUID",
        )
    })
}

fn xml_text(xml: &Bytes) -> ApiResult<&str> {
    std::str::from_utf8(xml).map_err(|_| {
        ApiError::invalid(
            "xml_submission_file",
            "malformed",
            "the instance XML is not UTF-8",
        )
    })
}

fn to_faults(faults: Vec<mobile_schema::Fault>) -> ApiError {
    ApiError::validation(form_service::to_field_errors("answers", faults))
}

/// Receives one POST of a Collect submission from an enrolled phone.
pub async fn receive(
    state: &AppState,
    device: &EnrolledDevice,
    upload: OdkUpload,
) -> ApiResult<OdkOutcome> {
    let actor = &device.principal;
    let xml = xml_text(&upload.xml)?;
    let header = mobile_schema::instance_header(xml).map_err(|f| to_faults(vec![f]))?;
    let instance_id = instance_uuid("meta.instanceID", &header.instance_id)?;
    let fingerprint = xml_fingerprint(state, &upload.xml)?;
    let files = unique_files(upload.files)?;

    if let Some(seen) = odk_instances::Entity::find_by_id(instance_id)
        .one(&state.db)
        .await?
    {
        return resend(state, device, seen, &fingerprint, files).await;
    }

    let row = form_service::get_version(&state.db, &header.form_id, Some(header.version))
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("form version"),
            other => other,
        })?;
    let def = form_service::definition_of(&row)?;
    if !form_service::role_may_submit(&def.roles, actor.role) {
        return Err(ApiError::Forbidden(format!(
            "the role {} may not submit {}",
            actor.role.as_str(),
            def.form_id
        )));
    }
    let instance = mobile_schema::parse_instance(&def, xml).map_err(to_faults)?;
    let (answers, named) = swap_files_for_digests(&def, &instance, instance_id, &files)?;
    let (hotspot_code, org_unit_id) = place_of(instance.place.as_deref())?;
    let now = Utc::now();
    let started_at = instance.started_at.map_or(now, |t| t.with_timezone(&Utc));
    let completed_at = instance.completed_at.map_or(now, |t| t.with_timezone(&Utc));

    let receipt = OdkReceipt {
        instance_id,
        device_id: device.device.id,
        xml_fingerprint: fingerprint,
        files: named.iter().map(|(f, d)| (f.clone(), d.clone())).collect(),
    };
    // An edit is a new revision of the visit its deprecatedID names.
    let edit_of = match &header.deprecated_id {
        Some(deprecated) => Some(edited_submission(state, deprecated).await?),
        None => None,
    };
    let submission_id = edit_of.unwrap_or(instance_id);
    let input = SubmissionIn {
        id: submission_id,
        form_id: def.form_id.clone(),
        form_version: def.version,
        started_at,
        completed_at,
        hotspot_code,
        org_unit_id,
        answers,
    };
    let origin = Origin::OdkCollect(&receipt);
    let (out, created) = match edit_of {
        None => submissions::submit(state, actor, input, origin).await?,
        Some(target) => {
            let out = review::revise(state, actor, target, input, origin)
                .await
                .map_err(edit_refused)?;
            (out, true)
        }
    };
    let stored = store_files(state, device, submission_id, &named, files).await?;
    tracing::info!(
        submission.id = %submission_id,
        odk.incomplete = upload.incomplete,
        photos.named = named.len(),
        photos.stored = stored,
        "ODK Collect submission received"
    );
    Ok(OdkOutcome {
        submission: out,
        form_title: def.title.vi.clone(),
        created,
        photos_named: named.len(),
        photos_stored: stored,
    })
}

/// An instance seen before: the same XML from the same worker is a resend (the photos
/// it brings that are still missing are stored); anything else is a conflict.
async fn resend(
    state: &AppState,
    device: &EnrolledDevice,
    seen: odk_instances::Model,
    fingerprint: &str,
    files: BTreeMap<String, Spooled>,
) -> ApiResult<OdkOutcome> {
    let actor = &device.principal;
    let stored = submissions::scoped(&state.db, actor, seen.submission_id).await;
    let submission = match stored {
        Ok(s) if s.author_id == actor.user_id && seen.xml_fingerprint == fingerprint => s,
        Ok(_) | Err(ApiError::NotFound(_)) => {
            return Err(ApiError::conflict_on(
                "meta.instanceID",
                "instance_conflict",
                "another submission with this instanceID is already stored; an identical resend must carry identical XML",
            ))
        }
        Err(e) => return Err(e),
    };
    let named: BTreeMap<String, String> = odk_files::Entity::find()
        .filter(odk_files::Column::InstanceId.eq(seen.instance_id))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|f| (f.filename, f.sha256))
        .collect();
    if let Some(stray) = files.keys().find(|f| !named.contains_key(*f)) {
        return Err(unnamed_file(stray));
    }
    let stored = store_files(state, device, submission.id, &named, files).await?;
    let def = form_service::definition_of(
        &form_service::get_version(
            &state.db,
            &submission.form_id,
            Some(submission.form_version as u32),
        )
        .await?,
    )?;
    Ok(OdkOutcome {
        submission: submissions::detail(&state.db, submission).await?,
        form_title: def.title.vi.clone(),
        created: false,
        photos_named: named.len(),
        photos_stored: stored,
    })
}

fn unnamed_file(filename: &str) -> ApiError {
    ApiError::invalid(
        filename,
        "unnamed_attachment",
        format!("the instance XML does not name the attached file `{filename}`"),
    )
}

/// The files by name; a name that is not a plain file name, or that comes twice, is refused.
fn unique_files(files: Vec<ReceivedFile>) -> ApiResult<BTreeMap<String, Spooled>> {
    let mut by_name = BTreeMap::new();
    for file in files {
        let name = file.filename;
        if name.is_empty()
            || name.len() > 255
            || name.contains(['/', '\\', '\0'])
            || name == "."
            || name == ".."
        {
            return Err(ApiError::invalid(
                "attachment",
                "bad_filename",
                "an attachment's name must be a plain file name (no folders)",
            ));
        }
        if by_name.insert(name.clone(), file.spooled).is_some() {
            return Err(ApiError::invalid(
                name,
                "duplicate_attachment",
                "the same file name is attached twice",
            ));
        }
    }
    Ok(by_name)
}

/// Replaces each photo file name in the answers by the digest it stands for: the file's
/// own SHA-256 when this POST carries it, else the stand-in digest. Answers the answers
/// and the file-name → digest map; a carried file the answers do not name is refused.
fn swap_files_for_digests(
    def: &FormDefinition,
    instance: &XformInstance,
    instance_id: Uuid,
    files: &BTreeMap<String, Spooled>,
) -> ApiResult<(serde_json::Value, BTreeMap<String, String>)> {
    let mut answers = instance.answers.clone();
    let mut named = BTreeMap::new();
    let mut faults = Vec::new();
    for path in def.photo_paths(&instance.answers) {
        let pointer = mobile_schema::json_pointer(&path);
        let Some(slot) = answers.pointer_mut(&pointer) else {
            continue;
        };
        let Some(filename) = slot.as_str().map(str::to_string) else {
            continue;
        };
        if filename.contains(['/', '\\']) {
            faults.push(FieldError::new(
                format!("answers.{path}"),
                "bad_filename",
                "a photo answer must be a plain file name",
            ));
            continue;
        }
        let digest = files
            .get(&filename)
            .map(|f| f.sha256.clone())
            .unwrap_or_else(|| pending_digest(instance_id, &filename));
        *slot = serde_json::Value::String(digest.clone());
        named.insert(filename, digest);
    }
    if !faults.is_empty() {
        return Err(ApiError::validation(faults));
    }
    if let Some(stray) = files.keys().find(|f| !named.contains_key(*f)) {
        return Err(unnamed_file(stray));
    }
    Ok((answers, named))
}

/// `dh_place`: `h:{hotspot code}` or `u:{org unit id}` (the choices `places.csv` lists).
fn place_of(place: Option<&str>) -> ApiResult<(Option<String>, Option<Uuid>)> {
    let bad = || {
        ApiError::invalid(
            mobile_schema::PLACE_FIELD,
            "bad_place",
            "not one of the places the form offered",
        )
    };
    match place.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok((None, None)),
        Some(p) => {
            if let Some(code) = p
                .strip_prefix("h:")
                .filter(|c| !c.is_empty() && c.len() <= 32)
            {
                Ok((Some(code.to_string()), None))
            } else if let Some(id) = p.strip_prefix("u:") {
                Ok((None, Some(Uuid::parse_str(id).map_err(|_| bad())?)))
            } else {
                Err(bad())
            }
        }
    }
}

/// The submission a `deprecatedID` edits: the instance it names was stored as (an
/// earlier edit's instance maps to the same submission), or the submission of that id.
async fn edited_submission(state: &AppState, deprecated: &str) -> ApiResult<Uuid> {
    let old = instance_uuid("meta.deprecatedID", deprecated)?;
    Ok(odk_instances::Entity::find_by_id(old)
        .one(&state.db)
        .await?
        .map_or(old, |i| i.submission_id))
}

/// An edit that cannot become a new revision (no such visit of this worker, or not sent
/// back for changes) is a conflict; faults in its content stay faults.
fn edit_refused(e: ApiError) -> ApiError {
    match e {
        ApiError::NotFound(_) | ApiError::Forbidden(_) | ApiError::Conflict { .. } => {
            ApiError::conflict_on(
                "meta.deprecatedID",
                "edit_not_allowed",
                "an edit is accepted only for your own visit that a supervisor sent back for changes",
            )
        }
        other => other,
    }
}

/// Stores the files the answers name and that are not stored yet; answers how many of
/// the named photos are stored now.
async fn store_files(
    state: &AppState,
    device: &EnrolledDevice,
    submission_id: Uuid,
    named: &BTreeMap<String, String>,
    files: BTreeMap<String, Spooled>,
) -> ApiResult<usize> {
    let mut present: BTreeSet<String> = photos::stored_digests(&state.db, submission_id)
        .await?
        .into_iter()
        .collect();
    for (filename, spooled) in files {
        let Some(name) = named.get(&filename) else {
            continue;
        };
        if present.contains(name) {
            crate::metrics::photo_deduplicated();
            continue;
        }
        photos::store_spooled(
            state,
            submission_id,
            name,
            spooled,
            device.principal.user_id,
        )
        .await?;
        present.insert(name.clone());
    }
    Ok(named.values().filter(|d| present.contains(*d)).count())
}

/// A form version's XForm, as served: the bytes and their MD5 (what the form list says).
#[derive(Debug)]
pub struct XformDoc {
    pub bytes: Bytes,
    pub md5: String,
}

/// XForms by (form id, version): the XForm is a pure function of the definition, so
/// each is generated once per process; another server makes the same bytes.
pub type XformCache = form_service::VersionCache<XformDoc>;

/// The XForm of a published form version, from the cache when there.
pub async fn xform(
    state: &AppState,
    form_id: &str,
    version: u32,
) -> ApiResult<std::sync::Arc<XformDoc>> {
    if let Some(doc) = state.xforms.get(form_id, version) {
        return Ok(doc);
    }
    let row = form_service::get_version(&state.db, form_id, Some(version)).await?;
    let def = form_service::definition_of(&row)?;
    let bytes = Bytes::from(def.to_xform());
    let doc = state.xforms.keep(
        form_id,
        version,
        XformDoc {
            md5: hex::encode(md5::Md5::digest(&bytes)),
            bytes,
        },
    );
    Ok(doc)
}

/// The places a worker may name (`places.csv`, the choices of `dh_place`): the active
/// hotspots of their area (`h:{code}`), then their own unit and the units of their area
/// that exist today (`u:{id}`), each with a label a field worker recognises. The intake
/// checks the place sent against the worker's area as it does for the JSON API.
pub async fn places_csv(state: &AppState, actor: &crate::auth::Principal) -> ApiResult<Bytes> {
    use crate::db::entities::{hotspots, org_units};
    use sea_orm::QueryOrder;
    let area = actor.org_unit_path.as_str();
    let units = org_units::Entity::find()
        .filter(org_units::Column::Path.starts_with(area))
        .order_by_asc(org_units::Column::Path)
        .all(&state.db)
        .await?;
    let today = Utc::now().date_naive();
    let unit_name = |id: Uuid| {
        units
            .iter()
            .find(|u| u.id == id)
            .map_or(String::new(), |u| u.name.clone())
    };
    let spots = hotspots::Entity::find()
        .filter(hotspots::Column::OrgPath.starts_with(area))
        .filter(hotspots::Column::Active.eq(true))
        .order_by_asc(hotspots::Column::Code)
        .all(&state.db)
        .await?;
    let mut csv = String::from("name,label\n");
    for h in &spots {
        let kind = shared_models::HotspotType::parse(&h.hotspot_type).map_or_else(
            || h.hotspot_type.clone(),
            |t| hotspot_type_vi(t).to_string(),
        );
        push_row(
            &mut csv,
            &format!("h:{}", h.code),
            &format!("{} · {kind} · {}", h.code, unit_name(h.org_unit_id)),
        );
    }
    // Units that exist today, and always the worker's own (so the list is never empty,
    // even for a unit the 2025 reorganisation ended, where older records still belong).
    for u in units.iter().filter(|u| {
        u.id == actor.org_unit_id
            || (u.valid_from.is_none_or(|d| d <= today) && u.valid_to.is_none_or(|d| d >= today))
    }) {
        push_row(&mut csv, &format!("u:{}", u.id), &u.name);
    }
    Ok(Bytes::from(csv))
}

/// One CSV row; JavaRosa's reader is simple, so separators never appear inside a value.
fn push_row(csv: &mut String, name: &str, label: &str) {
    let clean = |s: &str| s.replace([',', '"', '\n', '\r'], " ");
    csv.push_str(&clean(name));
    csv.push(',');
    csv.push_str(&clean(label));
    csv.push('\n');
}

fn hotspot_type_vi(t: shared_models::HotspotType) -> &'static str {
    use shared_models::HotspotType as T;
    match t {
        T::Street => "đường phố",
        T::Karaoke => "karaoke",
        T::Massage => "massage",
        T::Guesthouse => "nhà nghỉ",
        T::BarRestaurant => "quán bar, nhà hàng",
        T::Online => "trên mạng",
        T::Other => "khác",
    }
}
