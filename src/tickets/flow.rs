//! Moving a ticket through its process: transitions and field edits, checked by the
//! workflow engine against the screen rules, applied in the caller's transaction with an
//! event for every change. `apply` is the one place where the effects of a step are carried
//! out: transitions, field edits, entering a state, and the outcome of an approval round.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use sqlx::PgConnection;
use sqlx::types::Json;

use super::comments::record_comment;
use super::event_data::EventData;
use super::events::{record, record_notifying};
use super::rounds::{self, Decided, Started};
use super::ticket::{Ticket, acting, find_for_system, touch};
use super::values::{check_references, parse_values, references};
use super::{notices, sla};
use crate::core::ids::{GroupId, OrgUnitId, SystemId, TicketId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::engine::workflow::{Category, Definition, Effect, FieldKind, Outcome, Refusal, Value};
use crate::notifications::Audience;
use crate::projects;

/// What a person sent with a change: field values, a comment, and the version of the ticket
/// their form showed.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub values: BTreeMap<String, Vec<String>>,
    pub comment: String,
    /// The version the form showed; a different current version is a conflict. `None` only
    /// for callers that act on the row they just locked without showing it to anyone (bulk
    /// actions, a mail reply); the ticket page's handlers refuse a form without it.
    pub expected_version: Option<i32>,
}

fn refusals_to_errors(refusals: Vec<Refusal>, default_field: &str) -> Error {
    let mut errors = FieldErrors::new();
    for r in refusals {
        errors.add(r.field.as_deref().unwrap_or(default_field), r.reason);
    }
    Error::Invalid(errors)
}

fn check_version(ticket: &Ticket, input: &Input) -> Result<()> {
    match input.expected_version {
        Some(v) if v != ticket.version => Err(Error::Conflict(
            "Someone else changed this ticket while you were working on it. Your input is kept below; check the latest changes and send it again.".into(),
        )),
        _ => Ok(()),
    }
}

async fn definition_of(conn: &mut PgConnection, ticket: &Ticket) -> Result<Arc<Definition>> {
    ticket.definition(conn).await?.ok_or_else(|| {
        Error::Invalid(FieldErrors::one(
            "transition",
            "This ticket follows no process.",
        ))
    })
}

/// Takes a transition. `ticket` must have been loaded with `find_for_change`.
pub async fn take_transition(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    transition: &str,
    input: &Input,
    now: Timestamp,
) -> Result<()> {
    check_version(ticket, input)?;
    let def = definition_of(conn, ticket).await?;
    let acting = acting(actor, &ticket.facts());
    let (values, errors) = parse_values(&def, &input.values);
    errors.into_result()?;
    if def.reopens(&ticket.state, transition) {
        let days = def.resolution.reopen_days;
        let window = SignedDuration::from_hours(24 * i64::from(days));
        let resolved = ticket.resolved_at.map(|r| r.to_jiff());
        if resolved.is_some_and(|r| r.saturating_add(window).is_ok_and(|until| until < now)) {
            return Err(Error::Invalid(FieldErrors::one(
                "transition",
                format!(
                    "This was resolved more than {days} days ago and can no longer be reopened. File a follow-up request instead; it will be linked to this one."
                ),
            )));
        }
    }
    let effects = def
        .check_transition(
            &ticket.snapshot(),
            &acting,
            transition,
            &values,
            &input.comment,
        )
        .map_err(|r| refusals_to_errors(r, "transition"))?;
    check_references(conn, &def, &values).await?.into_result()?;
    if !input.comment.trim().is_empty() {
        record_comment(conn, ticket.id, actor.user_id, &input.comment, now).await?;
    }
    let label = def
        .transition(transition)
        .map(|t| t.label.clone())
        .unwrap_or_default();
    apply(
        conn,
        Some(actor),
        ticket,
        &def,
        effects,
        (transition, &label),
        now,
    )
    .await
}

