//! The ticket page: its fields, transitions, triage, approvals, links and timeline, built for
//! the first view and again for every refused form (`ticket_page`), which every action of the
//! page shows its refusals on.

use std::collections::BTreeMap;

use askama::Template;
use axum::response::{IntoResponse, Redirect, Response};

use super::events::describe;
use super::fields::{FieldView, field_views, reference_options, stray_errors};
use super::kept::Kept;
use super::thread::{self, Conversation};
use crate::core::ids::TicketKey;
use crate::core::markdown::SafeHtml;
use crate::core::time::display;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};
use crate::engine::sla;
use crate::processes::{self, Process};
use crate::tickets::queues::Reference;
use crate::tickets::{self, Ticket, approvals, triage};
use crate::web::layout::Shell;
use crate::web::pages::{render, status_for};
use crate::web::{AppState, paths};

struct EventView {
    id: i64,
    actor: String,
    when: String,
    what: String,
    body: Option<SafeHtml>,
    internal: bool,
    /// The merged ticket it comes from.
    from: Option<String>,
}

struct TransitionView {
    key: String,
    label: String,
    needs_comment: bool,
    fields: Vec<FieldView>,
}

struct RoundView {
    round: i32,
    status: String,
    answers: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "tickets/show.html")]
struct TicketPage {
    shell: Shell,
    ticket: Ticket,
    state_label: String,
    created: String,
    updated: String,
    fields: Vec<FieldView>,
    can_edit_fields: bool,
    transitions: Vec<TransitionView>,
    rounds: Vec<RoundView>,
    my_approval: bool,
    links: Vec<tickets::links::Linked>,
    link_kinds: [(&'static str, &'static str); 5],
    can_link: bool,
    can_merge: bool,
    merge_target: String,
    can_add_subtask: bool,
    children: Vec<tickets::links::Child>,
    rollup: (usize, usize, usize),
    subtask_processes: Vec<Process>,
    sites: Vec<(String, String)>,
    events: Vec<EventView>,
    comment: String,
    errors: FieldErrors,
    stray: Vec<String>,
    conflict: Option<String>,
    triage: Option<TriageView>,
    sent: BTreeMap<String, String>,
    conv: Conversation,
}

impl TicketPage {
    /// A named input as sent, to show again after a refusal.
    fn sent(&self, name: &str) -> &str {
        self.sent.get(name).map_or("", String::as_str)
    }
}

/// An SLA clock as the ticket page shows it.
struct ClockView {
    label: &'static str,
    due: String,
    status: &'static str,
    class: &'static str,
}

/// The triage panel, for those who see internal data.
struct TriageView {
    priority: i16,
    impact: Option<i16>,
    urgency: Option<i16>,
    assignee: Option<String>,
    group: Option<String>,
    group_id: String,
    assignee_id: String,
    next_tier: Option<String>,
    /// Assigned to the viewer.
    mine: bool,
    can_assign: bool,
    can_edit: bool,
    groups: Vec<(String, String)>,
    members: Vec<(String, String)>,
    clocks: Vec<ClockView>,
    paused: bool,
    picked_up: Option<String>,
    first_response: Option<String>,
}

impl TriageView {
    fn priority_name(&self) -> &'static str {
        triage::priority_name(self.priority)
    }

    fn priorities(&self) -> &'static [(i16, &'static str)] {
        &triage::PRIORITIES
    }

    fn levels(&self) -> &'static [(i16, &'static str)] {
        &triage::LEVELS
    }
}

