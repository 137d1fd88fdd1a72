//! The conversation on a ticket: public replies and internal notes, canned responses,
//! attachments (limits, download headers, visibility), watchers, and stale-reply notices.

use axum::http::{StatusCode, header};

use crate::common::{TestApp, TestResponse};

/// HD with a requester (Rita, who files HD-1) and an agent (Lars, Agent L1 everywhere).
async fn desk(app: &mut TestApp) -> String {
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    app.create_user_with_role("lars@example.com", "Lars Agent", "Agent L1")
        .await;
    let project = app.create_project("HD", "Help desk").await.to_string();
    app.login("rita@example.com").await;
    app.get("/tickets/new").await;
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "Printer <b>jammed</b>"),
            ("description", "Tray 2."),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    project
}

/// The value of the first hidden input `name` in the reply form of a ticket page.
fn reply_input(page: &TestResponse, name: &str) -> String {
    let form = &page.body[page.body.find("id=\"reply\"").expect("reply form")..];
    let marker = format!("name=\"{name}\" value=\"");
    let start = form.find(&marker).expect("input") + marker.len();
    let end = form[start..].find('"').expect("end") + start;
    form[start..end].to_owned()
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    app.count(sql).await
}

#[tokio::test]
async fn requester_never_sees_internal_notes_on_the_page_or_in_search() {
    let mut app = TestApp::new().await;
    desk(&mut app).await;
    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    let page = lars.get("/tickets/HD-1").await;
    page.assert_contains("Internal note")
        .assert_contains("value=\"internal\"");
    lars.post_form(
        "/tickets/HD-1/comments",
        &[
            ("body", "Zebra firmware is broken, do not tell yet"),
            ("visibility", "internal"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");
    lars.post_form(
        "/tickets/HD-1/comments",
        &[("body", "We are on it."), ("visibility", "public")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");

    let staff = lars.get("/tickets/HD-1").await;
    staff
        .assert_contains("Zebra firmware")
        .assert_contains("wrote an internal note")
        .assert_contains("badge-internal");
    lars.get("/search?q=zebra")
        .await
        .assert_contains("/tickets/HD-1\"");

    let mine = app.get("/tickets/HD-1").await;
    mine.assert_contains("We are on it.")
        .assert_not_contains("Zebra")
        .assert_not_contains("internal note")
        .assert_not_contains("value=\"internal\"");
    app.get("/search?q=zebra")
        .await
        .assert_contains("Nothing found.")
        .assert_not_contains("/tickets/HD-1\"");
    let public: Vec<bool> = sqlx::query_scalar(
        "select (data->>'public')::boolean from ticket_events where kind = 'comment' order by id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(public, [false, true]);
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn a_requester_cannot_post_an_internal_note() {
    let mut app = TestApp::new().await;
    desk(&mut app).await;
    app.get("/tickets/HD-1")
        .await
        .assert_not_contains("Internal note");
    app.post_form(
        "/tickets/HD-1/comments",
        &[("body", "let me hide this"), ("visibility", "internal")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    let files: &[crate::common::FilePart<'_>] = &[("file", "a.txt", "text/plain", b"hello")];
    app.get("/tickets/HD-1").await;
    app.post_multipart(
        "/tickets/HD-1/attachments",
        &[("visibility", "internal")],
        files,
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    assert_eq!(
        count(
            &app,
            "select count(*) from ticket_events where kind <> 'created'"
        )
        .await,
        0
    );
    assert_eq!(count(&app, "select count(*) from attachments").await, 0);
}

#[tokio::test]
async fn canned_responses_refuse_unknown_placeholders_and_fill_the_reply() {
    let mut app = TestApp::new().await;
    desk(&mut app).await;
    let erp = app.create_project("ERP", "ERP").await.to_string();
    app.create_user("admin@example.com", "Alex Admin", true)
        .await;
    let mut admin = app.other_browser();
    admin.login("admin@example.com").await;
    admin.get("/admin").await.assert_contains("/admin/canned");
    admin
        .get("/admin/canned")
        .await
        .assert_status(StatusCode::OK);
    admin
        .post_form(
            "/admin/canned",
            &[
                ("title", "Greeting"),
                ("project_id", ""),
                ("body", "Dear {{customer.name}}, about {{ticket.key}}"),
            ],
        )
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Unknown placeholder {{customer.name}}")
        .assert_contains("Dear {{customer.name}}, about {{ticket.key}}</textarea>")
        .assert_contains("value=\"Greeting\"");
    admin
        .post_form(
            "/admin/canned",
            &[
                ("title", "Broken"),
                ("project_id", ""),
                ("body", "Hello {{requester.name"),
            ],
        )
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("is not closed");
    assert_eq!(
        count(&app, "select count(*) from canned_responses").await,
        0
    );

    admin
        .post_form(
            "/admin/canned",
            &[
                ("title", "Greeting"),
                ("project_id", ""),
                (
                    "body",
                    "Hello {{requester.first_name}}, about {{ticket.key}} ({{ticket.title}}). — {{agent.name}}",
                ),
            ],
        )
        .await
        .assert_redirect_to("/admin/canned");
    admin
        .post_form(
            "/admin/canned",
            &[
                ("title", "ERP only"),
                ("project_id", &erp),
                ("body", "ERP text"),
            ],
        )
        .await
        .assert_redirect_to("/admin/canned");
    assert_eq!(
        count(
            &app,
            "select count(*) from admin_audit where entity = 'canned_response'"
        )
        .await,
        2
    );
    let greeting: String =
        sqlx::query_scalar("select id::text from canned_responses where title = 'Greeting'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let erp_only: String =
        sqlx::query_scalar("select id::text from canned_responses where title = 'ERP only'")
            .fetch_one(&app.pool)
            .await
            .unwrap();

    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    let page = lars.get("/tickets/HD-1").await;
    page.assert_contains("Greeting")
        .assert_not_contains("ERP only");
    lars.get(&format!("/tickets/HD-1?canned={greeting}"))
        .await
        .assert_status(StatusCode::OK)
        .assert_contains(
            ">Hello Rita, about HD-1 (Printer &#60;b&#62;jammed&#60;/b&#62;). — Lars Agent</textarea>",
        );
    lars.get(&format!("/tickets/HD-1?canned={erp_only}"))
        .await
        .assert_contains("This canned response is not offered here.")
        .assert_not_contains("ERP text</textarea>");
    // Requesters get no canned responses, not even by guessing the link.
    app.get(&format!("/tickets/HD-1?canned={greeting}"))
        .await
        .assert_not_contains("Hello Rita")
        .assert_not_contains("Greeting");
}

fn png() -> Vec<u8> {
    let mut data = b"\x89PNG\r\n\x1a\n".to_vec();
    data.extend_from_slice(&[0u8; 64]);
    data
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_with_413_and_nothing_is_stored() {
    let mut app = TestApp::with_config(|c| {
        c.attachment_max_bytes = 1024;
        c.max_body_bytes = 4096;
    })
    .await;
    desk(&mut app).await;
    let page = app.get("/tickets/HD-1").await;
    page.assert_contains("data-max-bytes=\"1024\"")
        .assert_contains("at most 1 KB each")
        .assert_contains("/static/attach.js");
    let big = vec![b'x'; 2000];
    app.post_multipart(
        "/tickets/HD-1/comments",
        &[("body", "Here is the log"), ("visibility", "public")],
        &[("file", "huge.log", "text/plain", &big)],
    )
    .await
    .assert_status(StatusCode::PAYLOAD_TOO_LARGE)
    .assert_contains("“huge.log” is 2.0 KB; files can be at most 1 KB.")
    .assert_contains("Here is the log</textarea>")
    .assert_contains("choose them again");
    app.post_multipart(
        "/tickets/HD-1/attachments",
        &[],
        &[("file", "huge.log", "text/plain", &big)],
    )
    .await
    .assert_status(StatusCode::PAYLOAD_TOO_LARGE)
    .assert_contains("files can be at most 1 KB");
    // Past the whole body's limit the request is refused before any handler runs.
    let huge = vec![b'x'; 10_000];
    app.post_multipart(
        "/tickets/HD-1/comments",
        &[("body", "again")],
        &[("file", "huger.log", "text/plain", &huge)],
    )
    .await
    .assert_status(StatusCode::PAYLOAD_TOO_LARGE)
    .assert_contains("Files can be at most 1 KB");
    assert_eq!(count(&app, "select count(*) from attachments").await, 0);
    assert_eq!(
        count(
            &app,
            "select count(*) from ticket_events where kind <> 'created'"
        )
        .await,
        0
    );

    // Within the limit it is stored, with its event, in the same request as the comment.
    app.get("/tickets/HD-1").await;
    app.post_multipart(
        "/tickets/HD-1/comments",
        &[("body", "Here is the log"), ("visibility", "public")],
        &[("file", "small.log", "text/plain", b"line 1\n")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");
    let (name, size, linked): (String, i64, bool) = sqlx::query_as(
        "select a.filename, a.size, a.event_id = (select max(id) from ticket_events e where e.kind = 'comment')
         from attachments a",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((name.as_str(), size, linked), ("small.log", 7, true));
    assert_eq!(
        count(
            &app,
            "select count(*) from ticket_events where kind = 'attachment_added'"
        )
        .await,
        1
    );
    app.get("/tickets/HD-1")
        .await
        .assert_contains("small.log")
        .assert_contains("7 bytes")
        .assert_contains("attached “small.log”");
}

#[tokio::test]
async fn a_multipart_form_without_the_token_is_refused() {
    let mut app = TestApp::new().await;
    desk(&mut app).await;
    let (content_type, body) = TestApp::multipart(
        Some("wrong-token-wrong-token-wrong-token-wrong-t"),
        &[("body", "forged")],
        &[("file", "a.txt", "text/plain", b"x")],
    );
    app.send_body("/tickets/HD-1/comments", &content_type, body)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let (content_type, body) = TestApp::multipart(None, &[("body", "forged")], &[]);
    app.send_body("/tickets/HD-1/comments", &content_type, body)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    assert_eq!(
        count(
            &app,
            "select count(*) from ticket_events where kind <> 'created'"
        )
        .await,
        0
    );
}

async fn attachment_id(app: &TestApp, filename: &str) -> String {
    sqlx::query_scalar("select id::text from attachments where filename = $1")
        .bind(filename)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn downloads_are_served_so_that_browsers_never_run_them() {
    let mut app = TestApp::new().await;
    desk(&mut app).await;
    app.get("/tickets/HD-1").await;
    let png = png();
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    app.post_multipart(
        "/tickets/HD-1/attachments",
        &[],
        &[
            ("file", "screen.png", "image/png", &png),
            ("file", "logo.svg", "image/svg+xml", svg),
            ("file", "fake.png", "image/png", b"<html><script>x</script>"),
            (
                "file",
                "../../März <notes>.html",
                "text/html",
                b"<h1>hi</h1>",
            ),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#files");
    assert_eq!(
        count(
            &app,
            "select count(*) from ticket_events where kind = 'attachment_added'"
        )
        .await,
        4
    );
    let page = app.get("/tickets/HD-1").await;
    page.assert_contains("screen.png")
        .assert_contains("März _notes_.html")
        .assert_not_contains("../");

    let cases = [
        ("screen.png", "inline", "image/png"),
        ("logo.svg", "attachment", "image/svg+xml"),
        ("fake.png", "attachment", "application/octet-stream"),
        ("März _notes_.html", "attachment", "text/html"),
    ];
    for (name, disposition, content_type) in cases {
        let id = attachment_id(&app, name).await;
        let (status, headers, body) = app
            .get_bytes(&format!("/tickets/HD-1/attachments/{id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{name}");
        let header = |h: header::HeaderName| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{name}");
        assert!(
            header(header::CONTENT_SECURITY_POLICY).starts_with("sandbox"),
            "{name}: {}",
            header(header::CONTENT_SECURITY_POLICY)
        );
        assert_eq!(header(header::CONTENT_TYPE), content_type, "{name}");
        let cd = header(header::CONTENT_DISPOSITION);
        assert!(cd.starts_with(&format!("{disposition};")), "{name}: {cd}");
        if name == "screen.png" {
            assert_eq!(body, png);
        }
        if name.starts_with("März") {
            assert!(
                cd.contains("filename=\"M_rz _notes_.html\"")
                    && cd.contains("filename*=UTF-8''M%C3%A4rz%20_notes_.html"),
                "{cd}"
            );
        }
    }
    // Other pages keep the usual policy.
    let csp = page
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
}

#[tokio::test]
async fn requesters_get_404_for_internal_files_and_other_tickets_files() {
    let mut app = TestApp::new().await;
    let project = desk(&mut app).await;
    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    // Lars attaches a file with an internal note, and one publicly.
    lars.get("/tickets/HD-1").await;
    lars.post_multipart(
        "/tickets/HD-1/comments",
        &[
            ("body", "Vendor contract attached"),
            ("visibility", "internal"),
        ],
        &[(
            "file",
            "contract.pdf",
            "application/pdf",
            b"%PDF-1.4 secret",
        )],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");
    let internal = attachment_id(&app, "contract.pdf").await;
    let internal_flag: bool = sqlx::query_scalar("select internal from attachments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(internal_flag);

    lars.get(&format!("/tickets/HD-1/attachments/{internal}"))
        .await
        .assert_status(StatusCode::OK);
    app.get(&format!("/tickets/HD-1/attachments/{internal}"))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.get("/tickets/HD-1")
        .await
        .assert_not_contains("contract.pdf")
        .assert_not_contains("Vendor contract");

    // Another requester's ticket and its file.
    app.create_user("otto@example.com", "Otto", false).await;
    let mut otto = app.other_browser();
    otto.login("otto@example.com").await;
    otto.get("/tickets/new").await;
    otto.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "Otto's matter"),
            ("description", ""),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-2");
    otto.get("/tickets/HD-2").await;
    otto.post_multipart(
        "/tickets/HD-2/attachments",
        &[],
        &[("file", "otto.txt", "text/plain", b"private")],
    )
    .await
    .assert_redirect_to("/tickets/HD-2#files");
    let foreign = attachment_id(&app, "otto.txt").await;
    for path in [
        format!("/tickets/HD-2/attachments/{foreign}"),
        format!("/tickets/HD-1/attachments/{foreign}"),
        "/tickets/HD-1/attachments/not-a-uuid".to_owned(),
    ] {
        app.get(&path).await.assert_status(StatusCode::NOT_FOUND);
    }
    otto.get(&format!("/tickets/HD-2/attachments/{foreign}"))
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn watchers_are_added_and_removed_with_events() {
    let mut app = TestApp::new().await;
    desk(&mut app).await;
    app.create_user("otto@example.com", "Otto Other", false)
        .await;
    let otto_id: String = sqlx::query_scalar("select id::text from users where email = $1")
        .bind("otto@example.com")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut otto = app.other_browser();
    otto.login("otto@example.com").await;
    otto.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::NOT_FOUND);
    otto.post_form("/tickets/HD-1/watch", &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);

    // The requester watches her own ticket, but may not add others.
    let page = app.get("/tickets/HD-1").await;
    page.assert_contains("Nobody watches this ticket yet.")
        .assert_not_contains("Add a watcher");
    app.post_form("/tickets/HD-1/watch", &[])
        .await
        .assert_redirect_to("/tickets/HD-1");
    app.get("/tickets/HD-1")
        .await
        .assert_contains("Rita Requester (you)")
        .assert_contains("started watching")
        .assert_contains("Stop watching");
    app.post_form("/tickets/HD-1/watchers", &[("email", "otto@example.com")])
        .await
        .assert_status(StatusCode::FORBIDDEN);

    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    lars.get("/tickets/HD-1")
        .await
        .assert_contains("Add a watcher");
    lars.post_form("/tickets/HD-1/watchers", &[("email", "nobody@example.com")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("There is no account with this e-mail address.")
        .assert_contains("value=\"nobody@example.com\"");
    lars.post_form("/tickets/HD-1/watchers", &[("email", "Otto@Example.com")])
        .await
        .assert_redirect_to("/tickets/HD-1");
    // Adding again changes nothing.
    lars.post_form("/tickets/HD-1/watchers", &[("email", "otto@example.com")])
        .await
        .assert_redirect_to("/tickets/HD-1");
    otto.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Otto Other (you)")
        .assert_contains("Lars Agent</strong> added Otto Other as a watcher");
    lars.post_form(&format!("/tickets/HD-1/watchers/{otto_id}/remove"), &[])
        .await
        .assert_redirect_to("/tickets/HD-1");
    otto.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // Stopping to watch a ticket one then cannot see leads back to one's requests.
    app.post_form("/tickets/HD-1/unwatch", &[])
        .await
        .assert_redirect_to("/tickets/HD-1");

    let events: Vec<(String, String)> = sqlx::query_as(
        "select kind, data->>'user' from ticket_events
         where kind in ('watcher_added', 'watcher_removed') order by id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        events,
        [
            ("watcher_added".to_owned(), "Rita Requester".to_owned()),
            ("watcher_added".to_owned(), "Otto Other".to_owned()),
            ("watcher_removed".to_owned(), "Otto Other".to_owned()),
            ("watcher_removed".to_owned(), "Rita Requester".to_owned()),
        ]
    );
    assert_eq!(count(&app, "select count(*) from ticket_watchers").await, 0);
}

#[tokio::test]
async fn watching_through_a_watch_only_relation_and_stopping_leads_home() {
    let mut app = TestApp::new().await;
    desk(&mut app).await;
    app.create_user("otto@example.com", "Otto Other", false)
        .await;
    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    lars.get("/tickets/HD-1").await;
    lars.post_form("/tickets/HD-1/watchers", &[("email", "otto@example.com")])
        .await
        .assert_redirect_to("/tickets/HD-1");
    let mut otto = app.other_browser();
    otto.login("otto@example.com").await;
    otto.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::OK);
    otto.post_form("/tickets/HD-1/unwatch", &[])
        .await
        .assert_redirect_to("/requests");
    otto.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stale_reply_is_kept_with_a_notice_of_who_changed_what() {
    let mut app = TestApp::new().await;
    desk(&mut app).await;
    let page = app.get("/tickets/HD-1").await;
    let (version, seen) = (reply_input(&page, "version"), reply_input(&page, "seen"));

    // An internal note is not Rita's business: her reply still goes through.
    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    lars.get("/tickets/HD-1").await;
    lars.post_form(
        "/tickets/HD-1/comments",
        &[("body", "Checking the driver"), ("visibility", "internal")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");
    app.post_form(
        "/tickets/HD-1/comments",
        &[
            ("body", "First reply"),
            ("version", &version),
            ("seen", &seen),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");

    let page = app.get("/tickets/HD-1").await;
    let (version, seen) = (reply_input(&page, "version"), reply_input(&page, "seen"));
    lars.post_form(
        "/tickets/HD-1/comments",
        &[("body", "Please restart it."), ("visibility", "public")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");
    let refused = app
        .post_form(
            "/tickets/HD-1/comments",
            &[
                ("body", "My long careful answer"),
                ("version", &version),
                ("seen", &seen),
            ],
        )
        .await;
    refused
        .assert_status(StatusCode::CONFLICT)
        .assert_contains("while you were writing")
        .assert_contains("Since you opened the page")
        .assert_contains("<strong>Lars Agent</strong> commented")
        .assert_not_contains("Checking the driver")
        .assert_contains("My long careful answer</textarea>")
        .assert_contains("Reply anyway");
    assert_eq!(
        count(
            &app,
            "select count(*) from ticket_events where data->>'body_md' = 'My long careful answer'"
        )
        .await,
        0
    );
    // Sending again from the refreshed form goes through.
    let (version, seen) = (
        reply_input(&refused, "version"),
        reply_input(&refused, "seen"),
    );
    app.post_form(
        "/tickets/HD-1/comments",
        &[
            ("body", "My long careful answer"),
            ("version", &version),
            ("seen", &seen),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");

    // A stale field edit names who changed the ticket, too.
    let page = lars.get("/tickets/HD-1").await;
    let (version, seen) = (reply_input(&page, "version"), reply_input(&page, "seen"));
    app.post_form("/tickets/HD-1/comments", &[("body", "One more thing")])
        .await
        .assert_redirect_to("/tickets/HD-1#comment");
    lars.post_form(
        "/tickets/HD-1/fields",
        &[("version", &version), ("seen", &seen)],
    )
    .await
    .assert_status(StatusCode::CONFLICT)
    .assert_contains("<strong>Rita Requester</strong> commented");
    app.expect_queued("mail_send", 1).await;
}
