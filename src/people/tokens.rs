//! Single-use links to set a password: for new or imported accounts and for resets. Only a
//! hash of the token is stored; a link lasts 72 hours and works once.

use jiff::{SignedDuration, Timestamp};
use sqlx::PgConnection;

use crate::core::ids::UserId;
use crate::core::time::to_db;
use crate::core::{Error, Result};

use super::sessions::{random_token, token_hash};

pub const VALID_FOR: SignedDuration = SignedDuration::from_hours(72);

/// Creates a link token for `user`; earlier unused links of the user stop working.
pub async fn create(
    conn: &mut PgConnection,
    user: UserId,
    by: Option<UserId>,
    now: Timestamp,
) -> Result<String> {
    let token = random_token();
    sqlx::query("update password_tokens set used_at = $2 where user_id = $1 and used_at is null")
        .bind(user)
        .bind(to_db(now))
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "insert into password_tokens (token_hash, user_id, created_by, created_at, expires_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash(&token))
    .bind(user)
    .bind(by)
    .bind(to_db(now))
    .bind(to_db(now.saturating_add(VALID_FOR).unwrap_or(now)))
    .execute(conn)
    .await?;
    Ok(token)
}

/// The user a still-valid token belongs to.
pub async fn check(conn: &mut PgConnection, token: &str, now: Timestamp) -> Result<UserId> {
    sqlx::query_scalar(
        "select t.user_id from password_tokens t join users u on u.id = t.user_id
         where t.token_hash = $1 and t.used_at is null and t.expires_at > $2 and u.active",
    )
    .bind(token_hash(token))
    .bind(to_db(now))
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)
}

/// Uses the token up (row-locked, so two tabs cannot both use it).
pub async fn consume(conn: &mut PgConnection, token: &str, now: Timestamp) -> Result<UserId> {
    let user: Option<UserId> = sqlx::query_scalar(
        "update password_tokens set used_at = $2
         where token_hash = $1 and used_at is null and expires_at > $2
         returning user_id",
    )
    .bind(token_hash(token))
    .bind(to_db(now))
    .fetch_optional(conn)
    .await?;
    user.ok_or(Error::NotFound)
}
