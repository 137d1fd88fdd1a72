//! Durability under failure, against the release binary and a real database: filing at full
//! speed from several clients, the server is killed with SIGKILL and restarted, and every
//! ticket whose POST was answered (303 to its key) must be there with its events. Then
//! PostgreSQL restarts under load and the running server must recover by itself.
//!
//! Two instances on one database drain 10,000 outbox mails: each is sent exactly once.
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

// Only `start`, `port`, `url` and `received` are used here.
#[allow(dead_code)]
#[path = "it/common/smtp_sink.rs"]
mod smtp_sink;

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

const MAILS: usize = 10_000;

/// The Message-ID of a received message, without the angle brackets.
fn message_id(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let header = text
        .split("\r\n")
        .take_while(|l| !l.is_empty())
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .expect("a Message-ID header");
    header["message-id:".len()..]
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// One `unitrack serve` on `listen`, sending mail through `relay`; its log goes to a file.
fn start_mailing_server(listen: &str, relay: &str) -> Child {
    let log = std::env::temp_dir().join(format!("unitrack-drain-{}.log", listen.replace(':', "-")));
    Command::new(env("BENCH_UNITRACK_BIN"))
        .arg("serve")
        .env("UNITRACK_LISTEN", listen)
        .env("UNITRACK_SMTP_RELAY", relay)
        .env("UNITRACK_MAIL_FROM", "helpdesk@unitrack.test")
        .env("UNITRACK_BASE_URL", "http://unitrack.test")
        .env("UNITRACK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start unitrack serve")
}

async fn ready(http: &reqwest::Client, listen: &str, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Ok(r) = http.get(format!("http://{listen}/readyz")).send().await
            && r.status() == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the release binary and a database: bench/run --durability"]
async fn two_instances_send_each_of_10000_mails_exactly_once() {
    let pool = PgPool::connect(&env("DATABASE_URL")).await.unwrap();
    // One sink, two doors: each instance relays through its own port, so the sink can tell
    // which instance sent a message (the jobs table does not record who ran a job).
    let sinks = [
        smtp_sink::Sink::start().await,
        smtp_sink::Sink::start().await,
    ];
    let listens = ["127.0.0.1:18082", "127.0.0.1:18083"];
    let mut servers: Vec<Child> = listens
        .iter()
        .zip(&sinks)
        .map(|(listen, sink)| start_mailing_server(listen, &sink.url()))
        .collect();
    let probe = reqwest::Client::new();
    for listen in listens {
        assert!(
            ready(&probe, listen, Duration::from_secs(30)).await,
            "{listen} ready"
        );
    }
    // Mail queued before (e.g. notices of the filings above) is sent now too: counted apart.
    let sent_before: i64 =
        sqlx::query_scalar("select count(*) from mail_out where status = 'sent'")
            .fetch_one(&pool)
            .await
            .unwrap();

    // 10,000 state-change mails to tickets' requesters, written as a ticket event's fan-out
    // (`notifications::push_fan_out`) writes them: a `mail_out` row and a `mail_send` job keyed by the mail id, one
    // transaction, and the wake-up the job loops listen for.
    let started = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "with t as (select id, requester_id, row_number() over (order by id) - 1 as i
                    from tickets order by id limit $1),
              k as (select count(*) as k from t)
         insert into mail_out (id, ticket_id, user_id, to_address, kind, data, internal, created_at)
         select gen_random_uuid(), t.id, u.id, u.email, 'state',
                jsonb_build_object('text', 'moved this to Waiting (drain ' || n || ')'), false, now()
         from generate_series(0, $1 - 1) n
         join t on t.i = n % (select k from k)
         join users u on u.id = t.requester_id
         returning id",
    )
    .bind(MAILS as i32)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(ids.len(), MAILS);
    let keys: Vec<String> = ids.iter().map(|id| format!("mail_send:{id}")).collect();
    sqlx::query(
        "insert into jobs (kind, payload, idempotency_key, run_at, created_at)
         select 'mail_send', jsonb_build_object('id', id), 'mail_send:' || id, now(), now()
         from unnest($1::uuid[]) as x(id)",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await
    .unwrap();
    // The `jobs` trigger wakes both instances when this commits.
    tx.commit().await.unwrap();

    // Drained: no mail queued and no mail job waiting.
    let until = Instant::now() + Duration::from_secs(600);
    loop {
        let (queued, jobs): (i64, i64) = sqlx::query_as(
            "select (select count(*) from mail_out where status = 'queued'),
                    (select count(*) from jobs where kind = 'mail_send'
                     and done_at is null and failed_at is null)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if queued == 0 && jobs == 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "{queued} mails still queued, {jobs} jobs waiting after 10 minutes"
        );
        for server in &mut servers {
            assert!(server.try_wait().unwrap().is_none(), "a server exited");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = started.elapsed();
    // A late duplicate would still be on its way: give it a moment before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for mut server in servers {
        server.kill().unwrap();
        server.wait().unwrap();
    }

    let per_instance: Vec<Vec<String>> = sinks
        .iter()
        .map(|s| s.received().iter().map(|r| message_id(&r.data)).collect())
        .collect();
    let received: Vec<&String> = per_instance.iter().flatten().collect();
    let distinct: std::collections::HashSet<&String> = received.iter().copied().collect();
    println!(
        "two instances drained {MAILS} mails in {:.1} s ({:.0} mails/s); instance 1 sent {}, instance 2 sent {}",
        drained.as_secs_f64(),
        MAILS as f64 / drained.as_secs_f64(),
        per_instance[0].len(),
        per_instance[1].len(),
    );
    assert_eq!(distinct.len(), received.len(), "no Message-ID twice");

    let (sent, once): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where status = 'sent'),
                count(*) filter (where status = 'sent' and attempts = 1)
         from mail_out where id = any($1)",
    )
    .bind(&ids)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (sent, once),
        (MAILS as i64, MAILS as i64),
        "every mail sent, on its first attempt"
    );
    let ours: Vec<String> =
        sqlx::query_scalar("select message_id from mail_out where id = any($1)")
            .bind(&ids)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        ours.iter().all(|m| distinct.contains(m)),
        "every mail reached the sink"
    );
    let sent_after: i64 = sqlx::query_scalar("select count(*) from mail_out where status = 'sent'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        received.len() as i64,
        sent_after - sent_before,
        "the sink got exactly the mails marked sent ({MAILS} of ours and {} queued before)",
        sent_after - sent_before - MAILS as i64
    );
    let jobs_once: i64 = sqlx::query_scalar(
        "select count(*) from jobs
         where idempotency_key = any($1) and done_at is not null and attempts = 1",
    )
    .bind(&keys)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(jobs_once, MAILS as i64, "every job done, claimed once");
    assert!(
        per_instance.iter().all(|m| !m.is_empty()),
        "both instances sent mail"
    );
}
