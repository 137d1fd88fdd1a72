//! Admin: people. Search, create, edit, deactivate (never delete), set-password links, CSV
//! import with a dry-run preview, and anyone's effective permissions.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{Outcome, Saved, finish, optional_id, parse_id, status_for};
use crate::audit::{self, Change};
use crate::core::ids::{OrgUnitId, RoleId, UserId};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Permission, Target};
use crate::mail::out;
use crate::people::roles::{self, Holder, Membership, Role};
use crate::people::{self, groups, tokens, users};
use crate::projects::{self, Project, org};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

const PAGE: i64 = 50;

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    shell: Shell,
    q: String,
    users: Vec<users::User>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after_name: String,
    #[serde(default)]
    after_id: String,
}

pub async fn list(
    State(state): State<AppState>,
    shell: Shell,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let after = match q.after_id.parse::<UserId>() {
        Ok(id) => Some((q.after_name.clone(), id)),
        Err(_) => None,
    };
    let mut conn = state.pool.acquire().await?;
    let mut found = users::search(&mut conn, &q.q, after, PAGE + 1).await?;
    let next = if found.len() as i64 > PAGE {
        found.truncate(PAGE as usize);
        found.last().map(|u| {
            let name: String =
                url::form_urlencoded::byte_serialize(u.display_name.as_bytes()).collect();
            let query: String = url::form_urlencoded::byte_serialize(q.q.as_bytes()).collect();
            paths::admin::users_page(query, name, u.id)
        })
    } else {
        None
    };
    render(
        StatusCode::OK,
        &ListPage {
            shell: shell.at("admin"),
            q: q.q,
            users: found,
            next,
        },
    )
}

/// The user form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    org_unit_id: String,
    #[serde(default)]
    role_id: String,
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewPage {
    shell: Shell,
    form: UserForm,
    units: Vec<org::OrgUnit>,
    roles: Vec<Role>,
    errors: FieldErrors,
}

async fn new_page(
    state: &AppState,
    shell: Shell,
    form: UserForm,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    render(
        status_for(&errors),
        &NewPage {
            shell: shell.at("admin"),
            units: org::tree(&mut conn).await?,
            roles: roles::list(&mut conn).await?,
            form,
            errors,
        },
    )
}

