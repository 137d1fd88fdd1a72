//! Outbound mail: queued with its cause, sent by the `mail_send` job to a real SMTP server
//! (a sink on 127.0.0.1), threaded so that replies come back to the same ticket; acks and
//! their rate limit, preferences, bounces, header injection, 5xx/4xx, internal notes.

use jiff::SignedDuration;
use mail_parser::MessageParser;
use unitrack::core::ids::{GroupId, TicketId, UserId};
use unitrack::mail::out::{self, Relay, Settings};
use unitrack::mail::{self, Limits, Mailbox, MailboxInput, Outcome, Source};
use unitrack::notifications::{self, Kind, Preference};
use unitrack::workers;

use crate::common::smtp_sink::{Received, Sink};
use crate::common::{NowTs, TestApp};

const LIMITS: Limits = Limits {
    max_bytes: 10 * 1024 * 1024,
    attachment_max_bytes: 5 * 1024 * 1024,
};

struct Desk {
    app: TestApp,
    mailbox: Mailbox,
    sink: Sink,
    settings: Settings,
    alice: UserId,
}

/// Mailbox helpdesk@example.org on HD, agent Alice signed in, a sink as the relay.
async fn desk() -> Desk {
    let mut app = TestApp::new().await;
    let project = app.create_project("HD", "Help desk").await;
    let alice = app
        .create_user_with_role("alice@example.com", "Alice Agent", "Agent L1")
        .await;
    let mut conn = app.pool.acquire().await.unwrap();
    mail::create(
        &mut conn,
        &MailboxInput {
            address: "helpdesk@example.org".into(),
            project_id: Some(project),
            from_name: "Help Desk".into(),
            active: true,
            ..MailboxInput::default()
        },
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    let mailbox = mail::find_by_address(&mut conn, "helpdesk@example.org")
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    app.login("alice@example.com").await;
    let sink = Sink::start().await;
    let settings = Settings::new(
        "https://desk.example.org/",
        None,
        Some(Relay {
            url: sink.url(),
            username: None,
            password: None,
        }),
    );
    Desk {
        app,
        mailbox,
        sink,
        settings,
        alice,
    }
}

impl Desk {
    async fn ingest(&self, raw: &str) -> Outcome {
        mail::ingest(
            &self.app.pool,
            &self.mailbox,
            raw.as_bytes(),
            Source::Pipe,
            LIMITS,
            self.app.clock.now_ts(),
        )
        .await
        .unwrap()
    }

    /// The signed-in agent answers HD-1 publicly in the browser.
    async fn reply(&mut self, body: &str) {
        self.app
            .post_form(
                "/tickets/HD-1/comments",
                &[("body", body), ("visibility", "public")],
            )
            .await
            .assert_redirect_to("/tickets/HD-1#comment");
    }

    /// Runs the job loop once, as the server would.
    async fn send(&self) {
        workers::run_jobs_once(
            &self.app.pool,
            &self.app.clock,
            LIMITS,
            Some(&self.settings),
        )
        .await
        .unwrap();
    }

    async fn scalar<T>(&self, sql: &'static str) -> T
    where
        T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        sqlx::query_scalar(sql)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }
}

fn mail_from(from: &str, id: &str, subject: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: helpdesk@example.org\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Mon, 3 Mar 2025 10:00:00 +0100\r\n{extra}\r\n{body}\r\n"
    )
}

fn header<'a>(mail: &'a Received, name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(&mail.data).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .find(|l| {
            l.len() > name.len()
                && l[..name.len()].eq_ignore_ascii_case(name)
                && l.as_bytes()[name.len()] == b':'
        })
        .map(|l| l[name.len() + 1..].trim())
}

