//! Inbound mail: every message of the corpus in `tests/mail` through the ingest path into a
//! real database, checked against `tests/mail/expected.toml`; oversize and arbitrary bytes.

use std::collections::BTreeMap;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde::Deserialize;
use unitrack::mail::{self, Limits, Mailbox, MailboxInput, Outcome, Source};

use crate::common::{NowTs, TestApp};

const LIMITS: Limits = Limits {
    max_bytes: 10 * 1024 * 1024,
    attachment_max_bytes: 5 * 1024 * 1024,
};

#[derive(Deserialize)]
struct Expected {
    outcome: String,
    why: Option<String>,
}

async fn app_with_mailbox() -> (TestApp, Mailbox) {
    let app = TestApp::new().await;
    let project = app.create_project("HD", "Help desk").await;
    let mut conn = app.pool.acquire().await.unwrap();
    mail::create(
        &mut conn,
        &MailboxInput {
            address: "HelpDesk@example.org".into(),
            project_id: Some(project),
            active: true,
            ..MailboxInput::default()
        },
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    let mailbox = mail::find_by_address(&mut conn, "helpdesk@EXAMPLE.org")
        .await
        .unwrap()
        .expect("the mailbox is found in any case");
    (app, mailbox)
}

fn word(outcome: &Outcome) -> String {
    match outcome {
        Outcome::New { key, .. } => format!("new {key}"),
        Outcome::Reply { key, .. } => format!("reply {key}"),
        Outcome::Ignored { .. } => "ignored".into(),
        Outcome::Bounce { key: Some(key), .. } => format!("bounce {key}"),
        Outcome::Bounce { key: None, .. } => "bounce".into(),
        Outcome::Duplicate { .. } => "duplicate".into(),
        Outcome::Failed { .. } => "failed".into(),
    }
}

fn why(outcome: &Outcome) -> String {
    match outcome {
        Outcome::New { why, .. }
        | Outcome::Reply { why, .. }
        | Outcome::Ignored { why, .. }
        | Outcome::Bounce { why, .. } => why.clone(),
        Outcome::Failed { error, .. } => error.clone(),
        Outcome::Duplicate { .. } => String::new(),
    }
}

async fn exec(app: &TestApp, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&app.pool)
        .await
        .unwrap();
}

