//! Admin: the organisation tree (regions, countries, sites, business units) and the domain
//! rules that place new users in it.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Outcome, Saved, finish, optional_id, parse_id, status_for};
use crate::audit::{self, Change};
use crate::core::ids::{DomainRuleId, OrgUnitId, RoleId};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::people::domain_rules::{self, DomainRule};
use crate::people::roles::{self, Role};
use crate::projects::org::{self, OrgUnit, UnitKind};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::flash;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

#[derive(Debug, Default, Deserialize)]
pub struct UnitForm {
    #[serde(default)]
    parent_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    org_unit_id: String,
    #[serde(default)]
    role_id: String,
}

/// A unit in the table, with its move form: the parent chosen (the current one, or what a
/// refused move asked for) and the refusal.
struct UnitRow {
    unit: OrgUnit,
    parent: String,
    move_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/org.html")]
struct OrgPage {
    shell: Shell,
    rows: Vec<UnitRow>,
    units: Vec<OrgUnit>,
    kinds: [UnitKind; 4],
    rules: Vec<DomainRule>,
    roles: Vec<Role>,
    unit_form: UnitForm,
    rule_form: RuleForm,
    errors: FieldErrors,
}

/// A refused move, shown on its row.
struct Moving {
    unit: OrgUnitId,
    to: String,
}

async fn page(
    state: &AppState,
    shell: Shell,
    unit_form: UnitForm,
    rule_form: RuleForm,
    errors: FieldErrors,
) -> Result<Response> {
    page_with(state, shell, unit_form, rule_form, errors, None).await
}

async fn page_with(
    state: &AppState,
    shell: Shell,
    unit_form: UnitForm,
    rule_form: RuleForm,
    errors: FieldErrors,
    moving: Option<Moving>,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let units = org::tree(&mut conn).await?;
    let rows = units
        .iter()
        .map(|u| {
            let refused = moving.as_ref().filter(|m| m.unit == u.id);
            UnitRow {
                unit: u.clone(),
                parent: match refused {
                    Some(m) => m.to.clone(),
                    None => u.parent_id.map(|p| p.to_string()).unwrap_or_default(),
                },
                move_error: refused.and(errors.get(org::MOVE_FIELD)).map(str::to_owned),
            }
        })
        .collect();
    render(
        status_for(&errors),
        &OrgPage {
            shell: shell.at("admin"),
            rows,
            units,
            kinds: UnitKind::ALL,
            rules: domain_rules::list(&mut conn).await?,
            roles: roles::list(&mut conn).await?,
            unit_form,
            rule_form,
            errors,
        },
    )
}

pub async fn show(State(state): State<AppState>, shell: Shell) -> Result<Response> {
    page(
        &state,
        shell,
        UnitForm::default(),
        RuleForm::default(),
        FieldErrors::new(),
    )
    .await
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    new_parent_id: String,
}

/// Moves a unit, with everything inside it, into another unit or to the top.
pub async fn move_unit(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response> {
    let id: OrgUnitId = parse_id(&id)?;
    let refused = |errors: FieldErrors| {
        let moving = Moving {
            unit: id,
            to: form.new_parent_id.clone(),
        };
        page_with(
            &state,
            shell.clone(),
            UnitForm::default(),
            RuleForm::default(),
            errors,
            Some(moving),
        )
    };
    let parent: Option<OrgUnitId> = match optional_id(&form.new_parent_id, org::MOVE_FIELD) {
        Ok(p) => p,
        Err(errors) => return refused(errors).await,
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let find = |units: Vec<OrgUnit>| units.into_iter().find(|u| u.id == id);
    let before = find(org::tree(&mut tx).await?).ok_or(Error::NotFound)?;
    let saved: Result<Saved> = async {
        org::move_to(&mut tx, id, parent).await?;
        let after = find(org::tree(&mut tx).await?);
        Ok(Saved::new(
            Change::new("org_unit", id, "move")
                .before(&before)
                .after(&after),
            paths::admin::org(),
            "Moved.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => refused(errors).await,
    }
}

pub async fn create_unit(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<UnitForm>,
) -> Result<Response> {
    let parent: Option<OrgUnitId> = match optional_id(&form.parent_id, "parent_id") {
        Ok(p) => p,
        Err(errors) => return page(&state, shell, form, RuleForm::default(), errors).await,
    };
    let Some(kind) = UnitKind::parse(&form.kind) else {
        let errors = FieldErrors::one("kind", "Choose a kind.");
        return page(&state, shell, form, RuleForm::default(), errors).await;
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let id = org::create(&mut tx, parent, &form.name, kind, now).await?;
        let after = serde_json::json!({ "name": form.name.trim(), "kind": kind.as_str(), "parent_id": parent });
        Ok(Saved::new(
            Change::new("org_unit", id, "create").after(&after),
            paths::admin::org(),
            "Unit added.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => page(&state, shell, form, RuleForm::default(), errors).await,
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

pub async fn rename_unit(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<RenameForm>,
) -> Result<Response> {
    let id: OrgUnitId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = org::tree(&mut tx)
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or(Error::NotFound)?;
    let saved: Result<Saved> = async {
        org::rename(&mut tx, id, &form.name).await?;
        let after = serde_json::json!({ "name": form.name.trim() });
        Ok(Saved::new(
            Change::new("org_unit", id, "rename")
                .before(&before)
                .after(&after),
            paths::admin::org(),
            "Renamed.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => {
            page(
                &state,
                shell,
                UnitForm::default(),
                RuleForm::default(),
                errors,
            )
            .await
        }
    }
}

pub async fn delete_unit(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: OrgUnitId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = org::tree(&mut tx)
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or(Error::NotFound)?;
    let saved: Result<Saved> = async {
        org::delete(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("org_unit", id, "delete").before(&before),
            paths::admin::org(),
            "Unit deleted.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => {
            page(
                &state,
                shell,
                UnitForm::default(),
                RuleForm::default(),
                errors,
            )
            .await
        }
    }
}

pub async fn create_rule(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<RuleForm>,
) -> Result<Response> {
    let unit: Result<Option<OrgUnitId>, FieldErrors> =
        optional_id(&form.org_unit_id, "org_unit_id");
    let role: Result<Option<RoleId>, FieldErrors> = optional_id(&form.role_id, "role_id");
    let (unit, role) = match (unit, role) {
        (Ok(u), Ok(r)) => (u, r),
        (Err(e), _) | (_, Err(e)) => {
            return page(&state, shell, UnitForm::default(), form, e).await;
        }
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let id = domain_rules::create(&mut tx, &form.domain, unit, role, now).await?;
        let rule = domain_rules::list(&mut tx)
            .await?
            .into_iter()
            .find(|r| r.id == id);
        Ok(Saved::new(
            Change::new("domain_rule", id, "create").after(&rule),
            paths::admin::org_rules(),
            "Rule added.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => page(&state, shell, UnitForm::default(), form, errors).await,
    }
}

pub async fn delete_rule(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: DomainRuleId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let rule = domain_rules::delete(&mut tx, id).await?;
    audit::record(
        &mut tx,
        actor.user_id,
        now,
        Change::new("domain_rule", id, "delete").before(&rule),
    )
    .await?;
    tx.commit().await?;
    Ok(flash::redirect(
        paths::admin::org_rules(),
        flash::Kind::Success,
        "Rule deleted.",
    ))
}
