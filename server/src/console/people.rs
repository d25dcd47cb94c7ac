//! People: the users of the caller's area (supervisors manage field workers; admins
//! everyone): create, edit, deactivate; a field worker's phones, revoked or enrolled
//! (the QR code and the sign-in code shown once), through the same services as the API.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared_models::{
    DeviceEnrolmentOut, DeviceIn, OrgUnitFilter, Role, UserFilter, UserIn, UserPatch,
};
use uuid::Uuid;

use super::i18n::Lang;
use super::queue::{opt_uuid, parse_query, Opt};
use super::render::Names;
use super::{html, Chrome, ConsoleError, ConsoleUser, CsrfForm, Nav, OrPage, PageResult};
use crate::error::ApiError;
use crate::extract::{Path, RequestOrigin};
use crate::services::{accounts, devices, org_units};
use crate::state::AppState;

/// A role in words.
pub fn role_text(lang: Lang, r: Role) -> String {
    match (lang, r) {
        (Lang::Vi, Role::PeerEducator) => "Đồng đẳng viên",
        (Lang::Vi, Role::Volunteer) => "Tình nguyện viên",
        (Lang::Vi, Role::Supervisor) => "Cán bộ giám sát",
        (Lang::Vi, Role::Admin) => "Quản trị",
        (Lang::En, Role::PeerEducator) => "Peer educator",
        (Lang::En, Role::Volunteer) => "Volunteer",
        (Lang::En, Role::Supervisor) => "Supervisor",
        (Lang::En, Role::Admin) => "Admin",
    }
    .to_string()
}

pub struct PersonRow {
    pub id: Uuid,
    pub username: String,
    pub role: String,
    pub unit: String,
    pub active: bool,
}

#[derive(askama::Template)]
#[template(path = "console/people.html")]
struct PeoplePage {
    chrome: Chrome,
    people: Vec<PersonRow>,
    next: Option<String>,
    roles: Vec<Opt>,
    units: Vec<Opt>,
    message: Option<String>,
    message_kind: &'static str,
}

