//! Filing a ticket: the form's rules checked against its process, the number taken, the row
//! written once with its SLA clocks, its `created` event, and the first state entered.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row as _};

use super::event_data::EventData;
use super::events::{self, record};
use super::ticket::{
    TEXT_MAX, TITLE_MAX, acting, check_text, find_for_system, find_visible_by_id, touch,
};
use super::values::{check_references, parse_values, references};
use super::{flow, links, sla, triage};
use crate::core::ids::{OrgUnitId, ProcessId, ProjectId, TicketId, TicketKey};
use crate::core::markdown;
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target, TicketFacts};
use crate::engine::workflow::{Snapshot, Value};
use crate::{processes, projects};

/// The process used when none is chosen (e.g. a quick request).
pub const DEFAULT_PROCESS: &str = "question";

/// Which process a new ticket follows.
#[derive(Debug, Clone, Default)]
pub enum ProcessChoice {
    /// `DEFAULT_PROCESS` (e.g. a quick request).
    #[default]
    Default,
    Id(ProcessId),
    /// As a form names it.
    Key(String),
}

/// What a person typed to file a ticket.
#[derive(Debug, Clone, Default)]
pub struct NewTicket {
    pub project_id: Option<ProjectId>,
    pub process: ProcessChoice,
    pub title: String,
    pub description: String,
    /// Process field values as sent by the form (field key → values).
    pub values: BTreeMap<String, Vec<String>>,
    /// A sub-task's parent.
    pub parent_id: Option<TicketId>,
    /// The site or business unit (when the process has no site field of its own).
    pub site_id: Option<OrgUnitId>,
    /// An earlier request this one follows up (too old to reopen): linked "relates to".
    pub follow_up: Option<TicketId>,
}

