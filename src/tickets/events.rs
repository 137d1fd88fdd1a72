//! The append-only history of a ticket: what happened, written with the change.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::core::Result;
use crate::core::ids::{ProjectId, TicketId, UserId};
use crate::core::time::to_db;
use crate::notifications::{self, Audience, EventRef};

/// What happened, as stored in `ticket_events.data`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventData {
    Created {
        title: String,
        #[serde(default)]
        process: String,
        #[serde(default)]
        state: String,
        /// The state's category and the priority when filed (for the SLA replay).
        #[serde(default)]
        category: String,
        #[serde(default)]
        priority: i16,
    },
    Comment {
        body_md: String,
        body_html: String,
        public: bool,
    },
    FieldChanged {
        field: String,
        label: String,
        old: Option<String>,
        new: Option<String>,
        internal: bool,
    },
    Transition {
        transition: String,
        label: String,
        from: String,
        to: String,
        #[serde(default)]
        category: String,
    },
    GroupAssigned {
        group: String,
    },
    Clock {
        action: String,
        clock: String,
    },
    StateMapped {
        from: String,
        to: String,
        version: i32,
        #[serde(default)]
        category: String,
    },
    ApprovalRequested {
        round: i32,
        state: String,
        approvers: Vec<String>,
    },
    ApprovalDecision {
        round: i32,
        approve: bool,
        comment: String,
    },
    ApprovalOutcome {
        round: i32,
        approved: bool,
    },
    /// An approval step found nobody to ask (`reason`), so no round was opened.
    NoApprovers {
        state: String,
        reason: String,
    },
    Linked {
        kind: String,
        other: String,
    },
    /// Assignee or group changed (`None`: cleared).
    Assigned {
        assignee: Option<String>,
        group: Option<String>,
    },
    PriorityChanged {
        from: i16,
        to: i16,
        impact: Option<i16>,
        urgency: Option<i16>,
    },
    Escalated {
        from: Option<String>,
        to: String,
        reason: String,
    },
    SlaBreached {
        clock: String,
    },
    AttachmentAdded {
        attachment_id: uuid::Uuid,
        filename: String,
        size: i64,
        internal: bool,
    },
    WatcherAdded {
        user_id: UserId,
        user: String,
        /// The actor added themselves ("started watching").
        themselves: bool,
    },
    WatcherRemoved {
        user_id: UserId,
        user: String,
        themselves: bool,
    },
    /// `into`: this ticket was merged into `other`; else `other` was merged into this one.
    Merged {
        other: String,
        into: bool,
    },
    /// A message came in by e-mail (`mail_in` row) and landed here, and why.
    MailReceived {
        mail_id: i64,
        why: String,
    },
    /// A delivery report for mail of this ticket's thread.
    MailBounced {
        mail_id: i64,
        recipient: Option<String>,
        status: Option<String>,
        diagnostic: Option<String>,
        permanent: bool,
    },
}

impl EventData {
    fn kind(&self) -> &'static str {
        match self {
            EventData::Created { .. } => "created",
            EventData::Comment { .. } => "comment",
            EventData::FieldChanged { .. } => "field_changed",
            EventData::Transition { .. } => "transition",
            EventData::GroupAssigned { .. } => "group_assigned",
            EventData::Clock { .. } => "clock",
            EventData::StateMapped { .. } => "state_mapped",
            EventData::ApprovalRequested { .. } => "approval_requested",
            EventData::ApprovalDecision { .. } => "approval_decision",
            EventData::ApprovalOutcome { .. } => "approval_outcome",
            EventData::NoApprovers { .. } => "no_approvers",
            EventData::Linked { .. } => "linked",
            EventData::Assigned { .. } => "assigned",
            EventData::PriorityChanged { .. } => "priority_changed",
            EventData::Escalated { .. } => "escalated",
            EventData::SlaBreached { .. } => "sla_breached",
            EventData::AttachmentAdded { .. } => "attachment_added",
            EventData::WatcherAdded { .. } => "watcher_added",
            EventData::WatcherRemoved { .. } => "watcher_removed",
            EventData::Merged { .. } => "merged",
            EventData::MailReceived { .. } => "mail_received",
            EventData::MailBounced { .. } => "mail_bounced",
        }
    }

    /// Entries only those who may see internal data get.
    pub fn is_internal(&self) -> bool {
        match self {
            EventData::Comment { public, .. } => !public,
            EventData::FieldChanged { internal, .. } => *internal,
            EventData::AttachmentAdded { internal, .. } => *internal,
            EventData::Clock { .. }
            | EventData::Assigned { .. }
            | EventData::Escalated { .. }
            | EventData::SlaBreached { .. }
            | EventData::MailReceived { .. }
            | EventData::MailBounced { .. } => true,
            _ => false,
        }
    }
}

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
    let notice = super::notices::notice(data)
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
pub(super) async fn list(
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
