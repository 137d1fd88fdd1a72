//! The one place that decides access. `decide` answers "may this actor do this to that?"
//! with a reason; `push_ticket_scope` writes the same rule as SQL for lists, counts and
//! look-ups, so a ticket the actor may not see is simply not found. No handler checks a role.

use sqlx::{Postgres, QueryBuilder};

use crate::core::ids::UserId;

/// Who is acting, with everything the policy needs, loaded once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub is_admin: bool,
}

/// What the actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateTicket,
    ViewTicket,
    CommentTicket,
    Administer,
}

/// The facts about a ticket that access depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub requester_id: UserId,
}

/// What the action is aimed at.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Nothing,
    Ticket(&'a TicketFacts),
}

/// The answer, with the reason that decided it (for logs and the permissions page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow(&'static str),
    Deny(&'static str),
}

impl Decision {
    pub fn allowed(self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

pub fn decide(actor: &Actor, action: Action, target: Target<'_>) -> Decision {
    match (action, target) {
        (Action::CreateTicket, _) => Decision::Allow("every signed-in user may file a request"),
        (Action::Administer, _) if actor.is_admin => Decision::Allow("admin"),
        (Action::Administer, _) => Decision::Deny("not an admin"),
        (Action::ViewTicket | Action::CommentTicket, Target::Ticket(ticket)) => {
            if ticket.requester_id == actor.user_id {
                Decision::Allow("requester of the ticket")
            } else if actor.is_admin {
                Decision::Allow("admin")
            } else {
                Decision::Deny("not a participant of the ticket")
            }
        }
        (Action::ViewTicket | Action::CommentTicket, Target::Nothing) => {
            Decision::Deny("no ticket given")
        }
    }
}

/// Appends a predicate (starting with `and`) that keeps only the tickets `actor` may see.
/// `alias` is the tickets table's alias in the query.
pub fn push_ticket_scope(qb: &mut QueryBuilder<Postgres>, actor: &Actor, alias: &str) {
    if actor.is_admin {
        return;
    }
    qb.push(format_args!(" and {alias}.requester_id = "));
    qb.push_bind(actor.user_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_access_follows_the_requester_relation() {
        let alice = UserId::new();
        let bob = UserId::new();
        let ticket = TicketFacts {
            requester_id: alice,
        };
        let cases = [
            (alice, false, Action::ViewTicket, true),
            (alice, false, Action::CommentTicket, true),
            (bob, false, Action::ViewTicket, false),
            (bob, false, Action::CommentTicket, false),
            (bob, true, Action::ViewTicket, true),
            (bob, false, Action::Administer, false),
            (bob, true, Action::Administer, true),
            (bob, false, Action::CreateTicket, true),
        ];
        for (user_id, is_admin, action, expected) in cases {
            let actor = Actor { user_id, is_admin };
            let got = decide(&actor, action, Target::Ticket(&ticket));
            assert_eq!(
                got.allowed(),
                expected,
                "{action:?} admin={is_admin}: {got:?}"
            );
        }
    }

    #[test]
    fn the_sql_scope_matches_the_decision() {
        let actor = Actor {
            user_id: UserId::new(),
            is_admin: false,
        };
        let mut qb = QueryBuilder::new("select 1 from tickets t where true");
        push_ticket_scope(&mut qb, &actor, "t");
        assert!(qb.sql().as_str().ends_with("and t.requester_id = $1"));
        let admin = Actor {
            is_admin: true,
            ..actor
        };
        let mut qb = QueryBuilder::new("select 1 from tickets t where true");
        push_ticket_scope(&mut qb, &admin, "t");
        assert!(qb.sql().as_str().ends_with("where true"));
    }
}
