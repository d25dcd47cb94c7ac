//! Signing in and out, and the language switch. The sign-in form has no session to bind
//! a CSRF token to, so it sets a random one in a cookie and in the form, and the post
//! must bring both, equal, from this host (login CSRF).

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::i18n::{Lang, Texts};
use super::{
    cookie, html, over_https, same_origin, set_cookie, ConsoleError, CsrfForm, PageLang,
    LANG_COOKIE, LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};
use crate::error::ApiError;
use crate::extract::{ClientAddr, RequestOrigin};
use crate::services::web_sessions;
use crate::state::AppState;

#[derive(askama::Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    t: &'static Texts,
    lang: Lang,
    csrf: String,
    next: String,
    username: String,
    message: Option<&'static str>,
    message_kind: &'static str,
    switch_href: String,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
    signed_out: Option<String>,
}

/// Only a path of the console itself may be where a sign-in continues (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/console/".into(),
    }
}

fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    next: String,
    username: String,
    message: Option<(&'static str, &'static str)>,
    status: axum::http::StatusCode,
) -> Response {
    let token = web_sessions::random_token();
    let here = format!(
        "/console/login?next={}",
        form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    let page = LoginPage {
        t: lang.texts(),
        lang,
        csrf: token.clone(),
        next,
        username,
        message: message.map(|(m, _)| m),
        message_kind: message.map_or("", |(_, k)| k),
        switch_href: format!(
            "/console/lang?to={}&back={}",
            lang.other().code(),
            form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
        ),
    };
    let mut response = (status, html(&page)).into_response();
    let secure = over_https(state, headers);
    if let Ok(value) = set_cookie(LOGIN_CSRF_COOKIE, &token, secure, Some(3600)).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /console/login`.
pub async fn form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let t = lang.texts();
    let message = if q.expired.is_some() {
        Some((t.session_expired, "info"))
    } else if q.signed_out.is_some() {
        Some((t.signed_out, "info"))
    } else {
        None
    };
    let next = safe_next(q.next.as_deref());
    login_page(
        &state,
        &headers,
        lang,
        next,
        String::new(),
        message,
        axum::http::StatusCode::OK,
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /console/login`: the same credential check and throttles as the API's login.
pub async fn submit(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    ClientAddr(addr): ClientAddr,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let t = lang.texts();
    let bytes = match crate::extract::read_limited(body, 16 * 1024).await {
        Ok(b) => b,
        Err(e) => return ConsoleError(e, lang).into_response(),
    };
    let Ok(f) = serde_html_form::from_bytes::<LoginForm>(&bytes) else {
        return ConsoleError(ApiError::bad_param("form", "invalid", "bad form"), lang)
            .into_response();
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || f.csrf != expected || !same_origin(&headers, &origin) {
        let e = ApiError::Forbidden(t.csrf_refused.into());
        return ConsoleError(e, lang).into_response();
    }
    let next = safe_next(f.next.as_deref());
    let username = f.username.trim().to_lowercase();
    let refused = |message: &'static str, status| {
        login_page(
            &state,
            &headers,
            lang,
            next.clone(),
            username.clone(),
            Some((message, "error")),
            status,
        )
    };
    if username.is_empty()
        || f.password.is_empty()
        || username.len() > 64
        || f.password.len() > 1024
    {
        return refused(t.sign_in_failed, axum::http::StatusCode::UNAUTHORIZED);
    }
    match web_sessions::sign_in(&state, &username, f.password, addr).await {
        Ok(token) => {
            let secure = over_https(&state, &headers);
            let mut response = Redirect::to(&next).into_response();
            for value in [
                set_cookie(SESSION_COOKIE, &token, secure, None),
                set_cookie(LOGIN_CSRF_COOKIE, "", secure, Some(0)),
            ] {
                if let Ok(v) = value.parse() {
                    response.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            response
        }
        Err(ApiError::Unauthorized(_)) => {
            refused(t.sign_in_failed, axum::http::StatusCode::UNAUTHORIZED)
        }
        Err(ApiError::Forbidden(_)) => {
            refused(t.sign_in_field_role, axum::http::StatusCode::FORBIDDEN)
        }
        Err(ApiError::TooManyRequests { .. }) => refused(
            t.sign_in_throttled,
            axum::http::StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(ApiError::Unavailable { .. }) => {
            refused(t.sign_in_busy, axum::http::StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(e) => ConsoleError(e, lang).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

/// `POST /console/logout`: ends the session and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: CsrfForm<Nothing>,
) -> Response {
    let lang = form.user.lang;
    if let Err(e) = web_sessions::sign_out(&state, form.user.session.id).await {
        return ConsoleError(e, lang).into_response();
    }
    let mut response = Redirect::to("/console/login?signed_out=1").into_response();
    let secure = over_https(&state, &headers);
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", secure, Some(0)).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    to: Option<String>,
    back: Option<String>,
}

/// `GET /console/lang?to=en&back=…`: remembers the language and goes back.
pub async fn switch_lang(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = Lang::from_cookie(q.to.as_deref());
    let back = match q.back.as_deref() {
        Some(b) if b.starts_with("/console/login") => b.to_string(),
        other => safe_next(other),
    };
    let mut response = Redirect::to(&back).into_response();
    let secure = over_https(&state, &headers);
    if let Ok(v) = set_cookie(LANG_COOKIE, lang.code(), secure, Some(365 * 86_400)).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
