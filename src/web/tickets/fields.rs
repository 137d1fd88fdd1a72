//! A process's form fields as the pages show them (`FieldView`), with the reference data
//! their choices come from, and the reading of a posted form into named inputs and values.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use crate::core::markdown::{self, SafeHtml};
use crate::core::{FieldErrors, Result};
use crate::engine::workflow::{Acting, Definition, Field, FieldKind, Mode, Value};
use crate::tickets::queues::Reference;

/// A form field, ready to render: its current input and message.
#[derive(Clone)]
pub struct FieldView {
    pub(super) key: String,
    pub(super) label: String,
    pub(super) kind: &'static str,
    pub(super) help: String,
    /// Set on the first field of a new section: its heading.
    pub(super) section_start: Option<String>,
    pub(super) mode: Mode,
    pub(super) value: String,
    pub(super) values: Vec<String>,
    /// (value, label) for selects and references.
    pub(super) options: Vec<(String, String)>,
    pub(super) error: Option<String>,
    /// A read-only long text, as Markdown made safe.
    pub(super) html: Option<SafeHtml>,
}

impl FieldView {
    pub(super) fn editable(&self) -> bool {
        matches!(self.mode, Mode::Edit | Mode::Required)
    }

    pub(super) fn required(&self) -> bool {
        self.mode == Mode::Required
    }

    pub(super) fn is_selected(&self, option: &str) -> bool {
        self.value == option || self.values.iter().any(|v| v == option)
    }

    /// What the field shows when read.
    pub(super) fn shown(&self) -> String {
        if let Some((_, label)) = self.options.iter().find(|(v, _)| *v == self.value) {
            return label.clone();
        }
        if !self.values.is_empty() {
            return self.values.join(", ");
        }
        self.value.clone()
    }
}

fn kind_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "text",
        FieldKind::LongText => "long_text",
        FieldKind::Number => "number",
        FieldKind::Date => "date",
        FieldKind::DateTime => "date_time",
        FieldKind::Select => "select",
        FieldKind::MultiSelect => "multi_select",
        FieldKind::User => "user",
        FieldKind::Group => "group",
        FieldKind::System => "system",
        FieldKind::Site => "site",
        FieldKind::Checkbox => "checkbox",
    }
}

/// Options for every reference kind a definition uses: systems, sites and groups from the
/// cached reference data, people (the first 500 active) from the database.
pub(super) async fn reference_options(
    conn: &mut PgConnection,
    reference: &Reference,
    def: &Definition,
) -> Result<BTreeMap<&'static str, Vec<(String, String)>>> {
    let mut out = BTreeMap::new();
    for field in &def.fields {
        let kind = kind_name(field.kind);
        if out.contains_key(kind) {
            continue;
        }
        let rows: Vec<(String, String)> = match field.kind {
            FieldKind::System | FieldKind::Site | FieldKind::Group => reference.list(kind),
            FieldKind::User => {
                sqlx::query_as(
                    "select id::text, display_name from users where active
                     order by lower(display_name) limit 500",
                )
                .fetch_all(&mut *conn)
                .await?
            }
            _ => continue,
        };
        out.insert(kind, rows);
    }
    Ok(out)
}

/// Views of the fields `acting` may see in `state`, filled from `values` (stored) or `raw`
/// (as sent, after an error).
pub(super) fn field_views(
    def: &Definition,
    state: &str,
    acting: &Acting,
    values: &BTreeMap<String, Value>,
    raw: Option<&BTreeMap<String, Vec<String>>>,
    refs: &BTreeMap<&'static str, Vec<(String, String)>>,
    errors: &FieldErrors,
) -> Vec<FieldView> {
    def.modes(state, acting)
        .into_iter()
        .filter(|(_, mode)| *mode != Mode::Hidden)
        .map(|(field, mode): (&Field, Mode)| {
            let kind = kind_name(field.kind);
            let (value, list) = match raw.and_then(|r| r.get(&field.key)) {
                Some(sent) => (
                    sent.first().cloned().unwrap_or_default(),
                    if field.kind == FieldKind::MultiSelect {
                        sent.clone()
                    } else {
                        Vec::new()
                    },
                ),
                None => match values.get(&field.key) {
                    Some(Value::List(l)) => (String::new(), l.clone()),
                    Some(v) => (v.display(), Vec::new()),
                    None => (String::new(), Vec::new()),
                },
            };
            let value = match (field.kind, values.get(&field.key), raw.is_none()) {
                (FieldKind::Checkbox, Some(Value::Bool(true)), true) => "on".into(),
                _ => value,
            };
            let options = match field.kind {
                FieldKind::Select | FieldKind::MultiSelect => field
                    .options
                    .iter()
                    .map(|o| (o.clone(), o.clone()))
                    .collect(),
                _ => refs.get(kind).cloned().unwrap_or_default(),
            };
            let html = (field.kind == FieldKind::LongText
                && mode == Mode::Read
                && !value.trim().is_empty())
            .then(|| markdown::render(&value));
            FieldView {
                key: field.key.clone(),
                label: field.label.clone(),
                kind,
                help: field.help.clone(),
                section_start: Some(field.section.clone()),
                mode,
                html,
                value,
                values: list,
                options,
                error: errors.get(&field.key).map(str::to_owned),
            }
        })
        .collect::<Vec<FieldView>>()
        .into_iter()
        .scan(String::new(), |previous, mut view| {
            let section = view.section_start.take().unwrap_or_default();
            if !section.is_empty() && section != *previous {
                view.section_start = Some(section.clone());
            }
            *previous = section;
            Some(view)
        })
        .collect()
}

/// Messages for fields the page does not show (e.g. a hidden field sent by hand), to be
/// listed at the top of the form.
pub(super) fn stray_errors(errors: &FieldErrors, shown: &[&str]) -> Vec<String> {
    errors
        .iter()
        .filter(|(field, _)| !shown.contains(field))
        .map(|(_, message)| message.to_owned())
        .collect()
}

/// Splits a posted form into named inputs and process field values (`f.<key>`).
pub(super) fn split_form(
    pairs: Vec<(String, String)>,
) -> (BTreeMap<String, String>, BTreeMap<String, Vec<String>>) {
    let mut named = BTreeMap::new();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in pairs {
        match key.strip_prefix("f.") {
            Some(field) => values.entry(field.to_owned()).or_default().push(value),
            None => {
                named.insert(key, value);
            }
        }
    }
    (named, values)
}
