//! The test harness: one PostgreSQL per test run (a private cluster in a temporary folder, or
//! `DATABASE_URL`), a template database migrated once, and one database per test cloned from
//! it and dropped afterwards. `TestApp` drives the real router with a cookie jar.

#![allow(dead_code)]

pub mod scenario;
pub mod smtp_sink;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use jiff::Timestamp;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgPool};
use tower::ServiceExt;
use unitrack::config::Config;
use unitrack::core::ids::UserId;
use unitrack::core::time::ManualClock;
use unitrack::db::cluster::{Cluster, ClusterOptions};
use unitrack::people::{roles, users};
use unitrack::web;

struct Server {
    admin: PgConnectOptions,
    /// A URL for a database of this server, with `{db}` for its name.
    url_pattern: String,
    template: String,
    _cluster: Option<Cluster>,
    _dir: Option<tempfile::TempDir>,
    _template_dropper: Option<(std::process::Child, std::process::ChildStdin)>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        // Own thread and runtime: the caller is inside a test's runtime.
        std::thread::spawn(start_server)
            .join()
            .expect("starting the test database panicked")
    })
}

fn start_server() -> Server {
    let external = std::env::var("DATABASE_URL").ok();
    let (admin, url_pattern, cluster, dir) = match &external {
        Some(url) => {
            let mut parsed = url::Url::parse(url).expect("DATABASE_URL");
            parsed.set_path("/DBNAME");
            let pattern = parsed.to_string().replace("DBNAME", "{db}");
            let admin = url.parse::<PgConnectOptions>().expect("DATABASE_URL");
            (admin, pattern, None, None)
        }
        None => {
            let dir = tempfile::tempdir().expect("temporary folder");
            let mut options = ClusterOptions::new(dir.path(), "postgres");
            options.temporary = true;
            let cluster = Cluster::start(&options).expect("private test cluster");
            let pattern = cluster.display_url("{db}");
            (
                cluster.connect_options("postgres"),
                pattern,
                Some(cluster),
                Some(dir),
            )
        }
    };
    let template = format!("ut_tpl_{}", std::process::id());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut conn = admin.connect().await.expect("connect to test server");
        for sql in [
            format!("drop database if exists {template}"),
            format!("create database {template}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("create template");
        }
        conn.close().await.ok();
        let mut conn = admin
            .clone()
            .database(&template)
            .connect()
            .await
            .expect("connect to template");
        unitrack::db::MIGRATOR
            .run(&mut conn)
            .await
            .expect("migrate template");
        let mut tx = conn.begin().await.expect("begin");
        unitrack::processes::ensure_defaults(&mut tx, t0())
            .await
            .expect("default processes");
        tx.commit().await.expect("commit");
        conn.close().await.ok();
    });
    // A private cluster goes away with its template; an external server keeps it.
    let template_dropper = external
        .as_deref()
        .and_then(|url| drop_template_at_exit(url, &template));
    Server {
        admin,
        url_pattern,
        template,
        _cluster: cluster,
        _dir: dir,
        _template_dropper: template_dropper,
    }
}

/// Statics are never dropped, so on an external server the template would outlive the run.
/// A shell holds a pipe whose write end only this process has; however the process ends, the
/// pipe closes and the shell drops the template with `psql` (as `db::cluster`'s watchdog stops
/// PostgreSQL). Without `psql` the template stays, as before.
fn drop_template_at_exit(
    url: &str,
    template: &str,
) -> Option<(std::process::Child, std::process::ChildStdin)> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let beside_server = unitrack::db::cluster::BinSearch::default()
        .find()
        .ok()
        .map(|bin| bin.join("psql"))
        .filter(|psql| psql.is_file());
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("psql"))
            .find(|psql| psql.is_file())
    });
    let psql = beside_server.or(on_path)?;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(
            r#"read _ || true; "$0" -X -q -d "$1" -c "drop database if exists $2 with (force)" >/dev/null 2>&1"#,
        )
        .arg(psql)
        .arg(url)
        .arg(template)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: Ctrl-C on `cargo test` must not stop it before it has run.
        .process_group(0)
        .spawn()
        .ok()?;
    let stdin = child.stdin.take()?;
    Some((child, stdin))
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub pool: PgPool,
    pub options: PgConnectOptions,
    name: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let server = server();
        let name = format!("ut_t_{}", uuid::Uuid::now_v7().simple());
        let mut conn = server.admin.connect().await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "create database {name} template {}",
            server.template
        )))
        .execute(&mut conn)
        .await
        .expect("clone template");
        conn.close().await.ok();
        let options = server.admin.clone().database(&name);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await
            .expect("pool");
        Self {
            pool,
            options,
            name,
        }
    }
}

