//! Admin: SLA policies, listed, created, edited and deleted. Targets are typed as hours and
//! minutes (`4h`, `1h 30m`) and stored in minutes.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::super::{Outcome, Saved, collect_id, finish, parse_id, status_for};
use crate::audit::Change;
use crate::core::ids::{CalendarId, SlaPolicyId};
use crate::core::{FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::processes::{self, Process};
use crate::projects::{self, Project};
use crate::sla::calendars::{self, SlaCalendar};
use crate::sla::policies::{self, DEFAULT_WARN_PERCENT, Policy, PolicyInput, format_minutes};
use crate::tickets::triage::{self, PRIORITIES};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

#[derive(Debug, Default, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    process_id: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    calendar_id: String,
    #[serde(default)]
    first_response: String,
    #[serde(default)]
    resolution: String,
    #[serde(default)]
    warn_percent: String,
}

impl PolicyForm {
    fn of(p: &Policy) -> Self {
        let id = |v: Option<String>| v.unwrap_or_default();
        Self {
            project_id: id(p.project_id.map(|v| v.to_string())),
            process_id: id(p.process_id.map(|v| v.to_string())),
            priority: p.priority.to_string(),
            calendar_id: p.calendar_id.to_string(),
            first_response: id(p.first_response_minutes.map(format_minutes)),
            resolution: id(p.resolution_minutes.map(format_minutes)),
            warn_percent: p.warn_percent.to_string(),
        }
    }

    fn new(calendars: &[SlaCalendar]) -> Self {
        Self {
            priority: triage::DEFAULT_PRIORITY.to_string(),
            calendar_id: calendars
                .first()
                .map(|c| c.id.to_string())
                .unwrap_or_default(),
            warn_percent: DEFAULT_WARN_PERCENT.to_string(),
            ..Self::default()
        }
    }

    /// The form's shape checked; every wrong field gets its message.
    fn input(&self) -> Result<PolicyInput> {
        let mut errors = FieldErrors::new();
        let project_id = collect_id(&self.project_id, "project_id", &mut errors);
        let process_id = collect_id(&self.process_id, "process_id", &mut errors);
        let calendar_id: Option<CalendarId> =
            collect_id(&self.calendar_id, "calendar_id", &mut errors);
        if calendar_id.is_none() && errors.get("calendar_id").is_none() {
            errors.add(
                "calendar_id",
                "Choose the calendar the targets count in (add one under Calendars first).",
            );
        }
        let priority = self
            .priority
            .trim()
            .parse::<i16>()
            .ok()
            .filter(|p| (1..=4).contains(p));
        if priority.is_none() {
            errors.add("priority", "Choose a priority.");
        }
        let mut target = |raw: &str, field: &str| {
            policies::parse_duration(raw).unwrap_or_else(|m| {
                errors.add(field, m);
                None
            })
        };
        let first_response_minutes = target(&self.first_response, "first_response");
        let resolution_minutes = target(&self.resolution, "resolution");
        if first_response_minutes.is_none()
            && resolution_minutes.is_none()
            && errors.get("first_response").is_none()
            && errors.get("resolution").is_none()
        {
            errors.add(
                "first_response",
                "Give a first-response target, a resolution target or both.",
            );
        }
        let warn_percent = self
            .warn_percent
            .trim()
            .parse::<i16>()
            .ok()
            .filter(|p| (1..=99).contains(p));
        if warn_percent.is_none() {
            errors.add(
                "warn_percent",
                "Give a whole number of percent between 1 and 99.",
            );
        }
        errors.into_result()?;
        Ok(PolicyInput {
            project_id,
            process_id,
            priority: priority.unwrap_or(triage::DEFAULT_PRIORITY),
            calendar_id: calendar_id.unwrap_or_default(),
            first_response_minutes,
            resolution_minutes,
            warn_percent: warn_percent.unwrap_or(DEFAULT_WARN_PERCENT),
        })
    }
}

struct PolicyRow {
    policy: Policy,
    priority: &'static str,
}

#[derive(Template)]
#[template(path = "admin/sla_policies.html")]
struct Page {
    shell: Shell,
    policies: Vec<PolicyRow>,
    editing: Option<Policy>,
    projects: Vec<Project>,
    processes: Vec<Process>,
    calendars: Vec<SlaCalendar>,
    priorities: [(i16, &'static str); 4],
    form: PolicyForm,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    shell: Shell,
    editing: Option<SlaPolicyId>,
    form: Option<PolicyForm>,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let editing = match editing {
        Some(id) => Some(policies::find(&mut conn, id).await?),
        None => None,
    };
    let calendars = calendars::list(&mut conn).await?;
    let form = match (form, &editing) {
        (Some(f), _) => f,
        (None, Some(p)) => PolicyForm::of(p),
        (None, None) => PolicyForm::new(&calendars),
    };
    let policies = policies::list(&mut conn)
        .await?
        .into_iter()
        .map(|policy| PolicyRow {
            priority: triage::priority_name(policy.priority),
            policy,
        })
        .collect();
    render(
        status_for(&errors),
        &Page {
            shell: shell.at("admin"),
            policies,
            editing,
            projects: projects::list(&mut conn).await?,
            processes: processes::list(&mut conn).await?,
            calendars,
            priorities: PRIORITIES,
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
    Form(form): Form<PolicyForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let id = policies::create(&mut tx, &form.input()?, now).await?;
        let after = policies::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("sla_policy", id, "create").after(&after),
            paths::admin::sla_policies(),
            "Policy added.",
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
    Form(form): Form<PolicyForm>,
) -> Result<Response> {
    let id: SlaPolicyId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = policies::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        policies::update(&mut tx, id, &form.input()?).await?;
        let after = policies::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("sla_policy", id, "update")
                .before(&before)
                .after(&after),
            paths::admin::sla_policies(),
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
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: SlaPolicyId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = policies::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        policies::delete(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("sla_policy", id, "delete").before(&before),
            paths::admin::sla_policies(),
            "Policy deleted.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => page(&state, shell, Some(id), None, errors).await,
    }
}
