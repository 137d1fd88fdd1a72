//! Queues: ticket lists over filters with a sort, keyset-paginated, always through the
//! policy's SQL scope; saved as views (personal or shared) with their columns; counted
//! cheaply (exact up to a cap, then "cap+").

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use crate::core::ids::{GroupId, OrgUnitId, ProcessId, ProjectId, SystemId, TicketId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Actor};

/// Counts stop here: beyond it a queue shows "1000+".
pub const COUNT_CAP: i64 = 1000;
pub const PAGE: i64 = 25;
pub const CATEGORIES: [&str; 6] = ["active", "new", "open", "waiting", "resolved", "closed"];
pub const SORTS: [(&str, &str); 4] = [
    ("sla", "SLA due"),
    ("priority", "Priority"),
    ("updated", "Recently updated"),
    ("created", "Newest"),
];
pub const COLUMNS: [(&str, &str); 10] = [
    ("key", "Key"),
    ("title", "Title"),
    ("state", "State"),
    ("priority", "Priority"),
    ("sla", "SLA due"),
    ("assignee", "Assignee"),
    ("group", "Group"),
    ("requester", "Requester"),
    ("updated", "Updated"),
    ("created", "Filed"),
];
pub const DEFAULT_COLUMNS: [&str; 7] = [
    "key", "title", "state", "priority", "sla", "assignee", "updated",
];

/// Filters as typed in the form or stored with a view: text, checked by `parse`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Filters {
    pub project: String,
    pub process: String,
    pub state: String,
    pub category: String,
    /// A group id, or `mine` (any of my groups).
    pub group: String,
    /// A user id, `me` or `unassigned`.
    pub assignee: String,
    pub priority: String,
    /// `breached` or `due_soon`.
    pub sla: String,
    pub site: String,
    pub system: String,
    /// The requester's organisation unit.
    pub org_unit: String,
    pub created_from: String,
    pub created_to: String,
    pub updated_from: String,
    pub updated_to: String,
    pub q: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Sla,
    Priority,
    Updated,
    Created,
}

impl Sort {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "" | "sla" => Some(Sort::Sla),
            "priority" => Some(Sort::Priority),
            "updated" => Some(Sort::Updated),
            "created" => Some(Sort::Created),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Sla => "sla",
            Sort::Priority => "priority",
            Sort::Updated => "updated",
            Sort::Created => "created",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Who {
    Me,
    Nobody,
    User(UserId),
}

/// Filters after checking: what the SQL is built from.
#[derive(Debug, Clone, Default)]
pub struct Query {
    project: Option<ProjectId>,
    process: Option<ProcessId>,
    state: Option<String>,
    categories: Vec<String>,
    group: Option<Vec<GroupId>>,
    assignee: Option<Who>,
    priority: Option<i16>,
    sla: Option<bool>,
    site: Option<OrgUnitId>,
    system: Option<SystemId>,
    org_unit: Option<OrgUnitId>,
    created: (Option<Timestamp>, Option<Timestamp>),
    updated: (Option<Timestamp>, Option<Timestamp>),
    q: Option<String>,
}

impl Query {
    /// A filter with an index of its own narrows the list before the visibility scope.
    fn narrowed(&self) -> bool {
        self.project.is_some()
            || self.group.is_some()
            || matches!(self.assignee, Some(Who::Me | Who::User(_)))
            || self.site.is_some()
            || self.system.is_some()
            || self.org_unit.is_some()
            || self.q.is_some()
    }
}

/// A day as the start of that day (UTC); `to` dates include the whole day.
fn day(errors: &mut FieldErrors, field: &str, text: &str, end: bool) -> Option<Timestamp> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let date: Option<jiff::civil::Date> = text.parse().ok();
    let at = date
        .and_then(|d| if end { d.tomorrow().ok() } else { Some(d) })
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp());
    if at.is_none() {
        errors.add(field, "Use a date like 2026-11-30.");
    }
    at
}

