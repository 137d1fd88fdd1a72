//! Admin: processes. The draft is edited as TOML in the browser (the same format as
//! `unitrack config export`), shown as a state diagram, checked before it is saved, tried
//! out in a simulation, and published as a new version, with a mapping for open tickets in
//! states the new version removes.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::status_for;
use crate::audit::{self, Change};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::engine::workflow::diagram::{self, BOX_H, BOX_W, Diagram};
use crate::engine::workflow::{
    Acting, Definition, Effect, Mode, Outcome, RELATIONS, Snapshot, Value, validate,
};
use crate::processes::{self, Process, ProcessFile, PublishError};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::flash;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

#[derive(Template)]
#[template(path = "admin/processes.html")]
struct ListPage {
    shell: Shell,
    processes: Vec<Process>,
    key: String,
    name: String,
    errors: FieldErrors,
}

async fn list_page(
    state: &AppState,
    shell: Shell,
    key: String,
    name: String,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    render(
        status_for(&errors),
        &ListPage {
            shell: shell.at("admin"),
            processes: processes::list(&mut conn).await?,
            key,
            name,
            errors,
        },
    )
}

pub async fn list(State(state): State<AppState>, shell: Shell) -> Result<Response> {
    list_page(
        &state,
        shell,
        String::new(),
        String::new(),
        FieldErrors::new(),
    )
    .await
}

#[derive(Deserialize)]
pub struct NewForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    name: String,
}

/// A new process starts as the smallest valid workflow: new → closed.
fn blank(key: &str, name: &str) -> ProcessFile {
    let text = format!(
        "key = {key:?}\nname = {name:?}\n\n[[definition.states]]\nkey = \"new\"\nlabel = \"New\"\ncategory = \"new\"\ninitial = true\n\n\
         [[definition.states]]\nkey = \"closed\"\nlabel = \"Closed\"\ncategory = \"closed\"\n\n\
         [[definition.transitions]]\nkey = \"close\"\nlabel = \"Close\"\nfrom = [\"new\"]\nto = \"closed\"\nroles = [\"*\"]\n"
    );
    ProcessFile::parse(&text).unwrap_or(ProcessFile {
        key: key.into(),
        name: name.into(),
        description: String::new(),
        definition: Definition {
            fields: vec![],
            states: vec![],
            transitions: vec![],
            screen: vec![],
            resolution: Default::default(),
        },
    })
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<NewForm>,
) -> Result<Response> {
    let key = form.key.trim().to_owned();
    let mut errors = FieldErrors::new();
    let key_ok = (2..=50).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !key_ok {
        errors.add(
            "key",
            "Use 2 to 50 lowercase letters, digits or _, starting with a letter.",
        );
    }
    if form.name.trim().is_empty() {
        errors.add("name", "Enter a name.");
    }
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    if key_ok && processes::find_by_key(&mut tx, &key).await?.is_some() {
        errors.add("key", "Another process has this key.");
    }
    if !errors.is_empty() {
        drop(tx);
        return list_page(&state, shell, form.key, form.name, errors).await;
    }
    let file = blank(&key, form.name.trim());
    let id = processes::upsert(&mut tx, &file, now).await?;
    audit::record(
        &mut tx,
        actor.user_id,
        now,
        Change::new("process", id, "create").after(&file),
    )
    .await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &paths::admin::process(&key),
        flash::Kind::Success,
        "Process created as a draft. Edit it, then publish.",
    ))
}

/// A node or edge of the diagram, ready to draw.
struct DiagramView {
    diagram: Diagram,
    box_w: i32,
    box_h: i32,
}

#[derive(Template)]
#[template(path = "admin/process.html")]
struct EditPage {
    shell: Shell,
    process: Process,
    text: String,
    problems: Vec<String>,
    diagram: Option<DiagramView>,
    stranded: Vec<(String, i64)>,
    targets: Vec<(String, String)>,
    publish_problems: Vec<String>,
}

struct Editing {
    text: Option<String>,
    problems: Vec<String>,
    publish_problems: Vec<String>,
}

