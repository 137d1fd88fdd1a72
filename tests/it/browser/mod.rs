//! The browser tests' harness: the real app served over TCP on the demo organisation, one
//! chromedriver per test run, one headless Chromium per test at 1366×900, and what a journey
//! asserts beyond text: axe-core's findings, what is above the fold, no horizontal scroll on a
//! phone. A test that cannot start Chromium fails; it is never skipped.

mod agent;
mod requester;

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use unitrack::config::Config;
use unitrack::core::time::{Clock, SystemClock};
use unitrack::web;

use crate::common::TestDb;

/// The window every journey runs in: a common laptop screen.
pub const WIDTH: u32 = 1366;
pub const HEIGHT: u32 = 900;
/// A phone's width: no page may scroll sideways at it.
pub const PHONE_WIDTH: u32 = 390;

const AXE: &str = include_str!("../../browser/axe.min.js");

const INSTALL: &str = "install Debian's `chromium` and `chromium-driver` (`.ci/run` does)";

/// A program on `PATH`, else in /usr/bin.
fn program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("the browser tests need `{name}`: {INSTALL}"))
}

/// The chromedriver of this test run. A shell holds a pipe whose write end only this process
/// has (statics are never dropped): however the run ends, the pipe closes and the shell stops
/// chromedriver.
struct Driver {
    url: String,
    chromium: PathBuf,
    _watchdog: (Child, ChildStdin),
}

static DRIVER: OnceLock<Driver> = OnceLock::new();

fn driver() -> &'static Driver {
    DRIVER.get_or_init(start_driver)
}

fn start_driver() -> Driver {
    use std::os::unix::process::CommandExt;
    let chromedriver = program("chromedriver");
    let chromium = program("chromium");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port for chromedriver")
        .port();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#""$0" --port="$1" >/dev/null 2>&1 & pid=$!; read _ || true; kill "$pid""#)
        .arg(&chromedriver)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: Ctrl-C on `cargo test` must not skip the clean-up.
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let stdin = child.stdin.take().expect("chromedriver's watchdog pipe");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} did not listen on {addr} within 20 s",
            chromedriver.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        url: format!("http://{addr}"),
        chromium,
        _watchdog: (child, stdin),
    }
}

/// The app as `unitrack serve` runs it (real clock, real TCP, the demo organisation loaded), on
/// a database of its own; stopped and dropped with this.
struct Host {
    site: Site,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _db: TestDb,
}

/// Where a journey's app answers, and its database (to set up the world a journey starts in).
#[derive(Clone)]
pub struct Site {
    pub base: String,
    pub pool: PgPool,
}

