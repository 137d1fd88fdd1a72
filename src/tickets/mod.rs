//! Tickets and their append-only history (`ticket_events`). Every change writes its event in
//! the same transaction as the change; the ticket row is the current projection. Access goes
//! through `engine::policy`: a ticket the actor may not see is `NotFound`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use crate::core::ids::{GroupId, OrgUnitId, ProjectId, TicketId, TicketKey, UserId};
use crate::core::markdown::{self, SafeHtml};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target, TicketFacts};
use crate::projects;

pub const TITLE_MAX: usize = 200;
pub const TEXT_MAX: usize = 50_000;

/// What a person typed to file a ticket.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewTicket {
    pub project_id: Option<ProjectId>,
    pub title: String,
    pub description: String,
}

fn check_text(errors: &mut FieldErrors, field: &str, text: &str, max: usize, required: bool) {
    let length = text.chars().count();
    if required && text.trim().is_empty() {
        errors.add(field, "This cannot be empty.");
    } else if length > max {
        errors.add(
            field,
            format!("Use at most {max} characters (this has {length})."),
        );
    }
}

/// Files a ticket: takes its number, writes the row and its `created` event.
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    input: &NewTicket,
    now: Timestamp,
) -> Result<TicketKey> {
    let mut errors = FieldErrors::new();
    check_text(&mut errors, "title", input.title.trim(), TITLE_MAX, true);
    check_text(
        &mut errors,
        "description",
        &input.description,
        TEXT_MAX,
        false,
    );
    let project = match input.project_id {
        Some(id) => projects::find(conn, id).await?,
        None => None,
    };
    if project.is_none() {
        errors.add("project_id", "Choose a project.");
    }
    if let Some(p) = &project
        && !policy::decide(actor, Action::CreateTicket(p.id), Target::Nothing).allowed()
    {
        errors.add("project_id", "You cannot file requests in this project.");
    }
    errors.into_result()?;
    let Some(project) = project else {
        return Err(Error::NotFound);
    };
    let (project_key, number) = projects::take_ticket_number(conn, project.id).await?;
    let id = TicketId::new();
    let title = input.title.trim();
    let html = markdown::render(&input.description);
    sqlx::query(
        "insert into tickets (id, project_id, number, title, description_md, description_html,
                              requester_id, org_unit_id, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(id)
    .bind(project.id)
    .bind(number)
    .bind(title)
    .bind(&input.description)
    .bind(html.as_str())
    .bind(actor.user_id)
    .bind(actor.org_unit_id)
    .bind(to_db(now))
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        id,
        Some(actor.user_id),
        &EventData::Created {
            title: title.to_owned(),
        },
        now,
    )
    .await?;
    let key = format!("{project_key}-{number}");
    TicketKey::parse(&key).ok_or_else(|| Error::Internal(anyhow::anyhow!("bad key {key}")))
}

/// What happened, as stored in `ticket_events.data`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventData {
    Created {
        title: String,
    },
    Comment {
        body_md: String,
        body_html: String,
        public: bool,
    },
}

impl EventData {
    fn kind(&self) -> &'static str {
        match self {
            EventData::Created { .. } => "created",
            EventData::Comment { .. } => "comment",
        }
    }
}

