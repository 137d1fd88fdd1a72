//! Reading a raw message: who sent it, what it answers, what it says and carries, and whether
//! it is an automatic message (RFC 3834) or a delivery report. Pure: bytes in, values out.

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use crate::core::ids::TicketKey;

/// An attachment or inline image found in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
    /// Shown inside the HTML body (`Content-ID`), not attached by the sender.
    pub inline: bool,
}

/// What an incoming message says, as the ingest path needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// `From`, lower-cased; `None` when missing or unusable.
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub subject: String,
    /// Without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To` first, then `References` newest first: the order threading tries them.
    pub answers: Vec<(String, &'static str)>,
    /// The text as written, quoted history and signature included.
    pub text: String,
    pub files: Vec<File>,
    /// Why it is an automatic message, if it is one.
    pub auto: Option<String>,
    /// A delivery status notification.
    pub report: Option<Report>,
}

/// What a delivery status notification says about the message it returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Message-IDs of the returned message (from the embedded headers).
    pub original_ids: Vec<String>,
    pub recipient: Option<String>,
    /// `Status:` like `5.1.1`.
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

impl Report {
    /// A permanent failure (`5.x.x`); `4.x.x` is only a delay.
    pub fn permanent(&self) -> bool {
        self.status.as_deref().is_some_and(|s| s.starts_with('5'))
    }
}

/// Just the Message-ID, from the headers alone (for the redelivery check before storing).
pub fn message_id_of(raw: &[u8]) -> Option<String> {
    let message = MessageParser::default().parse_headers(raw)?;
    clean_id(message.message_id()?)
}

/// `<a@b>` or `a@b` → `a@b`; nothing usable → `None`. Kept to 500 characters.
fn clean_id(raw: &str) -> Option<String> {
    let id = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty() && id.len() <= 500 && !id.chars().any(char::is_whitespace))
        .then(|| id.to_owned())
}

/// Reads the message; `None` when the bytes are not a message at all.
pub fn parse(raw: &[u8]) -> Option<Parsed> {
    let message = MessageParser::default().parse(raw)?;
    if message.parts.is_empty() {
        return None;
    }
    let from = message.from().and_then(|a| a.first());
    let from_address = from
        .and_then(|a| a.address.as_deref())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| a.contains('@') && !a.chars().any(char::is_whitespace));
    let from_name = from
        .and_then(|a| a.name.as_deref())
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let mut answers: Vec<(String, &'static str)> = Vec::new();
    for id in message.in_reply_to().as_text_list().unwrap_or_default() {
        if let Some(id) = clean_id(id) {
            answers.push((id, "In-Reply-To"));
        }
    }
    for id in message
        .references()
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .rev()
    {
        if let Some(id) = clean_id(id)
            && !answers.iter().any(|(known, _)| *known == id)
        {
            answers.push((id, "References"));
        }
    }
    answers.truncate(100);
    let report = report(&message, raw);
    Some(Parsed {
        auto: automatic(&message, from_address.as_deref()),
        from: from_address,
        from_name,
        subject: message.subject().unwrap_or("").trim().to_owned(),
        message_id: message.message_id().and_then(clean_id),
        answers,
        text: body_text(&message),
        files: files(&message),
        report,
    })
}

fn header<'a>(message: &'a Message<'a>, name: &'a str) -> Option<&'a str> {
    message.header_raw(name).map(str::trim)
}

/// Why a message is automatic (RFC 3834 and common practice), or `None` for a person's mail.
fn automatic(message: &Message<'_>, from: Option<&str>) -> Option<String> {
    if let Some(value) = header(message, "Auto-Submitted")
        && !value.eq_ignore_ascii_case("no")
    {
        return Some(format!("Auto-Submitted: {}", one_line(value)));
    }
    if let Some(value) = header(message, "Precedence") {
        let value = value.to_ascii_lowercase();
        if ["bulk", "junk", "list", "auto_reply"].contains(&value.as_str()) {
            return Some(format!("Precedence: {value}"));
        }
    }
    for name in [
        "List-Id",
        "List-Unsubscribe",
        "X-Autoreply",
        "X-Autorespond",
        "X-Auto-Response-Suppress",
    ] {
        if let Some(value) = header(message, name)
            && (name != "X-Auto-Response-Suppress" || is_auto_suppress_reply(value))
        {
            return Some(format!("{name}: {}", one_line(value)));
        }
    }
    if let Some(path) = header(message, "Return-Path")
        && path.trim_matches(['<', '>', ' ']).is_empty()
    {
        return Some("null sender (Return-Path: <>)".into());
    }
    if let Some(from) = from {
        let local = from.split('@').next().unwrap_or("");
        if [
            "mailer-daemon",
            "postmaster",
            "noreply",
            "no-reply",
            "donotreply",
        ]
        .contains(&local)
        {
            return Some(format!("sender is {local}"));
        }
    }
    None
}

