//! The authorization matrix: every route of `web::routes()` × every built-in role (and an
//! anonymous visitor) × the objects it can be aimed at, against the expected statuses kept in
//! `tests/authz_matrix.txt`. A route without an entry there fails the test.
//!
//! Objects: `own` (the actor's own session, self, notification, or a ticket of their own:
//! each role has one, related as fits the role — see `OWN`), `other_requester` (another
//! requester's ticket in HD, another person, their notification), `other_project` (another
//! requester's ticket in ERP), `-` for routes without an object. Approval links use a real,
//! valid token for the approver's own ticket. Each route row runs on a fresh database; POSTs
//! carry a valid CSRF token and an empty form (a ticket's step and field forms also its
//! current version, which they must send), so an allowed POST shows as 422 (form refused)
//! or 303.
//! Regenerate after an intended change with `UPDATE_AUTHZ_MATRIX=1 cargo test authz`, then
//! read the diff.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::body::Body;
use axum::http::{Method, Request};
use tower::ServiceExt;
use unitrack::core::ids::UserId;
use unitrack::people::roles::{self, Holder};
use unitrack::people::{domain_rules, groups, sessions, tokens};
use unitrack::projects::org::{self, UnitKind};
use unitrack::projects::systems::{self, Criticality, SystemInput};
use unitrack::projects::{self, Kind, ProjectInput};
use unitrack::sla::{calendars, policies};
use unitrack::web;

use crate::common::{TestApp, t0};

const ROLES: [(&str, &str, Option<&str>); 8] = [
    ("requester", "Requester", None),
    ("agent_l1", "Agent L1", Some("HD")),
    ("agent_l2", "Agent L2", Some("HD")),
    ("agent_l3", "Agent L3", Some("HD")),
    ("developer", "Developer", Some("ERP")),
    ("approver", "Change approver", None),
    ("pm", "Project manager", Some("ERP")),
    ("admin", "Admin", None),
];

const FIXTURES: [&str; 3] = ["own", "other_requester", "other_project"];

/// Each role's own ticket and how it is theirs (all filed by someone else unless `requester`).
const OWN: [(&str, &str, &str); 8] = [
    ("requester", "HD-1", "requester"),
    ("agent_l1", "HD-3", "assignee"),
    ("agent_l2", "HD-4", "member of the assigned group"),
    ("agent_l3", "HD-5", "watcher"),
    ("developer", "ERP-2", "assignee"),
    ("approver", "ERP-3", "asked in an open approval round"),
    ("pm", "ERP-4", "requester"),
    ("admin", "HD-6", "requester"),
];

/// A valid approval-link token (for the approver's open request on ERP-3).
const APPROVAL_TOKEN: &str = "matrix-approval-link-token-0001";

struct World {
    app: TestApp,
    users: BTreeMap<&'static str, UserId>,
    other: UserId,
    ids: BTreeMap<String, String>,
}

