//! Where a message lands once its sender and thread are known: a new ticket, a reply on one
//! (or, when that one is done, a new ticket following it up), or a delivery report on the
//! ticket whose mail it returns; with the message's files and its `mail_received` entry.

use jiff::Timestamp;
use sqlx::PgConnection;

use crate::core::Result;
use crate::core::ids::TicketId;
use crate::engine::policy::Actor;
use crate::mail::parse::{self, Parsed};
use crate::mail::{Mailbox, out, thread};
use crate::tickets::attachments::{self, Upload};
use crate::tickets::conversation::{self, Answered};
use crate::tickets::{self, EventData, NewTicket, ProcessChoice, Ticket, Visibility};

/// What processing decided, before it is written on the row.
pub(super) enum Done {
    Ticket {
        new: bool,
        ticket: TicketId,
        key: String,
        why: String,
    },
    Ignored(String),
    Bounce(Option<(TicketId, String)>, String),
    Failed(String),
}

/// What handling one message needs throughout.
pub(super) struct Input<'a> {
    pub actor: &'a Actor,
    pub mailbox: &'a Mailbox,
    pub parsed: &'a Parsed,
    pub mail: i64,
    /// A larger attachment is left out (and said so in the history).
    pub attachment_max_bytes: usize,
    /// The reply becomes an internal note (it answers an internal-note mail).
    pub internal: bool,
    pub now: Timestamp,
}

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A new ticket from the message (`follow_up`: the closed one it answers).
pub(super) async fn open(
    conn: &mut PgConnection,
    input: &Input<'_>,
    why: String,
    follow_up: Option<TicketId>,
) -> Result<Done> {
    let Input {
        actor,
        mailbox,
        parsed,
        now,
        ..
    } = *input;
    let new = NewTicket {
        project_id: Some(mailbox.project_id),
        process: mailbox
            .process_id
            .map_or(ProcessChoice::Default, ProcessChoice::Id),
        title: clip(&parse::title_of(&parsed.subject), tickets::TITLE_MAX),
        description: clip(&parsed.text, tickets::TEXT_MAX),
        follow_up,
        ..NewTicket::default()
    };
    let filed = tickets::create(conn, actor, &new, now).await?;
    let mut why = if parsed.files.is_empty() {
        why
    } else {
        let ticket = tickets::find_for_change(conn, actor, &filed.key).await?;
        attach(conn, input, &ticket, None, why).await?
    };
    // Automatic mail never gets here (ignored above), so a person wrote it: acknowledge.
    if !out::queue_ack(
        conn,
        filed.id,
        actor.user_id,
        parsed.message_id.as_deref(),
        now,
    )
    .await?
    {
        why = format!("{why}; no acknowledgement (rate limit or undeliverable)");
    }
    received(conn, input, filed.id, &why).await?;
    Ok(Done::Ticket {
        new: true,
        ticket: filed.id,
        key: filed.key.to_string(),
        why,
    })
}

/// Adds the message to `ticket`: a public comment, moving a ticket waiting for the sender
/// back to work, reopening a resolved one within its window, or else (closed, or too late)
/// a new follow-up ticket linked to it.
pub(super) async fn reply(
    conn: &mut PgConnection,
    input: &Input<'_>,
    mut ticket: Ticket,
    mut why: String,
) -> Result<Done> {
    let Input {
        actor,
        parsed,
        now,
        internal,
        ..
    } = *input;
    if let Some(into) = ticket.merged_into_id {
        let target = tickets::find_for_change_by_id(conn, actor, into).await?;
        why = format!("{why}, {} was merged into {}", ticket.key(), target.key());
        ticket = target;
    }
    let body = clip(&parse::strip_quoted(&parsed.text), tickets::TEXT_MAX);
    let body = if body.trim().is_empty() {
        "(no text)".to_owned()
    } else {
        body
    };
    let visibility = if internal {
        Visibility::Internal
    } else {
        Visibility::Public
    };
    let event = match conversation::answer(conn, actor, &ticket, &body, visibility, now).await? {
        Answered::Comment(event) => Some(event),
        Answered::Moved(key) => {
            why = format!("{why}, took “{key}”");
            None
        }
        Answered::FollowUp => return follow_up(conn, input, &ticket, why).await,
    };
    let why = attach(conn, input, &ticket, event, why).await?;
    received(conn, input, ticket.id, &why).await?;
    Ok(Done::Ticket {
        new: false,
        ticket: ticket.id,
        key: ticket.key(),
        why,
    })
}

