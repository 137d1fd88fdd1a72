//! The changes made from the ticket page: transitions, field edits, approval decisions,
//! triage (assign, take, escalate, priority), duplicate/merge and links.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::fields::split_form;
use super::kept::{ConvKept, Kept};
use super::page::{parse_key, ticket_page};
use crate::core::ids::{GroupId, TicketKey, UserId};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::tickets::{self, approvals, flow, triage};
use crate::web::extract::Form;
use crate::web::layout::Shell;
use crate::web::{AppState, flash, paths};

/// A change to a ticket from its page.
enum Op {
    Transition(String, flow::Input),
    Fields(flow::Input),
    Decide {
        approve: bool,
        comment: String,
    },
    Assign {
        group: Option<GroupId>,
        assignee: Option<UserId>,
    },
    Take,
    Escalate(String),
    Priority {
        impact: Option<i16>,
        urgency: Option<i16>,
        priority: Option<i16>,
    },
    Merge {
        into: bool,
        target: String,
    },
}

/// Runs a change on a locked ticket in one transaction; a refusal re-renders the page with
/// the input kept (422), a stale form with a notice (409).
async fn change(
    state: &AppState,
    shell: Shell,
    actor: &Actor,
    key: &TicketKey,
    named: &BTreeMap<String, String>,
    raw: BTreeMap<String, Vec<String>>,
    op: Op,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let ticket = tickets::find_for_change(&mut tx, actor, key).await?;
    let comment = named.get("comment").cloned().unwrap_or_default();
    let (result, done) = match &op {
        // A form that does not say which version it showed could undo someone's change.
        Op::Transition(_, input) | Op::Fields(input) if input.expected_version.is_none() => (
            Err(Error::Conflict(
                "This form did not say which version of the ticket it was made from, so it could overwrite a newer change. Your input is kept below; check the ticket and send it again.".into(),
            )),
            "",
        ),
        Op::Transition(t, input) => (
            flow::take_transition(&mut tx, actor, &ticket, t, input, now).await,
            "Done.",
        ),
        Op::Fields(input) => (
            flow::update_fields(&mut tx, actor, &ticket, input, now).await,
            "Saved.",
        ),
        Op::Decide { approve, comment } => (
            approvals::decide(&mut tx, actor, &ticket, *approve, comment, now).await,
            if *approve {
                "You approved."
            } else {
                "You rejected."
            },
        ),
        Op::Assign { group, assignee } => (
            triage::assign(&mut tx, actor, &ticket, *group, *assignee, now).await,
            "Assigned.",
        ),
        Op::Take => (
            triage::take(&mut tx, actor, &ticket, now).await,
            "It is yours.",
        ),
        Op::Escalate(reason) => (
            triage::escalate(&mut tx, actor, &ticket, reason, now).await,
            "Escalated.",
        ),
        Op::Priority {
            impact,
            urgency,
            priority,
        } => (
            triage::set_priority(&mut tx, actor, &ticket, *impact, *urgency, *priority, now).await,
            "Priority set.",
        ),
        Op::Merge { into, target } => {
            let done = if *into {
                tickets::merge::merge(&mut tx, actor, &ticket, target, &comment, now).await
            } else {
                tickets::merge::mark_duplicate(&mut tx, actor, &ticket, target, &comment, now).await
            };
            (
                done.map(|_| ()),
                if *into {
                    "Merged."
                } else {
                    "Closed as a duplicate."
                },
            )
        }
    };
    match result {
        Ok(()) => {
            tx.commit().await?;
            Ok(flash::redirect(
                &paths::ticket(&key.to_string()),
                flash::Kind::Success,
                done,
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            let kept = Kept {
                comment,
                sent: named.clone(),
                raw: Some(raw),
                errors,
                merge_target: named.get("target").cloned().unwrap_or_default(),
                ..Kept::default()
            };
            ticket_page(state, shell, actor, key, kept).await
        }
        Err(Error::Conflict(message)) => {
            drop(tx);
            let kept = Kept {
                comment,
                raw: Some(raw),
                conflict: Some(message),
                status: Some(StatusCode::CONFLICT),
                conv: ConvKept::seen_in(named),
                ..Kept::default()
            };
            ticket_page(state, shell, actor, key, kept).await
        }
        Err(e) => Err(e),
    }
}

fn flow_input(
    named: &BTreeMap<String, String>,
    values: &BTreeMap<String, Vec<String>>,
) -> flow::Input {
    flow::Input {
        values: values.clone(),
        comment: named.get("comment").cloned().unwrap_or_default(),
        expected_version: named.get("version").and_then(|v| v.parse().ok()),
    }
}

pub async fn transition(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path((key, transition)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let (named, values) = split_form(pairs);
    let op = Op::Transition(transition, flow_input(&named, &values));
    change(&state, shell, &actor, &key, &named, values, op).await
}

pub async fn update_fields(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let (named, values) = split_form(pairs);
    let op = Op::Fields(flow_input(&named, &values));
    change(&state, shell, &actor, &key, &named, values, op).await
}

pub async fn decide(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let (named, values) = split_form(pairs);
    let op = Op::Decide {
        approve: named.get("decision").map(String::as_str) == Some("approve"),
        comment: named.get("comment").cloned().unwrap_or_default(),
    };
    change(&state, shell, &actor, &key, &named, values, op).await
}

/// A picked value among the named inputs (see `FieldErrors::choice`).
fn picked<T: std::str::FromStr>(
    named: &BTreeMap<String, String>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<T> {
    errors.choice(field, named.get(field).map_or("", String::as_str))
}

/// Runs a triage change whose form values parsed, or shows what did not.
async fn triage_change(
    state: &AppState,
    shell: Shell,
    actor: &Actor,
    key: &str,
    pairs: Vec<(String, String)>,
    op: impl FnOnce(&BTreeMap<String, String>, &mut FieldErrors) -> Op,
) -> Result<Response> {
    let key = parse_key(key)?;
    let (named, values) = split_form(pairs);
    let mut errors = FieldErrors::new();
    let op = op(&named, &mut errors);
    if !errors.is_empty() {
        let kept = Kept {
            sent: named,
            raw: Some(values),
            errors,
            ..Kept::default()
        };
        return ticket_page(state, shell, actor, &key, kept).await;
    }
    change(state, shell, actor, &key, &named, values, op).await
}

pub async fn assign(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    triage_change(&state, shell, &actor, &key, pairs, |named, errors| {
        Op::Assign {
            group: picked(named, "group_id", errors),
            assignee: picked(named, "assignee_id", errors),
        }
    })
    .await
}

pub async fn take(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    triage_change(&state, shell, &actor, &key, pairs, |_, _| Op::Take).await
}

pub async fn escalate(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    triage_change(&state, shell, &actor, &key, pairs, |named, _| {
        Op::Escalate(named.get("reason").cloned().unwrap_or_default())
    })
    .await
}

pub async fn priority(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    triage_change(&state, shell, &actor, &key, pairs, |named, errors| {
        Op::Priority {
            impact: picked(named, "impact", errors),
            urgency: picked(named, "urgency", errors),
            priority: picked(named, "priority", errors),
        }
    })
    .await
}

/// "Duplicate of" or "Merge into" another ticket, from the ticket page.
pub async fn merge(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let (named, values) = split_form(pairs);
    let op = Op::Merge {
        into: named.get("action").map(String::as_str) == Some("merge"),
        target: named.get("target").cloned().unwrap_or_default(),
    };
    change(&state, shell, &actor, &key, &named, values, op).await
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    other: String,
}

pub async fn link(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(form): Form<LinkForm>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let mut tx = state.pool.begin().await?;
    let ticket = tickets::find_for_change(&mut tx, &actor, &key).await?;
    match tickets::links::add(
        &mut tx,
        &actor,
        &ticket,
        &form.kind,
        &form.other,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => {
            tx.commit().await?;
            Ok(flash::redirect(
                &paths::ticket(&key.to_string()),
                flash::Kind::Success,
                "Linked.",
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            ticket_page(
                &state,
                shell,
                &actor,
                &key,
                Kept {
                    errors,
                    ..Kept::default()
                },
            )
            .await
        }
        Err(e) => Err(e),
    }
}