impl Host {
    async fn demo() -> Self {
        let db = TestDb::new().await;
        let clock = Arc::new(SystemClock);
        unitrack::demo::load(&db.pool, clock.now())
            .await
            .expect("load the demo");
        let state = web::AppState::new(db.pool.clone(), clock, Config::default());
        let listener = unitrack::startup::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the app");
        let base = format!("http://{}", listener.local_addr().expect("app address"));
        let server = tokio::spawn(web::serve(
            listener,
            web::router(state),
            std::future::pending(),
        ));
        Self {
            site: Site {
                base,
                pool: db.pool.clone(),
            },
            server,
            _db: db,
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Site {
    /// Files a question in HD as `email`, over plain HTTP (the world a journey starts from, not
    /// the journey): answers its key.
    pub async fn file_question(&self, email: &str, title: &str, description: &str) -> String {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("HTTP client");
        let token = |page: &str| {
            let marker = "name=\"_csrf\" value=\"";
            let start = page.find(marker).expect("a CSRF token") + marker.len();
            page[start..]
                .split('"')
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let post = |path: &str, form: Vec<(&str, String)>| {
            client
                .post(format!("{}{path}", self.base))
                .header("origin", &self.base)
                .form(&form)
                .send()
        };
        let page = self.page(&client, "/login").await;
        let signed_in = post(
            "/login",
            vec![
                ("email", email.to_owned()),
                ("password", unitrack::demo::PASSWORD.to_owned()),
                ("_csrf", token(&page)),
            ],
        )
        .await
        .expect("sign in");
        assert_eq!(signed_in.url().path(), "/", "{email} signs in");
        let page = self.page(&client, "/tickets/new?process=question").await;
        let project: String = sqlx::query_scalar("select id::text from projects where key = 'HD'")
            .fetch_one(&self.pool)
            .await
            .expect("the HD project");
        let filed = post(
            "/tickets",
            vec![
                ("_csrf", token(&page)),
                ("process", "question".to_owned()),
                ("project_id", project),
                ("title", title.to_owned()),
                ("description", description.to_owned()),
            ],
        )
        .await
        .expect("file a question");
        let path = filed.url().path().to_owned();
        let key = path.trim_start_matches("/tickets/");
        assert!(key.starts_with("HD-"), "filing ended on {path}");
        key.to_owned()
    }

    async fn page(&self, client: &reqwest::Client, path: &str) -> String {
        client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .text()
            .await
            .expect("page text")
    }
}

/// One headless Chromium on a fresh profile, pointed at a `Site`, showing pages at 1366×900.
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    pub base: String,
    /// How much taller the window is than the page in it.
    frame: u32,
    _profile: Arc<tempfile::TempDir>,
}

/// Runs a journey in its own browser on a fresh demo site; the browser is closed whether the
/// journey passes or fails.
pub async fn journey<F, Fut>(run: F)
where
    F: FnOnce(Site, Browser) -> Fut,
    Fut: Future<Output = ()>,
{
    let host = Host::demo().await;
    let browser = Browser::open(&host.site.base).await;
    let client = browser.client.clone();
    let outcome = AssertUnwindSafe(run(host.site.clone(), browser))
        .catch_unwind()
        .await;
    let closed = client.close().await;
    drop(host);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    closed.expect("close the browser");
}

impl Browser {
    pub async fn open(base: &str) -> Self {
        let driver = driver();
        let profile = tempfile::tempdir().expect("a profile folder");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--window-size={WIDTH},{HEIGHT}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": driver.chromium, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {} through chromedriver at {}: {e}\n({INSTALL})",
                    driver.chromium.display(),
                    driver.url
                )
            });
        let mut browser = Self {
            client,
            base: base.to_owned(),
            frame: 0,
            _profile: Arc::new(profile),
        };
        // Headless Chromium keeps room for a window frame: grow the window by it so the page
        // itself gets 1366×900, what the fold is measured against.
        let (_, inner) = browser.viewport().await;
        browser.frame = HEIGHT.saturating_sub(inner);
        browser.resize(WIDTH).await;
        let viewport = browser.viewport().await;
        if viewport != (WIDTH, HEIGHT) {
            // Not yet in `journey`'s care: close this browser before failing.
            let _ = browser.client.close().await;
            panic!("the viewport is {viewport:?}, not {WIDTH}×{HEIGHT}");
        }
        browser
    }

    /// Makes the page `width` wide and `HEIGHT` tall.
    async fn resize(&self, width: u32) {
        self.client
            .set_window_size(width, HEIGHT + self.frame)
            .await
            .expect("resize the window");
    }

