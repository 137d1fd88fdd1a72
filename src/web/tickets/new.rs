//! Filing a request: the process picker, the process's form, and the create action.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::fields::{FieldView, field_views, reference_options, split_form, stray_errors};
use crate::core::ids::{ProjectId, TicketId, TicketKey};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};
use crate::engine::workflow::Acting;
use crate::processes::{self, Process};
use crate::projects::{self, Project};
use crate::tickets::{self, NewTicket, ProcessChoice};
use crate::web::extract::Form;
use crate::web::layout::Shell;
use crate::web::pages::{render, status_for};
use crate::web::{AppState, flash, paths};

#[derive(Template)]
#[template(path = "tickets/new.html")]
struct NewPage {
    shell: Shell,
    projects: Vec<Project>,
    processes: Vec<Process>,
    process: Option<Process>,
    project_id: String,
    title: String,
    description: String,
    follow_up: String,
    fields: Vec<FieldView>,
    errors: FieldErrors,
    stray: Vec<String>,
}

#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    process: String,
    /// The key of an earlier request this one follows up.
    #[serde(default)]
    follow_up: String,
    /// The project to preselect (its roles decide the form's fields).
    #[serde(default)]
    project: String,
}

async fn new_page(
    state: &AppState,
    shell: Shell,
    actor: &Actor,
    process_key: &str,
    named: &BTreeMap<String, String>,
    raw: Option<&BTreeMap<String, Vec<String>>>,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    // Only where the actor may file; the help desk first, the usual place for a request.
    let mut projects: Vec<Project> = projects::list(&mut conn)
        .await?
        .into_iter()
        .filter(|p| policy::decide(actor, Action::CreateTicket, Target::Project(p.id)).allowed())
        .collect();
    projects.sort_by_key(|p| (p.kind != projects::Kind::ServiceDesk, p.key.clone()));
    let processes = processes::list_fileable(&mut conn).await?;
    let key = if process_key.is_empty() {
        tickets::DEFAULT_PROCESS
    } else {
        process_key
    };
    let process = processes.iter().find(|p| p.key == key).cloned();
    // Field modes are those of the project chosen (or the one preselected): roles differ.
    let chosen = named
        .get("project_id")
        .and_then(|id| projects.iter().find(|p| p.id.to_string() == *id))
        .or(projects.first());
    let mut fields = Vec::new();
    if let Some(p) = &process {
        let def = processes::definition(&mut conn, p.id, p.version.unwrap_or(1)).await?;
        if let Some(initial) = def.initial_state() {
            let mut roles = std::collections::BTreeSet::from(["requester".to_owned()]);
            if let Some(project) = chosen {
                roles.extend(actor.role_names_in(project.id));
            }
            let see_internal = chosen.is_some_and(|project| {
                policy::decide(actor, Action::SeeInternal, Target::Project(project.id)).allowed()
            });
            let acting = Acting {
                roles,
                see_internal,
            };
            let reference = state
                .reference
                .get(&mut conn, shell.reference_version)
                .await?;
            let refs = reference_options(&mut conn, &reference.data, &def).await?;
            fields = field_views(
                &def,
                &initial.key,
                &acting,
                &BTreeMap::new(),
                raw,
                &refs,
                &errors,
            );
            fields.retain(FieldView::editable);
        }
    }
    let get = |k: &str| named.get(k).cloned().unwrap_or_default();
    // A process error shows above the form, under the kinds of request to choose from.
    let mut shown: Vec<&str> = vec!["project_id", "title", "description", "follow_up"];
    shown.extend(fields.iter().map(|f| f.key.as_str()));
    let stray = stray_errors(&errors, &shown);
    render(
        status_for(&errors),
        &NewPage {
            shell: shell.at("new"),
            projects,
            processes,
            process,
            project_id: get("project_id"),
            title: get("title"),
            description: get("description"),
            follow_up: get("follow_up"),
            fields,
            errors,
            stray,
        },
    )
}

pub async fn new_form(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Query(q): Query<NewQuery>,
) -> Result<Response> {
    let mut named = BTreeMap::new();
    if !q.project.is_empty() {
        named.insert("project_id".to_owned(), q.project.clone());
    }
    if let Some(key) = TicketKey::parse(&q.follow_up) {
        let mut conn = state.pool.acquire().await?;
        let earlier = tickets::find_visible(&mut conn, &actor, &key).await?;
        named.insert("project_id".to_owned(), earlier.project_id.to_string());
        named.insert(
            "title".to_owned(),
            format!("Follow-up to {}: {}", earlier.key(), earlier.title)
                .chars()
                .take(tickets::TITLE_MAX)
                .collect(),
        );
        named.insert("follow_up".to_owned(), earlier.id.to_string());
    }
    new_page(
        &state,
        shell,
        &actor,
        &q.process,
        &named,
        None,
        FieldErrors::new(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let (named, values) = split_form(pairs);
    let get = |k: &str| named.get(k).cloned().unwrap_or_default();
    let process_key = get("process");
    let input = NewTicket {
        project_id: get("project_id").parse::<ProjectId>().ok(),
        process: if process_key.is_empty() {
            ProcessChoice::Default
        } else {
            ProcessChoice::Key(process_key.clone())
        },
        title: get("title"),
        description: get("description"),
        values: values.clone(),
        parent_id: get("parent_id").parse::<TicketId>().ok(),
        site_id: get("site_id").parse().ok(),
        follow_up: get("follow_up").parse::<TicketId>().ok(),
    };
    let mut tx = state.pool.begin().await?;
    match tickets::create(&mut tx, &actor, &input, state.clock.now()).await {
        Ok(filed) => {
            tx.commit().await?;
            let key = filed.key.to_string();
            Ok(flash::redirect(
                &paths::ticket(&key),
                flash::Kind::Success,
                &format!("Your request {key} was filed."),
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            new_page(
                &state,
                shell,
                &actor,
                &process_key,
                &named,
                Some(&values),
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}
