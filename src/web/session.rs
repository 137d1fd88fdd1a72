//! The session cookie: loading the signed-in user for each request, the `Actor` extractor,
//! and the access check that the route table applies.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::{Access, AppState};
use crate::core::Error;
use crate::engine::policy::{self, Action, Actor, Decision, Permission, Target};
use crate::people::sessions::{self, Current};

pub const SESSION_COOKIE: &str = "ut_session";

/// The raw session token of this request, for sign-out.
#[derive(Debug, Clone)]
pub struct SessionToken(pub String);

/// Who is signed in, copied onto error responses so error pages keep the navigation.
#[derive(Debug, Clone)]
pub struct ShellUser {
    pub name: String,
    pub csrf: String,
    /// Holds some admin permission: show the Admin entry.
    pub admin: bool,
    /// Works tickets somewhere (reads internal data): show the desk and queues.
    pub agent: bool,
    /// Unread notifications (capped): the bell.
    pub unread: i64,
}

impl ShellUser {
    pub fn of(current: &Current) -> Self {
        Self {
            name: current.display_name.clone(),
            csrf: current.csrf_token.clone(),
            admin: Permission::ALL.iter().any(|p| {
                p.is_admin()
                    && policy::decide(&current.actor, Action::Administer(*p), Target::Nothing)
                        .allowed()
            }),
            agent: policy::decide(&current.actor, Action::SeeInternal, Target::AnyTicket).allowed(),
            unread: current.unread_notifications,
        }
    }

    /// The bell's number: "99+" past the cap, nothing at zero.
    pub fn bell(&self) -> String {
        match self.unread {
            0 => String::new(),
            n if n >= crate::notifications::UNREAD_CAP => {
                format!("{}+", crate::notifications::UNREAD_CAP - 1)
            }
            n => n.to_string(),
        }
    }
}

/// A `Set-Cookie` value for the session cookie; `None` clears it.
pub fn cookie(state: &AppState, token: Option<String>) -> HeaderValue {
    let clear = token.is_none();
    let mut cookie = Cookie::build((SESSION_COOKIE, token.unwrap_or_default()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .build();
    if clear {
        cookie.make_removal();
    }
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// Middleware: finds the session behind the cookie and puts it in the request.
pub async fn load(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let token = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned());
    let mut current = None;
    if let Some(token) = token.as_deref().filter(|t| !t.is_empty()) {
        match sessions::load(
            &state.pool,
            &state.access,
            token,
            state.clock.now(),
            state.lifetime,
        )
        .await
        {
            Ok(found) => current = found,
            Err(e) => return e.into_response(),
        }
        req.extensions_mut().insert(SessionToken(token.to_owned()));
    }
    let shell_user = current.as_ref().map(ShellUser::of);
    if let Some(c) = current {
        tracing::Span::current().record("user_id", tracing::field::display(c.user_id()));
        req.extensions_mut().insert(c);
    }
    let stale_cookie = token.is_some() && shell_user.is_none();
    let mut response = next.run(req).await;
    if let Some(user) = shell_user {
        response.extensions_mut().insert(user);
    }
    // An expired or revoked session: forget the cookie, unless the handler set a new one.
    let sets_session = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(SESSION_COOKIE.as_bytes()));
    if stale_cookie && !sets_session {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie(&state, None));
    }
    response
}

/// Route layer: the access the route table names.
pub async fn require(State(access): State<Access>, req: Request, next: Next) -> Response {
    let current = req.extensions().get::<Current>();
    match (access, current) {
        (Access::Public, _) => next.run(req).await,
        (Access::SignedIn | Access::Ticket(_) | Access::Global(_), None) => {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            // Only a GET can be resumed after signing in.
            let next_path = if req.method() == axum::http::Method::GET {
                target
            } else {
                "/"
            };
            Redirect::to(&super::paths::login(next_path)).into_response()
        }
        (Access::SignedIn, Some(_)) => next.run(req).await,
        // The first gate; the handler decides for the ticket itself.
        (Access::Ticket(action), Some(c)) => {
            let decision = policy::decide(&c.actor, action, Target::AnyTicket);
            pass_if(decision, req, next).await
        }
        (Access::Global(permission), Some(c)) => {
            let decision =
                policy::decide(&c.actor, Action::Administer(permission), Target::Nothing);
            pass_if(decision, req, next).await
        }
    }
}

async fn pass_if(decision: Decision, req: Request, next: Next) -> Response {
    if decision.allowed() {
        next.run(req).await
    } else {
        tracing::info!(target: "security", %decision, "refused");
        Error::Forbidden.into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        parts
            .extensions
            .get::<Current>()
            .map(|c| c.actor.clone())
            .ok_or(Error::Unauthenticated)
    }
}

/// The signed-in user's session, for handlers that need more than the `Actor`.
impl<S: Send + Sync> FromRequestParts<S> for Current {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        parts
            .extensions
            .get::<Current>()
            .cloned()
            .ok_or(Error::Unauthenticated)
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Current>().map(|c| c.actor.clone()))
    }
}
