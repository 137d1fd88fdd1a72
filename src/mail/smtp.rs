//! The SMTP listener: a small receive-only ESMTP server (RFC 5321 with SIZE, 8BITMIME,
//! PIPELINING, ENHANCEDSTATUSCODES) in front of the one ingest path. It takes mail only for
//! the active mailboxes (every other recipient is refused at RCPT: never a relay), refuses
//! what is over `mail_max_bytes` (552, also when announced with `SIZE=`), and answers 451 when
//! the database fails so the sending MTA keeps the message and retries. No TLS and no AUTH:
//! it belongs behind the organisation's MTA or on localhost (see `docs/mail.md`).
//!
//! The protocol parts (`parse`, `DataReader`) are pure and tested below; `session` does the
//! I/O with a timeout on every read, `serve` accepts up to `max_connections` at once.
//!
//! Not `mailin`: its parser refuses `MAIL FROM:<>` (every bounce) and any ESMTP parameter
//! (`SIZE=`, which MTAs send once SIZE is advertised), its EHLO cannot advertise SIZE, and
//! its handler is synchronous while the recipient check and the ingest are database calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{Limits, Mailbox, Outcome, Source, find_by_address, ingest};
use crate::core::time::Clock;

/// How the listener behaves (from the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Named in the greeting and the EHLO answer.
    pub hostname: String,
    pub limits: Limits,
    pub max_connections: usize,
    /// Longest wait for one command or one line of data.
    pub timeout: Duration,
}

/// Longest command line (RFC 5321 says 512 with CRLF; extensions add to it).
const MAX_COMMAND: usize = 4096;
/// DATA is read in pieces of at most this much (a line may be longer).
const DATA_CHUNK: usize = 64 * 1024;
/// Recipients of one message (RFC 5321 asks servers to take at least 100).
const MAX_RECIPIENTS: usize = 100;
/// Errors in a row before the connection is closed.
const MAX_ERRORS: u32 = 20;
/// Time sessions get to finish when the server stops.
const DRAIN: Duration = Duration::from_secs(10);

/// Accepts connections until `stop` turns true, then lets running sessions finish (at most
/// ten seconds) and returns.
pub async fn serve(
    listener: TcpListener,
    pool: PgPool,
    settings: Settings,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let mut sessions = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            changed = stop.changed() => {
                // The sender is gone: nobody can stop us any more, so stop now.
                if changed.is_err() {
                    break;
                }
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (pool, settings, clock, stop) =
                            (pool.clone(), settings.clone(), clock.clone(), stop.clone());
                        sessions.spawn(async move {
                            let _permit = permit;
                            // Replies are whole lines already: send each at once.
                            let _ = stream.set_nodelay(true);
                            if let Err(e) = session(stream, peer, &pool, &settings, clock.as_ref(), stop).await {
                                tracing::debug!(%peer, error = %e, "smtp session ended");
                            }
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "smtp: too many connections");
                        sessions.spawn(async move {
                            let mut stream = stream;
                            let busy = b"421 4.3.2 Too many connections, try again later\r\n";
                            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(busy)).await;
                        });
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "smtp accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(left = sessions.len(), "smtp sessions cut off at shutdown");
        sessions.shutdown().await;
    }
}

