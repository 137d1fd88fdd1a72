//! The one place that decides access. `decide` answers "may this actor do this to that?"
//! with a reason; `push_ticket_scope` writes the same rule as SQL for lists, counts and
//! look-ups, so a ticket the actor may not see is simply not found. No handler checks a role.
//!
//! Permissions come from a catalog fixed in code; roles (data) bundle them; memberships give
//! a role to a user or a group, everywhere or in one project. Relations to a ticket
//! (requester, assignee, member of the assigned group, watcher, approver) act as roles on it.
//! The route table asks `decide` first with `Target::AnyTicket` (could this ever be allowed?),
//! the handler then for the ticket itself.

mod catalog;
mod for_users;

use std::fmt;

use serde::Deserialize;
use sqlx::{Postgres, QueryBuilder};

use crate::core::ids::{GroupId, OrgUnitId, ProjectId, UserId};

pub use catalog::Permission;
pub use for_users::{push_user_may_see_internal, push_user_may_view};

/// One permission held, and where it comes from (for "effective permissions").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Grant {
    pub permission: String,
    /// `None`: in every project.
    pub project: Option<ProjectId>,
    pub role: String,
    /// The group through which the role is held, if not held directly.
    pub group: Option<String>,
}

impl Grant {
    pub fn via(&self) -> String {
        match &self.group {
            Some(group) => format!("role {} via group {}", self.role, group),
            None => format!("role {}", self.role),
        }
    }
}

/// Who is acting, with everything the policy needs, loaded once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub org_unit_id: Option<OrgUnitId>,
    pub groups: Vec<GroupId>,
    grants: Vec<(Permission, Option<ProjectId>, usize)>,
    sources: Vec<Grant>,
}

impl Actor {
    /// Builds an actor from its grants; unknown permission names (removed from the catalog)
    /// are ignored.
    pub fn new(
        user_id: UserId,
        org_unit_id: Option<OrgUnitId>,
        groups: Vec<GroupId>,
        sources: Vec<Grant>,
    ) -> Self {
        let grants = sources
            .iter()
            .enumerate()
            .filter_map(|(i, g)| Permission::parse(&g.permission).map(|p| (p, g.project, i)))
            .collect();
        Self {
            user_id,
            org_unit_id,
            groups,
            grants,
            sources,
        }
    }

    /// The grant that gives `permission` in `project` (a global grant counts everywhere).
    fn grant_for(&self, permission: Permission, project: Option<ProjectId>) -> Option<&Grant> {
        self.grants
            .iter()
            .filter(|(p, _, _)| *p == permission)
            .find(|(_, scope, _)| scope.is_none() || (project.is_some() && *scope == project))
            .map(|(_, _, i)| &self.sources[*i])
    }

    /// Holds `permission` in `project` (or everywhere, for `None`: then only global grants).
    pub fn has(&self, permission: Permission, project: Option<ProjectId>) -> bool {
        self.grant_for(permission, project).is_some()
    }

    /// Holds `permission` globally or in at least one project.
    pub fn has_anywhere(&self, permission: Permission) -> bool {
        self.grants.iter().any(|(p, _, _)| *p == permission)
    }

    /// Where the actor holds `permission`.
    pub fn scope_of(&self, permission: Permission) -> Reach {
        let mut projects = Vec::new();
        for (p, scope, _) in &self.grants {
            if *p != permission {
                continue;
            }
            match scope {
                None => return Reach::Everywhere,
                Some(project) => projects.push(*project),
            }
        }
        projects.sort();
        projects.dedup();
        Reach::Projects(projects)
    }

    /// Names of the roles held in `project` (or everywhere): what workflows refer to.
    pub fn role_names_in(&self, project: ProjectId) -> std::collections::BTreeSet<String> {
        self.sources
            .iter()
            .filter(|g| g.project.is_none() || g.project == Some(project))
            .map(|g| g.role.clone())
            .collect()
    }

    /// Every grant, for the effective-permissions page.
    pub fn sources(&self) -> &[Grant] {
        &self.sources
    }
}

/// Where a permission is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Everywhere,
    Projects(Vec<ProjectId>),
}

