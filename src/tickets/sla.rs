//! The stored SLA projection of a ticket: read its clock-moving events, replay them with
//! `engine::sla::project` under the project's policies, and write the dues on the ticket
//! (where queues sort and filter by them). `refresh` runs with every change of a ticket, in
//! its transaction, so the stored values are always the replay of the events.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value as Json;
use sqlx::PgConnection;

use super::event_data::EventData;
use crate::core::Result;
use crate::core::ids::{ProcessId, ProjectId, TicketId, UserId};
use crate::core::time::to_db;
use crate::engine::calendar::Calendar;
use crate::engine::sla::{self, Fact, Projection, Targets};
use crate::engine::workflow::Category;

/// A policy as it applies to one priority.
pub struct Policy {
    pub id: uuid::Uuid,
    pub targets: Targets,
}

type PolicyRow = (
    uuid::Uuid,
    i16,
    Option<i32>,
    Option<i32>,
    i16,
    String,
    sqlx::types::Json<Vec<String>>,
    Vec<String>,
);

/// The most specific policy per priority for a project and process: one of the project
/// beats one for any project; then one of the process beats one for any process.
pub async fn policies(
    conn: &mut PgConnection,
    project: ProjectId,
    process: Option<ProcessId>,
) -> Result<BTreeMap<i16, Policy>> {
    let rows: Vec<PolicyRow> = sqlx::query_as(
        "select p.id, p.priority, p.first_response_minutes, p.resolution_minutes, p.warn_percent,
                c.time_zone, c.week, c.holidays::text[]
         from sla_policies p join sla_calendars c on c.id = p.calendar_id
         where (p.project_id = $1 or p.project_id is null)
           and (p.process_id = $2 or p.process_id is null)
         order by p.priority, (p.project_id is not null) desc, (p.process_id is not null) desc",
    )
    .bind(project)
    .bind(process)
    .fetch_all(conn)
    .await?;
    let mut out = BTreeMap::new();
    for (id, priority, first, resolution, warn, zone, week, holidays) in rows {
        if out.contains_key(&priority) {
            continue;
        }
        // Calendars are checked when saved; one that no longer parses (a zone removed from
        // the tz database) counts around the clock rather than stopping the ticket.
        let calendar = Calendar::parse(&zone, &week.0, &holidays)
            .unwrap_or_else(|_| Calendar::always(jiff::tz::TimeZone::UTC));
        let minutes = |m: Option<i32>| m.map(|m| SignedDuration::from_mins(i64::from(m)));
        out.insert(
            priority,
            Policy {
                id,
                targets: Targets {
                    first_response: minutes(first),
                    resolution: minutes(resolution),
                    warn_percent: u8::try_from(warn).unwrap_or(80),
                    calendar,
                },
            },
        );
    }
    Ok(out)
}

/// The calendar a project counts business days in: its own, else Monday to Friday (UTC).
pub async fn project_calendar(conn: &mut PgConnection, project: ProjectId) -> Result<Calendar> {
    let row: Option<(String, sqlx::types::Json<Vec<String>>, Vec<String>)> = sqlx::query_as(
        "select c.time_zone, c.week, c.holidays::text[]
         from projects p join sla_calendars c on c.id = p.calendar_id where p.id = $1",
    )
    .bind(project)
    .fetch_optional(conn)
    .await?;
    let weekdays = || {
        Calendar::weekdays(
            jiff::tz::TimeZone::UTC,
            jiff::civil::Time::midnight(),
            jiff::civil::Time::MAX,
        )
    };
    Ok(match row {
        Some((zone, week, holidays)) => {
            Calendar::parse(&zone, &week.0, &holidays).unwrap_or_else(|_| weekdays())
        }
        None => weekdays(),
    })
}

/// The clock-moving facts in a ticket's events. A public comment by anyone but the
/// requester is the first response.
pub fn facts(requester: UserId, events: &[(Option<UserId>, EventData, Timestamp)]) -> Vec<Fact> {
    let category =
        |c: &str| -> Option<Category> { serde_json::from_value(Json::String(c.to_owned())).ok() };
    let mut out = Vec::new();
    for (actor, data, at) in events {
        let at = *at;
        match data {
            EventData::Created {
                category: c,
                priority,
                ..
            } => {
                out.push(Fact::Created {
                    at,
                    priority: if *priority == 0 { 3 } else { *priority },
                });
                if let Some(c) = category(c) {
                    out.push(Fact::Category { at, category: c });
                }
            }
            EventData::Transition { category: c, .. }
            | EventData::StateMapped { category: c, .. } => {
                if let Some(c) = category(c) {
                    out.push(Fact::Category { at, category: c });
                }
            }
            EventData::PriorityChanged { to, .. } => out.push(Fact::Priority { at, priority: *to }),
            EventData::Comment { public: true, .. }
                if *actor != Some(requester) && actor.is_some() =>
            {
                out.push(Fact::FirstResponse { at })
            }
            EventData::Clock { action, clock } => out.push(Fact::Clock {
                at,
                clock: clock.clone(),
                action: action.clone(),
            }),
            EventData::SlaBreached { clock } => out.push(Fact::Breached {
                at,
                clock: clock.clone(),
            }),
            _ => {}
        }
    }
    out
}

/// What the replay of a ticket's events gives, with the policy in force.
#[derive(Debug, Default)]
pub struct Replay {
    pub projection: Projection,
    pub policy_id: Option<uuid::Uuid>,
    pub first_response_at: Option<Timestamp>,
}

