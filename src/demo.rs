//! The demo organisation: two projects and one user per kind of person, loaded once on the
//! first start of a private database (or with `--demo`). Loading again changes nothing.

use sqlx::PgPool;

use crate::core::Result;
use crate::people::{passwords, users};
use crate::projects::{self, Kind};

/// The password of every demo account. Printed at start; the demo is for trying Unitrack.
pub const PASSWORD: &str = "demo-password";

/// (e-mail, name, what they do, admin)
pub const USERS: &[(&str, &str, &str, bool)] = &[
    (
        "requester@example.com",
        "Rita Requester",
        "requester (end user)",
        false,
    ),
    ("l1@example.com", "Lars Level-One", "help desk L1", false),
    ("l2@example.com", "Lena Level-Two", "help desk L2", false),
    ("developer@example.com", "Dev Developer", "developer", false),
    (
        "approver@example.com",
        "Ada Approver",
        "change approver",
        false,
    ),
    (
        "pm@example.com",
        "Pia Projectmanager",
        "project manager",
        false,
    ),
    ("admin@example.com", "Alex Admin", "admin", true),
];

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
    projects::create(&mut tx, "HD", "Help desk", Kind::ServiceDesk, now).await?;
    projects::create(&mut tx, "ERP", "ERP development", Kind::Development, now).await?;
    let hash = passwords::hash(PASSWORD.to_owned()).await?;
    for (email, name, _, is_admin) in USERS {
        if users::find_by_email(&mut tx, email).await?.is_none() {
            let new = users::NewUser {
                email: (*email).into(),
                display_name: (*name).into(),
                password_hash: Some(hash.clone()),
                is_admin: *is_admin,
            };
            users::create(&mut tx, &new, now).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Whether the demo organisation is in this database (to print its sign-ins).
pub async fn is_loaded(pool: &PgPool) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from users where lower(email) = 'requester@example.com' and password_hash is not null)",
    )
    .fetch_one(pool)
    .await?)
}
