//! The home page, health checks and the fallback.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::layout::Shell;
use super::{AppState, Rendered, html};
use crate::core::{Error, Result};
use crate::db;
use crate::engine::policy::Actor;
use crate::tickets;
use crate::web::paths;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    shell: Shell,
    recent: Vec<tickets::Row>,
}

pub async fn home(
    State(state): State<AppState>,
    shell: Shell,
    actor: Option<Actor>,
) -> Result<Response> {
    let Some(actor) = actor else {
        return Ok(Redirect::to(paths::login_form()).into_response());
    };
    let mut conn = state.pool.acquire().await?;
    let recent = tickets::my_requests(&mut conn, &actor, None, 5).await?.rows;
    render(
        StatusCode::OK,
        &HomePage {
            shell: shell.at("home"),
            recent,
        },
    )
}

/// Renders a page template with a status.
pub(super) fn render(status: StatusCode, page: &impl Template) -> Result<Response> {
    // Room for most pages at once (askama's own hint is a small guess from the template's
    // text): growing a 64 KB page from the hint copied it over and over.
    let mut body = String::with_capacity(32 * 1024);
    page.render_into(&mut body)
        .map_err(|e| Error::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(html(status, body))
}

/// 200 for a fresh form, 422 when it comes back with errors.
pub(super) fn status_for(errors: &crate::core::FieldErrors) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// The process is up.
pub async fn healthz() -> Response {
    plain(StatusCode::OK, "ok")
}

/// The database is reachable and migrated.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match db::is_migrated(&state.pool).await {
        Ok(true) => plain(StatusCode::OK, "ready"),
        Ok(false) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: migrations pending",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: database unreachable",
            )
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, text).into_response();
    response.extensions_mut().insert(Rendered);
    response
}

pub async fn not_found() -> Error {
    Error::NotFound
}
