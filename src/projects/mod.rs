//! Projects (keys like `HD`, kinds, single point of contact, who sees what), the organisation
//! tree, the systems registry and routing rules. Owns `projects`, `org_units`, `systems` and
//! `routing_rules`.

pub mod org;
pub mod systems;
pub mod triage;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};

use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::{GroupId, ProjectId, ProjectKey, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ServiceDesk,
    Rollout,
    Development,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::ServiceDesk, Kind::Rollout, Kind::Development];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ServiceDesk => "service_desk",
            Kind::Rollout => "rollout",
            Kind::Development => "development",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::ServiceDesk => "Service desk",
            Kind::Rollout => "Rollout",
            Kind::Development => "Development",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Project {
    pub id: ProjectId,
    pub key: String,
    pub name: String,
    pub kind: Kind,
    pub point_of_contact_id: Option<UserId>,
    pub point_of_contact_name: Option<String>,
    /// Requesters also see the tickets of their organisation unit.
    pub org_unit_visible: bool,
    /// The group that approves change requests here.
    pub change_board_group_id: Option<GroupId>,
}

const SELECT: &str = "select p.id, p.key, p.name, p.kind, p.point_of_contact_id,
        u.display_name as point_of_contact_name, p.requester_visibility = 'org_unit' as org_unit_visible,
        p.change_board_group_id
     from projects p left join users u on u.id = p.point_of_contact_id";

/// What a person typed for a project.
#[derive(Debug, Clone)]
pub struct ProjectInput {
    pub name: String,
    pub kind: Kind,
    pub point_of_contact_id: Option<UserId>,
    pub org_unit_visible: bool,
    pub change_board_group_id: Option<GroupId>,
}

impl ProjectInput {
    pub fn new(name: &str, kind: Kind) -> Self {
        Self {
            name: name.into(),
            kind,
            point_of_contact_id: None,
            org_unit_visible: false,
            change_board_group_id: None,
        }
    }
}

fn visibility(org_unit_visible: bool) -> &'static str {
    if org_unit_visible { "org_unit" } else { "own" }
}

pub async fn create(
    conn: &mut PgConnection,
    key: &str,
    input: &ProjectInput,
    now: Timestamp,
) -> Result<ProjectId> {
    let mut errors = FieldErrors::new();
    let key = ProjectKey::parse(key.trim());
    if key.is_none() {
        errors.add(
            "key",
            "Use 2 to 10 capital letters or digits, starting with a letter (e.g. HD).",
        );
    }
    if input.name.trim().is_empty() {
        errors.add("name", "Enter a name.");
    }
    errors.into_result()?;
    let id = ProjectId::new();
    sqlx::query(
        "insert into projects (id, key, name, kind, point_of_contact_id, requester_visibility, created_at,
                               change_board_group_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(key.as_ref().map(ProjectKey::as_str))
    .bind(input.name.trim())
    .bind(input.kind)
    .bind(input.point_of_contact_id)
    .bind(visibility(input.org_unit_visible))
    .bind(to_db(now))
    .bind(input.change_board_group_id)
    .execute(conn)
    .await
    .on_constraint("projects_key_key", || {
        FieldErrors::one("key", "Another project already has this key.")
    })
    .map_err(missing_reference("point_of_contact_id", "This person does not exist."))?;
    Ok(id)
}

/// Changes everything but the key (keys are in every ticket reference people have written).
pub async fn update(conn: &mut PgConnection, id: ProjectId, input: &ProjectInput) -> Result<()> {
    if input.name.trim().is_empty() {
        return Err(Error::Invalid(FieldErrors::one("name", "Enter a name.")));
    }
    let done = sqlx::query(
        "update projects set name = $2, kind = $3, point_of_contact_id = $4, requester_visibility = $5,
                change_board_group_id = $6
         where id = $1",
    )
    .bind(id)
    .bind(input.name.trim())
    .bind(input.kind)
    .bind(input.point_of_contact_id)
    .bind(visibility(input.org_unit_visible))
    .bind(input.change_board_group_id)
    .execute(conn)
    .await
    .map_err(|e| missing_reference("point_of_contact_id", "This person does not exist.")(Error::Db(e)))?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<Project>> {
    Ok(
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} order by p.key")))
            .fetch_all(conn)
            .await?,
    )
}

pub async fn find(conn: &mut PgConnection, id: ProjectId) -> Result<Option<Project>> {
    Ok(
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where p.id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn find_by_key(conn: &mut PgConnection, key: &str) -> Result<Option<Project>> {
    Ok(
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where p.key = $1")))
            .bind(key)
            .fetch_optional(conn)
            .await?,
    )
}
