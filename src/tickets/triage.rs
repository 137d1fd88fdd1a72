//! Triage: priority from impact × urgency (a matrix per project), routing new tickets to a
//! group, assigning (the first assignment to a person is the pickup), taking, and escalating
//! to the group's next tier with a reason. Each change is checked by the policy and written
//! with its event in the caller's transaction.

use jiff::Timestamp;
use sqlx::PgConnection;

use super::event_data::EventData;
use super::events::record;
use super::ticket::{Ticket, touch};
use crate::core::ids::{GroupId, OrgUnitId, ProcessId, ProjectId, SystemId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};

pub const DEFAULT_PRIORITY: i16 = 3;
pub const PRIORITIES: [(i16, &str); 4] = [
    (1, "P1 Critical"),
    (2, "P2 High"),
    (3, "P3 Medium"),
    (4, "P4 Low"),
];
/// Impact and urgency levels.
pub const LEVELS: [(i16, &str); 3] = [(1, "High"), (2, "Medium"), (3, "Low")];
pub const REASON_MAX: usize = 2_000;

pub fn priority_name(priority: i16) -> &'static str {
    PRIORITIES
        .iter()
        .find(|(p, _)| *p == priority)
        .map_or("?", |(_, name)| name)
}

pub fn level_name(level: i16) -> &'static str {
    LEVELS
        .iter()
        .find(|(l, _)| *l == level)
        .map_or("?", |(_, name)| name)
}

/// The priority of a matrix cell without a project's own value.
pub fn default_priority(impact: i16, urgency: i16) -> i16 {
    (impact + urgency - 1).clamp(1, 4)
}

/// A project's matrix, `[impact - 1][urgency - 1]`.
pub async fn matrix(conn: &mut PgConnection, project: ProjectId) -> Result<[[i16; 3]; 3]> {
    let mut cells = [[0i16; 3]; 3];
    for (i, row) in cells.iter_mut().enumerate() {
        for (u, cell) in row.iter_mut().enumerate() {
            *cell = default_priority(i as i16 + 1, u as i16 + 1);
        }
    }
    let rows: Vec<(i16, i16, i16)> = sqlx::query_as(
        "select impact, urgency, priority from priority_matrix where project_id = $1",
    )
    .bind(project)
    .fetch_all(conn)
    .await?;
    for (impact, urgency, priority) in rows {
        if let Some(cell) = cells
            .get_mut(impact as usize - 1)
            .and_then(|r| r.get_mut(urgency as usize - 1))
        {
            *cell = priority;
        }
    }
    Ok(cells)
}

/// Stores a project's whole matrix.
pub async fn save_matrix(
    conn: &mut PgConnection,
    project: ProjectId,
    cells: &[[i16; 3]; 3],
) -> Result<()> {
    sqlx::query("delete from priority_matrix where project_id = $1")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    let (mut impacts, mut urgencies, mut priorities) = (Vec::new(), Vec::new(), Vec::new());
    for (i, row) in cells.iter().enumerate() {
        for (u, p) in row.iter().enumerate() {
            impacts.push(i as i16 + 1);
            urgencies.push(u as i16 + 1);
            priorities.push(*p);
        }
    }
    sqlx::query(
        "insert into priority_matrix (project_id, impact, urgency, priority)
         select $1, * from unnest($2::smallint[], $3::smallint[], $4::smallint[])",
    )
    .bind(project)
    .bind(impacts)
    .bind(urgencies)
    .bind(priorities)
    .execute(conn)
    .await?;
    Ok(())
}

/// The group a new ticket goes to: that of the first routing rule that matches it; without
/// one, the support group of the system it is about. Asked before the ticket is inserted, so
/// the row is written once with its group.
pub async fn routed_group(
    conn: &mut PgConnection,
    project: ProjectId,
    process: ProcessId,
    system: Option<SystemId>,
    site: Option<OrgUnitId>,
) -> Result<Option<(GroupId, String)>> {
    Ok(sqlx::query_as(
        "select g.id, g.name from (
             select r.group_id, 0 as rank, r.position from routing_rules r
             where r.project_id = $1
               and (r.process_id is null or r.process_id = $2)
               and (r.system_id is null or r.system_id = $3)
               and (r.site_id is null or r.site_id = $4)
             union all
             select s.support_group_id, 1, 0 from systems s
             where s.id = $3 and s.support_group_id is not null
         ) m join groups g on g.id = m.group_id
         order by m.rank, m.position limit 1",
    )
    .bind(project)
    .bind(process)
    .bind(system)
    .bind(site)
    .fetch_optional(&mut *conn)
    .await?)
}

