//! Saved views: a queue's filters, sort and columns under a name, personal or shared.

use jiff::Timestamp;
use sqlx::{FromRow, PgConnection};

use super::{COLUMNS, DEFAULT_COLUMNS, Filters, Sort};
use crate::core::ids::UserId;
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Actor};

/// A saved view.
#[derive(Debug, Clone, FromRow)]
pub struct View {
    pub id: uuid::Uuid,
    pub name: String,
    pub owner_id: Option<UserId>,
    pub created_by: UserId,
    pub filters: sqlx::types::Json<Filters>,
    pub sort: String,
    pub columns: Vec<String>,
}

impl View {
    pub fn shared(&self) -> bool {
        self.owner_id.is_none()
    }
}

/// The actor's own views and the shared ones, by name.
pub async fn views(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<View>> {
    Ok(sqlx::query_as(
        "select id, name, owner_id, created_by, filters, sort, columns from queues
         where owner_id = $1 or owner_id is null order by owner_id is null, lower(name)",
    )
    .bind(actor.user_id)
    .fetch_all(conn)
    .await?)
}

pub async fn view(conn: &mut PgConnection, actor: &Actor, id: uuid::Uuid) -> Result<View> {
    sqlx::query_as(
        "select id, name, owner_id, created_by, filters, sort, columns from queues
         where id = $1 and (owner_id = $2 or owner_id is null)",
    )
    .bind(id)
    .bind(actor.user_id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)
}

/// Checks and normalises chosen columns (the defaults when none).
pub fn columns(chosen: &[String]) -> Vec<String> {
    let known: Vec<String> = chosen
        .iter()
        .filter(|c| COLUMNS.iter().any(|(k, _)| k == c))
        .cloned()
        .collect();
    if known.is_empty() {
        DEFAULT_COLUMNS.iter().map(|c| (*c).to_owned()).collect()
    } else {
        known
    }
}

/// A view as the form sends it.
#[derive(Debug, Clone)]
pub struct NewView<'a> {
    pub name: &'a str,
    pub shared: bool,
    pub filters: &'a Filters,
    pub sort: Sort,
    pub columns: &'a [String],
}

/// Saves a view; `shared` views need the right to assign tickets somewhere (team leads,
/// agents), others are personal.
pub async fn save(
    conn: &mut PgConnection,
    actor: &Actor,
    view: &NewView<'_>,
    now: Timestamp,
) -> Result<uuid::Uuid> {
    let NewView {
        name,
        shared,
        filters,
        sort,
        columns: chosen,
    } = *view;
    let mut errors = FieldErrors::new();
    let name = name.trim();
    if name.is_empty() {
        errors.add("name", "Give the queue a name.");
    } else if name.chars().count() > 100 {
        errors.add("name", "Use at most 100 characters.");
    }
    if shared
        && !policy::decide(actor, policy::Action::ShareQueue, policy::Target::Nothing).allowed()
    {
        errors.add(
            "shared",
            "Only those who assign tickets can share queues; save it for yourself.",
        );
    }
    if let Err(e) = filters.parse(actor) {
        for (field, message) in e.iter() {
            errors.add(field, message);
        }
    }
    errors.into_result()?;
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into queues (id, name, owner_id, created_by, filters, sort, columns, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(name)
    .bind((!shared).then_some(actor.user_id))
    .bind(actor.user_id)
    .bind(sqlx::types::Json(filters))
    .bind(sort.as_str())
    .bind(columns(chosen))
    .bind(to_db(now))
    .execute(conn)
    .await?;
    Ok(id)
}

/// Deletes a view: one's own, or a shared one one created.
pub async fn delete(conn: &mut PgConnection, actor: &Actor, id: uuid::Uuid) -> Result<()> {
    let done = sqlx::query(
        "delete from queues where id = $1 and (owner_id = $2 or (owner_id is null and created_by = $2))",
    )
    .bind(id)
    .bind(actor.user_id)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}
