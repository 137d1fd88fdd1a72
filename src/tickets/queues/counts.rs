//! How many tickets a queue holds: exact up to `COUNT_CAP`, then "cap+"; several queues in one
//! statement; a count past the cap remembered for a while (`CappedCounts`).

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::filters::push_filters;
use super::{COUNT_CAP, Query};
use crate::core::Result;
use crate::core::ids::UserId;
use crate::engine::policy::Actor;

/// How many tickets match, up to `COUNT_CAP` (a bounded scan, however big the table).
pub async fn count(
    conn: &mut PgConnection,
    actor: &Actor,
    q: &Query,
    now: Timestamp,
) -> Result<Count> {
    Ok(counts(conn, actor, &[q], now)
        .await?
        .pop()
        .unwrap_or(Count(0)))
}

/// Queries whose count passed the cap lately, per person: counted again only after
/// `CAPPED_FOR`. Such a count is the one that reads `COUNT_CAP` index entries on every view
/// (most of a queue page's database time), and it shows "1000+" whatever a few tickets more
/// or less do (DESIGN.md: counts over many rows are estimated or cached). Smaller counts are
/// exact on every view. Kept per app instance.
#[derive(Default)]
pub struct CappedCounts {
    seen: std::sync::Mutex<HashMap<(UserId, String), std::time::Instant>>,
}

/// How long a count past the cap is taken as still past it.
pub const CAPPED_FOR: std::time::Duration = std::time::Duration::from_secs(30);
/// Entries kept at most; past it the memory starts again.
const CAPPED_ENTRIES: usize = 10_000;

impl CappedCounts {
    /// `count`, unless this person's same query passed the cap within `CAPPED_FOR`.
    pub async fn count(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        q: &Query,
        now: Timestamp,
    ) -> Result<Count> {
        let key = (actor.user_id, format!("{q:?}"));
        let fresh = |at: &std::time::Instant| at.elapsed() < CAPPED_FOR;
        if let Ok(seen) = self.seen.lock()
            && seen.get(&key).is_some_and(fresh)
        {
            return Ok(Count(COUNT_CAP + 1));
        }
        let found = count(conn, actor, q, now).await?;
        if let Ok(mut seen) = self.seen.lock() {
            if found.0 > COUNT_CAP {
                if seen.len() >= CAPPED_ENTRIES {
                    seen.retain(|_, at| fresh(at));
                }
                if seen.len() < CAPPED_ENTRIES {
                    seen.insert(key, std::time::Instant::now());
                }
            } else {
                seen.remove(&key);
            }
        }
        Ok(found)
    }
}

/// The capped counts of several queries in one statement (the queue index: no query per
/// view).
pub async fn counts(
    conn: &mut PgConnection,
    actor: &Actor,
    queries: &[&Query],
    now: Timestamp,
) -> Result<Vec<Count>> {
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("select array[");
    for (i, q) in queries.iter().enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push("(select count(*) from (select 1 from tickets t where true");
        push_filters(&mut qb, actor, q, now);
        qb.push(" limit ").push_bind(COUNT_CAP + 1).push(") c)");
    }
    qb.push("]::bigint[]");
    let found: Vec<i64> = qb.build_query_scalar().fetch_one(conn).await?;
    Ok(found.into_iter().map(Count).collect())
}

/// A capped count: shown as "1000+" past the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub i64);

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 > COUNT_CAP {
            write!(f, "{COUNT_CAP}+")
        } else {
            write!(f, "{}", self.0)
        }
    }
}
