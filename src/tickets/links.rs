//! Typed links between tickets (duplicates, blocks, relates to, caused by), shown on both
//! sides, and sub-tasks with a roll-up on the parent.

use jiff::Timestamp;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use super::event_data::EventData;
use super::events::record;
use super::ticket::{Ticket, find_visible, touch};
use crate::core::ids::{LinkId, TicketId, TicketKey, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};

/// Link kinds as people choose them; `blocked_by` is stored as the other side's `blocks`.
pub const KINDS: [(&str, &str); 5] = [
    ("relates_to", "relates to"),
    ("blocks", "blocks"),
    ("blocked_by", "is blocked by"),
    ("duplicates", "duplicates"),
    ("caused_by", "is caused by"),
];

fn inverse_label(kind: &str) -> &'static str {
    match kind {
        "blocks" => "is blocked by",
        "duplicates" => "is duplicated by",
        "caused_by" => "caused",
        _ => "relates to",
    }
}

fn label(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("relates to", |(_, l)| l)
}

/// Links `ticket` to the ticket with key `other`: both must be visible to the actor, and
/// the actor must be allowed to edit `ticket`. An event on each side.
pub async fn add(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    kind: &str,
    other: &str,
    now: Timestamp,
) -> Result<()> {
    if !policy::decide(actor, Action::EditTicket, Target::Ticket(&ticket.facts())).allowed() {
        return Err(Error::Forbidden);
    }
    if !KINDS.iter().any(|(k, _)| *k == kind) {
        return Err(Error::Invalid(FieldErrors::one(
            "kind",
            "Choose a kind of link.",
        )));
    }
    let not_found = || {
        Error::Invalid(FieldErrors::one(
            "other",
            format!("There is no ticket {other:?} you can see."),
        ))
    };
    let key = TicketKey::parse(other).ok_or_else(not_found)?;
    let target = find_visible(conn, actor, &key).await.map_err(|e| match e {
        Error::NotFound => not_found(),
        e => e,
    })?;
    if target.id == ticket.id {
        return Err(Error::Invalid(FieldErrors::one(
            "other",
            "A ticket cannot be linked to itself.",
        )));
    }
    if !connect(conn, actor.user_id, ticket, &target, kind, now).await? {
        return Err(Error::Invalid(FieldErrors::one(
            "other",
            "These tickets are linked this way already.",
        )));
    }
    touch(conn, ticket.id, now).await?;
    touch(conn, target.id, now).await
}

/// Stores the link `ticket` → `kind` → `target` with an event on each side; false when the
/// tickets were linked this way already (then nothing is written). Checks nothing: callers do.
pub(super) async fn connect(
    conn: &mut PgConnection,
    by: UserId,
    ticket: &Ticket,
    target: &Ticket,
    kind: &str,
    now: Timestamp,
) -> Result<bool> {
    let (from, to, stored) = match kind {
        "blocked_by" => (target.id, ticket.id, "blocks"),
        k => (ticket.id, target.id, k),
    };
    let inserted = sqlx::query(
        "insert into ticket_links (id, from_ticket, to_ticket, kind, created_at, created_by)
         values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
    )
    .bind(LinkId::new())
    .bind(from)
    .bind(to)
    .bind(stored)
    .bind(to_db(now))
    .bind(by)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let this_side = EventData::Linked {
        kind: label(kind).to_owned(),
        other: target.key(),
    };
    record(conn, ticket.id, Some(by), &this_side, now).await?;
    let other_label = if kind == "blocked_by" {
        "blocks"
    } else {
        inverse_label(stored)
    };
    let other_side = EventData::Linked {
        kind: other_label.to_owned(),
        other: ticket.key(),
    };
    record(conn, target.id, Some(by), &other_side, now).await?;
    Ok(true)
}

/// A linked ticket as the page lists it.
#[derive(Debug, Clone, FromRow)]
pub struct Linked {
    pub label: String,
    pub project_key: String,
    pub number: i64,
    pub title: String,
    pub state_category: String,
}

impl Linked {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }
}

/// Both directions of the ticket's links, only to tickets the actor may see.
pub async fn of(conn: &mut PgConnection, actor: &Actor, ticket: TicketId) -> Result<Vec<Linked>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("select case when l.from_ticket = ");
    qb.push_bind(ticket).push(
        " then case l.kind when 'blocks' then 'blocks' when 'duplicates' then 'duplicates' when 'caused_by' then 'is caused by' else 'relates to' end
          else case l.kind when 'blocks' then 'is blocked by' when 'duplicates' then 'is duplicated by' when 'caused_by' then 'caused' else 'relates to' end
          end as label, p.key as project_key, t.number, t.title, t.state_category
         from ticket_links l
         join tickets t on t.id = case when l.from_ticket = ",
    );
    qb.push_bind(ticket).push(" then l.to_ticket else l.from_ticket end join projects p on p.id = t.project_id where (l.from_ticket = ");
    qb.push_bind(ticket)
        .push(" or l.to_ticket = ")
        .push_bind(ticket)
        .push(")");
    policy::push_ticket_scope(&mut qb, actor, "t");
    qb.push(" order by l.created_at");
    Ok(qb.build_query_as().fetch_all(conn).await?)
}

/// A sub-task on its parent's page.
#[derive(Debug, Clone, FromRow)]
pub struct Child {
    pub project_key: String,
    pub number: i64,
    pub title: String,
    pub state: String,
    pub state_category: String,
    pub site: Option<String>,
    pub blocked: bool,
}

impl Child {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }

    /// done, blocked or open: what the parent's roll-up counts.
    pub fn rollup(&self) -> &'static str {
        match self.state_category.as_str() {
            "resolved" | "closed" => "done",
            _ if self.blocked || self.state_category == "waiting" => "blocked",
            _ => "open",
        }
    }
}

/// The sub-tasks the actor may see, with whether an unfinished ticket blocks each.
pub async fn children(
    conn: &mut PgConnection,
    actor: &Actor,
    parent: TicketId,
) -> Result<Vec<Child>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select p.key as project_key, t.number, t.title, t.state, t.state_category, o.name as site,
                exists (select 1 from ticket_links l join tickets b on b.id = l.from_ticket
                        where l.to_ticket = t.id and l.kind = 'blocks' and b.state_category not in ('resolved', 'closed')) as blocked
         from tickets t join projects p on p.id = t.project_id left join org_units o on o.id = t.site_id
         where t.parent_id = ",
    );
    qb.push_bind(parent);
    policy::push_ticket_scope(&mut qb, actor, "t");
    qb.push(" order by t.number");
    Ok(qb.build_query_as().fetch_all(conn).await?)
}
