//! The real binary, as a new user runs it: private PostgreSQL, demo, second start, signals,
//! the CLI, and clear errors.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_unitrack");

fn unitrack(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DATABASE_URL")
        .env("UNITRACK_DATA_DIR", data_dir)
        .env("UNITRACK_LISTEN", "127.0.0.1:0")
        .env("UNITRACK_LOG", "warn")
        .current_dir(data_dir);
    cmd
}

/// The binary on an external database (a test's own), run from an empty folder.
fn unitrack_on(db: &crate::common::TestDb, folder: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("DATABASE_URL", db.url())
        .env_remove("UNITRACK_DEMO")
        .env("UNITRACK_LISTEN", "127.0.0.1:0")
        .env("UNITRACK_LOG", "warn")
        .current_dir(folder);
    cmd
}

/// Runs a command with `input` on stdin; answers its output.
fn run_with_input(mut cmd: Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the server in the private cluster of `data_dir`; see `start_command`.
fn start(data_dir: &Path) -> (Child, String, String) {
    start_command(unitrack(data_dir))
}

/// Starts the server and waits for its banner; returns the child, its URL and the banner.
fn start_command(mut cmd: Command) -> (Child, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut url = None;
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        banner.push_str(&line);
        banner.push('\n');
        if let Some(rest) = line.split("running at ").nth(1) {
            url = Some(rest.split_whitespace().next().unwrap().to_owned());
        }
        if line.contains("Stop with Ctrl-C") {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let url = url.unwrap_or_else(|| panic!("no URL in banner:\n{banner}"));
    (child, url, banner)
}

fn stop(mut child: Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            return;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Live (not zombie) processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(path.join("stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim().starts_with('Z')))
            .unwrap_or(true);
        if !zombie && cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

async fn sign_in(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = client
        .get(format!("{url}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"_csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let token = &page[start..start + 43];
    client
        .post(format!("{url}/login"))
        .header("origin", url)
        .form(&[("email", email), ("password", password), ("_csrf", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn first_and_second_start_with_a_private_postgres_then_clean_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let (child, url, banner) = start(&data);
    assert!(banner.contains("requester@example.com"), "{banner}");
    assert!(banner.contains("demo-password"), "{banner}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert_eq!(
        client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let home = sign_in(&client, &url, "requester@example.com", "demo-password").await;
    assert_eq!(home.url().path(), "/");
    assert!(home.text().await.unwrap().contains("Rita Requester"));
    let data_text = data.to_string_lossy().into_owned();
    assert!(
        !processes_mentioning(&data_text).is_empty() || data.join("postgres-location.txt").exists()
    );
    stop(child, Signal::SIGINT);
    assert_eq!(
        processes_mentioning(&data_text),
        Vec::<String>::new(),
        "postgres left behind"
    );

    // The CLI works on the same private database while the server is down.
    let mut create = unitrack(&data)
        .args([
            "user",
            "create",
            "--email",
            "boss@example.com",
            "--name",
            "Bo Boss",
            "--admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    create
        .stdin
        .take()
        .unwrap()
        .write_all(b"boss password 123\n")
        .unwrap();
    let out = create.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let duplicate = unitrack(&data)
        .args([
            "user",
            "create",
            "--email",
            "BOSS@example.com",
            "--name",
            "Again",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut duplicate = duplicate;
    duplicate
        .stdin
        .take()
        .unwrap()
        .write_all(b"boss password 123\n")
        .unwrap();
    let out = duplicate.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already used"));

    // Second start: the same data, the demo not loaded twice.
    let (child, url, banner) = start(&data);
    assert!(banner.contains("requester@example.com"));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let home = sign_in(&client, &url, "boss@example.com", "boss password 123").await;
    assert_eq!(home.url().path(), "/");
    // `--admin` made an administrator.
    let admin_page = client
        .get(format!("{url}/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_page.status(), 200);
    assert!(
        admin_page
            .text()
            .await
            .unwrap()
            .contains("boss@example.com")
    );
    stop(child, Signal::SIGTERM);
    assert_eq!(
        processes_mentioning(&data_text),
        Vec::<String>::new(),
        "postgres left behind"
    );
}

#[test]
fn bad_settings_and_a_busy_port_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = unitrack(dir.path())
        .env("UNITRACK_LISTEN", "nonsense")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UNITRACK_LISTEN"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = unitrack(dir.path())
        .env("UNITRACK_LISTEN", &addr)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains("UNITRACK_LISTEN"),
        "{err}"
    );

    let out = unitrack(dir.path())
        .env(
            "DATABASE_URL",
            "postgres://someone:hunter2@127.0.0.1:1/nothing",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the database"), "{err}");
    assert!(err.contains("***") && !err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn process_definitions_round_trip_through_toml_files_and_bad_files_change_nothing() {
    let db = crate::common::TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .env("DATABASE_URL", db.url())
            .env("UNITRACK_LOG", "warn")
            .args(args)
            .output()
            .unwrap()
    };
    let files = dir.path().to_str().unwrap();
    let out = run(&["config", "export", "--dir", files]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bug = dir.path().join("bug.toml");
    let text = std::fs::read_to_string(&bug).unwrap();
    assert!(text.contains("Steps to reproduce"));
    let out = run(&["config", "check", "--dir", files]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Break two things: every problem is reported with its path, and nothing changes.
    let broken = text
        .replacen("to = \"in_progress\"", "to = \"in_progres\"", 1)
        .replacen("\"Agent L1\"", "\"Agent X\"", 1);
    std::fs::write(&bug, &broken).unwrap();
    let out = run(&["config", "import", "--dir", files, "--publish"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bug.toml: definition.transitions.start.to: unknown state \"in_progres\""),
        "{err}"
    );
    assert!(err.contains("unknown role \"Agent X\""), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    let versions: i64 = sqlx::query_scalar("select count(*) from process_versions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(versions, 6);

    // A real change imports and publishes as version 2.
    std::fs::write(
        &bug,
        text.replace("Steps to reproduce", "How to make it happen"),
    )
    .unwrap();
    let out = run(&["config", "import", "--dir", files, "--publish"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (version, label): (i32, String) = sqlx::query_as(
        "select v.version, v.definition->'fields'->1->>'label' from process_versions v join processes p on p.id = v.process_id
         where p.key = 'bug' order by v.version desc limit 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((version, label.as_str()), (2, "How to make it happen"));
}

#[test]
fn migrate_brings_an_empty_database_up_to_date() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(crate::common::TestDb::new());
    let count = |sql: &'static str| -> i64 {
        rt.block_on(sqlx::query_scalar(sql).fetch_one(&db.pool))
            .unwrap()
    };
    rt.block_on(
        sqlx::raw_sql("drop schema public cascade; create schema public").execute(&db.pool),
    )
    .unwrap();
    assert_eq!(
        count("select count(*) from pg_tables where schemaname = 'public'"),
        0
    );
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = unitrack_on(&db, dir.path())
            .arg("migrate")
            .output()
            .unwrap();
        assert_success(&out);
        assert!(String::from_utf8_lossy(&out.stdout).contains("database is up to date"));
    }
    let migrations = unitrack::db::MIGRATOR.iter().count() as i64;
    assert_eq!(
        count("select count(*) from _sqlx_migrations where success"),
        migrations
    );
    assert_eq!(count("select count(*) from tickets"), 0);
    rt.block_on(db.pool.close());
}

#[tokio::test]
async fn set_password_changes_the_password_and_ends_that_users_sessions() {
    let app = crate::common::TestApp::new().await;
    let rita = app.create_user("rita@example.com", "Rita", false).await;
    let otto = app.create_user("otto@example.com", "Otto", false).await;
    let lifetime = unitrack::people::sessions::Lifetime {
        idle: jiff::SignedDuration::from_mins(30),
        max: jiff::SignedDuration::from_hours(12),
    };
    let mut conn = app.pool.acquire().await.unwrap();
    for user in [rita, rita, otto] {
        unitrack::people::sessions::create(&mut conn, user, crate::common::t0(), lifetime, "", "")
            .await
            .unwrap();
    }
    drop(conn);
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = unitrack_on(&app.db, dir.path());
    cmd.args([
        "user",
        "set-password",
        "--email",
        "RITA@example.com",
        "--password-stdin",
    ]);
    let out = run_with_input(cmd, "a brand new password\n");
    assert_success(&out);
    let sessions = |email: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from sessions s join users u on u.id = s.user_id where u.email = $1",
            )
            .bind(email)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(sessions("rita@example.com").await, 0);
    assert_eq!(sessions("otto@example.com").await, 1, "only that user's");
    let hash: String =
        sqlx::query_scalar("select password_hash from users where email = 'rita@example.com'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        unitrack::people::passwords::verify("a brand new password".into(), Some(hash.clone()))
            .await
            .unwrap()
    );
    assert!(
        !unitrack::people::passwords::verify(crate::common::PASSWORD.into(), Some(hash))
            .await
            .unwrap()
    );

    let mut cmd = unitrack_on(&app.db, dir.path());
    cmd.args([
        "user",
        "set-password",
        "--email",
        "nobody@example.com",
        "--password-stdin",
    ]);
    let out = run_with_input(cmd, "a brand new password\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account with e-mail"));
}

#[tokio::test]
async fn an_external_database_gets_the_demo_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let demo_loaded = |db: &crate::common::TestDb| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>("select exists (select 1 from projects where key = 'HD')")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };

    let plain = crate::common::TestDb::new().await;
    let (child, _, banner) = start_command(unitrack_on(&plain, dir.path()));
    stop(child, Signal::SIGTERM);
    assert!(!demo_loaded(&plain).await, "nothing is loaded unasked");
    assert!(!banner.contains("requester@example.com"), "{banner}");
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from users")
            .fetch_one(&plain.pool)
            .await
            .unwrap(),
        0
    );

    let flagged = crate::common::TestDb::new().await;
    let mut cmd = unitrack_on(&flagged, dir.path());
    cmd.args(["serve", "--demo"]);
    let (child, _, banner) = start_command(cmd);
    stop(child, Signal::SIGTERM);
    assert!(demo_loaded(&flagged).await, "serve --demo loads it");
    assert!(banner.contains("requester@example.com"), "{banner}");

    let by_env = crate::common::TestDb::new().await;
    let mut cmd = unitrack_on(&by_env, dir.path());
    cmd.env("UNITRACK_DEMO", "true");
    let (child, _, banner) = start_command(cmd);
    stop(child, Signal::SIGTERM);
    assert!(demo_loaded(&by_env).await, "UNITRACK_DEMO=true loads it");
    assert!(banner.contains("requester@example.com"), "{banner}");
}
