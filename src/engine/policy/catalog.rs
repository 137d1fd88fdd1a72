//! The permission catalog. Fixed in code: roles (data) choose from it.

macro_rules! catalog {
    ($($variant:ident = $name:literal, $label:literal;)*) => {
        /// A permission a role can contain.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $($variant,)*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The stored name, e.g. `ticket.view_all`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }

            /// What it allows, in words.
            pub fn label(self) -> &'static str {
                match self {
                    $(Permission::$variant => $label,)*
                }
            }

            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Permission::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

catalog! {
    TicketCreate = "ticket.create", "File requests";
    TicketViewAll = "ticket.view_all", "See every ticket (not only one's own)";
    TicketCommentPublic = "ticket.comment_public", "Reply publicly on tickets one can see";
    TicketCommentInternal = "ticket.comment_internal", "Read and write internal notes and fields";
    TicketEdit = "ticket.edit", "Edit ticket fields";
    TicketAssign = "ticket.assign", "Assign tickets to people and groups";
    TicketTransition = "ticket.transition", "Move tickets through their workflow";
    TicketApprove = "ticket.approve", "Approve or reject";
    ProjectView = "project.view", "See projects, sites and milestones";
    ProjectManage = "project.manage", "Manage projects, sites and milestones";
    ReportView = "report.view", "Read reports and KPIs";
    AdminUsers = "admin.users", "Administer users, and see anyone's permissions";
    AdminGroups = "admin.groups", "Administer groups and their members";
    AdminRoles = "admin.roles", "Administer roles and memberships";
    AdminProjects = "admin.projects", "Administer projects";
    AdminOrg = "admin.org", "Administer organisation units, sites and domain rules";
    AdminSystems = "admin.systems", "Administer the systems registry";
    AdminProcesses = "admin.processes", "Administer processes, workflows and screens";
    AdminAudit = "admin.audit", "Read the admin audit log";
    AdminCanned = "admin.canned", "Administer canned responses";
}

impl Permission {
    /// Admin areas: held only globally.
    pub fn is_admin(self) -> bool {
        self.name().starts_with("admin.")
    }
}
