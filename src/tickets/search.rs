//! Full-text search: ranked, highlighted, filtered by the policy. Titles weigh most, then
//! descriptions, then public comments (internal notes only for those who may see them).

use sqlx::{Connection, FromRow, PgConnection, Postgres, QueryBuilder};

use crate::core::Result;
use crate::core::markdown::SafeHtml;
use crate::engine::policy::{self, Actor, Permission, Reach};

pub const LIMIT: i64 = 50;
/// At most this many matching tickets (and as many matching comments) are ranked: a search
/// for common words costs the same as one for a rare word, not one row read per match.
pub const CANDIDATES: i64 = 500;
// Control characters cannot appear in stored text, so they mark highlights safely.
const START: &str = "\u{1}";
const STOP: &str = "\u{2}";

#[derive(Debug, Clone, FromRow)]
struct Row {
    project_key: String,
    number: i64,
    title: String,
    state_category: String,
    snippet: String,
    capped: bool,
}

/// A search hit, with its snippet escaped and the matches marked.
#[derive(Debug, Clone)]
pub struct Hit {
    pub key: String,
    pub title: String,
    pub state_category: String,
    pub snippet: SafeHtml,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes the snippet, then turns the highlight markers into `<mark>`.
fn highlight(snippet: &str) -> SafeHtml {
    SafeHtml::from_stored(
        escape(snippet)
            .replace(START, "<mark>")
            .replace(STOP, "</mark>"),
    )
}

/// What a search found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// More than `CANDIDATES` tickets or comments matched: the hits are the best of the
    /// first `CANDIDATES` found, and more words would narrow the search.
    pub capped: bool,
}

/// The best `LIMIT` tickets for `query` that the actor may see, among the first
/// `CANDIDATES` matches. Internal notes match only in the projects where the actor may read
/// internal data (the policy's `SeeInternal`).
pub async fn search(conn: &mut PgConnection, actor: &Actor, query: &str) -> Result<Found> {
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new("with q as (select websearch_to_tsquery('simple', ");
    qb.push_bind(query.to_owned());
    // Visible tickets only, capped before ranking: `ts_rank` reads each candidate's vector.
    qb.push(
        ") as q), hits as (
            (select t.id, ts_rank(t.search, q.q) as rank, true as direct
             from tickets t, q where t.search @@ q.q",
    );
    policy::push_ticket_scope(&mut qb, actor, "t");
    qb.push(format_args!(" limit {CANDIDATES}"));
    // Comments on tickets the actor may read internal notes of, or public ones. A join, not an
    // `exists`: PostgreSQL keeps one plan for the statement after five runs, made without
    // the words, and for that plan it turned an `exists` into a hash of every ticket of the
    // actor's projects (136,000 rows at 1M tickets, 1.8 s); a join looks up each candidate.
    let internal_projects = match actor.scope_of(Permission::TicketCommentInternal) {
        Reach::Everywhere => None,
        Reach::Projects(projects) => Some(projects),
    };
    qb.push(
        ") union all
            (select e.ticket_id, 0.5 * ts_rank(to_tsvector('simple', coalesce(e.data->>'body_md', '')), q.q), false
             from ticket_events e",
    );
    if internal_projects.is_some() {
        qb.push(" join tickets it on it.id = e.ticket_id");
    }
    qb.push(
        ", q where e.kind = 'comment' and to_tsvector('simple', coalesce(e.data->>'body_md', '')) @@ q.q",
    );
    if let Some(projects) = internal_projects {
        qb.push(" and ((e.data->>'public')::boolean or it.project_id = any(");
        qb.push_bind(projects);
        qb.push("))");
    }
    qb.push(format_args!(" limit {CANDIDATES}"));
    qb.push(format_args!(
        ")), best as (select id, max(rank) as rank from hits group by id)
         select p.key as project_key, t.number, t.title, t.state_category,
                ts_headline('simple', t.title || ' — ' || left(t.description_md, 2000), q.q,
                            'StartSel=\u{1}, StopSel=\u{2}, MaxWords=30, MinWords=10') as snippet,
                (select count(*) filter (where direct) >= {CANDIDATES}
                        or count(*) filter (where not direct) >= {CANDIDATES} from hits) as capped
         from best join tickets t on t.id = best.id join projects p on p.id = t.project_id, q
         where true"
    ));
    policy::push_ticket_scope(&mut qb, actor, "t");
    qb.push(format_args!(
        " order by best.rank desc, t.id desc limit {LIMIT}"
    ));
    // One plan for every search, made once per connection. PostgreSQL would plan each run
    // with its words (5.7 ms at 1M tickets, three times the run of a selective search)
    // because it rates that plan cheaper; the plan without words takes the same full-text
    // indexes (docs/benchmarks.md).
    let mut tx = conn.begin().await?;
    sqlx::query("set local plan_cache_mode = force_generic_plan")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<Row> = qb.build_query_as().fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(Found {
        capped: rows.first().is_some_and(|r| r.capped),
        hits: rows
            .into_iter()
            .map(|r| Hit {
                key: format!("{}-{}", r.project_key, r.number),
                title: r.title,
                state_category: r.state_category,
                snippet: highlight(&r.snippet),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_are_marked_and_everything_else_is_escaped() {
        let html = highlight("a <b>printer</b> \u{1}jam\u{2} & more");
        assert_eq!(
            html.as_str(),
            "a &lt;b&gt;printer&lt;/b&gt; <mark>jam</mark> &amp; more"
        );
    }
}
