//! The HTTP layer, and the only module that knows axum, askama and tower. Every route is in
//! [`routes`], with the access it needs; the router is built from that table and the access is
//! enforced by it, so `tests/it/authz.rs` can walk every route.

mod account;
mod admin;
mod approval_links;
mod assets;
mod auth;
mod csrf;
mod error;
mod extract;
mod flash;
mod layout;
mod notifications;
mod pages;
mod password;
pub mod paths;
mod queues;
mod reference;
mod response;
mod router;
mod session;
mod tickets;

use tickets::{attachments, conversation};

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

pub use response::Rendered;
pub(crate) use response::html;
pub use router::{router, router_with, serve};

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<App>);

pub struct App {
    pub pool: PgPool,
    pub clock: SharedClock,
    pub config: Config,
    trusted_proxies: Vec<IpAddr>,
    lifetime: Lifetime,
    login_limits: LoginLimits,
    /// Filter lists, cached while their version holds.
    pub reference: reference::ReferenceCache,
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
            reference: reference::ReferenceCache::default(),
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
    handler: MethodRouter<AppState>,
}

impl Route {
    fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, access: Access, h: H) -> Self {
        Self {
            method: Method::GET,
            path,
            access,
            handler: axum::routing::get(h),
        }
    }

    fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, access: Access, h: H) -> Self {
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

/// Every route of the application.
pub fn routes() -> Vec<Route> {
    use Access::*;
    use Action::*;
    use Permission::*;
    vec![
        Route::get("/", Public, pages::home),
        Route::get("/healthz", Public, pages::healthz),
        Route::get("/readyz", Public, pages::readyz),
        Route::get("/static/{file}", Public, assets::serve),
        Route::get("/login", Public, auth::login_form),
        Route::post("/login", Public, auth::login),
        Route::post("/logout", SignedIn, auth::logout),
        Route::get("/account", SignedIn, account::show),
        Route::post("/account/password", SignedIn, account::change_password),
        Route::post(
            "/account/sessions/{id}/revoke",
            SignedIn,
            account::revoke_session,
        ),
        Route::get("/requests", Ticket(ViewTicket), tickets::mine),
        Route::get("/tickets/new", Ticket(CreateTicket), tickets::new_form),
        Route::post("/tickets", Ticket(CreateTicket), tickets::create),
        Route::get("/tickets/{key}", Ticket(ViewTicket), tickets::show),
        Route::post(
            "/tickets/{key}/comments",
            Ticket(CommentPublic),
            conversation::comment,
        ),
        Route::post(
            "/tickets/{key}/attachments",
            Ticket(CommentPublic),
            attachments::attach,
        ),
        Route::get(
            "/tickets/{key}/attachments/{id}",
            Ticket(ViewTicket),
            attachments::download,
        ),
        Route::post(
            "/tickets/{key}/watch",
            Ticket(ViewTicket),
            conversation::watch,
        ),
        Route::post(
            "/tickets/{key}/unwatch",
            Ticket(ViewTicket),
            conversation::unwatch,
        ),
        Route::post(
            "/tickets/{key}/watchers",
            Ticket(EditTicket),
            conversation::add_watcher,
        ),
        Route::post(
            "/tickets/{key}/watchers/{user}/remove",
            Ticket(EditTicket),
            conversation::remove_watcher,
        ),
        Route::post(
            "/tickets/{key}/fields",
            Ticket(UseWorkflow),
            tickets::update_fields,
        ),
        Route::post(
            "/tickets/{key}/transitions/{transition}",
            Ticket(UseWorkflow),
            tickets::transition,
        ),
        Route::post(
            "/tickets/{key}/approval",
            Ticket(ApproveTicket),
            tickets::decide,
        ),
        Route::post("/tickets/{key}/links", Ticket(EditTicket), tickets::link),
        Route::post(
            "/tickets/{key}/assign",
            Ticket(AssignTicket),
            tickets::assign,
        ),
        Route::post("/tickets/{key}/take", Ticket(AssignTicket), tickets::take),
        Route::post(
            "/tickets/{key}/escalate",
            Ticket(AssignTicket),
            tickets::escalate,
        ),
        Route::post(
            "/tickets/{key}/priority",
            Ticket(EditTicket),
            tickets::priority,
        ),
        Route::post("/tickets/{key}/merge", Ticket(EditTicket), tickets::merge),
        Route::get("/notifications", SignedIn, notifications::list),
        Route::post("/notifications/read-all", SignedIn, notifications::read_all),
        Route::post("/notifications/{id}/open", SignedIn, notifications::open),
        Route::get(
            "/account/notifications",
            SignedIn,
            notifications::preferences,
        ),
        Route::post(
            "/account/notifications",
            SignedIn,
            notifications::save_preferences,
        ),
        Route::get("/approvals", Ticket(ApproveTicket), tickets::waiting),
        Route::get("/desk", Ticket(ViewTicket), queues::desk),
        Route::get("/queues", Ticket(ViewTicket), queues::index),
        Route::post("/queues", Ticket(ViewTicket), queues::save),
        Route::get("/queues/list", Ticket(ViewTicket), queues::list),
        Route::post("/queues/bulk", Ticket(ViewTicket), queues::bulk),
        Route::get("/queues/{id}", Ticket(ViewTicket), queues::show),
        Route::post("/queues/{id}/delete", Ticket(ViewTicket), queues::delete),
        Route::get("/search", Ticket(ViewTicket), tickets::search),
        Route::get("/password/set/{token}", Public, password::form),
        Route::post("/password/set/{token}", Public, password::set),
        Route::get("/approval-links/{token}", Public, approval_links::show),
        Route::post("/approval-links/{token}", Public, approval_links::decide),
        Route::get(
            "/people/{id}/permissions",
            SignedIn,
            admin::users::permissions,
        ),
        Route::get("/admin", SignedIn, admin::index),
        Route::get("/admin/users", Global(AdminUsers), admin::users::list),
        Route::get(
            "/admin/users/new",
            Global(AdminUsers),
            admin::users::new_form,
        ),
        Route::post("/admin/users", Global(AdminUsers), admin::users::create),
        Route::get(
            "/admin/users/import",
            Global(AdminUsers),
            admin::users::import::form,
        ),
        Route::post(
            "/admin/users/import",
            Global(AdminUsers),
            admin::users::import::submit,
        ),
        Route::get("/admin/users/{id}", Global(AdminUsers), admin::users::show),
        Route::post(
            "/admin/users/{id}",
            Global(AdminUsers),
            admin::users::update,
        ),
        Route::post(
            "/admin/users/{id}/deactivate",
            Global(AdminUsers),
            admin::users::deactivate,
        ),
        Route::post(
            "/admin/users/{id}/activate",
            Global(AdminUsers),
            admin::users::activate,
        ),
        Route::post(
            "/admin/users/{id}/password-link",
            Global(AdminUsers),
            admin::users::password_link,
        ),
        Route::post(
            "/admin/users/{id}/deliverable",
            Global(AdminUsers),
            admin::users::deliverable,
        ),
        Route::get("/admin/groups", Global(AdminGroups), admin::groups::list),
        Route::post("/admin/groups", Global(AdminGroups), admin::groups::create),
        Route::get(
            "/admin/groups/{id}",
            Global(AdminGroups),
            admin::groups::show,
        ),
        Route::post(
            "/admin/groups/{id}",
            Global(AdminGroups),
            admin::groups::update,
        ),
        Route::post(
            "/admin/groups/{id}/delete",
            Global(AdminGroups),
            admin::groups::delete,
        ),
        Route::post(
            "/admin/groups/{id}/tier",
            Global(AdminGroups),
            admin::triage::set_tier,
        ),
        Route::post(
            "/admin/groups/{id}/members",
            Global(AdminGroups),
            admin::groups::add_member,
        ),
        Route::post(
            "/admin/groups/{id}/members/{user}/remove",
            Global(AdminGroups),
            admin::groups::remove_member,
        ),
        Route::get("/admin/roles", Global(AdminRoles), admin::roles::list),
        Route::post("/admin/roles", Global(AdminRoles), admin::roles::create),
        Route::get("/admin/roles/{id}", Global(AdminRoles), admin::roles::show),
        Route::post(
            "/admin/roles/{id}",
            Global(AdminRoles),
            admin::roles::update,
        ),
        Route::post(
            "/admin/roles/{id}/delete",
            Global(AdminRoles),
            admin::roles::delete,
        ),
        Route::post(
            "/admin/memberships",
            Global(AdminRoles),
            admin::roles::grant,
        ),
        Route::post(
            "/admin/memberships/{id}/delete",
            Global(AdminRoles),
            admin::roles::revoke,
        ),
        Route::get(
            "/admin/projects",
            Global(AdminProjects),
            admin::projects::list,
        ),
        Route::post(
            "/admin/projects",
            Global(AdminProjects),
            admin::projects::create,
        ),
        Route::get(
            "/admin/projects/{key}",
            Global(AdminProjects),
            admin::projects::show,
        ),
        Route::post(
            "/admin/projects/{key}",
            Global(AdminProjects),
            admin::projects::update,
        ),
        Route::get(
            "/admin/projects/{key}/triage",
            Global(AdminProjects),
            admin::triage::show,
        ),
        Route::post(
            "/admin/projects/{key}/triage",
            Global(AdminProjects),
            admin::triage::save,
        ),
        Route::post(
            "/admin/projects/{key}/routing",
            Global(AdminProjects),
            admin::triage::add_rule,
        ),
        Route::post(
            "/admin/projects/{key}/routing/{id}/up",
            Global(AdminProjects),
            admin::triage::rule_up,
        ),
        Route::post(
            "/admin/projects/{key}/routing/{id}/down",
            Global(AdminProjects),
            admin::triage::rule_down,
        ),
        Route::post(
            "/admin/projects/{key}/routing/{id}/delete",
            Global(AdminProjects),
            admin::triage::delete_rule,
        ),
        Route::get(
            "/admin/sla/calendars",
            Global(AdminProjects),
            admin::sla::calendars::list,
        ),
        Route::post(
            "/admin/sla/calendars",
            Global(AdminProjects),
            admin::sla::calendars::create,
        ),
        Route::get(
            "/admin/sla/calendars/{id}",
            Global(AdminProjects),
            admin::sla::calendars::show,
        ),
        Route::post(
            "/admin/sla/calendars/{id}",
            Global(AdminProjects),
            admin::sla::calendars::update,
        ),
        Route::post(
            "/admin/sla/calendars/{id}/delete",
            Global(AdminProjects),
            admin::sla::calendars::delete,
        ),
        Route::get(
            "/admin/sla/policies",
            Global(AdminProjects),
            admin::sla::policies::list,
        ),
        Route::post(
            "/admin/sla/policies",
            Global(AdminProjects),
            admin::sla::policies::create,
        ),
        Route::get(
            "/admin/sla/policies/{id}",
            Global(AdminProjects),
            admin::sla::policies::show,
        ),
        Route::post(
            "/admin/sla/policies/{id}",
            Global(AdminProjects),
            admin::sla::policies::update,
        ),
        Route::post(
            "/admin/sla/policies/{id}/delete",
            Global(AdminProjects),
            admin::sla::policies::delete,
        ),
        Route::get("/admin/org", Global(AdminOrg), admin::org::show),
        Route::post(
            "/admin/org/units",
            Global(AdminOrg),
            admin::org::create_unit,
        ),
        Route::post(
            "/admin/org/units/{id}/rename",
            Global(AdminOrg),
            admin::org::rename_unit,
        ),
        Route::post(
            "/admin/org/units/{id}/move",
            Global(AdminOrg),
            admin::org::move_unit,
        ),
        Route::post(
            "/admin/org/units/{id}/delete",
            Global(AdminOrg),
            admin::org::delete_unit,
        ),
        Route::post(
            "/admin/domain-rules",
            Global(AdminOrg),
            admin::org::create_rule,
        ),
        Route::post(
            "/admin/domain-rules/{id}/delete",
            Global(AdminOrg),
            admin::org::delete_rule,
        ),
        Route::get("/admin/systems", Global(AdminSystems), admin::systems::list),
        Route::post(
            "/admin/systems",
            Global(AdminSystems),
            admin::systems::create,
        ),
        Route::get(
            "/admin/systems/{id}",
            Global(AdminSystems),
            admin::systems::show,
        ),
        Route::post(
            "/admin/systems/{id}",
            Global(AdminSystems),
            admin::systems::update,
        ),
        Route::get("/admin/mailboxes", Global(AdminProjects), admin::mail::list),
        Route::post(
            "/admin/mailboxes",
            Global(AdminProjects),
            admin::mail::create,
        ),
        Route::get(
            "/admin/mailboxes/{id}",
            Global(AdminProjects),
            admin::mail::show,
        ),
        Route::post(
            "/admin/mailboxes/{id}",
            Global(AdminProjects),
            admin::mail::update,
        ),
        Route::post(
            "/admin/mailboxes/{id}/imap",
            Global(AdminProjects),
            admin::mail::save_imap,
        ),
        Route::post(
            "/admin/mailboxes/{id}/imap/delete",
            Global(AdminProjects),
            admin::mail::remove_imap,
        ),
        Route::get(
            "/admin/mail-problems",
            Global(AdminProjects),
            admin::mail::problems,
        ),
        Route::get(
            "/admin/mail-problems/{id}",
            Global(AdminProjects),
            admin::mail::problem,
        ),
        Route::post(
            "/admin/mail-problems/{id}/retry",
            Global(AdminProjects),
            admin::mail::retry,
        ),
        Route::get("/admin/audit", Global(AdminAudit), admin::audit::list),
        Route::get("/admin/canned", Global(AdminCanned), admin::canned::list),
        Route::post("/admin/canned", Global(AdminCanned), admin::canned::create),
        Route::get(
            "/admin/canned/{id}",
            Global(AdminCanned),
            admin::canned::show,
        ),
        Route::post(
            "/admin/canned/{id}",
            Global(AdminCanned),
            admin::canned::update,
        ),
        Route::post(
            "/admin/canned/{id}/delete",
            Global(AdminCanned),
            admin::canned::delete,
        ),
        Route::get(
            "/admin/processes",
            Global(AdminProcesses),
            admin::processes::list,
        ),
        Route::post(
            "/admin/processes",
            Global(AdminProcesses),
            admin::processes::create,
        ),
        Route::get(
            "/admin/processes/{key}",
            Global(AdminProcesses),
            admin::processes::show,
        ),
        Route::post(
            "/admin/processes/{key}",
            Global(AdminProcesses),
            admin::processes::save,
        ),
        Route::post(
            "/admin/processes/{key}/publish",
            Global(AdminProcesses),
            admin::processes::publish,
        ),
        Route::get(
            "/admin/processes/{key}/simulate",
            Global(AdminProcesses),
            admin::processes::simulate,
        ),
    ]
}
