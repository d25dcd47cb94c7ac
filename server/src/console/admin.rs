//! The city office's pages (admins only): org units, targets, forms (publishing a new
//! version, with the definition's faults listed), and the audit log.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared_models::{AuditFilter, OrgUnitFilter, OrgUnitIn, Role, TargetIn};

use super::queue::{opt_day, opt_uuid, parse_query, Opt};
use super::render::Names;
use super::{html, Chrome, ConsoleError, ConsoleUser, CsrfForm, Nav, OrPage, PageResult};
use crate::error::ApiError;
use crate::services::{audit, forms as form_service, org_units, reports};
use crate::state::AppState;

fn admin_only(user: &ConsoleUser) -> Result<(), ConsoleError> {
    if user.principal().role == Role::Admin {
        Ok(())
    } else {
        Err(ConsoleError(
            ApiError::Forbidden("admins only".into()),
            user.lang,
        ))
    }
}

fn fault_text(e: &ApiError) -> String {
    let p = e.problem();
    if p.errors.is_empty() {
        p.detail.unwrap_or_default()
    } else {
        p.errors
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn is_form_fault(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Validation { .. }
            | ApiError::BadRequest { .. }
            | ApiError::Conflict { .. }
            | ApiError::MalformedJson(_)
            | ApiError::NotFound(_)
    )
}

pub struct UnitRow {
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent: String,
    pub valid_from: String,
    pub valid_to: String,
}

#[derive(askama::Template)]
#[template(path = "console/units.html")]
struct UnitsPage {
    chrome: Chrome,
    units: Vec<UnitRow>,
    parents: Vec<Opt>,
    next: Option<String>,
    message: Option<String>,
    message_kind: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

async fn render_units(
    state: &AppState,
    user: &ConsoleUser,
    cursor: Option<String>,
    message: Option<(String, &'static str)>,
) -> Result<UnitsPage, ConsoleError> {
    let lang = user.lang;
    let p = user.principal();
    let page = org_units::list(
        state,
        p,
        &OrgUnitFilter {
            cursor,
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .or_page(lang)?;
    let names = Names::load(
        state,
        p,
        page.items.iter().filter_map(|u| u.parent_id),
        [],
        [],
        [],
    )
    .await
    .or_page(lang)?;
    let units = page
        .items
        .iter()
        .map(|u| UnitRow {
            code: u.code.clone(),
            name: u.name.clone(),
            level: u.level.clone(),
            parent: u.parent_id.map(|id| names.unit(id)).unwrap_or_default(),
            valid_from: u.valid_from.map(|d| lang.date(d)).unwrap_or_default(),
            valid_to: u.valid_to.map(|d| lang.date(d)).unwrap_or_default(),
        })
        .collect();
    let parents = page
        .items
        .iter()
        .map(|u| Opt {
            value: u.id.to_string(),
            label: format!("{} ({})", u.name, u.code),
            selected: false,
        })
        .collect();
    let (message, message_kind) = message.map_or((None, ""), |(m, k)| (Some(m), k));
    Ok(UnitsPage {
        chrome: user.chrome(Nav::Units),
        units,
        parents,
        next: page.next_cursor.map(|c| {
            format!(
                "/console/units?cursor={}",
                form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
            )
        }),
        message,
        message_kind,
    })
}

/// `GET /console/units`.
pub async fn units(
    State(state): State<AppState>,
    user: ConsoleUser,
    RawQuery(raw): RawQuery,
) -> PageResult {
    admin_only(&user)?;
    let q: CursorQuery = parse_query(&raw).or_page(user.lang)?;
    Ok(html(
        &render_units(&state, &user, q.cursor.filter(|c| !c.is_empty()), None).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct UnitForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    unit_type: String,
    parent_id: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
}

/// `POST /console/units`.
pub async fn create_unit(State(state): State<AppState>, form: CsrfForm<UnitForm>) -> Response {
    let CsrfForm { user, form: f } = form;
    if let Err(e) = admin_only(&user) {
        return e.into_response();
    }
    let lang = user.lang;
    let result: Result<(), ApiError> = async {
        let input = OrgUnitIn {
            code: f.code.trim().to_string(),
            name: f.name.trim().to_string(),
            level: f.level.trim().to_string(),
            unit_type: f.unit_type.trim().to_string(),
            parent_id: opt_uuid("parent_id", &f.parent_id)?.ok_or_else(|| {
                ApiError::invalid("parent_id", "required", "choose the parent unit")
            })?,
            valid_from: opt_day("valid_from", &f.valid_from)?,
            valid_to: opt_day("valid_to", &f.valid_to)?,
        };
        validator::Validate::validate(&input)
            .map_err(|e| ApiError::invalid("form", "invalid", e.to_string()))?;
        org_units::create(&state, user.principal(), input).await?;
        Ok(())
    }
    .await;
    let message = match result {
        Ok(()) => (lang.texts().created.to_string(), "ok"),
        Err(e) if is_form_fault(&e) => (fault_text(&e), "error"),
        Err(e) => return ConsoleError(e, lang).into_response(),
    };
    match render_units(&state, &user, None, Some(message)).await {
        Ok(page) => html(&page),
        Err(e) => e.into_response(),
    }
}

#[derive(askama::Template)]
#[template(path = "console/targets.html")]
struct TargetsPage {
    chrome: Chrome,
    units: Vec<Opt>,
    indicators: Vec<Opt>,
    message: Option<String>,
    message_kind: &'static str,
}

async fn render_targets(
    state: &AppState,
    user: &ConsoleUser,
    message: Option<(String, &'static str)>,
) -> Result<TargetsPage, ConsoleError> {
    let lang = user.lang;
    let units = org_units::list(
        state,
        user.principal(),
        &OrgUnitFilter {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .or_page(lang)?
    .items
    .into_iter()
    .map(|u| Opt {
        value: u.id.to_string(),
        label: u.name,
        selected: false,
    })
    .collect();
    let indicators = reports::indicator_keys()
        .into_iter()
        .map(|(k, _)| Opt {
            label: super::indicators::indicator_label(lang, &k),
            value: k,
            selected: false,
        })
        .collect();
    let (message, message_kind) = message.map_or((None, ""), |(m, k)| (Some(m), k));
    Ok(TargetsPage {
        chrome: user.chrome(Nav::Targets),
        units,
        indicators,
        message,
        message_kind,
    })
}

/// `GET /console/targets`.
pub async fn targets(State(state): State<AppState>, user: ConsoleUser) -> PageResult {
    admin_only(&user)?;
    Ok(html(&render_targets(&state, &user, None).await?))
}

#[derive(Debug, Default, Deserialize)]
pub struct TargetForm {
    org_unit_id: Option<String>,
    #[serde(default)]
    indicator: String,
    #[serde(default)]
    period: String,
    value: Option<String>,
}

/// `POST /console/targets`.
pub async fn set_target(State(state): State<AppState>, form: CsrfForm<TargetForm>) -> Response {
    let CsrfForm { user, form: f } = form;
    if let Err(e) = admin_only(&user) {
        return e.into_response();
    }
    let lang = user.lang;
    let result: Result<(), ApiError> = async {
        let input = TargetIn {
            org_unit_id: opt_uuid("org_unit_id", &f.org_unit_id)?
                .ok_or_else(|| ApiError::invalid("org_unit_id", "required", "choose a unit"))?,
            indicator: f.indicator.trim().to_string(),
            period: f.period.trim().to_string(),
            value: f
                .value
                .as_deref()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| ApiError::invalid("value", "invalid", "a whole number"))?,
        };
        validator::Validate::validate(&input)
            .map_err(|e| ApiError::invalid("form", "invalid", e.to_string()))?;
        reports::put_target(&state.db, user.principal(), &input).await?;
        Ok(())
    }
    .await;
    let message = match result {
        Ok(()) => (lang.texts().saved.to_string(), "ok"),
        Err(e) if is_form_fault(&e) => (fault_text(&e), "error"),
        Err(e) => return ConsoleError(e, lang).into_response(),
    };
    match render_targets(&state, &user, Some(message)).await {
        Ok(page) => html(&page),
        Err(e) => e.into_response(),
    }
}

pub struct FormRow {
    pub id: String,
    pub title: String,
    pub version: u32,
    pub roles: String,
    pub published: String,
}

#[derive(askama::Template)]
#[template(path = "console/forms.html")]
struct FormsPage {
    chrome: Chrome,
    forms: Vec<FormRow>,
    definition: String,
    faults: Vec<(String, String)>,
    message: Option<String>,
    message_kind: &'static str,
}

async fn render_forms(
    state: &AppState,
    user: &ConsoleUser,
    definition: String,
    faults: Vec<(String, String)>,
    message: Option<(String, &'static str)>,
) -> Result<FormsPage, ConsoleError> {
    let lang = user.lang;
    let forms = form_service::list_latest(&state.db, Role::Admin)
        .await
        .or_page(lang)?
        .into_iter()
        .map(|f| {
            let def: Option<mobile_schema::FormDefinition> =
                serde_json::from_value(f.definition.clone()).ok();
            FormRow {
                title: def.map_or_else(String::new, |d| match lang {
                    super::i18n::Lang::Vi => d.title.vi,
                    super::i18n::Lang::En => d.title.en,
                }),
                id: f.form_id,
                version: f.version,
                roles: f.roles.join(", "),
                published: lang.datetime(f.published_at),
            }
        })
        .collect();
    let (message, message_kind) = message.map_or((None, ""), |(m, k)| (Some(m), k));
    Ok(FormsPage {
        chrome: user.chrome(Nav::Forms),
        forms,
        definition,
        faults,
        message,
        message_kind,
    })
}

/// `GET /console/forms`.
pub async fn forms(State(state): State<AppState>, user: ConsoleUser) -> PageResult {
    admin_only(&user)?;
    Ok(html(
        &render_forms(&state, &user, String::new(), Vec::new(), None).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct PublishForm {
    #[serde(default)]
    definition: String,
}

/// `POST /console/forms`: publishes a version through the same check as the API; every
/// fault of the definition is listed with its path, the text kept for correcting.
pub async fn publish(State(state): State<AppState>, form: CsrfForm<PublishForm>) -> Response {
    let CsrfForm { user, form: f } = form;
    if let Err(e) = admin_only(&user) {
        return e.into_response();
    }
    let lang = user.lang;
    let t = lang.texts();
    let outcome = form_service::publish(
        &state.db,
        user.principal(),
        f.definition.as_bytes(),
        state.config.max_faults,
    )
    .await;
    let (status, definition, faults, message) = match outcome {
        Ok(_) => (
            axum::http::StatusCode::OK,
            String::new(),
            Vec::new(),
            Some((t.published.to_string(), "ok")),
        ),
        Err(ApiError::Validation { errors, .. }) => (
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            f.definition.clone(),
            errors.into_iter().map(|e| (e.field, e.message)).collect(),
            None,
        ),
        Err(e) if is_form_fault(&e) => (
            e.status(),
            f.definition.clone(),
            Vec::new(),
            Some((fault_text(&e), "error")),
        ),
        Err(e) => return ConsoleError(e, lang).into_response(),
    };
    match render_forms(&state, &user, definition, faults, message).await {
        Ok(page) => (status, html(&page)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

#[derive(askama::Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<AuditRow>,
    action: String,
    from: String,
    to: String,
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// `GET /console/audit`.
pub async fn audit(
    State(state): State<AppState>,
    user: ConsoleUser,
    RawQuery(raw): RawQuery,
) -> PageResult {
    admin_only(&user)?;
    let lang = user.lang;
    let q: AuditQuery = parse_query(&raw).or_page(lang)?;
    let day_start = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let from = opt_day("from", &q.from).or_page(lang)?.and_then(day_start);
    let to = opt_day("to", &q.to)
        .or_page(lang)?
        .and_then(|d| d.succ_opt())
        .and_then(day_start);
    let action = q
        .action
        .clone()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());
    let page = audit::list(
        &state.db,
        &AuditFilter {
            actor_id: None,
            action: action.clone(),
            from,
            to,
            cursor: q.cursor.clone().filter(|c| !c.is_empty()),
            limit: Some(100),
        },
    )
    .await
    .or_page(lang)?;
    let names = Names::load(
        &state,
        user.principal(),
        [],
        [],
        page.items.iter().filter_map(|e| e.actor_id),
        [],
    )
    .await
    .or_page(lang)?;
    let entries = page
        .items
        .iter()
        .map(|e| AuditRow {
            at: lang.datetime(e.at),
            actor: e
                .actor_id
                .map(|a| names.user(a))
                .unwrap_or_else(|| "—".into()),
            action: e.action.clone(),
            target: format!(
                "{} {}",
                e.target_type,
                e.target_id.clone().unwrap_or_default()
            ),
            detail: e.detail.to_string(),
        })
        .collect();
    let next = page.next_cursor.map(|c| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("action", &q.action), ("from", &q.from), ("to", &q.to)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                s.append_pair(k, v);
            }
        }
        s.append_pair("cursor", &c);
        format!("/console/audit?{}", s.finish())
    });
    Ok(html(&AuditPage {
        chrome: user.chrome(Nav::Audit),
        entries,
        action: action.unwrap_or_default(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
        next,
    }))
}
