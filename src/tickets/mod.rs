//! Tickets and their append-only history (`ticket_events`). Every change writes its event in
//! the same transaction as the change; the ticket row is the current projection. Access goes
//! through `engine::policy`: a ticket the actor may not see is `NotFound`. How a ticket moves
//! is its process's definition, applied by `engine::workflow` (see `flow`).

pub mod approvals;
pub mod attachments;
pub mod canned;
pub mod conversation;
mod events;
pub mod flow;
pub mod links;
pub mod merge;
mod notices;
pub mod queues;
pub mod search;
pub mod sla;
pub mod sweeps;
pub mod triage;
pub mod watchers;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row as _};

use crate::core::ids::{
    GroupId, OrgUnitId, ProcessId, ProjectId, SystemId, TicketId, TicketKey, UserId,
};
use crate::core::markdown::{self, SafeHtml};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target, TicketFacts};
use crate::engine::workflow::{Acting, Definition, FieldKind, Snapshot, Value};
use crate::{processes, projects};

pub use conversation::Visibility;
pub use events::{Event, EventData, record, record_returning_id};

pub const TITLE_MAX: usize = 200;
pub const TEXT_MAX: usize = 50_000;
/// The process used when none is chosen (e.g. a quick request).
pub const DEFAULT_PROCESS: &str = "question";

/// Which process a new ticket follows.
#[derive(Debug, Clone, Default)]
pub enum ProcessChoice {
    /// `DEFAULT_PROCESS` (e.g. a quick request).
    #[default]
    Default,
    Id(ProcessId),
    /// As a form names it.
    Key(String),
}

/// What a person typed to file a ticket.
#[derive(Debug, Clone, Default)]
pub struct NewTicket {
    pub project_id: Option<ProjectId>,
    pub process: ProcessChoice,
    pub title: String,
    pub description: String,
    /// Process field values as sent by the form (field key → values).
    pub values: BTreeMap<String, Vec<String>>,
    /// A sub-task's parent.
    pub parent_id: Option<TicketId>,
    /// The site or business unit (when the process has no site field of its own).
    pub site_id: Option<OrgUnitId>,
    /// An earlier request this one follows up (too old to reopen): linked "relates to".
    pub follow_up: Option<TicketId>,
}

fn check_text(errors: &mut FieldErrors, field: &str, text: &str, max: usize, required: bool) {
    let length = text.chars().count();
    if required && text.trim().is_empty() {
        errors.add(field, "This cannot be empty.");
    } else if length > max {
        errors.add(
            field,
            format!("Use at most {max} characters (this has {length})."),
        );
    }
}

/// The workflow view of an actor on a ticket: role names in the project, relations, and
/// whether internal data is theirs to see.
pub fn acting(actor: &Actor, facts: &TicketFacts) -> Acting {
    let mut roles = actor.role_names_in(facts.project_id);
    roles.extend(facts.relations(actor).into_iter().map(str::to_owned));
    let see_internal = policy::decide(actor, Action::SeeInternal, Target::Ticket(facts)).allowed();
    Acting {
        roles,
        see_internal,
    }
}

/// Parses form values for the fields of `def`; unknown field names are kept as text so the
/// engine can refuse them by name.
pub fn parse_values(
    def: &Definition,
    raw: &BTreeMap<String, Vec<String>>,
) -> (BTreeMap<String, Value>, FieldErrors) {
    let mut values = BTreeMap::new();
    let mut errors = FieldErrors::new();
    for (key, sent) in raw {
        match def.field(key) {
            Some(field) => match field.parse(sent) {
                Ok(Some(v)) => {
                    values.insert(key.clone(), v);
                }
                Ok(None) => {}
                Err(why) => errors.add(key, why),
            },
            None => {
                values.insert(key.clone(), Value::Text(sent.join(",")));
            }
        }
    }
    (values, errors)
}