fn triage_view(
    actor: &Actor,
    ticket: &Ticket,
    reference: &Reference,
    now: jiff::Timestamp,
) -> Option<TriageView> {
    let facts = ticket.facts();
    let may = |action| policy::decide(actor, action, Target::Ticket(&facts)).allowed();
    if !may(Action::SeeInternal) {
        return None;
    }
    let can_assign = may(Action::AssignTicket);
    let (groups, members, next_tier) = if can_assign {
        let groups = reference.list("group");
        let team = ticket
            .assignee_group_id
            .and_then(|g| reference.teams.get(&g));
        let members = team.map(|t| t.members.clone()).unwrap_or_default();
        let next = team.and_then(|t| t.escalates_to.clone());
        (groups, members, next)
    } else {
        (Vec::new(), Vec::new(), None)
    };
    let mut clocks = Vec::new();
    let warn = ticket.sla_warn_at.map(|w| w.to_jiff());
    for (label, due) in [
        ("First response", ticket.first_response_due),
        ("Resolution", ticket.resolution_due),
    ] {
        if let Some(due) = due.map(|d| d.to_jiff()) {
            let warn = warn.filter(|_| Some(due) == ticket_due(ticket));
            let (status, class) = match sla::status(due, warn, now) {
                sla::Status::Breached => ("breached", "breached"),
                sla::Status::DueSoon => ("due soon", "due-soon"),
                sla::Status::Running => ("on time", "on-time"),
            };
            clocks.push(ClockView {
                label,
                due: display(due),
                status,
                class,
            });
        }
    }
    let stamp = |t: Option<jiff_sqlx::Timestamp>| t.map(|t| display(t.to_jiff()));
    Some(TriageView {
        priority: ticket.priority,
        impact: ticket.impact,
        urgency: ticket.urgency,
        assignee: ticket.assignee_name.clone(),
        group: ticket.group_name.clone(),
        group_id: ticket
            .assignee_group_id
            .map(|g| g.to_string())
            .unwrap_or_default(),
        assignee_id: ticket
            .assignee_id
            .map(|u| u.to_string())
            .unwrap_or_default(),
        next_tier,
        mine: ticket.assignee_id == Some(actor.user_id),
        can_assign,
        can_edit: may(Action::EditTicket),
        groups,
        members,
        clocks,
        paused: ticket.sla_paused,
        picked_up: stamp(ticket.picked_up_at),
        first_response: stamp(ticket.first_response_at),
    })
}

/// The earliest running due: the one the "due soon" mark belongs to.
fn ticket_due(ticket: &Ticket) -> Option<jiff::Timestamp> {
    [ticket.first_response_due, ticket.resolution_due]
        .into_iter()
        .flatten()
        .map(|d| d.to_jiff())
        .min()
}

pub(super) fn parse_key(key: &str) -> Result<TicketKey> {
    TicketKey::parse(key).ok_or(Error::NotFound)
}

