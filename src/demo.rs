//! The demo organisation: sites and business units, groups that carry roles, two projects,
//! systems, and one user per kind of person. Loaded once on the first start of a private
//! database (or with `--demo`); loading again changes nothing.

use sqlx::{PgConnection, PgPool};

use crate::core::ids::RoleId;
use crate::core::{Error, Result};
use crate::people::roles::{self, Holder};
use crate::people::{domain_rules, groups, passwords, users};
use crate::projects::org::{self, UnitKind};
use crate::projects::systems::{self, Criticality, SystemInput};
use crate::projects::{self, Kind, ProjectInput};
use crate::sla::{calendars, policies};
use crate::tickets::canned;

/// The password of every demo account. Printed at start; the demo is for trying Unitrack.
pub const PASSWORD: &str = "demo-password";

/// (e-mail, name, what they do)
pub const USERS: &[(&str, &str, &str)] = &[
    (
        "requester@example.com",
        "Rita Requester",
        "requester (end user)",
    ),
    ("l1@example.com", "Lars Level-One", "help desk L1"),
    ("l2@example.com", "Lena Level-Two", "help desk L2"),
    (
        "l3@example.com",
        "Leo Level-Three",
        "help desk L3 (specialists, every project)",
    ),
    ("developer@example.com", "Dev Developer", "developer"),
    ("approver@example.com", "Ada Approver", "change approver"),
    ("pm@example.com", "Pia Projectmanager", "project manager"),
    ("admin@example.com", "Alex Admin", "admin"),
];

async fn role(conn: &mut PgConnection, name: &str) -> Result<RoleId> {
    roles::find_by_name(conn, name)
        .await?
        .map(|r| r.id)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("built-in role {name} is missing")))
}

async fn user(conn: &mut PgConnection, email: &str) -> Result<crate::core::ids::UserId> {
    users::find_by_email(conn, email)
        .await?
        .map(|u| u.id)
        .ok_or(Error::NotFound)
}

