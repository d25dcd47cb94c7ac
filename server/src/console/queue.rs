//! The review queue: submitted visits in the caller's area, oldest first, filtered by
//! form, unit, author and period; several approved at once with each one's result.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use shared_models::{
    BulkReviewIn, OrgUnitFilter, QueueFilter, ReviewDecision, Role, SubmissionSource,
    SubmissionSummaryOut, UserFilter,
};
use uuid::Uuid;

use super::render::Names;
use super::{html, Chrome, ConsoleError, ConsoleUser, CsrfForm, Nav, OrPage, PageResult};
use crate::error::ApiError;
use crate::services::{accounts, forms as form_service, org_units, review};
use crate::state::AppState;

/// A choice of a filter's `<select>`.
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct Row {
    pub id: Uuid,
    pub form: String,
    pub place: String,
    pub author: String,
    pub day: String,
    pub device_times: String,
    pub received: String,
    pub source: &'static str,
}

#[derive(askama::Template)]
#[template(path = "console/queue.html")]
struct QueuePage {
    chrome: Chrome,
    forms: Vec<Opt>,
    units: Vec<Opt>,
    authors: Vec<Opt>,
    from: String,
    to: String,
    rows: Vec<Row>,
    next: Option<String>,
}

/// The queue's filters as a form sends them (empty fields are absent).
#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    form_id: Option<String>,
    org_unit_id: Option<String>,
    author_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

fn filled(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A form field that must be a UUID when given.
pub(crate) fn opt_uuid(field: &str, v: &Option<String>) -> Result<Option<Uuid>, ApiError> {
    filled(v)
        .map(|s| Uuid::parse_str(s).map_err(|_| ApiError::bad_param(field, "invalid", "not an id")))
        .transpose()
}

/// A form field that must be a `yyyy-mm-dd` day when given.
pub(crate) fn opt_day(
    field: &str,
    v: &Option<String>,
) -> Result<Option<chrono::NaiveDate>, ApiError> {
    filled(v)
        .map(|s| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| ApiError::bad_param(field, "invalid", "expected yyyy-mm-dd"))
        })
        .transpose()
}

/// Parses a query string the way a browser's GET form sends it.
pub(crate) fn parse_query<T: for<'de> Deserialize<'de> + Default>(
    raw: &Option<String>,
) -> Result<T, ApiError> {
    match raw.as_deref() {
        None | Some("") => Ok(T::default()),
        Some(q) => serde_html_form::from_str(q)
            .map_err(|e| ApiError::bad_param("query", "invalid", e.to_string())),
    }
}

/// The source of a visit in words.
pub(crate) fn source_label(t: &super::i18n::Texts, s: SubmissionSource) -> &'static str {
    match s {
        SubmissionSource::App => t.source_app,
        SubmissionSource::OdkCollect => t.source_odk,
    }
}

/// `GET /console/`: the review queue.
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = user.lang;
    let p = user.principal().clone();
    let q: QueueQuery = parse_query(&raw).or_page(lang)?;
    let filter = QueueFilter {
        form_id: filled(&q.form_id).map(str::to_string),
        org_unit_id: opt_uuid("org_unit_id", &q.org_unit_id).or_page(lang)?,
        author_id: opt_uuid("author_id", &q.author_id).or_page(lang)?,
        from: opt_day("from", &q.from).or_page(lang)?,
        to: opt_day("to", &q.to).or_page(lang)?,
        cursor: filled(&q.cursor).map(str::to_string),
        limit: Some(50),
    };
    let page = review::queue(&state, &p, &filter).await.or_page(lang)?;
    let rows = rows(&state, &user, &page.items).await?;

    let forms = form_service::list_latest(&state.db, p.role)
        .await
        .or_page(lang)?
        .into_iter()
        .map(|f| {
            let def: Option<mobile_schema::FormDefinition> =
                serde_json::from_value(f.definition.clone()).ok();
            Opt {
                selected: filter.form_id.as_deref() == Some(f.form_id.as_str()),
                label: def.map_or(f.form_id.clone(), |d| match lang {
                    super::i18n::Lang::Vi => d.title.vi,
                    super::i18n::Lang::En => d.title.en,
                }),
                value: f.form_id,
            }
        })
        .collect();
    let units = org_units::list(
        &state,
        &p,
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
        selected: filter.org_unit_id == Some(u.id),
        value: u.id.to_string(),
        label: u.name,
    })
    .collect();
    let authors = accounts::list_users(
        &state,
        &p,
        &UserFilter {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .or_page(lang)?
    .items
    .into_iter()
    .filter(|u| matches!(u.role, Role::PeerEducator | Role::Volunteer))
    .map(|u| Opt {
        selected: filter.author_id == Some(u.id),
        value: u.id.to_string(),
        label: u.username,
    })
    .collect();
    let next = page.next_cursor.map(|c| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("form_id", &q.form_id),
            ("org_unit_id", &q.org_unit_id),
            ("author_id", &q.author_id),
            ("from", &q.from),
            ("to", &q.to),
        ] {
            if let Some(v) = filled(v) {
                query.append_pair(k, v);
            }
        }
        query.append_pair("cursor", &c);
        format!("/console/?{}", query.finish())
    });
    Ok(html(&QueuePage {
        chrome: user.chrome(Nav::Queue),
        forms,
        units,
        authors,
        from: filled(&q.from).unwrap_or_default().to_string(),
        to: filled(&q.to).unwrap_or_default().to_string(),
        rows,
        next,
    }))
}

