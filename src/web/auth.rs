//! Sign-in and sign-out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::AppState;
use super::extract::{ClientAddr, Form};
use super::flash;
use super::layout::Shell;
use super::pages::render;
use super::paths::safe_next;
use super::session::{self, SessionToken};
use crate::core::Result;
use crate::people::{self, LoginOutcome, sessions};
use crate::web::paths;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    shell: Shell,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

pub async fn login_form(shell: Shell, Query(q): Query<LoginQuery>) -> Result<Response> {
    let next = safe_next(&q.next).to_owned();
    if shell.user.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    render(
        StatusCode::OK,
        &LoginPage {
            shell: shell.at("login"),
            email: String::new(),
            next,
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(state): State<AppState>,
    shell: Shell,
    ClientAddr(addr): ClientAddr,
    old: Option<axum::Extension<SessionToken>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let next = safe_next(&form.next).to_owned();
    let addr = addr.to_string();
    let outcome = people::authenticate(
        &state.pool,
        &form.email,
        form.password,
        &addr,
        now,
        state.login_limits,
    )
    .await?;
    let (status, message) = match outcome {
        LoginOutcome::SignedIn(user_id) => {
            let user_agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let mut tx = state.pool.begin().await?;
            // A new id at every sign-in: a session fixed before sign-in is worthless.
            if let Some(axum::Extension(SessionToken(old))) = old {
                sessions::end(&mut tx, &old).await?;
            }
            let token =
                sessions::create(&mut tx, user_id, now, state.lifetime, user_agent, &addr).await?;
            tx.commit().await?;
            tracing::info!(target: "security", user_id = %user_id, "signed in");
            let mut response = Redirect::to(&next).into_response();
            response
                .headers_mut()
                .append(header::SET_COOKIE, session::cookie(&state, Some(token)));
            return Ok(response);
        }
        LoginOutcome::Refused => {
            tracing::info!(target: "security", "sign-in refused");
            (
                StatusCode::UNAUTHORIZED,
                "E-mail or password is wrong.".to_owned(),
            )
        }
        LoginOutcome::Locked { until } => {
            tracing::warn!(target: "security", "sign-in throttled");
            let minutes = (until.duration_since(now).as_secs() + 59) / 60;
            (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed sign-ins. Try again in {} minute{}.",
                    minutes.max(1),
                    if minutes > 1 { "s" } else { "" }
                ),
            )
        }
    };
    let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
        .then(|| HeaderValue::from_str(&(state.config.login_window_minutes * 60).to_string()));
    let mut response = render(
        status,
        &LoginPage {
            shell: shell.at("login"),
            email: form.email,
            next,
            error: Some(message),
        },
    )?;
    if let Some(Ok(value)) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

pub async fn logout(
    State(state): State<AppState>,
    token: Option<axum::Extension<SessionToken>>,
) -> Result<Response> {
    if let Some(axum::Extension(SessionToken(token))) = token {
        let mut conn = state.pool.acquire().await?;
        sessions::end(&mut conn, &token).await?;
    }
    let mut response = flash::redirect(
        paths::login_form(),
        flash::Kind::Info,
        "You are signed out.",
    );
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::cookie(&state, None));
    Ok(response)
}
