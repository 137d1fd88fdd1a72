//! The HTTP layer, and the only module that knows axum, askama and tower. Every route is in
//! [`routes`], with the access it needs; the router is built from that table and the access is
//! enforced by it, so `tests/it/authz.rs` can walk every route.

mod account;
mod admin;
mod approval_links;
mod assets;
mod attachments;
mod auth;
mod conversation;
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
mod session;
mod tickets;

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::core::time::SharedClock;
use crate::engine::policy::{Action, Permission};
use crate::people::LoginLimits;
use crate::people::sessions::Lifetime;

pub use error::Rendered;

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

/// The application: the route table behind the middleware stack.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The application with `extra` routes beside the table, behind the same middleware. For
/// tests that need a route the product has no use for (one that panics); the product uses
/// [`router`].
#[doc(hidden)]
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let config = &state.config;
    let mut app: Router<AppState> = extra;
    for route in routes() {
        let access = route.access;
        let mut handler = route
            .handler
            .route_layer(middleware::from_fn_with_state(access, session::require));
        if UPLOAD_ROUTES.contains(&route.path) {
            handler = handler.layer(DefaultBodyLimit::max(config.upload_body_limit()));
        }
        app = app.route(route.path, handler);
    }
    let timeout = Duration::from_secs(config.request_timeout_secs);
    let body_limit = config.max_body_bytes;

    let app = app
        .fallback(pages::not_found)
        .route_layer(middleware::from_fn(record_route))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(error::render_pages))
                // Inside `render_pages`, so a panic becomes the same friendly 500 page as any
                // internal error, with the request id; the process keeps serving.
                .layer(CatchPanicLayer::custom(error::on_panic))
                .layer(TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(DefaultBodyLimit::max(body_limit))
                .layer(middleware::from_fn_with_state(state.clone(), session::load))
                .layer(middleware::from_fn_with_state(state.clone(), csrf::protect))
                .layer(middleware::from_fn(flash::carry)),
        )
        .with_state(state);

    let request_id = HeaderName::from_static("x-request-id");
    // Downloads bring a stricter policy of their own (`sandbox`); every other response gets this.
    let security_headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));

    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::COOKIE,
                header::AUTHORIZATION,
            ]))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!(
                            "request",
                            method = %req.method(),
                            path = %req.uri().path(),
                            request_id = %id,
                            route = tracing::field::Empty,
                            user_id = tracing::field::Empty,
                        )
                    })
                    .on_request(())
                    .on_response(
                        tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                    ),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(security_headers)
            .layer(CompressionLayer::new()),
    )
}

/// Serves the app on `listener` until `shutdown` completes, then lets requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Records the matched route on the request span.
async fn record_route(req: Request, next: Next) -> Response {
    if let Some(path) = req.extensions().get::<MatchedPath>() {
        tracing::Span::current().record("route", path.as_str());
    }
    next.run(req).await
}

/// The client's address: the peer, or what a trusted proxy says in `X-Forwarded-For`.
pub(crate) fn client_addr(state: &App, req: &axum::http::request::Parts) -> IpAddr {
    use axum::extract::ConnectInfo;
    use axum::extract::connect_info::MockConnectInfo;
    let peer = req
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| {
            req.extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if !state.trusted_proxies.contains(&peer) {
        return peer;
    }
    // Rightmost address that is not one of our proxies: the one a proxy of ours saw.
    req.headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim).collect::<Vec<_>>())
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .rev()
        .find(|ip| !state.trusted_proxies.contains(ip))
        .unwrap_or(peer)
}

/// A response that is already a page of ours (so error rendering leaves it alone).
pub(crate) fn html(status: axum::http::StatusCode, body: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    response.extensions_mut().insert(Rendered);
    response
}
