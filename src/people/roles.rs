//! Roles (named sets of permissions from the catalog) and memberships (a role given to a
//! user or a group, everywhere or in one project).

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::{GroupId, MembershipId, ProjectId, RoleId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Permission;

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

impl Role {
    pub fn has(&self, permission: &Permission) -> bool {
        self.permissions.iter().any(|p| p == permission.name())
    }
}

const ROLE_SELECT: &str = "select r.id, r.name, r.description,
        array(select rp.permission from role_permissions rp where rp.role_id = r.id order by 1) as permissions
     from roles r";

pub async fn list(conn: &mut PgConnection) -> Result<Vec<Role>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ROLE_SELECT} order by r.name"
    )))
    .fetch_all(conn)
    .await?)
}

pub async fn find(conn: &mut PgConnection, id: RoleId) -> Result<Role> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ROLE_SELECT} where r.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)
}

pub async fn find_by_name(conn: &mut PgConnection, name: &str) -> Result<Option<Role>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ROLE_SELECT} where lower(r.name) = lower($1)"
    )))
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

fn check(name: &str, permissions: &[String]) -> Result<Vec<Permission>> {
    let mut errors = FieldErrors::new();
    if name.trim().is_empty() {
        errors.add("name", "Enter a name.");
    } else if name.trim().chars().count() > 100 {
        errors.add("name", "Use at most 100 characters.");
    }
    let mut parsed = Vec::new();
    for p in permissions {
        match Permission::parse(p) {
            Some(p) => parsed.push(p),
            None => errors.add("permissions", format!("{p} is not a known permission.")),
        }
    }
    errors.into_result()?;
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

async fn write_permissions(
    conn: &mut PgConnection,
    id: RoleId,
    permissions: &[Permission],
) -> Result<()> {
    sqlx::query("delete from role_permissions where role_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let names: Vec<&str> = permissions.iter().map(|p| p.name()).collect();
    sqlx::query("insert into role_permissions (role_id, permission) select $1, unnest($2::text[])")
        .bind(id)
        .bind(&names)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn create(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
    permissions: &[String],
    now: Timestamp,
) -> Result<RoleId> {
    let parsed = check(name, permissions)?;
    let id = RoleId::new();
    sqlx::query("insert into roles (id, name, description, created_at) values ($1, $2, $3, $4)")
        .bind(id)
        .bind(name.trim())
        .bind(description.trim())
        .bind(to_db(now))
        .execute(&mut *conn)
        .await
        .on_constraint("roles_name_key", || {
            FieldErrors::one("name", "Another role has this name.")
        })?;
    write_permissions(conn, id, &parsed).await?;
    Ok(id)
}

/// Renames and sets the permissions; refused when nobody could administer users afterwards.
pub async fn update(
    conn: &mut PgConnection,
    id: RoleId,
    name: &str,
    description: &str,
    permissions: &[String],
) -> Result<()> {
    let parsed = check(name, permissions)?;
    let done = sqlx::query("update roles set name = $2, description = $3 where id = $1")
        .bind(id)
        .bind(name.trim())
        .bind(description.trim())
        .execute(&mut *conn)
        .await
        .on_constraint("roles_name_key", || {
            FieldErrors::one("name", "Another role has this name.")
        })?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    write_permissions(conn, id, &parsed).await?;
    ensure_an_admin_remains(conn).await
}

/// Deletes a role nobody holds, no process uses and no domain rule gives; otherwise lists
/// everything that refers to it.
pub async fn delete(conn: &mut PgConnection, id: RoleId) -> Result<()> {
    let role = find(conn, id).await?;
    let mut refusals = Vec::new();
    let uses = crate::processes::uses_of(conn, Some(&role.name), None).await?;
    if !uses.is_empty() {
        refusals.push(format!(
            "Processes still use this role: {}. Change them first.",
            uses.join("; ")
        ));
    }
    let holders = memberships_of_role(conn, id).await?;
    if !holders.is_empty() {
        let names: Vec<String> = holders.iter().map(Membership::describe).collect();
        refusals.push(format!(
            "This role is still given to: {}. Remove those first.",
            names.join("; ")
        ));
    }
    let rules: Vec<String> =
        sqlx::query_scalar("select domain from domain_rules where role_id = $1 order by domain")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    if !rules.is_empty() {
        refusals.push(format!(
            "Domain rules give this role to new people from: {}. Change or delete those rules first.",
            rules.join(", ")
        ));
    }
    if !refusals.is_empty() {
        return Err(Error::Invalid(FieldErrors::one("role", refusals.join(" "))));
    }
    // A reference added since the checks (another admin, just now) is refused the same way.
    let done = sqlx::query("delete from roles where id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(|e| {
            missing_reference(
                "role",
                "Something started to use this role just now; look again.",
            )(Error::Db(e))
        })?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Who a role is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    User(UserId),
    Group(GroupId),
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Membership {
    pub id: MembershipId,
    pub role_id: RoleId,
    pub role_name: String,
    pub user_id: Option<UserId>,
    pub user_name: Option<String>,
    pub group_id: Option<GroupId>,
    pub group_name: Option<String>,
    pub project_id: Option<ProjectId>,
    pub project_key: Option<String>,
}

impl Membership {
    pub fn holder_name(&self) -> String {
        match (&self.user_name, &self.group_name) {
            (Some(user), _) => user.clone(),
            (None, Some(group)) => format!("group {group}"),
            (None, None) => "?".into(),
        }
    }

    pub fn scope(&self) -> String {
        match &self.project_key {
            Some(key) => format!("in {key}"),
            None => "everywhere".into(),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} {} ({})",
            self.holder_name(),
            self.scope(),
            self.role_name
        )
    }
}

const MEMBERSHIP_SELECT: &str = "select m.id, m.role_id, r.name as role_name, m.user_id,
        u.display_name as user_name, m.group_id, g.name as group_name, m.project_id,
        p.key as project_key
     from memberships m join roles r on r.id = m.role_id
     left join users u on u.id = m.user_id
     left join groups g on g.id = m.group_id
     left join projects p on p.id = m.project_id";

pub async fn memberships_of_role(conn: &mut PgConnection, role: RoleId) -> Result<Vec<Membership>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBERSHIP_SELECT} where m.role_id = $1 order by u.display_name, g.name, p.key"
    )))
    .bind(role)
    .fetch_all(conn)
    .await?)
}

