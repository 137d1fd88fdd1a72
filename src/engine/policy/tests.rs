use super::*;

fn grant(permission: Permission, project: Option<ProjectId>) -> Grant {
    Grant {
        permission: permission.name().into(),
        project,
        role: "Role".into(),
        group: None,
    }
}

fn actor(grants: Vec<Grant>) -> Actor {
    Actor::new(UserId::new(), None, Vec::new(), grants)
}

fn ticket(project: ProjectId, requester: UserId) -> TicketFacts {
    TicketFacts {
        project_id: project,
        requester_id: requester,
        assignee_id: None,
        assignee_group_id: None,
        org_unit_id: None,
        site_id: None,
        org_unit_visible: false,
        actor_watches: false,
        actor_approves: false,
    }
}

#[test]
fn ticket_visibility_follows_relations_and_project_grants() {
    let hd = ProjectId::new();
    let erp = ProjectId::new();
    let stranger = UserId::new();
    let group = GroupId::new();
    let org = OrgUnitId::new();

    let requester = actor(vec![grant(Permission::TicketCreate, None)]);
    let agent_hd = actor(vec![grant(Permission::TicketViewAll, Some(hd))]);
    let global_viewer = actor(vec![grant(Permission::TicketViewAll, None)]);
    let mut group_member = actor(vec![]);
    group_member.groups = vec![group];
    let mut colleague = actor(vec![]);
    colleague.org_unit_id = Some(org);

    let own = ticket(hd, requester.user_id);
    let others = ticket(hd, stranger);
    let erp_ticket = ticket(erp, stranger);
    let assigned_to_group = TicketFacts {
        assignee_group_id: Some(group),
        ..ticket(erp, stranger)
    };
    let watched = TicketFacts {
        actor_watches: true,
        ..ticket(erp, stranger)
    };
    let same_unit_visible = TicketFacts {
        org_unit_id: Some(org),
        org_unit_visible: true,
        ..ticket(hd, stranger)
    };
    let same_unit_private = TicketFacts {
        org_unit_visible: false,
        ..same_unit_visible.clone()
    };
    // Filed from elsewhere, about the colleague's site.
    let about_my_site = TicketFacts {
        org_unit_id: Some(OrgUnitId::new()),
        site_id: Some(org),
        org_unit_visible: true,
        ..ticket(hd, stranger)
    };
    let about_my_site_private = TicketFacts {
        org_unit_visible: false,
        ..about_my_site.clone()
    };
    let mut unitless = actor(vec![]);
    unitless.org_unit_id = None;
    let nowhere = TicketFacts {
        org_unit_visible: true,
        ..ticket(hd, stranger)
    };

    let cases: Vec<(&str, &Actor, &TicketFacts, bool)> = vec![
        ("requester, own", &requester, &own, true),
        ("requester, another's", &requester, &others, false),
        ("agent in HD, HD ticket", &agent_hd, &others, true),
        ("agent in HD, ERP ticket", &agent_hd, &erp_ticket, false),
        (
            "global viewer, ERP ticket",
            &global_viewer,
            &erp_ticket,
            true,
        ),
        (
            "group member, group's ticket",
            &group_member,
            &assigned_to_group,
            true,
        ),
        (
            "group member, other ticket",
            &group_member,
            &erp_ticket,
            false,
        ),
        ("watcher", &requester, &watched, true),
        (
            "same unit, project allows",
            &colleague,
            &same_unit_visible,
            true,
        ),
        (
            "same unit, project does not",
            &colleague,
            &same_unit_private,
            false,
        ),
        (
            "about my site, project allows",
            &colleague,
            &about_my_site,
            true,
        ),
        (
            "about my site, project does not",
            &colleague,
            &about_my_site_private,
            false,
        ),
        ("no unit on either side", &unitless, &nowhere, false),
        ("another unit's site", &requester, &about_my_site, false),
    ];
    for (name, who, what, expected) in cases {
        let decision = decide(who, Action::ViewTicket, Target::Ticket(what));
        assert_eq!(decision.allowed(), expected, "{name}: {decision}");
    }
}

#[test]
fn actions_on_a_ticket_need_sight_and_the_permission_in_its_project() {
    let hd = ProjectId::new();
    let erp = ProjectId::new();
    let agent = actor(vec![
        grant(Permission::TicketViewAll, Some(hd)),
        grant(Permission::TicketCommentInternal, Some(hd)),
        grant(Permission::TicketCommentInternal, Some(erp)),
        grant(Permission::TicketAssign, None),
    ]);
    let requester = actor(vec![grant(Permission::TicketCreate, None)]);
    let hd_ticket = ticket(hd, requester.user_id);
    let erp_ticket = ticket(erp, UserId::new());
    let cases = [
        (&agent, Action::SeeInternal, &hd_ticket, true),
        (&agent, Action::SeeInternal, &erp_ticket, false), // cannot see the ticket at all
        (&agent, Action::AssignTicket, &hd_ticket, true),
        (&agent, Action::ApproveTicket, &hd_ticket, false),
        (&agent, Action::CommentPublic, &hd_ticket, false),
        (&requester, Action::CommentPublic, &hd_ticket, true),
        (&requester, Action::SeeInternal, &hd_ticket, false),
        (&requester, Action::EditTicket, &hd_ticket, false),
        (&requester, Action::TransitionTicket, &hd_ticket, false),
    ];
    for (who, action, what, expected) in cases {
        let decision = decide(who, action, Target::Ticket(what));
        assert_eq!(decision.allowed(), expected, "{action:?}: {decision}");
    }
}

