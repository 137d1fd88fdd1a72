//! Approval rounds as a primitive: entering a state with an approval step starts a round; the
//! approvers come from the step (named users, a group, the ticket's system owner, the
//! project's change board); each decision is an event; the round is decided as soon as its
//! rule is met or can no longer be met. Where the ticket goes then is the step's business
//! (`flow::settle`): a round hands its outcome back and never moves the ticket itself.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use super::event_data::EventData;
use super::events::record;
use super::ticket::Ticket;
use crate::core::ids::{ApprovalRoundId, GroupId, SystemId, TicketId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Actor};
use crate::engine::workflow::{ApprovalRule, Approvers, Definition, Outcome, Tally, Value, tally};
use crate::projects::Project;

/// The active people the step asks, or why there is nobody to ask.
async fn approvers_for(
    conn: &mut PgConnection,
    def: &Definition,
    who: &Approvers,
    project: &Project,
    values: &BTreeMap<String, Value>,
) -> Result<std::result::Result<Vec<UserId>, String>> {
    let found = |ids: Vec<UserId>, why: String| if ids.is_empty() { Err(why) } else { Ok(ids) };
    Ok(match who {
        Approvers::Users { users } => {
            let ids = sqlx::query_scalar("select id from users where lower(email) = any($1) and active order by display_name")
                .bind(users.iter().map(|u| u.to_lowercase()).collect::<Vec<_>>())
                .fetch_all(conn)
                .await?;
            found(ids, "none of the named approvers is an active user".into())
        }
        Approvers::Group { group } => {
            let ids = sqlx::query_scalar(
                "select u.id from users u join group_members gm on gm.user_id = u.id join groups g on g.id = gm.group_id
                 where lower(g.name) = lower($1) and u.active order by u.display_name",
            )
            .bind(group)
            .fetch_all(conn)
            .await?;
            found(ids, format!("the group “{group}” has no active members"))
        }
        Approvers::SystemOwner { field } => {
            let system = match values.get(field) {
                Some(Value::Text(s)) => uuid::Uuid::parse_str(s).ok().map(SystemId),
                _ => None,
            };
            let Some(system) = system else {
                let label = def
                    .field(field)
                    .map_or(field.as_str(), |f| f.label.as_str());
                return Ok(Err(format!("no system is chosen in “{label}”")));
            };
            let row: Option<(String, Option<UserId>)> = sqlx::query_as(
                "select s.name, u.id from systems s left join users u on u.id = s.owner_id and u.active where s.id = $1",
            )
            .bind(system)
            .fetch_optional(conn)
            .await?;
            match row {
                Some((_, Some(owner))) => Ok(vec![owner]),
                Some((name, None)) => Err(format!("the system “{name}” has no active owner")),
                None => Err("the chosen system no longer exists".into()),
            }
        }
        Approvers::ChangeBoard => {
            let board: Option<(GroupId, String)> = sqlx::query_as(
                "select g.id, g.name from projects p join groups g on g.id = p.change_board_group_id where p.id = $1",
            )
            .bind(project.id)
            .fetch_optional(&mut *conn)
            .await?;
            let Some((board, name)) = board else {
                return Ok(Err(format!(
                    "the project “{}” has no change board",
                    project.name
                )));
            };
            let ids = sqlx::query_scalar(
                "select u.id from users u join group_members gm on gm.user_id = u.id
                 where gm.group_id = $1 and u.active order by u.display_name",
            )
            .bind(board)
            .fetch_all(conn)
            .await?;
            found(
                ids,
                format!("the change board “{name}” has no active members"),
            )
        }
    })
}