/// A new ticket linked to a closed one (or one resolved too long ago to reopen).
async fn follow_up(
    conn: &mut PgConnection,
    input: &Input<'_>,
    earlier: &Ticket,
    why: String,
) -> Result<Done> {
    let why = format!("{why}; {} is closed: new follow-up", earlier.key());
    Box::pin(open(conn, input, why, Some(earlier.id))).await
}

/// Files taken from one message; each costs a few writes, and a stranger can send thousands.
const MAX_FILES: usize = 50;

/// Stores the message's files on the ticket (with the comment `event` when there is one);
/// files over the limit are left out and named in the answered reason.
async fn attach(
    conn: &mut PgConnection,
    input: &Input<'_>,
    ticket: &Ticket,
    event: Option<i64>,
    mut why: String,
) -> Result<String> {
    let Input {
        actor,
        attachment_max_bytes,
        now,
        ..
    } = *input;
    let files = &input.parsed.files;
    if files.len() > MAX_FILES {
        why = format!(
            "{why}; left out: {} files past the first {MAX_FILES}",
            files.len() - MAX_FILES
        );
    }
    for file in files.iter().take(MAX_FILES) {
        if file.data.len() > attachment_max_bytes {
            why = format!(
                "{why}; left out: {}",
                attachments::too_large_message(
                    &file.filename,
                    file.data.len(),
                    attachment_max_bytes
                )
            );
            continue;
        }
        let upload = Upload {
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            data: file.data.clone(),
        };
        attachments::add(
            conn,
            actor,
            ticket,
            &upload,
            if input.internal {
                Visibility::Internal
            } else {
                Visibility::Public
            },
            event,
            attachment_max_bytes,
            now,
        )
        .await?;
    }
    Ok(why)
}

async fn received(
    conn: &mut PgConnection,
    input: &Input<'_>,
    ticket: TicketId,
    why: &str,
) -> Result<()> {
    tickets::record(
        conn,
        ticket,
        Some(input.actor.user_id),
        &EventData::MailReceived {
            mail_id: input.mail,
            why: why.to_owned(),
        },
        input.now,
    )
    .await
}

/// A delivery report: recorded on the ticket whose mail it returns, never a new ticket.
pub(super) async fn bounce(
    conn: &mut PgConnection,
    mail: i64,
    report: &parse::Report,
    now: Timestamp,
) -> Result<Done> {
    let answers: Vec<(String, &'static str)> = report
        .original_ids
        .iter()
        .map(|id| (id.clone(), "returned Message-ID"))
        .collect();
    let Some(m) = thread::by_message_ids(conn, &answers).await? else {
        return Ok(Done::Bounce(
            None,
            "delivery report for a message we do not know".into(),
        ));
    };
    let ticket = tickets::find_for_system(conn, m.ticket).await?;
    tickets::record(
        conn,
        ticket.id,
        None,
        &EventData::MailBounced {
            mail_id: mail,
            recipient: report.recipient.clone(),
            status: report.status.clone(),
            diagnostic: report.diagnostic.clone(),
            permanent: report.permanent(),
        },
        now,
    )
    .await?;
    tickets::touch(conn, ticket.id, now).await?;
    let mut why = format!("delivery report, {}", m.why);
    // A permanent failure of a mail we sent to that very address: no more mail to it until
    // an admin clears the mark. (A report naming only someone else's Message-ID marks nobody.)
    if report.permanent()
        && let Some(recipient) = &report.recipient
        && out::sent_to(conn, &report.original_ids, recipient).await?
    {
        let reason = format!(
            "{} {}",
            report.status.as_deref().unwrap_or(""),
            report
                .diagnostic
                .as_deref()
                .unwrap_or("permanent delivery failure")
        );
        if out::mark_undeliverable(conn, recipient, &reason, now).await? {
            why = format!("{why}; {recipient} marked undeliverable");
        }
    }
    Ok(Done::Bounce(Some((ticket.id, ticket.key())), why))
}
