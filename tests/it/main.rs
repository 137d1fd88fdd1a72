//! Integration tests: one binary, real PostgreSQL (see `common`).

// Test code: a failed expectation is a panic by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod approvals;
mod auth;
mod authz;
mod binary;
mod browser;
mod change_from_hell;
mod common;
mod conversation;
mod demo;
mod desk;
mod imap;
mod jobs;
mod layout;
mod listener;
mod mail;
mod mail_out;
mod merge;
mod notifications;
mod policy;
mod processes;
mod shell;
mod sla_admin;
mod smtp;
mod tickets;
