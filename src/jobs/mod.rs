//! The job queue: a `jobs` table. Enqueue in the caller's transaction (so a job exists
//! exactly when its cause committed); claim with `FOR UPDATE SKIP LOCKED` and a lease, so
//! several app instances never run one job twice at once; retry with exponential backoff;
//! an idempotency key makes a second enqueue a no-op. The queue knows no feature; `runner`
//! is the loop that works it off, with a table of job kinds passed in (`crate::workers`).

pub mod runner;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::core::Result;
use crate::core::time::to_db;

/// A claimed job.
#[derive(Debug, Clone, FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: sqlx::types::Json<Value>,
    pub attempts: i32,
    pub max_attempts: i32,
}

/// Adds a job due at `run_at`. With a key already used, nothing happens (false).
pub async fn enqueue(
    conn: &mut PgConnection,
    kind: &str,
    payload: &Value,
    idempotency_key: Option<&str>,
    run_at: Timestamp,
    now: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "insert into jobs (kind, payload, idempotency_key, run_at, created_at) values ($1, $2, $3, $4, $5)
         on conflict (idempotency_key) do nothing",
    )
    .bind(kind)
    .bind(sqlx::types::Json(payload))
    .bind(idempotency_key)
    .bind(to_db(run_at))
    .bind(to_db(now))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The channel the job loops listen on (see `runner`). A trigger on `jobs` notifies it for
/// every statement that adds jobs, delivered when that transaction commits (migration 0022).
pub const WAKE_CHANNEL: &str = "unitrack_jobs";

/// Claims the oldest due job of one of `kinds` for `lease`; `None` when there is none.
pub async fn claim(
    pool: &PgPool,
    kinds: &[&str],
    now: Timestamp,
    lease: SignedDuration,
) -> Result<Option<Job>> {
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    let until = now.saturating_add(lease).unwrap_or(now);
    Ok(sqlx::query_as(
        "update jobs set locked_until = $3, attempts = attempts + 1
         where id = (
             select id from jobs
             where done_at is null and failed_at is null and run_at <= $2 and kind = any($1)
               and (locked_until is null or locked_until <= $2)
             order by run_at, id
             limit 1
             for update skip locked
         )
         returning id, kind, payload, attempts, max_attempts",
    )
    .bind(&kinds)
    .bind(to_db(now))
    .bind(to_db(until))
    .fetch_optional(pool)
    .await?)
}

/// Marks a job done.
pub async fn complete(pool: &PgPool, id: i64, now: Timestamp) -> Result<()> {
    sqlx::query("update jobs set done_at = $2, locked_until = null where id = $1")
        .bind(id)
        .bind(to_db(now))
        .execute(pool)
        .await?;
    Ok(())
}

/// The wait before attempt `attempts + 1`: 10 s doubling, at most an hour.
pub fn backoff(attempts: i32) -> SignedDuration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    SignedDuration::from_secs(10)
        .checked_mul(1 << exponent.min(12))
        .unwrap_or(SignedDuration::from_hours(1))
        .min(SignedDuration::from_hours(1))
}

/// Records a failure: retried after the backoff, or given up after `max_attempts`.
pub async fn fail(pool: &PgPool, job: &Job, error: &str, now: Timestamp) -> Result<()> {
    let error: String = error.chars().take(2000).collect();
    if job.attempts >= job.max_attempts {
        sqlx::query(
            "update jobs set failed_at = $2, last_error = $3, locked_until = null where id = $1",
        )
        .bind(job.id)
        .bind(to_db(now))
        .bind(&error)
        .execute(pool)
        .await?;
    } else {
        let retry = now.saturating_add(backoff(job.attempts)).unwrap_or(now);
        sqlx::query(
            "update jobs set run_at = $2, last_error = $3, locked_until = null where id = $1",
        )
        .bind(job.id)
        .bind(to_db(retry))
        .bind(&error)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Jobs not yet done or given up (for tests and the admin overview).
pub async fn pending(pool: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from jobs where done_at is null and failed_at is null")
            .fetch_one(pool)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_an_hour() {
        let secs: Vec<i64> = (1..=12).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(
            secs,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]
        );
        assert_eq!(backoff(0).as_secs(), 10);
    }
}