/// Appends an event. The only writer of `ticket_events`.
async fn record(
    conn: &mut PgConnection,
    ticket: TicketId,
    actor: Option<UserId>,
    data: &EventData,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "insert into ticket_events (ticket_id, actor_id, kind, data, created_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(ticket)
    .bind(actor)
    .bind(data.kind())
    .bind(Json(data))
    .bind(to_db(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// A ticket as its page shows it.
#[derive(Debug, Clone, FromRow)]
pub struct Ticket {
    pub id: TicketId,
    pub project_id: ProjectId,
    pub assignee_id: Option<UserId>,
    pub assignee_group_id: Option<GroupId>,
    pub org_unit_id: Option<OrgUnitId>,
    pub org_unit_visible: bool,
    pub actor_watches: bool,
    pub project_key: String,
    pub project_name: String,
    pub number: i64,
    pub title: String,
    pub description_html: String,
    pub requester_id: UserId,
    pub requester_name: String,
    pub state: String,
    pub created_at: jiff_sqlx::Timestamp,
    pub updated_at: jiff_sqlx::Timestamp,
    pub version: i32,
}

impl Ticket {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }

    pub fn description(&self) -> SafeHtml {
        SafeHtml::from_stored(self.description_html.clone())
    }

    pub fn facts(&self) -> TicketFacts {
        TicketFacts {
            project_id: self.project_id,
            requester_id: self.requester_id,
            assignee_id: self.assignee_id,
            assignee_group_id: self.assignee_group_id,
            org_unit_id: self.org_unit_id,
            org_unit_visible: self.org_unit_visible,
            actor_watches: self.actor_watches,
        }
    }
}

/// The ticket with this key, if the actor may see it; `NotFound` otherwise, exactly as if
/// it did not exist.
pub async fn find_visible(
    conn: &mut PgConnection,
    actor: &Actor,
    key: &TicketKey,
) -> Result<Ticket> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select t.id, t.project_id, t.assignee_id, t.assignee_group_id, t.org_unit_id,
                p.requester_visibility = 'org_unit' as org_unit_visible,
                exists (select 1 from ticket_watchers w where w.ticket_id = t.id and w.user_id = ",
    );
    qb.push_bind(actor.user_id);
    qb.push(
        ") as actor_watches,
                p.key as project_key, p.name as project_name, t.number, t.title,
                t.description_html, t.requester_id, u.display_name as requester_name, t.state,
                t.created_at, t.updated_at, t.version
         from tickets t join projects p on p.id = t.project_id join users u on u.id = t.requester_id
         where p.key = ",
    );
    qb.push_bind(key.project.as_str())
        .push(" and t.number = ")
        .push_bind(key.number);
    policy::push_ticket_scope(&mut qb, actor, "t");
    qb.build_query_as()
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)
}

/// One entry of a ticket's timeline.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub actor_name: Option<String>,
    pub data: EventData,
    pub created_at: Timestamp,
}

/// A ticket's history, oldest first, in one query.
pub async fn events(conn: &mut PgConnection, ticket: TicketId) -> Result<Vec<Event>> {
    let rows: Vec<(i64, Option<String>, Json<EventData>, jiff_sqlx::Timestamp)> = sqlx::query_as(
        "select e.id, u.display_name, e.data, e.created_at
         from ticket_events e left join users u on u.id = e.actor_id
         where e.ticket_id = $1 order by e.id",
    )
    .bind(ticket)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, actor_name, data, created_at)| Event {
            id,
            actor_name,
            data: data.0,
            created_at: created_at.to_jiff(),
        })
        .collect())
}

/// Adds a public comment; `version` bumps so open forms elsewhere notice the change.
pub async fn add_comment(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    body: &str,
    now: Timestamp,
) -> Result<()> {
    if !policy::decide(
        actor,
        Action::CommentPublic,
        Target::Ticket(&ticket.facts()),
    )
    .allowed()
    {
        return Err(Error::Forbidden);
    }
    let mut errors = FieldErrors::new();
    check_text(&mut errors, "body", body, TEXT_MAX, true);
    errors.into_result()?;
    let html = markdown::render(body);
    sqlx::query("update tickets set updated_at = $2, version = version + 1 where id = $1")
        .bind(ticket.id)
        .bind(to_db(now))
        .execute(&mut *conn)
        .await?;
    record(
        conn,
        ticket.id,
        Some(actor.user_id),
        &EventData::Comment {
            body_md: body.to_owned(),
            body_html: html.into_string(),
            public: true,
        },
        now,
    )
    .await
}

/// A row of "My requests".
#[derive(Debug, Clone, FromRow)]
pub struct Row {
    pub id: TicketId,
    pub project_key: String,
    pub number: i64,
    pub title: String,
    pub state: String,
    pub updated_at: jiff_sqlx::Timestamp,
}

impl Row {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }
}

/// A page of a keyset-paginated list: `next` is the cursor for the following page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<TicketId>,
}

/// The actor's own requests, newest first, `limit` at a time after the cursor.
pub async fn my_requests(
    conn: &mut PgConnection,
    actor: &Actor,
    after: Option<TicketId>,
    limit: i64,
) -> Result<Page<Row>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select t.id, p.key as project_key, t.number, t.title, t.state, t.updated_at
         from tickets t join projects p on p.id = t.project_id
         where t.requester_id = ",
    );
    qb.push_bind(actor.user_id);
    if let Some(after) = after {
        qb.push(" and t.id < ").push_bind(after);
    }
    policy::push_ticket_scope(&mut qb, actor, "t");
    qb.push(" order by t.id desc limit ").push_bind(limit + 1);
    let mut rows: Vec<Row> = qb.build_query_as().fetch_all(conn).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Page { rows, next })
}