impl Filters {
    /// Checks every filter; unknown values get a message next to their field.
    pub fn parse(&self, actor: &Actor) -> std::result::Result<Query, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut q = Query {
            project: errors.choice("project", &self.project),
            process: errors.choice("process", &self.process),
            site: errors.choice("site", &self.site),
            system: errors.choice("system", &self.system),
            org_unit: errors.choice("org_unit", &self.org_unit),
            created: (
                day(&mut errors, "created_from", &self.created_from, false),
                day(&mut errors, "created_to", &self.created_to, true),
            ),
            updated: (
                day(&mut errors, "updated_from", &self.updated_from, false),
                day(&mut errors, "updated_to", &self.updated_to, true),
            ),
            ..Query::default()
        };
        let state = self.state.trim();
        if !state.is_empty() {
            if state.len() > 50 {
                errors.add("state", "That is not a state.");
            } else {
                q.state = Some(state.to_owned());
            }
        }
        q.categories = match self.category.trim() {
            "" => Vec::new(),
            "active" => vec!["new".into(), "open".into(), "waiting".into()],
            c if CATEGORIES.contains(&c) => vec![c.to_owned()],
            _ => {
                errors.add("category", "Choose from the list.");
                Vec::new()
            }
        };
        q.group = match self.group.trim() {
            "" => None,
            "mine" => Some(actor.groups.clone()),
            g => errors.choice("group", g).map(|g| vec![g]),
        };
        q.assignee = match self.assignee.trim() {
            "" => None,
            "me" => Some(Who::Me),
            "unassigned" => Some(Who::Nobody),
            u => errors.choice("assignee", u).map(Who::User),
        };
        q.priority = match errors.choice::<i16>("priority", &self.priority) {
            Some(p) if !(1..=4).contains(&p) => {
                errors.add("priority", "Choose from the list.");
                None
            }
            p => p,
        };
        q.sla = match self.sla.trim() {
            "" => None,
            "breached" => Some(true),
            "due_soon" => Some(false),
            _ => {
                errors.add("sla", "Choose from the list.");
                None
            }
        };
        let text = self.q.trim();
        if text.chars().count() > 200 {
            errors.add("q", "Use at most 200 characters.");
        } else if !text.is_empty() {
            q.q = Some(text.to_owned());
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(errors)
        }
    }

    /// The filters as query-string pairs (for links and the next page).
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("project", &self.project),
            ("process", &self.process),
            ("state", &self.state),
            ("category", &self.category),
            ("group", &self.group),
            ("assignee", &self.assignee),
            ("priority", &self.priority),
            ("sla", &self.sla),
            ("site", &self.site),
            ("system", &self.system),
            ("org_unit", &self.org_unit),
            ("created_from", &self.created_from),
            ("created_to", &self.created_to),
            ("updated_from", &self.updated_from),
            ("updated_to", &self.updated_to),
            ("q", &self.q),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.as_str()))
        .collect()
    }
}

/// Appends the filters (each starting with `and`) and the policy scope.
fn push_filters(qb: &mut QueryBuilder<Postgres>, actor: &Actor, q: &Query, now: Timestamp) {
    if let Some(p) = q.project {
        qb.push(" and t.project_id = ").push_bind(p);
    }
    if let Some(p) = q.process {
        qb.push(" and t.process_id = ").push_bind(p);
    }
    if let Some(s) = &q.state {
        qb.push(" and t.state = ").push_bind(s.clone());
    }
    match q.categories.as_slice() {
        [] => {}
        [one] => {
            qb.push(" and t.state_category = ").push_bind(one.clone());
        }
        many => {
            qb.push(" and t.state_category = any(")
                .push_bind(many.to_vec())
                .push(")");
        }
    }
    match &q.group {
        None => {}
        Some(groups) if groups.len() == 1 => {
            qb.push(" and t.assignee_group_id = ").push_bind(groups[0]);
        }
        Some(groups) => {
            qb.push(" and t.assignee_group_id = any(")
                .push_bind(groups.clone())
                .push(")");
        }
    }
    match &q.assignee {
        None => {}
        Some(Who::Me) => {
            qb.push(" and t.assignee_id = ").push_bind(actor.user_id);
        }
        Some(Who::Nobody) => {
            qb.push(" and t.assignee_id is null");
        }
        Some(Who::User(u)) => {
            qb.push(" and t.assignee_id = ").push_bind(*u);
        }
    }
    if let Some(p) = q.priority {
        qb.push(" and t.priority = ").push_bind(p);
    }
    match q.sla {
        Some(true) => {
            qb.push(" and t.sla_due <= ").push_bind(to_db(now));
        }
        Some(false) => {
            qb.push(" and t.sla_due > ")
                .push_bind(to_db(now))
                .push(" and t.sla_warn_at <= ")
                .push_bind(to_db(now));
        }
        None => {}
    }
    if let Some(s) = q.site {
        qb.push(" and t.site_id = ").push_bind(s);
    }
    if let Some(s) = q.system {
        qb.push(" and t.system_id = ").push_bind(s);
    }
    if let Some(o) = q.org_unit {
        qb.push(" and t.org_unit_id = ").push_bind(o);
    }
    for (column, (from, to)) in [("t.created_at", q.created), ("t.updated_at", q.updated)] {
        if let Some(from) = from {
            qb.push(format_args!(" and {column} >= "))
                .push_bind(to_db(from));
        }
        if let Some(to) = to {
            qb.push(format_args!(" and {column} < "))
                .push_bind(to_db(to));
        }
    }
    if let Some(text) = &q.q {
        qb.push(" and t.search @@ websearch_to_tsquery('simple', ")
            .push_bind(text.clone())
            .push(")");
    }
    let assignee = match q.assignee {
        Some(Who::Me) => Some(actor.user_id),
        Some(Who::User(u)) => Some(u),
        _ => None,
    };
    if policy::scope_implied(actor, q.group.as_deref(), assignee) {
        return;
    }
    if q.narrowed() {
        policy::push_ticket_scope(qb, actor, "t");
    } else {
        // Only the scope can narrow this list: let its branches use their indexes.
        policy::push_ticket_scope_indexed(qb, actor, "t");
    }
}

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

