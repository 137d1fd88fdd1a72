//! The connection pool, the embedded migrations, and where the database comes from: an
//! external `DATABASE_URL` or the private cluster in [`cluster`].

pub mod cluster;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::core::secret::mask_password;

/// Migrations under `migrations/`, embedded in the binary; forward-only.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL {url} is not valid: {source}")]
    BadUrl { url: String, source: sqlx::Error },
    #[error("cannot reach the database at {url}: {source}")]
    Unreachable { url: String, source: sqlx::Error },
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Parses `DATABASE_URL`; the error shows it with the password masked.
pub fn parse_url(url: &str) -> Result<PgConnectOptions, DbError> {
    url.parse::<PgConnectOptions>()
        .map(|o| o.log_statements(tracing::log::LevelFilter::Trace))
        .map_err(|source| DbError::BadUrl {
            url: mask_password(url),
            source,
        })
}

/// Opens a pool and checks it with one connection, so a wrong address fails at start.
pub async fn connect(
    options: PgConnectOptions,
    max_connections: u32,
    display_url: &str,
) -> Result<PgPool, DbError> {
    let options = options
        .application_name("unitrack")
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|source| DbError::Unreachable {
            url: display_url.to_owned(),
            source,
        })
}

/// Runs the pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// True when every embedded migration has been applied: what `/readyz` reports.
pub async fn is_migrated(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<i64> =
        sqlx::query_scalar("select max(version) from _sqlx_migrations where success")
            .fetch_one(pool)
            .await?;
    Ok(applied.unwrap_or(0) >= latest)
}
