//! The SMTP listener, driven by the real `swaks` client (and a raw socket where swaks cannot
//! say it): accepted mail opens tickets, unknown recipients are refused at RCPT, SIZE is
//! advertised and enforced, replies thread, one message to two mailboxes lands in both, and a
//! database failure is a temporary 4xx.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use unitrack::mail::{self, Limits, MailboxInput, smtp};

use crate::common::{NowTs, TestApp};

const MAX: usize = 64 * 1024;

struct Listener {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    async fn start(app: &TestApp) -> Self {
        Self::with_pool(app, app.pool.clone()).await
    }

    async fn with_pool(app: &TestApp, pool: sqlx::PgPool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let settings = smtp::Settings {
            hostname: "desk.example.org".into(),
            limits: Limits {
                max_bytes: MAX,
                attachment_max_bytes: MAX,
            },
            max_connections: 4,
            timeout: Duration::from_secs(10),
        };
        let task = tokio::spawn(smtp::serve(
            listener,
            pool,
            settings,
            Arc::new(app.clock.clone()),
            stopped,
        ));
        Self { addr, stop, task }
    }

    /// Stops it and checks it ends promptly.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the listener stops on request")
            .unwrap();
    }
}

async fn mailbox(app: &TestApp, address: &str, project: &str) {
    let project = app.create_project(project, project).await;
    let mut conn = app.pool.acquire().await.unwrap();
    mail::create(
        &mut conn,
        &MailboxInput {
            address: address.into(),
            project_id: Some(project),
            active: true,
            ..MailboxInput::default()
        },
        app.clock.now_ts(),
    )
    .await
    .unwrap();
}

