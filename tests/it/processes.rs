//! Processes at work over HTTP: forms made for the process, transitions by role, screens
//! enforced on the server, approvals, conflicts.

use axum::http::StatusCode;
use unitrack::projects::systems::{self, Criticality, SystemInput};

use crate::common::{TestApp, t0};

async fn events_of(app: &TestApp, key_number: i64) -> Vec<String> {
    sqlx::query_scalar(
        "select e.kind from ticket_events e join tickets t on t.id = e.ticket_id where t.number = $1 order by e.id",
    )
    .bind(key_number)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn state_of(app: &TestApp, number: i64) -> String {
    sqlx::query_scalar("select state from tickets where number = $1")
        .bind(number)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn version_of(app: &TestApp, number: i64) -> String {
    let v: i32 = sqlx::query_scalar("select version from tickets where number = $1")
        .bind(number)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    v.to_string()
}

#[tokio::test]
async fn an_access_request_goes_to_the_system_owner_and_moves_on_when_approved() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    let owner = app
        .create_user("olga@example.com", "Olga Owner", false)
        .await;
    app.create_user_with_role("lars@example.com", "Lars Agent", "Agent L1")
        .await;
    let mut conn = app.pool.acquire().await.unwrap();
    let sap = systems::create(
        &mut conn,
        &SystemInput {
            name: "SAP".into(),
            owner_id: Some(owner),
            support_group_id: None,
            criticality: Criticality::High,
        },
        t0(),
    )
    .await
    .unwrap()
    .to_string();
    drop(conn);

    app.login("rita@example.com").await;
    app.get("/tickets/new?process=access_request")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Access level")
        .assert_contains("Why you need it")
        .assert_contains(">SAP<");
    // A required field left empty: a message beside it, the input kept, nothing written.
    app.post_form(
        "/tickets",
        &[
            ("process", "access_request"),
            ("project_id", &hd),
            ("title", "SAP access please"),
            ("description", "for month end"),
            ("f.access_level", "write"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("System is required.")
    .assert_contains("Why you need it is required.")
    .assert_contains("value=\"SAP access please\"");
    assert_eq!(app.count("select count(*) from tickets").await, 0);
    // A process the form cannot name is refused, not filed as the default process.
    app.post_form(
        "/tickets",
        &[
            ("process", "no_such_process"),
            ("project_id", &hd),
            ("title", "SAP access please"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Choose what kind of request this is.");
    assert_eq!(app.count("select count(*) from tickets").await, 0);
    app.post_form(
        "/tickets",
        &[
            ("process", "access_request"),
            ("project_id", &hd),
            ("title", "SAP access please"),
            ("description", "for month end"),
            ("f.system", &sap),
            ("f.access_level", "write"),
            ("f.justification", "Month-end closing"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    let page = app.get("/tickets/HD-1").await;
    page.assert_contains("Access request")
        .assert_contains("Send to the system owner")
        .assert_not_contains(">Reject<");
    let version = version_of(&app, 1).await;
    app.post_form(
        "/tickets/HD-1/transitions/send_for_approval",
        &[("version", &version)],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    assert_eq!(state_of(&app, 1).await, "owner_approval");

    let mut olga = app.other_browser();
    olga.login("olga@example.com").await;
    olga.get("/approvals")
        .await
        .assert_contains("HD-1")
        .assert_contains("SAP access please");
    olga.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains(">Approve<");
    olga.post_form(
        "/tickets/HD-1/approval",
        &[("decision", "reject"), ("comment", "")],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Say why you reject it.");
    olga.post_form(
        "/tickets/HD-1/approval",
        &[("decision", "approve"), ("comment", "ok for Q4")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    assert_eq!(state_of(&app, 1).await, "provisioning");
    olga.get("/approvals").await.assert_not_contains("HD-1");
    // A second decision, or one by someone not asked, is refused.
    olga.post_form("/tickets/HD-1/approval", &[("decision", "approve")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("You have no open approval");

    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    let version = version_of(&app, 1).await;
    lars.post_form(
        "/tickets/HD-1/transitions/granted",
        &[("version", &version), ("comment", "Role SAP_WRITE given")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    let version = version_of(&app, 1).await;
    app.post_form(
        "/tickets/HD-1/transitions/confirm",
        &[("version", &version)],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    assert_eq!(state_of(&app, 1).await, "closed");
    assert_eq!(
        events_of(&app, 1).await,
        [
            "created",
            "transition",
            "approval_requested",
            "approval_decision",
            "approval_outcome",
            "transition",
            "comment",
            "transition",
            "transition"
        ]
    );
    app.get("/requests").await.assert_contains("Closed");
    app.expect_queued("mail_send", 5).await;
}

#[tokio::test]
async fn screens_are_enforced_on_the_server_and_stale_forms_get_a_conflict() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("rita@example.com", "Rita", false).await;
    app.create_user_with_role("lars@example.com", "Lars L1", "Agent L1")
        .await;
    app.create_user_with_role("lena@example.com", "Lena L2", "Agent L2")
        .await;
    app.login("rita@example.com").await;
    // The internal root-cause field is hidden from the requester: sending it by hand is refused.
    app.post_form(
        "/tickets",
        &[
            ("process", "bug"),
            ("project_id", &hd),
            ("title", "Crash"),
            ("description", ""),
            ("f.steps", "click save"),
            ("f.root_cause", "forged"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Root cause cannot be changed here.");
    app.post_form(
        "/tickets",
        &[
            ("process", "bug"),
            ("project_id", &hd),
            ("title", "Crash"),
            ("description", ""),
            ("f.steps", "click save"),
            ("f.severity", "major"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    app.get("/tickets/HD-1")
        .await
        .assert_not_contains("Root cause");

    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    lars.get("/tickets/HD-1")
        .await
        .assert_contains("Root cause")
        .assert_contains("Start triage")
        .assert_not_contains("Start work");
    // L1 may not take L2's step.
    let version = version_of(&app, 1).await;
    lars.post_form("/tickets/HD-1/transitions/start", &[("version", &version)])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("cannot be taken from New");
    lars.post_form("/tickets/HD-1/transitions/triage", &[("version", &version)])
        .await
        .assert_redirect_to("/tickets/HD-1");
    let mut lena = app.other_browser();
    lena.login("lena@example.com").await;
    // Lena's form was loaded before Lars's change: a conflict, her input kept.
    lena.post_form(
        "/tickets/HD-1/transitions/wont_fix",
        &[
            ("version", &version),
            ("comment", "cannot reproduce at all"),
        ],
    )
    .await
    .assert_status(StatusCode::CONFLICT)
    .assert_contains("Someone else changed this ticket")
    .assert_contains("cannot reproduce at all");
    let version = version_of(&app, 1).await;
    lena.post_form(
        "/tickets/HD-1/transitions/wont_fix",
        &[("version", &version), ("comment", "")],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("needs a comment");
    // The agent records the internal root cause; the requester never sees it, even in history.
    lena.post_form(
        "/tickets/HD-1/fields",
        &[
            ("version", &version),
            ("f.root_cause", "null pointer in save"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    lena.get("/tickets/HD-1")
        .await
        .assert_contains("null pointer in save");
    app.get("/tickets/HD-1")
        .await
        .assert_not_contains("null pointer")
        .assert_not_contains("Root cause");
    // The requester cannot change severity after filing (read-only now).
    let version = version_of(&app, 1).await;
    app.post_form(
        "/tickets/HD-1/fields",
        &[("version", &version), ("f.severity", "blocker")],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Severity cannot be changed here.");
    let severity: Option<String> =
        sqlx::query_scalar("select field_values->>'severity' from tickets")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(severity.as_deref(), Some("major"));
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn an_admin_edits_checks_simulates_and_publishes_a_workflow_without_stranding_tickets() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("admin@example.com", "Alex Admin", true)
        .await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.login("admin@example.com").await;
    app.post_form(
        "/admin/processes",
        &[("key", "hardware"), ("name", "Hardware order")],
    )
    .await
    .assert_redirect_to("/admin/processes/hardware");
    app.post_form("/admin/processes", &[("key", "Bad Key"), ("name", "")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("lowercase letters")
        .assert_contains("Enter a name.");
    let page = app.get("/admin/processes/hardware").await;
    page.assert_contains("<svg")
        .assert_contains(">New</text>")
        .assert_contains("none yet")
        .assert_not_contains("<script");

    // An invalid draft is not saved: every problem named, the text kept.
    let bad = r#"key = "hardware"
name = "Hardware order"

[[definition.states]]
key = "new"
label = "New"
category = "new"
initial = true

[[definition.states]]
key = "ordered"
label = "Ordered"
category = "open"

[[definition.states]]
key = "closed"
label = "Closed"
category = "closed"

[[definition.transitions]]
key = "order"
label = "Order"
from = ["new"]
to = "orderd"
roles = ["Agent L9"]
"#;
    app.post_form("/admin/processes/hardware", &[("toml", bad)])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("definition.transitions.order.to: unknown state &#34;orderd&#34;")
        .assert_contains("unknown role &#34;Agent L9&#34;")
        .assert_contains("Agent L9");
    // An internal cost field, and a quote the change board approves (asked with a comment).
    let quote = r#"
[[definition.fields]]
key = "cost"
label = "Cost"
kind = "number"
internal = true

[[definition.states]]
key = "quote"
label = "Quote"
category = "waiting"
[definition.states.approval]
approvers = { from = "change_board" }
rule = "any"
on_approve = "closed"
on_reject = "new"

[[definition.transitions]]
key = "ask_quote"
label = "Ask for a quote"
from = ["new"]
to = "quote"
roles = ["requester"]
requires = { comment = true }

[[definition.transitions]]
key = "drop_quote"
label = "Drop the quote"
from = ["quote"]
to = "new"
roles = ["requester"]
"#;
    let good = bad
        .replace("to = \"orderd\"", "to = \"ordered\"")
        .replace("Agent L9", "Agent L1")
        + "\n[[definition.transitions]]\nkey = \"deliver\"\nlabel = \"Delivered\"\nfrom = [\"ordered\", \"new\"]\nto = \"closed\"\nroles = [\"Agent L1\", \"requester\"]\n"
        + quote;
    app.post_form("/admin/processes/hardware", &[("toml", &good)])
        .await
        .assert_redirect_to("/admin/processes/hardware");
    // Simulation: a requester may not order, an agent may; a step that needs a comment is
    // refused until one is given, and then leads on with the same choices.
    app.get("/admin/processes/hardware/simulate?state=new&role=requester")
        .await
        .assert_contains("Order → Ordered: refused")
        .assert_contains("Delivered → Closed</a> (allowed)")
        .assert_contains(
            "Ask for a quote → Quote: refused — &#34;Ask for a quote&#34; needs a comment.",
        );
    app.get("/admin/processes/hardware/simulate?state=new&role=requester&comment=for+the+budget")
        .await
        .assert_contains("?state=quote&#38;role=requester&#38;internal=yes&#38;values=&#38;comment=for+the+budget\">Ask for a quote → Quote</a> (allowed)");
    // Internal fields show only to those who may see internal data.
    app.get("/admin/processes/hardware/simulate?state=new&role=Agent+L1&internal=no")
        .await
        .assert_contains("<td>Cost</td><td>hidden</td>")
        .assert_contains("<option value=\"no\" selected>");
    app.get("/admin/processes/hardware/simulate?state=new&role=Agent+L1&internal=yes")
        .await
        .assert_contains("<td>Cost</td><td>edit</td>");
    // An approval state: its outcomes step past it.
    app.get("/admin/processes/hardware/simulate?state=quote&role=requester")
        .await
        .assert_contains("Approved → Closed</a>")
        .assert_contains("Rejected → New</a>")
        .assert_contains("Nobody to ask → New</a>")
        .assert_contains("Drop the quote → New</a> (allowed)");
    app.post_form("/admin/processes/hardware/publish", &[])
        .await
        .assert_redirect_to("/admin/processes/hardware");

    // A ticket sits in "ordered"; the next version drops that state.
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    rita.post_form(
        "/tickets",
        &[
            ("process", "hardware"),
            ("project_id", &hd),
            ("title", "New laptop"),
            ("description", ""),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    sqlx::query("update tickets set state = 'ordered', state_category = 'open'")
        .execute(&app.pool)
        .await
        .unwrap();
    let without_ordered = good
        .replace("[[definition.states]]\nkey = \"ordered\"\nlabel = \"Ordered\"\ncategory = \"open\"\n\n", "")
        .replace("to = \"ordered\"", "to = \"closed\"")
        .replace("from = [\"ordered\", \"new\"]", "from = [\"new\"]")
        .replace("key = \"order\"\nlabel = \"Order\"", "key = \"order\"\nlabel = \"Order and close\"");
    app.post_form("/admin/processes/hardware", &[("toml", &without_ordered)])
        .await
        .assert_redirect_to("/admin/processes/hardware");
    app.post_form("/admin/processes/hardware/publish", &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("1 open ticket(s) are in &#34;ordered&#34;")
        .assert_contains("name=\"map.ordered\"");
    let versions: i64 = sqlx::query_scalar("select count(*) from process_versions v join processes p on p.id = v.process_id where p.key = 'hardware'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        versions, 1,
        "nothing published while tickets would be stranded"
    );
    app.post_form(
        "/admin/processes/hardware/publish",
        &[("map.ordered", "new")],
    )
    .await
    .assert_redirect_to("/admin/processes/hardware");
    let (state, version): (String, i32) =
        sqlx::query_as("select state, process_version from tickets")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), version), ("new", 2));
    rita.get("/tickets/HD-1")
        .await
        .assert_contains("moved it from removed state ordered to New (process version 2)");
    app.get("/admin/audit")
        .await
        .assert_contains("process publish");
    app.expect_queued("mail_send", 1).await;
}

/// The value of the hidden input `name` in the form posting to `action`.
fn form_input(page: &crate::common::TestResponse, action: &str, name: &str) -> String {
    let form = &page.body[page.body.find(action).expect("form")..];
    let marker = format!("name=\"{name}\" value=\"");
    let start = form.find(&marker).expect("input") + marker.len();
    let end = form[start..].find('"').expect("end") + start;
    form[start..end].to_owned()
}

#[tokio::test]
async fn a_step_or_edit_without_its_version_is_refused_and_a_stale_step_shows_what_changed() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    app.create_user_with_role("lars@example.com", "Lars L1", "Agent L1")
        .await;
    app.login("rita@example.com").await;
    app.post_form(
        "/tickets",
        &[
            ("process", "bug"),
            ("project_id", &hd),
            ("title", "Crash"),
            ("description", ""),
            ("f.steps", "click save"),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    let page = lars.get("/tickets/HD-1").await;
    let action = "/tickets/HD-1/transitions/triage";
    let (version, seen) = (
        form_input(&page, action, "version"),
        form_input(&page, action, "seen"),
    );

    // A hand-made form without a version could overwrite a newer change: refused, kept.
    lars.post_form(action, &[("comment", "Looking into it")])
        .await
        .assert_status(StatusCode::CONFLICT)
        .assert_contains("did not say which version")
        .assert_contains("Looking into it</textarea>");
    lars.post_form("/tickets/HD-1/fields", &[("f.severity", "major")])
        .await
        .assert_status(StatusCode::CONFLICT);
    assert_eq!(state_of(&app, 1).await, "new");
    assert_eq!(events_of(&app, 1).await, ["created"]);

    // Rita adds a detail after Lars opened the page: his step names what changed.
    app.post_form("/tickets/HD-1/comments", &[("body", "Also on Linux")])
        .await
        .assert_redirect_to("/tickets/HD-1#comment");
    lars.post_form(action, &[("version", &version), ("seen", &seen)])
        .await
        .assert_status(StatusCode::CONFLICT)
        .assert_contains("Someone else changed this ticket")
        .assert_contains("Since you opened the page")
        .assert_contains("<strong>Rita Requester</strong> commented");
    assert_eq!(state_of(&app, 1).await, "new");
}

const LOAN: &str = r#"key = "loan"
name = "Equipment loan"

[[definition.fields]]
key = "borrower"
label = "Borrower"
kind = "user"
default_mode = "read"

[[definition.fields]]
key = "team"
label = "Team"
kind = "group"
default_mode = "read"

[[definition.fields]]
key = "notes"
label = "Notes"
kind = "long_text"
default_mode = "read"

[[definition.states]]
key = "new"
label = "New"
category = "new"
initial = true

[[definition.states]]
key = "closed"
label = "Closed"
category = "closed"

[[definition.transitions]]
key = "close"
label = "Close"
from = ["new"]
to = "closed"
roles = ["*"]

[[definition.screen]]
state = "new"
role = "requester"
field = "borrower"
mode = "edit"

[[definition.screen]]
state = "new"
role = "requester"
field = "team"
mode = "edit"

[[definition.screen]]
state = "new"
role = "requester"
field = "notes"
mode = "edit"
"#;

#[tokio::test]
async fn user_and_group_values_must_exist_and_long_text_reads_as_safe_markdown() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    app.create_user_with_role("lars@example.com", "Lars L1", "Agent L1")
        .await;
    let bea = app.create_user("bea@example.com", "Bea", false).await;
    let gone = app.create_user("gone@example.com", "Gone", false).await;
    sqlx::query("update users set active = false where id = $1")
        .bind(gone)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let team = unitrack::people::groups::create(&mut conn, "Field team", "", t0())
        .await
        .unwrap()
        .to_string();
    let file = unitrack::processes::ProcessFile::parse(LOAN).unwrap();
    let id = unitrack::processes::upsert(&mut conn, &file, t0())
        .await
        .unwrap();
    unitrack::tickets::publish_process(&mut conn, id, &[], None, t0())
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    app.login("rita@example.com").await;
    let forged = "0196a000-0000-7000-8000-000000000000";
    let notes = "**Fragile** <script>alert(1)</script>";
    let file_with = async |app: &mut TestApp, borrower: &str, group: &str| {
        app.post_form(
            "/tickets",
            &[
                ("process", "loan"),
                ("project_id", &hd),
                ("title", "Projector"),
                ("description", ""),
                ("f.borrower", borrower),
                ("f.team", group),
                ("f.notes", notes),
            ],
        )
        .await
    };
    // Ids that point to nobody (forged, or a person who left) and to no group: refused beside
    // each field, the rest of the input kept, nothing stored.
    for (borrower, group) in [
        (forged, team.as_str()),
        (&gone.to_string(), team.as_str()),
        (&bea.to_string(), forged),
    ] {
        let refused = file_with(&mut app, borrower, group).await;
        refused
            .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
            .assert_contains("value=\"Projector\"")
            .assert_contains("&#60;script&#62;alert(1)&#60;/script&#62;</textarea>");
        if group == forged {
            refused.assert_contains("Team: choose from the list.");
        } else {
            refused.assert_contains("Borrower: choose from the list.");
        }
    }
    assert_eq!(app.count("select count(*) from tickets").await, 0);
    file_with(&mut app, &bea.to_string(), &team)
        .await
        .assert_redirect_to("/tickets/HD-1");
    // A forged group in a later edit is refused the same way.
    let version = version_of(&app, 1).await;
    app.post_form(
        "/tickets/HD-1/fields",
        &[("version", &version), ("f.team", forged)],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Team: choose from the list.");
    let stored: String = sqlx::query_scalar("select field_values->>'team' from tickets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, team);

    // Read-only, the notes are Markdown made safe: formatting kept, the script tags gone.
    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    lars.get("/tickets/HD-1")
        .await
        .assert_contains("<div class=\"markdown\"><p><strong>Fragile</strong> alert(1)</p>")
        .assert_not_contains("<script>alert")
        .assert_not_contains("&#60;script")
        .assert_contains("<dd>Bea</dd>")
        .assert_contains("<dd>Field team</dd>");
}

#[tokio::test]
async fn the_new_request_form_shows_the_fields_of_the_chosen_project() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await;
    let erp = app.create_project("ERP", "ERP development").await;
    let ana = app.create_user("ana@example.com", "Ana", false).await;
    // Ana is an agent in HD only: internal fields are hers to fill there, not in ERP.
    let mut conn = app.pool.acquire().await.unwrap();
    let role = unitrack::people::roles::find_by_name(&mut conn, "Agent L1")
        .await
        .unwrap()
        .unwrap();
    unitrack::people::roles::grant(
        &mut conn,
        role.id,
        unitrack::people::roles::Holder::User(ana),
        Some(hd),
        t0(),
    )
    .await
    .unwrap();
    drop(conn);
    app.login("ana@example.com").await;
    app.get(&format!(
        "/tickets/new?process=change_request&project={erp}"
    ))
    .await
    .assert_not_contains("f.risk");
    app.get(&format!("/tickets/new?process=change_request&project={hd}"))
        .await
        .assert_contains("name=\"f.risk\"")
        .assert_contains(&format!("<option value=\"{hd}\" selected>"))
        .assert_contains(&format!("process=bug&amp;project={hd}"));
    // A refused form keeps the project's fields and what was chosen in them.
    app.post_form(
        "/tickets",
        &[
            ("process", "change_request"),
            ("project_id", &hd.to_string()),
            ("title", ""),
            ("description", ""),
            ("f.business_reason", "Audit"),
            ("f.risk", "high"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("<option value=\"high\" selected>");
}

#[tokio::test]
async fn a_bug_is_a_duplicate_only_of_a_ticket_one_can_see_and_only_its_requester_confirms_a_fix() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("rita@example.com", "Rita Requester", false)
        .await;
    app.create_user_with_role("lena@example.com", "Lena L2", "Agent L2")
        .await;
    app.login("rita@example.com").await;
    for title in ["Crash on save", "Save crashes"] {
        app.post_form(
            "/tickets",
            &[
                ("process", "bug"),
                ("project_id", &hd),
                ("title", title),
                ("description", ""),
                ("f.steps", "click save"),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    }
    let mut lena = app.other_browser();
    lena.login("lena@example.com").await;
    // No free-text "duplicate of" step: the duplicate form wants a ticket Lena can see.
    lena.get("/tickets/HD-2")
        .await
        .assert_not_contains("Mark as duplicate")
        .assert_contains("Close as duplicate");
    for target in ["HD-99", "just some text"] {
        lena.post_form(
            "/tickets/HD-2/merge",
            &[("action", "duplicate"), ("target", target)],
        )
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("No such ticket");
    }
    lena.post_form(
        "/tickets/HD-2/merge",
        &[("action", "duplicate"), ("target", "HD-1")],
    )
    .await
    .assert_redirect_to("/tickets/HD-2");
    assert_eq!(state_of(&app, 2).await, "closed");
    assert_eq!(
        app.count("select count(*) from ticket_links where kind = 'duplicates'")
            .await,
        1
    );
    app.get("/tickets/HD-2")
        .await
        .assert_contains("duplicates <a href=\"/tickets/HD-1\">HD-1</a>");

    // Resolved: it closes by itself after five business days, or when Rita confirms.
    for t in ["triage", "start"] {
        let version = version_of(&app, 1).await;
        lena.post_form(
            &format!("/tickets/HD-1/transitions/{t}"),
            &[("version", &version)],
        )
        .await
        .assert_redirect_to("/tickets/HD-1");
    }
    let version = version_of(&app, 1).await;
    lena.post_form(
        "/tickets/HD-1/transitions/resolve",
        &[("version", &version), ("comment", "Fixed in 2.4")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    assert_eq!(
        app.count("select count(*) from tickets where number = 1 and auto_close_at is not null")
            .await,
        1
    );
    let version = version_of(&app, 1).await;
    lena.get("/tickets/HD-1")
        .await
        .assert_not_contains("Confirm it is fixed");
    lena.post_form(
        "/tickets/HD-1/transitions/confirm",
        &[("version", &version)],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Only the requester can confirm this resolution. It closes by itself after 5 business days.");
    app.post_form(
        "/tickets/HD-1/transitions/confirm",
        &[("version", &version)],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    assert_eq!(state_of(&app, 1).await, "closed");
    app.expect_queued("mail_send", 5).await;
}

/// Published definitions are cached per process and version. A version read by the
/// transaction that publishes it is not kept: when that transaction rolls back, the next
/// version with the same number is another definition.
#[tokio::test]
async fn a_definition_read_before_its_publishing_commits_is_not_cached() {
    use sqlx::Connection;
    use unitrack::processes::{self, ProcessFile};

    let app = TestApp::new().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let mut file = ProcessFile::parse(LOAN).unwrap();
    let id = processes::upsert(&mut conn, &file, t0()).await.unwrap();
    let label_of = |def: &unitrack::engine::workflow::Definition| def.fields[0].label.clone();

    let mut tx = conn.begin().await.unwrap();
    let version = unitrack::tickets::publish_process(&mut tx, id, &[], None, t0())
        .await
        .unwrap()
        .unwrap();
    let seen = processes::definition(&mut tx, id, version).await.unwrap();
    assert_eq!(label_of(&seen), "Borrower");
    tx.rollback().await.unwrap();

    file.definition.fields[0].label = "Lender".into();
    processes::upsert(&mut conn, &file, t0()).await.unwrap();
    let again = unitrack::tickets::publish_process(&mut conn, id, &[], None, t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, version, "the rolled-back number is taken again");
    let def = processes::definition(&mut conn, id, version).await.unwrap();
    assert_eq!(label_of(&def), "Lender");
    // Committed versions are kept, and still right on the next read.
    let def = processes::definition(&mut conn, id, version).await.unwrap();
    assert_eq!(label_of(&def), "Lender");
}
