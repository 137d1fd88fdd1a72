//! The only `IntoResponse` for errors. A feature's `Error` becomes a status and a note; the
//! `render_pages` middleware turns every error response that is not already a page of ours
//! (including those of axum and tower: 404, 405, 408, 413, 422) into a friendly page that
//! shows the request id and never internals. Causes are logged once, with their chain.

use askama::Template;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::layout::Shell;
use super::response::{ErrorNote, Rendered, html, note};
use super::session::ShellUser;
use crate::core::Error;
use crate::web::paths;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::NotFound => note(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or you do not have access to it.",
            ),
            Error::Forbidden => note(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Your account does not have permission for this.",
            ),
            Error::Unauthenticated => Redirect::to(paths::login_form()).into_response(),
            Error::Invalid(errors) => note(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Check your input",
                errors.to_string(),
            ),
            Error::Conflict(message) => note(StatusCode::CONFLICT, "Changed meanwhile", message),
            e if e.is_collision() => {
                tracing::warn!(error = ?anyhow::Error::new(e), "transactions collided");
                note(
                    StatusCode::CONFLICT,
                    "Changed meanwhile",
                    "Someone else changed the same tickets at the same moment. Nothing of yours was saved; go back and send it again.",
                )
            }
            e if e.is_unavailable() => {
                tracing::error!(error = ?anyhow::Error::new(e), "database unavailable");
                note(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Unitrack cannot reach its database right now. Try again in a minute.",
                )
            }
            e => {
                tracing::error!(error = ?anyhow::Error::new(e), "request failed");
                note(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "This is our fault, not yours. Try again; if it keeps happening, tell the help desk the reference below.",
                )
            }
        }
    }
}

/// A handler or middleware panicked: log it like an internal error (in the request's span,
/// so with its id) and answer the friendly 500 page. The panic's text is for the log only.
pub fn on_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    Error::Internal(anyhow::anyhow!("panicked: {message}")).into_response()
}

fn default_note(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("Bad request", "The request could not be understood."),
        403 => (
            "Not allowed",
            "Your account does not have permission for this.",
        ),
        404 => (
            "Not found",
            "There is nothing here, or you do not have access to it.",
        ),
        405 => (
            "Not allowed here",
            "This address does not accept that kind of request.",
        ),
        408 => ("Too slow", "The request took too long. Try again."),
        409 => (
            "Changed meanwhile",
            "Someone else changed this. Reload and try again.",
        ),
        413 => (
            "Too large",
            "What you sent is larger than Unitrack accepts.",
        ),
        415 => ("Unsupported", "This kind of content is not accepted here."),
        422 => (
            "Check your input",
            "The form could not be read. Go back and check it.",
        ),
        429 => ("Too many attempts", "Wait a little and try again."),
        503 => (
            "Temporarily unavailable",
            "Unitrack is busy or cannot reach its database. Try again in a minute.",
        ),
        _ if status.is_server_error() => (
            "Something went wrong",
            "This is our fault, not yours. Try again.",
        ),
        _ => (
            "Something is not right",
            "The request could not be completed.",
        ),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    shell: Shell,
    code: u16,
    title: &'static str,
    message: String,
    request_id: String,
}

/// Middleware: every error response that is not already a page becomes one.
pub async fn render_pages(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Rendered>().is_some()
    {
        return response;
    }
    let (title, message) = match response.extensions().get::<ErrorNote>() {
        Some(n) => (n.title, n.message.clone()),
        None => {
            let (t, m) = default_note(status);
            (t, m.to_owned())
        }
    };
    let user = response.extensions().get::<ShellUser>().cloned();
    let page = ErrorPage {
        shell: Shell::for_error(user),
        code: status.as_u16(),
        title,
        message,
        request_id,
    };
    let body = page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "error page failed to render");
        format!("{} {title}", status.as_u16())
    });
    let mut page = html(status, body);
    for name in [header::RETRY_AFTER, header::SET_COOKIE, header::ALLOW] {
        for value in response.headers().get_all(&name) {
            page.headers_mut().append(name.clone(), value.clone());
        }
    }
    page
}