/// The facts about a ticket that access depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub project_id: ProjectId,
    pub requester_id: UserId,
    pub assignee_id: Option<UserId>,
    pub assignee_group_id: Option<GroupId>,
    /// The requester's organisation unit when the ticket was filed.
    pub org_unit_id: Option<OrgUnitId>,
    /// The site or business unit the ticket is about.
    pub site_id: Option<OrgUnitId>,
    /// The project lets requesters see the tickets of their organisation unit.
    pub org_unit_visible: bool,
    /// The actor watches the ticket.
    pub actor_watches: bool,
    /// The actor is asked to approve the ticket (in any round).
    pub actor_approves: bool,
}

impl TicketFacts {
    /// The relations the actor has to the ticket, as workflow role names.
    pub fn relations(&self, actor: &Actor) -> Vec<&'static str> {
        let mut found = Vec::new();
        if self.requester_id == actor.user_id {
            found.push("requester");
        }
        if self.assignee_id == Some(actor.user_id) {
            found.push("assignee");
        }
        if self
            .assignee_group_id
            .is_some_and(|g| actor.groups.contains(&g))
        {
            found.push("assignee_group_member");
        }
        if self.actor_watches {
            found.push("watcher");
        }
        if self.actor_approves {
            found.push("approver");
        }
        found
    }
}

/// What the actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// File a ticket (in the target's project).
    CreateTicket,
    ViewTicket,
    CommentPublic,
    /// Read and write internal notes and internal fields.
    SeeInternal,
    EditTicket,
    AssignTicket,
    /// Close as a duplicate or merge (with `EditTicket`). The workflow's own transitions
    /// name their roles: see `UseWorkflow`.
    TransitionTicket,
    /// Answer an approval round one is asked in.
    ApproveTicket,
    /// Take a transition or edit fields: the ticket's workflow decides by role name (stored
    /// roles held in its project, or relations such as a requester confirming), so the policy
    /// asks only that the actor sees the ticket.
    UseWorkflow,
    /// Save a queue that everyone sees.
    ShareQueue,
    /// An admin area, by its permission (always global).
    Administer(Permission),
    /// See another user's effective permissions.
    ViewPermissionsOf(UserId),
}

/// What the action is aimed at.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Nothing,
    /// The tickets of a project in general, before there is one (filing; the internal fields
    /// of the new-ticket form; history merged in from another project).
    Project(ProjectId),
    /// Some ticket not known yet: the first gate of a route, before any look-up. Allowed
    /// when the action could be allowed on at least one ticket — a grant of its permission in
    /// some project, or a relation that stands in for it (see `decide`).
    AnyTicket,
    Ticket(&'a TicketFacts),
}

/// The answer, with the reason that decided it (for logs and the permissions page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(String),
    Deny(String),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    fn by_grant(actor: &Actor, permission: Permission, project: Option<ProjectId>) -> Self {
        match actor.grant_for(permission, project) {
            Some(grant) => {
                Decision::Allow(format!("{} through {}", permission.name(), grant.via()))
            }
            None => Decision::Deny(format!("no role gives {}", permission.name())),
        }
    }

    /// Held in some project (or everywhere).
    fn by_grant_anywhere(actor: &Actor, permission: Permission) -> Self {
        let first = actor
            .grants
            .iter()
            .find(|(p, _, _)| *p == permission)
            .map(|(_, _, i)| &actor.sources[*i]);
        match first {
            Some(grant) => Decision::Allow(format!(
                "{} through {} (in some project)",
                permission.name(),
                grant.via()
            )),
            None => Decision::Deny(format!("no role gives {} anywhere", permission.name())),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow(why) => write!(f, "allowed: {why}"),
            Decision::Deny(why) => write!(f, "denied: {why}"),
        }
    }
}

/// How the actor relates to a ticket, strongest first.
fn relation(actor: &Actor, ticket: &TicketFacts) -> Option<&'static str> {
    ticket.relations(actor).first().copied()
}

/// The organisation rule: where the project shares with requesters' units, a ticket is seen
/// by people of the unit it was filed from (`tickets.org_unit_id`, the requester's unit then)
/// and of the unit it is about (`tickets.site_id`: a site or business unit is a unit too).
/// Exact units only: a region does not see its countries' tickets.
fn org_unit_sees(actor: &Actor, ticket: &TicketFacts) -> bool {
    ticket.org_unit_visible
        && actor.org_unit_id.is_some()
        && (ticket.org_unit_id == actor.org_unit_id || ticket.site_id == actor.org_unit_id)
}