/// How many tickets match, up to `COUNT_CAP` (a bounded scan, however big the table).
pub async fn count(
    conn: &mut PgConnection,
    actor: &Actor,
    q: &Query,
    now: Timestamp,
) -> Result<Count> {
    Ok(counts(conn, actor, &[q], now)
        .await?
        .pop()
        .unwrap_or(Count(0)))
}

/// Queries whose count passed the cap lately, per person: counted again only after
/// `CAPPED_FOR`. Such a count is the one that reads `COUNT_CAP` index entries on every view
/// (most of a queue page's database time), and it shows "1000+" whatever a few tickets more
/// or less do (DESIGN.md: counts over many rows are estimated or cached). Smaller counts are
/// exact on every view. Kept per app instance.
#[derive(Default)]
pub struct CappedCounts {
    seen: std::sync::Mutex<HashMap<(UserId, String), std::time::Instant>>,
}

/// How long a count past the cap is taken as still past it.
pub const CAPPED_FOR: std::time::Duration = std::time::Duration::from_secs(30);
/// Entries kept at most; past it the memory starts again.
const CAPPED_ENTRIES: usize = 10_000;

impl CappedCounts {
    /// `count`, unless this person's same query passed the cap within `CAPPED_FOR`.
    pub async fn count(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        q: &Query,
        now: Timestamp,
    ) -> Result<Count> {
        let key = (actor.user_id, format!("{q:?}"));
        let fresh = |at: &std::time::Instant| at.elapsed() < CAPPED_FOR;
        if let Ok(seen) = self.seen.lock()
            && seen.get(&key).is_some_and(fresh)
        {
            return Ok(Count(COUNT_CAP + 1));
        }
        let found = count(conn, actor, q, now).await?;
        if let Ok(mut seen) = self.seen.lock() {
            if found.0 > COUNT_CAP {
                if seen.len() >= CAPPED_ENTRIES {
                    seen.retain(|_, at| fresh(at));
                }
                if seen.len() < CAPPED_ENTRIES {
                    seen.insert(key, std::time::Instant::now());
                }
            } else {
                seen.remove(&key);
            }
        }
        Ok(found)
    }
}

/// The capped counts of several queries in one statement (the queue index: no query per
/// view).
pub async fn counts(
    conn: &mut PgConnection,
    actor: &Actor,
    queries: &[&Query],
    now: Timestamp,
) -> Result<Vec<Count>> {
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("select array[");
    for (i, q) in queries.iter().enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push("(select count(*) from (select 1 from tickets t where true");
        push_filters(&mut qb, actor, q, now);
        qb.push(" limit ").push_bind(COUNT_CAP + 1).push(") c)");
    }
    qb.push("]::bigint[]");
    let found: Vec<i64> = qb.build_query_scalar().fetch_one(conn).await?;
    Ok(found.into_iter().map(Count).collect())
}

