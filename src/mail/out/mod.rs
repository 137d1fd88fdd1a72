//! Outbound e-mail: the outbox `mail_out`. A mail is queued in the transaction of its cause
//! (a ticket event's notice, an acknowledgement, a set-password link) together with a
//! `mail_send` job; the job renders it once (`render`: Message-ID, threading headers, text and
//! HTML from `templates/mail/`), stores the bytes, and sends exactly those through the relay
//! (`send`). Owns `mail_out`, `approval_tokens` and the undeliverable mark on users.
//! See `docs/mail.md`.

mod render;
pub mod send;
pub mod tokens;

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::core::Result;
use crate::core::ids::{TicketId, UserId};
use crate::core::time::to_db;

pub use render::{check_crlf, normalise_crlf, one_line};

/// The job that renders and sends one mail (payload `{"id": <mail_out id>}`).
pub const SEND_JOB: &str = "mail_send";
/// Acknowledgements to one sender address within `ACK_WINDOW`.
pub const ACK_LIMIT: i64 = 5;
pub const ACK_WINDOW: SignedDuration = SignedDuration::from_hours(1);

/// A secret setting: never in logs nor in `Debug`.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The SMTP relay mail is handed to.
#[derive(Clone, Debug)]
pub struct Relay {
    /// `smtp://host:port` (plain; `?tls=required` for STARTTLS) or `smtps://host:port`.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// What outgoing mail needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The public URL, without a trailing slash (links in mail).
    pub base_url: String,
    /// The host of the public URL: the right-hand side of our Message-IDs.
    pub host: String,
    /// The sender when a project has no active mailbox.
    pub default_from: Option<String>,
    /// Unset: mail stays queued (the admin sees it on Mail problems).
    pub relay: Option<Relay>,
}

impl Settings {
    pub fn new(base_url: &str, default_from: Option<String>, relay: Option<Relay>) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let host = url::Url::parse(&base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".into());
        Self {
            base_url,
            host,
            default_from,
            relay,
        }
    }
}

/// The SQL truth "user `u` may be mailed" (to follow another truth with `and`): not marked
/// undeliverable, not one of our own mailbox addresses.
pub(crate) const DELIVERABLE: &str = " and u.undeliverable_at is null
    and not exists (select 1 from mailboxes ob where ob.address = lower(u.email))";

/// The mail of a notice, as `notifications` hands it down: the outbox `kind` (which template
/// renders it), what happened (`text`), and whether only those who may read the ticket's
/// internal data receive it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoticeMail<'a> {
    pub kind: &'static str,
    pub text: &'a str,
    pub internal: bool,
}

/// Appends `, m as (…), j as (…)` to the statement of `notifications::push_fan_out`: `mail`
/// (about the event whose id is the SQL `event`) for each of its `recipients` (a CTE of
/// `user_id`, `email`, `by_mail`) who wants it by e-mail, with its send job.
pub(crate) fn push_notice_mails(
    qb: &mut QueryBuilder<Postgres>,
    ticket: TicketId,
    event: &str,
    mail: NoticeMail<'_>,
    now: Timestamp,
) {
    qb.push(
        ", m as (
         insert into mail_out (id, ticket_id, user_id, to_address, kind, event_id, data, internal,
                               created_at)
         select gen_random_uuid(), ",
    );
    qb.push_bind(ticket)
        .push(", user_id, email, ")
        .push_bind(mail.kind)
        .push(format_args!(", {event}, "))
        .push_bind(sqlx::types::Json(json!({ "text": mail.text })))
        .push(", ")
        .push_bind(mail.internal)
        .push(", ")
        .push_bind(to_db(now))
        .push(" from recipients where by_mail")
        .push(send_jobs());
}

/// Queues the acknowledgement of a ticket opened by `user`'s mail (`answers`: its
/// Message-ID), unless the address had `ACK_LIMIT` acknowledgements within `ACK_WINDOW`, is
/// undeliverable or is ours. True when queued.
pub async fn queue_ack(
    conn: &mut PgConnection,
    ticket: TicketId,
    user: UserId,
    answers: Option<&str>,
    now: Timestamp,
) -> Result<bool> {
    let since = now.saturating_sub(ACK_WINDOW).unwrap_or(now);
    let id: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "with m as (
         insert into mail_out (id, ticket_id, user_id, to_address, kind, answers, created_at)
         select gen_random_uuid(), $1, u.id, u.email, 'ack', $3, $4 from users u
         where u.id = $2 and u.active {DELIVERABLE}
           and (select count(*) from mail_out a
                where a.kind = 'ack' and lower(a.to_address) = lower(u.email)
                  and a.created_at > $5) < $6
         {} select id from m",
        send_jobs()
    )))
    .bind(ticket)
    .bind(user)
    .bind(answers)
    .bind(to_db(now))
    .bind(to_db(since))
    .bind(ACK_LIMIT)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.is_some())
}

