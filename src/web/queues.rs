//! "My queues": saved views with capped counts, a filtered and sorted ticket list with keyset
//! pages, bulk actions on selected tickets, and the help desk home.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::RawQuery;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::extract::Form;
use super::flash;
use super::layout::Shell;
use super::pages::render;
use crate::core::ids::{GroupId, TicketId, UserId};
use crate::core::time::display;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::engine::sla;
use crate::tickets::queues::{self, Count, Filters, Page, Row, Sort};
use crate::tickets::{self, flow, triage, watchers};
use crate::web::paths;

/// A row as the list shows it.
pub struct RowView {
    pub row: Row,
    pub sla: Option<(String, &'static str)>,
    pub updated: String,
    pub created: String,
}

impl RowView {
    fn of(row: Row, now: jiff::Timestamp) -> Self {
        let sla = if row.sla_paused && row.sla_due.is_none() {
            Some(("paused".to_owned(), "paused"))
        } else {
            row.sla_due.map(|due| {
                let due = due.to_jiff();
                let class = match sla::status(due, row.sla_warn_at.map(|w| w.to_jiff()), now) {
                    sla::Status::Breached => "breached",
                    sla::Status::DueSoon => "due-soon",
                    sla::Status::Running => "on-time",
                };
                (display(due), class)
            })
        };
        Self {
            updated: display(row.updated_at.to_jiff()),
            created: display(row.created_at.to_jiff()),
            sla,
            row,
        }
    }

    fn priority(&self) -> &'static str {
        triage::priority_name(self.row.priority)
    }
}

/// The query string of a list: filters, sort, columns (repeated `col`), cursor.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    filters: Filters,
    sort: String,
    columns: Vec<String>,
    after: String,
}

impl ListQuery {
    fn parse(raw: Option<&str>) -> Self {
        let mut named: BTreeMap<String, String> = BTreeMap::new();
        let mut columns = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if k == "col" {
                columns.push(v.into_owned());
            } else {
                named.insert(k.into_owned(), v.into_owned());
            }
        }
        Self {
            filters: filters_from(&named),
            sort: named.remove("sort").unwrap_or_default(),
            after: named.remove("after").unwrap_or_default(),
            columns,
        }
    }
}

/// The filters among named form or query values (others are ignored).
fn filters_from(named: &BTreeMap<String, String>) -> Filters {
    serde_json::to_value(named)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "queues/list.html")]
struct ListPage {
    shell: Shell,
    title: String,
    view_id: Option<String>,
    can_delete: bool,
    filters: Filters,
    sort: String,
    columns: Vec<String>,
    /// Date filters: (field, label, value).
    dates: Vec<(&'static str, &'static str, String)>,
    /// The filters as hidden inputs (saving a queue).
    hidden: Vec<(&'static str, String)>,
    /// The chosen columns with their headings.
    cols: Vec<(&'static str, &'static str)>,
    rows: Vec<RowView>,
    count: Option<Count>,
    next: Option<String>,
    errors: FieldErrors,
    reference: Arc<super::reference::Cached>,
    here: String,
}

impl ListPage {
    fn shows(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }

    /// A filter list's options, the chosen one selected.
    fn option_html(&self, kind: &str) -> super::reference::OptionHtml<'_> {
        let f = &self.filters;
        let selected = match kind {
            "project" => &f.project,
            "process" => &f.process,
            "group" => &f.group,
            "system" => &f.system,
            "site" => &f.site,
            _ => "",
        };
        self.reference.option_html(kind, selected)
    }

    fn bulk(&self) -> bool {
        true
    }

    fn text(&self, p: &i16) -> String {
        p.to_string()
    }

    fn all_columns(&self) -> &'static [(&'static str, &'static str)] {
        &queues::COLUMNS
    }

    fn sorts(&self) -> &'static [(&'static str, &'static str)] {
        &queues::SORTS
    }

    fn categories(&self) -> &'static [&'static str] {
        &queues::CATEGORIES
    }

    fn priorities(&self) -> &'static [(i16, &'static str)] {
        &triage::PRIORITIES
    }

    fn next_link(&self, cursor: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = self.filters.pairs();
        pairs.push(("sort", &self.sort));
        for c in &self.columns {
            pairs.push(("col", c));
        }
        pairs.push(("after", cursor));
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("{}?{query}", self.here)
    }
}