async fn rows(
    state: &AppState,
    user: &ConsoleUser,
    items: &[SubmissionSummaryOut],
) -> Result<Vec<Row>, ConsoleError> {
    let lang = user.lang;
    let t = lang.texts();
    let names = Names::load(
        state,
        user.principal(),
        items.iter().map(|s| s.org_unit_id),
        items.iter().filter_map(|s| s.hotspot_id),
        items.iter().map(|s| s.author_id),
        items.iter().map(|s| (s.form_id.clone(), s.form_version)),
    )
    .await
    .or_page(lang)?;
    Ok(items
        .iter()
        .map(|s| Row {
            id: s.id,
            form: names.form_title(&s.form_id, s.form_version, lang),
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
        })
        .collect())
}

/// One line of the bulk result.
pub struct BulkItem {
    pub id: Uuid,
    pub label: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(askama::Template)]
#[template(path = "console/bulk.html")]
struct BulkPage {
    chrome: Chrome,
    items: Vec<BulkItem>,
    succeeded: u32,
    failed: u32,
}

#[derive(Debug, Default, Deserialize)]
pub struct ApproveForm {
    #[serde(default)]
    ids: Vec<String>,
}

/// `POST /console/queue/approve`: the selected visits approved, each in its own
/// transaction, with each one's result shown.
pub async fn approve(State(state): State<AppState>, form: CsrfForm<ApproveForm>) -> Response {
    let CsrfForm { user, form } = form;
    let lang = user.lang;
    let result: PageResult = async {
        let ids = form
            .ids
            .iter()
            .map(|s| {
                Uuid::parse_str(s).map_err(|_| ApiError::bad_param("ids", "invalid", "not an id"))
            })
            .collect::<Result<Vec<_>, _>>()
            .or_page(lang)?;
        if ids.is_empty() {
            return Ok(html(&BulkPage {
                chrome: user.chrome(Nav::Queue),
                items: Vec::new(),
                succeeded: 0,
                failed: 0,
            }));
        }
        let input = BulkReviewIn {
            ids: ids.into_iter().take(200).collect(),
            decision: ReviewDecision::Approve,
            comment: None,
        };
        let out = review::review_many(&state, user.principal(), &input)
            .await
            .or_page(lang)?;
        let items = out
            .items
            .iter()
            .map(|i| BulkItem {
                id: i.id,
                label: i.id.simple().to_string()[..8].to_string(),
                ok: i.status == 200,
                detail: i
                    .problem
                    .as_ref()
                    .and_then(|p| p.detail.clone())
                    .map(|d| super::visit::explain(lang, &d))
                    .unwrap_or_default(),
            })
            .collect();
        Ok(html(&BulkPage {
            chrome: user.chrome(Nav::Queue),
            items,
            succeeded: out.succeeded,
            failed: out.failed,
        }))
    }
    .await;
    match result {
        Ok(r) => r,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}
