//! Admin: a project's triage settings (`/admin/projects/{key}/triage`): the impact × urgency
//! → priority matrix, the calendar it counts business days in, and its routing rules (an
//! ordered list: the first rule that matches a new ticket gives its group; without one, the
//! support group of the ticket's system). Also a group's next tier, on the group page.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::{Outcome, Saved, collect_id, finish, optional_id, parse_id, status_for};
use crate::audit::{self, Change};
use crate::core::ids::{CalendarId, GroupId, RoutingRuleId};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::people::groups::{self, Group};
use crate::processes::{self, Process};
use crate::projects::org::{self, UnitKind};
use crate::projects::systems::{self, System};
use crate::projects::triage::{self as routing, Rule, RuleInput};
use crate::projects::{self, Project};
use crate::sla::calendars::{self, SlaCalendar};
use crate::tickets::triage::{self, LEVELS, PRIORITIES};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::flash;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

/// The form field of a matrix cell.
fn cell(impact: usize, urgency: usize) -> String {
    format!("cell_{}_{}", impact + 1, urgency + 1)
}

#[derive(Debug, Default, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    process_id: String,
    #[serde(default)]
    system_id: String,
    #[serde(default)]
    site_id: String,
    #[serde(default)]
    group_id: String,
}

impl RuleForm {
    fn input(&self) -> Result<RuleInput> {
        let mut errors = FieldErrors::new();
        let process_id = collect_id(&self.process_id, "process_id", &mut errors);
        let system_id = collect_id(&self.system_id, "system_id", &mut errors);
        let site_id = collect_id(&self.site_id, "site_id", &mut errors);
        let group_id: Option<GroupId> = collect_id(&self.group_id, "group_id", &mut errors);
        if group_id.is_none() && errors.get("group_id").is_none() {
            errors.add("group_id", "Choose the group these tickets go to.");
        }
        errors.into_result()?;
        Ok(RuleInput {
            process_id,
            system_id,
            site_id,
            group_id: group_id.unwrap_or_default(),
        })
    }
}

struct MatrixCell {
    field: String,
    urgency: &'static str,
    value: String,
}

struct MatrixRow {
    impact: &'static str,
    cells: Vec<MatrixCell>,
}

