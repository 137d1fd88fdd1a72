//! Inbound e-mail: mailboxes (an address tied to a project and its default process), the raw
//! store `mail_in`, and the one ingest path every way in (the pipe, the SMTP listener in
//! `smtp`, IMAP polling in `imap`) feeds. Owns `mailboxes` and `mail_in`. Tickets, comments,
//! accounts and files are made through their own modules. Outbound mail (the outbox) is
//! `out`. See `docs/mail.md`.

pub mod imap;
pub mod ingest;
pub mod out;
pub mod parse;
mod sender;
pub mod smtp;
pub mod thread;

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::{MailboxId, ProcessId, ProjectId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::people::users::parse_email;

pub use ingest::{Limits, Outcome, Source, ingest, reprocess};

/// An address mail comes in on.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Mailbox {
    pub id: MailboxId,
    pub address: String,
    pub project_id: ProjectId,
    pub process_id: Option<ProcessId>,
    pub from_name: String,
    pub signature: String,
    pub active: bool,
}

/// A mailbox as an admin enters it.
#[derive(Debug, Clone, Default)]
pub struct MailboxInput {
    pub address: String,
    pub project_id: Option<ProjectId>,
    pub process_id: Option<ProcessId>,
    pub from_name: String,
    pub signature: String,
    pub active: bool,
}

const COLUMNS: &str = "id, address, project_id, process_id, from_name, signature, active";

fn check(input: &MailboxInput) -> Result<String> {
    let mut errors = FieldErrors::new();
    let address = match parse_email(&input.address, "address") {
        Ok(a) => a.to_lowercase(),
        Err(e) => {
            errors = e;
            String::new()
        }
    };
    if input.project_id.is_none() {
        errors.add("project_id", "Choose a project.");
    }
    if input.from_name.trim().chars().count() > 200 {
        errors.add("from_name", "Use at most 200 characters.");
    }
    if input.from_name.contains(['\r', '\n']) {
        errors.add("from_name", "Use one line.");
    }
    if input.signature.chars().count() > 2000 {
        errors.add("signature", "Use at most 2000 characters.");
    }
    errors.into_result()?;
    Ok(address)
}

/// Adds a mailbox; the address is kept lower-case.
pub async fn create(
    conn: &mut PgConnection,
    input: &MailboxInput,
    now: Timestamp,
) -> Result<MailboxId> {
    let id = MailboxId::new();
    save(conn, id, input, now).await?;
    Ok(id)
}

/// Changes a mailbox.
pub async fn update(
    conn: &mut PgConnection,
    id: MailboxId,
    input: &MailboxInput,
    now: Timestamp,
) -> Result<()> {
    find(conn, id).await?;
    save(conn, id, input, now).await
}

async fn save(
    conn: &mut PgConnection,
    id: MailboxId,
    input: &MailboxInput,
    now: Timestamp,
) -> Result<()> {
    let address = check(input)?;
    sqlx::query(
        "insert into mailboxes (id, address, project_id, process_id, from_name, signature, active,
                                created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         on conflict (id) do update set address = excluded.address,
             project_id = excluded.project_id, process_id = excluded.process_id,
             from_name = excluded.from_name, signature = excluded.signature,
             active = excluded.active, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(&address)
    .bind(input.project_id)
    .bind(input.process_id)
    .bind(input.from_name.trim())
    .bind(&input.signature)
    .bind(input.active)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("mailboxes_address_key", || {
        FieldErrors::one("address", "Another mailbox already has this address.")
    })
    .map_err(missing_reference(
        "project_id",
        "The project or process does not exist.",
    ))?;
    Ok(())
}

pub async fn find(conn: &mut PgConnection, id: MailboxId) -> Result<Mailbox> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from mailboxes where id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)
}

/// The active mailbox with this address (any case).
pub async fn find_by_address(conn: &mut PgConnection, address: &str) -> Result<Option<Mailbox>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from mailboxes where address = lower($1) and active"
    )))
    .bind(address.trim())
    .fetch_optional(conn)
    .await?)
}

/// Every mailbox, by address.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Mailbox>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from mailboxes order by address"
    )))
    .fetch_all(conn)
    .await?)
}

/// A stored message that could not be processed, for "Mail problems".
#[derive(Debug, Clone, FromRow)]
pub struct Problem {
    pub id: i64,
    pub received_at: jiff_sqlx::Timestamp,
    pub mailbox: Option<String>,
    pub source: String,
    pub size: i32,
    pub message_id: Option<String>,
    pub status: String,
    pub error: Option<String>,
}

impl Problem {
    pub fn when(&self) -> String {
        crate::core::time::display(self.received_at.to_jiff())
    }
}

const PROBLEM_COLUMNS: &str = "m.id, m.received_at, b.address as mailbox, m.source,
    length(m.raw) as size, m.message_id, m.status, m.error";

/// Failed messages, newest first, `limit` at a time before the cursor.
pub async fn problems(
    conn: &mut PgConnection,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Problem>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PROBLEM_COLUMNS} from mail_in m left join mailboxes b on b.id = m.mailbox_id
         where m.status = 'failed' and ($1::bigint is null or m.id < $1)
         order by m.id desc limit $2"
    )))
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// One stored message with its raw bytes.
pub async fn stored(conn: &mut PgConnection, id: i64) -> Result<(Problem, Vec<u8>)> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        problem: Problem,
        raw: Vec<u8>,
    }
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PROBLEM_COLUMNS}, m.raw from mail_in m
         left join mailboxes b on b.id = m.mailbox_id where m.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)?;
    Ok((row.problem, row.raw))
}
