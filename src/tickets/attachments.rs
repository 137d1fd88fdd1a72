//! Files on tickets, kept in PostgreSQL (`attachments`, bytea) so app servers stay stateless.
//! A file comes with a comment or note (`event_id`) or on its own; one that came with an
//! internal note is internal. Every upload writes an `attachment_added` event in the same
//! transaction. Lists never load the bytes; only `open` does, after the visibility checks.
//! How a file is served (headers) is the web layer's business.

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use sqlx::{FromRow, PgConnection};

use super::comments::Visibility;
use super::event_data::EventData;
use super::events::record;
use super::ticket::{Ticket, touch};
use crate::core::ids::{AttachmentId, TicketId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::{self, Action, Actor, Target};

/// The longest file name kept, in characters.
pub const FILENAME_MAX: usize = 200;

/// Image types a browser may show inline: raster formats only, never SVG (it runs script).
const SAFE_IMAGES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// A file as uploaded: the name and type the browser claimed, and the bytes.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// A stored file, without its bytes.
#[derive(Debug, Clone, FromRow)]
pub struct Attachment {
    pub id: AttachmentId,
    pub ticket_id: TicketId,
    pub event_id: Option<i64>,
    pub internal: bool,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: Vec<u8>,
    pub uploaded_by: Option<UserId>,
    pub uploader_name: Option<String>,
    pub created_at: jiff_sqlx::Timestamp,
}

impl Attachment {
    /// May a browser show it in place? Only raster images whose bytes say so too.
    pub fn is_inline_image(&self) -> bool {
        SAFE_IMAGES.contains(&self.content_type.as_str())
    }

    pub fn human_size(&self) -> String {
        human_size(u64::try_from(self.size).unwrap_or(0))
    }

    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `1536` → `1.5 KB`; binary units, one decimal below 10.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 && value.fract() >= 0.05 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// A file name safe to store and show: no folders (either slash), no control or
/// bidirectional-override characters, no characters Windows refuses, no leading dots or
/// surrounding spaces, at most `FILENAME_MAX` characters; `attachment` if nothing is left.
pub fn sanitize_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = base
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        return "attachment".into();
    }
    if trimmed.chars().count() <= FILENAME_MAX {
        return trimmed.to_owned();
    }
    // Keep the extension when shortening.
    let ext: String = match trimmed.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() && ext.chars().count() <= 10 => format!(".{ext}"),
        _ => String::new(),
    };
    let keep = FILENAME_MAX - ext.chars().count();
    let stem: String = trimmed.chars().take(keep).collect();
    format!("{}{ext}", stem.trim_end())
}

/// Does `data` start like a file of this (safe image) type?
fn bytes_look_like(content_type: &str, data: &[u8]) -> bool {
    match content_type {
        "image/png" => data.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => data.starts_with(b"\xff\xd8\xff"),
        "image/gif" => data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a"),
        "image/webp" => data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP",
        _ => false,
    }
}

/// The type to store: the browser's claim reduced to a well-formed lowercase `type/subtype`
/// (else `application/octet-stream`); a claimed safe image whose bytes are not one becomes
/// `application/octet-stream`, so it is never shown inline.
pub fn content_type_for(claimed: &str, data: &[u8]) -> String {
    const FALLBACK: &str = "application/octet-stream";
    let essence = claimed
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let well_formed = match essence.split_once('/') {
        Some((kind, sub)) => token(kind) && token(sub),
        None => false,
    };
    if !well_formed {
        return FALLBACK.into();
    }
    if SAFE_IMAGES.contains(&essence.as_str()) && !bytes_look_like(&essence, data) {
        return FALLBACK.into();
    }
    essence
}

/// Stores one file on the ticket with its `attachment_added` event, in the caller's
/// transaction. `event` is the comment or note it came with; `visibility` must match it.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    upload: &Upload,
    visibility: Visibility,
    event: Option<i64>,
    max_bytes: usize,
    now: Timestamp,
) -> Result<AttachmentId> {
    if !policy::decide(actor, visibility.action(), Target::Ticket(&ticket.facts())).allowed() {
        return Err(Error::Forbidden);
    }
    let filename = sanitize_filename(&upload.filename);
    if upload.data.len() > max_bytes {
        return Err(Error::Invalid(FieldErrors::one(
            "file",
            too_large_message(&filename, upload.data.len(), max_bytes),
        )));
    }
    let content_type = content_type_for(&upload.content_type, &upload.data);
    let sha256 = Sha256::digest(&upload.data).to_vec();
    let size = i64::try_from(upload.data.len())
        .map_err(|_| Error::Internal(anyhow::anyhow!("file size out of range")))?;
    let id = AttachmentId::new();
    sqlx::query(
        "insert into attachments (id, ticket_id, event_id, internal, filename, content_type, size,
                                  sha256, uploaded_by, created_at, data)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(ticket.id)
    .bind(event)
    .bind(visibility.is_internal())
    .bind(&filename)
    .bind(&content_type)
    .bind(size)
    .bind(&sha256)
    .bind(actor.user_id)
    .bind(to_db(now))
    .bind(&upload.data)
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        ticket.id,
        Some(actor.user_id),
        &EventData::AttachmentAdded {
            attachment_id: id.0,
            filename,
            size,
            internal: visibility.is_internal(),
        },
        now,
    )
    .await?;
    touch(conn, ticket.id, now).await?;
    Ok(id)
}

