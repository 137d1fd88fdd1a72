//! Filing a ticket, "My requests", the ticket page, comments and the history they write.

use axum::http::StatusCode;

use crate::common::TestApp;

async fn app_with_requester() -> (TestApp, String) {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    let project = app.create_project("HD", "Help desk").await;
    app.login("rita@example.com").await;
    (app, project.to_string())
}

#[tokio::test]
async fn a_requester_files_a_ticket_finds_it_and_comments() {
    let (mut app, project) = app_with_requester().await;
    app.get("/tickets/new")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Help desk (HD)");
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "Printer on floor 3 is jammed"),
            ("description", "It says **paper jam** in tray 2."),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    app.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Your request HD-1 was filed.")
        .assert_contains("Printer on floor 3 is jammed")
        .assert_contains("<strong>paper jam</strong>");
    app.get("/requests")
        .await
        .assert_contains("HD-1")
        .assert_contains("Printer on floor 3");

    app.post_form(
        "/tickets/HD-1/comments",
        &[("body", "Still jammed this morning.")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");
    app.get("/tickets/HD-1")
        .await
        .assert_contains("Still jammed this morning.");

    let events: Vec<(String, Option<String>)> = sqlx::query_as(
        "select kind, (select email from users u where u.id = actor_id) from ticket_events order by id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![
            ("created".to_owned(), Some("rita@example.com".to_owned())),
            ("comment".to_owned(), Some("rita@example.com".to_owned())),
        ]
    );
    let version: i32 = sqlx::query_scalar("select version from tickets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(version, 2, "a comment bumps the version");
}

#[tokio::test]
async fn ticket_numbers_count_up_per_project() {
    let (mut app, hd) = app_with_requester().await;
    let erp = app
        .create_project("ERP", "ERP development")
        .await
        .to_string();
    for (project, expected) in [(&hd, "HD-1"), (&hd, "HD-2"), (&erp, "ERP-1"), (&hd, "HD-3")] {
        app.post_form(
            "/tickets",
            &[("project_id", project), ("title", "t"), ("description", "")],
        )
        .await
        .assert_redirect_to(&format!("/tickets/{expected}"));
    }
}

#[tokio::test]
async fn filings_at_the_same_time_get_distinct_numbers() {
    let (app, hd) = app_with_requester().await;
    let mut browsers = Vec::new();
    for _ in 0..8 {
        let mut b = app.other_browser();
        b.login("rita@example.com").await;
        browsers.push(b);
    }
    let filings = browsers.into_iter().map(|mut b| {
        let hd = hd.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                b.post_form(
                    "/tickets",
                    &[("project_id", &hd), ("title", "t"), ("description", "")],
                )
                .await
                .assert_status(StatusCode::SEE_OTHER);
            }
        })
    });
    for filing in futures_util::future::join_all(filings).await {
        filing.unwrap();
    }
    let numbers: Vec<i64> = sqlx::query_scalar("select number from tickets order by number")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(numbers, (1..=24).collect::<Vec<i64>>());
}

#[tokio::test]
async fn bad_input_keeps_what_was_typed_and_writes_nothing() {
    let (mut app, project) = app_with_requester().await;
    let long_title = "x".repeat(201);
    let response = app
        .post_form(
            "/tickets",
            &[
                ("project_id", &project),
                ("title", &long_title),
                ("description", "my careful description"),
            ],
        )
        .await;
    response
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Use at most 200 characters")
        .assert_contains("my careful description");
    app.post_form(
        "/tickets",
        &[
            ("project_id", "not-a-uuid"),
            ("title", "  "),
            ("description", ""),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Choose a project.")
    .assert_contains("This cannot be empty.");
    assert_eq!(app.count("select count(*) from tickets").await, 0);
    assert_eq!(app.count("select count(*) from ticket_events").await, 0);
    let taken: bool = sqlx::query_scalar(
        "select last_value is not null from pg_sequences
         where sequencename = ticket_number_sequence($1::uuid)",
    )
    .bind(&project)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(!taken, "a refused ticket takes no number");

    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "ok"),
            ("description", ""),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    app.post_form("/tickets/HD-1/comments", &[("body", "   ")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("This cannot be empty.");
    assert_eq!(app.count("select count(*) from ticket_events").await, 1);
}

#[tokio::test]
async fn script_in_a_comment_stays_inert() {
    let (mut app, project) = app_with_requester().await;
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "<script>alert('t')</script>"),
            ("description", "<img src=x onerror=alert(1)>"),
        ],
    )
    .await;
    app.post_form(
        "/tickets/HD-1/comments",
        &[(
            "body",
            "<script>alert('c')</script> [x](javascript:alert(2))",
        )],
    )
    .await;
    let page = app.get("/tickets/HD-1").await;
    page.assert_not_contains("<script>alert")
        .assert_not_contains("onerror")
        .assert_not_contains("javascript:")
        .assert_contains("&#60;script&#62;alert(");
    let csp = page
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"));
}

