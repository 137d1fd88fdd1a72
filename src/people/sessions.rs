//! Sessions in PostgreSQL. The cookie carries a random token; the table keeps only its
//! SHA-256, so reading the table signs nobody in. Idle and absolute expiry are checked on every
//! load; `last_seen_at` is written at most once a minute per session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{FromRow, PgConnection, PgPool};

use crate::core::Result;
use crate::core::ids::{SessionId, UserId};
use crate::core::time::to_db;

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub idle: SignedDuration,
    pub max: SignedDuration,
}

/// 32 random bytes, URL-safe base64: for session tokens and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The signed-in user behind a request.
#[derive(Debug, Clone, FromRow)]
pub struct Current {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub csrf_token: String,
    pub email: String,
    pub display_name: String,
    pub is_admin: bool,
    pub last_seen_at: jiff_sqlx::Timestamp,
}

/// Starts a session; returns the cookie token (shown once, never stored).
pub async fn create(
    conn: &mut PgConnection,
    user_id: UserId,
    now: Timestamp,
    lifetime: Lifetime,
    user_agent: &str,
    client_addr: &str,
) -> Result<String> {
    let token = random_token();
    let expires = now.saturating_add(lifetime.max).unwrap_or(now);
    // Expired sessions of this user are no use to anyone: tidy them while we are here.
    sqlx::query("delete from sessions where user_id = $1 and expires_at <= $2")
        .bind(user_id)
        .bind(to_db(now))
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "insert into sessions (token_hash, public_id, user_id, csrf_token, created_at, last_seen_at,
                               expires_at, user_agent, client_addr)
         values ($1, $2, $3, $4, $5, $5, $6, $7, $8)",
    )
    .bind(token_hash(&token))
    .bind(SessionId::new())
    .bind(user_id)
    .bind(random_token())
    .bind(to_db(now))
    .bind(to_db(expires))
    .bind(truncate(user_agent, 300))
    .bind(truncate(client_addr, 100))
    .execute(conn)
    .await?;
    Ok(token)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The session for a cookie token, if it exists, has not expired, and its user is active.
pub async fn load(
    pool: &PgPool,
    token: &str,
    now: Timestamp,
    lifetime: Lifetime,
) -> Result<Option<Current>> {
    let idle_cutoff = now.saturating_sub(lifetime.idle).unwrap_or(now);
    let hash = token_hash(token);
    let current: Option<Current> = sqlx::query_as(
        "select s.public_id as session_id, s.user_id, s.csrf_token, u.email, u.display_name,
                u.is_admin, s.last_seen_at
         from sessions s join users u on u.id = s.user_id
         where s.token_hash = $1 and s.expires_at > $2 and s.last_seen_at > $3 and u.active",
    )
    .bind(&hash)
    .bind(to_db(now))
    .bind(to_db(idle_cutoff))
    .fetch_optional(pool)
    .await?;
    if let Some(c) = &current
        && now.duration_since(c.last_seen_at.to_jiff()) > SignedDuration::from_secs(60)
    {
        sqlx::query("update sessions set last_seen_at = $2 where token_hash = $1")
            .bind(&hash)
            .bind(to_db(now))
            .execute(pool)
            .await?;
    }
    Ok(current)
}

/// Ends the session behind a cookie token (sign-out).
pub async fn end(conn: &mut PgConnection, token: &str) -> Result<()> {
    sqlx::query("delete from sessions where token_hash = $1")
        .bind(token_hash(token))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends one of the user's sessions; false when it was not theirs or is already gone.
pub async fn revoke(conn: &mut PgConnection, user_id: UserId, id: SessionId) -> Result<bool> {
    let done = sqlx::query("delete from sessions where user_id = $1 and public_id = $2")
        .bind(user_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every session of the user except `keep` (after a password change).
pub async fn revoke_others(
    conn: &mut PgConnection,
    user_id: UserId,
    keep: Option<SessionId>,
) -> Result<u64> {
    let done = sqlx::query(
        "delete from sessions where user_id = $1 and ($2::uuid is null or public_id <> $2)",
    )
    .bind(user_id)
    .bind(keep)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A session as listed on "My account".
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: SessionId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub user_agent: String,
    pub client_addr: String,
}

/// The user's live sessions, most recently used first.
pub async fn list(conn: &mut PgConnection, user_id: UserId, now: Timestamp) -> Result<Vec<Listed>> {
    let rows: Vec<(
        SessionId,
        jiff_sqlx::Timestamp,
        jiff_sqlx::Timestamp,
        String,
        String,
    )> = sqlx::query_as(
        "select public_id, created_at, last_seen_at, user_agent, client_addr
             from sessions where user_id = $1 and expires_at > $2
             order by last_seen_at desc limit 100",
    )
    .bind(user_id)
    .bind(to_db(now))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, created, seen, user_agent, client_addr)| Listed {
            id,
            created_at: created.to_jiff(),
            last_seen_at: seen.to_jiff(),
            user_agent,
            client_addr,
        })
        .collect())
}