#[derive(Template)]
#[template(path = "admin/triage.html")]
struct Page {
    shell: Shell,
    project: Project,
    matrix: Vec<MatrixRow>,
    levels: [(i16, &'static str); 3],
    priorities: [(i16, &'static str); 4],
    calendars: Vec<SlaCalendar>,
    calendar_id: String,
    rules: Vec<Rule>,
    processes: Vec<Process>,
    systems: Vec<System>,
    sites: Vec<org::OrgUnit>,
    groups: Vec<Group>,
    rule: RuleForm,
    errors: FieldErrors,
}

async fn project(conn: &mut sqlx::PgConnection, key: &str) -> Result<Project> {
    projects::find_by_key(conn, key)
        .await?
        .ok_or(Error::NotFound)
}

/// The page; `settings` and `rule` are what was sent, kept when refused.
async fn page(
    state: &AppState,
    shell: Shell,
    key: &str,
    settings: Option<BTreeMap<String, String>>,
    rule: Option<RuleForm>,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let project = project(&mut conn, key).await?;
    let stored = triage::matrix(&mut conn, project.id).await?;
    let calendar = routing::calendar(&mut conn, project.id).await?;
    let sent = |field: &str| settings.as_ref().and_then(|s| s.get(field)).cloned();
    let matrix = LEVELS
        .iter()
        .zip(stored)
        .enumerate()
        .map(|(i, ((_, impact), row))| MatrixRow {
            impact,
            cells: row
                .iter()
                .enumerate()
                .zip(LEVELS)
                .map(|((u, priority), (_, urgency))| {
                    let field = cell(i, u);
                    MatrixCell {
                        value: sent(&field).unwrap_or_else(|| priority.to_string()),
                        urgency,
                        field,
                    }
                })
                .collect(),
        })
        .collect();
    let calendar_id =
        sent("calendar_id").unwrap_or_else(|| calendar.map(|c| c.to_string()).unwrap_or_default());
    let sites = org::tree(&mut conn)
        .await?
        .into_iter()
        .filter(|u| matches!(u.kind, UnitKind::Site | UnitKind::BusinessUnit))
        .collect();
    render(
        status_for(&errors),
        &Page {
            shell: shell.at("admin"),
            matrix,
            levels: LEVELS,
            priorities: PRIORITIES,
            calendars: calendars::list(&mut conn).await?,
            calendar_id,
            rules: routing::rules(&mut conn, project.id).await?,
            processes: processes::list(&mut conn).await?,
            systems: systems::list(&mut conn).await?,
            sites,
            groups: groups::list(&mut conn).await?,
            rule: rule.unwrap_or_default(),
            project,
            errors,
        },
    )
}

/// The project's triage page.
fn triage_path(key: &str) -> String {
    paths::admin::project_triage(key)
}

fn back(key: &str, text: &str) -> Response {
    flash::redirect(&triage_path(key), flash::Kind::Success, text)
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    Path(key): Path<String>,
) -> Result<Response> {
    page(&state, shell, &key, None, None, FieldErrors::new()).await
}

/// Reads the matrix and calendar from the settings form.
fn settings_of(form: &BTreeMap<String, String>) -> Result<([[i16; 3]; 3], Option<CalendarId>)> {
    let mut errors = FieldErrors::new();
    let mut cells = [[0i16; 3]; 3];
    for (i, row) in cells.iter_mut().enumerate() {
        for (u, value) in row.iter_mut().enumerate() {
            let field = cell(i, u);
            match form
                .get(&field)
                .and_then(|v| v.trim().parse::<i16>().ok())
                .filter(|p| (1..=4).contains(p))
            {
                Some(p) => *value = p,
                None => errors.add(&field, "Choose a priority."),
            }
        }
    }
    let calendar = collect_id(
        form.get("calendar_id").map_or("", String::as_str),
        "calendar_id",
        &mut errors,
    );
    errors.into_result()?;
    Ok((cells, calendar))
}

pub async fn save(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let project = project(&mut tx, &key).await?;
    let before = json!({
        "matrix": triage::matrix(&mut tx, project.id).await?,
        "calendar_id": routing::calendar(&mut tx, project.id).await?,
    });
    let saved: Result<Saved> = async {
        let (cells, calendar) = settings_of(&form)?;
        routing::set_calendar(&mut tx, project.id, calendar).await?;
        triage::save_matrix(&mut tx, project.id, &cells).await?;
        let after = json!({
            "matrix": triage::matrix(&mut tx, project.id).await?,
            "calendar_id": routing::calendar(&mut tx, project.id).await?,
        });
        Ok(Saved::new(
            Change::new("project_triage", project.id, "update")
                .before(&before)
                .after(&after),
            triage_path(&key),
            "Saved.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => page(&state, shell, &key, Some(form), None, errors).await,
    }
}

pub async fn add_rule(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(form): Form<RuleForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let project = project(&mut tx, &key).await?;
    let saved: Result<Saved> = async {
        let input = form.input()?;
        let rule = routing::add(&mut tx, project.id, &input, now).await?;
        Ok(Saved::new(
            Change::new("routing_rule", rule.id, "create").after(&rule),
            triage_path(&key),
            "Routing rule added.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => page(&state, shell, &key, None, Some(form), errors).await,
    }
}

pub async fn delete_rule(
    State(state): State<AppState>,
    actor: Actor,
    Path((key, id)): Path<(String, String)>,
) -> Result<Response> {
    let id: RoutingRuleId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let project = project(&mut tx, &key).await?;
    let rule = routing::delete(&mut tx, project.id, id).await?;
    audit::record(
        &mut tx,
        actor.user_id,
        now,
        Change::new("routing_rule", id, "delete").before(&rule),
    )
    .await?;
    tx.commit().await?;
    Ok(back(&key, "Routing rule deleted."))
}

async fn move_rule(
    state: &AppState,
    actor: &Actor,
    key: &str,
    id: &str,
    up: bool,
) -> Result<Response> {
    let id: RoutingRuleId = parse_id(id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let project = project(&mut tx, key).await?;
    let (before, after) = routing::move_rule(&mut tx, project.id, id, up).await?;
    if before != after {
        audit::record(
            &mut tx,
            actor.user_id,
            now,
            Change::new("routing_rule", id, if up { "move_up" } else { "move_down" })
                .before(&json!({ "order": before }))
                .after(&json!({ "order": after })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(back(key, "Order changed."))
}

pub async fn rule_up(
    State(state): State<AppState>,
    actor: Actor,
    Path((key, id)): Path<(String, String)>,
) -> Result<Response> {
    move_rule(&state, &actor, &key, &id, true).await
}

pub async fn rule_down(
    State(state): State<AppState>,
    actor: Actor,
    Path((key, id)): Path<(String, String)>,
) -> Result<Response> {
    move_rule(&state, &actor, &key, &id, false).await
}

#[derive(Debug, Default, Deserialize)]
pub struct TierForm {
    #[serde(default)]
    escalates_to: String,
}

/// Sets a group's next tier (on the group page).
pub async fn set_tier(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<TierForm>,
) -> Result<Response> {
    let id: GroupId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = groups::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        let next = optional_id(&form.escalates_to, "escalates_to").map_err(Error::Invalid)?;
        groups::set_tier(&mut tx, id, next).await?;
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
        Outcome::Refused(errors) => {
            super::groups::show_page_with(&state, shell, id, None, Some(form.escalates_to), errors)
                .await
        }
    }
}
