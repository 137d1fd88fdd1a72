//! Admin: projects (key, kind, single point of contact, requester visibility).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Outcome, Saved, finish, status_for};
use crate::audit::Change;
use crate::core::ids::UserId;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::people::{groups, users};
use crate::projects::{self, Kind, Project, ProjectInput};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

#[derive(Debug, Default, Deserialize)]
pub struct ProjectForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    /// The contact's e-mail address.
    #[serde(default)]
    contact: String,
    #[serde(default)]
    org_unit_visible: String,
    #[serde(default)]
    change_board_group_id: String,
}

impl ProjectForm {
    fn of(p: &Project, contact_email: String) -> Self {
        Self {
            key: p.key.clone(),
            name: p.name.clone(),
            kind: p.kind.as_str().into(),
            contact: contact_email,
            org_unit_visible: if p.org_unit_visible {
                "on".into()
            } else {
                String::new()
            },
            change_board_group_id: p
                .change_board_group_id
                .map(|g| g.to_string())
                .unwrap_or_default(),
        }
    }

    /// Turns the form into input, looking up the contact by e-mail.
    async fn input(&self, conn: &mut sqlx::PgConnection) -> Result<ProjectInput> {
        let mut errors = FieldErrors::new();
        let kind = Kind::parse(&self.kind);
        if kind.is_none() {
            errors.add("kind", "Choose a kind.");
        }
        let mut contact: Option<UserId> = None;
        if !self.contact.trim().is_empty() {
            match users::find_by_email(conn, &self.contact).await? {
                Some(u) => contact = Some(u.id),
                None => errors.add("contact", "There is no account with this e-mail address."),
            }
        }
        let board = super::collect_id(
            &self.change_board_group_id,
            "change_board_group_id",
            &mut errors,
        );
        errors.into_result()?;
        Ok(ProjectInput {
            name: self.name.clone(),
            kind: kind.unwrap_or(Kind::ServiceDesk),
            point_of_contact_id: contact,
            org_unit_visible: !self.org_unit_visible.is_empty(),
            change_board_group_id: board,
        })
    }
}

#[derive(Template)]
#[template(path = "admin/projects.html")]
struct ListPage {
    shell: Shell,
    projects: Vec<Project>,
    kinds: [Kind; 3],
    groups: Vec<groups::Group>,
    form: ProjectForm,
    errors: FieldErrors,
}

async fn list_page(
    state: &AppState,
    shell: Shell,
    form: ProjectForm,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    render(
        status_for(&errors),
        &ListPage {
            shell: shell.at("admin"),
            projects: projects::list(&mut conn).await?,
            kinds: Kind::ALL,
            groups: groups::list(&mut conn).await?,
            form,
            errors,
        },
    )
}

pub async fn list(State(state): State<AppState>, shell: Shell) -> Result<Response> {
    let form = ProjectForm {
        kind: Kind::ServiceDesk.as_str().into(),
        ..ProjectForm::default()
    };
    list_page(&state, shell, form, FieldErrors::new()).await
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<ProjectForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let input = form.input(&mut tx).await?;
        let id = projects::create(&mut tx, &form.key, &input, now).await?;
        let project = projects::find(&mut tx, id).await?;
        let change = Change::new("project", id, "create").after(&project);
        let key = project.map(|p| p.key).unwrap_or_default();
        Ok(Saved::new(
            change,
            paths::admin::project(&key),
            "Project created.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => list_page(&state, shell, form, errors).await,
    }
}

#[derive(Template)]
#[template(path = "admin/project.html")]
struct ShowPage {
    shell: Shell,
    project: Project,
    kinds: [Kind; 3],
    groups: Vec<groups::Group>,
    form: ProjectForm,
    errors: FieldErrors,
}

async fn find(conn: &mut sqlx::PgConnection, key: &str) -> Result<Project> {
    projects::find_by_key(conn, key)
        .await?
        .ok_or(Error::NotFound)
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    Path(key): Path<String>,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let project = find(&mut conn, &key).await?;
    let contact = match project.point_of_contact_id {
        Some(id) => users::find(&mut conn, id).await?.email,
        None => String::new(),
    };
    render(
        status_for(&FieldErrors::new()),
        &ShowPage {
            shell: shell.at("admin"),
            form: ProjectForm::of(&project, contact),
            project,
            kinds: Kind::ALL,
            groups: groups::list(&mut conn).await?,
            errors: FieldErrors::new(),
        },
    )
}

pub async fn update(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(form): Form<ProjectForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = find(&mut tx, &key).await?;
    let saved: Result<Saved> = async {
        let input = form.input(&mut tx).await?;
        projects::update(&mut tx, before.id, &input).await?;
        let after = projects::find(&mut tx, before.id).await?;
        Ok(Saved::new(
            Change::new("project", before.id, "update")
                .before(&before)
                .after(&after),
            paths::admin::project(&key),
            "Saved.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => {
            let mut conn = state.pool.acquire().await?;
            render(
                status_for(&errors),
                &ShowPage {
                    shell: shell.at("admin"),
                    project: before,
                    kinds: Kind::ALL,
                    groups: groups::list(&mut conn).await?,
                    form,
                    errors,
                },
            )
        }
    }
}
