//! What the ticket page keeps of a refused form (`Kept`, with the conversation part's own
//! `ConvKept`), so every action of the page can show the page again with the input kept.

use std::collections::BTreeMap;

use axum::http::StatusCode;

use crate::core::FieldErrors;

/// What the ticket page keeps of a refused form.
#[derive(Default)]
pub(super) struct Kept {
    pub(super) comment: String,
    /// The other named inputs sent (triage forms), shown again on a refusal.
    pub(super) sent: BTreeMap<String, String>,
    pub(super) raw: Option<BTreeMap<String, Vec<String>>>,
    pub(super) errors: FieldErrors,
    pub(super) conflict: Option<String>,
    pub(super) status: Option<StatusCode>,
    pub(super) conv: ConvKept,
    /// Send the viewer on to the ticket this one was merged into.
    pub(super) follow_merge: bool,
    /// The key typed in the duplicate/merge form.
    pub(super) merge_target: String,
}

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
