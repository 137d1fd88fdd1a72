//! The world tests start from, one for all: a help desk like the demo's, with named people a
//! test can refer to by name. Projects HD (the service desk) and ERP; requesters Rita, Walt
//! and Olga; agents Alice, Bob and Nora (Agent L1 everywhere) and Hank (a requester who is an
//! Agent L1 in HD only). Display names are the first names; addresses `name@example.com`;
//! everybody's password is `PASSWORD`. Nobody is signed in and no ticket exists: a test files
//! what it needs with `file`, and extends the world with the builder methods below rather than
//! with a private copy of it.

use jiff::Timestamp;
use unitrack::core::ids::{ProjectId, TicketId, UserId};
use unitrack::people::roles::{self, Holder};

use super::{NowTs, TestApp, TestBrowser};

pub struct Scenario {
    pub app: TestApp,
    pub hd: ProjectId,
    pub erp: ProjectId,
    pub rita: UserId,
    pub walt: UserId,
    pub olga: UserId,
    pub alice: UserId,
    pub bob: UserId,
    pub nora: UserId,
    pub hank: UserId,
}

impl Scenario {
    pub async fn new() -> Self {
        let app = TestApp::new().await;
        let rita = app.create_user("rita@example.com", "Rita", false).await;
        let alice = app
            .create_user_with_role("alice@example.com", "Alice", "Agent L1")
            .await;
        let bob = app
            .create_user_with_role("bob@example.com", "Bob", "Agent L1")
            .await;
        let walt = app.create_user("walt@example.com", "Walt", false).await;
        let nora = app
            .create_user_with_role("nora@example.com", "Nora", "Agent L1")
            .await;
        let olga = app.create_user("olga@example.com", "Olga", false).await;
        let hank = app.create_user("hank@example.com", "Hank", false).await;
        let hd = app.create_project("HD", "Help desk").await;
        let erp = app.create_project("ERP", "ERP").await;
        let scenario = Self {
            app,
            hd,
            erp,
            rita,
            walt,
            olga,
            alice,
            bob,
            nora,
            hank,
        };
        scenario.grant(hank, "Agent L1", Some(hd)).await;
        scenario
    }

    /// Gives `user` the role `role`, in `project` or everywhere.
    pub async fn grant(&self, user: UserId, role: &str, project: Option<ProjectId>) {
        let mut conn = self.app.pool.acquire().await.unwrap();
        let role = roles::find_by_name(&mut conn, role).await.unwrap().unwrap();
        roles::grant(&mut conn, role.id, Holder::User(user), project, self.now())
            .await
            .unwrap();
    }

    /// `who` (an address) files a ticket in `project` through the form, in a browser of their
    /// own; answers its key (`HD-1`).
    pub async fn file(&self, who: &str, project: ProjectId, title: &str) -> String {
        let mut browser = self.app.other_browser();
        browser.login(who).await;
        file(&mut browser, &project.to_string(), title).await
    }

    /// The id of the ticket with this key.
    pub async fn ticket(&self, key: &str) -> TicketId {
        let (project, number) = key.split_once('-').unwrap();
        sqlx::query_scalar(
            "select t.id from tickets t join projects p on p.id = t.project_id
             where p.key = $1 and t.number = $2",
        )
        .bind(project)
        .bind(number.parse::<i64>().unwrap())
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    /// Makes `user` the assignee of `ticket`, as a fact (no event, no notification).
    pub async fn assign(&self, ticket: TicketId, user: UserId) {
        sqlx::query("update tickets set assignee_id = $2 where id = $1")
            .bind(ticket)
            .bind(user)
            .execute(&self.app.pool)
            .await
            .unwrap();
    }

    /// Adds `user` to the watchers of `ticket`, as a fact (no event, no notification).
    pub async fn watch(&self, ticket: TicketId, user: UserId) {
        watch(&self.app, ticket, user).await;
    }

    fn now(&self) -> Timestamp {
        self.app.clock.now_ts()
    }
}

/// Adds `user` to the watchers of `ticket`, as a fact (for tests holding only the app).
pub async fn watch(app: &TestApp, ticket: TicketId, user: UserId) {
    sqlx::query("insert into ticket_watchers (ticket_id, user_id) values ($1, $2)")
        .bind(ticket)
        .bind(user)
        .execute(&app.pool)
        .await
        .unwrap();
}

/// Files a ticket through the form as the browser's signed-in user; answers its key.
pub async fn file(browser: &mut TestBrowser, project: &str, title: &str) -> String {
    let response = browser
        .post_form(
            "/tickets",
            &[
                ("project_id", project),
                ("title", title),
                ("description", ""),
            ],
        )
        .await;
    assert!(response.status.is_redirection(), "{}", response.body);
    response
        .location()
        .trim_start_matches("/tickets/")
        .to_owned()
}