async fn world() -> World {
    let app = TestApp::new().await;
    let now = t0();
    let mut conn = app.pool.acquire().await.unwrap();
    let hd = projects::create(
        &mut conn,
        "HD",
        &ProjectInput::new("Help desk", Kind::ServiceDesk),
        now,
    )
    .await
    .unwrap();
    let erp = projects::create(
        &mut conn,
        "ERP",
        &ProjectInput::new("ERP", Kind::Development),
        now,
    )
    .await
    .unwrap();
    drop(conn);
    let mut users = BTreeMap::new();
    for (name, role, project) in ROLES {
        let id = app
            .create_user_with_role(&format!("{name}@example.com"), name, "Requester")
            .await;
        let mut conn = app.pool.acquire().await.unwrap();
        if role != "Requester" {
            let role = roles::find_by_name(&mut conn, role).await.unwrap().unwrap();
            let scope = match project {
                Some("HD") => Some(hd),
                Some(_) => Some(erp),
                None => None,
            };
            roles::grant(&mut conn, role.id, Holder::User(id), scope, now)
                .await
                .unwrap();
        }
        users.insert(name, id);
    }
    let other = app
        .create_user("someone@example.com", "Someone Else", false)
        .await;
    let mut conn = app.pool.acquire().await.unwrap();
    let mut ids = BTreeMap::new();
    let group = groups::create(&mut conn, "Team", "", now).await.unwrap();
    groups::add_member(&mut conn, group, other).await.unwrap();
    let requester_role = roles::find_by_name(&mut conn, "Requester")
        .await
        .unwrap()
        .unwrap();
    let membership = roles::grant(
        &mut conn,
        requester_role.id,
        Holder::Group(group),
        Some(hd),
        now,
    )
    .await
    .unwrap();
    let unit = org::create(&mut conn, None, "Lonely site", UnitKind::Site, now)
        .await
        .unwrap();
    let rule = domain_rules::create(&mut conn, "other.example", Some(unit), None, now)
        .await
        .unwrap();
    let system = systems::create(
        &mut conn,
        &SystemInput {
            name: "CRM".into(),
            owner_id: None,
            support_group_id: None,
            criticality: Criticality::Low,
        },
        now,
    )
    .await
    .unwrap();
    let token = tokens::create(&mut conn, other, None, now).await.unwrap();
    let calendar = calendars::create(
        &mut conn,
        &calendars::CalendarInput {
            name: "Office".into(),
            time_zone: "UTC".into(),
            week: std::array::from_fn(|_| "09:00-17:00".into()),
            holidays: String::new(),
        },
        now,
    )
    .await
    .unwrap();
    let policy = policies::create(
        &mut conn,
        &policies::PolicyInput {
            project_id: None,
            process_id: None,
            priority: 1,
            calendar_id: calendar,
            first_response_minutes: Some(60),
            resolution_minutes: None,
            warn_percent: 80,
        },
        now,
    )
    .await
    .unwrap();
    let routed_to = groups::create(&mut conn, "Routed", "", now).await.unwrap();
    let routing_rule = projects::triage::add(
        &mut conn,
        hd,
        &projects::triage::RuleInput {
            process_id: None,
            system_id: None,
            site_id: None,
            group_id: routed_to,
        },
        now,
    )
    .await
    .unwrap();
    ids.insert("calendar".into(), calendar.to_string());
    ids.insert("policy".into(), policy.to_string());
    ids.insert("routing_rule".into(), routing_rule.id.to_string());
    ids.insert("group".into(), group.to_string());
    ids.insert("role".into(), requester_role.id.to_string());
    ids.insert("membership".into(), membership.to_string());
    ids.insert("unit".into(), unit.to_string());
    ids.insert("rule".into(), rule.to_string());
    ids.insert("system".into(), system.to_string());
    ids.insert("token".into(), token);
    drop(conn);
    // Tickets: HD-1 by the requester, HD-2 by someone else, ERP-1 by someone else; then the
    // other roles' own tickets in the order of `OWN`.
    let mut filings = vec![(users["requester"], hd), (other, hd), (other, erp)];
    for (role, key, how) in &OWN[1..] {
        let by = if *how == "requester" {
            users[role]
        } else {
            other
        };
        filings.push((by, if key.starts_with("HD") { hd } else { erp }));
    }
    for (by, project) in filings {
        let mut conn = app.pool.acquire().await.unwrap();
        let actor = unitrack::people::actor_of(&mut conn, by).await.unwrap();
        let input = unitrack::tickets::NewTicket {
            project_id: Some(project),
            title: "A ticket".into(),
            description: String::new(),
            ..Default::default()
        };
        unitrack::tickets::create(&mut conn, &actor, &input, now)
            .await
            .unwrap();
    }
    // The relations that make them theirs.
    let mut conn = app.pool.acquire().await.unwrap();
    let ticket_id = |key: &str| {
        let (project, number) = key.split_once('-').unwrap();
        sqlx::query_scalar::<_, uuid::Uuid>(
            "select t.id from tickets t join projects p on p.id = t.project_id
             where p.key = $1 and t.number = $2",
        )
        .bind(project.to_owned())
        .bind(number.parse::<i64>().unwrap())
    };
    let second_line = groups::create(&mut conn, "Second line", "", now)
        .await
        .unwrap();
    groups::add_member(&mut conn, second_line, users["agent_l2"])
        .await
        .unwrap();
    for (role, key, how) in OWN {
        let id = ticket_id(key).fetch_one(&mut *conn).await.unwrap();
        let user = users[role];
        let relate = match how {
            "assignee" => sqlx::query("update tickets set assignee_id = $2 where id = $1")
                .bind(id)
                .bind(user),
            "member of the assigned group" => {
                sqlx::query("update tickets set assignee_group_id = $2 where id = $1")
                    .bind(id)
                    .bind(second_line)
            }
            "watcher" => {
                sqlx::query("insert into ticket_watchers (ticket_id, user_id) values ($1, $2)")
                    .bind(id)
                    .bind(user)
            }
            "asked in an open approval round" => sqlx::query(
                "with r as (insert into approval_rounds (id, ticket_id, state, round, rule, created_at)
                            values (gen_random_uuid(), $1, 'new', 1, '\"all\"', now()) returning id),
                      q as (insert into approval_requests (round_id, approver_id) select id, $2 from r)
                 insert into approval_tokens (token_hash, ticket_id, round_id, approver_id, expires_at, created_at)
                 select sha256(convert_to($3, 'UTF8')), $1, id, $2, '2100-01-01', now() from r",
            )
            .bind(id)
            .bind(user)
            .bind(APPROVAL_TOKEN),
            // Filed it: nothing to add.
            _ => sqlx::query("select $1::uuid").bind(id),
        };
        relate.execute(&mut *conn).await.unwrap();
        // A notification of their own, on their ticket.
        let notification: i64 = sqlx::query_scalar(
            "insert into notifications (user_id, ticket_id, kind, text, created_at)
             values ($1, $2, 'assigned', 'For you', now()) returning id",
        )
        .bind(user)
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        ids.insert(format!("notification {role}"), notification.to_string());
    }
    let notification: i64 = sqlx::query_scalar(
        "insert into notifications (user_id, ticket_id, kind, text, created_at)
         values ($1, $2, 'assigned', 'For someone else', now()) returning id",
    )
    .bind(other)
    .bind(ticket_id("HD-2").fetch_one(&mut *conn).await.unwrap())
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    ids.insert("notification other".into(), notification.to_string());
    // A file on each ticket, and a canned response.
    let files: Vec<(String, String)> = sqlx::query_as(
        "insert into attachments (id, ticket_id, filename, content_type, size, sha256, created_at, data)
         select gen_random_uuid(), t.id, 'a.txt', 'text/plain', 1, sha256('x'::bytea), now(), 'x'::bytea
         from tickets t
         returning (select p.key || '-' || t2.number from tickets t2 join projects p on p.id = t2.project_id
                    where t2.id = ticket_id), id::text",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for (key, id) in files {
        ids.insert(format!("file {key}"), id);
    }
    let canned: String = sqlx::query_scalar(
        "insert into canned_responses (id, title, body, created_at, updated_at)
         values (gen_random_uuid(), 'Hello', 'Hello', now(), now()) returning id::text",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    ids.insert("canned".into(), canned);
    // A shared queue made by `other`: everyone sees it, only `other` may delete it.
    let queue: String = sqlx::query_scalar(
        "insert into queues (id, name, created_by, created_at)
         values (gen_random_uuid(), 'Open HD', $1, now()) returning id::text",
    )
    .bind(other)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    ids.insert("queue".into(), queue);
    drop(conn);
    World {
        app,
        users,
        other,
        ids,
    }
}

