//! The conversation part of the ticket page: the reply / internal-note form (with files and
//! canned responses), the list of files, the watchers, and the notice of what changed while
//! someone was writing.

use sqlx::PgConnection;

use super::events::describe as describe_event;
use super::kept::Kept;
use crate::core::Result;
use crate::core::ids::UserId;
use crate::core::time::display;
use crate::engine::policy::{self, Action, Actor, Target};
use crate::tickets::attachments::{self, Attachment, human_size};
use crate::tickets::conversation::changes_since;
use crate::tickets::{self, Ticket, canned, watchers};
use crate::web::{AppState, paths};

/// Form fields the conversation part shows messages beside.
pub(super) const FIELDS: [&str; 4] = ["file", "attach", "canned", "watcher"];

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
        script: crate::web::assets::url("attach.js"),
    })
}

/// How the ticket page lists a file.
pub(super) fn view_of(key: &str, a: &Attachment) -> AttachmentView {
    AttachmentView {
        url: format!("{}/attachments/{}", paths::ticket(key), a.id),
        filename: a.filename.clone(),
        size: a.human_size(),
        by: a.uploader_name.clone().unwrap_or_else(|| "Unitrack".into()),
        when: display(a.created_at.to_jiff()),
        internal: a.internal,
    }
}
