//! Referrals: by status, service and period, with their printed codes and the
//! completion rate (completed ÷ issued) by service.

use axum::extract::{RawQuery, State};
use serde::Deserialize;
use shared_models::{ReferralFilter, ReferralStatus};
use uuid::Uuid;

use super::i18n::{Lang, Texts};
use super::queue::{opt_day, parse_query, Opt};
use super::{html, Chrome, ConsoleUser, Nav, OrPage, PageResult};
use crate::services::referrals;
use crate::state::AppState;

/// The services a referral is issued for, as the outreach form names them.
pub const SERVICES: [&str; 4] = ["hiv_test", "sti_exam", "prep", "other"];

/// A referral status in words.
pub fn status_text(t: &Texts, s: ReferralStatus) -> &'static str {
    match s {
        ReferralStatus::Issued => t.issued,
        ReferralStatus::Completed => t.completed,
        ReferralStatus::Expired => t.expired,
        ReferralStatus::Declined => t.declined,
    }
}

/// A service in words.
pub fn service_text(lang: Lang, s: &str) -> String {
    let (vi, en) = match s {
        "hiv_test" => ("Xét nghiệm HIV", "HIV test"),
        "sti_exam" => ("Khám STI", "STI exam"),
        "prep" => ("PrEP", "PrEP"),
        "other" => ("Khác", "Other"),
        other => (other, other),
    };
    match lang {
        Lang::Vi => vi.to_string(),
        Lang::En => en.to_string(),
    }
}

pub struct RateRow {
    pub service: String,
    pub issued: String,
    pub completed: String,
    pub expired: String,
    pub rate: String,
}

pub struct ReferralRow {
    pub code: String,
    pub service: String,
    pub status: &'static str,
    pub issued_on: String,
    pub completed_on: String,
    pub submission_id: Uuid,
}

#[derive(askama::Template)]
#[template(path = "console/referrals.html")]
struct ReferralsPage {
    chrome: Chrome,
    statuses: Vec<Opt>,
    services: Vec<Opt>,
    from: String,
    to: String,
    rates: Vec<RateRow>,
    rows: Vec<ReferralRow>,
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ReferralQuery {
    status: Option<String>,
    service: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// `GET /console/referrals`.
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = user.lang;
    let t = lang.texts();
    let q: ReferralQuery = parse_query(&raw).or_page(lang)?;
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let status = nonempty(&q.status).and_then(|s| ReferralStatus::parse(&s));
    let service = nonempty(&q.service).filter(|s| SERVICES.contains(&s.as_str()));
    let filter = ReferralFilter {
        status,
        service: service.clone(),
        org_unit_id: None,
        from: opt_day("from", &q.from).or_page(lang)?,
        to: opt_day("to", &q.to).or_page(lang)?,
        cursor: nonempty(&q.cursor),
        limit: Some(100),
    };
    let p = user.principal();
    let page = referrals::list(&state.db, p, &filter).await.or_page(lang)?;
    let counts = referrals::counts(&state.db, p, &filter)
        .await
        .or_page(lang)?;
    let rates = SERVICES
        .iter()
        .filter(|s| service.as_deref().is_none_or(|f| f == **s))
        .map(|s| {
            let of = |st: Option<ReferralStatus>| -> i64 {
                counts
                    .iter()
                    .filter(|(svc, status, _)| svc == s && st.is_none_or(|x| x == *status))
                    .map(|(_, _, n)| *n)
                    .sum()
            };
            let issued = of(None);
            let completed = of(Some(ReferralStatus::Completed));
            RateRow {
                service: service_text(lang, s),
                issued: lang.number(issued),
                completed: lang.number(completed),
                expired: lang.number(of(Some(ReferralStatus::Expired))),
                rate: if issued > 0 {
                    lang.percent(completed as f64 / issued as f64)
                } else {
                    "—".into()
                },
            }
        })
        .collect();
    let rows = page
        .items
        .iter()
        .map(|r| ReferralRow {
            code: r.code.clone(),
            service: service_text(lang, &r.service),
            status: status_text(t, r.status),
            issued_on: lang.date(r.issued_on),
            completed_on: r.completed_on.map(|d| lang.date(d)).unwrap_or_default(),
            submission_id: r.submission_id,
        })
        .collect();
    let statuses = [
        ReferralStatus::Issued,
        ReferralStatus::Completed,
        ReferralStatus::Expired,
        ReferralStatus::Declined,
    ]
    .into_iter()
    .map(|s| Opt {
        value: s.as_str().to_string(),
        label: status_text(t, s).to_string(),
        selected: status == Some(s),
    })
    .collect();
    let services = SERVICES
        .iter()
        .map(|s| Opt {
            value: (*s).to_string(),
            label: service_text(lang, s),
            selected: service.as_deref() == Some(*s),
        })
        .collect();
    let next = page.next_cursor.map(|c| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("status", &q.status),
            ("service", &q.service),
            ("from", &q.from),
            ("to", &q.to),
        ] {
            if let Some(v) = nonempty(v) {
                query.append_pair(k, &v);
            }
        }
        query.append_pair("cursor", &c);
        format!("/console/referrals?{}", query.finish())
    });
    Ok(html(&ReferralsPage {
        chrome: user.chrome(Nav::Referrals),
        statuses,
        services,
        from: nonempty(&q.from).unwrap_or_default(),
        to: nonempty(&q.to).unwrap_or_default(),
        rates,
        rows,
        next,
    }))
}
