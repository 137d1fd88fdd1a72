//! Groups of people: teams, help desk tiers, boards. A role given to a group is held by every
//! member, so adding a person to a group is the only step to give them its rights.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::{GroupId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

use super::roles::{self, Holder};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub description: String,
    pub member_count: i64,
    /// The next tier: where escalating a ticket of this group moves it.
    pub escalates_to: Option<GroupId>,
    pub escalates_to_name: Option<String>,
}

const SELECT: &str = "select g.id, g.name, g.description,
        (select count(*) from group_members gm where gm.group_id = g.id) as member_count,
        g.escalates_to, (select n.name from groups n where n.id = g.escalates_to) as escalates_to_name
     from groups g";

pub async fn list(conn: &mut PgConnection) -> Result<Vec<Group>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} order by lower(g.name)"
    )))
    .fetch_all(conn)
    .await?)
}

pub async fn find(conn: &mut PgConnection, id: GroupId) -> Result<Group> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where g.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)
}

pub async fn find_by_name(conn: &mut PgConnection, name: &str) -> Result<Option<Group>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where lower(g.name) = lower($1)"
    )))
    .bind(name.trim())
    .fetch_optional(conn)
    .await?)
}

fn check(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::Invalid(FieldErrors::one("name", "Enter a name.")));
    }
    if name.trim().chars().count() > 100 {
        return Err(Error::Invalid(FieldErrors::one(
            "name",
            "Use at most 100 characters.",
        )));
    }
    Ok(())
}

pub async fn create(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
    now: Timestamp,
) -> Result<GroupId> {
    check(name)?;
    let id = GroupId::new();
    sqlx::query("insert into groups (id, name, description, created_at) values ($1, $2, $3, $4)")
        .bind(id)
        .bind(name.trim())
        .bind(description.trim())
        .bind(to_db(now))
        .execute(conn)
        .await
        .on_constraint("groups_name_key", || {
            FieldErrors::one("name", "Another group has this name.")
        })?;
    Ok(id)
}

