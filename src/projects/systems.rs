//! The registry of systems tickets point to: owner (who approves access), support group
//! (who provisions and fixes), criticality.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};

use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::{GroupId, SystemId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    Low,
    Medium,
    High,
    Critical,
}

impl Criticality {
    pub const ALL: [Criticality; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct System {
    pub id: SystemId,
    pub name: String,
    pub owner_id: Option<UserId>,
    pub owner_name: Option<String>,
    pub support_group_id: Option<GroupId>,
    pub support_group_name: Option<String>,
    pub criticality: Criticality,
}

const SELECT: &str = "select s.id, s.name, s.owner_id, u.display_name as owner_name, s.support_group_id,
        g.name as support_group_name, s.criticality
     from systems s left join users u on u.id = s.owner_id left join groups g on g.id = s.support_group_id";

pub async fn list(conn: &mut PgConnection) -> Result<Vec<System>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} order by lower(s.name)"
    )))
    .fetch_all(conn)
    .await?)
}

pub async fn find(conn: &mut PgConnection, id: SystemId) -> Result<System> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where s.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)
}

/// What a person typed for a system.
#[derive(Debug, Clone)]
pub struct SystemInput {
    pub name: String,
    pub owner_id: Option<UserId>,
    pub support_group_id: Option<GroupId>,
    pub criticality: Criticality,
}

fn check(input: &SystemInput) -> Result<()> {
    if input.name.trim().is_empty() {
        return Err(Error::Invalid(FieldErrors::one("name", "Enter a name.")));
    }
    Ok(())
}

pub async fn create(
    conn: &mut PgConnection,
    input: &SystemInput,
    now: Timestamp,
) -> Result<SystemId> {
    check(input)?;
    let id = SystemId::new();
    sqlx::query(
        "insert into systems (id, name, owner_id, support_group_id, criticality, created_at)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(input.name.trim())
    .bind(input.owner_id)
    .bind(input.support_group_id)
    .bind(input.criticality)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("systems_name_key", || {
        FieldErrors::one("name", "Another system has this name.")
    })
    .map_err(missing_reference(
        "owner_id",
        "The owner or support group does not exist.",
    ))?;
    Ok(id)
}

pub async fn update(conn: &mut PgConnection, id: SystemId, input: &SystemInput) -> Result<()> {
    check(input)?;
    let done = sqlx::query(
        "update systems set name = $2, owner_id = $3, support_group_id = $4, criticality = $5 where id = $1",
    )
    .bind(id)
    .bind(input.name.trim())
    .bind(input.owner_id)
    .bind(input.support_group_id)
    .bind(input.criticality)
    .execute(conn)
    .await
    .on_constraint("systems_name_key", || FieldErrors::one("name", "Another system has this name."))
    .map_err(missing_reference("owner_id", "The owner or support group does not exist."))?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}