/// Ends the ticket's pending rounds (it moves on, or a new round replaces them).
pub async fn end_pending(conn: &mut PgConnection, ticket: TicketId, now: Timestamp) -> Result<()> {
    sqlx::query("update approval_rounds set status = 'superseded', decided_at = $2 where ticket_id = $1 and status = 'pending'")
        .bind(ticket)
        .bind(to_db(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What starting a round came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A round is open; its approvers were asked.
    Round,
    /// The state has no approval step.
    NoStep,
    /// Nobody could be asked; no round was opened and the history says why. The caller moves
    /// the ticket on (`Outcome::Nobody`): a round nobody can decide would hold it forever.
    Nobody,
}

/// Starts a new round for `state` (earlier pending rounds of the ticket are superseded).
pub async fn start_round(
    conn: &mut PgConnection,
    ticket: TicketId,
    def: &Definition,
    state: &str,
    project: &Project,
    values: &BTreeMap<String, Value>,
    now: Timestamp,
) -> Result<Started> {
    let Some(step) = def.state(state).and_then(|s| s.approval.as_ref()) else {
        return Ok(Started::NoStep);
    };
    let label = def
        .state(state)
        .map_or(state.to_owned(), |s| s.label.clone());
    end_pending(conn, ticket, now).await?;
    let approvers = match approvers_for(conn, def, &step.approvers, project, values).await? {
        Ok(approvers) => approvers,
        Err(reason) => {
            record(
                conn,
                ticket,
                None,
                &EventData::NoApprovers {
                    state: label,
                    reason,
                },
                now,
            )
            .await?;
            return Ok(Started::Nobody);
        }
    };
    let round: i32 = sqlx::query_scalar(
        "select coalesce(max(round), 0) + 1 from approval_rounds where ticket_id = $1",
    )
    .bind(ticket)
    .fetch_one(&mut *conn)
    .await?;
    let id = ApprovalRoundId::new();
    sqlx::query(
        "insert into approval_rounds (id, ticket_id, state, round, rule, created_at) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(ticket)
    .bind(state)
    .bind(round)
    .bind(Json(step.rule))
    .bind(to_db(now))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into approval_requests (round_id, approver_id) select $1, unnest($2::uuid[])",
    )
    .bind(id)
    .bind(&approvers)
    .execute(&mut *conn)
    .await?;
    let names: Vec<String> = sqlx::query_scalar(
        "select display_name from users where id = any($1) order by display_name",
    )
    .bind(&approvers)
    .fetch_all(&mut *conn)
    .await?;
    record(
        conn,
        ticket,
        None,
        &EventData::ApprovalRequested {
            round,
            state: label,
            approvers: names,
        },
        now,
    )
    .await?;
    Ok(Started::Round)
}

/// What a decision came to: the round still waits for others, or it is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    Pending,
    /// The round of the approval step of `state` ended with `outcome`.
    Round {
        state: String,
        outcome: Outcome,
    },
}

/// Records the actor's decision on the ticket's open round, and the round's outcome when this
/// decision settles it. `ticket` must have been loaded with `find_for_change`.
pub async fn decide(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    approve: bool,
    comment: &str,
    now: Timestamp,
) -> Result<Decided> {
    let open: Option<(ApprovalRoundId, i32, String, Json<ApprovalRule>)> = sqlx::query_as(
        "select r.id, r.round, r.state, r.rule from approval_rounds r
         join approval_requests q on q.round_id = r.id
         where r.ticket_id = $1 and r.status = 'pending' and q.approver_id = $2 and q.decision is null
         for update of r",
    )
    .bind(ticket.id)
    .bind(actor.user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((round_id, round, state, rule)) = open else {
        return Err(Error::Invalid(FieldErrors::one(
            "decision",
            "You have no open approval on this ticket.",
        )));
    };
    if !approve && comment.trim().is_empty() {
        return Err(Error::Invalid(FieldErrors::one(
            "comment",
            "Say why you reject it.",
        )));
    }
    sqlx::query(
        "update approval_requests set decision = $3, comment = $4, decided_at = $5 where round_id = $1 and approver_id = $2",
    )
    .bind(round_id)
    .bind(actor.user_id)
    .bind(if approve { "approve" } else { "reject" })
    .bind(comment.trim())
    .bind(to_db(now))
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        ticket.id,
        Some(actor.user_id),
        &EventData::ApprovalDecision {
            round,
            approve,
            comment: comment.trim().to_owned(),
        },
        now,
    )
    .await?;
    let (asked, yes, no): (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where decision = 'approve'), count(*) filter (where decision = 'reject')
         from approval_requests where round_id = $1",
    )
    .bind(round_id)
    .fetch_one(&mut *conn)
    .await?;
    let count = |n: i64| usize::try_from(n).unwrap_or(0);
    let outcome = tally(rule.0, count(asked), count(yes), count(no));
    if outcome == Tally::Pending {
        return Ok(Decided::Pending);
    }
    let approved = outcome == Tally::Approved;
    sqlx::query("update approval_rounds set status = $2, decided_at = $3 where id = $1")
        .bind(round_id)
        .bind(if approved { "approved" } else { "rejected" })
        .bind(to_db(now))
        .execute(&mut *conn)
        .await?;
    record(
        conn,
        ticket.id,
        None,
        &EventData::ApprovalOutcome { round, approved },
        now,
    )
    .await?;
    let outcome = if approved {
        Outcome::Approved
    } else {
        Outcome::Rejected
    };
    Ok(Decided::Round { state, outcome })
}

/// A request on "Waiting on me".
#[derive(Debug, Clone, FromRow)]
pub struct Waiting {
    pub project_key: String,
    pub number: i64,
    pub title: String,
    pub requester_name: String,
    pub round: i32,
    pub asked_at: jiff_sqlx::Timestamp,
}

impl Waiting {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }
}

/// Open approvals of the actor, oldest first. Filtered by the policy like every ticket list
/// (being asked makes a ticket visible, so this only says so in one place).
pub async fn waiting_on(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<Waiting>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select p.key as project_key, t.number, t.title, u.display_name as requester_name, r.round, r.created_at as asked_at
         from approval_requests q join approval_rounds r on r.id = q.round_id and r.status = 'pending'
         join tickets t on t.id = r.ticket_id join projects p on p.id = t.project_id
         join users u on u.id = t.requester_id
         where q.decision is null and q.approver_id = ",
    );
    qb.push_bind(actor.user_id);
    policy::push_ticket_scope(&mut qb, actor, "t");
    qb.push(" order by r.created_at, t.id limit 200");
    Ok(qb.build_query_as().fetch_all(conn).await?)
}

/// One approver's answer in a round.
#[derive(Debug, Clone, FromRow)]
pub struct Answer {
    pub round: i32,
    pub status: String,
    pub approver_id: UserId,
    pub approver_name: String,
    pub decision: Option<String>,
    pub comment: String,
}

/// Every round of a ticket with its answers, newest round first.
pub async fn rounds(conn: &mut PgConnection, ticket: TicketId) -> Result<Vec<Answer>> {
    Ok(sqlx::query_as(
        "select r.round, r.status, q.approver_id, u.display_name as approver_name, q.decision, q.comment
         from approval_rounds r join approval_requests q on q.round_id = r.id join users u on u.id = q.approver_id
         where r.ticket_id = $1 order by r.round desc, u.display_name",
    )
    .bind(ticket)
    .fetch_all(conn)
    .await?)
}