#[test]
fn admin_areas_need_a_global_grant_and_reasons_name_the_source() {
    let hd = ProjectId::new();
    let scoped = actor(vec![grant(Permission::AdminUsers, Some(hd))]);
    let global = Actor::new(
        UserId::new(),
        None,
        vec![],
        vec![Grant {
            permission: "admin.users".into(),
            project: None,
            role: "Admin".into(),
            group: Some("IT admins".into()),
        }],
    );
    let admin_users = Action::Administer(Permission::AdminUsers);
    assert!(!decide(&scoped, admin_users, Target::Nothing).allowed());
    let decision = decide(&global, admin_users, Target::Nothing);
    assert_eq!(
        decision,
        Decision::Allow("admin.users through role Admin via group IT admins".into())
    );
    assert!(
        decide(
            &scoped,
            Action::ViewPermissionsOf(scoped.user_id),
            Target::Nothing
        )
        .allowed()
    );
    assert!(
        !decide(
            &scoped,
            Action::ViewPermissionsOf(global.user_id),
            Target::Nothing
        )
        .allowed()
    );
    assert!(
        decide(
            &global,
            Action::ViewPermissionsOf(scoped.user_id),
            Target::Nothing
        )
        .allowed()
    );
}

#[test]
fn filing_needs_ticket_create_in_that_project() {
    let hd = ProjectId::new();
    let erp = ProjectId::new();
    let hd_only = actor(vec![grant(Permission::TicketCreate, Some(hd))]);
    let create = Action::CreateTicket;
    assert!(decide(&hd_only, create, Target::Project(hd)).allowed());
    assert!(!decide(&hd_only, create, Target::Project(erp)).allowed());
    assert!(!decide(&actor(vec![]), create, Target::Project(hd)).allowed());
    assert!(!decide(&hd_only, create, Target::Nothing).allowed());
    // A sub-task: in the parent's project.
    let erp_ticket = ticket(erp, hd_only.user_id);
    assert!(!decide(&hd_only, create, Target::Ticket(&erp_ticket)).allowed());
}

/// The route gate asks before the ticket is known. It must never refuse what `decide` could
/// allow on some ticket: relations stand in for viewing, public replies, approving and the
/// workflow's own steps; the rest needs the permission in some project.
#[test]
fn the_route_gate_allows_what_some_ticket_could_allow() {
    let hd = ProjectId::new();
    let nobody = actor(vec![]);
    let requester = actor(vec![
        grant(Permission::TicketCreate, None),
        grant(Permission::TicketCommentPublic, None),
    ]);
    let agent_in_hd = actor(vec![
        grant(Permission::TicketViewAll, Some(hd)),
        grant(Permission::TicketCommentInternal, Some(hd)),
        grant(Permission::TicketEdit, Some(hd)),
        grant(Permission::TicketAssign, Some(hd)),
    ]);
    let cases: Vec<(&str, &Actor, Action, bool)> = vec![
        ("nobody views their own", &nobody, Action::ViewTicket, true),
        (
            "nobody answers their own",
            &nobody,
            Action::CommentPublic,
            true,
        ),
        (
            "nobody answers a round",
            &nobody,
            Action::ApproveTicket,
            true,
        ),
        ("nobody confirms", &nobody, Action::UseWorkflow, true),
        ("nobody files", &nobody, Action::CreateTicket, false),
        ("requester files", &requester, Action::CreateTicket, true),
        ("requester edits", &requester, Action::EditTicket, false),
        ("requester assigns", &requester, Action::AssignTicket, false),
        (
            "requester reads notes",
            &requester,
            Action::SeeInternal,
            false,
        ),
        (
            "requester merges",
            &requester,
            Action::TransitionTicket,
            false,
        ),
        ("agent edits", &agent_in_hd, Action::EditTicket, true),
        ("agent assigns", &agent_in_hd, Action::AssignTicket, true),
        ("agent reads notes", &agent_in_hd, Action::SeeInternal, true),
        (
            "not a ticket action",
            &agent_in_hd,
            Action::Administer(Permission::AdminUsers),
            false,
        ),
    ];
    for (name, who, action, expected) in cases {
        let decision = decide(who, action, Target::AnyTicket);
        assert_eq!(decision.allowed(), expected, "{name}: {decision}");
    }
    // Consistent with the ticket: whatever a ticket allows, the gate allows.
    let asked = TicketFacts {
        actor_approves: true,
        ..ticket(hd, UserId::new())
    };
    let own = ticket(hd, nobody.user_id);
    for action in [
        Action::ViewTicket,
        Action::CommentPublic,
        Action::ApproveTicket,
        Action::UseWorkflow,
    ] {
        let on_ticket = decide(&nobody, action, Target::Ticket(&asked)).allowed()
            || decide(&nobody, action, Target::Ticket(&own)).allowed();
        assert!(on_ticket, "{action:?} on a ticket");
        assert!(decide(&nobody, action, Target::AnyTicket).allowed());
    }
}

