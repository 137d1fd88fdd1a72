//! CSRF defence on every unsafe method: the request must come from our own origin
//! (`Origin`, else `Referer`, and `Sec-Fetch-Site`) and carry the token of its session in
//! the `_csrf` form field or the `X-CSRF-Token` header. Anonymous visitors (the sign-in form)
//! get a token in a cookie of its own, compared the same way.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use subtle::ConstantTimeEq;
use url::{Url, form_urlencoded};

use super::AppState;
use super::error::ErrorNote;
use crate::people::sessions::{Current, random_token};

pub const CSRF_COOKIE: &str = "ut_csrf";
pub const FIELD: &str = "_csrf";

/// The token forms of this request must carry.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

fn refuse(message: &'static str) -> Response {
    let mut response = StatusCode::FORBIDDEN.into_response();
    response.extensions_mut().insert(ErrorNote {
        title: "This form could not be accepted",
        message: message.into(),
    });
    response
}

pub async fn protect(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let session_token = req
        .extensions()
        .get::<Current>()
        .map(|c| c.csrf_token.clone());
    let cookie_token = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43);
    let (token, new_cookie) = match (session_token, cookie_token) {
        (Some(t), _) => (t, false),
        (None, Some(t)) => (t, false),
        (None, None) => (random_token(), true),
    };

    let mut req = req;
    if !is_safe(req.method()) {
        if !same_origin(req.headers(), &state) {
            tracing::warn!(target: "security", "cross-site request refused");
            return refuse(
                "The request came from another site. If you sent it, go back, reload the page and try again.",
            );
        }
        let (parts, body) = req.into_parts();
        let bytes = match to_bytes(body, state.config.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| form_field(&parts.headers, &bytes))
            .or_else(|| parts.uri.query().and_then(|q| field_in(q.as_bytes())));
        let valid = sent.is_some_and(|s| bool::from(s.as_bytes().ct_eq(token.as_bytes())));
        if !valid {
            tracing::warn!(target: "security", "request with a missing or wrong CSRF token refused");
            return refuse(
                "This form has expired or was not sent from Unitrack. Go back, reload the page and try again.",
            );
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }

    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut response = next.run(req).await;
    if new_cookie {
        let cookie = Cookie::build((CSRF_COOKIE, token))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.config.secure_cookies())
            .build();
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn form_field(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let urlencoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if urlencoded { field_in(body) } else { None }
}

fn field_in(encoded: &[u8]) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned())
}

/// Is the request from our own origin? Browsers send `Origin` on every POST; when neither it
/// nor `Referer` is present (a script, not a browser), the token alone decides.
fn same_origin(headers: &HeaderMap, state: &AppState) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return false;
    }
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(claimed) = claimed else {
        return true;
    };
    let Ok(claimed) = Url::parse(claimed) else {
        return false; // includes `Origin: null`
    };
    match &state.config.base_url {
        Some(base) => claimed.origin() == base.origin(),
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            let claimed_host = match (claimed.host_str(), claimed.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                _ => return false,
            };
            host.is_some_and(|h| h.eq_ignore_ascii_case(&claimed_host))
        }
    }
}
