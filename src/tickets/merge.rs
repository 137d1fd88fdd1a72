//! Closing a ticket as a duplicate of another, and merging a ticket into another.
//!
//! Both close the ticket in the first closed state of its process with a transition event, in
//! the caller's transaction. A duplicate gets a `duplicates` link. A merged ticket points to
//! its target (`tickets.merged_into_id`); its events are not copied (history is append-only):
//! the target's timeline reads them where they are (see `events::list`). Merges stay one level
//! deep: merging into a merged ticket is refused, and what was merged into a ticket moves on
//! with it when it is merged itself, so there is never a chain or a cycle.

use jiff::Timestamp;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::comments::record_comment;
use super::event_data::EventData;
use super::events::record;
use super::ticket::{TEXT_MAX, Ticket, check_text, find_for_change, touch};
use super::{links, rounds};
use crate::core::ids::{ProjectId, TicketId, TicketKey};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target, TicketFacts};
use crate::engine::workflow::Category;

/// The form field messages go beside.
const FIELD: &str = "target";

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(FieldErrors::one(FIELD, message))
}

/// Whether the actor may close `ticket` as a duplicate or merge it: edit and transition it,
/// while it is open and not merged.
pub fn allowed(actor: &Actor, ticket: &Ticket) -> bool {
    let facts = ticket.facts();
    ticket.state_category != Category::Closed.as_str()
        && ticket.merged_into_id.is_none()
        && policy::decide(actor, Action::EditTicket, Target::Ticket(&facts)).allowed()
        && policy::decide(actor, Action::TransitionTicket, Target::Ticket(&facts)).allowed()
}

/// Checks the actor's rights and finds (and locks) the other ticket. A ticket the actor may
/// not see answers exactly like one that does not exist.
async fn target(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    other: &str,
) -> Result<Ticket> {
    let facts = ticket.facts();
    if !policy::decide(actor, Action::EditTicket, Target::Ticket(&facts)).allowed()
        || !policy::decide(actor, Action::TransitionTicket, Target::Ticket(&facts)).allowed()
    {
        return Err(Error::Forbidden);
    }
    if ticket.state_category == Category::Closed.as_str() {
        return Err(invalid(format!("{} is closed already.", ticket.key())));
    }
    let other = other.trim();
    let no_such = || invalid(format!("No such ticket: “{other}”."));
    let key = TicketKey::parse(other).ok_or_else(no_such)?;
    let target = find_for_change(conn, actor, &key)
        .await
        .map_err(|e| match e {
            Error::NotFound => no_such(),
            e => e,
        })?;
    if target.id == ticket.id {
        return Err(invalid("Choose another ticket than this one."));
    }
    Ok(target)
}

/// Moves `ticket` to the first closed state of its process, with a transition event named
/// `label`; pending approval rounds end, as nobody needs to decide any more.
async fn close(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    transition: &str,
    label: String,
    now: Timestamp,
) -> Result<()> {
    let def = ticket.definition(conn).await?;
    let from = def
        .as_ref()
        .and_then(|d| d.state(&ticket.state))
        .map_or(ticket.state.clone(), |s| s.label.clone());
    let (state, state_label) = def
        .as_ref()
        .and_then(|d| d.states.iter().find(|s| s.category == Category::Closed))
        .map_or(("closed".to_owned(), "Closed".to_owned()), |s| {
            (s.key.clone(), s.label.clone())
        });
    sqlx::query(
        "update tickets set state = $2, state_category = $3, auto_close_at = null,
                resolved_at = coalesce(resolved_at, $4)
         where id = $1",
    )
    .bind(ticket.id)
    .bind(&state)
    .bind(Category::Closed.as_str())
    .bind(crate::core::time::to_db(now))
    .execute(&mut *conn)
    .await?;
    rounds::end_pending(conn, ticket.id, now).await?;
    record(
        conn,
        ticket.id,
        Some(actor.user_id),
        &EventData::Transition {
            transition: transition.to_owned(),
            label,
            from,
            to: state_label,
            category: Category::Closed.as_str().to_owned(),
        },
        now,
    )
    .await
}