#[tokio::test]
async fn someone_elses_ticket_answers_404_like_a_missing_one() {
    let (mut app, project) = app_with_requester().await;
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "Rita's private matter"),
            ("description", ""),
        ],
    )
    .await;
    app.create_user("otto@example.com", "Otto", false).await;
    let mut otto = app.other_browser();
    otto.login("otto@example.com").await;
    let foreign = otto.get("/tickets/HD-1").await;
    let missing = otto.get("/tickets/HD-999").await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!foreign.body.contains("Rita"));
    let strip = |b: &str| b.split("Reference:").next().unwrap_or("").to_owned();
    assert_eq!(strip(&foreign.body), strip(&missing.body));
    otto.post_form("/tickets/HD-1/comments", &[("body", "let me in")])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    otto.get("/requests").await.assert_not_contains("HD-1");
    assert_eq!(
        app.count("select count(*) from ticket_events where kind = 'comment'")
            .await,
        0
    );
    // An admin sees it.
    app.create_user("admin@example.com", "Alex Admin", true)
        .await;
    let mut admin = app.other_browser();
    admin.login("admin@example.com").await;
    admin
        .get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn keys_are_found_in_any_case_and_nonsense_keys_are_404() {
    let (mut app, project) = app_with_requester().await;
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "t"),
            ("description", ""),
        ],
    )
    .await;
    app.get("/tickets/hd-1")
        .await
        .assert_redirect_to("/tickets/HD-1");
    for path in [
        "/tickets/HD-0",
        "/tickets/HD-abc",
        "/tickets/..%2Fetc",
        "/tickets/HD-99999999999999999999",
    ] {
        app.get(path).await.assert_status(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn my_requests_pages_with_a_keyset_cursor() {
    let (mut app, project) = app_with_requester().await;
    for i in 1..=30 {
        app.post_form(
            "/tickets",
            &[
                ("project_id", &project),
                ("title", &format!("Request number {i}")),
                ("description", ""),
            ],
        )
        .await;
    }
    let first = app.get("/requests").await;
    first
        .assert_contains("HD-30")
        .assert_contains("HD-6<")
        .assert_not_contains("HD-5<");
    let start = first.body.find("/requests?after=").unwrap() + "/requests?after=".len();
    let cursor = &first.body[start..start + 36];
    let second = app.get(&format!("/requests?after={cursor}")).await;
    second
        .assert_contains("HD-5<")
        .assert_contains("HD-1<")
        .assert_not_contains("HD-6<")
        .assert_not_contains("/requests?after=");
    app.get("/requests?after=garbage")
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn history_cannot_be_rewritten() {
    let (mut app, project) = app_with_requester().await;
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "t"),
            ("description", ""),
        ],
    )
    .await;
    let update = sqlx::query("update ticket_events set kind = 'x'")
        .execute(&app.pool)
        .await;
    assert!(update.is_err());
    let delete = sqlx::query("delete from ticket_events")
        .execute(&app.pool)
        .await;
    assert!(delete.is_err());
    assert_eq!(app.count("select count(*) from ticket_events").await, 1);
    // Published process versions are fixed too: tickets follow them and instances cache them.
    let versions = app.count("select count(*) from process_versions").await;
    assert!(versions > 0);
    for change in [
        "update process_versions set definition = '{}'",
        "delete from process_versions",
    ] {
        let refused = sqlx::raw_sql(sqlx::AssertSqlSafe(change))
            .execute(&app.pool)
            .await;
        assert!(refused.is_err(), "{change} must be refused");
    }
    assert_eq!(
        app.count("select count(*) from process_versions").await,
        versions
    );
}

