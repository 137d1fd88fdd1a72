//! The demo organisation: what a first start loads, and that loading it again changes nothing.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use unitrack::demo;

use crate::common::{NowTs, TestApp};

/// Rows per table of the public schema.
async fn row_counts(app: &TestApp) -> BTreeMap<String, i64> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables
         where table_schema = 'public' and table_type = 'BASE TABLE' order by 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut counts = BTreeMap::new();
    for table in tables {
        let sql = format!("select count(*) from \"{table}\"");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        counts.insert(table, n);
    }
    counts
}

#[tokio::test]
async fn the_demo_has_both_projects_and_one_user_per_kind_and_loads_once() {
    let app = TestApp::new().await;
    assert!(demo::load(&app.pool, app.clock.now_ts()).await.unwrap());
    assert!(demo::is_loaded(&app.pool).await.unwrap());

    let projects: Vec<(String, String)> =
        sqlx::query_as("select key, kind::text from projects order by key")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        projects,
        [
            ("ERP".to_owned(), "development".to_owned()),
            ("HD".to_owned(), "service_desk".to_owned()),
        ]
    );

    // Each person's roles, held directly or through a group.
    let held: Vec<(String, Vec<String>)> = sqlx::query_as(
        "select u.email, coalesce(array_agg(distinct r.name order by r.name)
                                   filter (where r.name is not null), '{}')
         from users u
         left join (select user_id, role_id from memberships where user_id is not null
                    union all
                    select gm.user_id, m.role_id from memberships m
                    join group_members gm on gm.group_id = m.group_id) h on h.user_id = u.id
         left join roles r on r.id = h.role_id
         where u.password_hash is not null
         group by u.email order by u.email",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let held: BTreeMap<String, Vec<String>> = held.into_iter().collect();
    let expected = [
        ("requester@example.com", None),
        ("l1@example.com", Some("Agent L1")),
        ("l2@example.com", Some("Agent L2")),
        ("l3@example.com", Some("Agent L3")),
        ("developer@example.com", Some("Developer")),
        ("approver@example.com", Some("Change approver")),
        ("pm@example.com", Some("Project manager")),
        ("admin@example.com", Some("Admin")),
    ];
    assert_eq!(demo::USERS.len(), expected.len());
    assert_eq!(held.len(), expected.len(), "{held:?}");
    for (email, role) in expected {
        assert!(
            demo::USERS.iter().any(|(e, _, _)| *e == email),
            "{email} is not printed at start"
        );
        // Everyone at example.com is a requester (the domain rule); the rest come from groups.
        let mut roles = vec!["Requester".to_owned()];
        roles.extend(role.map(str::to_owned));
        roles.sort();
        assert_eq!(held.get(email), Some(&roles), "{email}");
    }

    // The demo password signs in, and the roles take effect.
    for (email, admin_page) in [
        ("admin@example.com", StatusCode::OK),
        ("requester@example.com", StatusCode::FORBIDDEN),
    ] {
        let mut browser = app.other_browser();
        browser.get("/login").await;
        browser
            .post_form("/login", &[("email", email), ("password", demo::PASSWORD)])
            .await
            .assert_redirect_to("/");
        browser.get("/admin/users").await.assert_status(admin_page);
    }

    let before = row_counts(&app).await;
    assert!(!demo::load(&app.pool, app.clock.now_ts()).await.unwrap());
    assert_eq!(row_counts(&app).await, before, "a second load changed rows");
}
