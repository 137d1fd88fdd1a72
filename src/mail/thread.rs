//! Which ticket a message belongs to. In order: a Message-ID it answers (`In-Reply-To`, then
//! `References` newest first) that is known in `mail_thread_ids`; then a `[KEY-n]` subject
//! tag, only when the sender takes part in that ticket; else none (a new ticket).
//!
//! `mail_thread_ids` is a view over the Message-IDs of stored incoming mail, of our own sent
//! mail (`mail_out`) and of the root ids our mail referenced; `internal` says the id is of a
//! mail that told of an internal note.

use sqlx::PgConnection;

use crate::core::Result;
use crate::core::ids::{TicketId, TicketKey, UserId};

/// A ticket a message answers, with the reason in words for the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub ticket: TicketId,
    pub why: String,
    /// The message answered was our mail about an internal note.
    pub internal: bool,
}

/// The first of `answers` (in their order) that belongs to a ticket's thread.
pub async fn by_message_ids(
    conn: &mut PgConnection,
    answers: &[(String, &'static str)],
) -> Result<Option<Match>> {
    if answers.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = answers.iter().map(|(id, _)| id.clone()).collect();
    let found: Vec<(String, TicketId, bool)> = sqlx::query_as(
        "select distinct on (message_id) message_id, ticket_id, internal from mail_thread_ids
         where message_id = any($1) order by message_id, internal desc",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok(answers.iter().find_map(|(id, header)| {
        found
            .iter()
            .find(|(known, _, _)| known == id)
            .map(|(_, ticket, internal)| Match {
                ticket: *ticket,
                why: format!("{header} <{id}>"),
                internal: *internal,
            })
    }))
}

/// The ticket a subject tag names, when `sender` is its requester, assignee, a watcher or an
/// approver: the relation is the reason. A tag alone proves nothing (anyone can type it).
pub async fn by_tag(
    conn: &mut PgConnection,
    key: &TicketKey,
    sender: UserId,
) -> Result<Option<Match>> {
    let row: Option<(TicketId, Option<String>)> = sqlx::query_as(
        "select t.id,
                case when t.requester_id = $3 then 'requester'
                     when t.assignee_id = $3 then 'assignee'
                     when exists (select 1 from ticket_watchers w
                                  where w.ticket_id = t.id and w.user_id = $3) then 'watcher'
                     when exists (select 1 from approval_rounds ar
                                  join approval_requests aq on aq.round_id = ar.id
                                  where ar.ticket_id = t.id and aq.approver_id = $3) then 'approver'
                end
         from tickets t join projects p on p.id = t.project_id
         where p.key = $1 and t.number = $2",
    )
    .bind(key.project.as_str())
    .bind(key.number)
    .bind(sender)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((ticket, Some(relation))) => Some(Match {
            ticket,
            why: format!("subject tag [{key}], sender is {relation}"),
            internal: false,
        }),
        _ => None,
    })
}
