//! Approval steps over HTTP beyond the happy path: a step with nobody to ask moves the ticket
//! on with the reason in its history, a second round after a rejection keeps the first in
//! view, every approval state can be left, tickets filed into or mapped into an approval state
//! start a round, and access provisioning goes to the system's support group.

use axum::http::StatusCode;
use unitrack::core::ids::{GroupId, UserId};
use unitrack::people::groups;
use unitrack::processes::{self, ProcessFile};
use unitrack::projects::systems::{self, Criticality, SystemInput};

use crate::common::{TestApp, TestBrowser, TestResponse, t0};

async fn version(app: &TestApp, number: i64) -> String {
    let v: i32 = sqlx::query_scalar("select version from tickets where number = $1")
        .bind(number)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    v.to_string()
}

async fn state(app: &TestApp, number: i64) -> String {
    sqlx::query_scalar("select state from tickets where number = $1")
        .bind(number)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn events(app: &TestApp, number: i64) -> Vec<String> {
    sqlx::query_scalar(
        "select e.kind from ticket_events e join tickets t on t.id = e.ticket_id
         where t.number = $1 order by e.id",
    )
    .bind(number)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Takes a transition on HD-`number` with the ticket's current version.
async fn step(
    app: &TestApp,
    who: &mut TestBrowser,
    number: i64,
    transition: &str,
    extra: &[(&str, &str)],
) -> TestResponse {
    let v = version(app, number).await;
    let mut fields = vec![("version", v.as_str())];
    fields.extend_from_slice(extra);
    who.post_form(
        &format!("/tickets/HD-{number}/transitions/{transition}"),
        &fields,
    )
    .await
}

async fn group_with(app: &TestApp, name: &str, members: &[UserId]) -> GroupId {
    let mut conn = app.pool.acquire().await.unwrap();
    let group = groups::create(&mut conn, name, "", t0()).await.unwrap();
    for m in members {
        groups::add_member(&mut conn, group, *m).await.unwrap();
    }
    group
}

#[tokio::test]
async fn a_change_board_step_without_a_board_moves_on_and_a_second_round_keeps_the_first() {
    let app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await;
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    app.create_user_with_role("dev@example.com", "Dev", "Developer")
        .await;
    let mut cab = Vec::new();
    let mut cab_b = Vec::new();
    for i in 1..=3 {
        cab.push(
            app.create_user(&format!("cab{i}@example.com"), &format!("Cab {i}"), false)
                .await,
        );
        let mut b = app.other_browser();
        b.login(&format!("cab{i}@example.com")).await;
        cab_b.push(b);
    }
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    let mut dev = app.other_browser();
    dev.login("dev@example.com").await;
    rita.post_form(
        "/tickets",
        &[
            ("process", "change_request"),
            ("project_id", &hd.to_string()),
            ("title", "New VAT rates"),
            ("description", ""),
            ("f.business_reason", "The law changes"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    step(&app, &mut rita, 1, "submit", &[])
        .await
        .assert_redirect_to("/tickets/HD-1");
    step(&app, &mut dev, 1, "start_review", &[])
        .await
        .assert_redirect_to("/tickets/HD-1");

    // The project has no change board: no round nobody could decide; back for revision.
    step(&app, &mut dev, 1, "to_change_board", &[("f.risk", "low")])
        .await
        .assert_redirect_to("/tickets/HD-1");
    assert_eq!(state(&app, 1).await, "needs_revision");
    assert_eq!(app.count("select count(*) from approval_rounds").await, 0);
    assert_eq!(
        events(&app, 1).await[3..],
        ["field_changed", "transition", "no_approvers", "transition"]
    );
    rita.get("/tickets/HD-1")
        .await
        .assert_contains(
            "found nobody to approve at Change board approval: the project “Help desk” has no change board",
        )
        .assert_contains("took “No approvers”: Change board approval → Needs revision")
        .assert_contains("Resubmit");

    // With a board: round 1 is rejected by two of three (60% can no longer be met).
    let board = group_with(&app, "Change Advisory Board", &cab).await;
    sqlx::query("update projects set change_board_group_id = $1")
        .bind(board)
        .execute(&app.pool)
        .await
        .unwrap();
    step(
        &app,
        &mut rita,
        1,
        "resubmit",
        &[("comment", "Board is set up")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    step(&app, &mut dev, 1, "to_change_board", &[])
        .await
        .assert_redirect_to("/tickets/HD-1");
    assert_eq!(state(&app, 1).await, "cab_approval");
    for b in &mut cab_b[..2] {
        b.post_form(
            "/tickets/HD-1/approval",
            &[("decision", "reject"), ("comment", "Not before year end")],
        )
        .await
        .assert_redirect_to("/tickets/HD-1");
    }
    assert_eq!(state(&app, 1).await, "needs_revision");
    cab_b[2].get("/approvals").await.assert_not_contains("HD-1");

    // Resubmitted: round 2 is asked; round 1 and its answers stay in view.
    step(
        &app,
        &mut rita,
        1,
        "resubmit",
        &[("comment", "Moved to February")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    step(&app, &mut dev, 1, "to_change_board", &[])
        .await
        .assert_redirect_to("/tickets/HD-1");
    let page = cab_b[0].get("/tickets/HD-1").await;
    page.assert_contains("Round 2 — pending")
        .assert_contains("Round 1 — rejected")
        .assert_contains("Cab 1: reject — Not before year end")
        .assert_contains("Cab 1: waiting")
        .assert_contains("asked Cab 1, Cab 2, Cab 3 to approve (round 2, Change board approval)")
        .assert_contains("round 1 was rejected")
        .assert_contains(">Approve<");
    let body = &page.body;
    assert!(
        body.find("Round 2 — pending").unwrap() < body.find("Round 1 — rejected").unwrap(),
        "newest round first"
    );
    cab_b[2].get("/approvals").await.assert_contains("HD-1");

    // The requester may withdraw while the board deliberates: the round ends with it.
    step(
        &app,
        &mut rita,
        1,
        "cancel",
        &[("comment", "Law postponed")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    assert_eq!(state(&app, 1).await, "cancelled");
    cab_b[2].get("/approvals").await.assert_not_contains("HD-1");
    cab_b[2]
        .post_form("/tickets/HD-1/approval", &[("decision", "approve")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("You have no open approval");
    let statuses: Vec<String> =
        sqlx::query_scalar("select status from approval_rounds order by round")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(statuses, ["rejected", "superseded"]);
    app.expect_queued("mail_send", 18).await;
}

#[tokio::test]
async fn access_is_provisioned_by_the_systems_support_group_and_a_system_without_owner_is_rejected()
{
    let app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    let olga = app
        .create_user("olga@example.com", "Olga Owner", false)
        .await;
    app.create_user_with_role("lars@example.com", "Lars Agent", "Agent L1")
        .await;
    let bob = app
        .create_user_with_role("bob@example.com", "Bob Basis", "Agent L2")
        .await;
    let desk = group_with(&app, "Service Desk", &[]).await;
    let basis = group_with(&app, "SAP Basis", &[bob]).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let system = |name: &str, owner, support| SystemInput {
        name: name.into(),
        owner_id: owner,
        support_group_id: support,
        criticality: Criticality::High,
    };
    // SAP gets its support group after filing, so routing does not hand HD-1 to it first.
    let sap_id = systems::create(&mut conn, &system("SAP", Some(olga), None), t0())
        .await
        .unwrap();
    let sap = sap_id.to_string();
    let legacy = systems::create(&mut conn, &system("Legacy CRM", None, None), t0())
        .await
        .unwrap()
        .to_string();
    drop(conn);
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    let mut olga_b = app.other_browser();
    olga_b.login("olga@example.com").await;
    for (title, system) in [("SAP access", &sap), ("CRM access", &legacy)] {
        rita.post_form(
            "/tickets",
            &[
                ("process", "access_request"),
                ("project_id", &hd),
                ("title", title),
                ("description", ""),
                ("f.system", system),
                ("f.access_level", "read"),
                ("f.justification", "Month-end closing"),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    }

    let mut conn = app.pool.acquire().await.unwrap();
    systems::update(&mut conn, sap_id, &system("SAP", Some(olga), Some(basis)))
        .await
        .unwrap();
    drop(conn);

    // Nobody owns the legacy system: no round; rejected, and the requester reads why.
    step(&app, &mut lars, 2, "send_for_approval", &[])
        .await
        .assert_redirect_to("/tickets/HD-2");
    assert_eq!(state(&app, 2).await, "rejected");
    rita.get("/tickets/HD-2").await.assert_contains(
        "found nobody to approve at Waiting for the system owner: the system “Legacy CRM” has no active owner",
    );

    // The service desk triages HD-1 to itself; approval hands it to the system's support group.
    lars.post_form(
        "/tickets/HD-1/assign",
        &[("group_id", &desk.to_string()), ("assignee_id", "")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    step(&app, &mut lars, 1, "send_for_approval", &[])
        .await
        .assert_redirect_to("/tickets/HD-1");
    olga_b
        .post_form(
            "/tickets/HD-1/approval",
            &[("decision", "approve"), ("comment", "fine")],
        )
        .await
        .assert_redirect_to("/tickets/HD-1");
    assert_eq!(state(&app, 1).await, "provisioning");
    let group: GroupId =
        sqlx::query_scalar("select assignee_group_id from tickets where number = 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(group, basis);
    assert_eq!(
        app.count(
            "select count(*) from notifications n join users u on u.id = n.user_id
             where u.email = 'bob@example.com' and n.kind = 'new_in_group' and n.text = 'assigned it to SAP Basis'"
        )
        .await,
        1,
        "the support group hears of it"
    );
    let mut bob_b = app.other_browser();
    bob_b.login("bob@example.com").await;
    step(&app, &mut bob_b, 1, "granted", &[("comment", "Role given")])
        .await
        .assert_redirect_to("/tickets/HD-1");
    // Back to provisioning: already the support group's, so no second assignment.
    step(
        &app,
        &mut rita,
        1,
        "not_working",
        &[("comment", "Still denied")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    assert_eq!(
        app.count("select count(*) from ticket_events where kind = 'group_assigned'")
            .await,
        1
    );

    // While the owner has not answered, the requester can withdraw.
    rita.post_form(
        "/tickets",
        &[
            ("process", "access_request"),
            ("project_id", &hd),
            ("title", "More SAP access"),
            ("description", ""),
            ("f.system", &sap),
            ("f.access_level", "write"),
            ("f.justification", "Audit"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-3");
    step(&app, &mut rita, 3, "send_for_approval", &[])
        .await
        .assert_redirect_to("/tickets/HD-3");
    olga_b.get("/approvals").await.assert_contains("HD-3");
    step(&app, &mut rita, 3, "withdraw", &[])
        .await
        .assert_redirect_to("/tickets/HD-3");
    assert_eq!(state(&app, 3).await, "withdrawn");
    olga_b.get("/approvals").await.assert_not_contains("HD-3");
    app.expect_queued("mail_send", 10).await;
}

const PURCHASE_V1: &str = r#"key = "purchase"
name = "Purchase"

[[definition.states]]
key = "request"
label = "Request"
category = "new"
initial = true
[definition.states.approval]
approvers = { from = "group", group = "Buyers" }
rule = "any"
on_approve = "ordered"
on_reject = "declined"

[[definition.states]]
key = "ordered"
label = "Ordered"
category = "open"

[[definition.states]]
key = "declined"
label = "Declined"
category = "closed"

[[definition.states]]
key = "delivered"
label = "Delivered"
category = "closed"

[[definition.transitions]]
key = "withdraw"
label = "Withdraw"
from = ["request"]
to = "declined"
roles = ["requester"]

[[definition.transitions]]
key = "deliver"
label = "Delivered"
from = ["ordered"]
to = "delivered"
roles = ["*"]
"#;

#[tokio::test]
async fn tickets_filed_or_mapped_into_an_approval_state_start_a_round() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("admin@example.com", "Alex Admin", true)
        .await;
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    let bea = app.create_user("bea@example.com", "Bea Buyer", false).await;
    let buyers = group_with(&app, "Buyers", &[]).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let id = processes::upsert(&mut conn, &ProcessFile::parse(PURCHASE_V1).unwrap(), t0())
        .await
        .unwrap();
    assert_eq!(
        unitrack::tickets::publish_process(&mut conn, id, &[], None, t0())
            .await
            .unwrap(),
        Ok(1)
    );
    drop(conn);
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    let file = async |rita: &mut TestBrowser, n: i64| {
        rita.post_form(
            "/tickets",
            &[
                ("process", "purchase"),
                ("project_id", &hd),
                ("title", "A chair"),
                ("description", ""),
            ],
        )
        .await
        .assert_redirect_to(&format!("/tickets/HD-{n}"));
    };

    // Nobody in Buyers: filed straight into declined, with the reason.
    file(&mut rita, 1).await;
    assert_eq!(state(&app, 1).await, "declined");
    assert_eq!(
        events(&app, 1).await,
        ["created", "no_approvers", "transition"]
    );
    rita.get("/tickets/HD-1")
        .await
        .assert_contains("the group “Buyers” has no active members");

    // With a buyer: the first state's round is open at once.
    let mut conn = app.pool.acquire().await.unwrap();
    groups::add_member(&mut conn, buyers, bea).await.unwrap();
    drop(conn);
    file(&mut rita, 2).await;
    assert_eq!(state(&app, 2).await, "request");
    let mut bea_b = app.other_browser();
    bea_b.login("bea@example.com").await;
    bea_b.get("/approvals").await.assert_contains("HD-2");
    bea_b
        .post_form("/tickets/HD-2/approval", &[("decision", "approve")])
        .await
        .assert_redirect_to("/tickets/HD-2");
    assert_eq!(state(&app, 2).await, "ordered");

    // Version 2 drops "ordered" for a budget check with approval; HD-2 is mapped into it.
    let v2 = PURCHASE_V1
        .replace(
            "[[definition.states]]\nkey = \"ordered\"\nlabel = \"Ordered\"\ncategory = \"open\"\n",
            "[[definition.states]]\nkey = \"checking\"\nlabel = \"Budget check\"\ncategory = \"waiting\"\n\
             [definition.states.approval]\napprovers = { from = \"group\", group = \"Buyers\" }\n\
             rule = \"any\"\non_approve = \"approved\"\non_reject = \"declined\"\n\n\
             [[definition.states]]\nkey = \"approved\"\nlabel = \"Approved\"\ncategory = \"open\"\n",
        )
        .replace("on_approve = \"ordered\"", "on_approve = \"checking\"")
        .replace("from = [\"ordered\"]", "from = [\"approved\"]")
        .replace("from = [\"request\"]", "from = [\"request\", \"checking\"]");
    app.login("admin@example.com").await;
    app.post_form("/admin/processes/purchase", &[("toml", &v2)])
        .await
        .assert_redirect_to("/admin/processes/purchase");
    app.post_form(
        "/admin/processes/purchase/publish",
        &[("map.ordered", "checking")],
    )
    .await
    .assert_redirect_to("/admin/processes/purchase");
    assert_eq!(state(&app, 2).await, "checking");
    assert_eq!(
        events(&app, 2).await[5..],
        ["state_mapped", "approval_requested"]
    );
    bea_b
        .get("/tickets/HD-2")
        .await
        .assert_contains("Round 2 — pending")
        .assert_contains("Round 1 — approved");
    bea_b
        .post_form("/tickets/HD-2/approval", &[("decision", "approve")])
        .await
        .assert_redirect_to("/tickets/HD-2");
    assert_eq!(state(&app, 2).await, "approved");
    app.expect_queued("mail_send", 6).await;
}
