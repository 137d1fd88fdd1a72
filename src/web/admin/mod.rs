//! Admin pages: people, groups, roles and memberships, projects, the organisation tree and
//! domain rules, systems, canned responses, SLA calendars and policies, triage settings, and
//! the audit log. Every change is one transaction with its audit entry, ended by `finish`.
//! Access is by the route table (`Access::Global(admin.*)`).

pub mod audit;
pub mod canned;
pub mod groups;
pub mod mail;
pub mod org;
pub mod processes;
pub mod projects;
pub mod roles;
pub mod sla;
pub mod systems;
pub mod triage;
pub mod users;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use jiff::Timestamp;
use sqlx::{Postgres, Transaction};

use super::flash;
use super::layout::Shell;
use super::pages::render;
use crate::audit::Change;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Permission, Target};
use crate::web::paths;

struct Area {
    href: &'static str,
    title: &'static str,
    text: &'static str,
}

#[derive(Template)]
#[template(path = "admin/index.html")]
struct IndexPage {
    shell: Shell,
    areas: Vec<Area>,
}

pub async fn index(shell: Shell, actor: Actor) -> Result<Response> {
    let all = [
        (
            Permission::AdminUsers,
            paths::admin::users(),
            "People",
            "Accounts, deactivation, set-password links, CSV import",
        ),
        (
            Permission::AdminGroups,
            paths::admin::groups(),
            "Groups",
            "Teams and tiers, their members and roles",
        ),
        (
            Permission::AdminRoles,
            paths::admin::roles(),
            "Roles",
            "Permission matrix and who holds each role",
        ),
        (
            Permission::AdminProjects,
            paths::admin::projects(),
            "Projects",
            "Keys, kinds, points of contact, visibility",
        ),
        (
            Permission::AdminProjects,
            paths::admin::mailboxes(),
            "Mailboxes",
            "Addresses that open tickets by e-mail; mail problems",
        ),
        (
            Permission::AdminOrg,
            paths::admin::org(),
            "Organisation",
            "Regions, countries, sites, business units; domain rules",
        ),
        (
            Permission::AdminSystems,
            paths::admin::systems(),
            "Systems",
            "Registry: owners, support groups, criticality",
        ),
        (
            Permission::AdminCanned,
            paths::admin::canned(),
            "Canned responses",
            "Reusable replies with placeholders, shared or per project",
        ),
        (
            Permission::AdminProjects,
            paths::admin::sla_calendars(),
            "SLA",
            "Calendars (business hours, holidays) and response and resolution targets",
        ),
        (
            Permission::AdminAudit,
            paths::admin::audit(),
            "Audit log",
            "Every admin change, before and after",
        ),
    ];
    let areas: Vec<Area> = all
        .into_iter()
        .filter(|(p, ..)| policy::decide(&actor, Action::Administer(*p), Target::Nothing).allowed())
        .map(|(_, href, title, text)| Area { href, title, text })
        .collect();
    if areas.is_empty() {
        return Err(Error::Forbidden);
    }
    render(
        StatusCode::OK,
        &IndexPage {
            shell: shell.at("admin"),
            areas,
        },
    )
}

/// Parses an id from a path; anything malformed is simply not found.
pub(super) fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T> {
    raw.parse().map_err(|_| Error::NotFound)
}

/// An optional id from a form's select (empty means none); malformed is a field error.
pub(super) fn optional_id<T: std::str::FromStr>(
    raw: &str,
    field: &str,
) -> Result<Option<T>, crate::core::FieldErrors> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| crate::core::FieldErrors::one(field, "Choose one from the list."))
}

/// `optional_id`, with a malformed id added to `errors` (so every field is checked at once).
pub(super) fn collect_id<T: std::str::FromStr>(
    raw: &str,
    field: &str,
    errors: &mut crate::core::FieldErrors,
) -> Option<T> {
    optional_id(raw, field).unwrap_or_else(|e| {
        for (f, m) in e.iter() {
            errors.add(f, m);
        }
        None
    })
}

pub(super) use super::pages::status_for;

/// An admin change that went through: its audit entry, and where to go with which message.
pub(super) struct Saved {
    change: Change,
    to: String,
    text: String,
}

impl Saved {
    pub(super) fn new(change: Change, to: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            change,
            to: to.into(),
            text: text.into(),
        }
    }
}

/// How an admin change ended.
pub(super) enum Outcome {
    /// Recorded and committed: the redirect with its success flash.
    Done(Response),
    /// Refused (`Error::Invalid`) and rolled back: the errors, for the re-rendered form.
    Refused(FieldErrors),
}

/// Ends an admin change: records its audit entry, commits and redirects with a success flash.
/// A refusal (`Error::Invalid`) rolls the transaction back and is handed back for the form;
/// any other error rolls back and is returned.
///
/// Handlers compute `saved` in `async { … }.await` on the same transaction, so `?` works
/// inside and every early error ends up here.
pub(super) async fn finish(
    mut tx: Transaction<'_, Postgres>,
    actor: &Actor,
    now: Timestamp,
    saved: Result<Saved>,
) -> Result<Outcome> {
    match saved {
        Ok(Saved { change, to, text }) => {
            crate::audit::record(&mut tx, actor.user_id, now, change).await?;
            tx.commit().await?;
            Ok(Outcome::Done(flash::redirect(
                &to,
                flash::Kind::Success,
                &text,
            )))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            Ok(Outcome::Refused(errors))
        }
        Err(e) => Err(e),
    }
}
