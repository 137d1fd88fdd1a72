//! Deciding an approval, as the ticket page and the approval links do it: the decision is
//! recorded on its round (`rounds`), and a round it settles hands its outcome to the step
//! (`flow::settle`), which moves the ticket on. Rounds never call the step themselves.

use jiff::Timestamp;
use sqlx::PgConnection;

use super::flow;
use super::rounds;
use super::ticket::Ticket;
use crate::core::Result;
use crate::engine::policy::Actor;

pub use super::rounds::{Answer, Waiting, rounds, waiting_on};

/// Records the actor's decision on the ticket's open round; moves the ticket on when the
/// round is decided. `ticket` must have been loaded with `find_for_change`.
pub async fn decide(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    approve: bool,
    comment: &str,
    now: Timestamp,
) -> Result<()> {
    let decided = rounds::decide(conn, actor, ticket, approve, comment, now).await?;
    flow::settle(conn, ticket, decided, now).await
}