#[allow(clippy::too_many_arguments)]
async fn list_page(
    state: &AppState,
    shell: Shell,
    actor: &Actor,
    title: String,
    view: Option<&queues::View>,
    filters: Filters,
    sort: &str,
    columns: &[String],
    after: &str,
) -> Result<Response> {
    let now = state.clock.now();
    let mut conn = state.pool.acquire().await?;
    let mut errors = FieldErrors::new();
    let sort_parsed = Sort::parse(sort);
    if sort_parsed.is_none() {
        errors.add("sort", "Choose from the list.");
    }
    let query = match filters.parse(actor) {
        Ok(q) => Some(q),
        Err(e) => {
            for (f, m) in e.iter() {
                errors.add(f, m);
            }
            None
        }
    };
    let reference = state
        .reference
        .get(&mut conn, shell.reference_version)
        .await?;
    let (mut rows, mut count, mut next) = (Vec::new(), None, None);
    if let (Some(q), Some(sort)) = (&query, sort_parsed) {
        let cursor = (!after.is_empty()).then_some(after);
        match queues::page(&mut conn, actor, q, sort, cursor, queues::PAGE, now).await {
            Ok(Page {
                rows: mut r,
                next: n,
            }) => {
                reference.data.labels.fill(&mut conn, &mut r).await?;
                // A first page with no next one holds the whole list: it is the count.
                count = Some(if cursor.is_none() && n.is_none() {
                    Count(r.len() as i64)
                } else {
                    state.capped.count(&mut conn, actor, q, now).await?
                });
                rows = r.into_iter().map(|r| RowView::of(r, now)).collect();
                next = n;
            }
            Err(Error::Invalid(e)) => {
                for (f, m) in e.iter() {
                    errors.add(f, m);
                }
            }
            Err(e) => return Err(e),
        }
    }
    let here = match view {
        Some(v) => paths::queue(v.id),
        None => paths::queue_list().into(),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    render(
        status,
        &ListPage {
            shell: shell.at("queues"),
            title,
            view_id: view.map(|v| v.id.to_string()),
            can_delete: view.is_some_and(|v| {
                v.owner_id == Some(actor.user_id) || (v.shared() && v.created_by == actor.user_id)
            }),
            dates: dates(&filters),
            hidden: hidden(&filters),
            filters,
            sort: sort_parsed.map_or(sort.to_owned(), |s| s.as_str().to_owned()),
            columns: queues::columns(columns),
            cols: headings(&queues::columns(columns)),
            rows,
            count,
            next,
            errors,
            reference,
            here,
        },
    )
}

/// An ad-hoc list from the filter form.
pub async fn list(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = ListQuery::parse(raw.as_deref());
    list_page(
        &state,
        shell,
        &actor,
        "Tickets".into(),
        None,
        q.filters,
        &q.sort,
        &q.columns,
        &q.after,
    )
    .await
}

/// A saved view; only its cursor comes from the query string.
pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = ListQuery::parse(raw.as_deref());
    let id = id.parse().map_err(|_| Error::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    let view = queues::view(&mut conn, &actor, id).await?;
    drop(conn);
    list_page(
        &state,
        shell,
        &actor,
        view.name.clone(),
        Some(&view),
        view.filters.0.clone(),
        &view.sort,
        &view.columns,
        &q.after,
    )
    .await
}

#[derive(Template)]
#[template(path = "queues/index.html")]
struct IndexPage {
    shell: Shell,
    views: Vec<(queues::View, Option<Count>)>,
}

/// "My queues": personal and shared views, each with its capped count.
pub async fn index(State(state): State<AppState>, shell: Shell, actor: Actor) -> Result<Response> {
    let now = state.clock.now();
    let mut conn = state.pool.acquire().await?;
    let all = queues::views(&mut conn, &actor).await?;
    // A view whose filters no longer parse (a group deleted) shows no count.
    let parsed: Vec<Option<queues::Query>> =
        all.iter().map(|v| v.filters.0.parse(&actor).ok()).collect();
    let valid: Vec<&queues::Query> = parsed.iter().flatten().collect();
    let mut counts = queues::counts(&mut conn, &actor, &valid, now)
        .await?
        .into_iter();
    let views = all
        .into_iter()
        .zip(&parsed)
        .map(|(v, q)| {
            let count = q.as_ref().and_then(|_| counts.next());
            (v, count)
        })
        .collect();
    render(
        StatusCode::OK,
        &IndexPage {
            shell: shell.at("queues"),
            views,
        },
    )
}

/// Saves the list's filters as a view.
pub async fn save(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    let mut columns = Vec::new();
    for (k, v) in pairs {
        if k == "col" {
            columns.push(v);
        } else {
            named.insert(k, v);
        }
    }
    let filters = filters_from(&named);
    let sort = named.get("sort").map_or("sla", String::as_str);
    let name = named.get("name").map_or("", String::as_str);
    let shared = named.get("shared").is_some_and(|v| v == "on");
    let mut tx = state.pool.begin().await?;
    let result = match Sort::parse(sort) {
        Some(s) => {
            let view = queues::NewView {
                name,
                shared,
                filters: &filters,
                sort: s,
                columns: &columns,
            };
            queues::save(&mut tx, &actor, &view, state.clock.now()).await
        }
        None => Err(Error::Invalid(FieldErrors::one(
            "sort",
            "Choose from the list.",
        ))),
    };
    match result {
        Ok(id) => {
            tx.commit().await?;
            Ok(flash::redirect(
                &paths::queue(id),
                flash::Kind::Success,
                "Queue saved.",
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            let mut page_errors = FieldErrors::new();
            for (f, m) in errors.iter() {
                page_errors.add(f, m);
            }
            let mut conn = state.pool.acquire().await?;
            let reference = state
                .reference
                .get(&mut conn, shell.reference_version)
                .await?;
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ListPage {
                    shell: shell.at("queues"),
                    title: "Tickets".into(),
                    view_id: None,
                    can_delete: false,
                    dates: dates(&filters),
                    hidden: hidden(&filters),
                    filters,
                    sort: sort.to_owned(),
                    columns: queues::columns(&columns),
                    cols: headings(&queues::columns(&columns)),
                    rows: Vec::new(),
                    count: None,
                    next: None,
                    errors: page_errors,
                    reference,
                    here: paths::queue_list().into(),
                },
            )
        }
        Err(e) => Err(e),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = id.parse().map_err(|_| Error::NotFound)?;
    let mut tx = state.pool.begin().await?;
    queues::delete(&mut tx, &actor, id).await?;
    tx.commit().await?;
    Ok(flash::redirect(
        paths::queues(),
        flash::Kind::Success,
        "Queue deleted.",
    ))
}

/// A bulk action: all selected tickets change, or none does.
pub async fn bulk(
    State(state): State<AppState>,
    actor: Actor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let mut ids: Vec<TicketId> = Vec::new();
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in pairs {
        if k == "ticket" {
            if let Ok(id) = v.parse() {
                ids.push(id);
            }
        } else {
            named.insert(k, v);
        }
    }
    // Back to the list it came from; anything else goes to the queues.
    let back = named
        .get("back")
        .filter(|b| b.starts_with("/queues/") && !b.contains("//"))
        .cloned()
        .unwrap_or_else(|| paths::queues().into());
    if ids.is_empty() {
        return Ok(flash::redirect(
            &back,
            flash::Kind::Error,
            "Select at least one ticket.",
        ));
    }
    let get = |k: &str| named.get(k).map(|v| v.trim()).unwrap_or_default();
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let watcher: Option<UserId> = if get("action") == "watch" {
        sqlx::query_scalar("select id from users where lower(email) = lower($1)")
            .bind(get("watcher"))
            .fetch_optional(&mut *tx)
            .await?
    } else {
        None
    };
    let mut refused: Vec<String> = Vec::new();
    for id in &ids {
        let ticket = match tickets::find_for_change_by_id(&mut tx, &actor, *id).await {
            Ok(t) => t,
            Err(Error::NotFound) => {
                refused.push("a ticket you cannot see".into());
                continue;
            }
            Err(e) => return Err(e),
        };
        let result = match get("action") {
            "assign" => {
                let group: Option<GroupId> = get("group_id").parse().ok();
                let assignee: Option<UserId> = get("assignee_id").parse().ok();
                triage::assign(&mut tx, &actor, &ticket, group, assignee, now).await
            }
            "take" => triage::take(&mut tx, &actor, &ticket, now).await,
            "watch" => match watcher {
                Some(user) => watchers::add(&mut tx, &actor, &ticket, user, now).await,
                None => Err(Error::Invalid(FieldErrors::one(
                    "watcher",
                    "There is nobody with that e-mail address.",
                ))),
            },
            "priority" => match get("priority").parse::<i16>() {
                Ok(p) => {
                    triage::set_priority(&mut tx, &actor, &ticket, None, None, Some(p), now).await
                }
                Err(_) => Err(Error::Invalid(FieldErrors::one(
                    "priority",
                    "Choose a priority.",
                ))),
            },
            "transition" => {
                let input = flow::Input {
                    comment: get("comment").to_owned(),
                    ..flow::Input::default()
                };
                flow::take_transition(&mut tx, &actor, &ticket, get("transition"), &input, now)
                    .await
            }
            _ => Err(Error::Invalid(FieldErrors::one(
                "action",
                "Choose an action.",
            ))),
        };
        match result {
            Ok(()) => {}
            Err(Error::Invalid(errors)) => {
                let why: Vec<&str> = errors.iter().map(|(_, m)| m).collect();
                refused.push(format!("{}: {}", ticket.key(), why.join(" ")));
            }
            Err(Error::Forbidden) => {
                refused.push(format!("{}: you may not do this here.", ticket.key()))
            }
            Err(Error::Conflict(m)) => refused.push(format!("{}: {m}", ticket.key())),
            Err(e) => return Err(e),
        }
    }
    if !refused.is_empty() {
        drop(tx);
        return Ok(flash::redirect(
            &back,
            flash::Kind::Error,
            &format!("Nothing was changed. {}", refused.join(" · ")),
        ));
    }
    tx.commit().await?;
    Ok(flash::redirect(
        &back,
        flash::Kind::Success,
        &format!("Changed {} tickets.", ids.len()),
    ))
}

#[derive(Template)]
#[template(path = "queues/desk.html")]
struct DeskPage {
    shell: Shell,
    sections: Vec<(&'static str, String, Vec<RowView>, Count)>,
    cols: Vec<(&'static str, &'static str)>,
}

fn dates(f: &Filters) -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("created_from", "Filed from", f.created_from.clone()),
        ("created_to", "Filed until", f.created_to.clone()),
        ("updated_from", "Updated from", f.updated_from.clone()),
        ("updated_to", "Updated until", f.updated_to.clone()),
    ]
}

fn hidden(f: &Filters) -> Vec<(&'static str, String)> {
    f.pairs()
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect()
}

fn headings(columns: &[String]) -> Vec<(&'static str, &'static str)> {
    queues::COLUMNS
        .iter()
        .filter(|(k, _)| columns.iter().any(|c| c == k))
        .copied()
        .collect()
}

impl DeskPage {
    fn bulk(&self) -> bool {
        false
    }
}

/// The help desk home: my open tickets, unassigned in my groups, due soon, breached.
pub async fn desk(State(state): State<AppState>, shell: Shell, actor: Actor) -> Result<Response> {
    let now = state.clock.now();
    let mut conn = state.pool.acquire().await?;
    let reference = state
        .reference
        .get(&mut conn, shell.reference_version)
        .await?;
    let active = |f: Filters| Filters {
        category: "active".into(),
        ..f
    };
    let specs = [
        (
            "My open tickets",
            active(Filters {
                assignee: "me".into(),
                ..Filters::default()
            }),
        ),
        (
            "Unassigned in my groups",
            active(Filters {
                group: "mine".into(),
                assignee: "unassigned".into(),
                ..Filters::default()
            }),
        ),
        (
            "Due soon",
            active(Filters {
                group: "mine".into(),
                sla: "due_soon".into(),
                ..Filters::default()
            }),
        ),
        (
            "Breached",
            active(Filters {
                group: "mine".into(),
                sla: "breached".into(),
                ..Filters::default()
            }),
        ),
    ];
    // Without groups, the group sections are empty: skip their queries.
    let specs: Vec<(&str, Filters)> = specs
        .into_iter()
        .filter(|(_, f)| !(actor.groups.is_empty() && f.group == "mine"))
        .collect();
    let mut queries = Vec::new();
    for (_, filters) in &specs {
        queries.push(
            filters
                .parse(&actor)
                .map_err(|_| Error::Internal(anyhow::anyhow!("desk filters")))?,
        );
    }
    let counts =
        queues::counts(&mut conn, &actor, &queries.iter().collect::<Vec<_>>(), now).await?;
    let mut sections = Vec::new();
    for (((title, filters), q), count) in specs.into_iter().zip(&queries).zip(counts) {
        let mut page = queues::page(&mut conn, &actor, q, Sort::Sla, None, 10, now).await?;
        reference
            .data
            .labels
            .fill(&mut conn, &mut page.rows)
            .await?;
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(filters.pairs())
            .finish();
        sections.push((
            title,
            paths::queue_list_of(query),
            page.rows.into_iter().map(|r| RowView::of(r, now)).collect(),
            count,
        ));
    }
    render(
        StatusCode::OK,
        &DeskPage {
            shell: shell.at("desk"),
            sections,
            cols: headings(
                &["key", "title", "state", "priority", "sla", "assignee"].map(String::from),
            ),
        },
    )
}
