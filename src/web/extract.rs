//! Extractors that answer with our pages instead of axum's plain-text rejections.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::{App, AppState};
use crate::core::{Error, FieldErrors};

/// A URL-encoded form; a body that cannot be read is a 422 page, not plain text.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Form<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Form(value)),
            Err(rejection) => {
                tracing::debug!(%rejection, "unreadable form");
                Err(Error::Invalid(FieldErrors::one(
                    "form",
                    "The form could not be read. Go back, reload the page and try again.",
                )))
            }
        }
    }
}

/// The client's address (see [`client_addr`]).
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(state, parts)))
    }
}

/// The client's address: the peer, or what a trusted proxy says in `X-Forwarded-For`.
fn client_addr(state: &App, req: &Parts) -> IpAddr {
    use axum::extract::ConnectInfo;
    use axum::extract::connect_info::MockConnectInfo;
    let peer = req
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| {
            req.extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if !state.trusted_proxies.contains(&peer) {
        return peer;
    }
    // Rightmost address that is not one of our proxies: the one a proxy of ours saw.
    req.headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim).collect::<Vec<_>>())
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .rev()
        .find(|ip| !state.trusted_proxies.contains(ip))
        .unwrap_or(peer)
}
