//! Files on tickets over HTTP: the "Attach a file" form, and downloads. A download passes the
//! ticket's visibility and the file's own (internal files only for those who may see
//! internal data); anything else is 404. Files are served so a browser never runs them:
//! `nosniff`, `Content-Security-Policy: sandbox`, and `attachment` except for raster images.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::kept::{ConvKept, Kept};
use super::page::{parse_key, ticket_page};
use super::posted::{Posted, refuse_oversize};
use crate::core::ids::AttachmentId;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::tickets::attachments;
use crate::tickets::conversation::{Reply, Seen};
use crate::tickets::{self, Visibility};
use crate::web::layout::Shell;
use crate::web::{AppState, Rendered, flash, paths};

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
