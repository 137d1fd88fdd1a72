//! Admin: groups, their members and the roles they carry.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Outcome, Saved, finish, parse_id, status_for};
use crate::audit::{self, Change};
use crate::core::ids::{GroupId, UserId};
use crate::core::{FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::people::roles::{self, Holder, Membership, Role};
use crate::people::{groups, users};
use crate::projects::{self, Project};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::flash;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

#[derive(Debug, Default, Deserialize)]
pub struct GroupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct ListPage {
    shell: Shell,
    groups: Vec<groups::Group>,
    form: GroupForm,
    errors: FieldErrors,
}

async fn list_page(
    state: &AppState,
    shell: Shell,
    form: GroupForm,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    render(
        status_for(&errors),
        &ListPage {
            shell: shell.at("admin"),
            groups: groups::list(&mut conn).await?,
            form,
            errors,
        },
    )
}

pub async fn list(State(state): State<AppState>, shell: Shell) -> Result<Response> {
    list_page(&state, shell, GroupForm::default(), FieldErrors::new()).await
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<GroupForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let id = groups::create(&mut tx, &form.name, &form.description, now).await?;
        let group = groups::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("group", id, "create").after(&group),
            paths::admin::group(id),
            "Group created.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => list_page(&state, shell, form, errors).await,
    }
}

#[derive(Template)]
#[template(path = "admin/group.html")]
struct ShowPage {
    shell: Shell,
    group: groups::Group,
    form: GroupForm,
    members: Vec<groups::Member>,
    memberships: Vec<Membership>,
    roles: Vec<Role>,
    projects: Vec<Project>,
    /// The groups it may escalate to, and the one chosen (the tier form, see `admin::triage`).
    tiers: Vec<groups::Group>,
    tier: String,
    errors: FieldErrors,
}

async fn show_page(
    state: &AppState,
    shell: Shell,
    id: GroupId,
    form: Option<GroupForm>,
    errors: FieldErrors,
) -> Result<Response> {
    show_page_with(state, shell, id, form, None, errors).await
}

/// The group page; `tier` is the next tier as sent, kept when refused.
pub(super) async fn show_page_with(
    state: &AppState,
    shell: Shell,
    id: GroupId,
    form: Option<GroupForm>,
    tier: Option<String>,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let group = groups::find(&mut conn, id).await?;
    let form = form.unwrap_or_else(|| GroupForm {
        name: group.name.clone(),
        description: group.description.clone(),
    });
    let tier = tier.unwrap_or_else(|| {
        group
            .escalates_to
            .map(|g| g.to_string())
            .unwrap_or_default()
    });
    let mut tiers = groups::list(&mut conn).await?;
    tiers.retain(|g| g.id != id);
    render(
        status_for(&errors),
        &ShowPage {
            shell: shell.at("admin"),
            members: groups::members(&mut conn, id).await?,
            memberships: roles::memberships_of(&mut conn, Holder::Group(id)).await?,
            roles: roles::list(&mut conn).await?,
            projects: projects::list(&mut conn).await?,
            tiers,
            tier,
            group,
            form,
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
    Form(form): Form<GroupForm>,
) -> Result<Response> {
    let id: GroupId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = groups::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        groups::update(&mut tx, id, &form.name, &form.description).await?;
        let after = groups::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("group", id, "update")
                .before(&before)
                .after(&after),
            paths::admin::group(id),
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
    let id: GroupId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = groups::find(&mut tx, id).await?;
    let members = groups::members(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        groups::delete(&mut tx, id).await?;
        let snapshot = serde_json::json!({ "group": before, "members": members });
        Ok(Saved::new(
            Change::new("group", id, "delete").before(&snapshot),
            paths::admin::groups(),
            "Group deleted.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => show_page(&state, shell, id, None, errors).await,
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    email: String,
}

pub async fn add_member(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<MemberForm>,
) -> Result<Response> {
    let id: GroupId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    groups::find(&mut tx, id).await?;
    let Some(user) = users::find_by_email(&mut tx, &form.email).await? else {
        drop(tx);
        let errors = FieldErrors::one("email", "There is no account with this e-mail address.");
        return show_page(&state, shell, id, None, errors).await;
    };
    if groups::add_member(&mut tx, id, user.id).await? {
        audit::record(
            &mut tx,
            actor.user_id,
            now,
            Change::new("group_member", id, "add")
                .after(&serde_json::json!({ "user": user.email })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(flash::redirect(
        &paths::admin::group(id),
        flash::Kind::Success,
        &format!("{} is a member now.", user.display_name),
    ))
}

pub async fn remove_member(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path((id, user)): Path<(String, String)>,
) -> Result<Response> {
    let id: GroupId = parse_id(&id)?;
    let user: UserId = parse_id(&user)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let member = users::find(&mut tx, user).await?;
    let saved: Result<Saved> = async {
        groups::remove_member(&mut tx, id, user).await?;
        Ok(Saved::new(
            Change::new("group_member", id, "remove")
                .before(&serde_json::json!({ "user": member.email })),
            paths::admin::group(id),
            "Removed from the group.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => show_page(&state, shell, id, None, errors).await,
    }
}
