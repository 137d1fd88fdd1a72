//! Projects: their keys (`HD`), kinds, and ticket numbering. Owns the `projects` table.

use serde::Deserialize;
use sqlx::{FromRow, PgConnection};

use crate::core::error::OnConstraint;
use crate::core::ids::{ProjectId, ProjectKey};
use crate::core::time::to_db;
use crate::core::{FieldErrors, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ServiceDesk,
    Rollout,
    Development,
}

#[derive(Debug, Clone, FromRow)]
pub struct Project {
    pub id: ProjectId,
    pub key: String,
    pub name: String,
    pub kind: Kind,
}

pub async fn create(
    conn: &mut PgConnection,
    key: &str,
    name: &str,
    kind: Kind,
    now: jiff::Timestamp,
) -> Result<ProjectId> {
    let mut errors = FieldErrors::new();
    let key = ProjectKey::parse(key.trim());
    if key.is_none() {
        errors.add(
            "key",
            "Use 2 to 10 capital letters or digits, starting with a letter (e.g. HD).",
        );
    }
    if name.trim().is_empty() {
        errors.add("name", "Enter a name.");
    }
    errors.into_result()?;
    let id = ProjectId::new();
    sqlx::query(
        "insert into projects (id, key, name, kind, created_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(key.as_ref().map(ProjectKey::as_str))
    .bind(name.trim())
    .bind(kind)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("projects_key_key", || {
        FieldErrors::one("key", "Another project already has this key.")
    })?;
    Ok(id)
}

/// Projects a person can file a request in, by key.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Project>> {
    Ok(
        sqlx::query_as("select id, key, name, kind from projects order by key")
            .fetch_all(conn)
            .await?,
    )
}

pub async fn find(conn: &mut PgConnection, id: ProjectId) -> Result<Option<Project>> {
    Ok(
        sqlx::query_as("select id, key, name, kind from projects where id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Takes the next ticket number of a project. The row lock is held until the caller's
/// transaction ends, so numbers are gap-free and unique.
pub async fn take_ticket_number(conn: &mut PgConnection, id: ProjectId) -> Result<(String, i64)> {
    let row: (String, i64) = sqlx::query_as(
        "update projects set next_number = next_number + 1 where id = $1
         returning key, next_number - 1",
    )
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok(row)
}