/// The concrete path for a route pattern, aimed at `fixture` on behalf of the role `me`
/// (`None`: anonymous, whose "own" objects are the requester's).
fn concrete(
    world: &World,
    pattern: &str,
    fixture: &str,
    me: Option<&str>,
    my_session: Option<&str>,
    other_session: &str,
) -> String {
    let person = match (fixture, me) {
        ("own", Some(me)) => world.users[me].to_string(),
        _ => world.other.to_string(),
    };
    let own_role = me.unwrap_or("requester");
    let ticket = match fixture {
        "own" => OWN
            .iter()
            .find(|(role, _, _)| *role == own_role)
            .map(|(_, key, _)| *key)
            .unwrap(),
        "other_project" => "ERP-1",
        _ => "HD-2",
    };
    let notification = match fixture {
        "own" => world.ids[&format!("notification {own_role}")].clone(),
        _ => world.ids["notification other"].clone(),
    };
    let session = match (fixture, my_session) {
        ("own", Some(s)) => s.to_owned(),
        _ => other_session.to_owned(),
    };
    let mut out = String::new();
    for segment in pattern.split('/').skip(1) {
        out.push('/');
        let value = match segment {
            "{key}" if pattern.starts_with("/tickets") => ticket.to_owned(),
            "{key}" if pattern.starts_with("/admin/processes") => "question".to_owned(),
            "{key}" => "HD".to_owned(),
            "{file}" => "app.css".to_owned(),
            "{token}" if pattern.starts_with("/approval-links") => APPROVAL_TOKEN.to_owned(),
            "{token}" => world.ids["token"].clone(),
            "{user}" => world.other.to_string(),
            "{id}" if pattern.starts_with("/account/sessions") => session.clone(),
            "{id}" if pattern.starts_with("/admin/groups") => world.ids["group"].clone(),
            "{id}" if pattern.starts_with("/admin/roles") => world.ids["role"].clone(),
            "{id}" if pattern.starts_with("/admin/memberships") => world.ids["membership"].clone(),
            "{id}" if pattern.starts_with("/admin/org") => world.ids["unit"].clone(),
            "{id}" if pattern.starts_with("/admin/domain-rules") => world.ids["rule"].clone(),
            "{id}" if pattern.starts_with("/admin/systems") => world.ids["system"].clone(),
            "{id}" if pattern.starts_with("/admin/sla/calendars") => world.ids["calendar"].clone(),
            "{id}" if pattern.starts_with("/admin/sla/policies") => world.ids["policy"].clone(),
            "{id}" if pattern.starts_with("/admin/projects") => world.ids["routing_rule"].clone(),
            "{id}" if pattern.starts_with("/admin/canned") => world.ids["canned"].clone(),
            "{id}" if pattern.starts_with("/queues") => world.ids["queue"].clone(),
            "{id}" if pattern.starts_with("/notifications") => notification.clone(),
            "{id}" if pattern.starts_with("/tickets") => {
                world.ids[&format!("file {ticket}")].clone()
            }
            "{id}" => person.clone(),
            other => other.to_owned(),
        };
        out.push_str(&value);
    }
    if out.is_empty() { "/".into() } else { out }
}