/// Exchange marks its own out-of-office replies with `X-Auto-Response-Suppress: All` or `OOF`;
/// people's mail from Outlook often carries `DR, RN, NRN` too, which says nothing.
fn is_auto_suppress_reply(value: &str) -> bool {
    value.split(',').any(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "all" | "oof" | "autoreply"
        )
    })
}

fn one_line(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A delivery status notification: `multipart/report; report-type=delivery-status`, or a
/// message with a `message/delivery-status` part.
fn report(message: &Message<'_>, raw: &[u8]) -> Option<Report> {
    let root = message.root_part();
    let is_report = root.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    }) || message.parts.iter().any(|p| {
        p.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("delivery-status"))
        })
    });
    if !is_report {
        return None;
    }
    let mut report = Report::default();
    // The status fields and the returned headers are plain lines in the body, whatever
    // part structure the reporting server chose; read them from the raw body.
    let body_start = root.offset_body as usize;
    let body = String::from_utf8_lossy(raw.get(body_start..).unwrap_or_default());
    for line in body.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "message-id" => {
                if let Some(id) = clean_id(value)
                    && !report.original_ids.contains(&id)
                {
                    report.original_ids.push(id);
                }
            }
            "final-recipient" | "original-recipient" if report.recipient.is_none() => {
                let address = value.rsplit(';').next().unwrap_or(value).trim();
                report.recipient = Some(address.trim_matches(['<', '>']).to_lowercase());
            }
            "status" if report.status.is_none() => {
                report.status = value.split_whitespace().next().map(str::to_owned);
            }
            "diagnostic-code" if report.diagnostic.is_none() => {
                report.diagnostic = Some(one_line(value).chars().take(500).collect());
            }
            _ => {}
        }
    }
    for id in message
        .in_reply_to()
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|id| clean_id(id))
    {
        if !report.original_ids.contains(&id) {
            report.original_ids.push(id);
        }
    }
    // The report's own id is not the original's.
    if let Some(own) = message.message_id().and_then(clean_id) {
        report.original_ids.retain(|id| *id != own);
    }
    Some(report)
}

/// The text of the message: the first text/plain body, else its HTML body as text.
fn body_text(message: &Message<'_>) -> String {
    let parts = |ids: &[u32]| -> Vec<&MessagePart<'_>> {
        ids.iter()
            .filter_map(|id| message.parts.get(*id as usize))
            .collect()
    };
    let text: Vec<String> = parts(&message.text_body)
        .into_iter()
        .filter_map(|p| match &p.body {
            PartType::Text(text) => Some(text.to_string()),
            _ => None,
        })
        .collect();
    if !text.is_empty() {
        return normalise(&text.join("\n\n"));
    }
    let html: Vec<String> = parts(&message.html_body)
        .into_iter()
        .filter_map(|p| match &p.body {
            PartType::Html(html) => Some(html_to_text(html)),
            _ => None,
        })
        .collect();
    normalise(&html.join("\n\n"))
}

/// HTML as plain text: tags, scripts and styles gone, links kept as their text. HTML that
/// is nested very deeply or has very many tags (which a stranger can send to make the
/// renderer slow) gets a plain linear tag strip instead.
pub fn html_to_text(html: &str) -> String {
    let (depth, tags) = shape(html);
    if depth > MAX_DEPTH || tags > MAX_TAGS {
        return strip_tags(html);
    }
    html2text::config::plain_no_decorate()
        .string_from_read(html.as_bytes(), 10_000)
        .unwrap_or_else(|_| strip_tags(html))
}

const MAX_DEPTH: usize = 200;
const MAX_TAGS: usize = 20_000;
const VOID: [&str; 14] = [
    "br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source", "track",
    "embed", "param",
];

