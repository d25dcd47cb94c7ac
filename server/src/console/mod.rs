//! The supervisors' console: server-rendered pages under `/console/`, served by the same
//! process as the API. Templates (askama) are compiled into the binary, and so are the
//! stylesheet and the one small script, which only adds conveniences (select all): the
//! review flow works with JavaScript off.
//!
//! Handlers here call the same services as the JSON routes (one set of rules, scope
//! checks and audit entries); there is no SQL in this module. Security:
//! - a session cookie (`dh_session`: opaque, `HttpOnly`, `SameSite=Strict`, `Secure`
//!   over HTTPS, kept hashed; see `services::web_sessions`), idle timeout, sign-out;
//! - every state-changing form carries the session's CSRF token, and its `Origin` (or
//!   `Referer`) must name this host;
//! - a `Content-Security-Policy` without `unsafe-inline`, no framing, no referrer
//!   leaks, no caching of pages;
//! - supervisors see their subtree only (404 outside it), admins everything, field roles
//!   cannot sign in.

pub mod i18n;

mod admin;
mod assets;
mod auth;
mod indicators;
mod people;
mod queue;
mod referrals;
mod render;
mod stock;
mod visit;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::RequestOrigin;
use crate::services::web_sessions::{self, WebSession};
use crate::state::AppState;
use i18n::{Lang, Texts};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "dh_session";
/// The language cookie's name.
pub const LANG_COOKIE: &str = "dh_lang";
/// The sign-in form's CSRF cookie (there is no session yet to bind it to).
pub const LOGIN_CSRF_COOKIE: &str = "dh_login_csrf";

/// What every console page's response carries.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every console route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(queue::page))
        .route("/console/queue/approve", post(queue::approve))
        .route("/console/login", get(auth::form).post(auth::submit))
        .route("/console/logout", post(auth::logout))
        .route("/console/lang", get(auth::switch_lang))
        .route("/console/visits/{id}", get(visit::page))
        .route("/console/visits/{id}/decision", post(visit::decide))
        .route("/console/visits/{id}/photos/{sha256}", get(visit::photo))
        .route("/console/referrals", get(referrals::page))
        .route("/console/indicators", get(indicators::page))
        .route("/console/indicators.csv", get(indicators::csv))
        .route("/console/stock", get(stock::page).post(stock::record))
        .route("/console/people", get(people::page).post(people::create))
        .route(
            "/console/people/{id}",
            get(people::person).post(people::update),
        )
        .route("/console/people/{id}/devices", post(people::enrol))
        .route(
            "/console/people/{id}/devices/{device_id}/revoke",
            post(people::revoke),
        )
        .route("/console/units", get(admin::units).post(admin::create_unit))
        .route(
            "/console/targets",
            get(admin::targets).post(admin::set_target),
        )
        .route("/console/forms", get(admin::forms).post(admin::publish))
        .route("/console/audit", get(admin::audit))
        .route("/console/assets/console.css", get(assets::css))
        .route("/console/assets/console.js", get(assets::js))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// The value of one cookie of the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the browser reached us over HTTPS (as `PUBLIC_URL` or a trusted proxy says),
/// so cookies get `Secure`.
fn over_https(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || (state.config.trust_proxy_headers
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

/// A `Set-Cookie` value for a console cookie.
fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// The language of the request (`dh_lang` cookie; Vietnamese by default).
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PageLang(Lang::from_cookie(cookie(
            &parts.headers,
            LANG_COOKIE,
        ))))
    }
}

/// A signed-in supervisor or admin; anyone else is sent to the sign-in page.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub session: WebSession,
    pub lang: Lang,
    /// The path (and query) of this page, for the language switch to come back to.
    pub here: String,
}

impl ConsoleUser {
    pub fn principal(&self) -> &Principal {
        &self.session.principal
    }

    /// What the layout shows around every page.
    pub fn chrome(&self, active: Nav) -> Chrome {
        Chrome {
            t: self.lang.texts(),
            lang: self.lang,
            username: self.session.principal.username.clone(),
            user_id: self.session.principal.user_id,
            is_admin: self.session.principal.role == shared_models::Role::Admin,
            csrf: self.session.csrf.clone(),
            here: self.here.clone(),
            active,
        }
    }
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(user) = parts.extensions.get::<ConsoleUser>() {
            return Ok(user.clone());
        }
        let here = parts
            .uri
            .path_and_query()
            .map_or("/console/".to_string(), |p| p.as_str().to_string());
        let lang = Lang::from_cookie(cookie(&parts.headers, LANG_COOKIE));
        let token = cookie(&parts.headers, SESSION_COOKIE).unwrap_or_default();
        match web_sessions::lookup(state, token).await {
            Ok(Some(session)) => {
                let user = ConsoleUser {
                    session,
                    lang,
                    here,
                };
                parts.extensions.insert(user.clone());
                Ok(user)
            }
            Ok(None) => {
                let expired = !token.is_empty();
                let next = if parts.method == axum::http::Method::GET {
                    here
                } else {
                    "/console/".into()
                };
                let mut to = format!(
                    "/console/login?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                if expired {
                    to.push_str("&expired=1");
                }
                Err(Redirect::to(&to).into_response())
            }
            Err(e) => Err(ConsoleError(e, lang).into_response()),
        }
    }
}

