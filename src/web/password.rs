//! Setting a password from a single-use link (new and imported accounts, resets).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::AppState;
use super::extract::Form;
use super::flash;
use super::layout::Shell;
use super::pages::render;
use crate::core::{Error, FieldErrors, Result};
use crate::people::{passwords, sessions, tokens, users};
use crate::web::paths;

#[derive(Template)]
#[template(path = "password_set.html")]
struct Page {
    shell: Shell,
    token: String,
    email: String,
    errors: FieldErrors,
}

pub async fn form(
    State(state): State<AppState>,
    shell: Shell,
    Path(token): Path<String>,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let user = tokens::check(&mut conn, &token, state.clock.now()).await?;
    let email = users::find(&mut conn, user).await?.email;
    render(
        axum::http::StatusCode::OK,
        &Page {
            shell,
            token,
            email,
            errors: FieldErrors::new(),
        },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

pub async fn set(
    State(state): State<AppState>,
    shell: Shell,
    Path(token): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut conn = state.pool.acquire().await?;
    let user = tokens::check(&mut conn, &token, now).await?;
    let email = users::find(&mut conn, user).await?.email;
    drop(conn);
    let mut errors = match passwords::check_new(&form.new, "new") {
        Ok(()) => FieldErrors::new(),
        Err(e) => e,
    };
    if errors.is_empty() && form.new != form.confirm {
        errors.add("confirm", "The two passwords are not the same.");
    }
    if !errors.is_empty() {
        return render(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            &Page {
                shell,
                token,
                email,
                errors,
            },
        );
    }
    let hash = passwords::hash(form.new).await?;
    let mut tx = state.pool.begin().await?;
    // Used up in the same transaction as the change: a second use finds nothing.
    let user = tokens::consume(&mut tx, &token, now)
        .await
        .map_err(|_| Error::NotFound)?;
    users::set_password_hash(&mut tx, user, &hash, now).await?;
    sessions::revoke_others(&mut tx, user, None).await?;
    tx.commit().await?;
    Ok(flash::redirect(
        paths::login_form(),
        flash::Kind::Success,
        "Your password is set. Sign in with it.",
    ))
}