#[tokio::test]
async fn an_agent_reply_is_mailed_threaded_and_the_answer_lands_on_the_ticket() {
    let mut d = desk().await;
    let opened = d
        .ingest(&mail_from(
            "Rita <rita@example.com>",
            "m1@rita.example.com",
            "Printer jammed",
            "",
            "It jams on every page.",
        ))
        .await;
    assert!(
        matches!(&opened, Outcome::New { key, .. } if key == "HD-1"),
        "{opened:?}"
    );

    // The acknowledgement, answering Rita's mail.
    d.send().await;
    let got = d.sink.received();
    assert_eq!(got.len(), 1, "the acknowledgement");
    let ack = &got[0];
    assert_eq!(ack.to, ["<rita@example.com>"]);
    assert_eq!(ack.from, "<helpdesk@example.org>");
    assert_eq!(header(ack, "Auto-Submitted"), Some("auto-replied"));
    assert_eq!(header(ack, "In-Reply-To"), Some("<m1@rita.example.com>"));
    assert!(header(ack, "Subject").unwrap().contains("[HD-1]"));

    // Alice replies in the web UI; the job sends it at once.
    d.reply("We ordered a new drum.").await;
    d.send().await;
    let got = d.sink.received();
    assert_eq!(got.len(), 2);
    let reply = &got[1];
    assert_eq!(reply.to, ["<rita@example.com>"]);
    assert!(out::check_crlf(&reply.data), "CRLF only");
    let message_id = header(reply, "Message-ID").unwrap().to_owned();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@desk.example.org>"),
        "{message_id}"
    );
    let stored: String = d
        .scalar("select message_id from mail_out where kind = 'reply'")
        .await;
    assert_eq!(message_id, format!("<{stored}>"));
    assert_eq!(header(reply, "In-Reply-To"), Some("<m1@rita.example.com>"));
    assert!(
        header(reply, "References")
            .unwrap()
            .contains("<m1@rita.example.com>")
    );
    assert!(header(reply, "Subject").unwrap().contains("[HD-1]"));
    assert_eq!(header(reply, "Auto-Submitted"), Some("auto-generated"));
    assert_eq!(header(reply, "X-Loop"), Some("helpdesk@example.org"));
    assert!(header(reply, "From").unwrap().contains("Help Desk"));
    let parsed = MessageParser::default().parse(&reply.data).unwrap();
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("We ordered a new drum.")
    );
    assert!(
        parsed
            .body_html(0)
            .unwrap()
            .contains("We ordered a new drum.")
    );
    assert_eq!(
        d.scalar::<String>("select status from mail_out where kind = 'reply'")
            .await,
        "sent"
    );

    // Rita answers that mail, without any tag: it threads by In-Reply-To.
    let answer = mail_from(
        "Rita <rita@example.com>",
        "m2@rita.example.com",
        "Re: your mail",
        &format!("In-Reply-To: {message_id}\r\nReferences: <m1@rita.example.com> {message_id}\r\n"),
        "Thanks, that was quick.",
    );
    let outcome = d.ingest(&answer).await;
    assert!(
        matches!(&outcome, Outcome::Reply { key, why, .. } if key == "HD-1" && why.contains(&message_id)),
        "{outcome:?}"
    );
    assert_eq!(d.app.count("select count(*) from tickets").await, 1);
}

#[tokio::test]
async fn acknowledgements_are_limited_per_sender_and_automatic_mail_gets_none() {
    let d = desk().await;
    for n in 1..=7 {
        let outcome = d
            .ingest(&mail_from(
                "Sam <sam@example.com>",
                &format!("s{n}@example.com"),
                &format!("Problem {n}"),
                "",
                "Help.",
            ))
            .await;
        assert!(matches!(outcome, Outcome::New { .. }), "{outcome:?}");
    }
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'ack'")
            .await,
        5
    );
    let why: String = d
        .scalar("select why from mail_in where message_id = 's7@example.com'")
        .await;
    assert!(why.contains("no acknowledgement"), "{why}");
    // An hour later Sam gets acknowledgements again.
    d.app.clock.advance(SignedDuration::from_mins(61));
    d.ingest(&mail_from(
        "Sam <sam@example.com>",
        "s8@example.com",
        "Problem 8",
        "",
        "Help.",
    ))
    .await;
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'ack'")
            .await,
        6
    );

    // An out-of-office opens nothing and is never answered.
    let auto = d
        .ingest(&mail_from(
            "Otto <otto@example.com>",
            "o1@example.com",
            "Out of office",
            "Auto-Submitted: auto-replied\r\n",
            "I am away.",
        ))
        .await;
    assert!(matches!(auto, Outcome::Ignored { .. }), "{auto:?}");
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where lower(to_address) = 'otto@example.com'")
            .await,
        0
    );
    d.send().await;
    assert_eq!(d.sink.received().len(), 6);
}

