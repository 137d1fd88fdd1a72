//! The one ingest path: store the raw message first (its own transaction), then process it in
//! a second one. Processing failures roll back and are written on the stored row (`failed`,
//! with the error), so nothing is lost and "process again" can retry. A message already
//! processed (same Message-ID, or same bytes when it has none) is a no-op. Here a message is
//! told apart (a report, automatic mail, who sent it, which ticket it answers); what it then
//! does to tickets is in `landing`.

mod landing;

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use self::landing::{Done, Input, bounce, open, reply};
use super::sender::{self, Sender};
use super::{Mailbox, parse, thread};
use crate::core::time::to_db;
use crate::core::{Error, Result};
use crate::engine::policy::{Action, Actor, Target, decide};
use crate::tickets::attachments;
use crate::tickets::{self, Ticket};

/// How a message reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Smtp,
    Pipe,
    Imap,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Smtp => "smtp",
            Source::Pipe => "pipe",
            Source::Imap => "imap",
        }
    }
}

/// Size limits (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A larger message is stored raw and marked failed.
    pub max_bytes: usize,
    /// A larger attachment is left out (and said so in the history).
    pub attachment_max_bytes: usize,
}

/// What became of a message. `mail` is its `mail_in` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new ticket was opened.
    New { mail: i64, key: String, why: String },
    /// It was added to an existing ticket.
    Reply { mail: i64, key: String, why: String },
    /// Automatic mail (out of office, lists, loops): stored, nothing done.
    Ignored { mail: i64, why: String },
    /// A delivery report, recorded on the ticket of the returned message when it is known.
    Bounce {
        mail: i64,
        key: Option<String>,
        why: String,
    },
    /// Delivered before and already handled.
    Duplicate { mail: i64 },
    /// Could not be used; stored raw for "Mail problems".
    Failed { mail: i64, error: String },
}

/// One line for the MTA's log (the pipe prints it).
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::New { mail, key, why } => write!(f, "mail {mail}: new ticket {key} ({why})"),
            Outcome::Reply { mail, key, why } => write!(f, "mail {mail}: added to {key} ({why})"),
            Outcome::Ignored { mail, why } => write!(f, "mail {mail}: ignored ({why})"),
            Outcome::Bounce { mail, key, why } => match key {
                Some(key) => write!(f, "mail {mail}: bounce recorded on {key} ({why})"),
                None => write!(f, "mail {mail}: bounce for no known ticket ({why})"),
            },
            Outcome::Duplicate { mail } => write!(f, "mail {mail}: delivered before, nothing done"),
            Outcome::Failed { mail, error } => {
                write!(f, "mail {mail}: kept but not processed: {error}")
            }
        }
    }
}

impl Outcome {
    pub fn mail(&self) -> i64 {
        match self {
            Outcome::New { mail, .. }
            | Outcome::Reply { mail, .. }
            | Outcome::Ignored { mail, .. }
            | Outcome::Bounce { mail, .. }
            | Outcome::Duplicate { mail }
            | Outcome::Failed { mail, .. } => *mail,
        }
    }
}

/// Stores `raw` as received on `mailbox`, then processes it.
pub async fn ingest(
    pool: &PgPool,
    mailbox: &Mailbox,
    raw: &[u8],
    source: Source,
    limits: Limits,
    now: Timestamp,
) -> Result<Outcome> {
    let sha256 = Sha256::digest(raw).to_vec();
    let message_id = parse::message_id_of(raw);
    // One statement, committed on its own: the message is safe before it is looked at. A
    // second delivery of it (same Message-ID, or same bytes when it has none) inserts nothing;
    // one arriving at the same moment waits here for the first to commit.
    let conflict = match message_id {
        Some(_) => "(message_id) where message_id is not null",
        None => "(sha256) where message_id is null",
    };
    let stored: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "insert into mail_in (received_at, mailbox_id, source, raw, sha256, message_id)
         values ($1, $2, $3, $4, $5, $6)
         on conflict {conflict} do nothing returning id"
    )))
    .bind(to_db(now))
    .bind(mailbox.id)
    .bind(source.as_str())
    .bind(raw)
    .bind(&sha256)
    .bind(&message_id)
    .fetch_optional(pool)
    .await?;
    let id = match stored {
        Some(id) => id,
        None => {
            // One statement per case, each the condition of its index (a `case` over both
            // matched neither index and read every stored message).
            let (id, status): (i64, String) = match &message_id {
                Some(message_id) => {
                    sqlx::query_as("select id, status from mail_in where message_id = $1")
                        .bind(message_id)
                }
                None => sqlx::query_as(
                    "select id, status from mail_in where message_id is null and sha256 = $1",
                )
                .bind(&sha256),
            }
            .fetch_one(pool)
            .await?;
            if status == "processed" || status == "ignored" {
                return Ok(Outcome::Duplicate { mail: id });
            }
            // Stored before but not (successfully) processed: try that row again.
            id
        }
    };
    process(pool, mailbox, id, Some(raw), limits, now).await
}