/// Loads the demo organisation unless it is there; true when it was loaded now.
pub async fn load(pool: &PgPool, now: jiff::Timestamp) -> Result<bool> {
    let mut tx = pool.begin().await?;
    // One loader at a time, even with several instances starting together.
    sqlx::query("select pg_advisory_xact_lock(hashtext('unitrack-demo'))")
        .execute(&mut *tx)
        .await?;
    let present: bool =
        sqlx::query_scalar("select exists (select 1 from projects where key = 'HD')")
            .fetch_one(&mut *tx)
            .await?;
    if present {
        return Ok(false);
    }
    let europe = org::create(&mut tx, None, "Europe", UnitKind::Region, now).await?;
    let germany = org::create(&mut tx, Some(europe), "Germany", UnitKind::Country, now).await?;
    let berlin = org::create(&mut tx, Some(germany), "Berlin", UnitKind::Site, now).await?;
    org::create(&mut tx, Some(germany), "Munich", UnitKind::Site, now).await?;
    org::create(
        &mut tx,
        Some(germany),
        "Finance",
        UnitKind::BusinessUnit,
        now,
    )
    .await?;
    let requester_role = role(&mut tx, "Requester").await?;
    // Everyone at example.com starts in Berlin as a requester: no step per new person.
    domain_rules::create(
        &mut tx,
        "example.com",
        Some(berlin),
        Some(requester_role),
        now,
    )
    .await?;

    let hash = passwords::hash(PASSWORD.to_owned()).await?;
    for (email, name, _) in USERS {
        if users::find_by_email(&mut tx, email).await?.is_none() {
            let new = users::NewUser {
                email: (*email).into(),
                display_name: (*name).into(),
                password_hash: Some(hash.clone()),
                ..users::NewUser::default()
            };
            users::create(&mut tx, &new, now).await?;
        }
    }
    let l1 = user(&mut tx, "l1@example.com").await?;
    let pm = user(&mut tx, "pm@example.com").await?;
    let hd = projects::create(
        &mut tx,
        "HD",
        &ProjectInput {
            point_of_contact_id: Some(l1),
            ..ProjectInput::new("Help desk", Kind::ServiceDesk)
        },
        now,
    )
    .await?;
    let erp = projects::create(
        &mut tx,
        "ERP",
        &ProjectInput {
            point_of_contact_id: Some(pm),
            ..ProjectInput::new("ERP development", Kind::Development)
        },
        now,
    )
    .await?;

    // Groups carry the roles: adding a person to a group is the only step.
    let teams = [
        (
            "Service Desk L1",
            "First line",
            "Agent L1",
            Some(hd),
            "l1@example.com",
        ),
        (
            "Service Desk L2",
            "Second line",
            "Agent L2",
            Some(hd),
            "l2@example.com",
        ),
        (
            "ERP Developers",
            "Builds ERP changes",
            "Developer",
            Some(erp),
            "developer@example.com",
        ),
        (
            "Change Advisory Board",
            "Approves changes",
            "Change approver",
            None,
            "approver@example.com",
        ),
        (
            "Project Office",
            "Runs rollouts",
            "Project manager",
            None,
            "pm@example.com",
        ),
        (
            "IT Administrators",
            "Runs Unitrack",
            "Admin",
            None,
            "admin@example.com",
        ),
        // Specialists take what L2 escalates, in every project.
        (
            "Service Desk L3",
            "Third line: specialists",
            "Agent L3",
            None,
            "l3@example.com",
        ),
    ];
    let mut group_ids = Vec::new();
    for (name, description, role_name, project, member) in teams {
        let group = groups::create(&mut tx, name, description, now).await?;
        let role_id = role(&mut tx, role_name).await?;
        roles::grant(&mut tx, role_id, Holder::Group(group), project, now).await?;
        let member = user(&mut tx, member).await?;
        groups::add_member(&mut tx, group, member).await?;
        group_ids.push(group);
    }
    // The change board approves change requests in both projects.
    if let Some(board) = group_ids.get(3) {
        sqlx::query("update projects set change_board_group_id = $1")
            .bind(board)
            .execute(&mut *tx)
            .await?;
    }
    let approver = user(&mut tx, "approver@example.com").await?;
    systems::create(
        &mut tx,
        &SystemInput {
            name: "SAP ERP".into(),
            owner_id: Some(approver),
            support_group_id: group_ids.get(2).copied(),
            criticality: Criticality::Critical,
        },
        now,
    )
    .await?;
    systems::create(
        &mut tx,
        &SystemInput {
            name: "E-mail".into(),
            owner_id: Some(l1),
            support_group_id: group_ids.get(1).copied(),
            criticality: Criticality::High,
        },
        now,
    )
    .await?;
    // Triage and SLA: L1 escalates to L2, L2 to L3; new help desk tickets go to L1; office
    // hours in Berlin with targets per priority.
    if let (Some(l1_group), Some(l2_group), Some(l3_group)) =
        (group_ids.first(), group_ids.get(1), group_ids.get(6))
    {
        groups::set_tier(&mut tx, *l1_group, Some(*l2_group)).await?;
        groups::set_tier(&mut tx, *l2_group, Some(*l3_group)).await?;
        crate::projects::triage::add(
            &mut tx,
            hd,
            &crate::projects::triage::RuleInput {
                process_id: None,
                system_id: None,
                site_id: None,
                group_id: *l1_group,
            },
            now,
        )
        .await?;
    }
    let office = calendars::create(
        &mut tx,
        &calendars::CalendarInput {
            name: "Berlin office hours".into(),
            time_zone: "Europe/Berlin".into(),
            week: [
                "08:00-18:00",
                "08:00-18:00",
                "08:00-18:00",
                "08:00-18:00",
                "08:00-17:00",
                "",
                "",
            ]
            .map(String::from),
            holidays: "2026-12-24 2026-12-25 2026-12-26 2026-12-31 2027-01-01".into(),
        },
        now,
    )
    .await?;
    crate::projects::triage::set_calendar(&mut tx, hd, Some(office)).await?;
    for (priority, first, resolution) in
        [(1, 30, 240), (2, 60, 480), (3, 240, 1440), (4, 480, 2400)]
    {
        policies::create(
            &mut tx,
            &policies::PolicyInput {
                project_id: Some(hd),
                process_id: None,
                priority,
                calendar_id: office,
                first_response_minutes: Some(first),
                resolution_minutes: Some(resolution),
                warn_percent: 80,
            },
            now,
        )
        .await?;
    }
    for (title, body) in CANNED {
        let input = canned::CannedInput {
            project_id: None,
            title: (*title).into(),
            body: (*body).into(),
        };
        canned::create(&mut tx, &input, l1, now).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Shared canned responses of the demo: (title, text).
const CANNED: &[(&str, &str)] = &[
    (
        "We are on it",
        "Hello {{requester.first_name}},\n\nthank you for {{ticket.key}}. We are looking into it and will get back to you.\n\n{{agent.name}}, help desk",
    ),
    (
        "Please restart and tell us",
        "Hello {{requester.first_name}},\n\ncould you restart the device and tell us whether “{{ticket.title}}” still happens?\n\n{{agent.name}}",
    ),
];

/// Whether the demo organisation is in this database (to print its sign-ins).
pub async fn is_loaded(pool: &PgPool) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from users where lower(email) = 'requester@example.com' and password_hash is not null)",
    )
    .fetch_one(pool)
    .await?)
}