#[tokio::test]
async fn preferences_decide_who_is_mailed_and_our_own_addresses_never_are() {
    let mut d = desk().await;
    d.ingest(&mail_from(
        "Rita <rita@example.com>",
        "m1@x",
        "Printer",
        "",
        "Jams.",
    ))
    .await;
    let rita: UserId = d
        .scalar("select id from users where email = 'rita@example.com'")
        .await;
    let mut conn = d.app.pool.acquire().await.unwrap();
    let mut prefs = notifications::preferences(&mut conn, rita).await.unwrap();
    for p in &mut prefs {
        if p.kind == Kind::PublicReply {
            *p = Preference {
                kind: Kind::PublicReply,
                in_app: true,
                email: false,
            };
        }
    }
    notifications::save_preferences(&mut conn, rita, &prefs)
        .await
        .unwrap();
    drop(conn);
    d.reply("Looking into it.").await;
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'reply'")
            .await,
        0
    );
    assert_eq!(
        d.app
            .count("select count(*) from notifications where kind = 'public_reply'")
            .await,
        1,
        "in-app still"
    );

    // An account with our own mailbox address (a misconfiguration) is never mailed.
    sqlx::query("update users set email = 'helpdesk@example.org' where id = $1")
        .bind(rita)
        .execute(&d.app.pool)
        .await
        .unwrap();
    sqlx::query("delete from notification_preferences")
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.reply("Still looking.").await;
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'reply'")
            .await,
        0
    );
    let _ = d.alice;
    d.app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn a_permanent_bounce_of_our_mail_marks_the_recipient_undeliverable() {
    let mut d = desk().await;
    d.ingest(&mail_from(
        "Rita <rita@example.com>",
        "m1@x",
        "Printer",
        "",
        "Jams.",
    ))
    .await;
    d.send().await;
    let ours: String = d
        .scalar("select message_id from mail_out where kind = 'ack'")
        .await;
    let dsn = format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.com\r\nTo: helpdesk@example.org\r\n\
         Subject: Undelivered Mail\r\nMessage-ID: <dsn1@mx.example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
         Final-Recipient: rfc822; rita@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: helpdesk@example.org\r\n\
         To: rita@example.com\r\nMessage-ID: <{ours}>\r\n\r\n--b--\r\n"
    );
    let outcome = d.ingest(&dsn).await;
    assert!(
        matches!(&outcome, Outcome::Bounce { why, .. } if why.contains("marked undeliverable")),
        "{outcome:?}"
    );
    let why: String = d
        .scalar("select undeliverable_why from users where email = 'rita@example.com'")
        .await;
    assert!(why.contains("5.1.1"), "{why}");
    // No more mail to Rita; the in-app notice still comes.
    d.reply("Any news?").await;
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'reply'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_title_with_line_breaks_adds_no_header() {
    let mut d = desk().await;
    d.ingest(&mail_from(
        "Rita <rita@example.com>",
        "m1@x",
        "Printer",
        "",
        "Jams.",
    ))
    .await;
    sqlx::query("update tickets set title = E'Printer\\r\\nBcc: evil@example.net\\nX-Evil: 1'")
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.reply("On it.").await;
    d.send().await;
    for mail in d.sink.received() {
        assert!(out::check_crlf(&mail.data));
        assert_eq!(header(&mail, "Bcc"), None);
        assert_eq!(header(&mail, "X-Evil"), None);
        assert_eq!(mail.to, ["<rita@example.com>"]);
    }
    let reply = d.sink.received().pop().unwrap();
    assert!(
        header(&reply, "Subject")
            .unwrap()
            .contains("Bcc: evil@example.net X-Evil: 1")
    );
}

