//! "My account": the user's sessions (with revoke) and the password change.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use serde::Deserialize;

use super::AppState;
use super::extract::Form;
use super::flash;
use super::layout::Shell;
use super::pages::{render, status_for};
use super::session;
use crate::core::ids::SessionId;
use crate::core::time::display;
use crate::core::{Error, FieldErrors, Result};
use crate::people::sessions::{self, Current};
use crate::people::{passwords, users};
use crate::web::paths;

struct SessionRow {
    id: SessionId,
    created: String,
    last_seen: String,
    user_agent: String,
    client_addr: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    shell: Shell,
    user_id: crate::core::ids::UserId,
    email: String,
    sessions: Vec<SessionRow>,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    shell: Shell,
    current: &Current,
    errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let listed = sessions::list(
        &mut conn,
        current.user_id(),
        state.clock.now(),
        state.lifetime,
    )
    .await?;
    let status = status_for(&errors);
    render(
        status,
        &AccountPage {
            shell: shell.at("account"),
            user_id: current.user_id(),
            email: current.email.clone(),
            sessions: listed
                .into_iter()
                .map(|s| SessionRow {
                    current: s.id == current.session_id,
                    id: s.id,
                    created: display(s.created_at),
                    last_seen: display(s.last_seen_at),
                    user_agent: s.user_agent,
                    client_addr: s.client_addr,
                })
                .collect(),
            errors,
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    current: Current,
) -> Result<Response> {
    page(&state, shell, &current, FieldErrors::new()).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

/// Changes the password and signs out every other session of the user.
pub async fn change_password(
    State(state): State<AppState>,
    shell: Shell,
    current: Current,
    Form(form): Form<PasswordForm>,
) -> Result<Response> {
    let mut errors = FieldErrors::new();
    let hash = {
        let mut conn = state.pool.acquire().await?;
        users::password_hash(&mut conn, current.user_id()).await?
    };
    if !passwords::verify(form.current, hash).await? {
        errors.add("current", "This is not your current password.");
    }
    if let Err(e) = passwords::check_new(&form.new, "new") {
        errors = merge(errors, e);
    } else if form.new != form.confirm {
        errors.add("confirm", "The two new passwords are not the same.");
    }
    if !errors.is_empty() {
        return page(&state, shell, &current, errors).await;
    }
    let hash = passwords::hash(form.new).await?;
    let mut tx = state.pool.begin().await?;
    users::set_password_hash(&mut tx, current.user_id(), &hash, state.clock.now()).await?;
    let ended =
        sessions::revoke_others(&mut tx, current.user_id(), Some(current.session_id)).await?;
    tx.commit().await?;
    tracing::info!(target: "security", user_id = %current.user_id(), ended, "password changed");
    Ok(flash::redirect(
        paths::account(),
        flash::Kind::Success,
        "Your password was changed. Your other sessions were signed out.",
    ))
}

fn merge(mut into: FieldErrors, from: FieldErrors) -> FieldErrors {
    for (field, message) in from.iter() {
        into.add(field, message);
    }
    into
}

/// Ends one of the user's sessions; ending the current one signs out.
pub async fn revoke_session(
    State(state): State<AppState>,
    current: Current,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: SessionId = id.parse().map_err(|_| Error::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    if !sessions::revoke(&mut conn, current.user_id(), id).await? {
        return Err(Error::NotFound);
    }
    if id == current.session_id {
        let mut response = flash::redirect(
            paths::login_form(),
            flash::Kind::Info,
            "You are signed out.",
        );
        response
            .headers_mut()
            .append(header::SET_COOKIE, session::cookie(&state, None));
        return Ok(response);
    }
    Ok(flash::redirect(
        paths::account(),
        flash::Kind::Success,
        "The session was signed out.",
    ))
}