/// Reference values that point to nothing they may: a user who is not an active user, a group,
/// system or site that does not exist. A forged id gets a message beside its field.
pub async fn check_references(
    conn: &mut PgConnection,
    def: &Definition,
    values: &BTreeMap<String, Value>,
) -> Result<FieldErrors> {
    let mut errors = FieldErrors::new();
    for field in &def.fields {
        let Some(Value::Text(text)) = values.get(&field.key) else {
            continue;
        };
        // Not an id at all: `Field::check` said so already.
        let Ok(id) = uuid::Uuid::parse_str(text) else {
            continue;
        };
        let sql = match field.kind {
            FieldKind::User => "select exists (select 1 from users where id = $1 and active)",
            FieldKind::Group => "select exists (select 1 from groups where id = $1)",
            FieldKind::System => "select exists (select 1 from systems where id = $1)",
            FieldKind::Site => {
                "select exists (select 1 from org_units where id = $1 and kind in ('site', 'business_unit'))"
            }
            _ => continue,
        };
        let exists: bool = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            errors.add(
                &field.key,
                format!("{}: choose from the list.", field.label),
            );
        }
    }
    Ok(errors)
}

/// The system and site the field values point to, copied to columns for queues.
fn references(
    def: &Definition,
    values: &BTreeMap<String, Value>,
) -> (Option<SystemId>, Option<OrgUnitId>) {
    let first = |kind: FieldKind| {
        def.fields
            .iter()
            .filter(|f| f.kind == kind)
            .find_map(|f| match values.get(&f.key) {
                Some(Value::Text(s)) => uuid::Uuid::parse_str(s).ok(),
                _ => None,
            })
    };
    (
        first(FieldKind::System).map(SystemId),
        first(FieldKind::Site).map(OrgUnitId),
    )
}

