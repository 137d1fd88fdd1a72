//! The policy's two forms must agree: `decide` on one ticket and the SQL scope on lists, and
//! the SQL over many users (notification recipients). Also: requesters see their unit's tickets
//! (filed from it, or about it as their site) only where the project allows it, and the ticket
//! list costs the same number of queries whatever its length.

use axum::http::StatusCode;
use sqlx::{Postgres, QueryBuilder};
use tracing_subscriber::layer::SubscriberExt;
use unitrack::core::ids::{GroupId, OrgUnitId, ProjectId, TicketId, UserId};
use unitrack::engine::policy::{self, Action, Target, TicketFacts};
use unitrack::people::roles::{self, Holder};
use unitrack::people::{actor_of, groups};
use unitrack::projects::org::{self, UnitKind};
use unitrack::projects::{self, Kind, ProjectInput};

use crate::common::{TestApp, t0};

/// People with every kind of role and relation, and tickets in a project that shares with
/// the requester's unit and one that does not.
struct World {
    app: TestApp,
    people: Vec<UserId>,
    tickets: Vec<TicketId>,
}

async fn world() -> World {
    let app = TestApp::new().await;
    let now = t0();
    let mut conn = app.pool.acquire().await.unwrap();
    let unit_a = org::create(&mut conn, None, "Site A", UnitKind::Site, now)
        .await
        .unwrap();
    let unit_b = org::create(&mut conn, None, "Site B", UnitKind::Site, now)
        .await
        .unwrap();
    let open = projects::create(
        &mut conn,
        "OPEN",
        &ProjectInput {
            org_unit_visible: true,
            ..ProjectInput::new("Open", Kind::ServiceDesk)
        },
        now,
    )
    .await
    .unwrap();
    let closed = projects::create(
        &mut conn,
        "SHUT",
        &ProjectInput::new("Shut", Kind::ServiceDesk),
        now,
    )
    .await
    .unwrap();
    drop(conn);

    let mut people: Vec<UserId> = Vec::new();
    for (email, role, unit) in [
        ("a1@example.com", "Requester", Some(unit_a)),
        ("a2@example.com", "Requester", Some(unit_a)),
        ("b1@example.com", "Requester", Some(unit_b)),
        ("agent@example.com", "Agent L1", None),
        ("dev@example.com", "Developer", None),
        ("nobody@example.com", "Requester", None),
        ("pm@example.com", "Project manager", None),
    ] {
        let id = app.create_user_with_role(email, email, "Requester").await;
        let mut conn = app.pool.acquire().await.unwrap();
        sqlx::query("update users set org_unit_id = $2 where id = $1")
            .bind(id)
            .bind(unit)
            .execute(&mut *conn)
            .await
            .unwrap();
        if role != "Requester" {
            let r = roles::find_by_name(&mut conn, role).await.unwrap().unwrap();
            let scope = match role {
                "Agent L1" => Some(open),
                "Developer" => Some(closed),
                _ => None,
            };
            roles::grant(&mut conn, r.id, Holder::User(id), scope, now)
                .await
                .unwrap();
        }
        people.push(id);
    }
    let mut conn = app.pool.acquire().await.unwrap();
    let team = groups::create(&mut conn, "Team", "", now).await.unwrap();
    groups::add_member(&mut conn, team, people[5])
        .await
        .unwrap();
    // A role held through a group, in one project: internal notes in SHUT for b1.
    let agents = groups::create(&mut conn, "Agents", "", now).await.unwrap();
    groups::add_member(&mut conn, agents, people[2])
        .await
        .unwrap();
    let l2 = roles::find_by_name(&mut conn, "Agent L2")
        .await
        .unwrap()
        .unwrap();
    roles::grant(&mut conn, l2.id, Holder::Group(agents), Some(closed), now)
        .await
        .unwrap();
    drop(conn);

    // Tickets with every kind of relation, in both projects.
    let mut tickets: Vec<TicketId> = Vec::new();
    for project in [open, closed] {
        for (requester, assignee, group, watcher, approver, site) in [
            (0usize, None, None, None, None, None),
            (1, None, None, None, Some(5usize), None),
            (2, Some(3usize), None, None, None, None),
            (2, None, Some(team), None, None, None),
            (1, None, None, Some(2usize), None, None),
            // Filed from site B, about site A.
            (2, None, None, None, None, Some(unit_a)),
        ] {
            let mut conn = app.pool.acquire().await.unwrap();
            let actor = actor_of(&mut conn, people[requester]).await.unwrap();
            let input = unitrack::tickets::NewTicket {
                project_id: Some(project),
                title: "t".into(),
                description: String::new(),
                ..Default::default()
            };
            unitrack::tickets::create(&mut conn, &actor, &input, now)
                .await
                .unwrap();
            let id: TicketId =
                sqlx::query_scalar("select id from tickets order by id desc limit 1")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            sqlx::query(
                "update tickets set assignee_id = $2, assignee_group_id = $3, site_id = $4 where id = $1",
            )
            .bind(id)
            .bind(assignee.map(|i| people[i]))
            .bind(group)
            .bind(site)
            .execute(&mut *conn)
            .await
            .unwrap();
            if let Some(w) = watcher {
                sqlx::query("insert into ticket_watchers (ticket_id, user_id) values ($1, $2)")
                    .bind(id)
                    .bind(people[w])
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            if let Some(a) = approver {
                sqlx::query(
                    "with r as (insert into approval_rounds (id, ticket_id, state, round, rule, created_at)
                                values (gen_random_uuid(), $1, 'new', 1, '\"all\"', now()) returning id)
                     insert into approval_requests (round_id, approver_id) select id, $2 from r",
                )
                .bind(id)
                .bind(people[a])
                .execute(&mut *conn)
                .await
                .unwrap();
            }
            tickets.push(id);
        }
    }
    World {
        app,
        people,
        tickets,
    }
}