#[tokio::test]
async fn a_5xx_fails_for_good_and_a_4xx_is_retried() {
    let d = desk().await;
    d.sink.refuse_with(Some("550 5.1.1 no such user"));
    d.ingest(&mail_from(
        "Rita <rita@example.com>",
        "m1@x",
        "Printer",
        "",
        "Jams.",
    ))
    .await;
    d.send().await;
    assert_eq!(
        d.scalar::<String>("select status from mail_out").await,
        "failed"
    );
    let error: String = d.scalar("select last_error from mail_out").await;
    assert!(error.contains("550"), "{error}");
    assert_eq!(
        unitrack::jobs::pending(&d.app.pool).await.unwrap(),
        0,
        "no retry"
    );

    d.sink.refuse_with(Some("451 4.3.0 try again later"));
    d.ingest(&mail_from(
        "Sam <sam@example.com>",
        "m2@x",
        "Screen",
        "",
        "Flickers.",
    ))
    .await;
    d.send().await;
    let (status, attempts): (String, i32) = sqlx::query_as(
        "select status, attempts from mail_out where to_address = 'sam@example.com'",
    )
    .fetch_one(&d.app.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), attempts), ("queued", 1));
    assert_eq!(unitrack::jobs::pending(&d.app.pool).await.unwrap(), 1);
    d.sink.refuse_with(None);
    d.send().await;
    assert!(d.sink.received().is_empty(), "not before the backoff");
    d.app.clock.advance(SignedDuration::from_secs(11));
    d.send().await;
    assert_eq!(d.sink.received().len(), 1);
    assert_eq!(
        d.scalar::<String>("select status from mail_out where to_address = 'sam@example.com'")
            .await,
        "sent"
    );
}

#[tokio::test]
async fn a_reply_to_an_internal_note_mail_is_an_internal_note_only_for_staff() {
    let mut d = desk().await;
    let bob = d
        .app
        .create_user_with_role("bob@example.com", "Bob Agent", "Agent L1")
        .await;
    d.ingest(&mail_from(
        "Rita <rita@example.com>",
        "m1@x",
        "Printer",
        "",
        "Jams.",
    ))
    .await;
    sqlx::query("insert into ticket_watchers (ticket_id, user_id) select id, $1 from tickets")
        .bind(bob)
        .execute(&d.app.pool)
        .await
        .unwrap();
    let mut conn = d.app.pool.acquire().await.unwrap();
    let mut prefs = notifications::preferences(&mut conn, bob).await.unwrap();
    for p in &mut prefs {
        p.email = true;
    }
    notifications::save_preferences(&mut conn, bob, &prefs)
        .await
        .unwrap();
    drop(conn);
    d.app
        .post_form(
            "/tickets/HD-1/comments",
            &[
                ("body", "Vendor bug, keep quiet."),
                ("visibility", "internal"),
            ],
        )
        .await
        .assert_redirect_to("/tickets/HD-1#comment");
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'internal_note' and internal")
            .await,
        1
    );
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'internal_note' and to_address <> 'bob@example.com'")
            .await,
        0,
        "only Bob asked for it"
    );
    d.send().await;
    let note: String = d
        .scalar("select message_id from mail_out where kind = 'internal_note'")
        .await;
    let answer = mail_from(
        "Bob <bob@example.com>",
        "b1@example.com",
        "Re: note",
        &format!("In-Reply-To: <{note}>\r\n"),
        "Agreed, wait for the patch.",
    );
    let outcome = d.ingest(&answer).await;
    assert!(
        matches!(&outcome, Outcome::Reply { key, .. } if key == "HD-1"),
        "{outcome:?}"
    );
    let public: bool = d
        .scalar("select (data->>'public')::bool from ticket_events where data->>'body_md' like 'Agreed%'")
        .await;
    assert!(!public, "an internal note");

    // Rita quoting the same id is not published.
    let forged = mail_from(
        "Rita <rita@example.com>",
        "r9@example.com",
        "Re: note",
        &format!("In-Reply-To: <{note}>\r\n"),
        "What note?",
    );
    let outcome = d.ingest(&forged).await;
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    assert_eq!(
        d.app
            .count("select count(*) from ticket_events where data->>'body_md' like 'What note%'")
            .await,
        0
    );
}