/// Files a ticket: checks the process's form rules, takes its number, writes the row and its
/// `created` event (and starts approvals when the first state has a step).
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    input: &NewTicket,
    now: Timestamp,
) -> Result<Filed> {
    let mut errors = FieldErrors::new();
    check_text(&mut errors, "title", input.title.trim(), TITLE_MAX, true);
    check_text(
        &mut errors,
        "description",
        &input.description,
        TEXT_MAX,
        false,
    );
    let project = match input.project_id {
        Some(id) => projects::find(conn, id).await?,
        None => None,
    };
    match &project {
        None => errors.add("project_id", "Choose a project."),
        Some(p)
            if !policy::decide(actor, Action::CreateTicket, Target::Project(p.id)).allowed() =>
        {
            errors.add("project_id", "You cannot file requests in this project.");
        }
        Some(_) => {}
    }
    let process = match &input.process {
        ProcessChoice::Default => processes::find_by_key(conn, DEFAULT_PROCESS).await?,
        ProcessChoice::Id(id) => processes::find(conn, *id).await.ok(),
        ProcessChoice::Key(key) => processes::find_by_key(conn, key).await?,
    };
    let process = process.filter(|p| p.active && p.version.is_some());
    let (Some(project), Some(process)) = (project, process) else {
        if !matches!(input.process, ProcessChoice::Default) || errors.is_empty() {
            errors.add("process_id", "Choose what kind of request this is.");
        }
        return Err(Error::Invalid(errors));
    };
    let version = process.version.unwrap_or(1);
    let def = processes::definition(conn, process.id, version).await?;
    let Some(initial) = def.initial_state() else {
        return Err(Error::Internal(anyhow::anyhow!(
            "process {} has no initial state",
            process.key
        )));
    };
    let facts = TicketFacts {
        project_id: project.id,
        requester_id: actor.user_id,
        assignee_id: None,
        assignee_group_id: None,
        org_unit_id: actor.org_unit_id,
        site_id: input.site_id,
        org_unit_visible: project.org_unit_visible,
        actor_watches: false,
        actor_approves: false,
    };
    let acting = acting(actor, &facts);
    let (values, parse_errors) = parse_values(&def, &input.values);
    for (field, message) in parse_errors.iter() {
        errors.add(field, message);
    }
    for refusal in def.check_values(&initial.key, &acting, &values) {
        errors.add(refusal.field.as_deref().unwrap_or("form"), refusal.reason);
    }
    // References are looked up only for values the form may set and that fit their field.
    let fitting: BTreeMap<String, Value> = values
        .iter()
        .filter(|(k, _)| errors.get(k).is_none())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (field, message) in check_references(conn, &def, &fitting).await?.iter() {
        errors.add(field, message);
    }
    let empty = Snapshot::default();
    for refusal in def.missing_required(&initial.key, &acting, &empty, &values) {
        if errors
            .get(refusal.field.as_deref().unwrap_or("form"))
            .is_none()
        {
            errors.add(refusal.field.as_deref().unwrap_or("form"), refusal.reason);
        }
    }
    if let Some(parent) = input.parent_id {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("select exists (select 1 from tickets t where t.id = ");
        qb.push_bind(parent);
        policy::push_ticket_scope(&mut qb, actor, "t");
        qb.push(")");
        let visible: bool = qb.build_query_scalar().fetch_one(&mut *conn).await?;
        if !visible {
            errors.add("parent_id", "The parent ticket does not exist.");
        }
    }
    let follow_up = match input.follow_up {
        Some(id) => match find(conn, Lookup::Id(actor, id), false).await {
            Ok(t) => Some(t),
            Err(Error::NotFound) => {
                errors.add("follow_up", "The earlier request does not exist.");
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    errors.into_result()?;
    let (system_id, site_id) = references(&def, &values);
    let site_id = site_id.or(input.site_id);
    let id = TicketId::new();
    let title = input.title.trim();
    let html = markdown::render(&input.description);
    let created = EventData::Created {
        title: title.to_owned(),
        process: process.name.clone(),
        state: initial.label.clone(),
        category: initial.category.as_str().to_owned(),
        priority: triage::DEFAULT_PRIORITY,
    };
    // Filed into a state with no approval and no effects, the ticket's only clock event is
    // the one recorded below: its clocks go into the insert, and the row is written once
    // (an update of the SLA columns rewrote every index of the new row; docs/benchmarks.md).
    let plain = initial.approval.is_none() && initial.on_enter.is_empty();
    let routed = triage::routed_group(conn, project.id, process.id, system_id, site_id).await?;
    let sla = if plain {
        let events = [(Some(actor.user_id), created.clone(), now)];
        sla::replay_events(conn, project.id, Some(process.id), actor.user_id, &events).await?
    } else {
        sla::Replay::default()
    };
    let insert = sqlx::query(
        "insert into tickets (id, project_id, number, title, description_md, description_html,
                              requester_id, org_unit_id, process_id, process_version, state, state_category,
                              field_values, system_id, site_id, parent_id, created_at, updated_at,
                              assignee_group_id,
                              sla_policy_id, first_response_due, resolution_due, sla_due, sla_warn_at,
                              sla_paused, first_response_breached_at, resolution_breached_at,
                              first_response_at)
         values ($1, $2, nextval(ticket_number_sequence($2)::regclass), $3, $4, $5, $6, $7, $8,
                 $9, $10, $11, $12, $13, $14, $15, $16, $16, $17, $18, $19, $20, $21, $22, $23,
                 $24, $25, $26)
         returning number",
    )
    .bind(id)
    .bind(project.id)
    .bind(title)
    .bind(&input.description)
    .bind(html.as_str())
    .bind(actor.user_id)
    .bind(actor.org_unit_id)
    .bind(process.id)
    .bind(version)
    .bind(&initial.key)
    .bind(initial.category.as_str())
    .bind(Json(&values))
    .bind(system_id)
    .bind(site_id)
    .bind(input.parent_id)
    .bind(to_db(now))
    .bind(routed.as_ref().map(|(group, _)| *group));
    // The number comes from the project's own sequence (migration 0016): unique and without a
    // lock, so filings into one project commit in parallel; a filing that rolls back leaves a
    // gap.
    let number: i64 = sla::bind_clocks(insert, &sla)
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| {
            crate::core::error::missing_reference(
                "form",
                "Something chosen in the form no longer exists.",
            )(Error::Db(e))
        })?;
    // The group hears of the ticket from this event (its notice goes to the ticket's group);
    // the routing is recorded after it without a second notice.
    record(conn, id, Some(actor.user_id), &created, now).await?;
    if let Some((_, group)) = routed {
        events::record_unannounced(conn, id, None, &EventData::GroupAssigned { group }, now)
            .await?;
    }
    if !plain {
        let this = find_for_system(conn, id).await?;
        flow::enter(conn, Some(actor), &this, &def, &initial.key, now).await?;
        sla::refresh(conn, id).await?;
    }
    if let Some(earlier) = follow_up {
        let this = find_for_system(conn, id).await?;
        links::connect(conn, actor.user_id, &this, &earlier, "relates_to", now).await?;
        touch(conn, earlier.id, now).await?;
    }
    let key = format!("{}-{number}", project.key);
    let key =
        TicketKey::parse(&key).ok_or_else(|| Error::Internal(anyhow::anyhow!("bad key {key}")))?;
    Ok(Filed { id, key })
}

/// A ticket just filed.
#[derive(Debug, Clone)]
pub struct Filed {
    pub id: TicketId,
    pub key: TicketKey,
}

/// Which of a ticket's related lists have rows. Most tickets have no links, sub-tasks,
/// approval rounds, watchers or attachments: the ticket page asks once and skips the
/// statements of the empty ones (each a round trip; docs/benchmarks.md).
#[derive(Debug, Clone, Copy, FromRow)]
pub struct Related {
    pub links: bool,
    pub children: bool,
    pub approvals: bool,
    pub watchers: bool,
    pub attachments: bool,
}

/// The rows `load` reads when `has` (a `Related` flag) says there are some; else none, and
/// no statement is sent (a future does nothing until awaited).
pub async fn if_any<T>(has: bool, load: impl Future<Output = Result<Vec<T>>>) -> Result<Vec<T>> {
    if has { load.await } else { Ok(Vec::new()) }
}

pub async fn related(conn: &mut PgConnection, ticket: TicketId) -> Result<Related> {
    Ok(sqlx::query_as(
        "select exists (select 1 from ticket_links where from_ticket = $1)
                or exists (select 1 from ticket_links where to_ticket = $1) as links,
                exists (select 1 from tickets where parent_id = $1) as children,
                exists (select 1 from approval_rounds where ticket_id = $1) as approvals,
                exists (select 1 from ticket_watchers where ticket_id = $1) as watchers,
                exists (select 1 from attachments where ticket_id = $1) as attachments",
    )
    .bind(ticket)
    .fetch_one(conn)
    .await?)
}

/// A ticket as its page shows it.
#[derive(Debug, Clone, FromRow)]
pub struct Ticket {
    pub id: TicketId,
    pub project_id: ProjectId,
    pub assignee_id: Option<UserId>,
    pub assignee_group_id: Option<GroupId>,
    pub org_unit_id: Option<OrgUnitId>,
    pub site_id: Option<OrgUnitId>,
    pub org_unit_visible: bool,
    pub actor_watches: bool,
    pub actor_approves: bool,
    pub project_key: String,
    pub project_name: String,
    pub number: i64,
    pub title: String,
    pub description_html: String,
    pub requester_id: UserId,
    pub requester_name: String,
    pub state: String,
    pub state_category: String,
    pub process_id: Option<ProcessId>,
    pub process_version: Option<i32>,
    pub process_name: Option<String>,
    pub field_values: Json<BTreeMap<String, Value>>,
    pub parent_id: Option<TicketId>,
    pub created_at: jiff_sqlx::Timestamp,
    pub updated_at: jiff_sqlx::Timestamp,
    pub version: i32,
    pub priority: i16,
    pub impact: Option<i16>,
    pub urgency: Option<i16>,
    pub assignee_name: Option<String>,
    pub group_name: Option<String>,
    pub first_response_due: Option<jiff_sqlx::Timestamp>,
    pub resolution_due: Option<jiff_sqlx::Timestamp>,
    pub sla_warn_at: Option<jiff_sqlx::Timestamp>,
    pub sla_paused: bool,
    pub picked_up_at: Option<jiff_sqlx::Timestamp>,
    pub first_response_at: Option<jiff_sqlx::Timestamp>,
    pub resolved_at: Option<jiff_sqlx::Timestamp>,
    /// The ticket this one was merged into.
    pub merged_into_id: Option<TicketId>,
}

impl Ticket {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }

    pub fn description(&self) -> SafeHtml {
        SafeHtml::from_stored(self.description_html.clone())
    }

    pub fn facts(&self) -> TicketFacts {
        TicketFacts {
            project_id: self.project_id,
            requester_id: self.requester_id,
            assignee_id: self.assignee_id,
            assignee_group_id: self.assignee_group_id,
            org_unit_id: self.org_unit_id,
            site_id: self.site_id,
            org_unit_visible: self.org_unit_visible,
            actor_watches: self.actor_watches,
            actor_approves: self.actor_approves,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state.clone(),
            values: self.field_values.0.clone(),
        }
    }

    /// The definition the ticket follows.
    pub async fn definition(&self, conn: &mut PgConnection) -> Result<Option<Arc<Definition>>> {
        match (self.process_id, self.process_version) {
            (Some(p), Some(v)) => Ok(Some(processes::definition(conn, p, v).await?)),
            _ => Ok(None),
        }
    }
}

