//! Tickets and their append-only history (`ticket_events`). Every change writes its event in
//! the same transaction as the change; the ticket row is the current projection. Access goes
//! through `engine::policy`: a ticket the actor may not see is `NotFound`. How a ticket moves
//! is its process's definition, applied by `engine::workflow` (see `flow`).
//!
//! The floor is `ticket` (the row, its look-ups and `touch`), with `events`, `sla` and
//! `values` beside it; `comments`, `rounds`, `links`, `triage` and `watchers` stand on it;
//! `flow` (the one place a step's effects are applied) on those; `filing`, `approvals`,
//! `conversation`, `merge`, `publish` and `sweeps` on top. No file here imports one above it.
//! This file only names the modules and hands on what the rest of the crate uses.

pub mod approvals;
pub mod attachments;
pub mod canned;
mod comments;
pub mod conversation;
mod event_data;
mod events;
mod filing;
pub mod flow;
pub mod links;
pub mod merge;
mod mine;
mod notices;
mod publish;
pub mod queues;
mod rounds;
pub mod search;
pub mod sla;
pub mod sweeps;
mod ticket;
pub mod triage;
mod values;
pub mod watchers;

pub use comments::{Visibility, add_comment};
pub use event_data::EventData;
/// A ticket's history with that of the tickets merged into it, oldest first, in one query.
/// Internal entries only where `internal` says so for the project they were written in (see
/// `merge::internal_filter`).
pub use events::list as events;
pub use events::{Event, record, record_returning_id};
pub use filing::{DEFAULT_PROCESS, Filed, NewTicket, ProcessChoice, create};
pub use mine::{Page, Row, my_requests};
pub use publish::publish_process;
pub use ticket::{
    Related, TEXT_MAX, TITLE_MAX, Ticket, acting, find_for_change, find_for_change_by_id,
    find_visible, if_any, related,
};
pub(crate) use ticket::{find_for_system, touch};
pub use values::{check_references, parse_values};
