//! A queue's rows: one keyset page at a time, in the sort's order, after a cursor that the
//! previous page handed out.

use jiff::Timestamp;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use super::filters::push_filters;
use super::{Query, Sort};
use crate::core::ids::{GroupId, ProjectId, TicketId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;

/// A row of a queue.
#[derive(Debug, Clone, FromRow)]
pub struct Row {
    pub id: TicketId,
    pub project_id: ProjectId,
    /// From `Labels::fill`.
    #[sqlx(skip)]
    pub project_key: String,
    pub number: i64,
    pub title: String,
    pub state: String,
    pub state_category: String,
    pub priority: i16,
    pub assignee_name: Option<String>,
    pub assignee_group_id: Option<GroupId>,
    /// From `Labels::fill`.
    #[sqlx(skip)]
    pub group_name: Option<String>,
    pub requester_name: String,
    pub sla_due: Option<jiff_sqlx::Timestamp>,
    pub sla_warn_at: Option<jiff_sqlx::Timestamp>,
    pub sla_paused: bool,
    pub updated_at: jiff_sqlx::Timestamp,
    pub created_at: jiff_sqlx::Timestamp,
}

impl Row {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }

    /// The keyset cursor after this row for `sort`.
    fn cursor(&self, sort: Sort) -> String {
        let value = match sort {
            Sort::Sla => self
                .sla_due
                .map(|d| d.to_jiff().to_string())
                .unwrap_or_default(),
            Sort::Priority => self.priority.to_string(),
            Sort::Updated => self.updated_at.to_jiff().to_string(),
            Sort::Created => String::new(),
        };
        format!("{value}~{}", self.id)
    }
}

/// A page and the cursor for the next one.
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<Row>,
    pub next: Option<String>,
}

fn bad_cursor() -> Error {
    Error::Invalid(FieldErrors::one(
        "after",
        "That page link is broken; start from the first page.",
    ))
}

/// Where a page starts, in the sort's order.
#[derive(Debug, Clone, Copy)]
enum After {
    Start,
    /// SLA order: after this due (tickets with a due come first).
    Due(Timestamp, TicketId),
    /// SLA order, among the tickets without a due: after this id (or from the first).
    NoDue(Option<TicketId>),
    Priority(i16, TicketId),
    Updated(Timestamp, TicketId),
    Created(TicketId),
}

impl After {
    fn parse(sort: Sort, cursor: Option<&str>) -> Result<Self> {
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
            return Ok(After::Start);
        };
        let (value, id) = cursor.split_once('~').ok_or_else(bad_cursor)?;
        let id: TicketId = id.parse().map_err(|_| bad_cursor())?;
        let time = |v: &str| v.parse::<Timestamp>().map_err(|_| bad_cursor());
        Ok(match sort {
            Sort::Sla if value.is_empty() => After::NoDue(Some(id)),
            Sort::Sla => After::Due(time(value)?, id),
            Sort::Priority => After::Priority(value.parse().map_err(|_| bad_cursor())?, id),
            Sort::Updated => After::Updated(time(value)?, id),
            Sort::Created => After::Created(id),
        })
    }
}

/// The rows after `after`, each keyset condition a plain row comparison so that it is an
/// index condition of the queue indexes. People's names come from scalar subqueries, evaluated
/// for the page's rows only: planning a five-table join cost PostgreSQL 2 ms per page at 1M
/// tickets, several times the query itself. Project keys and group names come from the
/// cached `Labels` (`Labels::fill`): looking them up per row was half the query's cost
/// (docs/benchmarks.md).
async fn rows(
    conn: &mut PgConnection,
    actor: &Actor,
    q: &Query,
    sort: Sort,
    after: After,
    limit: i64,
    now: Timestamp,
) -> Result<Vec<Row>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select t.id, t.project_id, t.number, t.title, t.state, t.state_category, t.priority,
                (select au.display_name from users au where au.id = t.assignee_id) as assignee_name,
                t.assignee_group_id,
                (select ru.display_name from users ru where ru.id = t.requester_id)
                    as requester_name,
                t.sla_due, t.sla_warn_at, t.sla_paused, t.updated_at, t.created_at
         from tickets t
         where true",
    );
    push_filters(&mut qb, actor, q, now);
    match after {
        After::Start => {}
        After::Due(due, id) => {
            qb.push(" and (t.sla_due, t.id) > (")
                .push_bind(to_db(due))
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        After::NoDue(from) => {
            qb.push(" and t.sla_due is null");
            if let Some(id) = from {
                qb.push(" and t.id > ").push_bind(id);
            }
        }
        After::Priority(p, id) => {
            qb.push(" and (t.priority, t.id) > (")
                .push_bind(p)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        After::Updated(at, id) => {
            qb.push(" and (t.updated_at, t.id) < (")
                .push_bind(to_db(at))
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        After::Created(id) => {
            qb.push(" and t.id < ").push_bind(id);
        }
    }
    qb.push(match sort {
        Sort::Sla => " order by t.sla_due asc nulls last, t.id",
        Sort::Priority => " order by t.priority, t.id",
        Sort::Updated => " order by t.updated_at desc, t.id desc",
        Sort::Created => " order by t.id desc",
    });
    // A literal limit (ours, never the user's): with a bound one PostgreSQL cannot cost a
    // generic plan and plans the page afresh every time, which cost more than running it.
    qb.push(format_args!(" limit {limit}"));
    Ok(qb.build_query_as().fetch_all(conn).await?)
}

/// One page of the queue, after `cursor` (from a previous page).
pub async fn page(
    conn: &mut PgConnection,
    actor: &Actor,
    q: &Query,
    sort: Sort,
    cursor: Option<&str>,
    limit: i64,
    now: Timestamp,
) -> Result<Page> {
    let after = After::parse(sort, cursor)?;
    let mut found = rows(conn, actor, q, sort, after, limit + 1, now).await?;
    // Past the last ticket with a due, the page goes on with those without one.
    if matches!(after, After::Due(..)) && (found.len() as i64) <= limit {
        let more = limit + 1 - found.len() as i64;
        found.extend(rows(conn, actor, q, sort, After::NoDue(None), more, now).await?);
    }
    let next = if found.len() as i64 > limit {
        found.truncate(limit as usize);
        found.last().map(|r| r.cursor(sort))
    } else {
        None
    };
    Ok(Page { rows: found, next })
}
