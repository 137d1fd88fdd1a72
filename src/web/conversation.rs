//! The conversation part of the ticket page: the reply / internal-note form (with files and
//! canned responses), the list of files, the watchers, and the notice of what changed while
//! someone was writing. Handlers for replies and watchers; files are served by `attachments`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sqlx::PgConnection;

use super::AppState;
use super::attachments::{Posted, view_of};
use super::extract::Form;
use super::flash;
use super::layout::Shell;
use super::paths;
use super::tickets::{Kept, describe as describe_event, parse_key, ticket_page};
use crate::core::ids::{CannedId, TicketKey, UserId};
use crate::core::time::display;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};
use crate::people::users;
use crate::tickets::attachments::{self, human_size, too_large_message};
use crate::tickets::conversation::{Reply, Seen, changes_since};
use crate::tickets::{self, EventData, Ticket, Visibility, canned, watchers};

/// Form fields the conversation part shows messages beside.
pub(super) const FIELDS: [&str; 4] = ["file", "attach", "canned", "watcher"];

/// What the conversation part keeps of a refused form.
#[derive(Debug, Clone, Default)]
pub(super) struct ConvKept {
    /// The writer chose an internal note.
    pub(super) internal: bool,
    /// The e-mail typed to add a watcher.
    pub(super) watcher: String,
    /// The newest event the refused form's page showed.
    pub(super) seen: Option<i64>,
    /// The reply (not a field edit) was refused as stale.
    pub(super) reply_conflict: bool,
    /// Files came with the refused form; the browser cannot send them back.
    pub(super) files_dropped: bool,
}

impl ConvKept {
    /// The `seen` a posted form carried.
    pub(super) fn seen_in(named: &BTreeMap<String, String>) -> Self {
        Self {
            seen: named.get("seen").and_then(|s| s.parse().ok()),
            ..Self::default()
        }
    }
}

/// One change someone else made, for the conflict notice.
pub(super) struct ChangeView {
    pub(super) actor: String,
    pub(super) what: String,
    pub(super) when: String,
}

pub(super) struct AttachmentView {
    pub(super) url: String,
    pub(super) filename: String,
    pub(super) size: String,
    pub(super) by: String,
    pub(super) when: String,
    pub(super) internal: bool,
}

pub(super) struct WatcherView {
    pub(super) id: UserId,
    pub(super) name: String,
    pub(super) me: bool,
}

/// The conversation part of the ticket page.
pub(super) struct Conversation {
    pub(super) can_reply: bool,
    pub(super) can_note: bool,
    pub(super) internal: bool,
    pub(super) version: i32,
    /// The newest event shown: the form sends it back to notice later changes.
    pub(super) seen: i64,
    /// (id, title) of the canned responses offered here.
    pub(super) canned: Vec<(String, String)>,
    pub(super) changes: Vec<ChangeView>,
    pub(super) reply_conflict: bool,
    pub(super) files_dropped: bool,
    pub(super) attachments: Vec<AttachmentView>,
    pub(super) max_bytes: usize,
    pub(super) max_size: String,
    pub(super) watchers: Vec<WatcherView>,
    pub(super) watching: bool,
    pub(super) can_manage_watchers: bool,
    pub(super) watcher: String,
    pub(super) script: String,
}

/// What the ticket page has found out before it builds the conversation part.
pub(super) struct PageFacts {
    pub see_internal: bool,
    /// The newest timeline entry shown.
    pub last_event: i64,
    pub related: tickets::Related,
}

