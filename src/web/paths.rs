//! URLs, built in one place. A `next=` target is accepted only when it is a path on this site.

use std::fmt::Display;

use url::form_urlencoded;

pub fn login(next: &str) -> String {
    if next == "/" {
        "/login".into()
    } else {
        let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        format!("/login?next={encoded}")
    }
}

pub fn ticket(key: &str) -> String {
    format!("/tickets/{key}")
}

/// `next` when it is a local path (not `//host`, not `/\host`, no control characters); else `/`.
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if local { next } else { "/" }
}

/// `/`
pub fn home() -> &'static str {
    "/"
}

/// `/logout`
pub fn logout() -> &'static str {
    "/logout"
}

/// `/login`, where the sign-in form posts (`login` adds the page to return to).
pub fn login_form() -> &'static str {
    "/login"
}

/// `/account`
pub fn account() -> &'static str {
    "/account"
}

/// `/account/password`
pub fn account_password() -> &'static str {
    "/account/password"
}

/// `/account/sessions/{id}/revoke`
pub fn account_session_revoke(id: impl Display) -> String {
    format!("/account/sessions/{id}/revoke")
}

/// `/notifications`
pub fn notifications() -> &'static str {
    "/notifications"
}

/// The page of notifications older than `before`.
pub fn notifications_before(before: impl Display) -> String {
    format!("/notifications?before={before}")
}

/// `/notifications/read-all`
pub fn notifications_read_all() -> &'static str {
    "/notifications/read-all"
}

/// `/notifications/{id}/open`
pub fn notification_open(id: impl Display) -> String {
    format!("/notifications/{id}/open")
}

/// `/account/notifications`
pub fn notification_preferences() -> &'static str {
    "/account/notifications"
}

/// `/desk`
pub fn desk() -> &'static str {
    "/desk"
}

/// `/queues`
pub fn queues() -> &'static str {
    "/queues"
}

/// `/queues/{id}`
pub fn queue(id: impl Display) -> String {
    format!("/queues/{id}")
}

/// `/queues/{id}/delete`
pub fn queue_delete(id: impl Display) -> String {
    format!("/queues/{id}/delete")
}

/// `/queues/list`
pub fn queue_list() -> &'static str {
    "/queues/list"
}

/// The ad-hoc queue list for `query`, an encoded query string.
pub fn queue_list_of(query: impl Display) -> String {
    format!("/queues/list?{query}")
}

/// The ad-hoc list of active tickets in the user's groups: where a new queue starts.
pub fn queue_list_mine() -> &'static str {
    "/queues/list?category=active&group=mine"
}

/// `/queues/bulk`
pub fn queues_bulk() -> &'static str {
    "/queues/bulk"
}

/// `/requests`
pub fn my_requests() -> &'static str {
    "/requests"
}

/// `/tickets/new`
pub fn new_ticket() -> &'static str {
    "/tickets/new"
}

/// `/approvals`
pub fn approvals() -> &'static str {
    "/approvals"
}

/// `/search`
pub fn search() -> &'static str {
    "/search"
}

/// `/password/set/{token}`
pub fn password_set(token: impl Display) -> String {
    format!("/password/set/{token}")
}

/// `/approval-links/{token}`
pub fn approval_link(token: impl Display) -> String {
    format!("/approval-links/{token}")
}

/// `/people/{id}/permissions`
pub fn person_permissions(id: impl Display) -> String {
    format!("/people/{id}/permissions")
}

/// `/static/{name}`
pub fn static_file(name: impl Display) -> String {
    format!("/static/{name}")
}

/// A static file with its content version, so a changed file is a new URL.
pub fn static_file_version(name: impl Display, version: impl Display) -> String {
    format!("/static/{name}?v={version}")
}

/// The administration pages.
pub mod admin {
    use std::fmt::Display;

