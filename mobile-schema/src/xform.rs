//! The ODK XForm 1.0 of a form definition, for ODK Collect: the same questions, rules
//! and `show_if`s as the JSON definition, Vietnamese (the default) and English itext,
//! and the few nodes the server needs besides the answers (`dh_start`, `dh_end`,
//! `dh_place`, `meta/instanceID`). `instance.rs` reads Collect's submissions back.
//!
//! The bytes are a function of the definition alone (no clock, no map iteration): Collect
//! decides a form changed by the md5 the form list announces, so the same definition
//! must always give the same document.
//!
//! Where XForms has no construct for a rule, the XForm adds a node of its own, named
//! with the reserved `dh_` prefix (the definition check refuses such keys):
//! a repeat with an entry count to keep (`min_count`, `max_count`, or `required`, which
//! means at least one entry since Collect cannot send an empty list) is followed by a
//! read-only integer question `dh_count_{key}` whose `calculate` is `count(../{key})`
//! and whose `constraint` holds the bounds. JavaRosa validates every relevant question
//! with a value when the form is finalized (`FormDef.validate` steps through the form
//! and re-answers each question, checking its constraint), so Collect refuses to
//! finalize a visit with too few or too many entries and jumps to that question, whose
//! message says what is needed. The count node is in the submission; `parse_instance`
//! knows it and leaves it out of the answers.

mod text;
mod xpath;

use crate::definition::{Field, FieldType, FormDefinition, Localized};
use xpath::Level;

/// The media file holding the places a worker may pick (`name,label` columns); the
/// server serves it per device beside the form, through the form's manifest.
pub const PLACES_FILE: &str = "places.csv";
/// The question "where it happened": a choice from [`PLACES_FILE`], never the GPS.
pub const PLACE_FIELD: &str = "dh_place";
/// When the worker opened the form (Collect's `start` timestamp).
pub const START_FIELD: &str = "dh_start";
/// When the worker finalized the form (Collect's `end` timestamp).
pub const END_FIELD: &str = "dh_end";

/// The primary instance's root element.
pub(crate) const INSTANCE_ROOT: &str = "data";
/// The secondary instance the place choices come from.
const PLACES_INSTANCE: &str = "places";
/// Prefix of the question counting a repeat's entries (see the module docs).
pub(crate) const COUNT_PREFIX: &str = "dh_count_";

const REQUIRED_MSG: &str = "dh:required";
const YES: &str = "dh:true";
const NO: &str = "dh:false";

impl FormDefinition {
    /// This definition as an ODK XForm 1.0 document, byte for byte the same for the same
    /// definition.
    pub fn to_xform(&self) -> String {
        // Each part is written at the depth it lands at in the document (html, head,
        // model, instance, data: the instance's nodes sit 5 deep), so splicing it in is
        // a plain append and a value with a line break is kept byte for byte.
        let mut form = XForm {
            instance: Xml::at(5),
            binds: Xml::at(3),
            body: Xml::at(2),
            ..XForm::default()
        };
        form.place();
        let root = format!("/{INSTANCE_ROOT}");
        let mut levels = vec![Level {
            fields: &self.fields,
            path: root,
            position: 0,
        }];
        form.fields(&mut levels);
        form.finish(self)
    }
}

/// Whether the XForm follows this repeat with a count question (see the module docs).
pub(crate) fn has_count_node(repeat: &Field) -> bool {
    repeat.field_type == FieldType::Repeat && xpath::repeat_bounds(repeat).is_some()
}

/// The name of the count question of the repeat `key`.
pub(crate) fn count_node(key: &str) -> String {
    format!("{COUNT_PREFIX}{key}")
}

/// The three parts of the document, written in one walk over the fields: the primary
/// instance, the binds and the body; plus the itext entries they refer to.
#[derive(Default)]
struct XForm {
    instance: Xml,
    binds: Xml,
    body: Xml,
    itext: Vec<(String, Localized)>,
    used_required: bool,
    used_boolean: bool,
}

/// One `<bind>`'s attributes, written in this order.
#[derive(Default)]
struct Bind {
    nodeset: String,
    data_type: &'static str,
    required: bool,
    relevant: Option<String>,
    constraint: Option<(String, String)>,
    readonly: bool,
    calculate: Option<String>,
}

