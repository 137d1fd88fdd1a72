//! Filing a request on its process's form, "My requests", the ticket page with its fields,
//! transitions, approvals and comments, and "Waiting on me".

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sqlx::PgConnection;

use super::AppState;
use super::conversation::{self, ConvKept, Conversation};
use super::extract::Form;
use super::flash;
use super::layout::Shell;
use super::pages::{render, status_for};
use super::paths;
use crate::core::ids::{GroupId, ProjectId, TicketId, TicketKey, UserId};
use crate::core::markdown::{self, SafeHtml};
use crate::core::time::display;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};
use crate::engine::sla;
use crate::engine::workflow::{Acting, Definition, Field, FieldKind, Mode, Value};
use crate::processes::{self, Process};
use crate::projects::{self, Project};
use crate::tickets::queues::Reference;
use crate::tickets::{self, EventData, NewTicket, ProcessChoice, Ticket, approvals, flow, triage};

const PAGE_SIZE: i64 = 25;

#[derive(Template)]
#[template(path = "tickets/mine.html")]
struct MinePage {
    shell: Shell,
    rows: Vec<tickets::Row>,
    next: Option<TicketId>,
    first_page: bool,
}

#[derive(Deserialize)]
pub struct PageQuery {
    after: Option<String>,
}

pub async fn mine(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let after = match q.after.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<TicketId>().map_err(|_| {
            Error::Invalid(FieldErrors::one("after", "This page link is not valid."))
        })?),
        None => None,
    };
    let mut conn = state.pool.acquire().await?;
    let page = tickets::my_requests(&mut conn, &actor, after, PAGE_SIZE).await?;
    render(
        StatusCode::OK,
        &MinePage {
            shell: shell.at("requests"),
            rows: page.rows,
            next: page.next,
            first_page: after.is_none(),
        },
    )
}

/// A form field, ready to render: its current input and message.
#[derive(Clone)]
pub struct FieldView {
    key: String,
    label: String,
    kind: &'static str,
    help: String,
    /// Set on the first field of a new section: its heading.
    section_start: Option<String>,
    mode: Mode,
    value: String,
    values: Vec<String>,
    /// (value, label) for selects and references.
    options: Vec<(String, String)>,
    error: Option<String>,
    /// A read-only long text, as Markdown made safe.
    html: Option<SafeHtml>,
}

impl FieldView {
    fn editable(&self) -> bool {
        matches!(self.mode, Mode::Edit | Mode::Required)
    }

    fn required(&self) -> bool {
        self.mode == Mode::Required
    }

    fn is_selected(&self, option: &str) -> bool {
        self.value == option || self.values.iter().any(|v| v == option)
    }

    /// What the field shows when read.
    fn shown(&self) -> String {
        if let Some((_, label)) = self.options.iter().find(|(v, _)| *v == self.value) {
            return label.clone();
        }
        if !self.values.is_empty() {
            return self.values.join(", ");
        }
        self.value.clone()
    }
}

fn kind_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "text",
        FieldKind::LongText => "long_text",
        FieldKind::Number => "number",
        FieldKind::Date => "date",
        FieldKind::DateTime => "date_time",
        FieldKind::Select => "select",
        FieldKind::MultiSelect => "multi_select",
        FieldKind::User => "user",
        FieldKind::Group => "group",
        FieldKind::System => "system",
        FieldKind::Site => "site",
        FieldKind::Checkbox => "checkbox",
    }
}

/// Options for every reference kind a definition uses: systems, sites and groups from the
/// cached reference data, people (the first 500 active) from the database.
async fn reference_options(
    conn: &mut PgConnection,
    reference: &Reference,
    def: &Definition,
) -> Result<BTreeMap<&'static str, Vec<(String, String)>>> {
    let mut out = BTreeMap::new();
    for field in &def.fields {
        let kind = kind_name(field.kind);
        if out.contains_key(kind) {
            continue;
        }
        let rows: Vec<(String, String)> = match field.kind {
            FieldKind::System | FieldKind::Site | FieldKind::Group => reference.list(kind),
            FieldKind::User => {
                sqlx::query_as(
                    "select id::text, display_name from users where active
                     order by lower(display_name) limit 500",
                )
                .fetch_all(&mut *conn)
                .await?
            }
            _ => continue,
        };
        out.insert(kind, rows);
    }
    Ok(out)
}