/// Which ticket to load, and for whom.
enum Lookup<'a> {
    /// By key, as `actor` may see it.
    Key(&'a Actor, &'a TicketKey),
    /// By id, as `actor` may see it.
    Id(&'a Actor, TicketId),
    /// By id, for background work (no actor, no visibility filter).
    System(TicketId),
}

/// The ticket with this key, if the actor may see it; `NotFound` otherwise, exactly as if
/// it did not exist. `lock` takes a row lock for a change.
async fn find(conn: &mut PgConnection, lookup: Lookup<'_>, lock: bool) -> Result<Ticket> {
    let user = match lookup {
        Lookup::Key(actor, _) | Lookup::Id(actor, _) => Some(actor.user_id),
        Lookup::System(_) => None,
    };
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select t.id, t.project_id, t.assignee_id, t.assignee_group_id, t.org_unit_id, t.site_id,
                p.requester_visibility = 'org_unit' as org_unit_visible,
                exists (select 1 from ticket_watchers w where w.ticket_id = t.id and w.user_id = ",
    );
    qb.push_bind(user);
    qb.push(
        ") as actor_watches,
                exists (select 1 from approval_rounds ar join approval_requests aq on aq.round_id = ar.id
                        where ar.ticket_id = t.id and aq.approver_id = ",
    );
    qb.push_bind(user);
    qb.push(
        ") as actor_approves,
                p.key as project_key, p.name as project_name, t.number, t.title,
                t.description_html, t.requester_id, u.display_name as requester_name, t.state,
                t.state_category, t.process_id, t.process_version, pr.name as process_name,
                t.field_values, t.parent_id, t.created_at, t.updated_at, t.version,
                t.priority, t.impact, t.urgency, au.display_name as assignee_name,
                g.name as group_name, t.first_response_due, t.resolution_due, t.sla_warn_at,
                t.sla_paused, t.picked_up_at, t.first_response_at, t.resolved_at,
                t.merged_into_id
         from tickets t join projects p on p.id = t.project_id join users u on u.id = t.requester_id
         left join processes pr on pr.id = t.process_id
         left join users au on au.id = t.assignee_id
         left join groups g on g.id = t.assignee_group_id
         where ",
    );
    match lookup {
        Lookup::Key(actor, key) => {
            qb.push("p.key = ")
                .push_bind(key.project.as_str())
                .push(" and t.number = ")
                .push_bind(key.number);
            policy::push_ticket_scope(&mut qb, actor, "t");
        }
        Lookup::Id(actor, id) => {
            qb.push("t.id = ").push_bind(id);
            policy::push_ticket_scope(&mut qb, actor, "t");
        }
        Lookup::System(id) => {
            qb.push("t.id = ").push_bind(id);
        }
    }
    if lock {
        qb.push(" for update of t");
    }
    qb.build_query_as()
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)
}