/// Queues a set-password link for `user`. False when the user may not be mailed.
pub async fn queue_set_password(
    conn: &mut PgConnection,
    user: UserId,
    link: &str,
    now: Timestamp,
) -> Result<bool> {
    let id: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "with m as (
         insert into mail_out (id, user_id, to_address, kind, data, created_at)
         select gen_random_uuid(), u.id, u.email, 'set_password', $2, $3 from users u
         where u.id = $1 and u.active {DELIVERABLE}
         {} select id from m",
        send_jobs()
    )))
    .bind(user)
    .bind(sqlx::types::Json(json!({ "link": link })))
    .bind(to_db(now))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.is_some())
}

/// Ends a `with m as (insert into mail_out … ` opened by the caller: the insert returns its
/// mails and each gets its send job (the mail id is the idempotency key) in the same
/// statement; the caller adds its final `select`. The job loops wake when it commits (the
/// `jobs` trigger).
fn send_jobs() -> String {
    format!(
        " returning id, created_at),
         j as (insert into jobs (kind, payload, idempotency_key, run_at, created_at)
               select '{SEND_JOB}', jsonb_build_object('id', m.id), '{SEND_JOB}:' || m.id,
                      m.created_at, m.created_at
               from m
               on conflict (idempotency_key) do nothing)"
    )
}

/// Was one of `message_ids` a mail of ours to `address`?
pub async fn sent_to(
    conn: &mut PgConnection,
    message_ids: &[String],
    address: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from mail_out
                        where message_id = any($1) and lower(to_address) = lower($2))",
    )
    .bind(message_ids)
    .bind(address.trim())
    .fetch_one(conn)
    .await?)
}

/// Marks the account with this address undeliverable (a permanent bounce); returns whether
/// one was marked now.
pub async fn mark_undeliverable(
    conn: &mut PgConnection,
    address: &str,
    why: &str,
    now: Timestamp,
) -> Result<bool> {
    let why: String = one_line(why).chars().take(500).collect();
    let done = sqlx::query(
        "update users set undeliverable_at = $2, undeliverable_why = $3
         where lower(email) = lower($1) and undeliverable_at is null",
    )
    .bind(address.trim())
    .bind(to_db(now))
    .bind(&why)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Mail may go to the user again (the admin fixed the address or the mailbox).
pub async fn clear_undeliverable(conn: &mut PgConnection, user: UserId) -> Result<bool> {
    let done = sqlx::query(
        "update users set undeliverable_at = null, undeliverable_why = null
         where id = $1 and undeliverable_at is not null",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Why mail does not reach a user, when it does not.
#[derive(Debug, Clone, FromRow)]
pub struct Undeliverable {
    pub since: jiff_sqlx::Timestamp,
    pub why: Option<String>,
}

impl Undeliverable {
    pub fn when(&self) -> String {
        crate::core::time::display(self.since.to_jiff())
    }
}

pub async fn undeliverable(conn: &mut PgConnection, user: UserId) -> Result<Option<Undeliverable>> {
    Ok(sqlx::query_as(
        "select undeliverable_at as since, undeliverable_why as why from users
         where id = $1 and undeliverable_at is not null",
    )
    .bind(user)
    .fetch_optional(conn)
    .await?)
}

/// A mail not (yet) sent, for the admin.
#[derive(Debug, Clone, FromRow)]
pub struct Waiting {
    pub to_address: String,
    pub kind: String,
    pub subject: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: jiff_sqlx::Timestamp,
}

impl Waiting {
    pub fn when(&self) -> String {
        crate::core::time::display(self.created_at.to_jiff())
    }
}

/// Mail still queued or failed, newest first, at most `limit`.
pub async fn waiting(conn: &mut PgConnection, limit: i64) -> Result<Vec<Waiting>> {
    Ok(sqlx::query_as(
        "select to_address, kind, subject, status, attempts, last_error, created_at
         from mail_out where status <> 'sent' order by created_at desc limit $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
