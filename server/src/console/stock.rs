//! Stock: balances per peer educator and item over a period, with the reconciliation
//! (closing = opening + received − distributed − returned − lost), negative balances
//! flagged; and the form that records stock issued, returned or lost.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use shared_models::{
    Commodity, Role, StockMovementIn, StockMovementKind, StockReportQuery, UserFilter,
};

use super::i18n::Lang;
use super::queue::{opt_day, parse_query, Opt};
use super::{html, Chrome, ConsoleError, ConsoleUser, CsrfForm, Nav, OrPage, PageResult};
use crate::error::ApiError;
use crate::services::{accounts, stock};
use crate::state::AppState;

/// A commodity in words.
pub fn item_text(lang: Lang, c: Commodity) -> &'static str {
    match (lang, c) {
        (Lang::Vi, Commodity::MaleCondom) => "Bao cao su nam",
        (Lang::Vi, Commodity::FemaleCondom) => "Bao cao su nữ",
        (Lang::Vi, Commodity::Lubricant) => "Chất bôi trơn",
        (Lang::Vi, Commodity::SelfTestKit) => "Bộ tự xét nghiệm HIV",
        (Lang::En, Commodity::MaleCondom) => "Male condoms",
        (Lang::En, Commodity::FemaleCondom) => "Female condoms",
        (Lang::En, Commodity::Lubricant) => "Lubricant",
        (Lang::En, Commodity::SelfTestKit) => "HIV self-test kits",
    }
}

pub struct Line {
    pub peer: String,
    pub item: &'static str,
    pub opening: String,
    pub received: String,
    pub distributed: String,
    pub returned: String,
    pub lost: String,
    pub closing: String,
    pub negative: bool,
}

#[derive(askama::Template)]
#[template(path = "console/stock.html")]
struct StockPage {
    chrome: Chrome,
    from: String,
    to: String,
    from_label: String,
    to_label: String,
    today: String,
    lines: Vec<Line>,
    peers: Vec<Opt>,
    items: Vec<Opt>,
    kinds: Vec<Opt>,
    message: Option<String>,
    message_kind: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub struct StockQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The period shown: the query's, or this month so far.
fn period(q: &StockQuery) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let today = chrono::Utc::now().date_naive();
    let first = today.with_day(1).unwrap_or(today);
    Ok((
        opt_day("from", &q.from)?.unwrap_or(first),
        opt_day("to", &q.to)?.unwrap_or(today),
    ))
}

async fn render(
    state: &AppState,
    user: &ConsoleUser,
    from: NaiveDate,
    to: NaiveDate,
    message: Option<(String, &'static str)>,
) -> Result<StockPage, ConsoleError> {
    let lang = user.lang;
    let t = lang.texts();
    let p = user.principal();
    let report = stock::report(
        &state.db,
        p,
        &StockReportQuery {
            org_unit_id: None,
            peer_id: None,
            from,
            to,
        },
    )
    .await
    .or_page(lang)?;
    let mut lines = Vec::new();
    for peer in &report.peers {
        for l in &peer.items {
            lines.push(Line {
                peer: peer.username.clone(),
                item: item_text(lang, l.item),
                opening: lang.number(l.opening),
                received: lang.number(l.received),
                distributed: lang.number(l.distributed),
                returned: lang.number(l.returned),
                lost: lang.number(l.lost),
                closing: lang.number(l.closing),
                negative: l.went_negative || l.closing < 0,
            });
        }
    }
    let peers = accounts::list_users(
        state,
        p,
        &UserFilter {
            role: Some(Role::PeerEducator),
            active: Some(true),
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
        label: u.username,
        selected: false,
    })
    .collect();
    let items = Commodity::ALL
        .into_iter()
        .map(|c| Opt {
            value: c.as_str().into(),
            label: item_text(lang, c).into(),
            selected: false,
        })
        .collect();
    let kinds = [
        (StockMovementKind::Issued, t.received_stock),
        (StockMovementKind::Returned, t.returned),
        (StockMovementKind::Lost, t.lost),
    ]
    .into_iter()
    .map(|(k, l)| Opt {
        value: k.as_str().into(),
        label: l.into(),
        selected: false,
    })
    .collect();
    let (message, message_kind) = match message {
        Some((m, k)) => (Some(m), k),
        None => (None, ""),
    };
    Ok(StockPage {
        chrome: user.chrome(Nav::Stock),
        from: from.to_string(),
        to: to.to_string(),
        from_label: lang.date(from),
        to_label: lang.date(to),
        today: chrono::Utc::now().date_naive().to_string(),
        lines,
        peers,
        items,
        kinds,
        message,
        message_kind,
    })
}

/// `GET /console/stock`.
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = user.lang;
    let q: StockQuery = parse_query(&raw).or_page(lang)?;
    let (from, to) = period(&q).or_page(lang)?;
    Ok(html(&render(&state, &user, from, to, None).await?))
}