impl TestDb {
    /// A `DATABASE_URL` for this database (for running the binary against it).
    pub fn url(&self) -> String {
        server().url_pattern.replace("{db}", &self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = server().admin.clone();
        // Not `pool.close()`: its connections belong to the test's runtime, which this thread
        // blocks. `with (force)` ends them instead.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = admin.connect().await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "drop database if exists {name} with (force)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A start time for the manual clock: a fixed, ordinary weekday.
pub fn t0() -> Timestamp {
    "2026-03-02T09:00:00Z".parse().expect("timestamp")
}

pub const PASSWORD: &str = "a long test password";

/// The hash of `PASSWORD`, computed once: argon2 is slow on purpose.
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        argon2::Argon2::default()
            .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
            .expect("hash")
            .to_string()
    })
}

/// The app on its own database, with a manual clock and a cookie jar.
pub struct TestApp {
    pub router: Router,
    pub pool: PgPool,
    pub clock: ManualClock,
    pub config: Config,
    pub db: TestDb,
    cookies: BTreeMap<String, String>,
    csrf: Option<String>,
    pub peer: SocketAddr,
}

/// A test that leaves jobs queued fails when its app drops (as the Rust registry server's
/// test app does): whatever a test causes, it either runs (`run_jobs`) or says it expected it
/// (`expect_queued`, `discard_jobs`). Jobs of a test that already failed are not looked at.
impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let options = self.db.options.clone();
        // Own thread and runtime: this thread may be inside the test's runtime.
        let left = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut conn = options.connect().await.expect("connect to check jobs");
                let left: Vec<(String, i64)> = sqlx::query_as(
                    "select kind, count(*) from jobs where done_at is null and failed_at is null
                     group by kind order by kind",
                )
                .fetch_all(&mut conn)
                .await
                .expect("queued jobs");
                conn.close().await.ok();
                left
            })
        })
        .join()
        .expect("checking queued jobs");
        assert!(
            left.is_empty(),
            "the test left jobs queued (kind, count): {left:?}; run them with `run_jobs()` or \
             say they are expected with `expect_queued` / `discard_jobs`"
        );
    }
}

