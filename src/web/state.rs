//! What every handler is given (`AppState`) and the shape of a route-table row (`Route`, its
//! `Access`): below the handlers, which use the state, and the table, which names them.

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodRouter;
use sqlx::PgPool;

use crate::config::Config;
use crate::core::time::SharedClock;
use crate::engine::policy::{Action, Permission};
use crate::people::LoginLimits;
use crate::people::sessions::Lifetime;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<App>);

pub struct App {
    pub pool: PgPool,
    pub clock: SharedClock,
    pub config: Config,
    pub(super) trusted_proxies: Vec<IpAddr>,
    pub(super) lifetime: Lifetime,
    pub(super) login_limits: LoginLimits,
    /// Filter lists, cached while their version holds.
    pub reference: super::reference::ReferenceCache,
    /// Each user's groups and grants, cached while their version holds.
    pub access: crate::people::sessions::AccessCache,
    /// Queue counts that passed the cap lately.
    pub capped: crate::tickets::queues::CappedCounts,
}

impl AppState {
    pub fn new(pool: PgPool, clock: SharedClock, config: Config) -> Self {
        let trusted_proxies = config.trusted_proxy_addrs().unwrap_or_default();
        let lifetime = config.session_lifetime();
        let login_limits = config.login_limits();
        Self(Arc::new(App {
            pool,
            clock,
            config,
            trusted_proxies,
            lifetime,
            login_limits,
            reference: super::reference::ReferenceCache::default(),
            access: Default::default(),
            capped: Default::default(),
        }))
    }
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Who may call a route. Enforced by the router, before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// A signed-in user; others are sent to the sign-in page.
    SignedIn,
    /// A signed-in user who could be allowed this action on some ticket (`policy::decide`
    /// with `Target::AnyTicket`: its permission held in some project, or a relation that
    /// stands in for it); others get 403 before any ticket is looked up, so the answer is the
    /// same for every key. The handler then decides for the ticket itself.
    Ticket(Action),
    /// A signed-in user holding this (admin) permission globally; others get 403.
    Global(Permission),
}

/// One row of the route table.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub(super) handler: MethodRouter<AppState>,
}

impl Route {
    pub(super) fn get<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        Self {
            method: Method::GET,
            path,
            access,
            handler: axum::routing::get(h),
        }
    }

    pub(super) fn post<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        Self {
            method: Method::POST,
            path,
            access,
            handler: axum::routing::post(h),
        }
    }
}

/// Routes that take files (multipart) up to `Config::upload_body_limit`; the CSRF check reads
/// their bodies that far, and their extractors accept as much.
pub const UPLOAD_ROUTES: [&str; 2] = ["/tickets/{key}/comments", "/tickets/{key}/attachments"];
