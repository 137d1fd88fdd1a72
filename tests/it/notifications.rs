//! In-app notifications: who gets what (never the actor, internal notes only for those who may
//! read them, preferences honoured), one statement per event whatever the number of
//! recipients, the bell, opening and marking read, paging, preferences, and `notify_group`.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use unitrack::core::ids::{GroupId, TicketId, UserId};
use unitrack::notifications::{self, Channel, Kind};
use unitrack::people::groups;
use unitrack::tickets::{self, EventData};

use crate::common::scenario::{Scenario, watch};
use crate::common::{TestApp, t0};
use crate::policy::{QUERIES, count_queries_on_this_thread};

/// The scenario (see `common::scenario`): Rita files HD-1; Alice is its assignee; Bob and Walt
/// watch it; Nora (an agent) has nothing to do with it. Signed in as Alice.
async fn desk() -> (Scenario, TicketId) {
    let mut s = Scenario::new().await;
    let key = s.file("rita@example.com", s.hd, "Printer jammed").await;
    assert_eq!(key, "HD-1");
    let ticket = s.ticket("HD-1").await;
    s.assign(ticket, s.alice).await;
    for watcher in [s.bob, s.walt] {
        s.watch(ticket, watcher).await;
    }
    s.app.login("alice@example.com").await;
    (s, ticket)
}

