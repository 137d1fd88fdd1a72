//! The policy as SQL over many users at once: "may the user in this row see that ticket, or
//! its internal data?" For fan-outs (notification recipients), where loading an `Actor` per
//! person would be a query per person. Each predicate mirrors `decide` for the same user;
//! `tests/it/policy.rs` checks that they agree.

use sqlx::{Postgres, QueryBuilder};

use super::Permission;

/// Appends `exists (…)`: the user holds `permission` in the ticket's project (a global grant
/// counts everywhere), directly or through a group. As `Actor::has` after loading the user.
fn push_grant(qb: &mut QueryBuilder<Postgres>, permission: Permission, user: &str, ticket: &str) {
    qb.push(
        "exists (select 1 from memberships pm join role_permissions prp on prp.role_id = pm.role_id
         where prp.permission = ",
    );
    qb.push_bind(permission.name());
    qb.push(format_args!(
        " and (pm.project_id is null or pm.project_id = {ticket}.project_id)
          and (pm.user_id = {user}.id or pm.group_id in
               (select pgm.group_id from group_members pgm where pgm.user_id = {user}.id)))"
    ));
}

/// Appends a predicate (starting with `and`): the user `user` (an alias of `users`) may view
/// the ticket `ticket` (an alias of `tickets`). The rule of `decide(.., ViewTicket, ..)`.
pub fn push_user_may_view(qb: &mut QueryBuilder<Postgres>, user: &str, ticket: &str) {
    qb.push(format_args!(
        " and ({ticket}.requester_id = {user}.id or {ticket}.assignee_id = {user}.id
          or exists (select 1 from group_members pg where pg.group_id = {ticket}.assignee_group_id
                     and pg.user_id = {user}.id)
          or exists (select 1 from ticket_watchers pw where pw.ticket_id = {ticket}.id
                     and pw.user_id = {user}.id)
          or exists (select 1 from approval_rounds par join approval_requests paq on paq.round_id = par.id
                     where par.ticket_id = {ticket}.id and paq.approver_id = {user}.id)
          or "
    ));
    push_grant(qb, Permission::TicketViewAll, user, ticket);
    qb.push(format_args!(
        " or (({ticket}.org_unit_id = {user}.org_unit_id or {ticket}.site_id = {user}.org_unit_id)
              and exists (select 1 from projects pp
              where pp.id = {ticket}.project_id and pp.requester_visibility = 'org_unit')))"
    ));
}

/// Appends a predicate (starting with `and`): the user `user` may read internal notes and
/// fields of the ticket `ticket`. The rule of `decide(.., SeeInternal, ..)`: they may view
/// it, and hold `ticket.comment_internal` in its project.
pub fn push_user_may_see_internal(qb: &mut QueryBuilder<Postgres>, user: &str, ticket: &str) {
    push_user_may_view(qb, user, ticket);
    qb.push(" and ");
    push_grant(qb, Permission::TicketCommentInternal, user, ticket);
}
