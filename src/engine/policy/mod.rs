//! The one place that decides access. `decide` answers "may this actor do this to that?"
//! with a reason; `push_ticket_scope` writes the same rule as SQL for lists, counts and
//! look-ups, so a ticket the actor may not see is simply not found. No handler checks a role.
//!
//! Permissions come from a catalog fixed in code; roles (data) bundle them; memberships give
//! a role to a user or a group, everywhere or in one project. Relations to a ticket
//! (requester, assignee, member of the assigned group, watcher) act as roles on it.

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
    pub org_unit_id: Option<OrgUnitId>,
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
    /// File a ticket in a project.
    CreateTicket(ProjectId),
    ViewTicket,
    CommentPublic,
    /// Read and write internal notes and internal fields.
    SeeInternal,
    EditTicket,
    AssignTicket,
    TransitionTicket,
    ApproveTicket,
    /// An admin area, by its permission (always global).
    Administer(Permission),
    /// See another user's effective permissions.
    ViewPermissionsOf(UserId),
}

/// What the action is aimed at.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Nothing,
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

fn can_view(actor: &Actor, ticket: &TicketFacts) -> Decision {
    if let Some(rel) = relation(actor, ticket) {
        return Decision::Allow(rel.into());
    }
    if let Some(grant) = actor.grant_for(Permission::TicketViewAll, Some(ticket.project_id)) {
        return Decision::Allow(format!("ticket.view_all through {}", grant.via()));
    }
    if ticket.org_unit_visible
        && ticket.org_unit_id.is_some()
        && ticket.org_unit_id == actor.org_unit_id
    {
        return Decision::Allow("ticket of the actor's organisation unit".into());
    }
    Decision::Deny("not a participant and no role shows this project's tickets".into())
}

pub fn decide(actor: &Actor, action: Action, target: Target<'_>) -> Decision {
    match (action, target) {
        (Action::CreateTicket(project), _) => {
            Decision::by_grant(actor, Permission::TicketCreate, Some(project))
        }
        (Action::Administer(permission), _) => Decision::by_grant(actor, permission, None),
        (Action::ViewPermissionsOf(user), _) if user == actor.user_id => {
            Decision::Allow("own permissions".into())
        }
        (Action::ViewPermissionsOf(_), _) => {
            Decision::by_grant(actor, Permission::AdminUsers, None)
        }
        (_, Target::Nothing) => Decision::Deny("no ticket given".into()),
        (Action::ViewTicket, Target::Ticket(t)) => can_view(actor, t),
        (action, Target::Ticket(t)) => {
            let view = can_view(actor, t);
            if !view.allowed() {
                return view;
            }
            let permission = match action {
                Action::CommentPublic => {
                    // Those the ticket is about, or for, may always answer on it.
                    if let Some(rel) = relation(actor, t) {
                        return Decision::Allow(rel.into());
                    }
                    Permission::TicketCommentPublic
                }
                Action::SeeInternal => Permission::TicketCommentInternal,
                Action::EditTicket => Permission::TicketEdit,
                Action::AssignTicket => Permission::TicketAssign,
                Action::TransitionTicket => Permission::TicketTransition,
                Action::ApproveTicket => Permission::TicketApprove,
                Action::ViewTicket
                | Action::CreateTicket(_)
                | Action::Administer(_)
                | Action::ViewPermissionsOf(_) => return view,
            };
            Decision::by_grant(actor, permission, Some(t.project_id))
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
/// group, full-text matches): relations through other tables are correlated `exists`, so
/// PostgreSQL never builds index bitmaps of the actor's whole reach to combine with a
/// selective condition. A list that nothing else narrows uses `push_ticket_scope_indexed`.
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
        qb.push(format_args!(" or ({alias}.org_unit_id = "));
        qb.push_bind(org);
        let projects = "select vp.id from projects vp where vp.requester_visibility = 'org_unit'";
        if indexed {
            qb.push(format_args!(
                " and {alias}.project_id = any(array({projects})))"
            ));
        } else {
            qb.push(format_args!(" and {alias}.project_id in ({projects}))"));
        }
    }
    qb.push(")");
}

#[cfg(test)]
mod tests;