/// The deepest nesting and the number of tags, estimated in one pass.
fn shape(html: &str) -> (usize, usize) {
    let (mut depth, mut deepest, mut tags) = (0usize, 0usize, 0usize);
    for piece in html.split('<').skip(1) {
        tags += 1;
        let tag = piece.split('>').next().unwrap_or("");
        if let Some(closing) = tag.strip_prefix('/') {
            if !closing.is_empty() {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() || tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        depth += 1;
        deepest = deepest.max(depth);
    }
    (deepest, tags)
}

/// Tags removed (script and style with their content), block ends as line breaks, the
/// common entities decoded. Linear in the input.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut skip_until: Option<&str> = None;
    while let Some(open) = rest.find('<') {
        if skip_until.is_none() {
            out.push_str(&rest[..open]);
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..close].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        match skip_until {
            Some(end) if tag.starts_with('/') && name == end => skip_until = None,
            Some(_) => {}
            None if name == "script" || name == "style" => {
                skip_until = Some(if name == "script" { "script" } else { "style" });
            }
            None if ["br", "p", "div", "tr", "li", "h1", "h2", "h3", "table"]
                .contains(&name.as_str()) =>
            {
                out.push('\n');
            }
            None => {}
        }
        rest = &after[close + 1..];
    }
    if skip_until.is_none() {
        out.push_str(rest);
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// CRLF → LF, no NULs or other controls but tab and newline, trailing spaces gone.
fn normalise(text: &str) -> String {
    let cleaned: String = text
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    let lines: Vec<&str> = cleaned.lines().map(str::trim_end).collect();
    lines.join("\n").trim().to_owned()
}

/// Attachments and inline images (the parts that are neither the text nor the HTML body).
fn files(message: &Message<'_>) -> Vec<File> {
    let mut found = Vec::new();
    for id in &message.attachments {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        let data = match &part.body {
            PartType::Binary(data) | PartType::InlineBinary(data) => data.to_vec(),
            PartType::Text(text) | PartType::Html(text) => text.as_bytes().to_vec(),
            PartType::Message(inner) => inner.raw_message.to_vec(),
            PartType::Multipart(_) => continue,
        };
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let inline = part.content_id().is_some()
            && !part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        let filename = part
            .attachment_name()
            .map(str::to_owned)
            .or_else(|| match &part.body {
                PartType::Message(inner) => inner.subject().map(|s| format!("{s}.eml")),
                _ => None,
            })
            .unwrap_or_else(|| default_name(&content_type, found.len() + 1));
        found.push(File {
            filename,
            content_type: content_type.to_ascii_lowercase(),
            data,
            inline,
        });
    }
    found
}

fn default_name(content_type: &str, n: usize) -> String {
    let ext = match content_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "message/rfc822" => "eml",
        "text/plain" => "txt",
        "text/html" => "html",
        _ => "bin",
    };
    format!("part-{n}.{ext}")
}

/// The first `[KEY-123]` in a subject.
pub fn subject_tag(subject: &str) -> Option<TicketKey> {
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        if let Some(key) = TicketKey::parse(&after[..close]) {
            return Some(key);
        }
        rest = &after[close..];
    }
    None
}

/// The subject without reply and forward prefixes (`Re:`, `AW:`, `Fwd:` …), for a title.
pub fn title_of(subject: &str) -> String {
    let mut title = subject.trim();
    loop {
        let lower = title.to_ascii_lowercase();
        let prefix = ["re:", "aw:", "fw:", "fwd:", "wg:", "sv:", "antw:", "réf:"]
            .iter()
            .find(|p| lower.starts_with(**p));
        match prefix {
            Some(p) => title = title[p.len()..].trim_start(),
            None => break,
        }
    }
    if title.is_empty() {
        "(no subject)".into()
    } else {
        title.to_owned()
    }
}

/// The new part of a reply: the quoted history (`On … wrote:`, Outlook's header block or
/// `-----Original Message-----`, `>` lines) and the signature (`-- `, "Sent from my …") cut.
/// Falls back to the whole text when cutting would leave nothing.
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let lower = t.to_lowercase();
        let next = lines.get(i + 1).map(|l| l.trim().to_lowercase());
        let quote_intro = (lower.starts_with("on ") && lower.ends_with("wrote:"))
            || (lower.starts_with("am ") && lower.ends_with("schrieb:"))
            || (lower.starts_with("le ") && lower.ends_with("a écrit :"))
            || (lower.starts_with("on ") && next.as_deref().is_some_and(|n| n.ends_with("wrote:")));
        let outlook = lower.starts_with("-----original message-----")
            || lower.starts_with("-----ursprüngliche nachricht-----")
            || (t.starts_with("________________") && t.chars().all(|c| c == '_'))
            || ((lower.starts_with("from:") || lower.starts_with("von:"))
                && next.as_deref().is_some_and(|n| {
                    n.starts_with("sent:") || n.starts_with("gesendet:") || n.starts_with("date:")
                }));
        let signature = *line == "-- "
            || t == "--"
            || lower.starts_with("sent from my ")
            || lower.starts_with("von meinem ")
            || lower.starts_with("get outlook for ");
        if quote_intro || outlook || signature {
            end = i;
            break;
        }
    }
    let kept: Vec<&str> = lines[..end]
        .iter()
        .copied()
        .filter(|l| !l.trim_start().starts_with('>'))
        .collect();
    let result = kept.join("\n").trim().to_owned();
    if result.is_empty() {
        text.trim().to_owned()
    } else {
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_lose_their_quoted_history_and_signature() {
        let cases = [
            (
                "Thanks, works now.\n\nOn Mon, 3 Mar 2025 at 10:00, Help <hd@x.org> wrote:\n> old",
                "Thanks, works now.",
            ),
            (
                "Yes please.\n\n________________________________\nFrom: Help Desk\nSent: Monday\n",
                "Yes please.",
            ),
            ("Done.\n-----Original Message-----\nFrom: a\n", "Done."),
            ("Fine\n-- \nRita\nAccounting", "Fine"),
            ("Ok\n\nSent from my iPhone", "Ok"),
            ("> only a quote", "> only a quote"),
            ("inline\n> quoted\nanswer", "inline\nanswer"),
        ];
        for (text, expected) in cases {
            assert_eq!(strip_quoted(text), expected, "{text:?}");
        }
    }

    #[test]
    fn the_subject_tag_is_found_anywhere_and_only_when_well_formed() {
        let key = |s: &str| subject_tag(s).map(|k| k.to_string());
        assert_eq!(key("Re: [HD-1042] Printer"), Some("HD-1042".into()));
        assert_eq!(key("[list] Re: [HD-7] x"), Some("HD-7".into()));
        assert_eq!(key("[HD-] x"), None);
        assert_eq!(key("no tag"), None);
        assert_eq!(key("[HD-12"), None);
    }

    #[test]
    fn titles_lose_reply_prefixes() {
        assert_eq!(title_of("Re: AW: Fwd: Printer"), "Printer");
        assert_eq!(title_of("  "), "(no subject)");
        assert_eq!(title_of("Reset"), "Reset");
    }

    #[test]
    fn automatic_messages_are_recognised() {
        let auto = |headers: &str| {
            let raw = format!("From: a@b.org\r\nSubject: x\r\n{headers}\r\nbody\r\n");
            parse(raw.as_bytes()).and_then(|p| p.auto)
        };
        assert!(auto("Auto-Submitted: auto-replied\r\n").is_some());
        assert!(auto("Auto-Submitted: no\r\n").is_none());
        assert!(auto("Precedence: bulk\r\n").is_some());
        assert!(auto("X-Autoreply: yes\r\n").is_some());
        assert!(auto("List-Id: <x.lists.example.org>\r\n").is_some());
        assert!(auto("Return-Path: <>\r\n").is_some());
        assert!(auto("X-Auto-Response-Suppress: DR, RN, NRN\r\n").is_none());
        assert!(auto("").is_none());
    }

    #[test]
    fn hostile_html_is_stripped_in_linear_time() {
        let deep = format!(
            "{}x &amp; y{}",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        assert_eq!(html_to_text(&deep).trim(), "x & y");
        let many = "<b>a</b>".repeat(30_000);
        assert!(html_to_text(&many).starts_with("aaa"));
        let script = "<p>Hi</p><SCRIPT>evil()</SCRIPT><style>p{}</style>there";
        assert_eq!(strip_tags(script), "\nHi\nthere");
        assert_eq!(shape("<div><p>x<br><img src=a/></p></div>"), (2, 6));
    }

    #[test]
    fn html_becomes_text_without_markup() {
        let text = html_to_text("<p>Hello <b>there</b></p><script>alert(1)</script><p>Bye</p>");
        assert!(text.contains("Hello there"), "{text}");
        assert!(text.contains("Bye"));
        assert!(!text.contains("alert"), "{text}");
        assert!(!text.contains('<'));
    }
}
