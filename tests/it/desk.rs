//! The help desk at work: triage, SLA clocks stored and replayed, the breach and auto-close
//! sweeps, reopen window, queues through the policy, bulk actions all-or-nothing.

use axum::http::StatusCode;
use jiff::SignedDuration;
use unitrack::core::ids::{TicketId, UserId};
use unitrack::tickets::{sla, sweeps};

use crate::common::{NowTs, TestApp};

struct Desk {
    app: TestApp,
    project: String,
    l1: String,
}

/// HD with a 24-hour calendar and a P3 policy (first response 1 h, resolution 4 h); an L1
/// group (escalating to L2) with agent Alice; requester Rita.
async fn desk() -> Desk {
    let app = TestApp::new().await;
    let project = app.create_project("HD", "Help desk").await.to_string();
    app.create_user("rita@example.com", "Rita", false).await;
    let alice = app
        .create_user_with_role("alice@example.com", "Alice", "Agent L1")
        .await;
    let sql = [
        "insert into groups (id, name, created_at) values ('00000000-0000-0000-0000-0000000000b2', 'L2', now())",
        "insert into groups (id, name, escalates_to, created_at) values ('00000000-0000-0000-0000-0000000000b1', 'L1', '00000000-0000-0000-0000-0000000000b2', now())",
        "insert into sla_calendars (id, name, time_zone, week, created_at) values ('00000000-0000-0000-0000-0000000000c1', 'Always', 'UTC', '[\"24h\",\"24h\",\"24h\",\"24h\",\"24h\",\"24h\",\"24h\"]', now())",
        "insert into sla_policies (id, priority, calendar_id, first_response_minutes, resolution_minutes, created_at) values (gen_random_uuid(), 3, '00000000-0000-0000-0000-0000000000c1', 60, 240, now())",
        "insert into sla_policies (id, priority, calendar_id, first_response_minutes, resolution_minutes, created_at) values (gen_random_uuid(), 1, '00000000-0000-0000-0000-0000000000c1', 15, 60, now())",
    ];
    for s in sql {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s))
            .execute(&app.pool)
            .await
            .unwrap();
    }
    sqlx::query("insert into group_members (group_id, user_id) values ('00000000-0000-0000-0000-0000000000b1', $1)")
        .bind(alice)
        .execute(&app.pool)
        .await
        .unwrap();
    // New tickets in HD go to L1.
    sqlx::query("insert into routing_rules (id, project_id, position, group_id, created_at) values (gen_random_uuid(), $1::uuid, 1, '00000000-0000-0000-0000-0000000000b1', now())")
        .bind(&project)
        .execute(&app.pool)
        .await
        .unwrap();
    Desk {
        app,
        project,
        l1: "00000000-0000-0000-0000-0000000000b1".into(),
    }
}

impl Desk {
    async fn file(&mut self, title: &str) {
        self.app.login("rita@example.com").await;
        let project = self.project.clone();
        self.app
            .post_form(
                "/tickets",
                &[
                    ("project_id", &project),
                    ("title", title),
                    ("description", ""),
                ],
            )
            .await
            .assert_status(StatusCode::SEE_OTHER);
    }

    /// The ticket's version, as its page's forms send it.
    async fn version(&self, number: i64) -> String {
        let v: i32 = sqlx::query_scalar("select version from tickets where number = $1")
            .bind(number)
            .fetch_one(&self.app.pool)
            .await
            .unwrap();
        v.to_string()
    }

