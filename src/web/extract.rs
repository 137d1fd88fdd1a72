//! Extractors that answer with our pages instead of axum's plain-text rejections.

use std::net::IpAddr;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
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

/// The client's address (see `web::client_addr`).
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(super::client_addr(state, parts)))
    }
}