/// The optional public comment that says why, written before the ticket closes.
async fn comment_for_requester(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    comment: &str,
    now: Timestamp,
) -> Result<()> {
    let comment = comment.trim();
    if comment.is_empty() {
        return Ok(());
    }
    let mut errors = FieldErrors::new();
    check_text(&mut errors, "comment", comment, TEXT_MAX, false);
    errors.into_result()?;
    record_comment(conn, ticket.id, actor.user_id, comment, now).await
}

/// Closes `ticket` as a duplicate of the ticket `other` (a key): a `duplicates` link, an
/// optional public comment for the requester, and the closing transition. `ticket` must have
/// been loaded with `find_for_change`. Returns the other ticket's key.
pub async fn mark_duplicate(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    other: &str,
    comment: &str,
    now: Timestamp,
) -> Result<String> {
    let target = target(conn, actor, ticket, other).await?;
    comment_for_requester(conn, actor, ticket, comment, now).await?;
    links::connect(conn, actor.user_id, ticket, &target, "duplicates", now).await?;
    let label = format!("Closed as duplicate of {}", target.key());
    close(conn, actor, ticket, "duplicate", label, now).await?;
    touch(conn, ticket.id, now).await?;
    touch(conn, target.id, now).await?;
    Ok(target.key())
}

/// Merges `ticket` into the ticket `other` (a key): `ticket` closes and points to the target,
/// whose timeline from then on shows its events; a `merged` event on each; the requester of
/// `ticket` watches the target. Tickets merged into `ticket` earlier move to the target too.
/// `ticket` must have been loaded with `find_for_change`. Returns the target's key.
pub async fn merge(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    other: &str,
    comment: &str,
    now: Timestamp,
) -> Result<String> {
    let target = target(conn, actor, ticket, other).await?;
    if target.merged_into_id == Some(ticket.id) {
        return Err(invalid(format!(
            "{} was merged into this ticket; they cannot be merged both ways.",
            target.key()
        )));
    }
    if target.merged_into_id.is_some() {
        return Err(invalid(format!(
            "{} was itself merged into another ticket: merge into that one.",
            target.key()
        )));
    }
    comment_for_requester(conn, actor, ticket, comment, now).await?;
    sqlx::query("update tickets set merged_into_id = $2 where id = $1 or merged_into_id = $1")
        .bind(ticket.id)
        .bind(target.id)
        .execute(&mut *conn)
        .await?;
    let label = format!("Merged into {}", target.key());
    close(conn, actor, ticket, "merge", label, now).await?;
    let into = EventData::Merged {
        other: target.key(),
        into: true,
    };
    record(conn, ticket.id, Some(actor.user_id), &into, now).await?;
    let from = EventData::Merged {
        other: ticket.key(),
        into: false,
    };
    record(conn, target.id, Some(actor.user_id), &from, now).await?;
    if ticket.requester_id != target.requester_id {
        sqlx::query(
            "insert into ticket_watchers (ticket_id, user_id) values ($1, $2) on conflict do nothing",
        )
        .bind(target.id)
        .bind(ticket.requester_id)
        .execute(&mut *conn)
        .await?;
    }
    touch(conn, ticket.id, now).await?;
    touch(conn, target.id, now).await?;
    Ok(target.key())
}

/// The key of ticket `id` if the actor may see it: where a merged ticket's page sends them.
pub async fn visible_key(
    conn: &mut PgConnection,
    actor: &Actor,
    id: TicketId,
) -> Result<Option<String>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select p.key || '-' || t.number from tickets t join projects p on p.id = t.project_id
         where t.id = ",
    );
    qb.push_bind(id);
    policy::push_ticket_scope(&mut qb, actor, "t");
    Ok(qb.build_query_scalar().fetch_optional(conn).await?)
}

/// Which internal entries the actor reads on the timeline of the ticket with `facts`: those
/// of the ticket itself as the policy says, and those of a ticket merged in from another
/// project only when the actor also reads internal data in that project.
pub fn internal_filter<'a>(
    actor: &'a Actor,
    facts: &TicketFacts,
) -> impl Fn(ProjectId) -> bool + 'a {
    let here = policy::decide(actor, Action::SeeInternal, Target::Ticket(facts)).allowed();
    let home = facts.project_id;
    move |project| {
        here && (project == home
            || policy::decide(actor, Action::SeeInternal, Target::Project(project)).allowed())
    }
}