/// Views of the fields `acting` may see in `state`, filled from `values` (stored) or `raw`
/// (as sent, after an error).
fn field_views(
    def: &Definition,
    state: &str,
    acting: &Acting,
    values: &BTreeMap<String, Value>,
    raw: Option<&BTreeMap<String, Vec<String>>>,
    refs: &BTreeMap<&'static str, Vec<(String, String)>>,
    errors: &FieldErrors,
) -> Vec<FieldView> {
    def.modes(state, acting)
        .into_iter()
        .filter(|(_, mode)| *mode != Mode::Hidden)
        .map(|(field, mode): (&Field, Mode)| {
            let kind = kind_name(field.kind);
            let (value, list) = match raw.and_then(|r| r.get(&field.key)) {
                Some(sent) => (
                    sent.first().cloned().unwrap_or_default(),
                    if field.kind == FieldKind::MultiSelect {
                        sent.clone()
                    } else {
                        Vec::new()
                    },
                ),
                None => match values.get(&field.key) {
                    Some(Value::List(l)) => (String::new(), l.clone()),
                    Some(v) => (v.display(), Vec::new()),
                    None => (String::new(), Vec::new()),
                },
            };
            let value = match (field.kind, values.get(&field.key), raw.is_none()) {
                (FieldKind::Checkbox, Some(Value::Bool(true)), true) => "on".into(),
                _ => value,
            };
            let options = match field.kind {
                FieldKind::Select | FieldKind::MultiSelect => field
                    .options
                    .iter()
                    .map(|o| (o.clone(), o.clone()))
                    .collect(),
                _ => refs.get(kind).cloned().unwrap_or_default(),
            };
            let html = (field.kind == FieldKind::LongText
                && mode == Mode::Read
                && !value.trim().is_empty())
            .then(|| markdown::render(&value));
            FieldView {
                key: field.key.clone(),
                label: field.label.clone(),
                kind,
                help: field.help.clone(),
                section_start: Some(field.section.clone()),
                mode,
                html,
                value,
                values: list,
                options,
                error: errors.get(&field.key).map(str::to_owned),
            }
        })
        .collect::<Vec<FieldView>>()
        .into_iter()
        .scan(String::new(), |previous, mut view| {
            let section = view.section_start.take().unwrap_or_default();
            if !section.is_empty() && section != *previous {
                view.section_start = Some(section.clone());
            }
            *previous = section;
            Some(view)
        })
        .collect()
}

/// Messages for fields the page does not show (e.g. a hidden field sent by hand), to be
/// listed at the top of the form.
fn stray_errors(errors: &FieldErrors, shown: &[&str]) -> Vec<String> {
    errors
        .iter()
        .filter(|(field, _)| !shown.contains(field))
        .map(|(_, message)| message.to_owned())
        .collect()
}

/// Splits a posted form into named inputs and process field values (`f.<key>`).
fn split_form(
    pairs: Vec<(String, String)>,
) -> (BTreeMap<String, String>, BTreeMap<String, Vec<String>>) {
    let mut named = BTreeMap::new();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in pairs {
        match key.strip_prefix("f.") {
            Some(field) => values.entry(field.to_owned()).or_default().push(value),
            None => {
                named.insert(key, value);
            }
        }
    }
    (named, values)
}

#[derive(Template)]
#[template(path = "tickets/new.html")]
struct NewPage {
    shell: Shell,
    projects: Vec<Project>,
    processes: Vec<Process>,
    process: Option<Process>,
    project_id: String,
    title: String,
    description: String,
    follow_up: String,
    fields: Vec<FieldView>,
    errors: FieldErrors,
    stray: Vec<String>,
}

#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    process: String,
    /// The key of an earlier request this one follows up.
    #[serde(default)]
    follow_up: String,
    /// The project to preselect (its roles decide the form's fields).
    #[serde(default)]
    project: String,
}