fn can_view(actor: &Actor, ticket: &TicketFacts) -> Decision {
    if let Some(rel) = relation(actor, ticket) {
        return Decision::Allow(rel.into());
    }
    if let Some(grant) = actor.grant_for(Permission::TicketViewAll, Some(ticket.project_id)) {
        return Decision::Allow(format!("ticket.view_all through {}", grant.via()));
    }
    if org_unit_sees(actor, ticket) {
        return Decision::Allow("ticket of the actor's organisation unit".into());
    }
    Decision::Deny("not a participant and no role shows this project's tickets".into())
}

/// The permission an action on tickets needs, when no relation stands in for it.
fn permission_of(action: Action) -> Option<Permission> {
    match action {
        Action::CreateTicket => Some(Permission::TicketCreate),
        Action::ViewTicket => Some(Permission::TicketViewAll),
        Action::CommentPublic => Some(Permission::TicketCommentPublic),
        Action::SeeInternal => Some(Permission::TicketCommentInternal),
        Action::EditTicket => Some(Permission::TicketEdit),
        Action::AssignTicket => Some(Permission::TicketAssign),
        Action::TransitionTicket => Some(Permission::TicketTransition),
        Action::ApproveTicket => Some(Permission::TicketApprove),
        Action::UseWorkflow
        | Action::ShareQueue
        | Action::Administer(_)
        | Action::ViewPermissionsOf(_) => None,
    }
}

/// Why a relation to some ticket may allow the action without its permission: what `decide`
/// says for a ticket, asked before the ticket is known. Anyone can hold a relation (a
/// requester is anyone who filed, even by e-mail), so these actions pass the route gate.
fn stand_in(action: Action) -> Option<&'static str> {
    match action {
        Action::ViewTicket => Some("anyone sees the tickets they take part in"),
        Action::CommentPublic => Some("those a ticket is about or for may answer on it"),
        Action::ApproveTicket => Some("whoever a round asks may answer it"),
        Action::UseWorkflow => Some("the workflow names who may act, by stored role or relation"),
        _ => None,
    }
}

pub fn decide(actor: &Actor, action: Action, target: Target<'_>) -> Decision {
    match (action, target) {
        (Action::Administer(permission), _) => Decision::by_grant(actor, permission, None),
        (Action::ViewPermissionsOf(user), _) if user == actor.user_id => {
            Decision::Allow("own permissions".into())
        }
        (Action::ViewPermissionsOf(_), _) => {
            Decision::by_grant(actor, Permission::AdminUsers, None)
        }
        // Team leads and agents share queues: those who assign tickets somewhere.
        (Action::ShareQueue, _) => Decision::by_grant_anywhere(actor, Permission::TicketAssign),
        (_, Target::Nothing) => Decision::Deny("no ticket or project given".into()),
        (action, Target::AnyTicket) => match (stand_in(action), permission_of(action)) {
            (Some(why), Some(permission)) => {
                let held = Decision::by_grant_anywhere(actor, permission);
                if held.allowed() {
                    held
                } else {
                    Decision::Allow(why.into())
                }
            }
            (Some(why), None) => Decision::Allow(why.into()),
            (None, Some(permission)) => Decision::by_grant_anywhere(actor, permission),
            (None, None) => Decision::Deny("not an action on tickets".into()),
        },
        (action, Target::Project(project)) => match permission_of(action) {
            Some(permission) => Decision::by_grant(actor, permission, Some(project)),
            None => Decision::Deny("not an action on a project's tickets".into()),
        },
        (Action::CreateTicket, Target::Ticket(t)) => {
            Decision::by_grant(actor, Permission::TicketCreate, Some(t.project_id))
        }
        (Action::ViewTicket | Action::UseWorkflow, Target::Ticket(t)) => can_view(actor, t),
        (action, Target::Ticket(t)) => {
            let view = can_view(actor, t);
            if !view.allowed() {
                return view;
            }
            match action {
                // Those the ticket is about, or for, may always answer on it.
                Action::CommentPublic => {
                    if let Some(rel) = relation(actor, t) {
                        return Decision::Allow(rel.into());
                    }
                }
                // Whoever a round asks answers it, with or without `ticket.approve`.
                Action::ApproveTicket if t.actor_approves => {
                    return Decision::Allow("approver".into());
                }
                _ => {}
            }
            match permission_of(action) {
                Some(permission) => Decision::by_grant(actor, permission, Some(t.project_id)),
                None => view,
            }
        }
    }
}

