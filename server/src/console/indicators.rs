//! Indicators: a unit and a period (calendar quarter or year, the national HIV quarter,
//! the PEPFAR fiscal year, any dates); the indicators beside their targets with the
//! share achieved; one indicator by child unit as an SVG bar chart drawn here (with its
//! title, and the table beside it); CSV of the same report. Counts of 1 to 4 people are
//! suppressed exactly as the API suppresses them: the page shows the report's cells.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use chrono::Datelike;
use serde::Deserialize;
use shared_models::{IndicatorQuery, IndicatorReportOut, IndicatorValueOut, OrgUnitFilter};

use super::i18n::{Lang, Texts};
use super::queue::{opt_day, parse_query, Opt};
use super::render::esc;
use super::{html, Chrome, ConsoleUser, Nav, OrPage, PageResult};
use crate::error::ApiError;
use crate::services::{org_units, reports};
use crate::state::AppState;

/// An indicator key in words.
pub fn indicator_label(lang: Lang, key: &str) -> String {
    let vi = lang == Lang::Vi;
    let pick = |v: &str, e: &str| if vi { v.to_string() } else { e.to_string() };
    if let Some(s) = key.strip_prefix("referrals_issued.") {
        let svc = super::referrals::service_text(lang, s);
        return if vi {
            format!("Người được chuyển gửi: {svc}")
        } else {
            format!("People referred: {svc}")
        };
    }
    if let Some(s) = key.strip_prefix("referrals_completed.") {
        let svc = super::referrals::service_text(lang, s);
        return if vi {
            format!("Chuyển gửi thành công: {svc}")
        } else {
            format!("Referrals completed: {svc}")
        };
    }
    if let Some(a) = key.strip_prefix("group_participants.") {
        let who = match a {
            "establishment_owners" => pick("chủ cơ sở", "establishment owners"),
            "workers" => pick("người làm việc tại cơ sở", "workers"),
            "community" => pick("cộng đồng", "community"),
            other => other.to_string(),
        };
        return if vi {
            format!("Người dự sinh hoạt nhóm: {who}")
        } else {
            format!("Group-session participants: {who}")
        };
    }
    match key {
        "people_reached" => pick("Số người được tiếp cận", "People reached"),
        "people_new" => pick("Người mới", "New people"),
        "people_returning" => pick("Người cũ quay lại", "Returning people"),
        "contact_events" => pick("Lượt tiếp cận", "Contact events"),
        "condoms_male" => pick("Bao cao su nam", "Male condoms"),
        "condoms_female" => pick("Bao cao su nữ", "Female condoms"),
        "lubricant" => pick("Chất bôi trơn", "Lubricant"),
        "self_test_kits" => pick("Bộ tự xét nghiệm HIV", "HIV self-test kits"),
        "group_sessions" => pick("Buổi sinh hoạt nhóm", "Group sessions"),
        "support.counselling" => pick("Hỗ trợ: tư vấn", "Support: counselling"),
        "support.job_referral" => pick("Hỗ trợ: giới thiệu việc làm", "Support: job referral"),
        "support.vocational_training" => pick("Hỗ trợ: học nghề", "Support: vocational training"),
        "support.loan" => pick("Hỗ trợ: vay vốn", "Support: loan"),
        "support.health_insurance" => pick(
            "Hỗ trợ: thẻ bảo hiểm y tế",
            "Support: health insurance card",
        ),
        "support.rehab_persuasion" => {
            pick("Hỗ trợ: vận động cai nghiện", "Support: rehab persuasion")
        }
        "support.loan_amount_vnd" => pick("Số tiền vay (đồng)", "Loan amount (VND)"),
        other => other.to_string(),
    }
}

pub struct IndicatorRow {
    pub label: String,
    pub value: String,
    pub target: String,
    pub achieved: String,
}

pub struct ChildRow {
    pub name: String,
    pub value: String,
    pub target: String,
}

pub struct ReportView {
    pub unit_name: String,
    pub from: String,
    pub to: String,
    pub csv_href: String,
    pub rows: Vec<IndicatorRow>,
    pub chart_label: String,
    pub chart_svg: String,
    pub children: Vec<ChildRow>,
}

#[derive(askama::Template)]
#[template(path = "console/indicators.html")]
struct IndicatorsPage {
    chrome: Chrome,
    units: Vec<Opt>,
    kinds: Vec<Opt>,
    quarters: Vec<Opt>,
    charts: Vec<Opt>,
    year: i32,
    from: String,
    to: String,
    message: Option<String>,
    report: Option<ReportView>,
}

