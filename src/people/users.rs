//! Users. Never deleted: history refers to them; deactivation ends their sessions.

use sqlx::{FromRow, PgConnection};

use crate::core::error::OnConstraint;
use crate::core::ids::UserId;
use crate::core::time::to_db;
use crate::core::{FieldErrors, Result};

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub is_admin: bool,
    pub active: bool,
}

/// A checked e-mail address: trimmed, one `@`, no spaces, at most 254 characters.
pub fn parse_email(input: &str, field: &str) -> Result<String, FieldErrors> {
    let email = input.trim();
    let valid = email.len() <= 254
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

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
}

pub async fn create(
    conn: &mut PgConnection,
    new: &NewUser,
    now: jiff::Timestamp,
) -> Result<UserId> {
    let mut errors = FieldErrors::new();
    let email = parse_email(&new.email, "email").unwrap_or_else(|e| {
        errors = e;
        String::new()
    });
    let name = new.display_name.trim();
    if name.is_empty() {
        errors.add("display_name", "Enter a name.");
    } else if name.chars().count() > 200 {
        errors.add("display_name", "Use at most 200 characters.");
    }
    errors.into_result()?;
    let id = UserId::new();
    sqlx::query(
        "insert into users (id, email, display_name, password_hash, is_admin, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(id)
    .bind(&email)
    .bind(name)
    .bind(&new.password_hash)
    .bind(new.is_admin)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("users_email_key", || {
        FieldErrors::one("email", "This e-mail address is already used by another account.")
    })?;
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

pub async fn find_by_email(conn: &mut PgConnection, email: &str) -> Result<Option<User>> {
    Ok(sqlx::query_as(
        "select id, email, display_name, is_admin, active from users where lower(email) = lower($1)",
    )
    .bind(email.trim())
    .fetch_optional(conn)
    .await?)
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
    now: jiff::Timestamp,
) -> Result<()> {
    sqlx::query("update users set password_hash = $2, updated_at = $3 where id = $1")
        .bind(id)
        .bind(hash)
        .bind(to_db(now))
        .execute(conn)
        .await?;
    Ok(())
}