/// True when a list already narrowed to tickets assigned to `assignee`, or to one of
/// `groups`, can only hold tickets `actor` may see: assigned to the actor, or to groups the
/// actor is in, are both branches of the ticket scope. Queues then leave the scope out, so
/// their queries stay on the queue indexes (a capped count reads 1,000 index entries instead
/// of 1,000 table rows).
pub fn scope_implied(actor: &Actor, groups: Option<&[GroupId]>, assignee: Option<UserId>) -> bool {
    assignee == Some(actor.user_id)
        || groups.is_some_and(|g| !g.is_empty() && g.iter().all(|g| actor.groups.contains(g)))
}

/// Appends a predicate (starting with `and`) that keeps only the tickets `actor` may see:
/// the same rule as `can_view`. `alias` is the tickets table's alias in the query.
///
/// This form is a filter on rows another condition found (a key, a requester, a queue's
/// group, full-text matches): relations through other tables are `in (subquery)`, which
/// PostgreSQL evaluates once as a hashed set and cannot turn into an index condition, so it
/// never builds index bitmaps of the actor's whole reach to combine with a selective
/// condition. A list that nothing else narrows uses `push_ticket_scope_indexed`.
pub fn push_ticket_scope(qb: &mut QueryBuilder<Postgres>, actor: &Actor, alias: &str) {
    push_scope(qb, actor, alias, false);
}

/// The same predicate as `push_ticket_scope`, written so that every branch is an index
/// condition on `tickets` (relations through other tables become arrays of ticket ids,
/// computed once): PostgreSQL can combine the branches' indexes in a `BitmapOr`, so a list
/// that no filter narrows reads the actor's tickets, never the whole table.
pub fn push_ticket_scope_indexed(qb: &mut QueryBuilder<Postgres>, actor: &Actor, alias: &str) {
    push_scope(qb, actor, alias, true);
}

fn push_scope(qb: &mut QueryBuilder<Postgres>, actor: &Actor, alias: &str, indexed: bool) {
    let view_all = actor.scope_of(Permission::TicketViewAll);
    if view_all == Reach::Everywhere {
        return;
    }
    qb.push(format_args!(" and ({alias}.requester_id = "));
    qb.push_bind(actor.user_id);
    qb.push(format_args!(" or {alias}.assignee_id = "));
    qb.push_bind(actor.user_id);
    if !actor.groups.is_empty() {
        qb.push(format_args!(" or {alias}.assignee_group_id = any("));
        qb.push_bind(actor.groups.clone());
        qb.push(")");
    }
    let (ids_in, ids_end) = if indexed {
        (format!(" or {alias}.id = any(array("), "))")
    } else {
        (format!(" or {alias}.id in ("), ")")
    };
    qb.push(&ids_in);
    qb.push("select w.ticket_id from ticket_watchers w where w.user_id = ");
    qb.push_bind(actor.user_id);
    qb.push(ids_end);
    qb.push(&ids_in);
    qb.push(
        "select ar.ticket_id from approval_requests aq \
         join approval_rounds ar on ar.id = aq.round_id where aq.approver_id = ",
    );
    qb.push_bind(actor.user_id);
    qb.push(ids_end);
    if let Reach::Projects(projects) = view_all
        && !projects.is_empty()
    {
        qb.push(format_args!(" or {alias}.project_id = any("));
        qb.push_bind(projects);
        qb.push(")");
    }
    if let Some(org) = actor.org_unit_id {
        // Tickets of the actor's unit, or of their site, in projects that show them.
        let projects = "select vp.id from projects vp where vp.requester_visibility = 'org_unit'";
        for column in ["org_unit_id", "site_id"] {
            qb.push(format_args!(" or ({alias}.{column} = "));
            qb.push_bind(org);
            if indexed {
                qb.push(format_args!(
                    " and {alias}.project_id = any(array({projects})))"
                ));
            } else {
                qb.push(format_args!(" and {alias}.project_id in ({projects}))"));
            }
        }
    }
    qb.push(")");
}

#[cfg(test)]
mod tests;
