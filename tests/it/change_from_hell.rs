//! The change request from hell, over HTTP: a rejected review and a re-submission, six
//! sub-tasks across three sites in two countries and two business units, a change board
//! vote with one rejection and the threshold still met, a failed deployment, its rollback,
//! a re-plan, success and closure — and everybody can do only what their role allows.

use axum::http::StatusCode;
use unitrack::people::groups;
use unitrack::projects::org::{self, UnitKind};
use unitrack::projects::systems::{self, Criticality, SystemInput};

use crate::common::{TestApp, TestBrowser, t0};

async fn version(app: &TestApp, number: i64) -> String {
    let v: i32 = sqlx::query_scalar("select t.version from tickets t join projects p on p.id = t.project_id where p.key = 'ERP' and t.number = $1")
        .bind(number)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    v.to_string()
}

async fn state(app: &TestApp) -> String {
    sqlx::query_scalar("select t.state from tickets t join projects p on p.id = t.project_id where p.key = 'ERP' and t.number = 1")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Takes a transition on ERP-1 with the current version; returns the response.
async fn step(
    app: &TestApp,
    who: &mut TestBrowser,
    transition: &str,
    extra: &[(&str, &str)],
) -> crate::common::TestResponse {
    let v = version(app, 1).await;
    let mut fields = vec![("version", v.as_str())];
    fields.extend_from_slice(extra);
    who.post_form(&format!("/tickets/ERP-1/transitions/{transition}"), &fields)
        .await
}

#[tokio::test]
async fn the_change_request_from_hell() {
    let app = TestApp::new().await;
    let now = t0();
    let erp = app
        .create_project("ERP", "ERP development")
        .await
        .to_string();
    app.create_project("HD", "Help desk").await;
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    let dev = app
        .create_user_with_role("dev@example.com", "Dev", "Requester")
        .await;
    let pm = app
        .create_user_with_role("pm@example.com", "Pia PM", "Requester")
        .await;
    let l1 = app
        .create_user_with_role("l1@example.com", "Lars L1", "Requester")
        .await;
    let mut cab = Vec::new();
    for i in 1..=3 {
        cab.push(
            app.create_user_with_role(
                &format!("cab{i}@example.com"),
                &format!("Cab {i}"),
                "Requester",
            )
            .await,
        );
    }
    let mut conn = app.pool.acquire().await.unwrap();
    let grant = async |conn: &mut sqlx::PgConnection, user, role: &str, project: &str| {
        let role = unitrack::people::roles::find_by_name(conn, role)
            .await
            .unwrap()
            .unwrap();
        let project = unitrack::projects::find_by_key(conn, project)
            .await
            .unwrap()
            .unwrap();
        unitrack::people::roles::grant(
            conn,
            role.id,
            unitrack::people::roles::Holder::User(user),
            Some(project.id),
            now,
        )
        .await
        .unwrap();
    };
    grant(&mut conn, dev, "Developer", "ERP").await;
    grant(&mut conn, pm, "Project manager", "ERP").await;
    grant(&mut conn, l1, "Agent L1", "HD").await;
    let board = groups::create(&mut conn, "Change Advisory Board", "", now)
        .await
        .unwrap();
    for member in &cab {
        groups::add_member(&mut conn, board, *member).await.unwrap();
    }
    drop(conn);
    let mut admin = app.other_browser();
    app.create_user("admin@example.com", "Alex Admin", true)
        .await;
    admin.login("admin@example.com").await;
    admin
        .post_form(
            "/admin/projects/ERP",
            &[
                ("name", "ERP development"),
                ("kind", "development"),
                ("contact", "pm@example.com"),
                ("change_board_group_id", &board.to_string()),
            ],
        )
        .await
        .assert_redirect_to("/admin/projects/ERP");
    let mut conn = app.pool.acquire().await.unwrap();
    let europe = org::create(&mut conn, None, "Europe", UnitKind::Region, now)
        .await
        .unwrap();
    let germany = org::create(&mut conn, Some(europe), "Germany", UnitKind::Country, now)
        .await
        .unwrap();
    let france = org::create(&mut conn, Some(europe), "France", UnitKind::Country, now)
        .await
        .unwrap();
    let mut units = Vec::new();
    for (parent, name, kind) in [
        (germany, "Berlin", UnitKind::Site),
        (germany, "Munich", UnitKind::Site),
        (france, "Paris", UnitKind::Site),
        (germany, "Finance", UnitKind::BusinessUnit),
        (france, "Sales", UnitKind::BusinessUnit),
    ] {
        units.push(
            org::create(&mut conn, Some(parent), name, kind, now)
                .await
                .unwrap()
                .to_string(),
        );
    }
    let sap = systems::create(
        &mut conn,
        &SystemInput {
            name: "SAP".into(),
            owner_id: Some(pm),
            support_group_id: None,
            criticality: Criticality::Critical,
        },
        now,
    )
    .await
    .unwrap()
    .to_string();
    drop(conn);

    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    let mut dev_b = app.other_browser();
    dev_b.login("dev@example.com").await;
    let mut pm_b = app.other_browser();
    pm_b.login("pm@example.com").await;
    let mut l1_b = app.other_browser();
    l1_b.login("l1@example.com").await;
    let mut cab_b = Vec::new();
    for i in 1..=3 {
        let mut b = app.other_browser();
        b.login(&format!("cab{i}@example.com")).await;
        cab_b.push(b);
    }

    // Filed as a draft, submitted.
    rita.post_form(
        "/tickets",
        &[
            ("process", "change_request"),
            ("project_id", &erp),
            ("title", "New VAT rates in SAP"),
            ("description", "The law changes on 1 January."),
            ("f.business_reason", "Legal requirement"),
            ("f.system", &sap),
            ("f.site", &units[0]),
            ("f.desired_date", "2026-12-15"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/ERP-1");
    assert_eq!(state(&app).await, "draft");
    step(&app, &mut rita, "submit", &[])
        .await
        .assert_redirect_to("/tickets/ERP-1");

    // Review rejected, revised, re-submitted.
    step(&app, &mut rita, "start_review", &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("is for");
    step(&app, &mut dev_b, "start_review", &[])
        .await
        .assert_redirect_to("/tickets/ERP-1");
    step(&app, &mut dev_b, "reject_review", &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("needs a comment");
    step(
        &app,
        &mut dev_b,
        "reject_review",
        &[("comment", "Which company codes?")],
    )
    .await
    .assert_redirect_to("/tickets/ERP-1");
    assert_eq!(state(&app).await, "needs_revision");
    let v = version(&app, 1).await;
    rita.post_form(
        "/tickets/ERP-1/fields",
        &[
            ("version", &v),
            (
                "f.business_reason",
                "Legal requirement for company codes 1000 and 2000",
            ),
        ],
    )
    .await
    .assert_redirect_to("/tickets/ERP-1");
    step(
        &app,
        &mut rita,
        "resubmit",
        &[("comment", "Company codes added")],
    )
    .await
    .assert_redirect_to("/tickets/ERP-1");
    assert_eq!(state(&app).await, "in_review");

    // To the change board: the internal risk field is required, and hidden from the requester.
    step(&app, &mut dev_b, "to_change_board", &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("needs Risk");
    step(&app, &mut dev_b, "to_change_board", &[("f.risk", "medium")])
        .await
        .assert_redirect_to("/tickets/ERP-1");
    assert_eq!(state(&app).await, "cab_approval");
    rita.get("/tickets/ERP-1")
        .await
        .assert_not_contains("Risk")
        .assert_not_contains("medium");
    // A developer is not asked and cannot approve.
    dev_b
        .post_form("/tickets/ERP-1/approval", &[("decision", "approve")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    cab_b[0].get("/approvals").await.assert_contains("ERP-1");
    cab_b[0]
        .post_form(
            "/tickets/ERP-1/approval",
            &[("decision", "reject"), ("comment", "Too close to year end")],
        )
        .await
        .assert_redirect_to("/tickets/ERP-1");
    cab_b[1]
        .post_form(
            "/tickets/ERP-1/approval",
            &[("decision", "approve"), ("comment", "")],
        )
        .await
        .assert_redirect_to("/tickets/ERP-1");
    assert_eq!(
        state(&app).await,
        "cab_approval",
        "1 of 3 approvals is below 60%"
    );
    cab_b[2]
        .post_form(
            "/tickets/ERP-1/approval",
            &[("decision", "approve"), ("comment", "ok")],
        )
        .await
        .assert_redirect_to("/tickets/ERP-1");
    assert_eq!(
        state(&app).await,
        "scheduled",
        "2 of 3 meets 60% despite one rejection"
    );

    // Six sub-tasks across three sites (two countries) and two business units.
    let parent: String = sqlx::query_scalar("select id::text from tickets where number = 1 and project_id = (select id from projects where key = 'ERP')")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for (i, site) in [0usize, 1, 2, 3, 4, 0].iter().enumerate() {
        pm_b.post_form(
            "/tickets",
            &[
                ("process", "question"),
                ("project_id", &erp),
                ("parent_id", &parent),
                ("site_id", &units[*site]),
                ("title", &format!("Roll out at site {i}")),
                ("description", ""),
            ],
        )
        .await
        .assert_redirect_to(&format!("/tickets/ERP-{}", i + 2));
    }
    dev_b
        .post_form(
            "/tickets/ERP-3/links",
            &[("kind", "blocked_by"), ("other", "ERP-4")],
        )
        .await
        .assert_redirect_to("/tickets/ERP-3");
    pm_b.post_form(
        "/tickets/ERP-7/transitions/withdraw",
        &[("version", &version(&app, 7).await)],
    )
    .await
    .assert_redirect_to("/tickets/ERP-7");
    let page = dev_b.get("/tickets/ERP-1").await;
    page.assert_contains("1 done · 4 open · 1 blocked")
        .assert_contains("Paris")
        .assert_contains("Finance");
    dev_b
        .get("/tickets/ERP-4")
        .await
        .assert_contains("blocks")
        .assert_contains("ERP-3");

    // Build needs the plans; deployment fails and is rolled back; re-planned; then success.
    step(&app, &mut dev_b, "start_build", &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("needs Implementation plan")
        .assert_contains("needs Back-out plan")
        .assert_contains("needs Planned window (start)");
    step(
        &app,
        &mut dev_b,
        "start_build",
        &[
            ("f.implementation_plan", "Transport K900123"),
            ("f.backout_plan", "Re-import old rates"),
            ("f.planned_window", "2026-12-01T22:00"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/ERP-1");
    for t in ["ready_for_test", "test_passed", "deploy"] {
        step(&app, &mut dev_b, t, &[])
            .await
            .assert_redirect_to("/tickets/ERP-1");
    }
    step(
        &app,
        &mut dev_b,
        "deployment_failed",
        &[("comment", "Munich invoices wrong")],
    )
    .await
    .assert_redirect_to("/tickets/ERP-1");
    step(&app, &mut dev_b, "roll_back", &[("comment", "Rolled back")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("needs Why it was rolled back");
    step(
        &app,
        &mut dev_b,
        "roll_back",
        &[
            ("comment", "Rolled back"),
            ("f.rollback_reason", "Rounding rule missing"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/ERP-1");
    step(
        &app,
        &mut pm_b,
        "replan",
        &[("comment", "New window next week")],
    )
    .await
    .assert_redirect_to("/tickets/ERP-1");
    assert_eq!(state(&app).await, "scheduled");
    for t in [
        "start_build",
        "ready_for_test",
        "test_passed",
        "deploy",
        "verify",
    ] {
        step(&app, &mut dev_b, t, &[])
            .await
            .assert_redirect_to("/tickets/ERP-1");
    }
    // Only the requester or the project manager closes.
    step(&app, &mut dev_b, "close", &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    step(&app, &mut rita, "close", &[])
        .await
        .assert_redirect_to("/tickets/ERP-1");
    assert_eq!(state(&app).await, "closed");

    // What each could see: the HD agent nothing, the requester no internal field or note.
    l1_b.get("/tickets/ERP-1")
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let requester_view = rita.get("/tickets/ERP-1").await;
    requester_view
        .assert_not_contains("Risk")
        .assert_contains("took “Roll back”")
        .assert_contains("round 1 was approved");
    let transitions: Vec<String> = sqlx::query_scalar(
        "select e.data->>'to' from ticket_events e join tickets t on t.id = e.ticket_id
         where t.number = 1 and t.project_id = (select id from projects where key = 'ERP') and e.kind = 'transition' order by e.id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        transitions,
        [
            "Submitted",
            "In review",
            "Needs revision",
            "In review",
            "Change board approval",
            "Scheduled",
            "In build",
            "In test",
            "Ready for deployment",
            "Deployed",
            "Deployment failed",
            "Rolled back",
            "Scheduled",
            "In build",
            "In test",
            "Ready for deployment",
            "Deployed",
            "Verifying",
            "Closed"
        ]
    );
    let decisions: i64 = app
        .count("select count(*) from ticket_events where kind = 'approval_decision'")
        .await;
    assert_eq!(decisions, 3);
    app.expect_queued("mail_send", 35).await;
}
