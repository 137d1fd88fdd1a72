//! Replies and watchers: the handlers of the conversation part of the ticket page; files are
//! served by `attachments`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::kept::{ConvKept, Kept};
use super::page::{parse_key, ticket_page};
use super::posted::{Posted, refuse_oversize};
use crate::core::ids::{TicketKey, UserId};
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};
use crate::people::users;
use crate::tickets::conversation::{Reply, Seen};
use crate::tickets::{self, Visibility, watchers};
use crate::web::extract::Form;
use crate::web::layout::Shell;
use crate::web::{AppState, flash, paths};

fn field(posted: &Posted, name: &str) -> String {
    posted.fields.get(name).cloned().unwrap_or_default()
}

/// A reply or an internal note, with files. Refusals keep the text: 422 for bad input, 413
/// for a file over the limit, 409 (with what changed) when the page was out of date.
pub async fn comment(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    posted: Posted,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let visibility = Visibility::parse(&field(&posted, "visibility"));
    let reply = Reply {
        body: field(&posted, "body"),
        visibility,
        seen: Seen {
            version: field(&posted, "version").parse().ok(),
            last_event: field(&posted, "seen").parse().ok(),
        },
        files: Vec::new(),
    };
    let kept = |reply: &Reply, dropped: bool| Kept {
        comment: reply.body.clone(),
        conv: ConvKept {
            internal: visibility.is_internal(),
            seen: reply.seen.last_event,
            files_dropped: dropped,
            ..ConvKept::default()
        },
        ..Kept::default()
    };
    if let Some(too_large) = refuse_oversize(&state, &posted) {
        let mut kept = kept(&reply, true);
        kept.errors = too_large;
        kept.status = Some(StatusCode::PAYLOAD_TOO_LARGE);
        return ticket_page(&state, shell, &actor, &key, kept).await;
    }
    let had_files = !posted.files.is_empty();
    let reply = Reply {
        files: posted.files,
        ..reply
    };
    let mut tx = state.pool.begin().await?;
    let ticket = tickets::find_for_change(&mut tx, &actor, &key).await?;
    let result = tickets::conversation::reply(
        &mut tx,
        &actor,
        &ticket,
        &reply,
        state.config.attachment_max_bytes,
        state.clock.now(),
    )
    .await;
    match result {
        Ok(()) => {
            tx.commit().await?;
            Ok(
                Redirect::to(&format!("{}#comment", paths::ticket(&key.to_string())))
                    .into_response(),
            )
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            let mut kept = kept(&reply, had_files);
            kept.errors = errors;
            ticket_page(&state, shell, &actor, &key, kept).await
        }
        Err(Error::Conflict(message)) => {
            drop(tx);
            let mut kept = kept(&reply, had_files);
            kept.conflict = Some(message);
            kept.conv.reply_conflict = true;
            kept.status = Some(StatusCode::CONFLICT);
            ticket_page(&state, shell, &actor, &key, kept).await
        }
        Err(e) => Err(e),
    }
}

/// Runs a watcher change in one transaction and goes back to the ticket (or, when the actor
/// can no longer see it, to their requests).
async fn change_watcher(
    state: &AppState,
    actor: &Actor,
    key: &TicketKey,
    user: UserId,
    add: bool,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let ticket = tickets::find_for_change(&mut tx, actor, key).await?;
    if add {
        watchers::add(&mut tx, actor, &ticket, user, now).await?;
    } else {
        watchers::remove(&mut tx, actor, &ticket, user, now).await?;
    }
    let still_visible = match tickets::find_visible(&mut tx, actor, key).await {
        Ok(_) => true,
        Err(Error::NotFound) => false,
        Err(e) => return Err(e),
    };
    tx.commit().await?;
    let text = match (add, user == actor.user_id) {
        (true, true) => format!("You are watching {key}."),
        (false, true) => format!("You stopped watching {key}."),
        (true, false) => "Watcher added.".to_owned(),
        (false, false) => "Watcher removed.".to_owned(),
    };
    let to = if still_visible {
        paths::ticket(&key.to_string())
    } else {
        "/requests".to_owned()
    };
    Ok(flash::redirect(&to, flash::Kind::Success, &text))
}

pub async fn watch(
    State(state): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    change_watcher(&state, &actor, &key, actor.user_id, true).await
}

pub async fn unwatch(
    State(state): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    change_watcher(&state, &actor, &key, actor.user_id, false).await
}

#[derive(Deserialize)]
pub struct WatcherForm {
    #[serde(default)]
    email: String,
}

/// Adds someone else as a watcher, by e-mail (`EditTicket`).
pub async fn add_watcher(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Form(form): Form<WatcherForm>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let mut conn = state.pool.acquire().await?;
    let ticket = tickets::find_visible(&mut conn, &actor, &key).await?;
    // Before looking anyone up: the form must not tell others which addresses exist.
    if !policy::decide(&actor, Action::EditTicket, Target::Ticket(&ticket.facts())).allowed() {
        return Err(Error::Forbidden);
    }
    let found = users::find_by_email(&mut conn, form.email.trim()).await?;
    drop(conn);
    let refused = |errors: FieldErrors| Kept {
        errors,
        conv: ConvKept {
            watcher: form.email.clone(),
            ..ConvKept::default()
        },
        ..Kept::default()
    };
    let Some(user) = found else {
        let errors = FieldErrors::one("watcher", "There is no account with this e-mail address.");
        return ticket_page(&state, shell, &actor, &key, refused(errors)).await;
    };
    match change_watcher(&state, &actor, &key, user.id, true).await {
        Err(Error::Invalid(errors)) => {
            ticket_page(&state, shell, &actor, &key, refused(errors)).await
        }
        other => other,
    }
}

/// Removes a watcher (oneself, or anyone with `EditTicket`).
pub async fn remove_watcher(
    State(state): State<AppState>,
    actor: Actor,
    Path((key, user)): Path<(String, String)>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let user: UserId = user.parse().map_err(|_| Error::NotFound)?;
    change_watcher(&state, &actor, &key, user, false).await
}
