//! CSRF defence on every unsafe method: the request must come from our own origin
//! (`Origin`, else `Referer`, and `Sec-Fetch-Site`) and carry the token of its session in
//! the `_csrf` form field or the `X-CSRF-Token` header. Anonymous visitors (the sign-in form)
//! get a token in a cookie of its own, compared the same way.
//!
//! The body is read in full (up to the limit) before any handler runs, so the token is checked
//! the same way for URL-encoded and multipart forms: in a multipart body it is the text part
//! named `_csrf`. Upload routes (`web::UPLOAD_ROUTES`) accept a multipart body up to
//! `Config::upload_body_limit`; everything else up to `max_body_bytes`.

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use subtle::ConstantTimeEq;
use url::{Url, form_urlencoded};

use super::AppState;
use super::response::note;
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
    note(
        StatusCode::FORBIDDEN,
        "This form could not be accepted",
        message,
    )
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
        let upload = is_multipart(req.headers())
            && req
                .extensions()
                .get::<MatchedPath>()
                .is_some_and(|p| super::UPLOAD_ROUTES.contains(&p.as_str()));
        let limit = if upload {
            state.config.upload_body_limit()
        } else {
            state.config.max_body_bytes
        };
        let (parts, body) = req.into_parts();
        let bytes = match to_bytes(body, limit).await {
            Ok(bytes) => bytes,
            Err(_) => return too_large(upload, &state),
        };
        let mut sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| form_field(&parts.headers, &bytes))
            .or_else(|| parts.uri.query().and_then(|q| field_in(q.as_bytes())));
        if sent.is_none() && is_multipart(&parts.headers) {
            sent = multipart_field(&parts.headers, bytes.clone()).await;
        }
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

fn too_large(upload: bool, state: &AppState) -> Response {
    let message = if upload {
        format!(
            "Files can be at most {} (together, when sent at once). Go back and choose a smaller file.",
            crate::tickets::attachments::human_size(state.config.attachment_max_bytes as u64)
        )
    } else {
        "What you sent is larger than Unitrack accepts.".to_owned()
    };
    note(StatusCode::PAYLOAD_TOO_LARGE, "Too large", message)
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

/// The `_csrf` text part of a multipart body (already read in full, so this costs no I/O).
async fn multipart_field(headers: &HeaderMap, body: axum::body::Bytes) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = multer::parse_boundary(content_type).ok()?;
    let mut multipart = multer::Multipart::new(Body::from(body).into_data_stream(), boundary);
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(FIELD) && field.file_name().is_none() {
            return field.text().await.ok();
        }
    }
    None
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
