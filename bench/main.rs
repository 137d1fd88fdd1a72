//! `unitrack-bench`: the data generator and the baseline server of the benchmarks
//! (docs/benchmarks.md).
//!
//! `seed --tickets N` fills a migrated database with the demo organisation plus N tickets and
//! about 5 N events, 50 N/1000 users and 200 projects (scaled down below a million), written
//! with `COPY … FROM STDIN`. `baseline --listen ADDR` serves the bare axum + sqlx + askama
//! page the queue is compared with. Both take the database as `unitrack serve` does:
//! `DATABASE_URL`, else the private cluster under `UNITRACK_DATA_DIR`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use unitrack::config::Config;
use unitrack::core::time::{Clock, SystemClock};
use unitrack::{db, demo, processes, startup};

/// The allocator `unitrack` uses, so the baseline differs from it only in the page's work.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(name = "unitrack-bench", about = "Data generator and baseline server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fill an empty (or demo-only) database with synthetic tickets.
    Seed {
        /// Tickets to write; users, projects and events scale with it.
        #[arg(long, default_value_t = 1_000_000)]
        tickets: u64,
        /// Seed of the random generator (the same seed gives the same data).
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// The reference page: one indexed 25-row query, rendered with askama, no sign-in.
    Baseline {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Seed { tickets, seed } => seed_command(&config, tickets, seed).await,
            Command::Baseline { listen } => baseline(&config, listen).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Baseline

#[derive(sqlx::FromRow)]
struct BaseRow {
    id: Uuid,
    number: i64,
    title: String,
    state: String,
    priority: i16,
    updated_at: jiff_sqlx::Timestamp,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Baseline</title></head>
<body><h1>Recently updated</h1>
<table><thead><tr><th>#</th><th>Title</th><th>State</th><th>Priority</th><th>Updated</th></tr></thead>
<tbody>{% for r in rows %}<tr><td><a href=\"/t/{{ r.id }}\">{{ r.number }}</a></td><td>{{ r.title }}</td><td>{{ r.state }}</td><td>{{ r.priority }}</td><td>{{ r.updated }}</td></tr>
{% endfor %}</tbody></table></body></html>"
)]
struct BasePage {
    rows: Vec<BaseView>,
}

struct BaseView {
    id: Uuid,
    number: i64,
    title: String,
    state: String,
    priority: i16,
    updated: String,
}

async fn baseline_page(State(pool): State<PgPool>) -> Response {
    let rows: Result<Vec<BaseRow>, sqlx::Error> = sqlx::query_as(
        "select id, number, title, state, priority, updated_at from tickets
         order by updated_at desc, id desc limit 25",
    )
    .fetch_all(&pool)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let page = BasePage {
        rows: rows
            .into_iter()
            .map(|r| BaseView {
                id: r.id,
                number: r.number,
                title: r.title,
                state: r.state,
                priority: r.priority,
                updated: unitrack::core::time::display(r.updated_at.to_jiff()),
            })
            .collect(),
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn baseline(config: &Config, listen: SocketAddr) -> anyhow::Result<()> {
    let database = startup::open_database(config).await?;
    let listener = startup::bind(listen).await?;
    let app = axum::Router::new()
        .route("/", axum::routing::get(baseline_page))
        .with_state(database.pool.clone());
    println!("baseline listening on http://{listen}");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(startup::shutdown_signal())
        .await;
    database.close().await?;
    served?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Seed: reference data (SQL), then tickets and events (COPY, two connections at once).

/// The shape the seed sizes scale with: everything proportional to the ticket count.
struct Sizes {
    tickets: u64,
    users: u64,
    projects: u64,
    groups: u64,
    agents: u64,
}

impl Sizes {
    fn for_tickets(tickets: u64) -> Self {
        let scale = |full: u64, min: u64| (full * tickets / 1_000_000).max(min);
        Sizes {
            tickets,
            users: scale(50_000, 500),
            projects: scale(200, 10),
            groups: scale(100, 10),
            agents: scale(2_000, 100),
        }
    }
}

const FIRST: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hamza", "Ines", "Jonas", "Kerstin",
    "Luca", "Mia", "Noah", "Olga", "Paul", "Quentin", "Rosa", "Sven", "Tanja", "Umut", "Vera",
    "Wim", "Xenia", "Yusuf", "Zoe",
];
const LAST: &[&str] = &[
    "Schmidt",
    "Müller",
    "Novak",
    "Rossi",
    "García",
    "Kowalski",
    "Dubois",
    "Jensen",
    "Yilmaz",
    "Papadopoulos",
    "Silva",
    "Horvat",
    "Virtanen",
    "Nagy",
    "Costa",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
];
const PROBLEMS: &[&str] = &[
    "cannot print to",
    "no access to",
    "error when opening",
    "slow response from",
    "password reset for",
    "request new",
    "crash in",
    "sync fails for",
    "license expired for",
    "cannot connect to",
    "wrong totals in",
    "timeout in",
];
const OBJECTS: &[&str] = &[
    "printer",
    "VPN",
    "SAP",
    "Outlook",
    "laptop",
    "Teams",
    "SharePoint",
    "payroll report",
    "docking station",
    "badge reader",
    "monitor",
    "mobile phone",
    "shared drive",
    "CRM",
    "invoice workflow",
    "warehouse scanner",
];
const WORDS: &[&str] = &[
    "since",
    "yesterday",
    "after",
    "the",
    "update",
    "again",
    "every",
    "morning",
    "colleagues",
    "also",
    "affected",
    "please",
    "check",
    "urgent",
    "because",
    "month",
    "end",
    "closing",
    "tried",
    "restart",
    "already",
    "message",
    "says",
    "blocked",
    "screen",
    "freezes",
    "toner",
    "empty",
    "paper",
    "jam",
    "certificate",
    "expired",
    "quota",
    "exceeded",
    "mailbox",
    "full",
    "network",
    "drive",
    "mapped",
    "missing",
    "install",
    "driver",
    "version",
    "rollback",
    "meeting",
    "room",
    "projector",
    "cable",
    "adapter",
    "order",
    "approval",
    "budget",
    "manager",
    "team",
    "access",
    "rights",
    "folder",
    "read",
    "only",
    "customer",
    "export",
    "import",
    "file",
    "format",
    "broken",
];

#[derive(Deserialize)]
struct DefState {
    key: String,
    label: String,
    category: String,
}

#[derive(Deserialize)]
struct Def {
    states: Vec<DefState>,
}

struct Process {
    id: Uuid,
    version: i32,
    name: String,
    weight: f64,
    states: Vec<DefState>,
}

struct Reference {
    projects: Vec<(Uuid, String)>,
    hd: usize,
    processes: Vec<Process>,
    /// Per project index: the groups working on it (id, name, weight).
    project_groups: Vec<Vec<(Uuid, String, f64)>>,
    /// Per group: its agents (id, name).
    members: HashMap<Uuid, Vec<(Uuid, String)>>,
    /// All users that file tickets: (id, name, site).
    requesters: Vec<(Uuid, String, Option<Uuid>)>,
    rita: (Uuid, String, Option<Uuid>),
    systems: Vec<Uuid>,
    /// (policy, first response minutes, resolution minutes) by priority 1..=4, HD then others.
    hd_policies: Vec<(Uuid, i64, i64)>,
    policies: Vec<(Uuid, i64, i64)>,
}

async fn seed_command(config: &Config, tickets: u64, seed: u64) -> anyhow::Result<()> {
    let database = startup::open_database(config).await?;
    let result = seed_database(&database.pool, tickets, seed).await;
    database.close().await?;
    result
}

async fn seed_database(pool: &PgPool, tickets: u64, seed: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let now = SystemClock.now();
    db::migrate(pool).await?;
    let mut tx = pool.begin().await?;
    processes::ensure_defaults(&mut tx, now).await?;
    tx.commit().await?;
    demo::load(pool, now).await?;
    let existing: i64 = sqlx::query_scalar("select count(*) from tickets")
        .fetch_one(pool)
        .await?;
    if existing > 0 {
        println!("the database already has {existing} tickets: not seeding again");
        print_signins(pool).await?;
        return Ok(());
    }
    let sizes = Sizes::for_tickets(tickets);
    println!(
        "seeding {} tickets, {} users, {} projects, {} groups",
        sizes.tickets, sizes.users, sizes.projects, sizes.groups
    );
    let mut conn = pool.acquire().await?;
    // Indexes dropped by an interrupted run come back first.
    restore_indexes(&mut conn).await?;
    reference_data(&mut conn, &sizes).await?;
    let reference = load_reference(&mut conn).await?;
    println!("reference data in {:.1} s", started.elapsed().as_secs_f64());
    let dropped = drop_indexes(&mut conn).await?;
    drop(conn);
    let load_started = Instant::now();
    let counts = load(pool, &reference, &sizes, seed, now).await?;
    println!(
        "copied {} tickets and {} events in {:.1} s",
        counts.0,
        counts.1,
        load_started.elapsed().as_secs_f64()
    );
    let index_started = Instant::now();
    rebuild_indexes(pool, dropped).await?;
    println!(
        "indexes rebuilt in {:.1} s",
        index_started.elapsed().as_secs_f64()
    );
    let mut conn = pool.acquire().await?;
    sqlx::query(
        "select setval(ticket_number_sequence(p.id)::regclass,
                       coalesce((select max(number) + 1 from tickets t where t.project_id = p.id), 1),
                       false)
         from projects p",
    )
    .execute(&mut *conn)
    .await?;
    let vacuum_started = Instant::now();
    sqlx::query("vacuum (analyze) tickets, ticket_events")
        .execute(&mut *conn)
        .await?;
    sqlx::query("analyze").execute(&mut *conn).await?;
    println!(
        "vacuum and analyze in {:.1} s",
        vacuum_started.elapsed().as_secs_f64()
    );
    drop(conn);
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    print_signins(pool).await?;
    Ok(())
}

async fn print_signins(pool: &PgPool) -> anyhow::Result<()> {
    let long: Option<String> = sqlx::query_scalar(
        "select p.key || '-' || t.number from tickets t join projects p on p.id = t.project_id
         where p.key = 'HD' and t.number = 500",
    )
    .fetch_optional(pool)
    .await?;
    println!("\nSign-ins (password {}):", demo::PASSWORD);
    println!("  l1@example.com         agent, group Service Desk L1, project HD");
    println!("  requester@example.com  requester");
    if let Some(key) = long {
        println!("A ticket with 50 events: {key}; every HD ticket numbered n*500 has 50.");
    }
    Ok(())
}

async fn exec(conn: &mut PgConnection, sql: &str) -> anyhow::Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .with_context(|| format!("running: {}", sql.chars().take(80).collect::<String>()))?;
    Ok(())
}

/// Projects, groups with their roles, sites, systems, users and memberships: set-based SQL.
async fn reference_data(conn: &mut PgConnection, s: &Sizes) -> anyhow::Result<()> {
    let mut sql = String::new();
    let new_projects = s.projects.saturating_sub(2);
    let _ = write!(
        sql,
        "begin;
        select setseed(0.42);
        insert into org_units (id, parent_id, name, kind, created_at)
        values (gen_random_uuid(), null, 'Benchland', 'country', now());
        insert into org_units (id, parent_id, name, kind, created_at)
        select gen_random_uuid(), (select id from org_units where name = 'Benchland'),
               'Site ' || lpad(i::text, 2, '0'), 'site', now()
        from generate_series(1, 40) i;
        insert into systems (id, name, criticality, created_at)
        select gen_random_uuid(), 'System ' || lpad(i::text, 3, '0'),
               (array['low', 'medium', 'high', 'critical'])[1 + i % 4], now()
        from generate_series(1, 60) i;
        insert into projects (id, key, name, kind, created_at, calendar_id)
        select gen_random_uuid(), 'B' || lpad(i::text, 3, '0'), 'Bench project ' || i,
               (array['service_desk', 'rollout', 'development'])[1 + i % 3], now(),
               (select id from sla_calendars order by created_at limit 1)
        from generate_series(1, {new_projects}) i;
        insert into groups (id, name, description, created_at)
        select gen_random_uuid(), 'Team ' || lpad(i::text, 3, '0'), 'Bench team', now()
        from generate_series(1, {groups}) i;
        -- Each team works on about four projects, with an agent role there.
        insert into memberships (id, role_id, group_id, project_id, created_at)
        select gen_random_uuid(), r.id, g.id, p.id, now()
        from (select id, row_number() over (order by name) n from groups where name like 'Team %') g
        join (select id, row_number() over (order by key) n from projects where key like 'B%') p
          on (p.n - 1) % {groups} = g.n - 1 or (p.n * 7) % {groups} = g.n - 1
        join roles r on r.name = (array['Agent L1', 'Agent L2', 'Agent L3'])[1 + g.n::int % 3]
        on conflict do nothing;
        insert into users (id, email, display_name, org_unit_id, created_at, updated_at)
        select gen_random_uuid(), 'user' || lpad(i::text, 6, '0') || '@bench.example',
               (array{first})[1 + i % {nfirst}] || ' ' || (array{last})[1 + (i / {nfirst}) % {nlast}],
               (select id from org_units where name = 'Site ' || lpad((1 + i % 40)::text, 2, '0')),
               now(), now()
        from generate_series(1, {users}) i;
        insert into memberships (id, role_id, user_id, created_at)
        select gen_random_uuid(), (select id from roles where name = 'Requester'), u.id, now()
        from users u where u.email like '%@bench.example';
        -- Agents: the first users, about twenty per team, and some in the demo help desk.
        insert into group_members (group_id, user_id)
        select g.id, u.id
        from (select id, row_number() over (order by name) n from groups where name like 'Team %') g
        join (select id, row_number() over (order by email) n from users
              where email like '%@bench.example') u
          on u.n <= {agents} and (u.n - 1) % {groups} = g.n - 1;
        insert into group_members (group_id, user_id)
        select g.id, u.id from groups g
        join (select id, row_number() over (order by email) n from users
              where email like '%@bench.example') u
          on (g.name = 'Service Desk L1' and u.n <= 30) or (g.name = 'Service Desk L2' and u.n between 31 and 50)
        on conflict do nothing;
        insert into sla_policies (id, project_id, process_id, priority, calendar_id,
                                  first_response_minutes, resolution_minutes, warn_percent, created_at)
        select gen_random_uuid(), null, null, p, (select id from sla_calendars order by created_at limit 1),
               (array[60, 120, 480, 960])[p], (array[480, 960, 2880, 4800])[p], 80, now()
        from generate_series(1, 4) p
        on conflict do nothing;
        commit;",
        groups = s.groups,
        users = s.users,
        agents = s.agents,
        first = sql_array(FIRST),
        nfirst = FIRST.len(),
        last = sql_array(LAST),
        nlast = LAST.len(),
    );
    exec(conn, &sql).await
}

fn sql_array(items: &[&str]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

async fn load_reference(conn: &mut PgConnection) -> anyhow::Result<Reference> {
    let projects: Vec<(Uuid, String)> = sqlx::query_as("select id, key from projects order by key")
        .fetch_all(&mut *conn)
        .await?;
    let hd = projects
        .iter()
        .position(|(_, k)| k == "HD")
        .context("the demo project HD is missing")?;
    let rows: Vec<(Uuid, String, String, i32, serde_json::Value)> = sqlx::query_as(
        "select p.id, p.key, p.name, v.version, v.definition from processes p
         join process_versions v on v.process_id = p.id
         where p.active and v.version = (select max(version) from process_versions w where w.process_id = p.id)
         order by p.key",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut processes = Vec::new();
    for (id, key, name, version, definition) in rows {
        let def: Def =
            serde_json::from_value(definition).with_context(|| format!("reading process {key}"))?;
        let weight = match key.as_str() {
            "question" => 50.0,
            "bug" => 15.0,
            "change_request" => 10.0,
            "access_request" => 10.0,
            "feature_request" => 10.0,
            _ => 5.0,
        };
        processes.push(Process {
            id,
            version,
            name,
            weight,
            states: def.states,
        });
    }
    anyhow::ensure!(!processes.is_empty(), "no published processes");
    let grants: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "select m.project_id, g.id, g.name from memberships m join groups g on g.id = m.group_id
         join roles r on r.id = m.role_id
         where m.project_id is not null and r.name like 'Agent%' or (m.project_id is not null and r.name = 'Developer')
         order by g.name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let index: HashMap<Uuid, usize> = projects
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut project_groups: Vec<Vec<(Uuid, String, f64)>> = vec![Vec::new(); projects.len()];
    for (project, group, name) in grants {
        if let Some(i) = index.get(&project) {
            let weight = match name.as_str() {
                "Service Desk L1" => 7.0,
                "Service Desk L2" => 3.0,
                _ => 1.0,
            };
            project_groups[*i].push((group, name, weight));
        }
    }
    let members_rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "select gm.group_id, u.id, u.display_name from group_members gm join users u on u.id = gm.user_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut members: HashMap<Uuid, Vec<(Uuid, String)>> = HashMap::new();
    for (group, user, name) in members_rows {
        members.entry(group).or_default().push((user, name));
    }
    let requesters: Vec<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
        "select id, display_name, org_unit_id from users where email like '%@bench.example' order by email",
    )
    .fetch_all(&mut *conn)
    .await?;
    let rita: (Uuid, String, Option<Uuid>) = sqlx::query_as(
        "select id, display_name, org_unit_id from users where lower(email) = 'requester@example.com'",
    )
    .fetch_one(&mut *conn)
    .await?;
    let systems: Vec<Uuid> = sqlx::query_scalar("select id from systems order by name")
        .fetch_all(&mut *conn)
        .await?;
    type PolicyRow = (Uuid, Option<Uuid>, i16, Option<i32>, Option<i32>);
    let policy_rows: Vec<PolicyRow> = sqlx::query_as(
        "select p.id, p.project_id, p.priority, p.first_response_minutes, p.resolution_minutes
         from sla_policies p left join projects pr on pr.id = p.project_id
         where p.process_id is null and (p.project_id is null or pr.key = 'HD')
         order by p.priority",
    )
    .fetch_all(&mut *conn)
    .await?;
    let pick = |hd_only: bool| -> Vec<(Uuid, i64, i64)> {
        policy_rows
            .iter()
            .filter(|r| r.1.is_some() == hd_only)
            .map(|r| {
                (
                    r.0,
                    i64::from(r.3.unwrap_or(480)),
                    i64::from(r.4.unwrap_or(2880)),
                )
            })
            .collect()
    };
    let hd_policies = pick(true);
    let policies = pick(false);
    anyhow::ensure!(
        hd_policies.len() == 4 && policies.len() == 4,
        "expected SLA policies for priorities 1 to 4"
    );
    anyhow::ensure!(
        project_groups.iter().all(|g| !g.is_empty()),
        "a project has no agent group"
    );
    Ok(Reference {
        projects,
        hd,
        processes,
        project_groups,
        members,
        requesters,
        rita,
        systems,
        hd_policies,
        policies,
    })
}

// ---------------------------------------------------------------------------------------------
// Indexes: dropped around the load (all but primary keys and unique constraints), rebuilt after
// from their own definitions, so the rebuilt ones are exactly what the migrations made.

const SAVED: &str = "bench_dropped_indexes";

async fn drop_indexes(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    exec(
        conn,
        &format!(
            "create table if not exists {SAVED} (name text primary key, definition text not null);
             insert into {SAVED} (name, definition)
             select i.indexname, i.indexdef from pg_indexes i
             where i.schemaname = 'public' and i.tablename in ('tickets', 'ticket_events')
               and not exists (select 1 from pg_constraint c where c.conname = i.indexname)
             on conflict do nothing;"
        ),
    )
    .await?;
    let saved: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select name, definition from {SAVED} order by name"
    )))
    .fetch_all(&mut *conn)
    .await?;
    for (name, _) in &saved {
        exec(conn, &format!("drop index if exists {name}")).await?;
    }
    Ok(saved.into_iter().map(|(_, d)| d).collect())
}

