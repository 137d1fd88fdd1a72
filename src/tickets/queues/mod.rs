//! Queues: ticket lists over filters with a sort, keyset-paginated, always through the
//! policy's SQL scope; saved as views (personal or shared) with their columns; counted
//! cheaply (exact up to a cap, then "cap+").
//!
//! `filters` checks the form's filters and turns them into SQL, `rows` reads keyset pages,
//! `counts` counts, `views` saves views, `reference` holds the lists pages keep per instance;
//! this file has the choices the forms offer.

mod counts;
mod filters;
mod reference;
mod rows;
mod views;

pub use counts::{CAPPED_FOR, CappedCounts, Count, count, counts};
pub use filters::{Filters, Query, Sort};
pub use reference::{Labels, Options, Reference, Team, reference};
pub use rows::{Page, Row, page};
pub use views::{NewView, View, columns, delete, save, view, views};

/// Counts stop here: beyond it a queue shows "1000+".
pub const COUNT_CAP: i64 = 1000;
pub const PAGE: i64 = 25;
pub const CATEGORIES: [&str; 6] = ["active", "new", "open", "waiting", "resolved", "closed"];
pub const SORTS: [(&str, &str); 4] = [
    ("sla", "SLA due"),
    ("priority", "Priority"),
    ("updated", "Recently updated"),
    ("created", "Newest"),
];
pub const COLUMNS: [(&str, &str); 10] = [
    ("key", "Key"),
    ("title", "Title"),
    ("state", "State"),
    ("priority", "Priority"),
    ("sla", "SLA due"),
    ("assignee", "Assignee"),
    ("group", "Group"),
    ("requester", "Requester"),
    ("updated", "Updated"),
    ("created", "Filed"),
];
pub const DEFAULT_COLUMNS: [&str; 7] = [
    "key", "title", "state", "priority", "sla", "assignee", "updated",
];
