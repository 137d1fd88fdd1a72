//! Sign-in, sign-out, sessions, throttling and CSRF.

use axum::http::StatusCode;
use jiff::SignedDuration;

use crate::common::{NowTs, PASSWORD, TestApp, t0};

#[tokio::test]
async fn a_user_signs_in_and_out() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    app.get("/requests")
        .await
        .assert_redirect_to("/login?next=%2Frequests");
    app.get("/login").await.assert_status(StatusCode::OK);
    app.post_form(
        "/login",
        &[
            ("email", "RITA@example.com"),
            ("password", PASSWORD),
            ("next", "/requests"),
        ],
    )
    .await
    .assert_redirect_to("/requests");
    app.get("/requests")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Rita Requester");
    app.post_form("/logout", &[])
        .await
        .assert_redirect_to("/login");
    app.get("/login")
        .await
        .assert_contains("You are signed out.");
    app.get("/requests")
        .await
        .assert_redirect_to("/login?next=%2Frequests");
    assert_eq!(app.count("select count(*) from sessions").await, 0);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.get("/login").await;
    let wrong = app
        .post_form(
            "/login",
            &[
                ("email", "rita@example.com"),
                ("password", "not the password"),
            ],
        )
        .await;
    let unknown = app
        .post_form(
            "/login",
            &[
                ("email", "nobody@example.com"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    wrong.assert_contains("E-mail or password is wrong.");
    let strip = |body: &str, email: &str| body.replace(email, "EMAIL");
    assert_eq!(
        strip(&wrong.body, "rita@example.com"),
        strip(&unknown.body, "nobody@example.com"),
        "the pages must differ only in the e-mail typed"
    );
    // The typed e-mail is kept in the form.
    wrong.assert_contains("value=\"rita@example.com\"");
    assert!(app.cookie("ut_session").is_none());
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_with_the_right_password() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.get("/login").await;
    for _ in 0..app.config.login_max_failures_account {
        app.post_form(
            "/login",
            &[("email", "rita@example.com"), ("password", "wrong wrong")],
        )
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    }
    let locked = app
        .post_form(
            "/login",
            &[("email", "rita@example.com"), ("password", PASSWORD)],
        )
        .await;
    locked
        .assert_status(StatusCode::TOO_MANY_REQUESTS)
        .assert_contains("Too many failed sign-ins");
    assert!(locked.headers.get("retry-after").is_some());
    // Unknown accounts lock the same way: the lock reveals nothing.
    for _ in 0..app.config.login_max_failures_account {
        app.post_form(
            "/login",
            &[("email", "ghost@example.com"), ("password", "wrong wrong")],
        )
        .await;
    }
    app.post_form(
        "/login",
        &[("email", "ghost@example.com"), ("password", "x")],
    )
    .await
    .assert_status(StatusCode::TOO_MANY_REQUESTS);
    // The lock is in the database: a new app instance on the same database sees it.
    let rows = app
        .count("select count(*) from login_throttle where scope = 'account' and locked_until is not null")
        .await;
    assert_eq!(rows, 2);
    // After the window the right password works again.
    app.clock.advance(SignedDuration::from_mins(16));
    app.post_form(
        "/login",
        &[("email", "rita@example.com"), ("password", PASSWORD)],
    )
    .await
    .assert_redirect_to("/");
    assert_eq!(
        app.count("select count(*) from login_throttle where scope = 'account' and key = 'rita@example.com'")
            .await,
        0,
        "success clears the account's failures"
    );
}

#[tokio::test]
async fn the_throttle_is_shared_by_app_instances() {
    let mut first = TestApp::new().await;
    first.create_user("rita@example.com", "Rita", false).await;
    first.get("/login").await;
    for _ in 0..first.config.login_max_failures_account {
        first
            .post_form(
                "/login",
                &[("email", "rita@example.com"), ("password", "wrong wrong")],
            )
            .await;
    }
    // A second router with its own state on the same database: another instance.
    let state = unitrack::web::AppState::new(
        first.pool.clone(),
        std::sync::Arc::new(first.clock.clone()),
        first.config.clone(),
    );
    let second = unitrack::web::router(state)
        .layer(axum::extract::connect_info::MockConnectInfo(first.peer));
    first.router = second;
    first
        .post_form(
            "/login",
            &[("email", "rita@example.com"), ("password", PASSWORD)],
        )
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn too_many_failures_from_one_address_lock_that_address() {
    let mut app = TestApp::with_config(|c| c.login_max_failures_address = 3).await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.get("/login").await;
    for i in 0..3 {
        let email = format!("user{i}@example.com");
        app.post_form("/login", &[("email", &email), ("password", "wrong wrong")])
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    app.post_form(
        "/login",
        &[("email", "rita@example.com"), ("password", PASSWORD)],
    )
    .await
    .assert_status(StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_huge_email_gets_the_wrong_password_answer_and_counts_against_the_address() {
    let mut app = TestApp::with_config(|c| c.login_max_failures_address = 2).await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.get("/login").await;
    let unknown = app
        .post_form(
            "/login",
            &[("email", "nobody@example.com"), ("password", "wrong wrong")],
        )
        .await;
    // Random, so PostgreSQL cannot compress it below its index row limit.
    let local: String = {
        use rand::Rng;
        rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(5 * 1024)
            .map(char::from)
            .collect()
    };
    let huge = format!("{local}@example.com");
    let response = app
        .post_form("/login", &[("email", &huge), ("password", "wrong wrong")])
        .await;
    response
        .assert_status(StatusCode::UNAUTHORIZED)
        .assert_contains("E-mail or password is wrong.");
    assert_eq!(
        response.body.replace(&huge, "EMAIL"),
        unknown.body.replace("nobody@example.com", "EMAIL"),
        "the same page as for an unknown account"
    );
    assert_eq!(
        app.count("select count(*) from login_throttle where length(key) > 254")
            .await,
        0
    );
    // The address reached its limit of two: even the right password waits now.
    app.post_form(
        "/login",
        &[("email", "rita@example.com"), ("password", PASSWORD)],
    )
    .await
    .assert_status(StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    let first = app.cookie("ut_session").map(str::to_owned);
    app.get("/login").await; // signed in: redirected, nothing else
    app.post_form(
        "/login",
        &[("email", "rita@example.com"), ("password", PASSWORD)],
    )
    .await
    .assert_redirect_to("/");
    let second = app.cookie("ut_session").map(str::to_owned);
    assert_ne!(first, second);
    assert_eq!(
        app.count("select count(*) from sessions").await,
        1,
        "the old session ended"
    );
}

#[tokio::test]
async fn session_cookies_are_http_only_and_lax_and_secure_on_https() {
    let mut app =
        TestApp::with_config(|c| c.base_url = Some("https://desk.example.com".parse().unwrap()))
            .await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.get("/login").await;
    let csrf = app.cookie("ut_csrf").unwrap().to_owned();
    let response = app
        .post_raw(
            "/login",
            &[
                ("email", "rita@example.com"),
                ("password", PASSWORD),
                ("_csrf", &csrf),
            ],
            &[("origin", "https://desk.example.com")],
        )
        .await;
    response.assert_redirect_to("/");
    let cookie = response
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("ut_session="))
        .unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    app.clock.advance(SignedDuration::from_mins(29));
    app.get("/requests").await.assert_status(StatusCode::OK);
    app.clock.advance(SignedDuration::from_mins(31));
    app.get("/requests")
        .await
        .assert_redirect_to("/login?next=%2Frequests");
    assert!(
        app.cookie("ut_session").is_none(),
        "an expired cookie is cleared"
    );

    app.login("rita@example.com").await;
    for _ in 0..30 {
        // Active every 25 minutes: never idle, but 12 hours pass.
        app.clock.advance(SignedDuration::from_mins(25));
        let response = app.get("/requests").await;
        if response.status != StatusCode::OK {
            response.assert_redirect_to("/login?next=%2Frequests");
            return;
        }
    }
    panic!("the session outlived its absolute limit");
}

#[tokio::test]
async fn my_account_lists_sessions_and_revokes_one() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    app.clock.advance(SignedDuration::from_mins(1));
    let mut phone = app.other_browser();
    phone.login("rita@example.com").await;
    let page = app.get("/account").await;
    page.assert_status(StatusCode::OK)
        .assert_contains("(this session)");
    assert_eq!(page.body.matches("/revoke\"").count(), 2);
    let phones: String =
        sqlx::query_scalar("select public_id::text from sessions order by created_at desc limit 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    page.assert_contains(&format!("/account/sessions/{phones}/revoke"));
    app.post_form(&format!("/account/sessions/{phones}/revoke"), &[])
        .await
        .assert_redirect_to("/account");
    assert_eq!(app.count("select count(*) from sessions").await, 1);
    app.get("/requests").await.assert_status(StatusCode::OK);
    phone
        .get("/requests")
        .await
        .assert_redirect_to("/login?next=%2Frequests");
}

#[tokio::test]
async fn my_account_does_not_list_sessions_that_went_idle() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    let mut phone = app.other_browser();
    phone.login("rita@example.com").await;
    app.clock.advance(SignedDuration::from_mins(20));
    let page = app.get("/account").await;
    assert_eq!(page.body.matches("/revoke\"").count(), 2);
    // The phone has been idle past the 30 minutes; this browser was active 15 minutes ago.
    app.clock.advance(SignedDuration::from_mins(15));
    let page = app.get("/account").await;
    page.assert_contains("(this session)");
    assert_eq!(
        page.body.matches("/revoke\"").count(),
        1,
        "an idle-expired session is listed"
    );
    phone
        .get("/requests")
        .await
        .assert_redirect_to("/login?next=%2Frequests");
}

#[tokio::test]
async fn someone_elses_session_cannot_be_revoked() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.create_user("otto@example.com", "Otto", false).await;
    let mut otto = app.other_browser();
    otto.login("otto@example.com").await;
    app.login("rita@example.com").await;
    let ottos: String = sqlx::query_scalar(
        "select s.public_id::text from sessions s join users u on u.id = s.user_id where u.email = 'otto@example.com'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    app.post_form(&format!("/account/sessions/{ottos}/revoke"), &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    otto.get("/requests").await.assert_status(StatusCode::OK);
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    let mut laptop = app.other_browser();
    laptop.login("rita@example.com").await;

    let wrong = app
        .post_form(
            "/account/password",
            &[
                ("current", "not it at all"),
                ("new", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    wrong
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("This is not your current password.")
        .assert_contains("Use at least 10 characters.");

    app.post_form(
        "/account/password",
        &[
            ("current", PASSWORD),
            ("new", "a brand new passphrase"),
            ("confirm", "a brand new passphrase"),
        ],
    )
    .await
    .assert_redirect_to("/account");
    app.get("/account")
        .await
        .assert_contains("Your password was changed.");
    laptop
        .get("/requests")
        .await
        .assert_redirect_to("/login?next=%2Frequests");
    // The old password no longer works, the new one does.
    let mut fresh = app.other_browser();
    fresh.get("/login").await;
    fresh
        .post_form(
            "/login",
            &[("email", "rita@example.com"), ("password", PASSWORD)],
        )
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    fresh
        .post_form(
            "/login",
            &[
                ("email", "rita@example.com"),
                ("password", "a brand new passphrase"),
            ],
        )
        .await
        .assert_redirect_to("/");
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.create_project("HD", "Help desk").await;
    app.login("rita@example.com").await;
    let project: String = sqlx::query_scalar("select id::text from projects")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let fields = [
        ("project_id", project.as_str()),
        ("title", "Printer"),
        ("description", "x"),
    ];
    app.post_raw("/tickets", &fields, &[("origin", "http://localhost")])
        .await
        .assert_status(StatusCode::FORBIDDEN)
        .assert_contains("This form has expired");
    let mut with_wrong_token = fields.to_vec();
    with_wrong_token.push(("_csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    app.post_raw(
        "/tickets",
        &with_wrong_token,
        &[("origin", "http://localhost")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    assert_eq!(app.count("select count(*) from tickets").await, 0);
}

#[tokio::test]
async fn a_post_from_another_origin_is_refused_even_with_the_token() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    let token = app.csrf().unwrap().to_owned();
    app.post_raw(
        "/logout",
        &[("_csrf", &token)],
        &[("origin", "https://evil.example")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    app.post_raw(
        "/logout",
        &[("_csrf", &token)],
        &[("sec-fetch-site", "cross-site")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    app.post_raw(
        "/logout",
        &[("_csrf", &token)],
        &[("referer", "https://evil.example/page")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    app.get("/requests").await.assert_status(StatusCode::OK);
    // Same origin with the token: accepted.
    app.post_raw(
        "/logout",
        &[("_csrf", &token)],
        &[("origin", "http://localhost")],
    )
    .await
    .assert_redirect_to("/login");
}

#[tokio::test]
async fn without_origin_and_referer_the_token_alone_decides() {
    // Some browsers and privacy tools send neither header (docs/security.md).
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    let token = app.csrf().unwrap().to_owned();
    let no_origin = [("user-agent", "a browser that sends no Origin")];
    app.post_raw("/logout", &[], &no_origin)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    app.get("/requests").await.assert_status(StatusCode::OK);
    app.post_raw("/logout", &[("_csrf", &token)], &no_origin)
        .await
        .assert_redirect_to("/login");
}

#[tokio::test]
async fn the_login_form_itself_needs_its_token() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    // No page loaded, so no token cookie: a forged cross-site login is refused.
    app.post_raw(
        "/login",
        &[("email", "rita@example.com"), ("password", PASSWORD)],
        &[("origin", "http://localhost")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    assert_eq!(app.count("select count(*) from sessions").await, 0);
}

#[tokio::test]
async fn after_sign_in_only_local_paths_are_followed() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.get("/login?next=//evil.example")
        .await
        .assert_contains("name=\"next\" value=\"/\"");
    app.post_form(
        "/login",
        &[
            ("email", "rita@example.com"),
            ("password", PASSWORD),
            ("next", "https://evil.example"),
        ],
    )
    .await
    .assert_redirect_to("/");
}

#[tokio::test]
async fn the_periodic_sweep_deletes_dead_sessions_and_old_sign_in_failures() {
    let mut app = TestApp::with_config(|c| c.login_max_failures_account = 2).await;
    let rita = app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    let mut phone = app.other_browser();
    phone.login("rita@example.com").await;
    // A third session that will reach its absolute end while still in use.
    {
        let short = unitrack::people::sessions::Lifetime {
            idle: SignedDuration::from_mins(30),
            max: SignedDuration::from_mins(30),
        };
        let mut conn = app.pool.acquire().await.unwrap();
        unitrack::people::sessions::create(&mut conn, rita, t0(), short, "short", "")
            .await
            .unwrap();
    }
    app.get("/login").await;
    app.post_form(
        "/login",
        &[("email", "ghost@example.com"), ("password", "wrong wrong")],
    )
    .await;
    // Ten minutes later, two failures against a limit of two: locked for the 15-minute window.
    app.clock.advance(SignedDuration::from_mins(10));
    for _ in 0..2 {
        app.post_form(
            "/login",
            &[("email", "locked@example.com"), ("password", "wrong wrong")],
        )
        .await;
    }
    let throttle_keys = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "select scope || ':' || key from login_throttle order by 1",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        throttle_keys(&app).await,
        [
            "account:ghost@example.com",
            "account:locked@example.com",
            "address:203.0.113.7"
        ]
    );
    let sweep = |app: &TestApp| {
        let pool = app.pool.clone();
        let clock = app.clock.clone();
        let limits = app.config.mail_limits();
        async move {
            unitrack::workers::run_jobs_once(&pool, &clock, limits, None)
                .await
                .unwrap();
        }
    };

    // 20 minutes on: the windows of the unlocked keys are over; the lock still holds.
    app.clock.advance(SignedDuration::from_mins(10));
    app.get("/account").await.assert_status(StatusCode::OK);
    sweep(&app).await;
    assert_eq!(throttle_keys(&app).await, ["account:locked@example.com"]);
    assert_eq!(app.count("select count(*) from sessions").await, 3);

    // 35 minutes on: the lock is over; the phone idled out; the third session reached its end
    // though it was in use a moment ago; this browser was active 15 minutes ago.
    app.clock.advance(SignedDuration::from_mins(15));
    sqlx::query("update sessions set last_seen_at = $1 where user_agent = 'short'")
        .bind(unitrack::core::time::to_db(app.clock.now_ts()))
        .execute(&app.pool)
        .await
        .unwrap();
    sweep(&app).await;
    assert_eq!(throttle_keys(&app).await, Vec::<String>::new());
    assert_eq!(app.count("select count(*) from sessions").await, 1);
    app.get("/account")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("(this session)");
}
