//! Admin: canned responses (reusable replies with placeholders), shared or per project.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Outcome, Saved, finish, optional_id, parse_id, status_for};
use crate::audit::{self, Change};
use crate::core::ids::{CannedId, ProjectId};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::projects::{self, Project};
use crate::tickets::canned::{self, Canned, CannedInput, PLACEHOLDERS};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::flash;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

#[derive(Debug, Default, Deserialize)]
pub struct CannedForm {
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

impl CannedForm {
    fn of(c: &Canned) -> Self {
        Self {
            project_id: c.project_id.map(|p| p.to_string()).unwrap_or_default(),
            title: c.title.clone(),
            body: c.body.clone(),
        }
    }

    fn input(&self) -> Result<CannedInput> {
        let project_id: Option<ProjectId> =
            optional_id(&self.project_id, "project_id").map_err(Error::Invalid)?;
        Ok(CannedInput {
            project_id,
            title: self.title.clone(),
            body: self.body.clone(),
        })
    }
}

#[derive(Template)]
#[template(path = "admin/canned.html")]
struct Page {
    shell: Shell,
    responses: Vec<Canned>,
    editing: Option<Canned>,
    projects: Vec<Project>,
    placeholders: [(&'static str, &'static str); 8],
    form: CannedForm,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    shell: Shell,
    editing: Option<CannedId>,
    form: Option<CannedForm>,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let editing = match editing {
        Some(id) => Some(canned::find(&mut conn, id).await?),
        None => None,
    };
    let form = match (form, &editing) {
        (Some(f), _) => f,
        (None, Some(c)) => CannedForm::of(c),
        (None, None) => CannedForm::default(),
    };
    render(
        status_for(&errors),
        &Page {
            shell: shell.at("admin"),
            responses: canned::list(&mut conn).await?,
            projects: projects::list(&mut conn).await?,
            placeholders: PLACEHOLDERS,
            editing,
            form,
            errors,
        },
    )
}

pub async fn list(State(state): State<AppState>, shell: Shell) -> Result<Response> {
    page(&state, shell, None, None, FieldErrors::new()).await
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    Path(id): Path<String>,
) -> Result<Response> {
    page(
        &state,
        shell,
        Some(parse_id(&id)?),
        None,
        FieldErrors::new(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<CannedForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let input = form.input()?;
        let id = canned::create(&mut tx, &input, actor.user_id, now).await?;
        let after = canned::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("canned_response", id, "create").after(&after),
            paths::admin::canned(),
            "Canned response added.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => page(&state, shell, None, Some(form), errors).await,
    }
}

pub async fn update(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<CannedForm>,
) -> Result<Response> {
    let id: CannedId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = canned::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        let input = form.input()?;
        canned::update(&mut tx, id, &input, now).await?;
        let after = canned::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("canned_response", id, "update")
                .before(&before)
                .after(&after),
            paths::admin::canned(),
            "Saved.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => page(&state, shell, Some(id), Some(form), errors).await,
    }
}

pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: CannedId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = canned::find(&mut tx, id).await?;
    canned::delete(&mut tx, id).await?;
    audit::record(
        &mut tx,
        actor.user_id,
        now,
        Change::new("canned_response", id, "delete").before(&before),
    )
    .await?;
    tx.commit().await?;
    Ok(flash::redirect(
        paths::admin::canned(),
        flash::Kind::Success,
        "Canned response deleted.",
    ))
}