/// What `decide` needs about `ticket`, as `person` sees it, read straight from the tables.
async fn facts(conn: &mut sqlx::PgConnection, ticket: TicketId, person: UserId) -> TicketFacts {
    type Facts = (
        ProjectId,
        UserId,
        Option<UserId>,
        Option<GroupId>,
        Option<OrgUnitId>,
        Option<OrgUnitId>,
        bool,
        bool,
        bool,
    );
    let (
        project_id,
        requester_id,
        assignee_id,
        assignee_group_id,
        org_unit_id,
        site_id,
        org_unit_visible,
        actor_watches,
        actor_approves,
    ): Facts = sqlx::query_as(
        "select t.project_id, t.requester_id, t.assignee_id, t.assignee_group_id, t.org_unit_id,
                t.site_id, p.requester_visibility = 'org_unit',
                exists (select 1 from ticket_watchers w where w.ticket_id = t.id and w.user_id = $2),
                exists (select 1 from approval_rounds ar join approval_requests aq on aq.round_id = ar.id
                        where ar.ticket_id = t.id and aq.approver_id = $2)
         from tickets t join projects p on p.id = t.project_id where t.id = $1",
    )
    .bind(ticket)
    .bind(person)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    TicketFacts {
        project_id,
        requester_id,
        assignee_id,
        assignee_group_id,
        org_unit_id,
        site_id,
        org_unit_visible,
        actor_watches,
        actor_approves,
    }
}