async fn restore_indexes(conn: &mut PgConnection) -> anyhow::Result<()> {
    let present: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select to_regclass('{SAVED}') is not null"
    )))
    .fetch_one(&mut *conn)
    .await?;
    if !present {
        return Ok(());
    }
    let saved: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select name, definition from {SAVED}"
    )))
    .fetch_all(&mut *conn)
    .await?;
    for (name, definition) in saved {
        let exists: bool = sqlx::query_scalar("select to_regclass($1) is not null")
            .bind(&name)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            exec(conn, &definition).await?;
        }
    }
    exec(conn, &format!("drop table {SAVED}")).await
}

/// Builds the indexes on two connections at once, biggest first.
async fn rebuild_indexes(pool: &PgPool, mut definitions: Vec<String>) -> anyhow::Result<()> {
    // GIN indexes are the slowest: start them first, one per connection.
    definitions.sort_by_key(|d| !d.contains("USING gin"));
    let bar = ProgressBar::new(definitions.len() as u64);
    bar.set_style(ProgressStyle::with_template(
        "indexes  [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
    )?);
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(definitions));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let queue = queue.clone();
        let pool = pool.clone();
        let bar = bar.clone();
        workers.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            exec(
                &mut conn,
                "set maintenance_work_mem = '512MB'; set max_parallel_maintenance_workers = 0",
            )
            .await?;
            loop {
                let next = queue.lock().await.pop();
                let Some(definition) = next else { break };
                exec(&mut conn, &definition).await?;
                bar.inc(1);
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    bar.finish();
    let mut conn = pool.acquire().await?;
    exec(&mut conn, &format!("drop table if exists {SAVED}")).await
}