async fn new_page(
    state: &AppState,
    shell: Shell,
    actor: &Actor,
    process_key: &str,
    named: &BTreeMap<String, String>,
    raw: Option<&BTreeMap<String, Vec<String>>>,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    // Only where the actor may file; the help desk first, the usual place for a request.
    let mut projects: Vec<Project> = projects::list(&mut conn)
        .await?
        .into_iter()
        .filter(|p| policy::decide(actor, Action::CreateTicket, Target::Project(p.id)).allowed())
        .collect();
    projects.sort_by_key(|p| (p.kind != projects::Kind::ServiceDesk, p.key.clone()));
    let processes = processes::list_fileable(&mut conn).await?;
    let key = if process_key.is_empty() {
        tickets::DEFAULT_PROCESS
    } else {
        process_key
    };
    let process = processes.iter().find(|p| p.key == key).cloned();
    // Field modes are those of the project chosen (or the one preselected): roles differ.
    let chosen = named
        .get("project_id")
        .and_then(|id| projects.iter().find(|p| p.id.to_string() == *id))
        .or(projects.first());
    let mut fields = Vec::new();
    if let Some(p) = &process {
        let def = processes::definition(&mut conn, p.id, p.version.unwrap_or(1)).await?;
        if let Some(initial) = def.initial_state() {
            let mut roles = std::collections::BTreeSet::from(["requester".to_owned()]);
            if let Some(project) = chosen {
                roles.extend(actor.role_names_in(project.id));
            }
            let see_internal = chosen.is_some_and(|project| {
                policy::decide(actor, Action::SeeInternal, Target::Project(project.id)).allowed()
            });
            let acting = Acting {
                roles,
                see_internal,
            };
            let reference = state
                .reference
                .get(&mut conn, shell.reference_version)
                .await?;
            let refs = reference_options(&mut conn, &reference.data, &def).await?;
            fields = field_views(
                &def,
                &initial.key,
                &acting,
                &BTreeMap::new(),
                raw,
                &refs,
                &errors,
            );
            fields.retain(FieldView::editable);
        }
    }
    let get = |k: &str| named.get(k).cloned().unwrap_or_default();
    // A process error shows above the form, under the kinds of request to choose from.
    let mut shown: Vec<&str> = vec!["project_id", "title", "description", "follow_up"];
    shown.extend(fields.iter().map(|f| f.key.as_str()));
    let stray = stray_errors(&errors, &shown);
    render(
        status_for(&errors),
        &NewPage {
            shell: shell.at("new"),
            projects,
            processes,
            process,
            project_id: get("project_id"),
            title: get("title"),
            description: get("description"),
            follow_up: get("follow_up"),
            fields,
            errors,
            stray,
        },
    )
}