/// The Approve link's token in a captured approval mail.
fn approve_token(mail: &Received) -> String {
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    let text = parsed.body_text(0).unwrap().into_owned();
    let start = text.find("/approval-links/").expect("an approval link") + "/approval-links/".len();
    let rest = &text[start..];
    let end = rest.find('?').unwrap();
    assert!(rest[end..].starts_with("?decision=approve"), "{text}");
    rest[..end].to_owned()
}

#[tokio::test]
async fn an_approval_link_decides_once_as_the_approver_and_expires() {
    let d = desk().await;
    d.ingest(&mail_from(
        "Rita <rita@example.com>",
        "m1@x",
        "New laptop",
        "",
        "Please.",
    ))
    .await;
    let carl = d
        .app
        .create_user_with_role("carl@example.com", "Carl", "Change approver")
        .await;
    let dana = d
        .app
        .create_user_with_role("dana@example.com", "Dana", "Change approver")
        .await;
    let ticket: unitrack::core::ids::TicketId = d.scalar("select id from tickets").await;
    sqlx::query(
        "with r as (insert into approval_rounds (id, ticket_id, state, round, rule, created_at)
                    select gen_random_uuid(), id, state, 1, '\"all\"', now() from tickets returning id)
         insert into approval_requests (round_id, approver_id) select id, a from r, unnest($1::uuid[]) a",
    )
    .bind(vec![carl, dana])
    .execute(&d.app.pool)
    .await
    .unwrap();
    let mut tx = d.app.pool.begin().await.unwrap();
    unitrack::tickets::record(
        &mut tx,
        ticket,
        Some(d.alice),
        &unitrack::tickets::EventData::ApprovalRequested {
            round: 1,
            state: "New".into(),
            approvers: vec!["Carl".into(), "Dana".into()],
        },
        d.app.clock.now_ts(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    d.send().await;
    let mails = d.sink.received();
    let to_carl = mails
        .iter()
        .find(|m| m.to == ["<carl@example.com>"])
        .unwrap();
    let to_dana = mails
        .iter()
        .find(|m| m.to == ["<dana@example.com>"])
        .unwrap();
    assert!(header(to_carl, "Subject").unwrap().contains("[HD-1]"));
    let carl_token = approve_token(to_carl);
    let dana_token = approve_token(to_dana);
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'approval' and raw is not null")
            .await,
        0,
        "the link is not kept in the outbox once sent"
    );

    // Anyone with the link, signed in or not: GET only asks.
    let mut browser = d.app.other_browser();
    let path = format!("/approval-links/{carl_token}");
    browser
        .get(&format!("{path}?decision=approve"))
        .await
        .assert_status(axum::http::StatusCode::OK)
        .assert_contains("HD-1")
        .assert_contains("value=\"approve\" checked");
    let undecided = "select count(*) from approval_requests where decision is null";
    assert_eq!(d.app.count(undecided).await, 2);
    // A rejection needs a reason; the link still works after that.
    browser
        .post_form(&path, &[("decision", "reject"), ("comment", "")])
        .await
        .assert_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Say why you reject it.");
    browser
        .post_form(&path, &[("decision", "approve"), ("comment", "Fine by me")])
        .await
        .assert_status(axum::http::StatusCode::OK)
        .assert_contains("You approved HD-1");
    let decided: (String, String) =
        sqlx::query_as("select decision, comment from approval_requests where approver_id = $1")
            .bind(carl)
            .fetch_one(&d.app.pool)
            .await
            .unwrap();
    assert_eq!(decided, ("approve".into(), "Fine by me".into()));
    // Twice: refused, nothing changes.
    browser
        .post_form(
            &path,
            &[("decision", "reject"), ("comment", "changed my mind")],
        )
        .await
        .assert_status(axum::http::StatusCode::GONE)
        .assert_contains("used already");
    assert_eq!(d.app.count(undecided).await, 1);
    // Unknown and malformed tokens: a friendly 404.
    browser
        .get(&format!("/approval-links/{}", "A".repeat(43)))
        .await
        .assert_status(axum::http::StatusCode::NOT_FOUND)
        .assert_contains("not known");
    browser
        .get("/approval-links/%0d%0a")
        .await
        .assert_status(axum::http::StatusCode::NOT_FOUND);
    // Dana waits eight days: expired.
    d.app.clock.advance(SignedDuration::from_hours(8 * 24));
    let path = format!("/approval-links/{dana_token}");
    browser
        .get(&path)
        .await
        .assert_status(axum::http::StatusCode::GONE)
        .assert_contains("expired");
    assert_eq!(d.app.count(undecided).await, 1);
}

