//! One visit as a reviewer sees it: its answers with the form's labels, place, author,
//! source, photos inline (full size on click; missing ones marked), review history,
//! earlier revisions with what changed, and the decision form. Reading it is audited
//! (`submissions::get`), as through the API, and so is every photo read.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared_models::{Problem, ReviewDecision, ReviewIn, ReviewStatus, Role};
use uuid::Uuid;

use super::i18n::Lang;
use super::queue::{parse_query, source_label};
use super::render::{answers_html, changes, Names};
use super::{
    html, status_label, Chrome, ConsoleError, ConsoleUser, CsrfForm, Nav, OrPage, PageResult,
};
use crate::error::ApiError;
use crate::extract::Path;
use crate::services::photos::{self, PhotoRead};
use crate::services::{review, submissions};
use crate::state::AppState;

pub struct PhotoView {
    pub url: String,
    pub anchor: String,
    pub present: bool,
}

pub struct EventView {
    pub at: String,
    pub actor: String,
    pub moved: String,
    pub comment: Option<String>,
}

pub struct RevisionView {
    pub number: u32,
    pub received: String,
    pub changes: Vec<String>,
}

#[derive(askama::Template)]
#[template(path = "console/visit.html")]
struct VisitPage {
    chrome: Chrome,
    id: Uuid,
    form_title: String,
    status: &'static str,
    status_class: &'static str,
    place: String,
    author: String,
    day: String,
    device_times: String,
    received: String,
    source: &'static str,
    revision: u32,
    answers: String,
    referrals: Vec<(String, String, &'static str)>,
    photos: Vec<PhotoView>,
    history: Vec<EventView>,
    revisions: Vec<RevisionView>,
    can_decide: bool,
    why_not: &'static str,
    comment: String,
    message: Option<String>,
    message_kind: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub struct VisitQuery {
    done: Option<String>,
}

/// A review fault in the reviewer's words.
pub fn explain(lang: Lang, problem_detail: &str) -> String {
    let t = lang.texts();
    let vi = lang == Lang::Vi;
    if let Some(state) = problem_detail
        .strip_prefix("the submission is `")
        .and_then(|rest| rest.split('`').next())
        .and_then(ReviewStatus::parse)
    {
        let label = status_label(t, state);
        return if vi {
            format!(
                "Lượt ghi này đang ở trạng thái «{label}», nên không thể duyệt hoặc trả lại nữa."
            )
        } else {
            format!("This visit is “{label}”, so it cannot be reviewed any more.")
        };
    }
    if problem_detail.contains("photo(s) have not arrived") {
        let n: String = problem_detail
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        return if vi {
            format!("Còn {n} ảnh chưa được gửi lên; chỉ duyệt được khi đã đủ ảnh.")
        } else {
            format!("{n} photo(s) have not arrived yet; approve once they have.")
        };
    }
    if problem_detail.contains("your own submission") {
        return t.own_visit.to_string();
    }
    if problem_detail.contains("say why") || problem_detail.contains("comment") {
        return t.comment_needed.to_string();
    }
    problem_detail.to_string()
}

fn status_class(s: ReviewStatus) -> &'static str {
    s.as_str()
}

async fn render(
    state: &AppState,
    user: &ConsoleUser,
    id: Uuid,
    message: Option<(String, &'static str)>,
    comment: String,
) -> Result<VisitPage, ConsoleError> {
    let lang = user.lang;
    let t = lang.texts();
    let p = user.principal();
    let out = submissions::get(&state.db, p, id).await.or_page(lang)?;
    let s = &out.summary;
    let names = Names::load(
        state,
        p,
        [s.org_unit_id],
        s.hotspot_id,
        std::iter::once(s.author_id).chain(out.events.iter().map(|e| e.actor_id)),
        [(s.form_id.clone(), s.form_version)],
    )
    .await
    .or_page(lang)?;
    let def = names.form(&s.form_id, s.form_version).cloned();
    let answers = def
        .as_ref()
        .map(|d| answers_html(lang, t, d, &out.answers))
        .unwrap_or_default();
    let photos = out
        .photos
        .iter()
        .map(|ph| PhotoView {
            url: format!("/console/visits/{id}/photos/{}", ph.sha256),
            anchor: ph.sha256.chars().take(12).collect(),
            present: ph.present,
        })
        .collect();
    let history = out
        .events
        .iter()
        .map(|e| EventView {
            at: lang.datetime(e.at),
            actor: names.user(e.actor_id),
            moved: match e.from_status {
                Some(from) => format!(
                    "{} → {}",
                    status_label(t, from),
                    status_label(t, e.to_status)
                ),
                None => status_label(t, e.to_status).to_string(),
            },
            comment: e.comment.clone(),
        })
        .collect();
    // Earlier revisions, each against the one after it (the last against the current).
    let mut revisions = Vec::new();
    if s.revision > 1 {
        let earlier = review::revisions(state, p, id).await.or_page(lang)?;
        for (i, r) in earlier.iter().enumerate() {
            let next = earlier.get(i + 1).map_or(&out.answers, |n| &n.answers);
            let changed = def
                .as_ref()
                .map(|d| changes(lang, t, d, &r.answers, next))
                .unwrap_or_default();
            revisions.push(RevisionView {
                number: r.revision,
                received: lang.datetime(r.received_at),
                changes: changed,
            });
        }
    }
    let own = s.author_id == p.user_id;
    let can_decide = s.status == ReviewStatus::Submitted && !own;
    let why_not = if own { t.own_visit } else { t.final_state };
    let (message, message_kind) = match message {
        Some((m, k)) => (Some(m), k),
        None => (None, ""),
    };
    Ok(VisitPage {
        chrome: user.chrome(Nav::Queue),
        id,
        form_title: names.form_title(&s.form_id, s.form_version, lang),
        status: status_label(t, s.status),
        status_class: status_class(s.status),
        place: names.place(s.org_unit_id, s.hotspot_id),
        author: names.user(s.author_id),
        day: lang.date(s.occurred_on),
        device_times: format!(
            "{} – {}",
            lang.datetime(s.started_at),
            lang.datetime(s.completed_at)
        ),
        received: lang.datetime(s.received_at),
        source: source_label(t, s.source),
        revision: s.revision,
        answers,
        referrals: out
            .referrals
            .iter()
            .map(|r| {
                (
                    r.code.clone(),
                    r.service.clone(),
                    super::referrals::status_text(t, r.status),
                )
            })
            .collect(),
        photos,
        history,
        revisions,
        can_decide,
        why_not: if s.status == ReviewStatus::Submitted || own {
            why_not
        } else {
            t.final_state
        },
        comment,
        message,
        message_kind,
    })
}

/// `GET /console/visits/{id}` (404 outside the caller's area).
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<Uuid>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let q: VisitQuery = parse_query(&raw).or_page(user.lang)?;
    let message = q
        .done
        .map(|_| (user.lang.texts().decided.to_string(), "ok"));
    Ok(html(
        &render(&state, &user, id, message, String::new()).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct DecisionForm {
    decision: Option<String>,
    #[serde(default)]
    comment: String,
}

/// `POST /console/visits/{id}/decision`: the same review as the API's; a refused move is
/// explained in words on the page, the comment kept.
pub async fn decide(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    form: CsrfForm<DecisionForm>,
) -> Response {
    let CsrfForm { user, form } = form;
    let lang = user.lang;
    let decision = match form.decision.as_deref() {
        Some("approve") => ReviewDecision::Approve,
        Some("reject") => ReviewDecision::Reject,
        Some("request_changes") => ReviewDecision::RequestChanges,
        _ => {
            return ConsoleError(
                ApiError::bad_param("decision", "invalid", "choose a decision"),
                lang,
            )
            .into_response()
        }
    };
    let comment = form.comment.chars().take(2000).collect::<String>();
    let input = ReviewIn {
        decision,
        comment: Some(comment.clone()).filter(|c| !c.trim().is_empty()),
    };
    match review::review(&state, user.principal(), id, &input).await {
        Ok(_) => super::see_other(&format!("/console/visits/{id}?done=1")),
        Err(
            e @ (ApiError::Conflict { .. } | ApiError::Validation { .. } | ApiError::Forbidden(_)),
        ) => {
            let status = e.status();
            let problem: Problem = e.problem();
            let message = explain(lang, problem.detail.as_deref().unwrap_or_default());
            let message = match &e {
                ApiError::Validation { errors, .. }
                    if errors.iter().any(|f| f.field == "comment") =>
                {
                    lang.texts().comment_needed.to_string()
                }
                _ => message,
            };
            match render(&state, &user, id, Some((message, "error")), comment).await {
                Ok(page) => (status, html(&page)).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => ConsoleError(e, lang).into_response(),
    }
}

/// `GET /console/visits/{id}/photos/{sha256}`: the photo, for a reviewer in scope (404
/// otherwise); every read is audited.
pub async fn photo(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((id, sha256)): Path<(Uuid, String)>,
    headers: HeaderMap,
) -> PageResult {
    let lang = user.lang;
    if !matches!(user.principal().role, Role::Supervisor | Role::Admin) {
        return Err(ConsoleError(ApiError::NotFound("photo"), lang));
    }
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    match photos::read(&state, user.principal(), id, &sha256, if_none_match, false)
        .await
        .or_page(lang)?
    {
        PhotoRead::Stream {
            object,
            content_type,
            etag,
        } => Ok((
            [
                (header::CONTENT_TYPE, content_type),
                (header::ETAG, etag),
                (header::CACHE_CONTROL, "private, max-age=300".to_string()),
            ],
            axum::body::Body::from_stream(object.body),
        )
            .into_response()),
        PhotoRead::NotModified { etag } => {
            Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response())
        }
        PhotoRead::Redirect(url) => Ok(axum::response::Redirect::temporary(&url).into_response()),
    }
}