    /// Opens a page of the site by its path.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn find(&self, selector: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::Css(selector)).await {
            Ok(element) => element,
            Err(e) => panic!("no {selector} on {}: {e}", self.path().await),
        }
    }

    /// The text a person sees in the first element matching `selector`.
    pub async fn text(&self, selector: &str) -> String {
        self.find(selector)
            .await
            .text()
            .await
            .expect("element text")
    }

    /// Asserts the first element matching `selector` shows `expected` (among other text).
    pub async fn assert_text(&self, selector: &str, expected: &str) {
        let text = self.text(selector).await;
        assert!(
            text.contains(expected),
            "{expected:?} not in {selector} on {}: {text:?}",
            self.path().await
        );
    }

    pub async fn fill(&self, selector: &str, text: &str) {
        let field = self.find(selector).await;
        field.clear().await.expect("clear the field");
        field.send_keys(text).await.expect("type into the field");
    }

    /// Clicks and waits until the page the click leads to has loaded.
    pub async fn click(&self, selector: &str) {
        self.find(selector).await.click().await.expect("click");
        self.wait_loaded().await;
    }

    /// Clicks the link or button whose visible text is exactly `text`.
    pub async fn click_text(&self, text: &str) {
        let xpath = format!(
            "//*[self::a or self::button][normalize-space(.)='{text}']",
            text = text.replace('\'', "")
        );
        let target = match self.client.find(Locator::XPath(&xpath)).await {
            Ok(element) => element,
            Err(e) => panic!("no link or button {text:?} on {}: {e}", self.path().await),
        };
        target.click().await.expect("click");
        self.wait_loaded().await;
    }

    async fn wait_loaded(&self) {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("body"))
            .await
            .expect("the next page");
        let started = Instant::now();
        while self.script("return document.readyState").await != json!("complete") {
            assert!(started.elapsed() < Duration::from_secs(20), "page load");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    async fn script_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    async fn viewport(&self) -> (u32, u32) {
        let size = self
            .script("return [window.innerWidth, window.innerHeight]")
            .await;
        let dimension = |i: usize| {
            size[i]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0)
        };
        (dimension(0), dimension(1))
    }

    /// Signs in through the login form, as a person would, and lands where the app sends them.
    pub async fn sign_in(&self, email: &str) {
        self.goto("/login").await;
        self.assert_text("h1", "Sign in").await;
        self.assert_accessible("sign-in page", &[]).await;
        self.fill("#email", email).await;
        self.fill("#password", unitrack::demo::PASSWORD).await;
        self.click("form[action='/login'] button[type=submit]")
            .await;
        assert_eq!(self.path().await, "/", "after signing in as {email}");
        self.find("header a[href='/account']").await;
    }

    /// axe-core's violations on the page shown (all impacts).
    pub async fn axe(&self) -> Vec<Violation> {
        if self.script("return typeof window.axe").await != json!("object") {
            self.script(AXE).await;
        }
        let found = self
            .script(
                "return axe.run(document, { resultTypes: ['violations'] }).then(r =>
                   r.violations.map(v => ({
                     id: v.id, impact: v.impact || '', help: v.help,
                     nodes: v.nodes.map(n => n.target.join(' ')) })))",
            )
            .await;
        serde_json::from_value(found).expect("axe's violations")
    }

    /// Asserts axe finds no serious or critical violation on this page, except the rules
    /// `known` lists (each must still be found: a fixed one is taken off the list).
    pub async fn assert_accessible(&self, page: &str, known: &[&str]) {
        let severe: Vec<Violation> = self
            .axe()
            .await
            .into_iter()
            .filter(|v| v.impact == "serious" || v.impact == "critical")
            .collect();
        let unexpected: Vec<&Violation> = severe
            .iter()
            .filter(|v| !known.contains(&v.id.as_str()))
            .collect();
        let fixed: Vec<&&str> = known
            .iter()
            .filter(|id| !severe.iter().any(|v| v.id == **id))
            .collect();
        let path = self.path().await;
        assert!(
            unexpected.is_empty(),
            "axe on the {page} ({path}): {} serious or critical violation(s):\n{}",
            unexpected.len(),
            unexpected
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            fixed.is_empty(),
            "axe on the {page} ({path}) no longer finds {fixed:?}: take it off the known list"
        );
    }

    /// Asserts the element's bottom edge is inside the first screen (the page scrolled to its
    /// top), so a person sees it without scrolling.
    pub async fn assert_above_fold(&self, selector: &str) {
        let bottom = self
            .script_with(
                "const e = document.querySelector(arguments[0]);
                 return e ? e.getBoundingClientRect().bottom + window.scrollY : null;",
                vec![json!(selector)],
            )
            .await;
        let path = self.path().await;
        let bottom = bottom
            .as_f64()
            .unwrap_or_else(|| panic!("no {selector} on {path}"));
        assert!(
            bottom <= f64::from(HEIGHT),
            "{selector} on {path} ends at y = {bottom}, below the fold at {HEIGHT}"
        );
    }

    /// Asserts the page does not scroll sideways at a phone's width, then restores the window.
    pub async fn assert_no_horizontal_scroll_at_390(&self) {
        self.resize(PHONE_WIDTH).await;
        let widths = self
            .script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]")
            .await;
        self.resize(WIDTH).await;
        let path = self.path().await;
        assert_eq!(
            widths[2],
            json!(PHONE_WIDTH),
            "the viewport after resizing on {path}"
        );
        assert!(
            widths[0].as_u64() <= widths[1].as_u64(),
            "{path} scrolls sideways at {PHONE_WIDTH} px: scrollWidth {} > clientWidth {}",
            widths[0],
            widths[1]
        );
    }
}

/// One rule axe found broken, with where.
#[derive(Debug, Deserialize)]
pub struct Violation {
    pub id: String,
    pub impact: String,
    pub help: String,
    pub nodes: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "  [{}] {}: {}", self.impact, self.id, self.help)?;
        for node in &self.nodes {
            write!(f, "\n      at {node}")?;
        }
        Ok(())
    }
}