/// What to tell someone whose file is over the limit.
pub fn too_large_message(filename: &str, size: usize, max_bytes: usize) -> String {
    format!(
        "“{filename}” is {}; files can be at most {}.",
        human_size(size as u64),
        human_size(max_bytes as u64)
    )
}

const COLUMNS: &str =
    "a.id, a.ticket_id, a.event_id, a.internal, a.filename, a.content_type, a.size,
        a.sha256, a.uploaded_by, u.display_name as uploader_name, a.created_at";

/// The ticket's files, oldest first, without their bytes; internal ones only when `internal`.
pub async fn list(
    conn: &mut PgConnection,
    ticket: TicketId,
    internal: bool,
) -> Result<Vec<Attachment>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from attachments a left join users u on u.id = a.uploaded_by
         where a.ticket_id = $1 and ($2 or not a.internal)
         order by a.created_at, a.id"
    )))
    .bind(ticket)
    .bind(internal)
    .fetch_all(conn)
    .await?)
}

/// A file of `ticket` (which the actor can see) with its bytes; `NotFound` when it is not
/// this ticket's, or internal and the actor may not see internal data.
pub async fn open(
    conn: &mut PgConnection,
    actor: &Actor,
    ticket: &Ticket,
    id: AttachmentId,
) -> Result<(Attachment, Vec<u8>)> {
    let internal =
        policy::decide(actor, Action::SeeInternal, Target::Ticket(&ticket.facts())).allowed();
    let stored: Option<Stored> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS}, a.data from attachments a left join users u on u.id = a.uploaded_by
         where a.id = $1 and a.ticket_id = $2 and ($3 or not a.internal)"
    )))
    .bind(id)
    .bind(ticket.id)
    .bind(internal)
    .fetch_optional(conn)
    .await?;
    stored.map(|s| (s.meta, s.data)).ok_or(Error::NotFound)
}

#[derive(FromRow)]
struct Stored {
    #[sqlx(flatten)]
    meta: Attachment,
    data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_folders_controls_and_dangerous_characters() {
        let cases = [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\rita\\Desktop\\scan 1.png", "scan 1.png"),
            ("evil\r\nSet-Cookie: x.txt", "evilSet-Cookie_ x.txt"),
            ("a\u{0}b.txt", "ab.txt"),
            ("invoice\u{202e}fdp.exe", "invoicefdp.exe"),
            ("  .hidden  ", "hidden"),
            ("what?*<>|\".txt", "what______.txt"),
            ("", "attachment"),
            ("/", "attachment"),
            ("...", "attachment"),
            ("Überweisung – März.pdf", "Überweisung – März.pdf"),
        ];
        for (raw, expected) in cases {
            assert_eq!(sanitize_filename(raw), expected, "{raw:?}");
        }
        let long = format!("{}.xlsx", "a".repeat(300));
        let short = sanitize_filename(&long);
        assert_eq!(short.chars().count(), FILENAME_MAX);
        assert!(short.ends_with(".xlsx"));
    }

    #[test]
    fn content_types_are_well_formed_and_images_must_be_what_they_claim() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        assert_eq!(content_type_for("image/png", png), "image/png");
        assert_eq!(
            content_type_for("image/png", b"<script>"),
            "application/octet-stream"
        );
        assert_eq!(
            content_type_for("IMAGE/JPEG", b"\xff\xd8\xff\xe0"),
            "image/jpeg"
        );
        assert_eq!(content_type_for("image/svg+xml", b"<svg>"), "image/svg+xml");
        assert_eq!(
            content_type_for("text/plain; charset=utf-8", b"hi"),
            "text/plain"
        );
        for bad in [
            "",
            "text",
            "text/",
            "te xt/plain",
            "text/html\r\nX: y",
            "a/b/c",
        ] {
            assert_eq!(
                content_type_for(bad, b""),
                "application/octet-stream",
                "{bad:?}"
            );
        }
        assert_eq!(
            content_type_for("image/webp", b"RIFF\0\0\0\0WEBPVP8 "),
            "image/webp"
        );
        assert_eq!(content_type_for("image/gif", b"GIF89a..."), "image/gif");
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(1024), "1 KB");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(25 * 1024 * 1024), "25 MB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3 GB");
    }
}
