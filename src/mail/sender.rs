//! Who sent a message, as an account and as an actor for the policy.

use jiff::Timestamp;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::Mailbox;
use crate::core::ids::{GroupId, OrgUnitId, UserId};
use crate::core::{Error, Result};
use crate::engine::policy::{Actor, Grant};
use crate::people::{domain_rules, roles, sessions, users};

/// Who the From address is: one of our own mailbox addresses (a loop), a deactivated
/// account, or the account acting (made when unknown).
pub(super) enum Sender {
    Ours,
    Deactivated,
    Account(Actor),
}

/// The sender of a message to `mailbox`, in one statement for a known address: whether it is
/// one of ours, the account and its groups and grants. An unknown address gets an account
/// (without a password, placed by domain rule).
pub(super) async fn identify(
    conn: &mut PgConnection,
    email: &str,
    name: Option<&str>,
    mailbox: &Mailbox,
    now: Timestamp,
) -> Result<Sender> {
    #[derive(sqlx::FromRow)]
    struct Row {
        ours: bool,
        id: Option<UserId>,
        active: Option<bool>,
        org_unit_id: Option<OrgUnitId>,
        groups: Option<Vec<GroupId>>,
        grants: Option<Json<Vec<Grant>>>,
    }
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select exists (select 1 from mailboxes where address = lower($1)) as ours,
                u.id, u.active, u.org_unit_id, {}
         from (select 1) one left join users u on lower(u.email) = lower($1)",
        sessions::ACTOR_COLUMNS
    )))
    .bind(email.trim())
    .fetch_one(&mut *conn)
    .await?;
    if row.ours {
        return Ok(Sender::Ours);
    }
    Ok(match (row.id, row.active) {
        (Some(_), Some(false)) => Sender::Deactivated,
        (Some(id), _) => Sender::Account(mailbox_actor(
            id,
            row.org_unit_id,
            row.groups.unwrap_or_default(),
            row.grants.map(|g| g.0).unwrap_or_default(),
            mailbox,
        )),
        (None, _) => {
            let id = create_account(conn, email, name, now).await?;
            Sender::Account(load_actor(conn, id, mailbox).await?)
        }
    })
}

/// An account for an unknown sender: no password, placed by domain rule, a requester unless
/// the rule gives a role.
async fn create_account(
    conn: &mut PgConnection,
    email: &str,
    name: Option<&str>,
    now: Timestamp,
) -> Result<UserId> {
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
    Ok(id)
}

/// The account of a new sender as the policy sees them, with the mailbox's right.
async fn load_actor(conn: &mut PgConnection, user: UserId, mailbox: &Mailbox) -> Result<Actor> {
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
    Ok(mailbox_actor(
        user,
        row.org_unit_id,
        row.groups,
        row.grants.0,
        mailbox,
    ))
}

/// The sender as the policy sees them, plus the right to file in the mailbox's project: a
/// mailbox is an open door to its project, as its web form is to signed-in requesters.
fn mailbox_actor(
    user: UserId,
    org_unit: Option<OrgUnitId>,
    groups: Vec<GroupId>,
    mut grants: Vec<Grant>,
    mailbox: &Mailbox,
) -> Actor {
    grants.push(Grant {
        permission: "ticket.create".into(),
        project: Some(mailbox.project_id),
        role: format!("mailbox {}", mailbox.address),
        group: None,
    });
    Actor::new(user, org_unit, groups, grants)
}