async fn status_of(
    world: &World,
    method: &Method,
    path: &str,
    session: Option<(&str, &str)>,
) -> u16 {
    let csrf = match session {
        Some((_, csrf)) => csrf.to_owned(),
        None => "A".repeat(43),
    };
    let mut cookie = format!("ut_csrf={csrf}");
    if let Some((token, _)) = session {
        cookie.push_str(&format!("; ut_session={token}"));
    }
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", "localhost")
        .header("cookie", cookie);
    let body = if *method == Method::POST {
        request = request
            .header("origin", "http://localhost")
            .header("content-type", "application/x-www-form-urlencoded");
        let mut form = format!("_csrf={csrf}");
        if let Some(version) = form_version(world, path).await {
            form.push_str(&format!("&version={version}"));
        }
        Body::from(form)
    } else {
        Body::empty()
    };
    let response = world
        .app
        .router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    response.status().as_u16()
}

/// The version a ticket page's step or field form would carry for `path`, if it is one.
async fn form_version(world: &World, path: &str) -> Option<i32> {
    let rest = path.strip_prefix("/tickets/")?;
    let (key, action) = rest.split_once('/')?;
    if !(action == "fields" || action.starts_with("transitions/")) {
        return None;
    }
    sqlx::query_scalar(
        "select t.version from tickets t join projects p on p.id = t.project_id
         where p.key || '-' || t.number = $1",
    )
    .bind(key)
    .fetch_optional(&world.app.pool)
    .await
    .unwrap()
}

