//! Comments on a ticket: public replies and internal notes, both `comment` events told apart
//! by `public`, and who may write which.

use jiff::Timestamp;
use sqlx::PgConnection;

use super::event_data::EventData;
use super::events::record_returning_id;
use super::ticket::{TEXT_MAX, Ticket, check_text, touch};
use crate::core::ids::{TicketId, UserId};
use crate::core::markdown;
use crate::core::{Error, FieldErrors, Result};
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

/// A public comment written as part of another change (a transition, a merge), which
/// marks the ticket itself.
pub(super) async fn record_comment(
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
