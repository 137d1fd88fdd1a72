//! The job loop every app instance runs: once a minute it enqueues the periodic sweep (tickets:
//! SLA breaches, auto-close; people: expired sessions and sign-in failures) and one
//! IMAP poll per active account (each once per minute across all instances, by idempotency
//! key), then works off due jobs until none is left. Several instances share the queue
//! through `claim`'s `SKIP LOCKED`.
//!
//! Besides its period, the loop wakes when a transaction that added jobs commits (`LISTEN`
//! on `jobs::WAKE_CHANNEL`; every instance hears it, one claims each job), so mail
//! leaves within a moment. Without a relay configured, mail jobs are not claimed: the mail
//! stays queued.

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
use crate::mail::out::{self, Settings};
use crate::mail::{Limits, imap};
use crate::people::{self, Retention};
use crate::tickets::sweeps;

/// The periodic sweep: records SLA breaches, auto-closes resolved tickets, and deletes expired
/// sessions and sign-in failures past their window.
pub const TICKET_SWEEP: &str = "ticket_sweep";
/// Fetches new mail of one IMAP account (payload: `mailbox_id`).
pub const IMAP_POLL: &str = "imap_poll";
const LEASE: SignedDuration = SignedDuration::from_mins(5);

/// Runs until `stop` turns true, waking every `every` and whenever jobs were added.
pub async fn run(
    pool: PgPool,
    clock: Arc<dyn Clock>,
    limits: Limits,
    retention: Retention,
    every: Duration,
    mail: Settings,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener = listen(&pool).await;
    // The minute whose periodic jobs are queued: a wake-up for mail within the same minute
    // goes straight to the work.
    let mut scheduled = None;
    loop {
        let minute = minute_of(clock.now());
        if scheduled != Some(minute) {
            match schedule(&pool, clock.now()).await {
                Ok(()) => scheduled = Some(minute),
                Err(e) => tracing::warn!(error = %e, "job loop: scheduling"),
            }
        }
        if let Err(e) = work(&pool, clock.as_ref(), limits, retention, Some(&mail)).await {
            tracing::warn!(error = %e, "job loop");
        }
        let woken = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(drop),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            got = woken => {
                if got.is_err() {
                    // The connection broke: listen again (the period still runs meanwhile).
                    listener = listen(&pool).await;
                }
            }
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn listen(pool: &PgPool) -> Option<sqlx::postgres::PgListener> {
    let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "job loop: cannot listen for wake-ups");
            return None;
        }
    };
    match listener.listen(super::WAKE_CHANNEL).await {
        Ok(()) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "job loop: cannot listen for wake-ups");
            None
        }
    }
}

/// One round without mail sending (see `tick_with`).
pub async fn tick(pool: &PgPool, clock: &dyn Clock, limits: Limits) -> Result<usize> {
    tick_with(pool, clock, limits, None).await
}

/// One round: schedule what is periodic, then run what is due. Mail is sent only with
/// `mail` settings that name a relay. The sweep keeps sessions and sign-in failures as long as
/// the default configuration does (tests run with it; the server's `run` takes its own).
pub async fn tick_with(
    pool: &PgPool,
    clock: &dyn Clock,
    limits: Limits,
    mail: Option<&Settings>,
) -> Result<usize> {
    schedule(pool, clock.now()).await?;
    let retention = crate::config::Config::default().retention();
    work(pool, clock, limits, retention, mail).await
}

fn minute_of(now: jiff::Timestamp) -> i64 {
    now.as_second().div_euclid(60)
}

/// Queues this minute's periodic jobs: the sweep and one poll per IMAP account. Each once per
/// minute across all instances, by idempotency key.
async fn schedule(pool: &PgPool, now: jiff::Timestamp) -> Result<()> {
    let minute = minute_of(now);
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
    Ok(())
}

/// Runs due jobs until none is left; returns how many ran.
async fn work(
    pool: &PgPool,
    clock: &dyn Clock,
    limits: Limits,
    retention: Retention,
    mail: Option<&Settings>,
) -> Result<usize> {
    let kinds: &[&str] = match mail {
        Some(Settings { relay: Some(_), .. }) => &[TICKET_SWEEP, IMAP_POLL, out::SEND_JOB],
        _ => &[TICKET_SWEEP, IMAP_POLL],
    };
    let mut ran = 0;
    while let Some(job) = claim(pool, kinds, clock.now(), LEASE).await? {
        let now = clock.now();
        match perform(pool, limits, retention, mail, &job, now).await {
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

async fn perform(
    pool: &PgPool,
    limits: Limits,
    retention: Retention,
    mail: Option<&Settings>,
    job: &Job,
    now: jiff::Timestamp,
) -> Result<()> {
    match (job.kind.as_str(), mail) {
        (TICKET_SWEEP, _) => {
            // Both halves run even when one fails; the job reports the first failure.
            let people = people::sweep(pool, now, retention).await.map(drop);
            let tickets = sweeps::sweep(pool, now).await.map(drop);
            people.and(tickets)
        }
        (IMAP_POLL, _) => {
            let mailbox: MailboxId = serde_json::from_value(job.payload.0["mailbox_id"].clone())
                .map_err(|e| {
                    crate::core::Error::Internal(anyhow::anyhow!("imap_poll payload: {e}"))
                })?;
            imap::poll(pool, mailbox, limits, now).await.map(drop)
        }
        (out::SEND_JOB, Some(mail)) => match out::send::perform(pool, mail, job, now).await? {
            out::send::Sent::Failed(why) => {
                tracing::warn!(job = job.id, %why, "mail not delivered (permanent)");
                Ok(())
            }
            out::send::Sent::Sent | out::send::Sent::Nothing => Ok(()),
        },
        (other, _) => Err(crate::core::Error::Internal(anyhow::anyhow!(
            "no runner for job kind {other}"
        ))),
    }
}
