//! The job loop every app instance runs: once a minute it enqueues the periodic sweep and one
//! IMAP poll per active account (each once per minute across all instances, by idempotency
//! key), then works off due jobs until none is left. Several instances share the queue through `claim`'s `SKIP LOCKED`.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::watch;

use super::{Job, claim, complete, enqueue, fail};
use crate::core::Result;
use crate::core::ids::MailboxId;
use crate::core::time::Clock;
use crate::mail::{Limits, imap};
use crate::tickets::sweeps;

/// Records SLA breaches and auto-closes resolved tickets.
pub const TICKET_SWEEP: &str = "ticket_sweep";
/// Fetches new mail of one IMAP account (payload: `mailbox_id`).
pub const IMAP_POLL: &str = "imap_poll";
const KINDS: &[&str] = &[TICKET_SWEEP, IMAP_POLL];
const LEASE: SignedDuration = SignedDuration::from_mins(5);

/// Runs until `stop` turns true, waking every `every`.
pub async fn run(
    pool: PgPool,
    clock: Arc<dyn Clock>,
    limits: Limits,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = tick(&pool, clock.as_ref(), limits).await {
            tracing::warn!(error = %e, "job loop");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One round: schedule what is periodic, then run what is due.
pub async fn tick(pool: &PgPool, clock: &dyn Clock, limits: Limits) -> Result<usize> {
    let now = clock.now();
    let minute = now.as_second().div_euclid(60);
    let mut conn = pool.acquire().await?;
    enqueue(
        &mut conn,
        TICKET_SWEEP,
        &json!({}),
        Some(&format!("{TICKET_SWEEP}:{minute}")),
        now,
        now,
    )
    .await?;
    for mailbox in imap::due(&mut conn).await? {
        enqueue(
            &mut conn,
            IMAP_POLL,
            &json!({ "mailbox_id": mailbox }),
            Some(&format!("{IMAP_POLL}:{mailbox}:{minute}")),
            now,
            now,
        )
        .await?;
    }
    drop(conn);
    let mut ran = 0;
    while let Some(job) = claim(pool, KINDS, clock.now(), LEASE).await? {
        let now = clock.now();
        match perform(pool, &job, limits, now).await {
            Ok(()) => complete(pool, job.id, now).await?,
            Err(e) => {
                tracing::warn!(job = job.id, kind = %job.kind, error = %e, "job failed");
                fail(pool, &job, &e.to_string(), now).await?;
            }
        }
        ran += 1;
    }
    Ok(ran)
}

async fn perform(pool: &PgPool, job: &Job, limits: Limits, now: jiff::Timestamp) -> Result<()> {
    match job.kind.as_str() {
        TICKET_SWEEP => sweeps::sweep(pool, now).await.map(drop),
        IMAP_POLL => {
            let mailbox: MailboxId = serde_json::from_value(job.payload.0["mailbox_id"].clone())
                .map_err(|e| {
                    crate::core::Error::Internal(anyhow::anyhow!("imap_poll payload: {e}"))
                })?;
            imap::poll(pool, mailbox, limits, now).await.map(drop)
        }
        other => Err(crate::core::Error::Internal(anyhow::anyhow!(
            "no runner for job kind {other}"
        ))),
    }
}