#[tokio::test]
async fn the_sql_scope_and_the_decision_agree_for_every_user_and_ticket() {
    let World {
        app,
        people,
        tickets,
    } = world().await;
    let mut checked = 0;
    for person in &people {
        let mut conn = app.pool.acquire().await.unwrap();
        let actor = actor_of(&mut conn, *person).await.unwrap();
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("select t.id from tickets t where true");
        policy::push_ticket_scope(&mut qb, &actor, "t");
        let visible: Vec<TicketId> = qb.build_query_scalar().fetch_all(&mut *conn).await.unwrap();
        // Both forms of the scope are the same rule.
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("select t.id from tickets t where true");
        policy::push_ticket_scope_indexed(&mut qb, &actor, "t");
        let indexed: Vec<TicketId> = qb.build_query_scalar().fetch_all(&mut *conn).await.unwrap();
        assert_eq!(
            visible, indexed,
            "user {person}: the two forms of the scope differ"
        );
        for ticket in &tickets {
            let facts = facts(&mut conn, *ticket, *person).await;
            let decision = policy::decide(&actor, Action::ViewTicket, Target::Ticket(&facts));
            assert_eq!(
                decision.allowed(),
                visible.contains(ticket),
                "user {person} ticket {ticket}: {decision}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, people.len() * tickets.len());
}

/// The predicates for many users at once (notification recipients) say what `decide` says
/// for each of them: who may view a ticket, and who may read its internal data.
#[tokio::test]
async fn the_sql_for_many_users_and_the_decision_agree_on_viewing_and_internal_data() {
    let World {
        app,
        people,
        tickets,
    } = world().await;
    let mut internal_readers = 0;
    for person in &people {
        let mut conn = app.pool.acquire().await.unwrap();
        let actor = actor_of(&mut conn, *person).await.unwrap();
        let query = |internal: bool| {
            let mut qb: QueryBuilder<Postgres> =
                QueryBuilder::new("select t.id from tickets t cross join users u where u.id = ");
            qb.push_bind(*person);
            if internal {
                policy::push_user_may_see_internal(&mut qb, "u", "t");
            } else {
                policy::push_user_may_view(&mut qb, "u", "t");
            }
            qb
        };
        let viewing: Vec<TicketId> = query(false)
            .build_query_scalar()
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let internal: Vec<TicketId> = query(true)
            .build_query_scalar()
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        for ticket in &tickets {
            let facts = facts(&mut conn, *ticket, *person).await;
            let view = policy::decide(&actor, Action::ViewTicket, Target::Ticket(&facts));
            assert_eq!(
                view.allowed(),
                viewing.contains(ticket),
                "view: user {person} ticket {ticket}: {view}"
            );
            let see = policy::decide(&actor, Action::SeeInternal, Target::Ticket(&facts));
            assert_eq!(
                see.allowed(),
                internal.contains(ticket),
                "internal: user {person} ticket {ticket}: {see}"
            );
            internal_readers += usize::from(see.allowed());
        }
    }
    // The world has both answers for internal data, or the comparison proves little.
    assert!(internal_readers > 0 && internal_readers < people.len() * tickets.len());
}

#[tokio::test]
async fn requesters_see_their_units_tickets_only_where_the_project_allows() {
    let mut app = TestApp::new().await;
    let now = t0();
    let mut conn = app.pool.acquire().await.unwrap();
    let site = org::create(&mut conn, None, "Berlin", UnitKind::Site, now)
        .await
        .unwrap();
    let open = projects::create(
        &mut conn,
        "HD",
        &ProjectInput {
            org_unit_visible: true,
            ..ProjectInput::new("Help desk", Kind::ServiceDesk)
        },
        now,
    )
    .await
    .unwrap();
    drop(conn);
    let colleague = app
        .create_user("colleague@example.com", "Colleague", false)
        .await;
    let me = app.create_user("me@example.com", "Me", false).await;
    sqlx::query("update users set org_unit_id = $1")
        .bind(site)
        .execute(&app.pool)
        .await
        .unwrap();
    let _ = (colleague, me);
    let mut theirs = app.other_browser();
    theirs.login("colleague@example.com").await;
    theirs.get("/tickets/new").await;
    theirs
        .post_form(
            "/tickets",
            &[
                ("project_id", &open.to_string()),
                ("title", "Our printer"),
                ("description", ""),
            ],
        )
        .await
        .assert_redirect_to("/tickets/HD-1");
    app.login("me@example.com").await;
    app.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Our printer");
    // The project stops sharing: the ticket is gone for the colleague's neighbour.
    sqlx::query("update projects set requester_visibility = 'own'")
        .execute(&app.pool)
        .await
        .unwrap();
    app.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

/// A site is an organisation unit: where the project shares with units, people of a site see
/// the tickets about it (`tickets.site_id`), not only those filed from it. `decide`, the list
/// scope and the many-users SQL must say the same, for the project that shares and the one
/// that does not.
#[tokio::test]
async fn tickets_about_a_site_are_seen_from_that_site_where_the_project_allows() {
    let World {
        app,
        people,
        tickets,
    } = world().await;
    let mut conn = app.pool.acquire().await.unwrap();
    // The last ticket of each project is filed from site B (b1) about site A.
    let about_a: Vec<TicketId> = sqlx::query_scalar(
        "select t.id from tickets t join org_units o on o.id = t.site_id
         where o.name = 'Site A' order by t.id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(about_a.len(), 2);
    let (a1, nobody) = (people[0], people[5]);
    let mut seen_by_a1 = Vec::new();
    for (person, expect_open) in [(a1, true), (nobody, false)] {
        let actor = actor_of(&mut conn, person).await.unwrap();
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("select t.id from tickets t where t.id = any(");
        qb.push_bind(&about_a).push(")");
        policy::push_ticket_scope(&mut qb, &actor, "t");
        let listed: Vec<TicketId> = qb.build_query_scalar().fetch_all(&mut *conn).await.unwrap();
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("select t.id from tickets t cross join users u where t.id = any(");
        qb.push_bind(&about_a)
            .push(") and u.id = ")
            .push_bind(person);
        policy::push_user_may_view(&mut qb, "u", "t");
        let fanned: Vec<TicketId> = qb.build_query_scalar().fetch_all(&mut *conn).await.unwrap();
        for ticket in &about_a {
            let facts = facts(&mut conn, *ticket, person).await;
            let decision = policy::decide(&actor, Action::ViewTicket, Target::Ticket(&facts));
            assert_eq!(
                decision.allowed(),
                expect_open && facts.org_unit_visible,
                "decide, user {person}: {decision}"
            );
            assert_eq!(listed.contains(ticket), decision.allowed(), "list scope");
            assert_eq!(fanned.contains(ticket), decision.allowed(), "many users");
            if decision.allowed() {
                seen_by_a1.push(*ticket);
            }
        }
    }
    // Seen through the site, in the sharing project only.
    assert_eq!(seen_by_a1.len(), 1);
    assert!(tickets.contains(&seen_by_a1[0]));
}

/// The route table's first gate: an action whose permission the actor holds nowhere, and for
/// which no relation stands in, is refused before any ticket is looked up — the same 403 for
/// a ticket that exists and one that does not. What relations allow stays open.
#[tokio::test]
async fn the_route_gate_refuses_what_no_grant_allows_the_same_for_every_key() {
    let mut app = TestApp::new().await;
    let project = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("rita@example.com", "Rita", false).await;
    let agent = app
        .create_user_with_role("lars@example.com", "Lars", "Agent L1")
        .await;
    let _ = agent;
    app.login("rita@example.com").await;
    app.get("/tickets/new").await.assert_status(StatusCode::OK);
    app.post_form(
        "/tickets",
        &[
            ("project_id", &project),
            ("title", "Printer"),
            ("description", ""),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    for key in ["HD-1", "HD-999"] {
        app.post_form(&format!("/tickets/{key}/assign"), &[])
            .await
            .assert_status(StatusCode::FORBIDDEN);
        app.post_form(&format!("/tickets/{key}/links"), &[])
            .await
            .assert_status(StatusCode::FORBIDDEN);
    }
    // Her relation to her own ticket still lets her see it and answer on it.
    app.get("/tickets/HD-1").await.assert_status(StatusCode::OK);
    app.post_form(
        "/tickets/HD-1/comments",
        &[("body", "It is the one on floor 2.")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1#comment");
    app.get("/tickets/HD-1")
        .await
        .assert_contains("It is the one on floor 2.");
    // The agent passes the gate; then the ticket decides: a missing one is not found.
    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    lars.post_form("/tickets/HD-999/assign", &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // Without any role that files, the new-request form is refused too.
    sqlx::query(
        "delete from memberships where user_id = (select id from users where email = 'rita@example.com')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    app.get("/tickets/new")
        .await
        .assert_status(StatusCode::FORBIDDEN);
    app.get("/tickets/HD-1").await.assert_status(StatusCode::OK);
}

/// Decisions that come before a ticket exists go through the policy too: sharing a queue
/// needs `ticket.assign` somewhere, and the new-request form shows internal fields only to
/// those who read internal data in the project.
#[tokio::test]
async fn sharing_queues_and_internal_fields_on_the_new_form_follow_the_policy() {
    let mut app = TestApp::new().await;
    app.create_project("HD", "Help desk").await;
    app.create_user("rita@example.com", "Rita", false).await;
    app.create_user_with_role("dev@example.com", "Dev", "Developer")
        .await;
    app.create_user_with_role("lars@example.com", "Lars", "Agent L1")
        .await;
    let share = [("name", "Everyone's"), ("sort", "sla"), ("shared", "on")];
    app.login("dev@example.com").await;
    app.get("/queues").await;
    app.post_form("/queues", &share)
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Only those who assign tickets can share queues");
    let mut lars = app.other_browser();
    lars.login("lars@example.com").await;
    lars.get("/queues").await;
    let saved = lars.post_form("/queues", &share).await;
    assert!(saved.location().starts_with("/queues/"), "{}", saved.body);
    assert_eq!(
        app.count("select count(*) from queues where owner_id is null")
            .await,
        1
    );
    lars.get("/tickets/new?process=bug")
        .await
        .assert_contains("Root cause");
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    rita.get("/tickets/new?process=bug")
        .await
        .assert_status(StatusCode::OK)
        .assert_not_contains("Root cause");
}

thread_local! {
    pub(crate) static QUERIES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts sqlx's query events on the thread that runs them. It is the process's global
/// subscriber, installed once: a scoped one races with other test threads, which can cache
/// sqlx's callsites as uninteresting between our rebuild and our queries.
struct QueryCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for QueryCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            QUERIES.with(|q| q.set(q.get() + 1));
        }
    }
}

pub(crate) fn count_queries_on_this_thread() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(QueryCounter);
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        tracing::callsite::rebuild_interest_cache();
    });
}

#[tokio::test(flavor = "current_thread")]
async fn the_ticket_list_runs_the_same_queries_for_5_rows_as_for_25() {
    let mut app = TestApp::new().await;
    app.create_user("rita@example.com", "Rita", false).await;
    let project = app.create_project("HD", "Help desk").await.to_string();
    app.login("rita@example.com").await;
    let mut counts = Vec::new();
    for total in [5, 25] {
        while app.count("select count(*) from tickets").await < total {
            app.post_form(
                "/tickets",
                &[
                    ("project_id", &project),
                    ("title", "t"),
                    ("description", ""),
                ],
            )
            .await;
        }
        count_queries_on_this_thread();
        // Warm up: a fresh pool connection looks up types once, which is not the page's cost.
        app.get("/requests").await.assert_status(StatusCode::OK);
        QUERIES.with(|q| q.set(0));
        app.get("/requests").await.assert_status(StatusCode::OK);
        counts.push(QUERIES.with(|q| q.get()));
    }
    assert_eq!(
        counts[0], counts[1],
        "queries per page must not grow with rows: {counts:?}"
    );
    assert!(
        (1..=2).contains(&counts[0]),
        "session with grants + the list: {counts:?}"
    );
}

/// Grants are cached per instance while their versions hold: every change to what makes an
/// actor (group members, a user's or a group's memberships, role permissions) counts from the
/// very next request of a session that is already signed in.
#[tokio::test]
async fn a_signed_in_session_loses_and_regains_access_with_its_grants() {
    let mut app = TestApp::new().await;
    let user = app.create_user("gina@example.com", "Gina", false).await;
    let group = uuid::Uuid::now_v7();
    for sql in [
        "insert into groups (id, name, created_at) values ($1, 'Administrators', now())",
        "insert into memberships (id, role_id, group_id, created_at)
         select gen_random_uuid(), r.id, $1, now() from roles r where r.name = 'Admin'",
    ] {
        sqlx::query(sql)
            .bind(group)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    let member = |add: bool| {
        let sql = if add {
            "insert into group_members (group_id, user_id) values ($1, $2)"
        } else {
            "delete from group_members where group_id = $1 and user_id = $2"
        };
        sqlx::query(sql).bind(group).bind(user)
    };
    member(true).execute(&app.pool).await.unwrap();
    app.login("gina@example.com").await;
    app.get("/admin/users").await.assert_status(StatusCode::OK);
    app.get("/admin/users").await.assert_status(StatusCode::OK);
    member(false).execute(&app.pool).await.unwrap();
    app.get("/admin/users")
        .await
        .assert_status(StatusCode::FORBIDDEN);
    member(true).execute(&app.pool).await.unwrap();
    app.get("/admin/users").await.assert_status(StatusCode::OK);
    sqlx::query(
        "delete from role_permissions where permission = 'admin.users'
           and role_id = (select id from roles where name = 'Admin')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    app.get("/admin/users")
        .await
        .assert_status(StatusCode::FORBIDDEN);
    app.get("/admin/groups").await.assert_status(StatusCode::OK);
    // The group's own grant goes: every member loses it.
    sqlx::query("delete from memberships where group_id = $1")
        .bind(group)
        .execute(&app.pool)
        .await
        .unwrap();
    app.get("/admin/groups")
        .await
        .assert_status(StatusCode::FORBIDDEN);
}
