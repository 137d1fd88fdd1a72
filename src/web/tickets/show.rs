//! Showing a ticket: the canonical key, and the reply box filled from a canned response.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::kept::Kept;
use super::page::{parse_key, ticket_page};
use crate::core::ids::{CannedId, TicketKey};
use crate::core::{FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};
use crate::tickets::{self, canned};
use crate::web::layout::Shell;
use crate::web::{AppState, paths};

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response> {
    let typed = key;
    let key = parse_key(&typed)?;
    // People type keys in any case; the page lives at the canonical one.
    if key.to_string() != typed {
        return Ok(Redirect::permanent(&paths::ticket(&key.to_string())).into_response());
    }
    let mut kept = prefill(&state, &actor, &key, &q).await?;
    kept.follow_merge = true;
    ticket_page(&state, shell, &actor, &key, kept).await
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
