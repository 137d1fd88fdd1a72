//! Sign-in throttling per account and per client address, in PostgreSQL so it survives a
//! restart and holds across app instances. Failures are counted over a window; reaching the
//! limit locks the key for the window, doubling with each further failure (at most a day).
//! Unknown accounts are counted like real ones, so the answer reveals nothing.

use jiff::{SignedDuration, Timestamp};
use sqlx::PgConnection;

use crate::core::Result;
use crate::core::time::to_db;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Account,
    Address,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Address => "address",
        }
    }
}

/// Limits for one scope.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max_failures: u32,
    pub window: SignedDuration,
}

const MAX_LOCK: SignedDuration = SignedDuration::from_hours(24);

/// The time until which any of `keys` is locked, if one is.
pub async fn locked_until(
    conn: &mut PgConnection,
    keys: &[(Scope, &str)],
    now: Timestamp,
) -> Result<Option<Timestamp>> {
    let scopes: Vec<&str> = keys.iter().map(|(s, _)| s.as_str()).collect();
    let names: Vec<String> = keys.iter().map(|(_, k)| k.to_lowercase()).collect();
    let until: Option<jiff_sqlx::Timestamp> = sqlx::query_scalar(
        "select max(locked_until) from login_throttle
         where (scope, key) in (select * from unnest($1::text[], $2::text[]))
           and locked_until > $3",
    )
    .bind(&scopes)
    .bind(&names)
    .bind(to_db(now))
    .fetch_one(conn)
    .await?;
    Ok(until.map(|t| t.to_jiff()))
}

/// Counts one failure; locks the key when it reaches the limit.
pub async fn record_failure(
    conn: &mut PgConnection,
    scope: Scope,
    key: &str,
    limit: Limit,
    now: Timestamp,
) -> Result<()> {
    let key = key.to_lowercase();
    sqlx::query(
        "insert into login_throttle (scope, key, failures, window_start) values ($1, $2, 0, $3)
         on conflict do nothing",
    )
    .bind(scope.as_str())
    .bind(&key)
    .bind(to_db(now))
    .execute(&mut *conn)
    .await?;
    let (failures, window_start, locked): (
        i32,
        jiff_sqlx::Timestamp,
        Option<jiff_sqlx::Timestamp>,
    ) = sqlx::query_as(
        "select failures, window_start, locked_until from login_throttle
             where scope = $1 and key = $2 for update",
    )
    .bind(scope.as_str())
    .bind(&key)
    .fetch_one(&mut *conn)
    .await?;
    let window_over = now.duration_since(window_start.to_jiff()) > limit.window;
    let lock_over = locked.is_none_or(|l| l.to_jiff() <= now);
    let (failures, window_start) = if window_over && lock_over {
        (1, now)
    } else {
        (failures.saturating_add(1), window_start.to_jiff())
    };
    let max = i32::try_from(limit.max_failures).unwrap_or(i32::MAX);
    let locked_until = (failures >= max).then(|| {
        let doublings = u32::try_from(failures - max).unwrap_or(0).min(16);
        let length = limit
            .window
            .checked_mul(1 << doublings)
            .unwrap_or(MAX_LOCK)
            .min(MAX_LOCK);
        now.saturating_add(length).unwrap_or(now)
    });
    sqlx::query(
        "update login_throttle set failures = $3, window_start = $4, locked_until = $5
         where scope = $1 and key = $2",
    )
    .bind(scope.as_str())
    .bind(&key)
    .bind(failures)
    .bind(to_db(window_start))
    .bind(locked_until.map(to_db))
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the failures of a key (after a successful sign-in to the account).
pub async fn clear(conn: &mut PgConnection, scope: Scope, key: &str) -> Result<()> {
    sqlx::query("delete from login_throttle where scope = $1 and key = $2")
        .bind(scope.as_str())
        .bind(key.to_lowercase())
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets the keys of `scope` whose window and lock are both over: their next failure would
/// start counting afresh anyway. For the periodic sweep; returns how many were deleted.
pub async fn forget_stale(
    conn: &mut PgConnection,
    scope: Scope,
    limit: Limit,
    now: Timestamp,
) -> Result<u64> {
    let window_start = now.saturating_sub(limit.window).unwrap_or(now);
    // No index on the times: the sweep reads the table once a minute, and the table holds
    // only the last window's failures because of this very delete.
    let done = sqlx::query(
        "delete from login_throttle
         where scope = $1 and window_start < $2 and (locked_until is null or locked_until <= $3)",
    )
    .bind(scope.as_str())
    .bind(to_db(window_start))
    .bind(to_db(now))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