/// The units of the caller's area, for a `<select>`.
async fn unit_options(
    state: &AppState,
    user: &ConsoleUser,
    selected: Option<Uuid>,
) -> Result<Vec<Opt>, ConsoleError> {
    Ok(org_units::list(
        state,
        user.principal(),
        &OrgUnitFilter {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .or_page(user.lang)?
    .items
    .into_iter()
    .map(|u| Opt {
        selected: Some(u.id) == selected,
        value: u.id.to_string(),
        label: u.name,
    })
    .collect())
}

/// The roles the caller may give.
fn role_options(user: &ConsoleUser) -> Vec<Opt> {
    let lang = user.lang;
    let mut roles = vec![Role::PeerEducator, Role::Volunteer];
    if user.principal().role == Role::Admin {
        roles.extend([Role::Supervisor, Role::Admin]);
    }
    roles
        .into_iter()
        .map(|r| Opt {
            value: r.as_str().into(),
            label: role_text(lang, r),
            selected: false,
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct PeopleQuery {
    cursor: Option<String>,
}

async fn render_list(
    state: &AppState,
    user: &ConsoleUser,
    cursor: Option<String>,
    message: Option<(String, &'static str)>,
) -> Result<PeoplePage, ConsoleError> {
    let lang = user.lang;
    let page = accounts::list_users(
        state,
        user.principal(),
        &UserFilter {
            cursor,
            limit: Some(100),
            ..Default::default()
        },
    )
    .await
    .or_page(lang)?;
    let names = Names::load(
        state,
        user.principal(),
        page.items.iter().map(|u| u.org_unit_id),
        [],
        [],
        [],
    )
    .await
    .or_page(lang)?;
    let people = page
        .items
        .iter()
        .map(|u| PersonRow {
            id: u.id,
            username: u.username.clone(),
            role: role_text(lang, u.role),
            unit: names.unit(u.org_unit_id),
            active: u.active,
        })
        .collect();
    let (message, message_kind) = message.map_or((None, ""), |(m, k)| (Some(m), k));
    Ok(PeoplePage {
        chrome: user.chrome(Nav::People),
        people,
        next: page.next_cursor.map(|c| {
            format!(
                "/console/people?cursor={}",
                form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
            )
        }),
        roles: role_options(user),
        units: unit_options(state, user, None).await?,
        message,
        message_kind,
    })
}

/// `GET /console/people`.
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let q: PeopleQuery = parse_query(&raw).or_page(user.lang)?;
    let cursor = q.cursor.filter(|c| !c.is_empty());
    Ok(html(&render_list(&state, &user, cursor, None).await?))
}

/// A service fault as a message on the form's page (the fields named).
fn form_fault(e: &ApiError) -> String {
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
            | ApiError::Forbidden(_)
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    role: Option<String>,
    org_unit_id: Option<String>,
}

/// `POST /console/people`: creates a user (supervisors: field workers of their area).
pub async fn create(State(state): State<AppState>, form: CsrfForm<CreateForm>) -> Response {
    let CsrfForm { user, form: f } = form;
    let lang = user.lang;
    let result: Result<Uuid, ApiError> = async {
        let role = f
            .role
            .as_deref()
            .and_then(Role::parse)
            .ok_or_else(|| ApiError::invalid("role", "invalid", "choose a role"))?;
        let org_unit_id = opt_uuid("org_unit_id", &f.org_unit_id)?
            .ok_or_else(|| ApiError::invalid("org_unit_id", "required", "choose a unit"))?;
        let input = UserIn {
            username: f.username.trim().to_lowercase(),
            password: f.password.clone(),
            role,
            org_unit_id,
            team_id: None,
        };
        validator::Validate::validate(&input)
            .map_err(|e| ApiError::invalid("username", "invalid", e.to_string()))?;
        Ok(accounts::create_user(&state, user.principal(), input)
            .await?
            .id)
    }
    .await;
    match result {
        Ok(id) => super::see_other(&format!("/console/people/{id}?created=1")),
        Err(e) if is_form_fault(&e) => {
            match render_list(&state, &user, None, Some((form_fault(&e), "error"))).await {
                Ok(page) => (e.status(), html(&page)).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => ConsoleError(e, lang).into_response(),
    }
}

pub struct DeviceRow {
    pub id: Uuid,
    pub label: String,
    pub created: String,
    pub last_seen: String,
    pub revoked: bool,
}

pub struct EnrolmentView {
    pub qr_png: String,
    pub url: String,
    pub code: String,
    pub expires: String,
}

#[derive(askama::Template)]
#[template(path = "console/person.html")]
struct PersonPage {
    chrome: Chrome,
    id: Uuid,
    username: String,
    role: String,
    unit: String,
    active: bool,
    field_worker: bool,
    /// The signed-in user's own page: only the password can be changed here.
    own: bool,
    units: Vec<Opt>,
    devices: Vec<DeviceRow>,
    enrolment: Option<EnrolmentView>,
    message: Option<String>,
    message_kind: &'static str,
}

async fn render_person(
    state: &AppState,
    user: &ConsoleUser,
    id: Uuid,
    message: Option<(String, &'static str)>,
    enrolment: Option<DeviceEnrolmentOut>,
) -> Result<PersonPage, ConsoleError> {
    let lang = user.lang;
    let p = user.principal();
    let person = accounts::get_user(state, p, id).await.or_page(lang)?;
    let names = Names::load(state, p, [person.org_unit_id], [], [], [])
        .await
        .or_page(lang)?;
    let field_worker = person.role.is_field();
    let devices = if field_worker {
        devices::list(state, p, id)
            .await
            .or_page(lang)?
            .into_iter()
            .map(|d| DeviceRow {
                id: d.device_id,
                label: d
                    .label
                    .unwrap_or_else(|| d.device_id.simple().to_string()[..8].to_string()),
                created: lang.datetime(d.created_at),
                last_seen: d.last_seen_at.map(|s| lang.datetime(s)).unwrap_or_default(),
                revoked: d.revoked_at.is_some(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let (message, message_kind) = message.map_or((None, ""), |(m, k)| (Some(m), k));
    Ok(PersonPage {
        chrome: user.chrome(Nav::People),
        id,
        role: role_text(lang, person.role),
        unit: names.unit(person.org_unit_id),
        active: person.active,
        field_worker,
        own: person.id == p.user_id,
        units: unit_options(state, user, Some(person.org_unit_id)).await?,
        devices,
        enrolment: enrolment.map(|e| EnrolmentView {
            qr_png: e.odk_settings_qr_png,
            url: e.odk_server_url,
            code: e.sign_in_code,
            expires: lang.datetime(e.sign_in_code_expires_at),
        }),
        username: person.username,
        message,
        message_kind,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct PersonQuery {
    created: Option<String>,
    saved: Option<String>,
}

/// `GET /console/people/{id}` (404 outside the caller's area).
pub async fn person(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<Uuid>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let t = user.lang.texts();
    let q: PersonQuery = parse_query(&raw).or_page(user.lang)?;
    let message = if q.created.is_some() {
        Some((t.created.to_string(), "ok"))
    } else if q.saved.is_some() {
        Some((t.saved.to_string(), "ok"))
    } else {
        None
    };
    Ok(html(
        &render_person(&state, &user, id, message, None).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateForm {
    org_unit_id: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
    active: Option<String>,
}

/// `POST /console/people/{id}`: the same update as `PATCH /api/v1/users/{id}`
/// (deactivating cuts the user off at once).
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    form: CsrfForm<UpdateForm>,
) -> Response {
    let CsrfForm { user, form: f } = form;
    let lang = user.lang;
    let result: Result<(), ApiError> = async {
        // One's own unit and status are not one's own to change: the page does not
        // offer them, and a form that sends them anyway changes only the password.
        let own = id == user.principal().user_id;
        let patch = UserPatch {
            password: f.password.clone().filter(|p| !p.is_empty()),
            current_password: f.current_password.clone().filter(|p| !p.is_empty()),
            role: None,
            org_unit_id: if own {
                None
            } else {
                opt_uuid("org_unit_id", &f.org_unit_id)?
            },
            team_id: None,
            active: match f.active.as_deref() {
                _ if own => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            },
        };
        validator::Validate::validate(&patch)
            .map_err(|e| ApiError::validation(crate::extract::validation_faults(&e)))?;
        accounts::update_user(&state, user.principal(), id, patch).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => super::see_other(&format!("/console/people/{id}?saved=1")),
        Err(e) if is_form_fault(&e) => {
            match render_person(&state, &user, id, Some((form_fault(&e), "error")), None).await {
                Ok(page) => (e.status(), html(&page)).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => ConsoleError(e, lang).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EnrolForm {
    label: Option<String>,
}

/// `POST /console/people/{id}/devices`: enrols a phone; the QR code and the sign-in code
/// are on this answer only (never stored in a form that can be reloaded).
pub async fn enrol(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    RequestOrigin(origin): RequestOrigin,
    form: CsrfForm<EnrolForm>,
) -> Response {
    let CsrfForm { user, form: f } = form;
    let lang = user.lang;
    let label = f
        .label
        .map(|l| l.trim().chars().take(100).collect::<String>())
        .filter(|l| !l.is_empty());
    match devices::enrol(&state, user.principal(), id, DeviceIn { label }, &origin).await {
        Ok(out) => match render_person(&state, &user, id, None, Some(out)).await {
            Ok(page) => (StatusCode::CREATED, html(&page)).into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) if is_form_fault(&e) => {
            match render_person(&state, &user, id, Some((form_fault(&e), "error")), None).await {
                Ok(page) => (e.status(), html(&page)).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => ConsoleError(e, lang).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

/// `POST /console/people/{id}/devices/{device_id}/revoke`: the phone is cut off at once.
pub async fn revoke(
    State(state): State<AppState>,
    Path((id, device_id)): Path<(Uuid, Uuid)>,
    form: CsrfForm<Empty>,
) -> Response {
    let lang = form.user.lang;
    match accounts::revoke_device(&state, form.user.principal(), id, &device_id.to_string()).await {
        Ok(()) => super::see_other(&format!("/console/people/{id}?saved=1")),
        Err(e) => ConsoleError(e, lang).into_response(),
    }
}