/// Changes field values outside a transition, as the screen rules of the current state allow.
pub async fn update_fields(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    input: &Input,
    now: Timestamp,
) -> Result<()> {
    check_version(ticket, input)?;
    let def = definition_of(conn, ticket).await?;
    let acting = acting(actor, &ticket.facts());
    let (values, errors) = parse_values(&def, &input.values);
    errors.into_result()?;
    let mut refusals = def.check_values(&ticket.state, &acting, &values);
    // A field left empty in the form clears it, unless it is required.
    let mut effects = Vec::new();
    for (field, mode) in def.modes(&ticket.state, &acting) {
        if !matches!(
            mode,
            crate::engine::workflow::Mode::Edit | crate::engine::workflow::Mode::Required
        ) {
            continue;
        }
        match values.get(&field.key) {
            Some(v) if ticket.field_values.0.get(&field.key) != Some(v) => {
                effects.push(Effect::SetField {
                    field: field.key.clone(),
                    value: v.clone(),
                })
            }
            Some(_) => {}
            None if input.values.contains_key(&field.key)
                && ticket.field_values.0.contains_key(&field.key) =>
            {
                if mode == crate::engine::workflow::Mode::Required {
                    refusals.push(Refusal {
                        field: Some(field.key.clone()),
                        reason: format!("{} is required.", field.label),
                    });
                } else {
                    effects.push(Effect::SetField {
                        field: field.key.clone(),
                        value: Value::Text(String::new()),
                    });
                }
            }
            None => {}
        }
    }
    if !refusals.is_empty() {
        return Err(refusals_to_errors(refusals, "form"));
    }
    check_references(conn, &def, &values).await?.into_result()?;
    if effects.is_empty() {
        return Ok(());
    }
    apply(conn, Some(actor), ticket, &def, effects, ("", ""), now).await
}

/// How a value reads in the history: references by name.
async fn readable(
    conn: &mut PgConnection,
    def: &Definition,
    field: &str,
    value: &Value,
) -> Result<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    let kind = def.field(field).map(|f| f.kind);
    let id = match value {
        Value::Text(s) => uuid::Uuid::parse_str(s).ok(),
        _ => None,
    };
    let name: Option<String> = match (kind, id) {
        (Some(FieldKind::System), Some(id)) => {
            sqlx::query_scalar("select name from systems where id = $1")
                .bind(SystemId(id))
                .fetch_optional(&mut *conn)
                .await?
        }
        (Some(FieldKind::Site), Some(id)) => {
            sqlx::query_scalar("select name from org_units where id = $1")
                .bind(OrgUnitId(id))
                .fetch_optional(&mut *conn)
                .await?
        }
        (Some(FieldKind::Group), Some(id)) => {
            sqlx::query_scalar("select name from groups where id = $1")
                .bind(GroupId(id))
                .fetch_optional(&mut *conn)
                .await?
        }
        (Some(FieldKind::User), Some(id)) => {
            sqlx::query_scalar("select display_name from users where id = $1")
                .bind(crate::core::ids::UserId(id))
                .fetch_optional(&mut *conn)
                .await?
        }
        _ => None,
    };
    Ok(Some(name.unwrap_or_else(|| value.display())))
}

/// The people a list of effects' `notify` effects name.
fn notified(effects: &VecDeque<Effect>) -> Audience {
    let mut audience = Audience::default();
    for effect in effects {
        if let Effect::Notify { who } = effect {
            audience.add(&notices::audience_named(who));
        }
    }
    audience
}