impl XForm {
    fn text(&mut self, id: String, text: Localized) -> String {
        let reference = format!("jr:itext('{id}')");
        self.itext.push((id, text));
        reference
    }

    fn label_and_hint(&mut self, path: &str, label: &Localized, hint: Option<&Localized>) {
        let label = self.text(format!("{path}:label"), label.clone());
        self.body.empty("label", &[("ref", &label)]);
        if let Some(hint) = hint {
            let hint = self.text(format!("{path}:hint"), hint.clone());
            self.body.empty("hint", &[("ref", &hint)]);
        }
    }

    fn bind(&mut self, bind: Bind) {
        let mut attrs: Vec<(&str, String)> = vec![("nodeset", bind.nodeset.clone())];
        if !bind.data_type.is_empty() {
            attrs.push(("type", bind.data_type.to_owned()));
        }
        if bind.required {
            self.used_required = true;
            attrs.push(("required", "true()".to_owned()));
            attrs.push(("jr:requiredMsg", format!("jr:itext('{REQUIRED_MSG}')")));
        }
        if let Some(relevant) = bind.relevant {
            attrs.push(("relevant", relevant));
        }
        if let Some((constraint, message)) = bind.constraint {
            attrs.push(("constraint", constraint));
            attrs.push(("jr:constraintMsg", message));
        }
        if bind.readonly {
            attrs.push(("readonly", "true()".to_owned()));
        }
        if let Some(calculate) = bind.calculate {
            attrs.push(("calculate", calculate));
        }
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.binds.empty("bind", &attrs);
    }

    /// The place question: required, choices from the places file.
    fn place(&mut self) {
        let path = format!("/{INSTANCE_ROOT}/{PLACE_FIELD}");
        self.instance.empty(START_FIELD, &[]);
        self.instance.empty(END_FIELD, &[]);
        self.instance.empty(PLACE_FIELD, &[]);
        for (field, when) in [(START_FIELD, "start"), (END_FIELD, "end")] {
            let nodeset = format!("/{INSTANCE_ROOT}/{field}");
            self.binds.empty(
                "bind",
                &[
                    ("nodeset", &nodeset),
                    ("type", "dateTime"),
                    ("jr:preload", "timestamp"),
                    ("jr:preloadParams", when),
                ],
            );
        }
        self.bind(Bind {
            nodeset: path.clone(),
            data_type: "string",
            required: true,
            ..Bind::default()
        });
        self.body.open("select1", &[("ref", &path)]);
        self.label_and_hint(&path, &text::place_label(), Some(&text::place_hint()));
        self.body.open(
            "itemset",
            &[(
                "nodeset",
                &format!("instance('{PLACES_INSTANCE}')/root/item"),
            )],
        );
        self.body.empty("value", &[("ref", "name")]);
        self.body.empty("label", &[("ref", "label")]);
        self.body.close("itemset");
        self.body.close("select1");
    }

