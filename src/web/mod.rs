//! The HTTP layer, and the only module that knows axum, askama and tower. Every route is in
//! [`routes`], with the access it needs; the router is built from that table and the access is
//! enforced by it, so `tests/it/authz.rs` can walk every route.

mod account;
mod admin;
mod approval_links;
mod assets;
mod auth;
mod csrf;
mod error;
mod extract;
mod flash;
mod layout;
mod notifications;
mod pages;
mod password;
pub mod paths;
mod queues;
mod reference;
mod response;
mod router;
mod routes;
mod session;
mod state;
mod tickets;

pub use response::Rendered;
pub(crate) use response::html;
pub use router::{router, router_with, serve};
pub use routes::routes;
pub use state::{Access, App, AppState, Route, UPLOAD_ROUTES};