/// Which part of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Queue,
    Referrals,
    Indicators,
    Stock,
    People,
    Units,
    Targets,
    Forms,
    Audit,
    None,
}

/// The frame of every signed-in page: words, user, CSRF token, navigation.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub t: &'static Texts,
    pub lang: Lang,
    pub username: String,
    /// The signed-in user (their own page, where they change their password).
    pub user_id: uuid::Uuid,
    pub is_admin: bool,
    pub csrf: String,
    pub here: String,
    pub active: Nav,
}

impl Chrome {
    /// The language switch's link: the other language, back to this page.
    pub fn switch_href(&self) -> String {
        format!(
            "/console/lang?to={}&back={}",
            self.lang.other().code(),
            form_urlencoded::byte_serialize(self.here.as_bytes()).collect::<String>()
        )
    }

    /// `aria-current` for the navigation entry of this page.
    pub fn current(&self, nav: Nav) -> &'static str {
        if nav == self.active {
            "page"
        } else {
            "false"
        }
    }
}

/// An error as a page: the status, and what it means in both languages' words.
#[derive(Debug)]
pub struct ConsoleError(pub ApiError, pub Lang);

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError(e, Lang::Vi)
    }
}

#[derive(askama::Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    t: &'static Texts,
    lang: Lang,
    status: u16,
    message: &'a str,
    detail: Option<String>,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let ConsoleError(e, lang) = self;
        let t = lang.texts();
        let status = e.status();
        if status.is_server_error() && !matches!(e, ApiError::Unavailable { .. }) {
            tracing::error!(error = %e, "console request failed");
        }
        let (message, detail) = match &e {
            ApiError::NotFound(_) | ApiError::NoRoute => (t.not_found, None),
            ApiError::Forbidden(why) => (t.forbidden, Some(why.clone())),
            ApiError::Unauthorized(_) => (t.session_expired, None),
            e if status.is_client_error() => (t.bad_request, e.problem().detail),
            _ => (t.server_error, None),
        };
        let page = ErrorPage {
            t,
            lang,
            status: status.as_u16(),
            message,
            detail,
        };
        (status, html(&page)).into_response()
    }
}

/// Renders a template; a template that fails to render is an internal error page.
pub(crate) fn html(page: &impl askama::Template) -> Response {
    match page.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// What a page handler answers.
pub(crate) type PageResult = Result<Response, ConsoleError>;

/// An `ApiResult` whose error becomes a page in the caller's language.
pub(crate) trait OrPage<T> {
    fn or_page(self, lang: Lang) -> Result<T, ConsoleError>;
}

impl<T> OrPage<T> for Result<T, ApiError> {
    fn or_page(self, lang: Lang) -> Result<T, ConsoleError> {
        self.map_err(|e| ConsoleError(e, lang))
    }
}

/// A state-changing form post: the signed-in user, the form's fields, after the CSRF
/// token and the origin were checked (403 otherwise, nothing done).
pub struct CsrfForm<T> {
    pub user: ConsoleUser,
    pub form: T,
}

/// The largest form body (a form definition being published is the biggest).
const FORM_LIMIT: usize = 2 * 1024 * 1024;

/// Whether the request's `Origin` (or, without one, its `Referer`) names this host.
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let host_of = |url: &str| {
        url.split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_ascii_lowercase())
    };
    let ours = host_of(origin);
    let theirs = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|v| *v != "null")
        .or_else(|| headers.get(header::REFERER).and_then(|v| v.to_str().ok()))
        .and_then(host_of);
    ours.is_some() && theirs == ours
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let user = ConsoleUser::from_request_parts(&mut parts, state).await?;
        let lang = user.lang;
        let refuse = |lang: Lang| {
            let e = ApiError::Forbidden(lang.texts().csrf_refused.into());
            ConsoleError(e, lang).into_response()
        };
        let RequestOrigin(origin) = RequestOrigin::from_request_parts(&mut parts, state)
            .await
            .map_err(|e| ConsoleError(e, lang).into_response())?;
        if !same_origin(&parts.headers, &origin) {
            return Err(refuse(lang));
        }
        let bytes = crate::extract::read_limited(body, FORM_LIMIT)
            .await
            .map_err(|e| ConsoleError(e, lang).into_response())?;
        let token = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        if token.as_deref() != Some(user.session.csrf.as_str()) {
            return Err(refuse(lang));
        }
        let form = serde_html_form::from_bytes::<T>(&bytes).map_err(|e| {
            ConsoleError(
                ApiError::bad_param("form", "invalid", format!("the form is not valid: {e}")),
                lang,
            )
            .into_response()
        })?;
        Ok(CsrfForm { user, form })
    }
}

/// The label of a review status in the page's language.
pub(crate) fn status_label(t: &Texts, status: shared_models::ReviewStatus) -> &'static str {
    use shared_models::ReviewStatus as S;
    match status {
        S::Submitted => t.st_submitted,
        S::Approved => t.st_approved,
        S::Rejected => t.st_rejected,
        S::ChangesRequested => t.st_changes_requested,
    }
}

/// `303 See Other` to `to` (after a form post, so a reload does not post again).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
