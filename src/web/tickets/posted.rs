//! Reading a posted form that may carry files (multipart, or a plain URL-encoded form), and
//! the refusal of files over the attachment limit.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::core::{Error, FieldErrors, Result};
use crate::tickets::attachments::{self, Upload, too_large_message};
use crate::web::AppState;
use crate::web::extract::Form;

/// The name of the file inputs.
const FILE_FIELD: &str = "file";

/// A posted form: its text fields and its files. Files over the attachment limit are read
/// past (not kept) and listed in `oversize`, so the handler can answer 413 with the rest of
/// the input kept.
#[derive(Debug, Default)]
pub struct Posted {
    pub fields: BTreeMap<String, String>,
    pub files: Vec<Upload>,
    /// (file name as sent, size) of files over the limit.
    pub oversize: Vec<(String, usize)>,
}

fn unreadable() -> Response {
    Error::Invalid(FieldErrors::one(
        "form",
        "The form could not be read. Go back, reload the page and try again.",
    ))
    .into_response()
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !multipart {
            let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            return Ok(Posted {
                fields: pairs.into_iter().collect(),
                ..Posted::default()
            });
        }
        let mut form = Multipart::from_request(req, state)
            .await
            .map_err(|_| unreadable())?;
        let max = state.config.attachment_max_bytes;
        let mut posted = Posted::default();
        loop {
            let next = form.next_field().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    StatusCode::PAYLOAD_TOO_LARGE.into_response()
                } else {
                    unreadable()
                }
            })?;
            let Some(mut field) = next else { break };
            let name = field.name().unwrap_or_default().to_owned();
            let Some(filename) = field.file_name().map(str::to_owned) else {
                let text = field.text().await.map_err(|_| unreadable())?;
                posted.fields.insert(name, text);
                continue;
            };
            let content_type = field.content_type().unwrap_or_default().to_owned();
            let mut data = Vec::new();
            let mut size = 0usize;
            while let Some(chunk) = field.chunk().await.map_err(|_| unreadable())? {
                size = size.saturating_add(chunk.len());
                if size > max {
                    data = Vec::new();
                } else {
                    data.extend_from_slice(&chunk);
                }
            }
            // A file input left empty still sends a part, with no name and no bytes.
            if name != FILE_FIELD || (filename.is_empty() && size == 0) {
                continue;
            }
            if size > max {
                posted.oversize.push((filename, size));
            } else {
                posted.files.push(Upload {
                    filename,
                    content_type,
                    data,
                });
            }
        }
        Ok(posted)
    }
}

/// The message for files over the limit, if any were sent.
pub(super) fn refuse_oversize(state: &AppState, posted: &Posted) -> Option<FieldErrors> {
    let max = state.config.attachment_max_bytes;
    let mut errors = FieldErrors::new();
    for (name, size) in &posted.oversize {
        errors.add(
            "file",
            too_large_message(&attachments::sanitize_filename(name), *size, max),
        );
    }
    (!errors.is_empty()).then_some(errors)
}
