//! Through a real TCP listener with a cookie-keeping HTTP client, and a graceful shutdown.

use std::sync::Arc;

use tokio::sync::oneshot;
use unitrack::config::Config;
use unitrack::core::time::SystemClock;
use unitrack::{startup, web};

use crate::common::{PASSWORD, TestDb};

#[tokio::test]
async fn a_browser_signs_in_files_and_comments_over_http_and_the_server_stops_gracefully() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let now = unitrack::core::time::Clock::now(&SystemClock);
    let requester = unitrack::people::roles::find_by_name(&mut conn, "Requester")
        .await
        .unwrap()
        .unwrap();
    unitrack::people::users::create(
        &mut conn,
        &unitrack::people::users::NewUser {
            email: "rita@example.com".into(),
            display_name: "Rita".into(),
            password_hash: Some(crate::common::password_hash().to_owned()),
            roles: vec![requester.id],
            ..Default::default()
        },
        now,
    )
    .await
    .unwrap();
    let project = unitrack::projects::create(
        &mut conn,
        "HD",
        &unitrack::projects::ProjectInput::new("Help desk", unitrack::projects::Kind::ServiceDesk),
        now,
    )
    .await
    .unwrap();
    drop(conn);

    let listener = startup::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = web::AppState::new(db.pool.clone(), Arc::new(SystemClock), Config::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(listener, web::router(state), async {
        let _ = stopped.await;
    }));

    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    let token = |body: &str| {
        let marker = "name=\"_csrf\" value=\"";
        let start = body.find(marker).unwrap() + marker.len();
        body[start..start + 43].to_owned()
    };
    let login = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let home = client
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form(&[
            ("email", "rita@example.com"),
            ("password", PASSWORD),
            ("_csrf", &token(&login)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    let home = home.text().await.unwrap();
    assert!(home.contains("Hello, Rita"), "{home}");
    let filed = client
        .post(format!("{base}/tickets"))
        .header("origin", &base)
        .form(&[
            ("project_id", project.to_string().as_str()),
            ("title", "VPN drops every hour"),
            ("description", "Since Monday."),
            ("_csrf", &token(&home)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(filed.url().path(), "/tickets/HD-1");
    let page = filed.text().await.unwrap();
    assert!(page.contains("VPN drops every hour"));
    let commented = client
        .post(format!("{base}/tickets/HD-1/comments"))
        .header("origin", &base)
        .form(&[
            ("body", "Happened again at 10:00."),
            ("_csrf", &token(&page)),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(commented.contains("Happened again at 10:00."));
    let client_addr: String = sqlx::query_scalar("select client_addr from sessions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(client_addr, "127.0.0.1");

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server stops after the shutdown signal")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::Request;
    use tower::ServiceExt;

    let db = TestDb::new().await;
    for (trusted, expected) in [("", "10.0.0.5"), ("10.0.0.5", "198.51.100.9")] {
        let config = Config {
            trusted_proxies: trusted.into(),
            login_max_failures_address: 1,
            ..Config::default()
        };
        let state = web::AppState::new(db.pool.clone(), Arc::new(SystemClock), config);
        let router = web::router(state).layer(MockConnectInfo(std::net::SocketAddr::from((
            [10, 0, 0, 5],
            1,
        ))));
        let login = router
            .clone()
            .oneshot(
                Request::get("/login")
                    .header("host", "localhost")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let cookie = login
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let csrf = cookie.trim_start_matches("ut_csrf=").to_owned();
        let body = format!("email=x%40example.com&password=wrongwrong&_csrf={csrf}");
        router
            .oneshot(
                Request::post("/login")
                    .header("host", "localhost")
                    .header("origin", "http://localhost")
                    .header("cookie", cookie)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-forwarded-for", "198.51.100.9")
                    .body(axum::body::Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let keys: Vec<String> =
            sqlx::query_scalar("select key from login_throttle where scope = 'address'")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        assert!(
            keys.contains(&expected.to_owned()),
            "trusted={trusted:?}: {keys:?}"
        );
        sqlx::query("delete from login_throttle")
            .execute(&db.pool)
            .await
            .unwrap();
    }
}