// ---------------------------------------------------------------------------------------------
// Tickets and events

/// Text-format COPY field escaping.
fn field(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn opt_uuid(out: &mut String, id: Option<Uuid>) {
    match id {
        Some(id) => {
            let _ = write!(out, "{id}");
        }
        None => out.push_str("\\N"),
    }
}

fn ts(out: &mut String, micros: i64) {
    match jiff::Timestamp::from_microsecond(micros) {
        Ok(t) => {
            let _ = write!(out, "{t}");
        }
        Err(_) => out.push_str("\\N"),
    }
}

fn opt_ts(out: &mut String, micros: Option<i64>) {
    match micros {
        Some(m) => ts(out, m),
        None => out.push_str("\\N"),
    }
}

fn json_str(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn pick_weighted<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rng.random::<f64>() * total;
    for item in items {
        x -= weight(item);
        if x <= 0.0 {
            return item;
        }
    }
    &items[items.len() - 1]
}

fn sentence(rng: &mut StdRng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    s.push('.');
    s
}

const MINUTE: i64 = 60_000_000;
const DAY: i64 = 24 * 60 * MINUTE;

struct Event {
    actor: Option<Uuid>,
    kind: &'static str,
    data: String,
    at: i64,
}

const TICKET_COLUMNS: &str = "id, project_id, number, title, description_md, description_html, \
    requester_id, state, state_category, created_at, updated_at, version, priority, impact, urgency, \
    assignee_id, assignee_group_id, org_unit_id, process_id, process_version, field_values, \
    system_id, site_id, sla_policy_id, first_response_due, resolution_due, sla_due, sla_warn_at, \
    sla_paused, picked_up_at, first_response_at, resolved_at, first_response_breached_at, \
    resolution_breached_at";

/// One ticket's COPY line and its events, appended to the two buffers.
struct Generator<'a> {
    r: &'a Reference,
    rng: StdRng,
    now: i64,
    numbers: Vec<i64>,
    events: u64,
}

