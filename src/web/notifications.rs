//! The bell's page: the signed-in user's notifications (open one, mark all read), and their
//! notification preferences under "My account".

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::AppState;
use super::extract::Form;
use super::flash;
use super::layout::Shell;
use super::pages::render;
use super::paths;
use crate::core::time::display;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::notifications::{self, Kind, Listed, Preference};

const PAGE_SIZE: i64 = 25;

struct Row {
    item: Listed,
    when: String,
}

#[derive(Template)]
#[template(path = "notifications/list.html")]
struct ListPage {
    shell: Shell,
    rows: Vec<Row>,
    next: Option<i64>,
    first_page: bool,
}

#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let before = match q.before.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<i64>().map_err(|_| {
            Error::Invalid(FieldErrors::one("before", "This page link is not valid."))
        })?),
        None => None,
    };
    let mut conn = state.pool.acquire().await?;
    let page = notifications::list(&mut conn, &actor, before, PAGE_SIZE).await?;
    render(
        StatusCode::OK,
        &ListPage {
            shell: shell.at("notifications"),
            rows: page
                .rows
                .into_iter()
                .map(|item| Row {
                    when: display(item.created_at.to_jiff()),
                    item,
                })
                .collect(),
            next: page.next,
            first_page: before.is_none(),
        },
    )
}

/// Follows a notification: marks it read and goes to the event on its ticket.
pub async fn open(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: i64 = id.parse().map_err(|_| Error::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    let (key, event) = notifications::open(&mut conn, actor.user_id, id, state.clock.now())
        .await?
        .ok_or(Error::NotFound)?;
    let anchor = event.map(|e| format!("#event-{e}")).unwrap_or_default();
    Ok(Redirect::to(&format!("{}{anchor}", paths::ticket(&key))).into_response())
}

pub async fn read_all(State(state): State<AppState>, actor: Actor) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let n = notifications::mark_all_read(&mut conn, actor.user_id, state.clock.now()).await?;
    let text = match n {
        0 => "Nothing was unread.".to_owned(),
        1 => "1 notification marked as read.".to_owned(),
        n => format!("{n} notifications marked as read."),
    };
    Ok(flash::redirect(
        paths::notifications(),
        flash::Kind::Success,
        &text,
    ))
}

#[derive(Template)]
#[template(path = "notifications/preferences.html")]
struct PreferencesPage {
    shell: Shell,
    preferences: Vec<Preference>,
}

pub async fn preferences(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let preferences = notifications::preferences(&mut conn, actor.user_id).await?;
    render(
        StatusCode::OK,
        &PreferencesPage {
            shell: shell.at("account"),
            preferences,
        },
    )
}

/// Saves the ticked boxes: `in_app` and `email`, each with a kind's key as value; a box not
/// sent is off. Unknown kinds are ignored.
pub async fn save_preferences(
    State(state): State<AppState>,
    actor: Actor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let ticked = |channel: &str, kind: Kind| {
        pairs
            .iter()
            .any(|(name, value)| name == channel && value == kind.key())
    };
    let choices: Vec<Preference> = Kind::ALL
        .into_iter()
        .map(|kind| Preference {
            kind,
            in_app: ticked("in_app", kind),
            email: ticked("email", kind),
        })
        .collect();
    let mut tx = state.pool.begin().await?;
    notifications::save_preferences(&mut tx, actor.user_id, &choices).await?;
    tx.commit().await?;
    Ok(flash::redirect(
        paths::notification_preferences(),
        flash::Kind::Success,
        "Your notification settings were saved.",
    ))
}
