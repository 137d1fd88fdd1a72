//! The web shell: headers, error pages, static files, limits, health.

use axum::http::StatusCode;

use crate::common::TestApp;

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let mut app = TestApp::new().await;
    for path in ["/login", "/nowhere", "/healthz"] {
        let response = app.get(path).await;
        let header = |name: &str| {
            response
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(
            header("content-security-policy").contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert!(!header("x-request-id").is_empty(), "{path}");
    }
}

#[tokio::test]
async fn unknown_pages_get_a_friendly_404_without_internals() {
    let mut app = TestApp::new().await;
    let response = app.get("/no/such/page").await;
    response
        .assert_status(StatusCode::NOT_FOUND)
        .assert_contains("Not found")
        .assert_contains("Reference:")
        .assert_contains("<html");
    let id = response
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    response.assert_contains(id);
}

#[tokio::test]
async fn wrong_methods_and_unreadable_forms_get_pages_not_plain_text() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    let token = app.csrf().unwrap().to_owned();
    app.post_raw(
        "/healthz",
        &[("_csrf", &token)],
        &[("origin", "http://localhost")],
    )
    .await
    .assert_status(StatusCode::METHOD_NOT_ALLOWED)
    .assert_contains("<html");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let mut app = TestApp::with_config(|c| c.max_body_bytes = 4096).await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.create_project("HD", "Help desk").await;
    app.login("rita@example.com").await;
    let big = "x".repeat(10_000);
    app.post_form("/tickets", &[("title", "t"), ("description", &big)])
        .await
        .assert_status(StatusCode::PAYLOAD_TOO_LARGE)
        .assert_contains("Too large");
    assert_eq!(app.count("select count(*) from tickets").await, 0);
}

#[tokio::test]
async fn the_stylesheet_is_cached_by_its_content_hash() {
    let mut app = TestApp::new().await;
    let login = app.get("/login").await;
    let start = login.body.find("/static/app.css?v=").unwrap();
    let end = login.body[start..].find('"').unwrap() + start;
    let url = login.body[start..end].to_owned();
    let css = app.get(&url).await;
    css.assert_status(StatusCode::OK);
    assert_eq!(
        css.headers.get("content-type").unwrap(),
        "text/css; charset=utf-8"
    );
    assert!(
        css.headers
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let stale = app.get("/static/app.css?v=old").await;
    assert!(
        !stale
            .headers
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    app.get("/static/secrets.txt")
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.get("/static/..%2FCargo.toml")
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_readiness_tell_apart_process_and_database() {
    let mut app = TestApp::new().await;
    app.get("/healthz").await.assert_status(StatusCode::OK);
    app.get("/readyz")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("ready");
    // The database goes away: the process still lives, but is not ready, and pages say so.
    app.pool.close().await;
    app.get("/healthz").await.assert_status(StatusCode::OK);
    app.get("/readyz")
        .await
        .assert_status(StatusCode::SERVICE_UNAVAILABLE)
        .assert_contains("database unreachable");
    app.set_cookie("ut_session", "whatever-token");
    app.get("/requests")
        .await
        .assert_status(StatusCode::SERVICE_UNAVAILABLE)
        .assert_contains("cannot reach its database");
}

#[tokio::test]
async fn pages_work_without_javascript_and_have_no_inline_script() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.create_project("HD", "Help desk").await;
    app.login("rita@example.com").await;
    let anonymous = app.other_browser().get("/login").await;
    anonymous
        .assert_not_contains("<script")
        .assert_contains("class=\"skip\" href=\"#main\"");
    for path in ["/", "/requests", "/tickets/new", "/account"] {
        let page = app.get(path).await;
        page.assert_not_contains("<script")
            .assert_not_contains(" onclick=");
        page.assert_contains("class=\"skip\" href=\"#main\"");
    }
}

/// The friendly 500 page: our layout, the request id as the reference, nothing internal.
#[track_caller]
fn assert_friendly_500(response: &crate::common::TestResponse, internals: &[&str]) {
    response
        .assert_status(StatusCode::INTERNAL_SERVER_ERROR)
        .assert_contains("<html")
        .assert_contains("Something went wrong")
        .assert_contains("Reference:");
    let id = response
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    response.assert_contains(id);
    for text in internals {
        response.assert_not_contains(text);
    }
}

async fn panics() -> &'static str {
    panic!("secret detail 0xdeadbeef")
}

#[tokio::test]
async fn a_panic_gets_the_friendly_500_page_and_the_server_keeps_serving() {
    let mut app = TestApp::new().await;
    let state = unitrack::web::AppState::new(
        app.pool.clone(),
        std::sync::Arc::new(app.clock.clone()),
        app.config.clone(),
    );
    let extra = axum::Router::new().route("/boom", axum::routing::get(panics));
    app.router = unitrack::web::router_with(state, extra)
        .layer(axum::extract::connect_info::MockConnectInfo(app.peer));
    let response = app.get("/boom").await;
    assert_friendly_500(&response, &["secret detail", "deadbeef", "panicked"]);
    assert!(response.headers.get("content-security-policy").is_some());
    app.get("/login").await.assert_status(StatusCode::OK);
}

#[tokio::test]
async fn a_database_error_gets_the_friendly_500_page_without_internals() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("rita@example.com").await;
    // A broken schema: the "My requests" query fails inside PostgreSQL.
    sqlx::query("alter table tickets rename to tickets_gone")
        .execute(&app.pool)
        .await
        .unwrap();
    let response = app.get("/requests").await;
    assert_friendly_500(
        &response,
        &[
            "tickets_gone",
            "does not exist",
            "relation",
            "sqlx",
            "42P01",
        ],
    );
}

#[tokio::test]
async fn large_pages_are_gzip_compressed_when_the_browser_accepts_it() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let app = TestApp::new().await;
    let get = |encoding: Option<&'static str>| {
        let mut request = axum::http::Request::get("/login").header("host", "localhost");
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        app.router
            .clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
    };
    let plain = get(None).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.into_body().collect().await.unwrap().to_bytes();
    assert!(plain.len() > 1000, "the page is large enough to compress");

    let packed = get(Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(packed.status(), StatusCode::OK);
    assert_eq!(packed.headers().get("content-encoding").unwrap(), "gzip");
    assert!(
        packed
            .headers()
            .get("vary")
            .is_some_and(|v| v.to_str().unwrap().contains("accept-encoding"))
    );
    let packed = packed.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&packed[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(
        packed.len() < plain.len() / 2,
        "{} of {}",
        packed.len(),
        plain.len()
    );
}

/// Collects what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn log_lines_written_during_a_request_carry_its_request_id() {
    use unitrack::config::LogFormat;
    for format in [LogFormat::Pretty, LogFormat::Json] {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = unitrack::telemetry::subscriber("info", format, move || writer.clone());
        let mut app = TestApp::new().await;
        app.get("/login").await;
        let response = {
            // The test's runtime runs the request on this thread.
            let _guard = tracing::subscriber::set_default(subscriber);
            app.post_form(
                "/login",
                &[("email", "nobody@example.com"), ("password", "wrong wrong")],
            )
            .await
        };
        response.assert_status(StatusCode::UNAUTHORIZED);
        let id = response.headers["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|line| line.contains("sign-in refused"))
            .unwrap_or_else(|| panic!("{format:?}: no log line:\n{text}"));
        assert!(
            line.contains(&id),
            "{format:?}: no request id {id} in {line}"
        );
    }
}
