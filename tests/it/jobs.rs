//! The job queue against real PostgreSQL: several workers, each job exactly once; retries
//! with backoff; idempotent enqueueing; a lost worker's job is taken over after its lease.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::SignedDuration;
use tokio::sync::Mutex;
use unitrack::jobs;

use crate::common::{TestDb, t0};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_run_every_job_exactly_once() {
    let db = TestDb::new().await;
    let now = t0();
    let mut conn = db.pool.acquire().await.unwrap();
    for i in 0..300 {
        jobs::enqueue(
            &mut conn,
            "test",
            &serde_json::json!({ "n": i }),
            None,
            now,
            now,
        )
        .await
        .unwrap();
    }
    drop(conn);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let pool = db.pool.clone();
        let seen = seen.clone();
        workers.push(tokio::spawn(async move {
            while let Some(job) = jobs::claim(&pool, &["test"], now, SignedDuration::from_mins(5))
                .await
                .unwrap()
            {
                seen.lock().await.push(job.payload.0["n"].as_i64().unwrap());
                jobs::complete(&pool, job.id, now).await.unwrap();
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let seen = seen.lock().await;
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 300, "no job ran twice");
    assert_eq!(unique.len(), 300, "every job ran");
    assert_eq!(jobs::pending(&db.pool).await.unwrap(), 0);
}

#[tokio::test]
async fn failures_retry_with_backoff_then_give_up_and_keys_deduplicate() {
    let db = TestDb::new().await;
    let now = t0();
    let mut conn = db.pool.acquire().await.unwrap();
    assert!(
        jobs::enqueue(
            &mut conn,
            "mail",
            &serde_json::json!({}),
            Some("ack:HD-1"),
            now,
            now
        )
        .await
        .unwrap()
    );
    assert!(
        !jobs::enqueue(
            &mut conn,
            "mail",
            &serde_json::json!({}),
            Some("ack:HD-1"),
            now,
            now
        )
        .await
        .unwrap()
    );
    drop(conn);
    sqlx::query("update jobs set max_attempts = 2")
        .execute(&db.pool)
        .await
        .unwrap();
    let lease = SignedDuration::from_mins(5);
    let job = jobs::claim(&db.pool, &["mail"], now, lease)
        .await
        .unwrap()
        .unwrap();
    assert!(
        jobs::claim(&db.pool, &["mail"], now, lease)
            .await
            .unwrap()
            .is_none(),
        "held by its lease"
    );
    jobs::fail(&db.pool, &job, "relay down", now).await.unwrap();
    assert!(
        jobs::claim(&db.pool, &["mail"], now, lease)
            .await
            .unwrap()
            .is_none(),
        "not before the backoff"
    );
    let later = now.checked_add(SignedDuration::from_secs(10)).unwrap();
    let again = jobs::claim(&db.pool, &["mail"], later, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.attempts, 2);
    jobs::fail(&db.pool, &again, "relay still down", later)
        .await
        .unwrap();
    let (failed, error): (bool, String) =
        sqlx::query_as("select failed_at is not null, last_error from jobs")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(failed);
    assert_eq!(error, "relay still down");
    assert_eq!(jobs::pending(&db.pool).await.unwrap(), 0);
}

#[tokio::test]
async fn a_job_whose_worker_vanished_is_taken_over_after_its_lease() {
    let db = TestDb::new().await;
    let now = t0();
    let mut conn = db.pool.acquire().await.unwrap();
    jobs::enqueue(&mut conn, "sla", &serde_json::json!({}), None, now, now)
        .await
        .unwrap();
    drop(conn);
    let lease = SignedDuration::from_mins(1);
    let first = jobs::claim(&db.pool, &["sla"], now, lease)
        .await
        .unwrap()
        .unwrap();
    let after = now.checked_add(SignedDuration::from_mins(2)).unwrap();
    let second = jobs::claim(&db.pool, &["sla"], after, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(second.attempts, 2);
    assert!(
        jobs::claim(&db.pool, &["other"], after, lease)
            .await
            .unwrap()
            .is_none(),
        "kinds are separate"
    );
}

/// Adding jobs wakes the job loops of every instance (`LISTEN` on `jobs::WAKE_CHANNEL`) when
/// the transaction commits; not before, not when it rolls back, and not when nothing was added
/// (an idempotency key used before: the loop's own once-a-minute scheduling, a mail statement
/// that found nobody to mail).
#[tokio::test]
async fn adding_jobs_wakes_the_loops_when_the_transaction_commits() {
    let db = TestDb::new().await;
    let now = t0();
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener.listen(jobs::WAKE_CHANNEL).await.unwrap();
    let quiet = std::time::Duration::from_millis(300);
    let mut tx = db.pool.begin().await.unwrap();
    jobs::enqueue(&mut tx, "test", &serde_json::json!({}), None, now, now)
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(quiet, listener.recv()).await.is_err(),
        "no wake-up before the commit"
    );
    tx.rollback().await.unwrap();
    assert!(
        tokio::time::timeout(quiet, listener.recv()).await.is_err(),
        "no wake-up for a rolled-back job"
    );
    let mut conn = db.pool.acquire().await.unwrap();
    let key = Some("once");
    assert!(
        jobs::enqueue(&mut conn, "test", &serde_json::json!({}), key, now, now)
            .await
            .unwrap()
    );
    listener.recv().await.unwrap();
    assert!(
        !jobs::enqueue(&mut conn, "test", &serde_json::json!({}), key, now, now)
            .await
            .unwrap()
    );
    assert!(
        tokio::time::timeout(quiet, listener.recv()).await.is_err(),
        "no wake-up when nothing was added"
    );
    let mut tx = db.pool.begin().await.unwrap();
    jobs::enqueue(&mut tx, "test", &serde_json::json!({}), None, now, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let woken = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("woken within five seconds")
        .unwrap();
    assert_eq!(woken.channel(), jobs::WAKE_CHANNEL);
}
