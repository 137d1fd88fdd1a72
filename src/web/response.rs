//! The marks a response carries for `error::render_pages`, kept below both the CSRF check
//! and the error pages so that neither needs the other: `Rendered` (already a page of ours,
//! leave it alone) and `ErrorNote` (what the error page should say), and `html` for a page
//! that is finished.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Marks a response whose body is already a page of ours.
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

/// What to tell the person on an error page.
#[derive(Debug, Clone)]
pub struct ErrorNote {
    pub title: &'static str,
    pub message: String,
}

/// An empty response of `status` that the error page will explain with `title` and `message`.
pub fn note(status: StatusCode, title: &'static str, message: impl Into<String>) -> Response {
    let mut response = status.into_response();
    response.extensions_mut().insert(ErrorNote {
        title,
        message: message.into(),
    });
    response
}

/// A response that is already a page of ours (so error rendering leaves it alone).
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    response.extensions_mut().insert(Rendered);
    response
}
