//! Published forms: installing the bundled ones, publishing new versions, and serving
//! them to phones. A published version never changes: its content digest is fixed.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use mobile_schema::{FormDefinition, FormKind};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use sha2::{Digest, Sha256};
use shared_models::{FieldError, FormOut, Role};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::forms;
use crate::error::{ApiError, ApiResult};
use crate::services::{audit, sync};
use crate::state::AppState;

/// Things made from published form versions, by (form id, version): a version never
/// changes once published (nor goes away while a server runs: restore and move start
/// new servers), so what is made from it is made once per process. Only published
/// versions are kept, so the map holds no more entries than the forms table has rows.
#[derive(Debug)]
pub struct VersionCache<T>(std::sync::Mutex<BTreeMap<(String, u32), Arc<T>>>);

impl<T> Default for VersionCache<T> {
    fn default() -> Self {
        VersionCache(std::sync::Mutex::new(BTreeMap::new()))
    }
}

impl<T> VersionCache<T> {
    /// What was made from this version, when it was.
    pub fn get(&self, form_id: &str, version: u32) -> Option<Arc<T>> {
        let cache = self.0.lock().ok()?;
        cache.get(&(form_id.to_string(), version)).cloned()
    }

    /// Keeps what was made from a published version; answers it.
    pub fn keep(&self, form_id: &str, version: u32, made: T) -> Arc<T> {
        let made = Arc::new(made);
        if let Ok(mut cache) = self.0.lock() {
            cache.insert((form_id.to_string(), version), made.clone());
        }
        made
    }
}

/// The parsed definition of a published version, from the cache when there. `None`
/// when `form_id` has no version `version` published (not cached: it may be published
/// later, by any server).
pub async fn published_definition(
    state: &AppState,
    form_id: &str,
    version: u32,
) -> ApiResult<Option<Arc<FormDefinition>>> {
    if let Some(def) = state.definitions.get(form_id, version) {
        return Ok(Some(def));
    }
    let row = forms::Entity::find()
        .filter(forms::Column::FormId.eq(form_id))
        .filter(forms::Column::Version.eq(version as i32))
        .one(&state.reader)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(state.definitions.keep(
        form_id,
        version,
        definition_of(&row)?,
    )))
}

/// A JSON value written with object keys sorted at every level, so equal content has
/// equal bytes whatever order a client sent.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn write(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push(':');
                    if let Some(v) = map.get(key) {
                        write(v, out);
                    }
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn definition_json(def: &FormDefinition) -> ApiResult<serde_json::Value> {
    serde_json::to_value(def).map_err(|e| ApiError::Internal(e.into()))
}

fn content_sha256(definition: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(canonical_json(definition).as_bytes()))
}

/// The wire shape of a stored form version.
pub fn form_out(row: forms::Model) -> ApiResult<FormOut> {
    let roles: Vec<String> =
        serde_json::from_value(row.roles).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(FormOut {
        form_id: row.form_id,
        version: u32::try_from(row.version).map_err(|e| ApiError::Internal(e.into()))?,
        kind: row.kind,
        roles,
        content_sha256: row.content_sha256,
        published_at: row.published_at,
        definition: row.definition,
    })
}

/// The parsed definition of a stored form version.
pub fn definition_of(row: &forms::Model) -> ApiResult<FormDefinition> {
    serde_json::from_value(row.definition.clone()).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "stored form {} v{} does not parse: {e}",
            row.form_id,
            row.version
        ))
    })
}

/// Whether `role` may submit a form with these roles.
pub fn role_may_submit(roles: &[String], role: Role) -> bool {
    roles.iter().any(|r| r == role.as_str())
}

/// What a caller gets from `GET /api/v1/forms`: field workers the forms they may submit;
/// supervisors and admins every form, since they review all of them.
pub fn visible_to(roles: &[String], role: Role) -> bool {
    matches!(role, Role::Admin | Role::Supervisor) || role_may_submit(roles, role)
}

/// Installs the program's bundled forms that are not there yet (first start, or a
/// release that adds one). An installed version is never overwritten.
pub async fn install_bundled<C: TransactionTrait + ConnectionTrait>(db: &C) -> ApiResult<()> {
    for def in mobile_schema::bundled_forms() {
        let exists = forms::Entity::find()
            .filter(forms::Column::FormId.eq(def.form_id.as_str()))
            .filter(forms::Column::Version.eq(def.version as i32))
            .one(db)
            .await?;
        match exists {
            Some(row) => {
                let definition = definition_json(&def)?;
                if row.content_sha256 != content_sha256(&definition) {
                    tracing::warn!(
                        form.id = %def.form_id,
                        form.version = def.version,
                        "the bundled form differs from the published version of the same number; the published one is kept"
                    );
                }
            }
            None => {
                let txn = db.begin().await?;
                insert_version(&txn, &def, None).await?;
                txn.commit().await?;
            }
        }
    }
    Ok(())
}

