//! Static files, embedded in the binary so the server runs from any folder. URLs carry a
//! content hash, so browsers may cache them for a year.

use std::sync::LazyLock;

use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Rendered;
use crate::core::Error;
use crate::web::paths;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    version: String,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    let files: [(&str, &str, &[u8]); 2] = [
        (
            "app.css",
            "text/css; charset=utf-8",
            include_bytes!("../../static/app.css"),
        ),
        (
            "attach.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../static/attach.js"),
        ),
    ];
    files
        .into_iter()
        .map(|(name, content_type, body)| {
            let digest = Sha256::digest(body);
            Asset {
                name,
                content_type,
                body,
                version: digest.iter().take(6).map(|b| format!("{b:02x}")).collect(),
            }
        })
        .collect()
});

/// `/static/app.css?v=<hash>`.
pub fn css_url() -> String {
    url("app.css")
}

/// `/static/<name>?v=<hash>`.
pub(super) fn url(name: &str) -> String {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => paths::static_file_version(a.name, &a.version),
        None => paths::static_file(name),
    }
}

#[derive(Deserialize)]
pub struct Version {
    v: Option<String>,
}

pub async fn serve(Path(file): Path<String>, Query(q): Query<Version>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return Error::NotFound.into_response();
    };
    let cache = if q.v.as_deref() == Some(asset.version.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let mut response = (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        asset.body,
    )
        .into_response();
    response.extensions_mut().insert(Rendered);
    response
}
