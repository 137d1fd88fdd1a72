//! Users. Never deleted: history refers to them; deactivation ends their sessions.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::{OrgUnitId, RoleId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

use super::{domain_rules, roles};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub active: bool,
    pub org_unit_id: Option<OrgUnitId>,
}

/// The longest e-mail address an account can have, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// A checked e-mail address: trimmed, one `@`, no spaces, at most 254 bytes.
pub fn parse_email(input: &str, field: &str) -> Result<String, FieldErrors> {
    let email = input.trim();
    let valid = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
               && !domain.starts_with('.') && !domain.ends_with('.'));
    if email.is_empty() {
        Err(FieldErrors::one(field, "Enter an e-mail address."))
    } else if valid {
        Ok(email.to_owned())
    } else {
        Err(FieldErrors::one(
            field,
            "Enter an e-mail address like name@example.com.",
        ))
    }
}

fn check_name(errors: &mut FieldErrors, name: &str) {
    if name.trim().is_empty() {
        errors.add("display_name", "Enter a name.");
    } else if name.trim().chars().count() > 200 {
        errors.add("display_name", "Use at most 200 characters.");
    }
}

/// A new account.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    /// When unset, a domain rule may place the user.
    pub org_unit_id: Option<OrgUnitId>,
    /// Roles given everywhere; when empty, a domain rule may give one.
    pub roles: Vec<RoleId>,
}

/// Creates an account, with its global roles, placed by a domain rule where nothing was given.
pub async fn create(conn: &mut PgConnection, new: &NewUser, now: Timestamp) -> Result<UserId> {
    let mut errors = FieldErrors::new();
    let email = match parse_email(&new.email, "email") {
        Ok(email) => email,
        Err(e) => {
            errors = e;
            String::new()
        }
    };
    check_name(&mut errors, &new.display_name);
    errors.into_result()?;
    let rule = domain_rules::for_email(conn, &email).await?;
    let org_unit = new
        .org_unit_id
        .or(rule.as_ref().and_then(|r| r.org_unit_id));
    let id = UserId::new();
    sqlx::query(
        "insert into users (id, email, display_name, password_hash, org_unit_id, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(id)
    .bind(&email)
    .bind(new.display_name.trim())
    .bind(&new.password_hash)
    .bind(org_unit)
    .bind(to_db(now))
    .execute(&mut *conn)
    .await
    .on_constraint("users_email_key", || {
        FieldErrors::one("email", "This e-mail address is already used by another account.")
    })
    .map_err(missing_reference("org_unit_id", "This organisation unit does not exist."))?;
    let mut role_ids = new.roles.clone();
    if role_ids.is_empty()
        && let Some(role) = rule.and_then(|r| r.role_id)
    {
        role_ids.push(role);
    }
    for role in role_ids {
        roles::grant(conn, role, roles::Holder::User(id), None, now).await?;
    }
    Ok(id)
}

/// An active user and their password hash, by e-mail in any case.
pub async fn find_for_login(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<(UserId, Option<String>)>> {
    let row: Option<(UserId, Option<String>)> = sqlx::query_as(
        "select id, password_hash from users where lower(email) = lower($1) and active",
    )
    .bind(email.trim())
    .fetch_optional(conn)
    .await?;
    Ok(row)
}

const COLUMNS: &str = "id, email, display_name, active, org_unit_id";

pub async fn find_by_email(conn: &mut PgConnection, email: &str) -> Result<Option<User>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where lower(email) = lower($1)"
    )))
    .bind(email.trim())
    .fetch_optional(conn)
    .await?)
}

pub async fn find(conn: &mut PgConnection, id: UserId) -> Result<User> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)
}

/// Users whose name or e-mail starts with `query` (all when empty), by name, keyset-paged
/// after `(name, id)`.
pub async fn search(
    conn: &mut PgConnection,
    query: &str,
    after: Option<(String, UserId)>,
    limit: i64,
) -> Result<Vec<User>> {
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("select {COLUMNS} from users where true"));
    let query = query.trim().to_lowercase();
    if !query.is_empty() {
        let pattern = format!(
            "{}%",
            query
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        qb.push(" and (lower(display_name) like ")
            .push_bind(pattern.clone())
            .push(" or lower(email) like ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some((name, id)) = after {
        qb.push(" and (lower(display_name), id) > (")
            .push_bind(name.to_lowercase())
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    qb.push(" order by lower(display_name), id limit ")
        .push_bind(limit);
    Ok(qb.build_query_as().fetch_all(conn).await?)
}

/// Changes name, e-mail and organisation unit.
pub async fn update(
    conn: &mut PgConnection,
    id: UserId,
    email: &str,
    display_name: &str,
    org_unit_id: Option<OrgUnitId>,
    now: Timestamp,
) -> Result<()> {
    let mut errors = FieldErrors::new();
    let email = match parse_email(email, "email") {
        Ok(e) => e,
        Err(e) => {
            errors = e;
            String::new()
        }
    };
    check_name(&mut errors, display_name);
    errors.into_result()?;
    sqlx::query(
        "update users set email = $2, display_name = $3, org_unit_id = $4, updated_at = $5 where id = $1",
    )
    .bind(id)
    .bind(&email)
    .bind(display_name.trim())
    .bind(org_unit_id)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("users_email_key", || {
        FieldErrors::one("email", "This e-mail address is already used by another account.")
    })?;
    Ok(())
}

/// Activates or deactivates; deactivation ends every session of the user. Refused when it
/// would leave nobody who can administer users.
pub async fn set_active(
    conn: &mut PgConnection,
    id: UserId,
    active: bool,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("update users set active = $2, updated_at = $3 where id = $1")
        .bind(id)
        .bind(active)
        .bind(to_db(now))
        .execute(&mut *conn)
        .await?;
    if !active {
        super::sessions::revoke_others(conn, id, None).await?;
        roles::ensure_an_admin_remains(conn).await?;
    }
    Ok(())
}

pub async fn password_hash(conn: &mut PgConnection, id: UserId) -> Result<Option<String>> {
    let hash: Option<Option<String>> =
        sqlx::query_scalar("select password_hash from users where id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(hash.flatten())
}

/// Stores a new password hash. The caller ends other sessions in the same transaction.
pub async fn set_password_hash(
    conn: &mut PgConnection,
    id: UserId,
    hash: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("update users set password_hash = $2, updated_at = $3 where id = $1")
        .bind(id)
        .bind(hash)
        .bind(to_db(now))
        .execute(conn)
        .await?;
    Ok(())
}