fn allowed(actor: &Actor, action: Action, ticket: &Ticket) -> Result<()> {
    if policy::decide(actor, action, Target::Ticket(&ticket.facts())).allowed() {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// Sets impact and urgency (the priority follows the project's matrix), or a priority
/// directly when both are left empty.
pub async fn set_priority(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    impact: Option<i16>,
    urgency: Option<i16>,
    priority: Option<i16>,
    now: Timestamp,
) -> Result<()> {
    allowed(actor, Action::EditTicket, ticket)?;
    let level = |v: Option<i16>| v.filter(|v| (1..=3).contains(v));
    let mut errors = FieldErrors::new();
    let new = match (level(impact), level(urgency)) {
        (Some(i), Some(u)) => {
            matrix(conn, ticket.project_id).await?[i as usize - 1][u as usize - 1]
        }
        (None, None) => match priority.filter(|p| (1..=4).contains(p)) {
            Some(p) => p,
            None => {
                errors.add("priority", "Choose a priority, or impact and urgency.");
                0
            }
        },
        (i, _) => {
            let field = if i.is_none() { "impact" } else { "urgency" };
            errors.add(field, "Choose both impact and urgency, or neither.");
            0
        }
    };
    errors.into_result()?;
    let (impact, urgency) = (level(impact), level(urgency));
    if new == ticket.priority && impact == ticket.impact && urgency == ticket.urgency {
        return Ok(());
    }
    sqlx::query("update tickets set priority = $2, impact = $3, urgency = $4 where id = $1")
        .bind(ticket.id)
        .bind(new)
        .bind(impact)
        .bind(urgency)
        .execute(&mut *conn)
        .await?;
    record(
        conn,
        ticket.id,
        Some(actor.user_id),
        &EventData::PriorityChanged {
            from: ticket.priority,
            to: new,
            impact,
            urgency,
        },
        now,
    )
    .await?;
    touch(conn, ticket.id, now).await
}

/// Assigns to a group and/or a person (who must be an active member of that group, when
/// there is one). Stamps the pickup at the first assignment to a person.
pub async fn assign(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    group: Option<GroupId>,
    assignee: Option<UserId>,
    now: Timestamp,
) -> Result<()> {
    set_assignment(conn, actor, ticket, group, assignee, true, now).await
}

async fn set_assignment(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    group: Option<GroupId>,
    assignee: Option<UserId>,
    members_only: bool,
    now: Timestamp,
) -> Result<()> {
    allowed(actor, Action::AssignTicket, ticket)?;
    let mut errors = FieldErrors::new();
    let group_name: Option<String> = match group {
        Some(g) => {
            let name = sqlx::query_scalar("select name from groups where id = $1")
                .bind(g)
                .fetch_optional(&mut *conn)
                .await?;
            if name.is_none() {
                errors.add("group_id", "There is no such group.");
            }
            name
        }
        None => None,
    };
    let assignee_name: Option<String> = match assignee {
        Some(user) => {
            let row: Option<(String, bool)> = sqlx::query_as(
                "select u.display_name,
                        not $3 or $2::uuid is null
                        or exists (select 1 from group_members m where m.group_id = $2 and m.user_id = u.id)
                 from users u where u.id = $1 and u.active",
            )
            .bind(user)
            .bind(group)
            .bind(members_only)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => {
                    errors.add("assignee_id", "There is no such active person.");
                    None
                }
                Some((name, false)) => {
                    errors.add(
                        "assignee_id",
                        format!(
                            "{name} is not in {}; choose a member or another group.",
                            group_name.as_deref().unwrap_or("that group")
                        ),
                    );
                    None
                }
                Some((name, true)) => Some(name),
            }
        }
        None => None,
    };
    errors.into_result()?;
    if group == ticket.assignee_group_id && assignee == ticket.assignee_id {
        return Ok(());
    }
    sqlx::query(
        "update tickets set assignee_group_id = $2, assignee_id = $3,
                picked_up_at = case when $3::uuid is not null then coalesce(picked_up_at, $4) else picked_up_at end
         where id = $1",
    )
    .bind(ticket.id)
    .bind(group)
    .bind(assignee)
    .bind(to_db(now))
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        ticket.id,
        Some(actor.user_id),
        &EventData::Assigned {
            assignee: assignee_name,
            group: group_name,
        },
        now,
    )
    .await?;
    touch(conn, ticket.id, now).await
}

/// "Take": assign to me. The ticket stays in its group's queue, even when I am not a member
/// (an L2 agent taking an L1 ticket).
pub async fn take(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    now: Timestamp,
) -> Result<()> {
    let group = ticket.assignee_group_id;
    set_assignment(conn, actor, ticket, group, Some(actor.user_id), false, now).await
}

/// Escalates to the next tier of the ticket's group, with a required reason; the new tier
/// picks it up from its queue (the assignee is cleared).
pub async fn escalate(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    reason: &str,
    now: Timestamp,
) -> Result<()> {
    allowed(actor, Action::AssignTicket, ticket)?;
    let reason = reason.trim();
    let mut errors = FieldErrors::new();
    if reason.is_empty() {
        errors.add("reason", "Say why it needs the next tier.");
    } else if reason.chars().count() > REASON_MAX {
        errors.add("reason", format!("Use at most {REASON_MAX} characters."));
    }
    let tiers: Option<(String, Option<GroupId>, Option<String>)> = match ticket.assignee_group_id {
        Some(g) => sqlx::query_as(
            "select g.name, n.id, n.name from groups g left join groups n on n.id = g.escalates_to
                 where g.id = $1",
        )
        .bind(g)
        .fetch_optional(&mut *conn)
        .await?,
        None => None,
    };
    let (from, to, to_name) = match tiers {
        Some((from, Some(to), Some(to_name))) => (Some(from), to, to_name),
        Some((from, _, _)) => {
            errors.add(
                "reason",
                format!("{from} has no next tier; reassign the ticket instead."),
            );
            return Err(Error::Invalid(errors));
        }
        None => {
            errors.add(
                "reason",
                "The ticket is in no group yet; assign it to one first.",
            );
            return Err(Error::Invalid(errors));
        }
    };
    errors.into_result()?;
    sqlx::query("update tickets set assignee_group_id = $2, assignee_id = null where id = $1")
        .bind(ticket.id)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    record(
        conn,
        ticket.id,
        Some(actor.user_id),
        &EventData::Escalated {
            from,
            to: to_name,
            reason: reason.to_owned(),
        },
        now,
    )
    .await?;
    touch(conn, ticket.id, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_matrix_is_the_usual_one() {
        assert_eq!(default_priority(1, 1), 1);
        assert_eq!(default_priority(1, 2), 2);
        assert_eq!(default_priority(2, 2), 3);
        assert_eq!(default_priority(3, 3), 4);
        assert_eq!(priority_name(2), "P2 High");
    }
}