    /// `/admin`
    pub fn index() -> &'static str {
        "/admin"
    }

    /// `/admin/users`
    pub fn users() -> &'static str {
        "/admin/users"
    }

    /// The next page of users for `query` (all three already encoded).
    pub fn users_page(
        query: impl Display,
        after_name: impl Display,
        after_id: impl Display,
    ) -> String {
        format!("/admin/users?q={query}&after_name={after_name}&after_id={after_id}")
    }

    /// `/admin/users/new`
    pub fn users_new() -> &'static str {
        "/admin/users/new"
    }

    /// `/admin/users/import`
    pub fn users_import() -> &'static str {
        "/admin/users/import"
    }

    /// `/admin/users/{id}`
    pub fn user(id: impl Display) -> String {
        format!("/admin/users/{id}")
    }

    /// `/admin/users/{id}/deactivate`
    pub fn user_deactivate(id: impl Display) -> String {
        format!("/admin/users/{id}/deactivate")
    }

    /// `/admin/users/{id}/activate`
    pub fn user_activate(id: impl Display) -> String {
        format!("/admin/users/{id}/activate")
    }

    /// `/admin/users/{id}/password-link`
    pub fn user_password_link(id: impl Display) -> String {
        format!("/admin/users/{id}/password-link")
    }

    /// `/admin/users/{id}/deliverable`
    pub fn user_deliverable(id: impl Display) -> String {
        format!("/admin/users/{id}/deliverable")
    }

    /// `/admin/groups`
    pub fn groups() -> &'static str {
        "/admin/groups"
    }

    /// `/admin/groups/{id}`
    pub fn group(id: impl Display) -> String {
        format!("/admin/groups/{id}")
    }

    /// `/admin/groups/{id}/delete`
    pub fn group_delete(id: impl Display) -> String {
        format!("/admin/groups/{id}/delete")
    }

    /// `/admin/groups/{id}/tier`
    pub fn group_tier(id: impl Display) -> String {
        format!("/admin/groups/{id}/tier")
    }

    /// `/admin/groups/{id}/members`
    pub fn group_members(id: impl Display) -> String {
        format!("/admin/groups/{id}/members")
    }

    /// `/admin/groups/{id}/members/{user}/remove`
    pub fn group_member_remove(id: impl Display, user: impl Display) -> String {
        format!("/admin/groups/{id}/members/{user}/remove")
    }

    /// `/admin/roles`
    pub fn roles() -> &'static str {
        "/admin/roles"
    }

    /// `/admin/roles/{id}`
    pub fn role(id: impl Display) -> String {
        format!("/admin/roles/{id}")
    }

    /// `/admin/roles/{id}/delete`
    pub fn role_delete(id: impl Display) -> String {
        format!("/admin/roles/{id}/delete")
    }

    /// `/admin/memberships`
    pub fn memberships() -> &'static str {
        "/admin/memberships"
    }

    /// `/admin/memberships/{id}/delete`
    pub fn membership_delete(id: impl Display) -> String {
        format!("/admin/memberships/{id}/delete")
    }

    /// `/admin/projects`
    pub fn projects() -> &'static str {
        "/admin/projects"
    }

    /// `/admin/projects/{key}`
    pub fn project(key: impl Display) -> String {
        format!("/admin/projects/{key}")
    }

    /// `/admin/projects/{key}/triage`
    pub fn project_triage(key: impl Display) -> String {
        format!("/admin/projects/{key}/triage")
    }

    /// `/admin/projects/{key}/routing`
    pub fn project_routing(key: impl Display) -> String {
        format!("/admin/projects/{key}/routing")
    }

    /// `/admin/projects/{key}/routing/{id}/up`
    pub fn routing_rule_up(key: impl Display, id: impl Display) -> String {
        format!("/admin/projects/{key}/routing/{id}/up")
    }

    /// `/admin/projects/{key}/routing/{id}/down`
    pub fn routing_rule_down(key: impl Display, id: impl Display) -> String {
        format!("/admin/projects/{key}/routing/{id}/down")
    }

    /// `/admin/projects/{key}/routing/{id}/delete`
    pub fn routing_rule_delete(key: impl Display, id: impl Display) -> String {
        format!("/admin/projects/{key}/routing/{id}/delete")
    }

    /// `/admin/sla/calendars`
    pub fn sla_calendars() -> &'static str {
        "/admin/sla/calendars"
    }

    /// `/admin/sla/calendars/{id}`
    pub fn sla_calendar(id: impl Display) -> String {
        format!("/admin/sla/calendars/{id}")
    }

    /// `/admin/sla/calendars/{id}/delete`
    pub fn sla_calendar_delete(id: impl Display) -> String {
        format!("/admin/sla/calendars/{id}/delete")
    }

    /// `/admin/sla/policies`
    pub fn sla_policies() -> &'static str {
        "/admin/sla/policies"
    }

    /// `/admin/sla/policies/{id}`
    pub fn sla_policy(id: impl Display) -> String {
        format!("/admin/sla/policies/{id}")
    }

    /// `/admin/sla/policies/{id}/delete`
    pub fn sla_policy_delete(id: impl Display) -> String {
        format!("/admin/sla/policies/{id}/delete")
    }

    /// `/admin/org`
    pub fn org() -> &'static str {
        "/admin/org"
    }

    /// `/admin/org`, at its domain rules.
    pub fn org_rules() -> &'static str {
        "/admin/org#rules"
    }

    /// `/admin/org/units`
    pub fn org_units() -> &'static str {
        "/admin/org/units"
    }

    /// `/admin/org/units/{id}/rename`
    pub fn org_unit_rename(id: impl Display) -> String {
        format!("/admin/org/units/{id}/rename")
    }

    /// `/admin/org/units/{id}/move`
    pub fn org_unit_move(id: impl Display) -> String {
        format!("/admin/org/units/{id}/move")
    }

    /// `/admin/org/units/{id}/delete`
    pub fn org_unit_delete(id: impl Display) -> String {
        format!("/admin/org/units/{id}/delete")
    }

    /// `/admin/domain-rules`
    pub fn domain_rules() -> &'static str {
        "/admin/domain-rules"
    }

    /// `/admin/domain-rules/{id}/delete`
    pub fn domain_rule_delete(id: impl Display) -> String {
        format!("/admin/domain-rules/{id}/delete")
    }

    /// `/admin/systems`
    pub fn systems() -> &'static str {
        "/admin/systems"
    }

    /// `/admin/systems/{id}`
    pub fn system(id: impl Display) -> String {
        format!("/admin/systems/{id}")
    }

    /// `/admin/mailboxes`
    pub fn mailboxes() -> &'static str {
        "/admin/mailboxes"
    }

    /// `/admin/mailboxes/{id}`
    pub fn mailbox(id: impl Display) -> String {
        format!("/admin/mailboxes/{id}")
    }

    /// `/admin/mailboxes/{id}/imap`
    pub fn mailbox_imap(id: impl Display) -> String {
        format!("/admin/mailboxes/{id}/imap")
    }

    /// `/admin/mailboxes/{id}/imap/delete`
    pub fn mailbox_imap_delete(id: impl Display) -> String {
        format!("/admin/mailboxes/{id}/imap/delete")
    }

    /// `/admin/mail-problems`
    pub fn mail_problems() -> &'static str {
        "/admin/mail-problems"
    }

    /// The page of mail problems older than `before`.
    pub fn mail_problems_before(before: impl Display) -> String {
        format!("/admin/mail-problems?before={before}")
    }

    /// `/admin/mail-problems/{id}`
    pub fn mail_problem(id: impl Display) -> String {
        format!("/admin/mail-problems/{id}")
    }

    /// `/admin/mail-problems/{id}/retry`
    pub fn mail_problem_retry(id: impl Display) -> String {
        format!("/admin/mail-problems/{id}/retry")
    }

    /// `/admin/audit`
    pub fn audit() -> &'static str {
        "/admin/audit"
    }

    /// The page of the audit log older than `before`.
    pub fn audit_before(before: impl Display) -> String {
        format!("/admin/audit?before={before}")
    }

    /// `/admin/canned`
    pub fn canned() -> &'static str {
        "/admin/canned"
    }

    /// `/admin/canned/{id}`
    pub fn canned_response(id: impl Display) -> String {
        format!("/admin/canned/{id}")
    }

    /// `/admin/canned/{id}/delete`
    pub fn canned_delete(id: impl Display) -> String {
        format!("/admin/canned/{id}/delete")
    }

    /// `/admin/processes`
    pub fn processes() -> &'static str {
        "/admin/processes"
    }

    /// `/admin/processes/{key}`
    pub fn process(key: impl Display) -> String {
        format!("/admin/processes/{key}")
    }

    /// `/admin/processes/{key}/publish`
    pub fn process_publish(key: impl Display) -> String {
        format!("/admin/processes/{key}/publish")
    }

    /// `/admin/processes/{key}/simulate`
    pub fn process_simulate(key: impl Display) -> String {
        format!("/admin/processes/{key}/simulate")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        let cases = [
            ("/tickets/HD-1", "/tickets/HD-1"),
            ("/requests?after=x", "/requests?after=x"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example", "/"),
            ("javascript:alert(1)", "/"),
            ("/ok\r\nSet-Cookie: x", "/"),
            ("", "/"),
        ];
        for (input, expected) in cases {
            assert_eq!(safe_next(input), expected, "{input:?}");
        }
    }
}
