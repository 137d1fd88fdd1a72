//! The append-only history of a ticket: what happened, written with the change, and read
//! back as its timeline. The one writer of `ticket_events`.

use jiff::Timestamp;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::event_data::EventData;
use super::notices;
use crate::core::Result;
use crate::core::ids::{ProjectId, TicketId, UserId};
use crate::core::time::to_db;
use crate::notifications::{self, Audience, EventRef};

/// Appends an event. The only writer of `ticket_events`. Those it concerns are notified by
/// the same statement (see `notifications::push_fan_out`).
pub async fn record(
    conn: &mut PgConnection,
    ticket: TicketId,
    actor: Option<UserId>,
    data: &EventData,
    now: Timestamp,
) -> Result<()> {
    record_returning_id(conn, ticket, actor, data, now).await?;
    Ok(())
}

/// As `record`, answering the new event's id (for rows that point to it). Writes the
/// event's notifications in the same transaction.
pub async fn record_returning_id(
    conn: &mut PgConnection,
    ticket: TicketId,
    actor: Option<UserId>,
    data: &EventData,
    now: Timestamp,
) -> Result<i64> {
    record_notifying(conn, ticket, actor, data, &Audience::default(), now).await
}

/// As `record`, notifying nobody: for an event whose news another event of the same action
/// has already carried (the routing of a new ticket, announced by its `created` event).
pub async fn record_unannounced(
    conn: &mut PgConnection,
    ticket: TicketId,
    actor: Option<UserId>,
    data: &EventData,
    now: Timestamp,
) -> Result<()> {
    let mut qb = insert(ticket, actor, data, now);
    qb.push(" select id from e");
    qb.build().execute(&mut *conn).await?;
    Ok(())
}

/// `with e as (insert into ticket_events … returning id)`: the statement that writes an event
/// and, in further CTEs, its notice.
fn insert(
    ticket: TicketId,
    actor: Option<UserId>,
    data: &EventData,
    now: Timestamp,
) -> QueryBuilder<Postgres> {
    let mut qb = QueryBuilder::new(
        "with e as (insert into ticket_events (ticket_id, actor_id, kind, data, created_at) values (",
    );
    qb.push_bind(ticket)
        .push(", ")
        .push_bind(actor)
        .push(", ")
        .push_bind(data.kind())
        .push(", ")
        .push_bind(Json(data))
        .push(", ")
        .push_bind(to_db(now))
        .push(") returning id)");
    qb
}

/// As `record_returning_id`, telling `also` of the event besides those its notice goes to
/// (a process's `notify` effects): one notice per person, as their preferences and the
/// ticket's visibility allow. The event and its notices and mails are one statement.
pub(super) async fn record_notifying(
    conn: &mut PgConnection,
    ticket: TicketId,
    actor: Option<UserId>,
    data: &EventData,
    also: &Audience,
    now: Timestamp,
) -> Result<i64> {
    let notice = notices::notice(data)
        .map(|mut notice| {
            notice.audience.add(also);
            notice
        })
        .filter(|notice| !notice.audience.is_empty());
    let mut qb = insert(ticket, actor, data, now);
    if let Some(notice) = &notice {
        qb.push(", ");
        notifications::push_fan_out(&mut qb, ticket, EventRef::Inserted, actor, notice, now);
    }
    qb.push(" select id from e");
    Ok(qb.build_query_scalar().fetch_one(&mut *conn).await?)
}

/// One entry of a ticket's timeline.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub actor_name: Option<String>,
    pub data: EventData,
    pub created_at: Timestamp,
    /// The key of the ticket merged into this one that the entry comes from.
    pub from: Option<String>,
}

/// The events of `ticket` and of the tickets merged into it, in time order; internal entries
/// only where `internal` says so for the project of the ticket they were written on.
pub async fn list(
    conn: &mut PgConnection,
    ticket: TicketId,
    internal: impl Fn(ProjectId) -> bool,
) -> Result<Vec<Event>> {
    type Row = (
        i64,
        Option<String>,
        Json<EventData>,
        jiff_sqlx::Timestamp,
        ProjectId,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select e.id, u.display_name, e.data, e.created_at, s.project_id, s.merged_key
         from (select t.id, t.project_id, null as merged_key from tickets t where t.id = $1
               union all
               select m.id, m.project_id, p.key || '-' || m.number from tickets m
               join projects p on p.id = m.project_id where m.merged_into_id = $1) s
         join ticket_events e on e.ticket_id = s.id
         left join users u on u.id = e.actor_id
         order by e.created_at, e.id",
    )
    .bind(ticket)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, data, _, project, _)| internal(*project) || !data.0.is_internal())
        .map(|(id, actor_name, data, created_at, _, from)| Event {
            id,
            actor_name,
            data: data.0,
            created_at: created_at.to_jiff(),
            from,
        })
        .collect())
}
