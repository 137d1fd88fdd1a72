//! Rendering one queued mail: who it is from (the project's first active mailbox, else the
//! configured sender), its Message-ID `<uuid@host>`, its place in the ticket's thread, the
//! text and HTML parts from `templates/mail/`, built with `mail-builder`. Every header made of
//! user text is one line; every body line ends in CRLF, and the finished bytes are checked.

use askama::Template;
use jiff::Timestamp;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Settings, tokens};
use crate::core::ids::{ProjectId, TicketId, UserId};
use crate::core::markdown::SafeHtml;
use crate::core::{Error, Result};

/// A rendered mail, as stored on its row.
#[derive(Debug, Clone)]
pub(super) struct Rendered {
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
    pub thread_root: Option<String>,
    pub subject: String,
    pub from_address: String,
    pub raw: Vec<u8>,
}

/// Text for a header: control characters (CR, LF, tabs…) become spaces, runs of spaces one.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every line break (CRLF, bare LF, bare CR) as CRLF.
pub fn normalise_crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// True when every CR is followed by LF and every LF preceded by CR (no bare line ends,
/// which some servers read as a line end and others do not: SMTP smuggling).
pub fn check_crlf(raw: &[u8]) -> bool {
    raw.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => raw.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && raw[i - 1] == b'\r',
        _ => true,
    })
}

#[derive(Template)]
#[template(path = "mail/message.txt")]
struct TextPart<'a> {
    name: &'a str,
    intro: &'a str,
    body: Option<&'a str>,
    internal: bool,
    actions: &'a [(&'static str, String)],
    link: Option<&'a str>,
    reply_hint: &'a str,
    signature: &'a str,
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlPart<'a> {
    subject: &'a str,
    name: &'a str,
    intro: &'a str,
    body_html: Option<SafeHtml>,
    internal: bool,
    actions: &'a [(&'static str, String)],
    link: Option<&'a str>,
    reply_hint: &'a str,
    signature: &'a str,
}

#[derive(sqlx::FromRow)]
struct Row {
    kind: String,
    ticket_id: Option<TicketId>,
    user_id: Option<UserId>,
    to_address: String,
    event_id: Option<i64>,
    answers: Option<String>,
    data: sqlx::types::Json<Value>,
    internal: bool,
    to_name: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    key: String,
    title: String,
    project_id: ProjectId,
}

