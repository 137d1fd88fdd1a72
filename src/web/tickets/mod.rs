//! The ticket pages and their actions, one module per page or action: filing a request
//! (`new`), "My requests" and "Waiting on me" (`list`), the ticket page (`show`) and the
//! changes made from it (`change`, `conversation`, `attachments`), and search (`search`).
//! What they share lies below them: the page builder (`page`), what a refused form keeps
//! (`kept`), the conversation part (`thread`), form fields (`fields`), the timeline's words
//! (`events`) and posted forms with files (`posted`). No action module imports another.

pub mod attachments;
pub mod change;
pub mod conversation;
mod events;
mod fields;
mod kept;
pub mod list;
pub mod new;
mod page;
mod posted;
pub mod search;
pub mod show;
mod thread;

pub use change::{
    assign, decide, escalate, link, merge, priority, take, transition, update_fields,
};
pub use list::{mine, waiting};
pub use new::{create, new_form};
pub use search::search;
pub use show::show;
