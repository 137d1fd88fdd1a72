//! Admin: the systems registry.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Outcome, Saved, finish, optional_id, parse_id, status_for};
use crate::audit::Change;
use crate::core::ids::{GroupId, SystemId};
use crate::core::{FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::people::{groups, users};
use crate::projects::systems::{self, Criticality, System, SystemInput};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

#[derive(Debug, Default, Deserialize)]
pub struct SystemForm {
    #[serde(default)]
    name: String,
    /// The owner's e-mail address.
    #[serde(default)]
    owner: String,
    #[serde(default)]
    support_group_id: String,
    #[serde(default)]
    criticality: String,
}

impl SystemForm {
    fn of(s: &System, owner_email: String) -> Self {
        Self {
            name: s.name.clone(),
            owner: owner_email,
            support_group_id: s
                .support_group_id
                .map(|g| g.to_string())
                .unwrap_or_default(),
            criticality: s.criticality.as_str().into(),
        }
    }

    async fn input(&self, conn: &mut sqlx::PgConnection) -> Result<SystemInput> {
        let mut errors = FieldErrors::new();
        let group: Option<GroupId> = optional_id(&self.support_group_id, "support_group_id")
            .unwrap_or_else(|e| {
                errors = e;
                None
            });
        let criticality = Criticality::parse(&self.criticality);
        if criticality.is_none() {
            errors.add("criticality", "Choose a criticality.");
        }
        let mut owner = None;
        if !self.owner.trim().is_empty() {
            match users::find_by_email(conn, &self.owner).await? {
                Some(u) => owner = Some(u.id),
                None => errors.add("owner", "There is no account with this e-mail address."),
            }
        }
        errors.into_result()?;
        Ok(SystemInput {
            name: self.name.clone(),
            owner_id: owner,
            support_group_id: group,
            criticality: criticality.unwrap_or(Criticality::Medium),
        })
    }
}

#[derive(Template)]
#[template(path = "admin/systems.html")]
struct Page {
    shell: Shell,
    systems: Vec<System>,
    editing: Option<System>,
    groups: Vec<groups::Group>,
    levels: [Criticality; 4],
    form: SystemForm,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    shell: Shell,
    editing: Option<SystemId>,
    form: Option<SystemForm>,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let editing = match editing {
        Some(id) => Some(systems::find(&mut conn, id).await?),
        None => None,
    };
    let form = match (form, &editing) {
        (Some(f), _) => f,
        (None, Some(s)) => {
            let owner = match s.owner_id {
                Some(id) => users::find(&mut conn, id).await?.email,
                None => String::new(),
            };
            SystemForm::of(s, owner)
        }
        (None, None) => SystemForm {
            criticality: "medium".into(),
            ..SystemForm::default()
        },
    };
    render(
        status_for(&errors),
        &Page {
            shell: shell.at("admin"),
            systems: systems::list(&mut conn).await?,
            groups: groups::list(&mut conn).await?,
            levels: Criticality::ALL,
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
    Form(form): Form<SystemForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let input = form.input(&mut tx).await?;
        let id = systems::create(&mut tx, &input, now).await?;
        let after = systems::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("system", id, "create").after(&after),
            paths::admin::systems(),
            "System added.",
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
    Form(form): Form<SystemForm>,
) -> Result<Response> {
    let id: SystemId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = systems::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        let input = form.input(&mut tx).await?;
        systems::update(&mut tx, id, &input).await?;
        let after = systems::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("system", id, "update")
                .before(&before)
                .after(&after),
            paths::admin::systems(),
            "Saved.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => page(&state, shell, Some(id), Some(form), errors).await,
    }
}