/// Renders the queued mail `id` (approval mails get their single-use token here).
pub(super) async fn render(
    conn: &mut PgConnection,
    settings: &Settings,
    id: Uuid,
    now: Timestamp,
) -> Result<Rendered> {
    let row: Row = sqlx::query_as(
        "select m.kind, m.ticket_id, m.user_id, m.to_address, m.event_id, m.answers, m.data,
                m.internal, u.display_name as to_name
         from mail_out m left join users u on u.id = m.user_id where m.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound)?;
    let ticket: Option<TicketRow> = match row.ticket_id {
        Some(t) => Some(
            sqlx::query_as(
                "select p.key || '-' || t.number as key, t.title, t.project_id
                 from tickets t join projects p on p.id = t.project_id where t.id = $1",
            )
            .bind(t)
            .fetch_one(&mut *conn)
            .await?,
        ),
        None => None,
    };
    // The sender: the project's first active mailbox, any active mailbox, the default.
    let mailbox: Option<(String, String, String)> = sqlx::query_as(
        "select address, from_name, signature from mailboxes where active
         order by (project_id = $1) desc nulls last, created_at, address limit 1",
    )
    .bind(ticket.as_ref().map(|t| t.project_id))
    .fetch_optional(&mut *conn)
    .await?;
    let (from_address, from_name, signature) = match mailbox {
        Some(m) => m,
        None => match &settings.default_from {
            Some(address) => (address.clone(), "Unitrack".to_owned(), String::new()),
            None => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "no sender: add an active mailbox or set mail_from"
                )));
            }
        },
    };
    let message_id = format!("{id}@{}", settings.host);

    // The thread: the mail that opened the ticket, else a stable root id for the ticket.
    let (thread_root, latest_in) = match row.ticket_id {
        Some(t) => {
            let (first, latest): (Option<String>, Option<String>) = sqlx::query_as(
                "select (select message_id from mail_in where ticket_id = $1 and outcome = 'new'
                         and message_id is not null order by id limit 1),
                        (select message_id from mail_in where ticket_id = $1
                         and message_id is not null order by id desc limit 1)",
            )
            .bind(t)
            .fetch_one(&mut *conn)
            .await?;
            (
                Some(first.unwrap_or_else(|| format!("ticket-{t}@{}", settings.host))),
                latest,
            )
        }
        None => (None, None),
    };
    let in_reply_to = row
        .answers
        .clone()
        .or(latest_in)
        .or_else(|| thread_root.clone());
    let mut references: Vec<String> = thread_root.iter().cloned().collect();
    if let Some(parent) = &in_reply_to
        && !references.contains(parent)
    {
        references.push(parent.clone());
    }

    // The event it tells of: who did it and, for comments, the text.
    let (body_md, body_html, actor_name): (Option<String>, Option<String>, Option<String>) =
        match row.event_id {
            Some(e) => sqlx::query_as(
                "select e.data->>'body_md', e.data->>'body_html', a.display_name
                 from ticket_events e left join users a on a.id = e.actor_id where e.id = $1",
            )
            .bind(e)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or((None, None, None)),
            None => (None, None, None),
        };
    let actor = actor_name.unwrap_or_else(|| "Unitrack".into());
    let text = row.data.0.get("text").and_then(Value::as_str).unwrap_or("");
    let name = one_line(row.to_name.as_deref().unwrap_or(&row.to_address));
    let key = ticket.as_ref().map(|t| t.key.clone()).unwrap_or_default();
    let title = ticket
        .as_ref()
        .map(|t| one_line(&t.title))
        .unwrap_or_default();
    let link = ticket
        .as_ref()
        .map(|t| format!("{}/tickets/{}", settings.base_url, t.key));
    let mut actions: Vec<(&'static str, String)> = Vec::new();
    let mut body = None;
    let reply_hint = if ticket.is_some() {
        format!("Reply to this mail to add to {key}; keep [{key}] in the subject.")
    } else {
        String::new()
    };
    let (subject, intro) = match row.kind.as_str() {
        "ack" => (
            format!("[{key}] Received: {title}"),
            format!("We received your message and opened ticket {key}: {title}."),
        ),
        "reply" | "internal_note" => {
            body = body_md.as_deref().map(normalise_crlf);
            let what = if row.internal {
                "added an internal note on"
            } else {
                "replied on"
            };
            (
                format!("[{key}] {title}"),
                one_line(&format!("{actor} {what} {key}: {title}")),
            )
        }
        "approval" => {
            if let (Some(t), Some(user)) = (row.ticket_id, row.user_id)
                && let Some(token) = tokens::create(conn, t, user, id, now).await?
            {
                let base = format!("{}/approval-links/{token}", settings.base_url);
                actions.push(("Approve", format!("{base}?decision=approve")));
                actions.push(("Reject", format!("{base}?decision=reject")));
            }
            (
                format!("[{key}] Approval requested: {title}"),
                one_line(&format!("{actor} {text} on {key}: {title}.")),
            )
        }
        "set_password" => {
            if let Some(url) = row.data.0.get("link").and_then(Value::as_str) {
                actions.push(("Set your password", url.to_owned()));
            }
            (
                "Set your Unitrack password".to_owned(),
                "A link to set your password was made for you. It works once, for 72 hours."
                    .to_owned(),
            )
        }
        _ => (
            format!("[{key}] {title}"),
            one_line(&format!("{actor} {text} on {key}: {title}.")),
        ),
    };
    let subject = one_line(&subject);
    let text_part = TextPart {
        name: &name,
        intro: &intro,
        body: body.as_deref(),
        internal: row.internal,
        actions: &actions,
        link: link.as_deref(),
        reply_hint: &reply_hint,
        signature: &signature,
    }
    .render()
    .map_err(|e| Error::Internal(e.into()))?;
    let html_part = HtmlPart {
        subject: &subject,
        name: &name,
        intro: &intro,
        body_html: body.as_ref().and(body_html).map(SafeHtml::from_stored),
        internal: row.internal,
        actions: &actions,
        link: link.as_deref(),
        reply_hint: &reply_hint,
        signature: &signature,
    }
    .render()
    .map_err(|e| Error::Internal(e.into()))?;

    let from_name = one_line(&from_name);
    let from: Address<'_> = if from_name.is_empty() {
        Address::new_address(None::<&str>, from_address.clone())
    } else {
        Address::new_address(Some(from_name), from_address.clone())
    };
    let to_name = one_line(row.to_name.as_deref().unwrap_or(""));
    let to: Address<'_> = if to_name.is_empty() {
        Address::new_address(None::<&str>, one_line(&row.to_address))
    } else {
        Address::new_address(Some(to_name), one_line(&row.to_address))
    };
    let mut builder = MessageBuilder::new()
        .from(from)
        .to(to)
        .subject(subject.clone())
        .message_id(message_id.clone())
        .date(Date::new(now.as_second()))
        .header(
            "Auto-Submitted",
            Raw::new(if row.kind == "ack" {
                "auto-replied"
            } else {
                "auto-generated"
            }),
        )
        .header("X-Loop", Raw::new(one_line(&from_address)))
        .header("X-Auto-Response-Suppress", Raw::new("All"));
    if let Some(parent) = &in_reply_to {
        builder = builder.in_reply_to(MessageId::new(parent.clone()));
    }
    if !references.is_empty() {
        builder = builder.references(MessageId::new_list(references.iter().cloned()));
    }
    let raw = builder
        .text_body(normalise_crlf(&text_part))
        .html_body(normalise_crlf(&html_part))
        .write_to_vec()
        .map_err(|e| Error::Internal(e.into()))?;
    if !check_crlf(&raw) {
        return Err(Error::Internal(anyhow::anyhow!(
            "rendered mail {id} has a bare CR or LF; not sent"
        )));
    }
    Ok(Rendered {
        message_id,
        in_reply_to,
        references: (!references.is_empty()).then(|| references.join(" ")),
        thread_root,
        subject,
        from_address,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_one_line() {
        assert_eq!(
            one_line("Printer\r\nBcc: x@evil.example\tdown "),
            "Printer Bcc: x@evil.example down"
        );
    }

    #[test]
    fn line_ends_become_crlf_and_bare_ones_are_caught() {
        let text = normalise_crlf("a\nb\r\nc\rd");
        assert_eq!(text, "a\r\nb\r\nc\r\nd");
        assert!(check_crlf(text.as_bytes()));
        assert!(!check_crlf(b"a\nb"));
        assert!(!check_crlf(b"a\rb"));
        assert!(!check_crlf(b"a\r"));
    }
}
