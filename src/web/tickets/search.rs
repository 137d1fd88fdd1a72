//! Search: the tickets the actor may see that match the typed text.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::core::Result;
use crate::core::ids::TicketKey;
use crate::engine::policy::Actor;
use crate::tickets;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::{AppState, paths};

#[derive(Template)]
#[template(path = "tickets/search.html")]
struct SearchPage {
    shell: Shell,
    q: String,
    found: tickets::search::Found,
    limit: i64,
    candidates: i64,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Full-text search; a ticket key jumps straight to the ticket.
pub async fn search(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Query(q): Query<SearchQuery>,
) -> Result<Response> {
    let text = q.q.trim();
    if let Some(key) = TicketKey::parse(text) {
        return Ok(Redirect::to(&paths::ticket(&key.to_string())).into_response());
    }
    let found = if text.is_empty() || text.chars().count() > 200 {
        tickets::search::Found::default()
    } else {
        let mut conn = state.pool.acquire().await?;
        tickets::search::search(&mut conn, &actor, text).await?
    };
    render(
        StatusCode::OK,
        &SearchPage {
            shell: shell.at("search"),
            q: q.q,
            found,
            limit: tickets::search::LIMIT,
            candidates: tickets::search::CANDIDATES,
        },
    )
}
