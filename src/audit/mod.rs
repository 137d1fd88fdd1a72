//! The admin audit log: every admin change with who, when, what, before and after. Owns
//! `admin_audit`, which the database keeps append-only. Written in the changing transaction.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use crate::core::Result;
use crate::core::ids::UserId;
use crate::core::time::to_db;

/// One admin change: what, which one, and snapshots before and after (`None` for nothing).
#[derive(Debug, Clone)]
pub struct Change {
    pub entity: &'static str,
    pub entity_id: String,
    pub action: &'static str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl Change {
    pub fn new(entity: &'static str, entity_id: impl ToString, action: &'static str) -> Self {
        Self {
            entity,
            entity_id: entity_id.to_string(),
            action,
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, value: &impl Serialize) -> Self {
        self.before = serde_json::to_value(value).ok();
        self
    }

    pub fn after(mut self, value: &impl Serialize) -> Self {
        self.after = serde_json::to_value(value).ok();
        self
    }
}

/// Records one change, in the caller's transaction.
pub async fn record(
    conn: &mut PgConnection,
    actor: UserId,
    now: Timestamp,
    change: Change,
) -> Result<()> {
    let Change {
        entity,
        entity_id,
        action,
        before,
        after,
    } = change;
    sqlx::query(
        "insert into admin_audit (actor_id, at, entity, entity_id, action, before, after)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(actor)
    .bind(to_db(now))
    .bind(entity)
    .bind(entity_id)
    .bind(action)
    .bind(before.map(Json))
    .bind(after.map(Json))
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct Entry {
    pub id: i64,
    pub actor_name: Option<String>,
    pub at: jiff_sqlx::Timestamp,
    pub entity: String,
    pub entity_id: String,
    pub action: String,
    pub before: Option<Json<serde_json::Value>>,
    pub after: Option<Json<serde_json::Value>>,
}

impl Entry {
    pub fn before_text(&self) -> String {
        self.before
            .as_ref()
            .map(|j| j.0.to_string())
            .unwrap_or_default()
    }

    pub fn after_text(&self) -> String {
        self.after
            .as_ref()
            .map(|j| j.0.to_string())
            .unwrap_or_default()
    }
}

/// Newest first, `limit` entries before the cursor.
pub async fn list(
    conn: &mut PgConnection,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select a.id, u.display_name as actor_name, a.at, a.entity, a.entity_id, a.action, a.before, a.after
         from admin_audit a left join users u on u.id = a.actor_id where true",
    );
    if let Some(id) = before_id {
        qb.push(" and a.id < ").push_bind(id);
    }
    qb.push(" order by a.id desc limit ").push_bind(limit);
    Ok(qb.build_query_as().fetch_all(conn).await?)
}
