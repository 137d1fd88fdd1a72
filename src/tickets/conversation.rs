//! The conversation on a ticket: replies and internal notes with the files that come with
//! them, what a reply means for the ticket's workflow (`answer`), and noticing what other
//! people changed while someone was writing. Comments themselves are in `comments`, canned
//! responses in `canned`, files in `attachments`, watchers in `watchers`.

use jiff::Timestamp;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::attachments::{self, Upload};
use super::comments::{Visibility, add_comment};
use super::event_data::EventData;
use super::events::Event;
use super::flow;
use super::ticket::{Ticket, acting};
use crate::core::ids::TicketId;
use crate::core::{Error, Result};
use crate::engine::policy::{self, Action, Actor, Target};
use crate::engine::workflow::ReplyMeans;

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

/// What became of a reply `answer` took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// Stored as a comment: its event (for the files that came with it).
    Comment(i64),
    /// It took this transition, the reply as the transition's comment.
    Moved(String),
    /// The ticket is done and this reply does not reopen it: nothing was written, and the
    /// reply belongs on a new ticket that follows this one up.
    FollowUp,
}

/// Takes a reply to `ticket` (loaded with `find_for_change`) as its workflow says a reply
/// means (`Definition::reply_means`): back to work from waiting, reopened from resolved or
/// closed, else a comment. An internal note never moves the ticket. Mail replies come here;
/// the ticket page can too, as any reply from the requester or staff.
pub async fn answer(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    body: &str,
    visibility: Visibility,
    now: Timestamp,
) -> Result<Answered> {
    let means = match visibility {
        Visibility::Internal => ReplyMeans::Comment,
        Visibility::Public => match ticket.definition(conn).await? {
            Some(def) => def.reply_means(&ticket.snapshot(), &acting(actor, &ticket.facts())),
            None => ReplyMeans::Comment,
        },
    };
    let (transition, reopens) = match means {
        ReplyMeans::Comment => (None, false),
        ReplyMeans::Resume(key) => (Some(key), false),
        ReplyMeans::Reopen(key) => (Some(key), true),
        ReplyMeans::FollowUp => return Ok(Answered::FollowUp),
    };
    if let Some(key) = transition {
        let change = flow::Input {
            comment: body.to_owned(),
            ..flow::Input::default()
        };
        // A refusal is found before anything is written: the reply is then a comment, or,
        // on a ticket that could not be reopened, a follow-up.
        match flow::take_transition(conn, actor, ticket, &key, &change, now).await {
            Ok(()) => return Ok(Answered::Moved(key)),
            Err(Error::Invalid(_)) if reopens => return Ok(Answered::FollowUp),
            Err(Error::Invalid(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let event = add_comment(conn, actor, ticket, body, visibility, now).await?;
    Ok(Answered::Comment(event))
}
