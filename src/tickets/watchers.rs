//! Watchers of a ticket (`ticket_watchers`): people who follow it. Watching is a relation
//! that lets someone see the ticket (see `engine::policy`). Anyone who can see a ticket may
//! watch it or stop; adding or removing someone else needs `Action::EditTicket`. Each change
//! writes an event and bumps the ticket's version; adding someone already there (or removing
//! someone who is not) changes nothing, so bulk actions can call these freely.

use jiff::Timestamp;
use sqlx::{FromRow, PgConnection};

use super::event_data::EventData;
use super::events::record;
use super::ticket::{Ticket, touch};
use crate::core::ids::{TicketId, UserId};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};

/// One watcher, as the ticket page lists them.
#[derive(Debug, Clone, FromRow)]
pub struct Watcher {
    pub user_id: UserId,
    pub name: String,
}

/// The ticket's watchers, by name.
pub async fn list(conn: &mut PgConnection, ticket: TicketId) -> Result<Vec<Watcher>> {
    Ok(sqlx::query_as(
        "select u.id as user_id, u.display_name as name
         from ticket_watchers w join users u on u.id = w.user_id
         where w.ticket_id = $1 order by lower(u.display_name), u.id",
    )
    .bind(ticket)
    .fetch_all(conn)
    .await?)
}

/// May the actor change whether `user` watches? Themselves when they can see the ticket;
/// others with `EditTicket`.
fn allowed(actor: &Actor, ticket: &Ticket, user: UserId) -> Result<()> {
    let action = if user == actor.user_id {
        Action::ViewTicket
    } else {
        Action::EditTicket
    };
    if policy::decide(actor, action, Target::Ticket(&ticket.facts())).allowed() {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

async fn name_of(conn: &mut PgConnection, user: UserId) -> Result<(String, bool)> {
    sqlx::query_as("select display_name, active from users where id = $1")
        .bind(user)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| {
            Error::Invalid(FieldErrors::one(
                "watcher",
                "There is no account with this e-mail address.",
            ))
        })
}

/// Makes `user` a watcher of `ticket`, in the caller's transaction.
pub async fn add(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    user: UserId,
    now: Timestamp,
) -> Result<()> {
    allowed(actor, ticket, user)?;
    let (name, active) = name_of(conn, user).await?;
    if !active {
        return Err(Error::Invalid(FieldErrors::one(
            "watcher",
            format!("{name}'s account is deactivated."),
        )));
    }
    let added = sqlx::query(
        "insert into ticket_watchers (ticket_id, user_id) values ($1, $2) on conflict do nothing",
    )
    .bind(ticket.id)
    .bind(user)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if added == 0 {
        return Ok(());
    }
    record(
        conn,
        ticket.id,
        Some(actor.user_id),
        &EventData::WatcherAdded {
            user_id: user,
            user: name,
            themselves: user == actor.user_id,
        },
        now,
    )
    .await?;
    touch(conn, ticket.id, now).await
}

/// Stops `user` watching `ticket`, in the caller's transaction.
pub async fn remove(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    user: UserId,
    now: Timestamp,
) -> Result<()> {
    allowed(actor, ticket, user)?;
    let removed = sqlx::query("delete from ticket_watchers where ticket_id = $1 and user_id = $2")
        .bind(ticket.id)
        .bind(user)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if removed == 0 {
        return Ok(());
    }
    let (name, _) = name_of(conn, user).await?;
    record(
        conn,
        ticket.id,
        Some(actor.user_id),
        &EventData::WatcherRemoved {
            user_id: user,
            user: name,
            themselves: user == actor.user_id,
        },
        now,
    )
    .await?;
    touch(conn, ticket.id, now).await
}