impl Generator<'_> {
    fn ticket(&mut self, n: u64, tickets: &mut String, events: &mut String) {
        let rng = &mut self.rng;
        let p = {
            let x: f64 = rng.random();
            if x < 0.10 {
                self.r.hd
            } else {
                let n = self.r.projects.len();
                let y: f64 = rng.random();
                ((y * y * n as f64) as usize).min(n - 1)
            }
        };
        let (project_id, _) = &self.r.projects[p];
        self.numbers[p] += 1;
        let number = self.numbers[p];
        let process = pick_weighted(rng, &self.r.processes, |p| p.weight);
        let x: f64 = rng.random();
        let want = if x < 0.80 {
            "closed"
        } else if x < 0.85 {
            "resolved"
        } else if x < 0.88 {
            "waiting"
        } else if x < 0.95 {
            "open"
        } else {
            "new"
        };
        let candidates: Vec<&DefState> = process
            .states
            .iter()
            .filter(|s| s.category == want)
            .collect();
        let state = if candidates.is_empty() {
            &process.states[rng.random_range(0..process.states.len())]
        } else {
            candidates[rng.random_range(0..candidates.len())]
        };
        let initial = &process.states[0];
        let category = state.category.as_str();
        let active = matches!(category, "new" | "open" | "waiting");
        let created = if active {
            self.now - rng.random_range(0..10 * DAY)
        } else {
            self.now - rng.random_range(10 * DAY..730 * DAY)
        };
        let mut id_random = [0u8; 10];
        rng.fill(&mut id_random);
        let id = uuid::Builder::from_unix_timestamp_millis(
            u64::try_from(created / 1000).unwrap_or(0),
            &id_random,
        )
        .into_uuid();
        let requester = if n % 5000 == 17 {
            &self.r.rita
        } else {
            // Some people file far more than others.
            let y: f64 = rng.random();
            let i = ((y * y) * self.r.requesters.len() as f64) as usize;
            &self.r.requesters[i.min(self.r.requesters.len() - 1)]
        };
        let groups = &self.r.project_groups[p];
        let (group_id, group_name, _) = pick_weighted(rng, groups, |g| g.2);
        let members = self.r.members.get(group_id);
        let assignee = if category != "new" && rng.random::<f64>() < 0.7 {
            members.and_then(|m| {
                if m.is_empty() {
                    None
                } else {
                    Some(&m[rng.random_range(0..m.len())])
                }
            })
        } else {
            None
        };
        let priority: i16 = *pick_weighted(rng, &[1i16, 2, 3, 4], |p| match p {
            1 => 5.0,
            2 => 20.0,
            3 => 50.0,
            _ => 25.0,
        });
        let object = OBJECTS[rng.random_range(0..OBJECTS.len())];
        let title = format!(
            "{} {} {}",
            PROBLEMS[rng.random_range(0..PROBLEMS.len())],
            object,
            match rng.random_range(0..4) {
                0 => "since the update".to_owned(),
                1 => format!("on floor {}", rng.random_range(1..9)),
                2 => format!("error E{}", rng.random_range(1000..10000)),
                _ => "for the whole team".to_owned(),
            }
        );
        let mut description = String::new();
        for _ in 0..rng.random_range(2..5) {
            let words = rng.random_range(6..16);
            description.push_str(&sentence(rng, words));
            description.push(' ');
        }
        let description = description.trim_end().to_owned();
        let system = if rng.random::<f64>() < 0.4 {
            Some(self.r.systems[rng.random_range(0..self.r.systems.len())])
        } else {
            None
        };
        let policies = if p == self.r.hd {
            &self.r.hd_policies
        } else {
            &self.r.policies
        };
        let (policy_id, fr_minutes, res_minutes) = policies[(priority - 1) as usize];
        // Business minutes, roughly three times as long on the wall clock.
        let fr_due_at = created + fr_minutes * 3 * MINUTE;
        let res_due_at = created + res_minutes * 3 * MINUTE;
        let responded = category != "new";
        let first_response_at =
            responded.then(|| created + rng.random_range(5..fr_minutes * 3) * MINUTE);
        let picked_up_at = first_response_at;

        // Events, in time order.
        let mut evs: Vec<Event> = Vec::new();
        let mut at = created;
        evs.push(Event {
            actor: Some(requester.0),
            kind: "created",
            data: format!(
                r#"{{"type":"created","title":{},"process":{},"state":{},"category":{},"priority":3}}"#,
                json_str(&title),
                json_str(&process.name),
                json_str(&initial.label),
                json_str(&initial.category),
            ),
            at,
        });
        at += 1_000_000;
        evs.push(Event {
            actor: None,
            kind: "group_assigned",
            data: format!(
                r#"{{"type":"group_assigned","group":{}}}"#,
                json_str(group_name)
            ),
            at,
        });
        let agent = assignee.map(|a| a.0);
        let comments_target = if n % 50_000 == 25_000 {
            rng.random_range(300..700)
        } else if p == self.r.hd && number % 500 == 0 {
            usize::MAX // filled to 50 below
        } else {
            let y: f64 = rng.random();
            if y < 0.45 {
                0
            } else if y < 0.8 {
                1
            } else if y < 0.95 {
                2
            } else {
                rng.random_range(3..8)
            }
        };
        if let Some(a) = assignee {
            at = first_response_at.unwrap_or(at + MINUTE);
            evs.push(Event {
                actor: agent,
                kind: "assigned",
                data: format!(
                    r#"{{"type":"assigned","assignee":{},"group":{}}}"#,
                    json_str(&a.1),
                    json_str(group_name)
                ),
                at,
            });
        }
        let comment = |rng: &mut StdRng, evs: &mut Vec<Event>, at: i64, from_agent: bool| {
            let mut body = String::new();
            for _ in 0..rng.random_range(1..4) {
                let words = rng.random_range(5..14);
                body.push_str(&sentence(rng, words));
                body.push(' ');
            }
            if rng.random::<f64>() < 0.3 {
                let _ = write!(body, "{} ", object.to_lowercase());
            }
            let body = body.trim_end().to_owned();
            let public = !from_agent || rng.random::<f64>() < 0.8;
            evs.push(Event {
                actor: if from_agent { agent } else { Some(requester.0) },
                kind: "comment",
                data: format!(
                    r#"{{"type":"comment","body_md":{},"body_html":{},"public":{}}}"#,
                    json_str(&body),
                    json_str(&format!("<p>{body}</p>")),
                    public
                ),
                at,
            });
        };
        let transition = |evs: &mut Vec<Event>, from: &DefState, to: &DefState, at: i64| {
            evs.push(Event {
                actor: agent,
                kind: "transition",
                data: format!(
                    r#"{{"type":"transition","transition":{},"label":{},"from":{},"to":{},"category":{}}}"#,
                    json_str(&to.key),
                    json_str(&to.label),
                    json_str(&from.label),
                    json_str(&to.label),
                    json_str(&to.category)
                ),
                at,
            });
        };
        let mut resolved_at = None;
        if state.key != initial.key {
            at += rng.random_range(1..120) * MINUTE;
            transition(&mut evs, initial, state, at);
            if !active {
                resolved_at = Some(at);
            }
        }
        let end = if active { self.now } else { at + 5 * DAY };
        let target = if comments_target == usize::MAX {
            50usize.saturating_sub(evs.len())
        } else {
            comments_target
        };
        let span = (end - at).max(MINUTE);
        let step = span / (target as i64 + 1);
        for i in 0..target {
            at += step.max(1);
            comment(rng, &mut evs, at, i % 2 == 1);
        }
        let updated = evs.last().map_or(created, |e| e.at);

        // SLA columns: running clocks only on active, not waiting tickets.
        let paused = category == "waiting";
        let running = active && !paused;
        let fr_due = (running && !responded).then_some(fr_due_at);
        let res_due = running.then_some(res_due_at);
        let sla_due = match (fr_due, res_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sla_warn = sla_due.map(|d| created + (d - created) * 8 / 10);
        let fr_breached = match first_response_at {
            Some(r) if r > fr_due_at => Some(fr_due_at),
            None if fr_due_at <= self.now => Some(fr_due_at),
            _ => None,
        };
        let res_breached = match resolved_at {
            Some(r) if r > res_due_at => Some(res_due_at),
            None if running && res_due_at <= self.now => Some(res_due_at),
            _ => None,
        };

        let t = tickets;
        let _ = write!(t, "{id}\t{project_id}\t{number}\t");
        field(t, &title);
        t.push('\t');
        field(t, &description);
        t.push('\t');
        t.push_str("<p>");
        field(t, &description);
        t.push_str("</p>\t");
        let _ = write!(t, "{}\t", requester.0);
        field(t, &state.key);
        let _ = write!(t, "\t{}\t", state.category);
        ts(t, created);
        t.push('\t');
        ts(t, updated);
        let _ = write!(t, "\t{}\t{priority}\t\\N\t\\N\t", evs.len());
        opt_uuid(t, agent);
        let _ = write!(t, "\t{group_id}\t");
        opt_uuid(t, requester.2);
        let _ = write!(t, "\t{}\t{}\t", process.id, process.version);
        t.push_str("{}\t");
        opt_uuid(t, system);
        t.push('\t');
        opt_uuid(t, requester.2);
        let _ = write!(t, "\t{policy_id}\t");
        opt_ts(t, fr_due);
        t.push('\t');
        opt_ts(t, res_due);
        t.push('\t');
        opt_ts(t, sla_due);
        t.push('\t');
        opt_ts(t, sla_warn);
        t.push_str(if paused { "\tt\t" } else { "\tf\t" });
        opt_ts(t, picked_up_at);
        t.push('\t');
        opt_ts(t, first_response_at);
        t.push('\t');
        opt_ts(t, resolved_at);
        t.push('\t');
        opt_ts(t, fr_breached);
        t.push('\t');
        opt_ts(t, res_breached);
        t.push('\n');

        for e in &evs {
            let _ = write!(events, "{id}\t");
            opt_uuid(events, e.actor);
            let _ = write!(events, "\t{}\t", e.kind);
            field(events, &e.data);
            events.push('\t');
            ts(events, e.at);
            events.push('\n');
        }
        self.events += evs.len() as u64;
    }
}

