//! The job loop every app instance runs, generic over what the jobs do: the caller passes a
//! [`Handlers`] table (built where the features are wired together, `crate::workers`), so the
//! queue knows no feature. Once a minute the loop enqueues the table's periodic jobs (each
//! once per minute across all instances, by idempotency key), then works off due jobs of the
//! table's kinds until none is left. Several instances share the queue through `claim`'s
//! `SKIP LOCKED`.
//!
//! Besides its period, the loop wakes when a transaction that added jobs commits (`LISTEN`
//! on `jobs::WAKE_CHANNEL`; every instance hears it, one claims each job), so work queued by
//! a request starts within a moment.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use super::{Job, claim, complete, enqueue, fail};
use crate::core::Result;
use crate::core::time::Clock;

const LEASE: SignedDuration = SignedDuration::from_mins(5);

/// A job the loop queues once a minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Periodic {
    pub kind: &'static str,
    pub payload: Value,
    /// Tells apart several jobs of one kind in a minute (e.g. one per account): part of the
    /// idempotency key `kind:scope:minute` (without it, `kind:minute`).
    pub scope: Option<String>,
}

/// The table of job kinds: which kinds this instance claims, what is periodic, and the work of
/// each kind.
pub trait Handlers: Send + Sync {
    /// The kinds claimed; jobs of other kinds stay queued (e.g. mail without a relay).
    fn kinds(&self) -> Vec<&'static str>;

    /// The periodic jobs of this minute.
    fn periodic(
        &self,
        conn: &mut PgConnection,
    ) -> impl Future<Output = Result<Vec<Periodic>>> + Send;

    /// Does one claimed job; an error retries it after the backoff.
    fn perform(
        &self,
        pool: &PgPool,
        job: &Job,
        now: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Runs until `stop` turns true, waking every `every` and whenever jobs were added.
pub async fn run<H: Handlers>(
    pool: PgPool,
    clock: Arc<dyn Clock>,
    handlers: H,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener = listen(&pool).await;
    // The minute whose periodic jobs are queued: a wake-up within the same minute goes
    // straight to the work.
    let mut scheduled = None;
    loop {
        let minute = minute_of(clock.now());
        if scheduled != Some(minute) {
            match schedule(&pool, &handlers, clock.now()).await {
                Ok(()) => scheduled = Some(minute),
                Err(e) => tracing::warn!(error = %e, "job loop: scheduling"),
            }
        }
        if let Err(e) = work(&pool, clock.as_ref(), &handlers).await {
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

/// One round of the loop: queue what is periodic, then run what is due; returns how many ran.
pub async fn tick<H: Handlers>(pool: &PgPool, clock: &dyn Clock, handlers: &H) -> Result<usize> {
    schedule(pool, handlers, clock.now()).await?;
    work(pool, clock, handlers).await
}

fn minute_of(now: Timestamp) -> i64 {
    now.as_second().div_euclid(60)
}

/// Queues this minute's periodic jobs, each once per minute across all instances.
async fn schedule<H: Handlers>(pool: &PgPool, handlers: &H, now: Timestamp) -> Result<()> {
    let minute = minute_of(now);
    let mut conn = pool.acquire().await?;
    for job in handlers.periodic(&mut conn).await? {
        let key = match &job.scope {
            Some(scope) => format!("{}:{scope}:{minute}", job.kind),
            None => format!("{}:{minute}", job.kind),
        };
        enqueue(&mut conn, job.kind, &job.payload, Some(&key), now, now).await?;
    }
    Ok(())
}

/// Runs due jobs until none is left; returns how many ran.
async fn work<H: Handlers>(pool: &PgPool, clock: &dyn Clock, handlers: &H) -> Result<usize> {
    let kinds = handlers.kinds();
    let mut ran = 0;
    while let Some(job) = claim(pool, &kinds, clock.now(), LEASE).await? {
        let now = clock.now();
        match handlers.perform(pool, &job, now).await {
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
