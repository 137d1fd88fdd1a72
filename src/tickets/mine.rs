//! "My requests": the actor's own tickets, newest first, a keyset page at a time.

use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use crate::core::Result;
use crate::core::ids::TicketId;
use crate::engine::policy::{self, Actor};

/// A row of "My requests".
#[derive(Debug, Clone, FromRow)]
pub struct Row {
    pub id: TicketId,
    pub project_key: String,
    pub number: i64,
    pub title: String,
    pub state: String,
    pub state_category: String,
    pub updated_at: jiff_sqlx::Timestamp,
}

impl Row {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }

    /// Where the request stands, in plain words for the requester.
    pub fn plain_state(&self) -> &'static str {
        match self.state_category.as_str() {
            "new" => "Received",
            "open" => "We are working on it",
            "waiting" => "Waiting for you",
            "resolved" => "Done — please confirm",
            _ => "Closed",
        }
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
        "select t.id, p.key as project_key, t.number, t.title, t.state, t.state_category, t.updated_at
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
