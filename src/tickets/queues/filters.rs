//! A queue's filters: as typed in the form or stored with a view (`Filters`, text), checked
//! into a `Query`, and appended to a statement as SQL with binds and the policy's scope.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};

use super::CATEGORIES;
use crate::core::FieldErrors;
use crate::core::ids::{GroupId, OrgUnitId, ProcessId, ProjectId, SystemId, UserId};
use crate::core::time::to_db;
use crate::engine::policy::{self, Actor};

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
pub(super) fn push_filters(
    qb: &mut QueryBuilder<Postgres>,
    actor: &Actor,
    q: &Query,
    now: Timestamp,
) {
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