/// As `find_for_change`, by id (bulk actions).
pub async fn find_for_change_by_id(
    conn: &mut PgConnection,
    actor: &Actor,
    id: TicketId,
) -> Result<Ticket> {
    find(conn, Lookup::Id(actor, id), true).await
}

/// A ticket by id for background work, locked for a change.
pub(crate) async fn find_for_system(conn: &mut PgConnection, id: TicketId) -> Result<Ticket> {
    find(conn, Lookup::System(id), true).await
}

/// The ticket with this key, if the actor may see it.
pub async fn find_visible(
    conn: &mut PgConnection,
    actor: &Actor,
    key: &TicketKey,
) -> Result<Ticket> {
    find(conn, Lookup::Key(actor, key), false).await
}

/// As `find_visible`, locking the row until the transaction ends (for changes).
pub async fn find_for_change(
    conn: &mut PgConnection,
    actor: &Actor,
    key: &TicketKey,
) -> Result<Ticket> {
    find(conn, Lookup::Key(actor, key), true).await
}

/// A ticket's history with that of the tickets merged into it, oldest first, in one query.
/// Internal entries only where `internal` says so for the project they were written in (see
/// `merge::internal_filter`).
pub async fn events(
    conn: &mut PgConnection,
    ticket: TicketId,
    internal: impl Fn(ProjectId) -> bool,
) -> Result<Vec<Event>> {
    events::list(conn, ticket, internal).await
}

