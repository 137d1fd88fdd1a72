//! The conversation on a ticket: public replies and internal notes (both `comment` events,
//! told apart by `public`), the files that come with them, and noticing what other people
//! changed while someone was writing. Canned responses are in `canned`, files in
//! `attachments`, watchers in `watchers`.

use jiff::Timestamp;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::attachments::{self, Upload};
use super::{Event, EventData, Ticket, add_comment};
use crate::core::ids::TicketId;
use crate::core::{Error, Result};
use crate::engine::policy::{self, Action, Actor, Target};

/// Who a comment or file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Visibility {
    /// A reply: everyone who can see the ticket, the requester first.
    #[default]
    Public,
    /// A note for those who may see internal data (`Action::SeeInternal`).
    Internal,
}

impl Visibility {
    /// `internal` is a note; anything else a public reply.
    pub fn parse(raw: &str) -> Self {
        if raw == "internal" {
            Visibility::Internal
        } else {
            Visibility::Public
        }
    }

    /// What the actor must be allowed to post it.
    pub fn action(self) -> Action {
        match self {
            Visibility::Public => Action::CommentPublic,
            Visibility::Internal => Action::SeeInternal,
        }
    }

    pub fn is_internal(self) -> bool {
        self == Visibility::Internal
    }
}

/// What the writer's page showed: the ticket's version and the newest event they could see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub version: Option<i32>,
    pub last_event: Option<i64>,
}

/// What the actor can see happened after event `after`, done by other people (not the
/// system, not the actor) and worth interrupting a reply for: not watcher changes.
pub async fn changes_since(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: TicketId,
    after: i64,
    internal: bool,
) -> Result<Vec<Event>> {
    let rows: Vec<(i64, Option<String>, Json<EventData>, jiff_sqlx::Timestamp)> = sqlx::query_as(
        "select e.id, u.display_name, e.data, e.created_at
         from ticket_events e left join users u on u.id = e.actor_id
         where e.ticket_id = $1 and e.id > $2 and e.actor_id is not null and e.actor_id <> $3
           and e.kind not in ('watcher_added', 'watcher_removed')
         order by e.id
         limit 50",
    )
    .bind(ticket)
    .bind(after)
    .bind(actor.user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, data, _)| internal || !data.0.is_internal())
        .map(|(id, actor_name, data, created_at)| Event {
            id,
            actor_name,
            data: data.0,
            created_at: created_at.to_jiff(),
            from: None,
        })
        .collect())
}

pub const STALE_REPLY: &str = "Someone else changed this ticket while you were writing. Your text is kept below: read what changed, then send it anyway or edit it first.";

/// Refuses a reply written on a page that is out of date: the version moved and (when the
/// page said which event it showed last) someone else did something the actor can see.
pub async fn check_seen(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    seen: Seen,
) -> Result<()> {
    match seen.version {
        Some(v) if v != ticket.version => {}
        _ => return Ok(()),
    }
    let internal =
        policy::decide(actor, Action::SeeInternal, Target::Ticket(&ticket.facts())).allowed();
    let stale = match seen.last_event {
        Some(after) => !changes_since(conn, actor, ticket.id, after, internal)
            .await?
            .is_empty(),
        None => true,
    };
    if stale {
        Err(Error::Conflict(STALE_REPLY.into()))
    } else {
        Ok(())
    }
}

/// A reply or note as sent from the ticket page.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub body: String,
    pub visibility: Visibility,
    pub files: Vec<Upload>,
    pub seen: Seen,
}

/// Posts a reply or an internal note with its files, in the caller's transaction (`ticket`
/// loaded with `find_for_change`). Files alone, without text, are allowed.
pub async fn reply(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    reply: &Reply,
    max_bytes: usize,
    now: Timestamp,
) -> Result<()> {
    if !policy::decide(
        actor,
        reply.visibility.action(),
        Target::Ticket(&ticket.facts()),
    )
    .allowed()
    {
        return Err(Error::Forbidden);
    }
    check_seen(conn, actor, ticket, reply.seen).await?;
    let event = if reply.body.trim().is_empty() && !reply.files.is_empty() {
        None
    } else {
        Some(add_comment(conn, actor, ticket, &reply.body, reply.visibility, now).await?)
    };
    for file in &reply.files {
        attachments::add(
            conn,
            actor,
            ticket,
            file,
            reply.visibility,
            event,
            max_bytes,
            now,
        )
        .await?;
    }
    Ok(())
}