/// Replays a ticket's SLA from its events alone (and the current policies).
pub async fn replay(conn: &mut PgConnection, ticket: TicketId) -> Result<Replay> {
    type Row = (
        ProjectId,
        Option<ProcessId>,
        UserId,
        Option<UserId>,
        sqlx::types::Json<EventData>,
        jiff_sqlx::Timestamp,
    );
    // Comment bodies are not needed to move clocks: leave them in the database.
    let rows: Vec<Row> = sqlx::query_as(
        "select t.project_id, t.process_id, t.requester_id, e.actor_id,
                e.data - 'body_md' - 'body_html' || jsonb_build_object('body_md', '', 'body_html', ''),
                e.created_at
         from tickets t join ticket_events e on e.ticket_id = t.id
         where t.id = $1
           and e.kind in ('created', 'transition', 'state_mapped', 'comment', 'priority_changed',
                          'clock', 'sla_breached')
         order by e.id",
    )
    .bind(ticket)
    .fetch_all(&mut *conn)
    .await?;
    let Some((project, process, requester, ..)) = rows.first().cloned() else {
        return Ok(Replay {
            projection: Projection::default(),
            policy_id: None,
            first_response_at: None,
        });
    };
    let events: Vec<_> = rows
        .into_iter()
        .map(|(_, _, _, actor, data, at)| (actor, data.0, at.to_jiff()))
        .collect();
    replay_events(conn, project, process, requester, &events).await
}

/// The replay of events given in memory: a ticket about to be filed computes its clocks from
/// the event it will record, and is written once with them.
pub async fn replay_events(
    conn: &mut PgConnection,
    project: ProjectId,
    process: Option<ProcessId>,
    requester: UserId,
    events: &[(Option<UserId>, EventData, Timestamp)],
) -> Result<Replay> {
    let facts = facts(requester, events);
    let policies = policies(conn, project, process).await?;
    let priority = facts.iter().rev().find_map(|f| match f {
        Fact::Created { priority, .. } | Fact::Priority { priority, .. } => Some(*priority),
        _ => None,
    });
    let first_response_at = facts.iter().find_map(|f| match f {
        Fact::FirstResponse { at } => Some(*at),
        _ => None,
    });
    let projection = sla::project(&facts, |p| policies.get(&p).map(|p| &p.targets));
    Ok(Replay {
        projection,
        policy_id: priority.and_then(|p| policies.get(&p)).map(|p| p.id),
        first_response_at,
    })
}

/// Recomputes and stores a ticket's SLA projection (and its first-response stamp).
pub async fn refresh(conn: &mut PgConnection, ticket: TicketId) -> Result<()> {
    let r = replay(conn, ticket).await?;
    // Most events move no clock: then the row is left alone (a new row version of a ticket
    // rewrites its indexes, since the SLA columns are indexed).
    let query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "update tickets set {SET_CLOCKS}
         where id = $1
           and (sla_policy_id, first_response_due, resolution_due, sla_due, sla_warn_at,
                sla_paused, first_response_breached_at, resolution_breached_at, first_response_at)
               is distinct from ($2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(ticket);
    bind_clocks(query, &r).execute(conn).await?;
    Ok(())
}

/// The `set` list of the SLA columns of `tickets`, from `$2` to `$10` in `bind_clocks`'s order
/// (`$1` is left for the ticket's id).
pub const SET_CLOCKS: &str = "sla_policy_id = $2, first_response_due = $3, resolution_due = $4,
     sla_due = $5, sla_warn_at = $6, sla_paused = $7, first_response_breached_at = $8,
     resolution_breached_at = $9, first_response_at = $10";

/// Binds the ticket columns a replay gives, in this order: `sla_policy_id`,
/// `first_response_due`, `resolution_due`, `sla_due`, `sla_warn_at`, `sla_paused`,
/// `first_response_breached_at`, `resolution_breached_at`, `first_response_at`.
pub fn bind_clocks<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    r: &Replay,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let p = &r.projection;
    query
        .bind(r.policy_id)
        .bind(p.first_response_due.map(to_db))
        .bind(p.resolution_due.map(to_db))
        .bind(p.due.map(to_db))
        .bind(p.warn_at.map(to_db))
        .bind(p.paused)
        .bind(p.first_response_breached_at.map(to_db))
        .bind(p.resolution_breached_at.map(to_db))
        .bind(r.first_response_at.map(to_db))
}

/// The SLA columns as stored, for comparing with a replay.
pub async fn stored(conn: &mut PgConnection, ticket: TicketId) -> Result<Projection> {
    type Row = (
        Option<jiff_sqlx::Timestamp>,
        Option<jiff_sqlx::Timestamp>,
        Option<jiff_sqlx::Timestamp>,
        Option<jiff_sqlx::Timestamp>,
        bool,
        Option<jiff_sqlx::Timestamp>,
        Option<jiff_sqlx::Timestamp>,
    );
    let row: Row = sqlx::query_as(
        "select first_response_due, resolution_due, sla_due, sla_warn_at, sla_paused,
                first_response_breached_at, resolution_breached_at
         from tickets where id = $1",
    )
    .bind(ticket)
    .fetch_one(conn)
    .await?;
    let t = |v: Option<jiff_sqlx::Timestamp>| v.map(|v| v.to_jiff());
    Ok(Projection {
        first_response_due: t(row.0),
        resolution_due: t(row.1),
        due: t(row.2),
        warn_at: t(row.3),
        paused: row.4,
        first_response_breached_at: t(row.5),
        resolution_breached_at: t(row.6),
    })
}
