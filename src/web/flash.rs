//! One-shot messages shown on the next page ("Ticket HD-4 filed."), carried in a cookie
//! across the redirect and cleared once shown.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

const FLASH_COOKIE: &str = "ut_flash";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Info,
    Success,
    Error,
}

impl Kind {
    pub fn class(self) -> &'static str {
        match self {
            Kind::Info => "flash-info",
            Kind::Success => "flash-success",
            Kind::Error => "flash-error",
        }
    }

    fn code(self) -> char {
        match self {
            Kind::Info => 'i',
            Kind::Success => 's',
            Kind::Error => 'e',
        }
    }
}

/// A message waiting to be shown.
#[derive(Debug, Clone)]
pub struct Flash {
    pub kind: Kind,
    pub text: String,
}

/// Middleware: reads the flash cookie into the request; clears it once a page was shown.
pub async fn carry(mut req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let flash = jar.get(FLASH_COOKIE).and_then(|c| parse(c.value()));
    let had_flash = flash.is_some();
    if let Some(flash) = flash {
        req.extensions_mut().insert(flash);
    }
    let mut response = next.run(req).await;
    if had_flash && !response.status().is_redirection() {
        let mut cookie = Cookie::build((FLASH_COOKIE, "")).path("/").build();
        cookie.make_removal();
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn parse(value: &str) -> Option<Flash> {
    let decoded = percent_decode(value)?;
    let mut chars = decoded.chars();
    let kind = match chars.next()? {
        'i' => Kind::Info,
        's' => Kind::Success,
        'e' => Kind::Error,
        _ => return None,
    };
    let text: String = chars.as_str().chars().take(300).collect();
    Some(Flash { kind, text })
}

fn percent_decode(value: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("m={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// A 303 to `to` that shows `text` there.
pub fn redirect(to: &str, kind: Kind, text: &str) -> Response {
    let encoded: String =
        url::form_urlencoded::byte_serialize(format!("{}{text}", kind.code()).as_bytes()).collect();
    let cookie = Cookie::build((FLASH_COOKIE, encoded))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .build();
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
