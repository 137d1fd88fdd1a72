//! The authorization matrix: every route of `web::routes()` × every built-in role (and an
//! anonymous visitor) × the objects it can be aimed at, against the expected statuses kept in
//! `tests/authz_matrix.txt`. A route without an entry there fails the test.
//!
//! Objects: `own` (the actor's own ticket / session / self), `other_requester` (another
//! requester's ticket in HD, or another person), `other_project` (a ticket in ERP), `-` for
//! routes without an object. Each route row runs on a fresh database; POSTs carry a valid
//! CSRF token and an empty form (a ticket's step and field forms also its current version, which
//! they must send), so an allowed POST shows as 422 (form refused) or 303.
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

struct World {
    app: TestApp,
    users: BTreeMap<&'static str, UserId>,
    other: UserId,
    ids: BTreeMap<&'static str, String>,
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
    ids.insert("calendar", calendar.to_string());
    ids.insert("policy", policy.to_string());
    ids.insert("routing_rule", routing_rule.id.to_string());
    ids.insert("group", group.to_string());
    ids.insert("role", requester_role.id.to_string());
    ids.insert("membership", membership.to_string());
    ids.insert("unit", unit.to_string());
    ids.insert("rule", rule.to_string());
    ids.insert("system", system.to_string());
    ids.insert("token", token);
    drop(conn);
    // Tickets: HD-1 by the requester, HD-2 by someone else, ERP-1 by someone else.
    for (by, project) in [(users["requester"], hd), (other, hd), (other, erp)] {
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
    // A file on each ticket, and a canned response.
    let mut conn = app.pool.acquire().await.unwrap();
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
        let name = match key.as_str() {
            "HD-1" => "file HD-1",
            "HD-2" => "file HD-2",
            _ => "file ERP-1",
        };
        ids.insert(name, id);
    }
    let canned: String = sqlx::query_scalar(
        "insert into canned_responses (id, title, body, created_at, updated_at)
         values (gen_random_uuid(), 'Hello', 'Hello', now(), now()) returning id::text",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    ids.insert("canned", canned);
    // A shared queue made by `other`: everyone sees it, only `other` may delete it.
    let queue: String = sqlx::query_scalar(
        "insert into queues (id, name, created_by, created_at)
         values (gen_random_uuid(), 'Open HD', $1, now()) returning id::text",
    )
    .bind(other)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    ids.insert("queue", queue);
    drop(conn);
    World {
        app,
        users,
        other,
        ids,
    }
}

/// The concrete path for a route pattern, aimed at `fixture` on behalf of `me`.
fn concrete(
    world: &World,
    pattern: &str,
    fixture: &str,
    me: Option<UserId>,
    my_session: Option<&str>,
    other_session: &str,
) -> String {
    let person = match (fixture, me) {
        ("own", Some(me)) => me.to_string(),
        _ => world.other.to_string(),
    };
    let ticket = match fixture {
        "own" => "HD-1",
        "other_project" => "ERP-1",
        _ => "HD-2",
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
            "{id}" if pattern.starts_with("/tickets") => {
                world.ids[format!("file {ticket}").as_str()].clone()
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
                    Some(me),
                    Some(&public),
                    &other_public,
                );
                let status = status_of(&world, &route.method, &path, Some((&token, &csrf))).await;
                let _ = write!(row, " {status}");
            }
            actual.push_str(&row);
            actual.push('\n');
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