/// Applies engine effects to a ticket, each with its event. `transition` is (key, label) of
/// the transition taken, empty for field edits and approval outcomes. `notify` effects are
/// delivered with the move's state-change notice. An approval step that finds nobody to ask
/// sends the ticket on as a rejection would (`Outcome::Nobody`), as the system.
pub(super) async fn apply(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    ticket: &Ticket,
    def: &Definition,
    effects: Vec<Effect>,
    transition: (&str, &str),
    now: Timestamp,
) -> Result<()> {
    let mut by = actor.map(|a| a.user_id);
    let mut values = ticket.field_values.0.clone();
    let mut state = ticket.state.clone();
    let mut queue: VecDeque<Effect> = effects.into();
    let mut also = notified(&queue);
    let mut step = (transition.0.to_owned(), transition.1.to_owned());
    // Approval states passed for want of approvers: never twice, so a loop of them ends.
    let mut passed: BTreeSet<String> = BTreeSet::new();
    while let Some(effect) = queue.pop_front() {
        match effect {
            Effect::SetField { field, value } => {
                let old = values.get(&field).cloned();
                let old = match old {
                    Some(v) => readable(conn, def, &field, &v).await?,
                    None => None,
                };
                let new = readable(conn, def, &field, &value).await?;
                if value.is_empty() {
                    values.remove(&field);
                } else {
                    values.insert(field.clone(), value);
                }
                let (label, internal) = def
                    .field(&field)
                    .map_or((field.clone(), false), |f| (f.label.clone(), f.internal));
                record(
                    conn,
                    ticket.id,
                    by,
                    &EventData::FieldChanged {
                        field,
                        label,
                        old,
                        new,
                        internal,
                    },
                    now,
                )
                .await?;
            }
            Effect::SetGroup { group } => {
                let found: Option<(GroupId, String)> =
                    sqlx::query_as("select id, name from groups where lower(name) = lower($1)")
                        .bind(&group)
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some((id, name)) = found else {
                    return Err(Error::Conflict(format!(
                        "The group {group:?} that this step assigns to no longer exists. Tell an admin."
                    )));
                };
                assign_group(conn, ticket, by, id, name, now).await?;
            }
            Effect::SetSupportGroup { field } => {
                let system = match values.get(&field) {
                    Some(Value::Text(s)) => uuid::Uuid::parse_str(s).ok().map(SystemId),
                    _ => None,
                };
                let found: Option<(GroupId, String)> = sqlx::query_as(
                    "select g.id, g.name from systems s join groups g on g.id = s.support_group_id
                     where s.id = $1",
                )
                .bind(system)
                .fetch_optional(&mut *conn)
                .await?;
                if let Some((id, name)) = found {
                    assign_group(conn, ticket, by, id, name, now).await?;
                }
            }
            Effect::StartClock { clock } => {
                clock_event(conn, ticket, by, "start", clock, now).await?
            }
            Effect::PauseClock { clock } => {
                clock_event(conn, ticket, by, "pause", clock, now).await?
            }
            Effect::StopClock { clock } => {
                clock_event(conn, ticket, by, "stop", clock, now).await?
            }
            // Delivered with the move's notice (see `also`).
            Effect::Notify { .. } => {}
            Effect::MoveTo { state: to } => {
                let target = def
                    .state(&to)
                    .ok_or_else(|| Error::Internal(anyhow::anyhow!("unknown state {to}")))?;
                let from_label = def.state(&state).map_or(state.clone(), |s| s.label.clone());
                let auto_close_at = match (target.category, def.resolution.auto_close_days) {
                    (Category::Resolved, Some(days)) => {
                        sla::project_calendar(conn, ticket.project_id)
                            .await?
                            .after_business_days(now, days)
                    }
                    _ => None,
                };
                // resolved_at: when it was last resolved (kept while it goes on to closed).
                sqlx::query(
                    "update tickets set state = $2, state_category = $3,
                            resolved_at = case when $3 in ('resolved', 'closed')
                                then coalesce(case when state_category in ('resolved', 'closed') then resolved_at end, $4)
                                end,
                            auto_close_at = $5
                     where id = $1",
                )
                .bind(ticket.id)
                .bind(&to)
                .bind(target.category.as_str())
                .bind(to_db(now))
                .bind(auto_close_at.map(to_db))
                .execute(&mut *conn)
                .await?;
                // Whatever was being decided in the state it leaves needs nobody any more.
                rounds::end_pending(conn, ticket.id, now).await?;
                record_notifying(
                    conn,
                    ticket.id,
                    by,
                    &EventData::Transition {
                        transition: step.0.clone(),
                        label: step.1.clone(),
                        from: from_label,
                        to: target.label.clone(),
                        category: target.category.as_str().to_owned(),
                    },
                    &also,
                    now,
                )
                .await?;
                state = to;
            }
            Effect::RequestApprovals { state: at } => {
                let project = projects::find(conn, ticket.project_id)
                    .await?
                    .ok_or(Error::NotFound)?;
                let started =
                    rounds::start_round(conn, ticket.id, def, &at, &project, &values, now).await?;
                if started == Started::Nobody
                    && passed.insert(at.clone())
                    && let Some(next) = def.after_approval(&at, Outcome::Nobody)
                {
                    let next: VecDeque<Effect> = next.into();
                    also = notified(&next);
                    queue.extend(next);
                    step = (String::new(), "No approvers".to_owned());
                    by = None;
                }
            }
        }
    }
    let (system_id, site_id) = references(def, &values);
    // A site given outside the process's fields (a sub-task's) stays when the process has
    // no site field of its own; likewise the system.
    let has = |kind: FieldKind| def.fields.iter().any(|f| f.kind == kind);
    sqlx::query(
        "update tickets set field_values = $2,
                system_id = case when $5 then $3 else system_id end,
                site_id = case when $6 then $4 else site_id end
         where id = $1",
    )
    .bind(ticket.id)
    .bind(Json(&values))
    .bind(system_id)
    .bind(site_id)
    .bind(has(FieldKind::System))
    .bind(has(FieldKind::Site))
    .execute(&mut *conn)
    .await?;
    touch(conn, ticket.id, now).await
}