#[derive(Debug, Default, Deserialize)]
pub struct IndicatorsQuery {
    org_unit: Option<String>,
    kind: Option<String>,
    year: Option<String>,
    quarter: Option<String>,
    from: Option<String>,
    to: Option<String>,
    chart: Option<String>,
}

/// The report query a page's picker names (default: this calendar quarter).
fn report_query(
    q: &IndicatorsQuery,
    today: chrono::NaiveDate,
) -> Result<(IndicatorQuery, i32, u32, String), ApiError> {
    let year = q
        .year
        .as_deref()
        .and_then(|y| y.trim().parse::<i32>().ok())
        .unwrap_or(today.year());
    let quarter = q
        .quarter
        .as_deref()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|q| (1..=4).contains(q))
        .unwrap_or((today.month() - 1) / 3 + 1);
    let kind = q.kind.clone().unwrap_or_else(|| "quarter".into());
    let org_unit = super::queue::opt_uuid("org_unit", &q.org_unit)?;
    let period = match kind.as_str() {
        "year" => Some(format!("{year}")),
        "vn_quarter" => Some(format!("VN{year}Q{quarter}")),
        "pepfar_year" => Some(format!("FY{year}")),
        "custom" => None,
        _ => Some(format!("{year}Q{quarter}")),
    };
    let (from, to) = if period.is_none() {
        (opt_day("from", &q.from)?, opt_day("to", &q.to)?)
    } else {
        (None, None)
    };
    Ok((
        IndicatorQuery {
            org_unit,
            period,
            from,
            to,
            format: None,
        },
        year,
        quarter,
        kind,
    ))
}

fn cell_text(lang: Lang, t: &Texts, c: &IndicatorValueOut) -> String {
    match (c.value, c.suppressed) {
        (_, true) => t.suppressed.to_string(),
        (Some(v), false) => lang.number(v),
        (None, false) => "—".into(),
    }
}

/// A horizontal bar chart of one indicator by child unit, as SVG: a bar per unit (none
/// for a suppressed cell, labelled so), the target as a dashed mark, a title for
/// screen readers. Only attributes and classes: the CSP allows no inline style.
pub fn bar_chart(
    lang: Lang,
    t: &Texts,
    title: &str,
    rows: &[(String, &IndicatorValueOut)],
) -> String {
    const ROW: i64 = 26;
    const LABEL_W: i64 = 170;
    const BAR_W: i64 = 300;
    let width = LABEL_W + BAR_W + 90;
    let height = ROW * rows.len().max(1) as i64 + 30;
    let max = rows
        .iter()
        .flat_map(|(_, c)| [c.value.unwrap_or(0), c.target.unwrap_or(0)])
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"chart-title\"><title id=\"chart-title\">{}</title>",
        esc(title)
    );
    for (i, (name, c)) in rows.iter().enumerate() {
        let y = 10 + ROW * i as i64;
        let short: String = name.chars().take(24).collect();
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LABEL_W - 8,
            y + 15,
            esc(&short)
        ));
        let text = cell_text(lang, t, c);
        if let (Some(v), false) = (c.value, c.suppressed) {
            let w = (v * BAR_W / max).max(if v > 0 { 1 } else { 0 });
            svg.push_str(&format!(
                "<rect class=\"bar\" x=\"{LABEL_W}\" y=\"{}\" width=\"{w}\" height=\"18\"><title>{}: {}</title></rect>",
                y + 2,
                esc(name),
                esc(&text)
            ));
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\">{}</text>",
                LABEL_W + w + 6,
                y + 15,
                esc(&text)
            ));
        } else {
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\">{}</text>",
                LABEL_W + 6,
                y + 15,
                esc(&text)
            ));
        }
        if let Some(target) = c.target {
            let x = LABEL_W + target * BAR_W / max;
            svg.push_str(&format!(
                "<rect class=\"target\" x=\"{x}\" y=\"{}\" width=\"2\" height=\"22\"><title>{}: {}</title></rect>",
                y,
                esc(t.target),
                lang.number(target)
            ));
        }
    }
    let axis_y = 10 + ROW * rows.len().max(1) as i64;
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{LABEL_W}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\"/><text x=\"{LABEL_W}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text></svg>",
        LABEL_W + BAR_W,
        axis_y + 14,
        LABEL_W + BAR_W,
        axis_y + 14,
        lang.number(max)
    ));
    svg
}