pub(super) async fn ticket_page(
    state: &AppState,
    shell: Shell,
    actor: &Actor,
    key: &TicketKey,
    kept: Kept,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let ticket = tickets::find_visible(&mut conn, actor, key).await?;
    // A merged ticket lives on in its target, for those who may see it.
    if kept.follow_merge
        && let Some(into) = ticket.merged_into_id
        && let Some(target) = tickets::merge::visible_key(&mut conn, actor, into).await?
    {
        return Ok(Redirect::to(&paths::ticket(&target)).into_response());
    }
    let facts = ticket.facts();
    let acting = tickets::acting(actor, &facts);
    let def = ticket.definition(&mut conn).await?;
    let reference = state
        .reference
        .get(&mut conn, shell.reference_version)
        .await?;
    let (mut fields, mut transitions, mut state_label) =
        (Vec::new(), Vec::new(), ticket.state.clone());
    if let Some(def) = &def {
        let refs = reference_options(&mut conn, &reference.data, def).await?;
        state_label = def
            .state(&ticket.state)
            .map_or(ticket.state.clone(), |s| s.label.clone());
        fields = field_views(
            def,
            &ticket.state,
            &acting,
            &ticket.field_values.0,
            kept.raw.as_ref(),
            &refs,
            &kept.errors,
        );
        for t in def.allowed(&ticket.snapshot(), &acting) {
            // The same views as the details above: only those the step still needs.
            let needed: Vec<FieldView> = fields
                .iter()
                .filter(|f| {
                    t.requires.fields.contains(&f.key)
                        && f.editable()
                        && f.value.is_empty()
                        && f.values.is_empty()
                })
                .cloned()
                .collect();
            transitions.push(TransitionView {
                key: t.key.clone(),
                label: t.label.clone(),
                needs_comment: t.requires.comment,
                fields: needed,
            });
        }
    }
    let related = tickets::related(&mut conn, ticket.id).await?;
    let links = tickets::if_any(
        related.links,
        tickets::links::of(&mut conn, actor, ticket.id),
    )
    .await?;
    let children = tickets::if_any(
        related.children,
        tickets::links::children(&mut conn, actor, ticket.id),
    )
    .await?;
    let count = |what: &str| children.iter().filter(|c| c.rollup() == what).count();
    let rollup = (count("done"), count("open"), count("blocked"));
    let can_link = policy::decide(actor, Action::EditTicket, Target::Ticket(&facts)).allowed();
    let can_add_subtask = policy::decide(actor, Action::CreateTicket, Target::Ticket(&facts))
        .allowed()
        && ticket.state_category != "closed";
    let subtask_processes = if can_add_subtask {
        processes::list_fileable(&mut conn).await?
    } else {
        Vec::new()
    };
    let sites: Vec<(String, String)> = if can_add_subtask {
        reference.data.list("site")
    } else {
        Vec::new()
    };
    let answers =
        tickets::if_any(related.approvals, approvals::rounds(&mut conn, ticket.id)).await?;
    let my_approval = answers
        .iter()
        .any(|a| a.status == "pending" && a.approver_id == actor.user_id && a.decision.is_none());
    let mut rounds: Vec<RoundView> = Vec::new();
    for a in answers {
        let answer = (
            a.approver_name,
            a.decision.unwrap_or_else(|| "waiting".into()),
            a.comment,
        );
        match rounds.last_mut() {
            Some(r) if r.round == a.round => r.answers.push(answer),
            _ => rounds.push(RoundView {
                round: a.round,
                status: a.status,
                answers: vec![answer],
            }),
        }
    }
    let internal = tickets::merge::internal_filter(actor, &facts);
    let events: Vec<EventView> = tickets::events(&mut conn, ticket.id, internal)
        .await?
        .into_iter()
        .map(|e| {
            let internal = e.data.is_internal();
            let (what, body) = describe(e.data);
            EventView {
                id: e.id,
                actor: e.actor_name.unwrap_or_else(|| "Unitrack".into()),
                when: display(e.created_at),
                what,
                body,
                internal,
                from: e.from,
            }
        })
        .collect();
    let last_event = events.last().map_or(0, |e| e.id);
    let conv = thread::part(
        state,
        &mut conn,
        actor,
        &ticket,
        thread::PageFacts {
            see_internal: acting.see_internal,
            last_event,
            related,
        },
        &kept,
    )
    .await?;
    let status = kept.status.unwrap_or(status_for(&kept.errors));
    let mut shown: Vec<&str> = vec!["comment", "body", "other", "target"];
    shown.extend(thread::FIELDS);
    shown.extend(
        fields
            .iter()
            .filter(|f| f.editable())
            .map(|f| f.key.as_str()),
    );
    shown.extend(
        transitions
            .iter()
            .flat_map(|t| t.fields.iter().map(|f| f.key.as_str())),
    );
    shown.extend([
        "group_id",
        "assignee_id",
        "reason",
        "impact",
        "urgency",
        "priority",
    ]);
    let stray = stray_errors(&kept.errors, &shown);
    let triage = triage_view(actor, &ticket, &reference.data, state.clock.now());
    render(
        status,
        &TicketPage {
            shell: shell.at("requests"),
            created: display(ticket.created_at.to_jiff()),
            updated: display(ticket.updated_at.to_jiff()),
            can_edit_fields: fields.iter().any(FieldView::editable),
            fields,
            transitions,
            rounds,
            my_approval,
            links,
            link_kinds: tickets::links::KINDS,
            can_link,
            can_merge: tickets::merge::allowed(actor, &ticket),
            merge_target: kept.merge_target,
            can_add_subtask,
            children,
            rollup,
            subtask_processes,
            sites,
            state_label,
            ticket,
            events,
            comment: kept.comment,
            errors: kept.errors,
            stray,
            conflict: kept.conflict,
            triage,
            sent: kept.sent,
            conv,
        },
    )
}
