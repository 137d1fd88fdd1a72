//! Admin: the audit log, newest first.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::audit;
use crate::core::Result;
use crate::core::time::display;
use crate::web::AppState;
use crate::web::layout::Shell;
use crate::web::pages::render;

const PAGE: i64 = 50;

struct Row {
    when: String,
    entry: audit::Entry,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct Page {
    shell: Shell,
    rows: Vec<Row>,
    next: Option<i64>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    shell: Shell,
    Query(q): Query<AuditQuery>,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let mut entries = audit::list(&mut conn, q.before, PAGE + 1).await?;
    let next = if entries.len() as i64 > PAGE {
        entries.truncate(PAGE as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    render(
        StatusCode::OK,
        &Page {
            shell: shell.at("admin"),
            rows: entries
                .into_iter()
                .map(|entry| Row {
                    when: display(entry.at.to_jiff()),
                    entry,
                })
                .collect(),
            next,
        },
    )
}
