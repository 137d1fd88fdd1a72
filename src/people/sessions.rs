//! Sessions in PostgreSQL. The cookie carries a random token; the table keeps only its
//! SHA-256, so reading the table signs nobody in. Idle and absolute expiry are checked on every
//! load; `last_seen_at` is written at most once a minute per session.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::core::Result;
use crate::core::ids::{GroupId, OrgUnitId, SessionId, UserId};
use crate::core::time::to_db;
use crate::engine::policy::{Actor, Grant};

/// The bell's number, as a column of a query over `users u`: read with the session, so a page
/// costs one query for both. Unread notices (the `notifications` table), counted up to
/// `UNREAD_CAP` so a neglected inbox costs no more than a full one.
const UNREAD_COLUMN: &str = "(select count(*) from (select 1 from notifications n
     where n.user_id = u.id and n.read_at is null limit 100) unread) as unread_notifications";
/// The count the bell stops at ("99+" above `UNREAD_CAP - 1`).
pub const UNREAD_CAP: i64 = 100;

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

/// How a token is stored: its SHA-256 (the token itself is shown once and never kept).
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The signed-in user behind a request, with what the policy needs about them.
#[derive(Debug, Clone)]
pub struct Current {
    pub session_id: SessionId,
    pub csrf_token: String,
    pub email: String,
    pub display_name: String,
    pub actor: Actor,
    /// Unread notifications, up to `UNREAD_CAP`: the bell.
    pub unread_notifications: i64,
    /// The reference data's version when the request began (`web::reference`).
    pub reference_version: i64,
}

impl Current {
    pub fn user_id(&self) -> UserId {
        self.actor.user_id
    }
}

/// The columns that make an `Actor` of the user `u`: their groups and every grant with where
/// it comes from. Shared by the session load and the effective-permissions page.
pub(crate) const ACTOR_COLUMNS: &str =
    "array(select gm.group_id from group_members gm where gm.user_id = u.id) as groups,
    coalesce((
        select json_agg(json_build_object(
            'permission', rp.permission, 'project', m.project_id, 'role', r.name, 'group', g.name)
            order by r.name, g.name)
        -- Held directly or through a group: two index lookups (an `or` here would scan
        -- every membership, one per user in a big organisation).
        from (select um.role_id, um.project_id, um.group_id from memberships um where um.user_id = u.id
              union all
              select gm2.role_id, gm2.project_id, gm2.group_id from memberships gm2
              join group_members gm on gm.group_id = gm2.group_id where gm.user_id = u.id) m
        join roles r on r.id = m.role_id
        join role_permissions rp on rp.role_id = r.id
        left join groups g on g.id = m.group_id
    ), '[]'::json) as grants";

#[derive(FromRow)]
struct CurrentRow {
    session_id: SessionId,
    user_id: UserId,
    csrf_token: String,
    email: String,
    display_name: String,
    last_seen_at: jiff_sqlx::Timestamp,
    org_unit_id: Option<OrgUnitId>,
    unread_notifications: i64,
    reference_version: i64,
    access_version: i64,
    user_access_version: i64,
}

/// Each user's groups and grants, kept per app instance while their versions hold: the
/// user's own `users.access_version` (their grants and group memberships) and the global
/// `access_version` (roles, permissions, group grants and names), both moved by triggers
/// (migration 0018) and read with every session. Building them is most of the cost of a
/// session load; a revoked grant stops counting at the next request, on every instance.
#[derive(Default)]
pub struct AccessCache {
    current: Mutex<(i64, HashMap<UserId, Access>)>,
}

/// A user's groups and grants at their own access version.
#[derive(Clone)]
struct Access {
    version: i64,
    groups: Vec<GroupId>,
    grants: Vec<Grant>,
}

/// Users kept at most; past it the cache starts again (a plain bound, no eviction order).
const ACCESS_CACHE_USERS: usize = 20_000;

impl AccessCache {
    fn get(&self, global: i64, user: UserId, version: i64) -> Option<Access> {
        let slot = self.current.lock().ok()?;
        if slot.0 != global {
            return None;
        }
        slot.1.get(&user).filter(|a| a.version == version).cloned()
    }