/// Files a ticket: checks the process's form rules, takes its number, writes the row and its
/// `created` event (and starts approvals when the first state has a step).
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    input: &NewTicket,
    now: Timestamp,
) -> Result<Filed> {
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
    match &project {
        None => errors.add("project_id", "Choose a project."),
        Some(p)
            if !policy::decide(actor, Action::CreateTicket, Target::Project(p.id)).allowed() =>
        {
            errors.add("project_id", "You cannot file requests in this project.");
        }
        Some(_) => {}
    }
    let process = match &input.process {
        ProcessChoice::Default => processes::find_by_key(conn, DEFAULT_PROCESS).await?,
        ProcessChoice::Id(id) => processes::find(conn, *id).await.ok(),
        ProcessChoice::Key(key) => processes::find_by_key(conn, key).await?,
    };
    let process = process.filter(|p| p.active && p.version.is_some());
    let (Some(project), Some(process)) = (project, process) else {
        if !matches!(input.process, ProcessChoice::Default) || errors.is_empty() {
            errors.add("process_id", "Choose what kind of request this is.");
        }
        return Err(Error::Invalid(errors));
    };
    let version = process.version.unwrap_or(1);
    let def = processes::definition(conn, process.id, version).await?;
    let Some(initial) = def.initial_state() else {
        return Err(Error::Internal(anyhow::anyhow!(
            "process {} has no initial state",
            process.key
        )));
    };
    let facts = TicketFacts {
        project_id: project.id,
        requester_id: actor.user_id,
        assignee_id: None,
        assignee_group_id: None,
        org_unit_id: actor.org_unit_id,
        site_id: input.site_id,
        org_unit_visible: project.org_unit_visible,
        actor_watches: false,
        actor_approves: false,
    };
    let acting = acting(actor, &facts);
    let (values, parse_errors) = parse_values(&def, &input.values);
    for (field, message) in parse_errors.iter() {
        errors.add(field, message);
    }
    for refusal in def.check_values(&initial.key, &acting, &values) {
        errors.add(refusal.field.as_deref().unwrap_or("form"), refusal.reason);
    }
    // References are looked up only for values the form may set and that fit their field.
    let fitting: BTreeMap<String, Value> = values
        .iter()
        .filter(|(k, _)| errors.get(k).is_none())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (field, message) in check_references(conn, &def, &fitting).await?.iter() {
        errors.add(field, message);
    }
    let empty = Snapshot::default();
    for refusal in def.missing_required(&initial.key, &acting, &empty, &values) {
        if errors
            .get(refusal.field.as_deref().unwrap_or("form"))
            .is_none()
        {
            errors.add(refusal.field.as_deref().unwrap_or("form"), refusal.reason);
        }
    }
    if let Some(parent) = input.parent_id {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("select exists (select 1 from tickets t where t.id = ");
        qb.push_bind(parent);
        policy::push_ticket_scope(&mut qb, actor, "t");
        qb.push(")");
        let visible: bool = qb.build_query_scalar().fetch_one(&mut *conn).await?;
        if !visible {
            errors.add("parent_id", "The parent ticket does not exist.");
        }
    }
    let follow_up = match input.follow_up {
        Some(id) => match find_visible_by_id(conn, actor, id).await {
            Ok(t) => Some(t),
            Err(Error::NotFound) => {
                errors.add("follow_up", "The earlier request does not exist.");
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    errors.into_result()?;
    let (system_id, site_id) = references(&def, &values);
    let site_id = site_id.or(input.site_id);
    let id = TicketId::new();
    let title = input.title.trim();
    let html = markdown::render(&input.description);
    let created = EventData::Created {
        title: title.to_owned(),
        process: process.name.clone(),
        state: initial.label.clone(),
        category: initial.category.as_str().to_owned(),
        priority: triage::DEFAULT_PRIORITY,
    };
    // The clocks come from the same replay as every change's (`touch`), given the one event
    // recorded below: they go into the insert, and the row is written once (an update of the
    // SLA columns rewrote every index of the new row; docs/benchmarks.md).
    let routed = triage::routed_group(conn, project.id, process.id, system_id, site_id).await?;
    let filed_event = [(Some(actor.user_id), created.clone(), now)];
    let sla = sla::replay_events(
        conn,
        project.id,
        Some(process.id),
        actor.user_id,
        &filed_event,
    )
    .await?;
    let insert = sqlx::query(
        "insert into tickets (id, project_id, number, title, description_md, description_html,
                              requester_id, org_unit_id, process_id, process_version, state, state_category,
                              field_values, system_id, site_id, parent_id, created_at, updated_at,
                              assignee_group_id,
                              sla_policy_id, first_response_due, resolution_due, sla_due, sla_warn_at,
                              sla_paused, first_response_breached_at, resolution_breached_at,
                              first_response_at)
         values ($1, $2, nextval(ticket_number_sequence($2)::regclass), $3, $4, $5, $6, $7, $8,
                 $9, $10, $11, $12, $13, $14, $15, $16, $16, $17, $18, $19, $20, $21, $22, $23,
                 $24, $25, $26)
         returning number",
    )
    .bind(id)
    .bind(project.id)
    .bind(title)
    .bind(&input.description)
    .bind(html.as_str())
    .bind(actor.user_id)
    .bind(actor.org_unit_id)
    .bind(process.id)
    .bind(version)
    .bind(&initial.key)
    .bind(initial.category.as_str())
    .bind(Json(&values))
    .bind(system_id)
    .bind(site_id)
    .bind(input.parent_id)
    .bind(to_db(now))
    .bind(routed.as_ref().map(|(group, _)| *group));
    // The number comes from the project's own sequence (migration 0016): unique and without a
    // lock, so filings into one project commit in parallel; a filing that rolls back leaves a
    // gap.
    let number: i64 = sla::bind_clocks(insert, &sla)
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| {
            crate::core::error::missing_reference(
                "form",
                "Something chosen in the form no longer exists.",
            )(Error::Db(e))
        })?;
    // The group hears of the ticket from this event (its notice goes to the ticket's group);
    // the routing is recorded after it without a second notice.
    record(conn, id, Some(actor.user_id), &created, now).await?;
    if let Some((_, group)) = routed {
        events::record_unannounced(conn, id, None, &EventData::GroupAssigned { group }, now)
            .await?;
    }
    // An approval step or `on_enter` effects of the first state: a change like any other,
    // ending in `touch`, which replays the clocks with the events it added.
    flow::enter(conn, Some(actor), id, &def, &initial.key, now).await?;
    if let Some(earlier) = follow_up {
        let this = find_for_system(conn, id).await?;
        links::connect(conn, actor.user_id, &this, &earlier, "relates_to", now).await?;
        touch(conn, earlier.id, now).await?;
    }
    let key = format!("{}-{number}", project.key);
    let key =
        TicketKey::parse(&key).ok_or_else(|| Error::Internal(anyhow::anyhow!("bad key {key}")))?;
    Ok(Filed { id, key })
}

/// A ticket just filed.
#[derive(Debug, Clone)]
pub struct Filed {
    pub id: TicketId,
    pub key: TicketKey,
}