/// Assigns the ticket to a group, with its event; nothing when it is that group's already.
async fn assign_group(
    conn: &mut PgConnection,
    ticket: &Ticket,
    by: Option<UserId>,
    group: GroupId,
    name: String,
    now: Timestamp,
) -> Result<()> {
    let changed = sqlx::query(
        "update tickets set assignee_group_id = $2
         where id = $1 and assignee_group_id is distinct from $2",
    )
    .bind(ticket.id)
    .bind(group)
    .execute(&mut *conn)
    .await?;
    if changed.rows_affected() == 0 {
        return Ok(());
    }
    record(
        conn,
        ticket.id,
        by,
        &EventData::GroupAssigned { group: name },
        now,
    )
    .await
}

/// Enters `state` on a ticket placed there without a transition (filed into its initial
/// state, or mapped there by a publish): its `on_enter` effects and approval round, as the
/// system when `actor` is `None`. False when the state has none (the ticket is not read).
pub(super) async fn enter(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    ticket: TicketId,
    def: &Definition,
    state: &str,
    now: Timestamp,
) -> Result<bool> {
    let effects: Vec<Effect> = def
        .enter(state)
        .into_iter()
        .filter(|e| !matches!(e, Effect::MoveTo { .. }))
        .collect();
    if effects.is_empty() {
        return Ok(false);
    }
    let ticket = find_for_system(conn, ticket).await?;
    apply(conn, actor, &ticket, def, effects, ("", ""), now).await?;
    Ok(true)
}

/// Moves the ticket on as the approval step of the state a round was for says, once a
/// decision settled the round (as the system); a round still open marks the change only.
pub(super) async fn settle(
    conn: &mut PgConnection,
    ticket: &Ticket,
    decided: Decided,
    now: Timestamp,
) -> Result<()> {
    let Decided::Round { state, outcome } = decided else {
        return touch(conn, ticket.id, now).await;
    };
    let def = ticket.definition(conn).await?.ok_or(Error::NotFound)?;
    let Some(effects) = def.after_approval(&state, outcome) else {
        return touch(conn, ticket.id, now).await;
    };
    let label = if outcome == Outcome::Approved {
        "Approved"
    } else {
        "Rejected"
    };
    apply(conn, None, ticket, &def, effects, ("", label), now).await
}

async fn clock_event(
    conn: &mut PgConnection,
    ticket: &Ticket,
    by: Option<UserId>,
    action: &str,
    clock: String,
    now: Timestamp,
) -> Result<()> {
    record(
        conn,
        ticket.id,
        by,
        &EventData::Clock {
            action: action.to_owned(),
            clock,
        },
        now,
    )
    .await
}