/// What came back.
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl TestResponse {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn assert_status(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }

    #[track_caller]
    pub fn assert_redirect_to(&self, location: &str) -> &Self {
        assert!(
            self.status.is_redirection(),
            "status {} body {}",
            self.status,
            self.body
        );
        assert_eq!(self.location(), location);
        self
    }

    #[track_caller]
    pub fn assert_contains(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "{text:?} not in body:\n{}",
            self.body
        );
        self
    }

    #[track_caller]
    pub fn assert_not_contains(&self, text: &str) -> &Self {
        assert!(
            !self.body.contains(text),
            "{text:?} unexpectedly in body:\n{}",
            self.body
        );
        self
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    pub async fn with_config(change: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new().await;
        let mut config = Config::default();
        change(&mut config);
        let clock = ManualClock::new(t0());
        let peer = SocketAddr::from(([203, 0, 113, 7], 40000));
        let state = web::AppState::new(
            db.pool.clone(),
            std::sync::Arc::new(clock.clone()),
            config.clone(),
        );
        let router = web::router(state).layer(MockConnectInfo(peer));
        Self {
            router,
            pool: db.pool.clone(),
            clock,
            config,
            db,
            cookies: BTreeMap::new(),
            csrf: None,
            peer,
        }
    }

    /// A second browser on the same app and database (its own cookies).
    pub fn other_browser(&self) -> TestBrowser {
        TestBrowser {
            router: self.router.clone(),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }

    /// A user with the built-in Admin role, or else the Requester role, everywhere.
    pub async fn create_user(&self, email: &str, name: &str, is_admin: bool) -> UserId {
        self.create_user_with_role(email, name, if is_admin { "Admin" } else { "Requester" })
            .await
    }

    pub async fn create_user_with_role(&self, email: &str, name: &str, role: &str) -> UserId {
        let mut conn = self.pool.acquire().await.expect("conn");
        let role = roles::find_by_name(&mut conn, role)
            .await
            .expect("role")
            .expect("role exists");
        users::create(
            &mut conn,
            &users::NewUser {
                email: email.into(),
                display_name: name.into(),
                password_hash: Some(password_hash().to_owned()),
                roles: vec![role.id],
                ..users::NewUser::default()
            },
            self.clock.now_ts(),
        )
        .await
        .expect("create user")
    }

    pub async fn create_project(&self, key: &str, name: &str) -> unitrack::core::ids::ProjectId {
        let mut conn = self.pool.acquire().await.expect("conn");
        unitrack::projects::create(
            &mut conn,
            key,
            &unitrack::projects::ProjectInput::new(name, unitrack::projects::Kind::ServiceDesk),
            self.clock.now_ts(),
        )
        .await
        .expect("create project")
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        let mut jar = std::mem::take(&mut self.cookies);
        let mut csrf = self.csrf.take();
        let response = send(
            &self.router,
            Method::GET,
            path,
            &mut jar,
            &mut csrf,
            None,
            &[],
        )
        .await;
        self.cookies = jar;
        self.csrf = csrf;
        response
    }

    /// POSTs a form with the CSRF token of the last page and a same-origin `Origin`.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let mut jar = std::mem::take(&mut self.cookies);
        let mut csrf = self.csrf.take();
        let response = send(
            &self.router,
            Method::POST,
            path,
            &mut jar,
            &mut csrf,
            Some(fields),
            &[],
        )
        .await;
        self.cookies = jar;
        self.csrf = csrf;
        response
    }

    /// POSTs exactly what is given: no token added, extra headers as given.
    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut jar = std::mem::take(&mut self.cookies);
        let mut csrf = None;
        let response = send(
            &self.router,
            Method::POST,
            path,
            &mut jar,
            &mut csrf,
            Some(fields),
            headers,
        )
        .await;
        self.cookies = jar;
        response
    }

    pub fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.into(), value.into());
    }

    /// Signs in through the login form (as a fresh browser); asserts it worked.
    pub async fn login(&mut self, email: &str) {
        self.cookies.clear();
        self.csrf = None;
        self.get("/login").await.assert_status(StatusCode::OK);
        let response = self
            .post_form("/login", &[("email", email), ("password", PASSWORD)])
            .await;
        response.assert_redirect_to("/");
        assert!(self.cookie("ut_session").is_some());
        // Load a page to pick up the session's CSRF token.
        self.get("/").await.assert_status(StatusCode::OK);
    }

    /// Runs due jobs once, as one round of the server's job loop without a mail relay (mail
    /// stays queued); answers how many ran.
    pub async fn run_jobs(&self) -> usize {
        unitrack::workers::run_jobs_once(&self.pool, &self.clock, self.config.mail_limits(), None)
            .await
            .expect("run jobs")
    }

    /// Jobs of `kind` still queued (neither done nor given up).
    pub async fn queued(&self, kind: &str) -> i64 {
        sqlx::query_scalar(
            "select count(*) from jobs where kind = $1 and done_at is null and failed_at is null",
        )
        .bind(kind)
        .fetch_one(&self.pool)
        .await
        .expect("queued jobs")
    }

    /// Asserts that exactly `expected` jobs of `kind` are queued, then takes them off the
    /// queue: the test has looked at them, so they do not fail it on drop.
    pub async fn expect_queued(&self, kind: &str, expected: i64) {
        let queued = self.queued(kind).await;
        assert_eq!(queued, expected, "queued {kind} jobs");
        self.discard_jobs(kind).await;
    }

    /// Takes every queued job of `kind` off the queue (marks it done); answers how many. For
    /// tests whose subject is not those jobs (mail a notification queued, say).
    pub async fn discard_jobs(&self, kind: &str) -> u64 {
        sqlx::query(
            "update jobs set done_at = now(), locked_until = null
             where kind = $1 and done_at is null and failed_at is null",
        )
        .bind(kind)
        .execute(&self.pool)
        .await
        .expect("discard jobs")
        .rows_affected()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}

/// Another browser against the same app.
pub struct TestBrowser {
    router: Router,
    cookies: BTreeMap<String, String>,
    csrf: Option<String>,
}

impl TestBrowser {
    pub async fn get(&mut self, path: &str) -> TestResponse {
        send(
            &self.router,
            Method::GET,
            path,
            &mut self.cookies,
            &mut self.csrf,
            None,
            &[],
        )
        .await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        send(
            &self.router,
            Method::POST,
            path,
            &mut self.cookies,
            &mut self.csrf,
            Some(fields),
            &[],
        )
        .await
    }

    pub async fn login(&mut self, email: &str) {
        self.get("/login").await;
        self.post_form("/login", &[("email", email), ("password", PASSWORD)])
            .await
            .assert_redirect_to("/");
        self.get("/").await.assert_status(StatusCode::OK);
    }
}

pub trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        unitrack::core::time::Clock::now(self)
    }
}