#[tokio::test]
async fn an_admin_mails_a_set_password_link_and_clears_an_undeliverable_mark() {
    let d = desk().await;
    let mut admin = d.app.other_browser();
    d.app.create_user("root@example.com", "Root", true).await;
    admin.login("root@example.com").await;
    let newcomer = d.app.create_user("new@example.com", "New", false).await;
    let page = admin
        .post_form(&format!("/admin/users/{newcomer}/password-link"), &[])
        .await;
    page.assert_status(axum::http::StatusCode::OK)
        .assert_contains("on its way to new@example.com");
    d.send().await;
    let mails = d.sink.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["<new@example.com>"]);
    let parsed = MessageParser::default().parse(&mails[0].data).unwrap();
    let text = parsed.body_text(0).unwrap();
    let start = page.body.find("/password/set/").unwrap();
    let path = page.body[start..].split('<').next().unwrap();
    assert!(
        text.contains(path),
        "the mailed link is the one shown: {text}"
    );
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'set_password' and (raw is not null or data <> '{}')")
            .await,
        0,
        "the link is not kept once sent"
    );

    // Undeliverable: shown, not mailed, cleared with an audit entry.
    let mut conn = d.app.pool.acquire().await.unwrap();
    assert!(
        out::mark_undeliverable(
            &mut conn,
            "NEW@example.com",
            "5.1.1 unknown",
            d.app.clock.now_ts()
        )
        .await
        .unwrap()
    );
    drop(conn);
    admin
        .get(&format!("/admin/users/{newcomer}"))
        .await
        .assert_contains("bounced permanently")
        .assert_contains("5.1.1 unknown");
    admin
        .post_form(&format!("/admin/users/{newcomer}/password-link"), &[])
        .await
        .assert_contains("It cannot be mailed");
    assert_eq!(
        d.app
            .count("select count(*) from mail_out where kind = 'set_password'")
            .await,
        1
    );
    admin
        .post_form(&format!("/admin/users/{newcomer}/deliverable"), &[])
        .await
        .assert_status(axum::http::StatusCode::OK)
        .assert_not_contains("bounced permanently");
    assert_eq!(
        d.app
            .count("select count(*) from users where undeliverable_at is not null")
            .await,
        0
    );
    assert_eq!(
        d.app
            .count("select count(*) from admin_audit where action = 'mail_deliverable'")
            .await,
        1
    );
}

