//! Typed ids (uuid v7, time-ordered) and the ticket keys people see (`HD-1042`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A person who signs in or files tickets.
    UserId
);
id_type!(
    /// A project (`HD`, `ERP`).
    ProjectId
);
id_type!(
    /// A ticket; people see its key instead.
    TicketId
);
id_type!(
    /// A group of people (a team, a tier, a board).
    GroupId
);
id_type!(
    /// A role: a named set of permissions.
    RoleId
);
id_type!(
    /// A membership: a role given to a user or a group.
    MembershipId
);
id_type!(
    /// An organisation unit: region, country, site or business unit.
    OrgUnitId
);
id_type!(
    /// A system in the registry (what tickets are about).
    SystemId
);
id_type!(
    /// A rule that places new users by their e-mail domain.
    DomainRuleId
);
id_type!(
    /// A process: bug, change request, access request…
    ProcessId
);
id_type!(
    /// An approval round on a ticket.
    ApprovalRoundId
);
id_type!(
    /// A link between two tickets.
    LinkId
);
id_type!(
    /// The public handle of a session, safe to show and post (the secret token is never shown).
    SessionId
);
id_type!(
    /// A file attached to a ticket.
    AttachmentId
);
id_type!(
    /// A canned response: a reusable reply with placeholders.
    CannedId
);
id_type!(
    /// A business-time calendar for SLA clocks.
    CalendarId
);
id_type!(
    /// An SLA policy: targets for a project × process × priority.
    SlaPolicyId
);
id_type!(
    /// A routing rule: which group a new ticket of a project goes to.
    RoutingRuleId
);
id_type!(
    /// A mailbox: an address mail comes in on, tied to a project.
    MailboxId
);

/// A project key: 2 to 10 capital letters or digits, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectKey(String);

impl ProjectKey {
    pub fn parse(s: &str) -> Option<Self> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase());
        let rest_ok = chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        (first_ok && rest_ok && (2..=10).contains(&s.len())).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `HD-1042`: a project key and the ticket's number within the project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TicketKey {
    pub project: ProjectKey,
    pub number: i64,
}

impl TicketKey {
    /// Parses `HD-1042` (case-insensitive on the project part); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let (project, number) = s.trim().rsplit_once('-')?;
        let project = ProjectKey::parse(&project.to_ascii_uppercase())?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.len() > 15 {
            return None;
        }
        let number: i64 = number.parse().ok()?;
        (number > 0).then_some(Self { project, number })
    }
}

impl fmt::Display for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.project, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_keys_parse_only_well_formed_input() {
        let cases = [
            ("HD-1", Some("HD-1")),
            ("hd-42", Some("HD-42")),
            (" ERP-1042 ", Some("ERP-1042")),
            ("HD-0", None),
            ("HD-", None),
            ("-1", None),
            ("H-1", None),
            ("HD-1x", None),
            ("HD-+1", None),
            ("1HD-1", None),
            ("HD-99999999999999999999", None),
            ("ABCDEFGHIJK-1", None),
            ("", None),
        ];
        for (input, expected) in cases {
            let got = TicketKey::parse(input).map(|k| k.to_string());
            assert_eq!(got.as_deref(), expected, "input {input:?}");
        }
    }
}