/// One client, from greeting to QUIT (or timeout, or shutdown).
pub async fn session<S>(
    stream: S,
    peer: SocketAddr,
    pool: &PgPool,
    settings: &Settings,
    clock: &dyn Clock,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    let host = &settings.hostname;
    let max = settings.limits.max_bytes;
    reply(&mut write, &format!("220 {host} ESMTP Unitrack")).await?;
    let mut hello = false;
    let mut from: Option<String> = None;
    let mut to: Vec<Mailbox> = Vec::new();
    let mut errors = 0u32;
    let mut line = Vec::new();
    loop {
        line.clear();
        let got = tokio::select! {
            got = tokio::time::timeout(settings.timeout, read_line(&mut read, &mut line, MAX_COMMAND)) => got,
            _ = stop.changed() => {
                return reply(&mut write, "421 4.3.2 Shutting down, try again later").await;
            }
        };
        let command = match got {
            Err(_) => return reply(&mut write, "421 4.4.2 Timeout, closing").await,
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Read::Eof)) => return Ok(()),
            Ok(Ok(Read::Partial)) => {
                skip_line(&mut read, settings.timeout).await?;
                Command::Invalid("Line too long")
            }
            Ok(Ok(Read::Line)) => parse(&line),
        };
        let answer: String = match command {
            Command::Hello { extended, domain } => {
                hello = true;
                from = None;
                to.clear();
                if extended {
                    format!(
                        "250-{host} greets {domain}\r\n250-SIZE {max}\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES"
                    )
                } else {
                    format!("250 {host}")
                }
            }
            Command::Mail { .. } if !hello => "503 5.5.1 Say EHLO first".into(),
            Command::Mail { .. } if from.is_some() => "503 5.5.1 Already in a transaction".into(),
            Command::Mail {
                size: Some(size), ..
            } if size > max as u64 => {
                format!("552 5.3.4 Message too big: at most {max} bytes")
            }
            Command::Mail { from: sender, .. } => {
                from = Some(sender);
                "250 2.1.0 OK".into()
            }
            Command::Rcpt { .. } if from.is_none() => "503 5.5.1 Send MAIL first".into(),
            Command::Rcpt { .. } if to.len() >= MAX_RECIPIENTS => {
                "452 4.5.3 Too many recipients".into()
            }
            Command::Rcpt { to: address } => match recipient(pool, &address).await {
                Ok(Some(mailbox)) => {
                    if !to.iter().any(|m| m.id == mailbox.id) {
                        to.push(mailbox);
                    }
                    "250 2.1.5 OK".into()
                }
                Ok(None) => {
                    tracing::info!(%peer, rcpt = %address, "smtp: recipient refused");
                    "550 5.1.1 No such mailbox here".into()
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "smtp: recipient lookup failed");
                    "451 4.3.0 Temporary failure, try again later".into()
                }
            },
            Command::Data if from.is_none() => "503 5.5.1 Send MAIL first".into(),
            Command::Data if to.is_empty() => "554 5.5.1 No valid recipients".into(),
            Command::Data => {
                reply(&mut write, "354 End data with <CR><LF>.<CR><LF>").await?;
                let data = read_data(&mut read, settings.timeout, max).await?;
                let mailboxes = std::mem::take(&mut to);
                from = None;
                match data {
                    None => return reply(&mut write, "421 4.4.2 Timeout, closing").await,
                    Some(Data::TooBig) => format!("552 5.3.4 Message too big: at most {max} bytes"),
                    Some(Data::Message(raw)) => {
                        deliver(pool, &mailboxes, &raw, settings.limits, clock, peer).await
                    }
                }
            }
            Command::Rset => {
                from = None;
                to.clear();
                "250 2.0.0 OK".into()
            }
            Command::Noop => "250 2.0.0 OK".into(),
            Command::Vrfy => "252 2.5.0 Send some mail, I'll try my best".into(),
            Command::Quit => {
                return reply(&mut write, &format!("221 2.0.0 {host} closing")).await;
            }
            Command::StartTls => "502 5.5.1 STARTTLS not offered here".into(),
            Command::Unknown => "500 5.5.2 Command not recognised".into(),
            Command::Invalid(why) => format!("501 5.5.4 {why}"),
        };
        if answer.starts_with(['4', '5']) {
            errors += 1;
            if errors >= MAX_ERRORS {
                reply(&mut write, &answer).await?;
                return reply(&mut write, "421 4.7.0 Too many errors, closing").await;
            }
        } else {
            errors = 0;
        }
        reply(&mut write, &answer).await?;
    }
}