fn report_view(
    lang: Lang,
    t: &Texts,
    report: &IndicatorReportOut,
    chart: &str,
    csv_href: String,
) -> ReportView {
    let rows = report
        .unit
        .indicators
        .iter()
        .map(|c| IndicatorRow {
            label: indicator_label(lang, &c.indicator),
            value: cell_text(lang, t, c),
            target: c.target.map(|v| lang.number(v)).unwrap_or_default(),
            achieved: match (c.value, c.target, c.suppressed) {
                (Some(v), Some(target), false) if target > 0 => {
                    lang.percent(v as f64 / target as f64)
                }
                _ => String::new(),
            },
        })
        .collect();
    let chosen: Vec<(String, &IndicatorValueOut)> = report
        .children
        .iter()
        .filter_map(|u| {
            u.indicators
                .iter()
                .find(|c| c.indicator == chart)
                .map(|c| (u.name.clone(), c))
        })
        .collect();
    let chart_label = indicator_label(lang, chart);
    let title = format!("{chart_label} · {}", report.unit.name);
    ReportView {
        unit_name: report.unit.name.clone(),
        from: lang.date(report.from),
        to: lang.date(report.to),
        csv_href,
        rows,
        chart_svg: bar_chart(lang, t, &title, &chosen),
        children: chosen
            .iter()
            .map(|(name, c)| ChildRow {
                name: name.clone(),
                value: cell_text(lang, t, c),
                target: c.target.map(|v| lang.number(v)).unwrap_or_default(),
            })
            .collect(),
        chart_label,
    }
}

/// `GET /console/indicators`.
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = user.lang;
    let t = lang.texts();
    let p = user.principal();
    let q: IndicatorsQuery = parse_query(&raw).or_page(lang)?;
    let today = chrono::Utc::now().date_naive();
    let (query, year, quarter, kind) = report_query(&q, today).or_page(lang)?;
    let chart = q
        .chart
        .clone()
        .filter(|c| reports::indicator_keys().iter().any(|(k, _)| k == c))
        .unwrap_or_else(|| "people_reached".into());
    let (report, message) = match reports::indicators(&state.db, p, &query).await {
        Ok(r) => {
            let csv_href = format!(
                "/console/indicators.csv?{}",
                raw.clone().unwrap_or_default()
            );
            (Some(report_view(lang, t, &r, &chart, csv_href)), None)
        }
        Err(e @ ApiError::BadRequest { .. }) => (None, e.problem().detail),
        Err(e) => return Err(super::ConsoleError(e, lang)),
    };
    let selected_unit = query.org_unit.unwrap_or(p.org_unit_id);
    let units = org_units::list(
        &state,
        p,
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
        selected: u.id == selected_unit,
        value: u.id.to_string(),
        label: u.name,
    })
    .collect();
    let kinds = [
        ("quarter", t.period_quarter),
        ("year", t.period_year),
        ("vn_quarter", t.period_vn_quarter),
        ("pepfar_year", t.period_pepfar_year),
        ("custom", t.period_custom),
    ]
    .into_iter()
    .map(|(v, l)| Opt {
        value: v.into(),
        label: l.into(),
        selected: kind == v,
    })
    .collect();
    let quarters = (1..=4)
        .map(|n| Opt {
            value: n.to_string(),
            label: format!("Q{n}"),
            selected: n == quarter,
        })
        .collect();
    let charts = reports::indicator_keys()
        .into_iter()
        .map(|(k, _)| Opt {
            label: indicator_label(lang, &k),
            selected: k == chart,
            value: k,
        })
        .collect();
    Ok(html(&IndicatorsPage {
        chrome: user.chrome(Nav::Indicators),
        units,
        kinds,
        quarters,
        charts,
        year,
        from: q.from.clone().unwrap_or_default(),
        to: q.to.clone().unwrap_or_default(),
        message,
        report,
    }))
}

/// `GET /console/indicators.csv`: the same report as CSV (the API's format).
pub async fn csv(
    State(state): State<AppState>,
    user: ConsoleUser,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = user.lang;
    let q: IndicatorsQuery = parse_query(&raw).or_page(lang)?;
    let (query, ..) = report_query(&q, chrono::Utc::now().date_naive()).or_page(lang)?;
    let report = reports::indicators(&state.db, user.principal(), &query)
        .await
        .or_page(lang)?;
    let body: String = reports::indicators_csv(&report).concat();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"indicators-{}-{}.csv\"",
                    report.from, report.to
                ),
            ),
        ],
        body,
    )
        .into_response())
}
