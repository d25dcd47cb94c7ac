//! What the pages show beside ids: unit names, hotspot codes, usernames and form titles
//! (looked up once per page through the scoped services), and a visit's answers laid
//! out with its form's own labels.

use std::collections::{BTreeMap, BTreeSet};

use mobile_schema::{Field, FieldType, FormDefinition};
use serde_json::Value;
use uuid::Uuid;

use super::i18n::{Lang, Texts};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::services::{accounts, forms as form_service, hotspots, org_units};
use crate::state::AppState;

/// Names for the ids a page shows, looked up once each.
#[derive(Debug, Default)]
pub struct Names {
    units: BTreeMap<Uuid, String>,
    hotspots: BTreeMap<Uuid, String>,
    users: BTreeMap<Uuid, String>,
    forms: BTreeMap<(String, u32), FormDefinition>,
}

impl Names {
    /// Looks up every id given, through the caller's scope (what is outside it stays unnamed).
    pub async fn load(
        state: &AppState,
        actor: &Principal,
        units: impl IntoIterator<Item = Uuid>,
        spots: impl IntoIterator<Item = Uuid>,
        users: impl IntoIterator<Item = Uuid>,
        forms: impl IntoIterator<Item = (String, u32)>,
    ) -> ApiResult<Names> {
        let mut names = Names::default();
        for id in units.into_iter().collect::<BTreeSet<_>>() {
            if let Ok(u) = org_units::get(state, actor, id).await {
                names.units.insert(id, u.name);
            }
        }
        for id in spots.into_iter().collect::<BTreeSet<_>>() {
            if let Ok(h) = hotspots::get(&state.db, actor, id).await {
                names.hotspots.insert(id, h.code);
            }
        }
        for id in users.into_iter().collect::<BTreeSet<_>>() {
            if let Ok(u) = accounts::get_user(state, actor, id).await {
                names.users.insert(id, u.username);
            }
        }
        for (form_id, version) in forms.into_iter().collect::<BTreeSet<_>>() {
            let row = form_service::get_version(&state.db, &form_id, Some(version)).await?;
            names
                .forms
                .insert((form_id, version), form_service::definition_of(&row)?);
        }
        Ok(names)
    }

    pub fn unit(&self, id: Uuid) -> String {
        self.units.get(&id).cloned().unwrap_or_else(|| short(id))
    }

    pub fn user(&self, id: Uuid) -> String {
        self.users.get(&id).cloned().unwrap_or_else(|| short(id))
    }

    /// Where a visit happened: its hotspot's code and unit, or its unit.
    pub fn place(&self, unit: Uuid, hotspot: Option<Uuid>) -> String {
        match hotspot.and_then(|h| self.hotspots.get(&h)) {
            Some(code) => format!("{code} · {}", self.unit(unit)),
            None => self.unit(unit),
        }
    }

    pub fn form(&self, form_id: &str, version: u32) -> Option<&FormDefinition> {
        self.forms.get(&(form_id.to_string(), version))
    }

    /// A form's title in the page's language.
    pub fn form_title(&self, form_id: &str, version: u32, lang: Lang) -> String {
        self.form(form_id, version)
            .map(|d| localized(lang, &d.title.vi, &d.title.en).to_string())
            .unwrap_or_else(|| form_id.to_string())
    }
}

fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_string()
}

fn localized<'a>(lang: Lang, vi: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}

/// Escapes text for HTML.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A field's label in the page's language.
pub fn label(lang: Lang, field: &Field) -> &str {
    localized(lang, &field.label.vi, &field.label.en)
}

/// How a client is shown: a short prefix of its keyed hash, never the code.
pub fn client_ref(hash: &str) -> String {
    format!("#{}", hash.chars().take(8).collect::<String>())
}