#[derive(Debug, Default, Deserialize)]
pub struct MovementForm {
    peer_id: Option<String>,
    item: Option<String>,
    kind: Option<String>,
    quantity: Option<String>,
    occurred_on: Option<String>,
    note: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `POST /console/stock`: records a movement through the same service as the API.
pub async fn record(State(state): State<AppState>, form: CsrfForm<MovementForm>) -> Response {
    let CsrfForm { user, form: f } = form;
    let lang = user.lang;
    let result: Result<(), ApiError> = async {
        let peer_id = super::queue::opt_uuid("peer_id", &f.peer_id)?
            .ok_or_else(|| ApiError::invalid("peer_id", "required", "choose a peer educator"))?;
        let item = f
            .item
            .as_deref()
            .and_then(Commodity::parse)
            .ok_or_else(|| ApiError::invalid("item", "invalid", "choose an item"))?;
        let kind = f
            .kind
            .as_deref()
            .and_then(StockMovementKind::parse)
            .ok_or_else(|| ApiError::invalid("kind", "invalid", "choose a kind"))?;
        let quantity: u32 = f
            .quantity
            .as_deref()
            .and_then(|q| q.trim().parse().ok())
            .filter(|q| *q >= 1)
            .ok_or_else(|| {
                ApiError::invalid("quantity", "invalid", "a whole number, at least 1")
            })?;
        let occurred_on = opt_day("occurred_on", &f.occurred_on)?
            .ok_or_else(|| ApiError::invalid("occurred_on", "required", "give the day"))?;
        let note = f
            .note
            .clone()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        let input = StockMovementIn {
            peer_id,
            item,
            kind,
            quantity,
            occurred_on,
            note,
        };
        validator::Validate::validate(&input)
            .map_err(|e| ApiError::bad_param("form", "invalid", e.to_string()))?;
        stock::record_movement(&state.db, user.principal(), input).await?;
        Ok(())
    }
    .await;
    let q = StockQuery {
        from: f.from.clone(),
        to: f.to.clone(),
    };
    let (from, to) = match period(&q) {
        Ok(p) => p,
        Err(e) => return ConsoleError(e, lang).into_response(),
    };
    let t = lang.texts();
    let (status, message) = match result {
        Ok(()) => (StatusCode::OK, (t.recorded.to_string(), "ok")),
        Err(
            e @ (ApiError::Validation { .. }
            | ApiError::BadRequest { .. }
            | ApiError::NotFound(_)
            | ApiError::Conflict { .. }),
        ) => {
            let status = e.status();
            let p = e.problem();
            let detail = p
                .errors
                .first()
                .map(|f| format!("{}: {}", f.field, f.message))
                .or(p.detail)
                .unwrap_or_default();
            (status, (detail, "error"))
        }
        Err(e) => return ConsoleError(e, lang).into_response(),
    };
    match render(&state, &user, from, to, Some(message)).await {
        Ok(page) => (status, html(&page)).into_response(),
        Err(e) => e.into_response(),
    }
}