    fn put(&self, global: i64, user: UserId, access: &Access) {
        let Ok(mut slot) = self.current.lock() else {
            return;
        };
        if slot.0 < global || slot.1.len() >= ACCESS_CACHE_USERS {
            *slot = (global, HashMap::new());
        }
        if slot.0 == global {
            slot.1.insert(user, access.clone());
        }
    }

    /// The user's groups and grants as of these versions or later.
    async fn load(&self, pool: &PgPool, global: i64, user: UserId, version: i64) -> Result<Access> {
        if let Some(found) = self.get(global, user, version) {
            return Ok(found);
        }
        // The versions read in the same statement as the grants: what is cached under them
        // is never older than they are.
        let (global, version, groups, grants): (i64, i64, Vec<GroupId>, Json<Vec<Grant>>) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select (select version from access_version), u.access_version, {ACTOR_COLUMNS}
                 from users u where u.id = $1"
            )))
            .bind(user)
            .fetch_one(pool)
            .await?;
        let access = Access {
            version,
            groups,
            grants: grants.0,
        };
        self.put(global, user, &access);
        Ok(access)
    }
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
    cache: &AccessCache,
    token: &str,
    now: Timestamp,
    lifetime: Lifetime,
) -> Result<Option<Current>> {
    let idle_cutoff = now.saturating_sub(lifetime.idle).unwrap_or(now);
    let hash = token_hash(token);
    // One query: the session, the user, the bell's count, and the versions of the cached
    // reference lists and grants (a second one loads the grants when the cache has none).
    let row: Option<CurrentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select s.public_id as session_id, s.user_id, s.csrf_token, u.email, u.display_name,
                s.last_seen_at, u.org_unit_id,
                {UNREAD_COLUMN},
                (select version from reference_version) as reference_version,
                (select version from access_version) as access_version,
                u.access_version as user_access_version
         from sessions s join users u on u.id = s.user_id
         where s.token_hash = $1 and s.expires_at > $2 and s.last_seen_at > $3 and u.active"
    )))
    .bind(&hash)
    .bind(to_db(now))
    .bind(to_db(idle_cutoff))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if now.duration_since(row.last_seen_at.to_jiff()) > SignedDuration::from_secs(60) {
        sqlx::query("update sessions set last_seen_at = $2 where token_hash = $1")
            .bind(&hash)
            .bind(to_db(now))
            .execute(pool)
            .await?;
    }
    let access = cache
        .load(
            pool,
            row.access_version,
            row.user_id,
            row.user_access_version,
        )
        .await?;
    Ok(Some(Current {
        session_id: row.session_id,
        csrf_token: row.csrf_token,
        email: row.email,
        display_name: row.display_name,
        actor: Actor::new(row.user_id, row.org_unit_id, access.groups, access.grants),
        unread_notifications: row.unread_notifications,
        reference_version: row.reference_version,
    }))
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

/// The user's live sessions (neither past their absolute end nor idle too long, as `load`
/// decides), most recently used first.
pub async fn list(
    conn: &mut PgConnection,
    user_id: UserId,
    now: Timestamp,
    lifetime: Lifetime,
) -> Result<Vec<Listed>> {
    let idle_cutoff = now.saturating_sub(lifetime.idle).unwrap_or(now);
    let rows: Vec<(
        SessionId,
        jiff_sqlx::Timestamp,
        jiff_sqlx::Timestamp,
        String,
        String,
    )> = sqlx::query_as(
        "select public_id, created_at, last_seen_at, user_agent, client_addr
             from sessions where user_id = $1 and expires_at > $2 and last_seen_at > $3
             order by last_seen_at desc limit 100",
    )
    .bind(user_id)
    .bind(to_db(now))
    .bind(to_db(idle_cutoff))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bell_counts_up_to_its_cap() {
        assert!(UNREAD_COLUMN.contains(&format!("limit {UNREAD_CAP}")));
    }
}
