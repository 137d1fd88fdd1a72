//! Admin: roles as a checkbox matrix over the permission catalog, and memberships (a role
//! given to a user or a group, everywhere or in one project).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Outcome, Saved, finish, optional_id, parse_id, status_for};
use crate::audit::Change;
use crate::core::ids::{GroupId, MembershipId, ProjectId, RoleId, UserId};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{Actor, Permission};
use crate::people::roles::{self, Holder, Membership, Role};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::flash;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

#[derive(Template)]
#[template(path = "admin/roles.html")]
struct ListPage {
    shell: Shell,
    roles: Vec<Role>,
    catalog: &'static [Permission],
    form: RoleFields,
    errors: FieldErrors,
}

/// A role form as typed: the permissions come as repeated `permission` fields.
#[derive(Debug, Default)]
pub struct RoleFields {
    name: String,
    description: String,
    permissions: Vec<String>,
}

impl RoleFields {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut fields = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "name" => fields.name = value,
                "description" => fields.description = value,
                "permission" => fields.permissions.push(value),
                _ => {}
            }
        }
        fields
    }

    fn checked(&self, p: &Permission) -> bool {
        self.permissions.iter().any(|x| x == p.name())
    }
}

async fn list_page(
    state: &AppState,
    shell: Shell,
    form: RoleFields,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    render(
        status_for(&errors),
        &ListPage {
            shell: shell.at("admin"),
            roles: roles::list(&mut conn).await?,
            catalog: Permission::ALL,
            form,
            errors,
        },
    )
}

pub async fn list(State(state): State<AppState>, shell: Shell) -> Result<Response> {
    list_page(&state, shell, RoleFields::default(), FieldErrors::new()).await
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let form = RoleFields::from_pairs(pairs);
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let id = roles::create(
            &mut tx,
            &form.name,
            &form.description,
            &form.permissions,
            now,
        )
        .await?;
        let role = roles::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("role", id, "create").after(&role),
            paths::admin::role(id),
            "Role created.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => list_page(&state, shell, form, errors).await,
    }
}

#[derive(Template)]
#[template(path = "admin/role.html")]
struct ShowPage {
    shell: Shell,
    role: Role,
    form: RoleFields,
    catalog: &'static [Permission],
    holders: Vec<Membership>,
    errors: FieldErrors,
}

async fn show_page(
    state: &AppState,
    shell: Shell,
    id: RoleId,
    form: Option<RoleFields>,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let role = roles::find(&mut conn, id).await?;
    let form = form.unwrap_or_else(|| RoleFields {
        name: role.name.clone(),
        description: role.description.clone(),
        permissions: role.permissions.clone(),
    });
    render(
        status_for(&errors),
        &ShowPage {
            shell: shell.at("admin"),
            holders: roles::memberships_of_role(&mut conn, id).await?,
            role,
            form,
            catalog: Permission::ALL,
            errors,
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    Path(id): Path<String>,
) -> Result<Response> {
    show_page(&state, shell, parse_id(&id)?, None, FieldErrors::new()).await
}

pub async fn update(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let id: RoleId = parse_id(&id)?;
    let form = RoleFields::from_pairs(pairs);
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = roles::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        roles::update(
            &mut tx,
            id,
            &form.name,
            &form.description,
            &form.permissions,
        )
        .await?;
        let after = roles::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("role", id, "update")
                .before(&before)
                .after(&after),
            paths::admin::role(id),
            "Saved.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => show_page(&state, shell, id, Some(form), errors).await,
    }
}

pub async fn delete(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: RoleId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = roles::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        roles::delete(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("role", id, "delete").before(&before),
            paths::admin::roles(),
            "Role deleted.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => show_page(&state, shell, id, None, errors).await,
    }
}

#[derive(Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    group_id: String,
    #[serde(default)]
    role_id: String,
    #[serde(default)]
    project_id: String,
}

fn holder_page(holder: Holder) -> String {
    match holder {
        Holder::User(u) => paths::admin::user(u),
        Holder::Group(g) => paths::admin::group(g),
    }
}

/// A refused grant or revoke: back to the holder's page with every message in one flash.
fn refused(back: &str, errors: &FieldErrors) -> Response {
    let text = errors.iter().map(|(_, m)| m).collect::<Vec<_>>().join(" ");
    flash::redirect(back, flash::Kind::Error, &text)
}

/// Gives a role to a user or a group (back to that page with the outcome).
pub async fn grant(
    State(state): State<AppState>,
    actor: Actor,
    Form(form): Form<GrantForm>,
) -> Result<Response> {
    let holder = match (
        form.user_id.parse::<UserId>(),
        form.group_id.parse::<GroupId>(),
    ) {
        (Ok(u), _) => Holder::User(u),
        (_, Ok(g)) => Holder::Group(g),
        _ => {
            return Err(Error::Invalid(FieldErrors::one(
                "user_id",
                "Choose who gets the role.",
            )));
        }
    };
    let back = holder_page(holder);
    let role: Option<RoleId> = optional_id(&form.role_id, "role_id").unwrap_or_default();
    let Some(role) = role else {
        return Ok(flash::redirect(&back, flash::Kind::Error, "Choose a role."));
    };
    let project: Option<ProjectId> = match optional_id(&form.project_id, "project_id") {
        Ok(p) => p,
        Err(_) => {
            return Ok(flash::redirect(
                &back,
                flash::Kind::Error,
                "Choose a project from the list.",
            ));
        }
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let id = roles::grant(&mut tx, role, holder, project, now).await?;
        let m = roles::find_membership(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("membership", id, "create").after(&m),
            &back,
            format!("Role given: {}.", m.describe()),
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => Ok(refused(&back, &errors)),
    }
}

/// Takes a role away (refused if nobody could administer users afterwards).
pub async fn revoke(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: MembershipId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let m = roles::find_membership(&mut tx, id).await?;
    let holder = match (m.user_id, m.group_id) {
        (Some(u), _) => Holder::User(u),
        (None, Some(g)) => Holder::Group(g),
        (None, None) => return Err(Error::NotFound),
    };
    let back = holder_page(holder);
    let saved: Result<Saved> = async {
        roles::revoke(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("membership", id, "delete").before(&m),
            &back,
            format!("Role taken away: {}.", m.describe()),
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => Ok(refused(&back, &errors)),
    }
}