    async fn id(&self, number: i64) -> TicketId {
        sqlx::query_scalar("select id from tickets where number = $1")
            .bind(number)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    /// Project FIN, with Felix: a requester everywhere, an Agent L1 in FIN only.
    async fn finance_agent(&self) -> unitrack::core::ids::ProjectId {
        let fin = self.app.create_project("FIN", "Finance").await;
        self.app
            .create_user_with_role("felix@example.com", "Felix", "Requester")
            .await;
        sqlx::query("insert into memberships (id, role_id, user_id, project_id, created_at) select gen_random_uuid(), r.id, u.id, $1, now() from users u, roles r where u.email = 'felix@example.com' and r.name = 'Agent L1'")
            .bind(fin)
            .execute(&self.app.pool)
            .await
            .unwrap();
        fin
    }

    /// A new Agent L1 who is a member of the L1 group.
    async fn l1_agent(&self, email: &str, name: &str) -> UserId {
        let agent = self
            .app
            .create_user_with_role(email, name, "Agent L1")
            .await;
        sqlx::query("insert into group_members (group_id, user_id) values ($1::uuid, $2)")
            .bind(&self.l1)
            .bind(agent)
            .execute(&self.app.pool)
            .await
            .unwrap();
        agent
    }

    /// The stored SLA columns equal a replay of the events alone.
    async fn assert_replay(&self, number: i64) -> sla::Replay {
        let id = self.id(number).await;
        let mut conn = self.app.pool.acquire().await.unwrap();
        let stored = sla::stored(&mut conn, id).await.unwrap();
        let replay = sla::replay(&mut conn, id).await.unwrap();
        assert_eq!(
            stored, replay.projection,
            "stored SLA must equal the replay"
        );
        replay
    }
}

#[tokio::test]
async fn sla_clocks_follow_the_ticket_and_always_equal_their_replay() {
    let mut d = desk().await;
    let t0 = d.app.clock.now_ts();
    d.file("VPN drops every hour").await;
    let r = d.assert_replay(1).await;
    assert_eq!(
        r.projection.first_response_due,
        Some(t0 + SignedDuration::from_hours(1))
    );
    assert_eq!(r.projection.due, r.projection.first_response_due);
    assert_eq!(
        d.app
            .count("select count(*) from tickets where assignee_group_id is not null")
            .await,
        1,
        "routed to L1"
    );

    // Alice takes it after 10 minutes (pickup) and replies (first response).
    d.app.clock.advance(SignedDuration::from_mins(10));
    d.app.login("alice@example.com").await;
    d.app
        .get("/tickets/HD-1")
        .await
        .assert_contains("First response due")
        .assert_contains("on time");
    d.app
        .post_form("/tickets/HD-1/take", &[])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    d.app
        .post_form(
            "/tickets/HD-1/comments",
            &[("body", "Which client version?")],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let r = d.assert_replay(1).await;
    assert_eq!(
        r.projection.first_response_due, None,
        "first response given"
    );
    assert_eq!(
        r.first_response_at,
        Some(t0 + SignedDuration::from_mins(10))
    );
    assert_eq!(
        d.app
            .count("select count(*) from tickets where picked_up_at is not null")
            .await,
        1
    );

    // Waiting for the requester pauses the resolution clock for two hours.
    d.app
        .post_form(
            "/tickets/HD-1/transitions/ask_requester",
            &[
                ("comment", "Please send the log."),
                ("version", &d.version(1).await),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let r = d.assert_replay(1).await;
    assert!(r.projection.paused);
    assert_eq!(r.projection.due, None);
    d.app.clock.advance(SignedDuration::from_hours(2));
    d.app.login("rita@example.com").await;
    d.app
        .post_form(
            "/tickets/HD-1/transitions/answer",
            &[("comment", "Attached."), ("version", &d.version(1).await)],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let r = d.assert_replay(1).await;
    // 10 minutes used of 4 hours before the pause: due 3 h 50 min after the answer.
    assert_eq!(
        r.projection.resolution_due,
        Some(t0 + SignedDuration::from_mins(130 + 230))
    );

    // P1 has one hour in all: 10 minutes used, 50 left.
    d.app.login("alice@example.com").await;
    d.app
        .post_form(
            "/tickets/HD-1/priority",
            &[("impact", "1"), ("urgency", "1")],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let r = d.assert_replay(1).await;
    assert_eq!(
        r.projection.resolution_due,
        Some(t0 + SignedDuration::from_mins(130 + 50))
    );

    // The sweep records the breach once, as an event, and the replay agrees.
    d.app.clock.advance(SignedDuration::from_hours(1));
    let now = d.app.clock.now_ts();
    assert_eq!(sweeps::sweep(&d.app.pool, now).await.unwrap(), (1, 0));
    assert_eq!(sweeps::sweep(&d.app.pool, now).await.unwrap(), (0, 0));
    let r = d.assert_replay(1).await;
    assert!(r.projection.resolution_breached_at.is_some());
    d.app.login("alice@example.com").await;
    d.app
        .get("/tickets/HD-1")
        .await
        .assert_contains("SLA breached: resolution")
        .assert_contains("breached");
    // Requesters never see the SLA internals.
    d.app.login("rita@example.com").await;
    d.app
        .get("/tickets/HD-1")
        .await
        .assert_not_contains("SLA breached")
        .assert_not_contains("Triage");
    d.app.expect_queued("mail_send", 5).await;
}

#[tokio::test]
async fn escalation_needs_a_reason_and_a_next_tier() {
    let mut d = desk().await;
    d.file("Cannot book travel").await;
    d.app.login("alice@example.com").await;
    d.app
        .post_form("/tickets/HD-1/escalate", &[("reason", "  ")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Say why it needs the next tier.");
    d.app
        .post_form("/tickets/HD-1/escalate", &[("reason", "Needs SAP rights")])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    d.app
        .get("/tickets/HD-1")
        .await
        .assert_contains("escalated it from L1 to L2: Needs SAP rights");
    // L2 has no next tier: the reason is kept with the message.
    d.app
        .post_form("/tickets/HD-1/escalate", &[("reason", "Still stuck")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("L2 has no next tier")
        .assert_contains("Still stuck");
    // An assignee must be in the group.
    let l1 = d.l1.clone();
    let rita: UserId = sqlx::query_scalar("select id from users where email = 'rita@example.com'")
        .fetch_one(&d.app.pool)
        .await
        .unwrap();
    d.app
        .post_form(
            "/tickets/HD-1/assign",
            &[("group_id", &l1), ("assignee_id", &rita.to_string())],
        )
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Rita is not in L1");
    d.app
        .post_form("/tickets/HD-1/assign", &[("group_id", "not-an-id")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Choose from the list.");
    // Bob, in no group, takes it: it stays in L2's queue, with him as the assignee.
    d.app
        .create_user_with_role("bob@example.com", "Bob", "Agent L2")
        .await;
    d.app.login("bob@example.com").await;
    d.app
        .post_form("/tickets/HD-1/take", &[])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(
        d.app
            .count("select count(*) from tickets t join groups g on g.id = t.assignee_group_id join users u on u.id = t.assignee_id where g.name = 'L2' and u.email = 'bob@example.com' and t.picked_up_at is not null")
            .await,
        1
    );
}

#[tokio::test]
async fn resolved_tickets_close_by_themselves_and_reopen_only_within_the_window() {
    let mut d = desk().await;
    d.file("Outlook signature").await;
    d.file("Teams camera").await;
    d.app.login("alice@example.com").await;
    for (number, key) in [(1, "HD-1"), (2, "HD-2")] {
        d.app
            .post_form(
                &format!("/tickets/{key}/transitions/resolve"),
                &[("comment", "Done."), ("version", &d.version(number).await)],
            )
            .await
            .assert_status(StatusCode::SEE_OTHER);
    }
    // Friday → 5 business days later; before that nothing closes.
    d.app.clock.advance(SignedDuration::from_hours(24 * 6));
    let now = d.app.clock.now_ts();
    assert_eq!(sweeps::auto_close(&d.app.pool, now).await.unwrap(), 0);
    d.app.clock.advance(SignedDuration::from_hours(24 * 2));
    // HD-2's requester still reopens within 14 days (resolved 8 days ago).
    d.app.login("rita@example.com").await;
    d.app
        .post_form(
            "/tickets/HD-2/transitions/reopen",
            &[
                ("comment", "Camera is black again."),
                ("version", &d.version(2).await),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let now = d.app.clock.now_ts();
    assert_eq!(sweeps::auto_close(&d.app.pool, now).await.unwrap(), 1);
    assert_eq!(
        d.app
            .count("select count(*) from tickets where state = 'closed' and number = 1")
            .await,
        1
    );
    d.app
        .get("/tickets/HD-1")
        .await
        .assert_contains("Closed automatically after 5 business days");
    // Resolve HD-2 again and wait past the window: reopening is refused.
    d.app.login("alice@example.com").await;
    d.app
        .post_form(
            "/tickets/HD-2/transitions/resolve",
            &[
                ("comment", "Driver updated."),
                ("version", &d.version(2).await),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    sqlx::query("update tickets set auto_close_at = null where number = 2")
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.app.clock.advance(SignedDuration::from_hours(24 * 15));
    d.app.login("rita@example.com").await;
    d.app
        .post_form(
            "/tickets/HD-2/transitions/reopen",
            &[("comment", "Again."), ("version", &d.version(2).await)],
        )
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("can no longer be reopened")
        .assert_contains("/tickets/new?follow_up=HD-2");
    d.assert_replay(2).await;
    // The follow-up is a new ticket, linked to the old one.
    let form = d.app.get("/tickets/new?follow_up=HD-2").await;
    form.assert_contains("Follow-up to HD-2: Teams camera");
    let earlier = d.id(2).await.to_string();
    let project = d.project.clone();
    d.app
        .post_form(
            "/tickets",
            &[
                ("project_id", &project),
                ("title", "Follow-up to HD-2: Teams camera"),
                ("description", ""),
                ("follow_up", &earlier),
            ],
        )
        .await
        .assert_redirect_to("/tickets/HD-3");
    assert_eq!(
        d.app
            .count("select count(*) from ticket_links where kind = 'relates_to'")
            .await,
        1
    );
    d.app.expect_queued("mail_send", 7).await;
}

#[tokio::test]
async fn queues_filter_through_the_policy_and_refuse_bad_filters() {
    let mut d = desk().await;
    d.file("Mine to see").await;
    // Alice's Agent L1 role is global, so Felix, an agent in Finance only, is the outsider.
    d.finance_agent().await;
    d.app.login("felix@example.com").await;
    d.app
        .get("/queues/list?category=active")
        .await
        .assert_status(StatusCode::OK)
        .assert_not_contains("Mine to see")
        .assert_contains("0 tickets");
    d.app.login("alice@example.com").await;
    d.app
        .get("/queues/list?category=active&sort=sla")
        .await
        .assert_contains("Mine to see")
        .assert_contains("1 tickets");
    d.app
        .get("/queues/list?category=sideways&priority=9&created_from=yesterday")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("Use a date like 2026-11-30.");
    d.app
        .get("/queues/list?after=garbage")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("That page link is broken");
    // Saved as a personal queue, it shows with its count.
    d.app
        .post_form(
            "/queues",
            &[
                ("name", "L1 open"),
                ("group", "mine"),
                ("category", "active"),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    d.app.get("/queues").await.assert_contains("L1 open");
    d.app
        .get("/desk")
        .await
        .assert_contains("Unassigned in my groups")
        .assert_contains("Mine to see");
}

#[tokio::test]
async fn the_filter_lists_follow_reference_edits_made_anywhere() {
    let mut d = desk().await;
    d.app.login("alice@example.com").await;
    d.app
        .get("/queues/list?category=active")
        .await
        .assert_contains("HD Help desk")
        .assert_contains(">L1<");
    // Edits as another instance would make them: nothing in this process is told.
    sqlx::query("update projects set name = 'Service desk' where key = 'HD'")
        .execute(&d.app.pool)
        .await
        .unwrap();
    sqlx::query("insert into groups (id, name, created_at) values (gen_random_uuid(), 'Night shift', now())")
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.app
        .get("/queues/list?category=active")
        .await
        .assert_contains("HD Service desk")
        .assert_not_contains("HD Help desk")
        .assert_contains("Night shift");
    // A new ticket number changes `projects` too, but not the lists' version.
    let before = d.app.count("select version from reference_version").await;
    d.file("Numbered").await;
    assert_eq!(
        d.app.count("select version from reference_version").await,
        before
    );
}

/// A routed ticket is written with its group; the history records the filing and then the
/// routing, and each member of the group hears of it once.
#[tokio::test]
async fn a_routed_ticket_is_filed_into_its_group_and_announced_once() {
    let mut d = desk().await;
    d.l1_agent("bob@example.com", "Bob").await;
    d.file("Printer on fire").await;
    assert_eq!(
        d.app
            .count("select count(*) from tickets t join groups g on g.id = t.assignee_group_id where t.number = 1 and g.name = 'L1'")
            .await,
        1
    );
    let kinds: Vec<String> = sqlx::query_scalar(
        "select e.kind from ticket_events e join tickets t on t.id = e.ticket_id where t.number = 1 order by e.id",
    )
    .fetch_all(&d.app.pool)
    .await
    .unwrap();
    assert_eq!(kinds, ["created", "group_assigned"]);
    for agent in ["alice@example.com", "bob@example.com"] {
        let texts: Vec<String> = sqlx::query_scalar(
            "select n.text from notifications n join users u on u.id = n.user_id where u.email = $1 and n.kind = 'new_in_group'",
        )
        .bind(agent)
        .fetch_all(&d.app.pool)
        .await
        .unwrap();
        assert_eq!(texts, ["filed a new ticket"], "{agent}");
    }
    d.app.login("alice@example.com").await;
    d.app
        .get("/tickets/HD-1")
        .await
        .assert_contains("assigned it to L1");
}

/// The triage panel's members and next tier come from the per-instance reference cache: a
/// membership, a rename, a deactivation or a new next tier made outside this process shows
/// on the next view.
#[tokio::test]
async fn the_assignee_list_follows_member_edits_made_anywhere() {
    let mut d = desk().await;
    d.file("Printer").await;
    d.app.login("alice@example.com").await;
    d.app
        .get("/tickets/HD-1")
        .await
        .assert_contains(">Alice</option>")
        .assert_contains("Escalate to L2")
        .assert_not_contains("Bob");
    let bob = d.l1_agent("bob@example.com", "Bob").await;
    sqlx::query("insert into groups (id, name, created_at) values ('00000000-0000-0000-0000-0000000000b3', 'L3', now())")
        .execute(&d.app.pool)
        .await
        .unwrap();
    sqlx::query("update groups set escalates_to = '00000000-0000-0000-0000-0000000000b3' where id = $1::uuid")
        .bind(&d.l1)
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.app
        .get("/tickets/HD-1")
        .await
        .assert_contains(&format!("<option value=\"{bob}\">Bob</option>"))
        .assert_contains("Escalate to L3");
    sqlx::query("update users set display_name = 'Robert' where id = $1")
        .bind(bob)
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.app
        .get("/tickets/HD-1")
        .await
        .assert_contains(">Robert</option>")
        .assert_not_contains(">Bob</option>");
    sqlx::query("update users set active = false where id = $1")
        .bind(bob)
        .execute(&d.app.pool)
        .await
        .unwrap();
    sqlx::query("delete from group_members where user_id = (select id from users where email = 'alice@example.com')")
        .execute(&d.app.pool)
        .await
        .unwrap();
    let page = d.app.get("/tickets/HD-1").await;
    let page = page.assert_not_contains(">Robert</option>");
    page.assert_not_contains(">Alice</option>");
}

#[tokio::test]
async fn keyset_pages_cover_every_ticket_once() {
    let mut d = desk().await;
    for i in 0..30 {
        d.file(&format!("Ticket {i}")).await;
        d.app.clock.advance(SignedDuration::from_mins(1));
    }
    // Three without a due: the SLA order puts them last, and page 2 crosses over to them.
    sqlx::query("update tickets set sla_due = null where number in (3, 10, 17)")
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.app.login("alice@example.com").await;
    // Only the chosen columns show.
    d.app
        .get("/queues/list?col=key&col=priority")
        .await
        .assert_contains(">Priority</th>")
        .assert_not_contains(">Title</th>");
    for sort in ["sla", "priority", "updated", "created"] {
        let mut seen = std::collections::BTreeSet::new();
        let mut path = format!("/queues/list?sort={sort}&col=key");
        for _ in 0..5 {
            let page = d.app.get(&path).await;
            page.assert_status(StatusCode::OK);
            let body = page.body.clone();
            for key in body.split("/tickets/HD-").skip(1) {
                let n: String = key.chars().take_while(char::is_ascii_digit).collect();
                seen.insert(n);
            }
            match body
                .split("rel=\"next\"")
                .next()
                .and_then(|b| b.rsplit("href=\"").next())
            {
                Some(link) if body.contains("rel=\"next\"") => {
                    path = link
                        .split('"')
                        .next()
                        .unwrap()
                        .replace("&amp;", "&")
                        .replace("&#38;", "&")
                        .replace("&#x2f;", "/")
                        .replace("&#x2F;", "/");
                }
                _ => break,
            }
        }
        assert_eq!(seen.len(), 30, "sort {sort}, last page {path}");
    }
}

#[tokio::test]
async fn a_bulk_action_changes_all_or_nothing() {
    let mut d = desk().await;
    d.file("One").await;
    d.file("Two").await;
    let (one, two) = (d.id(1).await, d.id(2).await);
    // Felix is an agent in Finance only: with an HD ticket in the selection, nothing changes.
    let fin = d.finance_agent().await;
    sqlx::query("update tickets set project_id = $1 where number = 1")
        .bind(fin)
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.app.login("felix@example.com").await;
    d.app
        .post_form(
            "/queues/bulk",
            &[
                ("ticket", &one.to_string()),
                ("ticket", &two.to_string()),
                ("action", "priority"),
                ("priority", "1"),
                ("back", "/queues/list"),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(
        d.app
            .count("select count(*) from tickets where priority = 1")
            .await,
        0,
        "the allowed FIN ticket did not change either"
    );
    d.app
        .get("/queues/list")
        .await
        .assert_contains("Nothing was changed.")
        .assert_contains("a ticket you cannot see");
    sqlx::query("update tickets set project_id = $1::uuid where number = 1")
        .bind(&d.project)
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.app.login("alice@example.com").await;
    d.app
        .post_form(
            "/queues/bulk",
            &[
                ("ticket", &one.to_string()),
                ("ticket", &two.to_string()),
                ("action", "priority"),
                ("priority", "2"),
                ("back", "/queues/list"),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(
        d.app
            .count("select count(*) from tickets where priority = 2")
            .await,
        2
    );
    assert_eq!(
        d.app
            .count("select count(*) from ticket_events where kind = 'priority_changed'")
            .await,
        2,
        "an event per ticket"
    );
    // HD-2 is resolved first; "start work" then fails on it, so HD-1 must not move either.
    d.app
        .post_form(
            "/tickets/HD-2/transitions/resolve",
            &[("comment", "Done."), ("version", &d.version(2).await)],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let response = d
        .app
        .post_form(
            "/queues/bulk",
            &[
                ("ticket", &one.to_string()),
                ("ticket", &two.to_string()),
                ("action", "transition"),
                ("transition", "take_up"),
                ("back", "/queues/list"),
            ],
        )
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(
        d.app
            .count("select count(*) from tickets where state = 'in_progress'")
            .await,
        0,
        "nothing changed"
    );
    d.app
        .get("/queues/list")
        .await
        .assert_contains("Nothing was changed.")
        .assert_contains("HD-2");
    d.app.expect_queued("mail_send", 2).await;
}

#[tokio::test]
async fn bulk_watchers_and_internal_search_stay_within_the_policy() {
    let mut d = desk().await;
    d.file("Laptop zebra sticker").await;
    let one = d.id(1).await;
    // An internal note in HD that only HD's agents may find.
    d.app.login("alice@example.com").await;
    d.app
        .post_form(
            "/tickets/HD-1/comments",
            &[("body", "okapi serial number"), ("visibility", "internal")],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    d.app.get("/search?q=okapi").await.assert_contains("HD-1");
    d.app
        .post_form(
            "/queues/bulk",
            &[
                ("ticket", &one.to_string()),
                ("action", "watch"),
                ("watcher", "nobody@example.com"),
                ("back", "/queues/list"),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(d.app.count("select count(*) from ticket_watchers").await, 0);
    d.app
        .post_form(
            "/queues/bulk",
            &[
                ("ticket", &one.to_string()),
                ("action", "watch"),
                ("watcher", "RITA@example.com"),
                ("back", "/queues/list"),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(d.app.count("select count(*) from ticket_watchers").await, 1);

    // Finance's agent who filed HD-1's twin as a requester may not find HD's internal notes.
    d.finance_agent().await;
    sqlx::query("update tickets set requester_id = (select id from users where email = 'felix@example.com')")
        .execute(&d.app.pool)
        .await
        .unwrap();
    d.app.login("felix@example.com").await;
    d.app.get("/search?q=zebra").await.assert_contains("HD-1");
    d.app
        .get("/search?q=okapi")
        .await
        .assert_not_contains("HD-1");
}

#[tokio::test]
async fn colliding_transactions_are_a_conflict_not_a_server_error() {
    let mut d = desk().await;
    d.file("A").await;
    d.file("B").await;
    let (a, b) = (d.id(1).await, d.id(2).await);
    let lock = "select 1 from tickets where id = $1 for update";
    let mut t1 = d.app.pool.begin().await.unwrap();
    let mut t2 = d.app.pool.begin().await.unwrap();
    sqlx::query(lock).bind(a).execute(&mut *t1).await.unwrap();
    sqlx::query(lock).bind(b).execute(&mut *t2).await.unwrap();
    // Each waits for the other's row: PostgreSQL ends one of them with a deadlock.
    let (r1, r2) = tokio::join!(
        sqlx::query(lock).bind(b).execute(&mut *t1),
        sqlx::query(lock).bind(a).execute(&mut *t2),
    );
    let failed = [r1.err(), r2.err()]
        .into_iter()
        .flatten()
        .map(unitrack::core::Error::from)
        .collect::<Vec<_>>();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].is_collision());
    let response = axum::response::IntoResponse::into_response(failed.into_iter().next().unwrap());
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

/// A count past the cap is remembered per person for a while (it shows "1000+" either way);
/// smaller counts are exact on every view, and a first page that holds the whole list is its
/// own count.
#[tokio::test]
async fn counts_past_the_cap_are_remembered_per_person_and_smaller_ones_are_exact() {
    let mut d = desk().await;
    d.file("The first of many").await;
    d.l1_agent("bob@example.com", "Bob").await;
    let queue = "/queues/list?group=mine&category=active&sort=sla";
    d.app.login("alice@example.com").await;
    d.app.get(queue).await.assert_contains("1 tickets");
    // 1,000 copies of it: 1,001 tickets in L1's queue.
    sqlx::raw_sql(
        "do $$
         declare cols text; sel text;
         begin
             select string_agg(quote_ident(column_name), ', ' order by ordinal_position),
                    string_agg(case column_name when 'id' then 'gen_random_uuid()'
                                                when 'number' then 't.number + g'
                                                else 't.' || quote_ident(column_name) end,
                               ', ' order by ordinal_position)
               into cols, sel
               from information_schema.columns
              where table_schema = 'public' and table_name = 'tickets' and is_generated = 'NEVER';
             execute format('insert into tickets (%s) select %s from tickets t, generate_series(1, 1000) g',
                            cols, sel);
         end $$",
    )
    .execute(&d.app.pool)
    .await
    .unwrap();
    d.app.get(queue).await.assert_contains("1000+ tickets");
    sqlx::query("delete from tickets where number > 500")
        .execute(&d.app.pool)
        .await
        .unwrap();
    // Alice's count passed the cap moments ago: still "1000+". Bob counts afresh.
    d.app.get(queue).await.assert_contains("1000+ tickets");
    let mut bob = d.app.other_browser();
    bob.login("bob@example.com").await;
    bob.get(queue).await.assert_contains("500 tickets");
    // Another query of Alice's is counted afresh too.
    d.app
        .get("/queues/list?group=mine&category=active&sort=sla&assignee=unassigned")
        .await
        .assert_contains("500 tickets");
}