pub async fn new_form(State(state): State<AppState>, shell: Shell) -> Result<Response> {
    let form = UserForm::default();
    new_page(&state, shell, form, FieldErrors::new()).await
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<UserForm>,
) -> Result<Response> {
    let mut errors = FieldErrors::new();
    let org_unit: Option<OrgUnitId> =
        optional_id(&form.org_unit_id, "org_unit_id").unwrap_or_else(|e| {
            errors = e;
            None
        });
    let role: Option<RoleId> = optional_id(&form.role_id, "role_id").unwrap_or_default();
    if !errors.is_empty() {
        return new_page(&state, shell, form, errors).await;
    }
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let new = users::NewUser {
        email: form.email.clone(),
        display_name: form.display_name.clone(),
        password_hash: None,
        org_unit_id: org_unit,
        roles: role.into_iter().collect(),
    };
    let saved: Result<Saved> = async {
        let id = users::create(&mut tx, &new, now).await?;
        let user = users::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("user", id, "create").after(&user),
            paths::admin::user(id),
            "The account was created. Create a set-password link to let them sign in.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => new_page(&state, shell, form, errors).await,
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct ShowPage {
    shell: Shell,
    user: users::User,
    form: UserForm,
    units: Vec<org::OrgUnit>,
    roles: Vec<Role>,
    projects: Vec<Project>,
    groups: Vec<groups::Group>,
    memberships: Vec<Membership>,
    errors: FieldErrors,
    link: Option<String>,
    /// The set-password link was queued to be mailed.
    mailed: bool,
    undeliverable: Option<out::Undeliverable>,
}

async fn show_page(
    state: &AppState,
    shell: Shell,
    id: UserId,
    form: Option<UserForm>,
    errors: FieldErrors,
    link: Option<(String, bool)>,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let user = users::find(&mut conn, id).await?;
    let form = form.unwrap_or_else(|| UserForm {
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        org_unit_id: user.org_unit_id.map(|o| o.to_string()).unwrap_or_default(),
        role_id: String::new(),
    });
    render(
        status_for(&errors),
        &ShowPage {
            shell: shell.at("admin"),
            units: org::tree(&mut conn).await?,
            roles: roles::list(&mut conn).await?,
            projects: projects::list(&mut conn).await?,
            groups: groups::of_user(&mut conn, id).await?,
            memberships: roles::memberships_of(&mut conn, Holder::User(id)).await?,
            undeliverable: out::undeliverable(&mut conn, id).await?,
            user,
            form,
            errors,
            mailed: link.as_ref().is_some_and(|(_, mailed)| *mailed),
            link: link.map(|(url, _)| url),
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    Path(id): Path<String>,
) -> Result<Response> {
    show_page(
        &state,
        shell,
        parse_id(&id)?,
        None,
        FieldErrors::new(),
        None,
    )
    .await
}

pub async fn update(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<UserForm>,
) -> Result<Response> {
    let id: UserId = parse_id(&id)?;
    let org_unit: Option<OrgUnitId> = match optional_id(&form.org_unit_id, "org_unit_id") {
        Ok(o) => o,
        Err(errors) => return show_page(&state, shell, id, Some(form), errors, None).await,
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = users::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        users::update(&mut tx, id, &form.email, &form.display_name, org_unit, now).await?;
        let after = users::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("user", id, "update")
                .before(&before)
                .after(&after),
            paths::admin::user(id),
            "Saved.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => show_page(&state, shell, id, Some(form), errors, None).await,
    }
}

async fn set_active(
    state: &AppState,
    shell: Shell,
    actor: &Actor,
    id: &str,
    active: bool,
) -> Result<Response> {
    let id: UserId = parse_id(id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = users::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        users::set_active(&mut tx, id, active, now).await?;
        let after = users::find(&mut tx, id).await?;
        let action = if active { "activate" } else { "deactivate" };
        let text = if active {
            "The account is active again."
        } else {
            "The account is deactivated and was signed out everywhere."
        };
        Ok(Saved::new(
            Change::new("user", id, action)
                .before(&before)
                .after(&after),
            paths::admin::user(id),
            text,
        ))
    }
    .await;
    match finish(tx, actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => show_page(state, shell, id, None, errors, None).await,
    }
}

pub async fn deactivate(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    set_active(&state, shell, &actor, &id, false).await
}

pub async fn activate(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    set_active(&state, shell, &actor, &id, true).await
}

/// Makes a single-use set-password link, mails it to the person through the outbox (unless
/// their address is undeliverable) and shows it once, for passing it on another way.
pub async fn password_link(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: UserId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let user = users::find(&mut tx, id).await?;
    if !user.active {
        drop(tx);
        let errors = FieldErrors::one("admin", "Activate the account first.");
        return show_page(&state, shell, id, None, errors, None).await;
    }
    let token = tokens::create(&mut tx, id, Some(actor.user_id), now).await?;
    let link = format!("{}/password/set/{token}", state.config.public_url());
    let mailed = out::queue_set_password(&mut tx, id, &link, now).await?;
    audit::record(
        &mut tx,
        actor.user_id,
        now,
        Change::new("user", id, "password_link"),
    )
    .await?;
    tx.commit().await?;
    show_page(
        &state,
        shell,
        id,
        None,
        FieldErrors::new(),
        Some((link, mailed)),
    )
    .await
}

/// Mail may go to the person again (after a permanent bounce marked them undeliverable).
pub async fn deliverable(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: UserId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    users::find(&mut tx, id).await?;
    if out::clear_undeliverable(&mut tx, id).await? {
        audit::record(
            &mut tx,
            actor.user_id,
            now,
            Change::new("user", id, "mail_deliverable"),
        )
        .await?;
    }
    tx.commit().await?;
    show_page(&state, shell, id, None, FieldErrors::new(), None).await
}

struct PermissionRow {
    name: &'static str,
    label: &'static str,
    everywhere: Vec<String>,
    projects: Vec<(String, Vec<String>)>,
}

#[derive(Template)]
#[template(path = "admin/permissions.html")]
struct PermissionsPage {
    shell: Shell,
    user: users::User,
    rows: Vec<PermissionRow>,
    relations: &'static str,
}

/// What a user can do in each project, and which membership grants it.
pub async fn permissions(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: UserId = parse_id(&id)?;
    if !policy::decide(&actor, Action::ViewPermissionsOf(id), Target::Nothing).allowed() {
        return Err(Error::NotFound);
    }
    let mut conn = state.pool.acquire().await?;
    let user = users::find(&mut conn, id).await?;
    let subject = people::actor_of(&mut conn, id).await?;
    let projects = projects::list(&mut conn).await?;
    let rows = Permission::ALL
        .iter()
        .map(|p| {
            let via = |project: Option<crate::core::ids::ProjectId>| -> Vec<String> {
                subject
                    .sources()
                    .iter()
                    .filter(|g| g.permission == p.name() && g.project == project)
                    .map(|g| g.via())
                    .collect()
            };
            let everywhere = via(None);
            let projects = projects
                .iter()
                .map(|proj| (proj.key.clone(), via(Some(proj.id))))
                .filter(|(_, v)| !v.is_empty())
                .collect();
            PermissionRow {
                name: p.name(),
                label: p.label(),
                everywhere,
                projects,
            }
        })
        .collect();
    render(
        StatusCode::OK,
        &PermissionsPage {
            shell: shell.at(if actor.user_id == id {
                "account"
            } else {
                "admin"
            }),
            user,
            rows,
            relations: "Besides these, anyone sees and answers the tickets they requested, are assigned to (in person or through a group) or watch; and, in projects that allow it, the tickets of their organisation unit.",
        },
    )
}

pub mod import;
