//! The ticket lists of the requester and the approver: "My requests" and "Waiting on me".

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::core::ids::TicketId;
use crate::core::time::display;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::tickets::{self, approvals};
use crate::web::AppState;
use crate::web::layout::Shell;
use crate::web::pages::render;

const PAGE_SIZE: i64 = 25;

#[derive(Template)]
#[template(path = "tickets/mine.html")]
struct MinePage {
    shell: Shell,
    rows: Vec<tickets::Row>,
    next: Option<TicketId>,
    first_page: bool,
}

#[derive(Deserialize)]
pub struct PageQuery {
    after: Option<String>,
}

pub async fn mine(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let after = match q.after.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<TicketId>().map_err(|_| {
            Error::Invalid(FieldErrors::one("after", "This page link is not valid."))
        })?),
        None => None,
    };
    let mut conn = state.pool.acquire().await?;
    let page = tickets::my_requests(&mut conn, &actor, after, PAGE_SIZE).await?;
    render(
        StatusCode::OK,
        &MinePage {
            shell: shell.at("requests"),
            rows: page.rows,
            next: page.next,
            first_page: after.is_none(),
        },
    )
}

#[derive(Template)]
#[template(path = "tickets/approvals.html")]
struct WaitingPage {
    shell: Shell,
    rows: Vec<(approvals::Waiting, String)>,
}

/// "Waiting on me": the approvals the actor still has to give.
pub async fn waiting(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let rows = approvals::waiting_on(&mut conn, &actor)
        .await?
        .into_iter()
        .map(|w| {
            let asked = display(w.asked_at.to_jiff());
            (w, asked)
        })
        .collect();
    render(
        StatusCode::OK,
        &WaitingPage {
            shell: shell.at("approvals"),
            rows,
        },
    )
}