/// Runs swaks; its exit code and transcript.
async fn swaks(addr: SocketAddr, from: &str, to: &str, data: &[u8]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.eml");
    std::fs::write(&file, data).unwrap();
    let output = tokio::process::Command::new("swaks")
        .args([
            "--server",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .args(["--from", from, "--to", to, "--ehlo", "client.example"])
        .args(["--timeout", "20", "--data"])
        .arg(format!("@{}", file.display()))
        .output()
        .await
        .expect("swaks is installed (apt-get install swaks)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

fn message(id: &str, from: &str, subject: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: helpdesk@example.org\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Thu, 26 Nov 2026 04:00:00 +0000\r\n{extra}\r\nHello,\r\n.this line starts with a dot\r\nbye\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn accepted_mail_opens_a_ticket_and_a_reply_threads() {
    let app = TestApp::new().await;
    mailbox(&app, "helpdesk@example.org", "HD").await;
    let smtp = Listener::start(&app).await;

    let first = message(
        "m1@client.example",
        "ann@client.example",
        "Printer on fire",
        "",
    );
    let (code, transcript) = swaks(
        smtp.addr,
        "ann@client.example",
        "HelpDesk@Example.org",
        &first,
    )
    .await;
    assert_eq!(code, 0, "{transcript}");
    assert!(
        transcript.contains("250-SIZE 65536"),
        "SIZE advertised: {transcript}"
    );
    assert_eq!(app.count("select count(*) from tickets").await, 1);
    let (source, outcome, raw): (String, String, Vec<u8>) =
        sqlx::query_as("select source, outcome, raw from mail_in")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((source.as_str(), outcome.as_str()), ("smtp", "new"));
    // Stored as sent: dot-unstuffed, CRLF kept.
    let needle = b"\r\n.this line starts with a dot\r\n";
    assert!(
        raw.windows(needle.len()).any(|w| w == needle),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    let reply = message(
        "m2@client.example",
        "ann@client.example",
        "Re: Printer on fire",
        "In-Reply-To: <m1@client.example>\r\n",
    );
    let (code, transcript) = swaks(
        smtp.addr,
        "ann@client.example",
        "helpdesk@example.org",
        &reply,
    )
    .await;
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(app.count("select count(*) from tickets").await, 1);
    assert_eq!(
        app.count("select count(*) from mail_in where outcome = 'reply'")
            .await,
        1
    );
    // The same message again (a client retrying after a lost answer): nothing new.
    let (code, transcript) = swaks(
        smtp.addr,
        "ann@client.example",
        "helpdesk@example.org",
        &reply,
    )
    .await;
    assert_eq!(code, 0, "{transcript}");
    assert!(transcript.contains("delivered before"), "{transcript}");
    assert_eq!(app.count("select count(*) from mail_in").await, 2);
    smtp.stop().await;
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn unknown_or_inactive_recipients_are_refused_at_rcpt() {
    let app = TestApp::new().await;
    mailbox(&app, "helpdesk@example.org", "HD").await;
    mailbox(&app, "old@example.org", "OLD").await;
    sqlx::query("update mailboxes set active = false where address = 'old@example.org'")
        .execute(&app.pool)
        .await
        .unwrap();
    let smtp = Listener::start(&app).await;
    let data = message("m1@client.example", "ann@client.example", "Hi", "");
    for to in [
        "someone@elsewhere.example",
        "old@example.org",
        "helpdesk@example.org.evil",
    ] {
        let (code, transcript) = swaks(smtp.addr, "ann@client.example", to, &data).await;
        assert_eq!(code, 24, "no RCPT accepted for {to}: {transcript}");
        assert!(transcript.contains("550 5.1.1"), "{transcript}");
    }
    assert_eq!(app.count("select count(*) from mail_in").await, 0);
    assert_eq!(app.count("select count(*) from tickets").await, 0);
    smtp.stop().await;
}

#[tokio::test]
async fn two_recipients_make_one_ticket_in_the_first_mailbox() {
    let app = TestApp::new().await;
    mailbox(&app, "helpdesk@example.org", "HD").await;
    mailbox(&app, "facilities@example.org", "FAC").await;
    let smtp = Listener::start(&app).await;
    let data = message(
        "both@client.example",
        "ann@client.example",
        "Door broken",
        "",
    );
    let (code, transcript) = swaks(
        smtp.addr,
        "ann@client.example",
        "helpdesk@example.org,facilities@example.org,nobody@example.org",
        &data,
    )
    .await;
    assert_eq!(code, 0, "{transcript}");
    assert!(
        transcript.contains("550 5.1.1"),
        "the stranger is refused: {transcript}"
    );
    // Both recipients are taken and the message goes through ingest for each; ingest is
    // idempotent per Message-ID, so the first mailbox's project gets the ticket and the
    // second delivery is a duplicate (no second ticket, no comment twice).
    assert!(transcript.matches("250 2.1.5").count() == 2, "{transcript}");
    let outcomes: Vec<(String, Option<String>)> = sqlx::query_as(
        "select b.address, m.outcome from mail_in m join mailboxes b on b.id = m.mailbox_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        [("helpdesk@example.org".to_owned(), Some("new".to_owned()))]
    );
    assert_eq!(app.count("select count(*) from tickets").await, 1);
    smtp.stop().await;
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn oversize_mail_is_refused_with_552() {
    let app = TestApp::new().await;
    mailbox(&app, "helpdesk@example.org", "HD").await;
    let smtp = Listener::start(&app).await;
    let mut big = message("big@client.example", "ann@client.example", "Big", "");
    for _ in 0..2000 {
        big.extend_from_slice(
            b"0123456789012345678901234567890123456789012345678901234567890123\r\n",
        );
    }
    let (code, transcript) = swaks(
        smtp.addr,
        "ann@client.example",
        "helpdesk@example.org",
        &big,
    )
    .await;
    assert_eq!(code, 26, "{transcript}");
    assert!(transcript.contains("552 5.3.4"), "{transcript}");
    assert_eq!(app.count("select count(*) from mail_in").await, 0);

    // Announced with SIZE= at MAIL FROM (swaks cannot send the parameter): refused at once.
    let stream = TcpStream::connect(smtp.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    read.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("220 "), "{line}");
    write
        .write_all(b"EHLO c\r\nMAIL FROM:<ann@client.example> SIZE=99999999\r\nMAIL FROM:<> SIZE=100\r\nQUIT\r\n")
        .await
        .unwrap();
    let mut all = String::new();
    while read.read_line(&mut all).await.unwrap() > 0 {}
    assert!(all.contains("552 5.3.4"), "{all}");
    assert!(
        all.contains("250 2.1.0"),
        "the null sender of a bounce is fine: {all}"
    );
    assert!(all.contains("221 "), "{all}");
    smtp.stop().await;
}

#[tokio::test]
async fn garbage_bare_lf_and_a_database_failure_get_sane_answers() {
    let app = TestApp::new().await;
    mailbox(&app, "helpdesk@example.org", "HD").await;
    let smtp = Listener::start(&app).await;
    // Bare LF commands, binary junk, an overlong line, then a normal message: the session
    // survives all of it.
    let stream = TcpStream::connect(smtp.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut junk = b"\xff\xfe\x00\x01\r\nEHLO c\nRCPT TO:<x>\n".to_vec();
    junk.extend(std::iter::repeat_n(b'A', 10_000));
    junk.extend_from_slice(
        b"\r\nMAIL FROM:<ann@client.example>\nRCPT TO:<helpdesk@example.org>\nDATA\n\
          From: ann@client.example\r\nSubject: lf\r\nMessage-ID: <lf@c>\r\n\r\nx\ny\r\n.\r\nQUIT\n",
    );
    write.write_all(&junk).await.unwrap();
    let mut all = String::new();
    while read.read_line(&mut all).await.unwrap() > 0 {}
    for code in ["500 ", "503 ", "501 ", "354 ", "250 2.0.0 OK (mail", "221 "] {
        assert!(all.contains(code), "{code} in {all}");
    }
    assert_eq!(app.count("select count(*) from tickets").await, 1);
    smtp.stop().await;

    // The database is gone: the client is told to try again later (4xx), nothing is lost.
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let smtp = Listener::with_pool(&app, dead).await;
    let data = message("down@client.example", "ann@client.example", "Down", "");
    let (code, transcript) = swaks(
        smtp.addr,
        "ann@client.example",
        "helpdesk@example.org",
        &data,
    )
    .await;
    assert_eq!(code, 24, "{transcript}");
    assert!(transcript.contains("451 4.3.0"), "{transcript}");
    smtp.stop().await;
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn connections_over_the_cap_are_turned_away_and_stop_ends_idle_sessions() {
    let app = TestApp::new().await;
    let smtp = Listener::start(&app).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let stream = TcpStream::connect(smtp.addr).await.unwrap();
        let mut read = BufReader::new(stream);
        let mut line = String::new();
        read.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("220 desk.example.org ESMTP"), "{line}");
        open.push(read);
    }
    let stream = TcpStream::connect(smtp.addr).await.unwrap();
    let mut read = BufReader::new(stream);
    let mut line = String::new();
    read.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("421 4.3.2"), "{line}");
    // Shutdown: the idle sessions are told so and closed, and the listener ends.
    smtp.stop().await;
    for mut read in open {
        let mut line = String::new();
        read.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("421 4.3.2 Shutting down"), "{line}");
    }
}