fn fixtures_for(pattern: &str) -> Vec<&'static str> {
    if pattern.contains("{key}") && pattern.starts_with("/tickets")
        || pattern.starts_with("/account/sessions")
        || pattern.starts_with("/people/")
        || pattern.starts_with("/notifications/{id}")
    {
        if pattern.starts_with("/tickets") {
            FIXTURES.to_vec()
        } else {
            vec!["own", "other_requester"]
        }
    } else {
        vec!["-"]
    }
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_matrix_says() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/authz_matrix.txt");
    let mut actual = String::new();
    let _ = writeln!(
        actual,
        "# Generated rows are checked by tests/it/authz.rs; see its header."
    );
    let _ = write!(
        actual,
        "# {:<6} {:<44} {:<16} anon",
        "method", "path", "object"
    );
    for (name, _, _) in ROLES {
        let _ = write!(actual, " {name}");
    }
    actual.push('\n');
    for route in web::routes() {
        for fixture in fixtures_for(route.path) {
            let world = world().await;
            let mut conn = world.app.pool.acquire().await.unwrap();
            let other_session = sessions::create(&mut conn, world.other, t0(), lifetime(), "", "")
                .await
                .unwrap();
            let other_public: String =
                sqlx::query_scalar("select public_id::text from sessions limit 1")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            let _ = other_session;
            drop(conn);
            let mut row = format!(
                "{:<8} {:<44} {:<16}",
                route.method.as_str(),
                route.path,
                fixture
            );
            let path = concrete(&world, route.path, fixture, None, None, &other_public);
            let _ = write!(
                row,
                " {}",
                status_of(&world, &route.method, &path, None).await
            );
            for (name, _, _) in ROLES {
                let me = world.users[name];
                let mut conn = world.app.pool.acquire().await.unwrap();
                let token = sessions::create(&mut conn, me, t0(), lifetime(), "", "")
                    .await
                    .unwrap();
                let (public, csrf): (String, String) = sqlx::query_as(
                    "select public_id::text, csrf_token from sessions where user_id = $1 order by created_at desc limit 1",
                )
                .bind(me)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
                drop(conn);
                let path = concrete(
                    &world,
                    route.path,
                    fixture,
                    Some(name),
                    Some(&public),
                    &other_public,
                );
                let status = status_of(&world, &route.method, &path, Some((&token, &csrf))).await;
                let _ = write!(row, " {status}");
            }
            actual.push_str(&row);
            actual.push('\n');
            // Probing a route may queue mail (a reset link, say); this test is about statuses.
            world.app.discard_jobs("mail_send").await;
        }
    }
    if std::env::var_os("UPDATE_AUTHZ_MATRIX").is_some() {
        std::fs::write(file, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(file).unwrap_or_default();
    let normalise = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let (expected, actual) = (normalise(&expected), normalise(&actual));
    let missing: Vec<&String> = actual
        .iter()
        .filter(|row| {
            let key: Vec<&str> = row.split(' ').take(3).collect();
            !expected
                .iter()
                .any(|e| e.split(' ').take(3).collect::<Vec<_>>() == key)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in tests/authz_matrix.txt:\n{missing:#?}"
    );
    let differ: Vec<(String, String)> = actual
        .iter()
        .filter(|a| !expected.contains(a))
        .map(|a| {
            let key: Vec<&str> = a.split(' ').take(3).collect();
            let e = expected
                .iter()
                .find(|e| e.split(' ').take(3).collect::<Vec<_>>() == key)
                .cloned()
                .unwrap_or_default();
            (e, a.clone())
        })
        .collect();
    assert!(
        differ.is_empty(),
        "statuses differ from tests/authz_matrix.txt (expected, actual):\n{differ:#?}"
    );
}

fn lifetime() -> sessions::Lifetime {
    sessions::Lifetime {
        idle: jiff::SignedDuration::from_mins(30),
        max: jiff::SignedDuration::from_hours(12),
    }
}
