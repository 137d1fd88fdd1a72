//! Files on tickets over HTTP: reading a posted form that may carry files (multipart, or a
//! plain URL-encoded form), the "Attach a file" form, and downloads. A download passes the
//! ticket's visibility and the file's own (internal files only for those who may see
//! internal data); anything else is 404. Files are served so a browser never runs them:
//! `nosniff`, `Content-Security-Policy: sandbox`, and `attachment` except for raster images.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::conversation::{AttachmentView, ConvKept, refuse_oversize};
use super::extract::Form;
use super::flash;
use super::layout::Shell;
use super::paths;
use super::tickets::{Kept, parse_key, ticket_page};
use super::{AppState, Rendered};
use crate::core::ids::AttachmentId;
use crate::core::time::display;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::tickets::attachments::{self, Attachment, Upload};
use crate::tickets::conversation::{Reply, Seen};
use crate::tickets::{self, Visibility};

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

/// How the ticket page lists a file.
pub(super) fn view_of(key: &str, a: &Attachment) -> AttachmentView {
    AttachmentView {
        url: format!("{}/attachments/{}", paths::ticket(key), a.id),
        filename: a.filename.clone(),
        size: a.human_size(),
        by: a.uploader_name.clone().unwrap_or_else(|| "Unitrack".into()),
        when: display(a.created_at.to_jiff()),
        internal: a.internal,
    }
}

/// "Attach a file": files without a comment, for everyone or (for those who may) staff only.
pub async fn attach(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(key): Path<String>,
    posted: Posted,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let visibility = Visibility::parse(posted.fields.get("visibility").map_or("", |v| v));
    // Messages go beside this form's file input ("attach"), not the reply form's ("file").
    let refused = |errors: FieldErrors, status: StatusCode| Kept {
        errors: {
            let mut moved = FieldErrors::new();
            for (field, message) in errors.iter() {
                moved.add(if field == "file" { "attach" } else { field }, message);
            }
            moved
        },
        status: Some(status),
        conv: ConvKept {
            internal: visibility.is_internal(),
            ..ConvKept::default()
        },
        ..Kept::default()
    };
    if let Some(errors) = refuse_oversize(&state, &posted) {
        let kept = refused(errors, StatusCode::PAYLOAD_TOO_LARGE);
        return ticket_page(&state, shell, &actor, &key, kept).await;
    }
    if posted.files.is_empty() {
        let kept = refused(
            FieldErrors::one("file", "Choose a file to attach."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        return ticket_page(&state, shell, &actor, &key, kept).await;
    }
    let count = posted.files.len();
    let reply = Reply {
        body: String::new(),
        visibility,
        files: posted.files,
        seen: Seen::default(),
    };
    let mut tx = state.pool.begin().await?;
    let ticket = tickets::find_for_change(&mut tx, &actor, &key).await?;
    match tickets::conversation::reply(
        &mut tx,
        &actor,
        &ticket,
        &reply,
        state.config.attachment_max_bytes,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => {
            tx.commit().await?;
            let text = if count == 1 {
                "File attached.".to_owned()
            } else {
                format!("{count} files attached.")
            };
            Ok(flash::redirect(
                &format!("{}#files", paths::ticket(&key.to_string())),
                flash::Kind::Success,
                &text,
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            let kept = refused(errors, StatusCode::UNPROCESSABLE_ENTITY);
            ticket_page(&state, shell, &actor, &key, kept).await
        }
        Err(e) => Err(e),
    }
}

/// `Content-Disposition` for a file name: a plain ASCII `filename` for old clients and the
/// exact name as RFC 5987 `filename*`. The name was sanitised when stored; quotes, back
/// slashes and anything outside printable ASCII are replaced or percent-encoded here anyway.
pub(super) fn content_disposition(inline: bool, filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(filename.len() * 3);
    for byte in filename.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!(
        "{}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}",
        if inline { "inline" } else { "attachment" }
    )
}

/// The policy a download is served under: it may not run anything, load anything or be
/// framed. Inline styles only so browsers can centre an image they show.
const DOWNLOAD_CSP: &str =
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// A file, if the actor may see its ticket and (for internal files) internal data.
pub async fn download(
    State(state): State<AppState>,
    actor: Actor,
    Path((key, id)): Path<(String, String)>,
) -> Result<Response> {
    let key = parse_key(&key)?;
    let id: AttachmentId = id.parse().map_err(|_| Error::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    let ticket = tickets::find_visible(&mut conn, &actor, &key).await?;
    let (meta, data) = attachments::open(&mut conn, &actor, &ticket, id).await?;
    let inline = meta.is_inline_image();
    let content_type = HeaderValue::from_str(&meta.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(inline, &meta.filename))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOWNLOAD_CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        data,
    )
        .into_response();
    response.extensions_mut().insert(Rendered);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn dispositions_quote_nothing_dangerous() {
        assert_eq!(
            content_disposition(false, "report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition(true, "März 2026.png"),
            "inline; filename=\"M_rz 2026.png\"; filename*=UTF-8''M%C3%A4rz%202026.png"
        );
        let odd = content_disposition(false, "a\"b\\c;d\r\n.txt");
        assert_eq!(
            odd,
            "attachment; filename=\"a_b_c;d__.txt\"; filename*=UTF-8''a%22b%5Cc%3Bd%0D%0A.txt"
        );
        assert!(axum::http::HeaderValue::from_str(&odd).is_ok());
    }
}
