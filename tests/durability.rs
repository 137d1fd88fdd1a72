//! Durability under failure, against the release binary and a real database: filing at full
//! speed from several clients, the server is killed with SIGKILL and restarted, and every
//! ticket whose POST was answered (303 to its key) must be there with its events. Then
//! PostgreSQL restarts under load and the running server must recover by itself.
//!
//! Ignored by default; `bench/run --durability` runs it with BENCH_UNITRACK_BIN (the release
//! `unitrack`), DATABASE_URL and BENCH_PG_CTL (a `pg_ctl -D …` command line for that cluster).

// Test code: a failed expectation is a panic by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Mutex;

const LISTEN: &str = "127.0.0.1:18081";
const CLIENTS: usize = 8;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run bench/run --durability"))
}

fn start_server() -> Child {
    Command::new(env("BENCH_UNITRACK_BIN"))
        .arg("serve")
        .env("UNITRACK_LISTEN", LISTEN)
        .env("UNITRACK_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start unitrack serve")
}

async fn wait_ready(http: &reqwest::Client, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Ok(r) = http.get(format!("http://{LISTEN}/readyz")).send().await
            && r.status() == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    let end = html[start..].find('"').expect("end of the token") + start;
    html[start..end].to_owned()
}

/// A signed-in requester: its client (cookie jar) and the CSRF token of its session.
async fn requester() -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let form = http
        .get(format!("http://{LISTEN}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let signed_in = http
        .post(format!("http://{LISTEN}/login"))
        .form(&[
            ("_csrf", csrf_of(&form).as_str()),
            ("email", "requester@example.com"),
            ("password", unitrack::demo::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "sign-in");
    let page = http
        .get(format!("http://{LISTEN}/tickets/new?process=question"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (http, csrf_of(&page))
}

/// Files tickets until `stop`; answered keys go to `filed`, failures are counted.
async fn file_until(
    project: uuid::Uuid,
    stop: Arc<AtomicBool>,
    filed: Arc<Mutex<Vec<String>>>,
    failed: Arc<AtomicUsize>,
) {
    let (http, csrf) = requester().await;
    let project = project.to_string();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let title = format!("Durability {n}");
        let answer = http
            .post(format!("http://{LISTEN}/tickets"))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("process", "question"),
                ("project_id", project.as_str()),
                ("title", title.as_str()),
                ("description", "Filed while the server is killed."),
            ])
            .send()
            .await;
        match answer {
            Ok(r) if r.status() == 303 => {
                let location = r.headers()["location"].to_str().unwrap().to_owned();
                let key = location.trim_start_matches("/tickets/").to_owned();
                filed.lock().await.push(key);
            }
            Ok(_) | Err(_) => {
                failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn check_all_there(pool: &PgPool, keys: &[String]) {
    let numbers: Vec<i64> = keys
        .iter()
        .map(|k| k.strip_prefix("HD-").unwrap().parse().unwrap())
        .collect();
    let found: i64 = sqlx::query_scalar(
        "select count(*) from tickets t join projects p on p.id = t.project_id
         where p.key = 'HD' and t.number = any($1)
           and exists (select 1 from ticket_events e where e.ticket_id = t.id and e.kind = 'created')
           and exists (select 1 from ticket_events e where e.ticket_id = t.id and e.kind = 'group_assigned')",
    )
    .bind(&numbers)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        found,
        numbers.len() as i64,
        "every answered filing is in the database with its events"
    );
}

struct Load {
    stop: Arc<AtomicBool>,
    filed: Arc<Mutex<Vec<String>>>,
    failed: Arc<AtomicUsize>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

fn load(project: uuid::Uuid) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let filed = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let clients = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(file_until(
                project,
                stop.clone(),
                filed.clone(),
                failed.clone(),
            ))
        })
        .collect();
    Load {
        stop,
        filed,
        failed,
        clients,
    }
}

impl Load {
    async fn answered(&self) -> usize {
        self.filed.lock().await.len()
    }

    async fn wait_for(&self, at_least: usize, within: Duration) {
        let until = Instant::now() + within;
        while self.answered().await < at_least {
            assert!(
                Instant::now() < until,
                "only {} filings answered",
                self.answered().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn finish(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.await.unwrap();
        }
        let filed = self.filed.lock().await.clone();
        (filed, self.failed.load(Ordering::Relaxed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the release binary and a database: bench/run --durability"]
async fn answered_filings_survive_kill_9_and_the_app_rides_out_a_postgres_restart() {
    let pool = PgPool::connect(&env("DATABASE_URL")).await.unwrap();
    let project: uuid::Uuid = sqlx::query_scalar("select id from projects where key = 'HD'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let probe = reqwest::Client::new();

    // 1. kill -9 in the middle of filing.
    let mut server = start_server();
    assert!(
        wait_ready(&probe, Duration::from_secs(30)).await,
        "server ready"
    );
    let run = load(project);
    run.wait_for(500, Duration::from_secs(60)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let killed_at = run.answered().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (filed, failed) = run.finish().await;
    println!(
        "kill -9: {killed_at} filings answered before the kill, {} in all, {failed} refused or cut off",
        filed.len()
    );
    check_all_there(&pool, &filed).await;

    // 2. Restart, then PostgreSQL restarts under load; the server keeps running.
    let mut server = start_server();
    assert!(
        wait_ready(&probe, Duration::from_secs(30)).await,
        "restarted"
    );
    let run = load(project);
    run.wait_for(200, Duration::from_secs(60)).await;
    let pg_ctl = std::env::var("BENCH_PG_CTL").unwrap_or_default();
    if pg_ctl.trim().is_empty() {
        println!("BENCH_PG_CTL is not set (external DATABASE_URL): PostgreSQL restart skipped");
    } else {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("{pg_ctl} restart -m fast -w"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl restart");
        let restarted = run.answered().await;
        assert!(
            wait_ready(&probe, Duration::from_secs(30)).await,
            "readyz after the PostgreSQL restart"
        );
        run.wait_for(restarted + 200, Duration::from_secs(30)).await;
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server did not exit"
        );
    }
    let (filed, failed) = run.finish().await;
    println!(
        "PostgreSQL restart: {} filings answered, {failed} refused during the restart",
        filed.len()
    );
    let pool = PgPool::connect(&env("DATABASE_URL")).await.unwrap();
    check_all_there(&pool, &filed).await;
    server.kill().unwrap();
    server.wait().unwrap();
}