/// Adds a public reply (`Action::CommentPublic`) or an internal note (`Action::SeeInternal`),
/// answering the event's id; `version` bumps so open forms elsewhere notice the change. A note
/// from someone who may not write one is refused and nothing is stored.
pub async fn add_comment(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    body: &str,
    visibility: Visibility,
    now: Timestamp,
) -> Result<i64> {
    if !policy::decide(actor, visibility.action(), Target::Ticket(&ticket.facts())).allowed() {
        return Err(Error::Forbidden);
    }
    let mut errors = FieldErrors::new();
    check_text(&mut errors, "body", body, TEXT_MAX, true);
    errors.into_result()?;
    let id = write_comment(conn, ticket.id, actor.user_id, body, visibility, now).await?;
    touch(conn, ticket.id, now).await?;
    Ok(id)
}

pub(crate) async fn record_comment(
    conn: &mut PgConnection,
    ticket: TicketId,
    actor: UserId,
    body: &str,
    now: Timestamp,
) -> Result<()> {
    write_comment(conn, ticket, actor, body, Visibility::Public, now).await?;
    Ok(())
}

async fn write_comment(
    conn: &mut PgConnection,
    ticket: TicketId,
    actor: UserId,
    body: &str,
    visibility: Visibility,
    now: Timestamp,
) -> Result<i64> {
    let html = markdown::render(body);
    record_returning_id(
        conn,
        ticket,
        Some(actor),
        &EventData::Comment {
            body_md: body.to_owned(),
            body_html: html.into_string(),
            public: visibility == Visibility::Public,
        },
        now,
    )
    .await
}

