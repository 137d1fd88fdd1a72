//! The route table: every route, with the access it needs. The router is built from it and
//! `tests/it/authz.rs` walks it.

use super::state::{Access, Route};
use super::tickets::{attachments, conversation};
use super::{account, admin, approval_links, auth, notifications};
use super::{assets, pages, password, queues, tickets};
use crate::engine::policy::{Action, Permission};

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