async fn state_of(app: &TestApp, number: i64) -> String {
    sqlx::query_scalar("select state from tickets where number = $1")
        .bind(number)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_corpus_message_has_its_expected_outcome_and_none_is_lost() {
    let (app, mailbox) = app_with_mailbox().await;
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    app.create_user("wendy@example.com", "Wendy Watcher", false)
        .await;
    app.create_user_with_role("alice@example.org", "Alice Agent", "Agent L1")
        .await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail");
    let expected: BTreeMap<String, Expected> =
        toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).unwrap()).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        expected.keys().cloned().collect::<Vec<_>>(),
        "every message has an expectation"
    );
    assert!(names.len() >= 40, "the corpus has {} messages", names.len());
    let mut problems = Vec::new();
    let mut stored = 0;
    for name in &names {
        let raw = std::fs::read(dir.join(name)).unwrap();
        let outcome = mail::ingest(
            &app.pool,
            &mailbox,
            &raw,
            Source::Pipe,
            LIMITS,
            app.clock.now_ts(),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        if !matches!(outcome, Outcome::Duplicate { .. }) {
            stored += 1;
            let kept: Vec<u8> = sqlx::query_scalar("select raw from mail_in where id = $1")
                .bind(outcome.mail())
                .fetch_one(&app.pool)
                .await
                .unwrap();
            assert_eq!(kept, raw, "{name}: the raw message is kept byte for byte");
        }
        let want = &expected[name];
        let (got, reason) = (word(&outcome), why(&outcome));
        if got != want.outcome || want.why.as_ref().is_some_and(|w| !reason.contains(w)) {
            problems.push(format!(
                "{name}: expected {} ({:?}), got {got} ({reason})",
                want.outcome, want.why
            ));
        }
        // What a help desk does between messages.
        match name.as_str() {
            "01-plain-new.eml" => {
                exec(
                    &app,
                    "insert into ticket_watchers (ticket_id, user_id)
                     select t.id, u.id from tickets t, users u
                     where t.number = 1 and u.email = 'wendy@example.com'",
                )
                .await;
            }
            "06-iso-8859-1.eml" => {
                exec(
                    &app,
                    "update tickets set state = 'closed', state_category = 'closed' where number = 3",
                )
                .await;
            }
            "19-exchange-dsn.eml" => {
                exec(
                    &app,
                    "update tickets set state = 'waiting_for_requester', state_category = 'waiting'
                     where number = 2",
                )
                .await;
            }
            "31-reply-while-waiting.eml" => {
                assert_eq!(
                    state_of(&app, 2).await,
                    "in_progress",
                    "the answer moved it"
                );
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        app.count("select count(*) from mail_in").await,
        stored,
        "one row per message, none for redeliveries"
    );
    assert_eq!(
        app.count("select count(*) from mail_in where status = 'new'")
            .await,
        0,
        "every stored message was processed"
    );
    // Texts and files arrived as people wrote them.
    let bodies: Vec<String> = sqlx::query_scalar(
        "select e.data->>'body_md' from ticket_events e join tickets t on t.id = e.ticket_id
         where t.number = 1 and e.kind = 'comment' order by e.id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        bodies[0], "It also happens with tray 1.",
        "Outlook quote cut"
    );
    assert_eq!(bodies[1], "Any news?", "Gmail quote cut");
    assert_eq!(
        bodies[2], "Still jammed – sorry.",
        "Apple Mail QP, quote cut"
    );
    let last_on_2: String = sqlx::query_scalar(
        "select e.data->>'body_md' from ticket_events e join tickets t on t.id = e.ticket_id
         where t.number = 2 and e.kind = 'comment' order by e.id desc limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        last_on_2, "Now it works, thanks!",
        "HTML reply, Outlook quote cut"
    );
    let description = |number: i64| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "select title || ' | ' || description_md from tickets where number = $1",
            )
            .bind(number)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let html_only = description(2).await;
    assert!(
        html_only.contains("The VPN client says error 809."),
        "{html_only}"
    );
    assert!(
        !html_only.contains("alert") && !html_only.contains('<'),
        "{html_only}"
    );
    assert!(description(3).await.contains(
        "Kaffeemaschine in Küche defekt | Die Kaffeemaschine in der Küche tropft. Grüße, Jürgen"
    ));
    assert!(
        description(4)
            .await
            .contains("Invoice “March” – €120 is wrong")
    );
    assert!(
        description(5)
            .await
            .contains("パスワードをリセットしてください | ログインできません。")
    );
    assert!(
        description(6)
            .await
            .contains("Bildschirm flackert 😞 seit Montag")
    );
    assert!(
        description(7)
            .await
            .contains("Please give me access to the finance share.")
    );
    assert!(
        description(16)
            .await
            .contains("Drucker für Büro 2 bestellen. Das ist eine sehr lange Zeile")
    );
    assert!(
        description(17)
            .await
            .contains("Excel says the file is corrupt.")
    );
    let files: Vec<(i64, String, String)> = sqlx::query_as(
        "select t.number, a.filename, a.content_type from attachments a
         join tickets t on t.id = a.ticket_id order by t.number, a.filename",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        files.contains(&(1, "printer log.pdf".into(), "application/pdf".into())),
        "{files:?}"
    );
    assert!(
        files.contains(&(8, "image001.png".into(), "image/png".into())),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|(n, name, _)| *n == 9 && name.ends_with(".eml")),
        "{files:?}"
    );
    // Unknown senders became requesters without a password; nobody got a ticket from a loop.
    assert_eq!(
        app.count(
            "select count(*) from users where email = 'bob@example.net' and password_hash is null"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("select count(*) from users where email like '%mailer-daemon%' or email like 'no-reply%'")
            .await,
        0
    );
    assert_eq!(
        app.count("select count(*) from ticket_events where kind = 'mail_bounced'")
            .await,
        2
    );
    assert_eq!(
        app.count("select count(*) from ticket_links").await,
        1,
        "the follow-up of the closed HD-3 is linked to it"
    );
    // Processing again changes nothing.
    let again = mail::ingest(
        &app.pool,
        &mailbox,
        &std::fs::read(dir.join("05-html-only.eml")).unwrap(),
        Source::Smtp,
        LIMITS,
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    assert!(matches!(again, Outcome::Duplicate { .. }), "{again:?}");
    app.expect_queued("mail_send", 26).await;
}

#[tokio::test]
async fn an_oversize_message_is_kept_raw_and_failed_and_a_retry_after_a_fix_processes_it() {
    let (app, mailbox) = app_with_mailbox().await;
    let mut raw = b"From: Big <big@example.com>\r\nSubject: Huge\r\nMessage-ID: <big@example.com>\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 20 * 1024 * 1024));
    let outcome = mail::ingest(
        &app.pool,
        &mailbox,
        &raw,
        Source::Pipe,
        LIMITS,
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    let Outcome::Failed { mail: id, error } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(error.contains("too large"), "{error}");
    assert_eq!(
        app.count(
            "select count(*) from mail_in where status = 'failed' and length(raw) > 20000000"
        )
        .await,
        1
    );
    // A redelivery of a failed message processes the stored row again, with bigger limits.
    let bigger = Limits {
        max_bytes: 30 * 1024 * 1024,
        ..LIMITS
    };
    let retried = mail::reprocess(&app.pool, *id, bigger, app.clock.now_ts())
        .await
        .unwrap();
    assert!(matches!(retried, Outcome::New { .. }), "{retried:?}");
    assert_eq!(app.count("select count(*) from mail_in").await, 1);
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn a_message_with_hundreds_of_files_keeps_the_first_fifty_and_says_so() {
    let (app, mailbox) = app_with_mailbox().await;
    let mut raw = String::from(
        "From: Zed <zed@example.com>\r\nSubject: Many files\r\nMessage-ID: <many@example.com>\r\nContent-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nLots.\r\n",
    );
    for n in 0..300 {
        raw.push_str(&format!(
            "--z\r\nContent-Type: text/plain; name=\"f{n}.txt\"\r\nContent-Disposition: attachment; filename=\"f{n}.txt\"\r\n\r\nfile {n}\r\n"
        ));
    }
    raw.push_str("--z--\r\n");
    let outcome = mail::ingest(
        &app.pool,
        &mailbox,
        raw.as_bytes(),
        Source::Pipe,
        LIMITS,
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    let Outcome::New { why, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        why.contains("left out: 250 files past the first 50"),
        "{why}"
    );
    assert_eq!(app.count("select count(*) from attachments").await, 50);
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn arbitrary_bytes_never_panic_and_are_always_stored() {
    let (app, mailbox) = app_with_mailbox().await;
    let mut runner = TestRunner::deterministic();
    let header_like = proptest::collection::vec(
        proptest::prop_oneof![
            proptest::strategy::Just(b"From: x@example.com\r\n".to_vec()),
            proptest::strategy::Just(b"Content-Type: multipart/mixed; boundary=b\r\n".to_vec()),
            proptest::strategy::Just(b"--b\r\n".to_vec()),
            proptest::strategy::Just(b"Subject: =?utf-8?B?////?=\r\n".to_vec()),
            proptest::strategy::Just(b"\r\n".to_vec()),
            proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ],
        0..30,
    )
    .prop_map(|parts| parts.concat());
    let mut cases = 0;
    for _ in 0..60 {
        let raw = header_like.new_tree(&mut runner).unwrap().current();
        assert!(raw.len() < LIMITS.max_bytes);
        let before = app.count("select count(*) from mail_in").await;
        let outcome = mail::ingest(
            &app.pool,
            &mailbox,
            &raw,
            Source::Smtp,
            LIMITS,
            app.clock.now_ts(),
        )
        .await
        .unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        let after = app.count("select count(*) from mail_in").await;
        assert!(after == before || after == before + 1, "{raw:?}");
        let kept: Vec<u8> = sqlx::query_scalar("select raw from mail_in where id = $1")
            .bind(outcome.mail())
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(kept, raw, "the message is kept as it came");
        cases += 1;
    }
    assert_eq!(cases, 60);
    // How many of the random messages are answered varies with the cases.
    app.discard_jobs("mail_send").await;
}

/// A deactivated account's mail is kept for Mail problems and opens nothing; a known sender's
/// mail opens a ticket on their existing account (no second account for the same address in
/// other letter case).
#[tokio::test]
async fn a_deactivated_senders_mail_is_kept_and_a_known_sender_keeps_their_account() {
    let (app, mailbox) = app_with_mailbox().await;
    app.create_user("gone@example.com", "Gone Person", false)
        .await;
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    exec(
        &app,
        "update users set active = false where email = 'gone@example.com'",
    )
    .await;
    let from = |who: &str, id: &str| {
        format!(
            "From: {who}\r\nTo: helpdesk@example.org\r\nSubject: Help\r\n\
             Message-ID: <{id}@example.com>\r\n\r\nPlease.\r\n"
        )
    };
    let ingest = |raw: String| {
        let (pool, mailbox, now) = (app.pool.clone(), mailbox.clone(), app.clock.now_ts());
        async move {
            mail::ingest(&pool, &mailbox, raw.as_bytes(), Source::Smtp, LIMITS, now)
                .await
                .unwrap()
        }
    };
    let gone = ingest(from("Gone <GONE@example.com>", "gone-1")).await;
    assert_eq!(word(&gone), "failed");
    assert!(why(&gone).contains("deactivated"), "{}", why(&gone));
    let rita = ingest(from("Rita <Rita@Example.com>", "rita-1")).await;
    assert!(word(&rita).starts_with("new "), "{}", word(&rita));
    assert_eq!(
        app.count("select count(*) from users where lower(email) in ('gone@example.com', 'rita@example.com')")
            .await,
        2
    );
    assert_eq!(
        app.count(
            "select count(*) from tickets t join users u on u.id = t.requester_id
             where u.email = 'rita@example.com'"
        )
        .await,
        1
    );
    assert_eq!(app.count("select count(*) from tickets").await, 1);
    app.expect_queued("mail_send", 1).await;
}

/// An MTA that times out and retries, or two ways in (SMTP and IMAP) that carry one message,
/// deliver it twice at the same moment: it is stored once and makes one ticket. Both with a
/// Message-ID and without one (then its bytes identify it).
#[tokio::test]
async fn one_message_delivered_many_times_at_once_is_stored_and_handled_once() {
    let (app, mailbox) = app_with_mailbox().await;
    let with_id = b"From: Rita <rita@example.com>\r\nTo: helpdesk@example.org\r\n\
Subject: Scanner jams\r\nMessage-ID: <twice@example.com>\r\n\r\nIt jams.\r\n";
    let without_id =
        b"From: Rita <rita@example.com>\r\nTo: helpdesk@example.org\r\nSubject: Fax\r\n\r\nNo.\r\n";
    for raw in [&with_id[..], &without_id[..]] {
        let deliveries = (0..6).map(|_| {
            mail::ingest(
                &app.pool,
                &mailbox,
                raw,
                Source::Smtp,
                LIMITS,
                app.clock.now_ts(),
            )
        });
        let outcomes: Vec<Outcome> = futures_util::future::join_all(deliveries)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let words: Vec<String> = outcomes.iter().map(word).collect();
        assert_eq!(
            words.iter().filter(|w| w.starts_with("new ")).count(),
            1,
            "{words:?}"
        );
        assert_eq!(
            words.iter().filter(|w| *w == "duplicate").count(),
            5,
            "{words:?}"
        );
        assert!(
            outcomes.iter().all(|o| o.mail() == outcomes[0].mail()),
            "all answers name the one stored message"
        );
    }
    assert_eq!(app.count("select count(*) from mail_in").await, 2);
    assert_eq!(app.count("select count(*) from tickets").await, 2);
    app.expect_queued("mail_send", 2).await;
}

/// `unitrack mail ingest` as an MTA runs it: the message on stdin, the answer in the exit
/// status (sysexits).
fn pipe(database_url: &str, mailbox: &str, raw: &[u8]) -> (Option<i32>, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_unitrack"))
        .args(["mail", "ingest", "--mailbox", mailbox])
        .env("DATABASE_URL", database_url)
        .env("UNITRACK_DATA_DIR", dir.path())
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_pipe_answers_the_mta_with_sysexits_codes() {
    let (app, _) = app_with_mailbox().await;
    let url = app.db.url();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail");
    let new = std::fs::read(dir.join("01-plain-new.eml")).unwrap();
    let (code, err) = pipe(&url, "helpdesk@example.org", &new);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(app.count("select count(*) from tickets").await, 1);
    // Delivered again: nothing new, still fine for the MTA.
    let (code, err) = pipe(&url, "helpdesk@example.org", &new);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(app.count("select count(*) from tickets").await, 1);
    assert_eq!(app.count("select count(*) from mail_in").await, 1);
    // Unusable: kept for Mail problems, and the MTA bounces it.
    let no_from = std::fs::read(dir.join("27-no-from.eml")).unwrap();
    let (code, err) = pipe(&url, "helpdesk@example.org", &no_from);
    assert_eq!(code, Some(65), "{err}");
    assert_eq!(
        app.count("select count(*) from mail_in where status = 'failed'")
            .await,
        1
    );
    // Nobody here by that name.
    let (code, err) = pipe(&url, "sales@example.org", &new);
    assert_eq!(code, Some(67), "{err}");
    assert!(err.contains("no active mailbox"), "{err}");
    // The database is down: the MTA must keep the message and try again.
    let (code, err) = pipe(
        "postgres://unitrack:secret@127.0.0.1:1/unitrack",
        "helpdesk@example.org",
        &new,
    );
    assert_eq!(code, Some(75), "{err}");
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn an_admin_adds_a_mailbox_sees_a_failed_message_raw_and_processes_it_again() {
    let mut app = TestApp::new().await;
    let project = app.create_project("HD", "Help desk").await;
    app.create_user("admin@example.com", "Alex Admin", true)
        .await;
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    app.login("rita@example.com").await;
    app.get("/admin/mailboxes")
        .await
        .assert_status(axum::http::StatusCode::FORBIDDEN);
    app.get("/admin/mail-problems")
        .await
        .assert_status(axum::http::StatusCode::FORBIDDEN);
    app.login("admin@example.com").await;
    let project = project.to_string();
    app.post_form(
        "/admin/mailboxes",
        &[
            ("address", "not an address"),
            ("project_id", &project),
            ("from_name", "Help Desk"),
            ("active", "on"),
        ],
    )
    .await
    .assert_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Enter an e-mail address like name@example.com.")
    .assert_contains("value=\"not an address\"");
    app.post_form(
        "/admin/mailboxes",
        &[
            ("address", "Support@Example.org"),
            ("project_id", &project),
            ("from_name", "Help Desk"),
            ("active", "on"),
        ],
    )
    .await
    .assert_redirect_to("/admin/mailboxes");
    app.get("/admin/mailboxes")
        .await
        .assert_contains("support@example.org")
        .assert_contains("Help desk (HD)");
    app.post_form(
        "/admin/mailboxes",
        &[("address", "support@example.org"), ("project_id", &project)],
    )
    .await
    .assert_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Another mailbox already has this address.");
    let id: String = sqlx::query_scalar("select id::text from mailboxes")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.post_form(
        &format!("/admin/mailboxes/{id}"),
        &[
            ("address", "support@example.org"),
            ("project_id", &project),
            ("from_name", "IT Support"),
        ],
    )
    .await
    .assert_redirect_to("/admin/mailboxes");
    assert_eq!(
        app.count("select count(*) from mailboxes where not active and from_name = 'IT Support'")
            .await,
        1,
        "an unticked box deactivates"
    );
    exec(&app, "update mailboxes set active = true").await;
    assert_eq!(
        app.count("select count(*) from admin_audit where entity = 'mailbox'")
            .await,
        2
    );
    // A message too large for a small limit fails, and is listed with its source.
    let mut conn = app.pool.acquire().await.unwrap();
    let mailbox = mail::find_by_address(&mut conn, "support@example.org")
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let raw = b"From: Rita <rita@example.com>\r\nSubject: <script>x</script> Scanner\r\nMessage-ID: <scan@example.com>\r\n\r\nThe scanner is broken.\r\n";
    let small = Limits {
        max_bytes: 50,
        ..LIMITS
    };
    let outcome = mail::ingest(
        &app.pool,
        &mailbox,
        raw,
        Source::Imap,
        small,
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    let Outcome::Failed { mail: id, .. } = outcome else {
        panic!("{outcome:?}");
    };
    app.get("/admin/mail-problems")
        .await
        .assert_contains("too large")
        .assert_contains(&format!("/admin/mail-problems/{id}"));
    app.get(&format!("/admin/mail-problems/{id}"))
        .await
        .assert_contains("Process again")
        .assert_contains("&#60;script&#62;x&#60;/script&#62; Scanner")
        .assert_not_contains("<script>x");
    // With the configured limit it goes through.
    app.post_form(&format!("/admin/mail-problems/{id}/retry"), &[])
        .await
        .assert_redirect_to("/admin/mail-problems");
    app.get("/admin/mail-problems")
        .await
        .assert_contains("Opened HD-1.")
        .assert_not_contains("too large");
    assert_eq!(
        app.count("select count(*) from tickets where title like '%Scanner'")
            .await,
        1
    );
    app.expect_queued("mail_send", 1).await;
}