    /// The fields of the innermost level, in order.
    fn fields<'a>(&mut self, levels: &mut Vec<Level<'a>>) {
        let Some(level) = levels.last() else { return };
        let (fields, parent) = (level.fields, level.path.clone());
        for (i, field) in fields.iter().enumerate() {
            if let Some(level) = levels.last_mut() {
                level.position = i;
            }
            let path = format!("{parent}/{}", field.key);
            let relevant = xpath::relevance(levels);
            match field.field_type {
                FieldType::Group | FieldType::Repeat => {
                    self.container(field, &path, relevant, levels);
                }
                _ => self.question(field, &path, relevant),
            }
        }
    }

    fn container<'a>(
        &mut self,
        field: &'a Field,
        path: &str,
        relevant: Option<String>,
        levels: &mut Vec<Level<'a>>,
    ) {
        let repeat = field.field_type == FieldType::Repeat;
        // Only the template: a new visit starts with no entry, and Collect asks before
        // adding each one.
        let template: &[(&str, &str)] = if repeat { &[("jr:template", "")] } else { &[] };
        self.instance.open(&field.key, template);
        if relevant.is_some() {
            self.bind(Bind {
                nodeset: path.to_owned(),
                relevant: relevant.clone(),
                ..Bind::default()
            });
        }
        self.body.open("group", &[("ref", path)]);
        // JavaRosa reads no hint on a group; a repeat's hint goes on its count question.
        self.label_and_hint(path, &field.label, None);
        if repeat {
            self.body.open("repeat", &[("nodeset", path)]);
        }
        levels.push(Level {
            fields: field.children(),
            path: path.to_owned(),
            position: 0,
        });
        self.fields(levels);
        levels.pop();
        if repeat {
            self.body.close("repeat");
        }
        self.body.close("group");
        self.instance.close(&field.key);
        if repeat {
            self.repeat_count(field, path, relevant);
        }
    }

    /// The read-only question that keeps a repeat's entry count (see the module docs).
    fn repeat_count(&mut self, repeat: &Field, path: &str, relevant: Option<String>) {
        let Some((min, max)) = xpath::repeat_bounds(repeat) else {
            return;
        };
        let name = count_node(&repeat.key);
        let count_path = format!("{}/{name}", parent_of(path));
        self.instance.empty(&name, &[]);
        self.body.open("input", &[("ref", &count_path)]);
        let rule = text::count_rule(min, max);
        let hint = match &repeat.hint {
            Some(hint) => Localized {
                vi: format!("{}. {}.", hint.vi, rule.vi),
                en: format!("{}. {}.", hint.en, rule.en),
            },
            None => Localized {
                vi: format!("{}.", rule.vi),
                en: format!("{}.", rule.en),
            },
        };
        self.label_and_hint(&count_path, &text::count_label(repeat), Some(&hint));
        self.body.close("input");
        let message = self.text(format!("{count_path}:constraintMsg"), rule);
        self.bind(Bind {
            nodeset: count_path.clone(),
            data_type: "int",
            relevant,
            constraint: Some((xpath::count_constraint(min, max), message)),
            readonly: true,
            calculate: Some(format!("count(../{})", repeat.key)),
            ..Bind::default()
        });
    }

    fn question(&mut self, field: &Field, path: &str, relevant: Option<String>) {
        let t = field.field_type;
        self.instance.empty(&field.key, &[]);
        let data_type = match t {
            FieldType::Integer => "int",
            FieldType::Decimal => "decimal",
            FieldType::Date => "date",
            FieldType::Datetime => "dateTime",
            FieldType::Geopoint => "geopoint",
            FieldType::Photo => "binary",
            _ => "string",
        };
        let rule = match t {
            FieldType::Integer | FieldType::Decimal => text::number_rule(field),
            FieldType::Text => text::text_rule(field),
            FieldType::Uic => Some(text::uic_rule()),
            FieldType::SelectMultiple => text::selection_rule(field),
            _ => None,
        };
        match t {
            FieldType::SelectOne | FieldType::SelectMultiple | FieldType::Boolean => {
                let control = if t == FieldType::SelectMultiple {
                    "select"
                } else {
                    "select1"
                };
                self.body.open(control, &[("ref", path)]);
                self.label_and_hint(path, &field.label, field.hint.as_ref());
                if t == FieldType::Boolean {
                    self.used_boolean = true;
                    for (value, id) in [("true", YES), ("false", NO)] {
                        self.item(&format!("jr:itext('{id}')"), value);
                    }
                } else {
                    for (j, choice) in field.choices.iter().flatten().enumerate() {
                        let label = self.text(format!("{path}:option{j}"), choice.label.clone());
                        self.item(&label, &choice.value);
                    }
                }
                self.body.close(control);
            }
            FieldType::Photo => {
                self.body
                    .open("upload", &[("ref", path), ("mediatype", "image/*")]);
                self.label_and_hint(path, &field.label, field.hint.as_ref());
                self.body.close("upload");
            }
            _ => {
                self.body.open("input", &[("ref", path)]);
                self.label_and_hint(path, &field.label, field.hint.as_ref());
                self.body.close("input");
            }
        }

        let constraint = match (xpath::constraint(field), rule) {
            (Some(constraint), Some(rule)) => {
                let message = self.text(format!("{path}:constraintMsg"), rule);
                Some((constraint, message))
            }
            _ => None,
        };
        self.bind(Bind {
            nodeset: path.to_owned(),
            data_type,
            required: field.required && t != FieldType::Note,
            relevant,
            constraint,
            readonly: t == FieldType::Note,
            ..Bind::default()
        });
    }

    fn item(&mut self, label: &str, value: &str) {
        self.body.open("item", &[]);
        self.body.empty("label", &[("ref", label)]);
        self.body.leaf("value", value);
        self.body.close("item");
    }

    /// The whole document around the parts.
    fn finish(mut self, def: &FormDefinition) -> String {
        if self.used_required {
            self.itext.push((REQUIRED_MSG.to_owned(), text::required()));
        }
        if self.used_boolean {
            self.itext.push((YES.to_owned(), text::yes()));
            self.itext.push((NO.to_owned(), text::no()));
        }
        let mut doc = Xml::default();
        doc.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        doc.open(
            "h:html",
            &[
                ("xmlns", "http://www.w3.org/2002/xforms"),
                ("xmlns:h", "http://www.w3.org/1999/xhtml"),
                ("xmlns:jr", "http://openrosa.org/javarosa"),
                ("xmlns:orx", "http://openrosa.org/xforms"),
                ("xmlns:odk", "http://www.opendatakit.org/xforms"),
            ],
        );
        doc.open("h:head", &[]);
        doc.leaf("h:title", &format!("{} / {}", def.title.vi, def.title.en));
        doc.open("model", &[("odk:xforms-version", "1.0.0")]);

        doc.open("itext", &[]);
        for (lang, default, pick) in [
            (
                text::VI,
                true,
                (|t: &Localized| t.vi.clone()) as fn(&Localized) -> String,
            ),
            (text::EN, false, |t: &Localized| t.en.clone()),
        ] {
            if default {
                doc.open("translation", &[("lang", lang), ("default", "true()")]);
            } else {
                doc.open("translation", &[("lang", lang)]);
            }
            for (id, text) in &self.itext {
                doc.start("text", &[("id", id)]);
                doc.out.push_str("><value>");
                escape(&pick(text), false, &mut doc.out);
                doc.out.push_str("</value></text>\n");
            }
            doc.close("translation");
        }
        doc.close("itext");

        doc.open("instance", &[]);
        let version = def.version.to_string();
        doc.open(
            INSTANCE_ROOT,
            &[("id", &def.form_id), ("version", &version)],
        );
        doc.splice(&self.instance);
        doc.open("meta", &[]);
        doc.empty("instanceID", &[]);
        doc.close("meta");
        doc.close(INSTANCE_ROOT);
        doc.close("instance");
        doc.empty(
            "instance",
            &[
                ("id", PLACES_INSTANCE),
                ("src", &format!("jr://file-csv/{PLACES_FILE}")),
            ],
        );
        doc.splice(&self.binds);
        doc.empty(
            "bind",
            &[
                ("nodeset", &format!("/{INSTANCE_ROOT}/meta/instanceID")),
                ("type", "string"),
                ("readonly", "true()"),
                ("jr:preload", "uid"),
            ],
        );
        doc.close("model");
        doc.close("h:head");
        doc.open("h:body", &[]);
        doc.splice(&self.body);
        doc.close("h:body");
        doc.close("h:html");
        doc.out
    }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(parent, _)| parent)
}