/// Processes a stored message again ("process again" on Mail problems).
pub async fn reprocess(
    pool: &PgPool,
    mail: i64,
    limits: Limits,
    now: Timestamp,
) -> Result<Outcome> {
    let mut conn = pool.acquire().await?;
    let mailbox: Option<Mailbox> = sqlx::query_as(
        "select b.id, b.address, b.project_id, b.process_id, b.from_name, b.signature, b.active
         from mail_in m join mailboxes b on b.id = m.mailbox_id where m.id = $1",
    )
    .bind(mail)
    .fetch_optional(&mut *conn)
    .await?;
    drop(conn);
    let mailbox = mailbox.ok_or(Error::NotFound)?;
    process(pool, &mailbox, mail, None, limits, now).await
}

/// Processes stored message `mail`; `raw` is its text when the caller holds it already (a
/// message can be tens of megabytes: it is not read back then).
async fn process(
    pool: &PgPool,
    mailbox: &Mailbox,
    mail: i64,
    raw: Option<&[u8]>,
    limits: Limits,
    now: Timestamp,
) -> Result<Outcome> {
    let mut tx = pool.begin().await?;
    // Locked: two deliveries or a "process again" of one message run one after the other.
    let row: Option<(Option<Vec<u8>>, String)> = sqlx::query_as(
        "select case when $2 then raw end, status from mail_in where id = $1 for update",
    )
    .bind(mail)
    .bind(raw.is_none())
    .fetch_optional(&mut *tx)
    .await?;
    let (stored, status) = row.ok_or(Error::NotFound)?;
    if status == "processed" || status == "ignored" {
        return Ok(Outcome::Duplicate { mail });
    }
    let raw = raw.or(stored.as_deref()).unwrap_or_default();
    let done = match handle(&mut tx, mailbox, mail, raw, limits, now).await {
        Ok(done) => done,
        // Roll back whatever was half done; keep the message and say why. When the database
        // is gone, these fail too: the row stays `new` and the caller reports a temporary
        // failure, so the sender's server retries.
        Err(other) => {
            tx.rollback().await?;
            tx = pool.begin().await?;
            Done::Failed(describe(&other))
        }
    };
    let (status, outcome_word, ticket, why, outcome) = match done {
        Done::Ticket {
            new,
            ticket,
            key,
            why,
        } => (
            "processed",
            if new { "new" } else { "reply" },
            Some(ticket),
            why.clone(),
            if new {
                Outcome::New { mail, key, why }
            } else {
                Outcome::Reply { mail, key, why }
            },
        ),
        Done::Ignored(why) => (
            "ignored",
            "ignored",
            None,
            why.clone(),
            Outcome::Ignored { mail, why },
        ),
        Done::Bounce(found, why) => (
            if found.is_some() {
                "processed"
            } else {
                "ignored"
            },
            "bounce",
            found.as_ref().map(|(t, _)| *t),
            why.clone(),
            Outcome::Bounce {
                mail,
                key: found.map(|(_, k)| k),
                why,
            },
        ),
        Done::Failed(error) => (
            "failed",
            "failed",
            None,
            error.clone(),
            Outcome::Failed { mail, error },
        ),
    };
    sqlx::query(
        "update mail_in set status = $2, outcome = $3, ticket_id = $4, why = $5,
                error = case when $2 = 'failed' then $5 end, processed_at = $6
         where id = $1",
    )
    .bind(mail)
    .bind(status)
    .bind(outcome_word)
    .bind(ticket)
    .bind(&why)
    .bind(to_db(now))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

fn describe(error: &Error) -> String {
    match error {
        Error::Invalid(fields) => format!("refused: {fields}"),
        Error::Forbidden => "the sender may not do this".into(),
        Error::NotFound => "the ticket or account is gone".into(),
        other => other.to_string(),
    }
}

async fn handle(
    conn: &mut PgConnection,
    mailbox: &Mailbox,
    mail: i64,
    raw: &[u8],
    limits: Limits,
    now: Timestamp,
) -> Result<Done> {
    if raw.len() > limits.max_bytes {
        return Ok(Done::Failed(format!(
            "too large: {} (the limit is {})",
            attachments::human_size(raw.len() as u64),
            attachments::human_size(limits.max_bytes as u64)
        )));
    }
    let Some(parsed) = parse::parse(raw) else {
        return Ok(Done::Failed("not a readable e-mail message".into()));
    };
    if let Some(report) = &parsed.report {
        return bounce(conn, mail, report, now).await;
    }
    if let Some(why) = &parsed.auto {
        return Ok(Done::Ignored(format!("automatic message: {why}")));
    }
    let Some(from) = parsed.from.clone() else {
        return Ok(Done::Failed("no usable From address".into()));
    };
    let actor =
        match sender::identify(conn, &from, parsed.from_name.as_deref(), mailbox, now).await? {
            Sender::Account(actor) => actor,
            Sender::Ours => {
                return Ok(Done::Ignored(format!(
                    "sent from our own address {from} (loop)"
                )));
            }
            Sender::Deactivated => {
                return Ok(Done::Failed(format!(
                    "the account of {from} is deactivated"
                )));
            }
        };
    let mut note = String::new();
    let mut found = None;
    let mut internal = false;
    if let Some(m) = thread::by_message_ids(conn, &parsed.answers).await? {
        match tickets::find_for_change_by_id(conn, &actor, m.ticket).await {
            // A reply to an internal-note mail stays internal, or is not published at all.
            Ok(ticket) if m.internal => {
                if !decide(&actor, Action::SeeInternal, Target::Ticket(&ticket.facts())).allowed() {
                    return Ok(Done::Failed(format!(
                        "{} is an internal-note mail, and the sender may not write internal \
                         notes on {}: not published",
                        m.why,
                        ticket.key()
                    )));
                }
                internal = true;
                found = Some((ticket, format!("{}, internal note", m.why)));
            }
            Ok(ticket) if may_reply(&actor, &ticket) => found = Some((ticket, m.why)),
            Ok(_) | Err(Error::NotFound) => {
                note = format!("{} matched, but the sender takes no part; ", m.why);
            }
            Err(e) => return Err(e),
        }
    }
    if found.is_none()
        && let Some(key) = parse::subject_tag(&parsed.subject)
    {
        match thread::by_tag(conn, &key, actor.user_id).await? {
            Some(m) => {
                let ticket = tickets::find_for_change_by_id(conn, &actor, m.ticket).await?;
                found = Some((ticket, m.why));
            }
            None => note = format!("subject tag [{key}] ignored, sender takes no part; "),
        }
    }
    let input = Input {
        actor: &actor,
        mailbox,
        parsed: &parsed,
        mail,
        attachment_max_bytes: limits.attachment_max_bytes,
        internal,
        now,
    };
    match found {
        Some((ticket, why)) => reply(conn, &input, ticket, why).await,
        None => open(conn, &input, format!("{note}new"), None).await,
    }
}

fn may_reply(actor: &Actor, ticket: &Ticket) -> bool {
    decide(
        actor,
        Action::CommentPublic,
        Target::Ticket(&ticket.facts()),
    )
    .allowed()
}
