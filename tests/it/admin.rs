//! Admin work in the browser: people, groups that carry roles, roles, refusals that protect
//! the organisation, CSV import, and the audit log.

use axum::http::StatusCode;

use crate::common::TestApp;

async fn admin_app() -> TestApp {
    let mut app = TestApp::new().await;
    app.create_user("admin@example.com", "Alex Admin", true)
        .await;
    app.create_project("HD", "Help desk").await;
    app.login("admin@example.com").await;
    app
}

async fn id_of(app: &TestApp, sql: &'static str) -> String {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn an_admin_creates_a_user_and_a_duplicate_email_is_a_field_error() {
    let mut app = admin_app().await;
    app.get("/admin/users/new")
        .await
        .assert_status(StatusCode::OK);
    let created = app
        .post_form(
            "/admin/users",
            &[
                ("email", "new.person@example.com"),
                ("display_name", "New Person"),
                ("org_unit_id", ""),
                ("role_id", ""),
            ],
        )
        .await;
    assert!(
        created.location().starts_with("/admin/users/"),
        "{}",
        created.body
    );
    app.post_form(
        "/admin/users",
        &[
            ("email", "NEW.PERSON@example.com"),
            ("display_name", "Again"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("already used by another account")
    .assert_contains("value=\"Again\"");
    app.get("/admin/users?q=new")
        .await
        .assert_contains("New Person");
    let audit = app.get("/admin/audit").await;
    audit
        .assert_contains("user create")
        .assert_contains("new.person@example.com");
}

#[tokio::test]
async fn the_last_admin_cannot_be_deactivated_or_demoted() {
    let mut app = admin_app().await;
    let me = id_of(
        &app,
        "select id::text from users where email = 'admin@example.com'",
    )
    .await;
    app.post_form(&format!("/admin/users/{me}/deactivate"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("nobody who can administer users");
    let membership = id_of(&app, "select id::text from memberships limit 1").await;
    let response = app
        .post_form(&format!("/admin/memberships/{membership}/delete"), &[])
        .await;
    response.assert_redirect_to(&format!("/admin/users/{me}"));
    app.get(&format!("/admin/users/{me}"))
        .await
        .assert_contains("nobody who can administer users");
    assert_eq!(app.count("select count(*) from memberships").await, 1);
    assert_eq!(
        app.count("select count(*) from users where active").await,
        1
    );
}

#[tokio::test]
async fn deactivation_signs_the_user_out_everywhere() {
    let mut app = admin_app().await;
    let rita = app.create_user("rita@example.com", "Rita", false).await;
    let mut ritas_browser = app.other_browser();
    ritas_browser.login("rita@example.com").await;
    app.post_form(&format!("/admin/users/{rita}/deactivate"), &[])
        .await
        .assert_redirect_to(&format!("/admin/users/{rita}"));
    ritas_browser
        .get("/requests")
        .await
        .assert_redirect_to("/login?next=%2Frequests");
    let mut again = app.other_browser();
    again.get("/login").await;
    again
        .post_form(
            "/login",
            &[
                ("email", "rita@example.com"),
                ("password", crate::common::PASSWORD),
            ],
        )
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn adding_a_person_to_a_group_is_the_only_step_to_give_its_roles() {
    let mut app = admin_app().await;
    let lars = app.create_user("lars@example.com", "Lars", false).await;
    app.post_form(
        "/admin/groups",
        &[("name", "Service Desk L1"), ("description", "First line")],
    )
    .await;
    let group = id_of(&app, "select id::text from groups").await;
    let role = id_of(&app, "select id::text from roles where name = 'Agent L1'").await;
    let project = id_of(&app, "select id::text from projects").await;
    app.post_form(
        "/admin/memberships",
        &[
            ("group_id", &group),
            ("role_id", &role),
            ("project_id", &project),
        ],
    )
    .await
    .assert_redirect_to(&format!("/admin/groups/{group}"));
    app.post_form(
        &format!("/admin/groups/{group}/members"),
        &[("email", "LARS@example.com")],
    )
    .await
    .assert_redirect_to(&format!("/admin/groups/{group}"));
    let page = app.get(&format!("/people/{lars}/permissions")).await;
    page.assert_status(StatusCode::OK)
        .assert_contains("ticket.view_all")
        .assert_contains("<strong>HD</strong>: role Agent L1 via group Service Desk L1");
    // And the policy agrees: Lars now sees another requester's HD ticket.
    app.create_user("rita@example.com", "Rita", false).await;
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    rita.get("/tickets/new").await;
    rita.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "Printer"),
            ("description", ""),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    let mut lars_browser = app.other_browser();
    lars_browser.login("lars@example.com").await;
    lars_browser
        .get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn roles_and_groups_still_in_use_cannot_be_deleted() {
    let mut app = admin_app().await;
    let admin_role = id_of(&app, "select id::text from roles where name = 'Admin'").await;
    app.post_form(&format!("/admin/roles/{admin_role}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("still given to: Alex Admin everywhere");
    app.post_form("/admin/groups", &[("name", "Board"), ("description", "")])
        .await;
    let group = id_of(&app, "select id::text from groups").await;
    app.post_form(
        "/admin/memberships",
        &[
            ("group_id", &group),
            ("role_id", &admin_role),
            ("project_id", ""),
        ],
    )
    .await;
    app.post_form(&format!("/admin/groups/{group}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("role Admin everywhere");
    assert_eq!(app.count("select count(*) from groups").await, 1);
}

#[tokio::test]
async fn the_role_matrix_saves_checked_permissions() {
    let mut app = admin_app().await;
    app.get("/admin/roles")
        .await
        .assert_contains("ticket.view_all");
    let created = app
        .post_form(
            "/admin/roles",
            &[
                ("name", "Auditor"),
                ("description", "Reads"),
                ("permission", "report.view"),
                ("permission", "admin.audit"),
            ],
        )
        .await;
    assert!(created.location().starts_with("/admin/roles/"));
    let permissions: Vec<String> = sqlx::query_scalar(
        "select permission from role_permissions rp join roles r on r.id = rp.role_id where r.name = 'Auditor' order by 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(permissions, ["admin.audit", "report.view"]);
    app.post_form(
        "/admin/roles",
        &[("name", "Bad"), ("permission", "ticket.everything")],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("not a known permission");
}

#[tokio::test]
async fn csv_import_previews_then_imports_all_or_nothing() {
    let mut app = admin_app().await;
    app.post_form("/admin/groups", &[("name", "Finance"), ("description", "")])
        .await;
    let bad = "email,name,groups\nann@example.com,Ann,Finance\nnot-an-email,Bob,\nann@example.com,Ann Again,\ncid@example.com,Cid,Nope\n";
    let preview = app.post_form("/admin/users/import", &[("csv", bad)]).await;
    preview
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Enter an e-mail address like")
        .assert_contains("appears twice in the file")
        .assert_contains("There is no group Nope")
        .assert_not_contains("name=\"confirm\"");
    // Forcing the import of a bad file imports nothing.
    app.post_form("/admin/users/import", &[("csv", bad), ("confirm", "yes")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("select count(*) from users").await, 1);

    let good = "email,name,groups\nann@example.com,Ann,Finance\ndan@example.com,Dan,\n";
    app.post_form("/admin/users/import", &[("csv", good)])
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("name=\"confirm\" value=\"yes\"");
    assert_eq!(
        app.count("select count(*) from users").await,
        1,
        "a preview writes nothing"
    );
    app.post_form("/admin/users/import", &[("csv", good), ("confirm", "yes")])
        .await
        .assert_redirect_to("/admin/users");
    assert_eq!(app.count("select count(*) from users").await, 3);
    assert_eq!(app.count("select count(*) from group_members").await, 1);
    assert_eq!(
        app.count("select count(*) from admin_audit where action = 'import'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_domain_rule_places_new_people_without_further_steps() {
    let mut app = admin_app().await;
    app.post_form(
        "/admin/org/units",
        &[("parent_id", ""), ("name", "Berlin"), ("kind", "site")],
    )
    .await;
    let unit = id_of(&app, "select id::text from org_units").await;
    let requester = id_of(&app, "select id::text from roles where name = 'Requester'").await;
    app.post_form(
        "/admin/domain-rules",
        &[
            ("domain", "ACME.example"),
            ("org_unit_id", &unit),
            ("role_id", &requester),
        ],
    )
    .await
    .assert_redirect_to("/admin/org#rules");
    app.post_form(
        "/admin/users",
        &[("email", "eve@acme.example"), ("display_name", "Eve")],
    )
    .await;
    let (placed, roles): (Option<String>, i64) = sqlx::query_as(
        "select org_unit_id::text, (select count(*) from memberships m where m.user_id = u.id) from users u where email = 'eve@acme.example'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(placed.as_deref(), Some(unit.as_str()));
    assert_eq!(roles, 1);
    // The unit is now in use and cannot be deleted.
    app.post_form(&format!("/admin/org/units/{unit}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("still used by 1 user(s), 1 domain rule(s)");
}

#[tokio::test]
async fn a_set_password_link_works_once() {
    let mut app = admin_app().await;
    app.post_form(
        "/admin/users",
        &[("email", "new@example.com"), ("display_name", "New")],
    )
    .await;
    let id = id_of(
        &app,
        "select id::text from users where email = 'new@example.com'",
    )
    .await;
    let page = app
        .post_form(&format!("/admin/users/{id}/password-link"), &[])
        .await;
    page.assert_status(StatusCode::OK);
    let start = page.body.find("/password/set/").unwrap();
    let path = page.body[start..].split('<').next().unwrap().to_owned();
    let mut newcomer = app.other_browser();
    newcomer
        .get(&path)
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("new@example.com");
    newcomer
        .post_form(&path, &[("new", "short"), ("confirm", "short")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    newcomer
        .post_form(
            &path,
            &[
                ("new", "my own passphrase"),
                ("confirm", "my own passphrase"),
            ],
        )
        .await
        .assert_redirect_to("/login");
    newcomer
        .get(&path)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    newcomer.get("/login").await;
    newcomer
        .post_form(
            "/login",
            &[
                ("email", "new@example.com"),
                ("password", "my own passphrase"),
            ],
        )
        .await
        .assert_redirect_to("/");
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn projects_systems_and_the_audit_log_are_maintained_in_the_browser() {
    let mut app = admin_app().await;
    app.post_form(
        "/admin/projects",
        &[
            ("key", "ROLL"),
            ("name", "Rollout 2027"),
            ("kind", "rollout"),
            ("contact", "admin@example.com"),
        ],
    )
    .await
    .assert_redirect_to("/admin/projects/ROLL");
    app.post_form(
        "/admin/projects",
        &[("key", "ROLL"), ("name", "Again"), ("kind", "rollout")],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Another project already has this key.");
    app.post_form(
        "/admin/projects",
        &[
            ("key", "x"),
            ("name", ""),
            ("kind", "nonsense"),
            ("contact", "ghost@example.com"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Choose a kind.")
    .assert_contains("There is no account with this e-mail address.");
    app.post_form(
        "/admin/systems",
        &[
            ("name", "SAP"),
            ("owner", "admin@example.com"),
            ("support_group_id", ""),
            ("criticality", "critical"),
        ],
    )
    .await
    .assert_redirect_to("/admin/systems");
    app.get("/admin/systems")
        .await
        .assert_contains("SAP")
        .assert_contains("Alex Admin");
    let audit = app.get("/admin/audit").await;
    audit
        .assert_contains("project create")
        .assert_contains("system create");
    let rewrite = sqlx::query("delete from admin_audit")
        .execute(&app.pool)
        .await;
    assert!(rewrite.is_err(), "the audit log is append-only");
}

#[tokio::test]
async fn roles_and_groups_used_by_processes_cannot_be_deleted() {
    let mut app = admin_app().await;
    // The shipped Bug process lets "Agent L1" take "Start triage"; nobody holds the role.
    let agent = id_of(&app, "select id::text from roles where name = 'Agent L1'").await;
    app.post_form(&format!("/admin/roles/{agent}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Processes still use this role")
        .assert_contains("process Bug: transition Start triage");
    // A group that is a project's change board stays too.
    app.post_form("/admin/groups", &[("name", "CAB"), ("description", "")])
        .await;
    let group = id_of(&app, "select id::text from groups").await;
    sqlx::query("update projects set change_board_group_id = $1::uuid")
        .bind(&group)
        .execute(&app.pool)
        .await
        .unwrap();
    app.post_form(&format!("/admin/groups/{group}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("change board of project HD");
    assert_eq!(
        app.count("select count(*) from roles where name = 'Agent L1'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_role_given_by_a_domain_rule_cannot_be_deleted() {
    let mut app = admin_app().await;
    app.post_form(
        "/admin/roles",
        &[("name", "Contractor"), ("description", "")],
    )
    .await;
    let role = id_of(&app, "select id::text from roles where name = 'Contractor'").await;
    app.post_form(
        "/admin/domain-rules",
        &[
            ("domain", "contractor.example"),
            ("org_unit_id", ""),
            ("role_id", &role),
        ],
    )
    .await
    .assert_redirect_to("/admin/org#rules");
    app.post_form(&format!("/admin/roles/{role}/delete"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Domain rules give this role to new people from: contractor.example");
    assert_eq!(
        app.count("select count(*) from roles where name = 'Contractor'")
            .await,
        1
    );
    let rule = id_of(&app, "select id::text from domain_rules").await;
    app.post_form(&format!("/admin/domain-rules/{rule}/delete"), &[])
        .await
        .assert_redirect_to("/admin/org#rules");
    app.post_form(&format!("/admin/roles/{role}/delete"), &[])
        .await
        .assert_redirect_to("/admin/roles");
    assert_eq!(
        app.count("select count(*) from roles where name = 'Contractor'")
            .await,
        0
    );
}

/// The permissions of the Admin role, as a form: every one but those in `without`.
fn admin_role_form(without: &[&str]) -> Vec<(&'static str, &'static str)> {
    let mut form = vec![("name", "Admin"), ("description", "")];
    for p in unitrack::engine::policy::Permission::ALL {
        if p.is_admin() && !without.contains(&p.name()) {
            form.push(("permission", p.name()));
        }
    }
    form
}

#[tokio::test]
async fn stripping_admin_users_from_the_last_admins_role_is_refused_and_an_edit_is_audited() {
    let mut app = admin_app().await;
    let admin_role = id_of(&app, "select id::text from roles where name = 'Admin'").await;
    let path = format!("/admin/roles/{admin_role}");
    app.post_form(&path, &admin_role_form(&["admin.users"]))
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("nobody who can administer users");
    assert_eq!(
        app.count(
            "select count(*) from role_permissions rp join roles r on r.id = rp.role_id
             where r.name = 'Admin' and rp.permission = 'admin.users'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("select count(*) from admin_audit where entity = 'role' and action = 'update'")
            .await,
        0,
        "a refused change leaves no audit entry"
    );
    // Someone else can administer users through another role: now the edit goes through.
    let keeper = app.create_user("keeper@example.com", "Keeper", false).await;
    app.post_form(
        "/admin/roles",
        &[("name", "User keeper"), ("permission", "admin.users")],
    )
    .await;
    let keeper_role = id_of(
        &app,
        "select id::text from roles where name = 'User keeper'",
    )
    .await;
    app.post_form(
        "/admin/memberships",
        &[
            ("user_id", &keeper.to_string()),
            ("role_id", &keeper_role),
            ("project_id", ""),
        ],
    )
    .await
    .assert_redirect_to(&format!("/admin/users/{keeper}"));
    app.post_form(&path, &admin_role_form(&["admin.users"]))
        .await
        .assert_redirect_to(&path);
    let (before, after): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "select before, after from admin_audit where entity = 'role' and action = 'update'
         and entity_id = $1",
    )
    .bind(&admin_role)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        names(&before).contains(&"admin.users".to_owned()),
        "{before}"
    );
    assert!(
        !names(&after).contains(&"admin.users".to_owned()),
        "{after}"
    );
    assert!(names(&before).contains(&"ticket.view_all".to_owned()));
    assert!(!names(&after).contains(&"ticket.view_all".to_owned()));
    assert_eq!(before["name"], "Admin");
    assert_eq!(after["name"], "Admin");
}

#[tokio::test]
async fn removing_the_last_admin_from_their_group_is_refused() {
    let mut app = admin_app().await;
    // The admin's power moves to a group: the group carries Admin, the direct grant goes.
    app.post_form("/admin/groups", &[("name", "IT"), ("description", "")])
        .await;
    let group = id_of(&app, "select id::text from groups").await;
    let admin_role = id_of(&app, "select id::text from roles where name = 'Admin'").await;
    app.post_form(
        "/admin/memberships",
        &[
            ("group_id", &group),
            ("role_id", &admin_role),
            ("project_id", ""),
        ],
    )
    .await;
    app.post_form(
        &format!("/admin/groups/{group}/members"),
        &[("email", "admin@example.com")],
    )
    .await
    .assert_redirect_to(&format!("/admin/groups/{group}"));
    let direct = id_of(
        &app,
        "select id::text from memberships where user_id is not null",
    )
    .await;
    let me = id_of(
        &app,
        "select id::text from users where email = 'admin@example.com'",
    )
    .await;
    app.post_form(&format!("/admin/memberships/{direct}/delete"), &[])
        .await
        .assert_redirect_to(&format!("/admin/users/{me}"));
    assert_eq!(
        app.count("select count(*) from memberships where user_id is not null")
            .await,
        0
    );
    app.post_form(&format!("/admin/groups/{group}/members/{me}/remove"), &[])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("nobody who can administer users");
    assert_eq!(app.count("select count(*) from group_members").await, 1);
    // With a second member the first may go.
    app.create_user("second@example.com", "Second", false).await;
    app.post_form(
        &format!("/admin/groups/{group}/members"),
        &[("email", "second@example.com")],
    )
    .await;
    app.post_form(&format!("/admin/groups/{group}/members/{me}/remove"), &[])
        .await
        .assert_redirect_to(&format!("/admin/groups/{group}"));
    assert_eq!(app.count("select count(*) from group_members").await, 1);
}

#[tokio::test]
async fn units_move_within_the_order_of_the_tree_and_never_into_themselves() {
    let mut app = admin_app().await;
    app.post_form(
        "/admin/org/units",
        &[("parent_id", ""), ("name", "Europe"), ("kind", "region")],
    )
    .await
    .assert_redirect_to("/admin/org");
    let europe = id_of(&app, "select id::text from org_units where name = 'Europe'").await;
    for country in ["Germany", "France"] {
        app.post_form(
            "/admin/org/units",
            &[
                ("parent_id", &europe),
                ("name", country),
                ("kind", "country"),
            ],
        )
        .await
        .assert_redirect_to("/admin/org");
    }
    let germany = id_of(
        &app,
        "select id::text from org_units where name = 'Germany'",
    )
    .await;
    let france = id_of(&app, "select id::text from org_units where name = 'France'").await;
    app.post_form(
        "/admin/org/units",
        &[
            ("parent_id", &germany),
            ("name", "Berlin"),
            ("kind", "site"),
        ],
    )
    .await
    .assert_redirect_to("/admin/org");
    let berlin = id_of(&app, "select id::text from org_units where name = 'Berlin'").await;
    // Creating out of order is a field error, the input kept.
    app.post_form(
        "/admin/org/units",
        &[
            ("parent_id", &berlin),
            ("name", "Spain"),
            ("kind", "country"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("A country goes inside a region")
    .assert_contains("value=\"Spain\"");

    let move_to = |id: &str| format!("/admin/org/units/{id}/move");
    app.post_form(&move_to(&berlin), &[("new_parent_id", &france)])
        .await
        .assert_redirect_to("/admin/org");
    app.get("/admin/org")
        .await
        .assert_contains("Europe / France / Berlin");
    let (before, after): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "select before, after from admin_audit where entity = 'org_unit' and action = 'move'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(before["path"], "Europe / Germany / Berlin");
    assert_eq!(after["path"], "Europe / France / Berlin");
    assert_eq!(after["parent_id"], france.as_str());

    // Loops, itself, the wrong kind, a name taken there: refused beside the row's field.
    app.post_form(&move_to(&europe), &[("new_parent_id", &berlin)])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains(
            "That would put a unit inside itself: Berlin is inside it (Europe / France / Berlin).",
        )
        .assert_contains(&format!("id=\"move-error-{europe}\""));
    app.post_form(&move_to(&germany), &[("new_parent_id", &germany)])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("A unit cannot be inside itself.");
    app.post_form(&move_to(&berlin), &[("new_parent_id", &europe)])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("A site goes inside a country");
    app.post_form(&move_to(&germany), &[("new_parent_id", "not-a-unit")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Choose one from the list.");
    app.post_form(
        "/admin/org/units",
        &[
            ("parent_id", &germany),
            ("name", "Berlin"),
            ("kind", "site"),
        ],
    )
    .await
    .assert_redirect_to("/admin/org");
    app.post_form(&move_to(&berlin), &[("new_parent_id", &germany)])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("There is already a unit with this name there.");
    let parents: Vec<(String, Option<String>)> = sqlx::query_as(
        "select o.name, p.name from org_units o left join org_units p on p.id = o.parent_id
         order by o.name, p.name nulls first",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let parents: Vec<(&str, Option<&str>)> = parents
        .iter()
        .map(|(o, p)| (o.as_str(), p.as_deref()))
        .collect();
    assert_eq!(
        parents,
        [
            ("Berlin", Some("France")),
            ("Berlin", Some("Germany")),
            ("Europe", None),
            ("France", Some("Europe")),
            ("Germany", Some("Europe")),
        ]
    );
    assert_eq!(
        app.count("select count(*) from admin_audit where action = 'move'")
            .await,
        1
    );
    // To the top is always in order.
    app.post_form(&move_to(&berlin), &[("new_parent_id", "")])
        .await
        .assert_redirect_to("/admin/org");
}

#[tokio::test]
async fn the_demo_gives_every_built_in_role_to_someone() {
    let app = TestApp::new().await;
    assert!(
        unitrack::demo::load(&app.pool, crate::common::t0())
            .await
            .unwrap()
    );
    let unused: Vec<String> = sqlx::query_scalar(
        "select r.name from roles r
         where not exists (select 1 from memberships m where m.role_id = r.id
                           and (m.user_id is not null
                                or exists (select 1 from group_members gm where gm.group_id = m.group_id)))
         order by r.name",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(unused.is_empty(), "no demo user holds {unused:?}");
    // Each demo sign-in exists; L2 escalates to the L3 specialists.
    for (email, _, _) in unitrack::demo::USERS {
        let found: i64 = sqlx::query_scalar("select count(*) from users where email = $1")
            .bind(email)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(found, 1, "{email}");
    }
    let next: Option<String> = sqlx::query_scalar(
        "select n.name from groups g join groups n on n.id = g.escalates_to
         where g.name = 'Service Desk L2'",
    )
    .fetch_optional(&app.pool)
    .await
    .unwrap();
    assert_eq!(next.as_deref(), Some("Service Desk L3"));
}