#[tokio::test]
async fn without_a_relay_mail_stays_queued_and_the_admin_sees_it() {
    let d = desk().await;
    d.ingest(&mail_from(
        "Rita <rita@example.com>",
        "m1@x",
        "Printer",
        "",
        "Jams.",
    ))
    .await;
    workers::run_jobs_once(&d.app.pool, &d.app.clock, LIMITS, None)
        .await
        .unwrap();
    assert_eq!(
        d.scalar::<String>("select status from mail_out").await,
        "queued"
    );
    assert_eq!(
        d.scalar::<i32>("select attempts from jobs where kind = 'mail_send'")
            .await,
        0
    );
    let mut admin = d.app.other_browser();
    d.app.create_user("root@example.com", "Root", true).await;
    admin.login("root@example.com").await;
    admin
        .get("/admin/mail-problems")
        .await
        .assert_contains("No SMTP relay is configured")
        .assert_contains("rita@example.com");
    d.send().await;
    assert_eq!(d.sink.received().len(), 1);
}

#[tokio::test]
async fn the_job_loop_wakes_when_mail_is_queued() {
    let d = desk().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let clock: std::sync::Arc<dyn unitrack::core::time::Clock> =
        std::sync::Arc::new(d.app.clock.clone());
    let looping = tokio::spawn(workers::run(
        d.app.pool.clone(),
        clock,
        LIMITS,
        d.app.config.retention(),
        std::time::Duration::from_secs(3600),
        d.settings.clone(),
        stopped,
    ));
    // The loop listens, then runs its first round (the sweep); after that only a wake-up
    // (or the hour) starts another.
    let swept = "select count(*) from jobs where kind = 'ticket_sweep' and done_at is not null";
    while d.app.count(swept).await == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    d.ingest(&mail_from(
        "Rita <rita@example.com>",
        "m1@x",
        "Printer",
        "",
        "Jams.",
    ))
    .await;
    let mut waited = 0;
    while d.sink.received().is_empty() && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    stop.send(true).unwrap();
    looping.await.unwrap();
    assert_eq!(
        d.sink.received().len(),
        1,
        "sent long before the hourly round"
    );
}

#[tokio::test]
async fn an_sla_breach_mail_is_internal_so_a_reply_to_it_stays_internal() {
    let d = desk().await;
    d.ingest(&mail_from(
        "rita@example.com",
        "breach@client.example",
        "Printer",
        "",
        "Broken.",
    ))
    .await;
    let group = GroupId::new();
    sqlx::query("insert into groups (id, name, created_at) values ($1, 'L1', now())")
        .bind(group)
        .execute(&d.app.pool)
        .await
        .unwrap();
    sqlx::query("insert into group_members (group_id, user_id) values ($1, $2)")
        .bind(group)
        .bind(d.alice)
        .execute(&d.app.pool)
        .await
        .unwrap();
    let ticket: TicketId = d.scalar("select id from tickets").await;
    let mut conn = d.app.pool.acquire().await.unwrap();
    // Breaches come by e-mail only to those who ask for them.
    let mut prefs = notifications::preferences(&mut conn, d.alice)
        .await
        .unwrap();
    for p in &mut prefs {
        if p.kind == Kind::SlaBreach {
            p.email = true;
        }
    }
    notifications::save_preferences(&mut conn, d.alice, &prefs)
        .await
        .unwrap();
    notifications::notify_group(
        &mut conn,
        group,
        ticket,
        Kind::SlaBreach,
        "Resolution due passed.",
        d.app.clock.now_ts(),
    )
    .await
    .unwrap();
    drop(conn);
    // `mail_thread_ids` carries the flag: a reply to this mail is read as internal.
    assert_eq!(
        d.scalar::<Vec<bool>>("select array_agg(internal) from mail_out where kind = 'sla_breach'")
            .await,
        vec![true]
    );
    d.app.expect_queued("mail_send", 2).await;
}
