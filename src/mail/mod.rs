//! Inbound e-mail: mailboxes (an address tied to a project and its default process), the raw
//! store `mail_in`, and the one ingest path every way in (pipe today; SMTP and IMAP later)
//! feeds. Owns `mailboxes` and `mail_in`. Tickets, comments, accounts and files are made
//! through their own modules. Outbound mail is not here yet. See `docs/mail.md`.

pub mod ingest;
pub mod parse;
pub mod thread;

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::{MailboxId, ProcessId, ProjectId};
use crate::core::time::to_db;
use crate::core::{FieldErrors, Result};
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

/// Adds a mailbox; the address is kept lower-case.
pub async fn create(
    conn: &mut PgConnection,
    input: &MailboxInput,
    now: Timestamp,
) -> Result<MailboxId> {
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
    errors.into_result()?;
    let id = MailboxId::new();
    sqlx::query(
        "insert into mailboxes (id, address, project_id, process_id, from_name, signature, active,
                                created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
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
    Ok(id)
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

/// Is this one of our own addresses (a mail from it is a loop)?
pub async fn is_ours(conn: &mut PgConnection, address: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from mailboxes where address = lower($1))")
            .bind(address)
            .fetch_one(conn)
            .await?,
    )
}