/// A capped count: shown as "1000+" past the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub i64);

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 > COUNT_CAP {
            write!(f, "{COUNT_CAP}+")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// A saved view.
#[derive(Debug, Clone, FromRow)]
pub struct View {
    pub id: uuid::Uuid,
    pub name: String,
    pub owner_id: Option<UserId>,
    pub created_by: UserId,
    pub filters: sqlx::types::Json<Filters>,
    pub sort: String,
    pub columns: Vec<String>,
}

impl View {
    pub fn shared(&self) -> bool {
        self.owner_id.is_none()
    }
}

/// The actor's own views and the shared ones, by name.
pub async fn views(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<View>> {
    Ok(sqlx::query_as(
        "select id, name, owner_id, created_by, filters, sort, columns from queues
         where owner_id = $1 or owner_id is null order by owner_id is null, lower(name)",
    )
    .bind(actor.user_id)
    .fetch_all(conn)
    .await?)
}

pub async fn view(conn: &mut PgConnection, actor: &Actor, id: uuid::Uuid) -> Result<View> {
    sqlx::query_as(
        "select id, name, owner_id, created_by, filters, sort, columns from queues
         where id = $1 and (owner_id = $2 or owner_id is null)",
    )
    .bind(id)
    .bind(actor.user_id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)
}

/// Checks and normalises chosen columns (the defaults when none).
pub fn columns(chosen: &[String]) -> Vec<String> {
    let known: Vec<String> = chosen
        .iter()
        .filter(|c| COLUMNS.iter().any(|(k, _)| k == c))
        .cloned()
        .collect();
    if known.is_empty() {
        DEFAULT_COLUMNS.iter().map(|c| (*c).to_owned()).collect()
    } else {
        known
    }
}

/// A view as the form sends it.
#[derive(Debug, Clone)]
pub struct NewView<'a> {
    pub name: &'a str,
    pub shared: bool,
    pub filters: &'a Filters,
    pub sort: Sort,
    pub columns: &'a [String],
}

/// Saves a view; `shared` views need the right to assign tickets somewhere (team leads,
/// agents), others are personal.
pub async fn save(
    conn: &mut PgConnection,
    actor: &Actor,
    view: &NewView<'_>,
    now: Timestamp,
) -> Result<uuid::Uuid> {
    let NewView {
        name,
        shared,
        filters,
        sort,
        columns: chosen,
    } = *view;
    let mut errors = FieldErrors::new();
    let name = name.trim();
    if name.is_empty() {
        errors.add("name", "Give the queue a name.");
    } else if name.chars().count() > 100 {
        errors.add("name", "Use at most 100 characters.");
    }
    if shared
        && !policy::decide(actor, policy::Action::ShareQueue, policy::Target::Nothing).allowed()
    {
        errors.add(
            "shared",
            "Only those who assign tickets can share queues; save it for yourself.",
        );
    }
    if let Err(e) = filters.parse(actor) {
        for (field, message) in e.iter() {
            errors.add(field, message);
        }
    }
    errors.into_result()?;
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into queues (id, name, owner_id, created_by, filters, sort, columns, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(name)
    .bind((!shared).then_some(actor.user_id))
    .bind(actor.user_id)
    .bind(sqlx::types::Json(filters))
    .bind(sort.as_str())
    .bind(columns(chosen))
    .bind(to_db(now))
    .execute(conn)
    .await?;
    Ok(id)
}

/// Deletes a view: one's own, or a shared one one created.
pub async fn delete(conn: &mut PgConnection, actor: &Actor, id: uuid::Uuid) -> Result<()> {
    let done = sqlx::query(
        "delete from queues where id = $1 and (owner_id = $2 or (owner_id is null and created_by = $2))",
    )
    .bind(id)
    .bind(actor.user_id)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// The filter form's lists by kind (`project`, `process`, `group`, `system`, `site`): id and
/// label.
pub type Options = BTreeMap<&'static str, Vec<(String, String)>>;

/// Reference data pages keep per instance (`web::reference::ReferenceCache`): the filter
/// lists (also the choices of group, system and site fields, and of the sub-task form), the
/// project keys and group names queue rows show, and each group's members and next tier for
/// the ticket page's triage panel.
#[derive(Debug, Default)]
pub struct Reference {
    pub options: Options,
    pub labels: Labels,
    pub teams: HashMap<GroupId, Team>,
}

/// A group as the triage panel offers it.
#[derive(Debug, Default)]
pub struct Team {
    /// Active members as (user id, name), by name; at most `TEAM_LIMIT`.
    pub members: Vec<(String, String)>,
    /// The name of the group it escalates to.
    pub escalates_to: Option<String>,
}

/// The most members the assignee list offers.
const TEAM_LIMIT: usize = 500;

impl Reference {
    /// One list (`project`, `process`, `group`, `system`, `site`) as (id, label) pairs, for
    /// a form's choices.
    pub fn list(&self, kind: &str) -> Vec<(String, String)> {
        self.options.get(kind).cloned().unwrap_or_default()
    }
}

/// Project keys and group names by id.
#[derive(Debug, Default)]
pub struct Labels {
    projects: HashMap<ProjectId, String>,
    groups: HashMap<GroupId, String>,
}

impl Labels {
    /// Names the rows' projects and groups. A row of a project or group newer than these
    /// labels (created since they were loaded) has them read afresh.
    pub async fn fill(&self, conn: &mut PgConnection, rows: &mut [Row]) -> Result<()> {
        let known = |r: &Row| {
            self.projects.contains_key(&r.project_id)
                && r.assignee_group_id
                    .is_none_or(|g| self.groups.contains_key(&g))
        };
        let fresh;
        let labels = if rows.iter().all(known) {
            self
        } else {
            fresh = lists(conn).await?.labels;
            &fresh
        };
        for r in rows {
            r.project_key = labels
                .projects
                .get(&r.project_id)
                .cloned()
                .unwrap_or_default();
            r.group_name = r
                .assignee_group_id
                .and_then(|g| labels.groups.get(&g).cloned());
        }
        Ok(())
    }
}

/// Loads the reference data; pages take it through `web::reference::ReferenceCache`.
pub async fn reference(conn: &mut PgConnection) -> Result<Reference> {
    let mut out = lists(conn).await?;
    // Members of every group in one statement: a membership change, a rename or a
    // deactivation bumps the reference version (migration 0020).
    let members: Vec<(GroupId, String, String)> = sqlx::query_as(
        "select m.group_id, u.id::text, u.display_name from group_members m
         join users u on u.id = m.user_id where u.active
         order by m.group_id, lower(u.display_name), u.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (group, id, name) in members {
        let team = out.teams.entry(group).or_default();
        if team.members.len() < TEAM_LIMIT {
            team.members.push((id, name));
        }
    }
    Ok(out)
}

/// The reference data without the groups' members: the lists, the labels and each group's
/// next tier.
async fn lists(conn: &mut PgConnection) -> Result<Reference> {
    // One statement for the five lists (each is a round trip otherwise, on every page); an
    // `Append` of small sorted subqueries keeps their order.
    let rows: Vec<(String, uuid::Uuid, String, Option<String>)> = sqlx::query_as(
        "(select 'project', id, key || ' ' || name, key from projects order by key)
         union all
         (select 'process', id, name, null from processes where active order by lower(name))
         union all
         (select 'group', g.id, g.name, n.name from groups g left join groups n on n.id = g.escalates_to
          order by lower(g.name))
         union all
         (select 'system', id, name, null from systems order by lower(name))
         union all
         (select 'site', id, name, null from org_units where kind in ('site', 'business_unit')
          order by lower(name))",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Reference::default();
    for (kind, id, name, key) in rows {
        // The fourth column is a project's key, or the name of a group's next tier.
        let kind = match kind.as_str() {
            "project" => {
                let key = key.unwrap_or_default();
                out.labels.projects.insert(ProjectId(id), key);
                "project"
            }
            "process" => "process",
            "group" => {
                out.labels.groups.insert(GroupId(id), name.clone());
                out.teams.entry(GroupId(id)).or_default().escalates_to = key;
                "group"
            }
            "system" => "system",
            _ => "site",
        };
        out.options
            .entry(kind)
            .or_default()
            .push((id.to_string(), name));
    }
    Ok(out)
}