/// One answer value as text (choices by their labels, booleans, dates, numbers, clients
/// by hash prefix); photos and groups are laid out elsewhere.
pub fn value_text(lang: Lang, t: &Texts, field: &Field, value: &Value) -> String {
    let choice = |v: &str| {
        field
            .choices
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.value == v))
            .map(|c| localized(lang, &c.label.vi, &c.label.en).to_string())
            .unwrap_or_else(|| v.to_string())
    };
    match (field.field_type, value) {
        (FieldType::Boolean, Value::Bool(b)) => (if *b { t.yes } else { t.no }).to_string(),
        (FieldType::SelectOne, Value::String(s)) => choice(s),
        (FieldType::SelectMultiple, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(choice)
            .collect::<Vec<_>>()
            .join(", "),
        (FieldType::Integer, Value::Number(n)) => {
            n.as_i64().map_or_else(|| n.to_string(), |i| lang.number(i))
        }
        (FieldType::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_or_else(|_| s.clone(), |d| lang.date(d)),
        (FieldType::Datetime, Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map_or_else(
                |_| s.clone(),
                |d| lang.datetime(d.with_timezone(&chrono::Utc)),
            ),
        (FieldType::Uic, Value::String(s)) => client_ref(s),
        (FieldType::Geopoint, Value::Object(p)) => format!(
            "{}, {}",
            p.get("lat").map(Value::to_string).unwrap_or_default(),
            p.get("lon").map(Value::to_string).unwrap_or_default()
        ),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// The answers as HTML, with the form's labels: fields in order, groups as sections,
/// repeats as tables (one row per entry), photos as links to their place on the page.
/// Clients appear only as a hash prefix.
pub fn answers_html(lang: Lang, t: &Texts, def: &FormDefinition, answers: &Value) -> String {
    let mut out = String::new();
    fields_html(lang, t, &def.fields, answers, &mut out);
    out
}

fn fields_html(lang: Lang, t: &Texts, fields: &[Field], answers: &Value, out: &mut String) {
    let mut scalars = String::new();
    let flush = |scalars: &mut String, out: &mut String| {
        if !scalars.is_empty() {
            out.push_str("<dl>");
            out.push_str(scalars);
            out.push_str("</dl>");
            scalars.clear();
        }
    };
    for field in fields {
        let Some(value) = answers.get(&field.key).filter(|v| !v.is_null()) else {
            continue;
        };
        match field.field_type {
            FieldType::Note => {}
            FieldType::Group => {
                flush(&mut scalars, out);
                out.push_str(&format!("<section><h3>{}</h3>", esc(label(lang, field))));
                fields_html(lang, t, field.children(), value, out);
                out.push_str("</section>");
            }
            FieldType::Repeat => {
                flush(&mut scalars, out);
                repeat_html(lang, t, field, value, out);
            }
            FieldType::Photo => {
                let digest = value.as_str().unwrap_or_default();
                scalars.push_str(&format!(
                    "<dt>{}</dt><dd><a href=\"#photo-{}\">{}</a></dd>",
                    esc(label(lang, field)),
                    esc(&digest.chars().take(12).collect::<String>()),
                    esc(t.photos)
                ));
            }
            _ => scalars.push_str(&format!(
                "<dt>{}</dt><dd>{}</dd>",
                esc(label(lang, field)),
                cell(lang, t, field, value)
            )),
        }
    }
    flush(&mut scalars, out);
}

/// One value as HTML: a client's hash prefix in `<code>`, anything else as text.
fn cell(lang: Lang, t: &Texts, field: &Field, value: &Value) -> String {
    let text = esc(&value_text(lang, t, field, value));
    if field.field_type == FieldType::Uic {
        format!(
            "<code class=\"client\" title=\"{}\">{text}</code>",
            esc(t.client)
        )
    } else {
        text
    }
}

fn repeat_html(lang: Lang, t: &Texts, field: &Field, value: &Value, out: &mut String) {
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    let columns: Vec<&Field> = field
        .children()
        .iter()
        .filter(|f| !matches!(f.field_type, FieldType::Note | FieldType::Group))
        .collect();
    out.push_str(&format!(
        "<section><h3>{} ({})</h3><div class=\"table-wrap\" tabindex=\"0\"><table><thead><tr><th scope=\"col\">#</th>",
        esc(label(lang, field)),
        items.len()
    ));
    for c in &columns {
        out.push_str(&format!("<th scope=\"col\">{}</th>", esc(label(lang, c))));
    }
    out.push_str("</tr></thead><tbody>");
    for (i, item) in items.iter().enumerate() {
        out.push_str(&format!("<tr><th scope=\"row\">{}</th>", i + 1));
        for c in &columns {
            let v = item.get(&c.key).filter(|v| !v.is_null());
            let text = match (c.field_type, v) {
                (_, None) => String::new(),
                (FieldType::Repeat, Some(Value::Array(a))) => a.len().to_string(),
                (FieldType::Photo, Some(Value::String(d))) => format!(
                    "<a href=\"#photo-{}\">{}</a>",
                    esc(&d.chars().take(12).collect::<String>()),
                    esc(t.photos)
                ),
                (_, Some(v)) => cell(lang, t, c, v),
            };
            let class = if matches!(c.field_type, FieldType::Integer | FieldType::Decimal) {
                " class=\"num\""
            } else {
                ""
            };
            out.push_str(&format!("<td{class}>{text}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></section>");
}

/// What changed between two revisions' answers, with labels: `label path: before → after`.
pub fn changes(
    lang: Lang,
    t: &Texts,
    def: &FormDefinition,
    before: &Value,
    after: &Value,
) -> Vec<String> {
    let mut a = BTreeMap::new();
    let mut b = BTreeMap::new();
    flatten(lang, t, &def.fields, before, String::new(), &mut a);
    flatten(lang, t, &def.fields, after, String::new(), &mut b);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                a.get(k).map_or("—", String::as_str),
                b.get(k).map_or("—", String::as_str)
            )
        })
        .collect()
}

fn flatten(
    lang: Lang,
    t: &Texts,
    fields: &[Field],
    answers: &Value,
    prefix: String,
    out: &mut BTreeMap<String, String>,
) {
    for field in fields {
        let Some(value) = answers.get(&field.key).filter(|v| !v.is_null()) else {
            continue;
        };
        let at = if prefix.is_empty() {
            label(lang, field).to_string()
        } else {
            format!("{prefix} › {}", label(lang, field))
        };
        match (field.field_type, value) {
            (FieldType::Group, _) => flatten(lang, t, field.children(), value, at, out),
            (FieldType::Repeat, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    flatten(
                        lang,
                        t,
                        field.children(),
                        item,
                        format!("{at} #{}", i + 1),
                        out,
                    );
                }
            }
            (FieldType::Note, _) => {}
            (FieldType::Photo, Value::String(d)) => {
                out.insert(at, d.chars().take(12).collect());
            }
            _ => {
                out.insert(at, value_text(lang, t, field, value));
            }
        }
    }
}
