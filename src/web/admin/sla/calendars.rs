//! Admin: SLA calendars, listed, created, edited and deleted (when nothing counts in them).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::super::{Outcome, Saved, finish, parse_id, status_for};
use crate::audit::Change;
use crate::core::ids::CalendarId;
use crate::core::{FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::sla::calendars::{self, CalendarInput, DAYS, SlaCalendar};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

#[derive(Debug, Default, Deserialize)]
pub struct CalendarForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    mon: String,
    #[serde(default)]
    tue: String,
    #[serde(default)]
    wed: String,
    #[serde(default)]
    thu: String,
    #[serde(default)]
    fri: String,
    #[serde(default)]
    sat: String,
    #[serde(default)]
    sun: String,
    /// One `YYYY-MM-DD` per line.
    #[serde(default)]
    holidays: String,
}

impl CalendarForm {
    fn of(c: &SlaCalendar) -> Self {
        let day = |i: usize| c.week.get(i).cloned().unwrap_or_default();
        Self {
            name: c.name.clone(),
            time_zone: c.time_zone.clone(),
            mon: day(0),
            tue: day(1),
            wed: day(2),
            thu: day(3),
            fri: day(4),
            sat: day(5),
            sun: day(6),
            holidays: c.holidays.join("\n"),
        }
    }

    /// A new calendar starts as an office week.
    fn office() -> Self {
        let office = "09:00-17:00".to_owned();
        Self {
            time_zone: "UTC".into(),
            mon: office.clone(),
            tue: office.clone(),
            wed: office.clone(),
            thu: office.clone(),
            fri: office,
            ..Self::default()
        }
    }

    fn week(&self) -> [&String; 7] {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
    }

    fn input(&self) -> CalendarInput {
        CalendarInput {
            name: self.name.clone(),
            time_zone: self.time_zone.clone(),
            week: self.week().map(Clone::clone),
            holidays: self.holidays.clone(),
        }
    }
}

/// One day's input in the form.
struct DayField {
    field: &'static str,
    label: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "admin/sla_calendars.html")]
struct Page {
    shell: Shell,
    calendars: Vec<SlaCalendar>,
    editing: Option<SlaCalendar>,
    form: CalendarForm,
    days: Vec<DayField>,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    shell: Shell,
    editing: Option<CalendarId>,
    form: Option<CalendarForm>,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let editing = match editing {
        Some(id) => Some(calendars::find(&mut conn, id).await?),
        None => None,
    };
    let form = match (form, &editing) {
        (Some(f), _) => f,
        (None, Some(c)) => CalendarForm::of(c),
        (None, None) => CalendarForm::office(),
    };
    let days = DAYS
        .iter()
        .zip(form.week())
        .map(|((field, label), value)| DayField {
            field,
            label,
            value: value.clone(),
        })
        .collect();
    render(
        status_for(&errors),
        &Page {
            shell: shell.at("admin"),
            calendars: calendars::list(&mut conn).await?,
            editing,
            form,
            days,
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
    Form(form): Form<CalendarForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let saved: Result<Saved> = async {
        let id = calendars::create(&mut tx, &form.input(), now).await?;
        let after = calendars::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("sla_calendar", id, "create").after(&after),
            paths::admin::sla_calendars(),
            "Calendar added.",
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
    Form(form): Form<CalendarForm>,
) -> Result<Response> {
    let id: CalendarId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = calendars::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        calendars::update(&mut tx, id, &form.input()).await?;
        let after = calendars::find(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("sla_calendar", id, "update")
                .before(&before)
                .after(&after),
            paths::admin::sla_calendars(),
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
    let id: CalendarId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = calendars::find(&mut tx, id).await?;
    let saved: Result<Saved> = async {
        calendars::delete(&mut tx, id).await?;
        Ok(Saved::new(
            Change::new("sla_calendar", id, "delete").before(&before),
            paths::admin::sla_calendars(),
            "Calendar deleted.",
        ))
    }
    .await;
    match finish(tx, &actor, now, saved).await? {
        Outcome::Done(r) => Ok(r),
        Outcome::Refused(errors) => page(&state, shell, Some(id), None, errors).await,
    }
}