const CHUNK: u64 = 2_000;

async fn copy_task(
    pool: PgPool,
    statement: String,
    mut chunks: tokio::sync::mpsc::Receiver<String>,
) -> anyhow::Result<u64> {
    let mut conn = pool.acquire().await?;
    // Rows are consistent by construction: skip the per-row foreign-key triggers where the
    // role may (a superuser, as in the private cluster); elsewhere they simply run.
    if exec(&mut conn, "set session_replication_role = replica")
        .await
        .is_err()
    {
        eprintln!("note: foreign keys are checked row by row (not a superuser)");
    }
    exec(&mut conn, "set synchronous_commit = off").await?;
    let mut copy = conn.copy_in_raw(&statement).await?;
    let mut bytes = 0u64;
    while let Some(chunk) = chunks.recv().await {
        bytes += chunk.len() as u64;
        copy.send(chunk.into_bytes()).await?;
    }
    let rows = copy.finish().await?;
    exec(&mut conn, "set session_replication_role = origin").await?;
    let _ = bytes;
    Ok(rows)
}

async fn load(
    pool: &PgPool,
    r: &Reference,
    s: &Sizes,
    seed: u64,
    now: jiff::Timestamp,
) -> anyhow::Result<(u64, u64)> {
    let (ticket_tx, ticket_rx) = tokio::sync::mpsc::channel::<String>(4);
    let (event_tx, event_rx) = tokio::sync::mpsc::channel::<String>(4);
    let tickets_copy = tokio::spawn(copy_task(
        pool.clone(),
        format!("copy tickets ({TICKET_COLUMNS}) from stdin"),
        ticket_rx,
    ));
    let events_copy = tokio::spawn(copy_task(
        pool.clone(),
        "copy ticket_events (ticket_id, actor_id, kind, data, created_at) from stdin".to_owned(),
        event_rx,
    ));
    let bar = ProgressBar::new(s.tickets);
    bar.set_style(ProgressStyle::with_template(
        "tickets  [{elapsed_precise}] {bar:40} {human_pos}/{human_len} ({per_sec}, eta {eta}) {msg}",
    )?);
    let mut generator = Generator {
        r,
        rng: StdRng::seed_from_u64(seed),
        now: now.as_microsecond(),
        numbers: vec![0; r.projects.len()],
        events: 0,
    };
    let mut n = 0u64;
    while n < s.tickets {
        let mut tickets = String::with_capacity(1 << 20);
        let mut events = String::with_capacity(4 << 20);
        let end = (n + CHUNK).min(s.tickets);
        for i in n..end {
            generator.ticket(i, &mut tickets, &mut events);
        }
        bar.inc(end - n);
        bar.set_message(format!("{} events", generator.events));
        n = end;
        // A closed channel means its COPY failed: its task reports why.
        if ticket_tx.send(tickets).await.is_err() || event_tx.send(events).await.is_err() {
            break;
        }
    }
    drop(ticket_tx);
    drop(event_tx);
    let tickets = tickets_copy.await??;
    let events = events_copy.await??;
    bar.finish_with_message(format!("{events} events"));
    Ok((tickets, events))
}
