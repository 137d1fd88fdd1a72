//! Filing a request, "My requests", the ticket page and its comment form.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::AppState;
use super::extract::Form;
use super::flash;
use super::layout::Shell;
use super::pages::render;
use super::paths;
use crate::core::ids::{ProjectId, TicketId, TicketKey};
use crate::core::markdown::SafeHtml;
use crate::core::time::display;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};
use crate::projects::{self, Project};
use crate::tickets::{self, EventData, NewTicket};

const PAGE_SIZE: i64 = 25;

#[derive(Template)]
#[template(path = "tickets/mine.html")]
struct MinePage {
    shell: Shell,
    rows: Vec<tickets::Row>,
    next: Option<TicketId>,
    first_page: bool,
}

#[derive(Deserialize)]
pub struct PageQuery {
    after: Option<String>,
}

pub async fn mine(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let after = match q.after.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<TicketId>().map_err(|_| {
            Error::Invalid(FieldErrors::one("after", "This page link is not valid."))
        })?),
        None => None,
    };
    let mut conn = state.pool.acquire().await?;
    let page = tickets::my_requests(&mut conn, &actor, after, PAGE_SIZE).await?;
    render(
        StatusCode::OK,
        &MinePage {
            shell: shell.at("requests"),
            rows: page.rows,
            next: page.next,
            first_page: after.is_none(),
        },
    )
}

/// The new-request form as typed (kept on errors).
#[derive(Debug, Default, Deserialize)]
pub struct NewTicketForm {
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
}

#[derive(Template)]
#[template(path = "tickets/new.html")]
struct NewPage {
    shell: Shell,
    projects: Vec<Project>,
    form: NewTicketForm,
    errors: FieldErrors,
}

async fn new_page(
    state: &AppState,
    shell: Shell,
    actor: &Actor,
    form: NewTicketForm,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    // Only where the actor may file; the help desk first, the usual place for a request.
    let mut projects: Vec<Project> = projects::list(&mut conn)
        .await?
        .into_iter()
        .filter(|p| policy::decide(actor, Action::CreateTicket(p.id), Target::Nothing).allowed())
        .collect();
    projects.sort_by_key(|p| (p.kind != projects::Kind::ServiceDesk, p.key.clone()));
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        &NewPage {
            shell: shell.at("new"),
            projects,
            form,
            errors,
        },
    )
}

pub async fn new_form(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
) -> Result<Response> {
    new_page(
        &state,
        shell,
        &actor,
        NewTicketForm::default(),
        FieldErrors::new(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<NewTicketForm>,
) -> Result<Response> {
    let input = NewTicket {
        project_id: form.project_id.parse::<ProjectId>().ok(),
        title: form.title.clone(),
        description: form.description.clone(),
    };
    let mut tx = state.pool.begin().await?;
    match tickets::create(&mut tx, &actor, &input, state.clock.now()).await {
        Ok(key) => {
            tx.commit().await?;
            let key = key.to_string();
            Ok(flash::redirect(
                &paths::ticket(&key),
                flash::Kind::Success,
                &format!("Your request {key} was filed."),
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            new_page(&state, shell, &actor, form, errors).await
        }
        Err(e) => Err(e),
    }
}

struct EventView {
    id: i64,
    actor: String,
    when: String,
    what: &'static str,
    body: Option<SafeHtml>,
}

#[derive(Template)]
#[template(path = "tickets/show.html")]
struct TicketPage {
    shell: Shell,
    ticket: tickets::Ticket,
    created: String,
    updated: String,
    events: Vec<EventView>,
    comment: String,
    errors: FieldErrors,
}

fn parse_key(key: &str) -> Result<TicketKey> {
    TicketKey::parse(key).ok_or(Error::NotFound)
}

async fn ticket_page(
    state: &AppState,
    shell: Shell,
    actor: &Actor,
    key: &TicketKey,
    comment: String,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let ticket = tickets::find_visible(&mut conn, actor, key).await?;
    let events = tickets::events(&mut conn, ticket.id)
        .await?
        .into_iter()
        .map(|e| {
            let (what, body) = match e.data {
                EventData::Created { .. } => ("filed this request", None),
                EventData::Comment { body_html, .. } => {
                    ("commented", Some(SafeHtml::from_stored(body_html)))
                }
            };
            EventView {
                id: e.id,
                actor: e.actor_name.unwrap_or_else(|| "Unitrack".into()),
                when: display(e.created_at),
                what,
                body,
            }
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        &TicketPage {
            shell: shell.at("requests"),
            created: display(ticket.created_at.to_jiff()),
            updated: display(ticket.updated_at.to_jiff()),
            ticket,
            events,
            comment,
            errors,
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
) -> Result<Response> {
    let typed = key;
    let key = parse_key(&typed)?;
    // People type keys in any case; the page lives at the canonical one.
    if key.to_string() != typed {
        return Ok(Redirect::permanent(&paths::ticket(&key.to_string())).into_response());
    }
    ticket_page(
        &state,
        shell,
        &actor,
        &key,
        String::new(),
        FieldErrors::new(),
    )
    .await
}

#[derive(Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    body: String,
}

pub async fn comment(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(form): Form<CommentForm>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let mut tx = state.pool.begin().await?;
    let ticket = tickets::find_visible(&mut tx, &actor, &key).await?;
    match tickets::add_comment(&mut tx, &actor, &ticket, &form.body, state.clock.now()).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(
                Redirect::to(&format!("{}#comment", paths::ticket(&key.to_string())))
                    .into_response(),
            )
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            ticket_page(&state, shell, &actor, &key, form.body, errors).await
        }
        Err(e) => Err(e),
    }
}