async fn edit_page(
    state: &AppState,
    shell: Shell,
    key: &str,
    editing: Editing,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let process = processes::find_by_key(&mut conn, key)
        .await?
        .ok_or(Error::NotFound)?;
    let draft = processes::draft(&mut conn, process.id).await?;
    let file = ProcessFile {
        key: process.key.clone(),
        name: process.name.clone(),
        description: process.description.clone(),
        definition: draft.clone(),
    };
    let text = match editing.text {
        Some(t) => t,
        None => file
            .to_toml()
            .map_err(|e| Error::Internal(anyhow::anyhow!(e)))?,
    };
    let stranded = processes::stranded_states(&mut conn, process.id, &draft).await?;
    let targets = draft
        .states
        .iter()
        .map(|s| (s.key.clone(), s.label.clone()))
        .collect();
    let status = if editing.problems.is_empty() && editing.publish_problems.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        &EditPage {
            shell: shell.at("admin"),
            diagram: Some(DiagramView {
                diagram: diagram::layout(&draft),
                box_w: BOX_W,
                box_h: BOX_H,
            }),
            process,
            text,
            problems: editing.problems,
            stranded,
            targets,
            publish_problems: editing.publish_problems,
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    Path(key): Path<String>,
) -> Result<Response> {
    edit_page(
        &state,
        shell,
        &key,
        Editing {
            text: None,
            problems: vec![],
            publish_problems: vec![],
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct SaveForm {
    #[serde(default)]
    toml: String,
}

/// Saves the draft if it parses and validates; otherwise shows every problem and keeps the text.
pub async fn save(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(form): Form<SaveForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let process = processes::find_by_key(&mut tx, &key)
        .await?
        .ok_or(Error::NotFound)?;
    let before = processes::draft(&mut tx, process.id).await?;
    let problems = match ProcessFile::parse(&form.toml) {
        Err(e) => vec![format!("The text is not valid TOML for a process: {e}")],
        Ok(file) if file.key != key => vec![format!(
            "key: this page edits {key:?}; the key cannot change"
        )],
        Ok(file) => {
            let known = processes::known(&mut tx).await?;
            let errors: Vec<String> = validate(&file.definition, &known)
                .iter()
                .map(|e| format!("definition.{e}"))
                .collect();
            if errors.is_empty() {
                processes::upsert(&mut tx, &file, now).await?;
                audit::record(
                    &mut tx,
                    actor.user_id,
                    now,
                    Change::new("process", process.id, "save_draft")
                        .before(&before)
                        .after(&file.definition),
                )
                .await?;
                tx.commit().await?;
                return Ok(flash::redirect(
                    &paths::admin::process(&key),
                    flash::Kind::Success,
                    "Draft saved. Publish it to use it.",
                ));
            }
            errors
        }
    };
    drop(tx);
    edit_page(
        &state,
        shell,
        &key,
        Editing {
            text: Some(form.toml),
            problems,
            publish_problems: vec![],
        },
    )
    .await
}

/// Publishes the draft as a new version; open tickets in removed states move as mapped
/// (`map.<old state>` = new state), each with an event.
pub async fn publish(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let mapping: Vec<(String, String)> = pairs
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("map.").map(|from| (from.to_owned(), v)))
        .filter(|(_, to)| !to.is_empty())
        .collect();
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let process = processes::find_by_key(&mut tx, &key)
        .await?
        .ok_or(Error::NotFound)?;
    let problems = match crate::tickets::publish_process(&mut tx, process.id, &mapping, Some(actor.user_id), now).await? {
        Ok(version) => {
            let note = serde_json::json!({ "version": version, "mapping": mapping });
            audit::record(&mut tx, actor.user_id, now, Change::new("process", process.id, "publish").after(&note)).await?;
            tx.commit().await?;
            return Ok(flash::redirect(&format!("/admin/processes/{key}"), flash::Kind::Success, &format!("Version {version} is published.")));
        }
        Err(PublishError::Invalid(errors)) => errors.iter().map(|e| format!("definition.{e}")).collect(),
        Err(PublishError::Unmapped(states)) => states
            .iter()
            .map(|(s, n)| format!("{n} open ticket(s) are in {s:?}, which this version removes: choose where they go."))
            .collect(),
    };
    drop(tx);
    edit_page(
        &state,
        shell,
        &key,
        Editing {
            text: None,
            problems: vec![],
            publish_problems: problems,
        },
    )
    .await
}

#[derive(Template)]
#[template(path = "admin/simulate.html")]
struct SimulatePage {
    shell: Shell,
    process: Process,
    state: String,
    states: Vec<(String, String)>,
    roles: Vec<(String, bool)>,
    values: String,
    internal: bool,
    comment: String,
    modes: Vec<(String, &'static str)>,
    /// (link to the target, label, target label, reasons it is refused)
    steps: Vec<(String, String, String, Vec<String>)>,
    /// The outcomes of the state's approval step: (link to the target, outcome, target label).
    outcomes: Vec<(String, &'static str, String)>,
}

#[derive(Deserialize)]
pub struct SimulateQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    values: String,
    /// "no": act as someone who may not see internal fields.
    #[serde(default)]
    internal: String,
    /// The comment sent with each step; empty shows which steps need one.
    #[serde(default)]
    comment: String,
}

/// Tries the draft: pick roles, whether internal fields are theirs to see, a state, sample
/// values and a comment; see field modes, which steps would be allowed or refused and why,
/// and where an approval step's outcomes lead. Touches no ticket.
pub async fn simulate(
    State(state): State<AppState>,
    shell: Shell,
    Path(key): Path<String>,
    Query(q): Query<SimulateQuery>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let process = processes::find_by_key(&mut conn, &key)
        .await?
        .ok_or(Error::NotFound)?;
    let draft = processes::draft(&mut conn, process.id).await?;
    let known = processes::known(&mut conn).await?;
    let chosen: BTreeSet<String> = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "role")
        .map(|(_, v)| v.into_owned())
        .collect();
    let current = if draft.state(&q.state).is_some() {
        q.state.clone()
    } else {
        draft
            .initial_state()
            .map(|s| s.key.clone())
            .unwrap_or_default()
    };
    let mut raw_values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in q.values.lines() {
        if let Some((k, v)) = line.split_once('=') {
            raw_values
                .entry(k.trim().to_owned())
                .or_default()
                .push(v.trim().to_owned());
        }
    }
    let (values, _) = crate::tickets::parse_values(&draft, &raw_values);
    let internal = q.internal != "no";
    let acting = Acting {
        roles: chosen.clone(),
        see_internal: internal,
    };
    // The same choices, in a state reached by a step or an outcome.
    let link = |to: &str| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        url.append_pair("state", to);
        for r in &chosen {
            url.append_pair("role", r);
        }
        url.append_pair("internal", if internal { "yes" } else { "no" })
            .append_pair("values", &q.values)
            .append_pair("comment", &q.comment);
        format!("?{}", url.finish())
    };
    let modes = draft
        .modes(&current, &acting)
        .into_iter()
        .map(|(f, m)| {
            let mode = match m {
                Mode::Hidden => "hidden",
                Mode::Read => "read",
                Mode::Edit => "edit",
                Mode::Required => "required",
            };
            (f.label.clone(), mode)
        })
        .collect();
    let snapshot = Snapshot {
        state: current.clone(),
        values: values.clone(),
    };
    let label_of = |key: &str| draft.state(key).map_or(key.to_owned(), |s| s.label.clone());
    let steps = draft
        .transitions
        .iter()
        .filter(|t| t.leaves(&current))
        .map(|t| {
            let outcome = draft.check_transition(
                &snapshot,
                &acting,
                &t.key,
                &BTreeMap::<String, Value>::new(),
                &q.comment,
            );
            let reasons = match outcome {
                Ok(_) => Vec::new(),
                Err(refusals) => refusals.into_iter().map(|r| r.reason).collect(),
            };
            (link(&t.to), t.label.clone(), label_of(&t.to), reasons)
        })
        .collect();
    let outcomes = [
        (Outcome::Approved, "Approved"),
        (Outcome::Rejected, "Rejected"),
        (Outcome::Nobody, "Nobody to ask"),
    ]
    .into_iter()
    .filter_map(|(outcome, name)| {
        let effects = draft.after_approval(&current, outcome)?;
        effects.iter().find_map(|e| match e {
            Effect::MoveTo { state } => Some((link(state), name, label_of(state))),
            _ => None,
        })
    })
    .collect();
    let mut role_names: Vec<String> = known.roles.into_iter().collect();
    role_names.extend(RELATIONS.iter().map(|r| r.to_string()));
    render(
        axum::http::StatusCode::OK,
        &SimulatePage {
            shell: shell.at("admin"),
            states: draft
                .states
                .iter()
                .map(|s| (s.key.clone(), s.label.clone()))
                .collect(),
            roles: role_names
                .into_iter()
                .map(|r| {
                    let on = chosen.contains(&r);
                    (r, on)
                })
                .collect(),
            process,
            state: current,
            values: q.values,
            internal,
            comment: q.comment,
            modes,
            steps,
            outcomes,
        },
    )
}