async fn recipient(pool: &PgPool, address: &str) -> crate::core::Result<Option<Mailbox>> {
    let mut conn = pool.acquire().await?;
    find_by_address(&mut conn, address).await
}

/// Ingests the message once per mailbox; any database failure makes the whole message
/// temporary (451): the client sends it again and what was already taken is a duplicate.
async fn deliver(
    pool: &PgPool,
    mailboxes: &[Mailbox],
    raw: &[u8],
    limits: Limits,
    clock: &dyn Clock,
    peer: SocketAddr,
) -> String {
    let mut mails = Vec::new();
    for mailbox in mailboxes {
        match ingest(pool, mailbox, raw, Source::Smtp, limits, clock.now()).await {
            Ok(outcome) => {
                tracing::info!(%peer, mailbox = %mailbox.address, %outcome, "smtp: message taken");
                if !matches!(outcome, Outcome::Duplicate { .. }) {
                    mails.push(outcome.mail().to_string());
                }
            }
            Err(e) => {
                tracing::warn!(%peer, mailbox = %mailbox.address, error = %e, "smtp: ingest failed");
                return "451 4.3.0 Temporary failure, try again later".into();
            }
        }
    }
    if mails.is_empty() {
        "250 2.0.0 OK (delivered before)".into()
    } else {
        format!("250 2.0.0 OK (mail {})", mails.join(", "))
    }
}

/// One reply in one write: two small writes would wait for the client's delayed ACK.
async fn reply<W: AsyncWrite + Unpin>(write: &mut W, text: &str) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(text.len() + 2);
    line.extend_from_slice(text.as_bytes());
    line.extend_from_slice(b"\r\n");
    write.write_all(&line).await?;
    write.flush().await
}

/// What `read_line` got.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// A whole line, with its `\n`.
    Line,
    /// `max` bytes without a `\n`: more of the line follows.
    Partial,
    /// The connection ended (a half line before it is dropped).
    Eof,
}

/// Appends bytes to `buf` up to and including the next `\n`, at most `max` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(
    read: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Read> {
    loop {
        let available = read.fill_buf().await?;
        if available.is_empty() {
            return Ok(Read::Eof);
        }
        let room = max.saturating_sub(buf.len()).min(available.len());
        let window = available.get(..room).unwrap_or(available);
        if let Some(at) = window.iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(window.get(..=at).unwrap_or(window));
            read.consume(at + 1);
            return Ok(Read::Line);
        }
        let taken = window.len();
        buf.extend_from_slice(window);
        read.consume(taken);
        if buf.len() >= max {
            return Ok(Read::Partial);
        }
    }
}

