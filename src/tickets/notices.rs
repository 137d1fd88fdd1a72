//! Which ticket events people hear of, who hears, and in what words.

use super::event_data::EventData;
use crate::notifications::{Approvers, Audience, Kind, Notice};

/// How much of a comment a notification quotes.
const QUOTE_MAX: usize = 120;

fn quote(body: &str) -> String {
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > QUOTE_MAX {
        let cut: String = flat.chars().take(QUOTE_MAX - 1).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// The people a process's `notify` effect names (see `workflow::AUDIENCES`); validation
/// refuses other names, so an unknown one reaches nobody.
pub(super) fn audience_named(who: &str) -> Audience {
    let mut audience = Audience::default();
    match who {
        "requester" => audience.requester = true,
        "assignee" => audience.assignee = true,
        "group" => audience.assignee_group = true,
        "watchers" => audience.watchers = true,
        "approvers" => audience.approvers = Approvers::All,
        _ => {}
    }
    audience
}

/// The notice an event gives, if any. Field edits, clocks, links, merges and approval
/// decisions stay in the history only: the state change they lead to is what people hear of.
pub(super) fn notice(data: &EventData) -> Option<Notice> {
    let (kind, audience, text) = match data {
        EventData::Created { .. } => (
            Kind::NewInGroup,
            Audience {
                assignee_group: true,
                ..Audience::default()
            },
            "filed a new ticket".to_owned(),
        ),
        EventData::GroupAssigned { group } => (
            Kind::NewInGroup,
            Audience {
                assignee_group: true,
                ..Audience::default()
            },
            format!("assigned it to {group}"),
        ),
        EventData::Assigned {
            assignee: Some(assignee),
            ..
        } => (
            Kind::Assigned,
            Audience {
                assignee: true,
                ..Audience::default()
            },
            format!("assigned it to {assignee}"),
        ),
        EventData::Assigned {
            assignee: None,
            group: Some(group),
        } => (
            Kind::NewInGroup,
            Audience {
                assignee_group: true,
                ..Audience::default()
            },
            format!("assigned it to {group}"),
        ),
        EventData::Escalated { to, reason, .. } => (
            Kind::NewInGroup,
            Audience {
                assignee_group: true,
                ..Audience::default()
            },
            format!("escalated it to {to}: {}", quote(reason)),
        ),
        EventData::Comment {
            body_md,
            public: true,
            ..
        } => (
            Kind::PublicReply,
            Audience::participants(),
            format!("replied: {}", quote(body_md)),
        ),
        EventData::Comment {
            body_md,
            public: false,
            ..
        } => (
            Kind::InternalNote,
            Audience {
                assignee: true,
                watchers: true,
                ..Audience::default()
            },
            format!("added an internal note: {}", quote(body_md)),
        ),
        EventData::Transition {
            label, from, to, ..
        } => (
            Kind::StateChange,
            Audience {
                requester: true,
                assignee: true,
                watchers: true,
                ..Audience::default()
            },
            if label.is_empty() {
                format!("moved it from {from} to {to}")
            } else {
                format!("took “{label}”: {from} → {to}")
            },
        ),
        EventData::StateMapped { from, to, .. } => (
            Kind::StateChange,
            Audience {
                requester: true,
                assignee: true,
                watchers: true,
                ..Audience::default()
            },
            format!("moved it from removed state {from} to {to}"),
        ),
        EventData::ApprovalRequested {
            round,
            state,
            approvers,
        } if !approvers.is_empty() => (
            Kind::ApprovalRequested,
            Audience {
                approvers: Approvers::Round(*round),
                ..Audience::default()
            },
            format!("asks for your approval ({state})"),
        ),
        EventData::SlaBreached { clock } => (
            Kind::SlaBreach,
            Audience {
                assignee: true,
                assignee_group: true,
                ..Audience::default()
            },
            format!(
                "missed its {} target",
                if clock == crate::engine::sla::FIRST_RESPONSE {
                    "first-response"
                } else {
                    "resolution"
                }
            ),
        ),
        EventData::ApprovalRequested { .. }
        | EventData::Assigned { .. }
        | EventData::PriorityChanged { .. }
        | EventData::AttachmentAdded { .. }
        | EventData::WatcherAdded { .. }
        | EventData::WatcherRemoved { .. }
        | EventData::FieldChanged { .. }
        | EventData::Clock { .. }
        | EventData::ApprovalDecision { .. }
        | EventData::ApprovalOutcome { .. }
        | EventData::NoApprovers { .. }
        | EventData::Linked { .. }
        | EventData::Merged { .. }
        | EventData::MailReceived { .. }
        | EventData::MailBounced { .. } => return None,
    };
    Some(Notice {
        kind,
        audience,
        internal: data.is_internal(),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_notes_go_to_assignee_and_watchers_only_and_are_internal() {
        let note = EventData::Comment {
            body_md: "Server **down**".into(),
            body_html: String::new(),
            public: false,
        };
        let n = notice(&note).unwrap();
        assert_eq!(n.kind, Kind::InternalNote);
        assert!(n.internal);
        assert!(!n.audience.requester);
        assert!(n.audience.assignee && n.audience.watchers);
    }

    #[test]
    fn every_audience_a_process_may_name_reaches_someone() {
        for who in crate::engine::workflow::AUDIENCES {
            assert_ne!(audience_named(who), Audience::default(), "{who}");
        }
        assert_eq!(audience_named("everyone"), Audience::default());
    }

    #[test]
    fn long_comments_are_quoted_short_on_one_line() {
        let q = quote(&format!("line one\n\n{}", "x".repeat(300)));
        assert_eq!(q.chars().count(), QUOTE_MAX);
        assert!(q.starts_with("line one x") && q.ends_with('…'));
    }
}
