//! Approve / Reject links from approval-request mail. The token in the link authorises, so
//! no sign-in is needed: GET shows what it is about and asks (changes nothing); the POST
//! (with the CSRF token of the page) decides through `approvals::decide` as the approver,
//! and uses the token up. A used, expired or unknown link gets a friendly page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::AppState;
use super::extract::Form;
use super::layout::Shell;
use super::pages::render;
use crate::core::{Error, FieldErrors, Result};
use crate::mail::out::tokens::{self, Link};
use crate::people;
use crate::tickets::{self, approvals};

pub enum LinkState {
    /// The question: ticket key and title.
    Open(String, String),
    /// Decided: ticket key, approved or not.
    Done(String, bool),
    /// Why the link cannot be used.
    Gone(&'static str),
}

#[derive(Template)]
#[template(path = "approval_link.html")]
struct Page {
    shell: Shell,
    token: String,
    state: LinkState,
    decision: String,
    comment: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub struct Choice {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

/// The page for a link that cannot be used (any more): 410 or 404 with the reason.
fn gone(shell: Shell, token: String, link: &Link, choice: Choice) -> Result<Response> {
    let (status, why) = match link {
        Link::Used => (
            StatusCode::GONE,
            "This link was used already, or the approval was decided another way.",
        ),
        Link::Expired => (
            StatusCode::GONE,
            "This link has expired (links work for 7 days).",
        ),
        Link::Unknown | Link::Valid { .. } => (StatusCode::NOT_FOUND, "This link is not known."),
    };
    page(
        shell,
        token,
        status,
        LinkState::Gone(why),
        choice,
        FieldErrors::new(),
    )
}

fn page(
    shell: Shell,
    token: String,
    status: StatusCode,
    state: LinkState,
    choice: Choice,
    errors: FieldErrors,
) -> Result<Response> {
    render(
        status,
        &Page {
            shell,
            token,
            state,
            decision: choice.decision,
            comment: choice.comment,
            errors,
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    Path(token): Path<String>,
    Query(choice): Query<Choice>,
) -> Result<Response> {
    if tokens::plausible(&token).is_err() {
        return gone(shell, token, &Link::Unknown, choice);
    }
    open_page(
        &state,
        shell,
        token,
        choice,
        StatusCode::OK,
        FieldErrors::new(),
    )
    .await
}

/// The form of a link that can still be used, or why it cannot.
async fn open_page(
    state: &AppState,
    shell: Shell,
    token: String,
    choice: Choice,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let link = tokens::check(&mut conn, &token, state.clock.now()).await?;
    let Link::Valid { ticket, .. } = link else {
        return gone(shell, token, &link, choice);
    };
    let ticket = tickets::find_for_system(&mut conn, ticket).await?;
    let open = LinkState::Open(ticket.key(), ticket.title.clone());
    page(shell, token, status, open, choice, errors)
}

pub async fn decide(
    State(state): State<AppState>,
    shell: Shell,
    Path(token): Path<String>,
    Form(choice): Form<Choice>,
) -> Result<Response> {
    if tokens::plausible(&token).is_err() {
        return gone(shell, token, &Link::Unknown, choice);
    }
    let now = state.clock.now();
    let approve = match choice.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            let errors = FieldErrors::one("decision", "Choose approve or reject.");
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return open_page(&state, shell, token, choice, status, errors).await;
        }
    };
    let mut tx = state.pool.begin().await?;
    let link = tokens::consume(&mut tx, &token, now).await?;
    let Link::Valid { ticket, approver } = link else {
        drop(tx);
        return gone(shell, token, &link, choice);
    };
    let actor = people::actor_of(&mut tx, approver).await?;
    let ticket = tickets::find_for_change_by_id(&mut tx, &actor, ticket).await?;
    match approvals::decide(&mut tx, &actor, &ticket, approve, &choice.comment, now).await {
        Ok(()) => {
            tx.commit().await?;
            let done = LinkState::Done(ticket.key(), approve);
            page(
                shell,
                token,
                StatusCode::OK,
                done,
                choice,
                FieldErrors::new(),
            )
        }
        // E.g. a rejection without a reason: nothing happened, the link still works.
        Err(Error::Invalid(errors)) => {
            drop(tx);
            let open = LinkState::Open(ticket.key(), ticket.title.clone());
            page(
                shell,
                token,
                StatusCode::UNPROCESSABLE_ENTITY,
                open,
                choice,
                errors,
            )
        }
        Err(e) => Err(e),
    }
}
