//! What happened to a ticket, as stored in `ticket_events.data`: the kinds of entry, and
//! which of them only those who may see internal data get.

use serde::{Deserialize, Serialize};

use crate::core::ids::UserId;

/// What happened, as stored in `ticket_events.data`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventData {
    Created {
        title: String,
        #[serde(default)]
        process: String,
        #[serde(default)]
        state: String,
        /// The state's category and the priority when filed (for the SLA replay).
        #[serde(default)]
        category: String,
        #[serde(default)]
        priority: i16,
    },
    Comment {
        body_md: String,
        body_html: String,
        public: bool,
    },
    FieldChanged {
        field: String,
        label: String,
        old: Option<String>,
        new: Option<String>,
        internal: bool,
    },
    Transition {
        transition: String,
        label: String,
        from: String,
        to: String,
        #[serde(default)]
        category: String,
    },
    GroupAssigned {
        group: String,
    },
    Clock {
        action: String,
        clock: String,
    },
    StateMapped {
        from: String,
        to: String,
        version: i32,
        #[serde(default)]
        category: String,
    },
    ApprovalRequested {
        round: i32,
        state: String,
        approvers: Vec<String>,
    },
    ApprovalDecision {
        round: i32,
        approve: bool,
        comment: String,
    },
    ApprovalOutcome {
        round: i32,
        approved: bool,
    },
    /// An approval step found nobody to ask (`reason`), so no round was opened.
    NoApprovers {
        state: String,
        reason: String,
    },
    Linked {
        kind: String,
        other: String,
    },
    /// Assignee or group changed (`None`: cleared).
    Assigned {
        assignee: Option<String>,
        group: Option<String>,
    },
    PriorityChanged {
        from: i16,
        to: i16,
        impact: Option<i16>,
        urgency: Option<i16>,
    },
    Escalated {
        from: Option<String>,
        to: String,
        reason: String,
    },
    SlaBreached {
        clock: String,
    },
    AttachmentAdded {
        attachment_id: uuid::Uuid,
        filename: String,
        size: i64,
        internal: bool,
    },
    WatcherAdded {
        user_id: UserId,
        user: String,
        /// The actor added themselves ("started watching").
        themselves: bool,
    },
    WatcherRemoved {
        user_id: UserId,
        user: String,
        themselves: bool,
    },
    /// `into`: this ticket was merged into `other`; else `other` was merged into this one.
    Merged {
        other: String,
        into: bool,
    },
    /// A message came in by e-mail (`mail_in` row) and landed here, and why.
    MailReceived {
        mail_id: i64,
        why: String,
    },
    /// A delivery report for mail of this ticket's thread.
    MailBounced {
        mail_id: i64,
        recipient: Option<String>,
        status: Option<String>,
        diagnostic: Option<String>,
        permanent: bool,
    },
}

impl EventData {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            EventData::Created { .. } => "created",
            EventData::Comment { .. } => "comment",
            EventData::FieldChanged { .. } => "field_changed",
            EventData::Transition { .. } => "transition",
            EventData::GroupAssigned { .. } => "group_assigned",
            EventData::Clock { .. } => "clock",
            EventData::StateMapped { .. } => "state_mapped",
            EventData::ApprovalRequested { .. } => "approval_requested",
            EventData::ApprovalDecision { .. } => "approval_decision",
            EventData::ApprovalOutcome { .. } => "approval_outcome",
            EventData::NoApprovers { .. } => "no_approvers",
            EventData::Linked { .. } => "linked",
            EventData::Assigned { .. } => "assigned",
            EventData::PriorityChanged { .. } => "priority_changed",
            EventData::Escalated { .. } => "escalated",
            EventData::SlaBreached { .. } => "sla_breached",
            EventData::AttachmentAdded { .. } => "attachment_added",
            EventData::WatcherAdded { .. } => "watcher_added",
            EventData::WatcherRemoved { .. } => "watcher_removed",
            EventData::Merged { .. } => "merged",
            EventData::MailReceived { .. } => "mail_received",
            EventData::MailBounced { .. } => "mail_bounced",
        }
    }

    /// Entries only those who may see internal data get.
    pub fn is_internal(&self) -> bool {
        match self {
            EventData::Comment { public, .. } => !public,
            EventData::FieldChanged { internal, .. } => *internal,
            EventData::AttachmentAdded { internal, .. } => *internal,
            EventData::Clock { .. }
            | EventData::Assigned { .. }
            | EventData::Escalated { .. }
            | EventData::SlaBreached { .. }
            | EventData::MailReceived { .. }
            | EventData::MailBounced { .. } => true,
            _ => false,
        }
    }
}
