//! Unitrack: one web-based issue tracker for requesters, the help desk, developers, approvers
//! and project managers. Dependencies point down: `web` → features → `engine` → `core`.

/// The append-only admin audit log.
pub mod audit;
/// Command line: `serve` (default), `migrate`, `user create|set-password`, `mail ingest`.
pub mod cli;
/// Settings: defaults, then `unitrack.toml`, then `UNITRACK_*` / `DATABASE_URL`.
pub mod config;
/// Shared building blocks: errors, ids, ticket keys, time, Markdown.
pub mod core;
/// Connection pool, embedded migrations and the private PostgreSQL cluster.
pub mod db;
/// The demo organisation loaded on first start of a private database.
pub mod demo;
/// Pure rules with no I/O: the access policy and its permission catalog.
pub mod engine;
/// The background job queue (SKIP LOCKED, backoff, idempotency keys).
pub mod jobs;
/// Inbound e-mail: mailboxes, the raw store, parsing, threading, loop and bounce handling.
pub mod mail;
/// In-app notifications: fan-out of ticket events, the bell, per-user preferences.
pub mod notifications;
/// Users, passwords, sessions and the login throttle.
pub mod people;
/// Processes as data: definitions, versions, the shipped defaults.
pub mod processes;
/// Projects, the organisation tree (sites, business units) and the systems registry.
pub mod projects;
/// SLA calendars and policies (the clocks themselves are replayed in `tickets::sla`).
pub mod sla;
/// Wiring: database, migrations, state, router, serve until shutdown.
pub mod startup;
/// Logging and request spans.
pub mod telemetry;
/// Tickets and their append-only events.
pub mod tickets;
/// The HTTP layer: the only module that knows axum, askama and tower.
pub mod web;
/// The table of job kinds the job loop runs: where the features meet `jobs`.
pub mod workers;