/// Drops the rest of an overlong command line.
async fn skip_line<R: AsyncBufRead + Unpin>(
    read: &mut R,
    timeout: Duration,
) -> std::io::Result<()> {
    let mut junk = Vec::new();
    loop {
        junk.clear();
        match tokio::time::timeout(timeout, read_line(read, &mut junk, MAX_COMMAND)).await {
            Ok(Ok(Read::Partial)) => {}
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

enum Data {
    Message(Vec<u8>),
    TooBig,
}

/// Reads DATA up to the final `.`; `None` on timeout or a closed connection.
async fn read_data<R: AsyncBufRead + Unpin>(
    read: &mut R,
    timeout: Duration,
    max: usize,
) -> std::io::Result<Option<Data>> {
    let mut reader = DataReader::new(max);
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        let got = match tokio::time::timeout(timeout, read_line(read, &mut chunk, DATA_CHUNK)).await
        {
            Err(_) => return Ok(None),
            Ok(got) => got?,
        };
        match got {
            Read::Eof => return Ok(None),
            Read::Line | Read::Partial => {
                if reader.push(&chunk) {
                    return Ok(Some(reader.finish()));
                }
            }
        }
    }
}

/// The DATA part of SMTP without I/O: dot-unstuffing, the end marker and the size limit.
/// Lines end with CRLF; the message ends only at CRLF `.` CRLF. A bare LF is kept as part of
/// the text and never starts a line, so `<LF>.<LF>` or `<LF>.<CR><LF>` cannot end a message
/// early and smuggle a second one in.
struct DataReader {
    message: Vec<u8>,
    max: usize,
    too_big: bool,
    at_line_start: bool,
}

impl DataReader {
    fn new(max: usize) -> Self {
        Self {
            message: Vec::new(),
            max,
            too_big: false,
            at_line_start: true,
        }
    }

    /// Takes the next piece (a whole line or part of a long one); true at the end marker.
    fn push(&mut self, chunk: &[u8]) -> bool {
        if self.at_line_start && chunk == b".\r\n" {
            return true;
        }
        let text = match chunk.strip_prefix(b".") {
            Some(rest) if self.at_line_start => rest,
            _ => chunk,
        };
        if !self.too_big {
            if self.message.len() + text.len() > self.max {
                self.too_big = true;
                self.message = Vec::new();
            } else {
                self.message.extend_from_slice(text);
            }
        }
        self.at_line_start = chunk.ends_with(b"\r\n");
        false
    }

    fn finish(self) -> Data {
        if self.too_big {
            Data::TooBig
        } else {
            Data::Message(self.message)
        }
    }
}

/// One client command.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Hello { extended: bool, domain: String },
    Mail { from: String, size: Option<u64> },
    Rcpt { to: String },
    Data,
    Rset,
    Noop,
    Vrfy,
    Quit,
    StartTls,
    Unknown,
    Invalid(&'static str),
}

/// Parses one command line (CRLF or a bare LF at the end; any bytes).
fn parse(line: &[u8]) -> Command {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\r', '\n']);
    let (verb, rest) = match text.split_once(' ') {
        Some((verb, rest)) => (verb, rest.trim()),
        None => (text, ""),
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" | "HELO" if rest.is_empty() => Command::Invalid("Say who you are"),
        "EHLO" | "HELO" => Command::Hello {
            extended: verb.eq_ignore_ascii_case("EHLO"),
            domain: rest.chars().take(255).collect(),
        },
        "MAIL" => match path_after(rest, "FROM:") {
            Some((from, params)) => match size_param(params) {
                Ok(size) => Command::Mail { from, size },
                Err(why) => Command::Invalid(why),
            },
            None => Command::Invalid("Syntax: MAIL FROM:<address>"),
        },
        "RCPT" => match path_after(rest, "TO:") {
            Some((to, _)) if !to.is_empty() => Command::Rcpt { to },
            _ => Command::Invalid("Syntax: RCPT TO:<address>"),
        },
        "DATA" => Command::Data,
        "RSET" => Command::Rset,
        "NOOP" => Command::Noop,
        "VRFY" => Command::Vrfy,
        "QUIT" => Command::Quit,
        "STARTTLS" => Command::StartTls,
        _ => Command::Unknown,
    }
}

/// `FROM:<a@b> SIZE=12` → (`a@b`, `SIZE=12`). Source routes (`<@x,@y:a@b>`) are dropped;
/// `<>` is the empty path of bounces.
fn path_after<'a>(rest: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = rest.get(keyword.len()..)?.trim_start();
    let (path, params) = match rest.strip_prefix('<') {
        Some(inner) => {
            let end = inner.find('>')?;
            (inner.get(..end)?, inner.get(end + 1..)?)
        }
        None => match rest.split_once(' ') {
            Some((path, params)) => (path, params),
            None => (rest, ""),
        },
    };
    let path = match path.rsplit_once(':') {
        Some((route, address)) if route.starts_with('@') => address,
        _ => path,
    };
    if path.contains(char::is_whitespace) {
        return None;
    }
    Some((path.to_owned(), params.trim()))
}

/// The `SIZE=` parameter of MAIL, if given. Other parameters (BODY=, SMTPUTF8) are accepted.
fn size_param(params: &str) -> Result<Option<u64>, &'static str> {
    for param in params.split_whitespace() {
        if let Some((key, value)) = param.split_once('=')
            && key.eq_ignore_ascii_case("SIZE")
        {
            return value
                .parse()
                .map(Some)
                .map_err(|_| "SIZE must be a number of bytes");
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_in_any_case_with_crlf_or_bare_lf() {
        assert_eq!(
            parse(b"ehlo client.example\r\n"),
            Command::Hello {
                extended: true,
                domain: "client.example".into()
            }
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@b.example> SIZE=1200 BODY=8BITMIME\n"),
            Command::Mail {
                from: "a@b.example".into(),
                size: Some(1200)
            }
        );
        assert_eq!(
            parse(b"MAIL FROM:<>\r\n"),
            Command::Mail {
                from: String::new(),
                size: None
            }
        );
        assert_eq!(
            parse(b"rcpt to: <@relay.example:Help@Desk.example> NOTIFY=NEVER\r\n"),
            Command::Rcpt {
                to: "Help@Desk.example".into()
            }
        );
        assert_eq!(
            parse(b"RCPT TO:<>\r\n"),
            Command::Invalid("Syntax: RCPT TO:<address>")
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@b> SIZE=x\r\n"),
            Command::Invalid("SIZE must be a number of bytes")
        );
        assert_eq!(
            parse(b"MAIL TO:<a@b>\r\n"),
            Command::Invalid("Syntax: MAIL FROM:<address>")
        );
        assert_eq!(parse(b"\xff\xfe\x00\r\n"), Command::Unknown);
        assert_eq!(parse(b"DATA\r\n"), Command::Data);
        assert_eq!(parse(b"quit\n"), Command::Quit);
    }

    #[test]
    fn no_byte_sequence_panics_the_parser() {
        let mut seed = 7u64;
        for len in 0..2000 {
            let line: Vec<u8> = (0..len % 97)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Mostly protocol characters, so the deep branches are reached too.
                    let pool = b"MAILFROM:RCPTTO<>@ =SIZE\r\n.\xff\xc3";
                    pool[(seed >> 33) as usize % pool.len()]
                })
                .collect();
            let _ = parse(&line);
            let mut data = DataReader::new(64);
            data.push(&line);
        }
    }

    fn read_all(pieces: &[&[u8]], max: usize) -> (bool, Option<Vec<u8>>) {
        let mut reader = DataReader::new(max);
        for piece in pieces {
            if reader.push(piece) {
                return (
                    true,
                    match reader.finish() {
                        Data::Message(m) => Some(m),
                        Data::TooBig => None,
                    },
                );
            }
        }
        (false, None)
    }

    #[test]
    fn data_ends_only_at_crlf_dot_crlf_and_is_unstuffed() {
        let (ended, message) = read_all(
            &[b"Subject: x\r\n", b"\r\n", b"..leading dot\r\n", b".\r\n"],
            1000,
        );
        assert!(ended);
        assert_eq!(message.unwrap(), b"Subject: x\r\n\r\n.leading dot\r\n");
        // A bare LF never starts a line: no smuggled second message.
        let (ended, _) = read_all(
            &[b"a\n", b".\n", b"b\n", b".\r\n", b"MAIL FROM:<x@y>\r\n"],
            1000,
        );
        assert!(!ended);
        // A long line arriving in pieces: a "." at a piece boundary is text.
        let (ended, message) = read_all(&[b"aaaa", b".\r\n", b".\r\n"], 1000);
        assert!(ended);
        assert_eq!(message.unwrap(), b"aaaa.\r\n");
    }

    #[test]
    fn data_over_the_limit_is_dropped_but_read_to_the_end() {
        let (ended, message) = read_all(&[b"0123456789\r\n", b"0123456789\r\n", b".\r\n"], 20);
        assert!(ended);
        assert!(message.is_none());
    }
}