async fn send(
    router: &Router,
    method: Method,
    path: &str,
    jar: &mut BTreeMap<String, String>,
    csrf: &mut Option<String>,
    form: Option<&[(&str, &str)]>,
    extra: &[(&str, &str)],
) -> TestResponse {
    let mut builder = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, "localhost");
    if !jar.is_empty() {
        let cookie: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        builder = builder.header(header::COOKIE, cookie.join("; "));
    }
    let body = match form {
        Some(fields) => {
            let mut all: Vec<(&str, &str)> = fields.to_vec();
            let add_token = extra.is_empty() && !fields.iter().any(|(k, _)| *k == "_csrf");
            if add_token && let Some(token) = csrf.as_deref() {
                all.push(("_csrf", token));
            }
            if extra.is_empty() {
                builder = builder.header(header::ORIGIN, "http://localhost");
            }
            builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(all)
                .finish();
            Body::from(encoded)
        }
        None => Body::empty(),
    };
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(builder.body(body).expect("request"))
        .await
        .expect("infallible");
    read_response(response, jar, csrf).await
}

/// Keeps the cookies and CSRF token a response brings; answers its status, headers and text.
async fn read_response(
    response: axum::response::Response,
    jar: &mut BTreeMap<String, String>,
    csrf: &mut Option<String>,
) -> TestResponse {
    let status = response.status();
    let headers = response.headers().clone();
    for value in headers.get_all(header::SET_COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        let Ok(cookie) = cookie::Cookie::parse(text.to_owned()) else {
            continue;
        };
        let removed = cookie.max_age().is_some_and(|age| age.is_zero());
        if removed || cookie.value().is_empty() {
            jar.remove(cookie.name());
        } else {
            jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
        }
    }
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    if let Some(token) = extract_csrf(&body) {
        *csrf = Some(token);
    }
    TestResponse {
        status,
        headers,
        body,
    }
}

fn extract_csrf(body: &str) -> Option<String> {
    let marker = "name=\"_csrf\" value=\"";
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_owned())
}

/// A file for `post_multipart`: (input name, file name, content type, bytes).
pub type FilePart<'a> = (&'a str, &'a str, &'a str, &'a [u8]);

/// A `multipart/form-data` body: the CSRF token first (as our forms send it), then the
/// fields, then the files.
fn multipart_body(
    csrf: Option<&str>,
    fields: &[(&str, &str)],
    files: &[FilePart<'_>],
) -> (String, Vec<u8>) {
    let boundary = "----unitrack-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    let text = |name: &str, value: &str, body: &mut Vec<u8>| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    if let Some(token) = csrf {
        text("_csrf", token, &mut body);
    }
    for (name, value) in fields {
        text(name, value, &mut body);
    }
    for (name, filename, content_type, data) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl TestApp {
    /// POSTs a multipart form (fields and files) with the CSRF token of the last page.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[FilePart<'_>],
    ) -> TestResponse {
        let (content_type, body) = multipart_body(self.csrf.as_deref(), fields, files);
        self.send_body(path, &content_type, body).await
    }

    /// POSTs exactly this body with a same-origin `Origin` (no token added).
    pub async fn send_body(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> TestResponse {
        let mut jar = std::mem::take(&mut self.cookies);
        let mut csrf = self.csrf.take();
        let response = send_raw(&self.router, path, &mut jar, &mut csrf, content_type, body).await;
        self.cookies = jar;
        self.csrf = csrf;
        response
    }

    /// The multipart body `post_multipart` would send, with a token of one's choosing.
    pub fn multipart(
        csrf: Option<&str>,
        fields: &[(&str, &str)],
        files: &[FilePart<'_>],
    ) -> (String, Vec<u8>) {
        multipart_body(csrf, fields, files)
    }

    /// A GET answering the raw body bytes (for downloads).
    pub async fn get_bytes(&mut self, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::HOST, "localhost")
            .header(header::COOKIE, cookie.join("; "))
            .body(Body::empty())
            .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, headers, bytes.to_vec())
    }
}

async fn send_raw(
    router: &Router,
    path: &str,
    jar: &mut BTreeMap<String, String>,
    csrf: &mut Option<String>,
    content_type: &str,
    body: Vec<u8>,
) -> TestResponse {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "localhost")
        .header(header::ORIGIN, "http://localhost")
        .header(header::CONTENT_TYPE, content_type);
    if !jar.is_empty() {
        let cookie: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        builder = builder.header(header::COOKIE, cookie.join("; "));
    }
    let response = router
        .clone()
        .oneshot(builder.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    read_response(response, jar, csrf).await
}

impl TestBrowser {
    /// POSTs a multipart form (fields and files) with the CSRF token of the last page.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[FilePart<'_>],
    ) -> TestResponse {
        let (content_type, body) = multipart_body(self.csrf.as_deref(), fields, files);
        send_raw(
            &self.router,
            path,
            &mut self.cookies,
            &mut self.csrf,
            &content_type,
            body,
        )
        .await
    }
}
