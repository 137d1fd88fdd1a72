//! Admin pages for SLA and triage: calendars, policies, a project's priority matrix, calendar
//! and routing rules, and group tiers. Refusals keep the input and store nothing.

use axum::http::{Method, StatusCode};
use unitrack::core::ids::ProjectId;
use unitrack::people::groups;
use unitrack::projects::org::{self, UnitKind};
use unitrack::tickets::triage;
use unitrack::web;

use crate::common::{TestApp, t0};

async fn admin_app() -> (TestApp, ProjectId) {
    let mut app = TestApp::new().await;
    app.create_user("admin@example.com", "Alex Admin", true)
        .await;
    let hd = app.create_project("HD", "Help desk").await;
    app.login("admin@example.com").await;
    (app, hd)
}

const OFFICE_WEEK: [(&str, &str); 7] = [
    ("mon", "09:00-17:00"),
    ("tue", "9:00-12:00,13:00-17:00"),
    ("wed", "09:00-17:00"),
    ("thu", "09:00-17:00"),
    ("fri", "08:00 - 16:00"),
    ("sat", ""),
    ("sun", ""),
];

fn calendar_form<'a>(
    name: &'a str,
    zone: &'a str,
    week: [(&'a str, &'a str); 7],
    holidays: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("name", name), ("time_zone", zone), ("holidays", holidays)];
    fields.extend(week);
    fields
}