async fn insert_version<C: ConnectionTrait>(
    db: &C,
    def: &FormDefinition,
    published_by: Option<Uuid>,
) -> ApiResult<Option<forms::Model>> {
    let definition = definition_json(def)?;
    let id = Uuid::now_v7();
    let row = forms::ActiveModel {
        id: Set(id),
        form_id: Set(def.form_id.clone()),
        version: Set(def.version as i32),
        kind: Set(def.kind.as_str().to_string()),
        title_vi: Set(def.title.vi.clone()),
        title_en: Set(def.title.en.clone()),
        roles: Set(serde_json::json!(def.roles)),
        content_sha256: Set(content_sha256(&definition)),
        definition: Set(definition),
        change_seq: Set(0),
        published_by: Set(published_by),
        published_at: Set(Utc::now()),
    };
    let inserted = forms::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([forms::Column::FormId, forms::Column::Version])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    let seq = sync::change_seq(db).await?;
    forms::Entity::update_many()
        .col_expr(forms::Column::ChangeSeq, seq.into())
        .filter(forms::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(forms::Entity::find_by_id(id).one(db).await?)
}

/// The latest published version of each form the caller sees, by form id.
pub async fn list_latest<C: ConnectionTrait>(db: &C, role: Role) -> ApiResult<Vec<FormOut>> {
    let rows = forms::Entity::find()
        .order_by_asc(forms::Column::FormId)
        .order_by_desc(forms::Column::Version)
        .all(db)
        .await?;
    let mut out: Vec<FormOut> = Vec::new();
    for row in rows {
        if out.last().is_some_and(|f| f.form_id == row.form_id) {
            continue;
        }
        let form = form_out(row)?;
        if visible_to(&form.roles, role) {
            out.push(form);
        }
    }
    Ok(out)
}

/// One version of a form (`None`: the latest).
pub async fn get_version<C: ConnectionTrait>(
    db: &C,
    form_id: &str,
    version: Option<u32>,
) -> ApiResult<forms::Model> {
    let mut query = forms::Entity::find().filter(forms::Column::FormId.eq(form_id));
    if let Some(v) = version {
        query = query.filter(forms::Column::Version.eq(v as i32));
    }
    query
        .order_by_desc(forms::Column::Version)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("form"))
}

/// Form faults as problem fields under `prefix` (`answers` for a submission's answers).
pub fn to_field_errors(prefix: &str, faults: Vec<mobile_schema::Fault>) -> Vec<FieldError> {
    faults
        .into_iter()
        .map(|f| {
            let field = match (prefix.is_empty(), f.path.is_empty()) {
                (true, _) => f.path,
                (false, true) => prefix.to_string(),
                (false, false) if f.path.starts_with('[') => format!("{prefix}{}", f.path),
                (false, false) => format!("{prefix}.{}", f.path),
            };
            FieldError::new(field, f.code.as_str(), f.message)
        })
        .collect()
}

/// The fault for a key of `kind`'s typed answers that a new version lacks, retypes, or
/// (for a key every submission has) makes optional.
fn missing_key_fault(kind: FormKind, path: &str) -> FieldError {
    let key = mobile_schema::required_keys(kind)
        .iter()
        .find(|k| k.path == path);
    let how = match key {
        Some(k) if k.always => format!(", required and always shown, of type {}", k.field_type),
        Some(k) => format!(" of type {}", k.field_type),
        None => String::new(),
    };
    FieldError::new(
        "fields",
        "missing_required_key",
        format!(
            "a form of kind {} must keep the field `{path}`{how}: the server reads it into the kind's records",
            kind.as_str()
        ),
    )
}

/// Publishes a new form or a new version of one (admin). The same version with the same
/// content again answers the stored version (`false`: nothing was written).
pub async fn publish<C: TransactionTrait + ConnectionTrait>(
    db: &C,
    actor: &Principal,
    body: &[u8],
    max_faults: usize,
) -> ApiResult<(FormOut, bool)> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::MalformedJson("the body is not UTF-8".into()))?;
    // Syntax errors are 400 like every other malformed body; content faults are 422.
    serde_json::from_str::<serde_json::Value>(text)
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let def = mobile_schema::parse_definition(text).map_err(|faults| {
        ApiError::validation_within(to_field_errors("", faults), 0, max_faults)
    })?;
    let definition = definition_json(&def)?;
    let digest = content_sha256(&definition);

    let txn = db.begin().await?;
    let existing = forms::Entity::find()
        .filter(forms::Column::FormId.eq(def.form_id.as_str()))
        .order_by_desc(forms::Column::Version)
        .all(&txn)
        .await?;
    if let Some(same) = existing.iter().find(|r| r.version == def.version as i32) {
        if same.content_sha256 == digest {
            return Ok((form_out(same.clone())?, false));
        }
        return Err(ApiError::conflict_on(
            "version",
            "version_published",
            format!(
                "{} version {} is already published with other content; publish version {}",
                def.form_id,
                def.version,
                existing.first().map_or(1, |r| r.version + 1)
            ),
        ));
    }
    if let Some(latest) = existing.first() {
        if def.version as i32 <= latest.version {
            return Err(ApiError::invalid(
                "version",
                "not_newer",
                format!("the latest published version is {}", latest.version),
            ));
        }
        if latest.kind != def.kind.as_str() {
            return Err(ApiError::invalid(
                "kind",
                "kind_changed",
                format!("{} is a form of kind {}", def.form_id, latest.kind),
            ));
        }
    }
    let missing = mobile_schema::missing_required_keys(&def);
    if !missing.is_empty() {
        return Err(ApiError::validation(
            missing
                .into_iter()
                .map(|path| missing_key_fault(def.kind, &path))
                .collect(),
        ));
    }
    let row = insert_version(&txn, &def, Some(actor.user_id))
        .await?
        .ok_or_else(|| {
            ApiError::conflict_on(
                "version",
                "version_published",
                "this version was published at the same moment; fetch it and compare",
            )
        })?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "form.publish",
        "form",
        Some(format!("{}@{}", def.form_id, def.version)),
        serde_json::json!({ "content_sha256": digest }),
    )
    .await?;
    txn.commit().await?;
    Ok((form_out(row)?, true))
}