pub async fn new_form(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Query(q): Query<NewQuery>,
) -> Result<Response> {
    let mut named = BTreeMap::new();
    if !q.project.is_empty() {
        named.insert("project_id".to_owned(), q.project.clone());
    }
    if let Some(key) = TicketKey::parse(&q.follow_up) {
        let mut conn = state.pool.acquire().await?;
        let earlier = tickets::find_visible(&mut conn, &actor, &key).await?;
        named.insert("project_id".to_owned(), earlier.project_id.to_string());
        named.insert(
            "title".to_owned(),
            format!("Follow-up to {}: {}", earlier.key(), earlier.title)
                .chars()
                .take(tickets::TITLE_MAX)
                .collect(),
        );
        named.insert("follow_up".to_owned(), earlier.id.to_string());
    }
    new_page(
        &state,
        shell,
        &actor,
        &q.process,
        &named,
        None,
        FieldErrors::new(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let (named, values) = split_form(pairs);
    let get = |k: &str| named.get(k).cloned().unwrap_or_default();
    let process_key = get("process");
    let input = NewTicket {
        project_id: get("project_id").parse::<ProjectId>().ok(),
        process: if process_key.is_empty() {
            ProcessChoice::Default
        } else {
            ProcessChoice::Key(process_key.clone())
        },
        title: get("title"),
        description: get("description"),
        values: values.clone(),
        parent_id: get("parent_id").parse::<TicketId>().ok(),
        site_id: get("site_id").parse().ok(),
        follow_up: get("follow_up").parse::<TicketId>().ok(),
    };
    let mut tx = state.pool.begin().await?;
    match tickets::create(&mut tx, &actor, &input, state.clock.now()).await {
        Ok(filed) => {
            tx.commit().await?;
            let key = filed.key.to_string();
            Ok(flash::redirect(
                &paths::ticket(&key),
                flash::Kind::Success,
                &format!("Your request {key} was filed."),
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            new_page(
                &state,
                shell,
                &actor,
                &process_key,
                &named,
                Some(&values),
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

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

pub(super) fn describe(data: EventData) -> (String, Option<SafeHtml>) {
    match data {
        EventData::Created { process, .. } if process.is_empty() => {
            ("filed this request".into(), None)
        }
        EventData::Created { process, state, .. } => {
            (format!("filed this {process} ({state})"), None)
        }
        EventData::Comment {
            body_html, public, ..
        } => (
            if public {
                "commented"
            } else {
                "wrote an internal note"
            }
            .into(),
            Some(SafeHtml::from_stored(body_html)),
        ),
        EventData::FieldChanged {
            label, old, new, ..
        } => (
            match (old, new) {
                (None, Some(n)) => format!("set {label} to “{n}”"),
                (Some(o), Some(n)) => format!("changed {label} from “{o}” to “{n}”"),
                (Some(o), None) => format!("cleared {label} (was “{o}”)"),
                (None, None) => format!("touched {label}"),
            },
            None,
        ),
        EventData::Transition {
            label, from, to, ..
        } if label.is_empty() => (format!("moved it from {from} to {to}"), None),
        EventData::Transition {
            label, from, to, ..
        } => (format!("took “{label}”: {from} → {to}"), None),
        EventData::GroupAssigned { group } => (format!("assigned it to {group}"), None),
        EventData::Clock { action, clock } => (format!("clock {clock}: {action}"), None),
        EventData::StateMapped {
            from, to, version, ..
        } => (
            format!("moved it from removed state {from} to {to} (process version {version})"),
            None,
        ),
        EventData::ApprovalRequested {
            round,
            state,
            approvers,
        } if approvers.is_empty() => (
            format!(
                "asked for approval (round {round}, {state}) but found nobody to ask: set the approvers, then resubmit"
            ),
            None,
        ),
        EventData::ApprovalRequested {
            round,
            state,
            approvers,
        } => (
            format!(
                "asked {} to approve (round {round}, {state})",
                approvers.join(", ")
            ),
            None,
        ),
        EventData::ApprovalDecision {
            round,
            approve,
            comment,
        } => (
            format!(
                "{} (round {round}){}",
                if approve { "approved" } else { "rejected" },
                if comment.is_empty() {
                    String::new()
                } else {
                    format!(": {comment}")
                }
            ),
            None,
        ),
        EventData::ApprovalOutcome { round, approved } => (
            format!(
                "round {round} was {}",
                if approved { "approved" } else { "rejected" }
            ),
            None,
        ),
        EventData::NoApprovers { state, reason } => (
            format!("found nobody to approve at {state}: {reason}"),
            None,
        ),
        EventData::Linked { kind, other } => (format!("linked: {kind} {other}"), None),
        EventData::Assigned { assignee, group } => (
            match (assignee, group) {
                (Some(a), Some(g)) => format!("assigned it to {a} ({g})"),
                (Some(a), None) => format!("assigned it to {a}"),
                (None, Some(g)) => format!("assigned it to {g}, nobody in particular"),
                (None, None) => "unassigned it".into(),
            },
            None,
        ),
        EventData::PriorityChanged {
            from,
            to,
            impact,
            urgency,
        } => (
            match (impact, urgency) {
                (Some(i), Some(u)) => format!(
                    "set impact {} and urgency {}: priority {} (was {})",
                    triage::level_name(i),
                    triage::level_name(u),
                    triage::priority_name(to),
                    triage::priority_name(from)
                ),
                _ => format!(
                    "changed the priority from {} to {}",
                    triage::priority_name(from),
                    triage::priority_name(to)
                ),
            },
            None,
        ),
        EventData::Escalated { from, to, reason } => (
            format!(
                "escalated it{} to {to}: {reason}",
                from.map(|f| format!(" from {f}")).unwrap_or_default()
            ),
            None,
        ),
        EventData::SlaBreached { clock } => (
            format!(
                "SLA breached: {}",
                if clock == crate::engine::sla::FIRST_RESPONSE {
                    "first response"
                } else {
                    "resolution"
                }
            ),
            None,
        ),
        data @ (EventData::AttachmentAdded { .. }
        | EventData::WatcherAdded { .. }
        | EventData::WatcherRemoved { .. }) => (conversation::describe(data), None),
        EventData::Merged { other, into: true } => (format!("merged this into {other}"), None),
        EventData::Merged { other, into: false } => (format!("merged {other} into this"), None),
        EventData::MailReceived { why, .. } => (format!("received by e-mail ({why})"), None),
        EventData::MailBounced {
            recipient,
            status,
            diagnostic,
            permanent,
            ..
        } => (
            format!(
                "mail to {} {}{}{}",
                recipient.as_deref().unwrap_or("a recipient"),
                if permanent {
                    "could not be delivered"
                } else {
                    "is delayed"
                },
                status.map(|s| format!(" ({s})")).unwrap_or_default(),
                diagnostic.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            None,
        ),
    }
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

/// What the ticket page keeps of a refused form.
#[derive(Default)]
pub(super) struct Kept {
    pub(super) comment: String,
    /// The other named inputs sent (triage forms), shown again on a refusal.
    pub(super) sent: BTreeMap<String, String>,
    pub(super) raw: Option<BTreeMap<String, Vec<String>>>,
    pub(super) errors: FieldErrors,
    pub(super) conflict: Option<String>,
    pub(super) status: Option<StatusCode>,
    pub(super) conv: ConvKept,
    /// Send the viewer on to the ticket this one was merged into.
    pub(super) follow_merge: bool,
    /// The key typed in the duplicate/merge form.
    pub(super) merge_target: String,
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
    let conv = conversation::part(
        state,
        &mut conn,
        actor,
        &ticket,
        conversation::PageFacts {
            see_internal: acting.see_internal,
            last_event,
            related,
        },
        &kept,
    )
    .await?;
    let status = kept.status.unwrap_or(status_for(&kept.errors));
    let mut shown: Vec<&str> = vec!["comment", "body", "other", "target"];
    shown.extend(conversation::FIELDS);
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

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Query(q): Query<conversation::ShowQuery>,
) -> Result<Response> {
    let typed = key;
    let key = parse_key(&typed)?;
    // People type keys in any case; the page lives at the canonical one.
    if key.to_string() != typed {
        return Ok(Redirect::permanent(&paths::ticket(&key.to_string())).into_response());
    }
    let mut kept = conversation::prefill(&state, &actor, &key, &q).await?;
    kept.follow_merge = true;
    ticket_page(&state, shell, &actor, &key, kept).await
}

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

#[derive(Template)]
#[template(path = "tickets/approvals.html")]
struct WaitingPage {
    shell: Shell,
    rows: Vec<(approvals::Waiting, String)>,
}

/// "Waiting on me": the approvals the actor still has to give.
pub async fn waiting(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let rows = approvals::waiting_on(&mut conn, &actor)
        .await?
        .into_iter()
        .map(|w| {
            let asked = display(w.asked_at.to_jiff());
            (w, asked)
        })
        .collect();
    render(
        StatusCode::OK,
        &WaitingPage {
            shell: shell.at("approvals"),
            rows,
        },
    )
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

#[derive(Template)]
#[template(path = "tickets/search.html")]
struct SearchPage {
    shell: Shell,
    q: String,
    found: tickets::search::Found,
    limit: i64,
    candidates: i64,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Full-text search; a ticket key jumps straight to the ticket.
pub async fn search(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Query(q): Query<SearchQuery>,
) -> Result<Response> {
    let text = q.q.trim();
    if let Some(key) = TicketKey::parse(text) {
        return Ok(Redirect::to(&paths::ticket(&key.to_string())).into_response());
    }
    let found = if text.is_empty() || text.chars().count() > 200 {
        tickets::search::Found::default()
    } else {
        let mut conn = state.pool.acquire().await?;
        tickets::search::search(&mut conn, &actor, text).await?
    };
    render(
        StatusCode::OK,
        &SearchPage {
            shell: shell.at("search"),
            q: q.q,
            found,
            limit: tickets::search::LIMIT,
            candidates: tickets::search::CANDIDATES,
        },
    )
}