/// Who was told of the latest event.
async fn told_of_last_event(app: &TestApp) -> BTreeSet<UserId> {
    sqlx::query_scalar(
        "select user_id from notifications where event_id = (select max(id) from ticket_events)",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Writes an event the way a feature does: in a transaction, through `tickets::record`.
async fn record(app: &TestApp, ticket: TicketId, by: Option<UserId>, data: EventData) {
    let mut tx = app.pool.begin().await.unwrap();
    tickets::record(&mut tx, ticket, by, &data, t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn note(body: &str, public: bool) -> EventData {
    EventData::Comment {
        body_md: body.into(),
        body_html: format!("<p>{body}</p>"),
        public,
    }
}

#[tokio::test]
async fn replies_reach_participants_but_not_the_actor_and_notes_only_those_who_may_read_them() {
    let (
        Scenario {
            mut app,
            rita,
            alice,
            bob,
            walt,
            nora,
            ..
        },
        ticket,
    ) = desk().await;
    app.post_form("/tickets/HD-1/comments", &[("body", "On my way.")])
        .await
        .assert_redirect_to("/tickets/HD-1#comment");
    assert_eq!(
        told_of_last_event(&app).await,
        BTreeSet::from([rita, bob, walt]),
        "requester and watchers; not the author, not a bystander ({nora})"
    );

    // Rita watches her own ticket too: as a watcher she is in the audience of an internal
    // note, and the policy still keeps it from her, as from Walt.
    watch(&app, ticket, rita).await;
    record(
        &app,
        ticket,
        Some(alice),
        note("Toner supplier is late", false),
    )
    .await;
    assert_eq!(told_of_last_event(&app).await, BTreeSet::from([bob]));

    // Bob's note reaches the assignee.
    record(&app, ticket, Some(bob), note("I asked facilities", false)).await;
    assert_eq!(told_of_last_event(&app).await, BTreeSet::from([alice]));

    // Rita switches replies off in the app (e-mail stays on); the bell stays quiet for them.
    let mut rita_browser = app.other_browser();
    rita_browser.login("rita@example.com").await;
    rita_browser
        .get("/account/notifications")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains(Kind::PublicReply.label());
    let mut form: Vec<(&str, &str)> = Kind::ALL
        .iter()
        .filter(|k| **k != Kind::PublicReply)
        .map(|k| ("in_app", k.key()))
        .collect();
    form.extend(
        Kind::ALL
            .iter()
            .filter(|k| k.default_for(Channel::Email))
            .map(|k| ("email", k.key())),
    );
    rita_browser
        .post_form("/account/notifications", &form)
        .await
        .assert_redirect_to("/account/notifications");
    assert_eq!(
        app.count("select count(*) from notification_preferences")
            .await,
        1,
        "a row only for the kind that differs from the defaults"
    );
    app.post_form("/tickets/HD-1/comments", &[("body", "Fixed, I think.")])
        .await;
    assert_eq!(told_of_last_event(&app).await, BTreeSet::from([bob, walt]));
    let mut conn = app.pool.acquire().await.unwrap();
    let prefs = notifications::preferences(&mut conn, rita).await.unwrap();
    let reply = prefs.iter().find(|p| p.kind == Kind::PublicReply).unwrap();
    assert!(!reply.in_app && reply.email, "both channels are stored");
    app.expect_queued("mail_send", 6).await;
}

#[tokio::test]
async fn new_group_tickets_reach_the_group_and_approval_requests_the_approvers() {
    let (
        Scenario {
            app,
            alice,
            bob,
            nora,
            ..
        },
        ticket,
    ) = desk().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let team = groups::create(&mut conn, "Printers", "", t0())
        .await
        .unwrap();
    for member in [bob, nora, alice] {
        groups::add_member(&mut conn, team, member).await.unwrap();
    }
    drop(conn);
    sqlx::query("update tickets set assignee_group_id = $2 where id = $1")
        .bind(ticket)
        .bind(team)
        .execute(&app.pool)
        .await
        .unwrap();
    record(
        &app,
        ticket,
        Some(alice),
        EventData::GroupAssigned {
            group: "Printers".into(),
        },
    )
    .await;
    assert_eq!(told_of_last_event(&app).await, BTreeSet::from([bob, nora]));

    // Assigned to Nora: only she hears of it.
    sqlx::query("update tickets set assignee_id = $2 where id = $1")
        .bind(ticket)
        .bind(nora)
        .execute(&app.pool)
        .await
        .unwrap();
    record(
        &app,
        ticket,
        Some(alice),
        EventData::Assigned {
            assignee: Some("Nora".into()),
            group: None,
        },
    )
    .await;
    assert_eq!(told_of_last_event(&app).await, BTreeSet::from([nora]));

    // Approvers of the round asked, not those of an earlier round.
    let approver = app
        .create_user_with_role("carl@example.com", "Carl", "Change approver")
        .await;
    for (round, who) in [(1, bob), (2, approver)] {
        sqlx::query(
            "with r as (insert into approval_rounds (id, ticket_id, state, round, rule, created_at)
                        values (gen_random_uuid(), $1, 'new', $2, '\"all\"', now()) returning id)
             insert into approval_requests (round_id, approver_id) select id, $3 from r",
        )
        .bind(ticket)
        .bind(round)
        .bind(who)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    record(
        &app,
        ticket,
        None,
        EventData::ApprovalRequested {
            round: 2,
            state: "Review".into(),
            approvers: vec!["Carl".into()],
        },
    )
    .await;
    assert_eq!(told_of_last_event(&app).await, BTreeSet::from([approver]));
    app.expect_queued("mail_send", 2).await;
}

#[tokio::test]
async fn notify_group_tells_members_who_may_see_the_ticket_and_its_internal_data() {
    let (
        Scenario {
            app,
            rita,
            bob,
            walt,
            nora,
            ..
        },
        ticket,
    ) = desk().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let escalation: GroupId = groups::create(&mut conn, "Escalation", "", t0())
        .await
        .unwrap();
    for member in [bob, nora, walt, rita] {
        groups::add_member(&mut conn, escalation, member)
            .await
            .unwrap();
    }
    let mut tx = app.pool.begin().await.unwrap();
    let told = notifications::notify_group(
        &mut tx,
        escalation,
        ticket,
        Kind::SlaBreach,
        "breached its resolution target",
        t0(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let got: BTreeSet<UserId> = sqlx::query_scalar(
        "select user_id from notifications where kind = 'sla_breach' and event_id is null",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(got, BTreeSet::from([bob, nora]), "SLA data is internal");
    assert_eq!(told, 2);
}

/// The number of statements behind a comment, with `watchers` watchers on the ticket.
#[tokio::test(flavor = "current_thread")]
async fn an_event_costs_the_same_statements_for_one_watcher_as_for_six() {
    let (Scenario { mut app, .. }, ticket) = desk().await;
    let mut counts = Vec::new();
    for (extra, watchers) in [(0, 2), (4, 6)] {
        for i in 0..extra {
            let id = app
                .create_user(&format!("w{i}@example.com"), "Watcher", false)
                .await;
            watch(&app, ticket, id).await;
        }
        count_queries_on_this_thread();
        // Warm up: a fresh pool connection looks up types once.
        app.post_form("/tickets/HD-1/comments", &[("body", "warm")])
            .await;
        QUERIES.with(|q| q.set(0));
        app.post_form("/tickets/HD-1/comments", &[("body", "counted")])
            .await
            .assert_redirect_to("/tickets/HD-1#comment");
        counts.push(QUERIES.with(|q| q.get()));
        // Everyone but the author: the requester and each watcher.
        assert_eq!(told_of_last_event(&app).await.len(), 1 + watchers);
    }
    assert_eq!(
        counts[0], counts[1],
        "statements must not grow with recipients: {counts:?}"
    );
    app.expect_queued("mail_send", 20).await;
}

#[tokio::test]
async fn the_bell_counts_unread_and_opening_or_marking_all_reads_them() {
    let (Scenario { mut app, .. }, _) = desk().await;
    app.get("/").await.assert_not_contains("bell-count");
    for body in ["one", "two", "three"] {
        app.post_form("/tickets/HD-1/comments", &[("body", body)])
            .await;
    }
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    rita.get("/")
        .await
        .assert_contains("<span class=\"bell-count\">3</span>");
    let page = rita.get("/notifications").await;
    page.assert_status(StatusCode::OK)
        .assert_contains("HD-1</span> Printer jammed")
        .assert_contains("Alice</strong> replied: three");
    let (id, event): (i64, i64) = sqlx::query_as(
        "select n.id, n.event_id from notifications n join users u on u.id = n.user_id
         where u.email = 'rita@example.com' order by n.id limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    rita.post_form(&format!("/notifications/{id}/open"), &[])
        .await
        .assert_redirect_to(&format!("/tickets/HD-1#event-{event}"));
    rita.get("/")
        .await
        .assert_contains("<span class=\"bell-count\">2</span>");
    // Someone else's notification, or nonsense, is not found.
    let walts: i64 = sqlx::query_scalar(
        "select n.id from notifications n join users u on u.id = n.user_id
         where u.email = 'walt@example.com' limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    for path in [
        format!("/notifications/{walts}/open"),
        "/notifications/x/open".to_owned(),
    ] {
        rita.post_form(&path, &[])
            .await
            .assert_status(StatusCode::NOT_FOUND);
    }
    rita.post_form("/notifications/read-all", &[])
        .await
        .assert_redirect_to("/notifications");
    rita.get("/notifications")
        .await
        .assert_contains("2 notifications marked as read.")
        .assert_not_contains("bell-count")
        .assert_not_contains("badge-new");
    assert_eq!(
        app.count(
            "select count(*) from notifications n join users u on u.id = n.user_id
             where u.email = 'walt@example.com' and n.read_at is null"
        )
        .await,
        3,
        "only Rita's were marked"
    );
    app.expect_queued("mail_send", 9).await;
}

#[tokio::test]
async fn the_bell_stops_counting_at_its_cap() {
    let (Scenario { app, alice, .. }, ticket) = desk().await;
    for i in 0..105 {
        record(&app, ticket, Some(alice), note(&format!("n{i}"), true)).await;
    }
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    rita.get("/")
        .await
        .assert_contains("<span class=\"bell-count\">99+</span>");
    app.expect_queued("mail_send", 315).await;
}

#[tokio::test]
async fn the_list_pages_newest_first_with_a_keyset_cursor() {
    let (Scenario { app, alice, .. }, ticket) = desk().await;
    for i in 1..=30 {
        record(
            &app,
            ticket,
            Some(alice),
            note(&format!("reply-{i:02}"), true),
        )
        .await;
    }
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    let first = rita.get("/notifications").await;
    first
        .assert_contains("reply-30")
        .assert_contains("reply-06")
        .assert_not_contains("reply-05");
    assert!(
        first.body.find("reply-30").unwrap() < first.body.find("reply-06").unwrap(),
        "newest first"
    );
    let start = first.body.find("/notifications?before=").unwrap() + "/notifications?before=".len();
    let end = start + first.body[start..].find('"').unwrap();
    let cursor = &first.body[start..end];
    let second = rita.get(&format!("/notifications?before={cursor}")).await;
    second
        .assert_contains("reply-05")
        .assert_contains("reply-01")
        .assert_not_contains("reply-06")
        .assert_not_contains("/notifications?before=");
    rita.get("/notifications?before=garbage")
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    app.expect_queued("mail_send", 90).await;
}

#[tokio::test]
async fn notifications_of_tickets_one_can_no_longer_see_drop_out_of_the_list() {
    let (
        Scenario {
            app, alice, walt, ..
        },
        ticket,
    ) = desk().await;
    record(&app, ticket, Some(alice), note("Secret-ish reply", true)).await;
    let mut browser = app.other_browser();
    browser.login("walt@example.com").await;
    browser
        .get("/notifications")
        .await
        .assert_contains("Secret-ish reply");
    sqlx::query("delete from ticket_watchers where user_id = $1")
        .bind(walt)
        .execute(&app.pool)
        .await
        .unwrap();
    browser
        .get("/notifications")
        .await
        .assert_not_contains("Secret-ish reply");
    app.expect_queued("mail_send", 3).await;
}

const OUTAGE: &str = r#"key = "outage"
name = "Outage"

[[definition.states]]
key = "new"
label = "New"
category = "new"
initial = true

[[definition.states]]
key = "working"
label = "Working"
category = "open"

[[definition.states]]
key = "closed"
label = "Closed"
category = "closed"

[[definition.transitions]]
key = "start"
label = "Start work"
from = ["new"]
to = "working"
roles = ["Agent L1"]
effects = [{ do = "notify", who = "group" }, { do = "notify", who = "requester" }]

[[definition.transitions]]
key = "close"
label = "Close"
from = ["working"]
to = "closed"
roles = ["Agent L1"]
"#;

#[tokio::test]
async fn a_process_step_tells_whom_it_names_once_each_as_their_preferences_allow() {
    let mut app = TestApp::new().await;
    let hd = app.create_project("HD", "Help desk").await.to_string();
    let rita = app.create_user("rita@example.com", "Rita", false).await;
    let lars = app
        .create_user_with_role("lars@example.com", "Lars", "Agent L1")
        .await;
    let nina = app.create_user("nina@example.com", "Nina", false).await;
    let ned = app.create_user("ned@example.com", "Ned", false).await;
    let ina = app.create_user("ina@example.com", "Ina", false).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let network = groups::create(&mut conn, "Network", "", t0())
        .await
        .unwrap();
    for member in [lars, nina, ned, ina] {
        groups::add_member(&mut conn, network, member)
            .await
            .unwrap();
    }
    let file = unitrack::processes::ProcessFile::parse(OUTAGE).unwrap();
    let process = unitrack::processes::upsert(&mut conn, &file, t0())
        .await
        .unwrap();
    assert_eq!(
        unitrack::tickets::publish_process(&mut conn, process, &[], None, t0())
            .await
            .unwrap(),
        Ok(1)
    );
    // Ned wants state changes by mail only; Ina has left.
    let mut prefs = notifications::preferences(&mut conn, ned).await.unwrap();
    for p in &mut prefs {
        if p.kind == Kind::StateChange {
            p.in_app = false;
        }
    }
    notifications::save_preferences(&mut conn, ned, &prefs)
        .await
        .unwrap();
    sqlx::query("update users set active = false where id = $1")
        .bind(ina)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    app.login("rita@example.com").await;
    app.post_form(
        "/tickets",
        &[
            ("process", "outage"),
            ("project_id", &hd),
            ("title", "Wi-Fi down on floor 3"),
            ("description", ""),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    sqlx::query("update tickets set assignee_group_id = $1")
        .bind(network)
        .execute(&app.pool)
        .await
        .unwrap();
    let version = || async {
        let v: i32 = sqlx::query_scalar("select version from tickets")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        v.to_string()
    };
    let mut lars_b = app.other_browser();
    lars_b.login("lars@example.com").await;
    lars_b
        .post_form(
            "/tickets/HD-1/transitions/start",
            &[("version", &version().await)],
        )
        .await
        .assert_redirect_to("/tickets/HD-1");
    // The group hears of this step because the process says so; the requester, who hears of
    // every move anyway, once; never the actor, nor someone inactive or who chose otherwise.
    assert_eq!(told_of_last_event(&app).await, BTreeSet::from([rita, nina]));
    assert_eq!(
        app.count(
            "select count(*) from notifications where event_id = (select max(id) from ticket_events)"
        )
        .await,
        2
    );
    let mailed: BTreeSet<UserId> = sqlx::query_scalar(
        "select user_id from mail_out where event_id = (select max(id) from ticket_events)",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(
        mailed,
        BTreeSet::from([rita, nina, ned]),
        "mail as each chose"
    );
    let text: String = sqlx::query_scalar(
        "select text from notifications where user_id = $1 order by id desc limit 1",
    )
    .bind(nina)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(text, "took “Start work”: New → Working");

    // A step that names nobody tells the group nothing.
    lars_b
        .post_form(
            "/tickets/HD-1/transitions/close",
            &[("version", &version().await)],
        )
        .await
        .assert_redirect_to("/tickets/HD-1");
    assert_eq!(told_of_last_event(&app).await, BTreeSet::from([rita]));
    app.expect_queued("mail_send", 4).await;
}