/// An indenting XML writer for the few shapes the XForm needs. Parts written apart
/// (instance, binds, body) are spliced in at the depth they land at.
#[derive(Default)]
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape(value, true, &mut self.out);
            self.out.push('"');
        }
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.out.push_str("/>\n");
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.start(name, &[]);
        self.out.push('>');
        escape(text, false, &mut self.out);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn at(depth: usize) -> Self {
        Xml {
            out: String::new(),
            depth,
        }
    }

    /// Appends `part`, which was written at the depth it lands at.
    fn splice(&mut self, part: &Xml) {
        self.out.push_str(&part.out);
    }
}

/// Escapes text or an attribute value. Characters XML 1.0 cannot hold at all (most C0
/// controls, U+FFFE, U+FFFF) become U+FFFD, so an odd label cannot break the document;
/// in attributes, line breaks and tabs become references, or the parser would turn them
/// into spaces (which would change an XPath string literal).
fn escape(text: &str, attribute: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bundled_forms;

    #[test]
    fn escaping_keeps_xpath_literals_intact() {
        let mut out = String::new();
        escape("a\"b\n<c>&\u{1}", true, &mut out);
        assert_eq!(out, "a&quot;b&#10;&lt;c&gt;&amp;\u{FFFD}");
        let mut out = String::new();
        escape("line\nnext\r", false, &mut out);
        assert_eq!(out, "line\nnext&#13;");
    }

    #[test]
    fn odd_text_stays_exact_and_the_document_well_formed() {
        let odd = "a \"quoted\" <tag> & 'apostrophe'\nsecond line";
        let def: FormDefinition = serde_json::from_value(serde_json::json!({
            "form_id": "odd_text",
            "version": 1,
            "kind": "group_session",
            "title": {"vi": odd, "en": "Odd"},
            "roles": ["volunteer"],
            "fields": [
                {"key": "pick", "type": "select_one", "label": {"vi": odd, "en": odd},
                 "choices": [{"value": odd, "label": {"vi": odd, "en": odd}}]},
                {"key": "why", "type": "text", "label": {"vi": "x", "en": "x"},
                 "show_if": {"field": "pick", "equals": odd}},
            ],
        }))
        .unwrap();
        let xml = def.to_xform();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let text_of = |name: &str| -> Vec<String> {
            doc.descendants()
                .filter(|n| n.has_tag_name(name))
                .filter_map(|n| n.text().map(str::to_owned))
                .collect()
        };
        assert_eq!(text_of("title"), [format!("{odd} / Odd")]);
        assert!(text_of("value").iter().filter(|v| *v == odd).count() >= 3);
        let relevant = doc
            .descendants()
            .find_map(|n| n.attribute("relevant"))
            .unwrap();
        assert_eq!(
            relevant,
            "/data/pick = concat('a \"quoted\" <tag> & ', \"'\", 'apostrophe', \"'\", '\nsecond line')"
        );
    }

    fn md5_hex(bytes: &[u8]) -> String {
        use md5::{Digest, Md5};
        Md5::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Collect re-downloads a form whenever the md5 in the form list changes: the same
    /// definition, however it reached us, must give the same bytes.
    #[test]
    fn the_same_definition_gives_the_same_bytes_and_md5() {
        for form in bundled_forms() {
            let first = form.to_xform();
            let again = form.clone().to_xform();
            let reparsed = crate::parse_definition(&serde_json::to_string(&form).unwrap())
                .unwrap()
                .to_xform();
            assert_eq!(first, again, "{}", form.form_id);
            assert_eq!(first, reparsed, "{}", form.form_id);
            assert_eq!(md5_hex(first.as_bytes()), md5_hex(reparsed.as_bytes()));
            // A change of version is a change of bytes.
            let mut next = form.clone();
            next.version += 1;
            assert_ne!(
                md5_hex(next.to_xform().as_bytes()),
                md5_hex(first.as_bytes())
            );
        }
        // And across builds and processes: the md5 is the committed snapshot's.
        let outreach = bundled_forms().remove(0);
        assert_eq!(outreach.form_id, "outreach_visit");
        let snapshot =
            std::fs::read(crate::manifest_dir().join("snapshots/outreach_visit.v1.xform.xml"))
                .unwrap();
        assert_eq!(md5_hex(outreach.to_xform().as_bytes()), md5_hex(&snapshot));
    }

    /// Snapshots each bundled form's XForm in `snapshots/`, so a change Collect would see
    /// as a new form is a visible diff. `UPDATE_SNAPSHOTS=1` rewrites them.
    #[test]
    fn bundled_xforms_match_their_snapshots() {
        let dir = crate::manifest_dir().join("snapshots");
        let update = std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
        let mut problems = Vec::new();
        for form in bundled_forms() {
            let name = format!("{}.v{}.xform.xml", form.form_id, form.version);
            let file = dir.join(&name);
            let actual = form.to_xform();
            match std::fs::read_to_string(&file) {
                Ok(expected) if expected == actual => {}
                Ok(_) if update => std::fs::write(&file, &actual).unwrap(),
                Ok(_) => problems.push(format!(
                    "{name} differs from the generated XForm; if the change is intended, \
                     re-run with UPDATE_SNAPSHOTS=1 and commit the file"
                )),
                Err(_) => {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&file, &actual).unwrap();
                    if !update {
                        problems.push(format!(
                            "{name} was missing and has been written; re-run the tests \
                             and commit it"
                        ));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