#[tokio::test]
async fn people_file_only_where_a_role_lets_them() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await;
    let erp = app.create_project("ERP", "ERP development").await;
    let rita = app
        .create_user_with_role("rita@example.com", "Rita", "Agent L1")
        .await;
    let mut conn = app.pool.acquire().await.unwrap();
    // Agent L1 (which includes ticket.create) in HD only; no global role.
    sqlx::query("delete from memberships where user_id = $1")
        .bind(rita)
        .execute(&mut *conn)
        .await
        .unwrap();
    let role = unitrack::people::roles::find_by_name(&mut conn, "Agent L1")
        .await
        .unwrap()
        .unwrap();
    unitrack::people::roles::grant(
        &mut conn,
        role.id,
        unitrack::people::roles::Holder::User(rita),
        Some(hd),
        crate::common::t0(),
    )
    .await
    .unwrap();
    drop(conn);
    app.login("rita@example.com").await;
    app.get("/tickets/new")
        .await
        .assert_contains("Help desk (HD)")
        .assert_not_contains("(ERP)");
    app.post_form(
        "/tickets",
        &[
            ("project_id", &erp.to_string()),
            ("title", "Sneaky"),
            ("description", ""),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("You cannot file requests in this project.");
    assert_eq!(app.count("select count(*) from tickets").await, 0);
}

#[tokio::test]
async fn search_ranks_highlights_and_respects_who_may_see_what() {
    let (mut app, project) = app_with_requester().await;
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "Printer jam on floor 3"),
            ("description", "Tray <b>2</b>"),
        ],
    )
    .await;
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "VPN drops"),
            ("description", "Since Monday"),
        ],
    )
    .await;
    app.post_form(
        "/tickets/HD-2/comments",
        &[("body", "Maybe the printer driver update?")],
    )
    .await;
    app.create_user("otto@example.com", "Otto", false).await;
    let mut otto = app.other_browser();
    otto.login("otto@example.com").await;
    otto.get("/tickets/new").await;
    otto.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "Otto's secret printer"),
            ("description", ""),
        ],
    )
    .await;

    let page = app.get("/search?q=printer").await;
    page.assert_status(StatusCode::OK)
        .assert_contains("<mark>Printer</mark>")
        .assert_not_contains("secret")
        .assert_not_contains("<b>2</b>");
    let first = page.body.find("/tickets/HD-1\"").unwrap();
    let second = page.body.find("/tickets/HD-2\"").unwrap();
    assert!(first < second, "a title match ranks above a comment match");
    app.get("/search?q=hd-2")
        .await
        .assert_redirect_to("/tickets/HD-2");
    app.get("/search?q=%22no+such+words%22")
        .await
        .assert_contains("Nothing found.");
    otto.get("/search?q=printer")
        .await
        .assert_contains("secret")
        .assert_not_contains("HD-1<");
    app.get("/search?q=printer")
        .await
        .assert_not_contains("Add words to narrow the search");

    // Common words: only the first CANDIDATES matches are ranked, and the page says so.
    sqlx::query(
        "insert into tickets (id, project_id, number, title, description_md, description_html,
                              requester_id, state, state_category, created_at, updated_at)
         select gen_random_uuid(), t.project_id, 100 + g, 'Printer toner empty', '', '',
                t.requester_id, t.state, t.state_category, now(), now()
         from tickets t, generate_series(1, $1) g where t.number = 1",
    )
    .bind(unitrack::tickets::search::CANDIDATES)
    .execute(&app.pool)
    .await
    .unwrap();
    let page = app.get("/search?q=printer").await;
    page.assert_status(StatusCode::OK)
        .assert_contains("Add words to narrow the search");
    assert_eq!(
        page.body.matches("<li><a class=\"key\"").count() as i64,
        unitrack::tickets::search::LIMIT
    );
}
