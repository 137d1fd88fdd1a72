//! Closing a ticket as a duplicate of another, and merging tickets: the link and the closing
//! transition, the merged timeline (source events marked, in time order, never copied), the
//! redirect, the watcher, and what is refused.

use axum::http::StatusCode;
use jiff::SignedDuration;
use unitrack::core::ids::TicketId;
use unitrack::tickets::{self, EventData};

use crate::common::scenario::{Scenario, file};
use crate::common::{TestApp, TestBrowser};

/// The scenario (see `common::scenario`): Rita files HD-1, Walt files HD-2 (a minute later,
/// with a comment after another minute), Olga files ERP-1. Alice is an agent everywhere; Hank
/// an agent in HD only. Signed in as Alice; Walt's browser stays signed in.
async fn desk() -> (Scenario, TestBrowser) {
    let mut s = Scenario::new().await;
    let app = &s.app;
    let (hd, erp) = (s.hd.to_string(), s.erp.to_string());
    let mut rita = app.other_browser();
    rita.login("rita@example.com").await;
    assert_eq!(file(&mut rita, &hd, "Printer broken").await, "HD-1");
    app.clock.advance(SignedDuration::from_mins(1));
    let mut walt = app.other_browser();
    walt.login("walt@example.com").await;
    assert_eq!(file(&mut walt, &hd, "Printer on floor 3").await, "HD-2");
    app.clock.advance(SignedDuration::from_mins(1));
    rita.post_form("/tickets/HD-1/comments", &[("body", "Still broken")])
        .await;
    app.clock.advance(SignedDuration::from_mins(1));
    walt.post_form("/tickets/HD-2/comments", &[("body", "Paper everywhere")])
        .await;
    let mut olga = app.other_browser();
    olga.login("olga@example.com").await;
    assert_eq!(file(&mut olga, &erp, "ERP is slow").await, "ERP-1");
    s.app.login("alice@example.com").await;
    (s, walt)
}