pub async fn update(
    conn: &mut PgConnection,
    id: GroupId,
    name: &str,
    description: &str,
) -> Result<()> {
    check(name)?;
    let done = sqlx::query("update groups set name = $2, description = $3 where id = $1")
        .bind(id)
        .bind(name.trim())
        .bind(description.trim())
        .execute(conn)
        .await
        .on_constraint("groups_name_key", || {
            FieldErrors::one("name", "Another group has this name.")
        })?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// What still points at a group, in words; empty when it can go.
pub async fn references(conn: &mut PgConnection, id: GroupId) -> Result<Vec<String>> {
    let mut found: Vec<String> = roles::memberships_of(conn, Holder::Group(id))
        .await?
        .iter()
        .map(|m| format!("role {} {}", m.role_name, m.scope()))
        .collect();
    let systems: Vec<String> =
        sqlx::query_scalar("select name from systems where support_group_id = $1 order by name")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    found.extend(
        systems
            .into_iter()
            .map(|s| format!("support group of system {s}")),
    );
    let tickets: i64 =
        sqlx::query_scalar("select count(*) from tickets where assignee_group_id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    if tickets > 0 {
        found.push(format!("{tickets} ticket(s) assigned to it"));
    }
    let lower_tiers: Vec<String> =
        sqlx::query_scalar("select name from groups where escalates_to = $1 order by name")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    found.extend(lower_tiers.into_iter().map(|g| format!("next tier of {g}")));
    let routes: Vec<String> = sqlx::query_scalar(
        "select distinct p.key from routing_rules r join projects p on p.id = r.project_id
         where r.group_id = $1 order by p.key",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    found.extend(
        routes
            .into_iter()
            .map(|k| format!("routing rule of project {k}")),
    );
    let boards: Vec<String> = sqlx::query_scalar(
        "select key from projects where change_board_group_id = $1 order by key",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    found.extend(
        boards
            .into_iter()
            .map(|k| format!("change board of project {k}")),
    );
    let name: Option<String> = sqlx::query_scalar("select name from groups where id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(name) = name {
        found.extend(crate::processes::uses_of(conn, None, Some(&name)).await?);
    }
    Ok(found)
}

/// Deletes a group that nothing refers to (its members are simply released).
pub async fn delete(conn: &mut PgConnection, id: GroupId) -> Result<()> {
    let refs = references(conn, id).await?;
    if !refs.is_empty() {
        return Err(Error::Invalid(FieldErrors::one(
            "group",
            format!(
                "This group is still used: {}. Remove those first.",
                refs.join("; ")
            ),
        )));
    }
    sqlx::query("delete from group_members where group_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    // A reference added since the checks (another admin, just now) is refused the same way.
    let done = sqlx::query("delete from groups where id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(|e| {
            missing_reference(
                "group",
                "Something started to use this group just now; look again.",
            )(Error::Db(e))
        })?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Sets the group's next tier; refuses the group itself and loops (A → B → A).
pub async fn set_tier(conn: &mut PgConnection, id: GroupId, next: Option<GroupId>) -> Result<()> {
    // One tier change at a time, so two admins cannot close a loop between them.
    sqlx::query("select pg_advisory_xact_lock(hashtext('groups.escalates_to'))")
        .execute(&mut *conn)
        .await?;
    let group = find(conn, id).await?;
    if let Some(next) = next {
        if next == id {
            return Err(Error::Invalid(FieldErrors::one(
                "escalates_to",
                "A group cannot escalate to itself.",
            )));
        }
        // The chain from the chosen group on; it must not come back here.
        let chain: Vec<(GroupId, String)> = sqlx::query_as(
            "with recursive chain (id, depth, seen) as (
                 select $1::uuid, 0, array[$1::uuid]
                 union all
                 select g.escalates_to, c.depth + 1, c.seen || g.escalates_to
                 from chain c join groups g on g.id = c.id
                 where g.escalates_to is not null and not g.escalates_to = any(c.seen)
             )
             select c.id, g.name from chain c join groups g on g.id = c.id order by c.depth",
        )
        .bind(next)
        .fetch_all(&mut *conn)
        .await?;
        if chain.is_empty() {
            return Err(Error::Invalid(FieldErrors::one(
                "escalates_to",
                "Choose a group from the list.",
            )));
        }
        if let Some(back) = chain.iter().position(|(g, _)| *g == id) {
            let path: Vec<&str> = std::iter::once(group.name.as_str())
                .chain(chain.iter().take(back + 1).map(|(_, name)| name.as_str()))
                .collect();
            return Err(Error::Invalid(FieldErrors::one(
                "escalates_to",
                format!(
                    "That would make a loop: {}. Tiers must end somewhere.",
                    path.join(" → ")
                ),
            )));
        }
    }
    sqlx::query("update groups set escalates_to = $2 where id = $1")
        .bind(id)
        .bind(next)
        .execute(conn)
        .await
        .on_constraint("groups_not_own_tier", || {
            FieldErrors::one("escalates_to", "A group cannot escalate to itself.")
        })?;
    Ok(())
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub display_name: String,
    pub email: String,
    pub active: bool,
}

pub async fn members(conn: &mut PgConnection, id: GroupId) -> Result<Vec<Member>> {
    Ok(sqlx::query_as(
        "select u.id as user_id, u.display_name, u.email, u.active
         from group_members gm join users u on u.id = gm.user_id
         where gm.group_id = $1 order by lower(u.display_name)",
    )
    .bind(id)
    .fetch_all(conn)
    .await?)
}

/// Groups a user is in.
pub async fn of_user(conn: &mut PgConnection, user: UserId) -> Result<Vec<Group>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where g.id in (select group_id from group_members where user_id = $1) order by lower(g.name)"
    )))
    .bind(user)
    .fetch_all(conn)
    .await?)
}

pub async fn add_member(conn: &mut PgConnection, group: GroupId, user: UserId) -> Result<bool> {
    let done = sqlx::query(
        "insert into group_members (group_id, user_id) values ($1, $2) on conflict do nothing",
    )
    .bind(group)
    .bind(user)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a member; refused when nobody could administer users afterwards.
pub async fn remove_member(conn: &mut PgConnection, group: GroupId, user: UserId) -> Result<()> {
    let done = sqlx::query("delete from group_members where group_id = $1 and user_id = $2")
        .bind(group)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    roles::ensure_an_admin_remains(conn).await
}