#[test]
fn sharing_a_queue_and_internal_data_before_a_ticket_exists() {
    let hd = ProjectId::new();
    let erp = ProjectId::new();
    let lead = actor(vec![
        grant(Permission::TicketAssign, Some(erp)),
        grant(Permission::TicketCommentInternal, Some(hd)),
    ]);
    let developer = actor(vec![grant(Permission::TicketEdit, None)]);
    assert!(decide(&lead, Action::ShareQueue, Target::Nothing).allowed());
    assert!(!decide(&developer, Action::ShareQueue, Target::Nothing).allowed());
    assert!(decide(&lead, Action::SeeInternal, Target::Project(hd)).allowed());
    assert!(!decide(&lead, Action::SeeInternal, Target::Project(erp)).allowed());
    assert!(!decide(&lead, Action::UseWorkflow, Target::Project(hd)).allowed());
}

#[test]
fn unknown_permission_names_grant_nothing() {
    let a = actor(vec![Grant {
        permission: "ticket.everything".into(),
        project: None,
        role: "Odd".into(),
        group: None,
    }]);
    assert!(Permission::ALL.iter().all(|p| !a.has_anywhere(*p)));
}

#[test]
fn the_sql_scope_has_the_same_branches_as_the_decision() {
    let hd = ProjectId::new();
    let mut a = actor(vec![grant(Permission::TicketViewAll, Some(hd))]);
    a.groups = vec![GroupId::new()];
    a.org_unit_id = Some(OrgUnitId::new());
    let mut qb = QueryBuilder::new("select 1 from tickets t where true");
    push_ticket_scope(&mut qb, &a, "t");
    let sql = qb.sql();
    let sql = sql.as_str();
    for branch in [
        "t.requester_id = $1",
        "t.assignee_id = $2",
        "t.assignee_group_id = any($3)",
        "w.user_id = $4",
        "aq.approver_id = $5",
        "t.project_id = any($6)",
        "t.org_unit_id = $7",
        "t.site_id = $8",
        "requester_visibility = 'org_unit'",
    ] {
        assert!(sql.contains(branch), "{branch} missing from {sql}");
    }
    let global = actor(vec![grant(Permission::TicketViewAll, None)]);
    let mut qb = QueryBuilder::new("select 1 from tickets t where true");
    push_ticket_scope(&mut qb, &global, "t");
    assert!(qb.sql().as_str().ends_with("where true"));
}

#[test]
fn the_scope_is_implied_only_by_own_groups_or_own_assignments() {
    let (mine, other) = (GroupId::new(), GroupId::new());
    let mut a = actor(vec![]);
    a.groups = vec![mine];
    let me = a.user_id;
    // Assigned to the actor, or to the actor's groups: branches of the scope.
    assert!(scope_implied(&a, Some(&[mine]), None));
    assert!(scope_implied(&a, None, Some(me)));
    assert!(scope_implied(&a, Some(&[other]), Some(me)));
    // Anything wider keeps the scope.
    assert!(!scope_implied(&a, Some(&[mine, other]), None));
    assert!(!scope_implied(&a, Some(&[other]), None));
    assert!(!scope_implied(&a, Some(&[]), None));
    assert!(!scope_implied(&a, None, Some(UserId::new())));
    assert!(!scope_implied(&a, None, None));
}

#[test]
fn approvers_see_what_they_are_asked_to_approve_and_may_answer_on_it() {
    let hd = ProjectId::new();
    let owner = actor(vec![]);
    let asked = TicketFacts {
        actor_approves: true,
        ..ticket(hd, UserId::new())
    };
    assert!(decide(&owner, Action::ViewTicket, Target::Ticket(&asked)).allowed());
    assert!(decide(&owner, Action::CommentPublic, Target::Ticket(&asked)).allowed());
    assert!(!decide(&owner, Action::SeeInternal, Target::Ticket(&asked)).allowed());
    // Asked by name, they answer without holding `ticket.approve`.
    assert!(decide(&owner, Action::ApproveTicket, Target::Ticket(&asked)).allowed());
    assert_eq!(asked.relations(&owner), vec!["approver"]);
    let not_asked = ticket(hd, UserId::new());
    assert!(!decide(&owner, Action::ViewTicket, Target::Ticket(&not_asked)).allowed());
}
