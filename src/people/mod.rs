//! People: users, groups, roles and memberships, domain rules, password hashing and links,
//! sessions and the sign-in throttle. Owns those tables. Does not decide access: that is
//! `engine::policy`, fed by the grants loaded with the session.

pub mod domain_rules;
pub mod groups;
pub mod passwords;
pub mod roles;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

pub use users::User;

use jiff::Timestamp;
use sqlx::PgPool;

use crate::core::Result;
use crate::core::ids::UserId;
use throttle::{Limit, Scope};

/// The result of a sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    SignedIn(UserId),
    /// Unknown account, no password, or wrong password: deliberately one answer.
    Refused,
    /// Too many failures for this account or this address.
    Locked {
        until: Timestamp,
    },
}

/// Throttle limits for sign-in.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub account: Limit,
    pub address: Limit,
}

/// How long sessions and sign-in failures matter; the periodic sweep deletes them after.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub sessions: sessions::Lifetime,
    pub login: LoginLimits,
}

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub login_failures: u64,
}

/// Deletes sessions that can no longer sign anyone in (past their absolute end or idle too
/// long: what `sessions::load` refuses) and sign-in failures whose window and lock are over.
/// Run by the job loop's periodic sweep; each delete is one statement, safe on any number of
/// instances.
pub async fn sweep(pool: &PgPool, now: Timestamp, retention: Retention) -> Result<Swept> {
    let idle_cutoff = now.saturating_sub(retention.sessions.idle).unwrap_or(now);
    let mut conn = pool.acquire().await?;
    // `last_seen_at` has no index (it is written once a minute per session): because of this
    // delete the table holds little more than the live sessions, so reading it is cheap.
    let sessions = sqlx::query("delete from sessions where expires_at <= $1 or last_seen_at <= $2")
        .bind(crate::core::time::to_db(now))
        .bind(crate::core::time::to_db(idle_cutoff))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let mut login_failures = 0;
    for (scope, limit) in [
        (Scope::Account, retention.login.account),
        (Scope::Address, retention.login.address),
    ] {
        login_failures += throttle::forget_stale(&mut conn, scope, limit, now).await?;
    }
    Ok(Swept {
        sessions,
        login_failures,
    })
}

/// Checks a password with throttling per account and per address. The password is verified
/// outside any transaction: hashing is slow and must not hold a connection's locks.
pub async fn authenticate(
    pool: &PgPool,
    email: &str,
    password: String,
    client_addr: &str,
    now: Timestamp,
    limits: LoginLimits,
) -> Result<LoginOutcome> {
    let email = email.trim();
    // No account has a longer address, and the throttle keeps its key in an index (a key of
    // a few kilobytes would fail the insert): such a sign-in is refused by the same path as an
    // unknown account, counted against the client's address only.
    let account = (email.len() <= users::MAX_EMAIL_LEN).then_some(email);
    let mut keys = vec![(Scope::Address, client_addr)];
    keys.extend(account.map(|email| (Scope::Account, email)));
    let mut conn = pool.acquire().await?;
    if let Some(until) = throttle::locked_until(&mut conn, &keys, now).await? {
        return Ok(LoginOutcome::Locked { until });
    }
    let found = match account {
        Some(email) => users::find_for_login(&mut conn, email).await?,
        None => None,
    };
    drop(conn);
    let (user_id, hash) = match found {
        Some((id, hash)) => (Some(id), hash),
        None => (None, None),
    };
    let valid = passwords::verify(password, hash).await?;
    let mut tx = pool.begin().await?;
    let outcome = match user_id {
        Some(id) if valid => {
            throttle::clear(&mut tx, Scope::Account, email).await?;
            LoginOutcome::SignedIn(id)
        }
        _ => {
            if let Some(email) = account {
                throttle::record_failure(&mut tx, Scope::Account, email, limits.account, now)
                    .await?;
            }
            throttle::record_failure(&mut tx, Scope::Address, client_addr, limits.address, now)
                .await?;
            LoginOutcome::Refused
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// The `Actor` for any user, as the policy would see them (effective-permissions page).
pub async fn actor_of(
    conn: &mut sqlx::PgConnection,
    user: UserId,
) -> Result<crate::engine::policy::Actor> {
    #[derive(sqlx::FromRow)]
    struct Row {
        org_unit_id: Option<crate::core::ids::OrgUnitId>,
        groups: Vec<crate::core::ids::GroupId>,
        grants: sqlx::types::Json<Vec<crate::engine::policy::Grant>>,
    }
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select u.org_unit_id, {} from users u where u.id = $1",
        sessions::ACTOR_COLUMNS
    )))
    .bind(user)
    .fetch_optional(conn)
    .await?
    .ok_or(crate::core::Error::NotFound)?;
    Ok(crate::engine::policy::Actor::new(
        user,
        row.org_unit_id,
        row.groups,
        row.grants.0,
    ))
}
