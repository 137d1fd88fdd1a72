//! Reference lists (projects, processes, groups, systems, sites) cached per app instance.
//!
//! The queue page's filter form lists all of them on every view; they change only when an
//! admin edits them. A trigger bumps `reference_version` on every such edit and each request
//! reads the version with its session (`people::sessions::load`), so a cached copy is used
//! only while it is current, on every instance: no expiry time, no stale names.

use std::sync::{Arc, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sqlx::PgConnection;

use crate::core::{Error, Result};
use crate::people::sessions::Current;
use crate::tickets::queues::{self, Options};

/// The cached lists with the version they were loaded at.
#[derive(Default)]
pub struct ReferenceCache {
    current: RwLock<Option<(i64, Arc<Options>)>>,
}

impl ReferenceCache {
    /// The lists as of `version` or later: the cached copy, or a fresh one from `conn`.
    pub async fn options(&self, conn: &mut PgConnection, version: i64) -> Result<Arc<Options>> {
        if let Some(found) = self.cached(version) {
            return Ok(found);
        }
        // Loaded after `version` was read, so at least as new as it.
        let fresh = Arc::new(queues::options(conn).await?);
        if let Ok(mut slot) = self.current.write()
            && slot.as_ref().is_none_or(|(v, _)| *v <= version)
        {
            *slot = Some((version, fresh.clone()));
        }
        Ok(fresh)
    }

    fn cached(&self, version: i64) -> Option<Arc<Options>> {
        let slot = self.current.read().ok()?;
        slot.as_ref()
            .filter(|(v, _)| *v >= version)
            .map(|(_, options)| options.clone())
    }
}

/// The reference version read with this request's session.
#[derive(Debug, Clone, Copy)]
pub struct ReferenceVersion(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ReferenceVersion {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        parts
            .extensions
            .get::<Current>()
            .map(|c| Self(c.reference_version))
            .ok_or(Error::Unauthenticated)
    }
}
