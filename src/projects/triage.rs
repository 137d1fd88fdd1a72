//! A project's triage settings that live with the project: its routing rules (which group a
//! new ticket goes to, first matching rule by position) and the calendar it counts business
//! days in. Owns `routing_rules` and `projects.calendar_id`; `tickets::triage` reads them
//! (and owns the priority matrix).

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use crate::core::error::missing_reference;
use crate::core::ids::{
    CalendarId, GroupId, OrgUnitId, ProcessId, ProjectId, RoutingRuleId, SystemId,
};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

/// A rule: an empty condition matches anything.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Rule {
    pub id: RoutingRuleId,
    pub position: i32,
    pub process_id: Option<ProcessId>,
    pub process_name: Option<String>,
    pub system_id: Option<SystemId>,
    pub system_name: Option<String>,
    pub site_id: Option<OrgUnitId>,
    pub site_name: Option<String>,
    pub group_id: GroupId,
    pub group_name: String,
}

const SELECT: &str = "select r.id, r.position, r.process_id, p.name as process_name, r.system_id,
        s.name as system_name, r.site_id, o.name as site_name, r.group_id, g.name as group_name
     from routing_rules r
     join groups g on g.id = r.group_id
     left join processes p on p.id = r.process_id
     left join systems s on s.id = r.system_id
     left join org_units o on o.id = r.site_id";

/// A project's rules in the order they are tried.
pub async fn rules(conn: &mut PgConnection, project: ProjectId) -> Result<Vec<Rule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where r.project_id = $1 order by r.position, r.id"
    )))
    .bind(project)
    .fetch_all(conn)
    .await?)
}

async fn find(conn: &mut PgConnection, project: ProjectId, id: RoutingRuleId) -> Result<Rule> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where r.project_id = $1 and r.id = $2"
    )))
    .bind(project)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)
}

/// Serialises changes to one project's rule order (held until the transaction ends).
async fn lock(conn: &mut PgConnection, project: ProjectId) -> Result<()> {
    let found: Option<i32> = sqlx::query_scalar("select 1 from projects where id = $1 for update")
        .bind(project)
        .fetch_optional(conn)
        .await?;
    found.map(|_| ()).ok_or(Error::NotFound)
}

#[derive(Debug, Clone)]
pub struct RuleInput {
    pub process_id: Option<ProcessId>,
    pub system_id: Option<SystemId>,
    pub site_id: Option<OrgUnitId>,
    pub group_id: GroupId,
}

/// Adds a rule at the end of the project's list.
pub async fn add(
    conn: &mut PgConnection,
    project: ProjectId,
    input: &RuleInput,
    now: Timestamp,
) -> Result<Rule> {
    lock(conn, project).await?;
    if let Some(site) = input.site_id {
        let is_site: bool = sqlx::query_scalar(
            "select exists (select 1 from org_units where id = $1 and kind in ('site', 'business_unit'))",
        )
        .bind(site)
        .fetch_one(&mut *conn)
        .await?;
        if !is_site {
            return Err(Error::Invalid(FieldErrors::one(
                "site_id",
                "Choose a site or business unit from the list.",
            )));
        }
    }
    let id = RoutingRuleId::new();
    sqlx::query(
        "insert into routing_rules (id, project_id, position, process_id, system_id, site_id, group_id, created_at)
         values ($1, $2, (select coalesce(max(position), 0) + 1 from routing_rules where project_id = $2),
                 $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(project)
    .bind(input.process_id)
    .bind(input.system_id)
    .bind(input.site_id)
    .bind(input.group_id)
    .bind(to_db(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        missing_reference(
            "group_id",
            "The process, system, site or group chosen no longer exists.",
        )(Error::Db(e))
    })?;
    find(conn, project, id).await
}

/// Deletes a rule; returns it as it was.
pub async fn delete(
    conn: &mut PgConnection,
    project: ProjectId,
    id: RoutingRuleId,
) -> Result<Rule> {
    lock(conn, project).await?;
    let rule = find(conn, project, id).await?;
    sqlx::query("delete from routing_rules where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(rule)
}

/// Swaps a rule with its neighbour before (`up`) or after it. Returns the order before and
/// after; the same when it is already first (or last).
pub async fn move_rule(
    conn: &mut PgConnection,
    project: ProjectId,
    id: RoutingRuleId,
    up: bool,
) -> Result<(Vec<RoutingRuleId>, Vec<RoutingRuleId>)> {
    lock(conn, project).await?;
    let mut order: Vec<RoutingRuleId> = rules(conn, project).await?.iter().map(|r| r.id).collect();
    let before = order.clone();
    let at = order.iter().position(|r| *r == id).ok_or(Error::NotFound)?;
    let other = if up { at.checked_sub(1) } else { Some(at + 1) };
    if let Some(other) = other.filter(|o| *o < order.len()) {
        order.swap(at, other);
        // Renumber from 1: positions stay dense whatever deletions left behind.
        let positions: Vec<i32> = (1..).take(order.len()).collect();
        sqlx::query(
            "update routing_rules r set position = n.position
             from unnest($1::uuid[], $2::int[]) as n(id, position) where r.id = n.id",
        )
        .bind(&order)
        .bind(&positions)
        .execute(conn)
        .await?;
    }
    Ok((before, order))
}

/// The calendar a project counts business days in (`None`: Monday to Friday, UTC).
pub async fn calendar(conn: &mut PgConnection, project: ProjectId) -> Result<Option<CalendarId>> {
    sqlx::query_scalar("select calendar_id from projects where id = $1")
        .bind(project)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)
}

pub async fn set_calendar(
    conn: &mut PgConnection,
    project: ProjectId,
    calendar: Option<CalendarId>,
) -> Result<()> {
    let done = sqlx::query("update projects set calendar_id = $2 where id = $1")
        .bind(project)
        .bind(calendar)
        .execute(conn)
        .await
        .map_err(|e| {
            missing_reference("calendar_id", "This calendar no longer exists.")(Error::Db(e))
        })?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}