pub async fn memberships_of(conn: &mut PgConnection, holder: Holder) -> Result<Vec<Membership>> {
    let (column, id) = match holder {
        Holder::User(u) => ("m.user_id", u.0),
        Holder::Group(g) => ("m.group_id", g.0),
    };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBERSHIP_SELECT} where {column} = $1 order by r.name, p.key"
    )))
    .bind(id)
    .fetch_all(conn)
    .await?)
}

pub async fn find_membership(conn: &mut PgConnection, id: MembershipId) -> Result<Membership> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBERSHIP_SELECT} where m.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)
}

/// Gives a role; giving the same role again in the same scope is refused.
pub async fn grant(
    conn: &mut PgConnection,
    role: RoleId,
    holder: Holder,
    project: Option<ProjectId>,
    now: Timestamp,
) -> Result<MembershipId> {
    let (user, group) = match holder {
        Holder::User(u) => (Some(u), None),
        Holder::Group(g) => (None, Some(g)),
    };
    let id = MembershipId::new();
    sqlx::query(
        "insert into memberships (id, role_id, user_id, group_id, project_id, created_at)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(role)
    .bind(user)
    .bind(group)
    .bind(project)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("memberships_key", || {
        FieldErrors::one("role_id", "This role is already given here.")
    })
    .map_err(missing_reference(
        "role_id",
        "The role, holder or project does not exist.",
    ))?;
    Ok(id)
}

/// Takes a role away; refused when nobody could administer users afterwards.
pub async fn revoke(conn: &mut PgConnection, id: MembershipId) -> Result<()> {
    let done = sqlx::query("delete from memberships where id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    ensure_an_admin_remains(conn).await
}

/// Active users who can administer users (globally), directly or through a group.
pub async fn count_admins(conn: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "select count(distinct u.id) from users u
         join memberships m on m.project_id is null
              and (m.user_id = u.id or m.group_id in (select group_id from group_members where user_id = u.id))
         join role_permissions rp on rp.role_id = m.role_id and rp.permission = 'admin.users'
         where u.active",
    )
    .fetch_one(conn)
    .await?)
}

/// Called inside the changing transaction after the change: refuses (so the caller rolls
/// back) when no active user could administer users any more.
pub async fn ensure_an_admin_remains(conn: &mut PgConnection) -> Result<()> {
    if count_admins(conn).await? == 0 {
        return Err(Error::Invalid(FieldErrors::one(
            "admin",
            "This would leave nobody who can administer users. Make someone else an admin first.",
        )));
    }
    Ok(())
}
