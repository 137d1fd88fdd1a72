//! The `mail_send` job: render the mail once (stored), then hand exactly those bytes to the
//! relay with lettre. A 5xx answer is permanent (the mail is `failed`, no retry); a 4xx
//! answer or a network error is retried with the job queue's backoff, until its attempts are
//! used up. Mail carrying a secret link (approval, set-password) has its bytes dropped once
//! sent.

use std::time::Duration;

use jiff::Timestamp;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Relay, Settings, check_crlf, render};
use crate::core::time::to_db;
use crate::core::{Error, Result};
use crate::jobs::Job;

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Sent,
    /// Nothing to do: sent before, failed for good, or the row is gone.
    Nothing,
    /// Refused for good (5xx, or undeliverable): no retry.
    Failed(String),
}

/// A mail row as the job reads it.
#[derive(sqlx::FromRow)]
struct Queued {
    status: String,
    raw: Option<Vec<u8>>,
    to_address: String,
    from_address: Option<String>,
    undeliverable: bool,
}

/// The job's work. `Err` means "try again later" (the queue's backoff).
pub async fn perform(
    pool: &PgPool,
    settings: &Settings,
    job: &Job,
    now: Timestamp,
) -> Result<Sent> {
    let id: Uuid = job
        .payload
        .0
        .get("id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("mail_send job without a mail id")))?;
    let Some(relay) = &settings.relay else {
        return Err(Error::Internal(anyhow::anyhow!("no smtp_relay configured")));
    };
    let mut tx = pool.begin().await?;
    let row: Option<Queued> = sqlx::query_as(
        "select m.status, m.raw, m.to_address, m.from_address,
                coalesce(u.undeliverable_at is not null, false) as undeliverable
         from mail_out m left join users u on u.id = m.user_id where m.id = $1
         for update of m",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(Queued {
        status,
        raw,
        to_address: to,
        from_address: from,
        undeliverable,
    }) = row
    else {
        return Ok(Sent::Nothing);
    };
    if status != "queued" {
        return Ok(Sent::Nothing);
    }
    if undeliverable {
        let why = "the recipient is marked undeliverable".to_owned();
        give_up(&mut tx, id, &why).await?;
        tx.commit().await?;
        return Ok(Sent::Failed(why));
    }
    let (raw, from) = match (raw, from) {
        (Some(raw), Some(from)) => (raw, from),
        _ => match render::render(&mut tx, settings, id, now).await {
            Ok(r) => {
                sqlx::query(
                    "update mail_out set message_id = $2, in_reply_to = $3, \"references\" = $4,
                            thread_root = $5, subject = $6, from_address = $7, raw = $8
                     where id = $1",
                )
                .bind(id)
                .bind(&r.message_id)
                .bind(&r.in_reply_to)
                .bind(&r.references)
                .bind(&r.thread_root)
                .bind(&r.subject)
                .bind(&r.from_address)
                .bind(&r.raw)
                .execute(&mut *tx)
                .await?;
                (r.raw, r.from_address)
            }
            Err(e) => {
                drop(tx);
                return give_up_alone(pool, id, format!("could not be rendered: {e}")).await;
            }
        },
    };
    // Rendered bytes are kept even when sending fails now: a retry sends the same mail.
    tx.commit().await?;
    if !check_crlf(&raw) {
        return give_up_alone(pool, id, "stored bytes have a bare CR or LF".to_owned()).await;
    }
    let result = deliver(relay, &from, &to, &raw).await;
    let mut tx = pool.begin().await?;
    let outcome = match result {
        Ok(()) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "update mail_out set status = 'sent', sent_at = $2, attempts = attempts + 1,
                        last_error = null, {SCRUB}
                 where id = $1"
            )))
            .bind(id)
            .bind(to_db(now))
            .execute(&mut *tx)
            .await?;
            Ok(Sent::Sent)
        }
        Err(Delivery::Permanent(why)) => {
            give_up(&mut tx, id, &why).await?;
            Ok(Sent::Failed(why))
        }
        Err(Delivery::Temporary(why)) => {
            let last = job.attempts >= job.max_attempts;
            sqlx::query(
                "update mail_out set attempts = attempts + 1, last_error = $2,
                        status = case when $3 then 'failed' else status end
                 where id = $1",
            )
            .bind(id)
            .bind(&why)
            .bind(last)
            .execute(&mut *tx)
            .await?;
            Err(Error::Internal(anyhow::anyhow!("mail {id}: {why}")))
        }
    };
    tx.commit().await?;
    outcome
}

/// What a mail keeps once it has left or failed for good: approval and set-password mails
/// carry secret links, so their bytes (and the set-password data) are dropped.
const SCRUB: &str = "raw = case when kind in ('approval', 'set_password') then null else raw end,
     data = case when kind = 'set_password' then '{}' else data end";

/// `give_up` in a transaction of its own.
async fn give_up_alone(pool: &PgPool, id: Uuid, why: String) -> Result<Sent> {
    let mut tx = pool.begin().await?;
    give_up(&mut tx, id, &why).await?;
    tx.commit().await?;
    Ok(Sent::Failed(why))
}

async fn give_up(conn: &mut sqlx::PgConnection, id: Uuid, why: &str) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update mail_out set status = 'failed', attempts = attempts + 1, last_error = $2, {SCRUB}
         where id = $1"
    )))
    .bind(id)
    .bind(why)
    .execute(conn)
    .await?;
    Ok(())
}

enum Delivery {
    Permanent(String),
    Temporary(String),
}

/// One SMTP transaction with the relay.
async fn deliver(relay: &Relay, from: &str, to: &str, raw: &[u8]) -> Result<(), Delivery> {
    let from: Address = from
        .parse()
        .map_err(|e| Delivery::Permanent(format!("bad sender address {from}: {e}")))?;
    let to: Address = to
        .parse()
        .map_err(|e| Delivery::Permanent(format!("bad recipient address {to}: {e}")))?;
    let envelope = lettre::address::Envelope::new(Some(from), vec![to])
        .map_err(|e| Delivery::Permanent(e.to_string()))?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&relay.url)
        .map_err(|e| Delivery::Temporary(format!("relay: {e}")))?
        .timeout(Some(Duration::from_secs(30)));
    if let (Some(user), Some(password)) = (&relay.username, &relay.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.0.clone()));
    }
    let transport = builder.build();
    match transport.send_raw(&envelope, raw).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(Delivery::Permanent(e.to_string())),
        Err(e) => Err(Delivery::Temporary(e.to_string())),
    }
}