async fn add_calendar(app: &mut TestApp, name: &str) -> String {
    let mut week = OFFICE_WEEK;
    week[1].1 = "09:00-17:00";
    app.post_form(
        "/admin/sla/calendars",
        &calendar_form(name, "Europe/Berlin", week, ""),
    )
    .await
    .assert_redirect_to("/admin/sla/calendars");
    sqlx::query_scalar("select id::text from sla_calendars where name = $1")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_calendar_with_mistakes_is_refused_field_by_field_and_kept() {
    let (mut app, _) = admin_app().await;
    app.get("/admin/sla/calendars")
        .await
        .assert_status(StatusCode::OK);
    let mut week = OFFICE_WEEK;
    week[2].1 = "17:00-09:00";
    app.post_form(
        "/admin/sla/calendars",
        &calendar_form(
            "Berlin office",
            "Mars/Olympus",
            week,
            "2026-12-25\n25.12.2026",
        ),
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("is not a time zone (e.g. Europe/Berlin)")
    .assert_contains("ends before it starts")
    .assert_contains("is not a date like 2026-12-25")
    // What was typed stays, each in its field.
    .assert_contains("value=\"Berlin office\"")
    .assert_contains("value=\"Mars/Olympus\"")
    .assert_contains("value=\"17:00-09:00\"")
    .assert_contains("25.12.2026</textarea>");
    app.post_form(
        "/admin/sla/calendars",
        &calendar_form(
            "Closed",
            "UTC",
            [
                ("mon", ""),
                ("tue", ""),
                ("wed", ""),
                ("thu", ""),
                ("fri", ""),
                ("sat", ""),
                ("sun", ""),
            ],
            "",
        ),
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Give working hours for at least one day");
    assert_eq!(app.count("select count(*) from sla_calendars").await, 0);
    assert_eq!(
        app.count("select count(*) from admin_audit where entity = 'sla_calendar'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_valid_calendar_is_stored_in_its_normalised_text_form() {
    let (mut app, _) = admin_app().await;
    app.post_form(
        "/admin/sla/calendars",
        &calendar_form(
            "Berlin office",
            " Europe/Berlin ",
            OFFICE_WEEK,
            "2026-12-26\n2026-12-25, 2026-12-25\n",
        ),
    )
    .await
    .assert_redirect_to("/admin/sla/calendars");
    let (zone, week, holidays): (String, serde_json::Value, Vec<String>) = sqlx::query_as(
        "select time_zone, week, holidays::text[] from sla_calendars where name = 'Berlin office'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(zone, "Europe/Berlin");
    assert_eq!(
        week,
        serde_json::json!([
            "09:00-17:00",
            "09:00-12:00, 13:00-17:00",
            "09:00-17:00",
            "09:00-17:00",
            "08:00-16:00",
            "",
            ""
        ])
    );
    assert_eq!(holidays, vec!["2026-12-25", "2026-12-26"]);
    app.get("/admin/sla/calendars")
        .await
        .assert_contains("Berlin office")
        .assert_contains("Tuesday 09:00-12:00, 13:00-17:00")
        .assert_contains("Saturday closed");
    // The same name again, in other case, is a field error.
    app.post_form(
        "/admin/sla/calendars",
        &calendar_form("BERLIN OFFICE", "UTC", OFFICE_WEEK, ""),
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Another calendar has this name.");
    // Edited: the stored text is what the SLA engine reads back.
    let id: String = sqlx::query_scalar("select id::text from sla_calendars")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.get(&format!("/admin/sla/calendars/{id}"))
        .await
        .assert_contains("value=\"09:00-12:00, 13:00-17:00\"")
        .assert_contains("2026-12-25\n2026-12-26</textarea>");
    let mut week = OFFICE_WEEK;
    week[5].1 = "24h";
    app.post_form(
        &format!("/admin/sla/calendars/{id}"),
        &calendar_form("Berlin office", "Europe/Berlin", week, ""),
    )
    .await
    .assert_redirect_to("/admin/sla/calendars");
    let (week, holidays): (serde_json::Value, Vec<String>) =
        sqlx::query_as("select week, holidays::text[] from sla_calendars")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(week[5], "24h");
    assert!(holidays.is_empty());
    assert_eq!(
        app.count("select count(*) from admin_audit where entity = 'sla_calendar'")
            .await,
        2
    );
}

fn policy_form<'a>(
    calendar: &'a str,
    project: &'a str,
    priority: &'a str,
    first: &'a str,
    resolution: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("project_id", project),
        ("process_id", ""),
        ("priority", priority),
        ("calendar_id", calendar),
        ("first_response", first),
        ("resolution", resolution),
        ("warn_percent", "75"),
    ]
}

#[tokio::test]
async fn policies_take_hours_and_minutes_and_one_scope_has_one_policy() {
    let (mut app, hd) = admin_app().await;
    let calendar = add_calendar(&mut app, "Office").await;
    let hd = hd.to_string();
    for (first, resolution, message) in [
        ("2d", "", "Days are not accepted"),
        ("4", "", "needs a unit: h for hours or m for minutes"),
        (
            "",
            "",
            "Give a first-response target, a resolution target or both.",
        ),
        ("4h", "soon", "is not a target: write hours and minutes"),
    ] {
        app.post_form(
            "/admin/sla/policies",
            &policy_form(&calendar, &hd, "2", first, resolution),
        )
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains(message)
        .assert_contains("value=\"75\"");
    }
    assert_eq!(app.count("select count(*) from sla_policies").await, 0);

    app.post_form(
        "/admin/sla/policies",
        &policy_form(&calendar, &hd, "2", "1h 30m", "16h"),
    )
    .await
    .assert_redirect_to("/admin/sla/policies");
    let stored: (Option<i32>, Option<i32>, i16) = sqlx::query_as(
        "select first_response_minutes, resolution_minutes, warn_percent from sla_policies",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, (Some(90), Some(960), 75));
    app.get("/admin/sla/policies")
        .await
        .assert_contains("P2 High")
        .assert_contains("1h 30m")
        .assert_contains("16h");

    // The same scope again: a message, not a 500.
    app.post_form(
        "/admin/sla/policies",
        &policy_form(&calendar, &hd, "2", "2h", ""),
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("There is already a policy for this project, process and priority");
    // "Any project" is another scope, and so is another priority.
    app.post_form(
        "/admin/sla/policies",
        &policy_form(&calendar, "", "2", "2h", ""),
    )
    .await
    .assert_redirect_to("/admin/sla/policies");
    assert_eq!(app.count("select count(*) from sla_policies").await, 2);
    // An edit into a taken scope is refused the same way.
    let general: String =
        sqlx::query_scalar("select id::text from sla_policies where project_id is null")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    app.post_form(
        &format!("/admin/sla/policies/{general}"),
        &policy_form(&calendar, &hd, "2", "3h", ""),
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("There is already a policy");

    // A calendar in use stays; once free it can go.
    app.post_form(&format!("/admin/sla/calendars/{calendar}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("This calendar is used by 2 SLA policies");
    for id in [general.clone()] {
        app.post_form(&format!("/admin/sla/policies/{id}/delete"), &[])
            .await
            .assert_redirect_to("/admin/sla/policies");
    }
    assert_eq!(app.count("select count(*) from sla_policies").await, 1);
    assert_eq!(
        app.count("select count(*) from admin_audit where entity = 'sla_policy'")
            .await,
        3
    );
}

#[tokio::test]
async fn a_policy_measuring_tickets_and_a_calendar_of_a_project_cannot_be_deleted() {
    let (mut app, hd) = admin_app().await;
    let calendar = add_calendar(&mut app, "Office").await;
    app.post_form(
        "/admin/sla/policies",
        &policy_form(&calendar, "", "3", "4h", ""),
    )
    .await
    .assert_redirect_to("/admin/sla/policies");
    app.post_form(
        "/tickets",
        &[
            ("project_id", &hd.to_string()),
            ("title", "Printer jammed"),
            ("description", ""),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    let policy: String = sqlx::query_scalar("select id::text from sla_policies")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let measured: Option<String> = sqlx::query_scalar("select sla_policy_id::text from tickets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(measured.as_deref(), Some(policy.as_str()));
    app.post_form(&format!("/admin/sla/policies/{policy}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("1 ticket(s) are measured by this policy");
    assert_eq!(app.count("select count(*) from sla_policies").await, 1);

    let other = add_calendar(&mut app, "Other").await;
    let mut form = matrix_form(&[[1, 2, 3], [2, 3, 4], [3, 4, 4]]);
    form.push(("calendar_id".into(), other.clone()));
    app.post_form("/admin/projects/HD/triage", &pairs(&form))
        .await
        .assert_redirect_to("/admin/projects/HD/triage");
    app.post_form(&format!("/admin/sla/calendars/{other}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("project HD (business days)");
    assert_eq!(app.count("select count(*) from sla_calendars").await, 2);
}

fn matrix_form(cells: &[[i16; 3]; 3]) -> Vec<(String, String)> {
    let mut form = Vec::new();
    for (i, row) in cells.iter().enumerate() {
        for (u, p) in row.iter().enumerate() {
            form.push((format!("cell_{}_{}", i + 1, u + 1), p.to_string()));
        }
    }
    form
}

fn pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn the_priority_matrix_and_calendar_are_saved_and_read_back() {
    let (mut app, hd) = admin_app().await;
    let calendar = add_calendar(&mut app, "Office").await;
    app.get("/admin/projects/HD")
        .await
        .assert_contains("/admin/projects/HD/triage");
    app.get("/admin/projects/HD/triage")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Priority from impact × urgency");
    let cells = [[1, 1, 2], [2, 3, 3], [3, 4, 4]];
    let mut form = matrix_form(&cells);
    form.push(("calendar_id".into(), calendar.clone()));
    // A cell out of range is refused, with the rest of the input kept.
    let mut bad = form.clone();
    bad[4].1 = "9".into();
    app.post_form("/admin/projects/HD/triage", &pairs(&bad))
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Choose a priority.");
    assert_eq!(app.count("select count(*) from priority_matrix").await, 0);

    app.post_form("/admin/projects/HD/triage", &pairs(&form))
        .await
        .assert_redirect_to("/admin/projects/HD/triage");
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(triage::matrix(&mut conn, hd).await.unwrap(), cells);
    let stored: Option<String> =
        sqlx::query_scalar("select calendar_id::text from projects where key = 'HD'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(stored, Some(calendar));
    drop(conn);
    assert_eq!(
        app.count("select count(*) from admin_audit where entity = 'project_triage'")
            .await,
        1
    );
}

async fn assignee_group(app: &TestApp, key: i64) -> Option<String> {
    sqlx::query_scalar(
        "select g.name from tickets t left join groups g on g.id = t.assignee_group_id where t.number = $1",
    )
    .bind(key)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn routing_rules_are_tried_in_their_order_when_a_ticket_is_filed() {
    let (mut app, hd) = admin_app().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let desk = groups::create(&mut conn, "Service desk", "", t0())
        .await
        .unwrap();
    let berlin_team = groups::create(&mut conn, "Berlin IT", "", t0())
        .await
        .unwrap();
    let berlin = org::create(&mut conn, None, "Berlin", UnitKind::Site, t0())
        .await
        .unwrap();
    let region = org::create(&mut conn, None, "Europe", UnitKind::Region, t0())
        .await
        .unwrap();
    drop(conn);
    let (desk, berlin_team, berlin) = (
        desk.to_string(),
        berlin_team.to_string(),
        berlin.to_string(),
    );
    // A catch-all first, then Berlin's own rule: the catch-all wins.
    for (site, group) in [("", &desk), (berlin.as_str(), &berlin_team)] {
        app.post_form(
            "/admin/projects/HD/routing",
            &[
                ("process_id", ""),
                ("system_id", ""),
                ("site_id", site),
                ("group_id", group),
            ],
        )
        .await
        .assert_redirect_to("/admin/projects/HD/triage");
    }
    // Refusals: no group; a region is not a site.
    app.post_form(
        "/admin/projects/HD/routing",
        &[("site_id", &region.to_string()), ("group_id", "")],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Choose the group these tickets go to.");
    app.post_form(
        "/admin/projects/HD/routing",
        &[("site_id", &region.to_string()), ("group_id", &desk)],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Choose a site or business unit from the list.");
    assert_eq!(app.count("select count(*) from routing_rules").await, 2);

    let project = hd.to_string();
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "In Berlin"),
            ("description", ""),
            ("site_id", &berlin),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    assert_eq!(
        assignee_group(&app, 1).await.as_deref(),
        Some("Service desk")
    );

    // Berlin's rule moved up: it wins for Berlin, the catch-all for the rest.
    let berlin_rule: String =
        sqlx::query_scalar("select id::text from routing_rules where site_id is not null")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    app.get("/admin/projects/HD/triage")
        .await
        .assert_contains(&format!("/admin/projects/HD/routing/{berlin_rule}/up"));
    app.post_form(&format!("/admin/projects/HD/routing/{berlin_rule}/up"), &[])
        .await
        .assert_redirect_to("/admin/projects/HD/triage");
    for (title, site, expected) in [
        ("In Berlin again", berlin.as_str(), "Berlin IT"),
        ("Somewhere", "", "Service desk"),
    ] {
        app.post_form(
            "/tickets",
            &[
                ("project_id", &project),
                ("title", title),
                ("description", ""),
                ("site_id", site),
            ],
        )
        .await;
        let number: i64 = sqlx::query_scalar("select number from tickets where title = $1")
            .bind(title)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(
            assignee_group(&app, number).await.as_deref(),
            Some(expected),
            "{title}"
        );
    }
    // Moving the first rule up changes nothing; deleting the Berlin rule routes Berlin to the desk.
    app.post_form(&format!("/admin/projects/HD/routing/{berlin_rule}/up"), &[])
        .await
        .assert_redirect_to("/admin/projects/HD/triage");
    app.post_form(
        &format!("/admin/projects/HD/routing/{berlin_rule}/delete"),
        &[],
    )
    .await
    .assert_redirect_to("/admin/projects/HD/triage");
    assert_eq!(app.count("select count(*) from routing_rules").await, 1);
    // A group or site a rule uses cannot be deleted from under it.
    let desk_id: unitrack::core::ids::GroupId = desk.parse().unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let refused = groups::delete(&mut conn, desk_id).await;
    assert!(
        matches!(&refused, Err(unitrack::core::Error::Invalid(e)) if e.to_string().contains("routing rule of project HD")),
        "{refused:?}"
    );
    drop(conn);
    let actions: Vec<String> = sqlx::query_scalar(
        "select action from admin_audit where entity = 'routing_rule' order by id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(actions, ["create", "create", "move_up", "delete"]);
}

#[tokio::test]
async fn group_tiers_refuse_the_group_itself_and_loops() {
    let (mut app, _) = admin_app().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let l1 = groups::create(&mut conn, "L1", "", t0()).await.unwrap();
    let l2 = groups::create(&mut conn, "L2", "", t0()).await.unwrap();
    let l3 = groups::create(&mut conn, "L3", "", t0()).await.unwrap();
    drop(conn);
    let (l1, l2, l3) = (l1.to_string(), l2.to_string(), l3.to_string());
    for (from, to) in [(&l1, &l2), (&l2, &l3)] {
        app.post_form(
            &format!("/admin/groups/{from}/tier"),
            &[("escalates_to", to.as_str())],
        )
        .await
        .assert_redirect_to(&format!("/admin/groups/{from}"));
    }
    app.get(&format!("/admin/groups/{l1}"))
        .await
        .assert_contains(&format!("<option value=\"{l2}\" selected>L2</option>"));
    app.get("/admin/groups")
        .await
        .assert_contains("<td>L3</td>");
    app.post_form(
        &format!("/admin/groups/{l3}/tier"),
        &[("escalates_to", l1.as_str())],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("That would make a loop: L3 → L1 → L2 → L3.")
    .assert_contains(&format!("<option value=\"{l1}\" selected>L1</option>"));
    app.post_form(
        &format!("/admin/groups/{l2}/tier"),
        &[("escalates_to", l2.as_str())],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("A group cannot escalate to itself.");
    let tiers: Vec<(String, Option<String>)> = sqlx::query_as(
        "select g.name, n.name from groups g left join groups n on n.id = g.escalates_to order by g.name",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        tiers,
        vec![
            ("L1".to_owned(), Some("L2".to_owned())),
            ("L2".to_owned(), Some("L3".to_owned())),
            ("L3".to_owned(), None),
        ]
    );
    // A group that is someone's next tier stays; the last tier can be cleared.
    app.post_form(&format!("/admin/groups/{l3}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("next tier of L2");
    app.post_form(&format!("/admin/groups/{l2}/tier"), &[("escalates_to", "")])
        .await
        .assert_redirect_to(&format!("/admin/groups/{l2}"));
    assert_eq!(
        app.count("select count(*) from groups where escalates_to is not null")
            .await,
        1
    );
}

#[tokio::test]
async fn only_admins_reach_the_sla_and_triage_pages() {
    let (mut app, _) = admin_app().await;
    app.get("/admin")
        .await
        .assert_contains("href=\"/admin/sla/calendars\"");
    app.create_user_with_role("agent@example.com", "Agnes Agent", "Agent L1")
        .await;
    let mut agent = app.other_browser();
    agent.login("agent@example.com").await;
    let id = uuid::Uuid::now_v7().to_string();
    let mut checked = 0;
    for route in web::routes() {
        let ours = route.path.starts_with("/admin/sla")
            || route.path.contains("/triage")
            || route.path.contains("/routing")
            || route.path.ends_with("/tier");
        if !ours {
            continue;
        }
        let path = route.path.replace("{key}", "HD").replace("{id}", &id);
        let response = if route.method == Method::GET {
            agent.get(&path).await
        } else {
            agent.post_form(&path, &[]).await
        };
        assert_eq!(
            response.status,
            StatusCode::FORBIDDEN,
            "{} {path}",
            route.method
        );
        checked += 1;
    }
    assert_eq!(checked, 17);
}