/// Builds the part for `ticket` (already checked visible) on the connection of the page.
pub(super) async fn part(
    state: &AppState,
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    page: PageFacts,
    kept: &Kept,
) -> Result<Conversation> {
    let PageFacts {
        see_internal,
        last_event,
        related,
    } = page;
    let facts = ticket.facts();
    let can = |action| policy::decide(actor, action, Target::Ticket(&facts)).allowed();
    let can_note = see_internal;
    let canned = if can_note {
        canned::offered(conn, ticket.project_id)
            .await?
            .into_iter()
            .map(|c| (c.id.to_string(), c.title))
            .collect()
    } else {
        Vec::new()
    };
    let changes = match (kept.conflict.is_some(), kept.conv.seen) {
        (true, Some(after)) => changes_since(conn, actor, ticket.id, after, see_internal)
            .await?
            .into_iter()
            .map(|e| ChangeView {
                actor: e.actor_name.unwrap_or_else(|| "Unitrack".into()),
                what: describe_event(e.data).0,
                when: display(e.created_at),
            })
            .collect(),
        _ => Vec::new(),
    };
    let key = ticket.key();
    let attachments = tickets::if_any(
        related.attachments,
        attachments::list(conn, ticket.id, see_internal),
    )
    .await?
    .iter()
    .map(|a| view_of(&key, a))
    .collect();
    let watchers: Vec<WatcherView> =
        tickets::if_any(related.watchers, watchers::list(conn, ticket.id))
            .await?
            .into_iter()
            .map(|w| WatcherView {
                me: w.user_id == actor.user_id,
                id: w.user_id,
                name: w.name,
            })
            .collect();
    Ok(Conversation {
        can_reply: can(Action::CommentPublic),
        can_note,
        internal: kept.conv.internal && can_note,
        version: ticket.version,
        seen: last_event,
        canned,
        changes,
        reply_conflict: kept.conv.reply_conflict,
        files_dropped: kept.conv.files_dropped,
        attachments,
        max_bytes: state.config.attachment_max_bytes,
        max_size: human_size(state.config.attachment_max_bytes as u64),
        watching: watchers.iter().any(|w| w.me),
        watchers,
        can_manage_watchers: can(Action::EditTicket),
        watcher: kept.conv.watcher.clone(),
        script: super::assets::url("attach.js"),
    })
}

/// How the timeline tells the conversation's own events.
pub(super) fn describe(data: EventData) -> String {
    match data {
        EventData::AttachmentAdded {
            filename,
            size,
            internal,
            ..
        } => format!(
            "attached “{filename}” ({}){}",
            human_size(u64::try_from(size).unwrap_or(0)),
            if internal { " for staff only" } else { "" }
        ),
        EventData::WatcherAdded {
            themselves: true, ..
        } => "started watching".into(),
        EventData::WatcherAdded { user, .. } => format!("added {user} as a watcher"),
        EventData::WatcherRemoved {
            themselves: true, ..
        } => "stopped watching".into(),
        EventData::WatcherRemoved { user, .. } => format!("removed {user} from the watchers"),
        _ => "changed the ticket".into(),
    }
}

#[derive(Deserialize)]
pub struct ShowQuery {
    /// A canned response to fill the reply box with.
    #[serde(default)]
    canned: String,
}

/// What the ticket page starts with: the reply box filled from a canned response when one
/// is asked for (`?canned=<id>`) and offered here to this actor.
pub(super) async fn prefill(
    state: &AppState,
    actor: &Actor,
    key: &TicketKey,
    q: &ShowQuery,
) -> Result<Kept> {
    if q.canned.is_empty() {
        return Ok(Kept::default());
    }
    let not_offered = || Kept {
        errors: FieldErrors::one("canned", "This canned response is not offered here."),
        status: Some(StatusCode::OK),
        ..Kept::default()
    };
    let Ok(id) = q.canned.parse::<CannedId>() else {
        return Ok(not_offered());
    };
    let mut conn = state.pool.acquire().await?;
    let ticket = tickets::find_visible(&mut conn, actor, key).await?;
    if !policy::decide(actor, Action::SeeInternal, Target::Ticket(&ticket.facts())).allowed() {
        return Ok(not_offered());
    }
    let Some(response) = canned::find_offered(&mut conn, id, ticket.project_id).await? else {
        return Ok(not_offered());
    };
    let context = canned::context(&mut conn, &ticket, actor.user_id).await?;
    Ok(Kept {
        comment: canned::expand(&response.body, &context),
        ..Kept::default()
    })
}

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

/// The message for files over the limit, if any were sent.
pub(super) fn refuse_oversize(state: &AppState, posted: &Posted) -> Option<FieldErrors> {
    let max = state.config.attachment_max_bytes;
    let mut errors = FieldErrors::new();
    for (name, size) in &posted.oversize {
        errors.add(
            "file",
            too_large_message(&attachments::sanitize_filename(name), *size, max),
        );
    }
    (!errors.is_empty()).then_some(errors)
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