/// Marks a change: `updated_at`, the optimistic-concurrency `version`, and the SLA
/// projection replayed from the events (so every path that changes a ticket keeps it true).
/// One update: each new row version of a ticket rewrites its indexes (`updated_at` and the
/// SLA columns are indexed), so the clocks are written with the mark, not after it.
pub(crate) async fn touch(conn: &mut PgConnection, ticket: TicketId, now: Timestamp) -> Result<()> {
    let clocks = sla::replay(conn, ticket).await?;
    let query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "update tickets set {}, updated_at = $11, version = version + 1 where id = $1",
        sla::SET_CLOCKS
    )))
    .bind(ticket);
    sla::bind_clocks(query, &clocks)
        .bind(to_db(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves the open tickets of a process out of a state a new version removed; an event each.
/// A ticket mapped into a state with an approval step (or `on_enter` effects) enters it as if
/// it had moved there: a new round, or on if nobody can be asked.
#[allow(clippy::too_many_arguments)]
pub async fn move_after_publish(
    conn: &mut PgConnection,
    process: ProcessId,
    version: i32,
    from: &str,
    to: &str,
    def: &Definition,
    by: Option<UserId>,
    now: Timestamp,
) -> Result<u64> {
    let Some(target) = def.state(to) else {
        return Err(Error::Invalid(FieldErrors::one(
            "mapping",
            format!("There is no state {to:?}."),
        )));
    };
    let moved: Vec<TicketId> = sqlx::query_scalar(
        "update tickets set state = $4, state_category = $5, process_version = $2, updated_at = $6, version = version + 1
         where process_id = $1 and state = $3 and state_category <> 'closed' returning id",
    )
    .bind(process)
    .bind(version)
    .bind(from)
    .bind(to)
    .bind(target.category.as_str())
    .bind(to_db(now))
    .fetch_all(&mut *conn)
    .await?;
    for id in &moved {
        record(
            conn,
            *id,
            by,
            &EventData::StateMapped {
                from: from.to_owned(),
                to: target.label.clone(),
                version,
                category: target.category.as_str().to_owned(),
            },
            now,
        )
        .await?;
        approvals::end_pending(conn, *id, now).await?;
        if target.approval.is_some() || !target.on_enter.is_empty() {
            let ticket = find_for_system(conn, *id).await?;
            flow::enter(conn, None, &ticket, def, to, now).await?;
        } else {
            sla::refresh(conn, *id).await?;
        }
    }
    Ok(moved.len() as u64)
}

/// A row of "My requests".
#[derive(Debug, Clone, FromRow)]
pub struct Row {
    pub id: TicketId,
    pub project_key: String,
    pub number: i64,
    pub title: String,
    pub state: String,
    pub state_category: String,
    pub updated_at: jiff_sqlx::Timestamp,
}

impl Row {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }

    /// Where the request stands, in plain words for the requester.
    pub fn plain_state(&self) -> &'static str {
        match self.state_category.as_str() {
            "new" => "Received",
            "open" => "We are working on it",
            "waiting" => "Waiting for you",
            "resolved" => "Done — please confirm",
            _ => "Closed",
        }
    }
}

/// A page of a keyset-paginated list: `next` is the cursor for the following page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<TicketId>,
}

/// The actor's own requests, newest first, `limit` at a time after the cursor.
pub async fn my_requests(
    conn: &mut PgConnection,
    actor: &Actor,
    after: Option<TicketId>,
    limit: i64,
) -> Result<Page<Row>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select t.id, p.key as project_key, t.number, t.title, t.state, t.state_category, t.updated_at
         from tickets t join projects p on p.id = t.project_id
         where t.requester_id = ",
    );
    qb.push_bind(actor.user_id);
    if let Some(after) = after {
        qb.push(" and t.id < ").push_bind(after);
    }
    policy::push_ticket_scope(&mut qb, actor, "t");
    qb.push(" order by t.id desc limit ").push_bind(limit + 1);
    let mut rows: Vec<Row> = qb.build_query_as().fetch_all(conn).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Page { rows, next })
}
