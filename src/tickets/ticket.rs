//! The ticket row, the floor every ticket command stands on: the row as the page shows it,
//! the facts the policy and the workflow engine read from it, the look-ups (each filtered by
//! `engine::policy`: a ticket the actor may not see is `NotFound`), and `touch`, the mark
//! every change ends with. Nothing here calls another ticket command.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use super::sla;
use crate::core::ids::{GroupId, OrgUnitId, ProcessId, ProjectId, TicketId, TicketKey, UserId};
use crate::core::markdown::SafeHtml;
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target, TicketFacts};
use crate::engine::workflow::{Acting, Definition, Snapshot, Value};
use crate::processes;

pub const TITLE_MAX: usize = 200;
pub const TEXT_MAX: usize = 50_000;

pub(super) fn check_text(
    errors: &mut FieldErrors,
    field: &str,
    text: &str,
    max: usize,
    required: bool,
) {
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

/// As `find_visible`, by id (the earlier request a new one follows up).
pub(super) async fn find_visible_by_id(
    conn: &mut PgConnection,
    actor: &Actor,
    id: TicketId,
) -> Result<Ticket> {
    find(conn, Lookup::Id(actor, id), false).await
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
