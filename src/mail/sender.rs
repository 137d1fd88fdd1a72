//! Who sent a message, as an account and as an actor for the policy.

use jiff::Timestamp;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::Mailbox;
use crate::core::ids::{GroupId, OrgUnitId, UserId};
use crate::core::{Error, Result};
use crate::engine::policy::{Actor, Grant};
use crate::people::{domain_rules, roles, sessions, users};

/// The sender's account, made (without a password, placed by domain rule) when unknown;
/// `None` when it is deactivated.
pub(super) async fn account(
    conn: &mut PgConnection,
    email: &str,
    name: Option<&str>,
    now: Timestamp,
) -> Result<Option<UserId>> {
    if let Some(user) = users::find_by_email(conn, email).await? {
        return Ok(user.active.then_some(user.id));
    }
    let rule_gives_role = domain_rules::for_email(conn, email)
        .await?
        .is_some_and(|r| r.role_id.is_some());
    let mut role_ids = Vec::new();
    if !rule_gives_role && let Some(role) = roles::find_by_name(conn, "Requester").await? {
        role_ids.push(role.id);
    }
    let display_name = name
        .map(|n| n.chars().take(200).collect::<String>())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
    let id = users::create(
        conn,
        &users::NewUser {
            email: email.to_owned(),
            display_name,
            password_hash: None,
            org_unit_id: None,
            roles: role_ids,
        },
        now,
    )
    .await?;
    Ok(Some(id))
}

/// The sender as the policy sees them, plus the right to file in the mailbox's project: a
/// mailbox is an open door to its project, as its web form is to signed-in requesters.
pub(super) async fn actor(
    conn: &mut PgConnection,
    user: UserId,
    mailbox: &Mailbox,
) -> Result<Actor> {
    #[derive(sqlx::FromRow)]
    struct Row {
        org_unit_id: Option<OrgUnitId>,
        groups: Vec<GroupId>,
        grants: Json<Vec<Grant>>,
    }
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select u.org_unit_id, {} from users u where u.id = $1",
        sessions::ACTOR_COLUMNS
    )))
    .bind(user)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)?;
    let mut grants = row.grants.0;
    grants.push(Grant {
        permission: "ticket.create".into(),
        project: Some(mailbox.project_id),
        role: format!("mailbox {}", mailbox.address),
        group: None,
    });
    Ok(Actor::new(user, row.org_unit_id, row.groups, grants))
}