async fn id_of(app: &TestApp, number: i64, project: &str) -> TicketId {
    sqlx::query_scalar(
        "select t.id from tickets t join projects p on p.id = t.project_id
         where t.number = $1 and p.key = $2",
    )
    .bind(number)
    .bind(project)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn state_of(app: &TestApp, id: TicketId) -> (String, String, Option<TicketId>) {
    sqlx::query_as("select state, state_category, merged_into_id from tickets where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn closing_as_a_duplicate_links_the_tickets_closes_and_tells_the_requester() {
    let (Scenario { mut app, .. }, _) = desk().await;
    app.get("/tickets/HD-2")
        .await
        .assert_contains("Duplicate of / Merge into");
    app.post_form(
        "/tickets/HD-2/merge",
        &[
            ("action", "duplicate"),
            ("target", "hd-1"),
            ("comment", "We follow this on HD-1."),
        ],
    )
    .await
    .assert_redirect_to("/tickets/HD-2");
    let (hd1, hd2) = (id_of(&app, 1, "HD").await, id_of(&app, 2, "HD").await);
    assert_eq!(
        state_of(&app, hd2).await,
        ("closed".to_owned(), "closed".to_owned(), None)
    );
    let links: i64 = sqlx::query_scalar(
        "select count(*) from ticket_links where from_ticket = $1 and to_ticket = $2 and kind = 'duplicates'",
    )
    .bind(hd2)
    .bind(hd1)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(links, 1);
    app.get("/tickets/HD-2")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Closed as a duplicate.")
        .assert_contains("Closed as duplicate of HD-1")
        .assert_contains("We follow this on HD-1.")
        .assert_not_contains("Duplicate of / Merge into");
    app.get("/tickets/HD-1")
        .await
        .assert_contains("is duplicated by <a href=\"/tickets/HD-2\">");
    let walt_heard: Vec<String> = sqlx::query_scalar(
        "select n.text from notifications n join users u on u.id = n.user_id
         where u.email = 'walt@example.com' order by n.id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        walt_heard,
        vec![
            "replied: We follow this on HD-1.".to_owned(),
            "took “Closed as duplicate of HD-1”: New → Closed".to_owned(),
        ]
    );
    app.expect_queued("mail_send", 2).await;
}

#[tokio::test]
async fn duplicates_are_refused_for_closed_tickets_itself_and_tickets_one_cannot_see() {
    let (Scenario { mut app, .. }, mut walt) = desk().await;
    let refused = |body: &str, message: &str| {
        assert!(body.contains(message), "{message:?} not in {body}");
    };
    // An agent of HD only cannot see ERP-1: the answer is the same as for a missing ticket.
    let mut hank = app.other_browser();
    hank.login("hank@example.com").await;
    let response = hank
        .post_form(
            "/tickets/HD-1/merge",
            &[("action", "duplicate"), ("target", "ERP-1")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused(&response.body, "No such ticket: “ERP-1”.");
    assert!(response.body.contains("value=\"ERP-1\""), "input kept");
    for (target, message) in [
        ("HD-99", "No such ticket: “HD-99”."),
        ("nonsense", "No such ticket: “nonsense”."),
    ] {
        let response = app
            .post_form(
                "/tickets/HD-1/merge",
                &[("action", "duplicate"), ("target", target)],
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        refused(&response.body, message);
    }
    let response = app
        .post_form(
            "/tickets/HD-1/merge",
            &[("action", "duplicate"), ("target", "HD-1")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused(&response.body, "Choose another ticket than this one.");
    app.post_form(
        "/tickets/HD-2/merge",
        &[("action", "duplicate"), ("target", "HD-1")],
    )
    .await
    .assert_redirect_to("/tickets/HD-2");
    let response = app
        .post_form(
            "/tickets/HD-2/merge",
            &[("action", "duplicate"), ("target", "HD-1")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused(&response.body, "HD-2 is closed already.");
    // Requesters may neither edit nor move tickets.
    walt.post_form(
        "/tickets/HD-2/merge",
        &[("action", "duplicate"), ("target", "HD-1")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    walt.get("/tickets/HD-2")
        .await
        .assert_not_contains("Duplicate of / Merge into");
    assert_eq!(
        app.count("select count(*) from ticket_links").await,
        1,
        "nothing written by refusals"
    );
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn a_merged_ticket_lives_on_in_its_target_timeline_marked_and_in_time_order() {
    let (Scenario { mut app, alice, .. }, mut walt) = desk().await;
    let (hd1, hd2) = (id_of(&app, 1, "HD").await, id_of(&app, 2, "HD").await);
    let mut tx = app.pool.begin().await.unwrap();
    tickets::record(
        &mut tx,
        hd2,
        Some(alice),
        &EventData::Comment {
            body_md: "Toner supplier late".into(),
            body_html: "<p>Toner supplier late</p>".into(),
            public: false,
        },
        unitrack::core::time::Clock::now(&app.clock),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let events_before: i64 = app.count("select count(*) from ticket_events").await;
    app.post_form(
        "/tickets/HD-2/merge",
        &[("action", "merge"), ("target", "HD-1")],
    )
    .await
    .assert_redirect_to("/tickets/HD-2");
    assert_eq!(
        state_of(&app, hd2).await,
        ("closed".to_owned(), "closed".to_owned(), Some(hd1))
    );
    // Nothing copied: the closing transition and one `merged` event on each side.
    let added: i64 = app.count("select count(*) from ticket_events").await - events_before;
    assert_eq!(added, 3);
    assert_eq!(
        app.count("select count(*) from ticket_events where kind = 'merged'")
            .await,
        2
    );

    // The source's page sends those who may see the target there.
    app.get("/tickets/HD-2")
        .await
        .assert_redirect_to("/tickets/HD-1");
    let page = app.get("/tickets/HD-1").await;
    page.assert_status(StatusCode::OK)
        .assert_contains("Paper everywhere")
        .assert_contains("from HD-2")
        .assert_contains("Toner supplier late")
        .assert_contains("merged HD-2 into this");
    let at = |text: &str| page.body.find(text).unwrap();
    // HD-1 filed, HD-2 filed (a minute later), HD-1 comment, HD-2 comment.
    assert!(at("filed this Question") < at("Still broken"));
    assert!(at("Still broken") < at("Paper everywhere"));
    let filed: Vec<usize> = page
        .body
        .match_indices("filed this")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(filed.len(), 2);
    assert!(filed[1] < at("Still broken"), "HD-2's filing in its place");

    // Walt, HD-2's requester, now watches HD-1: he is sent there and sees the public part.
    walt.get("/tickets/HD-2")
        .await
        .assert_redirect_to("/tickets/HD-1");
    walt.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Paper everywhere")
        .assert_not_contains("Toner supplier late");
    // Without a way to see the target, the source is shown as it is.
    sqlx::query("delete from ticket_watchers")
        .execute(&app.pool)
        .await
        .unwrap();
    walt.get("/tickets/HD-1")
        .await
        .assert_status(StatusCode::NOT_FOUND);
    walt.get("/tickets/HD-2")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("merged this into HD-1");
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn merges_refuse_self_merged_targets_and_cycles_and_stay_one_level_deep() {
    let (Scenario { mut app, .. }, mut walt) = desk().await;
    assert_eq!(
        file(&mut walt, &hd(&app).await, "Third printer").await,
        "HD-3"
    );
    app.post_form(
        "/tickets/HD-2/merge",
        &[("action", "merge"), ("target", "HD-1")],
    )
    .await
    .assert_redirect_to("/tickets/HD-2");
    for (from, to, message) in [
        ("HD-1", "HD-1", "Choose another ticket than this one."),
        (
            "HD-1",
            "HD-2",
            "HD-2 was merged into this ticket; they cannot be merged both ways.",
        ),
        (
            "HD-3",
            "HD-2",
            "HD-2 was itself merged into another ticket: merge into that one.",
        ),
    ] {
        let response = app
            .post_form(
                &format!("/tickets/{from}/merge"),
                &[("action", "merge"), ("target", to)],
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{from} → {to}"
        );
        assert!(
            response.body.contains(message),
            "{message:?} not in {}",
            response.body
        );
    }
    // HD-1 (with HD-2 in it) merges into HD-3: HD-2 follows, so nothing points to a merged
    // ticket, and HD-3 shows both histories.
    app.post_form(
        "/tickets/HD-1/merge",
        &[("action", "merge"), ("target", "HD-3")],
    )
    .await
    .assert_redirect_to("/tickets/HD-1");
    let hd3 = id_of(&app, 3, "HD").await;
    for n in [1, 2] {
        let id = id_of(&app, n, "HD").await;
        assert_eq!(state_of(&app, id).await.2, Some(hd3), "HD-{n}");
    }
    assert_eq!(
        app.count(
            "select count(*) from tickets t join tickets m on m.id = t.merged_into_id
             where m.merged_into_id is not null"
        )
        .await,
        0
    );
    app.get("/tickets/HD-3")
        .await
        .assert_contains("from HD-1")
        .assert_contains("from HD-2")
        .assert_contains("Paper everywhere")
        .assert_contains("Still broken");
    app.expect_queued("mail_send", 3).await;
}

async fn hd(app: &TestApp) -> String {
    sqlx::query_scalar::<_, uuid::Uuid>("select id from projects where key = 'HD'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .to_string()
}
